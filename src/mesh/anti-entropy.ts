/**
 * Room: anti-entropy scheduling and serving. Runs the sync protocol (sync.ts) with peers:
 * on every new outbound connection, every `syncInterval` (jittered) with a random peer, on
 * demand (a gap, a root this node may lack), and the pull of an announced body. Serves the
 * peers' exchanges. What a peer pushes is offered to the engine as from that peer.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Stream, Connection } from '@libp2p/interface';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Logger } from '../runtime/logger.js';
import type { NodePort, OfferResult } from '../node/engine.js';
import type { Admission, Penalise } from './admission.js';
import type { Dialer } from './dialer.js';
import { shuffle } from './dialer.js';
import type { MeshNode } from './node.js';
import type { MeshMetrics } from './metrics.js';
import type { Budgets } from './budgets.js';
import { gossipVerdict, TopicValidatorResult, type Overrun } from './verdicts.js';
import { MAX_SYNC_PEERS, runSync, SYNC_PROTOCOL, SyncError, type PeerInfo, type SyncLocal, type SyncStats } from './sync.js';
import { roundDelay, roundPeer, type Holdings } from './sync-plan.js';
import { PullBudget, type Announcement } from './announce.js';
import { InFlight } from './inflight.js';
import { pullAnnounced } from './intake.js';

export interface AntiEntropyInit {
  meshId: string;
  self: string;
  engine: NodePort;
  admission: Admission;
  dialer: Dialer;
  clock: Clock;
  random: Random;
  log: Logger;
  metrics: MeshMetrics;
  penalise: Penalise;
  budgets: Budgets;
  overrun: Overrun;
  syncInterval: number;
  minPeers: number;
  syncTimeout: number;
  /** Concurrent inbound sync streams per connection (libp2p's own per-connection limit). */
  maxInboundStreams: number;
}

/** The gap between two mixing dials after a policy is accepted (ms, uniform in the range). */
const MIX_PACE = [300, 1000] as const;

export class AntiEntropy {
  /** Bodies on their way: pulls and exchanges with peers that are ahead. */
  readonly inflight: InFlight;
  /** One outstanding pull per forwarding peer, a few a minute: announcements are claims. */
  readonly #pullBudget: PullBudget;
  #o: AntiEntropyInit;
  #node!: MeshNode;
  #timers: Timer[] = [];
  #started = false;
  #stopped = false;
  #syncing = new Map<string, Promise<SyncStats | undefined>>();
  /** Every sync exchange in progress, initiated or served. */
  #exchanges = new Set<Promise<unknown>>();

  constructor(o: AntiEntropyInit) {
    this.#o = o;
    // A body held back for another peer's claim is asked for again once the claim's grace is over.
    this.#pullBudget = new PullBudget(o.clock);
    this.inflight = new InFlight(o.clock, (peer, version) => { if (this.holdings().policyVersion < version) void this.syncWith(peer); });
  }
  /** A new sync interval (the agent's SIGHUP): the next round is rescheduled at once. */
  reconfigure(c: Partial<Pick<AntiEntropyInit, 'syncInterval' | 'minPeers'>>): void {
    const changed = c.syncInterval !== undefined && c.syncInterval !== this.#o.syncInterval;
    this.#o = { ...this.#o, ...c };
    if (changed && this.#started && !this.#stopped) {
      for (const t of this.#timers) t.cancel();
      this.#timers = [];
      this.#schedule();
    }
  }

  /** Registers the sync protocol handler (before the node starts). */
  async install(node: MeshNode): Promise<void> {
    this.#node = node;
    await node.handle(SYNC_PROTOCOL, (stream: Stream, connection: Connection) => {
      const peer = connection.remotePeer.toString();
      // Charged before a byte is read: a peer cannot hold more exchanges open than its budget.
      const { charge, release } = this.#o.budgets.openStream(SYNC_PROTOCOL, peer);
      if (!charge.ok) {
        stream.abort(new Error(`over the ${charge.kind} budget`));
        this.#o.overrun(peer, charge);
        return;
      }
      void this.#track(this.#serve(stream, peer, release));
    }, { maxInboundStreams: this.#o.maxInboundStreams });
  }

  /** Starts the periodic schedule (the node must be started). */
  start(): void {
    this.#started = true;
    this.#schedule();
  }

  /** The policy changed: pull budgets of peers no longer listed are forgotten. */
  retainListed(listed: (peer: string) => boolean): void {
    this.#pullBudget.retain(listed);
  }

  stop(): void {
    this.#stopped = true;
    this.inflight.stop();
    for (const t of this.#timers) t.cancel();
  }

  /**
   * Periodic anti-entropy with a random policy node — connected or not, so that two sides
   * of a healed partition that are each above minPeers still find each other. Each round's
   * delay is drawn when the previous one fires (roundDelay): a node without a policy runs
   * them every few seconds until it holds one.
   */
  #schedule(): void {
    if (this.#stopped) return;
    const o = this.#o;
    const jitter = roundDelay(o.syncInterval, o.engine.current !== null, o.random.next());
    this.#timers.push(o.clock.setTimeout(() => {
      // Never let one slow exchange stall the schedule: each round is bounded by its own timeouts.
      void this.#round().catch(() => undefined);
      this.#schedule();
    }, jitter));
    if (this.#timers.length > 16) this.#timers.splice(0, this.#timers.length - 16);
  }

  #connectedPeers(): string[] {
    return [...new Set(this.#node.getConnections().map((c) => c.remotePeer.toString()))];
  }

  /**
   * A policy was accepted: it may name nodes this one has no address for (before the first
   * policy no pushed address is taken at all). While below the connection target, a jittered
   * moment later, one round: a dial beyond current connections, or an exchange that brings
   * addresses; each dial it leads to brings more (#reach after every exchange that taught us some).
   */
  policyAccepted(): void {
    const o = this.#o;
    const connected = this.#connectedPeers();
    if (this.#stopped || this.#mixing || !connected.length || connected.length >= 3 * o.minPeers) return;
    // A round: first dial one policy node this one already has an address for (the policy
    // itself gives them when the fleet runs on one port: then no exchange teaches anything new
    // and, without this dial, a line-bootstrapped fleet stayed a line, 9 hops deep at 30
    // nodes); otherwise one exchange with a connected peer to learn addresses. While dials
    // succeed and the node is below its target, the next follows MIX_PACE later: a fresh fleet
    // reaches its target within seconds of its first policy, one dial at a time (one dial per
    // sync interval took minutes, during which every update competed with the mixing; all at
    // once was the storm that made a healed partition take seconds).
    this.#mixing = true;
    const step = (): void => {
      this.#timers.push(o.clock.setTimeout(() => {
        if (this.#stopped) { this.#mixing = false; return; }
        void this.#round().then((dialed) => {
          if (dialed && !this.#stopped && this.#connectedPeers().length < 3 * o.minPeers) step();
          else this.#mixing = false;
        }, () => { this.#mixing = false; });
      }, MIX_PACE[0] + o.random.next() * (MIX_PACE[1] - MIX_PACE[0])));
    };
    step();
  }

  /** A mixing sequence (policyAccepted) is running: one at a time. */
  #mixing = false;

  /** One round; true when it dialed a new connection. */
  async #round(): Promise<boolean> {
    const o = this.#o;
    if (await this.#reach()) return true; // the new connection triggers a sync by itself
    const connected = this.#connectedPeers();
    const peer = this.#roundPeer(connected);
    if (peer === undefined) return false;
    if (connected.includes(peer)) {
      await this.syncWith(peer);
      return false;
    }
    // At the connection target, and the pick is a node this one is not connected to: one
    // exchange over a connection opened for it and closed after it. Without this, two sides
    // of a healed partition that each hold their full target never reach each other (the
    // redial loop dials only below minPeers, mixing only below its target).
    const conn = await o.dialer.dial(peer);
    if (!conn) return false;
    await this.syncWith(peer); // the one the new connection started (or a new one)
    if (this.#connectedPeers().length > 3 * o.minPeers) await o.dialer.close(conn, 'exchange over');
    return false;
  }

  /**
   * The periodic exchange's peer (roundPeer): a listed node, connected or not (a node without
   * an address, not admitted, or in its redial backoff is never picked), a far one only a few
   * times per fleet-wide interval; before any policy, a random connected peer.
   */
  #roundPeer(connected: string[]): string | undefined {
    const o = this.#o;
    const policyPeers = o.engine.current?.policy.nodes.map((n) => n.peerId).filter((p) => p !== o.self) ?? [];
    const peer = roundPeer({ policyPeers, connected, dialable: (p) => this.#dialable(p), random: o.random, roundsSinceFar: this.#roundsSinceFar });
    this.#roundsSinceFar = peer !== undefined && !connected.includes(peer) ? 0 : this.#roundsSinceFar + 1;
    return peer;
  }

  /** Rounds since the periodic exchange last picked a node this one was not connected to. */
  #roundsSinceFar = 0;

  /** A listed node this one could dial now: an address known, admitted, out of its redial backoff. */
  #dialable(peer: string): boolean {
    const o = this.#o;
    return o.dialer.knows(peer) && o.admission.isAllowed(peer) && o.dialer.due(peer);
  }

  /**
   * Dials one random policy node this node knows an address for and is not connected to —
   * reaching beyond current connections is what rejoins the halves of a healed partition and
   * keeps the mesh's diameter small — but only while the connection count is modest: every
   * dial is a connection that stays, and a node with hundreds spends its CPU on keep-alives.
   * Runs every round and after an exchange that taught us addresses (so a fresh fleet mixes
   * within seconds of its first policy, not one dial per sync interval).
   */
  async #reach(): Promise<boolean> {
    const o = this.#o;
    const connected = this.#connectedPeers();
    if (connected.length >= 3 * o.minPeers) return false;
    const cur = o.engine.current;
    const unconnected = cur ? cur.policy.nodes.map((n) => n.peerId).filter((p) => p !== o.self && !connected.includes(p) && this.#dialable(p)) : [];
    if (!unconnected.length) return false;
    return (await o.dialer.dial(unconnected[o.random.int(unconnected.length)]!)) !== undefined;
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
    const run = this.#track(this.#initiate(peer)).finally(() => this.#syncing.delete(peer));
    this.#syncing.set(peer, run);
    return run;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#exchanges.add(p);
    void p.finally(() => this.#exchanges.delete(p)).catch(() => undefined);
    return p;
  }

  async #initiate(peer: string): Promise<SyncStats | undefined> {
    let stream: Stream | undefined;
    try {
      stream = await this.#node.dialProtocol(peerIdFromString(peer), SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) });
      const stats = await runSync(stream, 'initiator', this.#withPeer(peer), this.#o.syncTimeout);
      this.#count(stats.sentBytes, stats.receivedBytes);
      await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => stream?.abort(new Error('close timed out')));
      return stats;
    } catch (e) {
      this.#failed(peer, e, stream);
      return undefined;
    }
  }

  holdings(): Holdings {
    const e = this.#o.engine;
    return {
      meshId: this.#o.meshId,
      rootVersion: e.root.root.version,
      policyVersion: e.current?.policy.version ?? 0,
      policyDigest: e.current?.digest ?? '',
    };
  }

  /** One pull per announced body, however many peers announce it at once (intake.ts). */
  pull(from: string, key: string, a: Announcement): Promise<void> {
    return pullAnnounced({
      inflight: this.inflight, budget: this.#pullBudget, clock: this.#o.clock,
      holdings: () => this.holdings(), exchanges: () => this.#exchanges,
      syncWith: (peer) => this.syncWith(peer), penalise: this.#o.penalise,
      started: () => this.#o.metrics.pulls.inc(),
    }, from, key, a);
  }

  /** What this node holds, for a sync with `peer`; what the peer pushes is offered as from it. */
  #withPeer(peer: string): SyncLocal {
    const o = this.#o;
    const e = o.engine;
    return {
      holdings: () => this.holdings(),
      claim: (theirs) => this.inflight.claim(peer, this.holdings(), theirs),
      strike: (why) => o.penalise(peer, 'sync-violation', why),
      rootsAfter: (v) => e.rootsAfter(v),
      policyEnvelope: () => e.current?.bytes,
      peers: () => this.#peerSample(peer),
      receive: async (push) => {
        if (push.policy) o.metrics.syncPoliciesIn.inc();
        let policy: OfferResult | undefined;
        for (const bytes of [...push.roots, ...(push.policy ? [push.policy] : [])]) {
          const r = await e.offer(bytes, { kind: 'sync', peer });
          if (bytes === push.policy) policy = r;
          if (gossipVerdict(r.outcome) === TopicValidatorResult.Reject) o.penalise(peer, 'sync-violation', `sync ${r.outcome}`);
        }
        // Learn peers only once verified state says who belongs (admission filters them).
        let learned = false;
        for (const info of push.peers) {
          if (info.peerId === o.self || !o.admission.isAllowed(info.peerId)) continue;
          const addrs = info.addrs.flatMap((a) => { try { return [multiaddr(a)]; } catch { return []; } });
          if (!addrs.length) continue;
          // Only a peer this node had no address for leads to a dial: churn stays bounded.
          if (!o.dialer.knows(info.peerId)) learned = true;
          o.dialer.learn(info.peerId, addrs, 'exchange');
        }
        if (learned && !this.#stopped) void this.#reach().catch(() => false);
        return policy ? { policy: { outcome: policy.outcome, ...(policy.version !== undefined ? { version: policy.version } : {}) } } : {};
      },
    };
  }

  /** Connected peers and their listen addresses, for peer exchange (the asking peer left out). */
  #peerSample(exclude: string): PeerInfo[] {
    const out: PeerInfo[] = [];
    const connected = this.#connectedPeers().filter((p) => p !== exclude);
    shuffle(connected, this.#o.random);
    for (const p of connected.slice(0, MAX_SYNC_PEERS)) {
      // Only what is known first-hand: never relay what another peer said.
      const addrs = this.#o.dialer.firstHandAddrsOf(p);
      if (addrs.length) out.push({ peerId: p, addrs: addrs.map(String) });
    }
    return out;
  }

  async #serve(stream: Stream, peer: string, release: () => void): Promise<void> {
    try {
      const stats = await runSync(stream, 'responder', this.#withPeer(peer), this.#o.syncTimeout).finally(release);
      this.#count(stats.sentBytes, stats.receivedBytes);
      await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => stream?.abort(new Error('close timed out')));
    } catch (e) {
      this.#failed(peer, e, stream);
    }
  }

  #count(out: number, inn: number): void {
    const m = this.#o.metrics;
    m.syncRuns.inc();
    m.syncBytes.inc({ direction: 'out' }, out);
    m.syncBytes.inc({ direction: 'in' }, inn);
  }

  #failed(peer: string, e: unknown, stream?: Stream): void {
    this.#o.metrics.syncFailures.inc();
    stream?.abort(e instanceof Error ? e : new Error(String(e)));
    if (e instanceof SyncError && e.strike) this.#o.penalise(peer, 'sync-violation', `sync ${e.strike}: ${e.message}`);
    this.#o.log.debug({ peer, err: (e as Error).message }, 'sync failed');
  }
}
