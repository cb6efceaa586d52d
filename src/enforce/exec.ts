/** Runs firewall tools. Scripts go through temp files: `nft -f -` fails when Node spawns it. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplyError } from './backend.js';

export interface Runner {
  /** Prefix for every command, e.g. ['ip', 'netns', 'exec', 'ns1'] in tests. */
  wrap?: string[];
}

export function run(runner: Runner, cmd: string[], timeoutMs = 30_000): Promise<string> {
  const [bin, ...args] = [...(runner.wrap ?? []), ...cmd];
  return new Promise((resolve, reject) => {
    execFile(bin!, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new ApplyError(`${cmd[0]} ${cmd.slice(1, 3).join(' ')}: ${(stderr || err.message).trim().split('\n').slice(0, 3).join(' | ')}`));
      else resolve(stdout);
    });
  });
}

/** Writes `text` to a private temp file, runs `fn(path)`, removes the file. */
export async function withTempFile<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-'));
  const path = join(dir, 'ruleset');
  try {
    writeFileSync(path, text, { mode: 0o600 });
    return await fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
