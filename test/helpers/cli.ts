/** Runs the real `picket` binary (built by `npm test`'s pretest) in a temp directory. */
import { spawn, spawnSync } from 'node:child_process';
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
  return picketWith({ cwd }, ...args);
}

/** As picket(), with extra environment variables and node options (e.g. --import a tracer). */
export function picketWith(o: { cwd: string; env?: Record<string, string | undefined>; nodeArgs?: string[] }, ...args: string[]): Run {
  const r = spawnSync(process.execPath, [...(o.nodeArgs ?? []), BIN, ...args], { cwd: o.cwd, env: { ...process.env, ...o.env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the binary without blocking the test's event loop (for running several at once). */
export function picketAsync(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Maps `items` through `fn` with at most `limit` in flight (a bounded pool of processes). */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
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
