/**
 * Room: the mesh, composed. The public face the agent uses (start, stop, connected peers,
 * statuses, sync on demand, strikes) over the rooms that each do one job:
 *   node.ts         libp2p construction            admission.ts  who may connect, strikes, bans
 *   gossip.ts       topics, validators, publishing  dialer.ts     peer book, redial, peer cache
 *   anti-entropy.ts sync scheduling and serving     sync.ts       the sync wire protocol
 *   budgets.ts      what one peer may cost (audit it in one sitting)    metrics.ts  prom-client counters
 * Knows nothing of nftables.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { EventEmitter } from 'node:events';
import type { Libp2p } from 'libp2p';
import type { GossipSub } from '@libp2p/gossipsub';
import { peerIdFromString } from '@libp2p/peer-id';
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface';
import type { Registry } from 'prom-client';
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Logger } from '../runtime/logger.js';
import type { Store } from '../store/store.js';
import type { NodePort } from '../node/engine.js';
import { Admission, type StrikeReason } from './admission.js';
import { Budgets, type BudgetKind, type BudgetLimits, type Charge } from './budgets.js';
import { createMeshNode, PING_INTERVAL, PING_TIMEOUT, type MeshNode } from './node.js';
import { KeepAlive } from './keepalive.js';
import { Dialer } from './dialer.js';
import { AntiEntropy } from './anti-entropy.js';
import { Gossip, type DigestHandler, type StatusValidator } from './gossip.js';
import { MeshMetrics } from './metrics.js';
import type { SyncStats } from './sync.js';
import { WireMeter, type WireBytes } from './wire-meter.js';

export { policyTopic, statusTopic, digestTopic, announceTopic, gossipVerdict, type DigestHandler } from './gossip.js';
export { MeshMetrics, type MeshCounters } from './metrics.js';

export interface MeshOptions {
  meshId: string;
  privateKey: PrivateKey;
  listen: string[];
  bootstrap: string[];
  engine: NodePort;
  store: Store;
  clock: Clock;
  random: Random;
  log: Logger;
  syncInterval: number;
  minPeers: number;
  redialMin: number;
  redialMax: number;
  penaltyThreshold: number;
  banFor: number;
  /**
   * Envelopes larger than this many bytes are announced (a small signed message) and pulled
   * once through sync, instead of being pushed whole to every gossip mesh peer. null: always push.
   */
  announceAbove: number | null;
  /** Per-link latency for the in-process memory transport (tests, simulations). */
  memoryLatency?: number;
  /** Benchmarks only: never send IDONTWANT (gossipsub v1.1 behaviour), to measure duplicates. */
  noIdontwant?: boolean;
  syncTimeout?: number;
  /** Where listed nodes may be besides their policy addresses (peer exchange, identify): peer-book.ts. */
  peerAddressCidrs?: readonly string[];
  /**
   * Tests only: wraps the production gater (simulated partitions cut links in a wrapper the
   * test owns; the production gater carries no test hook).
   */
  wrapGater?: (gater: ConnectionGater) => ConnectionGater;
  /** Where the mesh registers its prom-client metrics (the agent's registry; default: its own). */
  registry?: Registry;
  /** Overrides of the per-peer budgets (src/mesh/budgets.ts; defaults suit production). */
  budgets?: Partial<BudgetLimits>;
}

export interface MeshEvents {
  /** A listed peer crossed the strike threshold: disconnected and banned for `banFor`. */
  penalised: [peer: string, why: string];
  /**
   * A peer no policy (or, before any policy, no bootstrap entry) lists misbehaved or ran over
   * the strangers' budget. Identities are free, so these are reported together, not per peer.
   */
  unadmitted: [peer: string, why: string];
}

export class Mesh extends EventEmitter<MeshEvents> {
  readonly admission: Admission;
  readonly budgets: Budgets;
  readonly metrics: MeshMetrics;
  readonly #wire = new WireMeter();
  #o: MeshOptions;
  #node!: MeshNode;
  #dialer: Dialer;
  #keepAlive: KeepAlive | null = null;
  #sync: AntiEntropy;
  #gossip: Gossip;

  constructor(o: MeshOptions) {
    super();
    this.#o = o;
    const self = o.privateKey.publicKey.toString();
    this.admission = new Admission(o.clock, self);
    this.admission.setBootstrap(o.bootstrap.flatMap((b) => { const m = /\/p2p\/([^/]+)$/.exec(b); return m ? [m[1]!] : []; }));
    this.budgets = new Budgets(o.clock, (p) => this.admission.isListed(p), o.budgets);
    this.metrics = new MeshMetrics(o.registry);
    const penalise = (peer: string, reason: StrikeReason, detail: string) => this.#penalise(peer, reason, detail);
    const overrun = (peer: string, charge: Extract<Charge, { ok: false }>) => this.#overrun(peer, charge.kind, charge.strike);
    this.#dialer = new Dialer({
      self, listen: o.listen, bootstrap: o.bootstrap, engine: o.engine, store: o.store, admission: this.admission,
      clock: o.clock, random: o.random, log: o.log, minPeers: o.minPeers, redialMin: o.redialMin, redialMax: o.redialMax,
      peerAddressCidrs: o.peerAddressCidrs ?? [],
    });
    this.#sync = new AntiEntropy({
      meshId: o.meshId, self, engine: o.engine, admission: this.admission, dialer: this.#dialer, clock: o.clock, random: o.random,
      log: o.log, metrics: this.metrics, penalise, budgets: this.budgets, overrun, syncInterval: o.syncInterval, minPeers: o.minPeers,
      syncTimeout: o.syncTimeout ?? 10_000, maxInboundStreams: 4,
    });
    this.#gossip = new Gossip({
      meshId: o.meshId, self, privateKey: o.privateKey, engine: o.engine, admission: this.admission, antiEntropy: this.#sync,
      clock: o.clock, log: o.log, metrics: this.metrics, penalise, budgets: this.budgets, overrun, announceAbove: o.announceAbove,
    });
  }

  /**
   * Settings an operator may change at run time (the agent's SIGHUP). A new sync interval
   * reschedules the next round at once; new bootstrap peers are admitted before any policy,
   * learned and dialled on the next tick.
   */
  reconfigure(c: Partial<Pick<MeshOptions, 'bootstrap' | 'syncInterval' | 'minPeers' | 'redialMin' | 'redialMax' | 'penaltyThreshold' | 'banFor' | 'announceAbove'>>): void {
    this.#o = { ...this.#o, ...c };
    const o = this.#o;
    if (c.bootstrap) {
      this.admission.setBootstrap(c.bootstrap.flatMap((b) => { const m = /\/p2p\/([^/]+)$/.exec(b); return m ? [m[1]!] : []; }));
      for (const b of c.bootstrap) {
        const ma = multiaddr(b);
        const peer = ma.getComponents().find((x) => x.name === 'p2p')?.value;
        if (peer) this.#dialer.learn(peer, [ma], 'bootstrap');
        else o.log.warn({ addr: b }, 'bootstrap address has no /p2p/<PeerId>; ignored');
      }
    }
    this.#dialer.reconfigure({ minPeers: o.minPeers, redialMin: o.redialMin, redialMax: o.redialMax });
    this.#sync.reconfigure({ syncInterval: o.syncInterval, minPeers: o.minPeers });
    this.#gossip.reconfigure({ announceAbove: o.announceAbove });
  }

  /** The settings in force (reconfigure() changes some of them). */
  get options(): Readonly<MeshOptions> {
    return this.#o;
  }

  get libp2p(): Libp2p<{ pubsub: GossipSub }> {
    return this.#node;
  }

  get peerId(): string {
    return this.#node.peerId.toString();
  }

  peerIdSafe(): string {
    return this.#o.privateKey.publicKey.toString();
  }

  /** TCP bytes this agent received and sent, over all its connections so far. */
  wireBytes(): WireBytes {
    return this.#wire.bytes();
  }

  connectedPeers(): string[] {
    return [...new Set(this.#node.getConnections().map((c) => c.remotePeer.toString()))];
  }

  listenAddrs(): string[] {
    return this.#node.getMultiaddrs().map(String);
  }

  /** The addresses this node would dial `peer` at, in dial order. */
  knownAddrs(peer: string): string[] {
    return this.#dialer.addrsOf(peer).map(String);
  }

  async start(): Promise<void> {
    const o = this.#o;
    const gater = this.#gater();
    this.#node = await createMeshNode({
      privateKey: o.privateKey, listen: o.listen, bootstrap: o.bootstrap,
      gater: o.wrapGater ? o.wrapGater(gater) : gater,
      metrics: () => this.#wire.metrics(),
      maxConnections: 64,
      ...(o.memoryLatency !== undefined ? { memoryLatency: o.memoryLatency } : {}),
      ...(o.noIdontwant ? { noIdontwant: true } : {}),
    });
    const node = this.#node;
    this.#gossip.install(node);
    await this.#sync.install(node);

    node.addEventListener('connection:open', (e) => {
      const peer = e.detail.remotePeer.toString();
      // Backstop for handshakes that passed the gater in parallel: over budget, aborted at once.
      const charge = this.budgets.opened(peer, e.detail.direction);
      if (!charge.ok) {
        this.#overrun(peer, charge.kind, charge.strike);
        // Aborted, not closed: a graceful close may take a second, and the dialler must see a refusal.
        e.detail.abort(new Error('over the connection budget'));
        return;
      }
      this.#dialer.connected(e.detail);
      // Anti-entropy on every new connection: this is what heals partitions and offline nodes.
      // The dialling side starts it; both starting it would move a large body twice.
      if (e.detail.direction === 'outbound') void this.#sync.syncWith(peer);
    });
    node.addEventListener('connection:close', (e) => {
      this.budgets.closed(e.detail.remotePeer.toString());
      this.#dialer.disconnected(e.detail);
    });
    node.addEventListener('peer:identify', (e) => {
      const peer = e.detail.peerId.toString();
      const listenAddrs = e.detail.listenAddrs.filter((a) => !a.toString().includes('/p2p-circuit'));
      if (!listenAddrs.length || !this.admission.isAllowed(peer)) return;
      this.#dialer.identified(peer, listenAddrs);
    });

    // The mesh's steps (the engine runs verify → verified → persist → enforce → announce → status).
    // What arrived by gossip is forwarded by gossipsub itself (its validator says accept once
    // verified), and so is the announcement of a body pulled after one; anything else we push
    // as soon as it verified, or announce once accepted when large (a peer that hears the
    // announcement pulls the body from us, which sync serves only once it is persisted).
    const ours = (source: { kind: string }, version: number) => source.kind !== 'gossip' && !this.#sync.inflight.pulling(version);
    o.engine.setSteps({
      verified: (v, source) => {
        if (v.kind === 'policy' && ours(source, v.version) && this.#gossip.pushesWhole(v.bytes.length)) void this.#gossip.pushPolicy(v);
      },
      announce: (cur, source) => {
        this.#applyAdmission();
        this.#sync.policyAccepted();
        if (ours(source, cur.policy.version) && !this.#gossip.pushesWhole(cur.bytes.length)) void this.#gossip.publishPolicy(cur);
      },
    });
    o.engine.on('root', (root, source) => {
      if (source.kind !== 'gossip') {
        const bytes = o.engine.rootsAfter(root.root.version - 1)[0];
        if (bytes) void this.#gossip.publishRoot(bytes);
      }
    });
    this.#applyAdmission();
    await this.#dialer.load(node);
    await node.start();
    o.log.info({ peerId: this.peerId, addrs: node.getMultiaddrs().map(String) }, 'mesh listening');
    this.#dialer.start();
    this.#sync.start();
    this.#keepAlive = new KeepAlive(node, { clock: o.clock, interval: PING_INTERVAL, timeout: PING_TIMEOUT, log: o.log });
    this.#keepAlive.start();
  }

  /** Policy nodes become the allow-list; peers no longer listed are cut off at once. */
  #applyAdmission(): void {
    const cur = this.#o.engine.current;
    this.admission.setAllowed(cur ? cur.policy.nodes.map((n) => n.peerId) : null);
    this.#sync.retainListed((p) => this.admission.isAllowed(p));
    this.#dialer.rescope();
    this.#dialer.learnFromPolicy();
    if (!this.#node) return;
    for (const c of this.#node.getConnections()) {
      const peer = c.remotePeer.toString();
      if (!this.admission.isAllowed(peer)) {
        this.#o.log.info({ peer }, 'peer no longer admitted; disconnecting');
        void this.#dialer.close(c, 'not admitted');
      }
    }
  }

  /**
   * The production gater: admission (who may connect at all), then the connection budgets
   * (how many connections this peer, or strangers together, may hold) for inbound connections.
   */
  #gater(): ConnectionGater {
    const admission = this.admission.gater();
    const overBudget = (peerId: PeerId): boolean => {
      const peer = peerId.toString();
      const charge = this.budgets.admitConnection(peer);
      if (charge.ok) return false;
      this.#overrun(peer, charge.kind, charge.strike);
      return true;
    };
    return {
      ...admission,
      denyInboundEncryptedConnection: async (peerId, maConn) => Boolean(await admission.denyInboundEncryptedConnection?.(peerId, maConn)) || overBudget(peerId),
    };
  }

  #overrun(peer: string, kind: BudgetKind, strike: boolean): void {
    this.metrics.budgetExceeded.inc({ kind });
    this.#o.log.debug({ peer, kind }, 'peer over budget');
    if (strike) this.#penalise(peer, 'over-budget', `over the ${kind} budget`);
    else if (!this.admission.isListed(peer)) this.emit('unadmitted', peer, `over the ${kind} budget`);
  }

  #penalise(peer: string, reason: StrikeReason, detail: string): void {
    const o = this.#o;
    this.metrics.strikes.inc({ reason });
    o.log.debug({ peer, reason, detail }, 'peer strike');
    // A stranger's identity is free: a ban on it costs the sender nothing, and an alert per
    // identity is what a Sybil flood wants. Strangers are reported together instead.
    if (!this.admission.isListed(peer)) this.emit('unadmitted', peer, `${reason}: ${detail}`);
    if (this.admission.strike(peer, o.penaltyThreshold, o.banFor)) {
      o.log.warn({ peer, reason, detail }, 'peer penalised: disconnected and banned');
      if (this.admission.isListed(peer)) this.emit('penalised', peer, `${reason}: ${detail}`);
      void this.#node.hangUp(peerIdFromString(peer)).catch(() => undefined);
    }
  }

  /**
   * Initiates one sync exchange with a peer (at most one at a time per peer: a second call
   * while one runs gets that one's result). Resolves with the exchange's stats, or
   * undefined when it failed.
   */
  syncWith(peer: string): Promise<SyncStats | undefined> {
    return this.#sync.syncWith(peer);
  }

  /**
   * Subscribes to the signed-status topic; the validator decides accept / ignore / reject and
   * asks `withinBudget(origin)` before it stores a verified, newer status.
   */
  subscribeStatus(validate: StatusValidator, opts: { lazyGossip?: boolean } = {}): void {
    this.#gossip.subscribeStatus(validate, opts);
  }

  publishStatus(bytes: Uint8Array): Promise<void> {
    return this.#gossip.publishStatus(bytes);
  }

  /** Status-plane digests from direct neighbours (never relayed): `merge` says merged or reject. */
  subscribeDigest(merge: DigestHandler, maxBytes: number): void {
    this.#gossip.subscribeDigest(merge, maxBytes);
  }

  /** Digests to one connected neighbour on a stream of their own; false when that cannot be done. */
  sendDigest(peer: string, frames: readonly Uint8Array[]): Promise<boolean> {
    return this.#gossip.sendDigest(peer, frames);
  }

  publishDigest(bytes: Uint8Array, to: 'all' | 'mesh' = 'all'): Promise<void> {
    return this.#gossip.publishDigest(bytes, to);
  }

  /** Forgets every redial backoff: the network changed (a partition healed), dial again now. */
  resetBackoff(): void {
    this.#dialer.resetBackoff();
  }

  async stop(): Promise<void> {
    this.#keepAlive?.stop();
    this.#sync.stop();
    await this.#dialer.stop();
    await this.#node?.stop();
  }
}

export type { PeerId };
