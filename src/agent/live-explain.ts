/**
 * Live explain: `GET /v1/explain?from=IP&port=N&proto=tcp` (or `to=IP` for a connection this
 * node opens) answered against the ruleset the
 * enforcer has in force right now — exceptions that have not closed yet, the baseline when
 * that is what runs, the blocked set — by the same explain() that `policy explain` and the
 * `tests:` block use. The query is operator input: each field is parsed strictly (a port is
 * digits, not `0x50` or `80abc`) and a bad one is a 400 with one line, never a throw.
 */
import type { EnforcementStatus } from '../node/ports.js';
import type { NodeRuleset } from '../policy/compile.js';
import { describeVerdict, explain, verdictJson } from '../policy/explain.js';
import { parseIp } from '../policy/ip.js';
import { PROTOS, type Proto } from '../policy/model.js';

/** Longer than any IPv6 text (45): a longer `from` is not an address and is not echoed. */
const MAX_FROM = 64;

export interface LiveExplainJson {
  action: 'ALLOW' | 'DROP';
  reason: string;
  rule?: { kind: string; name: string; expires?: string };
  /** Monitor mode: the kernel accepts it (action ALLOW), enforcing the policy would drop it. */
  monitor?: { wouldDrop: true; by: 'rule' | 'policy' };
  /** One line, as `policy explain` prints it. */
  text: string;
  direction: 'ingress' | 'egress';
  from?: string;
  to?: string;
  proto: Proto;
  port?: number;
  /** What the verdict was read from: the ruleset in force now. */
  enforcing: {
    state: string;
    /** True when the baseline is in force (no policy yet, expired with onExpiry: baseline, not in the policy…). */
    baseline: boolean;
    policyVersion: number | null;
    node: string | null;
    rulesetHash: string | null;
    reason?: string;
  };
}

export type Reply = { code: number; body: LiveExplainJson | { error: string } };

const bad = (error: string): Reply => ({ code: 400, body: { error } });

export function liveExplain(q: URLSearchParams, rs: NodeRuleset | null, status: EnforcementStatus): Reply {
  // `from`: a connection arriving here (ingress); `to`: one this node opens (egress).
  const fromQ = q.get('from'), toQ = q.get('to');
  if ((fromQ === null) === (toQ === null)) return bad('give exactly one of from (inbound) or to (outbound), an IP address');
  const field = fromQ !== null ? 'from' : 'to';
  const addr = fromQ ?? toQ ?? '';
  const protoText = q.get('proto') ?? 'tcp';
  const portText = q.get('port');
  if (addr.length > MAX_FROM || !parseIp(addr)) return bad(`${field} ${addr.length > MAX_FROM ? '(too long)' : JSON.stringify(addr)} is not an IP address`);
  if (!(PROTOS as readonly string[]).includes(protoText)) return bad('proto must be tcp, udp or icmp');
  const proto = protoText as Proto;
  let port: number | undefined;
  if (portText !== null && portText !== '') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return bad('port must be a number 1-65535');
    port = Number(portText);
  }
  if (proto === 'icmp' && port !== undefined) return bad('icmp has no port');
  if (proto !== 'icmp' && port === undefined) return bad(`port is required for ${proto}`);
  if (!rs) return { code: 503, body: { error: 'nothing is enforced yet (the agent is starting)' } };
  const p = port !== undefined ? { port } : {};
  const v = field === 'to' ? explain(rs, { direction: 'egress', to: addr, proto, ...p }) : explain(rs, { from: addr, proto, ...p });
  return {
    code: 200,
    body: {
      action: v.action,
      reason: v.reason,
      ...(v.reason === 'rule' ? { rule: { kind: v.rule.kind, name: v.rule.name, ...(v.rule.expires ? { expires: new Date(v.rule.expires).toISOString() } : {}) } } : {}),
      ...(v.reason === 'would-drop' ? { monitor: verdictJson(v).monitor!, ...(v.rule ? { rule: { kind: v.rule.kind, name: v.rule.name } } : {}) } : {}),
      text: describeVerdict(v),
      direction: field === 'to' ? 'egress' : 'ingress', [field]: addr, proto, ...p,
      enforcing: {
        state: status.state,
        baseline: rs.policy === null,
        policyVersion: rs.policy?.version ?? null,
        node: rs.node?.name ?? null,
        rulesetHash: status.rulesetHash,
        ...(status.reason ? { reason: status.reason } : {}),
      },
    },
  };
}
