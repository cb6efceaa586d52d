/**
 * In-flight claims (pure, manual clock): what a lying peer's Hello can and cannot hold back.
 */
import { describe, expect, it } from 'vitest';
import { InFlight, CLAIM_GRACE_MS } from '../../src/mesh/inflight.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { judgeDelivery } from '../../src/mesh/sync.js';
import type { Holdings } from '../../src/mesh/sync-plan.js';

const mine: Holdings = { meshId: 'm', rootVersion: 1, policyVersion: 1, policyDigest: 'a'.repeat(64) };
const v2: Holdings = { meshId: 'm', rootVersion: 1, policyVersion: 2, policyDigest: 'b'.repeat(64) };
const liar: Holdings = { meshId: 'm', rootVersion: 1, policyVersion: 1e15, policyDigest: 'e'.repeat(64) };

describe('claims a peer makes in its Hello', () => {
  it('a claim of a huge version holds back no honest sender of another body', () => {
    const f = new InFlight(new ManualClock(0));
    expect(f.claim('liar', mine, liar).bodyWanted).toBe(true);
    const honest = f.claim('honest', mine, v2);
    expect(honest).toMatchObject({ bodyWanted: true, fetchingVersion: 0, fetchingDigest: '' });
  });

  it('a claim of the exact body holds other senders back only for the grace, then they are asked again', () => {
    const clock = new ManualClock(0);
    const retried: string[] = [];
    const f = new InFlight(clock, (peer) => retried.push(peer));
    f.claim('liar', mine, v2);
    expect(f.claim('honest', mine, v2)).toMatchObject({ bodyWanted: false, fetchingVersion: 2, fetchingDigest: v2.policyDigest });
    clock.advance(CLAIM_GRACE_MS);
    expect(retried).toEqual(['honest']);
    expect(f.claim('honest', mine, v2).bodyWanted).toBe(true);
  });

  it('one peer holds at most one body-sized read at a time, whatever it claims on other streams', () => {
    const f = new InFlight(new ManualClock(0));
    const first = f.claim('liar', mine, liar);
    expect(first.bodyWanted).toBe(true);
    expect(f.claim('liar', mine, { ...liar, policyDigest: 'f'.repeat(64) }).bodyWanted).toBe(false);
    expect(f.claim('liar', mine, v2).bodyWanted).toBe(false);
    first.release();
    expect(f.claim('liar', mine, v2).bodyWanted).toBe(true);
  });

  it('a pull of a body from a peer holds others back for the grace, not the pull\'s own exchange', () => {
    const clock = new ManualClock(0);
    const f = new InFlight(clock);
    f.pulls.set('2:b', { from: 'P', version: 2, digest: v2.policyDigest, since: 0, done: Promise.resolve() });
    expect(f.claim('Q', mine, v2).bodyWanted).toBe(false);
    expect(f.claim('P', mine, v2).bodyWanted).toBe(true);
  });

  it('a claim that does not materialise is a lie: nothing sent, something older, no root', () => {
    const push = { roots: [], peers: [] };
    expect(judgeDelivery(v2, mine, push, {}, true)).toMatch(/sent no body/);
    expect(judgeDelivery(v2, mine, { ...push, policy: new Uint8Array(1) }, { policy: { outcome: 'duplicate', version: 1 } }, true)).toMatch(/sent v1/);
    expect(judgeDelivery(v2, mine, { ...push, policy: new Uint8Array(1) }, { policy: { outcome: 'accepted', version: 2 } }, true)).toBeUndefined();
    // Held back on purpose: owes nothing.
    expect(judgeDelivery(v2, mine, push, {}, false)).toBeUndefined();
    expect(judgeDelivery({ ...mine, rootVersion: 5 }, mine, push, {}, false)).toMatch(/no root/);
  });
});
