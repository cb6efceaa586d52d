/**
 * The agent's view of the kernel drop counters: reads them from whatever backend is in force
 * (one tool call), folds each reading into totals that never go down (src/enforce/drop-totals.ts)
 * and shares one reading between callers that ask at once (a scrape and a status together).
 * It never goes through the enforcer's queue: a slow or failing read cannot hold up an apply.
 */
import type { Backend } from '../enforce/backend.js';
import { DropTotals, type DropTotalsView } from '../enforce/drop-totals.js';
import type { Clock } from '../runtime/clock.js';

/** A reading this young is reused rather than spawning the tool again (scrape storms). */
export const DROP_READ_MIN_INTERVAL = 1000;

export class DropReader {
  readonly #totals = new DropTotals();
  #known: DropTotalsView | null = null;
  #inflight: Promise<DropTotalsView | null> | null = null;
  #readAt = -Infinity;

  constructor(private readonly backend: () => Backend, private readonly clock: Clock, private readonly minInterval = DROP_READ_MIN_INTERVAL) {}

  /** The totals as of the last successful reading (null: the backend counts nothing, or not yet read). */
  get totals(): DropTotalsView | null {
    return this.#known;
  }

  /** Reads the counters now (or returns a reading younger than minInterval). Never throws. */
  read(): Promise<DropTotalsView | null> {
    if (this.#inflight) return this.#inflight;
    if (this.clock.monotonic() - this.#readAt < this.minInterval) return Promise.resolve(this.#known);
    const b = this.backend();
    if (!b.readDrops) return Promise.resolve(this.#known);
    this.#inflight = b.readDrops().then(
      (r) => {
        if (r) this.#known = this.#totals.observe(r);
        return this.#known;
      },
      () => this.#known,
    ).finally(() => {
      this.#readAt = this.clock.monotonic();
      this.#inflight = null;
    });
    return this.#inflight;
  }
}
