/**
 * `npm run demo`: a five-node picket mesh on loopback, with the file backend (no root, no
 * kernel changes), in a temp directory that is removed at the end. Real agent processes,
 * the real CLI. --keep leaves the mesh running and says how to talk to it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const keep = process.argv.includes('--keep');
const BIN = resolve(import.meta.dirname, '../bin/picket.js');
const dir = mkdtempSync(join(tmpdir(), 'picket-demo-'));
const N = 5;
const t0 = performance.now();
const procs = new Map<number, ChildProcess>();
const tty = Boolean(process.stdout.isTTY);
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);

function picket(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status ?? 1, out: r.stdout.trim(), err: r.stderr.trim() };
}
function must(...args: string[]): string {
  const r = picket(...args);
  if (r.code !== 0) throw new Error(`picket ${args.join(' ')}: ${r.err}`);
  return r.out;
}
const sock = (i: number) => join(dir, `n${i}`, 'control.sock');
const step = (s: string) => console.log(`\n${bold(`▸ ${s}`)}`);

async function freePort(host: string): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, host, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface MeshNode { name: string; policyVersion: number | null; enforcement: string | null; silent: boolean }
function mesh(i: number): { summary: string; nodes: MeshNode[] } | null {
  const r = picket('status', '--mesh', '--json', '--socket', sock(i));
  return r.code === 0 ? JSON.parse(r.out) : null;
}

/** Live table of the fleet as node `via` sees it, until every listed node enforces `version`. */
async function watch(via: number, version: number, names: string[], label: string): Promise<number> {
  const start = performance.now();
  let lines = 0;
  for (;;) {
    const m = mesh(via);
    const rows = (m?.nodes ?? []).filter((n) => names.includes(n.name));
    const done = rows.filter((n) => n.policyVersion === version && n.enforcement === 'ok');
    if (tty) {
      if (lines) process.stdout.write(`\x1b[${lines}A`);
      const table = rows.map((n) => `   ${n.name.padEnd(4)} ${(n.policyVersion === null ? '-' : `v${n.policyVersion}`).padEnd(4)} ${(n.enforcement ?? '-').padEnd(9)} ${n.policyVersion === version ? '✔' : '…'}`);
      process.stdout.write(table.map((l) => `${l}\x1b[K`).join('\n') + '\n');
      lines = table.length;
    }
    if (rows.length === names.length && done.length === names.length) {
      const ms = Math.round(performance.now() - start);
      console.log(`${label}: ${done.length}/${names.length} nodes enforce v${version} in ${ms} ms`);
      return ms;
    }
    if (performance.now() - start > 60_000) throw new Error(`not converged: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

function startAgent(i: number): void {
  const p = spawn(process.execPath, [BIN, 'agent', '--config', join(dir, `n${i}.yaml`)], { stdio: ['ignore', 'ignore', 'ignore'], detached: keep });
  procs.set(i, p);
}
async function stopAgent(i: number): Promise<void> {
  const p = procs.get(i);
  if (!p || p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
  procs.delete(i);
}

function policy(version: number, peers: string[], extra = ''): string {
  const roles = ['web', 'web', 'app', 'db', 'db'];
  return `meshId: demo
version: ${version}
expires: ${new Date(Date.now() + 30 * 86400e3).toISOString()}
nodes:
${peers.map((p, i) => `  - { name: n${i + 1}, peerId: ${p}, addresses: [127.0.0.${i + 1}], roles: [${roles[i]}] }`).join('\n')}
rules:
  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
  - { name: app-db, to: role:db, from: role:app, proto: tcp, ports: [5432] }
  - { name: admin-ssh, to: any, from: cidr:203.0.113.0/24, proto: tcp, ports: [22] }
${extra}`;
}

async function main(): Promise<void> {
  console.log(bold(`picket demo — 5 agents on loopback, file backend, in ${dir}`));
  step('keys and the root of trust (offline)');
  must('keygen', '--out', 'admin.key');
  must('keygen', '--out', 'intruder.key');
  must('root', 'create', '--key', 'admin.key', '--out', 'root.json');
  const peers = Array.from({ length: N }, (_, i) => must('keygen', '--node', '--out', `n${i + 1}.key`));
  console.log(`root v1 created; node identities: ${peers.map((p) => `…${p.slice(-6)}`).join(' ')}`);

  step('start five agents');
  const ports = await Promise.all(Array.from({ length: N }, (_, i) => freePort(`127.0.0.${i + 1}`)));
  for (let i = 1; i <= N; i++) {
    writeFileSync(join(dir, `n${i}.yaml`), `meshId: demo
dataDir: ./n${i}
identityKey: ./n${i}.key
trustedRoot: ./root.json
listen: [/ip4/127.0.0.${i}/tcp/${ports[i - 1]}]
bootstrap: [/ip4/127.0.0.1/tcp/${ports[0]}/p2p/${peers[0]}]
syncInterval: 1s
mesh: { redialMax: 2s }
enforcement: { backend: file }
audit: { statusInterval: 1s, silentAfter: 10s, probeInterval: 0 }
log: { level: info, pretty: false }
`);
    startAgent(i);
  }
  await until(() => Array.from({ length: N }, (_, i) => existsSync(sock(i + 1))).every(Boolean), 60_000, 'agents to start'); // five processes loading libp2p at once: slow on a busy machine
  console.log('5 agents up, each enforcing the baseline (no policy yet)');

  step('sign policy v1 and publish it through n1');
  writeFileSync(join(dir, 'policy-v1.yaml'), policy(1, peers));
  must('policy', 'sign', 'policy-v1.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'v1.signed');
  must('publish', 'v1.signed', '--socket', sock(1));
  await watch(1, 1, peers.map((_, i) => `n${i + 1}`), 'converged');

  step('stop n4 and n5, publish v2 (adds a monitoring rule), restart them');
  await stopAgent(4);
  await stopAgent(5);
  writeFileSync(join(dir, 'policy-v2.yaml'), policy(2, peers, '  - { name: metrics, to: any, from: role:app, proto: tcp, ports: [9100] }\n'));
  must('policy', 'sign', 'policy-v2.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'v2.signed');
  must('publish', 'v2.signed', '--socket', sock(2));
  await watch(1, 2, ['n1', 'n2', 'n3'], 'converged (n4, n5 offline)');
  startAgent(4);
  startAgent(5);
  await watch(1, 2, peers.map((_, i) => `n${i + 1}`), 'caught up after restart');

  step('a forged policy (signed by a key the root does not trust) is rejected');
  must('root', 'create', '--key', 'intruder.key', '--out', 'intruder-root.json');
  writeFileSync(join(dir, 'policy-v9.yaml'), policy(9, peers, '  - { name: backdoor, to: any, from: any, proto: tcp, ports: [1-65535] }\n'));
  must('policy', 'sign', 'policy-v9.yaml', '--root', 'intruder-root.json', '--key', 'intruder.key', '--out', 'forged.signed');
  const f = picket('publish', 'forged.signed', '--socket', sock(3));
  console.log(`picket publish forged.signed → exit ${f.code}: ${f.err}`);

  step('equivocation: a second, different v2 signed with the real key is refused and alerted');
  writeFileSync(join(dir, 'policy-v2b.yaml'), policy(2, peers, '  - { name: sneaky, to: any, from: any, proto: tcp, ports: [8080] }\n'));
  must('policy', 'sign', 'policy-v2b.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'v2-other.signed');
  const e = picket('publish', 'v2-other.signed', '--socket', sock(3));
  console.log(`picket publish v2-other.signed → exit ${e.code}: ${e.err}`);
  await until(() => JSON.parse(picket('status', '--json', '--socket', sock(3)).out).alerts.some((a: { class: string }) => a.class === 'equivocation'), 5000, 'the alert');
  const alert = JSON.parse(picket('status', '--json', '--socket', sock(3)).out).alerts.find((a: { class: string }) => a.class === 'equivocation');
  console.log(`alert on n3: [${alert.severity}] ${alert.summary}`);

  step('explain: which rule decides a connection (offline, pure: no traffic is sent)');
  console.log(`n4 ← 203.0.113.9 tcp/22:   ${must('policy', 'explain', 'v2.signed', '--node', 'n4', '--from', '203.0.113.9', '--port', '22')}`);
  console.log(`n4 ← 198.51.100.7 tcp/5432: ${must('policy', 'explain', 'v2.signed', '--node', 'n4', '--from', '198.51.100.7', '--port', '5432')}`);
  console.log('(the demo nodes sit on 127.0.0.x, which the kernel accepts on the loopback interface before any rule)');
  console.log(`\nthe fleet as n5 sees it:\n${picket('status', '--mesh', '--socket', sock(5)).out}`);
  console.log(`n4's ruleset (file backend): ${join(dir, 'n4', 'ruleset.nft')}`);

  console.log(`\n${bold(`demo finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`)}`);
  if (keep) {
    console.log(`\nThe mesh keeps running. Try:\n  export PICKET_SOCKET=${sock(1)}\n  npx picket status --mesh\n  npx picket publish ${join(dir, 'v2.signed')}\nStop it with: kill ${[...procs.values()].map((p) => p.pid).join(' ')}; rm -rf ${dir}`);
    for (const p of procs.values()) p.unref();
  }
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`demo failed: ${(e as Error).message}`);
} finally {
  if (!keep || failed) {
    await Promise.all([...procs.keys()].map(stopAgent));
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(failed ? 1 : 0);
