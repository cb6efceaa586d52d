/**
 * Runs an operator-supplied shell command as a filter: bytes in on stdin, bytes out on stdout
 * (the external signer of `policy sign --signer`). Lives in runtime/ because it owns a timer.
 *
 * - stderr is inherited: a hardware token's "touch your key" or a PIN prompt must reach the
 *   operator's terminal.
 * - Without a terminal (CI, scripts) the command runs in its own process group, and a timeout
 *   kills the whole group: a shell pipeline whose last stage hangs leaves nothing behind.
 *   On a terminal it stays in picket's group, because a background group that reads the
 *   terminal (a PIN prompt) is stopped by the kernel (SIGTTIN), and Ctrl-C must reach it;
 *   a timeout then kills the shell only. Either way picket stops waiting at the timeout,
 *   even when a grandchild still holds the pipe.
 * - Output is bounded: a command that prints without end is killed, not buffered.
 */
import { spawn } from 'node:child_process';

export type FilterResult =
  | { outcome: 'exited'; code: number; stdout: Uint8Array }
  | { outcome: 'timeout'; timeoutMs: number }
  | { outcome: 'killed'; signal: string }
  | { outcome: 'too-much-output'; limit: number }
  | { outcome: 'spawn-failed'; reason: string };

export interface FilterOptions {
  timeoutMs: number;
  maxOutputBytes: number;
  /** The operator is at a terminal: keep the command in the foreground process group. */
  interactive: boolean;
}

export function runFilter(command: string, input: Uint8Array, opts: FilterOptions): Promise<FilterResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'], detached: !opts.interactive });
    const out: Buffer[] = [];
    let outBytes = 0;
    let settled = false;
    const killGroup = () => {
      try {
        if (child.pid === undefined) return;
        if (opts.interactive) child.kill('SIGKILL');
        else process.kill(-child.pid, 'SIGKILL');
      } catch { /* already gone */ }
    };
    const settle = (r: FilterResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => { killGroup(); settle({ outcome: 'timeout', timeoutMs: opts.timeoutMs }); }, opts.timeoutMs);
    child.on('error', (e) => settle({ outcome: 'spawn-failed', reason: e.message }));
    child.stdout.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > opts.maxOutputBytes) { killGroup(); settle({ outcome: 'too-much-output', limit: opts.maxOutputBytes }); } else out.push(d);
    });
    // A command that does not read all of its input closes the pipe: EPIPE is not the failure
    // to report; its exit status and output are.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    // 'close' waits until every holder of stdout let go, so the output is complete; a
    // grandchild holding it open runs into the timeout above.
    child.on('close', (code, signal) => {
      if (signal !== null) settle({ outcome: 'killed', signal });
      else settle({ outcome: 'exited', code: code ?? -1, stdout: new Uint8Array(Buffer.concat(out)) });
    });
  });
}
