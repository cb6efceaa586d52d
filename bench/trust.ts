/**
 * Trust and compile throughput: signatures signed and verified per second, and the time to
 * decode+verify, compile and render a 10,000-rule policy, and to enforce one update on one
 * node of a 1,000- and a 10,000-node fleet. Prints medians, saves JSON.
 *   npm run bench:trust -- [--out bench-out]
 */
import '../src/runtime/polyfill.js';
import { performance } from 'node:perf_hooks';
import { generateSigningKey } from '../src/trust/keys.js';
import { encodeEnvelope, PAYLOAD_TYPE, signEnvelope, digestOf } from '../src/trust/envelope.js';
import { encodeRoot, type RootDoc } from '../src/trust/root.js';
import { verifyPolicy } from '../src/trust/verify.js';
import { encodePolicy, type Policy } from '../src/policy/model.js';
import { compile } from '../src/policy/compile.js';
import { renderNft } from '../src/enforce/render-nft.js';
import { renderIptables } from '../src/enforce/render-iptables.js';
import { Enforcer } from '../src/enforce/enforcer.js';
import { MemoryBackend } from '../src/enforce/backend.js';
import { systemClock } from '../src/runtime/clock.js';
import { silentLogger } from '../src/runtime/logger.js';
import { argValue, median, round, saveRows, type Row } from './stats.js';

const out = argValue('--out', 'bench-out');
const [a, b] = [generateSigningKey(), generateSigningKey()];
const now = Date.now();
const root: RootDoc = {
  version: 1, expires: now + 86400e3 * 365,
  keys: [a, b].map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })),
  roles: { root: { keyIds: [a.keyId, b.keyId], threshold: 2 }, policy: { keyIds: [a.keyId, b.keyId], threshold: 2 } },
};
const trusted = { root, digest: digestOf(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(root), [a, b])) };

function bigPolicy(rules: number, nodeCount = 200): Policy {
  const nodes = Array.from({ length: nodeCount }, (_, i) => ({
    name: `n${i}`, peerId: `12D3KooW${String(i).padStart(44, 'A').replace(/0/g, 'B')}`,
    addresses: [`10.${(i >> 8) & 255}.${i & 255}.1`], roles: [`role${i % 20}`],
  }));
  return {
    meshId: 'bench', version: 1, issuedAt: now, expires: now + 86400e3, nodes,
    rules: Array.from({ length: rules }, (_, i) => ({
      name: `r${i}`, to: [i % 3 === 0 ? 'any' : `role:role${i % Math.min(20, nodeCount)}`], from: [i % 2 ? `role:role${(i + 1) % Math.min(20, nodeCount)}` : `cidr:172.${16 + (i % 16)}.${(i >> 4) & 255}.0/24`],
      proto: i % 5 === 0 ? 'udp' as const : 'tcp' as const, ports: [{ first: 1000 + (i % 60000), last: 1000 + (i % 60000) }],
    })),
    exceptions: [], settings: { onExpiry: 'keep' },
  };
}

function timeIt(runs: number, fn: () => void): number[] {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return times;
}

const rows: Row[] = [];
const small = encodePolicy(bigPolicy(10, 20));
const N = 2000;
const signRuns = timeIt(5, () => { for (let i = 0; i < N; i++) signEnvelope(PAYLOAD_TYPE.policy, small, [a]); });
rows.push({ scenario: 'verify', metric: 'signatures signed per second', unit: 'ops/s', value: round(N / (median(signRuns) / 1000), 0) });
const signed = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, small, [a, b]));
const verifyRuns = timeIt(5, () => { for (let i = 0; i < N / 2; i++) verifyPolicy(signed, { root: trusted }, now); });
rows.push({ scenario: 'verify', metric: 'policies verified per second (2-of-2 signatures, decode included)', unit: 'ops/s', value: round(N / 2 / (median(verifyRuns) / 1000), 0) });
rows.push({ scenario: 'verify', metric: 'signatures verified per second', unit: 'ops/s', value: round(N / (median(verifyRuns) / 1000), 0) });

const p10k = bigPolicy(10_000);
const bytes10k = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(p10k), [a, b]));
rows.push({ scenario: 'verify', metric: '10k-rule envelope size', unit: 'bytes', value: bytes10k.length, rules: 10_000 });
let verified: Policy | undefined;
rows.push({ scenario: 'verify', metric: 'decode+verify 10k-rule policy (median)', unit: 'ms', rules: 10_000, value: round(median(timeIt(15, () => {
  const v = verifyPolicy(bytes10k, { root: trusted }, now);
  if (v.outcome !== 'accepted') throw new Error(v.reason);
  verified = v.policy;
}))) });
let rs: ReturnType<typeof compile> | undefined;
rows.push({ scenario: 'verify', metric: 'compile 10k-rule policy for one node (median)', unit: 'ms', rules: 10_000, value: round(median(timeIt(15, () => { rs = compile(verified!, 'n1', { now }); }))) });
rows.push({ scenario: 'verify', metric: 'render nft for a 10k-rule policy (median)', unit: 'ms', rules: 10_000, value: round(median(timeIt(15, () => renderNft(rs!)))) });
rows.push({ scenario: 'verify', metric: 'render iptables for a 10k-rule policy (median)', unit: 'ms', rules: 10_000, value: round(median(timeIt(15, () => renderIptables(rs!, 4)))) });
rows.push({ scenario: 'verify', metric: 'compiled rules for n1', unit: 'rules', rules: 10_000, value: rs!.rules.length });

// One update enforced on one node of a large fleet: the agent's whole step after verify
// (compile, plan, the memory backend's apply and read-back). What a node does per update
// must grow with the fleet linearly (a quadratic step here took 803 ms at 1,000 nodes).
for (const fleet of [1000, 10_000]) {
  const pol = bigPolicy(100, fleet);
  const e = new Enforcer({ backend: new MemoryBackend(), clock: systemClock, log: silentLogger, peerId: pol.nodes[0]!.peerId, meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['192.168.0.0/16'], sshPort: 22 });
  const times: number[] = [];
  for (let v = 1; v <= 9; v++) {
    const t = performance.now();
    const s = await e.enforce({ ...pol, version: v }, now);
    times.push(performance.now() - t);
    if (s.state !== 'ok') throw new Error(`enforce: ${s.state} ${s.reason ?? ''}`);
  }
  rows.push({ scenario: 'verify', metric: `enforce one update on one node of a ${fleet}-node fleet (compile, plan, memory apply; median)`, unit: 'ms', nodes: fleet, value: round(median(times)), min: round(Math.min(...times)), max: round(Math.max(...times)), runs: times.length });
}

for (const r of rows) console.log(`${r.metric.padEnd(70)} ${String(r.value).padStart(10)} ${r.unit}`);
saveRows(`${out}/trust.json`, rows);
console.log(`saved ${out}/trust.json`);
