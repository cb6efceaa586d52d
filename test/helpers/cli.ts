/** Runs the real `picket` binary (built by `npm test`'s pretest) in a temp directory. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../bin/picket.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function picket(cwd: string, ...args: string[]): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'picket-test-'): { dir: string; path: (f: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (f) => join(dir, f), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One clear line, no stack trace. */
export function expectOneLineError(r: Run): void {
  if (r.code !== 1) throw new Error(`expected exit 1, got ${r.code}: ${r.stderr}${r.stdout}`);
  const lines = r.stderr.trim().split('\n');
  if (lines.length !== 1 || /\n\s+at /.test(r.stderr) || !/^(error|invalid): /.test(lines[0]!)) {
    throw new Error(`expected one error line, got:\n${r.stderr}`);
  }
}
