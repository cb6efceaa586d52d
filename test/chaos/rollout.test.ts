/**
 * Chaos: a staged rollout whose canary fails to apply, under flaky links and a crash of a
 * held node. The rest of the fleet must never enforce the staged version — not when their
 * clocks pass the stage's delay, not after a restart — and the next version supersedes the
 * halted one. Seeded (CHAOS_SEED replays); ends with the safety checker over the history.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Chaos, SEED, until } from './harness.js';

let chaos: Chaos | undefined;
afterEach(async () => {
  await chaos?.destroy();
  chaos = undefined;
});

console.log(`chaos seed: ${SEED}`);
const MIN = 60_000;

describe('chaos: staged rollout', () => {
  it('a canary fails to apply → the rest never switch, through flaky links, skewed clocks and a restart; the next version supersedes it (bound 15 s)', async () => {
    const c = (chaos = await Chaos.create('rollout-canary-fails', 6, { minPeers: 3, bootstrapCount: 2, overrides: { audit: { probeInterval: 0, statusInterval: '2s' } } }));
    await c.cluster.startAll();
    const [n0, canary, ...others] = c.nodes;
    const later = [n0!, ...others];
    await c.publish(n0!, c.cluster.policy(1));
    await c.converge(1, 15_000);

    canary!.backend.failNext = 1_000_000;
    c.flaky(0.1);
    await c.publish(others[2]!, c.cluster.policy(2, { extra: { rollout: { stages: [{ select: 'node:n1' }, { select: 'any', after: 10 * MIN, healthy: 100 }] } } }));
    await until(() => later.every((n) => n.agent?.engine.rollout?.decision.kind === 'halted'), 20_000,
      () => later.map((n) => `${n.name}: ${n.agent?.engine.rollout?.summary ?? '-'}`).join('; '));
    // Their clocks pass the delay (and one lags behind the others), a held node crashes and comes back.
    for (const n of later) c.clockOf(n).offset = 11 * MIN;
    c.clockOf(others[0]!).offset = 30 * MIN;
    await c.crash(others[1]!);
    await c.restart(others[1]!);
    await until(() => others[1]!.agent!.engine.rollout?.decision.kind === 'halted', 20_000);
    for (const n of later) await n.agent!.engine.enforceNow();
    c.steady();
    for (const n of later) {
      expect(n.agent!.engine.current?.policy.version).toBe(2);
      expect(n.agent!.enforcer.status.policyVersion).toBe(1);
    }

    canary!.backend.failNext = 0;
    await c.publish(n0!, c.cluster.policy(3));
    const ms = await c.converge(3, 15_000);
    // No node outside the first stage ever enforced v2, in the whole recorded history.
    const leaked = c.history.filter((e) => e.kind === 'enforced' && e.version === 2 && e.node !== canary!.name);
    expect(leaked).toEqual([]);
    c.checkSafety();
    await c.report({ timeToConvergeMs: ms, bound: 15_000 });
  });
});
