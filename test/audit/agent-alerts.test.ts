/** Alert conditions end to end on real agents: trigger, then resolve when the condition clears. */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { Cluster, until } from '../helpers/cluster.js';
import { EventsReceiver } from '../helpers/receiver.js';

let cluster: Cluster | undefined;
let rx: EventsReceiver | undefined;
afterEach(async () => {
  await cluster?.destroy();
  await rx?.stop();
  cluster = undefined;
});

async function setup(n: number, audit: Record<string, unknown> = {}) {
  rx = await new EventsReceiver().start();
  cluster = await Cluster.create(n, {
    overrides: {
      alerts: [{ type: 'pagerduty', url: rx.url, routingKey: 'TEST-KEY' }],
      audit: { probeInterval: 0, statusInterval: '300ms', interval: '1h', silentAfter: '1s', ...audit },
      enforcement: { backend: 'memory', driftInterval: 0 },
    },
  });
  await cluster.startAll();
  await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
  await cluster.converged(1);
  return cluster;
}

describe('alerts from real agents', () => {
  it('equivocation: a second, different v2 triggers a critical alert; v3 resolves it', async () => {
    const c = await setup(3);
    await c.publish(c.nodes[0]!, c.policy(2));
    await c.converged(2);
    const r = await c.nodes[1]!.agent!.engine.offer(c.signed(c.policy(2, { extra: { rules: [] } })), { kind: 'control' });
    expect(r.outcome).toBe('equivocation');
    await until(() => rx!.of('equivocation/policy/v2', 'trigger').length >= 1, 10_000);
    const e = rx!.of('equivocation/policy/v2', 'trigger')[0]!;
    expect(e).toMatchObject({ routing_key: 'TEST-KEY', event_action: 'trigger', payload: { severity: 'critical', component: 'picket', class: 'equivocation', source: c.nodes[1]!.peerId } });
    expect((e.payload as { summary: string }).summary).toMatch(/signing key was misused/);
    await c.publish(c.nodes[0]!, c.policy(3));
    await until(() => rx!.of('equivocation/policy/v2', 'resolve').length >= 1, 10_000);
  });

  it('drift: a tampered ruleset triggers drift-repaired; a clean read-back resolves it', async () => {
    const c = await setup(2);
    const n = c.nodes[0]!;
    n.backend.tampered = 'someone edited the table';
    const what = await n.agent!.engine.checkDrift();
    expect(what).toBeTruthy();
    await until(() => rx!.of('drift-repaired', 'trigger').length === 1, 10_000);
    const other = c.nodes[1]!.agent!;
    await until(() => other.meshView().summary.includes('1 drifted'), 10_000, () => other.meshView().summary);
    await n.agent!.auditor.driftChecked(await n.agent!.engine.checkDrift());
    await until(() => rx!.of('drift-repaired', 'resolve').length === 1, 10_000);
    // The state and the fleet count describe the present: both clear after a clean read-back.
    expect(n.agent!.status().enforcement.state).toBe('ok');
    await until(() => !other.meshView().summary.includes('drifted'), 10_000, () => other.meshView().summary);
  });

  it('revoked: a node handed a policy that no longer lists it reports revoked and alerts; listed again resolves', async () => {
    const c = await setup(3);
    const gone = c.nodes[2]!;
    const v2 = c.policy(2, { nodes: c.nodes.slice(0, 2) });
    await c.publish(c.nodes[0]!, v2);
    await c.converged(2, 10_000, c.nodes.slice(0, 2));
    // The mesh cuts the removed node off, but gossip may still have reached it first (a verified
    // policy is forwarded before it is persisted); the decommission runbook hands it the policy
    // directly: either way it holds v2 now.
    const r = await gone.agent!.engine.offer(c.signed(v2), { kind: 'control' });
    expect(['accepted', 'duplicate']).toContain(r.outcome);
    await until(() => gone.agent!.status().enforcement.state === 'revoked', 10_000, () => JSON.stringify(gone.agent!.status().enforcement));
    expect(gone.agent!.auditor.statusNow().enforcement).toBe('revoked');
    await until(() => rx!.of(`node-revoked`, 'trigger').length === 1, 10_000);
    const e = rx!.of('node-revoked', 'trigger')[0]!;
    expect(e).toMatchObject({ payload: { class: 'node-revoked', source: gone.peerId } });
    expect((e.payload as { summary: string }).summary).toMatch(/removed from policy v2/);
    await gone.agent!.engine.offer(c.signed(c.policy(3)), { kind: 'control' });
    await until(() => rx!.of('node-revoked', 'resolve').length === 1, 10_000);
    expect(gone.agent!.status().enforcement.state).toBe('ok');
  });

  it('stale: a policy older than issuedAt + settings.maxAge raises policy-stale; a fresh version resolves it', async () => {
    const c = await setup(2);
    const a = c.nodes[0]!.agent!;
    const old = c.policy(2, { extra: { issuedAt: Date.now() - 3 * 86400e3, settings: { onExpiry: 'keep', maxAge: 86400e3 } } });
    await c.publish(c.nodes[0]!, old);
    await c.converged(2);
    await a.auditor.audit();
    await until(() => rx!.of('policy-stale', 'trigger').length === 1, 10_000);
    expect((rx!.of('policy-stale', 'trigger')[0]!.payload as { summary: string }).summary).toMatch(/Policy v2 is stale .*still enforcing it/);
    expect(a.status().enforcement.state).toBe('ok'); // onExpiry: keep never fails open
    await c.publish(c.nodes[0]!, c.policy(3, { extra: { settings: { onExpiry: 'keep', maxAge: 86400e3 } } }));
    await c.converged(3);
    await a.auditor.audit();
    await until(() => rx!.of('policy-stale', 'resolve').length === 1, 10_000);
  });

  it('lagging: a node that sees a newer version in statuses but cannot apply it for longer than lagAfter alerts; catching up resolves', async () => {
    const c = await setup(2, { lagAfter: '1ms' });
    const [a, b] = [c.nodes[0]!, c.nodes[1]!];
    b.backend.failNext = 1_000_000; // every apply on b fails from now on
    await c.publish(a, c.policy(2));
    await until(() => b.agent!.auditor.statusNow().policyVersion === 2 && b.agent!.enforcer.status.state === 'failed', 10_000);
    expect(b.agent!.enforcer.status.policyVersion).toBe(1);
    // Audits one after another (each walks /proc), until the trigger reaches the receiver.
    const t0 = Date.now();
    while (rx!.of('node-lagging', 'trigger').length === 0) {
      if (Date.now() - t0 > 20_000) throw new Error(`no node-lagging: ${JSON.stringify([b.agent!.meshView().nodes.map((n) => [n.name, n.policyVersion]), b.agent!.alerts.openAlerts().map((x) => x.key)])}`);
      await b.agent!.auditor.audit();
      await new Promise((r) => setTimeout(r, 50));
    }
    const e = rx!.of('node-lagging', 'trigger')[0]!;
    expect(e).toMatchObject({ payload: { class: 'node-lagging', source: b.peerId } });
    expect((e.payload as { summary: string }).summary).toMatch(/reports policy v2 .*still enforces v1; it holds v2 but enforcement is failed/);
    b.backend.failNext = 0;
    await b.agent!.engine.enforceNow();
    await b.agent!.auditor.audit();
    await until(() => rx!.of('node-lagging', 'resolve').length === 1, 10_000);
  });

  it('unexpected listener: a socket on a port the policy does not open triggers; closing it resolves', async () => {
    const c = await setup(2);
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', () => r()));
    const port = (server.address() as { port: number }).port;
    const a = c.nodes[0]!.agent!;
    await a.auditor.audit();
    await until(() => rx!.of(`unexpected-listener/tcp/${port}`, 'trigger').length === 1, 10_000);
    expect((rx!.of(`unexpected-listener/tcp/${port}`)[0]!.payload as { summary: string }).summary).toContain(`tcp/${port}`);
    await new Promise<void>((r) => server.close(() => r()));
    await a.auditor.audit();
    await until(() => rx!.of(`unexpected-listener/tcp/${port}`, 'resolve').length === 1, 10_000);
  });

  it('silent node: a stopped node is shown silent and alerted; its return resolves the alert', async () => {
    const c = await setup(3);
    const watcher = c.nodes[0]!.agent!;
    await until(() => watcher.meshView().nodes.every((n) => n.policyVersion === 1 && !n.silent), 10_000, () => JSON.stringify(watcher.meshView()));
    expect(watcher.meshView().summary).toBe('3/3 on v1');
    const gone = c.nodes[2]!;
    await c.stop(gone);
    await until(() => watcher.meshView().nodes.find((n) => n.peerId === gone.peerId)!.silent, 10_000);
    await watcher.auditor.audit();
    await until(() => rx!.of(`node-silent/${gone.peerId}`, 'trigger').length === 1, 10_000, () => JSON.stringify([watcher.alerts.openAlerts(), rx!.events.map((e) => e.dedup_key)]));
    expect(watcher.meshView().summary).toBe('2/3 on v1, 1 silent');
    await c.start(gone);
    await until(() => rx!.of(`node-silent/${gone.peerId}`, 'resolve').length === 1, 15_000);
  });
});
