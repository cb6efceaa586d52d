/**
 * Compile (pure): policy + this node's identity → the ruleset this node enforces. Roles and
 * node references resolve to address sets; rules become (proto, ports, source set) allows.
 * Render (nft, iptables) and explain both read this one structure, so they cannot disagree.
 */
import { createHash } from 'node:crypto';
import { bits, contains, formatPrefix, normalizePrefixes, parsePrefix, type Prefix } from './ip.js';

const overlaps = (a: Prefix, b: Prefix) => contains(a, b) || contains(b, a);
import { findNode, type Policy, type PolicyNode, type PortRange, type Proto } from './model.js';

export const DEFAULT_MESH_PORT = 7946;

export interface AddressSet {
  /** nft-safe base name; the renderer adds _v4 / _v6. */
  name: string;
  /** What it stands for, e.g. "role:web". */
  label: string;
  v4: Prefix[];
  v6: Prefix[];
}

export type RuleKind = 'mesh' | 'failsafe' | 'rule' | 'exception';

export interface CompiledRule {
  kind: RuleKind;
  name: string;
  proto: Proto;
  ports: PortRange[];
  /** Undefined = any source (input rules). */
  source?: string;
  /**
   * Output rules only: the destination set (undefined = any destination). An output
   * `failsafe` rule matches replies *from* its port to the failsafe set.
   */
  dest?: string;
  /** Exceptions close by themselves at this time (unix ms). */
  expires?: number;
  /** A rule in monitor mode: matched after every enforced rule; what it admits is a would-drop. */
  monitor?: true;
}

/** Kernel log lines for drops, rate-limited (`N/second|minute|hour|day`). */
export interface DropLogging {
  /** Log default-deny drops (prefix "picket-drop "). */
  drops: boolean;
  /** The limit for each kind of line; would-drops are always logged at this rate. */
  rate: string;
}

/** The default rate of kernel log lines for would-drops (and drops, when enabled). */
export const DEFAULT_LOG_RATE = '10/second';

export interface NodeRuleset {
  /** Null for the baseline (no policy yet, or expired with onExpiry: baseline). */
  policy: { version: number; meshId: string } | null;
  node: { name: string; peerId: string } | null;
  sets: AddressSet[];
  /** Sources dropped before the established rule: revoking a node cuts its live flows. */
  blocked: AddressSet;
  rules: CompiledRule[];
  /** Earliest time at which this ruleset changes by itself (an exception expiring). */
  nextChangeAt?: number;
  /**
   * Present only under settings.egress: deny. The output hook drops what these rules do not
   * allow; loopback, established/related and IPv6 neighbour discovery pass before them, and
   * the first rules are always the mesh (to mesh peers) and failsafe (SSH replies) ones.
   */
  output?: { rules: CompiledRule[] };
  /**
   * settings.forward: filter: connections DNAT-ed to this host's containers (published
   * ports) are checked against the input rules by their original (published) port.
   */
  forward?: true;
  /** settings.mode: monitor — the default deny counts, logs and accepts (would-drop). */
  monitor?: true;
  /** Kernel logging of drops; absent: would-drops logged at DEFAULT_LOG_RATE, drops not logged. */
  log?: DropLogging;
}

export interface CompileOptions {
  /** Unix ms: exceptions that expired by now are left out. */
  now: number;
  /** The agent's own listen ports; open to mesh peers only. */
  meshPorts?: number[];
  /** Failsafe SSH sources, always allowed (lock-out protection). */
  sshFrom?: string[];
  sshPort?: number;
  /** Addresses of nodes that left the policy: dropped before established/related. */
  blocked?: string[];
  /** Extra mesh sources kept open (the lock-out guard's temporary restore). */
  meshExtra?: string[];
  /** Kernel logging of drops (agent config enforcement.logDrops). */
  log?: DropLogging;
}

export interface BaselineOptions extends Omit<CompileOptions, 'blocked'> {
  /** Addresses of the configured bootstrap peers: the mesh port is open to them. */
  meshPeers: string[];
}

export class CompileError extends Error {
  override readonly name = 'CompileError';
  readonly code = 'ERR_COMPILE';
}

function prefixes(list: string[]): Prefix[] {
  const out: Prefix[] = [];
  for (const a of list) {
    const p = parsePrefix(a);
    if (!p.ok) throw new CompileError(p.reason);
    out.push(p.prefix);
  }
  return out;
}

class SetBuilder {
  readonly sets: AddressSet[] = [];
  #byLabel = new Map<string, string>();
  #names = new Set<string>(['blocked', 'mesh', 'failsafe']);

  /** Elements are computed only for a label not seen yet: 20k rules naming one role resolve it once. */
  add(label: string, hint: string, elements: () => Prefix[]): string {
    const existing = this.#byLabel.get(label);
    if (existing) return existing;
    const base = hint.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 48);
    let name = base;
    for (let i = 2; this.#names.has(name); i++) name = `${base}_${i}`;
    this.#names.add(name);
    this.#byLabel.set(label, name);
    const norm = normalizePrefixes(elements());
    this.sets.push({ name, label, v4: norm.filter((p) => p.family === 4), v6: norm.filter((p) => p.family === 6) });
    return name;
  }
}

function fixedSet(name: string, label: string, elements: Prefix[]): AddressSet {
  const norm = normalizePrefixes(elements);
  return { name, label, v4: norm.filter((p) => p.family === 4), v6: norm.filter((p) => p.family === 6) };
}

function baseRules(sets: SetBuilder, opts: Omit<CompileOptions, 'now'>, meshPeers: string[]): CompiledRule[] {
  const rules: CompiledRule[] = [];
  const meshPorts = opts.meshPorts?.length ? opts.meshPorts : [DEFAULT_MESH_PORT];
  const mesh = fixedSet('mesh', 'mesh peers', prefixes(meshPeers));
  sets.sets.push(mesh);
  rules.push({ kind: 'mesh', name: 'mesh', proto: 'tcp', ports: meshPorts.map((p) => ({ first: p, last: p })), source: 'mesh' });
  if (opts.sshFrom?.length) {
    sets.sets.push(fixedSet('failsafe', 'failsafe ssh', prefixes(opts.sshFrom)));
    const port = opts.sshPort ?? 22;
    rules.push({ kind: 'failsafe', name: 'failsafe-ssh', proto: 'tcp', ports: [{ first: port, last: port }], source: 'failsafe' });
  }
  return rules;
}

/** The ruleset of a node without a policy: mesh port from bootstrap peers, failsafe, nothing else. */
export function compileBaseline(opts: BaselineOptions): NodeRuleset {
  const sets = new SetBuilder();
  const rules = baseRules(sets, opts, opts.meshPeers);
  return { policy: null, node: null, sets: sets.sets, blocked: fixedSet('blocked', 'blocked', []), rules, ...(opts.log ? { log: opts.log } : {}) };
}

function appliesTo(to: string[], self: PolicyNode): boolean {
  return to.some((t) => t === 'any' || (t.startsWith('role:') && self.roles.includes(t.slice(5))) || t === `node:${self.name}` || t === `node:${self.peerId}`);
}

/** Compiles what `nodeRef` (name or PeerId) enforces under `policy`. */
export function compile(policy: Policy, nodeRef: string, opts: CompileOptions): NodeRuleset {
  const self = findNode(policy, nodeRef);
  if (!self) throw new CompileError(`node ${nodeRef} is not in policy v${policy.version}`);
  const sets = new SetBuilder();
  // Revocation beats the mesh: a blocked address never sits in the mesh set (the lock-out
  // guard's restore puts previous mesh sources back through meshExtra, revoked ones included).
  const blockedKeys = new Set(prefixes(opts.blocked ?? []).map(formatPrefix));
  const meshPeers = [...policy.nodes.filter((n) => n !== self).flatMap((n) => n.addresses), ...(opts.meshExtra ?? [])]
    .filter((a) => !blockedKeys.has(canonical(a)));
  const rules = baseRules(sets, opts, meshPeers);

  // Indexed once: a linear findNode per selector made 20k rules × 10k nodes quadratic.
  const byRef = new Map<string, PolicyNode>();
  for (const n of policy.nodes) for (const ref of [n.name, n.peerId]) if (!byRef.has(ref)) byRef.set(ref, n); // first match, as findNode
  const source = (sel: string): string | undefined => {
    if (sel === 'any') return undefined;
    if (sel.startsWith('role:')) {
      const role = sel.slice(5);
      return sets.add(sel, `role_${role}`, () => prefixes(policy.nodes.filter((n) => n.roles.includes(role)).flatMap((n) => n.addresses)));
    }
    if (sel.startsWith('node:')) {
      const n = byRef.get(sel.slice(5));
      if (!n) throw new CompileError(`${sel} is not in the policy`);
      return sets.add(`node:${n.name}`, `node_${n.name}`, () => prefixes(n.addresses));
    }
    if (sel.startsWith('cidr:')) return sets.add(sel, `cidr_${sel.slice(5)}`, () => prefixes([sel.slice(5)]));
    throw new CompileError(`unknown selector ${sel}`);
  };

  const emit = (kind: RuleKind, r: { name: string; from: string[]; proto: Proto; ports: PortRange[]; mode?: 'monitor' }, expires?: number) => {
    // `any` among the sources makes the others redundant.
    const froms = r.from.includes('any') ? ['any'] : r.from;
    for (const f of froms) {
      const src = source(f);
      rules.push({ kind, name: r.name, proto: r.proto, ports: r.ports, ...(src ? { source: src } : {}), ...(expires ? { expires } : {}), ...(kind === 'rule' && r.mode === 'monitor' ? { monitor: true as const } : {}) });
    }
  };
  for (const r of policy.rules) if (r.direction !== 'egress' && appliesTo(r.to, self)) emit('rule', r);
  let nextChangeAt: number | undefined;
  for (const e of policy.exceptions) {
    if (e.direction === 'egress' || !appliesTo(e.to, self) || e.expires <= opts.now) continue;
    emit('exception', e, e.expires);
    nextChangeAt = Math.min(nextChangeAt ?? Infinity, e.expires);
  }
  // Egress rules apply to the sending node (`from`) and name destinations (`to`). They are
  // compiled only when outbound traffic is filtered: under egress: allow they change nothing.
  let output: NodeRuleset['output'];
  if (policy.settings.egress === 'deny') {
    const out: CompiledRule[] = rules.filter((r) => r.kind === 'mesh' || r.kind === 'failsafe').map(({ source, ...r }) => ({ ...r, dest: source! }));
    const emitOut = (kind: RuleKind, r: { name: string; to: string[]; proto: Proto; ports: PortRange[] }, expires?: number) => {
      for (const t of r.to.includes('any') ? ['any'] : r.to) {
        const dst = source(t);
        out.push({ kind, name: r.name, proto: r.proto, ports: r.ports, ...(dst ? { dest: dst } : {}), ...(expires ? { expires } : {}) });
      }
    };
    for (const r of policy.rules) if (r.direction === 'egress' && appliesTo(r.from, self)) emitOut('rule', r);
    for (const e of policy.exceptions) {
      if (e.direction !== 'egress' || !appliesTo(e.from, self) || e.expires <= opts.now) continue;
      emitOut('exception', e, e.expires);
      nextChangeAt = Math.min(nextChangeAt ?? Infinity, e.expires);
    }
    output = { rules: out };
  }
  return {
    policy: { version: policy.version, meshId: policy.meshId },
    node: { name: self.name, peerId: self.peerId },
    sets: sets.sets,
    blocked: fixedSet('blocked', 'blocked', revocable(opts.blocked ?? [], opts.sshFrom ?? [])),
    rules,
    ...(nextChangeAt !== undefined ? { nextChangeAt } : {}),
    ...(output ? { output } : {}),
    ...(policy.settings.forward === 'filter' ? { forward: true as const } : {}),
    ...(policy.settings.mode === 'monitor' ? { monitor: true as const } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  };
}

const canonical = (a: string): string => {
  const p = parsePrefix(a);
  return p.ok ? formatPrefix(p.prefix) : a;
};

/**
 * What of `blocked` really goes into the blocked set: everything except the failsafe
 * *hosts* the operator named exactly (an address or a /32 or /128 in failsafe.sshFrom).
 * A revoked node inside a failsafe *prefix* (sshFrom: [10.0.0.0/8]) is blocked: the drop
 * comes before the failsafe accept, so its live flows are cut while the rest of the prefix
 * keeps SSH. Exempting every address inside a failsafe prefix let revoked nodes keep their
 * connections (issue 13).
 */
export function revocable(blocked: string[], sshFrom: string[]): Prefix[] {
  const hosts = prefixes(sshFrom).filter((f) => f.len === bits(f.family));
  return prefixes(blocked).filter((b) => !hosts.some((h) => overlaps(h, b)));
}

/** Blocked addresses that stay open because they are exact failsafe hosts (the operator should know). */
export function exemptFromRevocation(blocked: string[], sshFrom: string[]): string[] {
  const kept = new Set(revocable(blocked, sshFrom).map(formatPrefix));
  return prefixes(blocked).map(formatPrefix).filter((b) => !kept.has(b));
}

/**
 * Addresses to block when moving from `previous` to `next`: those of nodes that left,
 * unless a remaining node still holds them.
 */
export function revokedAddresses(previous: Policy | undefined, next: Policy): string[] {
  if (!previous) return [];
  const still = new Set(next.nodes.flatMap((n) => n.addresses));
  const kept = new Set(next.nodes.map((n) => n.peerId));
  return previous.nodes.filter((n) => !kept.has(n.peerId)).flatMap((n) => n.addresses).filter((a) => !still.has(a));
}

/**
 * The lock-out guard's static check: a ruleset must keep the mesh port open to mesh peers
 * and SSH open to the failsafe sources, must not block a mesh peer, and must not block a
 * whole failsafe source. A blocked host inside a failsafe prefix is allowed: revocation
 * beats the failsafe (only exact failsafe hosts are exempt, see revocable). Returns the
 * reason to refuse, or undefined. Linear in the set sizes (a 10,000-node mesh set).
 */
export function lockoutProblem(rs: NodeRuleset, opts: { meshPorts: number[]; sshFrom: string[]; sshPort: number }): string | undefined {
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  const allows = (source: string, port: number) => rs.rules.some((r) => r.proto === 'tcp' && (r.source === undefined || r.source === source) && r.ports.some((p) => p.first <= port && port <= p.last));
  for (const port of opts.meshPorts) if (!allows('mesh', port)) return `mesh port ${port} would be closed to mesh peers`;
  const blocked = [...rs.blocked.v4, ...rs.blocked.v6];
  const blockedHosts = new Set(blocked.filter((b) => b.len === bits(b.family)).map(formatPrefix));
  const blockedNets = blocked.filter((b) => b.len !== bits(b.family));
  const mesh = sets.get('mesh');
  for (const m of [...(mesh?.v4 ?? []), ...(mesh?.v6 ?? [])]) {
    if (blockedHosts.has(formatPrefix(m)) || blockedNets.some((b) => overlaps(b, m))) return `mesh peer ${formatPrefix(m)} would be blocked`;
  }
  if (opts.sshFrom.length) {
    if (!allows('failsafe', opts.sshPort)) return `failsafe SSH (port ${opts.sshPort}) would be closed`;
    for (const f of prefixes(opts.sshFrom)) if (blockedHosts.has(formatPrefix(f)) || blockedNets.some((b) => contains(b, f))) return `failsafe source ${formatPrefix(f)} would be blocked`;
  }
  if (rs.output) {
    // Egress deny must never cut the mesh or the failsafe's replies.
    const out = (kind: RuleKind, dest: string, port: number) => rs.output!.rules.some((r) => r.kind === kind && r.proto === 'tcp' && r.dest === dest && r.ports.some((p) => p.first <= port && port <= p.last));
    for (const port of opts.meshPorts) if (!out('mesh', 'mesh', port)) return `egress deny would cut the mesh (port ${port} to mesh peers)`;
    if (opts.sshFrom.length && !out('failsafe', 'failsafe', opts.sshPort)) return 'egress deny would cut failsafe SSH replies';
  }
  return undefined;
}

/** A stable identity for a compiled ruleset, independent of the backend. */
export function rulesetHash(rs: NodeRuleset): string {
  const canon = {
    sets: [...rs.sets, rs.blocked].map((s) => ({ n: s.name, e: [...s.v4, ...s.v6].map(formatPrefix) })),
    // Only when present: rulesets without egress or forward filtering hash as before.
    ...(rs.output ? { output: rs.output.rules.map((r) => [r.kind, r.name, r.proto, r.ports.map((p) => [p.first, p.last]), r.dest ?? '*']) } : {}),
    ...(rs.forward ? { forward: true } : {}),
    rules: rs.rules.map((r) => [r.kind, r.name, r.proto, r.ports.map((p) => [p.first, p.last]), r.source ?? '*', ...(r.monitor ? ['monitor'] : [])]),
    // Only when set, so the hash of a ruleset without them is what it always was.
    ...(rs.monitor ? { monitor: true } : {}),
    ...(rs.log ? { log: rs.log } : {}),
  };
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex');
}
