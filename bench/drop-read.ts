/**
 * What one drop-counter read costs (issue 15 #2), per backend, against a real kernel in a
 * namespace this script creates: `nft -j list counters table inet picket` and
 * `iptables-save -c` (+ ip6tables-save -c). Prints JSON. Needs root. Run:
 *   npx tsx bench/drop-read.ts [rules]
 */
import { execFileSync } from 'node:child_process';
import { NftBackend } from '../src/enforce/nft.js';
import { IptablesBackend } from '../src/enforce/iptables.js';
import type { Backend } from '../src/enforce/backend.js';
import { compile } from '../src/policy/compile.js';
import type { Policy } from '../src/policy/model.js';

const RULES = Number(process.argv[2] ?? 1000);
const ns = `pkdropbench${process.pid}`;
const peer = (i: number) => `12D3KooW${'A'.repeat(40)}${String.fromCharCode(65 + (i % 26))}${'b'.repeat(3)}`;
const now = Date.now();
const policy: Policy = {
  meshId: 'bench', version: 1, issuedAt: now, expires: now + 86_400_000,
  nodes: [{ name: 'self', peerId: peer(1), addresses: ['10.1.0.1'], roles: ['db'] }],
  rules: Array.from({ length: RULES }, (_, i) => ({ name: `r${i}`, to: ['role:db'], from: [`cidr:10.${2 + (i >> 8)}.${i & 255}.0/24`], proto: 'tcp' as const, ports: [{ first: 1000 + (i % 50), last: 1000 + (i % 50) }] })),
  exceptions: [], settings: { onExpiry: 'keep' },
};
const rs = compile(policy, 'self', { now, meshPorts: [7946] });
execFileSync('ip', ['netns', 'add', ns]);
const out: Record<string, unknown> = { rules: RULES };
try {
  for (const [name, b] of [['nft', new NftBackend({ wrap: ['ip', 'netns', 'exec', ns] })], ['iptables', new IptablesBackend({ wrap: ['ip', 'netns', 'exec', ns] })]] as [string, Backend][]) {
    await b.apply(rs);
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await b.readDrops!();
      ms.push(performance.now() - t0);
    }
    ms.sort((x, y) => x - y);
    out[name] = { medianMs: Math.round(ms[10]! * 10) / 10, maxMs: Math.round(ms[19]! * 10) / 10 };
    await b.remove?.();
  }
} finally {
  execFileSync('ip', ['netns', 'del', ns]);
}
console.log(JSON.stringify(out));
