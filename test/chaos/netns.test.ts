/**
 * Chaos on a real network: agents as real processes in network namespaces on a bridge
 * (created and deleted here; addresses only inside them), enforcing with real nftables.
 * Partitions and loss are nft rules in a separate `chaos` table (this kernel has no netem);
 * a frozen node is a SIGSTOPped agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { canUseNetns, NetLab } from '../helpers/netns.js';
import { BIN, picket, tempDir } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';
import { mkdirSync } from 'node:fs';

const lab = canUseNetns() ? new NetLab() : null;
const t = tempDir('picket-chaos-net-');
const run = (...a: string[]) => picket(t.dir, ...a);
const N = 4;
let restarted: ReturnType<NetLab['spawn']> | undefined;

describe.runIf(lab)('chaos on a real network (namespaces, nftables)', () => {
  let hosts: { ns: string; addr: string }[] = [];
  const agents: ChildProcess[] = [];
  const peers: string[] = [];
  const version = (i: number) => {
    const r = run('status', '--json', '--socket', join(t.dir, `n${i}`, 'control.sock'));
    return r.code === 0 ? (JSON.parse(r.stdout).policy?.version ?? 0) as number : -1;
  };
  const all = (v: number, nodes = [...Array(N).keys()]) => nodes.every((i) => version(i) === v);
  const sign = (v: number) => {
    writeFileSync(join(t.dir, `p${v}.yaml`), `meshId: chaosnet
version: ${v}
expires: 2099-01-01
nodes:
${hosts.map((h, i) => `  - { name: n${i}, peerId: ${peers[i]}, addresses: [${h.addr}], roles: [r${i % 2}] }`).join('\n')}
rules:
  - { name: app, to: role:r1, from: role:r0, proto: tcp, ports: [${5000 + v}] }
`);
    expect(run('policy', 'sign', `p${v}.yaml`, '--root', 'root.json', '--key', 'admin.key', '--out', `p${v}.signed`).code).toBe(0);
    return `p${v}.signed`;
  };
  const publish = (via: number, v: number) => expect(run('publish', sign(v), '--socket', join(t.dir, `n${via}`, 'control.sock')).code).toBe(0);
  const chaosRules = (ns: string, rules: string) => lab!.nft(ns, `table inet chaos\ndelete table inet chaos\ntable inet chaos {\n chain in { type filter hook input priority -50; policy accept; ${rules} }\n chain out { type filter hook output priority -50; policy accept; ${rules.replace(/saddr/g, 'daddr')} }\n}\n`);
  const clearChaos = (ns: string) => lab!.exec(ns, ['nft', 'delete', 'table', 'inet', 'chaos']);

  beforeAll(async () => {
    hosts = lab!.bridge([...Array(N).keys()].map((i) => `h${i}`), '10.77.0');
    run('keygen', '--out', 'admin.key');
    run('root', 'create', '--key', 'admin.key', '--out', 'root.json');
    for (let i = 0; i < N; i++) peers.push(run('keygen', '--node', '--out', `n${i}.key`).stdout.trim());
    for (let i = 0; i < N; i++) {
      mkdirSync(join(t.dir, `n${i}`), { recursive: true });
      writeFileSync(join(t.dir, `n${i}.yaml`), `meshId: chaosnet
dataDir: ./n${i}
identityKey: ./n${i}.key
trustedRoot: ./root.json
listen: [/ip4/${hosts[i]!.addr}/tcp/7946]
bootstrap: [/ip4/${hosts[0]!.addr}/tcp/7946/p2p/${peers[0]}, /ip4/${hosts[1]!.addr}/tcp/7946/p2p/${peers[1]}]
syncInterval: 1s
mesh: { redialMin: 200ms, redialMax: 1s, minPeers: 3 }
enforcement: { backend: nft }
audit: { probeInterval: 0, statusInterval: 2s }
log: { level: warn, pretty: false }
`);
      const a = lab!.spawn(hosts[i]!.ns, [process.execPath, BIN, 'agent', '--config', join(t.dir, `n${i}.yaml`)]);
      agents.push(a.child);
    }
    await until(() => [...Array(N).keys()].every((i) => version(i) === 0), 30_000);
    publish(0, 1);
    await until(() => all(1), 30_000);
  });
  afterAll(() => { lab?.destroy(); t.cleanup(); });

  it('partition + heal: the cut-off half catches up after the nft partition is removed', async () => {
    for (const [i, other] of [[0, '10.77.0.3, 10.77.0.4'], [1, '10.77.0.3, 10.77.0.4'], [2, '10.77.0.1, 10.77.0.2'], [3, '10.77.0.1, 10.77.0.2']] as const) {
      chaosRules(hosts[i]!.ns, `ip saddr { ${other} } drop;`);
    }
    publish(0, 2);
    await until(() => all(2, [0, 1]), 20_000);
    expect(version(2)).toBe(1);
    expect(version(3)).toBe(1);
    const t0 = performance.now();
    for (const h of hosts) clearChaos(h.ns);
    await until(() => all(2), 20_000);
    console.log(`real network: healed partition converged in ${Math.round(performance.now() - t0)} ms`);
  });

  it('30% packet loss on every link: an update still reaches every node', async () => {
    for (const h of hosts) chaosRules(h.ns, 'ip saddr 10.77.0.0/24 numgen random mod 100 < 30 drop;');
    const t0 = performance.now();
    publish(1, 3);
    await until(() => all(3), 45_000);
    console.log(`real network: 30% loss converged in ${Math.round(performance.now() - t0)} ms`);
    for (const h of hosts) clearChaos(h.ns);
  });

  it('kill -9 in the middle of an apply: the restarted agent converges and its table is whole', async () => {
    agents[2]!.kill('SIGTERM');
    await until(() => agents[2]!.exitCode !== null || agents[2]!.signalCode !== null, 10_000);
    const crashing = lab!.spawn(hosts[2]!.ns, ['env', 'PICKET_CRASHPOINT=mid-apply', process.execPath, BIN, 'agent', '--config', join(t.dir, 'n2.yaml')]);
    // Its start-up apply is already a mid-apply crash point: it dies there, restart it clean.
    await until(() => crashing.child.exitCode !== null || crashing.child.signalCode !== null, 20_000);
    expect(crashing.child.signalCode).toBe('SIGKILL');
    publish(1, 5);
    await until(() => all(5, [0, 1, 3]), 20_000);
    restarted = lab!.spawn(hosts[2]!.ns, [process.execPath, BIN, 'agent', '--config', join(t.dir, 'n2.yaml')]);
    agents[2] = restarted.child;
    await until(() => version(2) === 5, 30_000, () => restarted?.output().slice(-3000) ?? '');
    const st = JSON.parse(run('status', '--json', '--socket', join(t.dir, 'n2', 'control.sock')).stdout);
    expect(st.enforcement.state).toBe('ok');
    const table = lab!.exec(hosts[2]!.ns, ['nft', 'list', 'table', 'inet', 'picket']);
    expect(table).toContain('policy drop');
    expect(table).toContain('@mesh_v4');
  });

  it('a frozen node (SIGSTOP) does not hold the others back and catches up when resumed', async () => {
    const frozen = agents[3]!;
    frozen.kill('SIGSTOP');
    publish(0, 6);
    await until(() => all(6, [0, 1, 2]), 20_000, () => [0, 1, 2, 3].map((i) => `n${i}=${version(i)}`).join(' ') );
    frozen.kill('SIGCONT');
    await until(() => version(3) === 6, 30_000);
  });
});
