/**
 * Renders a compiled ruleset for hosts without nftables: iptables-restore / ip6tables-restore
 * input for a dedicated PICKET-INPUT chain (sets expanded rule by rule), same semantics as
 * the nft rendering. The backend hooks the chain into INPUT with --noflush.
 */
import { formatPrefix, type Prefix } from '../policy/ip.js';
import type { CompiledRule, NodeRuleset } from '../policy/compile.js';

export const IPT_CHAIN = 'PICKET-INPUT';
const MULTIPORT_MAX = 15; // the kernel's multiport match takes at most 15 ports

function portChunks(r: CompiledRule): string[] {
  const items = r.ports.map((p) => (p.first === p.last ? `${p.first}` : `${p.first}:${p.last}`));
  const chunks: string[] = [];
  let cur: string[] = [], weight = 0;
  for (const it of items) {
    const w = it.includes(':') ? 2 : 1;
    if (weight + w > MULTIPORT_MAX) { chunks.push(cur.join(',')); cur = []; weight = 0; }
    cur.push(it);
    weight += w;
  }
  if (cur.length) chunks.push(cur.join(','));
  return chunks;
}

export function renderIptables(rs: NodeRuleset, family: 4 | 6): string {
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  const elems = (list: { v4: Prefix[]; v6: Prefix[] } | undefined) => (list ? (family === 4 ? list.v4 : list.v6) : []);
  const out: string[] = ['*filter', `:${IPT_CHAIN} - [0:0]`, `-F ${IPT_CHAIN}`];
  const add = (s: string) => out.push(`-A ${IPT_CHAIN} ${s}`);
  add('-i lo -j ACCEPT');
  for (const p of elems(rs.blocked)) add(`-s ${formatPrefix(p)} -j DROP`);
  add('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  if (family === 6) {
    for (const t of ['135', '136', '134', '133', '2']) add(`-p ipv6-icmp --icmpv6-type ${t} -j ACCEPT`);
  }
  add('-m conntrack --ctstate INVALID -j DROP');
  for (const r of rs.rules) {
    const comment = `-m comment --comment "${r.kind}:${r.name}"`;
    const sources = r.source === undefined ? [undefined] : elems(sets.get(r.source)).map(formatPrefix);
    for (const src of sources) {
      const s = src ? `-s ${src} ` : '';
      if (r.proto === 'icmp') add(`${s}-p ${family === 4 ? 'icmp' : 'ipv6-icmp'} ${comment} -j ACCEPT`);
      else for (const chunk of portChunks(r)) add(`${s}-p ${r.proto} -m multiport --dports ${chunk} ${comment} -j ACCEPT`);
    }
  }
  add('-j DROP');
  out.push('COMMIT');
  return out.join('\n') + '\n';
}
