/**
 * The poison policy of issue 13: validly signed, ~72 KB on the wire, inside every document
 * limit (120 nodes × 32 addresses, rules with 64 port ranges of 30 ports each), but it
 * expands to millions of (host × port) elements when lowered for any node.
 */
import type { Policy, PolicyNode } from '../../src/policy/model.js';

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A syntactically valid PeerId, distinct for every i (no key behind it). */
export function fakePeerId(i: number): string {
  let s = '';
  for (let n = i, k = 0; k < 6; k++, n = Math.floor(n / 58)) s += B58[n % 58];
  return `12D3KooW${'Q'.repeat(38)}${s}`;
}

/** `real` nodes come first (they keep their PeerId); the rest are filled with fake nodes. */
export function poisonPolicy(version: number, opts: { meshId?: string; real?: { name: string; peerId: string }[]; now?: number; rules?: number } = {}): Policy {
  const now = opts.now ?? Date.now();
  const real = opts.real ?? [];
  const nodes: PolicyNode[] = Array.from({ length: 120 }, (_, i) => ({
    name: real[i]?.name ?? `p${i}`,
    peerId: real[i]?.peerId ?? fakePeerId(i),
    addresses: Array.from({ length: 32 }, (_, j) => `10.${100 + (i >> 6)}.${(i & 63) * 4 + (j >> 3)}.${(j & 7) + 1}`),
    roles: ['all'],
  }));
  const ports = (k: number) => Array.from({ length: 64 }, (_, j) => ({ first: 1024 + k * 7 + j * 900, last: 1024 + k * 7 + j * 900 + 29 }));
  return {
    meshId: opts.meshId ?? 'test', version, issuedAt: now - 1000, expires: now + 86400e3,
    nodes,
    rules: Array.from({ length: opts.rules ?? 24 }, (_, k) => ({ name: `fan-${k}`, to: ['any'], from: ['role:all'], proto: k % 2 ? 'udp' as const : 'tcp' as const, ports: ports(k) })),
    exceptions: [], settings: { onExpiry: 'keep' },
  };
}
