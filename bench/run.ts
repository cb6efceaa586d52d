/**
 * `npm run bench -- [--quick] [--out DIR] [--only a,b] [--docs]`: runs the benchmark scripts
 * side by side in one run and merges their rows, with the machine they ran on, into
 * DIR/results.json; draws SVG bar charts and writes the report DIR/benchmarks.md
 * (--report-only: from the rows and run already in DIR, running nothing). Everything
 * goes under DIR (default bench-out/). Only `--docs` (meant for a full run) also regenerates
 * docs/benchmarks.md and docs/bench/*.svg in the checkout.
 * --quick runs only the headline figures — 30 agent
 * processes, the etcd baseline, the kernel apply, the simulation — at its headline size with
 * ≥ 5 repetitions, and leaves out trust (crypto throughput), the in-process scale and the
 * byte-count scenarios. Its goal is < 2 min on an idle 2-core machine; measured on one: ~105 s
 * (procs 62 s: 30 agents starting, then waiting for a quiet fleet after the first policy and
 * after each update; apply 16 s, etcd 19 s with its 30 etcd-fed agent processes, sim 10 s).
 * A build older than src/ is rebuilt first (not counted in that). --report-only --quick-seconds S puts the
 * wall time of a --quick run of the same code into a full run's report (which cannot time it). The
 * run records its wall time and the CPU time of everything it started (results.json
 * `run.seconds` / `run.cpuSeconds`), so a run on a busy machine still says what it cost.
 * When procs and etcd run together, the etcd baseline measures its watchers and N agent
 * processes fed by etcd (not a second mesh), and both are paired update by update with the N
 * mesh agent processes (the `mesh ÷ etcd-watch` and `mesh ÷ etcd-agents` rows).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureEtcd, ETCD_INSTALL, machine } from './machine.js';
import { argValue, type Row } from './stats.js';

const docs = process.argv.includes('--docs');
const out = resolve(argValue('--out', 'bench-out'));
mkdirSync(out, { recursive: true });
/**
 * --report-only: runs nothing; rewrites the report (and with --docs the checkout's page) from
 * the rows already in DIR and the machine and run recorded in DIR/results.json — after the
 * explanations in this file changed, without a second 25-minute run.
 */
const reportOnly = process.argv.includes('--report-only');
type RunInfo = { quick: boolean; startedAt: string; seconds: Record<string, number>; cpuSeconds: Record<string, number>; loadAtEnd: number; notRun: string[]; /** Rows measured again after the run (what, when, why): said under the report's header. */ remeasured?: string; /** A full run cannot time --quick: the wall time of a --quick run of the same code (--quick-seconds, said in remeasured). */ quickSeconds?: number };
function readPrevious(): { machine: ReturnType<typeof machine>; run: RunInfo } {
  const file = join(out, 'results.json');
  try {
    const p = JSON.parse(readFileSync(file, 'utf8')) as { machine?: ReturnType<typeof machine>; run?: RunInfo };
    if (typeof p.machine?.cores !== 'number' || typeof p.run?.startedAt !== 'string' || typeof p.run.seconds?.total !== 'number') throw new Error('no machine or run recorded');
    return p as { machine: ReturnType<typeof machine>; run: RunInfo };
  } catch (e) {
    console.error(`bench: --report-only needs the results.json of an earlier run in ${out}: ${(e as Error).message.split('\n')[0]}`);
    process.exit(2);
  }
}
const previous = reportOnly ? readPrevious() : undefined;
const quick = previous ? previous.run.quick : process.argv.includes('--quick');
const root = resolve(import.meta.dirname, '..');
const started = performance.now();
const startedAt = previous?.run.startedAt ?? new Date().toISOString();
const host = previous?.machine ?? machine();
console.log(`machine: ${host.cores} cores (${host.cpu}), ${host.memoryGiB} GiB, Linux ${host.kernel}, Node ${host.node}, ${host.nft ?? 'no nft'}; load average ${host.loadAtStart}`);
if (host.loadAtStart > host.cores) console.log(`note: load average ${host.loadAtStart} on ${host.cores} cores: other work shares the CPU, every timing below is inflated`);

/** CPU seconds (user + system) of every child this process has waited for, and theirs. */
function childCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // cutime, cstime in clock ticks
}
const seconds: Record<string, number> = {};
const cpuSeconds: Record<string, number> = {};
function runScript(name: string, args: string[] = [], label = name): boolean {
  console.log(`\n== ${name} ${args.join(' ')}`);
  const t = performance.now(), c = childCpu();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', name), '--out', out, ...(quick ? ['--quick'] : []), ...args], { stdio: 'inherit', cwd: root });
  seconds[label] = Math.round((performance.now() - t) / 100) / 10;
  cpuSeconds[label] = Math.round((childCpu() - c) * 10) / 10;
  console.log(`== ${label}: ${seconds[label]} s wall, ${cpuSeconds[label]} s CPU`);
  return r.status === 0;
}

/** The newest modification time of any file under `dir` (0 when it does not exist). */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true, recursive: true }).reduce((m, e) => (e.isFile() ? Math.max(m, statSync(join(e.parentPath, e.name)).mtimeMs) : m), 0);
}

const canKernel = process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0 && spawnSync('iptables-restore', ['--version']).status === 0;
const only = reportOnly ? [] : argValue('--only', quick ? 'procs,apply,etcd,sim' : 'trust,mesh,procs,procs-sizes,bytes,apply,etcd,sim,status').split(',');
const ran: Record<string, boolean> = Object.fromEntries((previous?.run.notRun ?? []).map((k) => [k, false]));
if (previous) { Object.assign(seconds, previous.run.seconds); Object.assign(cpuSeconds, previous.run.cpuSeconds); }
// The agent processes run the built bundle (bin/picket.js), the etcd-fed agents a bundle of
// src/ made at run time: both sides of a ratio must be the same code, so a stale build is rebuilt.
if (['procs', 'procs-sizes', 'etcd'].some((k) => only.includes(k)) && newest(join(root, 'src')) > newest(join(root, 'dist', 'bundle'))) {
  console.log('dist/ is older than src/: building it first (npm run build)');
  if (spawnSync('bash', [join(root, 'scripts', 'build.sh')], { stdio: 'inherit', cwd: root }).status !== 0) {
    console.error('bench: npm run build failed; the agent processes would run stale code');
    process.exit(1);
  }
}
if (only.includes('trust')) ran.trust = runScript('trust.ts');
if (only.includes('mesh')) ran.mesh = runScript('mesh.ts');
if (only.includes('procs')) ran.procs = runScript('procs.ts');
// The status plane per change on real agent processes at 10 beside the headline 30 (the
// agents' own counters: payload bytes received, signature checks; a full run only). Not 100:
// idle, 100 agents use 1.9% of a core each — this machine's two cores — so the fleet is never
// quiet, an update takes 14 s at the median and the run 16 minutes (measured: docs/benchmarks.md).
if (only.includes('procs-sizes')) ran['procs-sizes'] = runScript('procs.ts', ['--nodes', '10'], 'procs.ts --nodes 10');
if (only.includes('bytes')) ran.bytes = runScript('bytes.ts');
if (only.includes('apply')) ran.apply = canKernel ? runScript('apply.ts') : false;
// The central-store baseline always runs: installed here when missing (as .ci/run installs nft).
// With the agent processes in this run, etcd's watchers and etcd-fed agents are compared with them (no second mesh).
if (only.includes('etcd')) ran.etcd = ensureEtcd((l) => console.log(l)) ? runScript('etcd.ts', ran.procs ? ['--watchers-only'] : []) : false;
// Full statuses against digests, side by side, with every agent in this process: 10 and 30
// nodes (100 in one process saturates it before anything is published: see procs-sizes).
if (only.includes('status')) ran.status = runScript('status.ts', ['--sizes', '10,30']);
// Both status planes at every size. The digest plane's operator read (every node then holds
// every claim: N² memory) up to --digest-max only; above it the change alone, and at 10,000
// nodes one seed (~3 min and 6 GB a run).
if (only.includes('sim')) ran.sim = runScript('sim.ts', ['--nodes', quick ? '1000' : '10000,1000,400', ...(quick ? ['--status-plane', 'digest'] : []), '--digest-max', quick ? '200' : '400', '--seeds', '5', ...(quick ? [] : ['--digest-seeds-above', '1']), '--degree', '6', '--latency', '50ms', '--loss', '0.05', '--seed', '42']);

const rows: Row[] = [];
for (const f of ['trust.json', 'mesh.json', 'procs.json', 'procs-10.json', 'bytes.json', 'apply.json', 'etcd.json', 'sim-rows.json', 'status.json']) {
  const p = join(out, f);
  if (existsSync(p)) rows.push(...(JSON.parse(readFileSync(p, 'utf8')) as Row[]));
}
// The mesh (N agent processes) against etcd's N watchers (verify and compile, in one process)
// and against N agent processes fed by etcd (the same engine, no mesh), update i against
// update i of this run.
for (const [scenario, who] of [['etcd-watch', 'etcd watchers'], ['etcd-agents', 'agent processes fed by etcd']] as const) {
  for (const kind of ['median', 'p99'] as const) {
    const mesh = rows.find((r) => r.scenario === 'convergence' && r.metric.startsWith(`publish → applied, per node (${kind})`) && r.samples);
    const etcd = rows.find((r) => r.scenario === scenario && r.metric.includes(`(${kind})`) && r.samples && r.nodes === mesh?.nodes);
    if (!mesh || !etcd) continue;
    const n = Math.min(mesh.samples!.length, etcd.samples!.length);
    const ratios = Array.from({ length: n }, (_, i) => mesh.samples![i]! / etcd.samples![i]!).sort((a, b) => a - b);
    const r2 = (x: number) => Math.round(x * 100) / 100;
    rows.push({ scenario: 'convergence', metric: `publish → applied per node (${kind}): ${mesh.nodes} agent processes vs ${etcd.nodes} ${who}, same run`, unit: 'ms', nodes: mesh.nodes!, value: mesh.value, ...(mesh.min !== undefined ? { min: mesh.min, max: mesh.max!, runs: mesh.runs! } : {}), baseline: { name: scenario, value: etcd.value, ...(etcd.min !== undefined ? { min: etcd.min, max: etcd.max! } : {}) } });
    rows.push({ scenario: 'convergence', metric: `mesh ÷ ${scenario}, per-node ${kind} per update (${mesh.nodes} agent processes), same run`, unit: '×', nodes: mesh.nodes!, value: r2(ratios[Math.ceil(n / 2) - 1]!), min: r2(ratios[0]!), max: r2(ratios[n - 1]!), runs: n });
  }
}
const chaosDir = join(root, 'chaos-report');
if (existsSync(chaosDir)) {
  for (const f of readdirSync(chaosDir).filter((x) => x.endsWith('.json')).sort()) {
    const c = JSON.parse(readFileSync(join(chaosDir, f), 'utf8')) as { scenario: string; nodes: number; timeToConvergeMs: number; gossipBytes: number; syncBytes: number };
    rows.push({ scenario: 'chaos', metric: `${c.scenario}: time to converge after the last fault`, unit: 'ms', nodes: c.nodes, value: Math.round(c.timeToConvergeMs) });
  }
}
const totalSeconds = previous?.run.seconds.total ?? Math.round((performance.now() - started) / 100) / 10;
const totalCpu = previous?.run.cpuSeconds.total ?? Math.round(childCpu() * 10) / 10;
delete seconds.total;
delete cpuSeconds.total;
const run: RunInfo = { quick, startedAt, seconds: { total: totalSeconds, ...seconds }, cpuSeconds: { total: totalCpu, ...cpuSeconds }, loadAtEnd: previous?.run.loadAtEnd ?? Math.round(loadavg()[0]! * 100) / 100, notRun: Object.entries(ran).filter(([, ok]) => !ok).map(([k]) => k), ...((argValue('--remeasured', '') || previous?.run.remeasured) ? { remeasured: argValue('--remeasured', '') || previous!.run.remeasured! } : {}), ...((argValue('--quick-seconds', '') || previous?.run.quickSeconds) ? { quickSeconds: Number(argValue('--quick-seconds', '') || previous!.run.quickSeconds) } : {}) };
writeFileSync(join(out, 'results.json'), JSON.stringify({ machine: host, run, rows }, null, 2) + '\n');

/** A horizontal bar chart, one bar (or two with a baseline) per row. */
function svg(title: string, items: { label: string; value: number; baseline?: number }[], unit: string): string {
  const w = 720, rowH = 26, left = 300, h = 40 + items.length * rowH + 20;
  const max = Math.max(1, ...items.flatMap((i) => [i.value, i.baseline ?? 0]));
  const scale = (v: number) => ((w - left - 90) * v) / max;
  const bars = items.map((it, i) => {
    const y = 40 + i * rowH;
    const base = it.baseline !== undefined ? `<rect x="${left}" y="${y + 13}" width="${scale(it.baseline)}" height="9" fill="#bbb"/><text x="${left + scale(it.baseline) + 4}" y="${y + 21}" font-size="10" fill="#777">${it.baseline} ${unit}</text>` : '';
    return `<text x="${left - 8}" y="${y + 14}" font-size="12" text-anchor="end">${it.label}</text><rect x="${left}" y="${y + 2}" width="${scale(it.value)}" height="11" fill="#2a7ab9"/><text x="${left + scale(it.value) + 4}" y="${y + 12}" font-size="11">${it.value} ${unit}</text>${base}`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><text x="10" y="22" font-size="15" font-weight="bold">${title}</text>${bars.join('')}</svg>\n`;
}

const conv = rows.filter((r) => r.scenario === 'convergence' && r.metric.includes('per node (median)'));
writeFileSync(join(out, 'convergence.svg'), svg('publish → applied, per node (median)', conv.map((r) => ({ label: `${r.nodes} ${r.metric.includes('processes') ? 'agent processes' : 'nodes, one process'}`, value: r.value })), 'ms'));
const ratios = rows.filter((r) => r.scenario === 'bytes' && r.metric.includes('received / envelope size'));
writeFileSync(join(out, 'bytes.svg'), svg('bytes received per node per update ÷ envelope size', ratios.map((r) => ({ label: r.metric.replace(': received / envelope size (median)', '').replace(' (gossipsub v1.1 peers)', '').replace(/\(\d+(\.\d+)? KB\)/, ''), value: r.value })), '×'));
const apply = rows.filter((r) => r.scenario === 'apply' && r.baseline && !r.metric.includes('without'));
writeFileSync(join(out, 'apply.svg'), svg('nft apply (blue) vs iptables-restore (grey)', apply.map((r) => ({ label: `${r.rules} rules, ${r.metric.includes('incremental') ? 'one address' : 'full'}`, value: r.value, baseline: r.baseline!.value })), 'ms'));

const range = (r: { min?: number; max?: number }) => (r.min !== undefined && r.max !== undefined ? ` (${r.min}–${r.max})` : '');
const fmt = (r: Row) => `| ${r.scenario} | ${r.metric} | ${r.nodes ?? r.rules ?? ''} | **${r.value}** ${r.unit}${range(r)} | ${r.baseline ? `${r.baseline.name}: ${r.baseline.value} ${r.unit}${range(r.baseline)}` : ''} |`;
const find = (scenario: string, part: string, n?: number) => rows.find((r) => r.scenario === scenario && r.metric.includes(part) && (n === undefined || r.nodes === n || r.rules === n));
// A figure with an idle rate subtracted can go negative when the idle traffic of its window was
// larger than usual: not a measurement of the update, so neither met nor missed.
const target = (name: string, r: Row | undefined, ok: ((v: number) => boolean) | 'info', goal: string) =>
  `| ${name} | ${goal} | ${r ? `${r.value} ${r.unit}${range(r)}` : 'not measured in this run'} | ${r ? (ok === 'info' ? 'for information' : r.value < 0 ? 'not measurable (negative after the idle rate was subtracted)' : ok(r.value) ? 'met' : 'missed') : '—'} |`;
const full10k = find('apply', 'nft full apply (median)', 10000), inc10k = find('apply', 'incremental', 10000);
const bigPull = rows.find((r) => r.scenario === 'bytes' && /KB policy, announce-then-pull: received/.test(r.metric));
const pullTime = rows.find((r) => r.scenario === 'bytes' && /KB policy, announce-then-pull: publish → applied per node/.test(r.metric));
const pushTime = rows.find((r) => r.scenario === 'bytes' && /KB policy, pushed whole: publish → applied per node/.test(r.metric));
const round2 = (n: number) => Math.round(n * 100) / 100;
const digestChecks = (n: number) => find('status', `digest plane, ${n} agent processes: signature checks per node per change`, n);
// bench/status.ts's payload per change (first copies, nothing subtracted): the agent processes' idle-subtracted figure is too noisy for a ratio.
const digestPayload = (n: number) => find('status', 'digests, verify on use (after): status-plane payload received per node per change', n);
// The same with periodic statuses off: the change's own cost, nothing of the steady liveness traffic in its window.
const alonePayload = (n: number) => find('status', 'digests, the change alone (periodic statuses off): status-plane payload received per node per change', n);
const simDigest = (n: number) => find('status', `status bytes received per node per fleet-wide change (simulated ${n} nodes, digest plane`, n);
const simFull = (n: number) => find('status', `status bytes received per node per fleet-wide change (simulated ${n} nodes, full plane`, n);
/** How a per-node figure grows between two sizes (for the O(log N) goal), as a row. */
const growth = (big?: Row, small?: Row): Row | undefined => (big && small && small.value > 0 ? { ...big, value: round2(big.value / small.value), unit: '×', min: undefined, max: undefined } : undefined);
const doc = `<!-- generated by \`npm run bench -- --docs\` (bench/run.ts) from ${quick ? 'a --quick run' : 'a full run'}; do not edit by hand -->
# Benchmarks

All numbers from one run (${startedAt.slice(0, 16).replace('T', ' ')} UTC, ${totalSeconds} s) on ${host.cores} cores
(${host.cpu}), ${host.memoryGiB} GiB, Linux ${host.kernel}, Node ${host.node}, ${host.nft ?? 'no nft'}; load average
${host.loadAtStart} at the start, ${run.loadAtEnd} at the end.${run.remeasured ? ` ${run.remeasured}` : ''} Figures are medians; a range in
parentheses is the min–max of that figure over its repetitions (updates, or applies). Raw rows
and the machine: \`bench-out/results.json\`.

![publish → applied](bench/convergence.svg)
![nft vs iptables-restore](bench/apply.svg)
![10,000-node simulation](bench/sim.svg)
![bytes per update](bench/bytes.svg)

Run it yourself: \`npm run bench -- --quick\` (the headline figures only; kernel rows need root, nftables and
iptables; the etcd baseline installs \`etcd-server\` when run as root, otherwise it prints \`${ETCD_INSTALL}\`).
Results go to \`bench-out/\` (or \`--out DIR\`); only \`--docs\` rewrites this page.

## Targets

| target | goal | measured | |
|---|---|---|---|
${[
  target('100 nodes, publish → enforced (median)', find('convergence', 'per node (median)', 100), (v) => v < 100, '< 100 ms'),
  target('… the same, 100 agents in one process (issue 16\'s goal for this benchmark)', find('convergence', 'per node (median)', 100), (v) => v < 500, '< 500 ms'),
  target('30 agent processes, publish → enforced (median)', find('convergence', 'per node (median), 30 agent processes', 30), (v) => v < 100, '< 100 ms (the 100-node goal, at the scale this host can run as processes)'),
  target('30 agent processes, publish → enforced (p99)', find('convergence', 'per node (p99), 30 agent processes', 30), (v) => v < 500, '< 500 ms'),
  target('mesh ÷ etcd watch (median per update, same run)', find('convergence', 'mesh ÷ etcd-watch, per-node median per update'), (v) => v <= 2, '≤ 2×'),
  target('… like for like: mesh ÷ the same agent fed by etcd\'s watch (30 processes each, same engine: verify, persist, compile, apply)', find('convergence', 'mesh ÷ etcd-agents, per-node median per update'), (v) => v <= 2, '≤ 2×'),
  target('`npm run bench -- --quick`', quick ? { scenario: 'run', metric: 'wall time', unit: 's', value: totalSeconds } : run.quickSeconds ? { scenario: 'run', metric: 'wall time of a --quick run of the same code', unit: 's', value: run.quickSeconds } : undefined, (v) => v < 120, '< 2 min'),
  target('50/50 partition healed → converged (one port everywhere, addresses in the policy; healed once quiet)', find('heal', 'addresses in the policy; healed once'), (v) => v < 1000, '< 1 s'),
  target('the same, ephemeral ports (addresses learned by exchange)', find('heal', 'learned by exchange; healed once'), (v) => v < 1000, '< 1 s'),
  target('the same as the first, healed right after the publish (30 agents share one thread)', find('heal', 'right after the publish'), (v) => v < 1000, '< 1 s'),
  target('bytes per node per ~200 KB update (announce-then-pull)', bigPull, (v) => v <= 1.5, '≤ 1.5 × envelope'),
  target('~200 KB update: announce-then-pull vs push, publish → applied', pullTime && pushTime && { ...pullTime, value: round2(pullTime.value / pushTime.value), unit: '× the push path' }, (v) => v <= 1.5, '≤ 1.5 ×'),
  target('one agent RSS with 20 peers', find('memory', 'RSS'), (v) => v < 120, '< 120 MB'),
  target('10k-rule nft full apply', full10k, (v) => v < 150, '< 150 ms'),
  target('… the floor: `nft -f FILE` by hand, same script', find('apply', 'floor: nft -f FILE by hand, same full-replace', 10000), (v) => v < 150, '(< 150 ms)'),
  target('… before (temp file, `nft -c`, `ip netns exec`), same run', find('apply', 'before: render, temp file, nft -c', 10000), (v) => v < 150, '(< 150 ms)'),
  target('10k-rule one-address change', inc10k, (v) => v < 15, '< 15 ms'),
  target('… `nft -f FILE` by hand, same script (a new nft process per change, which waits for the kernel in `close()`)', find('apply', 'floor: nft -f FILE by hand, same one-address', 10000), (v) => v < 15, '(< 15 ms)'),
  target('… before (hashed diff, temp file, `ip netns exec`), same run', find('apply', 'before: hashed diff, temp file', 10000), (v) => v < 15, '(< 15 ms)'),
  target('10k full apply vs iptables-restore', full10k && { ...full10k, value: Math.round((full10k.baseline!.value / full10k.value) * 10) / 10, unit: '×' }, (v) => v >= 2, '≥ 2× faster'),
  target('10k incremental vs iptables-restore', inc10k && { ...inc10k, value: Math.round((inc10k.baseline!.value / inc10k.value) * 10) / 10, unit: '×' }, (v) => v >= 10, '≥ 10× faster'),
  target('event-loop lag p99 during a 10k apply', find('memory', 'event-loop'), (v) => v < 50, '< 50 ms'),
  target('status: signature checks per node per fleet-wide change, 10 agent processes (digest plane)', digestChecks(10), (v) => v < 1, '≪ N: not every node checks every node'),
  target('status: signature checks per node per fleet-wide change, 30 agent processes (digest plane)', digestChecks(30), (v) => v < 1, '≪ N'),
  target('status: signature checks per node per fleet-wide change, 100 agent processes (digest plane)', undefined, () => false, '≪ N (not measurable here: see below)'),
  target('status: payload per node per change, 30 ÷ 10 nodes (digest plane, agents in one process; the change alone, periodic statuses off)', growth(alonePayload(30), alonePayload(10)), (v) => v <= 1.48, '≤ 1.48 (O(log N): log 30 ÷ log 10)'),
  target('… the same with periodic statuses on (15 s): the change plus the steady liveness traffic its window holds', growth(digestPayload(30), digestPayload(10)), 'info', '(≤ 1.48)'),
  target('status: bytes per node per change, simulated 10,000 ÷ 1,000 nodes (digest plane)', growth(simDigest(10000), simDigest(1000)), (v) => v <= 1.34, '≤ 1.34 (O(log N): log 10,000 ÷ log 1,000)'),
  target('status: bytes per node per change, simulated 10,000 nodes: digest ÷ full plane', simDigest(10000) && simFull(10000) && { ...simDigest(10000)!, value: Math.round((simDigest(10000)!.value / simFull(10000)!.value) * 10000) / 10000, unit: '×', min: undefined, max: undefined }, (v) => v < 0.01, '≪ 1 (a complete view for a fraction of the full plane\'s bytes)'),
  target('status: every view complete after a change, simulated 10,000 nodes (digest plane)', find('status', 'time until every node\'s view shows every node on the update (simulated 10000 nodes, digest plane', 10000), (v) => v < 10_000, '< 10 s'),
  target('status: complete view after a change, 30 real nodes (digest plane)', find('status', 'digests, verify on use (after): publish → every node', 30), (v) => v < 10_000, 'every view complete (< 10 s)'),
  target('simulated 10,000 nodes at 50 ms, 5% loss: 99.9%', find('sim', '99.9%', 10000), (v) => v <= 1000, '≤ 1 s'),
  target('simulated 10,000 nodes at 50 ms, 5% loss: 100%', find('sim', 'time to 100%', 10000), (v) => v >= 0 && v <= 2000, '≤ 2 s (Serf model: ~2.4 s at 10% loss)'),
].join('\n')}

## The central-store baseline

${(() => {
  const e = rows.filter((r) => r.baseline?.name === 'etcd-watch' || r.baseline?.name === 'etcd-agents');
  if (!e.length) return `Not measured in this run (needs \`${ETCD_INSTALL}\`).`;
  return e.map((r) => `- ${r.metric} (${r.nodes} nodes): mesh **${r.value}** vs ${r.baseline!.name === 'etcd-watch' ? 'etcd watchers' : 'etcd-fed agents'} **${r.baseline!.value}** ${r.unit}`).join('\n') +
    '\n\nThe watchers are the issue\'s baseline: N watches in one process that verify and compile. The etcd-fed agents are the\n' +
    'like-for-like one: N processes running the agent\'s own node engine (verify, persist, compile, apply, log), each with its\n' +
    'own watch, so the two fleets differ only in how the policy reaches them (see "30 agent processes against etcd" below).\n\n' +
    'A central store answers a watch in one hop, so on one machine it is as fast as or faster than the mesh; what it buys is\n' +
    'nothing when the store is unreachable: the nodes cut from it get no update at all, while mesh nodes cut from the\n' +
    'publishing node still get it from any peer they can reach.';
})()}

## Bytes per update: push vs announce-then-pull

${(() => {
  const b = rows.filter((r) => r.scenario === 'bytes');
  if (!b.length) return 'Not measured in this run.';
  return 'Agents in one process over loopback TCP; bytes are what each agent\'s TCP sockets read (Noise, yamux and\n' +
    'gossipsub framing, duplicates, the announcement, the sync exchange, and the status digests that carry each\n' +
    'node\'s tally bit after it applies), minus the same agent\'s idle traffic over the same time. The publisher is\n' +
    'left out. Periodic statuses are off in this scenario (their traffic is per second, not per update, and too bursty\n' +
    'for a few seconds\' idle window: with them on, the idle rates of the three configurations had differed 28× and\n' +
    'small-policy figures went negative), and the idle window opens only once the fleet has stopped mixing.\n\n' +
    b.map((r) => `- ${r.metric}: **${r.value}** ${r.unit}`).join('\n') + '\n\n' +
    'Gossipsub sends a large message to every mesh peer that has not sent it first, so each node receives it about\n' +
    'once per mesh peer (~6× the envelope). Gossipsub v1.2, which this agent runs, sends IDONTWANT for large messages\n' +
    'as soon as one arrives, but here it saves next to nothing (the "no IDONTWANT" rows, gossipsub v1.1 peers, are\n' +
    'within a few percent): with every agent on one thread, each peer has already queued its forwards by the time a\n' +
    'neighbour\'s IDONTWANT is read. Announce-then-pull gets about one copy per node without depending on that race (a\n' +
    'node forwards the announcement only once it holds the body, and pulls from the peer that forwarded it to it), and\n' +
    'peers that speak only v1.1 cannot multiply it. The "through sync exchanges" row shows the body arriving once per\n' +
    'node; the rest of each update\'s bytes are the announcement, the status digests carrying the tally bits, and\n' +
    'gossipsub control traffic. A small policy pushed whole arrives from each mesh peer too (~6 copies), which with\n' +
    'those is most of its ~10× the envelope.';
})()}

## The 10,000-node simulation

${(() => {
  const s = rows.filter((r) => r.scenario === 'sim');
  if (!s.length) return 'Not run.';
  return 'Simulated nodes that run the product\'s own decision code (gossip validators, the engine\'s accept judgement,\n' +
    'sync planning and claims, announcements and pulls, admission, budgets, signed statuses) over a simulated transport;\n' +
    'gossipsub is modelled as the library (mesh degree 6, heartbeat IHAVE/IWANT). Five seeds per size (min–max in\n' +
    'parentheses); statuses of a seeded sample of origins are simulated in full and scaled. `npm run sim -- --nodes 10000\n' +
    '--seeds 5`; the curve against the hop bound and Serf\'s model is `sim.svg`.\n\n' + s.map((r) => `- ${r.metric}: **${r.value}** ${r.unit}${r.baseline ? ` (${r.baseline.name}: ${r.baseline.value} ${r.unit})` : ''}`).join('\n');
})()}

## Why the misses miss

- **How convergence is measured** (30 agent processes): each update is published to a quiet
  fleet. After the first policy the benchmark waits until the agents together use less than one
  core for 2 s (the "fleet settled" rows: the first policy ends start-up, mixes the mesh and sets
  off everyone's first status), measures the idle fleet's CPU (the "idle fleet CPU" row), and
  after each update waits until the fleet is back under that idle rate plus a quarter of a core
  for 2 s (every node's status follows 1–3 s after it applies). All agents share this machine's
  cores, so work one agent still does after an update delays every other agent's next one; a
  fleet of hosts has a CPU per agent. The "fleet CPU per update" row is what one update costs all
  agents together. Until this report the benchmark waited for "under a quarter of a core", and
  that was only ever met *between* status rounds that every agent ran in the same second: the 30
  agents finish starting within a second of each other on two shared cores, and each agent's
  periodic tasks ran at fixed intervals from its start. Every agent now runs its first periodic
  status at a random point of its first interval and its full status every 4th tick from a random
  phase, as a fleet restarted together needs as much as this benchmark does; the same work is
  then a steady ~70–85% of one core for 30 agent processes instead of a 10–15 CPU s burst every
  30 s, and updates no longer fall either into a gap (fast) or into a burst (an update published
  into one took 4 s). Earlier still, fixed 3–9 s gaps measured updates inside the first policy's
  aftermath: p99 4–15 s.
- **Convergence at 100 nodes** runs 100 complete agents (libp2p, Noise, yamux, gossipsub,
  LevelDB, the status plane) in *one* Node.js process on two cores; the goal this benchmark
  has in issue 16 (< 500 ms) is met in this run, barely: 497 ms at the median, p99 3.22 s (373 ms
  and 1.98 s in an earlier full run of this report's work, 643 ms and 2.88 s at the previous
  report). What this report took out of every accept, on every agent (decisions.md, "the accept
  path, per accept and per node"): the dialler built every listed node's multiaddr again
  (~100 parses per agent per update: 10,000 on this one thread) although the nodes had not
  changed; IPv4 addresses were parsed with a regex per octet and printed with four BigInt
  shifts, ~10% of the thread in the first 500 ms of each update (profiled); the enforcer parsed
  every listed address for the blocked set with nothing blocked; and every version without a
  staged rollout re-wrote an inert rollout record between "persisted" and "enforced". Each
  node still reaches beyond its connections at least every third sync round (the previous
  report's review: threat-model.md, "Eclipse by connections"), the "connections opened per
  minute by the idle agents" row (270 in this run), each a Noise handshake, identify,
  gossipsub set-up and a close; one agent per host pays one such connection per ~90 s. The
  "CPU of the idle agents" rows show what every update competes with: 3% of a core for 10
  idle agents, 10% for 30, 50% for 100. The p99 stays above a second: the slowest
  nodes of 100 on one thread apply while the first ones' statuses already run. The row's spread
  from run to run is wide (0.39–1.3 s over single runs of the last two reports), because what
  is left is 100 agents' work on one thread: GC, Noise, gossipsub and every agent's status
  round. One agent per host does not share a CPU with 99 others; the simulation models the
  protocol itself at 10,000 nodes.
- **The p99 of 30 agent processes** is met: 365 ms pooled (308 ms in an earlier full run of
  this report's work, 361 ms at the previous report, 411, 514, 602 and 775 ms before it). The
  row pools every node of all 10 updates, so its p99 is the third-slowest of ~290 node-updates;
  each update's own p99 is the range, 202–470 ms. The median is 143 ms (144 ms in the earlier
  run, 196 ms at the previous report), so the < 100 ms row is still missed. The enforce hop
  ("persisted" → "enforced") went from 112 ms to 45 ms at the median: a LevelDB write of an
  inert rollout record had sat in it on every node, on two cores shared by 30 processes. The idle
  fleet of 30 processes uses 29% of a core (31% at the previous report), and an update costs the
  fleet 3.39 CPU s from publish to quiet (2.43–5.06 over the updates; 2.88 CPU s, 2.28–3.67, at
  the previous report: the ranges overlap, and this report changed nothing after "applied"). What is left of the tail is 30 processes
  queueing for two cores: an update's policy path costs the fleet ~0.60 CPU s, and the
  "share of the cores busy" row is ~0.92 from publish to applied everywhere.
- **30 agent processes against etcd** (real \`picket agent\` binaries, one per node, on two
  shared cores). The issue's baseline, etcd's watchers (one process holding N watches, each
  verifying and compiling what it receives), stays as it was: 5.68× in this run (5.59× in an
  earlier full run of this report's work, 9.98× at the previous report), missed. It compares
  more than the transports: the watchers neither persist nor apply nor log, and they are one
  process, where the mesh side is 30 processes queueing for two cores. The like-for-like row
  runs the product's own node engine in 30 processes fed by etcd (bench/etcd-agent.ts: verify,
  persist with the fsynced trust mirror, compile, the lock-out guard, apply to the memory
  backend, read back, log), each put sent to a quiet fleet after a first unmeasured one, as
  the mesh's updates are: 1.61× (1.14–2.12) in this run, 1.50× in the earlier run, met. There an update
  costs the 30 agents 0.28 CPU s (0.29 with the etcd server's own), against the mesh's
  0.60: the difference is the mesh itself, each node receiving the policy from each of its
  ~6 gossip-mesh peers and forwarding it to them (Noise, yamux, gossipsub) and the publisher
  flooding it to all its connections. The hop rows show where a mesh node's time goes: arrival
  (the network and gossip hops) and verification take tens of milliseconds; persist and enforce
  (the memory backend here) are waiting for a core, not LevelDB or the apply. libp2p's TCP
  connection wrote every chunk with its own syscall (2-byte Noise lengths, 12-byte yamux
  headers); coalescing each connection's writes per tick (src/runtime/socket-writes.ts) cut
  write syscalls per agent per update from 3,229 to 1,424 in one side-by-side pair of runs, with
  no CPU change visible above run-to-run noise.
- **A healed 50/50 partition** (30 agents in one process, syncInterval 1 s; \`bench/mesh.ts
  --only-heal RUNS\` runs it alone). It had grown from 0.57 s to 4–10 s; the cause was a bug:
  once a node held minPeers connections, the redial loop took \`slice(0, minPeers − connected)\`
  of its known peers — a negative count, so "all but the last few" — and started ~7 dials
  every 100 ms tick. After a heal that was 115–150 new connections within 3 s (627 dials in one
  traced run), each a Noise handshake, identify, gossipsub and a sync, all in this one
  process; the version crossed at once, but storing it (then 5–7 LevelDB steps, each waiting
  a turn of a loop taking 0.3–2 s per turn) took 2–6 s. Fixed: the redial loop dials only
  below minPeers (at most 4 a tick), the periodic exchange reaches a policy node it is not
  connected to (the storm had been the only thing reconnecting two halves that each held their
  full connection target), and an accept is one LevelDB batch. Side by side with the old code
  (the helper's 4 × 5 heals, shared machine): median 8.0–10.3 s before, 1.6–5.4 s after.
  The heal itself is now the protocol's few steps: the first periodic round to reach across
  (30 rounds a second between 30 nodes at syncInterval 1 s), one exchange carrying the version,
  one gossip hop through the other half. Measured three ways, 5 heals each: healed once the
  partitioned fleet is quiet, with the addresses a deployed fleet's policy lists (one port
  everywhere) and with ephemeral ports (addresses only from exchanges; peer exchange relays
  first-hand addresses only), both well under 1 s; and healed the moment the publish converged
  on its side, which is slower because all 30 agents share this process's one thread and it is
  still busy with the publish's aftermath (statuses, reconnecting within each half): the first
  cross connection opens 0.3–1.3 s after the heal and the exchange waits as long again. That
  one missed its goal in this run (1.25 s at the median, 0.88–2.17 s; 1.34 s in an earlier
  full run of this report's work, 1.64 s at the previous report, then 1.68, 1.46, 0.97 and
  1.83 s): the ranges overlap from report to report, so the median moves with the busy thread.
  Neither the last report's rationed reach beyond connections (each half of 15 is below its
  target of 18, so its rounds dial across as before), nor this report's lighter accepts, nor
  earlier connection changes reach it: the benchmark's partition refuses dials at
  the gater (failed dials, whose backoff the heal resets), not connections that open and then close. Separate processes do not share that thread; the 30-process rows are the measure
  of a busy fleet.
- **Where each update's time went** (the \`hops\` rows): every agent logs one \`update trace\`
  line per version (received, verified, forwarded, persisted, enforced; src/node/trace.ts),
  which bench/procs.ts turns into per-hop figures and the hop count from the publisher. A
  node forwards as soon as it verified, so a hop costs a verification and a network hop;
  the LevelDB write and the apply are each node's own time, not its successors'.
- **The status plane** (the "status" rows: 10 and 30 agent processes, from each agent's
  own counters with its idle rate subtracted; bench/status.ts compares the full and the digest
  plane side by side with the agents in one process at 10 and 30 — at 100 that one process is
  saturated before anything is published and its idle-subtracted figures go negative; the
  simulator: the full plane up to 10,000 nodes, the digest plane at 200 and 400). 100 agent *processes* do not fit this machine either: one run
  (5 updates, 16 minutes) found 100 idle agents using 1.9% of a core each — both cores — so
  the fleet never went quiet; an update took 13.9 s at the median per node (p99 29 s), its
  policy path kept 96% of both cores busy, and 359 KB of claims and 93 signature checks per
  node per change were measured, the checks being the periodic full statuses that landed in
  every 63 s window (none in its 30 s idle window). Not a figure of the protocol: a figure of
  100 agents on two cores. On the digest plane no node verifies anyone's status when it
  changes (0 checks per node per change; a read verifies what it shows), and the change
  itself travels as **tally bits**: one bit per node over the policy's node order, merged
  by OR, instead of one signed claim (~110 bytes) per node. A complete per-node view has to
  learn N facts, so N bits is its information floor; what remains above it is the number of
  digests a node receives while the change spreads (~30–45, growing like log N). So bytes per
  node per change are O(N/8 · log N) — at 10,000 simulated nodes a small fraction of the full
  plane's — and not O(log N): only a count (how many nodes on vX), not a complete view, fits
  in O(log N). On real agents (one process, bench/status.ts) the change alone — periodic
  statuses off, so nothing but the change is in its window — costs each node 178 bytes of
  status payload at 10 nodes and 280 at 30 (1.57×, the growth goal's row; 156 and 280, 1.79×,
  in an earlier full run of this report's work, 155 and 293, 1.89×, at the previous report; the
  status protocol did not change between them: the 10-node figure alone moves by ~15% from run
  to run): ~13–15 and ~20 tally digests of 12–14 bytes, one per neighbour's relay while the bits
  spread. A digest grows by
  N/8 and a node's relays with the waves of the spread, so at this scale it grows faster than
  log N, and above ~1,000 nodes the bits dominate (the simulation). With periodic statuses on
  (15 s) a change's window also holds part of the steady liveness traffic — N claims per
  interval, each to every node, and every 4th interval's full digests: O(N) per node per
  *second*, not per change — so the same rows read 1.86 KB at 10 nodes and 10.0 KB at 30 (the
  informational row; 1.33 and 8.2 KB in the earlier full run of this report's work, 0.85 and
  8.3 KB at the previous report, 1.06 and 10.1 KB before it, 20.6 KB at 30 before it, when every node's first claim after a
  change still went out as news). On 30 agent processes the change is below the noise
  of that steady traffic (1.3 KB/s per node), and the idle-subtracted payload lands on either
  side of zero. A new
  neighbour's full view, which had been published to every neighbour (gossipsub cannot
  address one peer: 52 KB per change two reports ago), goes to that neighbour alone on a
  stream of its own (\`/picket/<mesh>/digest/1.0.0\`). The verified view costs a want round trip on the first read after a change
  (the "operator read" rows: 566 ms at 30 nodes in this run, 562–836 ms over its reads; 815 ms
  in the earlier full run of this report's work, 578 ms at the previous report, 653 and 540 ms
  before it, whose fast waves of first claims had done part of a read's work; every node then relays every
  wanted claim once, O(N) for that read). Bits are unsigned hearsay: they never make a verified row (threat-model.md). The
  digest plane's operator read is simulated up to 400 nodes (every simulated node then holds
  every claim: N² memory); above that the change alone, at 10,000 nodes one seed (~3 min,
  6 GB).
- **\`--quick\` in under 2 minutes** is met (a full run does not time it; the
  target row gives a --quick run of the same code on an idle machine: 111 s, and four runs of
  it took 105–122 s, so the margin is now small; the previous
  reports' code took 95 s, 90 s, 98 s, 110 s, and 92 and 102 s), from 128 s before the two changes below (146 s and 181 s before that). Two changes did it. The agent now runs as an
  esbuild bundle (scripts/bundle.mjs): Node 20 had spent ~0.8 of each agent's ~1.2 CPU s of
  start-up resolving and compiling ~1,000 modules one by one; an agent now starts in ~0.54 CPU s
  and 30 agents are up in ~10 s instead of ~19–21 s. And the status digests left gossipsub's lazy
  gossip (below), which shortened the first policy's aftermath (~27 → ~12–14 s until the fleet
  settles). Of the 111 s, the 30 agent processes take 66 s (62 s of 95 s at the previous report): start-up, the settle, a 5 s idle
  window, then 5 updates, each waited out until the fleet is back at its idle rate (≥ 5 s each).
  The kernel apply runs its headline size only (10k rules, 16.7 s), etcd 18 s (6 s before this
  report: its 30 etcd-fed agent processes start, get a first value and 5 measured ones, each
  to a quiet fleet) and the simulation 10 s (the digest plane at 1,000 nodes, 5 seeds).
- **RSS** is measured on one agent process after it has joined 20 peers, run as the shipped
  unit runs it (\`NODE_OPTIONS=--max-semi-space-size=4\`): ~100 MB; with Node's defaults it
  was 121 MB (92–125 MB across runs).
- **nft apply**: a full replace is one \`nft -f -\` transaction over a pipe, timed inside the
  namespace (no \`ip netns exec\` spawn). Host sources with the same allowed ports share a
  *class*: a verdict map sends each address to its class chain, whose one rule looks up
  proto·port in the class's set, so the 10k-rule ruleset is ~10,000 elements instead of ~30,000
  (address × port), and a one-address change is 4 element operations instead of ~2,000 (see
  [enforcement.md](enforcement.md)). A one-address change goes as one line to a long-lived
  \`nft -i\` (src/enforce/nft-session.ts): one netlink batch, in force whole or not at all, and
  the transaction's end marked by nft's answer to \`describe meta mark\`. A fresh \`nft -f\` per
  change — the hand-run row, and this backend until this report — spends ~4 ms starting and,
  when the change deletes an element, another 7–18 ms in \`close()\` of its netlink socket
  (strace: the kernel finishing the transaction's deferred release of the deleted elements). A
  process that keeps its socket open pays neither; the release completes in the background
  before the next change. So the hand-run \`nft -f FILE\` is the floor of a full replace (one
  parse, one batch) but no longer of an element change.

## All rows

| scenario | metric | nodes / rules | value | baseline |
|---|---|---|---|---|
${rows.map(fmt).join('\n')}

${Object.entries(ran).filter(([, ok]) => !ok).map(([k]) => `\nThe \`${k}\` benchmark did not run in this run${k === 'apply' && !canKernel ? ' (needs root, nftables and iptables)' : k === 'etcd' ? ` (etcd missing or failed: \`${ETCD_INSTALL}\`)` : ''}.`).join('')}
`;
writeFileSync(join(out, 'benchmarks.md'), doc.replace('](bench/', '](./').replaceAll('](bench/', '](./'));
if (docs) {
  // Only on request (a full run): the checkout's report and the charts it shows.
  writeFileSync(join(root, 'docs', 'benchmarks.md'), doc);
  mkdirSync(join(root, 'docs', 'bench'), { recursive: true });
  for (const f of ['convergence.svg', 'apply.svg', 'sim.svg', 'bytes.svg']) if (existsSync(join(out, f))) copyFileSync(join(out, f), join(root, 'docs', 'bench', f));
}
console.log(`\nwrote ${join(out, 'results.json')} (${rows.length} rows), ${join(out, 'benchmarks.md')}, SVG charts${docs ? ', docs/benchmarks.md and docs/bench/' : ' (docs/ untouched: --docs regenerates it)'} in ${totalSeconds} s`);
for (const [k, v] of Object.entries(seconds)) console.log(`  ${k.padEnd(10)} ${v} s wall, ${cpuSeconds[k]} s CPU`);
console.log(`  ${'total'.padEnd(10)} ${totalSeconds} s wall, ${totalCpu} s CPU (${host.cores} cores: ${Math.round((totalCpu / host.cores) * 10) / 10} s if nothing else ran)`);
if (run.notRun.length) { console.log(`not run: ${run.notRun.join(', ')}`); process.exitCode = 1; }
