/**
 * The apply benchmark's policy (bench/apply.ts), shared with the tests that pin what it lowers
 * to (test/enforce/classes.test.ts): `rules` rules over 50 nodes with one role each of 10, half
 * from a role with one port, half from a /24; `shift` moves node n7's address (the
 * one-address change).
 */
import type { Policy } from '../src/policy/model.js';

export function applyBenchPolicy(rules: number, now: number, shift = 0): Policy {
  const nodes = Array.from({ length: 50 }, (_, i) => ({
    name: `n${i}`, peerId: `12D3KooW${String(i).padStart(44, 'A').replace(/\d/g, 'B')}${i}`.slice(0, 52),
    addresses: [`10.${20 + (i >> 8)}.${i & 255}.${1 + (i === 7 ? shift : 0)}`], roles: [`r${i % 10}`],
  }));
  return {
    meshId: 'bench', version: 1, issuedAt: now, expires: now + 86400e3, nodes,
    rules: Array.from({ length: rules }, (_, i) => ({
      name: `rule${i}`, to: ['any'],
      from: [i % 2 ? `role:r${i % 10}` : `cidr:172.${16 + (i % 16)}.${(i >> 4) & 255}.0/24`],
      proto: i % 7 === 0 ? 'udp' as const : 'tcp' as const,
      ports: [{ first: 1024 + (i % 50000), last: 1024 + (i % 50000) }],
    })),
    exceptions: [], settings: { onExpiry: 'keep' },
  };
}
