/**
 * Per-update trace: when one policy version reached each stage on this node — received
 * (handed to the engine), verified, forwarded (gossipsub got the verdict, or the mesh
 * published it), persisted, enforced. Each stage is a debug line as it happens; once the
 * version is enforced (or superseded) one info line `update trace` carries every stage, as
 * Unix ms (`at`, comparable across processes on one host) and as ms since receipt (`ms`).
 * The benchmark reads that line from every agent's log (bench/procs.ts) to find the hop
 * where a slow node lost its time.
 */
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';

export type TraceStage = 'received' | 'verified' | 'forwarded' | 'persisted' | 'enforced';
export const TRACE_STAGES: readonly TraceStage[] = ['received', 'verified', 'forwarded', 'persisted', 'enforced'];

export interface UpdateTrace {
  version: number;
  digest: string;
  source: string;
  peer?: string;
  /** Unix ms at which each stage was reached. */
  at: Partial<Record<TraceStage, number>>;
  /** What the stage that set it saw (e.g. gossip mesh peers when forwarding). */
  detail: Record<string, number | string>;
}

/** How many traces may wait for their enforcement at once (a burst coalesces into one apply). */
const OPEN_MAX = 32;

export class UpdateTraces {
  #open = new Map<string, UpdateTrace>();

  constructor(private readonly clock: Clock, private readonly log: Logger, private readonly done: (t: UpdateTrace) => void = () => undefined) {}

  /** A verified policy: its trace starts with the time the engine was handed it. */
  begin(version: number, digest: string, source: { kind: string; peer?: string }, receivedAt: number, verifiedAt: number): void {
    const key = `${version}:${digest}`;
    if (this.#open.size >= OPEN_MAX) this.#close(this.#open.keys().next().value!);
    const t: UpdateTrace = { version, digest, source: source.kind, ...(source.peer ? { peer: source.peer } : {}), at: { received: receivedAt, verified: verifiedAt }, detail: {} };
    this.#open.set(key, t);
    this.log.debug({ version, stage: 'received', at: receivedAt, source: source.kind, peer: source.peer }, 'update stage');
    this.log.debug({ version, stage: 'verified', at: verifiedAt }, 'update stage');
  }

  /** Marks a stage of an open trace (first time only); unknown traces are ignored. */
  mark(version: number, digest: string, stage: Exclude<TraceStage, 'received' | 'verified'>, detail: Record<string, number | string> = {}): void {
    const t = this.#open.get(`${version}:${digest}`);
    if (!t || t.at[stage] !== undefined) return;
    const at = this.clock.now();
    t.at[stage] = at;
    Object.assign(t.detail, detail);
    this.log.debug({ version, stage, at, ...detail }, 'update stage');
  }

  /** Enforcement finished with `version` in force (null: none): every trace up to it is done. */
  enforced(version: number | null): void {
    if (version === null) return;
    for (const [key, t] of [...this.#open]) {
      if (t.version > version) continue;
      if (t.version === version) this.mark(t.version, t.digest, 'enforced');
      this.#close(key);
    }
  }

  #close(key: string): void {
    const t = this.#open.get(key);
    if (!t) return;
    this.#open.delete(key);
    const r = t.at.received!;
    const ms: Partial<Record<TraceStage, number>> = {};
    for (const s of TRACE_STAGES) if (t.at[s] !== undefined) ms[s] = t.at[s]! - r;
    this.log.info({ version: t.version, digest: t.digest.slice(0, 16), source: t.source, peer: t.peer, at: t.at, ms, ...t.detail }, 'update trace');
    this.done(t);
  }
}
