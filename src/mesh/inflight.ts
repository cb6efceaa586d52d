/**
 * Which policy bodies this node has asked for and not received yet: pulls after an
 * announcement, and sync exchanges whose peer says it is ahead. Sync tells other peers
 * about them (Hello/Push `fetching_version` + `fetching_digest`), so a large body arrives
 * about once however many exchanges run at the same time.
 *
 * Every entry rests on a peer's claim, so none is trusted for long (issue 13, "sync block"):
 *  - another peer is told to hold back only the exact body claimed (version AND digest);
 *  - for other peers a claim counts only `graceMs` after it was made: a liar who claims a
 *    body and stalls delays an honest sender by at most that, and then pays a strike;
 *  - one outstanding claim per peer: a peer never holds more than one body-sized read;
 *  - an exchange told to hold back is retried after the grace if the node is still behind.
 * Pure bookkeeping over an injected clock; no I/O.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import { claimsBody, type Holdings } from './sync-plan.js';

/** How long another peer's unverified claim may hold back an honest sender. */
export const CLAIM_GRACE_MS = 2000;

export interface Pull {
  from: string;
  version: number;
  digest: string;
  since: number;
  done: Promise<void>;
}

export interface Claim {
  /** What to tell the peer is already on its way (0 / '': nothing it holds). */
  fetchingVersion: number;
  fetchingDigest: string;
  /** This exchange asked the peer for its body: the peer owes it, and may send that many bytes. */
  bodyWanted: boolean;
  release(): void;
}

interface Entry {
  peer: string;
  version: number;
  digest: string;
  since: number;
}

export class InFlight {
  /** Pulls after announcements, by version:digest. */
  readonly pulls = new Map<string, Pull>();
  #claims = new Set<Entry>();
  #retries = new Map<string, Timer>();

  /**
   * `retry(peer, version)` runs when an exchange that held a body back may have been misled
   * (the grace is over): the caller syncs with that peer again if still behind `version`.
   */
  constructor(private readonly clock: Clock, private readonly retry: (peer: string, version: number) => void = () => undefined, readonly graceMs = CLAIM_GRACE_MS) {}

  /** True while a pull of this version runs (its announcement is forwarded by gossip). */
  pulling(version: number): boolean {
    return [...this.pulls.values()].some((p) => p.version === version);
  }

  /** Outstanding claims (exchanges expecting a body), for tests and metrics. */
  outstanding(): number {
    return this.#claims.size;
  }

  /**
   * An exchange with `peer` has read its Hello. Returns what to tell it is already on its way,
   * and whether this exchange asks for (and will read) the peer's body.
   */
  claim(peer: string, mine: Holdings, theirs: Holdings): Claim {
    const none: Claim = { fetchingVersion: 0, fetchingDigest: '', bodyWanted: false, release: () => undefined };
    if (!claimsBody(mine, theirs)) return none;
    const now = this.clock.now();
    const fresh = (e: { since: number }) => now - e.since < this.graceMs;
    const same = (e: { version: number; digest: string }) => e.version === theirs.policyVersion && e.digest === theirs.policyDigest;
    const heldBack =
      // One body at a time per peer, whatever it claims.
      [...this.#claims].some((e) => e.peer === peer)
      // The same body from another exchange or a pull (a pull's own exchange still asks), while fresh.
      || [...this.#claims].some((e) => same(e) && fresh(e))
      || [...this.pulls.values()].some((p) => p.from !== peer && same(p) && fresh(p));
    if (heldBack) {
      this.#scheduleRetry(peer, theirs.policyVersion);
      return { ...none, fetchingVersion: theirs.policyVersion, fetchingDigest: theirs.policyDigest };
    }
    const entry: Entry = { peer, version: theirs.policyVersion, digest: theirs.policyDigest, since: now };
    this.#claims.add(entry);
    return { ...none, bodyWanted: true, release: () => { this.#claims.delete(entry); } };
  }

  #scheduleRetry(peer: string, version: number): void {
    if (this.#retries.has(peer)) return;
    this.#retries.set(peer, this.clock.setTimeout(() => {
      this.#retries.delete(peer);
      this.retry(peer, version);
    }, this.graceMs));
  }

  stop(): void {
    for (const t of this.#retries.values()) t.cancel();
    this.#retries.clear();
  }
}
