/**
 * The central-store baseline, side by side with the mesh in one run: a real etcd (Debian's
 * etcd-server, on loopback, started and stopped here) and N watcher clients that verify and
 * compile the policy when its key changes — what a "central store + agents" design does.
 * Measures put → applied on every watcher vs publish → applied on N mesh agents, and the
 * fraction of nodes updated when half of them are cut off from the store (etcd) or from
 * the publishing node (mesh: they still reach other peers).
 * With --watchers-only the mesh side is left out: run.ts sets it when bench/procs.ts runs in
 * the same run (N agent processes) and pairs the two update by update (the ratio rows).
 *   npx tsx bench/etcd.ts [--nodes 30] [--quick] [--out DIR] [--watchers-only]
 */
import '../src/runtime/polyfill.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { performance } from 'node:perf_hooks';
import { Cluster, until } from '../test/helpers/cluster.js';
import { trustPinnedRoot, verifyPolicy } from '../src/trust/verify.js';
import { compile } from '../src/policy/compile.js';
import { argValue, median, percentile, round, saveRows, spread, type Row } from './stats.js';
import { cpuTicks, findEtcd, untilQuietCpu, ETCD_INSTALL } from './machine.js';
import { DEPLOYED_NODE_OPTIONS } from './deployed.js';
import { watchKey } from './etcd-watch.js';

const quick = process.argv.includes('--quick');
const watchersOnly = process.argv.includes('--watchers-only');
const N = Number(argValue('--nodes', '30'));
const UPDATES = quick ? 5 : 10;
const out = resolve(argValue('--out', 'bench-out'));
const rows: Row[] = [];

const etcdBin = findEtcd();
if (!etcdBin || spawnSync(etcdBin, ['--version']).status !== 0) {
  // run.ts installs it when it can; run alone, say the one command and fail: a run without
  // its baseline must not look complete.
  console.error(`etcd not found: install it with \`${ETCD_INSTALL}\` (or set PICKET_BENCH_ETCD to its path)`);
  process.exit(1);
}

const freePort = () => new Promise<number>((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');

// Its data dir lives under --out, like everything else this benchmark writes.
const dir = join(out, `etcd-${process.pid}`);
mkdirSync(dir, { recursive: true });
const [client, peer] = [await freePort(), await freePort()];
const etcd = spawn(etcdBin, ['--data-dir', join(dir, 'data'), '--name', 'bench',
  '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
  '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
  '--initial-cluster', `bench=http://127.0.0.1:${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
// Never leave etcd or an etcd-fed agent behind, however this script ends.
const agents = new Set<ChildProcess>();
process.on('exit', () => {
  etcd.kill('SIGKILL');
  for (const a of agents) a.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));
const base = `http://127.0.0.1:${client}`;
const KEY = '/picket/bench/policy';
const AGENT = resolve(import.meta.dirname, 'etcd-agent.ts');

async function etcdUp(): Promise<boolean> {
  try { return (await fetch(`${base}/health`)).ok; } catch { return false; }
}

/** A watcher: on every new value of the key, verifies and compiles it (an agent's work, in this one process). */
function watcher(i: number, c: Cluster, onApplied: (i: number, version: number) => void): AbortController {
  const pinned = trustPinnedRoot(c.rootEnvelope);
  if (!('ok' in pinned)) throw new Error(pinned.reason);
  const state = { root: pinned.trusted, meshId: 'test' };
  return watchKey(base, KEY, (value) => {
    const v = verifyPolicy(value, state, Date.now());
    if (v.outcome !== 'accepted') return;
    compile(v.policy, c.nodes[i]!.peerId, { now: Date.now() });
    onApplied(i, v.policy.version);
  });
}

/**
 * N agent processes fed by etcd (bench/etcd-agent.ts: the product's node engine, its store and
 * the memory backend, as bench/procs.ts runs `picket agent`), each with its own watch: put →
 * "ruleset applied" in each one's log, per update. The same per-node work as a mesh agent's
 * policy path, without the mesh.
 */
async function etcdAgents(c: Cluster): Promise<{ lat: number[]; upd: number[]; cpu: number[]; etcdCpu: number[] }> {
  const applied = new Map<number, Map<number, number>>(); // version → node → time (its log line's)
  let watching = 0;
  // One bundle, as bin/picket.js runs one (30 processes each loading ~300 TypeScript modules
  // through tsx would take most of a minute on two cores); classic-level stays outside, by its
  // absolute path, because it loads a native addon relative to its own package.
  // Split at every import(), so the agent module's lazily loaded network stack stays unloaded.
  await build({
    entryPoints: { 'etcd-agent': AGENT }, outdir: join(dir, 'bundle'), outExtension: { '.js': '.mjs' }, bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning',
    banner: { js: "import { createRequire as __picketRequire } from 'node:module'; const require = __picketRequire(import.meta.url);" },
    plugins: [{ name: 'classic-level', setup: (b) => b.onResolve({ filter: /^classic-level$/ }, () => ({ path: createRequire(import.meta.url).resolve('classic-level'), external: true })) }],
  });
  const kids = c.nodes.map((spec, i) => {
    const child = spawn(process.execPath, [join(dir, 'bundle', 'etcd-agent.mjs'), '--data', join(dir, `agent-${i}`), '--root', join(c.dir, 'root.json'), '--peer', spec.peerId, '--etcd', base, '--key', KEY],
      { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: DEPLOYED_NODE_OPTIONS } });
    agents.add(child);
    child.once('exit', () => agents.delete(child));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const l = JSON.parse(line) as { msg?: string; version?: number | null; time?: string };
        const t = Date.parse(l.time ?? '');
        if (l.msg === 'watching') watching++;
        if (l.msg === 'ruleset applied' && typeof l.version === 'number' && Number.isFinite(t)) {
          const m = applied.get(l.version) ?? new Map<number, number>();
          if (!m.has(i)) m.set(i, t);
          applied.set(l.version, m);
        }
      } catch { /* not a log line */ }
    });
    return child;
  });
  try {
    const up0 = performance.now();
    await until(() => watching === N, 120_000, () => `${watching}/${N} etcd-fed agents watching`);
    console.log(`${N} etcd-fed agents watching in ${round((performance.now() - up0) / 1000, 1)} s`);
    // A first value, not measured, as the mesh agents get their first policy before theirs:
    // it ends start-up (the first store write, the first compile and apply).
    await fetch(`${base}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(KEY), value: b64(c.signed(c.policy(100))) }) });
    await until(() => (applied.get(100)?.size ?? 0) === N, 60_000);
    const lat: number[] = [], upd: number[] = [], cpu: number[] = [], etcdCpu: number[] = [];
    const fleetCpu = () => kids.reduce((a, k) => a + cpuTicks(k.pid), 0) / 100;
    const storeCpu = () => cpuTicks(etcd.pid) / 100;
    for (let v = 1; v <= UPDATES; v++) {
      // Each put goes to a quiet fleet, as each mesh update does (bench/procs.ts): start-up,
      // the last value's apply and its garbage over (these agents have no periodic work, so
      // quiet is a tenth of a core, judged over two 250 ms windows).
      await untilQuietCpu(fleetCpu, 0.1, 30_000, undefined, 250);
      const cpu0 = fleetCpu(), etcd0 = storeCpu();
      const t = Date.now(); // the agents' log lines carry wall-clock milliseconds
      await fetch(`${base}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(KEY), value: b64(c.signed(c.policy(100 + v))) }) });
      await until(() => (applied.get(100 + v)?.size ?? 0) === N, 60_000);
      const l = [...applied.get(100 + v)!.values()].map((x) => x - t);
      lat.push(...l);
      upd.push(median(l));
      cpu.push(fleetCpu() - cpu0);
      etcdCpu.push(storeCpu() - etcd0);
    }
    return { lat, upd, cpu, etcdCpu };
  } finally {
    // SIGTERM, then SIGKILL what is still there after 10 s (as bench/procs.ts stops its agents).
    const gone = (k: ChildProcess) => k.exitCode !== null || k.signalCode !== null;
    for (const k of kids) if (!gone(k)) k.kill('SIGTERM');
    await Promise.race([Promise.all(kids.map((k) => new Promise((r) => (gone(k) ? r(null) : k.once('exit', r))))), new Promise((r) => setTimeout(r, 10_000))]);
    for (const k of kids) if (!gone(k)) k.kill('SIGKILL');
  }
}

try {
  const t0 = performance.now();
  while (!(await etcdUp())) { if (performance.now() - t0 > 20_000) throw new Error('etcd did not start'); await new Promise((r) => setTimeout(r, 100)); }
  const c = await Cluster.create(N, { transport: 'tcp', minPeers: 6, bootstrapCount: 3, bootstrapMode: 'previous', syncInterval: '5s' });
  // --- etcd side ---
  const applied = new Map<number, Map<number, number>>(); // version → node → time
  const watchers = c.nodes.map((_, i) => watcher(i, c, (node, v) => { const m = applied.get(v) ?? new Map(); if (!m.has(node)) m.set(node, performance.now()); applied.set(v, m); }));
  await new Promise((r) => setTimeout(r, 1000));
  const etcdLat: number[] = [], etcdUpd: number[] = [];
  for (let v = 1; v <= UPDATES; v++) {
    const t = performance.now();
    await fetch(`${base}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(KEY), value: b64(c.signed(c.policy(v))) }) });
    await until(() => (applied.get(v)?.size ?? 0) === N, 60_000);
    const lat = [...applied.get(v)!.values()].map((x) => x - t);
    etcdLat.push(...lat);
    etcdUpd.push(median(lat));
  }
  // Half the watchers lose the store: they get nothing.
  for (let i = 0; i < N / 2; i++) watchers[i]!.abort();
  const cutV = UPDATES + 1;
  await fetch(`${base}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(KEY), value: b64(c.signed(c.policy(cutV))) }) });
  // The half that kept the store has it within milliseconds; then a moment for anything late.
  await until(() => (applied.get(cutV)?.size ?? 0) >= N - N / 2, 10_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  const etcdFraction = (applied.get(cutV)?.size ?? 0) / N;
  for (const w of watchers) w.abort();
  const e = spread(etcdUpd);
  // The same N nodes as agent processes with the product's engine, fed by etcd's watch. A
  // failure here costs its own rows only, not the watchers' (the issue's baseline).
  const ag = await etcdAgents(c).catch((err: unknown) => { console.log(`etcd-fed agents: ${(err as Error).message.split('\n')[0]} (their rows are left out)`); return null; });
  if (ag) {
    const ag99 = Array.from({ length: ag.upd.length }, (_, k) => percentile(ag.lat.slice(k * N, (k + 1) * N), 99));
    const ae = spread(ag.upd), ap = spread(ag99);
    rows.push({ scenario: 'etcd-agents', metric: `put → applied per agent process (median), ${N} agent processes fed by etcd (no mesh)`, unit: 'ms', nodes: N, value: round(median(ag.lat)), min: ae.min, max: ae.max, runs: ag.upd.length, samples: ag.upd.map((x) => round(x)) });
    rows.push({ scenario: 'etcd-agents', metric: `put → applied per agent process (p99), ${N} agent processes fed by etcd (no mesh)`, unit: 'ms', nodes: N, value: round(percentile(ag.lat, 99)), min: ap.min, max: ap.max, runs: ag.upd.length, samples: ag99.map((x) => round(x)) });
    const ac = spread(ag.cpu), both = spread(ag.cpu.map((x, k) => x + ag.etcdCpu[k]!));
    rows.push({ scenario: 'etcd-agents', metric: `fleet CPU from put to applied everywhere, ${N} agent processes fed by etcd (no mesh)`, unit: 'CPU s', nodes: N, value: ac.median, min: ac.min, max: ac.max, runs: ag.cpu.length });
    rows.push({ scenario: 'etcd-agents', metric: `… the same with the etcd server's own CPU (its raft write, ${N} watch streams, the JSON gateway)`, unit: 'CPU s', nodes: N, value: both.median, min: both.min, max: both.max, runs: ag.cpu.length });
  }
  if (watchersOnly) {
    const upd99: number[] = [];
    for (let v = 1; v <= UPDATES; v++) upd99.push(percentile(etcdLat.slice((v - 1) * N, v * N), 99));
    const p = spread(upd99);
    rows.push({ scenario: 'etcd-watch', metric: `put → applied per watcher (median), ${N} watchers`, unit: 'ms', nodes: N, value: round(median(etcdLat)), min: e.min, max: e.max, runs: etcdUpd.length, samples: etcdUpd.map((x) => round(x)) });
    rows.push({ scenario: 'etcd-watch', metric: `put → applied per watcher (p99), ${N} watchers`, unit: 'ms', nodes: N, value: round(percentile(etcdLat, 99)), min: p.min, max: p.max, runs: upd99.length, samples: upd99.map((x) => round(x)) });
    rows.push({ scenario: 'partial-cut', metric: 'fraction of etcd watchers updated when half are cut from the store', unit: 'fraction', nodes: N, value: round(etcdFraction, 3) });
    for (const r of rows) console.log(`${r.metric.padEnd(76)} ${r.value} ${r.unit}${r.min !== undefined ? ` [${r.min}–${r.max}]` : ''}`);
    saveRows(`${out}/etcd.json`, rows);
    await c.destroy();
  } else {

  // --- mesh side, same N, same machine, same run ---
  await c.startAll();
  await c.publish(c.nodes[0]!, c.policy(1));
  await c.converged(1, 60_000);
  await new Promise((r) => setTimeout(r, 3000));
  const meshLat: number[] = [], meshUpd: number[] = [];
  let missed = 0;
  for (let v = 2; v <= UPDATES + 1; v++) {
    const times = new Map<string, number>();
    const offs = c.nodes.map((x) => { const fn = (s: { policyVersion: number | null }) => { if (s.policyVersion === v && !times.has(x.name)) times.set(x.name, performance.now()); }; x.agent!.engine.on('enforced', fn); return () => x.agent!.engine.off('enforced', fn); });
    const t = performance.now();
    await c.publish(c.nodes[v % N]!, c.policy(v));
    // Generous: on a shared CPU the slowest of 30 in-process agents can take tens of seconds.
    // A node still without the update then is a result (the tail), not a reason to lose the run.
    await until(() => times.size === N, 120_000).catch(() => { missed += N - times.size; console.log(`v${v}: ${N - times.size}/${N} mesh nodes still without it after 120 s`); });
    offs.forEach((f) => f());
    const lat = [...times.values()].map((x) => x - t);
    meshLat.push(...lat);
    meshUpd.push(median(lat));
  }
  // Half the nodes lose the publishing node (not each other).
  const origin = c.nodes[0]!, cutOff = new Set(c.nodes.slice(N / 2).map((n) => n.peerId));
  await origin.links.set(origin.agent!.mesh, (p) => !cutOff.has(p));
  await Promise.all(c.nodes.slice(N / 2).map((n) => n.links.set(n.agent!.mesh, (p) => p !== origin.peerId)));
  const meshCutV = UPDATES + 2;
  await c.publish(origin, c.policy(meshCutV));
  await new Promise((r) => setTimeout(r, 3000));
  const meshFraction = c.nodes.filter((n) => c.versionOf(n) === meshCutV).length / N;
  await c.destroy();

  const m = spread(meshUpd);
  rows.push({ scenario: 'convergence', metric: 'publish → applied per node (median): mesh vs central store', unit: 'ms', nodes: N, value: round(median(meshLat)), min: m.min, max: m.max, runs: meshUpd.length, baseline: { name: 'etcd-watch', value: round(median(etcdLat)), min: e.min, max: e.max } });
  // The ratio per repetition (update i on the mesh against update i on etcd, same run).
  const ratios = spread(meshUpd.map((x, i) => x / etcdUpd[i]!));
  rows.push({ scenario: 'convergence', metric: 'mesh ÷ etcd-watch, per-node median per update, same run', unit: '×', nodes: N, value: ratios.median, min: ratios.min, max: ratios.max, runs: meshUpd.length });
  rows.push({ scenario: 'convergence', metric: 'publish → applied per node (p99): mesh vs central store', unit: 'ms', nodes: N, value: round(percentile(meshLat, 99)), baseline: { name: 'etcd-watch', value: round(percentile(etcdLat, 99)) } });
  rows.push({ scenario: 'convergence', metric: 'mesh nodes still without an update 120 s after it was published (all updates)', unit: 'node-updates', nodes: N, value: missed });
  rows.push({ scenario: 'partial-cut', metric: 'fraction of nodes updated when half are cut from the store / the publisher', unit: 'fraction', nodes: N, value: round(meshFraction, 3), baseline: { name: 'etcd-watch', value: round(etcdFraction, 3) } });
  for (const r of rows) console.log(`${r.metric.padEnd(76)} ${r.baseline ? `mesh ${r.value} vs etcd ${r.baseline.value}` : r.value} ${r.unit}${r.min !== undefined ? ` [${r.min}–${r.max}]` : ""}`);
  saveRows(`${out}/etcd.json`, rows);
  }
} finally {
  etcd.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
