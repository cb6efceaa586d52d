/** The redial loop's choice (pure): whom a node dials towards minPeers, and when it dials nobody. */
import { describe, expect, it } from 'vitest';
import { MAX_REDIALS_PER_TICK, redialNeeded, redialPicks } from '../../src/mesh/peer-book.js';

const peers = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const listedOnly = (p: string) => !p.startsWith('s');

describe('redial picks', () => {
  it('dials nobody once a node holds minPeers listed peers, however many more it knows (a healed partition set off a dial storm)', () => {
    // A node of a healed 50/50 partition of 30: 14 peers on its side, the 15 of the other side
    // known and due again. Dialling "all but the surplus" every tick is what made every node
    // open ~7 connections per tick at once after a heal.
    for (const [connected, candidates] of [[6, 1], [6, 15], [14, 15], [18, 11], [24, 100]] as const) {
      expect(redialPicks(peers('c', candidates), peers('x', connected), listedOnly, 6), `${connected} connected, ${candidates} candidates`).toEqual([]);
    }
  });

  it('tops up towards minPeers, a few dials per tick', () => {
    expect(redialPicks(peers('c', 10), peers('x', 4), listedOnly, 6)).toEqual(['c0', 'c1']);
    expect(redialPicks(peers('c', 10), [], listedOnly, 6)).toHaveLength(MAX_REDIALS_PER_TICK);
    expect(redialPicks(peers('c', 1), [], listedOnly, 6)).toEqual(['c0']);
  });

  it('strangers connected before the first policy do not stop a node from reaching its listed peers, and are dialled last', () => {
    // 6 strangers hold the connection count at minPeers: the listed bootstrap peers are still dialled.
    expect(redialPicks(['c0', 's9', 'c1'], peers('s', 6), listedOnly, 6)).toEqual(['c0', 'c1']);
    // Below minPeers overall: listed first, then strangers.
    expect(redialPicks(['s9', 'c0'], [], listedOnly, 6)).toEqual(['c0', 's9']);
  });

  it('the loop skips its peer-book scan only when redialPicks would pick nobody (the shortcut never drops a dial)', () => {
    let skipped = 0;
    for (let connected = 0; connected <= 9; connected++) {
      for (let strangers = 0; strangers <= connected; strangers++) {
        const conn = [...peers('x', connected - strangers), ...peers('s', strangers)];
        const candidates = ['c0', 's90', 'c1', 'c2', 's91', 'c3', 'c4', 'c5', 'c6'];
        const picks = redialPicks(candidates, conn, listedOnly, 6);
        const needed = redialNeeded(conn, listedOnly, 6);
        if (!needed) skipped++;
        expect(needed || picks.length === 0, `${connected} connected, ${strangers} strangers`).toBe(true);
        expect(needed, `${connected} connected, ${strangers} strangers`).toBe(picks.length > 0);
      }
    }
    expect(skipped).toBeGreaterThan(0);
  });
});
