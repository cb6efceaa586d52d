/**
 * Staged rollout on in-process clusters of real agents (real libp2p, LevelDB, signed statuses;
 * memory backends). Time is the injected clock: `after` is ten minutes and never passes by
 * itself, so "held" is observed without racing a timer; the test moves the clocks forward.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { SkewedClock } from '../chaos/harness.js';
import type { Policy } from '../../src/policy/model.js';
import { formatPrefix } from '../../src/policy/ip.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const MIN = 60_000;

async function fleet(n = 4): Promise<{ c: Cluster; clocks: Map<string, SkewedClock> }> {
  const clocks = new Map<string, SkewedClock>();
  const c = await Cluster.create(n, { minPeers: 3, overrides: { audit: { probeInterval: 0, statusInterval: '2s' } } });
  c.deps = (spec) => {
    if (!clocks.has(spec.name)) clocks.set(spec.name, new SkewedClock());
    return { clock: clocks.get(spec.name)! };
  };
  cluster = c;
  await c.startAll();
  await c.publish(c.nodes[0]!, c.policy(1));
  await c.converged(1);
  return { c, clocks };
}

/** v2 staged: n1 is the canary, everyone else waits ten minutes and for n1 to be healthy. */
const staged = (c: Cluster, version: number, extra: Partial<Policy> = {}): Policy => c.policy(version, {
  extra: { rollout: { stages: [{ select: 'node:n1' }, { select: 'any', after: 10 * MIN }] }, ...extra },
});

const enforcing = (n: NodeSpec) => n.agent!.enforcer.status.policyVersion;
const holds = (n: NodeSpec) => n.agent!.engine.current?.policy.version;
/** `viewer`'s auditor holds a status from `of` saying it enforces `version` (or failed it). */
const sees = (viewer: NodeSpec, of: NodeSpec, version: number, enforcement = 'ok') => viewer.agent!.auditor.rolloutHealth()
  .some((r) => r.peerId === of.peerId && r.policyVersion === version && !r.held && r.enforcement === enforcement);

describe('staged rollout (in-process cluster)', () => {
  it('canary healthy: the rest hold their previous version until the delay has passed, then all switch', async () => {
    const { c, clocks } = await fleet();
    const [n0, canary, ...rest] = c.nodes as [NodeSpec, NodeSpec, ...NodeSpec[]];
    const later = [n0, ...rest];
    await c.publish(n0, staged(c, 2));
    // Every node holds v2 at once (it is forwarded and stored), the canary enforces it, and
    // every later node has seen the canary's signed status saying so.
    await until(() => c.nodes.every((n) => holds(n) === 2) && enforcing(canary) === 2 && later.every((n) => sees(n, canary, 2)), 20_000,
      () => c.nodes.map((n) => `${n.name}: holds v${holds(n)} enforces v${enforcing(n)}`).join(', '));
    for (const n of later) {
      expect(enforcing(n)).toBe(1);
      expect(n.agent!.engine.rollout?.decision).toMatchObject({ kind: 'hold', stage: 2, why: 'waiting' });
      expect(n.agent!.auditor.statusNow()).toMatchObject({ policyVersion: 2, rolloutStage: 2, rolloutEnforcing: 1 });
      expect(n.backend.current?.policy?.version).toBe(1);
    }
    expect(canary.agent!.auditor.statusNow()).toMatchObject({ policyVersion: 2, rolloutStage: 1 });
    expect(canary.agent!.auditor.statusNow().rolloutEnforcing).toBeUndefined();
    // A held node is not "lagging": it waits by design.
    expect(n0.agent!.alerts.isOpen('node-lagging')).toBe(false);
    const mesh = n0.agent!.meshView();
    expect(mesh.rollout).toMatchObject({ version: 2, enforcing: 1, stage: 2, state: 'waiting' });
    expect(mesh.summary).toMatch(/held back by its rollout/);
    // Ten minutes later (by the nodes' own clocks), the next status from the canary lets them go.
    for (const n of later) clocks.get(n.name)!.offset = 11 * MIN;
    await c.converged(2, 20_000);
    for (const n of later) {
      expect(n.agent!.engine.rollout?.decision).toMatchObject({ kind: 'enforce', why: 'stage-reached' });
      expect(n.agent!.auditor.statusNow().rolloutEnforcing).toBeUndefined();
    }
  });

  it('canary fails to apply: the rollout halts fleet-wide and the rest never switch; the next version supersedes it', async () => {
    const { c, clocks } = await fleet();
    const [n0, canary, ...rest] = c.nodes as [NodeSpec, NodeSpec, ...NodeSpec[]];
    const later = [n0, ...rest];
    canary.backend.failNext = 1_000_000; // every apply on the canary fails from now on
    await c.publish(n0, staged(c, 2));
    await until(() => later.every((n) => n.agent!.engine.rollout?.decision.kind === 'halted'), 20_000,
      () => later.map((n) => `${n.name}: ${n.agent!.engine.rollout?.summary ?? 'no decision'}`).join(', '));
    for (const n of later) {
      expect(n.agent!.engine.rollout?.decision).toMatchObject({ kind: 'halted', failed: canary.peerId, reason: 'its apply failed' });
      await until(() => n.agent!.alerts.isOpen('rollout-halted'), 5000);
    }
    // Time passes (by every later node's clock) and statuses keep arriving: still nobody switches.
    const skewedAt = new Map(later.map((n) => [n.name, 0]));
    for (const n of later) { clocks.get(n.name)!.offset = 11 * MIN; skewedAt.set(n.name, clocks.get(n.name)!.now()); }
    await until(() => later.every((n) => n.agent!.auditor.fleet().nodes.some((r) => r.peerId === canary.peerId && r.lastSeen !== null && Date.parse(r.lastSeen) >= skewedAt.get(n.name)!)), 20_000);
    for (const n of later) {
      await n.agent!.engine.enforceNow(); // decide again now, deterministically
      expect(enforcing(n)).toBe(1);
      expect(n.backend.current?.policy?.version).toBe(1);
      expect(n.agent!.engine.rollout?.decision.kind).toBe('halted');
    }
    // Even after the canary recovers: a halted version stays halted until a newer one.
    canary.backend.failNext = 0;
    await canary.agent!.engine.enforceNow();
    await until(() => later.every((n) => sees(n, canary, 2)), 20_000);
    for (const n of later) {
      await n.agent!.engine.enforceNow();
      expect(enforcing(n)).toBe(1);
    }
    await c.publish(n0, c.policy(3));
    await c.converged(3, 20_000);
    await until(() => later.every((n) => !n.agent!.alerts.isOpen('rollout-halted')), 5000);
  });

  it('a held node that restarts keeps enforcing its previous version (the version in force is persisted)', async () => {
    const { c } = await fleet(3);
    const [n0, canary, n2] = c.nodes as [NodeSpec, NodeSpec, NodeSpec];
    await c.publish(n0, staged(c, 2));
    await until(() => holds(n2) === 2 && enforcing(canary) === 2, 20_000);
    expect(enforcing(n2)).toBe(1);
    await c.stop(n2);
    await c.start(n2);
    expect(holds(n2)).toBe(2);
    expect(enforcing(n2)).toBe(1);
    expect(n2.backend.current?.policy?.version).toBe(1);
  });

  it('a rollout never delays a revocation: held nodes block a node the new version removes at once', async () => {
    const { c } = await fleet(4);
    const [n0, canary, n2] = c.nodes as [NodeSpec, NodeSpec, NodeSpec, NodeSpec];
    const addr = '10.99.0.4'; // the removed node's policy address (Cluster.policy)
    const blocks = (n: NodeSpec) => n.backend.current?.blocked.v4.map(formatPrefix).includes(addr) ?? false;
    const admits = (n: NodeSpec) => n.backend.current?.sets.some((s) => s.v4.map(formatPrefix).includes(addr)) ?? false;
    expect(blocks(n0)).toBe(false);
    expect(admits(n0)).toBe(true);
    await c.publish(n0, c.policy(2, { nodes: [n0, canary, n2], extra: { rollout: { stages: [{ select: 'node:n1' }, { select: 'any', after: 10 * MIN }] } } }));
    await until(() => [n0, n2].every((n) => holds(n) === 2 && blocks(n)), 20_000);
    for (const n of [n0, n2]) {
      expect(enforcing(n)).toBe(1); // still the previous version's rules…
      expect(admits(n)).toBe(false); // …without the removed node in any set
      expect(n.agent!.engine.rollout?.decision).toMatchObject({ kind: 'hold' });
    }
    await until(() => enforcing(canary) === 2, 20_000);
  });

  it('a status signed between accepting a version and applying it says pending, not the previous version\'s ok (a canary must not look healthy early)', async () => {
    const { c } = await fleet(2);
    const canary = c.nodes[1]!;
    canary.backend.failNext = 1; // its v2 apply will fail
    const r = await canary.agent!.engine.offer(c.signed(staged(c, 2)), { kind: 'control' });
    expect(r.outcome).toBe('accepted');
    // Persisted and held, not yet applied: the enforcer still reports v1 ok.
    expect(canary.agent!.engine.current?.policy.version).toBe(2);
    expect(canary.agent!.enforcer.status).toMatchObject({ policyVersion: 1, state: 'ok' });
    expect(canary.agent!.auditor.statusNow().enforcement).toBe('pending');
    await until(() => canary.agent!.enforcer.status.state === 'failed', 10_000);
    expect(canary.agent!.auditor.statusNow()).toMatchObject({ policyVersion: 2, enforcement: 'failed' });
  });
});
