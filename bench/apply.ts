/**
 * Apply benchmark (real kernel, inside a network namespace this script creates and deletes):
 * full and one-address incremental applies for 100 / 1,000 / 10,000-rule policies with the
 * nft backend, side by side with iptables-restore applying the same ruleset expanded rule
 * by rule; event-loop lag of the applying process during a 10,000-rule apply.
 *   npx tsx bench/apply.ts [--quick] [--out DIR]      (needs root, nft, iptables)
 */
import '../src/runtime/polyfill.js';
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { NftBackend } from '../src/enforce/nft.js';
import { IptablesBackend } from '../src/enforce/iptables.js';
import { compile } from '../src/policy/compile.js';
import type { Policy } from '../src/policy/model.js';
import { argValue, median, percentile, round, saveRows, type Row } from './stats.js';

const quick = process.argv.includes('--quick');
const out = argValue('--out', 'bench-out');
const ns = `pkbench${process.pid % 10000}`;
const rows: Row[] = [];
const now = Date.now();

function policyWith(rules: number, shift = 0): Policy {
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

async function time(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

execFileSync('ip', ['netns', 'add', ns]);
try {
  const wrap = ['ip', 'netns', 'exec', ns];
  const sizes = quick ? [100, 1000, 10000] : [100, 1000, 10000];
  const runs = quick ? 5 : 11;
  for (const n of sizes) {
    const a = compile(policyWith(n), 'n0', { now });
    const b = compile(policyWith(n, 1), 'n0', { now }); // one address moved
    // Same rules plus icmp from anywhere: a different shape, so applying it is a full replace.
    const withIcmp = (p: Policy): Policy => ({ ...p, rules: [...p.rules, { name: 'ping', to: ['any'], from: ['any'], proto: 'icmp', ports: [] }] });
    const c = compile(withIcmp(policyWith(n)), 'n0', { now });
    const nft = new NftBackend({ wrap });
    const unchecked = new NftBackend({ wrap, check: false });
    await nft.apply(a); // creates the table
    const full: number[] = [], fullNoCheck: number[] = [], inc: number[] = [], ipt: number[] = [];
    for (let i = 0; i < runs; i++) full.push(await time(() => nft.apply(i % 2 ? a : c)));
    await unchecked.apply(a);
    for (let i = 0; i < runs; i++) fullNoCheck.push(await time(() => unchecked.apply(i % 2 ? a : c)));
    await nft.apply(a);
    for (let i = 0; i < runs; i++) inc.push(await time(() => nft.apply(i % 2 ? a : b)));
    const iptables = new IptablesBackend({ wrap });
    for (let i = 0; i < runs; i++) ipt.push(await time(() => iptables.apply(i % 2 ? a : b)));
    await iptables.remove();
    rows.push({ scenario: 'apply', metric: 'nft full apply (median)', unit: 'ms', rules: n, value: round(median(full)), baseline: { name: 'iptables-restore', value: round(median(ipt)) } });
    rows.push({ scenario: 'apply', metric: 'nft full apply without the nft -c pre-check (median)', unit: 'ms', rules: n, value: round(median(fullNoCheck)) });
    rows.push({ scenario: 'apply', metric: 'nft one-address incremental apply (median)', unit: 'ms', rules: n, value: round(median(inc)), baseline: { name: 'iptables-restore', value: round(median(ipt)) } });
    rows.push({ scenario: 'apply', metric: 'iptables-restore full apply, rule by rule (median)', unit: 'ms', rules: n, value: round(median(ipt)) });
    console.log(`${n} rules: nft full ${round(median(full))} ms (unchecked ${round(median(fullNoCheck))}), nft incremental ${round(median(inc))} ms, iptables-restore ${round(median(ipt))} ms (compiled rules: ${a.rules.length})`);
    if (n === 10000) {
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      for (let i = 0; i < 3; i++) await nft.apply(i % 2 ? a : c);
      h.disable();
      rows.push({ scenario: 'memory', metric: 'event-loop lag p99 during 10k-rule nft apply', unit: 'ms', rules: n, value: round(h.percentile(99) / 1e6) });
      console.log(`event-loop lag p99 during 10k apply: ${round(h.percentile(99) / 1e6)} ms (max ${round(h.max / 1e6)})`);
    }
    await nft.remove();
  }
} finally {
  execFileSync('ip', ['netns', 'del', ns]);
}
for (const r of rows) console.log(`${r.scenario.padEnd(8)} ${String(r.rules).padStart(6)}  ${r.metric.padEnd(52)} ${String(r.value).padStart(9)} ${r.unit}${r.baseline ? `  (vs ${r.baseline.name} ${r.baseline.value})` : ''}`);
saveRows(`${out}/apply.json`, rows);
console.log(`saved ${out}/apply.json`);
void percentile;
