/**
 * `policy check` cost in-process: the keyless check of a generated policy (N nodes in 10
 * roles, R rules, T tests from a node to a role) with and without its tests block, medians
 * of interleaved runs. The tests cost (source address × node) probes, each one explain over a
 * compiled node (each node compiled once). Prints numbers and saves JSON; asserts nothing.
 *   npx tsx bench/policy-check.ts [--nodes 500] [--rules 200] [--tests 1000] [--runs 5] [--out bench-out]
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkPolicyText } from '../src/policy/check.js';
import { argValue, median, round, saveRows, type Row } from './stats.js';

const nodes = Number(argValue('--nodes', '500'));
const rules = Number(argValue('--rules', '200'));
const tests = Number(argValue('--tests', '1000'));
const runs = Number(argValue('--runs', '5'));
const out = argValue('--out', 'bench-out');

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const peer = (i: number) => `12D3KooW${B58[i % 58]}${B58[Math.floor(i / 58) % 58]}${'x'.repeat(42)}`;
const head = [`meshId: bench`, `version: 1`, `expires: 2099-01-01`, `nodes:`,
  ...Array.from({ length: nodes }, (_, i) => `  - { name: n${i}, peerId: ${peer(i)}, addresses: [10.${i >> 8}.${i & 255}.1], roles: [r${i % 10}] }`),
  `rules:`,
  ...Array.from({ length: rules }, (_, r) => `  - { name: rule${r}, to: role:r${r % 10}, from: role:r${(r + 1) % 10}, proto: tcp, ports: [${1000 + r}] }`),
].join('\n');
// Node n(t) holds role r(t % 10); the rule for role r(t % 10) on port 1000 + (t % 200) admits role r(t % 10 + 1).
const block = ['tests:', ...Array.from({ length: tests }, (_, t) => `  - { from: node:n${t % nodes}, to: role:r${t % 10}, port: ${1000 + (t % rules)}, expect: drop }`)].join('\n');
const withTests = `${head}\n${block}\n`;
const without = `${head}\n`;

const now = Date.parse('2026-11-27T00:00:00Z');
const time = (text: string) => {
  const t0 = performance.now();
  const r = checkPolicyText(text, { now });
  const ms = performance.now() - t0;
  if (r.errors.length) throw new Error(`generated policy has problems: ${r.errors[0]!.message}`);
  return { ms, passed: r.tests.passed };
};
const a: number[] = [], b: number[] = [];
for (let i = 0; i < runs; i++) { a.push(time(without).ms); b.push(time(withTests).ms); }
const probes = tests * (nodes / 10);
const rows: Row[] = [
  { scenario: 'policy-check', metric: `check ${nodes} nodes, ${rules} rules, no tests (median of ${runs})`, unit: 'ms', value: round(median(a), 0) },
  { scenario: 'policy-check', metric: `check ${nodes} nodes, ${rules} rules, ${tests} tests = ${probes} probes (median of ${runs})`, unit: 'ms', value: round(median(b), 0), baseline: { name: 'no tests', value: round(median(a), 0) } },
];
for (const r of rows) console.log(`${r.metric.padEnd(80)} ${String(r.value).padStart(8)} ms`);
saveRows(join(out, 'policy-check.json'), rows);
