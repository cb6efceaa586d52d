/**
 * Status digests are never forwarded (the validator answers Ignore) and a relay goes only to
 * the gossip mesh: gossipsub's lazy gossip (IHAVE of our own publishes to non-mesh peers,
 * answered by IWANT and the message) used to carry every digest to every neighbour anyway.
 * Policies keep their lazy gossip: it is what repairs a missed eager push.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until } from '../helpers/cluster.js';
import { digestTopic, policyTopic, statusTopic } from '../../src/mesh/mesh.js';
import { lazyGossipOff } from '../../src/mesh/node.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

/** The message ids gossipsub would advertise in IHAVE now (its message cache's gossip window), by topic. */
function advertised(n: Cluster['nodes'][number], topics: string[]): Map<string, unknown[]> {
  const mcache = (n.agent!.mesh.libp2p.services.pubsub as unknown as { mcache: { getGossipIDs(t: Set<string>): Map<string, unknown[]> } }).mcache;
  return mcache.getGossipIDs(new Set(topics));
}

describe('lazy gossip', () => {
  it('a digest this node publishes is never advertised by IHAVE to peers outside its gossip mesh, while its policy publishes still are', async () => {
    cluster = await Cluster.create(3, { syncInterval: '1h', overrides: { audit: { interval: '1h', probeInterval: 0, statusInterval: '1s' } } });
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= 1), 10_000);
    const [a] = cluster.nodes;
    expect(lazyGossipOff(a!.agent!.mesh.libp2p)).toContain(digestTopic('test'));
    const topics = [digestTopic('test'), policyTopic('test')];
    let digestSeen = false, policySeen = false;
    const watch = () => {
      const ids = advertised(a!, topics);
      if ((ids.get(digestTopic('test'))?.length ?? 0) > 0) digestSeen = true;
      if ((ids.get(policyTopic('test'))?.length ?? 0) > 0) policySeen = true;
    };
    const timer = setInterval(watch, 20);
    try {
      await cluster.publish(a!, cluster.policy(1));
      await cluster.converged(1, 20_000);
      // Digests went out meanwhile (the change's, the periodic ones every second).
      await until(async () => ((await Cluster.counters(cluster!.nodes[1]!)).statusBytesIn.digest ?? 0) > 0, 20_000);
      await new Promise((r) => setTimeout(r, 2500));
    } finally {
      clearInterval(timer);
    }
    // The check can fail: the policy a published was in its gossip window.
    expect(policySeen).toBe(true);
    expect(digestSeen).toBe(false);
  });

  it('on the digest plane, a full status is never advertised by IHAVE either, and still reaches every node by eager push (their IHAVE more than doubled the gossipsub heartbeat of 100 agents in one process)', async () => {
    // statusInterval 1 s: a full status every 4th tick, besides the one at start-up.
    cluster = await Cluster.create(3, { syncInterval: '1h', overrides: { audit: { interval: '1h', probeInterval: 0, statusInterval: '1s' } } });
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= 1), 10_000);
    const [a, b, c] = cluster.nodes as [Cluster['nodes'][number], Cluster['nodes'][number], Cluster['nodes'][number]];
    expect(lazyGossipOff(a.agent!.mesh.libp2p).sort()).toEqual([digestTopic('test'), statusTopic('test')].sort());
    let statusSeen = false, policySeen = false, statusCached = false;
    // The message cache itself (what lazy gossip would draw on): a full status must be in it
    // while we watch, or "never advertised" would hold for want of a status to advertise.
    const history = (a.agent!.mesh.libp2p.services.pubsub as unknown as { mcache: { history: { topic: string }[][] } }).mcache.history;
    const timer = setInterval(() => {
      const ids = advertised(a, [statusTopic('test'), policyTopic('test')]);
      if ((ids.get(statusTopic('test'))?.length ?? 0) > 0) statusSeen = true;
      if ((ids.get(policyTopic('test'))?.length ?? 0) > 0) policySeen = true;
      if (history.slice(0, 3).some((h) => h.some((m) => m.topic === statusTopic('test')))) statusCached = true;
    }, 20);
    try {
      await cluster.publish(a, cluster.policy(1));
      await cluster.converged(1, 20_000);
      // Full statuses went out meanwhile and arrived by eager push: every node checked the
      // other two's (a status is checked as it arrives, the first copy only).
      await until(() => [a, b, c].every((x) => x.agent!.auditor.verifications.statuses >= 2), 20_000, () => `statuses checked: ${[a, b, c].map((x) => x.agent!.auditor.verifications.statuses).join(', ')}`);
    } finally {
      clearInterval(timer);
    }
    expect(policySeen).toBe(true);
    expect(statusCached).toBe(true);
    expect(statusSeen).toBe(false);
  });

  it('on the full status plane, statuses keep their lazy gossip: it is the whole plane there', async () => {
    cluster = await Cluster.create(2, { syncInterval: '1h', overrides: { audit: { interval: '1h', probeInterval: 0, statusPlane: 'full' } } });
    await cluster.startAll();
    expect(lazyGossipOff(cluster.nodes[0]!.agent!.mesh.libp2p)).not.toContain(statusTopic('test'));
  });
});
