/**
 * docs/operations.md's walkthrough is a script: every `sh walkthrough` block runs, in order,
 * in one bash shell (set -euo pipefail) in a temp directory, with `picket` this checkout's
 * binary. If the docs and the product drift apart, this fails.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { BIN, tempDir } from '../helpers/cli.js';

const root = resolve(import.meta.dirname, '../..');
const t = tempDir('picket-walk-');
afterAll(() => t.cleanup());

export function walkthroughBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh walkthrough\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

describe('operations walkthrough', () => {
  it('runs every walkthrough command in docs/operations.md: identity to enforced, removal, root rotation, alert response', () => {
    const blocks = walkthroughBlocks(readFileSync(join(root, 'docs/operations.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    // `picket` on PATH execs the node binary, so `picket agent … & PID=$!` is the agent itself.
    const bin = t.path('bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'picket'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(bin, 'picket'), 0o755);
    const script = [
      'set -euo pipefail',
      // Background agents never outlive the script, whatever fails.
      'trap \'kill $(jobs -p) 2>/dev/null || true\' EXIT',
      ...blocks,
    ].join('\n');
    const t0 = Date.now();
    const r = spawnSync('bash', ['-c', script], { cwd: t.dir, encoding: 'utf8', timeout: 240_000, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    console.log(`walkthrough ran in ${Date.now() - t0} ms`);
    expect(r.signal, 'the walkthrough (or an agent it started) outlived its time').toBeNull();
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/stale-root-signature/);
  }, 300_000);
});
