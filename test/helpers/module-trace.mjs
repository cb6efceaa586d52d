// `node --import ./module-trace.mjs …`: appends the URL of every ES module the process loads
// to the file named by $PICKET_MODULE_TRACE (a test checks what a CLI command pulls in).
import { register } from 'node:module';

register('./module-trace-hooks.mjs', import.meta.url);
