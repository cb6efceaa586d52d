/**
 * Lowers a compiled ruleset to nftables objects: a handful of rules and a few lookup sets,
 * whatever the size of the policy. Allows become elements of concatenated interval sets
 * (`saddr . l4proto . dport`), so a 10,000-rule policy is ~10 kernel rules, and any change of
 * addresses or ports is a set-element change (incremental, one transaction). Interval sets
 * refuse overlapping elements, so each (source prefix × port range) is emitted disjointly:
 * a prefix only carries the ports its enclosing prefixes do not already allow. Host sources
 * of rules that open at most HOST_PORTS ports are exact (host, proto, port) triples instead:
 * nft loads and edits hash sets far faster than large interval sets (docs/enforcement.md).
 * Hosts whose triples carry identical (proto, port) sets share a class (hostClasses): a
 * verdict map sends the address to the class's regular chain, which holds the ports once, so
 * a role rule costs hosts + ports elements rather than hosts × ports, and moving an address
 * is one map element. Hosts that would not save elements that way stay plain triples in
 * `hosts_vN`. A rule opening more ports keeps its ranges as intervals even for hosts:
 * expanding host × port there is what let a 72 KB policy lower to millions of elements
 * (issue 13). src/policy/budget.ts bounds what this emits (classes only ever emit fewer
 * elements than the triples it counts); keep the two in step.
 */
import { bits, formatPrefix, normalizePrefixes, type Family, type Prefix } from '../policy/ip.js';
import { DEFAULT_LOG_RATE, type AddressSet, type CompiledRule, type NodeRuleset } from '../policy/compile.js';
import type { PortRange, Proto } from '../policy/model.js';
import { HOST_PORTS, portCount } from '../policy/budget.js';

export interface NftSet {
  name: string;
  type: string;
  elements: string[];
  /** Interval sets hold prefixes and ranges; plain (hash) sets only exact elements. Default true. */
  interval?: boolean;
  /** A verdict map (`type ADDR : verdict`, elements `ADDR : jump CHAIN`): declared as `map`, deleted by key. */
  map?: boolean;
}

/** A regular chain (no hook): entered only by a jump, so a miss returns to the caller. */
export interface NftChain {
  name: string;
  rules: string[];
}


export interface NftTables {
  sets: NftSet[];
  /** Rules of the input chain (after the fixed preamble). */
  rules: string[];
  /** Rules of the output chain (after its preamble), under settings.egress: deny only. */
  output?: string[];
  /** Rules of the forward chain, under settings.forward: filter only. */
  forward?: string[];
  /** The rules of the regular chain `would_drop` (monitor mode: log, count, accept). */
  wouldDrop: string[];
  /** Regular chains of the host classes (`class_N`, `mon_class_N`, `fwd_class_N`), in order. */
  chains: NftChain[];
  /** What is in force, for a reader of `nft list`: also the comment of the `origin` element. */
  origin: string;
}

/**
 * The table's own comment is fixed: nftables sets a table comment only when the table is
 * created and silently keeps the old one on every later `table … { comment … }`, so a
 * version-specific table comment would keep saying what was in force when the table was
 * first made (`baseline (no policy)`). The version lives in the comment of the single
 * element of set `origin` instead, which every apply form (recreate, in place, element
 * delta) rewrites.
 */
export const TABLE_COMMENT = 'picket: managed by the picket agent; what is in force: set origin';
export const ORIGIN_SET = 'origin';
const originElement = (origin: string) => `0 comment "${origin}"`;

/**
 * Every drop path has a named counter (nft named counters live outside the chains, so an
 * in-place replace keeps their values; only recreating the table resets them). Keys are the
 * `reason` label of picket_dropped_packets_total.
 */
export const NFT_COUNTERS = {
  'default-deny': 'drop_default',
  blocked: 'drop_blocked',
  invalid: 'drop_invalid',
  'would-drop': 'would_drop',
  /** Outbound connections no egress rule allows (settings.egress: deny). */
  'egress-deny': 'drop_egress',
  /** Connections to a published (DNAT-ed) port no inbound rule allows (settings.forward: filter). */
  'forward-deny': 'drop_forward',
} as const;
export type DropReason = keyof typeof NFT_COUNTERS;
export const DROP_REASONS = Object.keys(NFT_COUNTERS) as DropReason[];

/** The regular chain monitor mode jumps to (always present: a stable table shape). */
export const WOULD_DROP_CHAIN = 'would_drop';
export const LOG_PREFIX = { drop: 'picket-drop ', wouldDrop: 'picket-would-drop ' } as const;
const RATE = /^[1-9]\d{0,5}\/(second|minute|hour|day)$/;

/** The kernel log rate, checked again here: it is written into a script. */
export function logRate(rs: NodeRuleset): string {
  const rate = rs.log?.rate ?? DEFAULT_LOG_RATE;
  if (!RATE.test(rate)) throw new Error(`log rate ${JSON.stringify(rate.slice(0, 40))} is not N/second|minute|hour|day`);
  return rate;
}

type Interval = [number, number];

function mergeIntervals(list: Interval[]): Interval[] {
  const s = [...list].sort((a, b) => a[0] - b[0]);
  const out: Interval[] = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function subtract(from: Interval[], minus: Interval[]): Interval[] {
  let cur = from;
  for (const [ma, mb] of minus) {
    const next: Interval[] = [];
    for (const [a, b] of cur) {
      if (mb < a || ma > b) { next.push([a, b]); continue; }
      if (a < ma) next.push([a, ma - 1]);
      if (b > mb) next.push([mb + 1, b]);
    }
    cur = next;
  }
  return cur;
}

const fmtPorts = ([a, b]: Interval) => (a === b ? `${a}` : `${a}-${b}`);

function maskOf(f: Family, len: number): bigint {
  const total = BigInt(bits(f));
  return ((1n << total) - 1n) ^ ((1n << (total - BigInt(len))) - 1n);
}

/** Disjoint (prefix, port ranges) covering the union of the given rectangles. */
export function disjointCover(rects: { prefix: Prefix; ports: Interval[] }[]): { prefix: Prefix; ports: Interval[] }[] {
  const own = new Map<string, { prefix: Prefix; ports: Interval[] }>();
  for (const r of rects) {
    const k = `${r.prefix.len}:${r.prefix.addr}`;
    const e = own.get(k);
    if (e) e.ports.push(...r.ports);
    else own.set(k, { prefix: r.prefix, ports: [...r.ports] });
  }
  const entries = [...own.values()].sort((a, b) => a.prefix.len - b.prefix.len);
  const lengths = [...new Set(entries.map((e) => e.prefix.len))];
  const effective = new Map<string, Interval[]>();
  const out: { prefix: Prefix; ports: Interval[] }[] = [];
  for (const e of entries) {
    const f = e.prefix.family;
    let ancestors: Interval[] = [];
    for (const l of lengths) {
      if (l >= e.prefix.len) break;
      const eff = effective.get(`${l}:${e.prefix.addr & maskOf(f, l)}`);
      if (eff) ancestors = ancestors.concat(eff);
    }
    ancestors = mergeIntervals(ancestors);
    const mine = mergeIntervals(e.ports);
    const emit = subtract(mine, ancestors);
    effective.set(`${e.prefix.len}:${e.prefix.addr}`, mergeIntervals([...mine, ...ancestors]));
    if (emit.length) out.push({ prefix: e.prefix, ports: emit });
  }
  return out.sort((a, b) => (a.prefix.addr < b.prefix.addr ? -1 : a.prefix.addr > b.prefix.addr ? 1 : a.prefix.len - b.prefix.len));
}

const portIntervals = (ports: PortRange[]): Interval[] => ports.map((p) => [p.first, p.last]);

const addrType = (f: Family) => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');

function addrSet(name: string, family: Family, list: Prefix[]): NftSet {
  return { name: `${name}_v${family}`, type: addrType(family), elements: list.map(formatPrefix) };
}

// Rulesets are immutable once compiled: lower each one once (full, delta and shape checks share it).
const lowered = new WeakMap<NodeRuleset, NftTables>();

export function buildNftTables(rs: NodeRuleset): NftTables {
  let t = lowered.get(rs);
  if (!t) {
    t = lower(rs);
    lowered.set(rs, t);
  }
  return t;
}

function lower(rs: NodeRuleset): NftTables {
  const byName = new Map<string, AddressSet>(rs.sets.map((s) => [s.name, s]));
  const sets: NftSet[] = [addrSet('blocked', 4, rs.blocked.v4), addrSet('blocked', 6, rs.blocked.v6)];
  const rules: string[] = [];
  const allows: CompiledRule[] = [], monitored: CompiledRule[] = [];
  for (const r of rs.rules) {
    if (r.kind === 'mesh' || r.kind === 'failsafe') {
      const s = byName.get(r.source!)!;
      sets.push(addrSet(s.name, 4, s.v4), addrSet(s.name, 6, s.v6));
      const ports = mergeIntervals(portIntervals(r.ports)).map(fmtPorts);
      const dport = ports.length === 1 ? ports[0] : `{ ${ports.join(', ')} }`;
      rules.push(`ip saddr @${s.name}_v4 tcp dport ${dport} accept comment "${r.kind}"`, `ip6 saddr @${s.name}_v6 tcp dport ${dport} accept comment "${r.kind}"`);
      continue;
    }
    (r.monitor ? monitored : allows).push(r);
  }
  // Under forward: filter the forward chain enters the same classes through a map of its own.
  const enforced = lowerAllows(allows, byName, '', 'accept', '', rs.forward ? 2 : 1);
  sets.push(...enforced.sets);
  rules.push(...enforced.rules);
  const chains = [...enforced.chains];
  // Monitor rules come after every enforced rule, in sets of their own: a packet reaches them
  // only when no enforced rule admits it, which is what "would drop" means. Only emitted when
  // the policy has some, so tables of policies without monitor rules keep their shape.
  if (monitored.length) {
    const m = lowerAllows(monitored, byName, 'mon_', `jump ${WOULD_DROP_CHAIN}`, 'monitor ', 1);
    sets.push(...m.sets);
    rules.push(...m.rules);
    chains.push(...m.chains);
  }
  const rate = logRate(rs);
  if (rs.monitor) {
    rules.push(`jump ${WOULD_DROP_CHAIN} comment "monitor: default deny would drop"`);
  } else {
    if (rs.log?.drops) rules.push(`limit rate ${rate} log prefix "${LOG_PREFIX.drop}"`);
    rules.push(`counter name "${NFT_COUNTERS['default-deny']}" drop comment "default deny"`);
  }
  const wouldDrop = [
    `limit rate ${rate} log prefix "${LOG_PREFIX.wouldDrop}"`,
    `counter name "${NFT_COUNTERS['would-drop']}" accept`,
  ];
  // Node names are validated ([A-Za-z0-9_.-]) before a policy is accepted; the comment is
  // inside an nft script all the same, so anything else is replaced, never quoted.
  const name = (rs.node?.name ?? '?').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 63);
  const origin = `picket: ${rs.policy ? `policy v${rs.policy.version} for ${name}` : 'baseline (no policy)'}`;
  sets.push({ name: ORIGIN_SET, type: 'mark', elements: [originElement(origin)], interval: false });
  const out = rs.output ? lowerOutput(rs.output.rules, byName, rs.monitor === true) : undefined;
  if (out) sets.push(...out.sets);
  let forward: string[] | undefined;
  if (rs.forward) {
    const fwd = forwardClasses(enforced.classes);
    sets.push(...fwd.sets);
    chains.push(...fwd.chains);
    forward = forwardRules();
  }
  return { sets, rules, wouldDrop, chains, origin, ...(out ? { output: out.rules } : {}), ...(forward ? { forward } : {}) };
}

/**
 * At most this many host classes per lowering (input, monitor): each is a chain and a set
 * (and a forward chain), heavier in nft and the kernel than elements, and a policy can be
 * written to make one class per pair of hosts (tens of thousands within the element budget).
 * Measured: 3,000 pairs of hosts with three ports each load in 204 ms as plain elements,
 * 478 ms as 3,000 classes, 181 ms with this cap. Realistic fleets have a class per
 * combination of roles that narrow rules name: tens. Past the cap the classes that save the
 * fewest elements stay plain elements.
 */
export const MAX_CLASSES = 256;

/** One host class of a lowering: its chain and port set, and the addresses that enter it. */
interface HostClass {
  /** Its chain; its port set is `${chain}_ports`. */
  chain: string;
  /** `proto . port` elements, sorted. */
  ports: string[];
  hosts: Record<Family, string[]>;
}

/** The verdict maps sending each host of `classes` to its class chain (`chainOf` names it). */
function classMaps(name: string, classes: HostClass[], chainOf: (c: HostClass) => string): NftSet[] {
  return ([4, 6] as const).map((f) => ({
    name: `${name}_v${f}`, type: `${addrType(f)} : verdict`, map: true, interval: false,
    elements: classes.flatMap((c) => c.hosts[f].map((a) => `${a} : jump ${chainOf(c)}`)).sort(),
  }));
}

/**
 * Host sources of narrow rules, grouped into classes: addresses whose (proto, port) sets
 * are identical share one regular chain holding those ports once, entered from a verdict map
 * keyed by address. A class is used only when it emits fewer elements than the plain
 * `address . proto . port` elements it replaces (`maps` verdict-map entries per host + its
 * ports < hosts × ports), so it never costs more than budget.ts counts; a host alone in its
 * ports, or a class of single-port hosts, stays plain, and so do the classes past MAX_CLASSES
 * that save the fewest elements.
 *
 * Classes are numbered by the first rule any of their hosts appears in, then by their port
 * list, never by address: moving a host to a new address keeps every class name, and so is
 * an element change (its map entry), not a new table shape. A new port for a class is an
 * element of its port set; only a class appearing or disappearing changes the shape.
 *
 * The chain is entered by `jump`, never `goto`: when it has no matching port, evaluation
 * returns to the caller's next rule (the icmp and monitor rules, the counted default deny).
 * A goto would end at the base chain's policy instead, skipping the rest of the rules.
 */
function hostClasses(hosts: Map<string, { family: Family; first: number; ports: Set<string> }>, maps: number, prefix: string): { classes: HostClass[]; plain: Record<Family, string[]> } {
  const groups = new Map<string, { first: number; ports: string[]; hosts: Record<Family, string[]> }>();
  for (const [addr, h] of hosts) {
    const ports = [...h.ports].sort();
    const key = ports.join(',');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { first: h.first, ports, hosts: { 4: [], 6: [] } }));
    g.first = Math.min(g.first, h.first);
    g.hosts[h.family].push(addr);
  }
  type Group = { first: number; key: string; saved: number; ports: string[]; hosts: Record<Family, string[]> };
  const order = (a: Group, b: Group) => a.first - b.first || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const candidates: Group[] = [];
  for (const [key, g] of groups) {
    const k = g.hosts[4].length + g.hosts[6].length, p = g.ports.length;
    candidates.push({ key, saved: k * p - (maps * k + p), ...g });
  }
  // The classes that save the most, at most MAX_CLASSES of them; numbered in rule order.
  const kept = new Set(candidates.filter((g) => g.saved > 0).sort((a, b) => b.saved - a.saved || order(a, b)).slice(0, MAX_CLASSES));
  const plain: Record<Family, string[]> = { 4: [], 6: [] };
  for (const g of candidates) {
    if (kept.has(g)) continue;
    for (const f of [4, 6] as const) for (const a of g.hosts[f]) for (const port of g.ports) plain[f].push(`${a} . ${port}`);
  }
  return { classes: [...kept].sort(order).map((g, i) => ({ chain: `${prefix}class_${i}`, ports: g.ports, hosts: g.hosts })), plain };
}

/**
 * Lowers allow rules (tcp/udp/icmp, any source) to lookup sets, host classes and the rules
 * matching them. `prefix` names the sets and chains (enforced rules: none, the historical
 * names), `verdict` what a match does, `maps` how many verdict maps enter each class (the
 * forward chain has its own under forward: filter).
 */
function lowerAllows(list: CompiledRule[], byName: Map<string, AddressSet>, prefix: string, verdict: string, note: string, maps: number): { sets: NftSet[]; rules: string[]; chains: NftChain[]; classes: HostClass[] } {
  const rects: Record<string, { prefix: Prefix; ports: Interval[] }[]> = {};
  const hosts = new Map<string, { family: Family; first: number; ports: Set<string> }>();
  const open: Record<string, Interval[]> = {};
  const icmp: Prefix[] = [];
  let icmpAny = false;
  const sets: NftSet[] = [];
  for (const [ri, r] of list.entries()) {
    const src = r.source === undefined ? undefined : byName.get(r.source);
    if (r.proto === 'icmp') {
      if (!src) icmpAny = true;
      else icmp.push(...src.v4, ...src.v6);
      continue;
    }
    if (!src) {
      (open[r.proto] ??= []).push(...portIntervals(r.ports));
      continue;
    }
    const narrow = portCount(r.ports) <= HOST_PORTS;
    for (const p of [...src.v4, ...src.v6]) {
      if (narrow && p.len === bits(p.family)) {
        // A host and a few ports: exact elements, in a class or a hash set (fast to load and to change).
        const addr = formatPrefix(p);
        let h = hosts.get(addr);
        if (!h) hosts.set(addr, (h = { family: p.family, first: ri, ports: new Set<string>() }));
        for (const pr of r.ports) for (let port = pr.first; port <= pr.last; port++) h.ports.add(`${r.proto} . ${port}`);
      } else {
        (rects[`${p.family}:${r.proto}`] ??= []).push({ prefix: p, ports: portIntervals(r.ports) });
      }
    }
  }
  const { classes, plain } = hostClasses(hosts, maps, prefix);
  const openEls = (['tcp', 'udp'] as Proto[]).flatMap((proto) => mergeIntervals(open[proto] ?? []).map((i) => `${proto} . ${fmtPorts(i)}`));
  sets.push({ name: `${prefix}open`, type: 'inet_proto . inet_service', elements: openEls });
  for (const fam of [4, 6] as const) {
    const els: string[] = [];
    for (const proto of ['tcp', 'udp'] as const) {
      for (const c of disjointCover(rects[`${fam}:${proto}`] ?? [])) {
        for (const i of c.ports) els.push(`${formatPrefix(c.prefix)} . ${proto} . ${fmtPorts(i)}`);
      }
    }
    const type = `${addrType(fam)} . inet_proto . inet_service`;
    sets.push({ name: `${prefix}allow_v${fam}`, type, elements: els });
    sets.push({ name: `${prefix}hosts_v${fam}`, type, elements: plain[fam].sort(), interval: false });
  }
  for (const c of classes) sets.push({ name: `${c.chain}_ports`, type: 'inet_proto . inet_service', elements: c.ports, interval: false });
  sets.push(...classMaps(`${prefix}classes`, classes, (c) => c.chain));
  const icmpNorm = normalizePrefixes(icmp);
  sets.push(addrSet(`${prefix}icmp`, 4, icmpNorm.filter((p) => p.family === 4)), addrSet(`${prefix}icmp`, 6, icmpNorm.filter((p) => p.family === 6)));
  const rules = [
    `meta l4proto . th dport @${prefix}open ${verdict} comment "${note}rules from any"`,
    `ip saddr . meta l4proto . th dport @${prefix}allow_v4 ${verdict} comment "${note}rules"`,
    `ip6 saddr . meta l4proto . th dport @${prefix}allow_v6 ${verdict} comment "${note}rules"`,
    `ip saddr . meta l4proto . th dport @${prefix}hosts_v4 ${verdict} comment "${note}rules (hosts)"`,
    `ip6 saddr . meta l4proto . th dport @${prefix}hosts_v6 ${verdict} comment "${note}rules (hosts)"`,
    `ip saddr vmap @${prefix}classes_v4 comment "${note}rules (host classes)"`,
    `ip6 saddr vmap @${prefix}classes_v6 comment "${note}rules (host classes)"`,
    `ip saddr @${prefix}icmp_v4 meta l4proto icmp ${verdict} comment "${note}icmp rules"`,
    `ip6 saddr @${prefix}icmp_v6 meta l4proto ipv6-icmp ${verdict} comment "${note}icmp rules"`,
  ];
  if (icmpAny) rules.push(`meta l4proto { icmp, ipv6-icmp } ${verdict} comment "${note}icmp from any"`);
  const chains = classes.map((c) => ({ name: c.chain, rules: [`meta l4proto . th dport @${c.chain}_ports ${verdict}`] }));
  return { sets, rules, chains, classes };
}

/**
 * The forward chain's way into the input chain's host classes: after DNAT the destination
 * port is the container's, so its class chains match the port the client connected to
 * (`ct original proto-dst`, one rule per protocol) against the same port sets.
 */
function forwardClasses(classes: HostClass[]): { sets: NftSet[]; chains: NftChain[] } {
  return {
    sets: classMaps('fwd_classes', classes, (c) => `fwd_${c.chain}`),
    chains: classes.map((c) => ({
      name: `fwd_${c.chain}`,
      rules: (['tcp', 'udp'] as const).map((proto) => `meta l4proto ${proto} meta l4proto . ct original proto-dst @${c.chain}_ports accept`),
    })),
  };
}

/**
 * The output chain's rules (its preamble — loopback, established/related, neighbour
 * discovery — is render-nft's): the mesh port to mesh peers and SSH replies to failsafe
 * sources first, through the sets the input chain already declares, then the egress rules
 * as elements of their own `out_*` sets keyed by destination. Destinations are always
 * interval elements (egress rules are few; budget.ts counts them like input sources).
 */
function lowerOutput(list: CompiledRule[], byName: Map<string, AddressSet>, monitor: boolean): { sets: NftSet[]; rules: string[] } {
  const rules: string[] = [];
  const rects: Record<string, { prefix: Prefix; ports: Interval[] }[]> = {};
  const open: Record<string, Interval[]> = {};
  const icmp: Prefix[] = [];
  let icmpAny = false;
  for (const r of list) {
    if (r.kind === 'mesh' || r.kind === 'failsafe') {
      const s = byName.get(r.dest!)!;
      const ports = mergeIntervals(portIntervals(r.ports)).map(fmtPorts);
      const port = ports.length === 1 ? ports[0] : `{ ${ports.join(', ')} }`;
      // Mesh: connections this node opens to its peers' mesh port. Failsafe: replies from
      // the SSH port (established already passes them; this keeps them if conntrack lost the flow).
      const field = r.kind === 'mesh' ? 'dport' : 'sport';
      rules.push(`ip daddr @${s.name}_v4 tcp ${field} ${port} accept comment "${r.kind}"`, `ip6 daddr @${s.name}_v6 tcp ${field} ${port} accept comment "${r.kind}"`);
      continue;
    }
    const dst = r.dest === undefined ? undefined : byName.get(r.dest);
    if (r.proto === 'icmp') {
      if (!dst) icmpAny = true;
      else icmp.push(...dst.v4, ...dst.v6);
      continue;
    }
    if (!dst) {
      (open[r.proto] ??= []).push(...portIntervals(r.ports));
      continue;
    }
    for (const p of [...dst.v4, ...dst.v6]) (rects[`${p.family}:${r.proto}`] ??= []).push({ prefix: p, ports: portIntervals(r.ports) });
  }
  const sets: NftSet[] = [{ name: 'out_open', type: 'inet_proto . inet_service', elements: (['tcp', 'udp'] as Proto[]).flatMap((proto) => mergeIntervals(open[proto] ?? []).map((i) => `${proto} . ${fmtPorts(i)}`)) }];
  for (const fam of [4, 6] as const) {
    const els: string[] = [];
    for (const proto of ['tcp', 'udp'] as const) {
      for (const c of disjointCover(rects[`${fam}:${proto}`] ?? [])) for (const i of c.ports) els.push(`${formatPrefix(c.prefix)} . ${proto} . ${fmtPorts(i)}`);
    }
    sets.push({ name: `out_allow_v${fam}`, type: `${fam === 4 ? 'ipv4_addr' : 'ipv6_addr'} . inet_proto . inet_service`, elements: els });
  }
  const icmpNorm = normalizePrefixes(icmp);
  sets.push(addrSet('out_icmp', 4, icmpNorm.filter((p) => p.family === 4)), addrSet('out_icmp', 6, icmpNorm.filter((p) => p.family === 6)));
  rules.push(
    'meta l4proto . th dport @out_open accept comment "egress rules to any"',
    'ip daddr . meta l4proto . th dport @out_allow_v4 accept comment "egress rules"',
    'ip6 daddr . meta l4proto . th dport @out_allow_v6 accept comment "egress rules"',
    'ip daddr @out_icmp_v4 meta l4proto icmp accept comment "egress icmp rules"',
    'ip6 daddr @out_icmp_v6 meta l4proto ipv6-icmp accept comment "egress icmp rules"',
  );
  if (icmpAny) rules.push('meta l4proto { icmp, ipv6-icmp } accept comment "egress icmp to any"');
  // The chain's policy is drop as well; this rule is what counts it (or, in monitor mode, the
  // would-drop chain accepts and counts it).
  rules.push(monitor ? `jump ${WOULD_DROP_CHAIN} comment "monitor: egress default deny would drop"` : `counter name "${NFT_COUNTERS['egress-deny']}" drop comment "egress default deny"`);
  return { sets, rules };
}

/**
 * The forward chain under settings.forward: filter. Only connections the host DNAT-ed (a
 * container's published port: Docker, Podman) are filtered; other forwarded traffic passes
 * untouched. The hook runs after DNAT, where the destination port is the container's: the
 * input rules are matched on `ct original proto-dst`, the port the client connected to (the
 * published host port), with the input chain's own sets. nft needs the layer-4 protocol
 * fixed before it can type `ct original proto-dst`, hence one rule per protocol.
 */
function forwardRules(): string[] {
  const rules = [
    `ct status dnat ip saddr @blocked_v4 counter name "${NFT_COUNTERS.blocked}" drop comment "removed nodes"`,
    `ct status dnat ip6 saddr @blocked_v6 counter name "${NFT_COUNTERS.blocked}" drop comment "removed nodes"`,
    'ct status & dnat == 0 accept comment "not a published port"',
    'ct state established,related accept',
    `ct state invalid counter name "${NFT_COUNTERS.invalid}" drop`,
  ];
  for (const proto of ['tcp', 'udp'] as const) {
    const port = `meta l4proto ${proto}`;
    rules.push(
      `${port} meta l4proto . ct original proto-dst @open accept comment "published: rules from any"`,
      `${port} ip saddr . meta l4proto . ct original proto-dst @allow_v4 accept comment "published: rules"`,
      `${port} ip6 saddr . meta l4proto . ct original proto-dst @allow_v6 accept comment "published: rules"`,
      `${port} ip saddr . meta l4proto . ct original proto-dst @hosts_v4 accept comment "published: rules (hosts)"`,
      `${port} ip6 saddr . meta l4proto . ct original proto-dst @hosts_v6 accept comment "published: rules (hosts)"`,
    );
  }
  rules.push(
    'ip saddr vmap @fwd_classes_v4 comment "published: rules (host classes)"',
    'ip6 saddr vmap @fwd_classes_v6 comment "published: rules (host classes)"',
  );
  rules.push(`counter name "${NFT_COUNTERS['forward-deny']}" drop comment "published port: no rule allows it"`);
  return rules;
}
