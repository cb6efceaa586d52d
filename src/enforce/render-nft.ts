/**
 * Renders a compiled ruleset as one nftables `table inet picket`, written so that a single
 * `nft -f` replaces it atomically: `table …; delete table …; table … {…}` creates the table
 * if missing, deletes it and recreates it in one transaction, so there is never a moment
 * without rules and other tables (Docker's, the distribution's) are never touched.
 */
import { formatPrefix, type Prefix } from '../policy/ip.js';
import type { AddressSet, CompiledRule, NodeRuleset } from '../policy/compile.js';

export const NFT_TABLE = 'picket';
export const NFT_FAMILY = 'inet';

function portsExpr(r: CompiledRule): string {
  const items = r.ports.map((p) => (p.first === p.last ? `${p.first}` : `${p.first}-${p.last}`));
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

function setDef(name: string, family: 4 | 6, elements: Prefix[]): string {
  const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr';
  const els = elements.length ? ` elements = { ${elements.map(formatPrefix).join(', ')} }` : '';
  return `  set ${name}_v${family} { type ${type}; flags interval;${els} }`;
}

function ruleLines(r: CompiledRule): string[] {
  const comment = ` comment "${r.kind}:${r.name}"`;
  const l4 = r.proto === 'icmp' ? null : `${r.proto} dport ${portsExpr(r)}`;
  if (r.source === undefined) {
    return [r.proto === 'icmp' ? `meta l4proto { icmp, ipv6-icmp } accept${comment}` : `${l4} accept${comment}`];
  }
  return [4, 6].map((f) => {
    const match = `${f === 4 ? 'ip' : 'ip6'} saddr @${r.source}_v${f}`;
    const proto = r.proto === 'icmp' ? `meta l4proto ${f === 4 ? 'icmp' : 'ipv6-icmp'}` : l4;
    return `${match} ${proto} accept${comment}`;
  });
}

/** The body of the table (sets and chain), shared by the full and the check renderings. */
export function renderNftTable(rs: NodeRuleset): string {
  const sets: AddressSet[] = [rs.blocked, ...rs.sets];
  const lines: string[] = [];
  const origin = rs.policy ? `policy v${rs.policy.version} for ${rs.node?.name ?? '?'}` : 'baseline (no policy)';
  lines.push(`table ${NFT_FAMILY} ${NFT_TABLE} {`);
  lines.push(`  comment "picket: ${origin}"`);
  for (const s of sets) {
    lines.push(setDef(s.name, 4, s.v4));
    lines.push(setDef(s.name, 6, s.v6));
  }
  lines.push('  chain input {');
  lines.push('    type filter hook input priority filter; policy drop;');
  lines.push('    iif "lo" accept');
  lines.push('    ip saddr @blocked_v4 drop');
  lines.push('    ip6 saddr @blocked_v6 drop');
  lines.push('    ct state established,related accept');
  // IPv6 needs neighbour discovery to work at all; it is link-local and untracked.
  lines.push('    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-router-solicit, packet-too-big } accept');
  lines.push('    ct state invalid drop');
  for (const r of rs.rules) for (const l of ruleLines(r)) lines.push(`    ${l}`);
  lines.push('  }');
  lines.push('}');
  return lines.join('\n') + '\n';
}

/**
 * Replaces the contents of an existing picket table without deleting it: the base chain
 * and its hook stay registered (deleting the table briefly drops the netns's last
 * conntrack user, and measured SYNs were lost during such replaces), while rules and set
 * elements are swapped in one transaction. `existing` names what the table holds now.
 */
export function renderNftInPlace(rs: NodeRuleset, existing: { sets: string[]; chains: string[] }): string {
  const sets: AddressSet[] = [rs.blocked, ...rs.sets];
  const declared = new Set(sets.flatMap((s) => [`${s.name}_v4`, `${s.name}_v6`]));
  const lines: string[] = [];
  lines.push(`table ${NFT_FAMILY} ${NFT_TABLE} {`);
  for (const s of sets) {
    lines.push(`  set ${s.name}_v4 { type ipv4_addr; flags interval; }`);
    lines.push(`  set ${s.name}_v6 { type ipv6_addr; flags interval; }`);
  }
  lines.push('  chain input { type filter hook input priority filter; policy drop; }');
  lines.push('}');
  for (const c of existing.chains) lines.push(`flush chain ${NFT_FAMILY} ${NFT_TABLE} ${c}`);
  for (const c of existing.chains) if (c !== 'input') lines.push(`delete chain ${NFT_FAMILY} ${NFT_TABLE} ${c}`);
  for (const name of declared) lines.push(`flush set ${NFT_FAMILY} ${NFT_TABLE} ${name}`);
  for (const name of existing.sets) if (!declared.has(name)) lines.push(`delete set ${NFT_FAMILY} ${NFT_TABLE} ${name}`);
  for (const s of sets) {
    for (const [fam, list] of [[4, s.v4], [6, s.v6]] as const) {
      if (list.length) lines.push(`add element ${NFT_FAMILY} ${NFT_TABLE} ${s.name}_v${fam} { ${list.map(formatPrefix).join(', ')} }`);
    }
  }
  const body = renderNftTable(rs).split('\n');
  const start = body.findIndex((l) => l.includes('type filter hook input'));
  for (const l of body.slice(start + 1)) {
    const t = l.trim();
    if (t === '}' || t === '') continue;
    lines.push(`add rule ${NFT_FAMILY} ${NFT_TABLE} input ${t}`);
  }
  return lines.join('\n') + '\n';
}

/** A complete `nft -f` script: atomic replace of the picket table only. */
export function renderNft(rs: NodeRuleset): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${renderNftTable(rs)}`;
}

/** Same rules and sets, only set elements differ: the change can be element operations. */
export function sameShape(a: NodeRuleset, b: NodeRuleset): boolean {
  const rules = (rs: NodeRuleset) => JSON.stringify(rs.rules.map((r) => [r.kind, r.name, r.proto, r.ports, r.source ?? null]));
  const sets = (rs: NodeRuleset) => JSON.stringify([rs.blocked, ...rs.sets].map((s) => s.name));
  return rules(a) === rules(b) && sets(a) === sets(b);
}

/**
 * The element-level difference between two rulesets of the same shape, as one nft script
 * (one transaction): deletions first, so interval sets never hold overlapping elements.
 * Empty string when nothing differs.
 */
export function renderNftDelta(from: NodeRuleset, to: NodeRuleset): string {
  const dels: string[] = [], adds: string[] = [];
  const before = new Map([from.blocked, ...from.sets].map((s) => [s.name, s]));
  for (const s of [to.blocked, ...to.sets]) {
    const old = before.get(s.name)!;
    for (const fam of [4, 6] as const) {
      const o = new Set((fam === 4 ? old.v4 : old.v6).map(formatPrefix));
      const n = new Set((fam === 4 ? s.v4 : s.v6).map(formatPrefix));
      const removed = [...o].filter((x) => !n.has(x));
      const added = [...n].filter((x) => !o.has(x));
      if (removed.length) dels.push(`delete element ${NFT_FAMILY} ${NFT_TABLE} ${s.name}_v${fam} { ${removed.join(', ')} }`);
      if (added.length) adds.push(`add element ${NFT_FAMILY} ${NFT_TABLE} ${s.name}_v${fam} { ${added.join(', ')} }`);
    }
  }
  const lines = [...dels, ...adds];
  return lines.length ? lines.join('\n') + '\n' : '';
}
