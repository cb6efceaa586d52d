import { afterEach, describe, expect, it } from 'vitest';
import { AlertManager, pagerDutyBody } from '../../src/alerts/alerts.js';
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
});
