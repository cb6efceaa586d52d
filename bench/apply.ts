/**
 * Apply benchmark (real kernel, inside a network namespace this script creates and deletes).
 * The script re-runs itself once inside the namespace (`ip netns exec NS node … --in-ns`), so
 * the timed sections of the product path contain no `ip netns exec` spawn — as in the agent,
 * which runs in its host's namespace. For 100 / 1,000 / 10,000-rule policies, side by side in
 * one run, each repeated and reported as min / median / max:
 *   - nft full replace and one-address change, the product path (NftBackend: a full replace is
 *     one `nft -f -` transaction over a pipe, an element change one line to its long-lived
 *     `nft -i`);
 *   - the same two applies the way the previous version did them (temp file, `nft -c` then
 *     `nft -f`, each through `ip netns exec`): the "before";
 *   - `nft -f FILE` by hand on the very script the backend sends: the physical floor of a full
 *     replace (a new process per change, which an element change no longer pays);
 *   - iptables-restore applying the same ruleset expanded rule by rule;
 * and the event-loop lag of the applying process during 10,000-rule applies.
 * Writes only under --out (scripts for the floor and the "before" path go to OUT/apply-tmp).
 *   npx tsx bench/apply.ts [--quick] [--out DIR]      (needs root, nft, iptables)
 */
import '../src/runtime/polyfill.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { NftBackend } from '../src/enforce/nft.js';
import { IptablesBackend } from '../src/enforce/iptables.js';
import { run } from '../src/enforce/exec.js';
import { nftSetNames, renderNftDelta, renderNftInPlace } from '../src/enforce/render-nft.js';
import { buildNftTables } from '../src/enforce/nft-tables.js';
import { compile, type NodeRuleset } from '../src/policy/compile.js';
import type { Policy } from '../src/policy/model.js';
import { argValue, round, saveRows, spread, type Row } from './stats.js';
import { applyBenchPolicy } from './apply-policy.js';

const quick = process.argv.includes('--quick');
const out = resolve(argValue('--out', 'bench-out'));
const inNs = argValue('--in-ns', '');

if (!inNs) {
  // Outside: make the namespace, run the measuring half inside it once, always clean up.
  const ns = `pkbench${process.pid % 10000}`;
  execFileSync('ip', ['netns', 'add', ns]);
  let status = 1;
  try {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', import.meta.filename, '--in-ns', ns, '--out', out, ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
    status = r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  process.exit(status);
}

const rows: Row[] = [];
const now = Date.now();
const tmp = join(out, 'apply-tmp');
mkdirSync(tmp, { recursive: true });

const policyWith = (rules: number, shift = 0): Policy => applyBenchPolicy(rules, now, shift);

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Alternates between two applies that each change the kernel state, `runs` times. */
async function alternate(runs: number, one: () => Promise<unknown>, other: () => Promise<unknown>): Promise<number[]> {
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) ts.push(await time(i % 2 ? other : one));
  return ts;
}

const wrap = ['ip', 'netns', 'exec', inNs];
const nftFile = (path: string, check = false) => run({ wrap }, ['nft', ...(check ? ['-c'] : []), '-f', path]);
/**
 * The previous version's path: render the script (as its backend did on every apply), a fresh
 * temp file, `nft -c` first for full applies, every nft through `ip netns exec`.
 */
async function before(render: () => string, full: boolean): Promise<void> {
  const script = render();
  const dir = join(tmp, `before-${performance.now().toString(36)}`);
  mkdirSync(dir);
  try {
    const p = join(dir, 'ruleset');
    writeFileSync(p, script, { mode: 0o600 });
    if (full) await nftFile(p, true);
    await nftFile(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --quick: the headline size only (the 100- and 1,000-rule rows are the curve in apply.svg).
const sizes = quick ? [10000] : [100, 1000, 10000];
const runs = quick ? 5 : 11;
const add = (metric: string, n: number, ts: number[], baseline?: Row['baseline']) => {
  const s = spread(ts);
  rows.push({ scenario: 'apply', metric, unit: 'ms', rules: n, value: s.median, min: s.min, max: s.max, runs: ts.length, ...(baseline ? { baseline } : {}) });
  return s;
};
try {
  for (const n of sizes) {
    const a = compile(policyWith(n), 'n0', { now });
    const b = compile(policyWith(n, 1), 'n0', { now }); // one address moved
    // Same rules plus icmp from anywhere: a different shape, so applying it is a full replace.
    const withIcmp = (p: Policy): Policy => ({ ...p, rules: [...p.rules, { name: 'ping', to: ['any'], from: ['any'], proto: 'icmp', ports: [] }] });
    const c = compile(withIcmp(policyWith(n)), 'n0', { now });
    // The exact scripts the backend sends for these applies (in place: the table exists).
    const inPlace = (to: NodeRuleset, from: NodeRuleset) => renderNftInPlace(to, { sets: nftSetNames(from), chains: ['input'] });
    const scripts = { ac: inPlace(c, a), ca: inPlace(a, c), ab: renderNftDelta(a, b), ba: renderNftDelta(b, a) };
    for (const [k, text] of Object.entries(scripts)) writeFileSync(join(tmp, `${k}.nft`), text);

    const nft = new NftBackend();
    await nft.apply(a); // creates the table
    // Product path, inside the namespace: full replace (a ↔ c) and one-address change (a ↔ b).
    const full = await alternate(runs, () => nft.apply(c), () => nft.apply(a));
    await nft.apply(a);
    const inc = await alternate(runs, () => nft.apply(b), () => nft.apply(a));
    if (nft.applies.incremental < runs) throw new Error('one-address changes were not applied as element changes');
    if (nft.sessionsStarted !== 1) throw new Error(`element changes started ${nft.sessionsStarted} nft sessions, not 1`);
    // The same applies by hand: `nft -f FILE` of the same scripts (the state is `a` again).
    const floorFull = await alternate(runs, () => run({}, ['nft', '-f', join(tmp, 'ac.nft')]), () => run({}, ['nft', '-f', join(tmp, 'ca.nft')]));
    const floorInc = await alternate(runs, () => run({}, ['nft', '-f', join(tmp, 'ab.nft')]), () => run({}, ['nft', '-f', join(tmp, 'ba.nft')]));
    // The previous version's path on the same scripts.
    // The previous version's path on the same applies. Its element difference was computed by
    // hashing every element of both rulesets; the product's is a merge of sorted sets.
    const hashedDelta = (from: NodeRuleset, to: NodeRuleset) => {
      const old = new Map(buildNftTables(from).sets.map((s) => [s.name, new Set(s.elements)]));
      const lines: string[] = [];
      for (const s of buildNftTables(to).sets) {
        const o = old.get(s.name) ?? new Set<string>(), n = new Set(s.elements);
        const removed = [...o].filter((x) => !n.has(x)), added = s.elements.filter((x) => !o.has(x));
        if (removed.length) lines.unshift(`delete element inet picket ${s.name} { ${removed.join(', ')} }`);
        if (added.length) lines.push(`add element inet picket ${s.name} { ${added.join(', ')} }`);
      }
      return lines.join('\n') + '\n';
    };
    const beforeFull = await alternate(runs, () => before(() => inPlace(c, a), true), () => before(() => inPlace(a, c), true));
    const beforeInc = await alternate(runs, () => before(() => hashedDelta(a, b), false), () => before(() => hashedDelta(b, a), false));
    const iptables = new IptablesBackend();
    const ipt = await alternate(runs, () => iptables.apply(a), () => iptables.apply(b));
    await iptables.remove();
    const iptMedian = spread(ipt).median;
    const f = add('nft full apply (median)', n, full, { name: 'iptables-restore', value: iptMedian });
    const i = add('nft one-address incremental apply (median)', n, inc, { name: 'iptables-restore', value: iptMedian });
    const ff = add('floor: nft -f FILE by hand, same full-replace script (median)', n, floorFull);
    const fi = add('floor: nft -f FILE by hand, same one-address script (median)', n, floorInc);
    const bf = add('before: render, temp file, nft -c + nft -f via ip netns exec, full replace (median)', n, beforeFull);
    const bi = add('before: hashed diff, temp file, nft -f via ip netns exec, one-address change (median)', n, beforeInc);
    add('iptables-restore full apply, rule by rule (median)', n, ipt);
    console.log(`${n} rules (${a.rules.length} compiled): full ${f.median} ms [floor ${ff.median}, before ${bf.median}]; one address ${i.median} ms [floor ${fi.median}, before ${bi.median}]; iptables-restore ${iptMedian} ms`);
    if (n === 10000) {
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      for (let k = 0; k < 3; k++) await nft.apply(k % 2 ? a : c);
      h.disable();
      rows.push({ scenario: 'memory', metric: 'event-loop lag p99 during 10k-rule nft apply', unit: 'ms', rules: n, value: round(h.percentile(99) / 1e6) });
      console.log(`event-loop lag p99 during 10k apply: ${round(h.percentile(99) / 1e6)} ms (max ${round(h.max / 1e6)})`);
    }
    await nft.remove();
    nft.close();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
for (const r of rows) console.log(`${r.scenario.padEnd(8)} ${String(r.rules).padStart(6)}  ${r.metric.padEnd(80)} ${String(r.value).padStart(9)} ${r.unit}${r.min !== undefined ? ` [${r.min}–${r.max}]` : ''}`);
saveRows(`${out}/apply.json`, rows);
console.log(`saved ${out}/apply.json`);
