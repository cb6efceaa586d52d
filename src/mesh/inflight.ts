/**
 * Which policy bodies are already on their way to this node, and from whom: pulls after an
 * announcement, and sync exchanges whose peer is ahead. Sync tells every other peer about
 * them (Hello/Push `fetching_version`), so a body arrives about once however many
 * exchanges run at the same time. Pure bookkeeping, no I/O.
 */
import type { Holdings } from './sync-plan.js';

export interface Pull {
  from: string;
  version: number;
  done: Promise<void>;
}

export class InFlight {
  /** Pulls after announcements, by version:digest. */
  readonly pulls = new Map<string, Pull>();
  #incoming = new Set<{ version: number }>();

  /**
   * The newest version already on its way, for an exchange with `peer`: pulls from other
   * peers (a pull's own exchange must still ask), and every exchange that claimed a body
   * (even with the same peer: two connections to one peer can run two exchanges). 0: none.
   */
  fetchingExcept(peer: string): number {
    let v = 0;
    for (const p of this.pulls.values()) if (p.from !== peer) v = Math.max(v, p.version);
    for (const e of this.#incoming) v = Math.max(v, e.version);
    return v;
  }

  /** True while a pull of this version runs (its announcement is forwarded by gossip). */
  pulling(version: number): boolean {
    return [...this.pulls.values()].some((p) => p.version === version);
  }

  /**
   * An exchange with `peer` has read its Hello. Returns what to tell it is already on its way;
   * when nothing newer than ours is, this exchange is expected to bring the peer's body.
   */
  claim(peer: string, mine: Holdings, theirs: Holdings): { fetchingVersion: number; release(): void } {
    const fetchingVersion = this.fetchingExcept(peer);
    if (theirs.policyVersion <= mine.policyVersion || fetchingVersion >= theirs.policyVersion) return { fetchingVersion, release: () => undefined };
    const expected = { version: theirs.policyVersion };
    this.#incoming.add(expected);
    return { fetchingVersion, release: () => { this.#incoming.delete(expected); } };
  }
}
