/**
 * Monitor mode in the policy model, the compiler, explain and both renderers (issue 15 #3),
 * and the drop paths' named counters (#2). Hostile inputs first: a peer's signed payload,
 * a policy file and an agent config can all reach these fields.
 */
import { describe, expect, it } from 'vitest';
import { pb } from '../../src/wire/proto.js';
import { decodePolicy, encodePolicy, type Policy, type Rule } from '../../src/policy/model.js';
import { parsePolicyYaml, policyToAuthoring } from '../../src/policy/authoring.js';
import { compile, rulesetHash } from '../../src/policy/compile.js';
import { describeVerdict, explain } from '../../src/policy/explain.js';
import { renderNft, renderNftInPlace } from '../../src/enforce/render-nft.js';
import { renderIptables, renderIptablesDropChains } from '../../src/enforce/render-iptables.js';
import { parseConfigText } from '../../src/agent/config.js';
import { stringify } from 'yaml';
import { NOW, PEER, policy } from '../helpers/trust.js';

const web: Rule = { name: 'https', to: ['role:web'], from: ['cidr:10.9.0.0/16'], proto: 'tcp', ports: [{ first: 443, last: 443 }] };
const legacy: Rule = { name: 'legacy-https', to: ['role:web'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }, { first: 8443, last: 8443 }], mode: 'monitor' };
const withMonitorRule = () => policy(3, { rules: [legacy, web] });
const opts = { now: NOW, meshPorts: [7946] };

/** A signed payload built field by field, as a hostile peer would. */
function rawPolicy(mutate: (m: pb.policy.v1.IPolicy) => void) {
  const obj = pb.policy.v1.Policy.decode(encodePolicy(policy(2)));
  mutate(obj);
  return decodePolicy(pb.policy.v1.Policy.encode(obj).finish());
}

describe('monitor mode: hostile inputs', () => {
  it('rejects a signed policy whose rule carries a mode other than monitor', () => {
    const r = rawPolicy((m) => { m.rules![0]!.mode = 'allow-all'; });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/rules\[0\]\.mode: "allow-all" is not enforce or monitor/);
  });
  it('rejects a signed policy putting an exception in monitor mode', () => {
    const r = rawPolicy((m) => { m.exceptions = [{ rule: { name: 'dbg', to: ['any'], from: ['any'], proto: 'tcp', ports: [{ first: 8080, last: 8080 }], mode: 'monitor' }, reason: 'INC-1', expiresMs: NOW + 1000 }]; });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/exceptions\[0\]\.mode: an exception cannot be in monitor mode/);
  });
  it('rejects a signed policy whose settings.mode is neither enforce nor monitor', () => {
    const r = rawPolicy((m) => { m.settings = { onExpiry: 'keep', mode: 'open' }; });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/settings\.mode: "open" is not enforce or monitor/);
  });
  it('rejects a mode too long to be a mode before copying it', () => {
    const r = rawPolicy((m) => { m.settings = { onExpiry: 'keep', mode: 'x'.repeat(100_000) }; });
    expect(r.ok).toBe(false);
  });
  it('rejects mode on an exception in the policy file, on its line', () => {
    const yaml = `meshId: prod\nversion: 1\nexpires: 2099-01-01\nnodes: [{ name: a, peerId: ${PEER(1)}, addresses: [10.0.0.1], roles: [web] }]\nexceptions:\n  - name: dbg\n    to: any\n    from: any\n    proto: tcp\n    ports: [8080]\n    reason: INC-1\n    expires: 2098-01-01\n    mode: monitor\n`;
    const r = parsePolicyYaml(yaml, NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([expect.objectContaining({ line: 13, message: 'unknown field mode' })]);
  });
  it('rejects an agent config whose log rate would smuggle text into the ruleset', () => {
    const base = 'meshId: m\ndataDir: ./d\nidentityKey: ./n.key\ntrustedRoot: ./root.json\n';
    expect(() => parseConfigText(`${base}enforcement: { logDrops: { rate: '10/second accept' } }\n`, 'agent.yaml')).toThrow(/agent\.yaml:5: enforcement\.logDrops\.rate: must be N\/second/);
    expect(() => parseConfigText(`${base}enforcement: { logDrops: { rate: '0/second' } }\n`, 'agent.yaml')).toThrow(/logDrops\.rate/);
    expect(parseConfigText(`${base}enforcement: { logDrops: { rate: 20/minute } }\n`, 'agent.yaml').enforcement.logDrops).toEqual({ rate: '20/minute' });
    expect(parseConfigText(base, 'agent.yaml').enforcement.logDrops).toBeNull();
  });
  it('refuses to render a log rate that is not N/unit, whatever handed it in', () => {
    const rs = { ...compile(policy(1), 'web-1', opts), log: { drops: true, rate: '1/second accept; flush ruleset' } };
    expect(() => renderNft(rs)).toThrow(/log rate/);
    expect(() => renderIptablesDropChains(rs)).toThrow(/log rate/);
  });
});

describe('monitor mode: model, compile, explain', () => {
  it('round-trips rule and policy modes through YAML, the signed encoding and the authoring form', () => {
    const p: Policy = { ...withMonitorRule(), settings: { onExpiry: 'keep', mode: 'monitor' } };
    const d = decodePolicy(encodePolicy(p));
    expect(d.ok && d.policy.rules[0]!.mode).toBe('monitor');
    expect(d.ok && d.policy.rules[1]!.mode).toBeUndefined();
    expect(d.ok && d.policy.settings.mode).toBe('monitor');
    const again = parsePolicyYaml(stringify(policyToAuthoring(p)), NOW);
    expect(again.ok && again.policy.rules.map((r) => r.mode ?? 'enforce')).toEqual(['monitor', 'enforce']);
    expect(again.ok && again.policy.settings.mode).toBe('monitor');
  });
  it('encodes a policy without monitor mode exactly as before (signatures of older policies still cover it)', () => {
    const p = policy(2);
    const plain = pb.policy.v1.Policy.encode({ ...pb.policy.v1.Policy.decode(encodePolicy(p)) }).finish();
    expect(Buffer.from(encodePolicy(p)).equals(Buffer.from(plain))).toBe(true);
    expect(Buffer.from(encodePolicy(p)).includes(Buffer.from('enforce'))).toBe(false);
  });
  it('changes the ruleset hash when a rule or the policy switches to monitor, and only then', () => {
    const base = rulesetHash(compile(policy(3, { rules: [{ ...legacy, mode: undefined }, web] }), 'web-1', opts));
    expect(rulesetHash(compile(withMonitorRule(), 'web-1', opts))).not.toBe(base);
    expect(rulesetHash(compile({ ...policy(3, { rules: [{ ...legacy, mode: undefined }, web] }), settings: { onExpiry: 'keep', mode: 'monitor' } }, 'web-1', opts))).not.toBe(base);
  });
  it('explains an enforced rule before a monitor rule written above it', () => {
    const rs = compile(withMonitorRule(), 'web-1', opts);
    const v = explain(rs, { from: '10.9.1.1', port: 443, proto: 'tcp' });
    expect(v).toMatchObject({ action: 'ALLOW', reason: 'rule', rule: { name: 'https' } });
  });
  it('explains what only a monitor rule admits as a would-drop that is accepted', () => {
    const rs = compile(withMonitorRule(), 'web-1', opts);
    const v = explain(rs, { from: '192.0.2.1', port: 8443, proto: 'tcp' });
    expect(v).toMatchObject({ action: 'ALLOW', reason: 'would-drop', rule: { name: 'legacy-https' } });
    expect(describeVerdict(v)).toMatch(/^DROP \(monitor: would drop, accepted\): only rule legacy-https admits it/);
    expect(explain(rs, { from: '192.0.2.1', port: 9999, proto: 'tcp' })).toEqual({ action: 'DROP', reason: 'default' });
  });
  it('explains the default deny of a policy in monitor mode as a would-drop, and a removed node as dropped', () => {
    const rs = compile({ ...policy(3), settings: { onExpiry: 'keep', mode: 'monitor' } }, 'web-1', { ...opts, blocked: ['10.0.3.3'] });
    const v = explain(rs, { from: '192.0.2.1', port: 9999, proto: 'tcp' });
    expect(v).toEqual({ action: 'ALLOW', reason: 'would-drop' });
    expect(describeVerdict(v)).toMatch(/^DROP \(monitor: would drop, accepted\): no rule allows it, and the policy is in monitor mode/);
    expect(explain(rs, { from: '10.0.3.3', port: 443, proto: 'tcp' })).toEqual({ action: 'DROP', reason: 'blocked' });
  });
});

describe('drop counters and monitor mode in the rendered rulesets', () => {
  it('gives every nft drop path a named counter, declared in both apply forms', () => {
    const rs = compile(policy(1), 'web-1', { ...opts, blocked: ['10.0.3.3'] });
    const full = renderNft(rs);
    for (const c of ['drop_default', 'drop_blocked', 'drop_invalid', 'would_drop']) expect(full).toContain(`counter ${c} { }`);
    expect(full).toContain('ip saddr @blocked_v4 counter name "drop_blocked" drop');
    expect(full).toContain('ct state invalid counter name "drop_invalid" drop');
    expect(full).toMatch(/counter name "drop_default" drop comment "default deny"\n {2}\}\n\}\n$/);
    expect(full).not.toContain('picket-drop ');
    const inPlace = renderNftInPlace(rs, { sets: [], chains: ['input', 'would_drop'] });
    expect(inPlace).toContain('counter drop_default { }');
    expect(inPlace).not.toMatch(/delete counter|reset counter/);
  });
  it('logs default-deny drops rate-limited only when asked, and would-drops always', () => {
    const quiet = renderNft(compile(policy(1), 'web-1', opts));
    expect(quiet).toContain('limit rate 10/second log prefix "picket-would-drop "');
    const loud = renderNft(compile(policy(1), 'web-1', { ...opts, log: { drops: true, rate: '3/minute' } }));
    expect(loud).toContain('limit rate 3/minute log prefix "picket-drop "');
    expect(loud).toContain('limit rate 3/minute log prefix "picket-would-drop "');
  });
  it('lowers monitor rules to their own sets, matched after every enforced rule', () => {
    const nft = renderNft(compile(withMonitorRule(), 'web-1', opts));
    expect(nft).toContain('set mon_open { type inet_proto . inet_service; flags interval; elements = { tcp . 443, tcp . 8443 } }');
    expect(nft).not.toMatch(/set open \{[^}]*elements/);
    const lines = nft.split('\n');
    const lastEnforced = lines.findIndex((l) => l.includes('@allow_v4 accept'));
    const firstMonitor = lines.findIndex((l) => l.includes('@mon_open jump would_drop'));
    expect(lastEnforced).toBeGreaterThan(0);
    expect(firstMonitor).toBeGreaterThan(lastEnforced);
    // A policy without monitor rules has no monitor sets at all (its table keeps its shape).
    expect(renderNft(compile(policy(1), 'web-1', opts))).not.toContain('mon_');
  });
  it('turns the nft default deny into a would-drop for a policy in monitor mode, keeping removed nodes dropped', () => {
    const nft = renderNft(compile({ ...policy(1), settings: { onExpiry: 'keep', mode: 'monitor' } }, 'web-1', { ...opts, blocked: ['10.0.3.3'] }));
    expect(nft).toContain('jump would_drop comment "monitor: default deny would drop"');
    expect(nft).not.toContain('counter name "drop_default" drop');
    expect(nft).toContain('ip saddr @blocked_v4 counter name "drop_blocked" drop');
  });
  it('sends iptables drops to one chain per reason, monitor rules after enforced ones', () => {
    const v4 = renderIptables(compile(withMonitorRule(), 'web-1', { ...opts, blocked: ['10.0.3.3'] }), 4);
    expect(v4).toContain('-A PICKET-INPUT -s 10.0.3.3 -j PICKET-BLOCKED');
    expect(v4).toContain('--ctstate INVALID -j PICKET-INVALID');
    const lines = v4.split('\n');
    const enforced = lines.findIndex((l) => l.includes('"rule:https"'));
    const monitor = lines.findIndex((l) => l.includes('"rule:legacy-https (monitor)"') && l.endsWith('-j PICKET-WOULD-DROP'));
    expect(monitor).toBeGreaterThan(enforced);
    expect(v4.split('\n').filter((l) => l.startsWith('-A PICKET-INPUT ')).at(-1)).toBe('-A PICKET-INPUT -j PICKET-DROP');
    // The restore of PICKET-INPUT never declares a drop chain (declaring flushes its counters).
    expect(v4).not.toMatch(/^:PICKET-(DROP|BLOCKED|INVALID|WOULD-DROP) /m);
    const monitored = renderIptables(compile({ ...policy(1), settings: { onExpiry: 'keep', mode: 'monitor' } }, 'web-1', opts), 4);
    expect(monitored.split('\n').filter((l) => l.startsWith('-A PICKET-INPUT ')).at(-1)).toBe('-A PICKET-INPUT -j PICKET-WOULD-DROP');
    const chains = renderIptablesDropChains(compile(policy(1), 'web-1', opts));
    expect(chains).toContain('-A PICKET-WOULD-DROP -m limit --limit 10/second -j LOG --log-prefix "picket-would-drop "');
    expect(chains).not.toContain('picket-drop "');
  });
});
