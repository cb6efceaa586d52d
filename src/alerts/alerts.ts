/**
 * Alerts: conditions are raised and resolved by key; each change becomes an event that is
 * queued durably (in the store) for every sink and delivered with retry and backoff, so
 * none is lost across restarts or while a receiver is down. A condition that clears sends
 * `resolve`. Sinks: log, generic webhook, PagerDuty Events API v2.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { Store } from '../store/store.js';
import { escapeDeep, escapeText } from '../wire/text.js';

export const ALERT_CLASSES = [
  'equivocation', 'forged-policy', 'policy-expired', 'policy-expiring', 'drift-repaired', 'apply-failed',
  'lockout-revert', 'unexpected-listener', 'exposed-port', 'node-silent', 'peer-penalised',
  'store-corrupt', 'trust-state-damaged', 'policy-lost', 'root-chain-short', 'stale-root-signature', 'root-expired', 'root-expiring',
  'node-revoked', 'policy-stale', 'node-lagging', 'policy-file-rejected',
  'unadmitted-peers', 'duplicate-identity',
  'rollout-halted',
] as const;
export type AlertClass = (typeof ALERT_CLASSES)[number];
export type Severity = 'critical' | 'error' | 'warning' | 'info';

export interface AlertEvent {
  action: 'trigger' | 'resolve';
  dedupKey: string;
  class: AlertClass;
  severity: Severity;
  summary: string;
  source: string;
  details: Record<string, unknown>;
  time: number;
}

export type SinkConfig =
  | { type: 'log' }
  | { type: 'webhook'; url: string; headers?: Record<string, string> }
  | { type: 'pagerduty'; url: string; routingKey?: string; routingKeyFile?: string };

interface Queued {
  sink: string;
  event: AlertEvent;
  attempts: number;
  nextAt: number;
  /** Answers that refused the event itself (HTTP 4xx other than 408/429). */
  refused?: number;
}

/**
 * How many times a receiver may refuse an event (HTTP 4xx: a bad routing key, a malformed
 * event) before it is dropped. Such an answer does not get better by waiting, but a few
 * attempts cover a key being fixed right then; retrying forever would hold back every later
 * event for the same condition.
 */
export const MAX_REFUSALS = 3;

/** A receiver's answer that is not a success, with its HTTP status. */
export class DeliveryError extends Error {
  readonly code = 'ERR_ALERT_DELIVERY';
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = 'DeliveryError';
  }

  /** 4xx except 408 (timeout) and 429 (rate limited): the receiver refuses this event. */
  get refused(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

interface OpenAlert {
  class: AlertClass;
  severity: Severity;
  summary: string;
  since: number;
}

export interface AlertEvents {
  event: [AlertEvent];
  delivered: [string, AlertEvent];
  /** Given up on: sink type, the event, and why (e.g. "HTTP 400"). */
  dropped: [string, AlertEvent, string];
}

const sinkId = (s: SinkConfig) => createHash('sha256').update(JSON.stringify(s)).digest('hex').slice(0, 12);

/** The PagerDuty Events API v2 body for an event. */
export function pagerDutyBody(routingKey: string, e: AlertEvent): Record<string, unknown> {
  if (e.action === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: escapeText(e.dedupKey) };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: escapeText(e.dedupKey),
    payload: {
      summary: escapeText(e.summary).slice(0, 1024),
      source: escapeText(e.source),
      severity: e.severity,
      component: 'picket',
      class: e.class,
      timestamp: new Date(e.time).toISOString(),
      custom_details: escapeDeep(e.details),
    },
  };
}

export class AlertManager extends EventEmitter<AlertEvents> {
  #open = new Map<string, OpenAlert>();
  #sinks: SinkConfig[];
  #timer: Timer | null = null;
  #seq = 0;
  #stopped = false;
  /** Aborts a delivery in flight when the manager stops; the pass it belongs to. */
  #abort = new AbortController();
  #pass: Promise<void> = Promise.resolve();
  #delivering = false;
  #ignoreBackoff = false;
  #again = false;

  constructor(private readonly o: { store: Store; clock: Clock; log: Logger; source: string; sinks: SinkConfig[]; timeoutMs?: number }) {
    super();
    this.#sinks = o.sinks;
  }

  async start(): Promise<void> {
    for (const [k, v] of await this.o.store.listJson<OpenAlert>('alert-open/')) this.#open.set(k.slice('alert-open/'.length), v);
    const q = await this.o.store.listJson<Queued>('alertq/');
    this.#seq = q.length ? Number(q[q.length - 1]![0].slice('alertq/'.length)) + 1 : 0;
    // After a restart, whatever is still queued is tried at once, whatever its backoff said.
    this.#ignoreBackoff = true;
    this.#schedule(0);
  }

  setSinks(sinks: SinkConfig[]): void {
    this.#sinks = sinks;
  }

  openAlerts(): ({ key: string } & OpenAlert)[] {
    return [...this.#open].map(([key, a]) => ({ key, ...a }));
  }

  openClasses(): AlertClass[] {
    return [...new Set([...this.#open.values()].map((a) => a.class))].sort();
  }

  isOpen(key: string): boolean {
    return this.#open.has(key);
  }

  /** Raises a condition; a condition already open is not sent again. */
  async raise(key: string, cls: AlertClass, severity: Severity, summary: string, details: Record<string, unknown> = {}): Promise<void> {
    // After stop() the store may be closed: a condition seen while shutting down is seen again
    // by the checks of the next start.
    if (this.#stopped || this.#open.has(key)) return;
    const now = this.o.clock.now();
    const alert = { class: cls, severity, summary: escapeText(summary), since: now };
    this.#open.set(key, alert);
    await this.o.store.putJson(`alert-open/${key}`, alert);
    await this.#enqueue({ action: 'trigger', dedupKey: key, class: cls, severity, summary, source: this.o.source, details, time: now });
  }

  /** Clears a condition: sends `resolve` for it (nothing if it was not open). */
  async resolve(key: string, summary = 'condition cleared'): Promise<void> {
    const a = this.#open.get(key);
    if (!a || this.#stopped) return;
    this.#open.delete(key);
    await this.o.store.delJson(`alert-open/${key}`);
    await this.#enqueue({ action: 'resolve', dedupKey: key, class: a.class, severity: a.severity, summary, source: this.o.source, details: {}, time: this.o.clock.now() });
  }

  /** Resolves every open alert of a class whose key is not in `keep` (for scans that re-list conditions). */
  async resolveClassExcept(cls: AlertClass, keep: Set<string>): Promise<void> {
    for (const [key, a] of [...this.#open]) if (a.class === cls && !keep.has(key)) await this.resolve(key);
  }

  async #enqueue(raw: AlertEvent): Promise<void> {
    // Summaries are built from this node's own words and validated identifiers (auditor.ts);
    // escaping here as well means no sink (log, webhook, PagerDuty) ever carries a control
    // character, whatever a future caller interpolates.
    const event: AlertEvent = { ...raw, dedupKey: escapeText(raw.dedupKey), summary: escapeText(raw.summary), details: escapeDeep(raw.details) };
    this.emit('event', event);
    for (const s of this.#sinks) {
      const item: Queued = { sink: sinkId(s), event, attempts: 0, nextAt: 0 };
      await this.o.store.putJson(`alertq/${String(this.#seq++).padStart(16, '0')}`, item);
    }
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.o.clock.setTimeout(() => {
      this.deliver().catch((e: unknown) => this.o.log.warn({ err: (e as Error).message }, 'alert delivery pass failed; queued alerts stay queued'));
    }, ms);
  }

  /**
   * Delivers due queue items in order; failed ones back off (1 s doubling to 5 min). Order
   * holds per sink and dedup key: while an event waits, later events for the same condition
   * wait behind it (a resolve sent before its trigger would leave the incident open).
   */
  deliver(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#delivering) {
      this.#again = true; // enqueued during a pass: run another pass right after
      return Promise.resolve();
    }
    this.#pass = this.#deliverPass();
    return this.#pass;
  }

  async #deliverPass(): Promise<void> {
    this.#delivering = true;
    this.#again = false;
    let next = Infinity;
    try {
      const now = this.o.clock.now();
      const ignoreBackoff = this.#ignoreBackoff;
      this.#ignoreBackoff = false;
      const byId = new Map(this.#sinks.map((s) => [sinkId(s), s]));
      const waiting = new Set<string>(); // sink + dedup key with an earlier event still queued
      for (const [key, item] of await this.o.store.listJson<Queued>('alertq/')) {
        const sink = byId.get(item.sink);
        if (!sink) { await this.o.store.delJson(key); continue; } // its sink was removed from config
        const lane = `${item.sink}\0${item.event.dedupKey}`;
        if (this.#stopped) break; // the queue is durable: the next start delivers the rest
        if (waiting.has(lane)) continue; // the earlier event's backoff decides when this lane moves
        if (item.nextAt > now && !ignoreBackoff) {
          waiting.add(lane);
          next = Math.min(next, item.nextAt - now);
          continue;
        }
        try {
          await this.#send(sink, item.event);
          await this.o.store.delJson(key);
          this.emit('delivered', sink.type, item.event);
        } catch (e) {
          if (this.#stopped) break; // aborted by stop(): the item stays queued as it was
          item.attempts++;
          if (e instanceof DeliveryError && e.refused) item.refused = (item.refused ?? 0) + 1;
          if ((item.refused ?? 0) >= MAX_REFUSALS) {
            await this.o.store.delJson(key);
            this.o.log.error({ sink: sink.type, url: sink.type === 'log' ? undefined : sink.url, alert: item.event.class, action: item.event.action, dedupKey: item.event.dedupKey, attempts: item.attempts },
              `alert dropped: the ${sink.type} receiver refused it ${item.refused} times (${(e as Error).message}); check its URL and routing key`);
            this.emit('dropped', sink.type, item.event, (e as Error).message);
            continue;
          }
          const backoff = Math.min(300_000, 1000 * 2 ** Math.min(item.attempts - 1, 9));
          item.nextAt = now + backoff;
          await this.o.store.putJson(key, item);
          waiting.add(lane);
          next = Math.min(next, backoff);
          this.o.log.warn({ sink: sink.type, attempts: item.attempts, err: (e as Error).message }, 'alert delivery failed; will retry');
        }
      }
    } finally {
      this.#delivering = false;
    }
    if (this.#again) this.#schedule(0);
    else if (next < Infinity) this.#schedule(next);
  }

  async #send(sink: SinkConfig, e: AlertEvent): Promise<void> {
    if (sink.type === 'log') {
      this.o.log[e.action === 'trigger' ? 'warn' : 'info']({ alert: e.class, action: e.action, dedupKey: e.dedupKey, severity: e.severity, details: e.details }, e.summary);
      return;
    }
    const body = sink.type === 'pagerduty' ? pagerDutyBody(routingKey(sink), e) : { ...e, time: new Date(e.time).toISOString() };
    const res = await fetch(sink.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(sink.type === 'webhook' ? sink.headers : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs ?? 10_000), this.#abort.signal]),
    });
    if (res.status < 200 || res.status >= 300) throw new DeliveryError(res.status);
  }

  /**
   * Stops delivery: a request in flight is aborted and the pass it belongs to has finished when
   * this returns, so the owner may close the store right after. What was not delivered stays
   * in the durable queue for the next start.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#abort.abort();
    await this.#pass.catch(() => {});
  }
}

function routingKey(s: Extract<SinkConfig, { type: 'pagerduty' }>): string {
  if (s.routingKey) return s.routingKey;
  return readFileSync(s.routingKeyFile!, 'utf8').trim();
}
