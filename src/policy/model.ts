/**
 * The policy model: the signed document as the rest of the code sees it, its protobuf
 * encoding, and the semantic checks shared by the authoring path (YAML) and the peer path
 * (decoded payloads). A payload that fails them is malformed, even if properly signed.
 */
import { LIMITS, timeProblem } from '../wire/limits.js';
import { decoded, malformed, tooLarge, type Decoded } from '../wire/verdict.js';
import { pb } from '../wire/proto.js';
import { parseIp, parsePrefix } from './ip.js';

export type Proto = 'tcp' | 'udp' | 'icmp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp', 'icmp'];

export interface PortRange {
  first: number;
  last: number;
}

export interface PolicyNode {
  name: string;
  peerId: string;
  addresses: string[];
  roles: string[];
}

export type Direction = 'ingress' | 'egress';
export const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

export interface Rule {
  name: string;
  /**
   * Ingress: the nodes the rule applies to (`any`, `role:X`, `node:X`).
   * Egress: destinations (`any`, `role:X`, `node:X`, `cidr:X`).
   */
  to: string[];
  /**
   * Ingress: sources (`any`, `role:X`, `node:X`, `cidr:X`).
   * Egress: the sending nodes the rule applies to (`any`, `role:X`, `node:X`).
   */
  from: string[];
  proto: Proto;
  ports: PortRange[];
  /**
   * `monitor`: the rule is on trial for removal or narrowing. What only it admits (no
   * enforced rule does) is accepted, but counted and logged as would-drop: exactly what
   * enforcing the policy without it would drop. Absent: enforced. Never on exceptions.
   */
  mode?: 'monitor';
  /** Absent: ingress (older policies encode exactly as before). */
  direction?: 'egress';
}

/** The side of a rule that names the other end (addresses), and the side naming this node. */
export function peerSide(r: Rule): 'to' | 'from' {
  return r.direction === 'egress' ? 'to' : 'from';
}

export type Mode = 'enforce' | 'monitor';
export const MODES: readonly Mode[] = ['enforce', 'monitor'];

export interface PolicyException extends Rule {
  reason: string;
  /** Unix ms: after this the exception closes by itself. */
  expires: number;
}

export interface Settings {
  /** What an expired policy does: keep enforcing it (never fail open) or fall back to the baseline. */
  onExpiry: 'keep' | 'baseline';
  /**
   * Milliseconds after issuedAt when the policy is stale (absent: never). A stale policy is
   * alerted and follows onExpiry like an expired one: it bounds how long a node may run a
   * policy nobody re-signed, whatever `expires` says.
   */
  maxAge?: number;
  /** Outbound traffic: absent (allow) is not filtered; deny allows only egress rules, replies, mesh and failsafe. */
  egress?: 'deny';
  /** Absent (ignore): forwarded traffic is not touched; filter: DNAT'd (published) ports follow the inbound rules. */
  forward?: 'filter';
  /**
   * `monitor`: default-deny drops are counted and logged as would-drop and accepted (a new
   * policy on trial). Removed nodes and invalid packets are still dropped. Absent: enforce.
   */
  mode?: 'monitor';
}

/** When the policy turns stale (issuedAt + maxAge), if it ever does. */
export function staleAt(p: Policy): number | undefined {
  return p.settings.maxAge ? p.issuedAt + p.settings.maxAge : undefined;
}

/**
 * One stage of a staged rollout. `select` uses the rule `to` grammar (any, role:X, node:X); a
 * node belongs to the first stage that selects it, and a node no stage selects follows the
 * last stage. `after` (ms) counts from when the node first saw the version; `healthy` is the
 * percentage (1-100, default 100) of the earlier stages' nodes whose signed statuses must show
 * them enforcing this version healthily. The first stage has neither: it enforces at once.
 */
export interface Stage {
  select: string;
  after?: number;
  healthy?: number;
}

export interface Rollout {
  stages: Stage[];
}

/** At most this many stages: each is a round of waiting; more is a schedule, not a canary. */
export const MAX_STAGES = 8;
/** The longest `after`: a version held back longer than this is better re-signed. */
export const MAX_STAGE_AFTER = 30 * 86_400_000;

/** The stage (0-based) of each node of `p`'s rollout, by PeerId; empty without a rollout. */
export function stageOfNodes(p: Policy): Map<string, number> {
  const out = new Map<string, number>();
  const stages = p.rollout?.stages ?? [];
  if (!stages.length) return out;
  for (const n of p.nodes) {
    const i = stages.findIndex((s) => selects(s.select, n));
    out.set(n.peerId, i < 0 ? stages.length - 1 : i);
  }
  return out;
}

function selects(sel: string, n: PolicyNode): boolean {
  return sel === 'any' || (sel.startsWith('role:') && n.roles.includes(sel.slice(5))) || sel === `node:${n.name}` || sel === `node:${n.peerId}`;
}

export interface Policy {
  meshId: string;
  version: number;
  issuedAt: number;
  expires: number;
  nodes: PolicyNode[];
  rules: Rule[];
  exceptions: PolicyException[];
  settings: Settings;
  /** Absent: every node enforces the version as soon as it has it (today's behaviour). */
  rollout?: Rollout;
}

export type Path = (string | number)[];
export interface Issue {
  path: Path;
  message: string;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const MESH_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
// Base58btc Ed25519 (12D3KooW…) and RSA/secp256k1 (Qm…, 16U…) PeerIds.
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,128}$/;

/** The shapes checkPolicy enforces, as pattern sources for the exported JSON Schema. */
export const PATTERNS = {
  name: NAME.source,
  meshId: MESH_ID.source,
  peerId: PEER_ID.source,
} as const;

export function isValidMeshId(id: string): boolean {
  return MESH_ID.test(id);
}

/**
 * Semantic checks. Errors make the policy unusable; warnings (shadowed rules) are reported
 * at signing time only.
 */
export function checkPolicy(p: Policy, opts: { warnings?: boolean } = {}): { errors: Issue[]; warnings: Issue[] } {
  const errors: Issue[] = [];
  const warnings: Issue[] = [];
  const err = (path: Path, message: string) => errors.push({ path, message });

  if (!MESH_ID.test(p.meshId)) err(['meshId'], `${JSON.stringify(p.meshId)} is not a valid mesh id (letters, digits, . _ -)`);
  if (!Number.isSafeInteger(p.version) || p.version < 1) err(['version'], `${p.version} is not a positive integer`);
  // Times are bounded (LIMITS.minTimeMs..maxTimeMs) so every reader can print and compare them.
  const expiresProblem = p.expires === 0 ? 'is missing' : timeProblem(p.expires);
  const issuedProblem = p.issuedAt === 0 ? 'is missing' : timeProblem(p.issuedAt);
  if (expiresProblem) err(['expires'], expiresProblem);
  if (issuedProblem) err(['issuedAt'], issuedProblem);
  if (!expiresProblem && !issuedProblem && p.expires <= p.issuedAt) err(['expires'], 'is not after issuedAt');
  if (p.settings.onExpiry !== 'keep' && p.settings.onExpiry !== 'baseline') err(['settings', 'onExpiry'], `${JSON.stringify(p.settings.onExpiry)} is not keep or baseline`);
  if (p.settings.egress !== undefined && p.settings.egress !== 'deny') err(['settings', 'egress'], `${JSON.stringify(String(p.settings.egress).slice(0, 40))} is not allow or deny`);
  if (p.settings.forward !== undefined && p.settings.forward !== 'filter') err(['settings', 'forward'], `${JSON.stringify(String(p.settings.forward).slice(0, 40))} is not filter or ignore`);
  if (p.settings.maxAge !== undefined && (!Number.isSafeInteger(p.settings.maxAge) || p.settings.maxAge <= 0)) err(['settings', 'maxAge'], 'is not a positive duration');
  else if (p.settings.maxAge !== undefined && p.settings.maxAge > p.expires - p.issuedAt) warnings.push({ path: ['settings', 'maxAge'], message: 'is longer than the policy lives (expires comes first)' });
  if (p.settings.mode !== undefined && p.settings.mode !== 'monitor') err(['settings', 'mode'], `${JSON.stringify(String(p.settings.mode).slice(0, 40))} is not enforce or monitor`);
  if (p.nodes.length > LIMITS.maxNodes) err(['nodes'], `${p.nodes.length} nodes (limit ${LIMITS.maxNodes})`);
  if (p.rules.length > LIMITS.maxRules) err(['rules'], `${p.rules.length} rules (limit ${LIMITS.maxRules})`);
  if (p.exceptions.length > LIMITS.maxExceptions) err(['exceptions'], `${p.exceptions.length} exceptions (limit ${LIMITS.maxExceptions})`);
  if (errors.length) return { errors, warnings };

  const names = new Map<string, number>();
  const peerIds = new Map<string, number>();
  const addresses = new Map<string, number>();
  const roles = new Set<string>();
  p.nodes.forEach((n, i) => {
    const at = (...rest: Path) => ['nodes', i, ...rest];
    if (!NAME.test(n.name)) err(at('name'), `${JSON.stringify(n.name)} is not a valid name (letters, digits, . _ -, at most 63)`);
    else if (names.has(n.name)) err(at('name'), `duplicate node name ${n.name} (also nodes[${names.get(n.name)}])`);
    names.set(n.name, i);
    if (!PEER_ID.test(n.peerId)) err(at('peerId'), `${JSON.stringify(n.peerId.slice(0, 80))} is not a PeerId`);
    else if (peerIds.has(n.peerId)) err(at('peerId'), `duplicate PeerId (also nodes[${peerIds.get(n.peerId)}])`);
    peerIds.set(n.peerId, i);
    if (n.addresses.length > LIMITS.maxAddressesPerNode) err(at('addresses'), `${n.addresses.length} addresses (limit ${LIMITS.maxAddressesPerNode})`);
    n.addresses.forEach((a, j) => {
      const ip = parseIp(a);
      if (!ip) err(at('addresses', j), `${JSON.stringify(a.slice(0, 80))} is not an IP address`);
      else if (addresses.has(a)) err(at('addresses', j), `address ${a} is also used by nodes[${addresses.get(a)}]`);
      addresses.set(a, i);
    });
    if (n.roles.length > LIMITS.maxRolesPerNode) err(at('roles'), `${n.roles.length} roles (limit ${LIMITS.maxRolesPerNode})`);
    n.roles.forEach((r, j) => {
      if (!NAME.test(r)) err(at('roles', j), `${JSON.stringify(r.slice(0, 80))} is not a valid role name`);
      roles.add(r);
    });
  });

  const checkRule = (r: Rule, at: (...rest: Path) => Path, seen: Map<string, number>, kind: string, i: number) => {
    if (!NAME.test(r.name)) err(at('name'), `${JSON.stringify(r.name.slice(0, 80))} is not a valid name`);
    else if (seen.has(r.name)) err(at('name'), `duplicate ${kind} name ${r.name} (also ${kind}s[${seen.get(r.name)}])`);
    seen.set(r.name, i);
    if (r.mode !== undefined && (kind === 'exception' || r.mode !== 'monitor')) {
      err(at('mode'), kind === 'exception' ? 'an exception cannot be in monitor mode (it is a temporary allow; use a rule)' : `${JSON.stringify(String(r.mode).slice(0, 40))} is not enforce or monitor`);
    }
    else if (r.mode === 'monitor' && r.direction === 'egress') err(at('mode'), 'monitor mode is for inbound rules (an egress rule is enforced as written)');
    if (!PROTOS.includes(r.proto)) err(at('proto'), `${JSON.stringify(r.proto)} is not tcp, udp or icmp`);
    if (r.direction !== undefined && r.direction !== 'egress') err(at('direction'), `${JSON.stringify(String(r.direction).slice(0, 40))} is not ingress or egress`);
    const addressSide = peerSide(r);
    const selector = (field: 'to' | 'from') => {
      if (r[field].length === 0) err(at(field), 'is empty');
      if (r[field].length > LIMITS.maxSelectorsPerRule) err(at(field), `${r[field].length} selectors (limit ${LIMITS.maxSelectorsPerRule})`);
      r[field].forEach((s, j) => {
        const path = r[field].length === 1 ? at(field) : at(field, j);
        if (s === 'any') return;
        const colon = s.indexOf(':');
        const kindOf = colon < 0 ? '' : s.slice(0, colon);
        const value = s.slice(colon + 1);
        if (kindOf === 'role') {
          if (!roles.has(value)) err(path, `role ${value} is not held by any node`);
        } else if (kindOf === 'node') {
          if (!names.has(value) && !peerIds.has(value)) err(path, `node ${value} is not in nodes`);
        } else if (kindOf === 'cidr' && field === addressSide) {
          const pr = parsePrefix(value);
          if (!pr.ok) err(path, pr.reason);
        } else {
          const cidrNote = kindOf === 'cidr' ? ` (cidr:X names addresses: it belongs in ${addressSide} of ${r.direction === 'egress' ? 'an egress' : 'an ingress'} rule)` : '';
          err(path, `${JSON.stringify(s.slice(0, 80))} is not ${field === addressSide ? 'any, role:X, node:X or cidr:X' : 'any, role:X or node:X'}${cidrNote}`);
        }
      });
    };
    selector('to');
    selector('from');
    if (r.ports.length > LIMITS.maxPortRangesPerRule) err(at('ports'), `${r.ports.length} port ranges (limit ${LIMITS.maxPortRangesPerRule})`);
    if (r.proto === 'icmp' && r.ports.length > 0) err(at('ports'), 'icmp has no ports');
    if (r.proto !== 'icmp' && r.ports.length === 0) err(at('ports'), `${r.proto} needs at least one port`);
    r.ports.forEach((pr, j) => {
      const bad = (n: number) => !Number.isInteger(n) || n < 1 || n > 65535;
      if (bad(pr.first) || bad(pr.last)) err(at('ports', j), `${pr.first === pr.last ? pr.first : `${pr.first}-${pr.last}`} is not a port`);
      else if (pr.first > pr.last) err(at('ports', j), `${pr.first}-${pr.last} is an empty range`);
    });
  };
  const ruleNames = new Map<string, number>();
  p.rules.forEach((r, i) => checkRule(r, (...rest) => ['rules', i, ...rest], ruleNames, 'rule', i));
  const excNames = new Map<string, number>();
  p.exceptions.forEach((e, i) => {
    const at = (...rest: Path): Path => ['exceptions', i, ...rest];
    checkRule(e, at, excNames, 'exception', i);
    if (e.reason.trim().length === 0) err(at('reason'), 'an exception must say why it exists');
    if (e.reason.length > LIMITS.maxReasonLength) err(at('reason'), `longer than ${LIMITS.maxReasonLength} characters`);
    const problem = e.expires === 0 ? undefined : timeProblem(e.expires);
    if (e.expires === 0) err(at('expires'), 'an exception must expire');
    else if (problem) err(at('expires'), problem);
    else if (e.expires > p.expires) warnings.push({ path: at('expires'), message: 'outlives the policy itself' });
  });
  if (p.rollout) checkRollout(p, p.rollout, names, peerIds, roles, err, (path, message) => warnings.push({ path, message }));
  // Shadow analysis is quadratic: run it for authors (signing), not on every received policy.
  if (errors.length === 0 && opts.warnings) warnings.push(...shadowWarnings(p.rules));
  return { errors, warnings };
}

/** Stage checks: one line per problem, each naming the stage's field. */
function checkRollout(p: Policy, r: Rollout, names: Map<string, number>, peerIds: Map<string, number>, roles: Set<string>, err: (path: Path, message: string) => void, warn: (path: Path, message: string) => void): void {
  const at = (i: number, ...rest: Path): Path => ['rollout', 'stages', i, ...rest];
  if (r.stages.length < 2) err(['rollout', 'stages'], `${r.stages.length} stage${r.stages.length === 1 ? '' : 's'}: a rollout needs at least two (the first goes at once, the others wait for it)`);
  if (r.stages.length > MAX_STAGES) return err(['rollout', 'stages'], `${r.stages.length} stages (limit ${MAX_STAGES})`);
  let grammarOk = true;
  let lastAfter = 0;
  r.stages.forEach((s, i) => {
    if (s.select !== 'any') {
      const colon = s.select.indexOf(':');
      const kind = colon < 0 ? '' : s.select.slice(0, colon);
      const value = s.select.slice(colon + 1);
      if (kind === 'role') {
        if (!roles.has(value)) { err(at(i, 'select'), `role ${value} is not held by any node`); grammarOk = false; }
      } else if (kind === 'node') {
        if (!names.has(value) && !peerIds.has(value)) { err(at(i, 'select'), `node ${value} is not in nodes`); grammarOk = false; }
      } else {
        err(at(i, 'select'), `${JSON.stringify(s.select.slice(0, 80))} is not any, role:X or node:X`);
        grammarOk = false;
      }
    }
    if (i === 0) {
      if (s.after !== undefined) err(at(i, 'after'), 'the first stage starts at once: it has no after');
      if (s.healthy !== undefined) err(at(i, 'healthy'), 'the first stage has no earlier stage to be healthy: it has no healthy');
      return;
    }
    if (s.after !== undefined) {
      if (!Number.isSafeInteger(s.after) || s.after <= 0) err(at(i, 'after'), 'is not a positive duration');
      else if (s.after > MAX_STAGE_AFTER) err(at(i, 'after'), `is longer than ${MAX_STAGE_AFTER / 86_400_000}d`);
      else if (s.after < lastAfter) err(at(i, 'after'), 'is shorter than an earlier stage\'s after (every after counts from when a node first saw the version)');
      else lastAfter = s.after;
    }
    if (s.healthy !== undefined && (!Number.isInteger(s.healthy) || s.healthy < 1 || s.healthy > 100)) err(at(i, 'healthy'), `${s.healthy}% is not a percentage from 1% to 100%`);
  });
  if (!grammarOk || p.nodes.length === 0) return;
  // Every stage must hold a node: an empty earlier stage could show no health, and an empty
  // later one is a typo that would move its nodes into the last stage unnoticed.
  const stageOf = stageOfNodes(p);
  const sizes = r.stages.map((_, i) => [...stageOf.values()].filter((s) => s === i).length);
  const unselected = p.nodes.filter((n) => !r.stages.some((s) => selects(s.select, n)));
  sizes.forEach((n, i) => {
    if (n === 0 && !(i === r.stages.length - 1 && unselected.length)) err(at(i, 'select'), 'selects no node that an earlier stage did not already select');
  });
  if (unselected.length) warn(['rollout', 'stages'], `${unselected.length} node${unselected.length === 1 ? '' : 's'} (${unselected.slice(0, 3).map((n) => n.name).join(', ')}${unselected.length > 3 ? ', …' : ''}) selected by no stage: they follow the last stage`);
  if (lastAfter > p.expires - p.issuedAt) warn(['rollout', 'stages'], 'the last stage waits longer than the policy lives');
}

function covers(outer: PortRange[], inner: PortRange[]): boolean {
  return inner.every((i) => outer.some((o) => o.first <= i.first && o.last >= i.last));
}

/** A rule whose every packet an earlier rule already allows adds nothing: say so (O(n²); authoring only). */
function shadowWarnings(rules: Rule[]): Issue[] {
  const out: Issue[] = [];
  rules.forEach((r, i) => {
    for (let j = 0; j < i; j++) {
      const e = rules[j]!;
      if (e.proto !== r.proto || e.direction !== r.direction) continue;
      // Enforced rules are matched before monitor rules, wherever they are written.
      if (e.mode === 'monitor' && r.mode !== 'monitor') continue;
      const toCovered = e.to.includes('any') || r.to.every((t) => e.to.includes(t));
      const fromCovered = e.from.includes('any') || r.from.every((f) => e.from.includes(f));
      if (toCovered && fromCovered && (r.proto === 'icmp' || covers(e.ports, r.ports))) {
        out.push({ path: ['rules', i], message: `rule ${r.name} is shadowed by rule ${e.name}: it allows nothing more` });
        break;
      }
    }
  });
  return out;
}

function ruleToPb(r: Rule): pb.policy.v1.IRule {
  return { name: r.name, to: r.to, from: r.from, proto: r.proto, ports: r.ports.map((p) => ({ first: p.first, last: p.last })), ...(r.direction ? { direction: r.direction } : {}), ...(r.mode ? { mode: r.mode } : {}) };
}

export function encodePolicy(p: Policy): Uint8Array {
  return pb.policy.v1.Policy.encode({
    meshId: p.meshId,
    version: p.version,
    issuedAtMs: p.issuedAt,
    expiresMs: p.expires,
    nodes: p.nodes.map((n) => ({ name: n.name, peerId: n.peerId, addresses: n.addresses, roles: n.roles })),
    rules: p.rules.map(ruleToPb),
    exceptions: p.exceptions.map((e) => ({ rule: ruleToPb(e), reason: e.reason, expiresMs: e.expires })),
    settings: {
      onExpiry: p.settings.onExpiry,
      ...(p.settings.maxAge ? { maxAgeMs: p.settings.maxAge } : {}),
      ...(p.settings.egress ? { egress: p.settings.egress } : {}),
      ...(p.settings.forward ? { forward: p.settings.forward } : {}),
      ...(p.settings.mode ? { mode: p.settings.mode } : {}),
    },
    // Absent unless declared: a policy without a rollout encodes (and so signs) as before.
    ...(p.rollout ? { rollout: { stages: p.rollout.stages.map((s) => ({ select: s.select, ...(s.after ? { afterMs: s.after } : {}), ...(s.healthy ? { healthyPercent: s.healthy } : {}) })) } } : {}),
  }).finish();
}

function str(s: string | null | undefined, path: string): string {
  const v = s ?? '';
  if (v.length > LIMITS.maxStringLength) throw new LimitError(`${path} longer than ${LIMITS.maxStringLength}`);
  return v;
}

class LimitError extends Error {}

function ruleFromPb(r: pb.policy.v1.IRule | null | undefined, path: string): Rule {
  return {
    name: str(r?.name, `${path}.name`),
    to: (r?.to ?? []).map((s, i) => str(s, `${path}.to[${i}]`)),
    from: (r?.from ?? []).map((s, i) => str(s, `${path}.from[${i}]`)),
    proto: (r?.proto ?? '') as Proto,
    ports: (r?.ports ?? []).map((p) => ({ first: Number(p.first ?? 0), last: Number(p.last ?? 0) })),
    // "ingress" spelled out means the default; anything else but egress is kept for checkPolicy to refuse.
    ...(r?.direction && r.direction !== 'ingress' ? { direction: str(r.direction, `${path}.direction`) as 'egress' } : {}),
    // Empty is enforce; anything else is kept as sent so checkPolicy rejects it by name.
    ...(r?.mode ? { mode: str(r.mode, `${path}.mode`) as 'monitor' } : {}),
  };
}

export type PolicyDecode = Decoded<{ policy: Policy }>;

/** Decodes and checks a signed payload. Count limits are checked before strings are copied. */
export function decodePolicy(bytes: Uint8Array): PolicyDecode {
  let m: pb.policy.v1.Policy;
  try {
    m = pb.policy.v1.Policy.decode(bytes);
  } catch (e) {
    return malformed(`policy payload is not valid protobuf: ${(e as Error).message}`);
  }
  if (m.nodes.length > LIMITS.maxNodes) return tooLarge(`${m.nodes.length} nodes (limit ${LIMITS.maxNodes})`);
  if (m.rules.length > LIMITS.maxRules) return tooLarge(`${m.rules.length} rules (limit ${LIMITS.maxRules})`);
  if (m.exceptions.length > LIMITS.maxExceptions) return tooLarge(`${m.exceptions.length} exceptions (limit ${LIMITS.maxExceptions})`);
  if ((m.rollout?.stages?.length ?? 0) > MAX_STAGES) return tooLarge(`${m.rollout!.stages!.length} rollout stages (limit ${MAX_STAGES})`);
  let policy: Policy;
  try {
    policy = {
      meshId: str(m.meshId, 'meshId'),
      version: Number(m.version),
      issuedAt: Number(m.issuedAtMs),
      expires: Number(m.expiresMs),
      nodes: m.nodes.map((n, i) => ({
        name: str(n.name, `nodes[${i}].name`),
        peerId: str(n.peerId, `nodes[${i}].peerId`),
        addresses: (n.addresses ?? []).map((a, j) => str(a, `nodes[${i}].addresses[${j}]`)),
        roles: (n.roles ?? []).map((r, j) => str(r, `nodes[${i}].roles[${j}]`)),
      })),
      rules: m.rules.map((r, i) => ruleFromPb(r, `rules[${i}]`)),
      exceptions: m.exceptions.map((e, i) => {
        const reason = e.reason ?? '';
        if (reason.length > LIMITS.maxReasonLength) throw new LimitError(`exceptions[${i}].reason longer than ${LIMITS.maxReasonLength}`);
        return { ...ruleFromPb(e.rule, `exceptions[${i}]`), reason, expires: Number(e.expiresMs ?? 0) };
      }),
      settings: {
        onExpiry: (m.settings?.onExpiry || 'keep') as Settings['onExpiry'],
        ...(Number(m.settings?.maxAgeMs ?? 0) > 0 ? { maxAge: Number(m.settings!.maxAgeMs) } : {}),
        // Spelled-out defaults (allow, ignore) mean absent; other values are kept for checkPolicy to refuse.
        ...(m.settings?.egress && m.settings.egress !== 'allow' ? { egress: str(m.settings.egress, 'settings.egress') as 'deny' } : {}),
        ...(m.settings?.forward && m.settings.forward !== 'ignore' ? { forward: str(m.settings.forward, 'settings.forward') as 'filter' } : {}),
        ...(m.settings?.mode ? { mode: str(m.settings.mode, 'settings.mode') as 'monitor' } : {}),
      },
      ...(m.rollout ? {
        rollout: {
          stages: (m.rollout.stages ?? []).map((s, i) => ({
            select: str(s.select, `rollout.stages[${i}].select`),
            ...(Number(s.afterMs ?? 0) > 0 ? { after: Number(s.afterMs) } : {}),
            ...((s.healthyPercent ?? 0) > 0 ? { healthy: s.healthyPercent! } : {}),
          })),
        },
      } : {}),
    };
  } catch (e) {
    if (e instanceof LimitError) return tooLarge(e.message);
    throw e;
  }
  const { errors } = checkPolicy(policy);
  if (errors.length > 0) {
    const first = errors[0]!;
    return malformed(`${formatPath(first.path)}: ${first.message}`);
  }
  return decoded({ policy });
}

/** Resolves `node:X` (by name or PeerId) and finds a node by name or PeerId. */
export function findNode(p: Policy, nameOrPeerId: string): PolicyNode | undefined {
  return p.nodes.find((n) => n.name === nameOrPeerId || n.peerId === nameOrPeerId);
}
