/**
 * Chaos scenarios on in-process clusters of real agents. Each states its liveness bound;
 * every one ends with the safety checker over the whole history. Seeded: a failure prints
 * the seed, CHAOS_SEED=<seed> npm run test:chaos replays it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Chaos, SEED } from './harness.js';
import { Byzantine } from './byzantine.js';
import { Cluster, until } from '../helpers/cluster.js';
import { generateSigningKey } from '../../src/trust/keys.js';
import { encodeEnvelope, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { encodeRoot } from '../../src/trust/root.js';
import { rootDoc } from '../helpers/trust.js';

let chaos: Chaos | undefined;
const byz: Byzantine[] = [];
afterEach(async () => {
  await Promise.all(byz.splice(0).map((b) => b.stop()));
  await chaos?.destroy();
  chaos = undefined;
});

console.log(`chaos seed: ${SEED}`);
const DAY = 86_400_000;

async function scenario(name: string, n: number, opts: Parameters<typeof Chaos.create>[2] = {}): Promise<Chaos> {
  chaos = await Chaos.create(name, n, { minPeers: 3, bootstrapCount: 2, ...opts });
  await chaos.cluster.startAll();
  return chaos;
}

describe('chaos', () => {
  it('50/50 partition with updates on both sides converges after heal (bound 10 s)', async () => {
    const c = await scenario('partition-50-50', 8);
    await c.publish(c.nodes[0]!, c.cluster.policy(1));
    await c.converge(1, 15_000);
    const [a, b] = [c.nodes.slice(0, 4), c.nodes.slice(4)];
    await c.cluster.partition(a, b);
    await c.publish(a[1]!, c.cluster.policy(2));
    await c.converge(2, 10_000, a);
    await c.publish(b[2]!, c.cluster.policy(3));
    await c.converge(3, 10_000, b);
    await c.publish(a[0]!, c.cluster.policy(4));
    await c.converge(4, 10_000, a);
    await c.cluster.heal();
    const ms = await c.converge(4, 10_000);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 10_000 });
  });

  it('a minority isolated for a long time catches up when healed (bound 10 s)', async () => {
    const c = await scenario('minority-isolated', 8);
    await c.publish(c.nodes[0]!, c.cluster.policy(1));
    await c.converge(1, 15_000);
    const minority = c.nodes.slice(6), majority = c.nodes.slice(0, 6);
    await c.cluster.partition(majority, minority);
    for (let v = 2; v <= 8; v++) await c.publish(majority[v % 6]!, c.cluster.policy(v));
    await c.converge(8, 10_000, majority);
    expect(minority.every((n) => c.cluster.versionOf(n) === 1)).toBe(true);
    await c.cluster.heal();
    const ms = await c.converge(8, 10_000);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 10_000 });
  });

  it('30% connection drop rate during a burst of 20 updates (bound 15 s after the storm)', async () => {
    const c = await scenario('flaky-30pct-burst', 8);
    await c.publish(c.nodes[0]!, c.cluster.policy(1));
    await c.converge(1, 15_000);
    c.flaky(0.3);
    for (let v = 2; v <= 21; v++) {
      await c.publish(c.nodes[c.random.int(8)]!, c.cluster.policy(v));
      await new Promise((r) => setTimeout(r, 50));
    }
    c.steady();
    const ms = await c.converge(21, 15_000);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 15_000 });
  });

  it('rolling crash and restart of every node during updates (bound 15 s)', async () => {
    const c = await scenario('rolling-restart', 6, { bootstrapCount: 3 });
    await c.publish(c.nodes[0]!, c.cluster.policy(1));
    await c.converge(1, 15_000);
    let v = 1;
    for (const n of c.nodes) {
      await c.crash(n);
      const via = c.cluster.running()[c.random.int(c.cluster.running().length)]!;
      await c.publish(via, c.cluster.policy(++v));
      await c.restart(n);
    }
    const ms = await c.converge(v, 15_000);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 15_000 });
  });

  it('a node offline for a week while the root key rotated twice catches up (bound 15 s)', async () => {
    const c = await scenario('offline-week-two-rotations', 5);
    const far = { expires: Date.now() + 60 * DAY };
    await c.publish(c.nodes[0]!, c.cluster.policy(1, { extra: far }));
    await c.converge(1, 15_000);
    const away = c.nodes[4]!;
    await c.crash(away);
    // Root v2: new root key k2 (signed by the old key and k2); root v3: k3 (signed by k2 and k3).
    const k2 = generateSigningKey(), k3 = generateSigningKey();
    const r2 = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(rootDoc([k2], 1, [k2], 1, 2, Date.now() + 365 * DAY)), [c.cluster.admin, k2]));
    expect((await c.nodes[0]!.agent!.engine.offer(r2, { kind: 'control' })).outcome).toBe('accepted');
    await until(() => c.cluster.running().every((n) => n.agent!.engine.root.root.version === 2), 10_000);
    c.cluster.signer = k2;
    await c.publish(c.nodes[1]!, c.cluster.policy(2, { extra: far }));
    await c.converge(2, 15_000);
    const r3 = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(rootDoc([k3], 1, [k3], 1, 3, Date.now() + 365 * DAY)), [k2, k3]));
    expect((await c.nodes[2]!.agent!.engine.offer(r3, { kind: 'control' })).outcome).toBe('accepted');
    await until(() => c.cluster.running().every((n) => n.agent!.engine.root.root.version === 3), 10_000);
    c.cluster.signer = k3;
    await c.publish(c.nodes[3]!, c.cluster.policy(3, { extra: far }));
    await c.converge(3, 15_000);
    expect(c.cluster.running().every((n) => n.agent!.engine.root.root.version === 3)).toBe(true);
    c.clockOf(away).offset = 7 * DAY; // it comes back a week later
    await c.restart(away);
    const ms = await c.converge(3, 15_000, [away]);
    expect(away.agent!.engine.root.root.version).toBe(3);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 15_000 });
  });

  it('a root rotation and a policy signed under the new root race through gossip (bound 10 s)', async () => {
    const c = await scenario('rotation-race', 6);
    await c.publish(c.nodes[0]!, c.cluster.policy(1));
    await c.converge(1, 15_000);
    const k2 = generateSigningKey();
    const r2 = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(rootDoc([k2], 1, [k2], 1, 2, Date.now() + 365 * DAY)), [c.cluster.admin, k2]));
    expect((await c.nodes[0]!.agent!.engine.offer(r2, { kind: 'control' })).outcome).toBe('accepted');
    c.cluster.signer = k2;
    // No wait: the policy may overtake the root; below-threshold triggers a sync that pulls it.
    expect(await c.publish(c.nodes[0]!, c.cluster.policy(2))).toBe('accepted');
    const ms = await c.converge(2, 10_000);
    expect(c.cluster.running().every((n) => n.agent!.engine.root.root.version === 2)).toBe(true);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 10_000 });
  });

  it('a byzantine third floods lies and replays; honest nodes converge and accept nothing forged (bound 15 s)', async () => {
    const c = await scenario('byzantine-third', 9, { bootstrapCount: 2 });
    const honest = c.nodes.slice(0, 6), liars = c.nodes.slice(6);
    // The liars are listed in the policy (valid identities) but run hostile code.
    await c.cluster.stop(liars[0]!); await c.cluster.stop(liars[1]!); await c.cluster.stop(liars[2]!);
    const old: Uint8Array[] = [];
    for (let v = 1; v <= 3; v++) { const s = c.signed(c.cluster.policy(v)); old.push(s); await honest[0]!.agent!.engine.offer(s, { kind: 'control' }); }
    await c.converge(3, 15_000, honest);
    for (const l of liars) {
      const b = await Byzantine.start(l.key, l.listen, 'test');
      byz.push(b);
      for (const h of honest.slice(0, 3)) await b.dial(h.agent!.mesh.listenAddrs()[0]!);
      b.flood(c.random, { old, equivocating: () => c.cluster.signed(c.cluster.policy(3, { extra: { rules: [] } })), template: c.cluster.policy(1) });
    }
    await new Promise((r) => setTimeout(r, 1500));
    for (let v = 4; v <= 8; v++) await c.publish(honest[v % 6]!, c.cluster.policy(v));
    const ms = await c.converge(8, 15_000, honest);
    expect(byz.reduce((a, b) => a + b.sent, 0)).toBeGreaterThan(50);
    const strikes = (await Promise.all(honest.map(Cluster.counters))).flatMap((c) => Object.values(c.strikes));
    expect(strikes.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 15_000 });
  });

  it('restart with every bootstrap peer down rejoins through the peer cache (bound 10 s)', async () => {
    const c = await scenario('bootstrap-down', 5, { bootstrapCount: 1 });
    await c.publish(c.nodes[0]!, c.cluster.policy(1));
    await c.converge(1, 15_000);
    const n = c.nodes[3]!;
    await until(() => n.agent!.mesh.connectedPeers().length >= 2, 10_000);
    await c.crash(n);
    await c.crash(c.nodes[0]!);
    await c.publish(c.nodes[1]!, c.cluster.policy(2));
    await c.restart(n, [`${c.nodes[0]!.listen}/p2p/${c.nodes[0]!.peerId}`]);
    const ms = await c.converge(2, 10_000);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 10_000 });
  });

  it('a node added to the policy joins mid-storm; a node removed is cut off (bound 10 s)', async () => {
    const c = await scenario('join-and-remove', 6);
    const newcomer = await c.cluster.addNode();
    const listed = c.nodes.slice(0, 6);
    await c.publish(c.nodes[0]!, c.cluster.policy(1, { nodes: listed }));
    await c.converge(1, 15_000);
    c.flaky(0.1);
    await c.publish(c.nodes[1]!, c.cluster.policy(2, { nodes: [...listed, newcomer] }));
    await c.restart(newcomer);
    for (let v = 3; v <= 6; v++) await c.publish(c.nodes[v % 6]!, c.cluster.policy(v, { nodes: [...listed, newcomer] }));
    c.steady();
    const joined = await c.converge(6, 10_000);
    const removed = c.nodes[5]!;
    const remaining = c.nodes.filter((x) => x !== removed);
    const t0 = performance.now();
    await c.publish(c.nodes[0]!, c.cluster.policy(7, { nodes: remaining }));
    await c.converge(7, 10_000, remaining);
    await until(() => remaining.every((x) => !x.agent!.mesh.connectedPeers().includes(removed.peerId)), 10_000);
    const cutMs = performance.now() - t0;
    expect(remaining.map((x) => `${x.name}:${x.backend.current!.blocked.v4.length}`)).toEqual(remaining.map((x) => `${x.name}:1`));
    c.checkSafety();
    await c.report({ timeToConvergeMs: Math.max(joined, cutMs), bound: 10_000 });
  });
});
