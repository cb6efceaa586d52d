/**
 * Where a peer may be dialled (pure): which addresses this node accepts for a PeerId, from
 * whom, and in which order it dials them; and whom the redial loop dials (redialPicks). Peer exchange is a claim like any other
 * (issue 13, "eclipse by peer exchange"), so:
 *  - addresses from peer exchange are taken only for PeerIds the held policy lists, and only
 *    inside that node's policy addresses or the configured `mesh.peerAddressCidrs`;
 *    what a peer says about itself (identify, the peer cache) is held to the same ranges
 *    once a policy exists;
 *  - at most MAX_EXCHANGE_ADDRS exchange addresses per peer (the newest), dropped after
 *    MAX_EXCHANGE_FAILURES failed dials in a row, or at once when the peer is reached at a
 *    first-hand address; at most MAX_IDENTIFY_ADDRS of what a peer says about itself;
 *  - dial order is by trust: policy-derived, bootstrap (operator config), identify, and only
 *    then exchange addresses, in a second attempt. No one can push the policy address out.
 */
import type { Multiaddr } from '@multiformats/multiaddr';
import { containsIp, parseIp, parsePrefix, type Prefix } from '../policy/ip.js';

export type AddrSource = 'policy' | 'bootstrap' | 'identify' | 'exchange';

export interface PeerAddr {
  ma: Multiaddr;
  source: AddrSource;
  /** Failed dials in a row (exchange addresses only). */
  failures?: number;
}

export const MAX_EXCHANGE_ADDRS = 4;
export const MAX_IDENTIFY_ADDRS = 8;
/**
 * A pushed address is tried this many times before it goes: enough to outlast an honest
 * peer's restart (its first-hand addresses may be unknown here), few enough that bogus ones
 * do not linger. With the cap and the dial order they can never crowd out a real address.
 */
export const MAX_EXCHANGE_FAILURES = 8;
const RANK: Record<AddrSource, number> = { policy: 0, bootstrap: 1, identify: 2, exchange: 3 };

export interface AddressScope {
  /** Policy addresses ("family:bigint") per listed PeerId; null: no policy held yet. */
  nodes: Map<string, Set<string>> | null;
  cidrs: Prefix[];
  /** In-process memory transport (tests, simulations): /memory/ addresses reach no host. */
  memory: boolean;
}

const ipKey = (ip: { family: number; addr: bigint }) => `${ip.family}:${ip.addr}`;

export function scopeOf(nodes: { peerId: string; addresses: string[] }[] | undefined, cidrs: readonly string[], memory: boolean): AddressScope {
  const prefixes = cidrs.flatMap((c) => { const r = parsePrefix(c); return r.ok ? [r.prefix] : []; });
  if (!nodes) return { nodes: null, cidrs: prefixes, memory };
  const map = new Map<string, Set<string>>();
  for (const n of nodes) map.set(n.peerId, new Set(n.addresses.flatMap((a) => { const ip = parseIp(a); return ip ? [ipKey(ip)] : []; })));
  return { nodes: map, cidrs: prefixes, memory };
}

/** May this node dial `peer` at `ma`, learned from `source`? */
export function inScope(scope: AddressScope, peer: string, ma: Multiaddr, source: AddrSource): boolean {
  if (source === 'policy' || source === 'bootstrap') return true;
  if (scope.nodes === null) return source === 'identify';
  const listed = scope.nodes.get(peer);
  if (!listed) return false;
  const [first, second] = ma.getComponents();
  if (first?.name === 'memory') return scope.memory;
  // Plain IP + TCP only: no DNS names (a name can point anywhere), no relays.
  if ((first?.name !== 'ip4' && first?.name !== 'ip6') || second?.name !== 'tcp' || first.value === undefined) return false;
  const ip = parseIp(first.value);
  if (!ip) return false;
  return listed.has(ipKey(ip)) || scope.cidrs.some((p) => containsIp(p, ip.family, ip.addr));
}

/** Adds `incoming` (already in scope) to a peer's list: deduplicated, capped per source, in dial order. */
export function mergeAddrs(list: readonly PeerAddr[], incoming: readonly Multiaddr[], source: AddrSource): PeerAddr[] {
  const byAddr = new Map(list.map((a) => [String(a.ma), { ...a }]));
  for (const ma of incoming) {
    const key = String(ma);
    const had = byAddr.get(key);
    if (had) {
      if (RANK[source] < RANK[had.source]) had.source = source;
      // Refreshed: move to the end of its source's queue (the newest are kept).
      byAddr.delete(key);
      byAddr.set(key, had);
    } else {
      byAddr.set(key, { ma, source });
    }
  }
  const all = [...byAddr.values()];
  const keepNewest = (s: AddrSource, n: number) => {
    const of = all.filter((a) => a.source === s);
    return new Set(of.slice(Math.max(0, of.length - n)));
  };
  const exchange = keepNewest('exchange', MAX_EXCHANGE_ADDRS), identify = keepNewest('identify', MAX_IDENTIFY_ADDRS);
  return all
    .filter((a) => (a.source === 'exchange' ? exchange.has(a) : a.source === 'identify' ? identify.has(a) : true))
    .sort((a, b) => RANK[a.source] - RANK[b.source]);
}

/** Dial attempts in order: what the policy, the operator and the peer itself said; then what others said. */
export function dialStages(list: readonly PeerAddr[]): { addrs: Multiaddr[]; exchange: boolean }[] {
  const trusted = list.filter((a) => a.source !== 'exchange').map((a) => a.ma);
  const exchange = list.filter((a) => a.source === 'exchange').map((a) => a.ma);
  return [{ addrs: trusted, exchange: false }, { addrs: exchange, exchange: true }].filter((s) => s.addrs.length > 0);
}

/** After a dial in which the exchange addresses were tried and all failed. */
export function exchangeFailed(list: readonly PeerAddr[]): PeerAddr[] {
  return list
    .map((a) => (a.source === 'exchange' ? { ...a, failures: (a.failures ?? 0) + 1 } : a))
    .filter((a) => (a.failures ?? 0) < MAX_EXCHANGE_FAILURES);
}

/** After the peer was reached at a first-hand address: pushed addresses that failed go. */
export function reachedFirstHand(list: readonly PeerAddr[]): PeerAddr[] {
  return list.filter((a) => a.source !== 'exchange' || !a.failures);
}

/** After the policy changed: what is no longer in scope goes. */
export function rescope(scope: AddressScope, peer: string, list: readonly PeerAddr[]): PeerAddr[] {
  return list.filter((a) => inScope(scope, peer, a.ma, a.source));
}

/** At most this many dials per redial tick. */
export const MAX_REDIALS_PER_TICK = 4;

/**
 * Whether the redial loop has anything to top up: redialPicks picks nobody otherwise. The
 * loop asks this first, every tick, so a node at its target does not sort through its whole
 * peer book ten times a second (8.6% of a thread running 100 idle agents).
 */
export function redialNeeded(connected: readonly string[], isListed: (peer: string) => boolean, minPeers: number): boolean {
  return connected.length < minPeers || connected.filter(isListed).length < minPeers;
}

/**
 * Whom the redial loop dials this tick (pure), from the candidates in random order: towards
 * `minPeers` connections, at most MAX_REDIALS_PER_TICK at a time. Only listed peers (the
 * policy's nodes; before any policy, the bootstrap peers) count towards minPeers for dialling
 * listed peers: strangers connected before the first policy must not stop this node from
 * reaching the bootstrap peers that will bring it. (Once a policy exists no stranger is
 * connected, and this is the plain minPeers rule.)
 */
export function redialPicks(candidates: readonly string[], connected: readonly string[], isListed: (peer: string) => boolean, minPeers: number): string[] {
  if (!redialNeeded(connected, isListed, minPeers)) return [];
  const listed = candidates.filter(isListed);
  const needAny = minPeers - connected.length;
  const needListed = minPeers - connected.filter(isListed).length;
  if (needAny > 0) return [...listed, ...candidates.filter((p) => !isListed(p))].slice(0, Math.min(needAny, MAX_REDIALS_PER_TICK));
  // Here needListed > 0 (redialNeeded): a slice to a negative need would dial all but that many.
  return listed.slice(0, Math.min(needListed, MAX_REDIALS_PER_TICK));
}
