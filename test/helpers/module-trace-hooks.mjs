// Loader hooks for module-trace.mjs (they run on the loader thread).
import { appendFileSync } from 'node:fs';

export async function load(url, context, next) {
  if (process.env.PICKET_MODULE_TRACE) appendFileSync(process.env.PICKET_MODULE_TRACE, `${url}\n`);
  return next(url, context);
}
