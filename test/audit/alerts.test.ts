import { afterEach, describe, expect, it } from 'vitest';
import { AlertManager, MAX_REFUSALS, pagerDutyBody } from '../../src/alerts/alerts.js';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/runtime/logger.js';
import type { Clock } from '../../src/runtime/clock.js';
import { Store } from '../../src/store/store.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { EventsReceiver } from '../helpers/receiver.js';
import { tempDir } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';

const t = tempDir('picket-alerts-');
const receivers: EventsReceiver[] = [];
afterEach(async () => { await Promise.all(receivers.splice(0).map((r) => r.stop())); });

async function manager(dir: string, url: string, clock: ManualClock) {
  const store = await Store.open(t.path(dir));
  const m = new AlertManager({ store, clock, log: silentLogger, source: 'node-a', sinks: [{ type: 'pagerduty', url, routingKey: 'R0UTING' }] });
  await m.start();
  return { store, m };
}

describe('alert delivery', () => {
  it('formats PagerDuty Events API v2 triggers and resolves', () => {
    const e = { action: 'trigger' as const, dedupKey: 'drift-repaired', class: 'drift-repaired' as const, severity: 'warning' as const, summary: 's', source: 'n', details: { a: 1 }, time: 0 };
    expect(pagerDutyBody('K', e)).toEqual({
      routing_key: 'K', event_action: 'trigger', dedup_key: 'drift-repaired',
      payload: { summary: 's', source: 'n', severity: 'warning', component: 'picket', class: 'drift-repaired', timestamp: '1970-01-01T00:00:00.000Z', custom_details: { a: 1 } },
    });
    expect(pagerDutyBody('K', { ...e, action: 'resolve' })).toEqual({ routing_key: 'K', event_action: 'resolve', dedup_key: 'drift-repaired' });
  });

  it('a receiver that is down for a while gets every alert exactly once when it comes back', async () => {
    const rx = await new EventsReceiver().start();
    receivers.push(rx);
    rx.down = true;
    const clock = new ManualClock(Date.now());
    const { store, m } = await manager('down', rx.url, clock);
    await m.raise('a', 'drift-repaired', 'warning', 'A');
    await m.raise('b', 'apply-failed', 'critical', 'B');
    await m.resolve('a');
    await m.deliver(); // the injected clock does not move by itself: deliver as its timer would
    expect(rx.attempts).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) { clock.advance(60_000); await m.deliver(); }
    expect(rx.events).toHaveLength(0);
    rx.down = false;
    clock.advance(300_000);
    await m.deliver();
    await until(() => rx.events.length === 3, 5000);
    clock.advance(300_000);
    await m.deliver();
    expect(rx.events.map((e) => `${e.event_action}:${e.dedup_key}`)).toEqual(['trigger:a', 'trigger:b', 'resolve:a']);
    await m.stop();
    await store.close();
  });

  it('stopping while a receiver hangs mid-delivery waits for nothing, never touches the closed store, and keeps the event', async () => {
    const rx = await new EventsReceiver().start();
    receivers.push(rx);
    rx.hang = true;
    const clock = new ManualClock(Date.now());
    const { store, m } = await manager('hang', rx.url, clock);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await m.raise('a', 'drift-repaired', 'warning', 'A');
      const pass = m.deliver();
      await until(() => rx.attempts > 0, 5000);
      await m.stop(); // returns once the pass in flight has given up
      await store.close();
      await pass;
      // Late callers (a check finishing while the agent shuts down) do not reach the closed store.
      await m.raise('b', 'apply-failed', 'critical', 'B');
      await m.resolve('a');
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    // The event was not lost: a restarted manager delivers it.
    rx.hang = false;
    const again = await manager('hang', rx.url, clock);
    await again.m.deliver();
    await until(() => rx.events.length === 1, 5000);
    await again.m.stop();
    await again.store.close();
  });

  it('alerts still queued when the agent stops are delivered after it restarts', async () => {
    const rx = await new EventsReceiver().start();
    receivers.push(rx);
    rx.down = true;
    const clock = new ManualClock(Date.now());
    const first = await manager('restart', rx.url, clock);
    await first.m.raise('equivocation/policy/v3', 'equivocation', 'critical', 'two v3');
    await first.m.deliver();
    expect(rx.attempts).toBe(1);
    await first.m.stop();
    await first.store.close();
    rx.down = false;
    const second = await manager('restart', rx.url, clock);
    clock.advance(0); // start() schedules a delivery right away
    await until(() => rx.events.length === 1, 5000);
    expect(rx.events[0]).toMatchObject({ event_action: 'trigger', dedup_key: 'equivocation/policy/v3', payload: { class: 'equivocation', severity: 'critical' } });
    // The condition is still open after the restart: resolving it sends the resolve.
    await second.m.resolve('equivocation/policy/v3');
    clock.advance(0);
    await until(() => rx.events.length === 2, 5000);
    await second.m.stop();
    await second.store.close();
  });

  /**
   * A clock whose timers never fire: each test pass is an explicit `await deliver()`, so what
   * a pass sends does not depend on how fast this machine runs the background timer.
   */
  function stillClock(start: number): Clock & { t: number } {
    const c = { t: start, now: () => c.t, monotonic: () => c.t, setTimeout: () => ({ cancel: () => undefined }), sleep: async () => undefined };
    return c;
  }

  it('a resolve queued while its trigger backs off is sent after the trigger, not before', async () => {
    const rx = await new EventsReceiver().start();
    receivers.push(rx);
    rx.failTriggers.set('drift', 2);
    const clock = stillClock(Date.now());
    const store = await Store.open(t.path('order'));
    const m = new AlertManager({ store, clock, log: silentLogger, source: 'node-a', sinks: [{ type: 'pagerduty', url: rx.url, routingKey: 'R0UTING' }] });
    await m.start();
    await m.raise('drift', 'drift-repaired', 'warning', 'drift');
    await m.deliver(); // trigger refused (503): backs off 1 s
    await m.resolve('drift');
    await m.deliver(); // the resolve is due, but waits behind its trigger
    await m.raise('other', 'apply-failed', 'critical', 'another condition');
    await m.deliver(); // another dedup key is not held back
    expect(rx.events.map((e) => `${e.event_action}:${e.dedup_key}`)).toEqual(['trigger:other']);
    clock.t += 1000;
    await m.deliver(); // trigger refused again: backs off 2 s
    clock.t += 2000;
    await m.deliver();
    expect(rx.events.map((e) => `${e.event_action}:${e.dedup_key}`)).toEqual(['trigger:other', 'trigger:drift', 'resolve:drift']);
    expect(rx.attempts).toBe(5);
    await m.stop();
    await store.close();
  });

  it('a receiver that refuses an event (HTTP 400, bad routing key) is retried a bounded number of times, then the event is dropped with one error line', async () => {
    const rx = await new EventsReceiver().start();
    receivers.push(rx);
    rx.refuseWith = 400;
    const clock = stillClock(Date.now());
    const lines: { level: number; msg: string }[] = [];
    const log = createLogger({ level: 'info', pretty: false, destination: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string }); cb(); } }) });
    const store = await Store.open(t.path('refused'));
    const m = new AlertManager({ store, clock, log, source: 'node-a', sinks: [{ type: 'pagerduty', url: rx.url, routingKey: 'bad-key' }] });
    const dropped: string[] = [];
    m.on('dropped', (sink, e, why) => dropped.push(`${sink}:${e.action}:${e.dedupKey}:${why}`));
    await m.start();
    await m.raise('x', 'apply-failed', 'critical', 'x');
    await m.resolve('x');
    for (let i = 0; i < 12; i++) { clock.t += 300_000; await m.deliver(); }
    // Each event was tried MAX_REFUSALS times, then given up on; nothing is left to retry.
    expect(rx.attempts).toBe(2 * MAX_REFUSALS);
    expect(dropped).toEqual(['pagerduty:trigger:x:HTTP 400', 'pagerduty:resolve:x:HTTP 400']);
    expect(await store.listJson('alertq/')).toEqual([]);
    const errors = lines.filter((l) => l.level >= 50);
    expect(errors).toHaveLength(2); // one per event
    expect(errors[0]!.msg).toMatch(/alert dropped: the pagerduty receiver refused it 3 times \(HTTP 400\); check its URL and routing key/);
    // A rate limit (429) is not a refusal: it keeps being retried.
    rx.refuseWith = 429;
    await m.raise('y', 'apply-failed', 'critical', 'y');
    for (let i = 0; i < 6; i++) { clock.t += 300_000; await m.deliver(); }
    expect(dropped).toHaveLength(2);
    expect(await store.listJson('alertq/')).toHaveLength(1);
    await m.stop();
    await store.close();
  });
});
