/**
 * A node that comes back after a partition, or after its host froze and was restarted, finds
 * its neighbours still holding the connections they had to it: nothing told them those are
 * dead (no FIN crossed the partition) until their keep-alive finds out, up to 40 s later.
 * Two such connections (two nodes that dialled each other at the same moment keep both) fill
 * the per-peer connection budget. Its reconnects are refused until then; they must not be
 * taken for an attack, or the node is banned from its own fleet for `banFor`.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { HostileNode } from '../adversary/hostile-node.js';

let cluster: Cluster | undefined;
let refuser: HostileNode | undefined;
afterEach(async () => {
  await refuser?.stop();
  await cluster?.destroy();
  cluster = refuser = undefined;
});

describe('a node back from a partition', () => {
  it('is let back in, not banned, while its neighbour still holds two dead connections to it', { timeout: 60_000 }, async () => {
    const c = cluster = await Cluster.create(2, { transport: 'tcp', minPeers: 1, syncInterval: '1h' });
    const [a, b] = c.nodes as [NodeSpec, NodeSpec];
    const A = await c.start(a, []);
    const aAddr = A.mesh.listenAddrs()[0]!;
    const B = await c.start(b, [aAddr]);
    await c.publish(a, c.policy(1));
    await c.converged(1);
    const bId = B.mesh.libp2p.peerId;
    // Two connections between the pair, as crossed dials leave them.
    await until(() => A.mesh.libp2p.getConnections(bId).length > 0, 10_000);
    if (A.mesh.libp2p.getConnections(bId).length < 2) await B.mesh.libp2p.dial(A.mesh.libp2p.getMultiaddrs()[0]!, { force: true });
    await until(() => A.mesh.libp2p.getConnections(bId).length === 2, 10_000);

    // B's host drops off the network: its ends of both connections read nothing and send no FIN.
    for (const conn of B.mesh.libp2p.getConnections(A.mesh.libp2p.peerId)) {
      const socket = (conn as unknown as { maConn?: { socket?: unknown } }).maConn?.socket;
      expect(socket).toBeInstanceOf(Socket);
      (socket as Socket).pause();
    }
    // B comes back: the same key, a fresh process, dialling A.
    copyFileSync(join(c.dir, `${b.name}.key`), join(c.dir, 'b2.key'));
    const b2: NodeSpec = { ...b, name: 'b2', dir: join(c.dir, 'b2'), backend: new MemoryBackend(), agent: null, history: [] };
    const B2 = await c.start(b2, [aAddr]);

    // A refuses its reconnects while the dead connections fill B's budget: more of them than
    // the strike threshold (3 in this cluster) that would ban an attacker.
    const refused = async () => (await A.mesh.metrics.budgetExceeded.get()).values.find((v) => v.labels.kind === 'connections')?.value ?? 0;
    await until(async () => (await refused()) > 3 || A.mesh.admission.isBanned(b.peerId), 20_000);
    expect(A.mesh.admission.isBanned(b.peerId)).toBe(false);
    expect(A.mesh.admission.strikes(b.peerId)).toBe(0);

    // A's keep-alive finds the dead connections and aborts them (here, at once); the old process goes.
    for (const conn of A.mesh.libp2p.getConnections(bId)) conn.abort(new Error('keep-alive: no answer'));
    await c.stop(b);
    await until(() => B2.mesh.connectedPeers().includes(a.peerId), 15_000);
    await c.converged(1, 20_000, [b2]);
    expect(A.mesh.admission.isBanned(b.peerId)).toBe(false);
  });

  it('dials a peer that closes each connection at once with a growing backoff, not every redialMin', { timeout: 30_000 }, async () => {
    // The far side of a refused reconnect: the connection opens, then closes. Reset to no
    // backoff on every open, the node redialled every redialMin and spent its free refusals
    // (and then its standing) in seconds.
    const c = cluster = await Cluster.create(1, { minPeers: 1, syncInterval: '1h' });
    const [a] = c.nodes as [NodeSpec];
    const far = await c.addNode();
    refuser = await HostileNode.start(far.key, far.listen);
    let opened = 0;
    refuser.node.addEventListener('connection:open', (e) => { opened++; void e.detail.close().catch(() => undefined); });
    await c.start(a, [`${far.listen}/p2p/${far.peerId}`]);
    await c.publish(a, c.policy(1));
    await c.converged(1, 10_000, [a]);
    await until(() => opened > 0, 10_000);
    // Cluster backoff: redialMin 100 ms doubling to redialMax 1 s. 4 s at 100 ms would be
    // 40 dials; backing off, ~7 (0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 + 1 s).
    const from = opened;
    await new Promise((r) => setTimeout(r, 4000));
    expect(opened - from).toBeLessThanOrEqual(12);
  });
});
