import { formatMesh } from '../../src/cli/status.js';
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { randomBytes } from 'node:crypto';
import { fleetView, newerClaim, signStatus, verifyStatus, type NodeStatus } from '../../src/audit/status.js';
import { pb } from '../../src/wire/proto.js';

const key = await generateKeyPair('Ed25519');
const other = await generateKeyPair('Ed25519');
const me = peerIdFromPrivateKey(key).toString();
const status = (over: Partial<NodeStatus> = {}): NodeStatus => ({
  meshId: 'prod', peerId: me, policyVersion: 7, digest: 'ab', rulesetHash: 'cd', enforcement: 'ok', lastApplyAt: Date.parse('2026-11-26T11:00:00Z'), alerts: [], seq: 5, time: Date.parse('2026-11-26T12:00:00Z'), findings: [], ...over,
});
const member = (p: string) => p === me;
const none = () => -1;

describe('signed status', () => {
  it('accepts a status signed by a listed node with a higher seq', async () => {
    const v = await verifyStatus(await signStatus(status(), key), 'prod', member, none);
    expect(v).toMatchObject({ ok: true, status: { policyVersion: 7, seq: 5 } });
  });
  it('rejects a status signed by another key than its PeerId (forgery)', async () => {
    expect(await verifyStatus(await signStatus(status(), other), 'prod', member, none)).toMatchObject({ ok: false, reject: true, reason: 'status signature does not verify' });
  });
  it('rejects a status whose content was changed after signing', async () => {
    const signed = pb.status.v1.SignedStatus.decode(await signStatus(status(), key));
    const inner = pb.status.v1.Status.decode(signed.status);
    inner.enforcement = 'ok-but-lying';
    const tampered = pb.status.v1.SignedStatus.encode({ status: pb.status.v1.Status.encode(inner).finish(), signature: signed.signature }).finish();
    expect(await verifyStatus(tampered, 'prod', member, none)).toMatchObject({ ok: false, reject: true });
  });
  it('does not accept a validly signed status from a node not in the policy (ignored: our policy may be the older one)', async () => {
    const stranger = peerIdFromPrivateKey(other).toString();
    expect(await verifyStatus(await signStatus(status({ peerId: stranger }), other), 'prod', member, none)).toMatchObject({ ok: false, reject: false, reason: 'status from a node not in the policy' });
  });
  it('ignores a replayed (old seq) status without penalising', async () => {
    expect(await verifyStatus(await signStatus(status({ seq: 3 }), key), 'prod', member, () => 5)).toMatchObject({ ok: false, reject: false });
  });
  it('rejects a status whose time or last apply lies outside years 2000–9999 (2^53 - 1 ms: Date cannot print it)', async () => {
    for (const bad of [{ time: Number.MAX_SAFE_INTEGER }, { time: 5 }, { lastApplyAt: Number.MAX_SAFE_INTEGER }, { lastApplyAt: 5 }]) {
      expect(await verifyStatus(await signStatus(status(bad), key), 'prod', member, none), JSON.stringify(bad)).toMatchObject({ ok: false, reject: true, reason: 'malformed status: time outside years 2000–9999' });
    }
    // A node that never applied a ruleset says lastApplyAt 0.
    expect(await verifyStatus(await signStatus(status({ lastApplyAt: 0 }), key), 'prod', member, none)).toMatchObject({ ok: true });
  });
  it('rejects garbage, other meshes and oversized statuses', async () => {
    expect(await verifyStatus(randomBytes(100), 'prod', member, none)).toMatchObject({ ok: false, reject: true });
    expect(await verifyStatus(await signStatus(status({ meshId: 'staging' }), key), 'prod', member, none)).toMatchObject({ ok: false, reject: true });
    expect(await verifyStatus(new Uint8Array(70 * 1024), 'prod', member, none)).toMatchObject({ ok: false, reject: true, reason: 'status too large' });
  });
});

describe('fleet view', () => {
  it('lists every node, marks silent and never-heard ones, and summarises', () => {
    const now = 1_000_000;
    const s = (v: number, enforcement: string, at: number) => ({ status: status({ policyVersion: v, enforcement }), receivedAt: at });
    const view = fleetView(
      [{ peerId: 'a', name: 'a' }, { peerId: 'b', name: 'b' }, { peerId: 'c', name: 'c' }, { peerId: 'd', name: 'd' }],
      new Map([['a', s(7, 'ok', now)], ['b', s(7, 'drift-repaired', now)], ['c', s(6, 'ok', now - 600_000)]]),
      now, 120_000,
    );
    expect(view.summary).toBe('2/4 on v7, 1 drifted, 2 silent');
    expect(view.nodes.find((n) => n.name === 'd')).toMatchObject({ policyVersion: null, silent: true, lastSeen: null });
  });
});

describe('fleet view: hearsay ahead of the signatures', () => {
  it('marks nodes reported (unsigned) on a newer version than their verified claim, and counts them apart from the verified ones', () => {
    const now = 1_000_000;
    const s = (v: number) => ({ status: status({ policyVersion: v, enforcement: 'ok' }), receivedAt: now });
    const view = fleetView(
      [{ peerId: 'a', name: 'a' }, { peerId: 'b', name: 'b' }, { peerId: 'c', name: 'c' }],
      new Map([['a', s(7)], ['b', s(6)], ['c', s(6)]]),
      now, 120_000, new Map([['a', 7], ['b', 7], ['c', 5]]),
    );
    // b's signed claim says v6; a tally bit says v7. c is reported on nothing newer.
    expect(view.summary).toBe('1/3 on v7, 1 more report v7 (signed claims requested)');
    expect(view.nodes.map((n) => n.reportedVersion)).toEqual([undefined, 7, undefined]);
    expect(formatMesh({ summary: view.summary, nodes: view.nodes.map((n) => ({ ...n, connected: false, self: false })) } as never, now).split('\n')[2]).toMatch(/^b +v6>v7\? /);
  });
});

describe('newer-version claims (node-lagging)', () => {
  const st = (policyVersion: number) => ({ status: { policyVersion } as NodeStatus });
  it('takes the newest version a current member reports above what this node applies', () => {
    const m = new Map([['a', st(3)], ['b', st(5)], ['self', st(9)]]);
    expect(newerClaim(3, m, ['a', 'b', 'self'], 'self')).toEqual({ version: 5, peerId: 'b' });
    expect(newerClaim(5, m, ['a', 'b', 'self'], 'self')).toBeNull();
  });
  it('a lying peer\'s claim stops counting once its latest status no longer makes it, or it leaves the policy', () => {
    const m = new Map([['liar', st(2 ** 53 - 1)], ['b', st(3)]]);
    expect(newerClaim(3, m, ['liar', 'b'], 'self')).toEqual({ version: 2 ** 53 - 1, peerId: 'liar' });
    expect(newerClaim(3, m, ['b'], 'self')).toBeNull(); // removed from the policy
    m.set('liar', st(3));
    expect(newerClaim(3, m, ['liar', 'b'], 'self')).toBeNull();
  });
});
