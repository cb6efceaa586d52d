/**
 * One long-lived `nft -i` for small element-only transactions (a moved address, a port).
 *
 * A fresh `nft -f -` per change costs a process start and, when the change deleted anything,
 * waits in `close()` of its netlink socket for the kernel to finish the transaction's
 * deferred release (an RCU grace period: 7–18 ms here), which is most of a one-address
 * change. A process that keeps its socket open pays neither: the release completes in the
 * background, before the next change (docs/enforcement.md, decisions.md).
 *
 * Each transaction is one input line (`cmd; cmd; …`): nft runs a line as one netlink batch,
 * so it is in force whole or not at all, exactly like `nft -f -`. After the line the session
 * sends `describe meta mark`, which nft answers from its own tables (no kernel call): the
 * answer marks the end of the transaction's output, and anything before it containing
 * `Error` is the transaction's failure. stderr is merged into stdout (`2>&1`) so the error
 * arrives before the marker. Only scripts that are plain one-line nft syntax go this way:
 * a newline or `#` would split or cut the batch, so such a script is refused here and the
 * backend applies it through `nft -f -`.
 *
 * The session never keeps an error: a timeout, an exit or a spawn failure kills it and
 * rejects the transaction (the backend then falls back to a full replace); the next
 * transaction starts a new process. HOME points nowhere, so nft's line editor neither reads
 * nor writes a history file (a read-only root, a large root history).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Socket } from 'node:net';
import { ApplyError } from './backend.js';
import type { Runner } from './exec.js';
import { systemClock, type Clock, type Timer } from '../runtime/clock.js';

/** nft's answer to `describe meta mark`: the end of one transaction's output. */
const MARK_COMMAND = 'describe meta mark';
const MARK = 'datatype mark (packet mark)';
/** Scripts larger than this go through `nft -f -`: the line editor reads its input a byte per syscall. */
export const SESSION_MAX_SCRIPT = 16 * 1024;
/** Output kept while waiting for the marker (errors echo the offending line: < SESSION_MAX_SCRIPT). */
const MAX_PENDING_OUTPUT = 4 * SESSION_MAX_SCRIPT;
/** Printable ASCII without `#` (a comment to the end of the line in nft syntax). */
const SAFE_LINE = /^[\x20-\x22\x24-\x7e]*$/;

/** One line nft reads as one batch, whose output cannot be taken for the marker. */
const plain = (line: string) => line.length <= SESSION_MAX_SCRIPT && SAFE_LINE.test(line) && !line.includes(MARK);

/** A child's stdio stream is a net.Socket over a pipe (Readable in the types). */
const pipe = (child: ChildProcessWithoutNullStreams) => child.stdout as unknown as Socket;

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: Timer;
}

export class NftSession {
  #child: ChildProcessWithoutNullStreams | null = null;
  #output = '';
  #waiter: Waiter | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Processes started, for tests and metrics: 1 in a healthy agent's lifetime. */
  started = 0;

  constructor(private readonly runner: Runner = {}, private readonly timeoutMs = 10_000, private readonly clock: Clock = systemClock) {}

  /** The one-line form of `script`, or null when it cannot go through the session. */
  static line(script: string): string | null {
    if (script.length > SESSION_MAX_SCRIPT) return null;
    const line = script.split('\n').map((l) => l.trim()).filter(Boolean).join('; ');
    return line && plain(line) ? line : null;
  }

  /** Runs `line` (from NftSession.line) as one transaction: resolves once it is in force. */
  transaction(line: string): Promise<void> {
    const run = this.#queue.then(() => this.#run(line));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Ends the process; later transactions are refused (the backend uses `nft -f -`). */
  close(): void {
    this.#closed = true;
    this.#kill(new ApplyError('nft session closed'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  #run(line: string): Promise<void> {
    if (this.#closed) return Promise.reject(new ApplyError('nft session closed'));
    if (!plain(line)) return Promise.reject(new ApplyError('nft session: script is not one plain line'));
    const child = this.#child ?? this.#start();
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => this.#kill(new ApplyError(`nft -i: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      // A transaction in flight keeps the process alive (the pipe is unreferenced in between).
      pipe(child).ref();
      this.#waiter = { resolve, reject, timer };
      this.#output = '';
      child.stdin.write(`${line}\n${MARK_COMMAND}\n`);
    });
  }

  #start(): ChildProcessWithoutNullStreams {
    const [bin, ...args] = [...(this.runner.wrap ?? []), 'sh', '-c', 'exec "$@" 2>&1', 'sh', 'nft', '-i'];
    const child = spawn(bin!, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: '/dev/null' } });
    this.started++;
    this.#child = child;
    // The session must not keep an agent (or a test) alive between transactions (the pipe is
    // referenced while one is in flight); the process reads EOF and exits when this one ends.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as unknown as Socket[]) s.unref();
    child.stdin.on('error', () => undefined);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.#onOutput(child, d));
    child.stderr.resume();
    child.on('error', (e) => this.#gone(child, new ApplyError(`nft -i: ${e.message}`)));
    child.on('exit', (code, signal) => this.#gone(child, new ApplyError(`nft -i ended (${signal ?? `exit code ${code}`})`)));
    return child;
  }

  #onOutput(child: ChildProcessWithoutNullStreams, d: string): void {
    if (child !== this.#child) return;
    this.#output += d;
    const at = this.#output.indexOf(MARK);
    if (at < 0) {
      // Output with no marker is bounded: keep its start (the error) and the tail (the marker may straddle).
      if (this.#output.length > MAX_PENDING_OUTPUT) this.#output = this.#output.slice(0, MAX_PENDING_OUTPUT / 2) + this.#output.slice(-256);
      return;
    }
    const before = this.#output.slice(0, at);
    this.#output = '';
    const w = this.#waiter;
    if (!w) return; // output nobody asked for: ignored
    this.#waiter = null;
    w.timer.cancel();
    pipe(child).unref();
    // The marker line itself starts with "meta expression, "; an error is nft's "Error: …".
    if (/Error/.test(before)) {
      const lines = before.trim().split('\n').filter((l) => l.trim()).slice(0, 3).map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l));
      w.reject(new ApplyError(`nft -i: ${lines.join(' | ')}`));
    } else w.resolve();
  }

  #gone(child: ChildProcessWithoutNullStreams, e: Error): void {
    if (child !== this.#child) return;
    this.#child = null;
    this.#fail(e);
  }

  #kill(e: Error): void {
    const child = this.#child;
    this.#child = null;
    if (child) {
      child.stdin.end();
      child.kill('SIGKILL');
    }
    this.#fail(e);
  }

  #fail(e: Error): void {
    const w = this.#waiter;
    this.#waiter = null;
    if (!w) return;
    w.timer.cancel();
    w.reject(e);
  }
}
