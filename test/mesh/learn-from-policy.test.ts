/**
 * The dialler learns every listed node's policy address (its address on the agent's own port)
 * from each accepted version. Most versions change rules, not nodes: with the same nodes and
 * addresses it must not build their multiaddrs again (O(N) parses per accept, per node, which
 * at 100 agents in one process was 10,000 per update), and a changed address must still be
 * learned.
 */
import { describe, expect, it } from 'vitest';
import { Dialer, type DialerInit } from '../../src/mesh/dialer.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { silentLogger } from '../../src/runtime/logger.js';

const peer = (i: number) => `12D3KooWNode${String(i).padStart(40, '0')}`;

/** A policy's node list whose address reads are counted. */
function nodes(n: number, addrOf: (i: number) => string, reads: { n: number }) {
  return Array.from({ length: n }, (_, i) => {
    const addresses = [addrOf(i)];
    return { name: `n${i}`, peerId: peer(i), roles: [], get addresses() { reads.n++; return addresses; } };
  });
}

function make() {
  const engine = { current: null as unknown };
  const dialer = new Dialer({
    self: peer(0), listen: ['/ip4/0.0.0.0/tcp/7946'], bootstrap: [], clock: new ManualClock(1_000_000), random: seededRandom(3), log: silentLogger,
    minPeers: 3, redialMin: 500, redialMax: 30_000, peerAddressCidrs: [],
    engine, store: undefined, admission: { isAllowed: () => true },
  } as unknown as DialerInit);
  /** What the mesh does on each accepted version (mesh.ts #applyAdmission). */
  const accept = (list: ReturnType<typeof nodes>) => { engine.current = { policy: { nodes: list } }; dialer.rescope(); dialer.learnFromPolicy(); };
  return { dialer, accept };
}

describe('learning policy addresses on each accepted version', () => {
  it('a version with the same nodes and addresses reads each node\'s addresses once (the scope key), builds none again', () => {
    const { dialer, accept } = make();
    const reads = { n: 0 };
    accept(nodes(50, (i) => `10.0.0.${i + 1}`, reads));
    expect(dialer.addrsOf(peer(7)).map(String)).toContain(`/ip4/10.0.0.8/tcp/7946/p2p/${peer(7)}`);
    reads.n = 0;
    accept(nodes(50, (i) => `10.0.0.${i + 1}`, reads)); // a new version: new objects, same nodes
    expect(reads.n).toBeLessThanOrEqual(50);
    expect(dialer.addrsOf(peer(7)).map(String)).toEqual([`/ip4/10.0.0.8/tcp/7946/p2p/${peer(7)}`]);
  });

  it('a node whose address changed is learned at its new address', () => {
    const { dialer, accept } = make();
    const reads = { n: 0 };
    accept(nodes(5, (i) => `10.0.0.${i + 1}`, reads));
    accept(nodes(5, (i) => (i === 3 ? '10.0.9.9' : `10.0.0.${i + 1}`), reads));
    expect(dialer.addrsOf(peer(3)).map(String)).toContain(`/ip4/10.0.9.9/tcp/7946/p2p/${peer(3)}`);
    // A node added later is learned too.
    accept(nodes(6, (i) => (i === 3 ? '10.0.9.9' : `10.0.0.${i + 1}`), reads));
    expect(dialer.addrsOf(peer(5)).map(String)).toContain(`/ip4/10.0.0.6/tcp/7946/p2p/${peer(5)}`);
  });
});
