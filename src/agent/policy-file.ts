/**
 * The `policyFile` drop-in: config management writes a signed policy where the config points
 * and the agent offers it like a gossiped one. Every form `picket policy sign` can produce is
 * read (the JSON envelope it writes, and the binary protobuf form). A file that cannot be
 * used leaves the policy in force untouched and is reported (the caller raises an alert).
 *
 * Watched with fs.watch on the *directory*: tools replace files by rename (a new inode), which
 * a watch on the file itself stops seeing after the first replace. Events are settled for a
 * moment so a file written in place is read once it is complete, and a slow re-check covers
 * what inotify cannot (queue overflow, network filesystems, a directory created later).
 * Part of the agent room: the composition root starts, restarts (SIGHUP) and stops it.
 */
import { constants, watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createHash } from 'node:crypto';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { LIMITS } from '../wire/limits.js';
import { parseEnvelopeAny, type Envelope } from '../trust/envelope.js';
import { fileKindHint } from '../trust/files.js';

export interface PolicyFileOptions {
  path: string;
  clock: Clock;
  log: Logger;
  /** Verify → persist → enforce, as for any other source. */
  offer: (envelope: Envelope) => Promise<{ outcome: string; reason?: string; version?: number }>;
  /** The file is there but cannot be used; the previous policy stays in force. */
  onRejected: (reason: string) => Promise<void> | void;
  /** The file is usable (accepted, already held, or older than what is held). */
  onUsable: () => Promise<void> | void;
  /** Quiet time after the last change event before the file is read (default 300 ms). */
  settleMs?: number;
  /** Re-check period without events (default 30 s). */
  recheckMs?: number;
}

/** Outcomes that mean the file is fine: the node holds this policy or a newer one. */
const USABLE = new Set(['accepted', 'duplicate', 'stale']);

export class PolicyFileWatcher {
  readonly path: string;
  #o: PolicyFileOptions;
  #watcher: FSWatcher | null = null;
  #settle: Timer | null = null;
  #recheck: Timer | null = null;
  #last = '';
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(o: PolicyFileOptions) {
    this.#o = o;
    this.path = o.path;
  }

  /** Reads the file once (before returning) and watches for changes. */
  async start(): Promise<void> {
    const dir = dirname(this.path), name = basename(this.path);
    try {
      this.#watcher = watch(dir, { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.#changed();
      });
      this.#watcher.on('error', (e) => {
        this.#o.log.warn({ file: this.path, err: e.message }, 'policy file watch failed; re-checking periodically');
        this.#watcher?.close();
        this.#watcher = null;
      });
    } catch (e) {
      this.#o.log.warn({ file: this.path, err: (e as Error).message }, 'cannot watch the policy file directory; re-checking periodically');
    }
    await this.check();
    this.#armRecheck();
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = null;
    this.#settle?.cancel();
    this.#recheck?.cancel();
  }

  /** Reads the file and offers it if it changed since the last read. Serialized. */
  check(): Promise<void> {
    const next = this.#chain.then(() => this.#check());
    this.#chain = next.catch((e: unknown) => this.#o.log.error({ file: this.path, err: (e as Error).message }, 'policy file check failed'));
    return this.#chain;
  }

  #changed(): void {
    if (this.#stopped) return;
    this.#settle?.cancel();
    this.#settle = this.#o.clock.setTimeout(() => void this.check(), this.#o.settleMs ?? 300);
  }

  #armRecheck(): void {
    if (this.#stopped) return;
    this.#recheck = this.#o.clock.setTimeout(() => void this.check().finally(() => this.#armRecheck()), this.#o.recheckMs ?? 30_000);
  }

  async #check(): Promise<void> {
    if (this.#stopped) return;
    const { log } = this.#o;
    const limit = LIMITS.maxEnvelopeJsonBytes;
    let bytes: Buffer;
    try {
      // Size and kind are checked on the open file before anything is read: a huge file, a
      // FIFO or a device named there must not cost the agent its memory or block it.
      // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
      const fh = await open(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        const st = await fh.stat();
        if (!st.isFile()) return await this.#rejectOnce(`kind:${st.mode}`, 'not a regular file');
        if (st.size > limit) return await this.#rejectOnce(`size:${st.size}:${st.mtimeMs}`, `too-large: ${st.size} bytes (limit ${limit})`);
        bytes = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      this.#last = '';
      if (code === 'ENOENT') return; // not dropped yet (or removed): nothing to offer, nothing wrong
      return this.#reject(`cannot read (${code ?? (e as Error).message})`);
    }
    if (bytes.length > limit) return this.#rejectOnce(`size:${bytes.length}`, `too-large: ${bytes.length} bytes (limit ${limit})`); // grew while read
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest === this.#last) return;
    this.#last = digest;
    const parsed = parseEnvelopeAny(bytes);
    if (!parsed.ok) return this.#reject(fileKindHint(bytes) ?? `${parsed.outcome}: ${parsed.reason}`);
    const r = await this.#o.offer(parsed.value);
    if (!USABLE.has(r.outcome)) return this.#reject(`${r.outcome}: ${r.reason ?? ''}`);
    log.info({ file: this.path, outcome: r.outcome, version: r.version }, 'policy file read');
    await this.#o.onUsable();
  }

  /** Rejects a file identified without reading it (its size or kind), once per identity. */
  async #rejectOnce(identity: string, reason: string): Promise<void> {
    if (identity === this.#last) return;
    this.#last = identity;
    return this.#reject(reason);
  }

  async #reject(reason: string): Promise<void> {
    this.#o.log.warn({ file: this.path, reason }, 'policy file not accepted; the policy in force stays');
    await this.#o.onRejected(reason);
  }
}
