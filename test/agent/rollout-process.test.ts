/**
 * Staged rollout with two real agent processes over loopback TCP: the canary enforces v2 at
 * once, the other node holds v1 (and says so in status, status --mesh and publish --wait)
 * until the stage's delay has passed and the canary's signed status shows it healthy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { picket, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';
import { until } from '../helpers/cluster.js';

const t = tempDir('picket-rollout-');
const run = (...a: string[]) => picket(t.dir, ...a);
const procs: AgentProcess[] = [];
const peers: Record<string, string> = {};
const sock = (n: string) => join(t.dir, n, 'control.sock');

function policy(version: number, rollout = ''): string {
  return `meshId: roll
version: ${version}
expires: 2099-01-01
nodes:
  - { name: canary, peerId: ${peers.canary}, addresses: [127.0.0.1], roles: [canary] }
  - { name: web, peerId: ${peers.web}, addresses: [127.0.0.2], roles: [web] }
rules:
  - { name: app, to: any, from: any, proto: tcp, ports: [${8000 + version}] }
${rollout}`;
}

function agentConfig(name: string, bootstrap: string[], key = name): string {
  mkdirSync(join(t.dir, name), { recursive: true });
  const file = join(t.dir, `${name}.yaml`);
  writeFileSync(file, `meshId: roll
dataDir: ./${name}
identityKey: ./${key}.key
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
bootstrap: ${JSON.stringify(bootstrap)}
mesh: { peerAddressCidrs: [127.0.0.0/8] }
enforcement: { backend: file, failsafe: { sshFrom: [10.0.0.0/8] } }
control: { metrics: 127.0.0.1:0 }
audit: { statusInterval: 2s }
log: { level: info, pretty: false }
`);
  return file;
}

beforeAll(() => {
  run('keygen', '--out', 'admin.key');
  for (const n of ['canary', 'web']) peers[n] = run('keygen', '--node', '--out', `${n}.key`).stdout.trim();
  run('root', 'create', '--key', 'admin.key', '--out', 'root.json');
  writeFileSync(join(t.dir, 'p1.yaml'), policy(1));
  // The web node waits 4 s after it first sees v2, and for the canary to be healthy.
  writeFileSync(join(t.dir, 'p2.yaml'), policy(2, 'rollout: { stages: [ { select: role:canary }, { select: any, after: 4s, healthy: 100% } ] }'));
  for (const v of [1, 2]) expect(run('policy', 'sign', `p${v}.yaml`, '--root', 'root.json', '--key', 'admin.key', '--out', `p${v}.signed`).code).toBe(0);
});
afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited; }
  }
});
afterAll(() => t.cleanup());

async function start(name: string, bootstrap: string[], o: { key?: string; env?: Record<string, string> } = {}): Promise<AgentProcess> {
  const p = spawnAgent(agentConfig(name, bootstrap, o.key), o.env ?? {}, t.dir);
  procs.push(p);
  await waitForSocket(sock(name), p);
  return p;
}

describe('staged rollout (agent processes)', () => {
  it('the canary enforces v2 at once; the other node holds v1 until the delay has passed and the canary is healthy; status and publish --wait show the stages', async () => {
    await start('canary', []);
    const listen = (JSON.parse(run('status', '--socket', sock('canary'), '--json').stdout) as { listen: string[] }).listen[0]!;
    const web = await start('web', [listen]); // status lists listen addresses with /p2p/<PeerId>
    const p1 = run('publish', 'p1.signed', '--socket', sock('canary'), '--wait', '--timeout', '20s');
    expect(p1.code, `${p1.stderr}\n${procs.map((p) => p.output()).join('\n----\n')}`).toBe(0);

    const pub = run('publish', 'p2.signed', '--socket', sock('web'));
    expect(pub.code, pub.stderr).toBe(0);
    // Within the 4 s the web node holds v2 but enforces v1.
    const st = JSON.parse(run('status', '--socket', sock('web'), '--json').stdout);
    expect(st).toMatchObject({ policy: { version: 2 }, rollout: { version: 2, enforcing: 1, stage: 2 } });
    expect(['waiting', 'unhealthy']).toContain(st.rollout.state);
    expect(readFileSync(join(t.dir, 'web', 'ruleset.nft'), 'utf8')).toContain('tcp . 8001');
    expect(run('status', '--socket', sock('web')).stdout).toMatch(/rollout\s+stage 2: v2 waits/);
    expect(run('status', '--mesh', '--socket', sock('web')).stdout).toMatch(/web \*\s+v2\s+2: holds v1/);
    const metricsAddr = (JSON.parse(run('status', '--socket', sock('web'), '--json').stdout) as { metrics: string }).metrics;
    const metrics = await (await fetch(`http://${metricsAddr}/metrics`)).text();
    expect(metrics).toMatch(/picket_policy_version 2/);
    expect(metrics).toMatch(/picket_policy_enforced_version 1/);

    const wait = run('publish', 'p2.signed', '--socket', sock('web'), '--wait', '--timeout', '30s');
    expect(wait.code, wait.stderr).toBe(0);
    expect(wait.stdout).toMatch(/v2: 1\/2 nodes enforce it, stage 1: 1\/1, stage 2: 0\/1/);
    expect(wait.stdout).toMatch(/converged: 2\/2 nodes enforce v2/);
    const after = JSON.parse(run('status', '--socket', sock('web'), '--json').stdout);
    expect(after).toMatchObject({ enforcement: { state: 'ok' }, rollout: { state: 'enforcing', enforcing: 2, stage: 2 } });
    expect(readFileSync(join(t.dir, 'web', 'ruleset.nft'), 'utf8')).toContain('tcp . 8002');
    // The canary hears the switch from the web node's next signed status.
    let summary = '';
    await until(() => (summary = (JSON.parse(run('status', '--mesh', '--socket', sock('canary'), '--json').stdout) as { summary: string }).summary) === '2/2 on v2', 20_000, () => summary);
    // It waited at least the stage's delay after it first saw v2 (by its own log's clock; the
    // log is flushed on exit).
    web.child.kill('SIGTERM');
    expect((await web.exited).code).toBe(0);
    const logged = (msg: string) => web.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; version?: number; time: string; firstSeen?: string; enforcing?: number }).find((l) => l.msg === msg && l.version === 2);
    const accepted = logged('policy accepted'), switched = logged('rollout: enforcing the newest version');
    expect(accepted && switched, web.output()).toBeTruthy();
    expect(Date.parse(switched!.firstSeen!)).toBeLessThanOrEqual(Date.parse(accepted!.time));
    expect(Date.parse(switched!.time) - Date.parse(switched!.firstSeen!)).toBeGreaterThanOrEqual(4000);
    expect(switched!.enforcing).toBe(1);
  }, 120_000);

  it('kill -9 right after a staged version is persisted: the restart still enforces the previous version', async () => {
    // The web node alone (its canary is not running, so v2 can never reach its stage).
    const first = await start('web-alone', [], { key: 'web' });
    expect(run('publish', 'p1.signed', '--socket', sock('web-alone')).code).toBe(0);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const crashing = await start('web-alone', [], { key: 'web', env: { PICKET_CRASHPOINT: 'after-persist' } });
    run('publish', 'p2.signed', '--socket', sock('web-alone'));
    expect((await crashing.exited).signal).toBe('SIGKILL');
    const b = spawnAgent(agentConfig('web-alone', [], 'web'), {}, t.dir);
    procs.push(b);
    let st = run('status', '--socket', sock('web-alone'), '--json');
    await until(() => (st = run('status', '--socket', sock('web-alone'), '--json')).code === 0, 20_000, () => st.stderr + b.output());
    expect(JSON.parse(st.stdout)).toMatchObject({ policy: { version: 2 }, rollout: { version: 2, enforcing: 1, stage: 2 } });
    expect(readFileSync(join(t.dir, 'web-alone', 'ruleset.nft'), 'utf8')).toContain('tcp . 8001');
    expect(readFileSync(join(t.dir, 'web-alone', 'ruleset.nft'), 'utf8')).not.toContain('tcp . 8002');
  }, 120_000);
});
