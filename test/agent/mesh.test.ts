import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until } from '../helpers/cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const monotonic = (h: number[]) => h.every((v, i) => i === 0 || v > h[i - 1]!);

describe('mesh convergence', () => {
  it('a fleet bootstrapped as a line mixes within seconds of its first policy (peer addresses are only taken once a policy says who belongs)', async () => {
    // Each node knows only the one started before it; the sync interval is far beyond the test.
    cluster = await Cluster.create(8, { transport: 'tcp', minPeers: 2, bootstrapCount: 1, bootstrapMode: 'previous', syncInterval: '1h' });
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= 1), 20_000);
    const far = () => cluster!.nodes.filter((n, i) => n.agent!.mesh.connectedPeers().some((p) => Math.abs(cluster!.nodes.findIndex((m) => m.peerId === p) - i) > 1)).length;
    expect(far()).toBe(0);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1, 30_000);
    // Addresses learned in the exchanges the policy starts lead to dials beyond the line.
    await until(() => far() >= cluster!.nodes.length / 2, 20_000);
  });

  it('10 nodes on the memory transport with latency converge on a published policy', async () => {
    cluster = await Cluster.create(10, { latency: 5 });
    await cluster.startAll();
    await until(() => cluster!.running().every((n) => n.agent!.mesh.connectedPeers().length > 0), 10_000);
    // Every node enforces the baseline before any policy exists.
    for (const n of cluster.nodes) expect(n.agent!.enforcer.status.state).toBe('baseline');
    await cluster.publish(cluster.nodes[3]!, cluster.policy(1));
    await cluster.converged(1);
    for (const n of cluster.nodes) {
      expect(n.agent!.enforcer.status.state).toBe('ok');
      expect(n.backend.current?.policy?.version).toBe(1);
    }
    // Regression: honest nodes never count strikes against each other (statuses sent before
    // a receiver held any policy used to be rejected, and honest peers got banned).
    const strikes = (await Promise.all(cluster.nodes.map(Cluster.counters))).map((c) => Object.values(c.strikes).reduce((a, b) => a + b, 0));
    expect(strikes).toEqual(cluster.nodes.map(() => 0));
  });

  it('3 nodes over loopback TCP converge', async () => {
    cluster = await Cluster.create(3, { transport: 'tcp' });
    await cluster.startAll();
    await until(() => cluster!.running().every((n) => n.agent!.mesh.connectedPeers().length > 0), 10_000);
    await cluster.publish(cluster.nodes[2]!, cluster.policy(1));
    await cluster.converged(1);
  });

  it('a node offline during an update catches up through sync when it returns', async () => {
    cluster = await Cluster.create(5);
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const late = cluster.nodes[4]!;
    await cluster.stop(late);
    await cluster.publish(cluster.nodes[1]!, cluster.policy(2));
    await cluster.publish(cluster.nodes[2]!, cluster.policy(3));
    await cluster.converged(3);
    await cluster.start(late);
    await cluster.converged(3);
    expect(late.history).toEqual([1, 3]);
  });

  it('a healed 50/50 partition converges and no version ever goes backwards', async () => {
    cluster = await Cluster.create(8, { bootstrapCount: 2 });
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const [a, b] = [cluster.nodes.slice(0, 4), cluster.nodes.slice(4)];
    await cluster.partition(a, b);
    await cluster.publish(a[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, a);
    await cluster.publish(b[1]!, cluster.policy(3));
    await cluster.converged(3, 10_000, b);
    expect(a.every((n) => cluster!.versionOf(n) === 2)).toBe(true);
    await cluster.heal();
    await cluster.converged(3);
    for (const n of cluster.nodes) expect(monotonic(n.history), `${n.name}: ${n.history}`).toBe(true);
  });

  it('restarts with every bootstrap peer down and rejoins through the peer cache', async () => {
    cluster = await Cluster.create(4);
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const n3 = cluster.nodes[3]!;
    await until(() => n3.agent!.mesh.connectedPeers().length >= 2, 10_000);
    await cluster.stop(n3);
    await cluster.stop(cluster.nodes[0]!); // the only bootstrap peer
    await cluster.publish(cluster.nodes[1]!, cluster.policy(2));
    await cluster.converged(2);
    await cluster.start(n3, [cluster.nodes[0]!.listen + '/p2p/' + cluster.nodes[0]!.peerId]);
    await cluster.converged(2, 15_000, [n3]);
    expect(n3.agent!.mesh.connectedPeers().length).toBeGreaterThan(0);
  });
});
