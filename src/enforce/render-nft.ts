/**
 * Renders a compiled ruleset as one nftables `table inet picket` (see nft-tables.ts for how
 * rules become lookup sets). Three forms:
 *  - renderNft: `table …; delete table …; table … {…}` — creates or recreates the table in
 *    one transaction (first apply, or when the table holds something unexpected);
 *  - renderNftInPlace: keeps the table and its base chain, swaps rules and elements in one
 *    transaction (the normal full apply: the input hook never goes away);
 *  - renderNftDelta: element additions/removals only, when the shape is unchanged.
 * Other tables (Docker's, the distribution's) are never touched.
 */
import type { NodeRuleset } from '../policy/compile.js';
import { buildNftTables, NFT_COUNTERS, TABLE_COMMENT, WOULD_DROP_CHAIN, type NftTables } from './nft-tables.js';
import { diffElements } from './element-diff.js';

export const NFT_TABLE = 'picket';
export const NFT_FAMILY = 'inet';

const PREAMBLE = [
  'iif "lo" accept',
  // Removed nodes stay dropped in monitor mode too: revocation is not a policy on trial.
  `ip saddr @blocked_v4 counter name "${NFT_COUNTERS.blocked}" drop comment "removed nodes"`,
  `ip6 saddr @blocked_v6 counter name "${NFT_COUNTERS.blocked}" drop comment "removed nodes"`,
  'ct state established,related accept',
  // IPv6 needs neighbour discovery to work at all; it is link-local and untracked.
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-router-solicit, packet-too-big } accept',
  `ct state invalid counter name "${NFT_COUNTERS.invalid}" drop`,
];
const COUNTER_LINES = Object.values(NFT_COUNTERS).map((c) => `  counter ${c} { }`);
const CHAIN_HEAD = 'type filter hook input priority filter; policy drop;';
/** Under settings.egress: deny. Replies, loopback and neighbour discovery always pass. */
const OUTPUT_HEAD = 'type filter hook output priority filter; policy drop;';
const OUTPUT_PREAMBLE = [
  'oif "lo" accept',
  'ct state established,related accept',
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-router-solicit, mld2-listener-report, packet-too-big } accept',
];
/** Under settings.forward: filter. Policy accept: only DNAT-ed connections are judged (nft-tables.ts forwardRules). */
const FORWARD_HEAD = 'type filter hook forward priority filter; policy accept;';

interface Chain { name: string; head: string; rules: string[] }

/**
 * The chains of a lowered table, in order: the regular chains — the one monitor mode jumps
 * to and the host classes' (declared before the rules and maps that jump to them) — then
 * input always, output and forward when the policy asks.
 */
export function nftChains(t: NftTables): Chain[] {
  const chains: Chain[] = [
    { name: WOULD_DROP_CHAIN, head: '', rules: t.wouldDrop },
    ...t.chains.map((c) => ({ name: c.name, head: '', rules: c.rules })),
    { name: 'input', head: CHAIN_HEAD, rules: [...PREAMBLE, ...t.rules] },
  ];
  if (t.output) chains.push({ name: 'output', head: OUTPUT_HEAD, rules: [...OUTPUT_PREAMBLE, ...t.output] });
  if (t.forward) chains.push({ name: 'forward', head: FORWARD_HEAD, rules: t.forward });
  return chains;
}

/** Chain names the table holds for a ruleset. */
export function nftChainNames(rs: NodeRuleset): string[] {
  return nftChains(buildNftTables(rs)).map((c) => c.name);
}

function setLine(s: NftTables['sets'][number], withElements: boolean): string {
  const els = withElements && s.elements.length ? ` elements = { ${s.elements.join(', ')} }` : '';
  return `  ${s.map ? 'map' : 'set'} ${s.name} { type ${s.type};${s.interval === false ? '' : ' flags interval;'}${els} }`;
}

/** The table definition (sets with elements, chain with rules). */
export function renderNftTable(rs: NodeRuleset, t: NftTables = buildNftTables(rs)): string {
  const lines = [`table ${NFT_FAMILY} ${NFT_TABLE} {`, `  comment "${TABLE_COMMENT}"`];
  lines.push(...COUNTER_LINES);
  for (const s of t.sets) lines.push(setLine(s, true));
  for (const c of nftChains(t)) {
    lines.push(`  chain ${c.name} {`);
    if (c.head) lines.push(`    ${c.head}`);
    for (const r of c.rules) lines.push(`    ${r}`);
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** A complete `nft -f` script that creates or recreates the picket table atomically. */
export function renderNft(rs: NodeRuleset): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${renderNftTable(rs)}`;
}

/**
 * Replaces the contents of an existing picket table without deleting the table or its base
 * chain, in one transaction: flush the rules, drop the old sets, recreate the sets with
 * their elements, add the rules. Deleting the table instead briefly drops the namespace's
 * last conntrack user, and SYNs were measured lost during such replaces; flushing and
 * refilling large interval sets instead was measured 7x slower (docs/enforcement.md).
 */
export function renderNftInPlace(rs: NodeRuleset, existing: { sets: string[]; chains: string[] }): string {
  const t = buildNftTables(rs);
  const lines: string[] = [];
  const chains = nftChains(t);
  const keep = new Set(chains.map((c) => c.name));
  const had = new Set(existing.chains);
  // Regular chains of the new ruleset are flushed too, made first if missing (`add chain` of
  // an existing chain is a no-op): a caller that only knows the base chains (bench/apply.ts's
  // floor script) then neither duplicates their rules nor hits a set they still reference.
  for (const c of chains) if (!c.head && !had.has(c.name)) lines.push(`add chain ${NFT_FAMILY} ${NFT_TABLE} ${c.name}`);
  for (const c of new Set([...existing.chains, ...chains.filter((x) => !x.head).map((x) => x.name)])) lines.push(`flush chain ${NFT_FAMILY} ${NFT_TABLE} ${c}`);
  // Sets (the verdict maps among them) go before chains: the kernel refuses to delete a
  // chain a map element still jumps to, or a set a rule still references.
  for (const name of existing.sets) lines.push(`delete set ${NFT_FAMILY} ${NFT_TABLE} ${name}`);
  // Base chains the new ruleset still has stay (their hooks never go away); others go.
  for (const c of existing.chains) if (!keep.has(c)) lines.push(`delete chain ${NFT_FAMILY} ${NFT_TABLE} ${c}`);
  lines.push(`table ${NFT_FAMILY} ${NFT_TABLE} {`);
  // Declaring a named counter that exists keeps its value: drop counts survive this replace.
  lines.push(...COUNTER_LINES);
  for (const s of t.sets) lines.push(setLine(s, true));
  for (const c of chains) lines.push(`  chain ${c.name} { ${c.head} }`);
  lines.push('}');
  for (const c of chains) for (const r of c.rules) lines.push(`add rule ${NFT_FAMILY} ${NFT_TABLE} ${c.name} ${r}`);
  return lines.join('\n') + '\n';
}

/** Set names the table holds for a ruleset (what an in-place replace must account for). */
export function nftSetNames(rs: NodeRuleset): string[] {
  return buildNftTables(rs).sets.map((s) => s.name);
}

/** Same rules and set declarations: the change can be element operations only. */
export function sameShape(a: NodeRuleset, b: NodeRuleset): boolean {
  const shape = (t: NftTables) => JSON.stringify([t.rules, t.wouldDrop, t.chains, t.sets.map((s) => [s.name, s.type, s.interval !== false, s.map === true]), t.output ?? null, t.forward ?? null]);
  return shape(buildNftTables(a)) === shape(buildNftTables(b));
}

/** An element's key: without its comment (the origin element) or its verdict (map elements). */
const elementKey = (e: string) => e.replace(/ comment ".*"$/, '').replace(/ : .*$/, '');

/**
 * Element-level difference between two rulesets of the same shape, as one nft script (one
 * transaction): deletions first, so interval sets never hold overlapping elements.
 * Empty string when nothing differs.
 */
export function renderNftDelta(from: NodeRuleset, to: NodeRuleset): string {
  const before = new Map(buildNftTables(from).sets.map((s) => [s.name, s.elements]));
  const dels: string[] = [], adds: string[] = [];
  for (const s of buildNftTables(to).sets) {
    const { removed, added } = diffElements(before.get(s.name) ?? [], s.elements);
    // An element is deleted by its key alone (the origin element carries a comment).
    if (removed.length) dels.push(`delete element ${NFT_FAMILY} ${NFT_TABLE} ${s.name} { ${removed.map(elementKey).join(', ')} }`);
    if (added.length) adds.push(`add element ${NFT_FAMILY} ${NFT_TABLE} ${s.name} { ${added.join(', ')} }`);
  }
  const lines = [...dels, ...adds];
  return lines.length ? lines.join('\n') + '\n' : '';
}
