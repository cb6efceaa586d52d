import { describe, expect, it } from 'vitest';
import { REACH_OUT_EVERY, REACH_OUT_ROUNDS, roundPeer } from '../../src/mesh/sync-plan.js';
import { seededRandom } from '../../src/runtime/random.js';

const ids = (n: number, prefix = 'p'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** One node's periodic rounds (as the anti-entropy schedule runs them): how often the pick is a node it is not connected to. */
function farShare(listed: number, connectedCount: number, rounds: number, seed = 1): number {
  return farRounds(listed, connectedCount, rounds, seed).filter(Boolean).length / rounds;
}

/** Each round of one node: whether it reached beyond its connections (roundsSinceFar kept as the caller keeps it). */
function farRounds(listed: number, connectedCount: number, rounds: number, seed = 1): boolean[] {
  const peers = ids(listed);
  const connected = peers.slice(0, connectedCount);
  const random = seededRandom(seed);
  const out: boolean[] = [];
  let since = 0;
  for (let i = 0; i < rounds; i++) {
    const p = roundPeer({ policyPeers: peers, connected, dialable: () => true, random, roundsSinceFar: since });
    const far = p !== undefined && !connected.includes(p);
    since = far ? 0 : since + 1;
    out.push(far);
  }
  return out;
}

describe("the periodic exchange's peer", () => {
  it('a fleet of 100 at its connection target does not open a short-lived connection on most rounds (one process hosting 100 agents spent its thread on handshakes)', () => {
    // Before: a uniform pick over the 99 listed nodes, 81 of them unconnected at a target of
    // 18 — a Noise handshake, identify, gossipsub and a close on 82 % of every node's rounds.
    const share = farShare(100, 18, 20_000);
    expect(share).toBeLessThan(1 / REACH_OUT_EVERY + 0.1);
    // ...and the fleet as a whole still reaches outside its connections several times an interval.
    expect(share * 100).toBeGreaterThan(REACH_OUT_ROUNDS / 2);
  });

  it('a small fleet reaches unconnected nodes as often as before: the uniform pick over what it can reach', () => {
    // 8 listed nodes, 3 of them connected: 5 of 8 beyond its connections.
    const share = farShare(8, 3, 20_000);
    expect(share).toBeGreaterThan(0.55);
    expect(share).toBeLessThan(0.7);
  });

  it('the two halves of a healed 50/50 partition of 100, each at its target, still reach across within a sync interval', () => {
    // Each node is connected to 18 nodes of its own half: a round that reaches beyond its
    // connections is what rejoins the halves (neither the redial loop nor mixing dials at target).
    const all = ids(100);
    const random = seededRandom(7);
    const crossPerInterval: number[] = [];
    for (let interval = 0; interval < 50; interval++) {
      let cross = 0;
      for (let n = 0; n < 100; n++) {
        const half = n < 50 ? all.slice(0, 50) : all.slice(50);
        const self = all[n]!;
        const mine = half.filter((p) => p !== self);
        const connected = mine.slice(0, 18);
        const p = roundPeer({ policyPeers: all.filter((q) => q !== self), connected, dialable: () => true, random, roundsSinceFar: 0 });
        if (p !== undefined && !half.includes(p)) cross++;
      }
      crossPerInterval.push(cross);
    }
    const mean = crossPerInterval.reduce((a, b) => a + b, 0) / crossPerInterval.length;
    expect(mean).toBeGreaterThan(1.5);
    // Most intervals see at least one dial across.
    expect(crossPerInterval.filter((c) => c > 0).length).toBeGreaterThan(40);
  });

  it('a node whose every connection is hostile (an eclipse by listed peers that withhold a version) reaches beyond them at least every REACH_OUT_EVERY rounds, however large the fleet', () => {
    // Rationed alone (8 / listed), a node of 1,000 would reach out once in ~125 rounds: an hour
    // at the default 30 s, during which its hostile neighbours could keep it on an old policy.
    for (const listed of [100, 1000, 10_000]) {
      const rounds = farRounds(listed, 18, 2000, listed);
      let gap = 0, longest = 0;
      for (const far of rounds) { gap = far ? 0 : gap + 1; longest = Math.max(longest, gap); }
      expect(longest).toBeLessThan(REACH_OUT_EVERY);
    }
  });

  it('a node connected to no listed node picks one it can dial, every round', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 100; i++) {
      const p = roundPeer({ policyPeers: ids(100), connected: ['stranger'], dialable: (q) => q === 'p42', random, roundsSinceFar: 0 });
      expect(p).toBe('p42');
    }
  });

  it('never picks a node it cannot dial (no address, not admitted, in its backoff)', () => {
    const random = seededRandom(5);
    const peers = ids(20);
    for (let i = 0; i < 1000; i++) {
      const p = roundPeer({ policyPeers: peers, connected: ['p0', 'p1'], dialable: () => false, random, roundsSinceFar: 99 });
      expect(['p0', 'p1']).toContain(p);
    }
  });

  it('without a policy, a random connected peer; with nobody at all, none', () => {
    const random = seededRandom(9);
    expect(['a', 'b']).toContain(roundPeer({ policyPeers: [], connected: ['a', 'b'], dialable: () => true, random, roundsSinceFar: 99 }));
    expect(roundPeer({ policyPeers: [], connected: [], dialable: () => true, random, roundsSinceFar: 99 })).toBeUndefined();
  });
});
