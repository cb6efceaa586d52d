/** The `tests:` block evaluated by compile + explain (pure), as `policy check` and `sign` run it. */
import { describe, expect, it } from 'vitest';
import { runPolicyTests, MAX_PROBES, MAX_TESTS, type PolicyTest } from '../../src/policy/tests.js';
import { PolicyAuthoringSchema } from '../../src/policy/authoring.js';
import { DAY, NOW, PEER, policy } from '../helpers/trust.js';

const p = policy(3, {
  nodes: [
    { name: 'web-1', peerId: PEER(1), addresses: ['10.0.1.5', '2001:db8::5'], roles: ['web'] },
    { name: 'web-2', peerId: PEER(3), addresses: ['10.0.1.6'], roles: ['web'] },
    { name: 'db-1', peerId: PEER(2), addresses: ['10.0.2.7'], roles: ['db'] },
  ],
  exceptions: [
    { name: 'debug', to: ['node:web-1'], from: ['cidr:198.51.100.0/24'], proto: 'tcp', ports: [{ first: 8443, last: 8443 }], reason: 'INC-1', expires: NOW + DAY },
  ],
});
const T = (t: Partial<PolicyTest> & Pick<PolicyTest, 'from' | 'to' | 'expect'>): PolicyTest => ({ proto: 'tcp', direction: 'ingress', ...t });
const run = (tests: PolicyTest[], now = NOW) => runPolicyTests(p, tests, { now });

describe('policy tests', () => {
  it('passes what the compiled rulesets say, from an IP or from every address of a node', () => {
    const r = run([
      T({ from: '203.0.113.9', to: 'role:web', port: 443, expect: 'allow' }),
      T({ from: 'node:web-1', to: 'node:db-1', port: 5432, expect: 'allow' }), // 10.0.1.5 and 2001:db8::5
      T({ from: '203.0.113.9', to: 'role:db', port: 5432, expect: 'drop' }),
      T({ from: '10.0.1.6', to: 'node:db-1', port: 7946, expect: 'allow' }), // the mesh port, as agents open it
    ]);
    expect(r).toEqual({ total: 4, passed: 4, problems: [] });
  });

  it('reads a would-drop (monitor mode) as drop: tests check the policy as it will be enforced', () => {
    const trial = { ...p, settings: { ...p.settings, mode: 'monitor' as const } };
    const r = runPolicyTests(trial, [T({ from: '203.0.113.9', to: 'role:db', port: 5432, expect: 'drop' })], { now: NOW });
    expect(r).toEqual({ total: 1, passed: 1, problems: [] });
    const wrong = runPolicyTests(trial, [T({ from: '203.0.113.9', to: 'role:db', port: 5432, expect: 'allow' })], { now: NOW });
    expect(wrong.problems[0]!.message).toMatch(/^expected allow, got DROP \(monitor: would drop, accepted\)/);
  });

  it('fails a role test when one node of the role disagrees, naming that node', () => {
    const r = run([T({ from: '198.51.100.1', to: 'role:web', port: 8443, expect: 'allow' })]);
    expect(r.problems).toEqual([{ path: ['tests', 0], message: 'expected allow, got DROP (default deny: no rule allows it): 198.51.100.1 → node web-2 tcp/8443' }]);
  });

  it('reads exceptions as open until they expire, then closed', () => {
    const t = [T({ from: '198.51.100.1', to: 'node:web-1', port: 8443, expect: 'allow' })];
    expect(run(t).passed).toBe(1);
    expect(run(t, NOW + 2 * DAY).problems[0]!.message).toMatch(/^expected allow, got DROP/);
  });

  it('a node source fails at the first of its addresses that gets the other verdict', () => {
    const r = run([T({ from: 'node:web-1', to: 'node:db-1', port: 5432, expect: 'drop' })]);
    expect(r.problems[0]!.message).toMatch(/^expected drop, got ALLOW by rule app-db: 10\.0\.1\.5 → node db-1 tcp\/5432$/);
  });

  it('turns hostile or dangling references into one problem each, never a throw', () => {
    const r = run([
      T({ from: '10.0.0.1\u001b[2J; rm -rf /', to: 'role:web', port: 1, expect: 'drop' }),
      T({ from: '10.0.0.1', to: `node:${'x'.repeat(10_000)}`, port: 1, expect: 'drop' }),
      T({ from: '10.0.0.1', to: 'cidr:10.0.0.0/8', port: 1, expect: 'drop' }),
      T({ from: '10.0.0.1', to: 'role:web', proto: 'icmp', port: 1, expect: 'drop' }),
      T({ from: '10.0.0.1', to: 'role:web', proto: 'udp', expect: 'drop' }),
      T({ from: '999.1.1.1', to: 'role:web', port: 1, expect: 'drop' }),
    ]);
    expect(r.passed).toBe(0);
    expect(r.problems.map((x) => x.path)).toEqual([['tests', 0, 'from'], ['tests', 1, 'to'], ['tests', 2, 'to'], ['tests', 3, 'port'], ['tests', 4, 'port'], ['tests', 5, 'from']]);
    for (const x of r.problems) expect(x.message.length).toBeLessThan(120);
  });

  it('the schema bounds the block and only takes directions it can evaluate', () => {
    const base = { meshId: 'm', version: 1, expires: '2099-01-01' };
    const one = { from: '10.0.0.1', to: 'role:web', port: 1, expect: 'drop' };
    expect(PolicyAuthoringSchema.safeParse({ ...base, tests: Array.from({ length: MAX_TESTS + 1 }, () => one) }).success).toBe(false);
    expect(PolicyAuthoringSchema.safeParse({ ...base, tests: [{ ...one, direction: 'forward' }] }).success).toBe(false);
    expect(PolicyAuthoringSchema.safeParse({ ...base, tests: [{ ...one, port: 70000 }] }).success).toBe(false);
    expect(PolicyAuthoringSchema.safeParse({ ...base, tests: [{ ...one, extra: 1 }] }).success).toBe(false);
    const ok = PolicyAuthoringSchema.safeParse({ ...base, tests: [one] });
    expect(ok.success && ok.data.tests).toEqual([{ ...one, proto: 'tcp', direction: 'ingress' }]);
  });

  it('egress: each sending node of a role is compiled, and every address of a destination node probed', () => {
    const e = policy(4, {
      nodes: p.nodes,
      rules: [
        { name: 'app-db', direction: 'egress', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] },
        { name: 'dns', direction: 'egress', to: ['cidr:10.0.0.53/32'], from: ['node:web-1'], proto: 'udp', ports: [{ first: 53, last: 53 }] },
      ],
      exceptions: [],
      settings: { onExpiry: 'keep', egress: 'deny' },
    });
    const r = runPolicyTests(e, [
      T({ direction: 'egress', from: 'role:web', to: 'node:db-1', port: 5432, expect: 'allow' }),
      T({ direction: 'egress', from: 'node:db-1', to: 'node:web-1', port: 443, expect: 'drop' }),
      T({ direction: 'egress', from: 'role:web', to: '10.0.0.53', proto: 'udp', port: 53, expect: 'allow' }), // web-2 may not
      T({ direction: 'egress', from: '10.0.1.5', to: 'node:db-1', port: 5432, expect: 'allow' }),
    ], { now: NOW });
    expect(r.problems).toEqual([
      { path: ['tests', 2], message: 'expected allow, got DROP (default deny: no rule allows it): node web-2 → 10.0.0.53 udp/53' },
      { path: ['tests', 3, 'from'], message: '"10.0.1.5" is not node:NAME or role:NAME' },
    ]);
    // Under settings.egress: allow, nothing outbound is filtered, and the test says why.
    const open = runPolicyTests(policy(5), [T({ direction: 'egress', from: 'node:web-1', to: '192.0.2.1', port: 25, expect: 'drop' })], { now: NOW });
    expect(open.problems[0]!.message).toMatch(/^expected drop, got ALLOW \(settings\.egress: allow/);
  });

  it('refuses a block that would probe more (address, node) pairs than the budget, with the figure', () => {
    // 2,000 nodes holding one role, a source node with 32 addresses: 64,000 probes a test.
    const nodes = Array.from({ length: 2000 }, (_, i) => ({ name: `n${i}`, peerId: `12D3KooW${String(i).padStart(44, 'A').replace(/0/g, 'B').replace(/[^1-9A-HJ-NP-Za-km-z]/g, 'C')}`, addresses: [`10.${i >> 8}.${i & 255}.1`], roles: ['many'] }));
    nodes[0]!.addresses = Array.from({ length: 32 }, (_, j) => `10.200.0.${j + 1}`);
    const big = policy(9, { nodes, rules: [], exceptions: [] });
    const t = T({ from: 'node:n0', to: 'role:many', port: 22, expect: 'drop' });
    const r = runPolicyTests(big, [t, t, t, t], { now: NOW });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.message).toMatch(new RegExp(`probe 256,000 .*limit ${MAX_PROBES.toLocaleString('en-US')}`));
  });
});
