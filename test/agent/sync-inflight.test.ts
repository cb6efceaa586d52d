/**
 * Two sync exchanges running at once with peers that both hold a newer policy: the body
 * arrives once (the second exchange tells its peer it is already on its way), and when the
 * exchange bringing it ends, the next one asks again. Real protocol code over stream pairs.
 */
import { describe, expect, it } from 'vitest';
import { streamPair } from '@libp2p/utils';
import { runSync, type SyncLocal } from '../../src/mesh/sync.js';
import { InFlight } from '../../src/mesh/inflight.js';
import { systemClock } from '../../src/runtime/clock.js';
import type { Holdings } from '../../src/mesh/sync-plan.js';

const BODY = new Uint8Array(50_000).fill(9);
const ahead: Holdings = { meshId: 'm', rootVersion: 1, policyVersion: 2, policyDigest: 'b'.repeat(64) };
const behind: Holdings = { meshId: 'm', rootVersion: 1, policyVersion: 1, policyDigest: 'a'.repeat(64) };

/** A peer that holds v2 and answers (or starts) sync. */
const peerSide = (): SyncLocal => ({ holdings: () => ahead, rootsAfter: () => [], policyEnvelope: () => BODY, peers: () => [], receive: async () => undefined });

/** The node that is behind, with the mesh's in-flight bookkeeping. */
function nodeSide(inflight: InFlight, peer: string, got: string[]): SyncLocal {
  return {
    holdings: () => behind,
    rootsAfter: () => [], policyEnvelope: () => undefined, peers: () => [],
    receive: async (p) => { if (p.policy) got.push(peer); return {}; },
    claim: (theirs) => inflight.claim(peer, behind, theirs),
  };
}

describe('sync exchanges running at once', () => {
  for (const role of ['initiator', 'responder'] as const) {
    it(`bring a body once when this node is the ${role} of both`, async () => {
      const inflight = new InFlight(systemClock);
      const got: string[] = [];
      const other = role === 'initiator' ? 'responder' : 'initiator';
      const [a1, b1] = await streamPair({ delay: 5 });
      const [a2, b2] = await streamPair({ delay: 5 });
      await Promise.all([
        runSync(a1, role, nodeSide(inflight, 'A', got), 5000), runSync(b1, other, peerSide(), 5000),
        runSync(a2, role, nodeSide(inflight, 'B', got), 5000), runSync(b2, other, peerSide(), 5000),
      ]);
      expect(got).toHaveLength(1);
      // Nothing is left claimed: the next exchange asks for the body again (if still behind).
      expect(inflight.outstanding()).toBe(0);
      const [a3, b3] = await streamPair();
      await Promise.all([runSync(a3, role, nodeSide(inflight, 'C', got), 5000), runSync(b3, other, peerSide(), 5000)]);
      expect(got).toHaveLength(2);
    });
  }

  it('bring a body once over two connections to the same peer (both ends dialled at once)', async () => {
    const inflight = new InFlight(systemClock);
    const got: string[] = [];
    const [a1, b1] = await streamPair({ delay: 5 });
    const [a2, b2] = await streamPair({ delay: 5 });
    await Promise.all([
      runSync(a1, 'initiator', nodeSide(inflight, 'A', got), 5000), runSync(b1, 'responder', peerSide(), 5000),
      runSync(a2, 'responder', nodeSide(inflight, 'A', got), 5000), runSync(b2, 'initiator', peerSide(), 5000),
    ]);
    expect(got).toEqual(['A']);
  });

  it('a pull running elsewhere keeps a sync peer from sending the same body', async () => {
    const inflight = new InFlight(systemClock);
    inflight.pulls.set(`2:${ahead.policyDigest}`, { from: 'P', version: 2, digest: ahead.policyDigest, since: Date.now(), done: Promise.resolve() });
    const got: string[] = [];
    const [a, b] = await streamPair();
    await Promise.all([runSync(a, 'initiator', nodeSide(inflight, 'Q', got), 5000), runSync(b, 'responder', peerSide(), 5000)]);
    expect(got).toEqual([]);
    // The pull's own exchange (with P) still asks for it.
    const [c, d] = await streamPair();
    await Promise.all([runSync(c, 'initiator', nodeSide(inflight, 'P', got), 5000), runSync(d, 'responder', peerSide(), 5000)]);
    expect(got).toEqual(['P']);
  });
});
