/**
 * The status plane's digests under attack by a listed peer (a compromised host holding its
 * own key): floods, hostile strings, forged claims about other nodes that would mark them
 * healthy or hide their real state. Digests are built here from the .proto and the signing
 * domain, never from the agent's classes: what is sent is what any attacker could send.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { peerIdFromString } from '@libp2p/peer-id';
import protobuf from 'protobufjs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { DEFAULT_BUDGETS } from '../../src/mesh/budgets.js';
import { DIGEST_TIMING } from '../../src/audit/status-digest.js';
import { HostileNode } from './hostile-node.js';
import { EvilStream } from './evil-peer.js';

const root = await protobuf.load(join(import.meta.dirname, '..', '..', 'proto', 'picket', 'status', 'v1', 'status.proto'));
const ClaimPb = root.lookupType('picket.status.v1.Claim');
const DigestPb = root.lookupType('picket.status.v1.Digest');
const CLAIM_DOMAIN = new TextEncoder().encode('picket-claim-v1');
const TOPIC = '/picket/test/digest/1';
const ref = (peerId: string) => createHash('sha256').update(peerId).digest().subarray(0, 8);

let cluster: Cluster | undefined;
const hostile: HostileNode[] = [];
afterEach(async () => {
  await Promise.all(hostile.splice(0).map((h) => h.stop().catch(() => undefined)));
  await cluster?.destroy();
  cluster = undefined;
});

interface ClaimFields { peerId: string; policyVersion: number; enforcement: string; alerts?: string[]; seq: number; time?: number }

/** A claim about `c.peerId` signed with the attacker's own key (the only node key it holds). */
async function claimBy(evil: HostileNode, c: ClaimFields) {
  const time = c.time ?? Date.now();
  const body = ClaimPb.encode(ClaimPb.create({ meshId: 'test', peerId: c.peerId, policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts ?? [], seq: c.seq, timeMs: time })).finish();
  const msg = new Uint8Array(CLAIM_DOMAIN.length + body.length);
  msg.set(CLAIM_DOMAIN);
  msg.set(body, CLAIM_DOMAIN.length);
  return { node: ref(c.peerId), policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts ?? [], seq: c.seq, timeMs: time, signature: await evil.key.sign(msg) };
}
const digest = (claims: unknown[]) => DigestPb.encode(DigestPb.create({ claims })).finish();

/** A digest carrying a tally and/or a want (bitmaps over the policy's node order, LSB first), as any listed peer can send it. */
const bitsDigest = (f: { tallyVersion?: number; tally?: Uint8Array; want?: Uint8Array; claims?: unknown[]; nonce: number }) =>
  DigestPb.encode(DigestPb.create({ claims: [], ...f })).finish();
/** One byte (policies of up to 8 nodes) with these nodes' bits set, in the cluster's node order (the order policy() lists them). */
const bitsFor = (...nodes: NodeSpec[]) => Uint8Array.of(nodes.reduce((x, n) => x | (1 << cluster!.nodes.indexOf(n)), 0));
const hasBit = (bits: Uint8Array | undefined, n: NodeSpec) => { const i = cluster!.nodes.indexOf(n); return !!bits && ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0; };

interface SentDigest { tallyVersion: number; tally?: Uint8Array; want?: Uint8Array; claims: { node: Uint8Array; seq: number; policyVersion: number }[] }
/** Every digest `n` sends from now on, decoded from the bytes it hands its mesh. */
function sentBy(n: NodeSpec): SentDigest[] {
  const mesh = n.agent!.mesh;
  const out: SentDigest[] = [];
  const send = mesh.publishDigest.bind(mesh);
  mesh.publishDigest = (bytes, to) => {
    out.push(DigestPb.toObject(DigestPb.decode(bytes), { longs: Number, defaults: false }) as SentDigest);
    return send(bytes, to);
  };
  return out;
}

/** Two honest nodes on policy v1 that also lists the attacker, who is connected to the victim and sees its digest subscription. */
async function setup(audit: Record<string, unknown> = {}): Promise<{ victim: NodeSpec; other: NodeSpec; evilSpec: NodeSpec; evil: HostileNode }> {
  cluster = await Cluster.create(2, { overrides: { audit: { probeInterval: 0, interval: '1h', statusInterval: '1h', ...audit } } });
  const evilSpec = await cluster.addNode();
  const [victim, other] = cluster.nodes as [NodeSpec, NodeSpec];
  await cluster.start(victim);
  await cluster.start(other);
  await cluster.publish(victim, cluster.policy(1));
  await cluster.converged(1, 10_000, [victim, other]);
  // The verified view: reading it asks for the claim the tally bit stands for (a want).
  await until(() => victim.agent!.auditor.fleet({ verify: true }).nodes.find((n) => n.peerId === other.peerId)?.policyVersion === 1, 10_000);
  const evil = await HostileNode.start(evilSpec.key, evilSpec.listen);
  hostile.push(evil);
  evil.node.services.pubsub.subscribe(TOPIC);
  await evil.connectMany(victim.agent!.mesh.listenAddrs()[0]!, 1);
  await until(() => evil.sees(TOPIC, victim.peerId), 10_000);
  return { victim, other, evilSpec, evil };
}

const rowOf = (n: NodeSpec, peerId: string, verify: boolean) => n.agent!.auditor.fleet({ verify }).nodes.find((r) => r.peerId === peerId)!;
const struck = (victim: NodeSpec, peer: string) => victim.agent!.mesh.admission.isBanned(peer) || victim.agent!.mesh.admission.strikes(peer) > 0;

describe('status digests from a lying listed peer', () => {
  it('a forged claim marking another node healthy on a version nobody runs never reaches the verified view, and is counted against its sender', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 99, enforcement: 'ok', seq: Date.now() + 1000 })]));
    await until(() => rowOf(victim, other.peerId, false).policyVersion === 99, 10_000);
    // The operator's view, publish --wait and the rollout gate read the verified view.
    const row = rowOf(victim, other.peerId, true);
    expect(row).toMatchObject({ policyVersion: 1, verified: true });
    expect(victim.agent!.auditor.digest.forgeriesBy(evilSpec.peerId)).toBe(1);
    // …and the forgery is gone from the unverified view too.
    expect(rowOf(victim, other.peerId, false).policyVersion).toBe(1);
  });

  it('a forged claim stamped minutes ahead cannot hide the real node\'s next claim', async () => {
    const { victim, other, evil } = await setup();
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 1, enforcement: 'ok', seq: Date.now() + 5 * 60_000 })]));
    await until(() => (victim.agent!.auditor.digest.newest(other.peerId)?.claim.seq ?? 0) > Date.now() + 60_000, 10_000);
    // The real node's state changes (an alert opens) and its next claim is lower than the forgery's seq.
    await other.agent!.alerts.raise('drift-repaired', 'drift-repaired', 'warning', 'test drift', {});
    await other.agent!.auditor.publishDigest();
    await until(() => rowOf(victim, other.peerId, true).alerts.includes('drift-repaired'), 10_000, () => JSON.stringify(rowOf(victim, other.peerId, true)));
  });

  it('a claim with terminal escapes or an unknown state name is rejected, struck and never shown', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    for (const enforcement of ['ok\u001b[2J\u001b[31m', 'OK; rm -rf /', '']) {
      await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 1, enforcement, seq: Date.now() })]));
    }
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 1, enforcement: 'ok', alerts: ['\u001b]0;owned\u0007'], seq: Date.now() })]));
    await until(() => struck(victim, evilSpec.peerId), 10_000);
    const shown = JSON.stringify(victim.agent!.auditor.fleet({ verify: false }));
    expect(shown).not.toMatch(/\u001b|rm -rf|owned/);
  });

  it('3000 digests from one listed peer: cut at the budget, the peer struck and banned, honest digests still merged', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    const claim = await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq: Date.now() });
    for (let i = 0; i < 3000; i++) await evil.publish(TOPIC, digest([{ ...claim, seq: claim.seq + i + 1 }]));
    await until(() => victim.agent!.mesh.admission.isBanned(evilSpec.peerId), 20_000, () => `strikes ${victim.agent!.mesh.admission.strikes(evilSpec.peerId)}`);
    const c = await Cluster.counters(victim);
    expect(c.budgetExceeded.digests).toBeGreaterThanOrEqual(1);
    expect(victim.agent!.mesh.libp2p.getConnections(peerIdFromString(evilSpec.peerId))).toHaveLength(0);
    expect(DEFAULT_BUDGETS.digestBurst).toBeLessThan(3000);
    // The honest neighbour's news still arrives.
    await other.agent!.alerts.raise('drift-repaired', 'drift-repaired', 'warning', 'test drift', {});
    await other.agent!.auditor.publishDigest();
    await until(() => rowOf(victim, other.peerId, true).alerts.includes('drift-repaired'), 10_000);
  });
});

describe('status tallies and wants from a lying listed peer', () => {
  it('a tally bit for a node still on the old version never shows it on the new one in the verified view, even after wants go out and a forged claim answers them', { timeout: 60_000 }, async () => {
    const { victim, other, evilSpec, evil } = await setup();
    // `other` never gets v2: it is stopped (its last signed claim says v1).
    await cluster!.stop(other);
    await cluster!.publish(victim, cluster!.policy(2));
    await cluster!.converged(2, 10_000, [victim]);
    await until(() => victim.agent!.auditor.digest.tallyVersion === 2, 10_000);
    const sent = sentBy(victim);
    await evil.publish(TOPIC, bitsDigest({ tallyVersion: 2, tally: bitsFor(other, evilSpec), nonce: 1 }));
    // The hearsay view may count it (that is what bits are for)…
    await until(() => rowOf(victim, other.peerId, false).policyVersion === 2, 10_000);
    // …the verified view (status --mesh, publish --wait, rollout gates) never does. Each read
    // wants other's claim; the liar answers the first want with a claim it forged.
    let shown: unknown;
    const read = () => { const r = rowOf(victim, other.peerId, true); if (r.policyVersion !== 1 || !r.verified) shown ??= r; };
    const wants = () => sent.filter((d) => d.tallyVersion === 2 && hasBit(d.want, other)).length;
    await until(() => { read(); return wants() >= 1; }, 10_000);
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 2, enforcement: 'ok', seq: Date.now() + 1000 })]));
    await until(() => { read(); return victim.agent!.auditor.digest.forgeriesBy(evilSpec.peerId) >= 1; }, 10_000);
    // Time passes: the next want window (DIGEST_TIMING.wantEvery) asks again, and still nothing verifies v2.
    await until(() => { read(); return wants() >= 2; }, 30_000, () => `wants sent: ${wants()}`);
    read();
    expect(shown).toBeUndefined();
    // The operator sees the lie only as hearsay, apart ("v1>v2?", "1 more report v2"); publish --wait counts policyVersion.
    expect(rowOf(victim, other.peerId, true).reportedVersion).toBe(2);
    expect(victim.agent!.auditor.fleet({ verify: true }).summary).toMatch(/^1\/3 on v2/);
  });

  it('a tally of the wrong length, one setting bits past the node count, or one without a version is rejected and struck, and nothing of it is merged', async () => {
    const { victim, evilSpec, evil } = await setup();
    const seq = Date.now();
    const mine = async (i: number) => [await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq: seq + i })];
    // Three nodes: one byte, bits 3..7 are padding. Each digest also carries the liar's own valid claim and bit.
    const bad = [
      bitsDigest({ tallyVersion: 1, tally: Uint8Array.of(bitsFor(evilSpec)[0]!, 0), claims: await mine(1), nonce: 1 }),
      bitsDigest({ tallyVersion: 1, tally: Uint8Array.of(bitsFor(evilSpec)[0]! | 0b1000_0000), claims: await mine(2), nonce: 2 }),
      bitsDigest({ tally: bitsFor(evilSpec), claims: await mine(3), nonce: 3 }),
    ];
    const admission = victim.agent!.mesh.admission;
    for (const [i, bytes] of bad.entries()) {
      await evil.publish(TOPIC, bytes);
      await until(() => admission.strikes(evilSpec.peerId) > i || admission.isBanned(evilSpec.peerId), 10_000, () => `strikes after digest ${i}: ${admission.strikes(evilSpec.peerId)}`);
    }
    expect(admission.isBanned(evilSpec.peerId)).toBe(true);
    const d = victim.agent!.auditor.digest;
    expect(d.onTally(evilSpec.peerId)).toBe(false);
    expect(d.newest(evilSpec.peerId)).toBeUndefined();
  });

  it('a want flood for every node makes the victim send each claim at most once per window, and honest tallies and claims still merge', { timeout: 60_000 }, async () => {
    const { victim, other, evilSpec, evil } = await setup();
    const auditor = victim.agent!.auditor;
    const sent = sentBy(victim);
    // Within the digests budget (so what holds is the want rule, not the ban): 100 wants for all
    // three nodes. Each carries the liar's own claim (a new seq) to tell when the victim merged it;
    // after the first 50 the victim's relay step runs (what its timer would do), so a claim
    // queued again by a want would go out again.
    const FLOOD = 100;
    const seq = Date.now(), t0 = Date.now();
    for (let i = 0; i < FLOOD; i++) {
      const mark = [await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq: seq + i })];
      await evil.publish(TOPIC, bitsDigest({ tallyVersion: 1, want: bitsFor(victim, other, evilSpec), claims: mark, nonce: i + 1 }));
      if (i >= FLOOD / 2) continue;
      await until(() => auditor.digest.newest(evilSpec.peerId)?.claim.seq === seq + i, 10_000);
      await auditor.publishDigest();
    }
    await until(() => auditor.digest.newest(evilSpec.peerId)?.claim.seq === seq + FLOOD - 1, 10_000);
    await auditor.publishDigest(); // and everything the wants queued has gone out
    const about = (n: NodeSpec) => sent.flatMap((d) => d.claims ?? []).filter((c) => Buffer.from(c.node).equals(ref(n.peerId))).length;
    // Once per want window (more than one only if the flood outlasted DIGEST_TIMING.wantEvery on
    // busy cores), and once in the full digest the liar's new connection got.
    const windows = Math.floor((Date.now() - t0) / DIGEST_TIMING.wantEvery) + 1;
    expect(about(other)).toBeLessThanOrEqual(windows + 1);
    expect(about(victim)).toBeLessThanOrEqual(windows + 2);
    expect(sent.length).toBeLessThanOrEqual(FLOOD + 5); // at most one relay per merged digest (the liar's own new claims), nothing more per want
    // The honest neighbour's next version still travels: its tally bit, then (a verified read wants it) its claim.
    await cluster!.publish(other, cluster!.policy(2));
    await until(() => auditor.digest.tallyVersion === 2 && auditor.digest.onTally(other.peerId), 15_000);
    await until(() => rowOf(victim, other.peerId, true).policyVersion === 2, 15_000, () => JSON.stringify(rowOf(victim, other.peerId, true)));
  });

  it('far-future tally versions cannot evict the next real version\'s early tally: the victim merges it when that version arrives', { timeout: 60_000 }, async () => {
    const { victim, other, evilSpec, evil } = await setup();
    // `other` gets v2 first and alone; the victim hears its bit (relayed) before it holds v2.
    await cluster!.partition([victim, evilSpec], [other]);
    const p2 = cluster!.policy(2);
    await cluster!.publish(other, p2);
    await cluster!.converged(2, 10_000, [other]);
    const big = new Uint8Array(1250).fill(0xff);
    let nonce = 0;
    for (let v = 1001; v < 1031; v++) await evil.publish(TOPIC, bitsDigest({ tallyVersion: v, tally: big, nonce: ++nonce }));
    await evil.publish(TOPIC, bitsDigest({ tallyVersion: 2, tally: bitsFor(other), nonce: ++nonce }));
    const seq = Date.now();
    for (let v = 1031; v < 1061; v++) await evil.publish(TOPIC, bitsDigest({ tallyVersion: v, tally: big, nonce: ++nonce, claims: v === 1060 ? [await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq })] : [] }));
    await until(() => victim.agent!.auditor.digest.newest(evilSpec.peerId)?.claim.seq === seq, 10_000);
    expect(victim.agent!.auditor.digest.tallyVersion).toBe(1);
    // v2 reaches the victim (still cut off from `other`, whose later digests cannot reach it).
    await cluster!.publish(victim, p2);
    await until(() => victim.agent!.auditor.digest.tallyVersion === 2, 10_000);
    expect(victim.agent!.auditor.digest.onTally(other.peerId)).toBe(true);
    expect(rowOf(victim, other.peerId, false)).toMatchObject({ policyVersion: 2, verified: false });
  });

  it('a wrong-sized tally for the next version does not erase the early tally honest neighbours sent for it', { timeout: 60_000 }, async () => {
    const { victim, other, evilSpec, evil } = await setup();
    await cluster!.partition([victim, evilSpec], [other]);
    const p2 = cluster!.policy(2);
    await cluster!.publish(other, p2);
    await cluster!.converged(2, 10_000, [other]);
    const seq = Date.now();
    await evil.publish(TOPIC, bitsDigest({ tallyVersion: 2, tally: bitsFor(other), nonce: 1 }));
    // The liar's tally of v2 is two bytes: it cannot fit a three-node policy, but the victim cannot know before v2 arrives.
    await evil.publish(TOPIC, bitsDigest({ tallyVersion: 2, tally: Uint8Array.of(0xff, 0xff), nonce: 2, claims: [await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq })] }));
    await until(() => victim.agent!.auditor.digest.newest(evilSpec.peerId)?.claim.seq === seq, 10_000);
    await cluster!.publish(victim, p2);
    await until(() => victim.agent!.auditor.digest.tallyVersion === 2, 10_000);
    expect(victim.agent!.auditor.digest.onTally(other.peerId)).toBe(true);
  });

  it('a replayed tally of a previous version is ignored: it neither counts a node on the new version nor strikes its sender', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    await cluster!.stop(other);
    await cluster!.publish(victim, cluster!.policy(2));
    await until(() => victim.agent!.auditor.digest.tallyVersion === 2, 10_000);
    // v1's tally had everyone's bit; v2's bit order could be another, and nobody but the victim says v2.
    const seq = Date.now();
    await evil.publish(TOPIC, bitsDigest({ tallyVersion: 1, tally: bitsFor(victim, other, evilSpec), nonce: 1, claims: [await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq })] }));
    await until(() => victim.agent!.auditor.digest.newest(evilSpec.peerId)?.claim.seq === seq, 10_000);
    const d = victim.agent!.auditor.digest;
    expect([d.onTally(other.peerId), d.onTally(evilSpec.peerId)]).toEqual([false, false]);
    expect(rowOf(victim, other.peerId, false).policyVersion).toBe(1);
    expect(struck(victim, evilSpec.peerId)).toBe(false);
  });

  it('a liar\'s tally bit cannot resolve a dead node\'s node-silent alert (only a verified claim can)', { timeout: 60_000 }, async () => {
    const { victim, other, evil } = await setup({ silentAfter: '4s' });
    const auditor = victim.agent!.auditor, alerts = victim.agent!.alerts;
    await cluster!.stop(other);
    const key = `node-silent/${other.peerId}`;
    let last = 0;
    await until(async () => { if (Date.now() - last > 250) { last = Date.now(); await auditor.audit(); } return alerts.isOpen(key); }, 20_000);
    await cluster!.publish(victim, cluster!.policy(2));
    await until(() => auditor.digest.tallyVersion === 2, 10_000);
    await evil.publish(TOPIC, bitsDigest({ tallyVersion: 2, tally: bitsFor(other), nonce: 1 }));
    await until(() => auditor.digest.onTally(other.peerId), 10_000);
    await auditor.audit();
    expect(alerts.isOpen(key)).toBe(true);
  });
});

/** A new neighbour's full view travels on a stream of its own (digestProtocol): the same attacks, on that door. */
const DIRECT = '/picket/test/digest/1.0.0';
const openDirect = async (evil: HostileNode, victim: NodeSpec) => new EvilStream(await evil.node.dialProtocol(peerIdFromString(victim.peerId), DIRECT));

describe('direct digest streams from a lying listed peer', () => {
  it('a direct digest frame announced at 4 MiB is cut at its length prefix (never buffered) and its sender struck', async () => {
    const { victim, evilSpec, evil } = await setup();
    const s = await openDirect(evil, victim);
    const sent = await s.hugeFrame(4 * 1024 * 1024, 4 * 1024 * 1024);
    await until(() => struck(victim, evilSpec.peerId), 10_000);
    expect(sent).toBeLessThan(1024 * 1024 + 512 * 1024);
    await until(() => s.closed(), 10_000);
  });

  it('a garbage direct digest is rejected, its sender struck, and nothing after it on the stream is merged', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    const s = await openDirect(evil, victim);
    await s.frame(Uint8Array.of(0xff, 0xff, 0xff, 0x0f, 0x01, 0x02));
    await s.frame(digest([await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 7, enforcement: 'ok', seq: Date.now() })])).catch(() => undefined);
    await until(() => struck(victim, evilSpec.peerId), 10_000);
    await until(() => s.closed(), 10_000);
    expect(victim.agent!.auditor.digest.newest(evilSpec.peerId)?.claim.policyVersion).not.toBe(7);
    expect(rowOf(victim, other.peerId, true).policyVersion).toBe(1);
  });

  it('3000 digest frames on one direct stream are cut at the digest budget: a stream buys no more than gossip', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    const s = await openDirect(evil, victim);
    const claim = await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq: Date.now() });
    let written = 0;
    try {
      for (let i = 0; i < 3000 && !s.closed(); i++) { await s.frame(digest([{ ...claim, seq: claim.seq + i + 1 }])); written++; }
    } catch { /* cut by the victim */ }
    await until(async () => (await Cluster.counters(victim)).budgetExceeded.digests! >= 1, 10_000);
    // The victim stopped reading at its budget: what it merged is bounded by the burst, not by what was written.
    const merged = victim.agent!.auditor.digest.newest(evilSpec.peerId)!.claim.seq - claim.seq;
    expect(merged).toBeLessThanOrEqual(DEFAULT_BUDGETS.digestBurst + 5);
    expect(written).toBeGreaterThan(merged);
    await until(() => s.closed(), 10_000);
    // The honest neighbour's news still arrives.
    await other.agent!.alerts.raise('drift-repaired', 'drift-repaired', 'warning', 'test drift', {});
    await other.agent!.auditor.publishDigest();
    await until(() => rowOf(victim, other.peerId, true).alerts.includes('drift-repaired'), 10_000);
  });

  it('direct digest streams held open and silent are closed by the stream timeout, and past the stream budget they are refused', { timeout: 60_000 }, async () => {
    const { victim, evilSpec, evil } = await setup();
    // Within the budget (two at once): held by nobody but the victim's timeout.
    const held = await Promise.all([openDirect(evil, victim), openDirect(evil, victim)]);
    await until(() => held.every((s) => s.closed()), 30_000, () => `${held.filter((s) => !s.closed()).length} still open`);
    expect(victim.agent!.mesh.admission.isBanned(evilSpec.peerId)).toBe(false);
    // Six at once: past two, refused before a byte is read.
    await Promise.all(Array.from({ length: 6 }, () => openDirect(evil, victim).catch(() => undefined)));
    await until(async () => (await Cluster.counters(victim)).budgetExceeded.streams! >= 1, 10_000);
  });
});
