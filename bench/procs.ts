/**
 * Convergence with every agent in its own process (`picket agent`, the real binary) over
 * loopback TCP: publish through one agent's control socket → "ruleset applied" on every
 * node, timed from each agent's own log line (same host clock). Also the RSS of each agent,
 * and where each update's time went on each node: every agent logs one `update trace` line
 * per accepted version (src/node/trace.ts: received, verified, forwarded, persisted,
 * enforced), collected here into per-hop rows and, with PROCS_TRACE=1, a per-node table.
 *   npx tsx bench/procs.ts [--quick] [--out DIR] [--nodes N] [--updates N]
 * Each update is published to a quiet fleet: after the first policy the fleet settles (below one
 * core for 2 s: start-up and mixing are over), its idle CPU is measured, and after each update
 * the next waits until the fleet is back to that idle rate plus a quarter of a core for 2 s.
 * Diagnostics: PROCS_TRACE=1 prints each update's per-node times and the slowest tenth's hops;
 * PROCS_CPU=1 the fleet's CPU each second while waiting for quiet, with a few status and sync
 * counters summed over the agents; PROCS_PLANE=full|digest sets audit.statusPlane;
 * PROCS_PROF=i writes agent i's V8 CPU profile to /tmp/prof; PROCS_NODE_OPTIONS replaces the
 * agents' NODE_OPTIONS (the shipped unit's by default) and PROCS_NODE_ARGS adds node flags that
 * NODE_OPTIONS does not allow (e.g. V8 flags), for experiments; PROCS_IDLE_MS the idle window
 * (default 30 s, --quick 5 s: a longer one for comparing idle CPU).
 */
import '../src/runtime/polyfill.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Cluster, until } from '../test/helpers/cluster.js';
import { call } from '../src/cli/client.js';
import { DEPLOYED_NODE_OPTIONS } from './deployed.js';
import { cpuTicks, untilQuietCpu } from './machine.js';
import { argValue, mean, median, percentile, round, saveRows, spread, type Row } from './stats.js';

const quick = process.argv.includes('--quick');
const out = argValue('--out', 'bench-out');
const N = Number(argValue('--nodes', '30'));
const UPDATES = Number(argValue('--updates', quick ? '5' : '10'));
const cores = availableParallelism();
const BIN = resolve(import.meta.dirname, '..', 'bin', 'picket.js');

/** A port free on every address (bound on the wildcard), so every agent can listen on it. */
async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '0.0.0.0', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** One agent's `update trace` line (src/node/trace.ts). */
interface Trace { source: string; peer?: string; at: Partial<Record<'received' | 'verified' | 'forwarded' | 'persisted' | 'enforced', number>>; meshPeers?: number }
interface Proc { child: ChildProcess; applied: Map<number, number>; traces: Map<number, Trace>; socket: string; exited: Promise<void> }

/**
 * Where the time went, per hop, over every node and update except the publisher: arrival
 * (publish → the engine was handed it: network and gossip hops, or sync), queue + verify,
 * forward (received → gossipsub got accept / the node pushed it), persist, enforce; and how
 * the slowest tenth of the node-updates got the update (gossip or sync).
 */
function hops(published: Map<number, { t0: number; via: number }>): Row[] {
  const parts: Record<string, number[]> = { arrival: [], verify: [], forward: [], persist: [], enforce: [], total: [] };
  const all: { total: number; source: string; v: number; node: number; line: string }[] = [];
  const index = new Map(c.nodes.map((n, i) => [n.peerId, i]));
  const depths: number[] = [];
  for (const [v, { t0, via }] of published) {
    // Hops from the publisher along the peers each node got the update from (gossip or sync).
    const depth = (i: number, seen = new Set<number>()): number | undefined => {
      if (i === via) return 0;
      const from = index.get(procs[i]!.traces.get(v)?.peer ?? '');
      if (from === undefined || seen.has(i)) return undefined;
      seen.add(i);
      const d = depth(from, seen);
      return d === undefined ? undefined : d + 1;
    };
    procs.forEach((p, i) => {
      const t = p.traces.get(v);
      if (!t || i === via || t.at.received === undefined) return;
      const a = t.at;
      const d = (x?: number, y?: number) => (x !== undefined && y !== undefined ? x - y : undefined);
      const seg = { arrival: d(a.received, t0), verify: d(a.verified, a.received), forward: d(a.forwarded, a.received), persist: d(a.persisted, a.verified), enforce: d(a.enforced, a.persisted), total: d(a.enforced, t0) };
      for (const [k, x] of Object.entries(seg)) if (x !== undefined) parts[k]!.push(x);
      const hop = depth(i);
      if (hop !== undefined) depths.push(hop);
      all.push({ total: seg.total ?? Infinity, source: t.source, v, node: i, line: `hop ${hop ?? '?'}, ` + Object.entries(seg).map(([k, x]) => `${k} ${x ?? '-'}`).join(', ') + (t.meshPeers !== undefined ? `, mesh peers ${t.meshPeers}` : '') });
    });
  }
  const out: Row[] = [];
  const tag = `${N} agent processes, every node but the publisher`;
  for (const [k, x] of Object.entries(parts)) {
    if (!x.length) continue;
    out.push({ scenario: 'hops', metric: `${k} (median), ${tag}`, unit: 'ms', nodes: N, value: round(median(x)) });
    out.push({ scenario: 'hops', metric: `${k} (p99), ${tag}`, unit: 'ms', nodes: N, value: round(percentile(x, 99)) });
  }
  if (depths.length) {
    out.push({ scenario: 'hops', metric: `hops from the publisher (median), ${tag}`, unit: 'hops', nodes: N, value: median(depths) });
    out.push({ scenario: 'hops', metric: `hops from the publisher (max), ${tag}`, unit: 'hops', nodes: N, value: Math.max(...depths) });
  }
  const slow = [...all].sort((a, b) => b.total - a.total).slice(0, Math.max(1, Math.ceil(all.length / 10)));
  out.push({ scenario: 'hops', metric: `slowest tenth of node-updates: share that arrived by sync, not gossip, ${tag}`, unit: 'fraction', nodes: N, value: round(slow.filter((s) => s.source !== 'gossip').length / Math.max(1, slow.length), 2) });
  if (process.env.PROCS_TRACE) for (const s of slow) console.log(`slow: v${s.v} n${s.node} by ${s.source}: ${s.line}`);
  return out;
}

const c = await Cluster.create(N, { transport: 'tcp' });
const procs: Proc[] = [];
const rows: Row[] = [];
try {
  // Laid out as a fleet is: every agent on its own address, all on the same port, and the
  // policy lists those addresses — so a node can dial any peer the policy names and take the
  // addresses peers report (identify, peer exchange), as it would in production. Each agent
  // has its own loopback address (127.0.1.i: the whole of 127/8 is loopback on Linux).
  if (N > 254) throw new Error('--nodes: at most 254 (one loopback address each)');
  const port = await freePort(), metricsPort = await freePort();
  const ip = (i: number) => `127.0.1.${i + 1}`;
  const addr = (i: number) => `/ip4/${ip(i)}/tcp/${port}/p2p/${c.nodes[i]!.peerId}`;
  for (let i = 0; i < N; i++) {
    const spec = c.nodes[i]!;
    const bootstrap = [1, 2, 3].map((d) => (i - d + N) % N).filter((j) => j !== i).map(addr);
    const cfg = join(c.dir, `${spec.name}.yaml`);
    writeFileSync(cfg, [
      'meshId: test', `dataDir: ${spec.dir}`, `identityKey: ${join(c.dir, `${spec.name}.key`)}`, `trustedRoot: ${join(c.dir, 'root.json')}`,
      `listen: [/ip4/${ip(i)}/tcp/${port}]`, `bootstrap: [${bootstrap.join(', ')}]`,
      'mesh: { minPeers: 6 }', 'enforcement: { backend: memory }', `audit: { interval: 1h, probeInterval: 0${process.env.PROCS_PLANE ? `, statusPlane: ${process.env.PROCS_PLANE}` : ''} }`, 'alerts: []',
      `control: { socket: ${join(spec.dir, 'control.sock')}, metrics: '${ip(i)}:${metricsPort}' }`, 'log: { level: info, pretty: false }', '',
    ].join('\n'));
    const child = spawn(process.execPath, [...(process.env.PROCS_PROF === String(i) ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), ...(process.env.PROCS_NODE_ARGS?.split(' ').filter(Boolean) ?? []), BIN, 'agent', '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: process.env.PROCS_NODE_OPTIONS ?? DEPLOYED_NODE_OPTIONS } });
    const p: Proc = { child, applied: new Map(), traces: new Map(), socket: join(spec.dir, 'control.sock'), exited: new Promise((r) => child.once('exit', () => r())) };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const l = JSON.parse(line) as { msg?: string; version?: number | null; time?: string } & Trace;
        const t = Date.parse(l.time ?? '');
        if (l.msg === 'ruleset applied' && typeof l.version === 'number' && Number.isFinite(t) && !p.applied.has(l.version)) p.applied.set(l.version, t);
        if (l.msg === 'update trace' && typeof l.version === 'number') p.traces.set(l.version, { source: l.source, at: l.at, ...(l.peer ? { peer: l.peer } : {}), ...(l.meshPeers !== undefined ? { meshPeers: l.meshPeers } : {}) });
      } catch { /* not a log line */ }
    });
    procs.push(p);
  }
  // The control socket exists once an agent is fully up.
  // Start-up is CPU-bound (each agent loads and JITs its stack): allow for a shared machine.
  const up = () => procs.filter((p) => { try { readFileSync(p.socket); return false; } catch (e) { return (e as NodeJS.ErrnoException).code !== 'ENOENT'; } }).length;
  /** Each agent's CPU so far, user + system, in clock ticks (10 ms); 0 for one that exited. */
  const cpu = () => procs.map((p) => cpuTicks(p.child.pid));
  /** CPU seconds (user + system) every agent has used so far. */
  const fleetCpu = () => cpu().reduce((a, b) => a + b, 0) / 100;
  /** Write syscalls every agent has made so far (sockets, files, logs): each small message costs one. */
  const fleetWrites = () => procs.reduce((x, p) => { try { return x + Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${p.child.pid}/io`, 'utf8'))?.[1] ?? 0); } catch { return x; } }, 0);
  /** Above the fleet's idle rate, this much of one core still counts as quiet. */
  const QUIET = 0.25;
  /** The first policy's aftermath (start-up's end, mixing: both cores busy) is over below this. */
  const SETTLED = 1;
  let lastCounters: Record<string, number> = {};
  const COUNTERS = ['picket_status_bytes_received_total', 'picket_status_claims_signed_total', 'picket_status_signature_checks_total', 'picket_sync_runs_total', 'picket_peers_connected', 'picket_gossip_bytes_received_total', 'picket_wire_bytes'];
  /** PROCS_CPU diagnostics: a few counters summed over every agent (an agent that does not answer counts nothing). */
  const fleetCounters = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const samples of await Promise.all(procs.map((_p, i) => metricsOf(i).catch(() => [])))) {
      for (const [name, labels, value] of samples) {
        const key = `${name.replace('picket_', '')}${labels}`;
        if (COUNTERS.includes(name)) out[key] = (out[key] ?? 0) + value;
      }
    }
    return out;
  };
  /**
   * Waits until the fleet is quiet: its agents together used less than `threshold` of one core
   * over each of two consecutive seconds (at most `limit` ms). All N agents share this
   * machine's cores, so work one agent does after an update (statuses, new connections, GC)
   * delays every other agent's next update; a fleet of hosts has a CPU per agent. Each update
   * starts on a quiet fleet, as in production, and how long quieting took is a row of its own.
   * Returns the ms it took (limit when never quiet).
   */
  const quiet = (limit: number, threshold: number): Promise<number> => untilQuietCpu(fleetCpu, threshold, limit, async (used) => {
    if (!process.env.PROCS_CPU) return;
    // Diagnostics: what the fleet did in that second (sums over the agents' counters).
    const now = await fleetCounters();
    const d = Object.fromEntries(Object.entries(now).map(([k, x]) => [k, Math.round(x - (lastCounters[k] ?? 0))]));
    lastCounters = now;
    console.log(`  fleet CPU ${Math.round(used * 100)}% of a core ${JSON.stringify(d)}`);
  });
  /** Agent i's /metrics, one [name, labels, value] per sample. */
  async function metricsOf(i: number): Promise<[string, string, number][]> {
    const text = await (await fetch(`http://${ip(i)}:${metricsPort}/metrics`)).text();
    return [...text.matchAll(/^(picket_\w+)(\{[^}]*\})? (\S+)$/gm)].map((m) => [m[1]!, m[2] ?? '', Number(m[3])]);
  }
  /** Each agent's status-plane counters (its /metrics): payload bytes received, signature checks, TCP bytes in. */
  const statusCounters = async () => Promise.all(procs.map(async (_p, i) => {
    const samples = await metricsOf(i);
    const sum = (name: string, label = '') => samples.filter(([n, l]) => n === name && (!label || l.includes(label))).reduce((a, [, , v]) => a + v, 0);
    return { payload: sum('picket_status_bytes_received_total'), checks: sum('picket_status_signature_checks_total'), tcp: sum('picket_wire_bytes', 'direction="in"') };
  }));
  const publish = async (via: number, v: number) => {
    const p = c.policy(v);
    const r = await call(procs[via]!.socket, 'POST', '/v1/policy', c.signed({ ...p, nodes: p.nodes.map((n, i) => ({ ...n, addresses: [ip(i)] })) }), 120_000);
    if (r.status !== 200) throw new Error(`publish v${v}: ${JSON.stringify(r.body)}`);
  };
  const tStart = Date.now();
  await until(() => up() === N, 240_000, () => `${up()}/${N} agents up`);
  console.log(`${N} agents up in ${round((Date.now() - tStart) / 1000, 1)} s`);
  await publish(0, 1);
  // The first policy also lets the mesh mix (peers dial what it names): on busy cores, minutes.
  await until(() => procs.every((p) => p.applied.has(1)), 180_000, () => `v1 on ${procs.filter((p) => p.applied.has(1)).length}/${N}`);
  // Steady state: the first policy's aftermath passes before anything is measured (quiet()).
  const cpuV1 = fleetCpu();
  const settled = await quiet(180_000, SETTLED);
  const settleCpu = fleetCpu() - cpuV1;
  console.log(`fleet settled ${round(settled / 1000, 1)} s after v1 applied everywhere (${round(settleCpu, 1)} CPU s)${settled >= 180_000 ? ': never settled, measuring anyway' : ''}`);
  // The status plane's idle traffic (periodic claims, every 4th interval the full digest and
  // status) over a window long enough to hold some of it: subtracted from each update's.
  // With it, the CPU the idle fleet burns (heartbeats, keep-alives, timers): what every update competes with.
  const IDLE_MS = Number(process.env.PROCS_IDLE_MS ?? (quick ? 5000 : 30_000));
  const c0 = cpu(), w0 = Date.now(), s0 = await statusCounters();
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const s1 = await statusCounters(), idleMs = Date.now() - w0;
  const idleRate = s1.map((x, i) => ({ payload: (x.payload - s0[i]!.payload) / idleMs, checks: (x.checks - s0[i]!.checks) / idleMs, tcp: (x.tcp - s0[i]!.tcp) / idleMs }));
  const statusPerUpdate: { payload: number; checks: number; tcp: number }[] = [];
  const quietAfter: number[] = [], cpuPerUpdate: number[] = [], writesPerUpdate: number[] = [], cpuToApplied: number[] = [], busyToApplied: number[] = [];
  const idleCpu = cpu().map((x, i) => ((x - c0[i]!) * 10) / (Date.now() - w0)); // clock ticks (10 ms) → fraction of one core
  // Quiet after an update: back to the idle fleet's own rate (its periodic statuses, spread over
  // each interval, never stop) plus QUIET. Judged against zero, the fleet was only ever "quiet"
  // between status rounds that every agent ran in the same second.
  const idleFleet = idleCpu.reduce((a, b) => a + b, 0);
  console.log(`idle fleet: ${Math.round(idleFleet * 100)}% of a core`);
  const perNode: number[] = [], all: number[] = [];
  // Each update is one repetition: its per-node median and p99, for min/median/max across updates.
  const updMedian: number[] = [], updP99: number[] = [];
  let missed = 0;
  const published = new Map<number, { t0: number; via: number }>();
  for (let v = 2; v < 2 + UPDATES; v++) {
    const sAt = await statusCounters();
    const t0 = Date.now(), cpuAt = fleetCpu(), writesAt = fleetWrites();
    published.set(v, { t0, via: (v * 7) % N });
    await publish((v * 7) % N, v);
    // An agent still without the update after 60 s is a result (the tail), not a reason to lose the run.
    await until(() => procs.every((p) => p.applied.has(v)), 60_000).catch(() => {
      const late = procs.filter((p) => !p.applied.has(v)).length;
      missed += late;
      console.log(`v${v}: ${late}/${N} agents still without it after 60 s`);
    });
    // The policy path alone: statuses start 1–3 s after a node applies.
    const pathCpu = fleetCpu() - cpuAt, pathWall = (Date.now() - t0) / 1000;
    cpuToApplied.push(pathCpu);
    busyToApplied.push(pathCpu / pathWall / cores);
    const lat = procs.filter((p) => p.applied.has(v)).map((p) => p.applied.get(v)! - t0);
    if (process.env.PROCS_TRACE) console.log(`v${v}: ${[...lat].sort((a, b) => a - b).join(' ')}`);
    perNode.push(...lat);
    all.push(Math.max(...lat));
    updMedian.push(median(lat));
    updP99.push(percentile(lat, 99));
    // The update's own aftermath (every node's status 1–3 s later) before the next one.
    await new Promise((r) => setTimeout(r, 3000));
    quietAfter.push(3000 + (await quiet(60_000, idleFleet + QUIET)));
    console.log(`v${v}: applied everywhere in ${Math.max(...lat)} ms, fleet quiet again ${round(quietAfter.at(-1)! / 1000, 1)} s after`);
    cpuPerUpdate.push(fleetCpu() - cpuAt);
    {
      const sEnd = await statusCounters(), ms = Date.now() - t0;
      // Per node (the publisher included: it also receives every other node's status), its idle rate subtracted.
      const per = sEnd.map((x, i) => ({
        payload: x.payload - sAt[i]!.payload - idleRate[i]!.payload * ms,
        checks: Math.max(0, x.checks - sAt[i]!.checks - idleRate[i]!.checks * ms),
        tcp: x.tcp - sAt[i]!.tcp - idleRate[i]!.tcp * ms,
      }));
      // Payload as the mean over nodes: the steady traffic subtracted comes in bursts (every 4th
      // interval's full digests) that land on a few nodes per window, so the median node was
      // biased low (negative at 30 processes once a change stopped adding liveness waves).
      statusPerUpdate.push({ payload: mean(per.map((x) => x.payload)), checks: median(per.map((x) => x.checks)), tcp: median(per.map((x) => x.tcp)) });
    }
    writesPerUpdate.push((fleetWrites() - writesAt) / N);
  }
  rows.push(...hops(published));
  const rss = procs.map((p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024);
  const tag = `${N} agent processes`;
  // value: over every node and update; min/max: the same figure's range across the updates.
  const range = (v: number[]) => { const s = spread(v); return { min: s.min, max: s.max, runs: v.length }; };
  rows.push({ scenario: 'convergence', metric: `publish → applied, per node (median), ${tag}`, unit: 'ms', nodes: N, value: round(median(perNode)), ...range(updMedian), samples: updMedian.map((x) => round(x)) });
  rows.push({ scenario: 'convergence', metric: `publish → applied, per node (p99), ${tag}`, unit: 'ms', nodes: N, value: round(percentile(perNode, 99)), ...range(updP99), samples: updP99.map((x) => round(x)) });
  rows.push({ scenario: 'convergence', metric: `publish → applied on every node (median), ${tag}`, unit: 'ms', nodes: N, value: round(median(all)), ...range(all) });
  rows.push({ scenario: 'convergence', metric: `agents still without an update 60 s after it was published (all updates), ${tag}`, unit: 'agent-updates', nodes: N, value: missed });
  rows.push({ scenario: 'convergence', metric: `first policy applied everywhere → fleet settled (< ${SETTLED * 100}% of a core for 2 s), ${tag} on ${cores} cores`, unit: 'ms', nodes: N, value: settled });
  rows.push({ scenario: 'convergence', metric: `fleet CPU from the first policy to quiet (start-up's end, mesh mixing, statuses), ${tag}`, unit: 'CPU s', nodes: N, value: round(settleCpu, 1) });
  rows.push({ scenario: 'convergence', metric: `fleet CPU per update, publish → quiet again, ${tag}`, unit: 'CPU s', nodes: N, value: round(median(cpuPerUpdate), 2), ...range(cpuPerUpdate) });
  rows.push({ scenario: 'convergence', metric: `fleet CPU from publish to applied everywhere (the policy path: verify, forward, persist, apply), ${tag}`, unit: 'CPU s', nodes: N, value: round(median(cpuToApplied), 2), ...range(cpuToApplied) });
  rows.push({ scenario: 'convergence', metric: `share of the machine's ${cores} cores busy from publish to applied everywhere, ${tag}`, unit: 'fraction', nodes: N, value: round(median(busyToApplied), 2), ...range(busyToApplied) });
  const plane = process.env.PROCS_PLANE ?? 'digest';
  const sp = (k: 'payload' | 'checks' | 'tcp') => statusPerUpdate.map((x) => x[k]);
  rows.push({ scenario: 'status', metric: `${plane} plane, ${tag}: status-plane payload received per node per change (mean over nodes, idle rate subtracted)`, unit: 'bytes', nodes: N, value: Math.round(median(sp('payload'))), ...range(sp('payload').map(Math.round)) });
  rows.push({ scenario: 'status', metric: `${plane} plane, ${tag}: signature checks per node per change (median node, idle rate subtracted)`, unit: 'checks', nodes: N, value: round(median(sp('checks')), 1), ...range(sp('checks').map((x) => round(x, 1))) });
  rows.push({ scenario: 'status', metric: `${plane} plane, ${tag}: TCP bytes received per node per change, policy included (median node, idle rate subtracted)`, unit: 'bytes', nodes: N, value: Math.round(median(sp('tcp'))), ...range(sp('tcp').map(Math.round)) });
  rows.push({ scenario: 'status', metric: `${plane} plane, ${tag}: idle, status-plane payload received per node per second (median node)`, unit: 'bytes/s', nodes: N, value: Math.round(median(idleRate.map((x) => x.payload * 1000))) });
  rows.push({ scenario: 'status', metric: `${plane} plane, ${tag}: idle, signature checks per node per minute (median node)`, unit: 'checks/min', nodes: N, value: round(median(idleRate.map((x) => x.checks * 60_000)), 1) });
  rows.push({ scenario: 'convergence', metric: `write syscalls per agent per update, publish → quiet again, ${tag}`, unit: 'writes', nodes: N, value: round(median(writesPerUpdate)), ...range(writesPerUpdate) });
  rows.push({ scenario: 'convergence', metric: `publish → fleet quiet again (median update), ${tag} on ${cores} cores`, unit: 'ms', nodes: N, value: round(median(quietAfter)), ...range(quietAfter) });
  rows.push({ scenario: 'memory', metric: `RSS per agent (median), ${tag} with minPeers 6`, unit: 'MB', nodes: N, value: round(median(rss), 1) });
  rows.push({ scenario: 'memory', metric: `idle CPU per agent (median), ${tag}`, unit: '% of a core', nodes: N, value: round(median(idleCpu) * 100, 1) });
  rows.push({ scenario: 'convergence', metric: `idle fleet CPU (all agents, between updates), ${tag} on ${cores} cores`, unit: '% of a core', nodes: N, value: round(idleFleet * 100) });
} finally {
  const tStop = Date.now();
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 10_000))]);
  console.log(`agents stopped in ${round((Date.now() - tStop) / 1000, 1)} s`);
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await c.destroy();
}
for (const r of rows) console.log(`${r.scenario.padEnd(12)} ${String(r.nodes ?? '').padStart(4)}  ${r.metric.padEnd(60)} ${String(r.value).padStart(9)} ${r.unit}${r.min !== undefined ? ` [${r.min}–${r.max} over ${r.runs} updates]` : ''}`);
// The headline size keeps its file name; other sizes sit beside it (bench/run.ts reads both).
const file = `${out}/${N === 30 ? 'procs' : `procs-${N}`}.json`;
saveRows(file, rows);
console.log(`saved ${file}`);
process.exit(0);
