/** Small helpers for benchmark scripts: medians and percentiles, JSON output. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export const median = (v: number[]) => percentile(v, 50);

/** The arithmetic mean (0 for none). */
export function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return a.length ? s / a.length : 0;
}

/** Min, median and max of repeated measurements, rounded for reporting. */
export function spread(v: number[], d = 2): { min: number; median: number; max: number } {
  return { min: round(Math.min(...v), d), median: round(median(v), d), max: round(Math.max(...v), d) };
}

export interface Row {
  scenario: string;
  metric: string;
  unit: string;
  value: number;
  nodes?: number;
  rules?: number;
  baseline?: { name: string; value: number; min?: number; max?: number };
  /** For a figure measured repeatedly: `value` is the median of `runs` repetitions. */
  min?: number;
  max?: number;
  runs?: number;
  /** The repetitions themselves, in order (run.ts pairs them across scripts of one run). */
  samples?: number[];
}

export function saveRows(path: string, rows: Row[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(rows, null, 2) + '\n');
}

export function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

export const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
