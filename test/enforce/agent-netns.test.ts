/**
 * Real agents as real processes inside network namespaces, enforcing with real nftables:
 * the baseline is in force before the first policy, then a published policy spreads over
 * the real (namespaced) network and opens exactly what it says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { BIN, picket, tempDir } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';

const lab = canUseNetns() ? new NetLab() : null;
const t = tempDir('picket-netns-');
const run = (...a: string[]) => picket(t.dir, ...a);

describe.runIf(lab)('agents in network namespaces', () => {
  let a = '', b = '', out = '';
  const peers: Record<string, string> = {};
  const status = (n: string) => JSON.parse(run('status', '--socket', join(t.dir, n, 'control.sock'), '--json').stdout) as { policy: { version: number } | null; enforcement: { state: string; backend: string } };

  beforeAll(async () => {
    [a, b, out] = ['a', 'b', 'out'].map((n) => lab!.ns(n)) as [string, string, string];
    lab!.link(a, '10.89.0.1/24', b, '10.89.0.2/24');
    lab!.link(out, '10.89.1.1/24', b, '10.89.1.2/24');
    run('keygen', '--out', 'admin.key');
    run('root', 'create', '--key', 'admin.key', '--out', 'root.json');
    for (const n of ['a', 'b']) peers[n] = run('keygen', '--node', '--out', `${n}.key`).stdout.trim();
    for (const [n, ip, other, otherIp] of [['a', '10.89.0.1', 'b', '10.89.0.2'], ['b', '10.89.0.2', 'a', '10.89.0.1']] as const) {
      writeFileSync(join(t.dir, `${n}.yaml`), `meshId: lab
dataDir: ./${n}
identityKey: ./${n}.key
trustedRoot: ./root.json
listen: [/ip4/${ip}/tcp/7946]
bootstrap: [/ip4/${otherIp}/tcp/7946/p2p/${peers[other]}]
syncInterval: 1s
mesh: { allowFrom: [10.89.0.0/24] }
enforcement: { backend: nft, failsafe: { sshFrom: [10.89.1.0/24] } }
audit: { statusInterval: 2s }
control: { metrics: 127.0.0.1:9464 }
log: { level: info, pretty: false }
`);
    }
    writeFileSync(join(t.dir, 'policy.yaml'), `meshId: lab
version: 1
expires: 2099-01-01
nodes:
  - { name: a, peerId: ${peers.a}, addresses: [10.89.0.1], roles: [web] }
  - { name: b, peerId: ${peers.b}, addresses: [10.89.0.2, 10.89.1.2], roles: [db] }
rules:
  - { name: app, to: role:db, from: role:web, proto: tcp, ports: [5432] }
`);
    expect(run('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'policy.signed').code).toBe(0);
    const srv = lab!.spawn(b, [process.execPath, PROBE, 'serve', '5432,22']);
    await srv.line(/serving/);
  });
  afterAll(() => { lab?.destroy(); t.cleanup(); });

  // mesh.allowFrom is set: b's default would also admit 10.89.1.0/24, its other attached subnet.
  it('enforces the baseline before any policy: mesh port from mesh.allowFrom only, everything else dropped', async () => {
    const agentB = lab!.spawn(b, [process.execPath, BIN, 'agent', '--config', join(t.dir, 'b.yaml')]);
    await agentB.line(/control API listening/);
    expect(status('b')).toMatchObject({ policy: null, enforcement: { backend: 'nft', state: 'baseline' } });
    expect(lab!.probe(a, '10.89.0.2', 7946)).toBe('open');     // inside mesh.allowFrom
    expect(lab!.probe(out, '10.89.1.2', 7946)).toBe('closed'); // anyone else
    expect(lab!.probe(a, '10.89.0.2', 5432)).toBe('closed');
    expect(lab!.probe(out, '10.89.1.2', 22)).toBe('open');     // failsafe
  });

  it('a policy published on one agent is enforced by the other over the namespaced network', async () => {
    const agentA = lab!.spawn(a, [process.execPath, BIN, 'agent', '--config', join(t.dir, 'a.yaml')]);
    await agentA.line(/control API listening/);
    const r = run('publish', 'policy.signed', '--socket', join(t.dir, 'a', 'control.sock'));
    expect(r.code, r.stderr).toBe(0);
    await until(() => status('b').policy?.version === 1, 20_000);
    expect(status('b').enforcement.state).toBe('ok');
    expect(lab!.probe(a, '10.89.0.2', 5432)).toBe('open');
    expect(lab!.probe(out, '10.89.1.2', 5432)).toBe('closed');
    expect(lab!.probe(a, '10.89.0.2', 7946)).toBe('open');
  });

  // Issue 15 #2/#3 through a real agent: the kernel counts, the agent reads and serves.
  it('shows drop totals per reason in status and on the metrics endpoint, and would-drops under monitor mode', async () => {
    type Drops = Record<'default-deny' | 'blocked' | 'invalid' | 'would-drop', { packets: number; bytes: number }>;
    const drops = () => (JSON.parse(run('status', '--socket', join(t.dir, 'b', 'control.sock'), '--json').stdout) as { drops: Drops | null }).drops!;
    const before = drops()['default-deny'].packets;
    expect(lab!.probe(out, '10.89.1.2', 5432)).toBe('closed');
    await until(() => drops()['default-deny'].packets > before, 10_000);
    expect(run('status', '--socket', join(t.dir, 'b', 'control.sock')).stdout).toMatch(/^drops {5}default-deny [1-9]\d* \(\d+ B\), blocked 0, invalid \d+/m);
    const scrape = () => lab!.exec(b, [process.execPath, '-e', 'fetch("http://127.0.0.1:9464/metrics").then((r) => r.text()).then((t) => process.stdout.write(t))']);
    expect(Number(/^picket_dropped_packets_total\{reason="default-deny"\} (\d+)$/m.exec(scrape())?.[1])).toBeGreaterThan(before);

    // The same policy in monitor mode: the port it closes is accepted and counted as a would-drop.
    writeFileSync(join(t.dir, 'policy2.yaml'), `${readFileSync(join(t.dir, 'policy.yaml'), 'utf8').replace('version: 1', 'version: 2')}settings: { mode: monitor }\n`);
    expect(run('policy', 'sign', 'policy2.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'policy2.signed').code).toBe(0);
    expect(run('publish', 'policy2.signed', '--socket', join(t.dir, 'a', 'control.sock')).code).toBe(0);
    await until(() => status('b').policy?.version === 2, 20_000);
    const would = drops()['would-drop'].packets;
    expect(lab!.probe(out, '10.89.1.2', 5432)).toBe('open');
    await until(() => drops()['would-drop'].packets > would, 10_000);
    expect(Number(/^picket_dropped_packets_total\{reason="would-drop"\} (\d+)$/m.exec(scrape())?.[1])).toBeGreaterThan(would);
    // The fleet sees it from b's signed status, on a.
    await until(() => /would-drop packets on 1 node/.test(run('status', '--socket', join(t.dir, 'a', 'control.sock'), '--mesh').stdout), 30_000);
  }, 150_000);
});
