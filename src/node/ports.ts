/**
 * The narrow ports of the node's state machine: what it needs from the layers above it
 * (enforcement) without importing them. The enforcer implements EnforcementPort; the
 * engine only ever sees this interface, so arrows point down (enforce → node).
 */
import type { Policy } from '../policy/model.js';
import type { PeerHealth } from './rollout.js';

/**
 * `revoked`: the node holds a policy that no longer lists it (it was removed from the fleet);
 * it enforces the baseline and says so, instead of reporting `ok` on a version it left.
 */
export type EnforcementState = 'ok' | 'baseline' | 'revoked' | 'failed' | 'drift-repaired' | 'pending';

export interface EnforcementStatus {
  backend: string;
  state: EnforcementState;
  rulesetHash: string | null;
  lastApplyAt: number | null;
  policyVersion: number | null;
  reason?: string;
}

export interface EnforcementPort {
  readonly status: EnforcementStatus;
  /** When the enforced ruleset next changes by itself (an exception ends), if ever. */
  readonly nextChangeAt: number | undefined;
  /** Compile and apply `policy` (null: the baseline). Never throws; failures are in the status. */
  enforce(policy: Policy | null, now: number): Promise<EnforcementStatus>;
  /** Reads back the kernel and repairs drift; returns a description of what drifted, if anything. */
  checkDrift(): Promise<string | null>;
  /** Every mesh peer is gone: the lock-out guard decides whether to restore mesh access. */
  onAllPeersLost(policy: Policy | null): Promise<boolean>;
  /** Addresses of revoked nodes that stay blocked (part of the trusted state the engine persists). */
  readonly blockedAddresses: string[];
  /** Seeds the blocked set from the persisted trusted state before the first apply. */
  restoreBlocked(addresses: readonly string[]): void;
}

/**
 * What a staged rollout needs from the fleet's signed statuses (the auditor implements it
 * from its fleet view). The engine decides; it never reads statuses, gossip or the store of
 * statuses itself. Rows are claims signed by each node: a member may lie about itself, which
 * can halt or hurry a rollout but never make this node accept an unsigned policy.
 */
export interface RolloutHealthPort {
  /** The latest status of every node of the newest policy that this node holds. */
  rows(): PeerHealth[];
  /** Registers `fn`, called (synchronously, cheaply) whenever a status arrives that may change rows(). */
  onChange(fn: () => void): void;
}
