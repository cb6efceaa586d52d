/**
 * Drop totals that only go up. The kernel's counters reset when their table is recreated or a
 * drop chain rewritten (and at boot); Prometheus counters and operators expect a total that
 * never goes back. Each reading is added to what the counters held before their last reset:
 * a reset is seen from the backend's epoch (it changed) or from a counter that went down
 * (someone recreated the table behind the agent). What was counted between the last reading
 * and a reset is lost, so readers read often (every scrape, every status) and backends keep
 * their counters across ordinary applies (docs/decisions.md). Pure: no I/O, no clock.
 */
import type { DropCount, DropReading } from './backend.js';
import { DROP_REASONS, type DropReason } from './nft-tables.js';

export type DropTotalsView = Record<DropReason, DropCount>;

const zero = (): DropCount => ({ packets: 0, bytes: 0 });

export class DropTotals {
  #base = new Map<DropReason, DropCount>();
  #last = new Map<DropReason, DropCount>();
  #epoch: string | undefined;

  /** Folds one reading in and returns the totals since this object was made. */
  observe(r: DropReading): DropTotalsView {
    const reset = this.#epoch !== undefined && r.epoch !== this.#epoch;
    for (const reason of DROP_REASONS) {
      const cur = r.counts[reason] ?? zero();
      const last = this.#last.get(reason) ?? zero();
      if (reset || cur.packets < last.packets || cur.bytes < last.bytes) {
        const base = this.#base.get(reason) ?? zero();
        this.#base.set(reason, { packets: base.packets + last.packets, bytes: base.bytes + last.bytes });
      }
      this.#last.set(reason, { packets: cur.packets, bytes: cur.bytes });
    }
    this.#epoch = r.epoch;
    return this.totals;
  }

  get totals(): DropTotalsView {
    const out = {} as DropTotalsView;
    for (const reason of DROP_REASONS) {
      const b = this.#base.get(reason) ?? zero(), l = this.#last.get(reason) ?? zero();
      out[reason] = { packets: b.packets + l.packets, bytes: b.bytes + l.bytes };
    }
    return out;
  }
}
