/**
 * The status plane per fleet-wide change, on the real mesh (agents in one process over
 * loopback TCP), the earlier plane ('full': every node floods its full signed status on every
 * change and verifies everyone's) side by side with the digest plane (compact signed claims
 * to direct neighbours, merged without checks, verified when used). A fleet-wide change is a
 * published policy version: every node applies it and its status changes. Per node and change:
 *   - TCP bytes received (Noise, yamux, gossipsub framing and duplicates included; the policy's
 *     own propagation is in both planes alike), minus the same node's idle rate;
 *   - status-plane payload bytes received (first copies of statuses and digests);
 *   - signature checks made for statuses and claims;
 * and how long until every node's view shows every node on the new version, and what one
 * operator read (`status --mesh`: the verified view) costs on the digest plane. Periodic
 * statuses run (statusInterval 15 s); each node's idle rates (bytes, checks) are measured
 * over 30 s and subtracted from every change window, and reported as rows of their own.
 * A third configuration ('alone': the digest plane with periodic statuses off, statusInterval
 * 1 h) measures what a change costs by itself: with liveness on, every change window also
 * holds part of the steady liveness traffic (N claims per interval, each to every node, and
 * every 4th interval's full digests: O(N) per node per *second*, not per change), which grows
 * with N on its own and which idle subtraction removes only on average (its payload arrives
 * in bursts a 3 s window catches or misses).
 *   npx tsx bench/status.ts [--quick] [--sizes 10,30,100] [--planes full,digest,alone] [--out DIR]
 * --quick: 10 and 30 nodes, 3 changes each. Default: 10 and 30, 4 changes each. Larger --sizes
 * run (2 changes) but mean little on a small machine: at 100 the one process is saturated before
 * anything is published and idle-subtracted figures went negative (bench/procs.ts measures the
 * status plane on agent processes instead).
 */
import '../src/runtime/polyfill.js';
import { performance } from 'node:perf_hooks';
import { Cluster, until, type NodeSpec } from '../test/helpers/cluster.js';
import { argValue, median, round, saveRows, spread, type Row } from './stats.js';

const quick = process.argv.includes('--quick');
const out = argValue('--out', 'bench-out');
const sizes = argValue('--sizes', '10,30').split(',').map(Number);
const changesAt = (n: number) => (quick ? 3 : n >= 100 ? 2 : 4);
const rows: Row[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Plane = 'full' | 'digest' | 'alone';
const planes = argValue('--planes', 'full,digest,alone').split(',') as Plane[];
const LABEL: Record<Plane, string> = { full: 'full statuses flooded (before)', digest: 'digests, verify on use (after)', alone: 'digests, the change alone (periodic statuses off)' };

const tcpIn = (c: Cluster) => c.nodes.map((n) => n.agent!.mesh.wireBytes().received);
const payloadIn = async (c: Cluster) => (await Promise.all(c.nodes.map(Cluster.counters))).map((x) => (x.statusBytesIn.status ?? 0) + (x.statusBytesIn.digest ?? 0));
const checks = (c: Cluster) => c.nodes.map((n) => { const v = n.agent!.auditor.verifications; return v.statuses + v.claims; });
/** How many nodes each node's view (hearsay on the digest plane: what it knows without checking) has on `v`. */
const seeing = (c: Cluster, v: number) => c.nodes.map((n) => n.agent!.auditor.fleet({ verify: false }).nodes.filter((r) => r.policyVersion === v && r.enforcement === 'ok').length);
const allSee = (c: Cluster, v: number) => seeing(c, v).every((k) => k === c.nodes.length);
/** Each node sees at least as many nodes on `v` as it saw on v1 after warm-up (the full plane may never see all: see the warm-up row). */
const asBefore = (c: Cluster, v: number, base: number[]) => seeing(c, v).every((k, i) => k >= base[i]!);

interface Change { tcp: number[]; payload: number[]; checks: number[]; viewMs: number; readChecks: number; readMs: number }

async function change(c: Cluster, via: NodeSpec, v: number, idle: number[], idleChecks: number[], plane: Plane, base: number[]): Promise<Change> {
  const t0 = performance.now();
  const [b0, p0, k0] = [tcpIn(c), await payloadIn(c), checks(c)];
  await c.publish(via, c.policy(v));
  await c.converged(v, 300_000);
  await until(() => asBefore(c, v, base), 180_000, () => c.nodes.map((n) => n.agent!.auditor.fleet({ verify: false }).summary).join(' | '));
  const viewMs = performance.now() - t0;
  await sleep(1500); // trailing relays and duplicates belong to the change
  const window = performance.now() - t0;
  const [b1, p1, k1] = [tcpIn(c), await payloadIn(c), checks(c)];
  const others = (i: number) => c.nodes[i] !== via;
  const tcp = b1.flatMap((b, i) => (others(i) ? [b - b0[i]! - idle[i]! * window] : []));
  const payload = p1.flatMap((p, i) => (others(i) ? [p - p0[i]!] : []));
  const k = k1.flatMap((x, i) => (others(i) ? [Math.max(0, x - k0[i]! - idleChecks[i]! * window)] : []));
  // One operator read on a node that did not publish (repeated until it is complete, as
  // `status --mesh` run again would): the verified view, each new claim checked once. On the digest plane the change came
  // as tally bits, so the first read wants the signed claims behind them; readMs is the time
  // until every row the node saw on v1 verifies on the new version.
  // 'alone' leaves the read out: its wants make every node sign and relay a claim, which is
  // the read's cost (measured on the digest plane), not the change's.
  if (plane === 'alone') return { tcp, payload, checks: k, viewMs, readChecks: 0, readMs: 0 };
  const reader = c.nodes[(v * 5 + 1) % c.nodes.length]!;
  const r0 = checks(c)[c.nodes.indexOf(reader)]!;
  const tr = performance.now();
  const verifiedOn = () => reader.agent!.auditor.fleet({ verify: true }).nodes.filter((r) => r.verified && r.policyVersion === v).length;
  if (plane === 'digest') {
    await until(() => verifiedOn() >= base[c.nodes.indexOf(reader)]!, 120_000, () => `verified view incomplete: ${reader.agent!.auditor.fleet({ verify: true }).summary}`);
  } else verifiedOn();
  const readMs = performance.now() - tr;
  if (plane === 'digest') await sleep(3000); // the read's relays (wanted claims, a few hops) end before the next change's window opens
  return { tcp, payload, checks: k, viewMs, readChecks: checks(c)[c.nodes.indexOf(reader)]! - r0, readMs };
}

async function run(n: number, plane: Plane): Promise<void> {
  const c = await Cluster.create(n, {
    transport: 'tcp', minPeers: 6, bootstrapCount: 3, bootstrapMode: 'previous', syncInterval: '10s',
    // Periodic statuses on (15 s, as a real fleet would run them: without them one lost status
    // is never repaired); what a node receives and checks while idle is subtracted from each change.
    overrides: { audit: { interval: '1h', probeInterval: 0, statusInterval: plane === 'alone' ? '1h' : '15s', silentAfter: plane === 'alone' ? '3h' : '10m', statusPlane: plane === 'full' ? 'full' : 'digest' } },
  });
  try {
    await c.startAll();
    await until(() => c.nodes.every((x) => x.agent!.mesh.connectedPeers().length >= 3), 120_000);
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1, 300_000);
    // Warm-up only: views fill by the periodic statuses too; re-announcing speeds it up.
    const views = () => c.nodes.map((n) => n.agent!.auditor.fleet({ verify: false }).summary).join(' | ');
    // Every 10 s at most: well inside each node's status budget (a faster re-announce is a flood).
    for (let i = 0; !allSee(c, 1); i++) {
      if (i > 6) { console.log(`warm-up views incomplete after ${i} re-announcements: ${views()}`); break; }
      await until(() => allSee(c, 1), 10_000).catch(() => undefined);
      // 'alone' re-sends what each node holds without signing fresh claims: a claim signed here
      // would be liveness (its bit already said it), held back for a fraction of the 1 h
      // interval, and pulled into the first change's window by its tally news.
      if (!allSee(c, 1)) await Promise.all(c.nodes.map((n) => (plane === 'full' ? n.agent!.auditor.publishStatus(true) : n.agent!.auditor.publishDigest({ periodic: plane === 'digest', full: true }))));
    }
    const base = seeing(c, 1);
    rows.push({ scenario: 'status', metric: `${LABEL[plane]}: nodes whose view was complete after warm-up`, unit: 'nodes', nodes: n, value: base.filter((k) => k === n).length });
    await sleep(3000);
    const i0 = tcpIn(c), c0 = checks(c), t0 = performance.now();
    await sleep(quick ? 15_000 : 30_000);
    const idle = tcpIn(c).map((b, i) => (b - i0[i]!) / (performance.now() - t0));
    const idleChecks = checks(c).map((x, i) => (x - c0[i]!) / (performance.now() - t0));
    const idleLabel = plane === 'alone' ? 'idle, periodic statuses off' : 'idle, statusInterval 15 s';
    rows.push({ scenario: 'status', metric: `${LABEL[plane]}: ${idleLabel}: signature checks per node per minute (median node)`, unit: 'checks/min', nodes: n, value: round(median(idleChecks) * 60_000, 1) });
    rows.push({ scenario: 'status', metric: `${LABEL[plane]}: ${idleLabel}: TCP bytes received per node per second (median node)`, unit: 'bytes/s', nodes: n, value: Math.round(median(idle) * 1000) });
    const samples: Change[] = [];
    for (let k = 0, v = 2; k < changesAt(n); k++, v++) samples.push(await change(c, c.nodes[(v * 7) % n]!, v, idle, idleChecks, plane, base));
    const label = LABEL[plane];
    const add = (metric: string, unit: string, perChange: number[]) => {
      const s = spread(perChange, 1);
      rows.push({ scenario: 'status', metric: `${label}: ${metric}`, unit, nodes: n, value: s.median, min: s.min, max: s.max, runs: perChange.length });
    };
    // Per change: the median over nodes; min/median/max over the repeated changes.
    add('TCP bytes received per node per fleet-wide change (median node)', 'bytes', samples.map((s) => Math.round(median(s.tcp))));
    add('status-plane payload received per node per change (median node)', 'bytes', samples.map((s) => Math.round(median(s.payload))));
    add('signature checks per node per change (median node)', 'checks', samples.map((s) => median(s.checks)));
    add('signature checks per node per change (busiest node)', 'checks', samples.map((s) => Math.max(...s.checks)));
    add('publish → every node\'s view shows every node on the new version', 'ms', samples.map((s) => round(s.viewMs, 0)));
    if (plane === 'digest') {
      add('one operator read (verified fleet view): signature checks', 'checks', samples.map((s) => s.readChecks));
      add('one operator read (verified fleet view): time until every row verifies (digest plane: the wants round trip)', 'ms', samples.map((s) => round(s.readMs, 1)));
    }
    console.log(`${n} nodes, ${plane}: checks/node ${median(samples.map((s) => median(s.checks)))}, bytes/node ${Math.round(median(samples.map((s) => median(s.tcp))))}`);
  } finally {
    await c.destroy();
  }
}

for (const n of sizes) {
  for (const plane of planes) {
    await run(n, plane);
    saveRows(`${out}/status.json`, rows); // kept if a larger size fails later
  }
}
for (const r of rows) console.log(`${String(r.nodes).padStart(4)}  ${r.metric.padEnd(100)} ${String(r.value).padStart(9)} ${r.unit} (${r.min}–${r.max})`);
saveRows(`${out}/status.json`, rows);
console.log(`saved ${out}/status.json`);
process.exit(0);
