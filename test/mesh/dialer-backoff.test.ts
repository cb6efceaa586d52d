/**
 * The dialler's backoff when connections close (on an injected clock): a connection it dialled
 * that the far side closes at once is a refusal, and backs the peer off like a failed dial; a
 * connection this node closes on purpose, one the peer dialled, or one that lasted, does not.
 */
import { describe, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection } from '@libp2p/interface';
import { Dialer, SHORT_LIVED_MS, type DialerInit } from '../../src/mesh/dialer.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { silentLogger } from '../../src/runtime/logger.js';

const PEER = '12D3KooWPeerThatRefuses';
const REDIAL_MIN = 500;

function make(): { clock: ManualClock; dialer: Dialer } {
  const clock = new ManualClock(1_000_000);
  const dialer = new Dialer({
    self: 'self', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], clock, random: seededRandom(7), log: silentLogger,
    minPeers: 1, redialMin: REDIAL_MIN, redialMax: 30_000, peerAddressCidrs: [],
    // Not reached by what these tests call.
    engine: undefined, store: undefined, admission: undefined,
  } as unknown as DialerInit);
  dialer.learn(PEER, [multiaddr(`/ip4/10.0.0.9/tcp/7946/p2p/${PEER}`)], 'bootstrap');
  return { clock, dialer };
}

function conn(direction: 'inbound' | 'outbound'): Connection {
  return { remotePeer: { toString: () => PEER }, direction, close: async () => undefined, abort: () => undefined } as unknown as Connection;
}

/** Opens and closes one connection `lived` ms apart; returns how long until the peer is due again. */
function cycle(clock: ManualClock, dialer: Dialer, c: Connection, lived: number, onPurpose = false): number {
  dialer.connected(c);
  clock.advance(lived);
  if (onPurpose) void dialer.close(c, 'test');
  dialer.disconnected(c);
  let waited = 0;
  while (!dialer.due(PEER)) { clock.advance(50); waited += 50; }
  return waited;
}

describe('dial backoff when connections close', () => {
  it('a peer that closes each connection we dial at once is backed off longer each time, as a failed dial', () => {
    const { clock, dialer } = make();
    const waits = Array.from({ length: 6 }, () => cycle(clock, dialer, conn('outbound'), 10));
    expect(waits[0]).toBeGreaterThan(0);
    expect(waits[5]!).toBeGreaterThan(8 * REDIAL_MIN); // 0.5 s doubling: the sixth wait is ~16 s (×0.75–1.25)
    for (let i = 1; i < waits.length; i++) expect(waits[i]!).toBeGreaterThan(waits[i - 1]!);
  });

  it('a connection that lasted clears the backoff; one we close on purpose or one the peer dialled costs none', () => {
    const { clock, dialer } = make();
    for (let i = 0; i < 5; i++) cycle(clock, dialer, conn('outbound'), 10);
    expect(cycle(clock, dialer, conn('outbound'), SHORT_LIVED_MS)).toBe(0);
    expect(cycle(clock, dialer, conn('outbound'), 10)).toBeLessThanOrEqual(1.25 * REDIAL_MIN + 50); // counting from one again (waited in 50 ms steps)
    expect(cycle(clock, dialer, conn('outbound'), 10, true)).toBe(0); // an exchange over, a trim
    expect(cycle(clock, dialer, conn('inbound'), 10)).toBe(0);
  });
});
