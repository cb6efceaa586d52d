/**
 * The only room allowed to read the wall clock or arm real timers. Everything else takes a
 * Clock, so chaos and simulation tests can drive time themselves.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Unix milliseconds. */
  now(): number;
  /** Monotonic milliseconds, for measuring durations. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A clock whose time only moves when told: for pure-function tests and simulations. */
export class ManualClock implements Clock {
  #now: number;
  #mono = 0;
  #timers: { at: number; fn: () => void; cancelled: boolean }[] = [];

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const t = { at: this.#mono + ms, fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.#mono + ms;
    for (;;) {
      const due = this.#timers
        .filter((t) => !t.cancelled && t.at <= target)
        .sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now += due.at - this.#mono;
      this.#mono = due.at;
      due.fn();
    }
    this.#now += target - this.#mono;
    this.#mono = target;
  }
}

/** What parseInstant accepts: a date, or a date and time (exported for the JSON Schemas). */
export const INSTANT_PATTERN = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Parses an ISO date or date-time ("2027-12-31", "2027-01-31T10:00", "2027-01-31T00:00:00+02:00")
 * to unix ms. Without a zone it is UTC, never the host's local time: a policy's `expires` must
 * mean the same instant on the signer's laptop and on every node. A calendar date that does not
 * exist (2027-02-30) is refused, not rolled over into the next month.
 */
export function parseInstant(text: string): number | undefined {
  if (!INSTANT_PATTERN.test(text)) return undefined;
  const [, y, mo, d] = /^(\d{4})-(\d{2})-(\d{2})/.exec(text)!.map(Number) as [number, number, number, number];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  let iso = text.length === 10 ? `${text}T00:00:00Z` : text.replace(' ', 'T');
  if (!/(Z|[+-]\d{2}:?\d{2})$/.test(iso)) iso += 'Z';
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

export function formatInstant(ms: number): string {
  return new Date(ms).toISOString();
}
