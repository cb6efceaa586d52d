/**
 * Runs firewall tools. Scripts go to the tool's stdin over a pipe this module creates
 * (`nft -f -`, `iptables-restore`): nothing is written anywhere, so enforcement works with a
 * read-only root filesystem and an unwritable temp dir (a DaemonSet with
 * readOnlyRootFilesystem, a hardened unit). stdin is always an explicit pipe, never inherited:
 * a tool reading a terminal or the agent's own stdin would hang or eat the operator's input.
 */
import { spawn } from 'node:child_process';
import { ApplyError } from './backend.js';

export interface Runner {
  /** Prefix for every command, e.g. ['ip', 'netns', 'exec', 'ns1'] in tests. */
  wrap?: string[];
}

export interface RunOptions {
  /** Written to the tool's stdin, then stdin is closed. Without it stdin is closed at once. */
  input?: string;
  timeoutMs?: number;
}

/** Bounds what a tool may print back (a full `nft -j list` of a large table is a few MB). */
const MAX_OUTPUT = 256 * 1024 * 1024;
/** Error text kept: nft echoes the whole offending line, which can be 0.7 MB on one line. */
const MAX_STDERR = 64 * 1024;

/** One line naming the tool and its first error lines, each cut to a readable length. */
function describeFailure(cmd: string[], stderr: string, fallback: string): string {
  const lines = (stderr || fallback).trim().split('\n').slice(0, 3).map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l));
  return `${cmd[0]} ${cmd.slice(1, 3).join(' ')}: ${lines.join(' | ')}`;
}

export function run(runner: Runner, cmd: string[], opts: RunOptions = {}): Promise<string> {
  const [bin, ...args] = [...(runner.wrap ?? []), ...cmd];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(bin!, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    const out: Buffer[] = [];
    let outBytes = 0, stderr = '', overflow = false, spawnError: Error | null = null;
    child.stdout.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > MAX_OUTPUT) { overflow = true; child.kill('SIGKILL'); } else out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < MAX_STDERR) stderr += d.toString('utf8'); });
    child.on('error', (e) => { spawnError = e; });
    // A tool that exits before reading all its input closes the pipe: EPIPE here is not the
    // failure to report, the exit status and stderr are.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      if (code === 0 && !overflow) { resolve(Buffer.concat(out).toString('utf8')); return; }
      const why = spawnError ? spawnError.message
        : overflow ? `output exceeds ${MAX_OUTPUT} bytes`
        : signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms?)` : ''}`
        : `exit code ${code}`;
      reject(new ApplyError(describeFailure(cmd, spawnError || overflow ? '' : stderr, why)));
    };
    // 'close' waits for every holder of the pipes: normally the tool itself, so its output
    // is complete. A killed tool may have left a child holding them; do not wait for it.
    child.on('close', finish);
    child.on('exit', (code, signal) => {
      if (signal === null) return;
      child.stdout.destroy();
      child.stderr.destroy();
      finish(code, signal);
    });
  });
}
