/**
 * Renders a compiled ruleset for hosts without nftables: iptables-restore / ip6tables-restore
 * input for a dedicated PICKET-INPUT chain (sets expanded rule by rule), same semantics as
 * the nft rendering. The backend hooks the chain into INPUT with --noflush.
 */
import { formatPrefix, type Prefix } from '../policy/ip.js';
import type { CompiledRule, NodeRuleset } from '../policy/compile.js';
import { LOG_PREFIX, logRate, type DropReason } from './nft-tables.js';

export const IPT_CHAIN = 'PICKET-INPUT';

/**
 * One chain per drop reason, ending in the rule whose counter is that reason's count. They
 * are not part of the PICKET-INPUT restore (iptables-restore --noflush flushes every user
 * chain it declares): a policy apply leaves them, and their counters, alone. They are
 * rewritten only when what they do changes (the log rate), see renderIptablesDropChains.
 */
export const IPT_DROP_CHAINS: Record<DropReason, string> = {
  'default-deny': 'PICKET-DROP',
  blocked: 'PICKET-BLOCKED',
  invalid: 'PICKET-INVALID',
  'would-drop': 'PICKET-WOULD-DROP',
};

/** iptables-restore input (re)creating the drop chains: resets their counters. */
export function renderIptablesDropChains(rs: NodeRuleset): string {
  const rate = logRate(rs);
  const log = (prefix: string) => `-m limit --limit ${rate} -j LOG --log-prefix "${prefix}"`;
  const c = IPT_DROP_CHAINS;
  const out = ['*filter', ...Object.values(c).map((n) => `:${n} - [0:0]`)];
  if (rs.log?.drops) out.push(`-A ${c['default-deny']} ${log(LOG_PREFIX.drop)}`);
  out.push(`-A ${c['default-deny']} -m comment --comment "picket-drop:default-deny" -j DROP`);
  out.push(`-A ${c.blocked} -m comment --comment "picket-drop:blocked" -j DROP`);
  out.push(`-A ${c.invalid} -m comment --comment "picket-drop:invalid" -j DROP`);
  out.push(`-A ${c['would-drop']} ${log(LOG_PREFIX.wouldDrop)}`);
  out.push(`-A ${c['would-drop']} -m comment --comment "picket-drop:would-drop" -j ACCEPT`);
  out.push('COMMIT');
  return out.join('\n') + '\n';
}
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
  // Removed nodes stay dropped in monitor mode too: revocation is not a policy on trial.
  for (const p of elems(rs.blocked)) add(`-s ${formatPrefix(p)} -j ${IPT_DROP_CHAINS.blocked}`);
  add('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  if (family === 6) {
    for (const t of ['135', '136', '134', '133', '2']) add(`-p ipv6-icmp --icmpv6-type ${t} -j ACCEPT`);
  }
  add(`-m conntrack --ctstate INVALID -j ${IPT_DROP_CHAINS.invalid}`);
  // Enforced rules first, then monitor rules: a packet reaches a monitor rule only when no
  // enforced rule admits it, and it then goes to the would-drop chain (log, count, accept).
  const ordered = [...rs.rules.filter((r) => !r.monitor), ...rs.rules.filter((r) => r.monitor)];
  for (const r of ordered) {
    const comment = `-m comment --comment "${r.kind}:${r.name}${r.monitor ? ' (monitor)' : ''}"`;
    const verdict = r.monitor ? IPT_DROP_CHAINS['would-drop'] : 'ACCEPT';
    const sources = r.source === undefined ? [undefined] : elems(sets.get(r.source)).map(formatPrefix);
    for (const src of sources) {
      const s = src ? `-s ${src} ` : '';
      if (r.proto === 'icmp') add(`${s}-p ${family === 4 ? 'icmp' : 'ipv6-icmp'} ${comment} -j ${verdict}`);
      else for (const chunk of portChunks(r)) add(`${s}-p ${r.proto} -m multiport --dports ${chunk} ${comment} -j ${verdict}`);
    }
  }
  add(`-j ${rs.monitor ? IPT_DROP_CHAINS['would-drop'] : IPT_DROP_CHAINS['default-deny']}`);
  out.push('COMMIT');
  return out.join('\n') + '\n';
}
