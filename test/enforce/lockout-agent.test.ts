/** The lock-out guard on real agents: a peer's restart is not a lock-out. */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until } from '../helpers/cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

describe('lock-out guard on agents', () => {
  it('does not restore mesh access when the only peer of a two-node mesh restarts right after a narrowing apply', async () => {
    // Windows far longer than the test: the outcome must not depend on how fast this machine is.
    cluster = await Cluster.create(3, { overrides: { enforcement: { backend: 'memory', driftInterval: 0, confirmWindow: '10m', lockoutGrace: '10m' } } });
    const c = cluster;
    await c.startAll();
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1);
    const [a, b, gone] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    await c.stop(gone);
    await c.publish(a, c.policy(2, { nodes: [a, b] })); // narrows a's mesh sources
    await c.converged(2, 10_000, [a, b]);
    const lockouts: string[] = [];
    a.agent!.enforcer.on('lockout', (r) => lockouts.push(r));
    await until(() => a.agent!.mesh.connectedPeers().length === 1, 10_000);
    await c.stop(b);
    await until(() => a.agent!.enforcer.lockoutPending, 10_000, () => `peers: ${a.agent!.mesh.connectedPeers().length}`);
    await c.start(b);
    await until(() => a.agent!.mesh.connectedPeers().includes(b.peerId), 20_000);
    expect(a.agent!.enforcer.lockoutPending).toBe(false);
    expect(lockouts).toEqual([]);
    expect(a.agent!.status().enforcement.reason ?? '').not.toMatch(/lost every mesh peer/);
  });
});
