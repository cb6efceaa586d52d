/** CLI output helpers. Everything printed may hold peer text: it is escaped (src/wire/text.ts). */
import { escapeDeep } from '../wire/text.js';

/**
 * JSON.stringify escapes C0 controls but leaves C1 (0x9b is a one-byte CSI) and bidi
 * overrides raw; escaping every string first keeps `--json` output inert on a terminal.
 */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(escapeDeep(value), null, 2) + '\n');
}
