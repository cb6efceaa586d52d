/**
 * Signed node status: what each node holds and enforces, signed with its node key and
 * gossiped, so any node can show the whole fleet. Receivers accept a status only if the
 * signature verifies against the sender's PeerId, the sender is a node of the current
 * policy, and its sequence number increases (no replay of an old "all good").
 */
import type { PrivateKey } from '@libp2p/interface';
import { isBoundedTime, LIMITS } from '../wire/limits.js';
import { isPrintable } from '../wire/text.js';
import { parseIp } from '../policy/ip.js';
import { MAX_STAGES } from '../policy/model.js';
import { signAsNode, verifyAsNode } from '../trust/node-sign.js';
import { pb } from '../wire/proto.js';

const DOMAIN = new TextEncoder().encode('picket-status-v1');
const MAX_STATUS_BYTES = 64 * 1024;
const MAX_FINDINGS = 64;
const MAX_ALERTS = 32;

export interface Finding {
  kind: 'exposed-port' | 'unexpected-listener';
  target: string;
  address: string;
  port: number;
  proto: string;
  detail: string;
}

export interface NodeStatus {
  meshId: string;
  peerId: string;
  policyVersion: number;
  digest: string;
  rulesetHash: string;
  enforcement: string;
  lastApplyAt: number;
  alerts: string[];
  seq: number;
  time: number;
  findings: Finding[];
  /** Kernel drops since the node's agent started (every reason but would-drop); absent: not counted. */
  dropped?: number;
  /** Packets accepted only because of monitor mode: what enforcing would drop. */
  wouldDrop?: number;
  /** 1-based stage of this node in policyVersion's staged rollout (absent: no rollout). */
  rolloutStage?: number;
  /** The older version still in force because policyVersion's rollout holds this node back (absent: none). */
  rolloutEnforcing?: number;
}

export async function signStatus(s: NodeStatus, key: PrivateKey): Promise<Uint8Array> {
  const status = pb.status.v1.Status.encode({
    meshId: s.meshId, peerId: s.peerId, policyVersion: s.policyVersion, digest: s.digest, rulesetHash: s.rulesetHash,
    enforcement: s.enforcement, lastApplyAtMs: s.lastApplyAt, alerts: s.alerts, seq: s.seq, timeMs: s.time, findings: s.findings,
    ...(s.dropped ? { droppedPackets: s.dropped } : {}), ...(s.wouldDrop ? { wouldDropPackets: s.wouldDrop } : {}),
    // Only when set: a status without a rollout encodes as before.
    ...(s.rolloutStage ? { rolloutStage: s.rolloutStage } : {}),
    ...(s.rolloutEnforcing ? { rolloutEnforcing: s.rolloutEnforcing } : {}),
  }).finish();
  const signature = await signAsNode(key, DOMAIN, status);
  return pb.status.v1.SignedStatus.encode({ status, signature }).finish();
}

// What each field of a status may hold. Anything else is a forgery or an attack on the
// operator's screen: rejected (and struck), never stored or shown.
const HEX_DIGEST = /^[0-9a-f]{0,64}$/;
const TOKEN = /^[a-z][a-z0-9-]{0,63}$/; // enforcement states, alert classes, finding kinds, protos
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,128}$/;

/** Why a decoded status's fields are not acceptable, or undefined. Never echoes the field. */
export function statusFieldProblem(s: { peerId: string; digest: string; rulesetHash: string; enforcement: string; alerts: string[]; findings: { kind?: string | null; target?: string | null; address?: string | null; proto?: string | null; detail?: string | null }[] }): string | undefined {
  if (!PEER_ID.test(s.peerId)) return 'status peerId is not a PeerId';
  if (!HEX_DIGEST.test(s.digest) || !HEX_DIGEST.test(s.rulesetHash)) return 'status digest is not hex';
  if (!TOKEN.test(s.enforcement)) return 'status enforcement is not a state name';
  if (!s.alerts.every((a) => TOKEN.test(a))) return 'status alert is not an alert class';
  for (const f of s.findings) {
    if (!TOKEN.test(f.kind ?? '') || !TOKEN.test(f.proto ?? '')) return 'status finding kind or proto is not a name';
    if (!PEER_ID.test(f.target ?? '')) return 'status finding target is not a PeerId';
    if (!parseIp(f.address ?? '')) return 'status finding address is not an IP address';
    if (!isPrintable(f.detail ?? '', LIMITS.maxStringLength)) return 'status finding detail is not printable text';
  }
  return undefined;
}

export type StatusVerdict = { ok: true; status: NodeStatus } | { ok: false; reject: boolean; reason: string };

/**
 * Verifies a signed status. `isMember` says whether a PeerId is a node of the current policy;
 * `lastSeq` is the highest seq already held for that node. `reject` marks forgeries (the
 * sender is penalised); a stale seq is only ignored.
 */
export async function verifyStatus(bytes: Uint8Array, meshId: string, isMember: (peerId: string) => boolean, lastSeq: (peerId: string) => number): Promise<StatusVerdict> {
  if (bytes.length > MAX_STATUS_BYTES) return { ok: false, reject: true, reason: 'status too large' };
  let signed: pb.status.v1.SignedStatus, m: pb.status.v1.Status;
  try {
    signed = pb.status.v1.SignedStatus.decode(bytes);
    m = pb.status.v1.Status.decode(signed.status);
  } catch {
    return { ok: false, reject: true, reason: 'malformed status' };
  }
  if (m.findings.length > MAX_FINDINGS || m.alerts.length > MAX_ALERTS) return { ok: false, reject: true, reason: 'status lists too much' };
  const strings = [m.meshId, m.peerId, m.digest, m.rulesetHash, m.enforcement, ...m.alerts, ...m.findings.flatMap((f) => [f.kind ?? '', f.target ?? '', f.address ?? '', f.proto ?? '', f.detail ?? ''])];
  if (strings.some((x) => x.length > LIMITS.maxStringLength)) return { ok: false, reject: true, reason: 'status field too long' };
  // lastApplyAt 0 means "never applied"; any other stated time must be printable and sane.
  const lastApplyAt = Number(m.lastApplyAtMs);
  if (!isBoundedTime(Number(m.timeMs)) || (lastApplyAt !== 0 && !isBoundedTime(lastApplyAt))) {
    return { ok: false, reject: true, reason: 'malformed status: time outside years 2000–9999' };
  }
  // Counters are shown and summed: a claim beyond 2^53 is not a count, it is an attack on the sum.
  const dropped = Number(m.droppedPackets ?? 0), wouldDrop = Number(m.wouldDropPackets ?? 0);
  if (!Number.isSafeInteger(dropped) || !Number.isSafeInteger(wouldDrop)) return { ok: false, reject: true, reason: 'malformed status: drop counter out of range' };
  if (m.meshId !== meshId) return { ok: false, reject: true, reason: 'status for another mesh' };
  // A rollout claim is bounded like the policy it describes: a stage the policy cannot have,
  // or "holding back" a version not older than the one held, is a forgery.
  const stage = m.rolloutStage ?? 0, enforcing = Number(m.rolloutEnforcing ?? 0);
  if (stage > MAX_STAGES) return { ok: false, reject: true, reason: 'status rollout stage out of range' };
  if (enforcing !== 0 && !(Number.isSafeInteger(enforcing) && enforcing < Number(m.policyVersion))) return { ok: false, reject: true, reason: 'status holds back a version not older than the one it holds' };
  const problem = statusFieldProblem(m);
  if (problem) return { ok: false, reject: true, reason: problem };
  if (!(await verifyAsNode(m.peerId, DOMAIN, signed.status, signed.signature))) return { ok: false, reject: true, reason: 'status signature does not verify' };
  // Not a member *of the policy this node holds*: the sender may be newer than our policy
  // (or we hold none yet), so ignore it rather than penalise a possibly honest peer.
  if (!isMember(m.peerId)) return { ok: false, reject: false, reason: 'status from a node not in the policy' };
  const seq = Number(m.seq);
  if (seq <= lastSeq(m.peerId)) return { ok: false, reject: false, reason: 'stale status' };
  return {
    ok: true,
    status: {
      meshId: m.meshId, peerId: m.peerId, policyVersion: Number(m.policyVersion), digest: m.digest, rulesetHash: m.rulesetHash,
      enforcement: m.enforcement, lastApplyAt: Number(m.lastApplyAtMs), alerts: [...m.alerts], seq, time: Number(m.timeMs),
      findings: m.findings.map((f) => ({ kind: (f.kind ?? '') as Finding['kind'], target: f.target ?? '', address: f.address ?? '', port: f.port ?? 0, proto: f.proto ?? '', detail: f.detail ?? '' })),
      ...(dropped ? { dropped } : {}), ...(wouldDrop ? { wouldDrop } : {}),
      ...(stage ? { rolloutStage: stage } : {}),
      ...(enforcing ? { rolloutEnforcing: enforcing } : {}),
    },
  };
}

/**
 * How long after a change a node gossips its status: a moment later and jittered, because
 * right after a policy lands the whole fleet changes at once and statuses must not compete
 * with the policy's own propagation. `r` is uniform in [0, 1).
 */
export function statusDelay(r: number): number {
  return 1000 + r * 2000;
}

/** What a node does with a signed status a peer forwarded (intakeStatus). */
export type StatusIntake =
  | { verdict: 'accept'; status: NodeStatus }
  /** Signed with this node's own key: never stored; the caller tells an echo from a twin. */
  | { verdict: 'own'; status: NodeStatus }
  | { verdict: 'ignore' | 'reject'; reason: string };

/**
 * The status topic's decision (the auditor's validator, and the simulator's): verified,
 * from a member, newer than the status held for its node, and within that node's budget —
 * asked only then, so a stale or forged status costs no budget. `held` is the latest status
 * per node; this node's own PeerId is judged apart (before any policy too).
 */
export async function intakeStatus(bytes: Uint8Array, meshId: string, self: string, isMember: (peerId: string) => boolean, held: ReadonlyMap<string, { status: NodeStatus }>, withinBudget: (origin: string) => boolean): Promise<StatusIntake> {
  const v = await verifyStatus(bytes, meshId, (p) => p === self || isMember(p), (p) => (p === self ? -1 : held.get(p)?.status.seq ?? -1));
  if (!v.ok) return { verdict: v.reject ? 'reject' : 'ignore', reason: v.reason };
  if (v.status.peerId === self) return { verdict: 'own', status: v.status };
  if (!withinBudget(v.status.peerId)) return { verdict: 'ignore', reason: 'over its node\'s status budget' };
  return { verdict: 'accept', status: v.status };
}

export interface FleetNode {
  peerId: string;
  name: string;
  policyVersion: number | null;
  digest: string | null;
  enforcement: string | null;
  rulesetHash: string | null;
  lastSeen: string | null;
  silent: boolean;
  alerts: string[];
  findings: Finding[];
  /** Drop counters the node's last status carried (0 when it carried none). */
  dropped?: number;
  wouldDrop?: number;
  /** The row's facts come from a signature this node checked (false: unverified hearsay, or never heard). Always set by fleetView. */
  verified?: boolean;
  /** Its stage in its policy's staged rollout (null: none), and the older version still in force (null: none held back). */
  rolloutStage?: number | null;
  rolloutEnforcing?: number | null;
  /**
   * A newer version the node is *reported* on (hearsay: a tally bit or an unchecked claim)
   * while its newest verified claim says policyVersion; its signed claim has been asked for.
   * Absent: nothing newer reported.
   */
  reportedVersion?: number;
}

/** The fleet view (pure): every policy node with its latest status, silent ones marked. */
export function fleetView(nodes: { peerId: string; name: string }[], statuses: Map<string, { status: NodeStatus; receivedAt: number; verified?: boolean }>, now: number, silentAfter: number, reported?: ReadonlyMap<string, number>): { nodes: FleetNode[]; summary: string } {
  const out: FleetNode[] = nodes.map((n) => {
    const s = statuses.get(n.peerId);
    const r = reported?.get(n.peerId);
    return {
      ...(r !== undefined && r > (s?.status.policyVersion ?? 0) ? { reportedVersion: r } : {}),
      peerId: n.peerId, name: n.name,
      policyVersion: s ? s.status.policyVersion : null,
      digest: s ? s.status.digest || null : null,
      enforcement: s ? s.status.enforcement : null,
      rulesetHash: s ? s.status.rulesetHash || null : null,
      lastSeen: s ? new Date(s.receivedAt).toISOString() : null,
      silent: !s || now - s.receivedAt > silentAfter,
      alerts: s?.status.alerts ?? [],
      findings: s?.status.findings ?? [],
      ...(s ? { dropped: s.status.dropped ?? 0, wouldDrop: s.status.wouldDrop ?? 0 } : {}),
      verified: s ? s.verified !== false : false,
      rolloutStage: s?.status.rolloutStage ?? null,
      rolloutEnforcing: s?.status.rolloutEnforcing ?? null,
    };
  });
  const versions = out.filter((n) => n.policyVersion !== null).map((n) => n.policyVersion!);
  const newest = versions.length ? Math.max(...versions) : 0;
  const onNewest = out.filter((n) => n.policyVersion === newest && !n.silent).length;
  const drifted = out.filter((n) => n.enforcement === 'drift-repaired').length;
  const failed = out.filter((n) => n.enforcement === 'failed').length;
  const silent = out.filter((n) => n.silent).length;
  const held = out.filter((n) => n.policyVersion === newest && !n.silent && n.rolloutEnforcing != null).length;
  const parts = [`${onNewest}/${out.length} on v${newest}`];
  if (held) parts.push(`${held} held back by its rollout`);
  // Hearsay ahead of the signatures (a change travels as unsigned tally bits; a verified read asks for the claims).
  const reporting = out.filter((n) => n.reportedVersion === newest && n.policyVersion !== newest).length;
  if (reporting) parts.push(`${reporting} more report v${newest} (signed claims requested)`);
  if (drifted) parts.push(`${drifted} drifted`);
  if (failed) parts.push(`${failed} failed`);
  if (silent) parts.push(`${silent} silent`);
  // Monitor mode on trial: how much enforcing would drop, fleet-wide (from signed statuses).
  const monitoring = out.filter((n) => (n.wouldDrop ?? 0) > 0);
  if (monitoring.length) parts.push(`${monitoring.reduce((n, x) => n + x.wouldDrop!, 0)} would-drop packets on ${monitoring.length} node${monitoring.length === 1 ? '' : 's'}`);
  return { nodes: out, summary: parts.join(', ') };
}

/**
 * The newest policy version that a current member of the policy reports (its latest signed
 * status) above `applied`, and who reports it; null when nobody is ahead. Derived from the
 * latest statuses each time, so a claim a peer stops making (or a peer that leaves the
 * policy) stops counting: a lying peer cannot leave a permanent "lagging" behind.
 */
export function newerClaim(applied: number, statuses: Map<string, { status: NodeStatus }>, members: readonly string[], self: string): { version: number; peerId: string } | null {
  let best: { version: number; peerId: string } | null = null;
  for (const id of members) {
    if (id === self) continue;
    const v = statuses.get(id)?.status.policyVersion ?? 0;
    if (v > applied && (!best || v > best.version)) best = { version: v, peerId: id };
  }
  return best;
}

/**
 * A verified status signed with this node's own key, which gossip never hands back to its
 * publisher: either our own status still travelling (an earlier run's, cached by peers
 * across our restart) — an `echo` — or one that another agent holding our key signed: a
 * `twin` (a copied key, a shared Secret, a cloned image). A twin is what we did not sign: a
 * sequence number we never reached, one we used for other bytes, or one signed after this
 * process started that is not among those it published.
 */
export function judgeOwnStatus(s: Pick<NodeStatus, 'seq' | 'time'>, digest: string, mine: { startedAt: number; lastSeq: number; published: ReadonlyMap<number, string> }): 'echo' | 'twin' {
  const ours = mine.published.get(s.seq);
  if (ours !== undefined) return ours === digest ? 'echo' : 'twin';
  if (s.seq > mine.lastSeq) return 'twin';
  const oldest = Math.min(...mine.published.keys());
  if (s.time >= mine.startedAt && s.seq > oldest) return 'twin';
  return 'echo';
}
