/**
 * Large policies: announced (small signed message) and pulled once per node through sync,
 * instead of pushed whole to every gossip mesh peer. Real agents over loopback TCP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Connection, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { Byzantine } from '../chaos/byzantine.js';
import { Cluster, until } from '../helpers/cluster.js';
import { judgeAnnouncement, signAnnouncement, verifyAnnouncement, type Announcement } from '../../src/mesh/announce.js';
import { planPush } from '../../src/mesh/sync-plan.js';
import { announceTopic } from '../../src/mesh/mesh.js';
import { runSync, SYNC_PROTOCOL } from '../../src/mesh/sync.js';
import { pb } from '../../src/wire/proto.js';
import { decodeEnvelope, digestOf } from '../../src/trust/envelope.js';

const DIGEST = 'ab'.repeat(32);

describe('announcements (pure)', async () => {
  const key = await generateKeyPair('Ed25519');
  const peerId = peerIdFromPrivateKey(key).toString();
  const base: Announcement = { meshId: 'test', peerId, policyVersion: 7, policyDigest: DIGEST, size: 200_000, rootVersion: 1, time: Date.parse('2026-11-26T12:00:00Z') };
  const member = () => true;

  it('a signed announcement verifies; tampering, another mesh, garbage and bad fields are rejected', async () => {
    const good = await signAnnouncement(base, key);
    expect(await verifyAnnouncement(good, 'test', member)).toEqual({ ok: true, announcement: base });

    const signed = pb.sync.v1.SignedAnnounce.decode(good);
    const inner = pb.sync.v1.Announce.decode(signed.announce);
    inner.policyVersion = 8;
    const tampered = pb.sync.v1.SignedAnnounce.encode({ announce: pb.sync.v1.Announce.encode(inner).finish(), signature: signed.signature }).finish();
    expect(await verifyAnnouncement(tampered, 'test', member)).toMatchObject({ ok: false, reject: true, reason: 'announcement signature does not verify' });

    expect(await verifyAnnouncement(good, 'other', member)).toMatchObject({ ok: false, reject: true });
    expect(await verifyAnnouncement(new Uint8Array([1, 2, 3, 4, 5]), 'test', member)).toMatchObject({ ok: false, reject: true });
    expect(await verifyAnnouncement(new Uint8Array(2000), 'test', member)).toMatchObject({ ok: false, reject: true, reason: 'announcement too large' });
    // time 2^53 - 1 ms or before 2000: outside what Date can print or any honest clock says.
    for (const bad of [{ policyDigest: 'xyz' }, { policyVersion: 0 }, { size: 0 }, { size: 5 * 1024 * 1024 }, { time: Number.MAX_SAFE_INTEGER }, { time: 1 }]) {
      expect(await verifyAnnouncement(await signAnnouncement({ ...base, ...bad }, key), 'test', member), JSON.stringify(bad)).toMatchObject({ ok: false, reject: true });
    }
    // Signed by someone else than the peer it names.
    const other = await generateKeyPair('Ed25519');
    expect(await verifyAnnouncement(await signAnnouncement(base, other), 'test', member)).toMatchObject({ ok: false, reject: true });
  });

  it('an announcement from a node outside the held policy is ignored, not penalised', async () => {
    expect(await verifyAnnouncement(await signAnnouncement(base, key), 'test', () => false)).toMatchObject({ ok: false, reject: false });
  });

  it('judge: forward what is held, ignore what is older, pull what is newer or conflicting', () => {
    const mine = { meshId: 'test', rootVersion: 1, policyVersion: 7, policyDigest: DIGEST };
    expect(judgeAnnouncement(mine, { policyVersion: 7, policyDigest: DIGEST })).toBe('forward');
    expect(judgeAnnouncement(mine, { policyVersion: 6, policyDigest: 'cd'.repeat(32) })).toBe('ignore');
    expect(judgeAnnouncement(mine, { policyVersion: 8, policyDigest: 'cd'.repeat(32) })).toBe('pull');
    expect(judgeAnnouncement(mine, { policyVersion: 7, policyDigest: 'cd'.repeat(32) })).toBe('pull');
  });

  it('sync does not push the exact body the peer is already pulling elsewhere, but pushes anything else', () => {
    const mine = { meshId: 'test', rootVersion: 1, policyVersion: 7, policyDigest: DIGEST };
    const theirs = { meshId: 'test', rootVersion: 1, policyVersion: 5, policyDigest: 'cd'.repeat(32) };
    expect(planPush(mine, theirs).policy).toBe(true);
    expect(planPush(mine, { ...theirs, fetchingVersion: 7, fetchingDigest: DIGEST }).policy).toBe(false);
    expect(planPush(mine, { ...theirs, fetchingVersion: 6, fetchingDigest: 'ef'.repeat(32) }).policy).toBe(true);
    // A claimed newer version (or the same version with other content) does not hold ours back:
    // a liar's "v10^15 is on its way" must not silence honest peers.
    expect(planPush(mine, { ...theirs, fetchingVersion: 1e15, fetchingDigest: 'ef'.repeat(32) }).policy).toBe(true);
    expect(planPush(mine, { ...theirs, fetchingVersion: 7, fetchingDigest: 'ef'.repeat(32) }).policy).toBe(true);
    expect(planPush(mine, { ...theirs, fetchingVersion: 7 }).policy).toBe(true);
    // An equivocation is still shown, whatever is being fetched.
    expect(planPush(mine, { ...theirs, policyVersion: 7, fetchingVersion: 9 }).policy).toBe(true);
  });
});

let cluster: Cluster | undefined;
let byz: Byzantine | undefined;
afterEach(async () => {
  await byz?.node.stop();
  byz = undefined;
  await cluster?.destroy();
  cluster = undefined;
});

describe('announce-then-pull between real agents', () => {
  it('a 200 KB policy reaches every node through sync, about one copy each; small policies are still pushed', async () => {
    // Long sync interval: every body below moves because of gossip or an announcement.
    cluster = await Cluster.create(8, { transport: 'tcp', minPeers: 4, bootstrapCount: 2, bootstrapMode: 'previous', syncInterval: '1h' });
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= 2), 20_000);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1, 20_000);
    const small = (await Promise.all(cluster.nodes.map(Cluster.counters))).map((c) => c.announcementsOut);
    expect(small.every((x) => x === 0)).toBe(true);

    const big = cluster.policy(2);
    big.rules.push(...Cluster.bulkRules(4000));
    const size = cluster.signed(big).length;
    expect(size).toBeGreaterThan(190_000);
    const before = await Promise.all(cluster.nodes.map(Cluster.counters));
    await cluster.publish(cluster.nodes[3]!, big);
    await cluster.converged(2, 30_000);

    const after = await Promise.all(cluster.nodes.map(Cluster.counters));
    expect(after[3]!.announcementsOut).toBe(1);
    let bodies = 0;
    cluster.nodes.forEach((n, i) => {
      const c = after[i]!;
      const body = c.syncBytesIn - before[i]!.syncBytesIn;
      const gossip = c.gossipBytesIn - before[i]!.gossipBytesIn;
      if (i === 3) return;
      // The body arrived through sync (a pull, or a new connection's exchange that got there
      // first), never through gossip. Usually once; on a loaded machine two exchanges can
      // start before either has stored it (each then carries it once), never more. Pushing
      // whole envelopes would bring one copy per gossip mesh peer (4 here).
      const copies = c.syncPoliciesIn - before[i]!.syncPoliciesIn;
      expect(copies, n.name).toBeGreaterThanOrEqual(1);
      expect(copies, n.name).toBeLessThanOrEqual(2);
      expect(body, n.name).toBeGreaterThanOrEqual(size);
      expect(body, n.name).toBeLessThan((copies + 0.5) * size);
      expect(gossip, n.name).toBeLessThan(2000);
      bodies += copies;
    });
    // And over the fleet, duplicates stay the exception: at most one in two nodes.
    expect(bodies).toBeLessThanOrEqual(1.5 * (cluster.nodes.length - 1));
    expect(after.reduce((s, c) => s + c.pulls, 0)).toBeGreaterThanOrEqual(1);
    // A node that pulled lets gossipsub forward the announcement it pulled for; only a node
    // that got the body from a new connection's sync (not a pull) announces it once itself.
    expect(after.every((c) => c.announcementsOut <= 1)).toBe(true);
    expect(after.filter((c) => c.announcementsOut > 0).length).toBeLessThan(4);
    // The wire meter saw each body arrive (what TCP carried, framing included).
    expect(cluster.nodes.filter((_n, i) => i !== 3).every((n) => n.agent!.mesh.wireBytes().received > size)).toBe(true);
  }, 120_000); // eight real agents on two busy cores: its own waits (20 s + 30 s) bound it, not the default 30 s

  it('a peer that forwards an announcement for a body it does not hold, or a forged one, is penalised', async () => {
    cluster = await Cluster.create(3, { syncInterval: '1h' });
    const byzSpec = await cluster.addNode(); // listed, driven by hand
    for (const n of cluster.nodes.slice(0, 3)) await cluster.start(n);
    const honest = cluster.nodes.slice(0, 3);
    await cluster.publish(honest[0]!, cluster.policy(1));
    await cluster.converged(1, 10_000, honest);

    byz = await Byzantine.start(byzSpec.key, byzSpec.listen, 'test');
    const node = byz.node;
    node.services.pubsub.subscribe(announceTopic('test'));
    // It answers sync claiming to hold nothing newer than v1.
    await node.handle(SYNC_PROTOCOL, (stream: Stream) => {
      void runSync(stream, 'responder', {
        holdings: () => ({ meshId: 'test', rootVersion: 1, policyVersion: 1, policyDigest: honest[0]!.agent!.engine.current!.digest }),
        rootsAfter: () => [], policyEnvelope: () => undefined, peers: () => [], receive: async () => ({}),
      }, 5000).catch(() => undefined);
    });
    const target = honest[1]!;
    await node.dial(multiaddr(target.agent!.mesh.listenAddrs()[0]!));
    await until(() => node.services.pubsub.getSubscribers(announceTopic('test')).length > 0, 10_000);

    const lie = await signAnnouncement({ meshId: 'test', peerId: byzSpec.peerId, policyVersion: 99, policyDigest: DIGEST, size: 100_000, rootVersion: 1, time: Date.now() }, byzSpec.key);
    await node.services.pubsub.publish(announceTopic('test'), lie);
    await until(() => target.agent!.mesh.admission.strikes(byzSpec.peerId) >= 1, 10_000);
    expect((await Cluster.counters(target)).pulls).toBe(1);

    const forged = await signAnnouncement({ meshId: 'test', peerId: honest[0]!.peerId, policyVersion: 98, policyDigest: DIGEST, size: 100_000, rootVersion: 1, time: Date.now() }, byzSpec.key);
    await node.services.pubsub.publish(announceTopic('test'), forged);
    await until(() => target.agent!.mesh.admission.strikes(byzSpec.peerId) >= 2, 10_000);
    // A forged announcement costs no pull; nothing changed on the honest nodes.
    expect((await Cluster.counters(target)).pulls).toBe(1);
    for (const n of honest) expect(n.agent!.engine.current!.policy.version).toBe(1);
  });

  it('an announcement of the same version with other content is pulled once, so the engine sees (and reports) the equivocation', async () => {
    cluster = await Cluster.create(3, { syncInterval: '1h' });
    const byzSpec = await cluster.addNode();
    for (const n of cluster.nodes.slice(0, 3)) await cluster.start(n);
    const honest = cluster.nodes.slice(0, 3);
    await cluster.publish(honest[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, honest);
    // The admins signed a second, different v2 (a stolen key, or a mistake): byz holds that one.
    const other = cluster.policy(2, { extra: { rules: [] } });
    const otherBytes = cluster.signed(other);
    const env = decodeEnvelope(otherBytes);
    if (!env.ok) throw new Error('bad envelope');
    const otherDigest = digestOf(env.value);

    byz = await Byzantine.start(byzSpec.key, byzSpec.listen, 'test');
    const node = byz.node;
    node.services.pubsub.subscribe(announceTopic('test'));
    let served = 0;
    await node.handle(SYNC_PROTOCOL, (stream: Stream, connection: Connection) => {
      // Other honest nodes may learn byz through peer exchange and sync with it too: count the target's.
      if (connection.remotePeer.toString() === honest[1]!.peerId) served++;
      void runSync(stream, 'responder', {
        holdings: () => ({ meshId: 'test', rootVersion: 1, policyVersion: 2, policyDigest: otherDigest }),
        rootsAfter: () => [], policyEnvelope: () => otherBytes, peers: () => [], receive: async () => ({}),
      }, 5000).catch(() => undefined);
    });
    const target = honest[1]!;
    const rejected: string[] = [];
    target.agent!.engine.on('rejected', (r) => rejected.push(r.outcome));
    await node.dial(multiaddr(target.agent!.mesh.listenAddrs()[0]!));
    await until(() => node.services.pubsub.getSubscribers(announceTopic('test')).length > 0, 10_000);
    const pullsBefore = (await Cluster.counters(target)).pulls;
    for (let i = 0; i < 2; i++) {
      const ann = await signAnnouncement({ meshId: 'test', peerId: byzSpec.peerId, policyVersion: 2, policyDigest: otherDigest, size: otherBytes.length, rootVersion: 1, time: Date.now() + i }, byzSpec.key);
      await node.services.pubsub.publish(announceTopic('test'), ann);
    }
    await until(() => rejected.includes('equivocation'), 10_000, () => rejected.join(','));
    const announced = async () => (await Cluster.counters(target)).announcementsIn;
    await until(async () => { const a = await announced(); return (a.ignored ?? 0) + (a['not-pulled'] ?? 0) >= 2; }, 10_000, async () => JSON.stringify(await announced()));
    expect((await Cluster.counters(target)).pulls - pullsBefore).toBe(1);
    expect(served).toBe(1);
    // Showing an equivocation is not a lie by the peer: no strike; the node keeps its first v2.
    expect(target.agent!.mesh.admission.strikes(byzSpec.peerId)).toBe(0);
    expect(target.agent!.engine.current!.digest).not.toBe(otherDigest);
  });
});
