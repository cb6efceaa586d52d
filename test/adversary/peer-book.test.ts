/** Peer book (pure): what a pushed address can and cannot do to a peer's dial list. */
import { describe, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import { dialStages, exchangeFailed, inScope, MAX_EXCHANGE_ADDRS, MAX_EXCHANGE_FAILURES, mergeAddrs, reachedFirstHand, rescope, scopeOf } from '../../src/mesh/peer-book.js';

const H = 'H';
const scope = scopeOf([{ peerId: H, addresses: ['10.0.0.5', 'fd00::5'] }], ['192.168.7.0/24'], false);
const ma = (s: string) => multiaddr(s);

describe('peer book', () => {
  it('takes pushed addresses only inside the node\'s policy addresses or the mesh CIDRs, as plain IP+TCP', () => {
    const ok = ['/ip4/10.0.0.5/tcp/7946', '/ip6/fd00::5/tcp/7946', '/ip4/192.168.7.9/tcp/7946'];
    const bad = ['/ip4/10.0.0.6/tcp/7946', '/ip4/8.8.8.8/tcp/53', '/dns4/h.example/tcp/7946', '/ip4/10.0.0.5/udp/7946', '/memory/x', '/ip4/192.168.8.1/tcp/1'];
    for (const a of ok) expect(inScope(scope, H, ma(a), 'exchange'), a).toBe(true);
    for (const a of bad) expect(inScope(scope, H, ma(a), 'exchange'), a).toBe(false);
    expect(inScope(scope, 'stranger', ma(ok[0]!), 'exchange')).toBe(false);
    // Before any policy, nothing from peer exchange; a peer's own identify still counts.
    const none = scopeOf(undefined, [], false);
    expect(inScope(none, H, ma(ok[0]!), 'exchange')).toBe(false);
    expect(inScope(none, H, ma('/ip4/8.8.8.8/tcp/1'), 'identify')).toBe(true);
    // Once a policy exists, what a peer says about itself is held to the same ranges.
    expect(rescope(scope, H, [{ ma: ma('/ip4/8.8.8.8/tcp/1'), source: 'identify' }, { ma: ma('/ip4/1.2.3.4/tcp/1'), source: 'bootstrap' }]).map((a) => a.source)).toEqual(['bootstrap']);
  });

  it('keeps the newest few pushed addresses, always after the first-hand ones', () => {
    let list = mergeAddrs([], [ma('/ip4/10.0.0.5/tcp/7946')], 'policy');
    for (let i = 0; i < 32; i++) list = mergeAddrs(list, [ma(`/ip4/192.168.7.${i + 1}/tcp/7946`)], 'exchange');
    expect(list).toHaveLength(1 + MAX_EXCHANGE_ADDRS);
    expect(list[0]!.source).toBe('policy');
    expect(list.slice(1).map((a) => String(a.ma))).toEqual([29, 30, 31, 32].map((i) => `/ip4/192.168.7.${i}/tcp/7946`));
    const stages = dialStages(list);
    expect(stages.map((s) => s.exchange)).toEqual([false, true]);
    expect(stages[0]!.addrs.map(String)).toEqual(['/ip4/10.0.0.5/tcp/7946']);
  });

  it('drops a pushed address after repeated failures, or once the peer is reached first-hand', () => {
    let list = mergeAddrs(mergeAddrs([], [ma('/ip4/10.0.0.5/tcp/7946')], 'identify'), [ma('/ip4/192.168.7.1/tcp/7946')], 'exchange');
    list = exchangeFailed(list);
    expect(list).toHaveLength(2);
    expect(reachedFirstHand(list).map((a) => a.source)).toEqual(['identify']);
    for (let i = 1; i < MAX_EXCHANGE_FAILURES; i++) list = exchangeFailed(list);
    expect(list.map((a) => a.source)).toEqual(['identify']);
  });
});
