import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { randomBytes } from 'node:crypto';
import { claimRow, DIGEST_TIMING, firstRunDelay, firstTick, FleetDigest, isTallyChange, relayDelayFor, relayDue, type Claim, type OwnState } from '../../src/audit/status-digest.js';
import { claimVerifier, decodeDigest, encodeDigests, MAX_DIGEST_BYTES, nodeRef, signClaim } from '../../src/audit/status-claims.js';
import { pb } from '../../src/wire/proto.js';

const T0 = Date.parse('2026-11-27T08:00:00Z');
const keys: PrivateKey[] = await Promise.all(Array.from({ length: 6 }, () => generateKeyPair('Ed25519')));
const ids = keys.map((k) => peerIdFromPrivateKey(k).toString());
const [self, a, b, c, liar] = ids as [string, string, string, string, string];
const verify = claimVerifier('prod');

const claim = (i: number, seq: number, over: Partial<Omit<Claim, 'signature' | 'peerId' | 'seq'>> = {}): Promise<Claim> =>
  signClaim('prod', { peerId: ids[i]!, policyVersion: 2, enforcement: 'ok', alerts: [], seq, time: T0 + seq, ...over }, keys[i]!);
/** A claim about node i signed with someone else's key: what a lying relay can make. */
const forged = async (i: number, seq: number, over: Partial<Omit<Claim, 'signature' | 'peerId' | 'seq'>> = {}): Promise<Claim> =>
  ({ ...(await signClaim('prod', { peerId: ids[i]!, policyVersion: 2, enforcement: 'ok', alerts: [], seq, time: T0 + seq, ...over }, keys[4]!)) });

const digest = () => {
  const d = new FleetDigest({ self, verify });
  d.setMembers(ids.slice(0, 5));
  return d;
};
const view = (d: FleetDigest) => ids.map((id) => d.newest(id)?.claim.seq ?? null);

describe('status digest merge (a join: order, repetition and delay do not matter)', () => {
  it('is commutative: two digests merged in either order give the same view', async () => {
    const x = [await claim(1, 5), await claim(2, 9, { enforcement: 'failed' })];
    const y = [await claim(1, 7), await claim(3, 3), await claim(2, 4)];
    const d1 = digest(), d2 = digest();
    d1.merge(x, a, T0); d1.merge(y, b, T0);
    d2.merge(y, b, T0); d2.merge(x, a, T0);
    expect(view(d1)).toEqual(view(d2));
    expect(view(d1).slice(1, 4)).toEqual([7, 9, 3]);
  });
  it('is idempotent: the same digest twice changes nothing the second time', async () => {
    const x = [await claim(1, 5), await claim(2, 9)];
    const d = digest();
    expect(d.merge(x, a, T0).changed).toHaveLength(2);
    expect(d.merge(x, a, T0).changed).toHaveLength(0);
    expect(d.merge(x, b, T0).changed).toHaveLength(0);
  });
  it('tells liveness from news: a newer claim that says the same is liveness only, a changed state is news', async () => {
    const d = digest();
    expect(d.merge([await claim(1, 5)], a, T0).news).toBe(true); // first heard of: news
    const live = d.merge([await claim(1, 6)], a, T0);
    expect(live.changed).toEqual([a]);
    expect(live.news).toBe(false);
    expect(d.merge([await claim(1, 7, { enforcement: 'failed' })], a, T0).news).toBe(true);
    expect(d.merge([await claim(1, 8, { enforcement: 'failed', alerts: ['port-open'] })], a, T0).news).toBe(true);
    expect(d.merge([await claim(1, 9, { enforcement: 'failed', alerts: ['port-open'], policyVersion: 3 })], a, T0).news).toBe(true);
    // One news claim among liveness claims makes the whole merge news: nothing waits behind liveness.
    const mixed = d.merge([await claim(2, 1), await claim(1, 10, { enforcement: 'failed', alerts: ['port-open'], policyVersion: 3 })], b, T0);
    expect(mixed.news).toBe(true);
  });
  it('a liar relaying a real change as a liveness look-alike cannot slow it: the claim itself says what changed', async () => {
    const d = digest();
    d.merge([await claim(1, 5)], a, T0);
    // The liar's copy (forged signature) of "same as before" with a higher seq, then the real failure.
    expect(d.merge([await forged(1, 6)], liar, T0).news).toBe(false);
    expect(d.merge([await claim(1, 7, { enforcement: 'failed' })], b, T0).news).toBe(true);
  });
  it('a fleet started together does not send its full statuses in the same interval: each node starts its cycle at random', () => {
    const counts = [0, 0, 0, 0];
    let x = 7;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 400; i++) counts[firstTick(rnd)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(60); // ~100 each: no interval gets the whole fleet
    expect(firstTick(() => 0.9999999, 4)).toBe(3);
    expect(firstTick(() => 0.5, 1)).toBe(0);
  });
  it('a fleet started in the same second spreads its first periodic statuses over the interval (no fleet-wide round)', () => {
    let x = 11;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const firsts = Array.from({ length: 300 }, () => firstRunDelay(30_000, rnd));
    for (const d of firsts) { expect(d).toBeGreaterThanOrEqual(3000); expect(d).toBeLessThanOrEqual(30_000); }
    // Per 3-second slot of the interval, no slot holds more than a fifth of the fleet (uniform: a tenth).
    const slots = new Array(10).fill(0) as number[];
    for (const d of firsts) slots[Math.min(9, Math.floor(d / 3000))]!++;
    expect(Math.max(...slots)).toBeLessThan(60);
  });
  it('relays news within relayDelay and liveness alone within a fraction of the status interval, far inside silentAfter', () => {
    for (const r of [0, 0.5, 0.999]) {
      const news = relayDelayFor(true, 30_000, () => r), live = relayDelayFor(false, 30_000, () => r);
      expect(news).toBeGreaterThanOrEqual(DIGEST_TIMING.relayDelay[0]);
      expect(news).toBeLessThanOrEqual(DIGEST_TIMING.relayDelay[1]);
      expect(live).toBeGreaterThanOrEqual(3000);
      expect(live).toBeLessThanOrEqual(6000);
    }
    // A tiny interval (tests) never relays liveness faster than news.
    expect(relayDelayFor(false, 100, () => 0)).toBeGreaterThanOrEqual(DIGEST_TIMING.relayDelay[0]);
  });
  it('news brings a waiting liveness relay forward; nothing pushes a pending relay back', () => {
    const now = 1_000_000;
    const live = relayDue(null, now, false, 30_000, () => 0.5)!;
    expect(live).toBeGreaterThanOrEqual(now + 3000);
    // News while it waits: a new, sooner relay replaces it.
    const news = relayDue(live, now + 100, true, 30_000, () => 0.5);
    expect(news).not.toBeNull();
    expect(news!).toBeLessThan(live);
    // Liveness (or news) while a sooner relay is pending: that one stands.
    expect(relayDue(news, now + 200, false, 30_000, () => 0)).toBeNull();
    expect(relayDue(news, now + 200, true, 30_000, () => 0.999)).toBeNull();
  });
  it('is monotonic: a node\'s newest seq never goes down, whatever arrives', async () => {
    const d = digest();
    let last = 0;
    for (const s of [4, 9, 2, 9, 11, 1, 10]) {
      d.merge([await claim(1, s)], a, T0);
      const now = d.newest(a)!.claim.seq;
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
    expect(last).toBe(11);
  });
  it('never lets a stale claim overwrite a newer verified one (replayed "all good")', async () => {
    const d = digest();
    d.merge([await claim(1, 20, { enforcement: 'failed' })], a, T0);
    expect(d.verified(a)?.claim.enforcement).toBe('failed');
    expect(d.merge([await claim(1, 10, { enforcement: 'ok' })], b, T0).changed).toEqual([]);
    expect(claimRow(d, a, true)).toMatchObject({ seq: 20, enforcement: 'failed', verified: true });
    expect(claimRow(d, a, false)).toMatchObject({ seq: 20, enforcement: 'failed' });
  });
  it('with suppressAfter 2, leaves out of the next digest a change already heard from two neighbours, never our own', async () => {
    const d = new FleetDigest({ self, verify, suppressAfter: 2 });
    d.setMembers(ids.slice(0, 5));
    const x = await claim(1, 5), y = await claim(2, 5), mine = await claim(0, 5);
    d.merge([x, y], a, T0);
    d.merge([x], b, T0);
    d.own(mine, T0);
    expect(d.delta().map((k) => k.peerId).sort()).toEqual([self, b].sort());
    // The periodic full digest still carries everything.
    expect(d.all()).toHaveLength(3);
    const never = new FleetDigest({ self, verify, suppressAfter: 0 });
    never.setMembers(ids);
    never.merge([x], a, T0); never.merge([x], b, T0);
    expect(never.delta()).toHaveLength(1);
  });
  it('verifies no signature while merging a fleet-wide change', async () => {
    const d = digest();
    d.merge(await Promise.all([1, 2, 3, 4].map((i) => claim(i, 100 + i))), a, T0);
    expect(d.verifications).toBe(0);
    expect(d.all()).toHaveLength(4);
  });
  it('ignores claims about nodes the policy does not list, and drops them when a node leaves', async () => {
    const d = new FleetDigest({ self, verify });
    d.setMembers([self, a, b]);
    d.merge([await claim(1, 5), await claim(3, 5)], a, T0);
    expect(d.newest(c)).toBeUndefined();
    d.setMembers([self, b]);
    expect(d.newest(a)).toBeUndefined();
  });
  it('hands claims about this node back for the twin check instead of storing them', async () => {
    const d = digest();
    const mine = await claim(0, 7);
    d.own(mine, T0);
    expect(d.merge([mine], a, T0).aboutSelf).toEqual([]); // our own echo
    const other = await claim(0, 8);
    expect(d.merge([other], a, T0).aboutSelf).toEqual([other]);
    expect(d.newest(self)!.claim.seq).toBe(7);
  });
});

describe('status digest trust: forged and unsigned claims', () => {
  it('never marks a node healthy from a forged claim (signed with another key), and counts it against its sender', async () => {
    const d = digest();
    d.merge([await claim(1, 10, { enforcement: 'failed' })], a, T0);
    d.merge([await forged(1, 11, { enforcement: 'ok', policyVersion: 9 })], liar, T0);
    // Hearsay shows it until someone uses it…
    expect(d.newest(a)!.claim.enforcement).toBe('ok');
    // …the verified view never does.
    expect(claimRow(d, a, true)).toMatchObject({ enforcement: 'failed', policyVersion: 2, seq: 10, verified: true });
    expect(d.forgeriesBy(liar)).toBe(1);
    // The forgery is gone: neither shown nor relayed, and not taken back when sent again.
    expect(d.newest(a)!.claim.seq).toBe(10);
    expect(d.delta().map((x) => [x.peerId, x.seq])).toContainEqual([a, 10]);
    expect(d.merge([await forged(1, 11, { enforcement: 'ok', policyVersion: 9 })], b, T0 + 1).changed).toEqual([]);
    // A different forgery is hearsay again until used, and fails again.
    expect(d.merge([await forged(1, 12, { enforcement: 'ok', policyVersion: 9 })], b, T0 + 1).changed).toEqual([a]);
    expect(claimRow(d, a, true)).toMatchObject({ enforcement: 'failed' });
    expect(d.forgeriesBy(b)).toBe(1);
  });
  it('never marks a node healthy from an unsigned claim (empty or zero signature) or one changed after signing', async () => {
    const d = digest();
    const real = await claim(2, 10, { enforcement: 'failed' });
    d.merge([real], a, T0);
    d.merge([{ ...real, seq: 11, enforcement: 'ok', signature: new Uint8Array(64) }], liar, T0);
    d.merge([{ ...real, seq: 12, enforcement: 'ok', signature: new Uint8Array() }], liar, T0);
    d.merge([{ ...real, enforcement: 'ok', seq: 13 }], liar, T0); // real signature, changed fields
    expect(claimRow(d, b, true)).toMatchObject({ enforcement: 'failed', seq: 10 });
    expect(d.forgeriesBy(liar)).toBe(3);
  });
  it('a forged claim with a higher seq cannot hide the real newer claim behind it', async () => {
    const d = digest();
    d.merge([await forged(3, 500, { enforcement: 'ok' })], liar, T0);
    d.merge([await claim(3, 400, { enforcement: 'drift-repaired' })], a, T0);
    expect(claimRow(d, c, true)).toMatchObject({ seq: 400, enforcement: 'drift-repaired', verified: true });
  });
  it('drops a claim stamped (seq or time) far ahead of the receiver\'s clock: a far-future seq would shadow the node for as long', async () => {
    const d = digest();
    d.merge([await claim(1, 10)], a, T0 + 10);
    expect(d.merge([await forged(1, 30 * 60_000)], liar, T0).changed).toEqual([]);
    expect(d.merge([{ ...(await claim(1, 11)), seq: T0 + 3_600_000 }], liar, T0 + 11).changed).toEqual([]);
  });
  it('sample() finds forgeries among claims nobody has read yet', async () => {
    const d = digest();
    d.merge([await forged(1, 5), await forged(2, 5), await forged(3, 5)], liar, T0);
    let i = 0;
    expect(d.sample(3, (n) => (i++) % n)).toBe(3);
    expect(d.forgeriesBy(liar)).toBe(3);
    expect(d.verifications).toBe(3);
  });
});

describe('digest wire', () => {
  const resolve = (ref: string) => ids.find((id) => nodeRef(id) === ref);
  it('round-trips claims and their signatures', async () => {
    const claims = [await claim(1, 5, { alerts: ['drift-repaired'] }), await claim(2, 6)];
    const [bytes] = encodeDigests(claims);
    const d = decodeDigest(bytes!, resolve);
    expect(d).toMatchObject({ ok: true });
    if (d.ok) {
      expect(d.claims).toHaveLength(2);
      expect(d.claims.every(verify)).toBe(true);
    }
  });
  it('skips claims about nodes the receiver does not know (the sender may hold a newer policy)', async () => {
    const [bytes] = encodeDigests([await claim(1, 5), await claim(2, 6)]);
    expect(decodeDigest(bytes!, (ref) => (ref === nodeRef(a) ? a : undefined))).toMatchObject({ ok: true, claims: [{ peerId: a }] });
  });
  it('rejects garbage, an oversized digest and claims with hostile fields', async () => {
    expect(decodeDigest(randomBytes(200), resolve)).toMatchObject({ ok: false });
    expect(decodeDigest(new Uint8Array(MAX_DIGEST_BYTES + 1), resolve)).toMatchObject({ ok: false, reason: 'digest too large' });
    const w = (over: Record<string, unknown>) => pb.status.v1.Digest.encode({ claims: [{ node: Buffer.from(nodeRef(a), 'hex'), policyVersion: 2, enforcement: 'ok', alerts: [], seq: 5, timeMs: T0, signature: new Uint8Array(64), ...over }] }).finish();
    expect(decodeDigest(w({}), resolve)).toMatchObject({ ok: true });
    expect(decodeDigest(w({ enforcement: 'ok\u001b[2J' }), resolve)).toMatchObject({ ok: false, reason: 'digest claim field is not a name' });
    expect(decodeDigest(w({ alerts: ['x'.repeat(300)] }), resolve)).toMatchObject({ ok: false });
    expect(decodeDigest(w({ alerts: Array.from({ length: 40 }, () => 'a') }), resolve)).toMatchObject({ ok: false });
    expect(decodeDigest(w({ timeMs: Number.MAX_SAFE_INTEGER }), resolve)).toMatchObject({ ok: false, reason: 'digest claim number out of range' });
    expect(decodeDigest(w({ signature: new Uint8Array(10) }), resolve)).toMatchObject({ ok: false, reason: 'malformed digest claim' });
    expect(decodeDigest(w({ node: new Uint8Array(32) }), resolve)).toMatchObject({ ok: false, reason: 'malformed digest claim' });
  });
  it('carries a staged rollout\'s stage and held version, signed, and refuses forged bounds (stage above 8, holding a version not older)', async () => {
    const held = await claim(1, 5, { rolloutStage: 2, rolloutEnforcing: 1 });
    const [bytes] = encodeDigests([held]);
    const d = decodeDigest(bytes!, resolve);
    expect(d).toMatchObject({ ok: true, claims: [{ peerId: a, rolloutStage: 2, rolloutEnforcing: 1 }] });
    if (d.ok) expect(verify(d.claims[0]!)).toBe(true);
    // Changing the held version after signing breaks the signature: a relay cannot release a hold.
    if (d.ok) expect(verify({ ...d.claims[0]!, rolloutEnforcing: undefined })).toBe(false);
    const w = (over: Record<string, unknown>) => pb.status.v1.Digest.encode({ claims: [{ node: Buffer.from(nodeRef(a), 'hex'), policyVersion: 2, enforcement: 'ok', alerts: [], seq: 5, timeMs: T0, signature: new Uint8Array(64), ...over }] }).finish();
    expect(decodeDigest(w({ rolloutStage: 9 }), resolve)).toMatchObject({ ok: false, reason: 'digest claim rollout field out of range' });
    expect(decodeDigest(w({ rolloutEnforcing: 2 }), resolve)).toMatchObject({ ok: false, reason: 'digest claim rollout field out of range' });
    // With a staged rollout the claim also carries the policy digest the gate compares, signed.
    const pd = 'ab'.repeat(32);
    const staged = await claim(1, 7, { rolloutStage: 1, digest: pd });
    const [sb] = encodeDigests([staged]);
    const back = decodeDigest(sb!, resolve);
    expect(back).toMatchObject({ ok: true, claims: [{ peerId: a, rolloutStage: 1, digest: pd }] });
    if (back.ok) {
      expect(verify(back.claims[0]!)).toBe(true);
      expect(verify({ ...back.claims[0]!, digest: 'cd'.repeat(32) })).toBe(false);
    }
    expect(decodeDigest(w({ policyDigest: new Uint8Array(5) }), resolve)).toMatchObject({ ok: false, reason: 'malformed digest claim' });
    // Claims without a rollout encode (and sign) exactly as before the fields existed.
    const plain = await claim(1, 6);
    expect(Object.keys(plain)).not.toContain('rolloutStage');
  });
  it('splits a large fleet\'s digest into messages under the limit', async () => {
    const one = await claim(1, 5);
    const many = Array.from({ length: 5000 }, (_, i) => ({ ...one, seq: i + 1 }));
    const parts = encodeDigests(many);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => p.length <= MAX_DIGEST_BYTES)).toBe(true);
  });
  it('a claim signed for another mesh does not verify here', async () => {
    const other = await signClaim('staging', { peerId: a, policyVersion: 2, enforcement: 'ok', alerts: [], seq: 5, time: T0 }, keys[1]!);
    expect(verify(other)).toBe(false);
  });
});

describe('status tallies: a fleet-wide change as one bit per node', () => {
  const members = ids.slice(0, 5); // self, a, b, c, liar: 5 nodes → 1 byte
  const tallied = (v = 3) => {
    const d = new FleetDigest({ self, verify });
    d.setMembers(members, v);
    return d;
  };
  const bitsOf = (...idx: number[]) => Uint8Array.of(idx.reduce((x, i) => x | (1 << i), 0));

  it('merges by OR: commutative, idempotent, monotonic; only new bits count as a change', () => {
    const d1 = tallied(), d2 = tallied();
    expect(d1.mergeTally({ version: 3, bits: bitsOf(1) })).toEqual({ ok: true, changed: [a] });
    expect(d1.mergeTally({ version: 3, bits: bitsOf(1, 2) })).toEqual({ ok: true, changed: [b] });
    d2.mergeTally({ version: 3, bits: bitsOf(1, 2) });
    d2.mergeTally({ version: 3, bits: bitsOf(1) });
    expect(d1.tallyCount()).toBe(2);
    expect([a, b, c].map((id) => d1.onTally(id))).toEqual([a, b, c].map((id) => d2.onTally(id)));
    expect(d1.mergeTally({ version: 3, bits: bitsOf(2) })).toEqual({ ok: true, changed: [] });
    // Merging never clears a bit.
    d1.mergeTally({ version: 3, bits: bitsOf() });
    expect(d1.onTally(a) && d1.onTally(b)).toBe(true);
  });

  it('sends its tally only when it changed (or in a full digest); a new policy version starts empty', () => {
    const d = tallied();
    expect(d.tallyDelta()).toBeUndefined();
    d.mark(self);
    expect(d.tallyDelta()).toEqual({ version: 3, bits: bitsOf(0) });
    expect(d.tallyDelta()).toBeUndefined();
    expect(d.tallyDelta(true)).toEqual({ version: 3, bits: bitsOf(0) });
    d.setMembers(members, 4);
    expect(d.tallyCount()).toBe(0);
    expect(d.tallyVersion).toBe(4);
  });

  it('a digest sent between accepting a version and applying it (pending) signs no claim: the change is still one tally bit', () => {
    // On a busy node a neighbour's relay lands in the apply window: signing "v3 pending" there
    // and "v3 ok" after it cost two claims per node per change (seen in CI), not one bit.
    const d = tallied();
    const v2: OwnState = { policyVersion: 2, enforcement: 'ok', alerts: [] };
    const pending: OwnState = { policyVersion: 3, enforcement: 'pending', alerts: [] };
    expect(d.ownStep(v2, pending, true, false)).toBe('none');
    expect(d.onTally(self)).toBe(false);
    expect(d.ownStep(v2, { ...pending, enforcement: 'ok' }, true, false)).toBe('tally');
    expect(d.onTally(self)).toBe(true);
    // Liveness still says it as it is, and a failed apply is a change worth a signature.
    expect(d.ownStep(v2, pending, true, true)).toBe('claim');
    expect(d.ownStep(v2, { ...pending, enforcement: 'failed' }, true, false)).toBe('claim');
  });

  it('a node\'s next liveness claim after a change its bit already said is liveness, not news (no relay wave per node after every change)', async () => {
    // After a fleet-wide change every node's next periodic claim says "v3, ok" where its
    // last one said "v2, ok". The tally bit said so already: relayed as news, each of the N
    // claims became its own fast wave through the fleet for one statusInterval after every
    // change (N digests per node per change), instead of being coalesced as liveness.
    const d = tallied(3);
    d.merge([await claim(1, 5, { policyVersion: 2 })], a, T0);
    d.mergeTally({ version: 3, bits: bitsOf(1, 2) });
    expect(d.merge([await claim(1, 6, { policyVersion: 3 })], a, T0).news).toBe(false);
    // Known only by its bit: a first claim that says what the bit said is liveness too.
    expect(d.merge([await claim(2, 6, { policyVersion: 3 })], a, T0).news).toBe(false);
    // What the bit did not say is news: another enforcement, new alerts, a node off the tally.
    d.merge([await claim(3, 5, { policyVersion: 2 })], a, T0);
    d.mergeTally({ version: 3, bits: bitsOf(1, 2, 3) });
    expect(d.merge([await claim(3, 6, { policyVersion: 3, alerts: ['port-open'] })], a, T0).news).toBe(true);
    const e = tallied(3);
    e.merge([await claim(1, 5, { policyVersion: 2 })], a, T0);
    e.mergeTally({ version: 3, bits: bitsOf(1) });
    expect(e.merge([await claim(1, 6, { policyVersion: 3, enforcement: 'failed' })], a, T0).news).toBe(true);
    expect(tallied(3).merge([await claim(1, 6, { policyVersion: 3 })], a, T0).news).toBe(true); // no bit: first heard of
    // A liar's bit cannot hold back a real claim that says something else ("pending" is not "ok").
    const f = tallied(3);
    f.merge([await claim(1, 5, { policyVersion: 2 })], a, T0);
    f.mergeTally({ version: 3, bits: bitsOf(1) });
    expect(f.merge([await claim(1, 6, { policyVersion: 3, enforcement: 'pending' })], b, T0).news).toBe(true);
    // Once a claim at the tally's version is held, the bit no longer speaks: claims are judged against the claim.
    expect(f.merge([await claim(1, 7, { policyVersion: 3, enforcement: 'pending' })], b, T0).news).toBe(false);
    expect(f.merge([await claim(1, 8, { policyVersion: 3 })], b, T0).news).toBe(true);
  });

  it('a claim a reader asked for (here, or a want passed on through here) is news and goes to every neighbour; answering a want changes nothing', async () => {
    const w = tallied(3);
    w.merge([await claim(1, 5, { policyVersion: 2 }), await claim(2, 5, { policyVersion: 2 })], a, T0);
    w.mergeTally({ version: 3, bits: bitsOf(1, 2) });
    expect(w.want([a], T0)).toBe(1);
    expect(w.merge([await claim(1, 6, { policyVersion: 3 })], b, T0 + 100)).toMatchObject({ news: true, wanted: true });
    // The gap is filled: a's next liveness claim is liveness again, asked for or not.
    expect(w.merge([await claim(1, 7, { policyVersion: 3 })], b, T0 + 200)).toMatchObject({ news: false, wanted: false });
    // A neighbour's want for b, which we cannot answer, is passed on: b's claim is news when it comes.
    expect(w.mergeWant({ version: 3, bits: bitsOf(2) }, T0)).toMatchObject({ ok: true, passed: 1 });
    expect(w.merge([await claim(2, 6, { policyVersion: 3 })], c, T0 + 300)).toMatchObject({ news: true, wanted: true });
    // Asked for too long ago (past wantEvery): judged as any other claim.
    const late = tallied(3);
    late.merge([await claim(1, 5, { policyVersion: 2 })], a, T0);
    late.mergeTally({ version: 3, bits: bitsOf(1) });
    late.want([a], T0);
    expect(late.merge([await claim(1, 6, { policyVersion: 3 })], b, T0 + DIGEST_TIMING.wantEvery + 1)).toMatchObject({ news: false, wanted: false });
    // A peer wanting everyone from us, where we hold the claims, turns no later liveness into news.
    const held = tallied(3);
    held.merge([await claim(1, 6, { policyVersion: 3 })], a, T0);
    held.mergeTally({ version: 3, bits: bitsOf(1) });
    expect(held.mergeWant({ version: 3, bits: bitsOf(1, 2, 3) }, T0)).toMatchObject({ ok: true, send: 1 });
    expect(held.merge([await claim(1, 7, { policyVersion: 3 })], b, T0 + 100)).toMatchObject({ news: false, wanted: false });
  });

  it('ignores a tally of another policy version (its bit order is not ours)', () => {
    const d = tallied(3);
    expect(d.mergeTally({ version: 2, bits: bitsOf(1, 2, 3) })).toEqual({ ok: true, changed: [] });
    expect(d.tallyCount()).toBe(0);
  });

  it('rejects a tally whose length or padding does not fit the policy (setting bits past its nodes)', () => {
    const d = tallied(3);
    expect(d.mergeTally({ version: 3, bits: Uint8Array.of(1, 0) })).toMatchObject({ ok: false });
    expect(d.mergeTally({ version: 3, bits: Uint8Array.of(0b1110_0000) })).toMatchObject({ ok: false, reason: expect.stringContaining('past') });
    expect(d.tallyCount()).toBe(0);
  });

  it('a forged bit is hearsay only: the unverified view counts it, the verified view never shows it', async () => {
    const d = tallied(3);
    d.merge([await claim(1, 5, { policyVersion: 2 })], a, T0);
    // A liar sets a's bit: "a enforces v3, ok".
    d.mergeTally({ version: 3, bits: bitsOf(1) });
    // Its freshness is the claim's (bits prove no liveness) or, without one, when the tally started.
    expect(claimRow(d, a, false)).toMatchObject({ policyVersion: 3, enforcement: 'ok', verified: false, learnedAt: T0 });
    expect(claimRow(d, a, true)).toMatchObject({ policyVersion: 2, verified: true });
    // A signed claim at the tally's version (or newer) wins over the bit, in both views.
    d.merge([await claim(1, 9, { policyVersion: 3, enforcement: 'failed' })], a, T0 + 20);
    expect(claimRow(d, a, false)).toMatchObject({ policyVersion: 3, enforcement: 'failed' });
    expect(claimRow(d, a, true)).toMatchObject({ policyVersion: 3, enforcement: 'failed', verified: true });
  });

  it('a verified read wants the claims its bits stand for, once per window, and never for nodes off the tally', async () => {
    const d = tallied(3);
    d.merge([await claim(1, 5, { policyVersion: 2 })], a, T0);
    d.mergeTally({ version: 3, bits: bitsOf(1, 2) });
    expect(d.want([a, b, c, self], T0, 10_000)).toBe(2);
    expect(d.wantDelta()).toEqual({ version: 3, bits: bitsOf(1, 2) });
    expect(d.wantDelta()).toBeUndefined();
    expect(d.want([a, b], T0 + 5_000, 10_000)).toBe(0);
    expect(d.want([a, b], T0 + 10_000, 10_000)).toBe(2);
  });

  it('answers a want with the claims it holds, passes on the rest, and asks its own node to sign only when wanted itself', async () => {
    const d = tallied(3);
    d.merge([await claim(1, 5, { policyVersion: 3 })], a, T0);
    d.delta();
    d.mergeTally({ version: 3, bits: bitsOf(1, 2) });
    const w = d.mergeWant({ version: 3, bits: bitsOf(1, 2) }, T0, 10_000);
    expect(w).toEqual({ ok: true, self: false, send: 1, passed: 1 });
    expect(d.delta().map((x) => x.peerId)).toEqual([a]);
    expect(d.wantDelta()).toEqual({ version: 3, bits: bitsOf(2) });
    expect(d.mergeWant({ version: 3, bits: bitsOf(0) }, T0, 10_000)).toEqual({ ok: true, self: true, send: 0, passed: 0 });
  });

  it('a want flood from one neighbour makes a node relay each claim and pass on each want at most once per window', async () => {
    const d = tallied(3);
    d.merge([await claim(1, 5, { policyVersion: 3 })], a, T0);
    d.delta();
    d.mergeTally({ version: 3, bits: bitsOf(1, 2) });
    let sent = 0, passed = 0, self = 0;
    for (let i = 0; i < 1000; i++) {
      const w = d.mergeWant({ version: 3, bits: bitsOf(0, 1, 2, 3) }, T0 + i, 10_000);
      if (w.ok) { sent += w.send; self += w.self ? 1 : 0; }
      passed += d.wantDelta() ? 1 : 0;
      d.delta();
    }
    expect(sent).toBe(1);
    expect(passed).toBe(1);
    expect(self).toBe(1);
  });

  it('wire: carries a tally and a want, and rejects them oversize or without a version', async () => {
    const resolve = (ref: string) => ids.find((id) => nodeRef(id) === ref);
    const [bytes, ...rest] = encodeDigests([], { tally: { version: 3, bits: bitsOf(1) }, want: { version: 3, bits: bitsOf(2) } });
    expect(rest).toHaveLength(0);
    expect(decodeDigest(bytes!, resolve)).toEqual({ ok: true, claims: [], tally: { version: 3, bits: bitsOf(1) }, want: { version: 3, bits: bitsOf(2) } });
    expect(encodeDigests([])).toHaveLength(0);
    expect(decodeDigest(pb.status.v1.Digest.encode({ tally: bitsOf(1) }).finish(), resolve)).toMatchObject({ ok: false, reason: 'digest tally without a version' });
    expect(decodeDigest(pb.status.v1.Digest.encode({ tallyVersion: 3, want: new Uint8Array(2000) }).finish(), resolve)).toMatchObject({ ok: false, reason: 'digest tally out of range' });
  });
});

describe('status tallies that arrive before their policy', () => {
  const members = ids.slice(0, 5);
  it('keeps a tally of a newer version until the policy arrives, then merges it (a node that learns a version last still hears every bit)', () => {
    const d = new FleetDigest({ self, verify });
    d.setMembers(members, 2);
    expect(d.mergeTally({ version: 3, bits: Uint8Array.of(0b0110) })).toEqual({ ok: true, changed: [] });
    d.mergeTally({ version: 3, bits: Uint8Array.of(0b1000) });
    d.setMembers(members, 3, T0 + 5);
    expect([a, b, c].map((id) => d.onTally(id))).toEqual([true, true, true]);
    expect(d.bitLearnedAt(a)).toBe(T0 + 5);
  });
  it('a liar\'s far-future tallies cannot evict the next real version\'s, and a kept tally that does not fit is dropped', () => {
    const d = new FleetDigest({ self, verify });
    d.setMembers(members, 2);
    d.mergeTally({ version: 3, bits: Uint8Array.of(0b10) });
    for (let v = 1000; v < 1100; v++) d.mergeTally({ version: v, bits: new Uint8Array(1250).fill(255) });
    d.setMembers(members, 3, T0);
    expect(d.onTally(a)).toBe(true);
    const e = new FleetDigest({ self, verify });
    e.setMembers(members, 2);
    e.mergeTally({ version: 3, bits: Uint8Array.of(0xff, 0xff) });
    e.setMembers(members, 3, T0);
    expect(e.tallyCount()).toBe(0);
  });
  it('a liar\'s tallies of other lengths for the next version are kept beside the honest one, never in its place', () => {
    const d = new FleetDigest({ self, verify });
    d.setMembers(members, 2);
    d.mergeTally({ version: 3, bits: Uint8Array.of(0b10) });
    for (let n = 2; n < 100; n++) d.mergeTally({ version: 3, bits: new Uint8Array(n).fill(255) });
    d.setMembers(members, 3, T0);
    expect([a, b].map((id) => d.onTally(id))).toEqual([true, false]);
    // Lengths the liar sent first fill the slots; the held policy's length still gets one.
    const e = new FleetDigest({ self, verify });
    e.setMembers(members, 2);
    for (let n = 2; n < 100; n++) e.mergeTally({ version: 3, bits: new Uint8Array(n).fill(255) });
    e.mergeTally({ version: 3, bits: Uint8Array.of(0b10) });
    e.setMembers(members, 3, T0);
    expect([a, b].map((id) => e.onTally(id))).toEqual([true, false]);
  });
});

describe('status tally counts', () => {
  it('countAt agrees with the hearsay rows, node by node, whatever mix of bits and claims is held', async () => {
    const members = ids.slice(0, 5);
    const d = new FleetDigest({ self, verify });
    d.setMembers(members, 3);
    d.mergeTally({ version: 3, bits: Uint8Array.of(0b00111) }); // self, a, b
    d.merge([await claim(2, 5, { policyVersion: 4 }), await claim(3, 6, { policyVersion: 3 }), await claim(1, 7, { policyVersion: 2 })], a, T0);
    for (const v of [2, 3, 4]) expect(d.countAt(v)).toBe(members.filter((id) => claimRow(d, id, false)?.policyVersion === v).length);
  });
});

describe('which changes a tally bit may say instead of a signed claim', () => {
  const st = (policyVersion: number, enforcement = 'ok', alerts: string[] = [], more: Partial<OwnState> = {}): OwnState => ({ policyVersion, enforcement, alerts, ...more });
  it.each([
    ['the next version, enforced ok, same alerts', st(1), st(2), true],
    ['the next version after a failed apply of the last one (the bit is the truth now)', st(1, 'failed'), st(2), true],
    ['a first change after a restart (nothing said yet in this run: a claim)', undefined, st(2), false],
    ['failed → ok at the same version', st(2, 'failed'), st(2), false],
    ['ok → failed at the same version', st(2), st(2, 'failed'), false],
    ['the next version with an alert opening together', st(1), st(2, 'ok', ['drift-repaired']), false],
    ['the next version with an alert resolving together', st(1, 'ok', ['drift-repaired']), st(2), false],
    ['the next version, not yet applied', st(1), st(2, 'pending'), false],
    ['pending → ok at the same version', st(2, 'pending'), st(2), false],
    ['a version the tally does not count', st(1), st(3), false],
    ['a staged rollout (its gate reads signed stage and digest)', st(1), st(2, 'ok', [], { rolloutStage: 1 }), false],
    ['out of a staged rollout', st(1, 'ok', [], { rolloutStage: 2 }), st(2), false],
    ['held back by a rollout', st(1), st(2, 'ok', [], { rolloutEnforcing: 1 }), false],
  ] as [string, OwnState | undefined, OwnState, boolean][])('%s', (_, prev, next, bit) => {
    expect(isTallyChange(prev, next, 2)).toBe(bit);
  });
});
