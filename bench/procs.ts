/**
 * Convergence with every agent in its own process (`picket agent`, the real binary) over
 * loopback TCP: publish through one agent's control socket → "ruleset applied" on every
 * node, timed from each agent's own log line (same host clock). Also the RSS of each agent.
 *   npx tsx bench/procs.ts [--quick] [--out DIR] [--nodes N]
 */
import '../src/runtime/polyfill.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Cluster, until } from '../test/helpers/cluster.js';
import { call } from '../src/cli/client.js';
import { DEPLOYED_NODE_OPTIONS } from './deployed.js';
import { argValue, median, percentile, round, saveRows, spread, type Row } from './stats.js';

const quick = process.argv.includes('--quick');
const out = argValue('--out', 'bench-out');
const N = Number(argValue('--nodes', '30'));
const UPDATES = quick ? 5 : 10;
const BIN = resolve(import.meta.dirname, '..', 'bin', 'picket.js');

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

interface Proc { child: ChildProcess; applied: Map<number, number>; socket: string; exited: Promise<void> }

const c = await Cluster.create(N, { transport: 'tcp' });
const procs: Proc[] = [];
const rows: Row[] = [];
try {
  const ports: number[] = [];
  for (let i = 0; i < N; i++) ports.push(await freePort());
  const addr = (i: number) => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${c.nodes[i]!.peerId}`;
  for (let i = 0; i < N; i++) {
    const spec = c.nodes[i]!;
    const bootstrap = [1, 2, 3].map((d) => (i - d + N) % N).filter((j) => j !== i).map(addr);
    const cfg = join(c.dir, `${spec.name}.yaml`);
    writeFileSync(cfg, [
      'meshId: test', `dataDir: ${spec.dir}`, `identityKey: ${join(c.dir, `${spec.name}.key`)}`, `trustedRoot: ${join(c.dir, 'root.json')}`,
      `listen: [/ip4/127.0.0.1/tcp/${ports[i]}]`, `bootstrap: [${bootstrap.join(', ')}]`,
      'mesh: { minPeers: 6 }', 'enforcement: { backend: memory }', 'audit: { interval: 1h, probeInterval: 0 }', 'alerts: []',
      `control: { socket: ${join(spec.dir, 'control.sock')} }`, 'log: { level: info, pretty: false }', '',
    ].join('\n'));
    const child = spawn(process.execPath, [BIN, 'agent', '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: DEPLOYED_NODE_OPTIONS } });
    const p: Proc = { child, applied: new Map(), socket: join(spec.dir, 'control.sock'), exited: new Promise((r) => child.once('exit', () => r())) };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const l = JSON.parse(line) as { msg?: string; version?: number | null; time?: string };
        const t = Date.parse(l.time ?? '');
        if (l.msg === 'ruleset applied' && typeof l.version === 'number' && Number.isFinite(t) && !p.applied.has(l.version)) p.applied.set(l.version, t);
      } catch { /* not a log line */ }
    });
    procs.push(p);
  }
  const publish = async (via: number, v: number) => {
    const r = await call(procs[via]!.socket, 'POST', '/v1/policy', c.signed(c.policy(v)));
    if (r.status !== 200) throw new Error(`publish v${v}: ${JSON.stringify(r.body)}`);
  };
  // The control socket exists once an agent is fully up.
  // Start-up is CPU-bound (each agent loads and JITs its stack): allow for a shared machine.
  const up = () => procs.filter((p) => { try { readFileSync(p.socket); return false; } catch (e) { return (e as NodeJS.ErrnoException).code !== 'ENOENT'; } }).length;
  await until(() => up() === N, 240_000, () => `${up()}/${N} agents up`);
  await publish(0, 1);
  await until(() => procs.every((p) => p.applied.has(1)), 60_000, () => `v1 on ${procs.filter((p) => p.applied.has(1)).length}/${N}`);
  // Steady state, as in bench/mesh.ts: a warm-up, then a quiet gap after each update (every
  // node gossips a signed status 1–3 s after a change).
  await new Promise((r) => setTimeout(r, quick ? 3000 : Math.max(5000, N * 300)));
  // CPU the idle fleet burns (heartbeats, keep-alives, timers): what every update competes with.
  const cpu = () => procs.map((p) => { const f = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]); });
  const c0 = cpu(), w0 = Date.now();
  await new Promise((r) => setTimeout(r, quick ? 2000 : 5000));
  const idleCpu = cpu().map((x, i) => ((x - c0[i]!) * 10) / (Date.now() - w0)); // clock ticks (10 ms) → fraction of one core
  const perNode: number[] = [], all: number[] = [];
  // Each update is one repetition: its per-node median and p99, for min/median/max across updates.
  const updMedian: number[] = [], updP99: number[] = [];
  let missed = 0;
  for (let v = 2; v < 2 + UPDATES; v++) {
    const t0 = Date.now();
    await publish((v * 7) % N, v);
    // An agent still without the update after 60 s is a result (the tail), not a reason to lose the run.
    await until(() => procs.every((p) => p.applied.has(v)), 60_000).catch(() => {
      const late = procs.filter((p) => !p.applied.has(v)).length;
      missed += late;
      console.log(`v${v}: ${late}/${N} agents still without it after 60 s`);
    });
    const lat = procs.filter((p) => p.applied.has(v)).map((p) => p.applied.get(v)! - t0);
    if (process.env.PROCS_TRACE) console.log(`v${v}: ${[...lat].sort((a, b) => a - b).join(' ')}`);
    perNode.push(...lat);
    all.push(Math.max(...lat));
    updMedian.push(median(lat));
    updP99.push(percentile(lat, 99));
    await new Promise((r) => setTimeout(r, 4000));
  }
  const rss = procs.map((p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024);
  const tag = `${N} agent processes`;
  // value: over every node and update; min/max: the same figure's range across the updates.
  const range = (v: number[]) => { const s = spread(v); return { min: s.min, max: s.max, runs: v.length }; };
  rows.push({ scenario: 'convergence', metric: `publish → applied, per node (median), ${tag}`, unit: 'ms', nodes: N, value: round(median(perNode)), ...range(updMedian) });
  rows.push({ scenario: 'convergence', metric: `publish → applied, per node (p99), ${tag}`, unit: 'ms', nodes: N, value: round(percentile(perNode, 99)), ...range(updP99) });
  rows.push({ scenario: 'convergence', metric: `publish → applied on every node (median), ${tag}`, unit: 'ms', nodes: N, value: round(median(all)), ...range(all) });
  rows.push({ scenario: 'convergence', metric: `agents still without an update 60 s after it was published (all updates), ${tag}`, unit: 'agent-updates', nodes: N, value: missed });
  rows.push({ scenario: 'memory', metric: `RSS per agent (median), ${tag} with minPeers 6`, unit: 'MB', nodes: N, value: round(median(rss), 1) });
  rows.push({ scenario: 'memory', metric: `idle CPU per agent (median), ${tag}`, unit: '% of a core', nodes: N, value: round(median(idleCpu) * 100, 1) });
} finally {
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 10_000))]);
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await c.destroy();
}
for (const r of rows) console.log(`${r.scenario.padEnd(12)} ${String(r.nodes ?? '').padStart(4)}  ${r.metric.padEnd(60)} ${String(r.value).padStart(9)} ${r.unit}${r.min !== undefined ? ` [${r.min}–${r.max} over ${r.runs} updates]` : ''}`);
saveRows(`${out}/procs.json`, rows);
console.log(`saved ${out}/procs.json`);
process.exit(0);
