/**
 * The staged-rollout decision (node room, pure, clock passed in): given the newest accepted
 * policy, the version this node enforces now, when it first saw the newest one and what the
 * signed statuses of the fleet say, which version does this node enforce?
 *
 * Rules (docs/decisions.md, "Staged rollout"):
 * - A policy without a rollout, a node of the first stage, a node the newest version removes
 *   (revoked: never delayed) and a node that enforces nothing of its own yet (fresh, or not
 *   listed in the version it enforces) enforce the newest version at once.
 * - Any other node waits until `after` has passed since it first saw the version (its own
 *   clock: skew between nodes and the signer cannot shorten the wait) AND `healthy`% of the
 *   earlier stages' nodes report, in their latest signed statuses, this very version (number
 *   and digest) in force without trouble.
 * - A node of an earlier stage that reports this version failed (apply failure, lock-out
 *   revert) halts the rollout: no later stage switches, whatever the time. Halted is sticky
 *   for that version (the engine persists it); only a newer version supersedes it.
 * - The decision only ever moves a node forward: once switched it stays switched.
 */
import { stageOfNodes, type Policy } from '../policy/model.js';

/** What a node's latest signed status says, as the auditor holds it (see RolloutHealthPort). */
export interface PeerHealth {
  peerId: string;
  /** The newest version the node holds (null: never heard from). */
  policyVersion: number | null;
  digest: string | null;
  /** Its enforcement state (ok, drift-repaired, failed, baseline, revoked, pending). */
  enforcement: string | null;
  /** Its own rollout holds policyVersion back: it still enforces an older version. */
  held: boolean;
  /** Not heard from within the silence window. */
  silent: boolean;
  /**
   * Alert classes open in its latest status that were not open in its latest status for an
   * older version: what this version brought (a standing alert from before does not block).
   */
  newAlerts: string[];
}

/** Alerts that say the version broke the node: they halt the rollout. */
export const FAILURE_ALERTS: readonly string[] = ['apply-failed', 'lockout-revert'];
/** Alerts that say the version may be wrong: while new, the node does not count as healthy. */
export const UNHEALTHY_ALERTS: readonly string[] = [...FAILURE_ALERTS, 'unexpected-listener', 'exposed-port'];
const HEALTHY_STATES = new Set(['ok', 'drift-repaired']);

export type RolloutDecision =
  | { kind: 'enforce'; stage: number | null; why: 'no-rollout' | 'first-stage' | 'revoked' | 'fresh' | 'stage-reached' }
  | { kind: 'hold'; stage: number; why: 'waiting' | 'unhealthy'; until: number; healthy: number; needed: number; of: number }
  | { kind: 'halted'; stage: number; failed: string; reason: string };

export interface RolloutInput {
  /** The newest accepted policy and its digest. */
  newest: Policy;
  digest: string;
  /** When this node first accepted the newest version (its own clock). */
  firstSeen: number;
  /** The policy this node enforces now (null: none yet). */
  enforcing: Policy | null;
  /** This node's PeerId. */
  self: string;
  now: number;
  /** The fleet's latest statuses (nodes not listed: never heard from). */
  health: readonly PeerHealth[];
  /** A halt this node already recorded for the newest version. */
  halted?: { failed: string; reason: string };
}

/** True when `h` reports that it tried to enforce exactly this version and it failed. */
function failedOn(h: PeerHealth, version: number, digest: string): string | null {
  if (h.policyVersion !== version || h.digest !== digest || h.held) return null;
  if (h.enforcement === 'failed') return 'its apply failed';
  const bad = h.newAlerts.find((a) => FAILURE_ALERTS.includes(a));
  return bad ? `it raised ${bad}` : null;
}

function healthyOn(h: PeerHealth, version: number, digest: string): boolean {
  return h.policyVersion === version && h.digest === digest && !h.held && !h.silent
    && HEALTHY_STATES.has(h.enforcement ?? '') && !h.newAlerts.some((a) => UNHEALTHY_ALERTS.includes(a));
}

export function decideRollout(i: RolloutInput): RolloutDecision {
  const stages = i.newest.rollout?.stages ?? [];
  if (!stages.length) return { kind: 'enforce', stage: null, why: 'no-rollout' };
  const stageOf = stageOfNodes(i.newest);
  const stage = stageOf.get(i.self);
  if (stage === undefined) return { kind: 'enforce', stage: null, why: 'revoked' };
  if (stage === 0) return { kind: 'enforce', stage: 1, why: 'first-stage' };
  if (!i.enforcing || !i.enforcing.nodes.some((n) => n.peerId === i.self)) return { kind: 'enforce', stage: stage + 1, why: 'fresh' };
  if (i.halted) return { kind: 'halted', stage: stage + 1, failed: i.halted.failed, reason: i.halted.reason };

  const byPeer = new Map(i.health.map((h) => [h.peerId, h]));
  const earlier = [...stageOf].filter(([, s]) => s < stage).map(([p]) => p);
  for (const p of earlier) {
    const h = byPeer.get(p);
    const why = h && failedOn(h, i.newest.version, i.digest);
    if (why) return { kind: 'halted', stage: stage + 1, failed: p, reason: why };
  }
  const s = stages[stage]!;
  const until = i.firstSeen + (s.after ?? 0);
  const healthy = earlier.filter((p) => { const h = byPeer.get(p); return h !== undefined && healthyOn(h, i.newest.version, i.digest); }).length;
  // Whole nodes: 90% of 3 needs 3 (2 would be 67%). Validation keeps `earlier` non-empty.
  const needed = Math.ceil(((s.healthy ?? 100) * earlier.length) / 100);
  if (i.now < until) return { kind: 'hold', stage: stage + 1, why: 'waiting', until, healthy, needed, of: earlier.length };
  if (healthy < needed) return { kind: 'hold', stage: stage + 1, why: 'unhealthy', until, healthy, needed, of: earlier.length };
  return { kind: 'enforce', stage: stage + 1, why: 'stage-reached' };
}

/**
 * What a held node enforces: its previous version, minus every node the newest version no
 * longer lists. A rollout delays new rules, never a revocation: the removed node's addresses
 * leave every set (the enforcer then blocks them as revoked) on held nodes too.
 */
export function heldPolicy(previous: Policy, newest: Policy): Policy {
  const kept = new Set(newest.nodes.map((n) => n.peerId));
  if (previous.nodes.every((n) => kept.has(n.peerId))) return previous;
  const gone = new Set(previous.nodes.filter((n) => !kept.has(n.peerId)).flatMap((n) => [`node:${n.name}`, `node:${n.peerId}`]));
  const strip = <R extends { to: string[]; from: string[] }>(r: R): R | null => {
    const to = r.to.filter((s) => !gone.has(s));
    const from = r.from.filter((s) => !gone.has(s));
    return to.length && from.length ? { ...r, to, from } : null;
  };
  return {
    ...previous,
    nodes: previous.nodes.filter((n) => kept.has(n.peerId)),
    rules: previous.rules.map(strip).filter((r): r is NonNullable<typeof r> => r !== null),
    exceptions: previous.exceptions.map(strip).filter((r): r is NonNullable<typeof r> => r !== null),
  };
}

/** One line for logs, `status` and alerts. */
export function describeDecision(d: RolloutDecision, version: number, now: number): string {
  if (d.kind === 'enforce') return d.stage === null ? `enforcing v${version}` : `stage ${d.stage}: enforcing v${version}`;
  if (d.kind === 'halted') return `stage ${d.stage}: rollout of v${version} halted (${d.failed} of an earlier stage: ${d.reason})`;
  const left = Math.max(0, Math.ceil((d.until - now) / 1000));
  return d.why === 'waiting'
    ? `stage ${d.stage}: v${version} waits ${left}s more (earlier stages healthy: ${d.healthy}/${d.of}, need ${d.needed})`
    : `stage ${d.stage}: v${version} waits for the earlier stages (healthy: ${d.healthy}/${d.of}, need ${d.needed})`;
}
