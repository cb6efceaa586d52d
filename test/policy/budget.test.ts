/** The compile budget: what a policy expands to is bounded before it is accepted. */
import { describe, expect, it } from 'vitest';
import { compiledSize, rulesetSize } from '../../src/policy/budget.js';
import { compile } from '../../src/policy/compile.js';
import { decodePolicy, encodePolicy, type Policy } from '../../src/policy/model.js';
import { buildNftTables } from '../../src/enforce/nft-tables.js';
import { verifyPolicy } from '../../src/trust/verify.js';
import { LIMITS } from '../../src/wire/limits.js';
import { keys, NOW, DAY, policy, rootDoc, signPolicy, trusted } from '../helpers/trust.js';
import { fakePeerId, poisonPolicy } from '../helpers/poison.js';

const [k] = keys(1) as [ReturnType<typeof keys>[0]];
const root = trusted(rootDoc([k], 1, [k], 1), [k]);

/** Elements the nft lowering really produces for one node (sets the policy fills). */
function lowered(p: Policy, node: string): number {
  const t = buildNftTables(compile(p, node, { now: NOW }));
  return t.sets.reduce((n, s) => n + s.elements.length, 0);
}

function honestFleet(n: number): Policy {
  const roles = ['web', 'app', 'db', 'cache', 'queue', 'batch', 'mon', 'bastion'];
  return {
    meshId: 'prod', version: 1, issuedAt: NOW - DAY, expires: NOW + 30 * DAY,
    nodes: Array.from({ length: n }, (_, i) => ({
      name: `n${i}`, peerId: fakePeerId(i),
      addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `2001:db8::${i.toString(16)}`],
      roles: [roles[i % roles.length]!, ...(i % 10 === 0 ? ['mon'] : [])],
    })),
    rules: [
      { name: 'https', to: ['role:web'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] },
      { name: 'app', to: ['role:app'], from: ['role:web'], proto: 'tcp', ports: [{ first: 8080, last: 8089 }] },
      { name: 'db', to: ['role:db'], from: ['role:app'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] },
      { name: 'cache', to: ['role:cache'], from: ['role:app', 'role:web'], proto: 'tcp', ports: [{ first: 6379, last: 6379 }] },
      { name: 'queue', to: ['role:queue'], from: ['role:app', 'role:batch'], proto: 'tcp', ports: [{ first: 5671, last: 5672 }] },
      { name: 'scrape', to: ['any'], from: ['role:mon'], proto: 'tcp', ports: [{ first: 9100, last: 9100 }, { first: 9464, last: 9464 }] },
      { name: 'ssh', to: ['any'], from: ['role:bastion', 'cidr:203.0.113.0/24'], proto: 'tcp', ports: [{ first: 22, last: 22 }] },
      { name: 'ping', to: ['any'], from: ['role:mon'], proto: 'icmp', ports: [] },
    ],
    exceptions: [], settings: { onExpiry: 'keep' },
  };
}

describe('compile budget', () => {
  it('rejects a validly signed poison policy (120 nodes × 32 addresses, 64 port ranges of 30) as too-large, with the figure', () => {
    const poison = poisonPolicy(2, { meshId: 'prod', now: NOW });
    expect(decodePolicy(encodePolicy(poison)).ok).toBe(true); // inside every document limit
    const v = verifyPolicy(signPolicy(poison, [k]), { root, meshId: 'prod' }, NOW);
    expect(v.outcome).toBe('too-large');
    expect(v.outcome !== 'accepted' && v.reason).toMatch(/compiles to [\d,]+ set elements .*limit [\d,]+/);
    expect(v.outcome !== 'accepted' && v.version).toBe(2);
  });

  it('accepts an honest 10,000-node policy (sized for 10k nodes by default)', () => {
    const fleet = honestFleet(10_000);
    const size = compiledSize(fleet);
    expect(size.elements).toBeLessThanOrEqual(LIMITS.maxCompiledElements);
    expect(verifyPolicy(signPolicy(fleet, [k]), { root, meshId: 'prod' }, NOW).outcome).toBe('accepted');
    // The bound is the worst node's ruleset, not the sum of every rule over the fleet.
    const all = fleet.rules.reduce((n, r) => n + r.from.length, 0);
    expect(size.rules).toBeLessThan(all + 3);
  });

  it('never under-estimates what the nft lowering produces (honest, bulk, nested CIDRs, narrow and wide hosts)', () => {
    const nested: Policy = policy(5, {
      rules: [
        ...['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.128/25', '10.1.2.130/31'].map((c, i) => ({
          name: `n${i}`, to: ['any'], from: [`cidr:${c}`], proto: 'tcp' as const,
          ports: Array.from({ length: 8 }, (_, j) => ({ first: 1000 + j * 100 + i * 10, last: 1000 + j * 100 + i * 10 + 5 })),
        })),
        { name: 'hosts-wide', to: ['any'], from: ['role:web'], proto: 'tcp', ports: [{ first: 1000, last: 1999 }] },
        { name: 'hosts-narrow', to: ['any'], from: ['role:web', 'node:db-1'], proto: 'udp', ports: [{ first: 53, last: 53 }, { first: 60, last: 70 }] },
      ],
    });
    const fleet = honestFleet(300);
    const poisonSmall = poisonPolicy(3, { now: NOW, rules: 2 });
    for (const [p, nodes] of [[nested, ['web-1', 'db-1']], [fleet, ['n0', 'n1', 'n2', 'n7']], [poisonSmall, ['p0']]] as const) {
      const size = compiledSize(p);
      for (const n of nodes) {
        const real = lowered(p, n);
        expect(size.elements).toBeGreaterThanOrEqual(real);
        expect(rulesetSize(compile(p, n, { now: NOW })).elements).toBeGreaterThanOrEqual(real);
      }
    }
  });

  it('lowers hosts with wide port lists as intervals, not host × port', () => {
    // One rule of the poison: 3,840 hosts × 64 ranges of 30 ports. Host × port would be 7.4M.
    const one = poisonPolicy(4, { now: NOW, rules: 1 });
    expect(lowered(one, 'p0')).toBeLessThanOrEqual(120 * 32 * 64 + 120 * 32);
  });
});
