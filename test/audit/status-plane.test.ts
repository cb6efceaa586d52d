import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { HostileNode } from '../adversary/hostile-node.js';

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.destroy();
  cluster = null;
});

const N = 8;
const spent = (n: NodeSpec) => { const v = n.agent!.auditor.verifications; return v.statuses + v.claims; };
/** Every node, in this node's view, on `version` and enforcing it (verified: only claims whose signatures were checked). */
const complete = (n: NodeSpec, version: number, verify: boolean) =>
  n.agent!.auditor.fleet({ verify }).nodes.every((r) => r.policyVersion === version && r.enforcement === 'ok' && !r.silent && (!verify || r.verified));

describe('status plane at fleet size', () => {
  it('every node\'s fleet view stays complete through a fleet-wide change while each verifies fewer than N statuses for it', { timeout: 120_000 }, async () => {
    // A sparse mesh (each node dials the one before it): views are complete only if claims travel several hops.
    const c = cluster = await Cluster.create(N, { minPeers: 2, bootstrapCount: 1, bootstrapMode: 'previous', syncInterval: '1h', overrides: { audit: { probeInterval: 0, interval: '1h', statusInterval: '1h' } } });
    await c.startAll();
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1, 30_000);
    await until(() => c.nodes.every((n) => complete(n, 1, false)), 60_000, () => c.nodes.map((n) => n.agent!.auditor.fleet({ verify: false }).summary).join(' | '));
    // The operator reads the verified view on v1 once (its wants fetch the claims behind the bits).
    const reader = c.nodes[3]!;
    await until(() => complete(reader, 1, true), 60_000, () => reader.agent!.auditor.fleet({ verify: true }).summary);
    const before = c.nodes.map(spent);
    const signedBefore = c.nodes.map((n) => n.agent!.auditor.claimsSigned);

    await c.publish(c.nodes[N - 1]!, c.policy(2));
    await c.converged(2, 30_000);
    // Every node learns every node's new state…
    await until(() => c.nodes.every((n) => complete(n, 2, false)), 60_000, () => c.nodes.map((n) => n.agent!.auditor.fleet({ verify: false }).summary).join(' | '));
    // …having checked fewer signatures than there are other nodes whose status changed.
    const cost = c.nodes.map((n, i) => spent(n) - before[i]!);
    for (const x of cost) expect(x).toBeLessThan(N - 1);
    // …and no node signed a claim for the change: what every view learnt came as tally bits.
    // The only claims signed since answer a want (the v1 read's wants may still be passing on
    // a busy machine, and a node answers with its state now, v2).
    const signed = c.nodes.map((n, i) => { const a = n.agent!.auditor.claimsSigned, b = signedBefore[i]!; return { change: a.change - b.change, periodic: a.periodic - b.periodic, wanted: a.wanted - b.wanted }; });
    expect(signed.map((x) => x.change + x.periodic)).toEqual(signed.map(() => 0));
    const far = c.nodes[0]!;
    const claimsOnV2 = c.nodes.filter((n) => n !== far && far.agent!.auditor.digest.newest(n.peerId)?.claim.policyVersion === 2).length;
    expect(claimsOnV2).toBeLessThanOrEqual(signed.reduce((t, x) => t + x.wanted, 0));

    // The change travelled as tally bits, not signed claims: the operator's read wants the
    // claims its bits stand for, gets them (each node signs one, holders relay it), verifies
    // each once, and then shows the whole fleet verified.
    const r0 = spent(reader);
    await until(() => complete(reader, 2, true), 60_000, () => reader.agent!.auditor.fleet({ verify: true }).summary);
    expect(spent(reader) - r0).toBeLessThanOrEqual(N - 1);
    const r1 = spent(reader);
    expect(complete(reader, 2, true)).toBe(true);
    expect(spent(reader)).toBe(r1); // nothing new: nothing checked again
  });
});

describe('status tallies beside full statuses', () => {
  it('a tally bit shows a node on the new version even when its last full status is newer than its last claim (every fullEvery-th tick signs the claim, then the status)', { timeout: 60_000 }, async () => {
    const c = cluster = await Cluster.create(2, { overrides: { audit: { probeInterval: 0, interval: '1h', statusInterval: '1h' } } });
    await c.startAll();
    const [a, b] = c.nodes as [NodeSpec, NodeSpec];
    await c.publish(a, c.policy(1));
    await c.converged(1, 10_000);
    await until(() => complete(a, 1, false), 10_000, () => a.agent!.auditor.fleet({ verify: false }).summary);
    // What b's periodic tick does every fullEvery-th statusInterval: a claim, then the full status (a higher seq).
    const checked = a.agent!.auditor.verifications.statuses;
    await b.agent!.auditor.publishDigest({ periodic: true, full: true });
    await b.agent!.auditor.publishStatus(true);
    await until(() => a.agent!.auditor.verifications.statuses > checked, 10_000);
    await c.publish(a, c.policy(2));
    await c.converged(2, 10_000);
    // b's change travels as its tally bit (it signs no claim for it): a's background view shows it.
    await until(() => a.agent!.auditor.digest.onTally(b.peerId), 10_000);
    await until(() => complete(a, 2, false), 10_000, () => a.agent!.auditor.fleet({ verify: false }).summary);
    expect(a.agent!.auditor.digest.newest(b.peerId)?.claim.policyVersion).toBe(1);
  });
});

describe('full digests for new neighbours', () => {
  it('a connection opened for one exchange and closed again costs no full digest to every neighbour; one that stays gets it', { timeout: 120_000 }, async () => {
    // Four agents with minPeers 1: each reaches its connection target (3) among the others, so
    // none dials the extra listed node by itself.
    const c = cluster = await Cluster.create(4, { minPeers: 1, syncInterval: '1h', overrides: { audit: { probeInterval: 0, interval: '1h', statusInterval: '1h' } } });
    const peerSpec = await c.addNode(); // listed in the policy, never runs an agent: a plain libp2p peer dials as it
    const agents = c.nodes.filter((n) => n !== peerSpec);
    for (const n of agents) await c.start(n);
    const a = agents[0]!;
    await c.publish(a, c.policy(1));
    await c.converged(1, 30_000, agents);
    await until(() => agents.every((n) => n.agent!.mesh.connectedPeers().length >= 3), 30_000);
    // The full digests those connections set off (settle time, then the relay delay) pass first.
    await new Promise((r) => setTimeout(r, 6000));
    const peer = await HostileNode.start(peerSpec.key, peerSpec.listen);
    try {
      // a's digests to every neighbour ('all': full digests, wants) from here on.
      const toAll: number[] = [];
      const mesh = a.agent!.mesh;
      const orig = mesh.publishDigest.bind(mesh);
      mesh.publishDigest = (bytes, to = 'all') => { if (to === 'all') toAll.push(Date.now()); return orig(bytes, to); };
      // A transient connection, as the periodic exchange opens to a node it is not connected to.
      const [conn] = await peer.connectMany(a.agent!.mesh.listenAddrs()[0]!, 1);
      await until(() => a.agent!.mesh.connectedPeers().includes(peerSpec.peerId), 10_000);
      await conn!.close();
      await until(() => !a.agent!.mesh.connectedPeers().includes(peerSpec.peerId), 10_000);
      await new Promise((r) => setTimeout(r, 5000)); // past the settle time: nothing may follow
      expect(toAll).toHaveLength(0);
      // A connection that stays gets a's full view; this peer does not speak the direct digest
      // protocol (an older agent), so it comes the old way: a full digest to every neighbour.
      await peer.connectMany(a.agent!.mesh.listenAddrs()[0]!, 1);
      await until(() => toAll.length > 0, 20_000);
    } finally {
      await peer.stop();
    }
  });
});

describe('a new neighbour\'s full view on a stream of its own', () => {
  it('an agent joining a running fleet learns every node\'s state from its neighbours\' direct digests, and nobody sends a digest to every neighbour for it', { timeout: 120_000 }, async () => {
    const c = cluster = await Cluster.create(4, { minPeers: 2, syncInterval: '1h', overrides: { audit: { probeInterval: 0, interval: '1h', statusInterval: '1h' } } });
    const late = await c.addNode();
    const early = c.nodes.filter((n) => n !== late);
    for (const n of early) await c.start(n);
    await c.publish(early[0]!, c.policy(1));
    await c.converged(1, 30_000, early);
    const ids = new Set(early.map((n) => n.peerId));
    await until(() => early.every((n) => n.agent!.auditor.fleet({ verify: false }).nodes.filter((r) => ids.has(r.peerId)).every((r) => r.policyVersion === 1 && r.enforcement === 'ok')), 30_000);
    // The full digests the first connections set off (settle time, then the relay delay) pass first.
    await new Promise((r) => setTimeout(r, 5000));
    const toAll: string[] = [];
    const direct: string[] = [];
    for (const n of early) {
      const mesh = n.agent!.mesh;
      const pub = mesh.publishDigest.bind(mesh), send = mesh.sendDigest.bind(mesh);
      mesh.publishDigest = (bytes, to = 'all') => { if (to === 'all') toAll.push(n.peerId); return pub(bytes, to); };
      mesh.sendDigest = async (peer, frames) => { const ok = await send(peer, frames); if (ok) direct.push(`${n.peerId}>${peer}`); return ok; };
    }
    await c.start(late);
    await c.converged(1, 30_000);
    // The early nodes' signed claims: nothing but full digests can bring them (statuses are
    // hourly, nobody changed; the tally it gets with the first relay says versions, not claims).
    await until(() => early.every((n) => late.agent!.auditor.digest.newest(n.peerId)?.claim.policyVersion !== undefined), 30_000, () => `direct: ${direct.join(' ')}`);
    await until(() => complete(late, 1, false), 30_000, () => late.agent!.auditor.fleet({ verify: false }).summary);
    expect(direct.filter((d) => d.endsWith(`>${late.peerId}`)).length).toBeGreaterThanOrEqual(1);
    expect(toAll).toEqual([]);
  });
});
