/**
 * Egress and forwarded traffic in the policy model: outbound rules (`direction: egress`),
 * settings.egress and settings.forward. Hostile first: what a bad file or a bad signed
 * payload can make of them, that egress deny can never cut the mesh or the failsafe, and
 * that policies without them keep their meaning and their encoding.
 */
import { describe, expect, it } from 'vitest';
import { parsePolicyYaml, policyToAuthoring } from '../../src/policy/authoring.js';
import { compiledSize, overBudget, rulesetSize } from '../../src/policy/budget.js';
import { compile, compileBaseline, lockoutProblem, rulesetHash } from '../../src/policy/compile.js';
import { describeVerdict, explain } from '../../src/policy/explain.js';
import { checkPolicy, decodePolicy, encodePolicy, type Policy, type Rule } from '../../src/policy/model.js';
import { buildNftTables } from '../../src/enforce/nft-tables.js';
import { renderNft, renderNftDelta, renderNftInPlace, sameShape } from '../../src/enforce/render-nft.js';
import { renderIptables } from '../../src/enforce/render-iptables.js';
import { pb } from '../../src/wire/proto.js';
import { stringify } from 'yaml';
import { DAY, NOW, PEER, policy } from '../helpers/trust.js';
import { fakePeerId, poisonPolicy } from '../helpers/poison.js';

const MESH = { now: NOW, meshPorts: [7946], sshFrom: ['192.0.2.0/24'], sshPort: 22 };
const guard = { meshPorts: [7946], sshFrom: ['192.0.2.0/24'], sshPort: 22 };

const egressRule = (o: Partial<Rule> = {}): Rule => ({ name: 'to-db', direction: 'egress', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }], ...o });
const denyPolicy = (rules: Rule[] = [egressRule()], extra: Partial<Policy['settings']> = {}): Policy => {
  const p = policy(3);
  return { ...p, rules: [...p.rules, ...rules], settings: { onExpiry: 'keep', egress: 'deny', ...extra } };
};

const yaml = (extra: { rule?: string; settings?: string }) => `meshId: prod
version: 1
expires: 2099-01-01
nodes:
  - { name: web-1, peerId: ${PEER(1)}, addresses: [10.0.0.1], roles: [web] }
  - { name: db-1, peerId: ${PEER(2)}, addresses: [10.0.0.2], roles: [db] }
rules:
  - name: r
    to: role:web
    from: any
    proto: tcp
    ports: [443]
${extra.rule ?? ''}
${extra.settings ?? ''}
`;
const errorsOf = (text: string) => {
  const r = parsePolicyYaml(text, NOW);
  return r.ok ? [] : r.errors.map((e) => `${e.line}: ${e.path}: ${e.message}`);
};

describe('egress and forward: authoring and the signed model', () => {
  it('schema rejects an unknown direction with one line naming the field', () => {
    const errs = errorsOf(yaml({ rule: '    direction: outbound' }));
    expect(errs).toEqual(['13: rules[0].direction: "outbound" is not ingress or egress']);
  });

  it('rejects a bad settings.egress or settings.forward with one line each, naming the field', () => {
    expect(errorsOf(yaml({ settings: 'settings:\n  egress: block' }))).toEqual(['15: settings.egress: "block" is not allow or deny']);
    expect(errorsOf(yaml({ settings: 'settings:\n  forward: yes' }))).toEqual(['15: settings.forward: "yes" is not filter or ignore']);
  });

  it('refuses cidr: on the side of an egress rule that names this node (from)', () => {
    const errs = errorsOf(yaml({ rule: '  - { name: out, direction: egress, to: role:db, from: cidr:10.0.0.0/8, proto: tcp, ports: [5432] }' }));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^13: rules\[1\]\.from: .*cidr:X names addresses: it belongs in to of an egress rule/);
  });

  it('still refuses cidr: in to of an ingress rule', () => {
    const errs = errorsOf(yaml({ rule: '  - { name: in, to: cidr:10.0.0.0/8, from: any, proto: tcp, ports: [80] }' }));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/rules\[1\]\.to: .*it belongs in from of an ingress rule/);
  });

  it('accepts an egress rule to a CIDR and round-trips it through the signed encoding and policy show', () => {
    const r = parsePolicyYaml(yaml({ rule: '  - { name: out, direction: egress, to: [role:db, cidr:198.51.100.0/24], from: role:web, proto: udp, ports: [53] }', settings: 'settings:\n  egress: deny\n  forward: filter' }), NOW);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.policy.rules[1]).toMatchObject({ direction: 'egress', to: ['role:db', 'cidr:198.51.100.0/24'] });
    expect(r.policy.settings).toMatchObject({ egress: 'deny', forward: 'filter' });
    const back = decodePolicy(encodePolicy(r.policy));
    expect(back.outcome).toBe('decoded');
    if (back.outcome !== 'decoded') return;
    expect(back.policy).toEqual(r.policy);
    const again = parsePolicyYaml(stringify(policyToAuthoring(r.policy)), NOW);
    expect(again.ok && again.policy).toEqual(r.policy);
  });

  it('a policy spelling out the defaults (ingress, egress: allow, forward: ignore) encodes exactly as one without them', () => {
    const plain = parsePolicyYaml(yaml({}), NOW);
    const spelled = parsePolicyYaml(yaml({ rule: '    direction: ingress', settings: 'settings:\n  egress: allow\n  forward: ignore' }), NOW);
    expect(plain.ok && spelled.ok).toBe(true);
    if (!plain.ok || !spelled.ok) return;
    expect(Buffer.from(encodePolicy(spelled.policy))).toEqual(Buffer.from(encodePolicy(plain.policy)));
    // And the bytes carry none of the new fields (older nodes decode them to the same policy).
    const m = pb.policy.v1.Policy.decode(encodePolicy(plain.policy));
    expect(m.rules[0]!.direction).toBe('');
    expect(m.settings!.egress).toBe('');
    expect(m.settings!.forward).toBe('');
  });

  it('a signed payload with an unknown direction, egress or forward value is malformed, naming the field', () => {
    const base = pb.policy.v1.Policy.decode(encodePolicy(policy(1)));
    const withRule = pb.policy.v1.Policy.encode({ ...base, rules: [{ ...base.rules[0]!, direction: 'sideways' }] }).finish();
    expect(decodePolicy(withRule)).toMatchObject({ outcome: 'malformed', reason: expect.stringMatching(/^rules\[0\]\.direction: "sideways" is not ingress or egress/) });
    const withEgress = pb.policy.v1.Policy.encode({ ...base, settings: { onExpiry: 'keep', egress: 'open' } }).finish();
    expect(decodePolicy(withEgress)).toMatchObject({ outcome: 'malformed', reason: expect.stringMatching(/^settings\.egress: "open" is not allow or deny/) });
    const withForward = pb.policy.v1.Policy.encode({ ...base, settings: { onExpiry: 'keep', forward: 'route' } }).finish();
    expect(decodePolicy(withForward)).toMatchObject({ outcome: 'malformed', reason: expect.stringMatching(/^settings\.forward: "route" is not filter or ignore/) });
  });

  it('does not call an egress rule shadowed by an ingress rule with the same selectors', () => {
    const p = policy(1, { rules: [
      { name: 'in', to: ['any'], from: ['any'], proto: 'tcp', ports: [{ first: 1, last: 65535 }] },
      { name: 'out', direction: 'egress', to: ['any'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] },
    ] });
    expect(checkPolicy(p, { warnings: true }).warnings).toEqual([]);
  });
});

describe('egress and forward: compile, explain, render', () => {
  it('an egress rule opens no inbound port', () => {
    const p = policy(1, { rules: [egressRule({ to: ['any'], from: ['any'], ports: [{ first: 6000, last: 6000 }] })] });
    const rs = compile(p, 'db-1', MESH);
    expect(explain(rs, { from: '10.0.1.5', proto: 'tcp', port: 6000 }).action).toBe('DROP');
    expect(rs.rules.some((r) => r.name === 'to-db')).toBe(false);
  });

  it('egress: allow (the default) leaves outbound traffic alone: no output chain, same hash and nft text as before', () => {
    const p = policy(1, { rules: [...policy(1).rules, egressRule()] });
    const rs = compile(p, 'web-1', MESH);
    const without = compile(policy(1), 'web-1', MESH);
    expect(rs.output).toBeUndefined();
    expect(rulesetHash(rs)).toBe(rulesetHash(without));
    expect(renderNft(rs)).toBe(renderNft(without));
    expect(renderNft(rs)).not.toMatch(/chain (output|forward)/);
    expect(explain(rs, { direction: 'egress', to: '203.0.113.9', proto: 'tcp', port: 25 })).toEqual({ action: 'ALLOW', reason: 'egress-allow' });
  });

  it('egress: deny drops a connection to an address no rule allows', () => {
    const rs = compile(denyPolicy(), 'web-1', MESH);
    const v = explain(rs, { direction: 'egress', to: '203.0.113.9', proto: 'tcp', port: 5432 });
    expect(v).toEqual({ action: 'DROP', reason: 'default' });
    expect(describeVerdict(v)).toMatch(/DROP \(default deny/);
    const ok = explain(rs, { direction: 'egress', to: '10.0.2.7', proto: 'tcp', port: 5432 });
    expect(ok.action === 'ALLOW' && ok.reason === 'rule' && ok.rule.name).toBe('to-db');
    expect(explain(rs, { direction: 'egress', to: '10.0.2.7', proto: 'tcp', port: 5433 }).action).toBe('DROP');
    expect(explain(rs, { direction: 'egress', to: '10.0.2.7', proto: 'udp', port: 5432 }).action).toBe('DROP');
  });

  it('an egress rule applies only to the nodes its from names', () => {
    const rs = compile(denyPolicy(), 'db-1', MESH); // db-1 is not role:web
    expect(explain(rs, { direction: 'egress', to: '10.0.2.7', proto: 'tcp', port: 5432 }).action).toBe('DROP');
    expect(rs.output!.rules.map((r) => r.kind)).toEqual(['mesh', 'failsafe']);
  });

  it('egress deny cannot cut the mesh or failsafe', () => {
    const rs = compile(denyPolicy([]), 'web-1', MESH);
    const mesh = explain(rs, { direction: 'egress', to: '10.0.2.7', proto: 'tcp', port: 7946 });
    expect(mesh.action === 'ALLOW' && mesh.reason === 'rule' && mesh.rule.kind).toBe('mesh');
    expect(describeVerdict(mesh)).toBe('ALLOW by mesh port (to mesh peers)');
    expect(lockoutProblem(rs, guard)).toBeUndefined();
    const nft = renderNft(rs);
    // The output chain passes replies, loopback and neighbour discovery before any rule.
    const output = nft.slice(nft.indexOf('chain output'));
    expect(output).toMatch(/policy drop;\n\s+oif "lo" accept\n\s+ct state established,related accept\n\s+icmpv6 type \{ nd-neighbor-solicit/);
    expect(output).toMatch(/ip daddr @mesh_v4 tcp dport 7946 accept/);
    expect(output).toMatch(/ip daddr @failsafe_v4 tcp sport 22 accept/);
    const ipt = renderIptables(rs, 4);
    expect(ipt).toMatch(/-A PICKET-OUTPUT -o lo -j ACCEPT\n-A PICKET-OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT/);
    expect(ipt).toMatch(/-A PICKET-OUTPUT -d 10\.0\.2\.7 -p tcp -m multiport --dports 7946 .* -j ACCEPT/);
    expect(ipt).toMatch(/-A PICKET-OUTPUT -d 192\.0\.2\.0\/24 -p tcp -m multiport --sports 22 .* -j ACCEPT/);
    // A ruleset whose output part lost the mesh rule is refused by the lock-out guard.
    const cut = { ...rs, output: { rules: rs.output!.rules.filter((r) => r.kind !== 'mesh') } };
    expect(lockoutProblem(cut, guard)).toMatch(/egress deny would cut the mesh/);
    const noSsh = { ...rs, output: { rules: rs.output!.rules.filter((r) => r.kind !== 'failsafe') } };
    expect(lockoutProblem(noSsh, guard)).toMatch(/failsafe SSH replies/);
  });

  it('a failsafe output rule passes SSH replies, never a new connection to the failsafe network', () => {
    const rs = compile(denyPolicy([]), 'web-1', MESH);
    expect(explain(rs, { direction: 'egress', to: '192.0.2.10', proto: 'tcp', port: 22 }).action).toBe('DROP');
  });

  it('an egress exception closes by itself', () => {
    const p = denyPolicy([]);
    p.exceptions = [{ ...egressRule({ name: 'tmp', to: ['cidr:198.51.100.0/24'], ports: [{ first: 443, last: 443 }] }), reason: 'vendor upload', expires: NOW + DAY }];
    const rs = compile(p, 'web-1', MESH);
    expect(rs.nextChangeAt).toBe(NOW + DAY);
    expect(explain(rs, { direction: 'egress', to: '198.51.100.4', proto: 'tcp', port: 443 }).action).toBe('ALLOW');
    const later = compile(p, 'web-1', { ...MESH, now: NOW + DAY });
    expect(explain(later, { direction: 'egress', to: '198.51.100.4', proto: 'tcp', port: 443 }).action).toBe('DROP');
  });

  it('the baseline never filters outbound traffic or forwarded traffic', () => {
    const rs = compileBaseline({ ...MESH, meshPeers: ['10.0.2.7'] });
    expect(rs.output).toBeUndefined();
    expect(rs.forward).toBeUndefined();
  });

  it('forward: filter judges DNAT-ed connections by their published port with the input sets, and only those', () => {
    const rs = compile(denyPolicy([], { forward: 'filter' }), 'web-1', MESH);
    const t = buildNftTables(rs);
    expect(t.forward).toBeDefined();
    const fwd = t.forward!.join('\n');
    expect(fwd.indexOf('ct status & dnat == 0 accept')).toBeLessThan(fwd.indexOf('ct state established,related accept'));
    expect(fwd.indexOf('@blocked_v4 drop')).toBeLessThan(fwd.indexOf('ct state established,related accept'));
    expect(fwd).toMatch(/meta l4proto tcp ip saddr \. meta l4proto \. ct original proto-dst @allow_v4 accept/);
    expect(t.forward!.at(-1)).toMatch(/^counter name "drop_forward" drop/);
    expect(renderNft(rs)).toMatch(/chain forward \{\n\s+type filter hook forward priority filter; policy accept;/);
    const ipt = renderIptables(rs, 4);
    expect(ipt).toMatch(/-A PICKET-FORWARD -m conntrack ! --ctstate DNAT -j RETURN/);
    expect(ipt).toMatch(/-A PICKET-FORWARD -p tcp -m conntrack --ctorigdstport 443 .* -j RETURN/);
    expect(ipt.trimEnd().split('\n').at(-2)).toBe('-A PICKET-FORWARD -j PICKET-FORWARD-DROP');
  });

  it('an in-place replace keeps output and forward hooks the new ruleset still has and deletes the others', () => {
    const on = compile(denyPolicy([], { forward: 'filter' }), 'web-1', MESH);
    const off = compile(policy(4), 'web-1', MESH);
    const toOff = renderNftInPlace(off, { sets: buildNftTables(on).sets.map((s) => s.name), chains: ['input', 'output', 'forward'] });
    expect(toOff).toMatch(/delete chain inet picket output/);
    expect(toOff).toMatch(/delete chain inet picket forward/);
    const toOn = renderNftInPlace(on, { sets: buildNftTables(off).sets.map((s) => s.name), chains: ['input'] });
    expect(toOn).not.toMatch(/delete chain/);
    expect(toOn).toMatch(/chain output \{ type filter hook output priority filter; policy drop; \}/);
    expect(toOn).toMatch(/add rule inet picket output ct state established,related accept/);
  });
});

describe('egress: incremental applies', () => {
  it('a changed egress destination is an element delta of the out_ sets, not a full replace', () => {
    const before = compile(denyPolicy([egressRule({ to: ['cidr:198.51.100.0/24'] })]), 'web-1', MESH);
    const after = compile(denyPolicy([egressRule({ to: ['cidr:203.0.113.0/24'] })]), 'web-1', MESH);
    expect(sameShape(before, after)).toBe(true);
    expect(renderNftDelta(before, after)).toBe('delete element inet picket out_allow_v4 { 198.51.100.0/24 . tcp . 5432 }\nadd element inet picket out_allow_v4 { 203.0.113.0/24 . tcp . 5432 }\n');
    // Switching egress filtering on or off changes the chains: never a mere delta.
    expect(sameShape(before, compile(policy(3), 'web-1', MESH))).toBe(false);
    expect(sameShape(compile(denyPolicy([], { forward: 'filter' }), 'web-1', MESH), compile(denyPolicy([]), 'web-1', MESH))).toBe(false);
  });
});

describe('egress: the compile budget counts it', () => {
  const fleet = (egress: 'deny' | undefined): Policy => ({
    ...policy(1),
    nodes: Array.from({ length: 60 }, (_, i) => ({ name: `n${i}`, peerId: fakePeerId(i), addresses: [`10.1.${i}.1`, `10.1.${i}.2`], roles: [i % 2 ? 'app' : 'db'] })),
    rules: [
      { name: 'out', direction: 'egress', to: ['role:db', 'cidr:10.1.0.0/16'], from: ['role:app'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }, { first: 6000, last: 6100 }] },
      { name: 'dns', direction: 'egress', to: ['any'], from: ['any'], proto: 'udp', ports: [{ first: 53, last: 53 }] },
    ],
    settings: { onExpiry: 'keep', ...(egress ? { egress } : {}) },
  });

  it('bounds the elements egress rules really lower to, for every node', () => {
    const p = fleet('deny');
    expect(checkPolicy(p).errors).toEqual([]);
    const bound = compiledSize(p);
    for (const n of ['n0', 'n1']) {
      const rs = compile(p, n, { now: NOW });
      const real = buildNftTables(rs).sets.filter((s) => s.name.startsWith('out_')).reduce((k, s) => k + s.elements.length, 0);
      expect(real).toBeGreaterThan(0);
      const size = rulesetSize(rs);
      expect(size.elements).toBeGreaterThanOrEqual(buildNftTables(rs).sets.filter((s) => !/^(blocked|failsafe)_/.test(s.name)).reduce((k, s) => k + s.elements.length, 0));
      expect(size.rules).toBe(rs.rules.length + rs.output!.rules.length);
      expect(bound.elements).toBeGreaterThanOrEqual(size.elements);
      expect(bound.rules).toBeGreaterThanOrEqual(size.rules);
    }
  });

  it('rejects a policy whose egress destinations lower to millions of elements as too large', () => {
    const poison = poisonPolicy(2, { now: NOW });
    // The same fan-out as the ingress poison, turned around: every node may reach every address on 64 ranges.
    const out: Policy = { ...poison, rules: poison.rules.map((r) => ({ ...r, direction: 'egress' as const, to: r.from, from: r.to })), settings: { onExpiry: 'keep', egress: 'deny' } };
    expect(checkPolicy(out).errors).toEqual([]);
    expect(overBudget(compiledSize(out))).toMatch(/set elements on its largest node/);
  });

  it('counts egress rules only where they are compiled (egress: deny)', () => {
    expect(compiledSize(fleet('deny')).elements).toBeGreaterThan(compiledSize(fleet(undefined)).elements + 60);
  });
});
