/** Peers with valid identities that lie, and strangers who try to join. */
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Libp2p } from 'libp2p';
import type { GossipSub } from '@libp2p/gossipsub';
import { lpStream } from '@libp2p/utils';
import { Byzantine } from '../chaos/byzantine.js';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { randomBytes } from 'node:crypto';
import type { PrivateKey } from '@libp2p/interface';
import { Cluster, until } from '../helpers/cluster.js';
import { generateSigningKey } from '../../src/trust/keys.js';
import { encodeEnvelope, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { encodePolicy } from '../../src/policy/model.js';
import { policyTopic } from '../../src/mesh/mesh.js';
import { SYNC_PROTOCOL } from '../../src/mesh/sync.js';

let cluster: Cluster | undefined;
const raw: Libp2p[] = [];
afterEach(async () => {
  await Promise.all(raw.splice(0).map((n) => n.stop()));
  await cluster?.destroy();
  cluster = undefined;
});

/** A raw libp2p node (the chaos suite's byzantine peer) driven by hand. */
async function rawNode(key: PrivateKey, listen: string): Promise<Libp2p<{ pubsub: GossipSub }>> {
  const b = await Byzantine.start(key, listen, 'test');
  raw.push(b.node);
  return b.node;
}

describe('lying peers and strangers', () => {
  it('a listed peer sending forged, stale, equivocating, oversized and garbage messages is rejected and penalised while honest traffic flows', async () => {
    cluster = await Cluster.create(4);
    const byzSpec = await cluster.addNode(); // listed in the policy, but driven by hand below
    for (const n of cluster.nodes.slice(0, 4)) await cluster.start(n);
    const honest = cluster.nodes.slice(0, 4);
    await cluster.publish(honest[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, honest);

    const target = honest[1]!;
    const rejected: string[] = [];
    target.agent!.engine.on('rejected', (r) => rejected.push(r.outcome));
    const byz = await rawNode(byzSpec.key, byzSpec.listen);
    await byz.dial(multiaddr(target.agent!.mesh.listenAddrs()[0]!));
    await until(() => byz.services.pubsub.getSubscribers(policyTopic('test')).length > 0, 10_000);

    // Sync abuse first: a garbage hello is a protocol violation.
    const s = await byz.dialProtocol(target.agent!.mesh.libp2p.peerId, SYNC_PROTOCOL);
    const lp = lpStream(s);
    await lp.write(randomBytes(200));
    await until(() => target.agent!.mesh.admission.strikes(byzSpec.peerId) >= 1, 10_000);

    const forger = generateSigningKey();
    const sign = (v: number, extra = {}) => encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(cluster!.policy(v, { extra })), [forger]));
    const pub = (b: Uint8Array) => byz.services.pubsub.publish(policyTopic('test'), b).catch(() => undefined);
    await pub(randomBytes(300));                       // garbage
    await pub(cluster.signed(cluster.policy(1)));      // stale (validly signed)
    await pub(cluster.signed(cluster.policy(2, { extra: { rules: [] } }))); // equivocation (validly signed, same version)
    await pub(sign(9));                                // forged
    await pub(randomBytes(5 * 1024 * 1024));           // oversized: dropped by the stream limit
    await pub(sign(10));                               // forged again
    await until(() => target.agent!.mesh.admission.isBanned(byzSpec.peerId), 10_000, () => `rejected: ${rejected.join(',')}`);
    expect(rejected).toEqual(expect.arrayContaining(['malformed', 'stale', 'equivocation', 'below-threshold']));
    await until(() => !target.agent!.mesh.connectedPeers().includes(byzSpec.peerId), 10_000);

    // Honest traffic still flows, and no node ever accepted a forged version.
    await cluster.publish(honest[2]!, cluster.policy(3));
    await cluster.converged(3, 10_000, honest);
    for (const n of honest) expect(n.history.every((v) => v <= 3)).toBe(true);
  });

  it('a forged policy on gossip is judged twice (again after a sync with its sender) but reported and counted once', async () => {
    cluster = await Cluster.create(2);
    const byzSpec = await cluster.addNode();
    for (const n of cluster.nodes.slice(0, 2)) await cluster.start(n);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, cluster.nodes.slice(0, 2));
    const target = cluster.nodes[1]!;
    const rejected: string[] = [];
    target.agent!.engine.on('rejected', (r) => rejected.push(r.outcome));
    const byz = await rawNode(byzSpec.key, byzSpec.listen);
    await byz.dial(multiaddr(target.agent!.mesh.listenAddrs()[0]!));
    await until(() => byz.services.pubsub.getSubscribers(policyTopic('test')).length > 0, 10_000);
    const forger = generateSigningKey();
    await byz.services.pubsub.publish(policyTopic('test'), encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(cluster.policy(9)), [forger])));
    const belowThreshold = async () => (await Cluster.counters(target)).gossipIn['below-threshold'] ?? 0;
    await until(async () => (await belowThreshold()) >= 1, 10_000);
    expect(rejected).toEqual(['below-threshold']);
    expect(await belowThreshold()).toBe(1);
    expect(target.agent!.mesh.admission.strikes(byzSpec.peerId)).toBe(1);
  });

  it('a PeerId not listed in the policy cannot connect once a policy exists; a removed node is cut off', async () => {
    cluster = await Cluster.create(4);
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const stranger = await rawNode(await generateKeyPair('Ed25519'), `/memory/stranger-${process.pid}`);
    // The dialler may finish its half of the handshake; the gater closes it on the other side.
    await stranger.dial(multiaddr(cluster.nodes[1]!.agent!.mesh.listenAddrs()[0]!)).catch(() => undefined);
    await until(() => stranger.getConnections().length === 0, 10_000);
    expect(cluster.nodes[1]!.agent!.mesh.connectedPeers()).not.toContain(stranger.peerId.toString());
    await expect(stranger.dialProtocol(peerIdFromString(cluster.nodes[1]!.peerId), SYNC_PROTOCOL)).rejects.toBeDefined();

    const removed = cluster.nodes[3]!;
    await until(() => cluster!.nodes.slice(0, 3).some((n) => n.agent!.mesh.connectedPeers().includes(removed.peerId)), 10_000);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(2, { nodes: cluster.nodes.slice(0, 3) }));
    await cluster.converged(2, 10_000, cluster.nodes.slice(0, 3));
    await until(() => cluster!.nodes.slice(0, 3).every((n) => !n.agent!.mesh.connectedPeers().includes(removed.peerId)), 10_000);
    // The removed node's addresses are blocked before the established rule on the others,
    // and stay blocked when an agent restarts (conntrack would otherwise readmit its flows).
    expect(cluster.nodes[0]!.backend.current!.blocked.v4.length).toBe(1);
    await cluster.stop(cluster.nodes[1]!);
    await cluster.start(cluster.nodes[1]!);
    expect(cluster.nodes[1]!.backend.current!.blocked.v4.map(String)).toHaveLength(1);
  });
});
