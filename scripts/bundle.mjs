// Bundles the compiled CLI (dist/cli/main.js and everything it imports, libp2p included) into
// a few ES module chunks in dist/bundle/, which bin/picket.js runs. Node 20 resolves, reads and
// compiles each of the ~1,000 modules of the agent's graph on its own: three quarters of an
// agent's start-up CPU. Every import() stays a chunk boundary (splitting), so an offline
// command still loads none of the agent's stack (test/cli/startup.test.ts reads meta.json).
// classic-level stays outside: it loads a native addon relative to its own package.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';

const result = await build({
  entryPoints: { main: 'dist/cli/main.js' },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['classic-level'],
  // CommonJS dependencies (yaml, pino, protobufjs…) call require() for Node's own modules.
  banner: { js: "import { createRequire as __picketRequire } from 'node:module'; const require = __picketRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
writeFileSync('dist/bundle/meta.json', JSON.stringify(result.metafile));
