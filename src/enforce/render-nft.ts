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

/** A complete `nft -f` script: atomic replace of the picket table only. */
export function renderNft(rs: NodeRuleset): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${renderNftTable(rs)}`;
}
