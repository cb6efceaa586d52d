/**
 * Two agents presenting one identity (a shared Secret, a copied key, a cloned image): each
 * receives, through the mesh, statuses signed with its own key that it did not publish, and
 * raises `duplicate-identity`. A node's own earlier statuses, still travelling after a
 * restart, are not mistaken for a twin.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { judgeOwnStatus } from '../../src/audit/status.js';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';

describe('judging a status signed with our own key', () => {
  const mine = { startedAt: 1_000, lastSeq: 5_000, published: new Map([[4_000, 'a'], [5_000, 'b']]) };
  it('is an echo when it is one we published (same seq, same bytes)', () => {
    expect(judgeOwnStatus({ seq: 5_000, time: 1_500 }, 'b', mine)).toBe('echo');
  });
  it('is an echo when it was signed before this process started (our previous run)', () => {
    expect(judgeOwnStatus({ seq: 900, time: 900 }, 'z', mine)).toBe('echo');
  });
  it('is a twin when its seq is one we never reached', () => {
    expect(judgeOwnStatus({ seq: 5_001, time: 1_500 }, 'c', mine)).toBe('twin');
  });
  it('is a twin when it reuses one of our seqs for other bytes', () => {
    expect(judgeOwnStatus({ seq: 4_000, time: 1_500 }, 'other', mine)).toBe('twin');
  });
  it('is a twin when it was signed during this run with a seq we skipped', () => {
    expect(judgeOwnStatus({ seq: 4_500, time: 1_500 }, 'c', mine)).toBe('twin');
  });
});

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.destroy();
  cluster = null;
});

describe('duplicate identity in a mesh', () => {
  it('raises duplicate-identity when a second agent joins with a node\'s key', { timeout: 60_000 }, async () => {
    const c = cluster = await Cluster.create(3, { transport: 'tcp', minPeers: 2, syncInterval: '1s', overrides: { audit: { probeInterval: 0, statusInterval: '300ms' } } });
    const [a, b, n2] = c.nodes as [NodeSpec, NodeSpec, NodeSpec];
    // The twin: a's key under another name and data dir (as a shared Secret would give).
    copyFileSync(join(c.dir, `${a.name}.key`), join(c.dir, 'twin.key'));
    const twin: NodeSpec = { ...a, name: 'twin', dir: join(c.dir, 'twin'), backend: new MemoryBackend(), agent: null, history: [] };
    const B = await c.start(b, []);
    const bAddr = B.mesh.listenAddrs()[0]!;
    const N2 = await c.start(n2, [bAddr]);
    const A = await c.start(a, [bAddr]);
    await c.publish(b, c.policy(1, { nodes: [a, b, n2] }));
    await c.converged(1);
    // Two nodes that dialled each other at the same moment keep both connections, which fills
    // the per-peer connection budget (2, per PeerId, whichever process holds it): the twin is
    // refused there and must be seen elsewhere. (Before the refusals were free and a refused
    // dial backed off, three quick refusals banned the PeerId before anyone had seen the twin:
    // test/mesh/return-after-partition.test.ts.) Here each pair keeps one connection, and
    // minPeers 2 keeps the loops from redialling.
    await until(() => [A, B, N2].every((x) => x.mesh.connectedPeers().length >= 2), 20_000);
    await new Promise((r) => setTimeout(r, 2000)); // the mixing after the policy is over (300–1000 ms steps)
    for (const x of [B, N2]) for (const extra of x.mesh.libp2p.getConnections(A.mesh.libp2p.peerId).slice(1)) await extra.close();
    // The twin joins through the other node: its statuses reach a through b and n2.
    const T = await c.start(twin, [N2.mesh.listenAddrs()[0]!]);
    expect(T.mesh.peerId).toBe(A.mesh.peerId);
    // A node holding connections from both sees two agents claim one PeerId; either twin
    // that receives the other's statuses sees a status it did not sign.
    const raised = () => [A, T, B, N2].filter((x) => x.alerts.openAlerts().some((al) => al.class === 'duplicate-identity'));
    await until(() => raised().length > 0, 45_000);
    for (const x of raised()) {
      const al = x.alerts.openAlerts().find((y) => y.class === 'duplicate-identity')!;
      expect(al.severity).toBe('critical');
      expect(al.summary).toContain(a.peerId);
    }
    // Nobody else is accused.
    for (const x of [A, T, B, N2]) {
      for (const al of x.alerts.openAlerts().filter((y) => y.class === 'duplicate-identity')) expect(al.key).toMatch(new RegExp(`^duplicate-identity(/${a.peerId})?$`));
    }
  });

  it('a restarted node does not take its own earlier statuses for a twin', { timeout: 60_000 }, async () => {
    const c = cluster = await Cluster.create(2, { transport: 'tcp', syncInterval: '1s', overrides: { audit: { probeInterval: 0, statusInterval: '200ms' } } });
    const [a, b] = c.nodes as [NodeSpec, NodeSpec];
    const B = await c.start(b, []);
    const bAddr = B.mesh.listenAddrs()[0]!;
    await c.start(a, [bAddr]);
    await c.publish(b, c.policy(1));
    await c.converged(1);
    // Let a's statuses fill b's gossip caches, then restart a from the same data dir.
    const heardFromA = () => B.meshView().nodes.find((n) => n.peerId === a.peerId)?.lastSeen ?? null;
    await until(() => heardFromA() !== null, 20_000);
    await c.stop(a);
    const before = heardFromA();
    const A2 = await c.start(a, [bAddr]);
    // Status rounds both ways after the restart, with the earlier ones still in b's caches.
    await until(() => heardFromA() !== before && A2.meshView().nodes.some((n) => n.peerId === b.peerId && n.lastSeen !== null), 20_000);
    await A2.auditor.publishStatus();
    await B.auditor.publishStatus();
    expect(A2.alerts.isOpen('duplicate-identity')).toBe(false);
  });
});

describe('twin watch (conflicting identify claims)', () => {
  it('sees two open connections of one PeerId that listen on disjoint addresses', async () => {
    const { TwinWatch } = await import('../../src/audit/twins.js');
    const w = new TwinWatch();
    expect(w.identified('c1', 'P', ['/ip4/10.0.0.1/tcp/7946/p2p/P'])).toBeNull();
    // The same agent dialling twice: same listen addresses, no sighting.
    expect(w.identified('c2', 'P', ['/ip4/10.0.0.1/tcp/7946'])).toBeNull();
    // An identify with no listen addresses says nothing either way.
    expect(w.identified('c3', 'P', [])).toBeNull();
    const s = w.identified('c4', 'P', ['/ip4/10.0.0.9/tcp/7946']);
    expect(s).toMatchObject({ peer: 'P', claims: [['/ip4/10.0.0.1/tcp/7946'], ['/ip4/10.0.0.9/tcp/7946']] });
    expect(w.current().map((x) => x.peer)).toEqual(['P']);
    w.closed('c4');
    expect(w.current()).toEqual([]);
    // Other peers with other addresses are not twins of P.
    expect(w.identified('c5', 'Q', ['/ip4/10.0.0.9/tcp/7946'])).toBeNull();
  });
});
