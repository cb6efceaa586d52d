/**
 * The simulator (bench/sim/) drives the product's own decision code over a simulated
 * transport: these check that it is deterministic, that its decisions are the product's
 * (a partition heals through sync exchanges, a forged announcement is rejected by the real
 * judge and its forwarder banned), and that it imports the product's modules instead of copies.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { runSim } from '../../bench/sim/world.js';
import { CurrentStatusPlane } from '../../bench/sim/status.js';
import { DigestStatusPlane } from '../../bench/sim/digest.js';

const root = resolve(import.meta.dirname, '../..');

describe('simulator', () => {
  it('same seed, same result: two runs give identical JSON; another seed gives another', async () => {
    const run = (seed: number) => runSim({ nodes: 120, seed, statusPlane: new CurrentStatusPlane(), statusSample: 8, partitionMs: 1000 });
    const a = JSON.stringify(await run(7));
    const b = JSON.stringify(await run(7));
    const c = JSON.stringify(await run(8));
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('a partition heals through sync exchanges: the far half gets the policy only after the heal, from planPush', async () => {
    const r = await runSim({ nodes: 100, seed: 3, partitionMs: 2000 });
    expect(r.timeTo100Ms).not.toBeNull();
    expect(r.timeTo100Ms!).toBeGreaterThanOrEqual(2000);
    expect(r.bodiesBySync).toBeGreaterThan(0);
    expect(r.healedBySync).toBeGreaterThan(0);
    // Nobody lied: honest peers are never struck.
    expect(r.strikes).toEqual({});
    // Without the partition, the eager push reaches everyone long before the heal time.
    const free = await runSim({ nodes: 100, seed: 3 });
    expect(free.timeTo100Ms!).toBeLessThan(2000);
  });

  it('a forged announcement is rejected by the real judge: its forwarder is struck and banned, every honest node still converges', async () => {
    // 1,000 extra rules: the envelope is above announceAbove, so v2 itself is announced and pulled.
    const r = await runSim({ nodes: 80, seed: 5, extraRules: 1000, forgers: [3], endMs: 120_000 });
    expect(r.path).toBe('announce-then-pull');
    expect(r.strikes['invalid-announcement']).toBeGreaterThanOrEqual(5);
    expect(r.bans).toBeGreaterThanOrEqual(1);
    expect(r.timeTo100Ms).not.toBeNull();
    expect(r.pulls).toBeGreaterThan(0);
    // Without the forger: no announcement is judged invalid.
    const honest = await runSim({ nodes: 80, seed: 5, extraRules: 1000, endMs: 120_000 });
    expect(honest.strikes['invalid-announcement']).toBeUndefined();
  });

  it('statuses: with every origin simulated, each node verifies each other node\'s status once and its fleet view ends complete', async () => {
    const n = 60;
    const r = await runSim({ nodes: n, seed: 11, statusPlane: new CurrentStatusPlane(), statusSample: n });
    expect(r.status!.sampledOrigins).toBe(n);
    expect(r.status!.viewTo100Ms).not.toBeNull();
    expect(r.status!.verificationsPerNodePerChange).toBe(n - 1);
    expect(r.status!.observer).toEqual({ summary: `${n}/${n} on v2`, lagging: false });
    // Every status arrives from several mesh peers: more bytes than one copy of each.
    expect(r.status!.bytesPerNodePerChange).toBeGreaterThan((n - 1) * 250);
  });

  it('digest plane: every node\'s view ends complete, merging verified no signature, and the same seed gives the same JSON', async () => {
    const n = 60;
    const run = async () => {
      const plane = new DigestStatusPlane();
      const r = await runSim({ nodes: n, seed: 11, statusPlane: plane, endMs: 200_000 });
      return { r, plane };
    };
    const { r, plane } = await run();
    expect(r.status!.sampledOrigins).toBe(n);
    expect(r.status!.scale).toBe(1);
    expect(r.status!.viewTo100Ms).not.toBeNull();
    expect(r.status!.verificationsPerNodePerChange).toBe(0);
    for (let i = 0; i < n; i++) {
      // The product's FleetDigest at every node holds every node's claim on v2.
      expect(plane.seenAt(i, 2, Array.from({ length: n }, (_, k) => k))).toBe(n);
      expect(plane.digest(i).verifications).toBe(n - 1 === i ? n - 1 : 0);
    }
    // The observer's operator view checks signatures (real ones, by the real verifier): all pass.
    expect(r.status!.observer).toEqual({ summary: `${n}/${n} on v2`, lagging: false });
    // The change itself travelled as tally bits: fewer bytes per node than one signed claim (~110 B) per other node.
    expect(r.status!.bytesPerNodePerChange).toBeLessThan((n - 1) * 110);
    // The read wanted the claims behind the bits and got every one within the run.
    expect(r.status!.readMs).not.toBeNull();
    expect(r.status!.readBytesPerNode).toBeGreaterThan(0);
    // Claims are compact and sent once per neighbour, not relayed by gossipsub: fewer bytes than the full plane.
    const full = await runSim({ nodes: n, seed: 11, statusPlane: new CurrentStatusPlane(), statusSample: n });
    expect(r.status!.bytesPerNodePerChange).toBeLessThan(full.status!.bytesPerNodePerChange);
    expect(JSON.stringify((await run()).r)).toBe(JSON.stringify(r));
  });

  it('digest plane: every view completes within seconds of a fleet-wide change, not at the next periodic full digest (relay suppression left views incomplete up to 2 min)', async () => {
    const r = await runSim({ nodes: 60, seed: 7, statusPlane: new DigestStatusPlane(), endMs: 200_000 });
    expect(r.status!.viewTo100Ms).not.toBeNull();
    expect(r.status!.viewTo100Ms!).toBeLessThan(30_000);
  });

  it('imports the product\'s decision code, and defines none of it itself', () => {
    const dir = join(root, 'bench', 'sim');
    const src = readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    for (const m of ['src/mesh/intake.js', 'src/node/accept.js', 'src/mesh/sync-plan.js', 'src/mesh/sync.js', 'src/mesh/inflight.js', 'src/mesh/admission.js', 'src/mesh/budgets.js', 'src/mesh/announce.js', 'src/audit/status.js', 'src/audit/status-digest.js', 'src/audit/status-claims.js']) {
      expect(src, m).toContain(`from '../../${m}'`);
    }
    for (const name of ['planPush', 'claimsBody', 'pushLimit', 'judgeDelivery', 'judgeAnnouncement', 'verifyAnnouncement', 'judgePolicy', 'verifyPolicy', 'verifyStatus', 'intakeStatus', 'policyIntake', 'pullAnnounced', 'judgePull', 'fleetView', 'newerClaim', 'FleetDigest', 'signClaim', 'claimVerifier', 'encodeDigests', 'decodeDigest']) {
      expect(src, name).not.toMatch(new RegExp(`(function|const|let|class)\\s+${name}\\b`));
    }
  });

  it('rejects a bad flag with one line and exit 2', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'sim.ts'), '--nodes', '10k'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['sim: --nodes must be a number or a comma list of numbers (got "10k")']);
  });

  it('rejects an unknown --status-plane with one line and exit 2', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'sim.ts'), '--nodes', '10', '--status-plane', 'gossip'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['sim: --status-plane must be full, digest or both (got "gossip")']);
  });

  it('rejects a bad --digest-max with one line and exit 2; above it the digest plane runs without the operator read (no N² run that dies out of memory), and says so', () => {
    const run = (...a: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'sim.ts'), ...a], { cwd: root, encoding: 'utf8' });
    const bad = run('--nodes', '10', '--digest-max', '-1');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual(['sim: --digest-max must be a whole number from 2 to 100000 (got "-1")']);
    const dir = mkdtempSync(join(tmpdir(), 'sim-'));
    const above = run('--nodes', '20', '--status-plane', 'digest', '--digest-max', '10', '--out', dir);
    expect(above.status).toBe(0);
    expect(above.stdout).toContain('sim: 20 nodes: digest plane without the operator read (above --digest-max 10');
    const rows = JSON.parse(readFileSync(join(dir, 'sim-rows.json'), 'utf8')) as { metric: string }[];
    expect(rows.some((r) => r.metric.startsWith('status bytes received per node per fleet-wide change'))).toBe(true);
    expect(rows.some((r) => r.metric.includes('operator read'))).toBe(false);
  });
});
