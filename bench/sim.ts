/**
 * Seeded discrete-event simulation of picket's dissemination beyond one machine:
 *   npm run sim -- --nodes 10000 --degree 6 --latency 50ms --loss 0.05 [--partition 2s] [--seed S] [--out DIR]
 * Models the gossipsub mesh push (degree D), heartbeat gossip (IHAVE/IWANT to non-mesh
 * peers), and anti-entropy (periodic and on reconnect after a partition). It reuses the
 * product's pure code: every node verifies the real signed envelope with verifyPolicy the
 * first time it receives it, and sync decisions come from planPush.
 * Reports time to 99.9% / 100% of nodes, messages and bytes per node, and convergence over
 * time against the hop lower bound and Serf's published model.
 */
import '../src/runtime/polyfill.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../src/runtime/random.js';
import { parseDuration } from '../src/runtime/duration.js';
import { planPush } from '../src/mesh/sync-plan.js';
import { generateSigningKey } from '../src/trust/keys.js';
import { digestOf, encodeEnvelope, PAYLOAD_TYPE, signEnvelope } from '../src/trust/envelope.js';
import { encodeRoot, type RootDoc } from '../src/trust/root.js';
import { encodePolicy, type Policy } from '../src/policy/model.js';
import { verifyPolicy } from '../src/trust/verify.js';
import { argValue } from './stats.js';

const N = Number(argValue('--nodes', '10000'));
const D = Number(argValue('--degree', '6'));
const LAT = parseDuration(argValue('--latency', '50ms')) ?? 50;
const LOSS = Number(argValue('--loss', '0.05'));
const SEED = Number(argValue('--seed', '42'));
const PARTITION = process.argv.includes('--partition') ? parseDuration(argValue('--partition', '2s')) ?? 2000 : 0;
const HEARTBEAT = 700, GOSSIP_D = 6, HISTORY = 3, SYNC = parseDuration(argValue('--sync', '30s')) ?? 30000;
const out = argValue('--out', 'bench-out');
const rnd = seededRandom(SEED);

// The real signed document every node verifies.
const admin = generateSigningKey();
const now = Date.now();
const root: RootDoc = { version: 1, expires: now + 365 * 86400e3, keys: [{ keyId: admin.keyId, publicKey: admin.publicKey }], roles: { root: { keyIds: [admin.keyId], threshold: 1 }, policy: { keyIds: [admin.keyId], threshold: 1 } } };
const trusted = { root, digest: digestOf(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(root), [admin])) };
const policy: Policy = { meshId: 'sim', version: 2, issuedAt: now, expires: now + 86400e3, nodes: [], rules: [{ name: 'https', to: ['any'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] }], exceptions: [], settings: { onExpiry: 'keep' } };
const envelope = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(policy), [admin]));
const SIZE = envelope.length, CTRL = 64, HELLO = 96;

// Topology: each node keeps D mesh peers (gossipsub's D) among ~2D connections.
const conns: number[][] = Array.from({ length: N }, () => []);
const link = (a: number, b: number) => { if (a !== b && !conns[a]!.includes(b)) { conns[a]!.push(b); conns[b]!.push(a); } };
for (let i = 0; i < N; i++) while (conns[i]!.length < D) link(i, rnd.int(N));
const mesh = conns.map((c) => c.slice(0, D));
const half = (i: number) => (i < N / 2 ? 0 : 1);
let partitioned = PARTITION > 0;
const cut = (a: number, b: number) => partitioned && half(a) !== half(b);

// Event queue: a binary heap on time.
type Ev = { t: number; kind: 'data' | 'ihave' | 'iwant' | 'heartbeat' | 'sync' | 'heal'; to: number; from: number };
const heap: Ev[] = [];
const push = (e: Ev) => { heap.push(e); let i = heap.length - 1; while (i > 0) { const p = (i - 1) >> 1; if (heap[p]!.t <= e.t) break; heap[i] = heap[p]!; i = p; } heap[i] = e; };
const pop = (): Ev | undefined => { const top = heap[0]; const last = heap.pop(); if (!heap.length || !last) return top; let i = 0; for (;;) { const l = 2 * i + 1, r = l + 1; let m = i; if (l < heap.length && heap[l]!.t < (m === i ? last.t : heap[m]!.t)) m = l; if (r < heap.length && heap[r]!.t < (m === i ? last.t : heap[m]!.t)) m = r; if (m === i) break; heap[i] = heap[m]!; i = m; } heap[i] = last; return top; };

const has = new Float64Array(N).fill(-1); // time a node accepted the policy (-1: not yet)
const version = new Int32Array(N).fill(1);
const msgs = new Float64Array(N), bytes = new Float64Array(N);
let verified = 0;
const send = (t: number, kind: Ev['kind'], from: number, to: number, size: number) => {
  msgs[from]!++;
  bytes[to]! += size;
  if (cut(from, to) || rnd.next() < LOSS) return;
  push({ t: t + LAT * (0.8 + rnd.next() * 0.4), kind, to, from });
};

function accept(node: number, t: number, from: number): void {
  if (has[node]! >= 0) return;
  // The product's verifier, on the real envelope, against this node's state.
  const v = verifyPolicy(envelope, { root: trusted, meshId: 'sim', policy: { version: version[node]!, digest: 'none' } }, now);
  verified++;
  if (v.outcome !== 'accepted') throw new Error(`node ${node} refused: ${v.outcome}`);
  has[node] = t;
  version[node] = 2;
  for (const p of mesh[node]!) if (p !== from) send(t, 'data', node, p, SIZE);
}

const holdings = (i: number) => ({ meshId: 'sim', rootVersion: 1, policyVersion: version[i]!, policyDigest: version[i] === 2 ? 'd2' : 'd1' });
const END = 60_000 + PARTITION;
accept(0, 0, -1);
for (let i = 0; i < N; i++) {
  push({ t: rnd.next() * HEARTBEAT, kind: 'heartbeat', to: i, from: i });
  push({ t: rnd.next() * SYNC, kind: 'sync', to: i, from: i });
}
if (PARTITION) push({ t: PARTITION, kind: 'heal', to: 0, from: 0 });

const curve: [number, number][] = [];
let count = 1, nextSample = 0, t999 = NaN, t100 = NaN;
for (let e = pop(); e && e.t <= END; e = pop()) {
  const { t, kind, to, from } = e;
  if (kind === 'data') { const before = has[to]! >= 0; accept(to, t, from); if (!before && has[to]! >= 0) count++; }
  else if (kind === 'ihave') { if (has[to]! < 0) send(t, 'iwant', to, from, CTRL); }
  else if (kind === 'iwant') { send(t, 'data', to, from, SIZE); }
  else if (kind === 'heartbeat') {
    // Gossip IHAVE to a few connections outside the mesh, for HISTORY heartbeats after receipt.
    if (has[to]! >= 0 && t - has[to]! < HISTORY * HEARTBEAT) {
      const others = conns[to]!.filter((p) => !mesh[to]!.includes(p));
      for (let k = 0; k < Math.min(GOSSIP_D, others.length); k++) send(t, 'ihave', to, others[rnd.int(others.length)]!, CTRL);
    }
    push({ t: t + HEARTBEAT, kind: 'heartbeat', to, from: to });
  } else if (kind === 'sync') {
    // Anti-entropy with a random connection: Hello both ways, then the side behind is pushed.
    const p = conns[to]![rnd.int(conns[to]!.length)]!;
    if (!cut(to, p)) {
      msgs[to]! += 2; bytes[p]! += HELLO; bytes[to]! += HELLO;
      if (planPush(holdings(p), holdings(to)).policy) { const before = has[to]! >= 0; bytes[to]! += SIZE; if (rnd.next() >= LOSS) { accept(to, t + 3 * LAT, p); if (!before) count++; } }
      else if (planPush(holdings(to), holdings(p)).policy) { const before = has[p]! >= 0; bytes[p]! += SIZE; if (rnd.next() >= LOSS) { accept(p, t + 3 * LAT, to); if (!before) count++; } }
    }
    push({ t: t + SYNC * (0.8 + rnd.next() * 0.4), kind: 'sync', to, from: to });
  } else if (kind === 'heal') {
    partitioned = false;
    // Reconnection triggers a sync on every node that had a cut connection.
    for (let i = 0; i < N; i++) if (conns[i]!.some((p) => half(p) !== half(i))) push({ t: t + LAT * 2 * rnd.next(), kind: 'sync', to: i, from: i });
  }
  while (t >= nextSample) { curve.push([nextSample, count / N]); nextSample += 50; }
  if (Number.isNaN(t999) && count >= 0.999 * N) t999 = t;
  if (Number.isNaN(t100) && count === N) { t100 = t; break; }
}
curve.push([nextSample, count / N]);

// References: hop lower bound and Serf's convergence model (fanout 3, interval 200 ms).
let h = 0, reach = 1, layer = D;
while (reach < N) { reach += layer; layer *= D - 1; h++; }
const hopBound = h * LAT;
const serf = (tMs: number) => { const beta = (3 * (1 - LOSS)) / 2; return 1 / (1 + (N + 1) * Math.exp(-beta * (tMs / 200))); };
let serfFull = 0; while (serf(serfFull) < 1 - 1 / N) serfFull += 10;

const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
const result = {
  nodes: N, degree: D, latencyMs: LAT, loss: LOSS, seed: SEED, partitionMs: PARTITION, envelopeBytes: SIZE,
  timeTo999Ms: Math.round(t999), timeTo100Ms: Number.isNaN(t100) ? null : Math.round(t100),
  messagesPerNode: Math.round(mean(msgs) * 10) / 10, bytesPerNode: Math.round(mean(bytes)), verifications: verified,
  hopLowerBoundMs: hopBound, serfModelAllMs: serfFull,
};
console.log(JSON.stringify(result, null, 2));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'sim.json'), JSON.stringify({ ...result, curve }, null, 2) + '\n');
const simRows = [
  { scenario: 'sim', metric: `simulated ${N} nodes, ${LAT} ms, ${LOSS * 100}% loss: time to 99.9% of nodes`, unit: 'ms', nodes: N, value: result.timeTo999Ms },
  { scenario: 'sim', metric: `simulated ${N} nodes, ${LAT} ms, ${LOSS * 100}% loss: time to 100% of nodes`, unit: 'ms', nodes: N, value: result.timeTo100Ms ?? -1, baseline: { name: 'serf-model', value: serfFull } },
  { scenario: 'sim', metric: 'hop lower bound (1 + D·Σ(D−1)^i ≥ N, × latency)', unit: 'ms', nodes: N, value: hopBound },
  { scenario: 'sim', metric: 'messages sent per node per update (simulated)', unit: 'messages', nodes: N, value: result.messagesPerNode },
  { scenario: 'sim', metric: 'bytes received per node per update (simulated)', unit: 'bytes', nodes: N, value: result.bytesPerNode },
];
writeFileSync(join(out, 'sim-rows.json'), JSON.stringify(simRows, null, 2) + '\n');
const W = 720, H = 300, maxT = Math.max(curve[curve.length - 1]![0], serfFull, hopBound) * 1.05;
const x = (tt: number) => 50 + ((W - 70) * tt) / maxT, y = (f: number) => H - 30 - (H - 60) * f;
const path = (pts: [number, number][]) => pts.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');
const serfPts: [number, number][] = []; for (let tt = 0; tt <= maxT; tt += maxT / 200) serfPts.push([tt, serf(tt)]);
writeFileSync(join(out, 'sim.svg'), `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<text x="10" y="18" font-size="14" font-weight="bold">${N} nodes, ${LAT} ms, ${LOSS * 100}% loss: fraction holding the new policy</text>
<path d="${path(curve)}" stroke="#2a7ab9" fill="none" stroke-width="2"/><path d="${path(serfPts)}" stroke="#c44" fill="none" stroke-dasharray="4 3"/>
<line x1="${x(hopBound)}" y1="${y(0)}" x2="${x(hopBound)}" y2="${y(1)}" stroke="#888" stroke-dasharray="2 2"/>
<text x="${x(hopBound) + 4}" y="${y(0.1)}" font-size="11" fill="#555">hop bound ${hopBound} ms</text>
<text x="60" y="40" font-size="11" fill="#2a7ab9">picket (simulated)</text><text x="60" y="54" font-size="11" fill="#c44">Serf model (fanout 3, 200 ms)</text>
<line x1="50" y1="${y(0)}" x2="${W - 20}" y2="${y(0)}" stroke="#000"/><text x="${W - 80}" y="${H - 8}" font-size="11">${Math.round(maxT)} ms</text>
</svg>\n`);
