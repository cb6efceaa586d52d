import { describe, expect, it } from 'vitest';
import { parsePolicyYaml, policyToAuthoring } from '../../src/policy/authoring.js';
import { decodePolicy, encodePolicy, MAX_STAGES, type Policy } from '../../src/policy/model.js';
import { pb } from '../../src/wire/proto.js';
import { NOW, PEER, policy } from '../helpers/trust.js';
import { stringify } from 'yaml';
import { diffPolicies, formatDiff } from '../../src/policy/diff.js';

const yaml = (rollout: string) => `meshId: prod
version: 3
expires: 2027-01-31T00:00:00Z
nodes:
  - { name: canary-1, peerId: ${PEER(1)}, addresses: [10.0.1.5], roles: [canary, web] }
  - { name: web-2, peerId: ${PEER(2)}, addresses: [10.0.1.6], roles: [web] }
  - { name: db-1, peerId: ${PEER(3)}, addresses: [10.0.2.7], roles: [db] }
rules:
  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
${rollout}`;

function errors(text: string): string[] {
  const r = parsePolicyYaml(text, NOW);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => `${e.line ?? '-'}: ${e.path}: ${e.message}`);
}

const withRollout = (stages: Policy['rollout']): Policy => policy(4, {
  nodes: [
    { name: 'canary-1', peerId: PEER(1), addresses: ['10.0.1.5'], roles: ['canary', 'web'] },
    { name: 'db-1', peerId: PEER(2), addresses: ['10.0.2.7'], roles: ['db'] },
  ],
  rules: [{ name: 'https', to: ['role:web'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] }],
  ...(stages ? { rollout: stages } : {}),
});

describe('staged rollout: the policy model', () => {
  it('parses the issue example and round-trips through the signed encoding and the authoring form', () => {
    const r = parsePolicyYaml(yaml('rollout: { stages: [ { select: role:canary }, { select: any, after: 10m, healthy: 100% } ] }'), NOW);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.policy.rollout).toEqual({ stages: [{ select: 'role:canary' }, { select: 'any', after: 600_000, healthy: 100 }] });
    const d = decodePolicy(encodePolicy(r.policy));
    if (!d.ok) throw new Error(d.reason);
    expect(d.policy).toEqual(r.policy);
    const again = parsePolicyYaml(stringify(policyToAuthoring(r.policy)), NOW);
    expect(again.ok && again.policy).toEqual(r.policy);
  });

  it('encodes a policy without a rollout exactly as before (no field 9)', () => {
    const p = withRollout(undefined);
    const bytes = encodePolicy(p);
    expect(pb.policy.v1.Policy.decode(bytes).rollout).toBeNull();
    // The same bytes as a policy encoded without knowing the field at all.
    const m = pb.policy.v1.Policy.decode(bytes);
    expect(Buffer.from(pb.policy.v1.Policy.encode({ ...m, rollout: null }).finish())).toEqual(Buffer.from(bytes));
    const d = decodePolicy(bytes);
    expect(d.ok && 'rollout' in d.policy).toBe(false);
  });

  const cases: [string, string, RegExp][] = [
    ['rejects an after on the first stage', 'rollout: { stages: [ { select: role:canary, after: 5m }, { select: any } ] }', /rollout\.stages\[0\]\.after: the first stage starts at once: it has no after/],
    ['rejects a healthy on the first stage', 'rollout: { stages: [ { select: role:canary, healthy: 50% }, { select: any } ] }', /rollout\.stages\[0\]\.healthy: the first stage has no earlier stage/],
    ['rejects an after that is not a duration', 'rollout: { stages: [ { select: role:canary }, { select: any, after: soon } ] }', /rollout\.stages\[1\]\.after: "soon" is not a duration/],
    ['rejects a healthy that is not a percentage', 'rollout: { stages: [ { select: role:canary }, { select: any, healthy: 0.9 } ] }', /rollout\.stages\[1\]\.healthy: 0\.9 is not a percentage \(write it as 100%\)/],
    ['rejects a percentage above 100', 'rollout: { stages: [ { select: role:canary }, { select: any, healthy: 150% } ] }', /rollout\.stages\[1\]\.healthy: 150% is not a percentage from 1% to 100%/],
    ['rejects a zero percentage', 'rollout: { stages: [ { select: role:canary }, { select: any, healthy: 0% } ] }', /rollout\.stages\[1\]\.healthy: 0% is not a percentage/],
    ['rejects a selector outside the rule grammar', 'rollout: { stages: [ { select: cidr:10.0.0.0/8 }, { select: any } ] }', /rollout\.stages\[0\]\.select: "cidr:10\.0\.0\.0\/8" is not any, role:X or node:X/],
    ['rejects a role nobody holds', 'rollout: { stages: [ { select: role:canry }, { select: any } ] }', /rollout\.stages\[0\]\.select: role canry is not held by any node/],
    ['rejects a node that is not listed', 'rollout: { stages: [ { select: node:web-9 }, { select: any } ] }', /rollout\.stages\[0\]\.select: node web-9 is not in nodes/],
    ['rejects a single stage', 'rollout: { stages: [ { select: any } ] }', /rollout\.stages: 1 stage: a rollout needs at least two/],
    ['rejects a stage that selects nobody new', 'rollout: { stages: [ { select: any }, { select: role:web, after: 1m } ] }', /rollout\.stages\[1\]\.select: selects no node that an earlier stage did not already select/],
    ['rejects an after shorter than an earlier one', 'rollout: { stages: [ { select: role:canary }, { select: role:web, after: 1h }, { select: any, after: 10m } ] }', /rollout\.stages\[2\]\.after: is shorter than an earlier stage's after/],
    ['rejects an after beyond 30 days', 'rollout: { stages: [ { select: role:canary }, { select: any, after: 31d } ] }', /rollout\.stages\[1\]\.after: is longer than 30d/],
    ['rejects unknown stage fields', 'rollout: { stages: [ { select: role:canary, wait: 1m }, { select: any } ] }', /unknown field wait/],
    ['rejects more than 8 stages', `rollout: { stages: [ ${Array.from({ length: MAX_STAGES + 1 }, (_, i) => (i ? `{ select: any, after: ${i}m }` : '{ select: role:canary }')).join(', ')} ] }`, /rollout\.stages: 9 stages \(limit 8\)/],
  ];
  for (const [name, text, re] of cases) {
    it(name, () => {
      const errs = errors(yaml(text));
      expect(errs.join('\n')).toMatch(re);
      // One clear line per problem, on the rollout's line.
      expect(errs.every((l) => !l.includes('\n'))).toBe(true);
      expect(errs[0]).toMatch(/^10: /);
    });
  }

  it('warns (and signs) when some nodes are selected by no stage: they follow the last stage', () => {
    const r = parsePolicyYaml(yaml('rollout: { stages: [ { select: role:canary }, { select: role:db, after: 1m } ] }'), NOW);
    expect(r.ok && r.warnings.map((w) => w.message)).toEqual(['1 node (web-2) selected by no stage: they follow the last stage']);
  });

  it('rejects a signed payload with more stages than the limit before copying them (too-large)', () => {
    const p = withRollout({ stages: [{ select: 'role:canary' }, { select: 'any', after: 60_000 }] });
    const m = pb.policy.v1.Policy.decode(encodePolicy(p));
    m.rollout!.stages = Array.from({ length: 10_000 }, () => pb.policy.v1.Stage.create({ select: 'any', afterMs: 60_000 }));
    const d = decodePolicy(pb.policy.v1.Policy.encode(m).finish());
    expect(d).toMatchObject({ ok: false, outcome: 'too-large' });
  });

  it('rejects a signed payload whose rollout breaks a rule (first stage with a delay) as malformed', () => {
    const p = withRollout({ stages: [{ select: 'role:canary', after: 1000 }, { select: 'any' }] });
    expect(decodePolicy(encodePolicy(p))).toMatchObject({ ok: false, outcome: 'malformed', reason: expect.stringMatching(/rollout\.stages\[0\]\.after/) });
  });

  it('rejects a signed payload with an empty rollout as malformed', () => {
    const m = pb.policy.v1.Policy.decode(encodePolicy(withRollout(undefined)));
    m.rollout = pb.policy.v1.Rollout.create({ stages: [] });
    expect(decodePolicy(pb.policy.v1.Policy.encode(m).finish())).toMatchObject({ ok: false, outcome: 'malformed' });
  });

  it('policy diff says how the new version goes out', () => {
    const before = withRollout(undefined);
    const after = { ...withRollout({ stages: [{ select: 'role:canary' }, { select: 'any', after: 600_000, healthy: 90 }] }), version: 5 };
    expect(formatDiff(diffPolicies(before, after))).toContain('rollout (staged): 1: role:canary; 2: any after 10m, 90% healthy');
    expect(formatDiff(diffPolicies(after, { ...before, version: 6 }))).toContain('rollout: none (every node enforces the new version at once)');
    expect(formatDiff(diffPolicies(before, { ...before, version: 6 }))).not.toContain('rollout');
  });
});
