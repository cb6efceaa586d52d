/**
 * Renders a compiled ruleset for hosts without nftables: iptables-restore / ip6tables-restore
 * input for a dedicated PICKET-INPUT chain (sets expanded rule by rule), same semantics as
 * the nft rendering. The backend hooks the chain into INPUT with --noflush. PICKET-OUTPUT
 * (settings.egress: deny) and PICKET-FORWARD (settings.forward: filter) are always declared
 * and flushed, filled only when the policy asks, and hooked by the backend only then: an
 * empty chain nobody jumps to does nothing.
 */
import { formatPrefix, type Prefix } from '../policy/ip.js';
import type { CompiledRule, NodeRuleset } from '../policy/compile.js';
import { LOG_PREFIX, logRate, type DropReason } from './nft-tables.js';

export const IPT_CHAIN = 'PICKET-INPUT';
export const IPT_OUTPUT_CHAIN = 'PICKET-OUTPUT';
export const IPT_FORWARD_CHAIN = 'PICKET-FORWARD';

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
  'egress-deny': 'PICKET-EGRESS-DROP',
  'forward-deny': 'PICKET-FORWARD-DROP',
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
  out.push(`-A ${c['egress-deny']} -m comment --comment "picket-drop:egress-deny" -j DROP`);
  out.push(`-A ${c['forward-deny']} -m comment --comment "picket-drop:forward-deny" -j DROP`);
  out.push(`-A ${c['would-drop']} ${log(LOG_PREFIX.wouldDrop)}`);
  out.push(`-A ${c['would-drop']} -m comment --comment "picket-drop:would-drop" -j ACCEPT`);
  out.push('COMMIT');
  return out.join('\n') + '\n';
}
const MULTIPORT_MAX = 15; // the kernel's multiport match takes at most 15 ports

function portChunks(r: Pick<CompiledRule, 'ports'>): string[] {
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
  out.push(...outputChain(rs, family, elems), ...forwardChain(rs, family, elems));
  out.push('COMMIT');
  return out.join('\n') + '\n';
}

type Elems = (list: { v4: Prefix[]; v6: Prefix[] } | undefined) => Prefix[];

/** PICKET-OUTPUT: replies, loopback, neighbour discovery, mesh, failsafe replies, egress rules, then DROP. */
function outputChain(rs: NodeRuleset, family: 4 | 6, elems: Elems): string[] {
  const out = [`:${IPT_OUTPUT_CHAIN} - [0:0]`, `-F ${IPT_OUTPUT_CHAIN}`];
  if (!rs.output) return out;
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  const add = (s: string) => out.push(`-A ${IPT_OUTPUT_CHAIN} ${s}`);
  add('-o lo -j ACCEPT');
  add('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  if (family === 6) for (const t of ['135', '136', '133', '143', '2']) add(`-p ipv6-icmp --icmpv6-type ${t} -j ACCEPT`);
  for (const r of rs.output.rules) {
    const comment = `-m comment --comment "egress ${r.kind}:${r.name}"`;
    const dests = r.dest === undefined ? [undefined] : elems(sets.get(r.dest)).map(formatPrefix);
    // The failsafe rule passes SSH replies: its port is the source port.
    const ports = r.kind === 'failsafe' ? '--sports' : '--dports';
    for (const dst of dests) {
      const d = dst ? `-d ${dst} ` : '';
      if (r.proto === 'icmp') add(`${d}-p ${family === 4 ? 'icmp' : 'ipv6-icmp'} ${comment} -j ACCEPT`);
      else for (const chunk of portChunks(r)) add(`${d}-p ${r.proto} -m multiport ${ports} ${chunk} ${comment} -j ACCEPT`);
    }
  }
  add(`-j ${rs.monitor ? IPT_DROP_CHAINS['would-drop'] : IPT_DROP_CHAINS['egress-deny']}`);
  return out;
}

/**
 * PICKET-FORWARD: connections the host DNAT-ed (published container ports) must match an
 * input rule on their original destination port (--ctorigdstport: the published host port;
 * the packet's own port is already the container's). Allowed ones RETURN rather than ACCEPT,
 * so Docker's own FORWARD chains still judge them: picket only ever adds drops here.
 */
function forwardChain(rs: NodeRuleset, family: 4 | 6, elems: Elems): string[] {
  const out = [`:${IPT_FORWARD_CHAIN} - [0:0]`, `-F ${IPT_FORWARD_CHAIN}`];
  if (!rs.forward) return out;
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  const add = (s: string) => out.push(`-A ${IPT_FORWARD_CHAIN} ${s}`);
  add('-m conntrack ! --ctstate DNAT -j RETURN');
  for (const p of elems(rs.blocked)) add(`-s ${formatPrefix(p)} -j ${IPT_DROP_CHAINS.blocked}`);
  add('-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN');
  add(`-m conntrack --ctstate INVALID -j ${IPT_DROP_CHAINS.invalid}`);
  for (const r of rs.rules) {
    if ((r.kind !== 'rule' && r.kind !== 'exception') || r.proto === 'icmp') continue;
    const comment = `-m comment --comment "published ${r.kind}:${r.name}"`;
    const sources = r.source === undefined ? [undefined] : elems(sets.get(r.source)).map(formatPrefix);
    for (const src of sources) {
      const s = src ? `-s ${src} ` : '';
      for (const p of r.ports) add(`${s}-p ${r.proto} -m conntrack --ctorigdstport ${p.first === p.last ? p.first : `${p.first}:${p.last}`} ${comment} -j RETURN`);
    }
  }
  add(`-j ${IPT_DROP_CHAINS['forward-deny']}`);
  return out;
}
