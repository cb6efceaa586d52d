/**
 * CLI start-up: wall time of `picket <command>` against `node -e 0` on the same machine, in
 * the same run (medians of interleaved runs, so machine load hits both sides alike). The
 * test suite asserts the cause (no libp2p/LevelDB in the offline commands' module graph,
 * test/cli/startup.test.ts); this prints the effect. Needs `npm run build` first.
 *   npx tsx bench/cli-start.ts [--runs 9] [--out bench-out] [--against OTHER/bin/picket.js]
 * --against also times another build (e.g. the main checkout) in the same interleaved runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { argValue, median, round, saveRows, type Row } from './stats.js';

const BIN = resolve(import.meta.dirname, '../bin/picket.js');
const runs = Number(argValue('--runs', '9'));
const out = argValue('--out', 'bench-out');
const against = argValue('--against', '');
const dir = mkdtempSync(join(tmpdir(), 'picket-cli-start-'));

function time(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: dir, stdio: 'ignore' });
  const ms = performance.now() - t0;
  if (r.status !== 0 && args[0] !== '-e') throw new Error(`${args.join(' ')} exited ${r.status}`);
  return ms;
}

const picket = (...a: string[]) => [BIN, ...a];
time(picket('keygen', '--out', 'admin.key'));
time(picket('root', 'create', '--key', 'admin.key', '--out', 'root.json'));
writeFileSync(join(dir, 'policy.yaml'), 'meshId: m\nversion: 1\nexpires: 2099-01-01\n');
time(picket('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'policy.signed'));

const commands: [string, string[]][] = [
  ['node -e 0', ['-e', '0']],
  ['picket --version', picket('--version')],
  ['picket --help', picket('--help')],
  ['picket keygen', picket('keygen', '--out', 'k.key', '--force')],
  ['picket policy verify', picket('policy', 'verify', 'policy.signed', '--root', 'root.json')],
  ['picket policy sign', picket('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'p2.signed')],
  ['picket policy check (keyless)', picket('policy', 'check', 'policy.yaml')],
  ['picket agent --help (loads no agent stack)', picket('agent', '--help')],
];
if (against) {
  for (const [name, args] of [...commands]) if (args[0] === BIN) commands.push([`${name} [${against}]`, [resolve(against), ...args.slice(1)]]);
}
const samples = new Map(commands.map(([name]) => [name, [] as number[]]));
for (let i = 0; i < runs; i++) for (const [name, args] of commands) samples.get(name)!.push(time(args));
rmSync(dir, { recursive: true, force: true });

const base = median(samples.get('node -e 0')!);
const rows: Row[] = [];
console.log(`${'command'.padEnd(44)} ${'median ms'.padStart(10)} ${'× node -e 0'.padStart(12)}`);
for (const [name] of commands) {
  const m = median(samples.get(name)!);
  console.log(`${name.padEnd(44)} ${String(round(m, 0)).padStart(10)} ${String(round(m / base, 2)).padStart(12)}`);
  rows.push({ scenario: 'cli-start', metric: `${name}: start-up (median of ${runs})`, unit: 'ms', value: round(m, 0), baseline: { name: 'node -e 0', value: round(base, 0) } });
}
saveRows(join(out, 'cli-start.json'), rows);
