/**
 * The anti-entropy decision (pure): given what I hold and what a peer says it holds,
 * what do I send it? Shared by the libp2p sync protocol and the simulator.
 */
export interface Holdings {
  meshId: string;
  rootVersion: number;
  policyVersion: number;
  /** Empty when no policy is held. */
  policyDigest: string;
  /** A version already on its way to the node from elsewhere: a pull or another exchange (0 or absent: none). */
  fetchingVersion?: number;
}

export interface PushPlan {
  /** Send roots with versions above this (undefined: none). */
  rootsAfter?: number;
  /** Send my policy envelope. */
  policy: boolean;
}

export function planPush(mine: Holdings, theirs: Holdings): PushPlan {
  if (mine.meshId !== theirs.meshId) return { policy: false };
  const plan: PushPlan = { policy: false };
  if (theirs.rootVersion < mine.rootVersion) plan.rootsAfter = theirs.rootVersion;
  if (mine.policyDigest !== '') {
    // Behind: send, unless that body is already on its way from elsewhere (a pull after an
    // announcement, or another sync exchange). Same version, other content: send too, so the peer sees the equivocation.
    const behind = theirs.policyVersion < mine.policyVersion && (theirs.fetchingVersion ?? 0) < mine.policyVersion;
    plan.policy = behind || (theirs.policyVersion === mine.policyVersion && theirs.policyDigest !== mine.policyDigest);
  }
  return plan;
}
