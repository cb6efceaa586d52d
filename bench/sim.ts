/**
 * The fleet-scale simulation (bench/sim/world.ts): N simulated nodes running picket's own
 * decision code — gossip validators, the engine's accept judgement, sync planning and claims,
 * announcements and pulls, admission and budgets, the status plane — over a simulated
 * transport, with gossipsub modelled as the library it is.
 *   npm run sim -- --nodes 10000 [--nodes-list 1000,10000] --degree 6 --latency 50ms --loss 0.05
 *                  [--partition 2s] [--seed S] [--seeds K] [--status-sample S] [--rules R] [--sync 30s] [--out DIR]
 *                  [--status-plane full|digest|both] [--digest-max N] [--digest-seeds-above K]
 * `--nodes` takes one size or a comma list; each size runs K seeds (S, S+1, …) and reports
 * min / median / max over them. Same seed → same result (the JSON, not the wall time).
 * Status: every node signs a status after it applies the update; a seeded sample of origins
 * (--status-sample, default 10 up to 1,000 nodes, 8 above) is simulated in full — every node
 * receives, verifies and relays their statuses — and per-node figures are scaled by N / sample
 * (statuses of different origins never interact in the current plane).
 * `--status-plane full|digest|both` (default both): which status plane to run per seed. The
 * digest plane (bench/sim/digest.ts: the product's FleetDigest, tallies, signed claims, real
 * encoder) is not per-origin: every node's change is simulated and nothing is scaled. After
 * every view is complete, one operator read of the verified view at the last node is
 * simulated (its wants make every node relay every claim: N² memory), up to --digest-max
 * nodes (default 1000); above it the read is left out, and the output says so.
 */
import '../src/runtime/polyfill.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseDuration } from '../src/runtime/duration.js';
import { argValue, spread, type Row } from './stats.js';
import { DEFAULTS, runSim, type SimResult } from './sim/world.js';
import { CurrentStatusPlane, type StatusPlaneSim } from './sim/status.js';
import { DigestStatusPlane } from './sim/digest.js';
import { DIGEST_TIMING } from '../src/audit/status-digest.js';

function fail(msg: string): never {
  console.error(`sim: ${msg}`);
  process.exit(2);
}
const int = (flag: string, fallback: string, min: number, max: number) => {
  const v = argValue(flag, fallback);
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) fail(`${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v.slice(0, 32))})`);
  return n;
};
const duration = (flag: string, fallback: string) => {
  const v = argValue(flag, fallback);
  const d = parseDuration(v);
  if (d === undefined || !Number.isFinite(d) || d < 0) fail(`${flag} must be a duration such as 50ms or 2s (got ${JSON.stringify(v.slice(0, 32))})`);
  return d;
};

const sizesArg = argValue('--nodes', '10000');
if (!/^\d+(,\d+)*$/.test(sizesArg)) fail(`--nodes must be a number or a comma list of numbers (got ${JSON.stringify(sizesArg.slice(0, 32))})`);
const SIZES = sizesArg.split(',').map(Number).sort((a, b) => b - a);
if (SIZES.some((n) => n < 2 || n > 100_000)) fail('--nodes: each size must be from 2 to 100000');
const D = int('--degree', '6', 1, 64);
const LAT = duration('--latency', '50ms');
const lossArg = argValue('--loss', '0.05');
const LOSS = Number(lossArg);
if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(lossArg) || LOSS >= 1) fail(`--loss must be a fraction from 0 to below 1 (got ${JSON.stringify(lossArg.slice(0, 32))})`);
const SEED = int('--seed', '42', 0, 2 ** 31 - 1);
const SEEDS = int('--seeds', '1', 1, 100);
const PARTITION = process.argv.includes('--partition') ? duration('--partition', '2s') : 0;
const SYNC = duration('--sync', '30s') || DEFAULTS.syncIntervalMs;
const RULES = int('--rules', '0', 0, 100_000);
const sampleFor = (n: number) => (process.argv.includes('--status-sample') ? int('--status-sample', '0', 0, 100_000) : n <= 1000 ? 10 : 8);
const out = argValue('--out', 'bench-out');
const planeArg = argValue('--status-plane', 'both');
if (!['full', 'digest', 'both'].includes(planeArg)) fail(`--status-plane must be full, digest or both (got ${JSON.stringify(planeArg.slice(0, 32))})`);
const PLANES = (planeArg === 'both' ? ['full', 'digest'] : [planeArg]) as ('full' | 'digest')[];
/**
 * The operator read on the digest plane makes every simulated node hold every node's claim:
 * memory grows as N² (10,000 nodes: 10⁸ held claims, past this machine's heap). Sizes above
 * --digest-max simulate the change without the read, and say so.
 */
const DIGEST_MAX = int('--digest-max', '1000', 2, 100_000);
const planesFor = (_n: number) => PLANES;
const readAt = (n: number) => n <= DIGEST_MAX;
/** Seeds for the digest plane above --digest-max (10,000 nodes: ~3 min and 6 GB a run). Default: --seeds. */
const DIGEST_SEEDS_ABOVE = process.argv.includes('--digest-seeds-above') ? int('--digest-seeds-above', '1', 1, 100) : undefined;
const seedsFor = (n: number, plane: 'full' | 'digest') => (plane === 'digest' && !readAt(n) && DIGEST_SEEDS_ABOVE !== undefined ? Math.min(DIGEST_SEEDS_ABOVE, SEEDS) : SEEDS);
/** The digest plane's runs: long enough for one periodic full digest (statusInterval 30 s, jittered up to 1.1). */
const DIGEST_END = 60_000 + PARTITION + DIGEST_TIMING.fullEvery * 30_000 * 1.1;

const rows: Row[] = [];
/** Runs by size, for the first plane run (policy figures); status figures per plane. */
const all: Record<number, SimResult[]> = {};
const byPlane: Record<number, Partial<Record<'full' | 'digest', SimResult[]>>> = {};
const timing: Record<number, Partial<Record<'full' | 'digest', { wallS: number[]; cpuS: number[] }>>> = {};
for (const N of SIZES) {
  all[N] = [];
  byPlane[N] = {};
  timing[N] = {};
  if (PLANES.includes('digest') && !readAt(N)) console.log(`sim: ${N} nodes: digest plane without the operator read (above --digest-max ${DIGEST_MAX}: the read makes every simulated node hold every claim, N² memory)`);
  for (const plane of planesFor(N)) {
    const runs: SimResult[] = (byPlane[N][plane] = []);
    const tm = (timing[N][plane] = { wallS: [] as number[], cpuS: [] as number[] });
    for (let k = 0; k < seedsFor(N, plane); k++) {
      const seed = SEED + k;
      const wall = performance.now(), cpu = process.cpuUsage();
      const statusPlane: StatusPlaneSim = plane === 'full' ? new CurrentStatusPlane() : new DigestStatusPlane();
      const r = await runSim({
        nodes: N, degree: D, latencyMs: LAT, loss: LOSS, seed, partitionMs: PARTITION, syncIntervalMs: SYNC, extraRules: RULES,
        statusPlane, statusSample: sampleFor(N), ...(plane === 'digest' ? { endMs: DIGEST_END, statusRead: readAt(N) } : {}),
      });
      const c = process.cpuUsage(cpu);
      tm.wallS.push((performance.now() - wall) / 1000);
      tm.cpuS.push((c.user + c.system) / 1e6);
      runs.push(r);
      if (plane === planesFor(N)[0]) all[N].push(r);
      const { curve: _curve, ...brief } = r;
      console.log(JSON.stringify(brief));
    }
  }
}

// References: the hop lower bound and Serf's convergence model (fanout 3, interval 200 ms).
const hopBound = (N: number) => { let h = 0, reach = 1, layer = D; while (reach < N) { reach += layer; layer *= D - 1; h++; } return h * LAT; };
const serf = (N: number, tMs: number) => 1 / (1 + (N + 1) * Math.exp(-((3 * (1 - LOSS)) / 2) * (tMs / 200)));
const serfAll = (N: number) => { let t = 0; while (serf(N, t) < 1 - 1 / N) t += 10; return t; };

const row = (scenario: string, metric: string, unit: string, N: number, values: number[], d = 1, extra: Partial<Row> = {}): Row => {
  const s = spread(values, d);
  return { scenario, metric, unit, nodes: N, value: s.median, min: s.min, max: s.max, runs: values.length, ...extra };
};
const net = `${LAT} ms, ${LOSS * 100}% loss${PARTITION ? `, ${PARTITION} ms partition` : ''}`;
for (const N of SIZES) {
  const rs = all[N]!;
  // A run that never reached every node counts as the simulated time limit (reported as such).
  const limit = 60_000 + PARTITION;
  rows.push(row('sim', `simulated ${N} nodes, ${net}: time to 99.9% of nodes`, 'ms', N, rs.map((r) => r.timeTo999Ms ?? limit), 0));
  rows.push(row('sim', `simulated ${N} nodes, ${net}: time to 100% of nodes`, 'ms', N, rs.map((r) => r.timeTo100Ms ?? limit), 0, { baseline: { name: 'serf-model', value: serfAll(N) } }));
  rows.push({ scenario: 'sim', metric: 'hop lower bound (1 + D·Σ(D−1)^i ≥ N, × latency)', unit: 'ms', nodes: N, value: hopBound(N) });
  rows.push(row('sim', 'messages sent per node per update (simulated)', 'messages', N, rs.map((r) => r.messagesPerNode)));
  rows.push(row('sim', 'bytes received per node per update (simulated)', 'bytes', N, rs.map((r) => r.bytesPerNode), 0));
  for (const plane of planesFor(N)) {
    const st = byPlane[N]![plane]!.map((r) => r.status!);
    const end = plane === 'digest' ? DIGEST_END : limit;
    const how = plane === 'full'
      ? `simulated ${N} nodes, full plane, ${st[0]!.sampledOrigins} origins sampled and scaled`
      : `simulated ${N} nodes, digest plane, every node's change simulated`;
    const what = plane === 'full' ? 'the sampled origins' : 'every node';
    rows.push(row('status', `status bytes received per node per fleet-wide change (${how})`, 'bytes', N, st.map((s) => s.bytesPerNodePerChange), 0));
    rows.push(row('status', `status messages sent per node per fleet-wide change (${how})`, 'messages', N, st.map((s) => s.messagesPerNodePerChange)));
    rows.push(row('status', `status verifications per node per fleet-wide change (${how})`, 'verifications', N, st.map((s) => s.verificationsPerNodePerChange)));
    rows.push(row('status', `status: time until 99.9% of nodes' views show ${what} on the update (${how})`, 'ms', N, st.map((s) => s.viewTo999Ms ?? end), 0));
    rows.push(row('status', `status: time until every node's view shows ${what} on the update (${how})`, 'ms', N, st.map((s) => s.viewTo100Ms ?? end), 0));
    if (st.every((s) => s.readBytesPerNode !== undefined)) {
      rows.push(row('status', `status: one operator read of the verified view after the change, until every row verifies (${how})`, 'ms', N, st.map((s) => s.readMs ?? 120_000), 0));
      rows.push(row('status', `status: bytes received per node for that read (${how})`, 'bytes', N, st.map((s) => s.readBytesPerNode!), 0));
    }
    rows.push(row('sim', `wall time of one ${N}-node run, ${plane} plane (this machine)`, 's', N, timing[N]![plane]!.wallS));
    rows.push(row('sim', `CPU time of one ${N}-node run, ${plane} plane (this machine)`, 's', N, timing[N]![plane]!.cpuS));
  }
}

mkdirSync(out, { recursive: true });
const biggest = SIZES[0]!;
const first = all[biggest]![0]!;
writeFileSync(join(out, 'sim.json'), JSON.stringify({ sizes: SIZES, seeds: SEEDS, firstSeed: SEED, planes: PLANES, runs: byPlane, timing }, null, 2) + '\n');
writeFileSync(join(out, 'sim-rows.json'), JSON.stringify(rows, null, 2) + '\n');

// The convergence curve of the first seed at the largest size, against the hop bound and Serf's model.
const N = biggest, curve = first.curve, hb = hopBound(N), serfFull = serfAll(N);
const W = 720, H = 300, maxT = Math.max(curve[curve.length - 1]![0], serfFull, hb) * 1.05;
const x = (tt: number) => 50 + ((W - 70) * tt) / maxT, y = (f: number) => H - 30 - (H - 60) * f;
const path = (pts: [number, number][]) => pts.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');
const serfPts: [number, number][] = []; for (let tt = 0; tt <= maxT; tt += maxT / 200) serfPts.push([tt, serf(N, tt)]);
writeFileSync(join(out, 'sim.svg'), `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<text x="10" y="18" font-size="14" font-weight="bold">${N} nodes, ${LAT} ms, ${LOSS * 100}% loss: fraction holding the new policy</text>
<path d="${path(curve)}" stroke="#2a7ab9" fill="none" stroke-width="2"/><path d="${path(serfPts)}" stroke="#c44" fill="none" stroke-dasharray="4 3"/>
<line x1="${x(hb)}" y1="${y(0)}" x2="${x(hb)}" y2="${y(1)}" stroke="#888" stroke-dasharray="2 2"/>
<text x="${x(hb) + 4}" y="${y(0.1)}" font-size="11" fill="#555">hop bound ${hb} ms</text>
<text x="60" y="40" font-size="11" fill="#2a7ab9">picket (simulated, the product's decision code)</text><text x="60" y="54" font-size="11" fill="#c44">Serf model (fanout 3, 200 ms)</text>
<line x1="50" y1="${y(0)}" x2="${W - 20}" y2="${y(0)}" stroke="#000"/><text x="${W - 80}" y="${H - 8}" font-size="11">${Math.round(maxT)} ms</text>
</svg>\n`);
for (const r of rows) console.log(`${r.scenario.padEnd(6)} ${r.metric}: ${r.value} ${r.unit}${r.min !== undefined ? ` (${r.min}–${r.max})` : ''}`);
