/**
 * The anti-entropy decision (pure): given what I hold and what a peer says it holds,
 * what do I send it, and what may it send me? Shared by the libp2p sync protocol and the
 * simulator. What a peer says it holds is a claim, never a fact: it decides only how much
 * this node is willing to read, and whether the peer owes a body.
 */
import { LIMITS } from '../wire/limits.js';
import type { Random } from '../runtime/random.js';

export interface Holdings {
  meshId: string;
  rootVersion: number;
  policyVersion: number;
  /** Empty when no policy is held. */
  policyDigest: string;
  /**
   * A body already on its way to the node from elsewhere (0 / '' or absent: none). A peer
   * skips sending only this exact body: a version alone would let a liar's "v10^15 is on
   * its way" silence every honest peer.
   */
  fetchingVersion?: number;
  fetchingDigest?: string;
}

export interface PushPlan {
  /** Send roots with versions above this (undefined: none). */
  rootsAfter?: number;
  /** Send my policy envelope. */
  policy: boolean;
}

export const MAX_SYNC_ROOTS = 64;
export const MAX_SYNC_PEERS = 32;
export const MAX_PEER_ADDRS = 8;
/** A Hello is a few short fields: this is what the first read of every exchange may hold. */
export const MAX_HELLO_BYTES = 1024;
const MAX_ROOT_BYTES = 16 * 1024;
/** A Push without bodies: peer exchange entries and a few small fields. */
export const MAX_PEERS_BYTES = MAX_SYNC_PEERS * (LIMITS.maxStringLength + 8 + MAX_PEER_ADDRS * (LIMITS.maxStringLength + 4)) + 256;

export function planPush(mine: Holdings, theirs: Holdings): PushPlan {
  if (mine.meshId !== theirs.meshId) return { policy: false };
  const plan: PushPlan = { policy: false };
  if (theirs.rootVersion < mine.rootVersion) plan.rootsAfter = theirs.rootVersion;
  if (mine.policyDigest !== '') {
    // Behind: send, unless exactly this body is already on its way from elsewhere (a pull after
    // an announcement, or another sync exchange). Same version, other content: send too, so the peer sees the equivocation.
    const onItsWay = theirs.fetchingVersion === mine.policyVersion && theirs.fetchingDigest === mine.policyDigest;
    const behind = theirs.policyVersion < mine.policyVersion && !onItsWay;
    plan.policy = behind || (theirs.policyVersion === mine.policyVersion && theirs.policyDigest !== mine.policyDigest);
  }
  return plan;
}

/** The peer says it holds a policy body this node lacks: newer, or the same version with other content. */
export function claimsBody(mine: Holdings, theirs: Holdings): boolean {
  if (theirs.policyDigest === '' || mine.meshId !== theirs.meshId) return false;
  return theirs.policyVersion > mine.policyVersion || (theirs.policyVersion === mine.policyVersion && theirs.policyDigest !== mine.policyDigest);
}

/**
 * The largest Push this node reads from a peer, decided from the peer's Hello before a byte
 * of the Push is buffered: bodies only if the peer claims one and this exchange asked for it,
 * roots only as many as the peer claims to be ahead.
 */
export function pushLimit(mine: Holdings, theirs: Holdings, bodyWanted: boolean): number {
  const roots = theirs.rootVersion > mine.rootVersion ? Math.min(MAX_SYNC_ROOTS, theirs.rootVersion - mine.rootVersion) : 0;
  return MAX_PEERS_BYTES + roots * MAX_ROOT_BYTES + (bodyWanted ? LIMITS.maxEnvelopeBytes + 64 : 0);
}

/**
 * A node that holds no policy runs its anti-entropy round at least this often (ms). The eager
 * push misses a node that joins the gossip mesh a heartbeat after it (a fresh fleet's first
 * publish, a busy machine), gossipsub never re-sends it, and such a node cannot mix (it knows
 * no policy nodes): waiting a sync interval (default 30 s) left it on the baseline that long.
 * Only nodes without a policy pay it: a Hello each way, about 100 bytes.
 */
export const NO_POLICY_ROUND_MS = 5000;

/** The delay to the next anti-entropy round (ms), jittered 0.8–1.2; `r` uniform in [0, 1). */
export function roundDelay(syncInterval: number, holdsPolicy: boolean, r: number): number {
  return (holdsPolicy ? syncInterval : Math.min(syncInterval, NO_POLICY_ROUND_MS)) * (0.8 + r * 0.4);
}

/**
 * Across a fleet at its connection targets, about this many periodic rounds per sync interval
 * reach a policy node their node is not connected to, whatever the fleet's size. Such a round
 * opens a connection for one exchange and closes it (a Noise handshake, identify, gossipsub
 * set-up): it is what rejoins two sides of a healed partition that each hold their full
 * target, and 8 a fleet-wide interval does that within about one interval, but a uniform pick
 * over every listed node made it 82 % of all rounds at 100 nodes (the pick is a node's
 * connection only 18 times in 99).
 */
export const REACH_OUT_ROUNDS = 8;

/**
 * ...and each node reaches beyond its connections at least every this many rounds, whatever
 * the fleet's size: a node whose connections are all hostile listed peers (an eclipse) must
 * not be kept on an old version — the revocation of those very peers, say — for long.
 * Rationed alone, a node of 1,000 reached out once in ~125 rounds (an hour at the default
 * 30 s); with this it is at most 3 intervals (90 s). The price at 100 nodes is a third of the
 * rounds as short-lived connections, against 82 % before any ration.
 */
export const REACH_OUT_EVERY = 3;

export interface RoundPeerInput {
  /** The policy's nodes, this one left out (empty before any policy). */
  policyPeers: readonly string[];
  /** Peers this node holds a connection to. */
  connected: readonly string[];
  /** A listed node this node could dial now: an address known, admitted, out of its backoff. */
  dialable: (peer: string) => boolean;
  random: Random;
  /** Rounds since this node last picked a node it was not connected to (the caller counts). */
  roundsSinceFar: number;
}

/**
 * The periodic exchange's peer (pure). A listed node, connected or not — the uniform pick
 * over those it can reach, except that a far one (not connected) is picked at most
 * REACH_OUT_ROUNDS / listed of the time, and always once REACH_OUT_EVERY − 1 rounds went by
 * without one; with no listed node reachable, a random connected peer; none at all: undefined.
 */
export function roundPeer(o: RoundPeerInput): string | undefined {
  const connected = new Set(o.connected);
  const near: string[] = [];
  const far: string[] = [];
  for (const p of o.policyPeers) {
    if (connected.has(p)) near.push(p);
    else if (o.dialable(p)) far.push(p);
  }
  const reachable = near.length + far.length;
  if (!reachable) return o.connected.length ? o.connected[o.random.int(o.connected.length)] : undefined;
  const due = o.roundsSinceFar >= REACH_OUT_EVERY - 1;
  const farShare = near.length && !due ? Math.min(far.length / reachable, REACH_OUT_ROUNDS / o.policyPeers.length) : 1;
  const pool = far.length && o.random.next() < farShare ? far : near;
  return pool[o.random.int(pool.length)];
}
