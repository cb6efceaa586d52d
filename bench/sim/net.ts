/**
 * The simulated transport: one event queue on simulated time, a Clock over it for the
 * product's classes (InFlight retries, budgets, bans), and point-to-point links with
 * latency, loss and partitions. The idea is memberlist's MockNetwork (mock_transport.go): every
 * node gets an in-memory endpoint and a send is a lookup plus a delivery — here delivered
 * later on the simulated clock instead of at once, so a 10k-node run is a seeded, ordered
 * replay. Nothing here decides anything about picket's protocol.
 */
import type { Clock, Timer } from '../../src/runtime/clock.js';
import type { Random } from '../../src/runtime/random.js';

type Ev = { t: number; seq: number; fn: () => void | Promise<unknown> };

/** A binary heap on (time, insertion order): ties run in the order they were scheduled. */
class Queue {
  #h: Ev[] = [];
  #seq = 0;
  get size(): number { return this.#h.length; }
  push(t: number, fn: Ev['fn']): Ev {
    const e = { t, seq: this.#seq++, fn };
    const h = this.#h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) { const p = (i - 1) >> 1; if (!less(e, h[p]!)) break; h[i] = h[p]!; i = p; }
    h[i] = e;
    return e;
  }
  pop(): Ev | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (!h.length || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = -1;
      let best = last;
      if (l < h.length && less(h[l]!, best)) { m = l; best = h[l]!; }
      if (r < h.length && less(h[r]!, best)) { m = r; }
      if (m < 0) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = last;
    return top;
  }
}
const less = (a: Ev, b: Ev) => a.t < b.t || (a.t === b.t && a.seq < b.seq);

export interface LinkModel {
  latencyMs: number;
  /** Probability that one message is lost. */
  loss: number;
}

/** Bytes and messages per node, by what they carried. */
export class Meter {
  readonly sent: Float64Array;
  readonly received: Float64Array;
  readonly messages: Float64Array;
  constructor(n: number) {
    this.sent = new Float64Array(n);
    this.received = new Float64Array(n);
    this.messages = new Float64Array(n);
  }
}

export class SimNet {
  readonly queue = new Queue();
  /** Simulated milliseconds since the start. */
  t = 0;
  /** Async work (validators waiting on a pull) still running: drained after every event. */
  pending = 0;
  readonly clock: Clock;
  #cut: ((a: number, b: number) => boolean) | null = null;

  constructor(readonly epoch: number, readonly random: Random, readonly link: LinkModel) {
    const at = (t: number, fn: Ev['fn']) => this.at(t, fn);
    const now = () => this.t;
    this.clock = {
      now: () => epoch + now(),
      monotonic: now,
      setTimeout(fn, ms): Timer {
        let cancelled = false;
        // A callback that returns a promise (an async task) is awaited like any event's.
        at(now() + Math.max(0, ms), () => (cancelled ? undefined : (fn() as unknown as Promise<unknown> | undefined)));
        return { cancel: () => { cancelled = true; } };
      },
      sleep: (ms) => new Promise((resolve) => at(now() + ms, resolve)),
    };
  }

  at(t: number, fn: Ev['fn']): void {
    this.queue.push(t, fn);
  }

  /** Splits the network: `cut(a, b)` true drops every message between a and b. */
  partition(cut: ((a: number, b: number) => boolean) | null): void {
    this.#cut = cut;
  }

  isCut(a: number, b: number): boolean {
    return this.#cut !== null && this.#cut(a, b);
  }

  /** One-way latency of one message (jittered ±20%). */
  latency(): number {
    return this.link.latencyMs * (0.8 + this.random.next() * 0.4);
  }

  /**
   * Sends `size` bytes from `from` to `to`, counted on `meter`; `deliver` runs at the receiver
   * after the latency, unless the message is lost or the link is cut. `reliable`: a message
   * inside a stream (TCP delivers it or the stream fails as a whole; see the caller). Returns
   * whether it will arrive.
   */
  send(meter: Meter, from: number, to: number, size: number, deliver: () => void | Promise<unknown>, reliable = false): boolean {
    meter.sent[from]! += size;
    meter.messages[from]!++;
    if (this.isCut(from, to) || (!reliable && this.random.next() < this.link.loss)) return false;
    this.at(this.t + this.latency(), () => {
      meter.received[to]! += size;
      return deliver();
    });
    return true;
  }

  /**
   * Tracks async work an event started but does not return (drained before the next event
   * runs). Untracked, unreturned async work would run only at the next await: a bug.
   */
  track<T>(p: Promise<T>): Promise<T> {
    this.pending++;
    return p.finally(() => { this.pending--; });
  }

  /** Runs events in order until `until` (simulated ms) or `stop()` says so. */
  async run(until: number, stop: () => boolean = () => false): Promise<void> {
    for (let e = this.queue.pop(); e; e = this.queue.pop()) {
      if (e.t > until) { this.queue.push(e.t, e.fn); break; }
      this.t = e.t;
      const r = e.fn();
      if (r) await r;
      // Continuations of tracked async work (validators waiting on a pull; all of it
      // synchronous crypto underneath) run now, at this event's time, before the next event:
      // the same order on every run. A macrotask turn drains every microtask, however deep.
      if (this.pending > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (stop()) break;
    }
  }
}
