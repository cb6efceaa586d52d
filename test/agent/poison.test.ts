/** Issue 13 #6: a validly signed policy that expands to millions of elements is refused, and the agent stays up. */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../helpers/cluster.js';
import { poisonPolicy } from '../helpers/poison.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

describe('poison policy', () => {
  it('refuses a 72 KB validly signed policy that compiles to millions of elements as too-large, and keeps serving', async () => {
    cluster = await Cluster.create(2);
    await cluster.startAll();
    const [a, b] = cluster.nodes as [NonNullable<(typeof cluster.nodes)[0]>, NonNullable<(typeof cluster.nodes)[0]>];
    await cluster.publish(a, cluster.policy(2));
    await cluster.converged(2);

    const poison = poisonPolicy(3, { real: cluster.nodes.map((n) => ({ name: n.name, peerId: n.peerId })) });
    const bytes = cluster.signed(poison);
    expect(bytes.length).toBeGreaterThan(70 * 1024);
    const rejected: string[] = [];
    a.agent!.engine.on('rejected', (r) => rejected.push(r.outcome));
    const r = await a.agent!.engine.offer(bytes, { kind: 'control' });
    expect(r.outcome).toBe('too-large');
    expect('reason' in r && r.reason).toMatch(/compiles to [\d,]+ set elements/);
    expect(rejected).toContain('too-large');

    // Still up: nothing persisted, the old ruleset in force, and the mesh carries the next policy.
    expect(cluster.versionOf(a)).toBe(2);
    expect(a.agent!.enforcer.status).toMatchObject({ state: 'ok', policyVersion: 2 });
    expect(a.agent!.status().policy?.version).toBe(2);
    await cluster.publish(a, cluster.policy(4));
    await cluster.converged(4);
    expect(b.history).not.toContain(3);
  });
});
