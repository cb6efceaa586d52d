/**
 * Start-up cost of the offline commands: they must not load the agent's stack (libp2p,
 * gossipsub, LevelDB). Asserted on the set of modules each command loads, which does not
 * depend on how busy the machine is; bench/cli-start.ts prints the times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { picket, picketWith, tempDir } from '../helpers/cli.js';

const t = tempDir('picket-startup-');
const TRACER = resolve(import.meta.dirname, '../helpers/module-trace.mjs');
// The agent's stack: what only `picket agent` needs.
const AGENT_STACK = /\/node_modules\/(libp2p|@libp2p\/[^/]+|@chainsafe\/[^/]+|level|classic-level|abstract-level)\//;

// bin/picket.js runs the bundle (scripts/bundle.mjs): a chunk stands for the source modules
// esbuild put in it, as its metafile lists them.
const META = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../dist/bundle/meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };

/** The source modules behind a loaded module URL: a bundle chunk's inputs, else the URL itself. */
function sourcesOf(url: string): string[] {
  const chunk = /\/(dist\/bundle\/[^/]+\.js)$/.exec(url)?.[1];
  const out = chunk ? META.outputs[chunk] : undefined;
  return out ? Object.keys(out.inputs).map((i) => `/${i}`) : [url];
}

function modulesOf(...args: string[]): { code: number; modules: string[] } {
  const file = t.path(`trace-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, '');
  const r = picketWith({ cwd: t.dir, env: { PICKET_MODULE_TRACE: file }, nodeArgs: ['--import', TRACER] }, ...args);
  const modules = readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap(sourcesOf);
  rmSync(file);
  return { code: r.code, modules };
}

beforeAll(() => {
  expect(picket(t.dir, 'keygen', '--out', 'admin.key').code).toBe(0);
  expect(picket(t.dir, 'root', 'create', '--key', 'admin.key', '--out', 'root.json').code).toBe(0);
  writeFileSync(t.path('policy.yaml'), 'meshId: m\nversion: 1\nexpires: 2099-01-01\n');
  expect(picket(t.dir, 'policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'policy.signed').code).toBe(0);
});
afterAll(() => t.cleanup());

describe('offline commands start without the agent stack', () => {
  const offline: string[][] = [
    ['--version'], ['--help'], ['keygen', '--out', 'k2.key'], ['root', '--help'],
    ['policy', 'verify', 'policy.signed', '--root', 'root.json'], ['policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'p2.signed'],
    ['policy', 'render', 'policy.signed', '--node', 'x'], ['status', '--help'], ['publish', '--help'], ['agent', '--help'],
    ['policy', 'check', 'policy.yaml'], ['explain', '--socket', 'none.sock', '--from', '10.0.0.1', '--port', '22'], ['policy', 'history', '--socket', 'none.sock'],
  ];
  for (const args of offline) {
    it(`picket ${args.join(' ')} loads no libp2p or LevelDB module`, () => {
      const { modules } = modulesOf(...args);
      // The tracer saw the command itself: an empty trace would pass for the wrong reason.
      expect(modules.some((m) => m.includes('/node_modules/commander/'))).toBe(true);
      expect(modules.filter((m) => AGENT_STACK.test(m))).toEqual([]);
    });
  }

  it('verify, render and status load no schema or YAML code either (only sign and show read the authoring format)', () => {
    for (const args of [['policy', 'verify', 'policy.signed', '--root', 'root.json'], ['policy', 'render', 'policy.signed', '--node', 'x'], ['status', '--socket', 'none.sock'], ['explain', '--socket', 'none.sock', '--from', '10.0.0.1', '--port', '22'], ['policy', 'history', '--socket', 'none.sock']]) {
      const { modules } = modulesOf(...args);
      expect(modules.filter((m) => /\/node_modules\/(zod|yaml)\//.test(m)), args.join(' ')).toEqual([]);
    }
  });

  it('the check can fail: keygen --node does load libp2p crypto, and only for node keys', () => {
    const { code, modules } = modulesOf('keygen', '--node', '--out', 'node.key');
    expect(code).toBe(0);
    expect(modules.some((m) => m.includes('/node_modules/@libp2p/crypto/'))).toBe(true);
    expect(modules.some((m) => /\/node_modules\/(libp2p|@libp2p\/gossipsub|level)\//.test(m))).toBe(false);
  });
});
