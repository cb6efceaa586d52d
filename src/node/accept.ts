/**
 * The engine's accept decision for a policy envelope (pure): the trust state it verifies
 * against — the newest trusted root, the roots it superseded, the version floor and whether
 * the floor's body is held — and the floor an accept moves to. Engine.offer runs exactly this
 * before it persists; the simulator (bench/sim/) runs it at every simulated node, so both
 * judge an envelope the same way.
 */
import type { Envelope } from '../trust/envelope.js';
import type { RootDoc } from '../trust/root.js';
import { verifyPolicy, type PolicyVerdict, type TrustedRoot } from '../trust/verify.js';
import type { PolicyFloor } from './trusted-state.js';

export interface AcceptState {
  root: TrustedRoot;
  /** Roots the trusted one superseded, newest first (names `stale-root-signature`). */
  superseded: RootDoc[];
  /** The highest policy version ever accepted (null: none yet). */
  floor: PolicyFloor | null;
  /** Digest of the policy body held now (null: none). */
  heldDigest: string | null;
}

export function judgePolicy(input: Uint8Array | Envelope, meshId: string, s: AcceptState, now: number): PolicyVerdict {
  const floor = s.floor;
  return verifyPolicy(input, {
    root: s.root, meshId, superseded: s.superseded,
    ...(floor ? { policy: { ...floor, held: s.heldDigest === floor.digest } } : {}),
  }, now);
}

/** The version floor after `v` was accepted. */
export function floorAfter(v: Extract<PolicyVerdict, { outcome: 'accepted' }>): PolicyFloor {
  return { version: v.policy.version, digest: v.digest };
}
