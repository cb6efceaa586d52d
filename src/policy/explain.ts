/**
 * Explain (pure): walks the compiled ruleset in the order the kernel does and says which
 * rule (or the default) decides a new connection: inbound (`{ from, proto, port }`) or, with
 * `direction: 'egress'`, outbound (`{ direction: 'egress', to, proto, port }`). Same
 * structure as render.
 */
import { containsIp, parseIp, type Prefix } from './ip.js';
import type { AddressSet, CompiledRule, NodeRuleset } from './compile.js';
import type { Proto } from './model.js';

export type Verdict =
  | { action: 'ALLOW'; reason: 'loopback' }
  | { action: 'ALLOW'; reason: 'rule'; rule: CompiledRule }
  | { action: 'ALLOW'; reason: 'egress-allow' }
  /**
   * Monitor mode: enforcement would drop it, the kernel accepts it and counts a would-drop.
   * `rule` is the monitor rule that alone admits it; absent, the policy's settings.mode: monitor
   * turned the default deny into a would-drop.
   */
  | { action: 'ALLOW'; reason: 'would-drop'; rule?: CompiledRule }
  | { action: 'DROP'; reason: 'blocked' }
  | { action: 'DROP'; reason: 'default' };

export interface IngressProbe {
  direction?: 'ingress';
  from: string;
  port?: number;
  proto: Proto;
}

export interface EgressProbe {
  direction: 'egress';
  /** The destination address this node connects to. */
  to: string;
  port?: number;
  proto: Proto;
}

export type Probe = IngressProbe | EgressProbe;

function inSet(set: AddressSet | undefined, family: 4 | 6, addr: bigint): boolean {
  if (!set) return false;
  const list: Prefix[] = family === 4 ? set.v4 : set.v6;
  return list.some((p) => containsIp(p, family, addr));
}

const portMatches = (r: CompiledRule, port: number | undefined) => r.proto === 'icmp' || r.ports.some((p) => port !== undefined && p.first <= port && port <= p.last);

export function explain(rs: NodeRuleset, probe: Probe): Verdict {
  if (probe.direction === 'egress') return explainEgress(rs, probe);
  const ip = parseIp(probe.from);
  if (!ip) throw new Error(`${probe.from} is not an IP address`);
  const loop = ip.family === 4 ? ip.addr >> 24n === 127n : ip.addr === 1n;
  if (loop) return { action: 'ALLOW', reason: 'loopback' };
  if (inSet(rs.blocked, ip.family, ip.addr)) return { action: 'DROP', reason: 'blocked' };
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  const matches = (r: CompiledRule) => r.proto === probe.proto && portMatches(r, probe.port)
    && (r.source === undefined || inSet(sets.get(r.source), ip.family, ip.addr));
  // The kernel matches every enforced rule before any monitor rule (render-nft, render-iptables).
  const enforced = rs.rules.find((r) => !r.monitor && matches(r));
  if (enforced) return { action: 'ALLOW', reason: 'rule', rule: enforced };
  const monitored = rs.rules.find((r) => r.monitor && matches(r));
  if (monitored) return { action: 'ALLOW', reason: 'would-drop', rule: monitored };
  if (rs.monitor) return { action: 'ALLOW', reason: 'would-drop' };
  return { action: 'DROP', reason: 'default' };
}

/** A new outbound connection from this node to `probe.to` (what the output hook decides). */
function explainEgress(rs: NodeRuleset, probe: EgressProbe): Verdict {
  const ip = parseIp(probe.to);
  if (!ip) throw new Error(`${probe.to} is not an IP address`);
  const loop = ip.family === 4 ? ip.addr >> 24n === 127n : ip.addr === 1n;
  if (loop) return { action: 'ALLOW', reason: 'loopback' };
  if (!rs.output) return { action: 'ALLOW', reason: 'egress-allow' };
  const sets = new Map(rs.sets.map((s) => [s.name, s]));
  for (const r of rs.output.rules) {
    // The failsafe output rule passes SSH replies (source port), never a new connection.
    if (r.kind === 'failsafe' || r.proto !== probe.proto || !portMatches(r, probe.port)) continue;
    if (r.dest !== undefined && !inSet(sets.get(r.dest), ip.family, ip.addr)) continue;
    return { action: 'ALLOW', reason: 'rule', rule: r };
  }
  if (rs.monitor) return { action: 'ALLOW', reason: 'would-drop' };
  return { action: 'DROP', reason: 'default' };
}

/**
 * The JSON form (`policy explain --json`, GET /v1/explain). A would-drop says so in `monitor`:
 * the kernel accepts it (`action: ALLOW`), enforcing the policy would not.
 */
export function verdictJson(v: Verdict): { action: Verdict['action']; reason: Verdict['reason']; rule?: { kind: string; name: string }; monitor?: { wouldDrop: true; by: 'rule' | 'policy' } } {
  return {
    action: v.action,
    reason: v.reason,
    ...((v.reason === 'rule' || v.reason === 'would-drop') && v.rule ? { rule: { kind: v.rule.kind, name: v.rule.name } } : {}),
    ...(v.reason === 'would-drop' ? { monitor: { wouldDrop: true as const, by: v.rule ? 'rule' as const : 'policy' as const } } : {}),
  };
}

export function describeVerdict(v: Verdict): string {
  switch (v.reason) {
    case 'loopback': return 'ALLOW (loopback)';
    case 'egress-allow': return 'ALLOW (settings.egress: allow: outbound traffic is not filtered)';
    case 'blocked': return 'DROP (source is a node removed from the policy: blocked)';
    case 'default': return 'DROP (default deny: no rule allows it)';
    case 'would-drop': return v.rule
      ? `DROP (monitor: would drop, accepted): only rule ${v.rule.name} admits it, and that rule is in monitor mode`
      : 'DROP (monitor: would drop, accepted): no rule allows it, and the policy is in monitor mode (settings.mode)';
    case 'rule': {
      const r = v.rule;
      const what = r.kind === 'exception' ? `exception ${r.name} (expires ${new Date(r.expires ?? 0).toISOString()})` : r.kind === 'rule' ? `rule ${r.name}` : r.kind === 'mesh' ? (r.dest ? 'mesh port (to mesh peers)' : 'mesh port (mesh peers)') : 'failsafe SSH';
      return `ALLOW by ${what}`;
    }
  }
}
