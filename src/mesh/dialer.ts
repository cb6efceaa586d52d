/**
 * Room: the peer book and dialing. Which addresses this node knows for which PeerId (from
 * the persisted peer cache, bootstrap, identify, the policy and peer exchange), the redial
 * loop that keeps towards `minPeers` connections with per-peer backoff, trimming far above
 * it, and the peer cache written back in batches. It decides whom to dial, never whom to admit.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { Connection } from '@libp2p/interface';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Logger } from '../runtime/logger.js';
import type { Store, PeerRecord } from '../store/store.js';
import type { NodePort } from '../node/engine.js';
import type { Admission } from './admission.js';
import type { MeshNode } from './node.js';
import type { PolicyNode } from '../policy/model.js';
import { dialStages, exchangeFailed, redialNeeded, redialPicks, inScope, mergeAddrs, reachedFirstHand, rescope, scopeOf, type AddressScope, type AddrSource, type PeerAddr } from './peer-book.js';

export interface DialerInit {
  self: string;
  listen: string[];
  bootstrap: string[];
  engine: NodePort;
  store: Store;
  admission: Admission;
  clock: Clock;
  random: Random;
  log: Logger;
  minPeers: number;
  redialMin: number;
  redialMax: number;
  /** mesh.peerAddressCidrs: where listed nodes may be besides their policy addresses. */
  peerAddressCidrs: readonly string[];
}

interface Known {
  /** In dial order (peer-book.ts). */
  addrs: PeerAddr[];
  failures: number;
  nextAt: number;
  bootstrap: boolean;
}

/**
 * The redial loop's backstop tick at its target. Nothing it does there depends on time
 * passing except a trim, which waits for it: a closed connection or a policy change wakes
 * the loop at once. (Ticking every redialMin regardless was 8.6% of a thread running 100
 * idle agents at the tests' 100 ms.)
 */
const IDLE_TICK_MS = 5000;

/**
 * The nodes and their addresses, as one string, memoized per policy's node list: a decoded
 * policy is never changed in place (each version is a new object), so its list's key holds.
 */
const nodeKeys = new WeakMap<readonly PolicyNode[], string>();
function nodesKey(nodes: readonly PolicyNode[]): string {
  let key = nodeKeys.get(nodes);
  if (key === undefined) {
    key = nodes.map((n) => `${n.peerId}=${n.addresses.join(',')}`).join(';');
    nodeKeys.set(nodes, key);
  }
  return key;
}

/**
 * A connection that closes sooner than this after it opened was not a successful dial: the
 * far side refused it (its budget for us is full of connections it has not yet found dead, or
 * we are banned there). Its backoff grows as for a failed dial instead of starting over.
 */
export const SHORT_LIVED_MS = 2000;

export class Dialer {
  #o: DialerInit;
  #node!: MeshNode;
  #known = new Map<string, Known>();
  #dirtyPeers = new Map<string, PeerRecord>();
  /** The redial loop's next tick, and when it is due. */
  #next: { timer: Timer; at: number } | null = null;
  #stopped = false;
  #scope: AddressScope;
  /** When each open connection opened (connected(); monotonic), and the ones this node is closing on purpose. */
  #openedAt = new WeakMap<Connection, number>();
  #closing = new WeakSet<Connection>();

  constructor(o: DialerInit) {
    this.#o = o;
    this.#scope = scopeOf(undefined, o.peerAddressCidrs, o.listen.some((a) => a.startsWith('/memory/')));
  }

  /** The held policy changed: addresses are accepted against its nodes; what is out of scope goes. */
  rescope(): void {
    const nodes = this.#o.engine.current?.policy.nodes;
    // Most versions change rules, not nodes: the same nodes and addresses keep the scope and
    // every address already in it (parsing them all again was O(N) per accept, per node).
    const key = nodes ? nodesKey(nodes) : null;
    if (key === null || key !== this.#scopeKey) {
      this.#scopeKey = key;
      this.#scope = scopeOf(nodes, this.#o.peerAddressCidrs, this.#scope.memory);
      for (const [peer, k] of this.#known) k.addrs = rescope(this.#scope, peer, k.addrs);
    }
    this.#wake(); // who counts as listed may have changed
  }
  /** The nodes and addresses #scope was built from (null: none yet, or no policy). */
  #scopeKey: string | null = null;
  /** The nodes and addresses learnFromPolicy last learned from. */
  #learnedKey: string | null = null;
  /** Run-time settings (the agent's SIGHUP): read at their next use. */
  reconfigure(c: Partial<Pick<DialerInit, 'minPeers' | 'redialMin' | 'redialMax'>>): void {
    this.#o = { ...this.#o, ...c };
  }


  /** Loads the peer cache and the bootstrap list; call before the node starts. */
  async load(node: MeshNode): Promise<void> {
    const o = this.#o;
    this.#node = node;
    // Peer cache first (a restart with every bootstrap peer down still rejoins), then bootstrap.
    for (const [peer, rec] of await o.store.peers()) {
      const ma = rec.addrs.flatMap((a) => { try { return [multiaddr(a)]; } catch { return []; } });
      if (ma.length) this.learn(peer, ma, 'identify');
    }
    for (const b of o.bootstrap) {
      const ma = multiaddr(b);
      const peer = ma.getComponents().find((c) => c.name === 'p2p')?.value;
      if (peer) this.learn(peer, [ma], 'bootstrap');
      else o.log.warn({ addr: b }, 'bootstrap address has no /p2p/<PeerId>; ignored');
    }
  }

  knows(peer: string): boolean {
    return this.#known.has(peer);
  }

  isBootstrap(peer: string): boolean {
    return this.#known.get(peer)?.bootstrap ?? false;
  }

  addrsOf(peer: string): Multiaddr[] {
    return (this.#known.get(peer)?.addrs ?? []).map((a) => a.ma);
  }

  /** Addresses known first-hand (policy, bootstrap, the peer itself): what peer exchange may relay. */
  firstHandAddrsOf(peer: string): Multiaddr[] {
    return (this.#known.get(peer)?.addrs ?? []).filter((a) => a.source !== 'exchange').map((a) => a.ma);
  }

  /** True when the peer may be dialled now (its backoff has passed). */
  due(peer: string): boolean {
    return (this.#known.get(peer)?.nextAt ?? 0) <= this.#o.clock.now();
  }

  learn(peer: string, raw: Multiaddr[], source: AddrSource): void {
    if (peer === this.#o.self) return;
    // libp2p dials a list only if every address names the same peer (or none does): name it everywhere.
    const addrs = raw.flatMap((a) => {
      const named = a.getComponents().find((c) => c.name === 'p2p')?.value;
      if (named && named !== peer) return [];
      return inScope(this.#scope, peer, a, source) ? [named ? a : a.encapsulate(`/p2p/${peer}`)] : [];
    });
    if (!addrs.length) return;
    const k = this.#known.get(peer);
    if (k) {
      k.addrs = mergeAddrs(k.addrs, addrs, source);
      k.bootstrap ||= source === 'bootstrap';
    } else {
      this.#known.set(peer, { addrs: mergeAddrs([], addrs, source), failures: 0, nextAt: 0, bootstrap: source === 'bootstrap' });
    }
  }

  /** A peer told us (identify) where it listens: remembered, and persisted in the peer cache. */
  identified(peer: string, listenAddrs: Multiaddr[]): void {
    this.learn(peer, listenAddrs, 'identify');
    this.#dirtyPeers.set(peer, { addrs: listenAddrs.map(String), lastSeen: this.#o.clock.now() });
  }

  /**
   * A connection opened: the peer is due again whenever it is next missed. Its failure count
   * stays until the connection has proved itself (see `disconnected`).
   */
  connected(conn: Connection): void {
    const k = this.#known.get(conn.remotePeer.toString());
    if (k) k.nextAt = 0;
    this.#openedAt.set(conn, this.#o.clock.monotonic());
  }

  /**
   * A connection closed: the redial loop looks at once whether to top up. One we dialled that
   * lived less than SHORT_LIVED_MS, and that we did not close ourselves (`close`), counts as
   * a failed dial of that peer; a longer one clears its backoff.
   */
  disconnected(conn: Connection): void {
    const k = this.#known.get(conn.remotePeer.toString());
    const openedAt = this.#openedAt.get(conn);
    if (k && openedAt !== undefined) {
      if (this.#o.clock.monotonic() - openedAt >= SHORT_LIVED_MS) { k.failures = 0; k.nextAt = 0; }
      else if (conn.direction === 'outbound' && !this.#closing.has(conn)) this.#failed(k);
    }
    this.#wake();
  }

  /** Closes a connection on purpose (an exchange over, a trim, a peer no longer admitted): not a refusal, whatever its age. */
  async close(conn: Connection, why: string): Promise<void> {
    this.#closing.add(conn);
    await conn.close().catch(() => conn.abort(new Error(why)));
  }

  /** One more failed dial of a peer: it is not dialled again before its backoff is over. */
  #failed(k: Known): void {
    const o = this.#o;
    k.failures++;
    const backoff = Math.min(o.redialMax, o.redialMin * 2 ** Math.min(k.failures - 1, 20));
    k.nextAt = o.clock.now() + backoff * (0.75 + o.random.next() * 0.5);
  }

  /** Forget every backoff (the network changed: a partition healed). */
  resetBackoff(): void {
    for (const k of this.#known.values()) { k.failures = 0; k.nextAt = 0; }
    this.#wake();
  }

  /**
   * A fleet usually runs the agent on one port everywhere: policy node addresses plus our
   * own TCP listen port make dial candidates for nodes we have never heard from.
   */
  learnFromPolicy(): void {
    const o = this.#o;
    const cur = o.engine.current;
    if (!cur) return;
    const ports = [...new Set(o.listen.flatMap((a) => { const m = /\/tcp\/(\d+)/.exec(a); return m && m[1] !== '0' ? [m[1]!] : []; }))];
    if (!ports.length) return;
    // The same nodes and addresses as last time: every one of these addresses is still known,
    // as a policy address (nothing removes one: a policy address is always in scope and keeps
    // its rank). Building them again was ~N multiaddr parses per accept.
    const key = nodesKey(cur.policy.nodes);
    if (key === this.#learnedKey) return;
    this.#learnedKey = key;
    for (const n of cur.policy.nodes) {
      if (n.peerId === o.self) continue;
      const addrs = n.addresses.flatMap((a) => ports.map((p) => multiaddr(`/${a.includes(':') ? 'ip6' : 'ip4'}/${a}/tcp/${p}/p2p/${n.peerId}`)));
      if (addrs.length) this.learn(n.peerId, addrs, 'policy');
    }
  }

  /** Starts the redial loop (the node must be started). */
  start(): void {
    this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#next?.timer.cancel();
    this.#next = null;
    await this.flush();
  }

  /**
   * Redial loop: keep towards minPeers connections, backing off per peer. It ticks every
   * redialMin while it has something to do (top up, trim); at its target it only waits for a
   * connection to close or the policy to change (#wake), with a slow tick as a backstop.
   */
  #tick(): void {
    this.#next = null;
    if (this.#stopped) return;
    const o = this.#o;
    const now = o.clock.now();
    const connected = new Set(this.#node.getConnections().map((c) => c.remotePeer.toString()));
    const peers = [...connected];
    const isListed = (p: string): boolean => o.admission.isListed(p);
    const needed = redialNeeded(peers, isListed, o.minPeers);
    if (needed) {
      const candidates = [...this.#known.entries()].filter(([p, k]) => !connected.has(p) && k.nextAt <= now && o.admission.isAllowed(p)).map(([p]) => p);
      shuffle(candidates, o.random);
      for (const peer of redialPicks(candidates, peers, isListed, o.minPeers)) void this.dial(peer);
    }
    // Trim: far above minPeers, close a few random connections (never a bootstrap peer's),
    // strangers' first.
    const excess = connected.size - 4 * o.minPeers;
    if (excess > 0) {
      const extra = this.#node.getConnections().filter((c) => !this.#known.get(c.remotePeer.toString())?.bootstrap);
      shuffle(extra, o.random);
      extra.sort((a, b) => Number(o.admission.isListed(a.remotePeer.toString())) - Number(o.admission.isListed(b.remotePeer.toString())));
      for (const c of extra.slice(0, excess)) void this.close(c, 'trimmed');
    }
    void this.flush();
    this.#schedule(needed || excess > 0 ? this.#busyTick() : Math.max(this.#busyTick(), IDLE_TICK_MS));
  }

  #busyTick(): number {
    return Math.max(100, this.#o.redialMin);
  }

  #schedule(delay: number): void {
    const at = this.#o.clock.now() + delay;
    if (this.#next && this.#next.at <= at) return;
    this.#next?.timer.cancel();
    this.#next = { timer: this.#o.clock.setTimeout(() => this.#tick(), delay), at };
  }

  /** Something may have left the loop work to do: its next tick comes within redialMin. */
  #wake(): void {
    if (this.#stopped || !this.#next) return; // not started yet, or stopped
    this.#schedule(this.#busyTick());
  }

  async dial(peer: string): Promise<Connection | undefined> {
    const o = this.#o;
    const k = this.#known.get(peer);
    if (!k) return undefined;
    const failuresBefore = k.failures;
    try {
      // First-hand addresses first; what other peers pushed only if those fail.
      let conn: Connection | undefined, last: unknown = new Error('no address');
      for (const stage of dialStages(k.addrs)) {
        try {
          conn = await this.#node.dial(stage.addrs, { signal: AbortSignal.timeout(5000) });
          k.addrs = stage.exchange ? k.addrs : reachedFirstHand(k.addrs);
          break;
        } catch (e) {
          last = e;
          if (stage.exchange) k.addrs = exchangeFailed(k.addrs);
        }
      }
      if (!conn) throw last;
      return conn; // its backoff: connected() and disconnected() (a refusal opens, then closes)
    } catch (e) {
      // A connection that opened and was closed at once may fail this dial too: counted once.
      if (k.failures === failuresBefore) this.#failed(k);
      o.log.debug({ peer, failures: k.failures, err: (e as Error).message }, 'dial failed');
      return undefined;
    }
  }

  async flush(): Promise<void> {
    if (!this.#dirtyPeers.size) return;
    const batch = new Map(this.#dirtyPeers);
    this.#dirtyPeers.clear();
    try {
      await this.#o.store.savePeers(batch);
    } catch (e) {
      this.#o.log.warn({ err: (e as Error).message }, 'peer cache not saved');
    }
  }
}

export function shuffle<T>(a: T[], random: Random): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
