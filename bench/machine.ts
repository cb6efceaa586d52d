/**
 * What a benchmark result is worth depends on where it ran: the machine (cores, CPU, memory,
 * kernel, Node, nft) and how busy it was (load average before and after). Also where the
 * central-store baseline's etcd is, and how it gets installed. And what a child process has
 * cost (its CPU).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export const ETCD_INSTALL = 'apt-get install -y etcd-server';

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  nft: string | null;
  etcd: string | null;
  /** 1-minute load average when the run started (other work competing for the cores). */
  loadAtStart: number;
}

const version = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).trim().split('\n')[0]! : null;
};

/** etcd from PICKET_BENCH_ETCD, PATH, or Debian's location. */
export function findEtcd(): string | null {
  const candidates = [process.env.PICKET_BENCH_ETCD, 'etcd', '/usr/bin/etcd', '/usr/local/bin/etcd'].filter((x): x is string => !!x);
  for (const c of candidates) if ((c.includes('/') ? existsSync(c) : true) && spawnSync(c, ['--version']).status === 0) return c;
  return null;
}

/**
 * Makes sure etcd is there the way .ci/run makes sure nft is: installs Debian's etcd-server
 * when running as root, otherwise says the one command that does. Returns its path or null.
 */
export function ensureEtcd(log: (s: string) => void): string | null {
  const found = findEtcd();
  if (found) return found;
  if (process.getuid?.() !== 0) {
    log(`etcd is missing: run \`sudo ${ETCD_INSTALL}\` (the central-store baseline needs it)`);
    return null;
  }
  log(`etcd is missing: ${ETCD_INSTALL}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', 'etcd-server'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', 'etcd-server'], { stdio: 'inherit', env });
  }
  // Debian's package starts a system etcd on the default ports; the benchmark runs its own
  // on free loopback ports, so that one is left alone.
  return findEtcd();
}

export function machine(): Machine {
  const etcd = findEtcd();
  let cpu = cpus()[0]?.model ?? 'unknown';
  try { cpu = execFileSync('sh', ['-c', 'grep -m1 "model name" /proc/cpuinfo | cut -d: -f2'], { encoding: 'utf8' }).trim() || cpu; } catch { /* keep os.cpus() */ }
  return {
    cores: cpus().length,
    cpu,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    nft: version('nft', ['--version']),
    etcd: etcd ? version(etcd, ['--version']) : null,
    loadAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** The CPU a process has used so far, user + system, in clock ticks (10 ms); 0 once it exited. */
export function cpuTicks(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/**
 * Waits until a set of processes is quiet: `cpuSeconds()` (their CPU so far) grew by less than
 * `threshold` cores over two windows (`windowMs`, 1 s) in a row, or `limitMs` passed. Returns
 * how long it waited (ms; `limitMs` when it never got quiet). `onWindow` sees each window's
 * share of a core. (CPU is counted in 10 ms ticks: a window shorter than ~250 ms is too coarse.)
 */
export async function untilQuietCpu(cpuSeconds: () => number, threshold: number, limitMs: number, onWindow?: (used: number) => Promise<void> | void, windowMs = 1000): Promise<number> {
  const t0 = Date.now();
  let calm = 0;
  while (Date.now() - t0 < limitMs) {
    const a = cpuSeconds(), w = Date.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const used = (cpuSeconds() - a) / ((Date.now() - w) / 1000);
    await onWindow?.(used);
    calm = used < threshold ? calm + 1 : 0;
    if (calm >= 2) return Date.now() - t0;
  }
  return limitMs;
}
