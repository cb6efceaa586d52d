/**
 * The first policy on a real network (issue 14, item 1): three agents in namespaces on one
 * bridge, real nftables, only one of them a seed (the others bootstrap to it; it bootstraps
 * to nobody). Before any policy each node's baseline admits mesh.allowFrom — by default the
 * bootstrap peers and its own subnets — so the first policy, published through a node that
 * is not the seed, reaches and is applied by all three. Then the policy's node addresses
 * replace the baseline's sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, NetLab } from '../helpers/netns.js';
import { BIN, picket, tempDir } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';

const lab = canUseNetns() ? new NetLab() : null;
const t = tempDir('picket-first-');
const run = (...a: string[]) => picket(t.dir, ...a);
const N = 3;

describe.runIf(lab)('first publish on a bridge (nft backend)', () => {
  let hosts: { ns: string; addr: string }[] = [];
  const peers: string[] = [];
  const procs: ReturnType<NetLab['spawn']>[] = [];
  const status = (i: number) => {
    const r = run('status', '--json', '--socket', join(t.dir, `n${i}`, 'control.sock'));
    return r.code === 0 ? JSON.parse(r.stdout) as { policy: { version: number } | null; enforcement: { state: string }; peers: unknown[] } : null;
  };
  const meshSet = (i: number) => lab!.exec(hosts[i]!.ns, ['nft', 'list', 'set', 'inet', 'picket', 'mesh_v4']);

  beforeAll(async () => {
    hosts = lab!.bridge([...Array(N).keys()].map((i) => `f${i}`), '10.79.0');
    run('keygen', '--out', 'admin.key');
    run('root', 'create', '--key', 'admin.key', '--out', 'root.json');
    for (let i = 0; i < N; i++) peers.push(run('keygen', '--node', '--out', `n${i}.key`).stdout.trim());
    for (let i = 0; i < N; i++) {
      const bootstrap = i === 0 ? '[]' : `[/ip4/${hosts[0]!.addr}/tcp/7946/p2p/${peers[0]}]`;
      writeFileSync(join(t.dir, `n${i}.yaml`), `meshId: first
dataDir: ./n${i}
identityKey: ./n${i}.key
trustedRoot: ./root.json
listen: [/ip4/${hosts[i]!.addr}/tcp/7946]
bootstrap: ${bootstrap}
syncInterval: 2s
mesh: { redialMin: 200ms, redialMax: 1s }
enforcement: { backend: nft }
audit: { probeInterval: 0 }
log: { level: info, pretty: false }
`);
    }
    writeFileSync(join(t.dir, 'p1.yaml'), `meshId: first
version: 1
expires: 2099-01-01
nodes:
${hosts.map((h, i) => `  - { name: n${i}, peerId: ${peers[i]}, addresses: [${h.addr}], roles: [app] }`).join('\n')}
rules:
  - { name: app, to: role:app, from: role:app, proto: tcp, ports: [8443] }
`);
    expect(run('policy', 'sign', 'p1.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'p1.signed').code).toBe(0);
    for (let i = 0; i < N; i++) {
      const p = lab!.spawn(hosts[i]!.ns, [process.execPath, BIN, 'agent', '--config', join(t.dir, `n${i}.yaml`)]);
      procs.push(p);
      await p.line(/control API listening/, 60_000);
    }
  }, 180_000);
  afterAll(() => { lab?.destroy(); t.cleanup(); });

  it('every node, the seed included, admits its own subnet to the mesh port before any policy', () => {
    for (let i = 0; i < N; i++) {
      expect(status(i)).toMatchObject({ policy: null, enforcement: { state: 'baseline' } });
      expect(meshSet(i)).toContain('10.79.0.0/24');
    }
  });

  it('a first policy published through a non-seed node is applied by all three', { timeout: 120_000 }, async () => {
    // The non-seeds reach the seed: its baseline lets their dials in.
    await until(() => (status(0)?.peers.length ?? 0) >= 2, 30_000, () => JSON.stringify(status(0)));
    const r = run('publish', 'p1.signed', '--socket', join(t.dir, 'n2', 'control.sock'));
    expect(r.code, r.stderr).toBe(0);
    await until(() => [0, 1, 2].every((i) => status(i)?.policy?.version === 1 && status(i)?.enforcement.state === 'ok'), 45_000,
      () => [0, 1, 2].map((i) => `n${i}=${JSON.stringify(status(i)?.policy ?? null)}`).join(' '));
    // The policy's node addresses now replace the baseline's sources.
    for (let i = 0; i < N; i++) {
      const set = meshSet(i);
      expect(set).not.toContain('10.79.0.0/24');
      for (let j = 0; j < N; j++) if (j !== i) expect(set).toContain(hosts[j]!.addr);
    }
  });
});
