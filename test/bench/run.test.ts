import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(import.meta.dirname, '..', '..');
const run = (out: string) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'run.ts'), '--report-only', '--out', out], { cwd: root, encoding: 'utf8' });

describe('bench/run.ts --report-only', () => {
  it('refuses a directory with no earlier run, or a damaged results.json, with one line and exit 2 (no report from nothing)', () => {
    const empty = mkdtempSync(join(tmpdir(), 'bench-'));
    const r = run(empty);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^bench: --report-only needs the results\.json of an earlier run in .*: ENOENT/);
    const damaged = mkdtempSync(join(tmpdir(), 'bench-'));
    writeFileSync(join(damaged, 'results.json'), '{"machine": {"cores": "two"}, "run": {}}');
    const d = run(damaged);
    expect(d.status).toBe(2);
    expect(d.stderr.trim()).toMatch(/^bench: --report-only needs the results\.json of an earlier run in .*: no machine or run recorded$/);
  });

  it('rewrites the report from the rows and the run recorded in the directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-'));
    const machine = { cores: 2, cpu: 'test cpu', memoryGiB: 1, kernel: 'k', node: 'v20', nft: null, loadAtStart: 0.5 };
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ machine, run: { quick: true, startedAt: '2026-01-02T03:04:05.000Z', seconds: { total: 99.5 }, cpuSeconds: { total: 12 }, loadAtEnd: 0.7, notRun: [] }, rows: [] }));
    writeFileSync(join(dir, 'procs.json'), JSON.stringify([{ scenario: 'convergence', metric: 'publish → applied, per node (p99), 30 agent processes', unit: 'ms', nodes: 30, value: 321 }]));
    const r = run(dir);
    expect(r.status, r.stderr).toBe(0);
    const report = spawnSync('cat', [join(dir, 'benchmarks.md')], { encoding: 'utf8' }).stdout;
    expect(report).toContain('2026-01-02 03:04 UTC, 99.5 s');
    expect(report).toMatch(/30 agent processes, publish → enforced \(p99\) \| < 500 ms \| 321 ms \| met/);
  });
});
