/**
 * The compile budget (pure): how large a policy's compiled ruleset can get, computed from
 * the document without expanding it. A 72 KB signed policy (120 nodes × 32 addresses, rules
 * with 64 port ranges) lowers to millions of (host × port) elements; the size of the
 * document says nothing about that, so the size of what it compiles to is bounded before the
 * policy is accepted (verifyPolicy) and again before a compiled ruleset is applied (enforcer).
 *
 * The figures are upper bounds of what src/enforce/nft-tables.ts emits, which reads the
 * lowering constants below so the two cannot drift apart:
 *  - a source prefix of a tcp/udp rule costs one element per port range (interval set), or
 *    one per port when it is a host and the rule opens at most HOST_PORTS ports (hash set;
 *    the lowering groups such hosts into classes only when that emits fewer elements, so
 *    this bounds the classes' map entries and port sets too);
 *  - interval sets refuse overlaps, so a prefix nested in another carries only the ports its
 *    ancestors do not allow: each range of an ancestor can split one of its ranges in two,
 *    hence Σ over prefixes a of (ranges of a × prefixes nested inside a);
 *  - rules from `any` cost their port ranges, icmp rules one element per source prefix,
 *    the mesh set one per address of another node, and the fixed `origin` set one;
 *  - egress rules (counted only under settings.egress: deny, when they are compiled) cost
 *    the same per *destination* prefix, and apply to the nodes their `from` names; the
 *    output and forward chains reuse the mesh, failsafe and input sets (no new elements).
 * The policy figure is the largest over the policy's nodes (what one node would hold), not
 * the sum over the fleet, so an honest 10,000-node policy fits.
 */
import { LIMITS } from '../wire/limits.js';
import type { NodeRuleset } from './compile.js';
import { bits, comparePrefix, parsePrefix, type Prefix } from './ip.js';
import type { Policy, PortRange, Proto, Rule } from './model.js';

/** Host sources of a rule that opens at most this many ports go to a hash set, port by port. */
export const HOST_PORTS = 32;

export interface CompiledSize {
  /** nft set elements (an upper bound). */
  elements: number;
  /** Compiled rules (one per rule and source selector, plus mesh and failsafe). */
  rules: number;
}

/** Sets of a fixed size in every lowered table (`origin`: one element naming what is in force). */
const FIXED_ELEMENTS = 1;

/** Work (node visits) spent finding the largest node before settling for the fleet-wide sum. */
const NODE_WORK = 4_000_000;

export const portCount = (ports: PortRange[]): number => ports.reduce((n, p) => n + p.last - p.first + 1, 0);

/** Elements one source prefix of this rule can cost. */
function perPrefix(proto: Proto, ports: PortRange[]): number {
  if (proto === 'icmp') return 1;
  const n = portCount(ports);
  return n <= HOST_PORTS ? Math.max(n, ports.length) : ports.length;
}

/**
 * Prefixes nested inside each non-host prefix, times its port ranges (the disjoint split).
 * `candidates` holds every source prefix once (the prefixes in `ranges` among them); a
 * duplicate only makes the bound larger.
 */
function splitTerm(ranges: Map<unknown, { prefix: Prefix; ranges: number }>, candidates: Prefix[]): number {
  const nets = [...ranges.values()].filter(({ prefix: a, ranges: k }) => a.len !== bits(a.family) && k > 0);
  if (!nets.length) return 0;
  const all = [...candidates].sort(comparePrefix);
  // First index whose entry is not before `pred` (entries are sorted; pred is monotone).
  const search = (before: (p: Prefix) => boolean) => {
    let lo = 0, hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(all[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  let total = 0;
  for (const { prefix: a, ranges: k } of nets) {
    const end = a.addr | ((1n << BigInt(bits(a.family) - a.len)) - 1n);
    const first = search((m) => comparePrefix(m, a) <= 0); // past a itself
    const past = search((m) => m.family < a.family || (m.family === a.family && m.addr <= end));
    total += k * Math.max(0, past - first);
  }
  return total;
}

/** The largest compiled ruleset any node of `policy` would enforce (exceptions included, unexpired or not). */
export function compiledSize(policy: Policy): CompiledSize {
  const addrCount = policy.nodes.map((n) => n.addresses.length);
  const totalAddrs = addrCount.reduce((a, b) => a + b, 0);
  const byRef = new Map<string, number>();
  const byRole = new Map<string, number[]>();
  policy.nodes.forEach((n, i) => {
    byRef.set(n.name, i);
    byRef.set(n.peerId, i);
    for (const r of new Set(n.roles)) {
      const list = byRole.get(r);
      if (list) list.push(i);
      else byRole.set(r, [i]);
    }
  });
  const roleAddrs = new Map([...byRole].map(([r, list]) => [r, list.reduce((n, i) => n + addrCount[i]!, 0)]));
  const selectorSize = (s: string): number => {
    if (s.startsWith('role:')) return roleAddrs.get(s.slice(5)) ?? 0;
    if (s.startsWith('node:')) { const i = byRef.get(s.slice(5)); return i === undefined ? 0 : addrCount[i]!; }
    return 1; // cidr:
  };

  const cidrRanges = new Map<string, { prefix: Prefix; ranges: number }>();
  let anyCost = 0, anyRules = 0, targetedCost = 0, targetedRules = 0;
  const targeted: { to: string[]; cost: number; rules: number }[] = [];
  const egress = policy.settings.egress === 'deny';
  for (const r of [...policy.rules, ...policy.exceptions] as Rule[]) {
    if (r.direction === 'egress' && !egress) continue; // not compiled under egress: allow
    // The side naming addresses costs elements; the other side says which nodes hold them.
    const [peers, targets] = r.direction === 'egress' ? [r.to, r.from] : [r.from, r.to];
    const froms = peers.includes('any') ? ['any'] : peers;
    const per = perPrefix(r.proto, r.ports);
    let cost = 0;
    for (const s of froms) {
      if (s === 'any') { cost += r.proto === 'icmp' ? 0 : r.ports.length; continue; }
      cost += selectorSize(s) * per;
      if (s.startsWith('cidr:') && r.proto !== 'icmp') {
        // Keyed by its spelling: two spellings of one prefix are counted apart, which only
        // makes the bound larger, and each distinct selector is parsed once.
        const e = cidrRanges.get(s);
        if (e) { e.ranges += r.ports.length; continue; }
        const pr = parsePrefix(s.slice(5));
        if (pr.ok) cidrRanges.set(s, { prefix: pr.prefix, ranges: r.ports.length });
      }
    }
    if (targets.includes('any')) { anyCost += cost; anyRules += froms.length; }
    else { targeted.push({ to: targets, cost, rules: froms.length }); targetedCost += cost; targetedRules += froms.length; }
  }

  // The largest node: each rule adds its cost once to every node it applies to.
  let maxCost = 0, maxRules = 0;
  if (policy.nodes.length) {
    const cost = new Float64Array(policy.nodes.length), rules = new Float64Array(policy.nodes.length);
    const stamp = new Int32Array(policy.nodes.length).fill(-1);
    let work = 0, exact = true;
    outer: for (const [ri, t] of targeted.entries()) {
      for (const sel of t.to) {
        const list = sel.startsWith('role:') ? byRole.get(sel.slice(5)) ?? [] : sel.startsWith('node:') ? [byRef.get(sel.slice(5))].filter((i): i is number => i !== undefined) : [];
        work += list.length;
        if (work > NODE_WORK) { exact = false; break outer; }
        for (const i of list) {
          if (stamp[i] === ri) continue;
          stamp[i] = ri;
          cost[i] = cost[i]! + t.cost;
          rules[i] = rules[i]! + t.rules;
        }
      }
    }
    if (exact) for (let i = 0; i < cost.length; i++) { maxCost = Math.max(maxCost, cost[i]!); maxRules = Math.max(maxRules, rules[i]!); }
    else { maxCost = targetedCost; maxRules = targetedRules; }
  }

  const candidates: Prefix[] = [...cidrRanges.values()].map((c) => c.prefix);
  // Node addresses matter only as prefixes nested in a CIDR source of their family: parse
  // those alone (parsing 20,000 addresses costs more than the rest of this function).
  const nets = new Set(candidates.filter((p) => p.len !== bits(p.family)).map((p) => p.family));
  if (nets.size) {
    for (const n of policy.nodes) {
      for (const a of n.addresses) {
        if (!nets.has(a.includes(':') ? 6 : 4)) continue;
        const p = parsePrefix(a);
        if (p.ok) candidates.push(p.prefix);
      }
    }
  }
  return {
    elements: FIXED_ELEMENTS + totalAddrs + anyCost + maxCost + splitTerm(cidrRanges, candidates),
    // The output chain repeats the mesh and failsafe rules.
    rules: 2 + (egress ? 2 : 0) + anyRules + maxRules,
  };
}

/**
 * The same bound for one compiled ruleset: what the policy makes this node hold. The
 * operator's failsafe set and the blocked set are the node's own and are not counted.
 */
export function rulesetSize(rs: NodeRuleset): CompiledSize {
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  const mesh = sets.get('mesh');
  let elements = FIXED_ELEMENTS + (mesh ? mesh.v4.length + mesh.v6.length : 0);
  // Keyed by object: sets are shared between rules, so one prefix is one object (a copy
  // elsewhere is counted apart, which only makes the bound larger).
  const ranges = new Map<Prefix, { prefix: Prefix; ranges: number }>();
  const candidates: Prefix[] = [];
  // Output rules lower like input ones, keyed by destination (nft-tables.ts lowerOutput).
  const outRules = (rs.output?.rules ?? []).map((r) => ({ ...r, source: r.dest }));
  for (const r of [...rs.rules, ...outRules]) {
    if (r.kind === 'mesh' || r.kind === 'failsafe') continue;
    const src = r.source === undefined ? undefined : sets.get(r.source);
    if (!src) { elements += r.proto === 'icmp' ? 0 : r.ports.length; continue; }
    const list = [...src.v4, ...src.v6];
    elements += list.length * perPrefix(r.proto, r.ports);
    if (r.proto === 'icmp') continue;
    for (const p of list) {
      candidates.push(p);
      if (p.len === bits(p.family)) continue;
      const e = ranges.get(p);
      if (e) e.ranges += r.ports.length;
      else ranges.set(p, { prefix: p, ranges: r.ports.length });
    }
  }
  return { elements: elements + splitTerm(ranges, candidates), rules: rs.rules.length + outRules.length };
}

/** Why a size is over the budget, with the figure; undefined when it fits. */
export function overBudget(size: CompiledSize, limits: { elements: number; rules: number } = { elements: LIMITS.maxCompiledElements, rules: LIMITS.maxCompiledRules }): string | undefined {
  const n = (x: number) => x.toLocaleString('en-US');
  if (size.elements > limits.elements) return `compiles to ${n(size.elements)} set elements on its largest node (limit ${n(limits.elements)})`;
  if (size.rules > limits.rules) return `compiles to ${n(size.rules)} rules on its largest node (limit ${n(limits.rules)})`;
  return undefined;
}
