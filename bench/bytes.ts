/**
 * Bytes received per node per update, on the real mesh (agents in one process over loopback
 * TCP): a small policy and a ~200 KB one, pushed whole through gossipsub (announceAbove:
 * null) side by side with announce-then-pull (announceAbove: 16 KB), plus publish → applied
 * for both. Bytes are TCP bytes read from each agent's sockets (Noise, yamux, gossipsub
 * framing and duplicates included), minus what the same agent receives while idle for the
 * same time (heartbeats, keep-alives; periodic statuses are off, see BENCH_AUDIT).
 *   npx tsx bench/bytes.ts [--quick] [--out DIR]
 */
import '../src/runtime/polyfill.js';
import { performance } from 'node:perf_hooks';
import { Cluster, until, type NodeSpec } from '../test/helpers/cluster.js';
import { argValue, median, round, saveRows, type Row } from './stats.js';
import { untilMixed } from './warmup.js';

const quick = process.argv.includes('--quick');
const out = argValue('--out', 'bench-out');
const N = quick ? 20 : 30;
const UPDATES = quick ? 3 : 6;
const BULK_RULES = 4000; // ~200 KB signed envelope
// Periodic statuses off (statusInterval 1 h): their traffic is steady per second, not per
// update, and bursty on the interval's scale (every 4th interval's full digests and statuses),
// so a few seconds' idle window cannot stand for it: with them on, two of three configurations
// once measured an idle rate 28× the third's and went negative per update. The statuses an
// update itself causes (each node's tally bit after it applies) are in every window.
const BENCH_AUDIT = { audit: { interval: '1h', probeInterval: 0, statusInterval: '1h', silentAfter: '3h' } };
const rows: Row[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample { bytes: number[]; bodies: number[]; perNode: number[]; all: number; size: number }

const received = (c: Cluster) => c.nodes.map((n) => n.agent!.mesh.wireBytes().received);

async function update(c: Cluster, via: NodeSpec, v: number, bulk: boolean, idleRate: number[]): Promise<Sample> {
  const p = c.policy(v);
  if (bulk) p.rules.push(...Cluster.bulkRules(BULK_RULES, v));
  const size = c.signed(p).length;
  const applied = new Map<string, number>();
  const offs = c.nodes.map((x) => {
    const fn = (s: { policyVersion: number | null }) => { if (s.policyVersion === v && !applied.has(x.name)) applied.set(x.name, performance.now()); };
    x.agent!.engine.on('enforced', fn);
    return () => x.agent!.engine.off('enforced', fn);
  });
  const before = received(c);
  const sync0 = (await Promise.all(c.nodes.map(Cluster.counters))).map((x) => x.syncBytesIn);
  const t0 = performance.now();
  await c.publish(via, p);
  await until(() => applied.size === c.nodes.length, 120_000);
  offs.forEach((off) => off());
  // Trailing traffic belongs to the update too: late duplicates, IHAVE/IWANT, new statuses.
  await sleep(1500);
  const window = performance.now() - t0;
  const after = received(c);
  const bytes = c.nodes.flatMap((n, i) => (n === via ? [] : [after[i]! - before[i]! - idleRate[i]! * window]));
  // The part that came through sync exchanges (pulled or pushed bodies), before Noise/yamux framing.
  const sync1 = (await Promise.all(c.nodes.map(Cluster.counters))).map((x) => x.syncBytesIn);
  const bodies = c.nodes.flatMap((n, i) => (n === via ? [] : [sync1[i]! - sync0[i]!]));
  const lat = c.nodes.filter((n) => n !== via).map((n) => applied.get(n.name)! - t0);
  return { bytes, bodies, perNode: lat, all: Math.max(...lat), size };
}

const MODES = {
  push: 'pushed whole',
  'push-v1.1': 'pushed whole, no IDONTWANT (gossipsub v1.1 peers)',
  announce: 'announce-then-pull',
} as const;

async function mode(name: keyof typeof MODES): Promise<void> {
  const c = await Cluster.create(N, {
    transport: 'tcp', minPeers: 6, bootstrapCount: 3, bootstrapMode: 'previous', syncInterval: '30s',
    announceAbove: name === 'announce' ? 16 * 1024 : null, overrides: BENCH_AUDIT,
  });
  if (name === 'push-v1.1') c.deps = () => ({ noIdontwant: true });
  try {
    await c.startAll();
    await until(() => c.nodes.every((x) => x.agent!.mesh.connectedPeers().length >= 3), 60_000);
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1, 60_000);
    await untilMixed(c); // the first policy's aftermath: connections towards their targets, the first statuses
    await sleep(3000);
    // What each agent receives with nothing happening: subtracted from every update window.
    const i0 = received(c), t0 = performance.now();
    await sleep(6000);
    const idleRate = received(c).map((b, i) => (b - i0[i]!) / (performance.now() - t0));
    let v = 2;
    for (const bulk of [false, true]) {
      const samples: Sample[] = [];
      for (let u = 0; u < UPDATES; u++, v++) samples.push(await update(c, c.nodes[(v * 7) % N]!, v, bulk, idleRate));
      const size = Math.round(median(samples.map((s) => s.size)));
      const bytes = samples.flatMap((s) => s.bytes);
      const label = bulk ? `${Math.round(size / 1024)} KB policy` : `small policy (${(size / 1024).toFixed(1)} KB)`;
      const m = MODES[name];
      rows.push({ scenario: 'bytes', metric: `${label}, ${m}: bytes received per node per update (median)`, unit: 'bytes', nodes: N, value: Math.round(median(bytes)) });
      rows.push({ scenario: 'bytes', metric: `${label}, ${m}: received / envelope size (median)`, unit: '×', nodes: N, value: round(median(bytes) / size) });
      rows.push({ scenario: 'bytes', metric: `${label}, ${m}: of which through sync exchanges (median)`, unit: 'bytes', nodes: N, value: Math.round(median(samples.flatMap((s) => s.bodies))) });
      rows.push({ scenario: 'bytes', metric: `${label}, ${m}: publish → applied per node (median)`, unit: 'ms', nodes: N, value: round(median(samples.flatMap((s) => s.perNode))) });
      rows.push({ scenario: 'bytes', metric: `${label}, ${m}: publish → applied on every node (median)`, unit: 'ms', nodes: N, value: round(median(samples.map((s) => s.all))) });
      if (bulk) rows.push({ scenario: 'bytes', metric: `${label}: envelope size`, unit: 'bytes', nodes: N, value: size });
    }
    const idle = median(idleRate.map((r) => r * 1000));
    rows.push({ scenario: 'bytes', metric: `${MODES[name]}: idle traffic per node (heartbeats, keep-alives; subtracted above)`, unit: 'bytes/s', nodes: N, value: Math.round(idle) });
  } finally {
    await c.destroy();
  }
}

for (const m of ['push', 'push-v1.1', 'announce'] as const) {
  await mode(m);
  console.log(`${m} done`);
}
for (const r of rows) console.log(`${r.scenario.padEnd(6)} ${String(r.nodes ?? '').padStart(4)}  ${r.metric.padEnd(86)} ${String(r.value).padStart(9)} ${r.unit}`);
saveRows(`${out}/bytes.json`, rows);
console.log(`saved ${out}/bytes.json`);
process.exit(0);
