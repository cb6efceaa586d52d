/**
 * The libp2p side of an agent: TCP (or in-process memory) + Noise + yamux + identify + ping
 * + gossipsub, with admission, gossip validation through the engine, the sync protocol,
 * a persisted peer cache and redial with backoff. Knows nothing of nftables.
 */
import { EventEmitter } from 'node:events';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { memory } from '@libp2p/memory';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { gossipsub, TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PeerId, PrivateKey, Stream, Connection } from '@libp2p/interface';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Logger } from '../runtime/logger.js';
import type { Store, PeerRecord } from '../store/store.js';
import type { CurrentPolicy, Engine, OfferResult } from '../node/engine.js';
import { LIMITS } from '../wire/limits.js';
import { Admission } from './admission.js';
import { MAX_SYNC_PEERS, runSync, SYNC_PROTOCOL, SyncError, type PeerInfo, type SyncLocal, type SyncStats } from './sync.js';
import type { Holdings } from './sync-plan.js';
import { judgeAnnouncement, signAnnouncement, verifyAnnouncement, type Announcement } from './announce.js';
import { WireMeter, type WireBytes } from './wire-meter.js';
import { InFlight, type Pull } from './inflight.js';

export const policyTopic = (meshId: string) => `/picket/${meshId}/policy/1`;
export const statusTopic = (meshId: string) => `/picket/${meshId}/status/1`;
export const announceTopic = (meshId: string) => `/picket/${meshId}/announce/1`;

export interface MeshOptions {
  meshId: string;
  privateKey: PrivateKey;
  listen: string[];
  bootstrap: string[];
  engine: Engine;
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
}

export interface MeshCounters {
  gossipIn: Record<string, number>;
  syncRuns: number;
  syncFailures: number;
  syncBytesIn: number;
  syncBytesOut: number;
  gossipBytesIn: number;
  announcementsIn: Record<string, number>;
  announcementsOut: number;
  pulls: number;
  /** Policy envelopes received through sync (pulled or pushed). */
  syncPoliciesIn: number;
  penalised: number;
}

interface Known {
  addrs: Multiaddr[];
  failures: number;
  nextAt: number;
  bootstrap: boolean;
}

/** Maps a verification outcome to what gossipsub does with the message. */
export function gossipVerdict(outcome: OfferResult['outcome']): TopicValidatorResult {
  switch (outcome) {
    case 'accepted':
      return TopicValidatorResult.Accept;
    // Honest peers can send these: a lagging relay, a race, a peer that saw the other side of an equivocation.
    case 'duplicate':
    case 'stale':
    case 'equivocation':
    case 'expired':
    case 'gap':
    // An honest peer that has not yet seen a root rotation, or whose root expired, sends these.
    case 'stale-root-signature':
    case 'root-expired':
      return TopicValidatorResult.Ignore;
    // Only a forger or a broken peer sends these: gossipsub penalises the sender.
    default:
      return TopicValidatorResult.Reject;
  }
}

export interface MeshEvents {
  penalised: [peer: string, why: string];
}

export class Mesh extends EventEmitter<MeshEvents> {
  readonly admission: Admission;
  readonly counters: MeshCounters = { gossipIn: {}, syncRuns: 0, syncFailures: 0, syncBytesIn: 0, syncBytesOut: 0, gossipBytesIn: 0, announcementsIn: {}, announcementsOut: 0, pulls: 0, syncPoliciesIn: 0, penalised: 0 };
  readonly #wire = new WireMeter();
  #o: MeshOptions;
  #node!: Libp2p<{ pubsub: GossipSub }>;
  #known = new Map<string, Known>();
  #timers: Timer[] = [];
  #stopped = false;
  #syncing = new Map<string, Promise<SyncStats | undefined>>();
  /** Every sync exchange in progress, initiated or served. */
  #exchanges = new Set<Promise<unknown>>();
  /** Bodies on their way: pulls and exchanges with peers that are ahead. */
  #inflight = new InFlight();
  /** Same-version-other-digest announcements already pulled once (an equivocation seen). */
  #pulledOther = new Set<string>();
  #dirtyPeers = new Map<string, PeerRecord>();

  constructor(o: MeshOptions) {
    super();
    this.#o = o;
    this.admission = new Admission(o.clock, o.privateKey.publicKey.toString());
  }

  get libp2p(): Libp2p<{ pubsub: GossipSub }> {
    return this.#node;
  }

  get peerId(): string {
    return this.#node.peerId.toString();
  }

  /** TCP bytes this agent received and sent, over all its connections so far. */
  wireBytes(): WireBytes {
    return this.#wire.bytes();
  }

  connectedPeers(): string[] {
    return [...new Set(this.#node.getConnections().map((c) => c.remotePeer.toString()))];
  }

  async start(): Promise<void> {
    const o = this.#o;
    const addrs = [...o.listen, ...o.bootstrap];
    const transports = [];
    if (addrs.some((a) => a.startsWith('/memory/'))) transports.push(memory({ latency: o.memoryLatency ?? 0 }));
    if (addrs.some((a) => /\/tcp\//.test(a)) || transports.length === 0) transports.push(tcp());
    this.#node = (await createLibp2p({
      privateKey: o.privateKey,
      addresses: { listen: o.listen },
      transports,
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: this.admission.gater(),
      connectionManager: { maxConnections: 64 },
      metrics: () => this.#wire.metrics(),
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          emitSelf: false,
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          globalSignaturePolicy: 'StrictNoSign',
          maxInboundDataLength: LIMITS.maxEnvelopeBytes + 64 * 1024,
          ...(o.noIdontwant ? { idontwantMinDataSize: Number.MAX_SAFE_INTEGER } : {}),
          heartbeatInterval: 700,
          // Admission already limits the mesh to PeerIds the signed policy lists, so gossipsub's
          // Sybil defence against many peers behind one IP only hurts here: fleets share IPs
          // (NAT, containers, one test host), and above 10 co-located peers it drove every
          // score to -500 and emptied the gossip mesh (measured: 30 loopback nodes, 7.5 s medians).
          scoreParams: { IPColocationFactorWeight: 0 },
        }),
      },
    })) as unknown as Libp2p<{ pubsub: GossipSub }>;

    const node = this.#node;
    const topic = policyTopic(o.meshId);
    node.services.pubsub.topicValidators.set(topic, async (peer, msg) => {
      const from = peer.toString();
      this.counters.gossipBytesIn += msg.data.length;
      const retry = !this.admission.isBanned(from);
      let r = await o.engine.offer(msg.data, { kind: 'gossip', peer: from }, { retryBelowThreshold: retry });
      if (r.outcome === 'below-threshold' && retry) {
        // Signed under a root this node may not hold yet (a rotation still spreading): sync
        // with the sender, which pulls any newer root, then judge the message again.
        await this.syncWith(from);
        r = await o.engine.offer(msg.data, { kind: 'gossip', peer: from });
      }
      this.counters.gossipIn[r.outcome] = (this.counters.gossipIn[r.outcome] ?? 0) + 1;
      const verdict = gossipVerdict(r.outcome);
      if (verdict === TopicValidatorResult.Reject) this.#penalise(from, `gossip ${r.outcome}`);
      if (r.outcome === 'gap') void this.syncWith(from);
      return verdict;
    });
    node.services.pubsub.subscribe(topic);
    const announce = announceTopic(o.meshId);
    node.services.pubsub.topicValidators.set(announce, async (peer, msg) => this.#onAnnouncement(peer.toString(), msg.data));
    node.services.pubsub.subscribe(announce);

    await node.handle(SYNC_PROTOCOL, (stream: Stream, connection: Connection) => {
      void this.#track(this.#serveSync(stream, connection.remotePeer.toString()));
    }, { maxInboundStreams: 4 });

    node.addEventListener('connection:open', (e) => {
      const peer = e.detail.remotePeer.toString();
      const k = this.#known.get(peer);
      if (k) { k.failures = 0; k.nextAt = 0; }
      // Anti-entropy on every new connection: this is what heals partitions and offline nodes.
      // The dialling side starts it; both starting it would move a large body twice.
      if (e.detail.direction === 'outbound') void this.syncWith(peer);
    });
    node.addEventListener('peer:identify', (e) => {
      const peer = e.detail.peerId.toString();
      const listenAddrs = e.detail.listenAddrs.filter((a) => !a.toString().includes('/p2p-circuit'));
      if (!listenAddrs.length || !this.admission.isAllowed(peer)) return;
      this.#learn(peer, listenAddrs, false);
      this.#dirtyPeers.set(peer, { addrs: listenAddrs.map(String), lastSeen: o.clock.now() });
    });

    o.engine.on('policy', (cur, source) => {
      this.#applyAdmission();
      // What arrived by gossip is forwarded by gossipsub itself, and so is the announcement
      // of a body pulled after one; anything else we push (or announce, when large).
      if (source.kind === 'gossip' || this.#inflight.pulling(cur.policy.version)) return;
      void this.#publishPolicy(cur);
    });
    o.engine.on('root', (_root, source) => {
      if (source.kind !== 'gossip') {
        const bytes = o.engine.rootsAfter(_root.root.version - 1)[0];
        if (bytes) void this.#publishRaw(policyTopic(o.meshId), bytes);
      }
    });
    this.#applyAdmission();

    // Peer cache first (a restart with every bootstrap peer down still rejoins), then bootstrap.
    for (const [peer, rec] of await o.store.peers()) {
      const ma = rec.addrs.flatMap((a) => { try { return [multiaddr(a)]; } catch { return []; } });
      if (ma.length) this.#learn(peer, ma, false);
    }
    for (const b of o.bootstrap) {
      const ma = multiaddr(b);
      const peer = ma.getComponents().find((c) => c.name === 'p2p')?.value;
      if (peer) this.#learn(peer, [ma], true);
      else o.log.warn({ addr: b }, 'bootstrap address has no /p2p/<PeerId>; ignored');
    }
    await node.start();
    o.log.info({ peerId: this.peerId, addrs: node.getMultiaddrs().map(String) }, 'mesh listening');
    this.#tick();
    this.#scheduleSync();
  }

  listenAddrs(): string[] {
    return this.#node.getMultiaddrs().map(String);
  }

  #learn(peer: string, raw: Multiaddr[], bootstrap: boolean): void {
    if (peer === this.peerIdSafe()) return;
    // libp2p dials a list only if every address names the same peer (or none does): name it everywhere.
    const addrs = raw.flatMap((a) => {
      const named = a.getComponents().find((c) => c.name === 'p2p')?.value;
      if (named && named !== peer) return [];
      return [named ? a : a.encapsulate(`/p2p/${peer}`)];
    });
    if (!addrs.length) return;
    const k = this.#known.get(peer);
    if (k) {
      const have = new Set(k.addrs.map(String));
      for (const a of addrs) if (!have.has(String(a))) k.addrs.push(a);
      k.bootstrap ||= bootstrap;
    } else {
      this.#known.set(peer, { addrs: [...addrs], failures: 0, nextAt: 0, bootstrap });
    }
  }

  peerIdSafe(): string {
    return this.#o.privateKey.publicKey.toString();
  }

  /**
   * A fleet usually runs the agent on one port everywhere: policy node addresses plus our
   * own TCP listen port make dial candidates for nodes we have never heard from.
   */
  #learnFromPolicy(): void {
    const cur = this.#o.engine.current;
    if (!cur) return;
    const ports = [...new Set(this.#o.listen.flatMap((a) => { const m = /\/tcp\/(\d+)/.exec(a); return m && m[1] !== '0' ? [m[1]!] : []; }))];
    if (!ports.length) return;
    for (const n of cur.policy.nodes) {
      if (n.peerId === this.peerIdSafe() || this.#known.has(n.peerId)) continue;
      const addrs = n.addresses.flatMap((a) => ports.map((p) => multiaddr(`/${a.includes(':') ? 'ip6' : 'ip4'}/${a}/tcp/${p}/p2p/${n.peerId}`)));
      if (addrs.length) this.#learn(n.peerId, addrs, false);
    }
  }

  /** Policy nodes become the allow-list; peers no longer listed are cut off at once. */
  #applyAdmission(): void {
    const cur = this.#o.engine.current;
    this.admission.setAllowed(cur ? cur.policy.nodes.map((n) => n.peerId) : null);
    this.#learnFromPolicy();
    if (!this.#node) return;
    for (const c of this.#node.getConnections()) {
      const peer = c.remotePeer.toString();
      if (!this.admission.isAllowed(peer)) {
        this.#o.log.info({ peer }, 'peer no longer admitted; disconnecting');
        void c.close().catch(() => c.abort(new Error('not admitted')));
      }
    }
  }

  #penalise(peer: string, why: string): void {
    const o = this.#o;
    this.counters.penalised++;
    o.log.debug({ peer, why }, 'peer strike');
    if (this.admission.strike(peer, o.penaltyThreshold, o.banFor)) {
      o.log.warn({ peer, why }, 'peer penalised: disconnected and banned');
      this.emit('penalised', peer, why);
      void this.#node.hangUp(peerIdFromString(peer)).catch(() => undefined);
    }
  }

  /** Redial loop: keep towards minPeers connections, backing off per peer. */
  #tick(): void {
    if (this.#stopped) return;
    const o = this.#o;
    const now = o.clock.now();
    const connected = new Set(this.connectedPeers());
    let need = o.minPeers - connected.size;
    if (need > 0) {
      const candidates = [...this.#known.entries()].filter(([p, k]) => !connected.has(p) && k.nextAt <= now && this.admission.isAllowed(p));
      shuffle(candidates, o.random);
      for (const [peer] of candidates.slice(0, Math.min(need, 4))) {
        need--;
        void this.#dial(peer);
      }
    }
    // Trim: far above minPeers, close a few random connections (never a bootstrap peer's).
    const excess = connected.size - 4 * o.minPeers;
    if (excess > 0) {
      const extra = this.#node.getConnections().filter((c) => !this.#known.get(c.remotePeer.toString())?.bootstrap);
      shuffle(extra, o.random);
      for (const c of extra.slice(0, excess)) void c.close().catch(() => undefined);
    }
    void this.#flushPeers();
    this.#timers.push(o.clock.setTimeout(() => this.#tick(), Math.max(100, o.redialMin)));
    if (this.#timers.length > 16) this.#timers.splice(0, this.#timers.length - 16);
  }

  async #dial(peer: string): Promise<Connection | undefined> {
    const o = this.#o;
    const k = this.#known.get(peer);
    if (!k) return undefined;
    try {
      const conn = await this.#node.dial(k.addrs, { signal: AbortSignal.timeout(5000) });
      k.failures = 0;
      k.nextAt = 0;
      return conn;
    } catch (e) {
      k.failures++;
      const backoff = Math.min(o.redialMax, o.redialMin * 2 ** Math.min(k.failures - 1, 20));
      k.nextAt = o.clock.now() + backoff * (0.75 + o.random.next() * 0.5);
      o.log.debug({ peer, failures: k.failures, err: (e as Error).message }, 'dial failed');
      return undefined;
    }
  }

  /**
   * Periodic anti-entropy with a random policy node — connected or not, so that two sides
   * of a healed partition that are each above minPeers still find each other.
   */
  #scheduleSync(): void {
    if (this.#stopped) return;
    const o = this.#o;
    const jitter = o.syncInterval * (0.8 + o.random.next() * 0.4);
    this.#timers.push(o.clock.setTimeout(() => {
      // Never let one slow exchange stall the schedule: each round is bounded by its own timeouts.
      void this.#syncRound().catch(() => undefined);
      this.#scheduleSync();
    }, jitter));
  }

  async #syncRound(): Promise<void> {
    const o = this.#o;
    const connected = this.connectedPeers();
    const cur = o.engine.current;
    const policyPeers = cur ? cur.policy.nodes.map((n) => n.peerId).filter((p) => p !== this.peerIdSafe() && this.#known.has(p)) : [];
    const unconnected = policyPeers.filter((p) => !connected.includes(p) && this.admission.isAllowed(p) && (this.#known.get(p)?.nextAt ?? 0) <= o.clock.now());
    // Reach beyond current connections (this is what rejoins the halves of a healed
    // partition), but only while the connection count is modest: every dial is a connection
    // that stays, and a node with hundreds of them spends its CPU on keep-alives.
    if (unconnected.length && connected.length < 3 * o.minPeers) {
      const p = unconnected[o.random.int(unconnected.length)]!;
      if (await this.#dial(p)) return; // the new connection triggers a sync by itself
    }
    if (connected.length) await this.syncWith(connected[o.random.int(connected.length)]!);
  }

  /**
   * Initiates one sync exchange with a peer (at most one at a time per peer: a second call
   * while one runs gets that one's result). Resolves with the exchange's stats, or
   * undefined when it failed.
   */
  syncWith(peer: string): Promise<SyncStats | undefined> {
    if (this.#stopped) return Promise.resolve(undefined);
    const running = this.#syncing.get(peer);
    if (running) return running;
    const run = this.#track(this.#initiateSync(peer)).finally(() => this.#syncing.delete(peer));
    this.#syncing.set(peer, run);
    return run;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#exchanges.add(p);
    void p.finally(() => this.#exchanges.delete(p)).catch(() => undefined);
    return p;
  }

  async #initiateSync(peer: string): Promise<SyncStats | undefined> {
    let stream: Stream | undefined;
    try {
      stream = await this.#node.dialProtocol(peerIdFromString(peer), SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) });
      const stats = await runSync(stream, 'initiator', this.#withPeer(peer), this.#o.syncTimeout ?? 10_000);
      this.#count(stats.sentBytes, stats.receivedBytes);
      await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => stream?.abort(new Error('close timed out')));
      return stats;
    } catch (e) {
      this.#syncFailed(peer, e, stream);
      return undefined;
    }
  }

  #holdings(): Holdings {
    const e = this.#o.engine;
    return {
      meshId: this.#o.meshId,
      rootVersion: e.root.root.version,
      policyVersion: e.current?.policy.version ?? 0,
      policyDigest: e.current?.digest ?? '',
    };
  }

  /**
   * An announcement of a large policy, forwarded to us by `from`. Pull the body from that
   * peer (an honest node forwards an announcement only once it holds the body), then let
   * gossipsub forward the announcement only if we now hold exactly that body, so whoever
   * hears it from us can pull from us in turn.
   */
  async #onAnnouncement(from: string, data: Uint8Array): Promise<TopicValidatorResult> {
    const o = this.#o;
    this.counters.gossipBytesIn += data.length;
    const isMember = (p: string) => o.engine.current?.policy.nodes.some((n) => n.peerId === p) ?? false;
    const v = await verifyAnnouncement(data, o.meshId, isMember);
    let outcome: string;
    if (!v.ok) {
      outcome = v.reject ? 'rejected' : 'ignored';
      if (v.reject) this.#penalise(from, v.reason);
    } else {
      const a = v.announcement;
      let judged = judgeAnnouncement(this.#holdings(), a);
      const key = `${a.policyVersion}:${a.policyDigest}`;
      if (judged === 'pull' && a.policyVersion === this.#holdings().policyVersion) {
        // Same version, other content: pull once so the engine sees (and alerts on) the equivocation.
        if (this.#pulledOther.has(key)) judged = 'ignore';
        else { if (this.#pulledOther.size > 64) this.#pulledOther.clear(); this.#pulledOther.add(key); }
      }
      if (judged === 'pull') {
        await this.#pull(from, key, a);
        judged = judgeAnnouncement(this.#holdings(), a);
      }
      outcome = judged === 'forward' ? 'forwarded' : judged === 'pull' ? 'not-pulled' : 'ignored';
    }
    this.counters.announcementsIn[outcome] = (this.counters.announcementsIn[outcome] ?? 0) + 1;
    if (outcome === 'rejected') return TopicValidatorResult.Reject;
    return outcome === 'forwarded' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
  }

  /** One pull per announced body, however many peers announce it at once. */
  #pull(from: string, key: string, a: Announcement): Promise<void> {
    const running = this.#inflight.pulls.get(key);
    if (running) return running.done;
    const pull: Pull = { from, version: a.policyVersion, done: Promise.resolve() };
    pull.done = (async () => {
      this.counters.pulls++;
      // Exchanges already running (a new connection's sync, one with `from` that started before
      // it held the body) may be bringing this body: let them finish first, then judge only an
      // exchange started after the announcement arrived.
      if (this.#exchanges.size) await Promise.allSettled([...this.#exchanges]);
      if (judgeAnnouncement(this.#holdings(), a) !== 'pull') return;
      const stats = await this.syncWith(from);
      if (stats && stats.peer.policyVersion < a.policyVersion) {
        // It forwarded an announcement for a body it does not hold: honest peers never do.
        this.#penalise(from, 'announced a policy it does not hold');
      }
    })().finally(() => this.#inflight.pulls.delete(key));
    this.#inflight.pulls.set(key, pull);
    return pull.done;
  }

  /** What this node holds, for a sync with `peer`; what the peer pushes is offered as from it. */
  #withPeer(peer: string): SyncLocal {
    const e = this.#o.engine;
    return {
      holdings: () => ({ ...this.#holdings(), fetchingVersion: this.#inflight.fetchingExcept(peer) }),
      claim: (theirs) => this.#inflight.claim(peer, this.#holdings(), theirs),
      rootsAfter: (v) => e.rootsAfter(v),
      policyEnvelope: () => e.current?.bytes,
      peers: () => this.#peerSample(peer),
      receive: async (push) => {
        if (push.policy) this.counters.syncPoliciesIn++;
        for (const bytes of [...push.roots, ...(push.policy ? [push.policy] : [])]) {
          const r = await this.#o.engine.offer(bytes, { kind: 'sync', peer });
          if (gossipVerdict(r.outcome) === TopicValidatorResult.Reject) this.#penalise(peer, `sync ${r.outcome}`);
        }
        // Learn peers only once verified state says who belongs (admission filters them).
        for (const info of push.peers) {
          if (info.peerId === this.peerIdSafe() || !this.admission.isAllowed(info.peerId)) continue;
          const addrs = info.addrs.flatMap((a) => { try { return [multiaddr(a)]; } catch { return []; } });
          if (addrs.length) this.#learn(info.peerId, addrs, false);
        }
      },
    };
  }

  /** Connected peers and their listen addresses, for peer exchange (the asking peer left out). */
  #peerSample(exclude: string): PeerInfo[] {
    const out: PeerInfo[] = [];
    const connected = this.connectedPeers().filter((p) => p !== exclude);
    shuffle(connected, this.#o.random);
    for (const p of connected.slice(0, MAX_SYNC_PEERS)) {
      const k = this.#known.get(p);
      if (k?.addrs.length) out.push({ peerId: p, addrs: k.addrs.map(String) });
    }
    return out;
  }

  async #serveSync(stream: Stream, peer: string): Promise<void> {
    try {
      const stats = await runSync(stream, 'responder', this.#withPeer(peer), this.#o.syncTimeout ?? 10_000);
      this.#count(stats.sentBytes, stats.receivedBytes);
      await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => stream?.abort(new Error('close timed out')));
    } catch (e) {
      this.#syncFailed(peer, e, stream);
    }
  }

  #count(out: number, inn: number): void {
    this.counters.syncRuns++;
    this.counters.syncBytesOut += out;
    this.counters.syncBytesIn += inn;
  }

  #syncFailed(peer: string, e: unknown, stream?: Stream): void {
    this.counters.syncFailures++;
    stream?.abort(e instanceof Error ? e : new Error(String(e)));
    if (e instanceof SyncError) this.#penalise(peer, e.message);
    this.#o.log.debug({ peer, err: (e as Error).message }, 'sync failed');
  }

  /** Subscribes to the signed-status topic; the validator decides accept / ignore / reject. */
  subscribeStatus(validate: (bytes: Uint8Array, from: string) => Promise<'accept' | 'ignore' | 'reject'>): void {
    const topic = statusTopic(this.#o.meshId);
    const map = { accept: TopicValidatorResult.Accept, ignore: TopicValidatorResult.Ignore, reject: TopicValidatorResult.Reject } as const;
    this.#node.services.pubsub.topicValidators.set(topic, async (peer, msg) => {
      const v = await validate(msg.data, peer.toString());
      if (v === 'reject') this.#penalise(peer.toString(), 'invalid status');
      return map[v];
    });
    this.#node.services.pubsub.subscribe(topic);
  }

  publishStatus(bytes: Uint8Array): Promise<void> {
    return this.#publishRaw(statusTopic(this.#o.meshId), bytes);
  }

  /** Spreads the policy this node holds: pushed whole, or announced when large. */
  async #publishPolicy(cur: CurrentPolicy): Promise<void> {
    const o = this.#o;
    if (o.announceAbove === null || cur.bytes.length <= o.announceAbove) return this.#publishRaw(policyTopic(o.meshId), cur.bytes);
    const signed = await signAnnouncement({
      meshId: o.meshId, peerId: this.peerIdSafe(), policyVersion: cur.policy.version, policyDigest: cur.digest,
      size: cur.bytes.length, rootVersion: o.engine.root.root.version, time: o.clock.now(),
    }, o.privateKey);
    this.counters.announcementsOut++;
    return this.#publishRaw(announceTopic(o.meshId), signed);
  }

  async #publishRaw(topic: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.#node.services.pubsub.publish(topic, bytes);
    } catch (e) {
      this.#o.log.debug({ topic, err: (e as Error).message }, 'publish failed');
    }
  }

  async #flushPeers(): Promise<void> {
    if (!this.#dirtyPeers.size) return;
    const batch = new Map(this.#dirtyPeers);
    this.#dirtyPeers.clear();
    try {
      await this.#o.store.savePeers(batch);
    } catch (e) {
      this.#o.log.warn({ err: (e as Error).message }, 'peer cache not saved');
    }
  }

  /** Test hook: cut or restore links; cut links are closed at once. */
  async setLinkFilter(filter: ((peerId: string) => boolean) | null): Promise<void> {
    this.admission.linkFilter = filter;
    if (filter) {
      await Promise.all(this.#node.getConnections().filter((c) => !filter(c.remotePeer.toString())).map((c) => c.close().catch(() => c.abort(new Error('link cut')))));
    } else {
      for (const k of this.#known.values()) { k.failures = 0; k.nextAt = 0; }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) t.cancel();
    await this.#flushPeers();
    await this.#node?.stop();
  }
}

function shuffle<T>(a: T[], random: Random): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

export type { PeerId };
