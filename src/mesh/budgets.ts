/**
 * Room: per-peer budgets — everything one peer may cost this node, in one place. A listed
 * peer may be a compromised host; before the first policy anyone may connect. Each budget is
 * checked before the work it pays for (a refused connection, a reset stream, an ignored
 * message), each overrun is counted (`picket_budget_exceeded_total{kind}`) and, for a peer
 * with a listed identity, is a strike (`picket_peer_strikes_total{reason="over-budget"}`):
 * `penaltyThreshold` strikes within `banFor` ban it. Strangers' overruns are not struck (a
 * fresh identity is free, a ban on it means nothing): a global budget bounds them instead,
 * and they share one aggregated alert.
 *
 * | budget (kind)            | default            | counted per                          | an overrun costs the sender                                        |
 * |--------------------------|--------------------|--------------------------------------|--------------------------------------------------------------------|
 * | `connections`            | 2                  | PeerId (both directions)             | connection refused after Noise, or closed at once; strike after 10 free refusals (+10/min) |
 * | `streams`                | 2 at once          | PeerId × protocol (sync, digest)     | stream reset before a byte is read; strike                         |
 * | `statuses`               | 30 burst, 60/min   | node that signed it (origin)         | not stored, not relayed; strike when the origin is the sender      |
 * | `announcements`          | 10 burst, 10/min   | forwarding peer                      | not verified, not pulled, not relayed; strike                      |
 * | `digests`                | 120 burst, 600/min | sending neighbour                    | not decoded, not merged; strike                                    |
 * | `unadmitted-connections` | 32 (of 64)         | all peers no policy (or, before any, no bootstrap entry) lists | refused; counted, one aggregated alert |
 * | `unadmitted-streams`     | 4 at once          | the same strangers, together         | stream reset; counted, one aggregated alert                        |
 *
 * Honest peers stay far inside these: one exchange per peer at a time (two while both sides
 * start one), a status on change (debounced ≥ 1 s) and every `statusInterval`, one
 * announcement per published policy, a digest at most every 250 ms (status plane: one per
 * statusInterval and one per batch of news, coalesced). Strangers keep half the connection slots free for the
 * bootstrap peers that bring the first policy. Pure bookkeeping on an injected clock.
 */
import type { Clock } from '../runtime/clock.js';

export interface BudgetLimits {
  connectionsPerPeer: number;
  /**
   * Connections past `connectionsPerPeer` a listed peer may attempt (refused) before the
   * refusals cost it strikes. A node back from a partition, or restarted after its host froze,
   * finds its neighbours still holding its old connections until their keep-alive drops them
   * (up to 40 s): its dial backoff (0.5 s doubling to 30 s) retries about 7 times in that
   * time. A peer dialling in a loop spends this in seconds and is struck as before.
   */
  refusedConnectionBurst: number;
  refusedConnectionsPerMinute: number;
  inboundStreamsPerProtocol: number;
  statusBurst: number;
  statusesPerMinute: number;
  announcementBurst: number;
  announcementsPerMinute: number;
  digestBurst: number;
  digestsPerMinute: number;
  unadmittedConnections: number;
  unadmittedStreams: number;
}

export const DEFAULT_BUDGETS: Readonly<BudgetLimits> = Object.freeze({
  connectionsPerPeer: 2,
  refusedConnectionBurst: 10,
  refusedConnectionsPerMinute: 10,
  inboundStreamsPerProtocol: 2,
  statusBurst: 30,
  statusesPerMinute: 60,
  announcementBurst: 10,
  announcementsPerMinute: 10,
  digestBurst: 120,
  digestsPerMinute: 600,
  unadmittedConnections: 32,
  unadmittedStreams: 4,
});

export type BudgetKind = 'connections' | 'streams' | 'statuses' | 'announcements' | 'digests' | 'unadmitted-connections' | 'unadmitted-streams';

/** A token bucket: `burst` tokens, refilled at `perMinute`; time from the injected clock. */
class Bucket {
  #tokens: number;
  #at: number;
  constructor(private readonly burst: number, private readonly perMinute: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.perMinute) / 60_000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Full again: forgetting it changes nothing. */
  full(now: number): boolean {
    return this.#tokens + ((now - this.#at) * this.perMinute) / 60_000 >= this.burst;
  }
}

/** Buckets per key; bounded: full buckets are forgotten when the map grows. */
class Buckets {
  #m = new Map<string, Bucket>();
  constructor(private readonly clock: Clock, private readonly burst: number, private readonly perMinute: number) {}

  take(key: string): boolean {
    const now = this.clock.now();
    let b = this.#m.get(key);
    if (!b) {
      if (this.#m.size >= 4096) for (const [k, v] of this.#m) if (v.full(now)) this.#m.delete(k);
      b = new Bucket(this.burst, this.perMinute, now);
      this.#m.set(key, b);
    }
    return b.take(now);
  }
}

/** What a budget check says. `strike`: the sender has a listed identity and pays with a strike. */
export type Charge = { ok: true } | { ok: false; kind: BudgetKind; strike: boolean };

const OK: Charge = { ok: true };

export class Budgets {
  readonly limits: Readonly<BudgetLimits>;
  #statuses: Buckets;
  #announcements: Buckets;
  #digests: Buckets;
  #refusedConnections: Buckets;
  /** Open connections per peer (from libp2p's open/close events). */
  #conns = new Map<string, number>();
  /** Open inbound streams per protocol and peer. */
  #streams = new Map<string, number>();
  #unadmittedStreams = 0;

  /** `listed(peer)`: the current policy lists it (before any policy: a bootstrap peer). */
  constructor(clock: Clock, private readonly listed: (peer: string) => boolean, limits: Partial<BudgetLimits> = {}) {
    this.limits = Object.freeze({ ...DEFAULT_BUDGETS, ...limits });
    this.#statuses = new Buckets(clock, this.limits.statusBurst, this.limits.statusesPerMinute);
    this.#announcements = new Buckets(clock, this.limits.announcementBurst, this.limits.announcementsPerMinute);
    this.#digests = new Buckets(clock, this.limits.digestBurst, this.limits.digestsPerMinute);
    this.#refusedConnections = new Buckets(clock, this.limits.refusedConnectionBurst, this.limits.refusedConnectionsPerMinute);
  }

  connectionsOf(peer: string): number {
    return this.#conns.get(peer) ?? 0;
  }

  /** Connections held by peers no policy (or bootstrap entry) lists. */
  unadmittedConnections(): number {
    let n = 0;
    for (const [p, c] of this.#conns) if (!this.listed(p)) n += c;
    return n;
  }

  /** May `peer` open one more connection? Checked by the gater before the connection exists. */
  admitConnection(peer: string): Charge {
    if (this.connectionsOf(peer) >= this.limits.connectionsPerPeer) return this.#refuseConnection(peer);
    if (!this.listed(peer) && this.unadmittedConnections() >= this.limits.unadmittedConnections) return { ok: false, kind: 'unadmitted-connections', strike: false };
    return OK;
  }

  /**
   * A connection opened (every direction). Returns an overrun when it takes the peer over a
   * budget: gater checks race when handshakes run in parallel, this is the backstop. One we
   * dialled ourselves is refused all the same, but the peer does not pay for it.
   */
  opened(peer: string, direction: 'inbound' | 'outbound' = 'inbound'): Charge {
    const n = this.connectionsOf(peer) + 1;
    this.#conns.set(peer, n);
    if (n > this.limits.connectionsPerPeer) return direction === 'inbound' ? this.#refuseConnection(peer) : { ok: false, kind: 'connections', strike: false };
    if (!this.listed(peer) && this.unadmittedConnections() > this.limits.unadmittedConnections) return { ok: false, kind: 'unadmitted-connections', strike: false };
    return OK;
  }

  /** One connection past the peer's budget, refused: a strike once its free retries are spent. */
  #refuseConnection(peer: string): Charge {
    return { ok: false, kind: 'connections', strike: this.listed(peer) && !this.#refusedConnections.take(peer) };
  }

  closed(peer: string): void {
    const n = this.connectionsOf(peer) - 1;
    if (n > 0) this.#conns.set(peer, n);
    else this.#conns.delete(peer);
  }

  /**
   * An inbound stream of `protocol` from `peer` wants serving. On ok, call the returned
   * release when the stream ends (exactly once).
   */
  openStream(protocol: string, peer: string): { charge: Charge; release: () => void } {
    const key = `${protocol} ${peer}`;
    const n = this.#streams.get(key) ?? 0;
    const listed = this.listed(peer);
    if (n >= this.limits.inboundStreamsPerProtocol) return { charge: { ok: false, kind: 'streams', strike: listed }, release: () => undefined };
    if (!listed && this.#unadmittedStreams >= this.limits.unadmittedStreams) return { charge: { ok: false, kind: 'unadmitted-streams', strike: false }, release: () => undefined };
    this.#streams.set(key, n + 1);
    if (!listed) this.#unadmittedStreams++;
    let released = false;
    return {
      charge: OK,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.#streams.get(key) ?? 1) - 1;
        if (left > 0) this.#streams.set(key, left);
        else this.#streams.delete(key);
        if (!listed) this.#unadmittedStreams--;
      },
    };
  }

  /**
   * A verified, newer status signed by `origin`, forwarded by `from`. Over budget it is
   * neither stored nor relayed; only the origin flooding its own statuses is struck (an honest
   * relay of someone else's statuses never is: it relays only what it accepted itself).
   */
  status(origin: string, from: string): Charge {
    if (this.#statuses.take(origin)) return OK;
    return { ok: false, kind: 'statuses', strike: from === origin && this.listed(from) };
  }

  /** A status-plane digest from the neighbour `from` (never relayed), charged before it is decoded. */
  digest(from: string): Charge {
    if (this.#digests.take(from)) return OK;
    return { ok: false, kind: 'digests', strike: this.listed(from) };
  }

  /** An announcement forwarded by `from`, charged before its signature is checked. */
  announcement(from: string): Charge {
    if (this.#announcements.take(from)) return OK;
    return { ok: false, kind: 'announcements', strike: this.listed(from) };
  }
}
