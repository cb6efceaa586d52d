/**
 * Mesh benchmarks (issue: the agent): publish → applied latency for 10/30/100 agents in one
 * process over loopback TCP (median and p99 over every node and update), the time from
 * healing a 50/50 partition to full convergence, and the RSS of one agent process with 20
 * peers. Prints a table and saves JSON.   npx tsx bench/mesh.ts [--quick] [--out DIR]
 * `--only-convergence 30` runs publish → applied for that one cluster size and nothing else
 * (a before/after comparison of one change on a shared machine). `--only-heal RUNS` runs the
 * partition-heal scenario alone (30 agents, or `--heal-nodes N`), RUNS heals, and prints each.
 */
import '../src/runtime/polyfill.js';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { Cluster, until } from '../test/helpers/cluster.js';
import { DEPLOYED_NODE_OPTIONS } from './deployed.js';
import { argValue, median, percentile, round, saveRows, spread, type Row } from './stats.js';
import { untilMixed } from './warmup.js';

const quick = process.argv.includes('--quick');
const out = argValue('--out', 'bench-out');
const rows: Row[] = [];
const stragglers: { nodes: number; version: number; missing: number }[] = [];
// Each in-process agent would audit this one process's thousands of sockets: one agent per
// host does not have that cost, so the dissemination benchmarks leave the self-audit out.
const BENCH_AUDIT = { audit: { interval: '1h', probeInterval: 0 } };
/** The idle window before the updates (CPU, connections opened: a few a minute, so 20 s): --quick keeps its 3 s. */
const IDLE_MS = quick ? 3000 : 20_000;

/**
 * Steady-state publish → applied: the product's default sync interval, a warm-up after the
 * fleet first converges (connections grow towards their target, the first status storm
 * passes: at 100 agents in one process that takes tens of seconds), and a quiet gap after
 * each update (every node gossips a signed status 1–3 s after a change; an update published
 * into that storm measures the storm, reported separately as back-to-back).
 */
async function convergence(n: number, updates: number): Promise<void> {
  const c = await Cluster.create(n, { transport: 'tcp', minPeers: 6, bootstrapCount: 3, bootstrapMode: 'previous', syncInterval: '30s', overrides: BENCH_AUDIT });
  try {
    await c.startAll();
    await until(() => c.nodes.every((x) => x.agent!.mesh.connectedPeers().length >= Math.min(3, n - 1)), 60_000);
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1, 60_000);
    const warmup = await untilMixed(c); // bench/warmup.ts: until the connection count stops growing
    // What the idle agents cost this one process before any update (heartbeats, keep-alives,
    // periodic status and sync): the CPU every update then competes with.
    // Connections opened meanwhile: the periodic exchange with a node it is not connected to
    // opens one and closes it after one sync (roundPeer in src/mesh/sync-plan.ts).
    let opened = 0;
    const count = (): void => { opened++; };
    for (const x of c.nodes) x.agent!.mesh.libp2p.addEventListener('connection:open', count);
    const u0 = process.cpuUsage(), w0 = performance.now(), e0 = performance.eventLoopUtilization();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const u = process.cpuUsage(u0), idleElu = performance.eventLoopUtilization(e0).utilization, idleMs = performance.now() - w0;
    for (const x of c.nodes) x.agent!.mesh.libp2p.removeEventListener('connection:open', count);
    rows.push({ scenario: 'convergence', metric: 'CPU of the idle agents, all in this process (before updates)', unit: '% of a core', nodes: n, value: round(((u.user + u.system) / 1000 / idleMs) * 100, 1) });
    rows.push({ scenario: 'convergence', metric: 'connections opened per minute by the idle agents (both ends counted)', unit: 'per minute', nodes: n, value: round((opened / idleMs) * 60_000, 1) });
    const quiet: number[] = [];
    let notQuiet = 0;
    const perNode: number[] = [];
    const all: number[] = [];
    const backToBack: number[] = [];
    for (let v = 2; v < 2 + updates + 3; v++) {
      const storm = v >= 2 + updates; // the last three: published 200 ms after the previous converged
      const applied = new Map<string, number>();
      const listeners = c.nodes.map((x) => {
        const fn = (s: { policyVersion: number | null }) => { if (s.policyVersion === v && !applied.has(x.name)) applied.set(x.name, performance.now()); };
        x.agent!.engine.on('enforced', fn);
        return () => x.agent!.engine.off('enforced', fn);
      });
      const via = c.nodes[v % n]!;
      const t0 = performance.now();
      await c.publish(via, c.policy(v));
      const done = await until(() => applied.size === n, 60_000).then(() => true, () => false);
      listeners.forEach((off) => off());
      if (!done) {
        // A slow tail is a result, not a crash: record it and let the remaining nodes catch up.
        stragglers.push({ nodes: n, version: v, missing: n - applied.size });
        await until(() => c.nodes.every((x) => x.agent!.enforcer.status.policyVersion === v), 120_000).catch(() => undefined);
      }
      const lat = [...applied.values()].map((t) => t - t0);
      if (storm) backToBack.push(...lat);
      else {
        perNode.push(...lat);
        all.push(Math.max(...lat));
      }
      if (v + 1 >= 2 + updates) await new Promise((r) => setTimeout(r, 200));
      else {
        const q = await quietAgain(idleElu, t0);
        quiet.push(q.ms);
        if (!q.quiet) notQuiet++;
      }
    }
    rows.push({ scenario: 'convergence', metric: 'publish → applied, per node (median)', unit: 'ms', nodes: n, value: round(median(perNode)) });
    rows.push({ scenario: 'convergence', metric: 'publish → applied, per node (p99)', unit: 'ms', nodes: n, value: round(percentile(perNode, 99)) });
    rows.push({ scenario: 'convergence', metric: 'publish → applied on every node (median)', unit: 'ms', nodes: n, value: round(median(all)) });
    rows.push({ scenario: 'convergence', metric: 'back-to-back: published 200 ms after the previous update converged, per node (median)', unit: 'ms', nodes: n, value: round(median(backToBack)) });
    rows.push({ scenario: 'convergence', metric: 'publish → this process quiet again (back to the idle agents\' load; the next update waits for it), median', unit: 'ms', nodes: n, value: round(median(quiet)), ...spread(quiet) });
    rows.push({ scenario: 'convergence', metric: 'updates after which this process was not back to the idle load within 30 s (the next was published anyway)', unit: 'updates', nodes: n, value: notQuiet });
    rows.push({ scenario: 'convergence', metric: 'warm-up after the first policy, before measuring (until the connection count stops growing for 5 s)', unit: 'ms', nodes: n, value: warmup });
    const slow = stragglers.filter((x) => x.nodes === n);
    rows.push({ scenario: 'convergence', metric: 'updates where some node took over 60 s (slow tail)', unit: 'updates', nodes: n, value: slow.length });
  } finally {
    await c.destroy();
  }
}

/** The heal rows: the settled heal with and without policy addresses, and one heal right after the publish. */
async function heals(n: number, runs: number): Promise<void> {
  await heal(n, runs, HEAL_PORT, true);
  await heal(n, runs, 0, true);
  await heal(n, runs, HEAL_PORT, false);
}

/**
 * Waits until this process's event loop is busy at most `limit` (a fraction) over `windows`
 * 500 ms windows in a row, for at most `maxMs`. Resolves false when it never got there.
 */
async function untilQuiet(limit: number, windows: number, maxMs: number): Promise<boolean> {
  const end = performance.now() + maxMs;
  let prev = performance.eventLoopUtilization(), calm = 0;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    const now = performance.eventLoopUtilization();
    calm = performance.eventLoopUtilization(now, prev).utilization <= limit ? calm + 1 : 0;
    prev = now;
    if (calm >= windows) return true;
  }
  return false;
}

/**
 * After an update: until this process is back to the idle agents' load (`idleElu` + 0.15 over
 * two 500 ms windows, at most 30 s). Each update sets off a status round in every agent (a
 * claim 1–3 s after it applies, the tally relays); at 100 agents in one process that kept the
 * thread saturated for seconds, and a fixed 4 s gap published the next update into it
 * (profiled: the thread busy from one publish to the next), measuring the previous update's
 * aftermath — which the back-to-back row measures on purpose. At 10 agents the load never
 * leaves the idle band, so this is its minimum of two windows. `ms` since `t0`; `quiet` false
 * when the wait ran out.
 */
async function quietAgain(idleElu: number, t0: number): Promise<{ ms: number; quiet: boolean }> {
  const quiet = await untilQuiet(idleElu + 0.15, 2, 30_000);
  return { ms: performance.now() - t0, quiet };
}

/** Until this process's event loop is busy less than 25% of a 500 ms window (at most 15 s). */
async function quietProcess(): Promise<void> {
  await untilQuiet(0.25, 1, 15_000);
}

/**
 * Heals of a 50/50 partition. `sharedPort`: the fleet runs on one port everywhere and the
 * policy lists each node's address, as deployed (operations.md), so every node can dial every
 * other; 0: ephemeral ports, so a node knows only the addresses it learned first-hand or from
 * one exchange (peer exchange relays first-hand addresses only), as a chain-bootstrapped test
 * fleet without policy addresses does.
 */
async function heal(n: number, runs: number, sharedPort: number, settled: boolean): Promise<void> {
  const c = await Cluster.create(n, { transport: 'tcp', minPeers: 6, bootstrapCount: 3, bootstrapMode: 'previous', syncInterval: '1s', sharedPort, overrides: BENCH_AUDIT });
  const how = `${sharedPort ? 'one port everywhere, addresses in the policy' : 'ephemeral ports, addresses learned by exchange'}; ${settled ? 'healed once the partitioned fleet is quiet' : 'healed right after the publish'}`;
  try {
    await c.startAll();
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1, 60_000);
    const times: number[] = [];
    let v = 1;
    for (let r = 0; r < runs; r++) {
      const a = c.nodes.slice(0, n / 2), b = c.nodes.slice(n / 2);
      await c.partition(a, b);
      v++;
      await c.publish(a[0]!, c.policy(v));
      await c.converged(v, 30_000, a);
      // A partition lasts longer than the publish's aftermath (statuses, reconnecting within
      // each half): heal once this process (all n agents share its one thread) is quiet again.
      if (settled) await quietProcess();
      const t0 = performance.now();
      await c.heal();
      await c.converged(v, 60_000);
      times.push(performance.now() - t0);
      console.log(`heal ${r + 1}/${runs} (${how}): ${round(times.at(-1)!)} ms`);
    }
    console.log(`heal ${n} nodes (${how}), ${runs} runs: min ${round(Math.min(...times))} / median ${round(median(times))} / max ${round(Math.max(...times))} ms`);
    rows.push({ scenario: 'heal', metric: `50/50 partition healed → all converged (median, syncInterval 1 s; ${how})`, unit: 'ms', nodes: n, value: round(median(times)), ...spread(times) });
  } finally {
    await c.destroy();
  }
}

/** One real agent process connected to 20 in-process peers; its RSS read from /proc. */
async function memory(peers: number): Promise<void> {
  const c = await Cluster.create(peers, { transport: 'tcp', minPeers: 6, bootstrapCount: 3, bootstrapMode: 'previous' });
  const { writeFileSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  try {
    const spec = await c.addNode();
    for (const n of c.nodes.slice(0, peers)) await c.start(n);
    await c.publish(c.nodes[0]!, c.policy(1));
    await c.converged(1, 60_000, c.nodes.slice(0, peers));
    const cfg = join(c.dir, 'solo.yaml');
    writeFileSync(cfg, `meshId: test\ndataDir: ${spec.dir}\nidentityKey: ${join(c.dir, `${spec.name}.key`)}\ntrustedRoot: ${join(c.dir, 'root.json')}\nlisten: [/ip4/127.0.0.1/tcp/0]\nbootstrap: [${c.nodes.slice(0, peers).map((n) => n.agent!.mesh.listenAddrs()[0]).join(', ')}]\nmesh: { minPeers: ${peers} }\nenforcement: { backend: memory }\nalerts: []\nlog: { level: warn, pretty: false }\n`);
    // As the shipped systemd unit and image run it (deploy/systemd/picket.service).
    const child = spawn(process.execPath, ['bin/picket.js', 'agent', '--config', cfg], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: DEPLOYED_NODE_OPTIONS } });
    await until(() => c.nodes.slice(0, peers).filter((n) => n.agent!.mesh.connectedPeers().includes(spec.peerId)).length >= peers, 60_000);
    await new Promise((r) => setTimeout(r, 5000));
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
    child.kill('SIGTERM');
    rows.push({ scenario: 'memory', metric: `RSS of one agent process with ${peers} peers (NODE_OPTIONS=${DEPLOYED_NODE_OPTIONS}, as deployed)`, unit: 'MB', nodes: peers + 1, value: round(rss, 1) });
  } finally {
    await c.destroy();
  }
}

const only = argValue('--only-convergence', '');
const onlyHeal = Number(argValue('--only-heal', '0'));
/** The one port a shared-port heal fleet listens on, at 127.0.1.1–127.0.1.N (loopback only). */
const HEAL_PORT = Number(argValue('--heal-port', '47311'));
const sizes = onlyHeal ? [] : only ? [Number(only)] : quick ? [10, 30] : [10, 30, 100];
if (onlyHeal) {
  await heals(Number(argValue('--heal-nodes', '30')), onlyHeal);
}
for (const n of sizes) {
  await convergence(n, quick ? 5 : 10);
  console.log(`convergence ${n} done`);
}
if (!only && !onlyHeal) {
  await heals(quick ? 10 : 30, quick ? 2 : 5);
  await memory(20);
}
for (const r of rows) console.log(`${r.scenario.padEnd(12)} ${String(r.nodes ?? '').padStart(4)}  ${r.metric.padEnd(52)} ${String(r.value).padStart(9)} ${r.unit}`);
saveRows(`${out}/mesh.json`, rows);
console.log(`saved ${out}/mesh.json`);
process.exit(0);
