/**
 * Network namespaces for real-kernel tests: each test builds its own small network (veth
 * pairs or a bridge) with addresses that exist only inside namespaces it creates, and
 * deletes everything afterwards. Traffic never leaves those namespaces.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const PROBE = resolve(import.meta.dirname, 'netprobe.mjs');

export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let seq = 0;

export class NetLab {
  readonly namespaces: string[] = [];
  readonly children: ChildProcess[] = [];
  readonly prefix = `pk${process.pid % 100000}x${++seq}`;

  ns(name: string): string {
    const full = `${this.prefix}${name}`;
    execFileSync('ip', ['netns', 'add', full]);
    execFileSync('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
    this.namespaces.push(full);
    return full;
  }

  /** A veth pair between two namespaces, each end with an address (CIDR). */
  #links = 0;

  link(a: string, aAddr: string, b: string, bAddr: string): void {
    const id = ++this.#links;
    const ia = `v${id}a`, ib = `v${id}b`;
    execFileSync('ip', ['link', 'add', ia, 'netns', a, 'type', 'veth', 'peer', 'name', ib, 'netns', b]);
    for (const [ns, dev, addr] of [[a, ia, aAddr], [b, ib, bAddr]] as const) {
      execFileSync('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : [])]);
      execFileSync('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
  }

  /** Several namespaces on one bridge (in its own namespace), addresses 10.77.0.(i+1)/24. */
  bridge(names: string[], base = '10.77.0'): { ns: string; addr: string }[] {
    const br = this.ns('br');
    execFileSync('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
    execFileSync('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
    return names.map((n, i) => {
      const ns = this.ns(n);
      const host = `h${i}`, port = `p${i}`;
      execFileSync('ip', ['link', 'add', host, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', br]);
      execFileSync('ip', ['-n', br, 'link', 'set', port, 'master', 'br0']);
      execFileSync('ip', ['-n', br, 'link', 'set', port, 'up']);
      const addr = `${base}.${i + 1}`;
      execFileSync('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', host]);
      execFileSync('ip', ['-n', ns, 'link', 'set', host, 'up']);
      return { ns, addr };
    });
  }

  exec(ns: string, cmd: string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', ...(input ? { input } : {}), timeout: 60_000 });
  }

  nft(ns: string, script: string): void {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '/dev/stdin'], { input: script });
  }

  spawn(ns: string, cmd: string[]): { child: ChildProcess; output: () => string; line: (re: RegExp, ms?: number) => Promise<string> } {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let out = '';
    const waiters: (() => void)[] = [];
    const onData = (d: Buffer) => { out += d.toString(); waiters.forEach((w) => w()); };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const line = (re: RegExp, ms = 15_000) => new Promise<string>((resolvePromise, reject) => {
      const check = () => { const m = re.exec(out); if (m) { resolvePromise(m[0]); return true; } return false; };
      if (check()) return;
      const t = setTimeout(() => reject(new Error(`no ${re} in output: ${out.slice(-500)}`)), ms);
      waiters.push(() => { if (check()) clearTimeout(t); });
      child.on('exit', () => { if (!check()) { clearTimeout(t); reject(new Error(`exited without ${re}: ${out.slice(-500)}`)); } });
    });
    return { child, output: () => out, line };
  }

  node(ns: string, args: string[]): string {
    return this.exec(ns, [process.execPath, PROBE, ...args]).trim();
  }

  probe(ns: string, host: string, port: number, timeout = 400): 'open' | 'closed' {
    return this.node(ns, ['probe', host, String(port), String(timeout)]) as 'open' | 'closed';
  }

  destroy(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const ns of this.namespaces.reverse()) {
      try { execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).forEach((p) => { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }); } catch { /* gone */ }
      try { execFileSync('ip', ['netns', 'del', ns]); } catch { /* gone */ }
    }
  }
}
