/**
 * Drop and would-drop totals in the signed status (issue 15 #2/#3): a peer's claim is bounded
 * before anyone sums or prints it, and `status --mesh` shows what monitor mode would drop.
 */
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { signStatus, verifyStatus, fleetView, type NodeStatus } from '../../src/audit/status.js';
import { pb } from '../../src/wire/proto.js';
import { signAsNode } from '../../src/trust/node-sign.js';
import { formatMesh } from '../../src/cli/status.js';
import type { MeshJson } from '../../src/agent/agent.js';

const key = await generateKeyPair('Ed25519');
const me = peerIdFromPrivateKey(key).toString();
const T = Date.parse('2026-11-26T12:00:00Z');
const status = (over: Partial<NodeStatus> = {}): NodeStatus => ({
  meshId: 'prod', peerId: me, policyVersion: 7, digest: 'ab'.repeat(32), rulesetHash: 'cd'.repeat(32), enforcement: 'ok', lastApplyAt: 0, alerts: [], seq: 5, time: T, findings: [], ...over,
});

describe('drop totals in the signed status', () => {
  it('rejects a signed status claiming more would-drops than a count can hold', async () => {
    // Field 15 (would_drop_packets) = 2^64 - 1, written as raw varint bytes.
    const huge = Uint8Array.from([0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    const body = Buffer.concat([pb.status.v1.Status.encode({ meshId: 'prod', peerId: me, policyVersion: 7, enforcement: 'ok', seq: 5, timeMs: T }).finish(), huge]);
    const bytes = pb.status.v1.SignedStatus.encode({ status: body, signature: await signAsNode(key, new TextEncoder().encode('picket-status-v1'), body) }).finish();
    const v = await verifyStatus(bytes, 'prod', () => true, () => -1);
    expect(v).toMatchObject({ ok: false, reject: true, reason: 'malformed status: drop counter out of range' });
  });
  it('carries honest totals through signing and verification, and leaves them out when zero', async () => {
    const v = await verifyStatus(await signStatus(status({ dropped: 1200, wouldDrop: 37 }), key), 'prod', () => true, () => -1);
    expect(v.ok && [v.status.dropped, v.status.wouldDrop]).toEqual([1200, 37]);
    const quiet = await verifyStatus(await signStatus(status(), key), 'prod', () => true, () => -1);
    expect(quiet.ok && quiet.status).not.toHaveProperty('wouldDrop');
  });
  it('sums would-drops into the fleet summary and shows them per node', () => {
    const nodes = [{ peerId: me, name: 'web-1' }, { peerId: 'p2', name: 'web-2' }];
    const statuses = new Map([[me, { status: status({ wouldDrop: 37, dropped: 5 }), receivedAt: T }], ['p2', { status: status({ peerId: 'p2' }), receivedAt: T }]]);
    const view = fleetView(nodes, statuses, T, 60_000);
    expect(view.summary).toBe('2/2 on v7, 37 would-drop packets on 1 node');
    const m: MeshJson = { summary: view.summary, nodes: view.nodes.map((n) => ({ ...n, connected: true, self: n.peerId === me })) };
    const [head, row] = formatMesh(m, T).split('\n');
    expect(head).toMatch(/DROPPED +WOULD-DROP +PEER$/);
    expect(row).toMatch(/ 5 +37 +12D3/);
  });
});
