import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { fleetView, signStatus, verifyStatus, type NodeStatus } from '../../src/audit/status.js';
import { pb } from '../../src/wire/proto.js';

const key = await generateKeyPair('Ed25519');
const me = peerIdFromPrivateKey(key).toString();
const status = (over: Partial<NodeStatus> = {}): NodeStatus => ({
  meshId: 'prod', peerId: me, policyVersion: 7, digest: 'ab', rulesetHash: 'cd', enforcement: 'ok', lastApplyAt: Date.parse('2026-11-26T11:00:00Z'), alerts: [], seq: 5, time: Date.parse('2026-11-26T12:00:00Z'), findings: [], ...over,
});
const verify = async (s: NodeStatus) => verifyStatus(await signStatus(s, key), 'prod', () => true, () => -1);

describe('signed status: the staged-rollout fields (12-13)', () => {
  it('carries the stage and the version held in force', async () => {
    expect(await verify(status({ rolloutStage: 2, rolloutEnforcing: 6 }))).toMatchObject({ ok: true, status: { rolloutStage: 2, rolloutEnforcing: 6 } });
  });

  it('encodes a status without a rollout exactly as before (fields 12-13 absent)', async () => {
    const signed = pb.status.v1.SignedStatus.decode(await signStatus(status(), key));
    const m = pb.status.v1.Status.decode(signed.status);
    expect(m.rolloutStage).toBe(0);
    expect(Number(m.rolloutEnforcing)).toBe(0);
    const v = await verify(status());
    expect(v.ok && ('rolloutStage' in v.status || 'rolloutEnforcing' in v.status)).toBe(false);
    // No field 12 (tag 0x60) or 13 (tag 0x68) on the wire.
    const reader = pb.status.v1.Status.decode(signed.status);
    expect(Buffer.from(pb.status.v1.Status.encode({ ...reader, rolloutStage: undefined, rolloutEnforcing: undefined } as never).finish())).toEqual(Buffer.from(signed.status));
  });

  it('rejects a status claiming a rollout stage no policy can have', async () => {
    expect(await verify(status({ rolloutStage: 9 }))).toMatchObject({ ok: false, reject: true, reason: 'status rollout stage out of range' });
  });

  it('rejects a status "holding back" a version not older than the one it holds', async () => {
    expect(await verify(status({ rolloutEnforcing: 7 }))).toMatchObject({ ok: false, reject: true, reason: 'status holds back a version not older than the one it holds' });
    expect(await verify(status({ rolloutEnforcing: 2 ** 53 + 10 }))).toMatchObject({ ok: false, reject: true });
  });

  it('the fleet summary counts nodes held back by their rollout apart', () => {
    const rec = (peerId: string, s: Partial<NodeStatus>) => [peerId, { status: status({ peerId, ...s }), receivedAt: 1000 }] as const;
    const f = fleetView([{ peerId: 'a', name: 'a' }, { peerId: 'b', name: 'b' }], new Map([rec('a', { rolloutStage: 1 }), rec('b', { rolloutStage: 2, rolloutEnforcing: 6 })]), 1000, 60_000);
    expect(f.summary).toBe('2/2 on v7, 1 held back by its rollout');
    expect(f.nodes.map((n) => [n.rolloutStage, n.rolloutEnforcing])).toEqual([[1, null], [2, 6]]);
  });
});
