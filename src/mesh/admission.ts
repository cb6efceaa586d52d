/**
 * Admission: who may hold a connection to this node. Once a policy exists, only PeerIds it
 * lists (inbound and outbound); before that, anyone (a fresh node has nothing to leak and
 * must be reachable by its first policy). Penalised peers are refused for a while.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import type { Clock } from '../runtime/clock.js';

/**
 * Why a peer was struck: the label of `picket_peer_strikes_total{reason}` (a closed set, so a
 * peer cannot mint label values); `detail` is free text for the log only.
 */
export type StrikeReason =
  | 'gossip-rejected' | 'sync-violation' | 'invalid-status' | 'invalid-announcement' | 'announced-not-held' | 'over-budget';

/** Records a strike against a peer for a named misbehaviour (and bans it past the threshold). */
export type Penalise = (peer: string, reason: StrikeReason, detail: string) => void;

export class Admission {
  #allowed: ReadonlySet<string> | null = null;
  #bootstrap = new Set<string>();
  #banned = new Map<string, number>();
  /** Times of recent misbehaviour per peer; strikes older than the ban window are forgotten. */
  #strikes = new Map<string, number[]>();

  constructor(private readonly clock: Clock, private readonly self: string) {}

  /** A set is kept as given (not copied): the simulator shares one among 10,000 nodes. */
  setAllowed(peerIds: readonly string[] | ReadonlySet<string> | null): void {
    this.#allowed = peerIds === null ? null : peerIds instanceof Set ? peerIds : new Set(peerIds);
  }

  /** The configured bootstrap PeerIds: the only identities listed before any policy exists. */
  setBootstrap(peerIds: string[]): void {
    this.#bootstrap = new Set(peerIds);
  }

  /**
   * Listed: the current policy names this PeerId (before any policy: a bootstrap entry does).
   * Anyone else connected before the first policy is a stranger: it shares the unadmitted
   * budget and one aggregated alert, and strikes against it mean nothing (identities are free).
   */
  isListed(peerId: string): boolean {
    return this.#allowed === null ? this.#bootstrap.has(peerId) : this.#allowed.has(peerId);
  }

  isAllowed(peerId: string): boolean {
    if (peerId === this.self) return false;
    const until = this.#banned.get(peerId);
    if (until !== undefined) {
      if (until > this.clock.now()) return false;
      this.#banned.delete(peerId);
    }
    return this.#allowed === null || this.#allowed.has(peerId);
  }

  /** Records a misbehaviour; returns true when the peer crossed the threshold and is now banned. */
  strike(peerId: string, threshold: number, banMs: number): boolean {
    const now = this.clock.now();
    const recent = (this.#strikes.get(peerId) ?? []).filter((t) => now - t < banMs);
    recent.push(now);
    this.#strikes.set(peerId, recent);
    if (recent.length < threshold) return false;
    this.#strikes.delete(peerId);
    this.#banned.set(peerId, this.clock.now() + banMs);
    return true;
  }

  strikes(peerId: string): number {
    return this.#strikes.get(peerId)?.length ?? 0;
  }

  isBanned(peerId: string): boolean {
    return (this.#banned.get(peerId) ?? 0) > this.clock.now();
  }

  gater(): ConnectionGater {
    const deny = (peerId: PeerId) => !this.isAllowed(peerId.toString());
    return {
      denyDialPeer: deny,
      denyInboundEncryptedConnection: deny,
      denyOutboundEncryptedConnection: deny,
      denyInboundUpgradedConnection: deny,
      denyOutboundUpgradedConnection: deny,
      // Loopback and private addresses are normal for a fleet: do not filter by address.
      denyDialMultiaddr: () => false,
    };
  }
}
