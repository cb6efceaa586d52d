/**
 * Two connections between a pair (crossed dials keep both): gossipsub opens its stream to a
 * peer when the peer identifies on a connection, and ignores later connections while it holds
 * one. When the connection that carries it closes and the other stays, the peer is still in
 * the topic mesh but nothing can be sent to it, until something opens a new connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { peerIdFromString } from '@libp2p/peer-id';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';

let cluster: Cluster | undefined;
/** Gossipsub holds a stream to send to `to` (@libp2p/gossipsub 17's book of them). */
const sends = (from: NodeSpec, to: NodeSpec) => (from.agent!.mesh.libp2p.services.pubsub as unknown as { streamsOutbound: Map<string, unknown> }).streamsOutbound.has(to.peerId);
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

describe('two connections between a pair', () => {
  it('gossip still reaches the peer after the connection carrying its stream closes and the other stays', { timeout: 60_000 }, async () => {
    const c = cluster = await Cluster.create(2, { transport: 'tcp', minPeers: 1, syncInterval: '1h' });
    const [a, b] = c.nodes as [NodeSpec, NodeSpec];
    const A = await c.start(a, []);
    const B = await c.start(b, [A.mesh.listenAddrs()[0]!]);
    await c.publish(a, c.policy(1));
    await c.converged(1);
    const bId = B.mesh.libp2p.peerId;
    await until(() => sends(a, b), 10_000);
    // The second connection, identified before anything closes (the dialling end runs
    // identify): an identify still to come after the close would hand gossipsub a connection
    // by itself.
    const identified = new Set<string>();
    for (const x of [A, B]) x.mesh.libp2p.addEventListener('peer:identify', (e) => identified.add(e.detail.connection.id));
    const ends = () => [...A.mesh.libp2p.getConnections(bId), ...B.mesh.libp2p.getConnections(peerIdFromString(a.peerId))];
    const before = new Set(ends().map((conn) => conn.id));
    if (A.mesh.libp2p.getConnections(bId).length < 2) await B.mesh.libp2p.dial(A.mesh.libp2p.getMultiaddrs()[0]!, { force: true });
    await until(() => A.mesh.libp2p.getConnections(bId).length === 2, 10_000);
    const unidentified = () => ends().filter((conn) => conn.direction === 'outbound' && !before.has(conn.id) && !identified.has(conn.id));
    await until(() => unidentified().length === 0, 10_000, () => 'the second connection was not identified');
    const carrying = A.mesh.libp2p.getConnections(bId).find((conn) => conn.streams.some((s) => s.direction === 'outbound' && s.protocol?.includes('meshsub')));
    expect(carrying).toBeDefined();
    await carrying!.close();
    await until(() => A.mesh.libp2p.getConnections(bId).length === 1, 10_000);
    // Both ends can send to each other again, on the connection that stayed. (A policy would
    // still arrive without it: the status plane's tally says A is ahead, and B syncs.)
    await until(() => sends(a, b) && sends(b, a), 5_000, () => `A→B ${sends(a, b)}, B→A ${sends(b, a)}`);
    const kept = A.mesh.libp2p.getConnections(bId)[0]!;
    expect(kept.streams.some((s) => s.direction === 'outbound' && s.protocol?.includes('meshsub'))).toBe(true);
    await c.publish(a, c.policy(2));
    await c.converged(2, 10_000, [b]);
    expect(B.engine.current?.policy.version).toBe(2);
  });
});
