/**
 * The trusted state across real agent restarts: `picket agent` processes, the real CLI, real
 * LevelDB, the file backend. Each test is one attack from the trust-state issue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { picket, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';
import { until } from '../helpers/cluster.js';

const t = tempDir('picket-restart-');
const run = (...a: string[]) => picket(t.dir, ...a);
const procs: AgentProcess[] = [];
let peer = '';
let root2ExpiresAt = 0;

function policy(version: number, port: number): string {
  return `meshId: restart
version: ${version}
expires: 2099-01-01
nodes:
  - { name: solo, peerId: ${peer}, addresses: [127.0.0.1], roles: [app] }
rules:
  - { name: app, to: role:app, from: any, proto: tcp, ports: [${port}] }
`;
}

function agentYaml(name: string): string {
  const file = join(t.dir, `${name}.yaml`);
  writeFileSync(file, `meshId: restart
dataDir: ./${name}
identityKey: ./node.key
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
enforcement: { backend: file }
audit: { statusInterval: 1s, interval: 1s }
log: { level: info, pretty: false }
`);
  return file;
}

const sockOf = (name: string) => join(t.dir, name, 'control.sock');
const status = (name: string) => JSON.parse(run('status', '--socket', sockOf(name), '--json').stdout);

async function start(name: string): Promise<AgentProcess> {
  const p = spawnAgent(agentYaml(name), {}, t.dir);
  procs.push(p);
  await waitForSocket(sockOf(name), p);
  return p;
}

async function stop(p: AgentProcess): Promise<void> {
  p.child.kill('SIGTERM');
  expect((await p.exited).code).toBe(0);
}

beforeAll(() => {
  // admin: root key of v1 and v2. A: v1's policy key (rotated out by v2). B: v2's policy key.
  run('keygen', '--out', 'admin.key');
  run('keygen', '--out', 'a.key');
  run('keygen', '--out', 'b.key');
  peer = run('keygen', '--node', '--out', 'node.key').stdout.trim();
  expect(run('root', 'create', '--key', 'admin.key', '--policy-key', 'a.key', '--out', 'root.json').code).toBe(0);
  for (const v of [1, 3]) {
    writeFileSync(join(t.dir, `p${v}.yaml`), policy(v, 8000 + v));
    expect(run('policy', 'sign', `p${v}.yaml`, '--root', 'root.json', '--key', 'a.key', '--out', `p${v}.signed`).code).toBe(0);
  }
}, 120_000);

/** Root v2 drops A and expires soon after, so that a restart can happen after it expired. */
function rotateWithShortExpiry(): void {
  // Long enough for the publishes below on two busy cores; the test then waits it out.
  root2ExpiresAt = Date.now() + 25_000;
  const r = run('root', 'rotate', '--root', 'root.json', '--key', 'admin.key', '--policy-key', 'b.key', '--expires', new Date(root2ExpiresAt).toISOString(), '--out', 'root2.json');
  expect(r.code, r.stderr).toBe(0);
  writeFileSync(join(t.dir, 'p4.yaml'), policy(4, 8004));
  expect(run('policy', 'sign', 'p4.yaml', '--root', 'root.json', '--root', 'root2.json', '--key', 'b.key', '--out', 'p4.signed').code).toBe(0);
}

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  t.cleanup();
});

describe('trusted state across real restarts', () => {
  it('restart after root v2 expired keeps root v2 and policy v4; replays of v3 and a v100 signed by rotated-out key A are refused', async () => {
    const a = await start('n1');
    rotateWithShortExpiry();
    for (const f of ['p3.signed', 'root2.json', 'p4.signed']) {
      const r = run('publish', f, '--socket', sockOf('n1'));
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
    }
    expect(status('n1')).toMatchObject({ policy: { version: 4 }, root: { version: 2, expired: false } });
    await stop(a);
    await until(() => Date.now() > root2ExpiresAt + 200, 30_000);
    const b = await start('n1');
    const s = status('n1');
    expect(s).toMatchObject({ policy: { version: 4 }, root: { version: 2, expired: true }, floor: { version: 4 }, enforcement: { state: 'ok' } });
    expect(run('status', '--socket', sockOf('n1')).stdout).toMatch(/root\s+v2, expires .* EXPIRED/);
    await until(() => readFileSync(join(t.dir, 'n1', 'ruleset.nft'), 'utf8').includes('8004'), 10_000);
    const replay = run('publish', 'p3.signed', '--socket', sockOf('n1'));
    expect(replay.code).toBe(1);
    writeFileSync(join(t.dir, 'p100.yaml'), policy(100, 8100));
    // Signed under the (still valid) pinned root by A: the rotated-out key.
    expect(run('policy', 'sign', 'p100.yaml', '--root', 'root.json', '--key', 'a.key', '--out', 'p100.signed').code).toBe(0);
    const forged = run('publish', 'p100.signed', '--socket', sockOf('n1'));
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/stale-root-signature|root-expired/);
    expect(status('n1')).toMatchObject({ policy: { version: 4 } });
    // The expired root is a critical alert; the operator's mistake is a warning, not "forged".
    await until(() => status('n1').alerts.some((x: { class: string }) => x.class === 'root-expired'), 10_000);
    expect(status('n1').alerts.map((x: { class: string }) => x.class)).not.toContain('forged-policy');
    await stop(b);
  }, 150_000);

  it('a garbage CURRENT in the store: the agent starts, enforces the baseline, keeps the floor and raises store-corrupt', async () => {
    const a = await start('n2');
    expect(run('publish', 'p3.signed', '--socket', sockOf('n2')).code).toBe(0);
    await stop(a);
    writeFileSync(join(t.dir, 'n2', 'state', 'CURRENT'), 'garbage\n');
    const b = await start('n2');
    const s = status('n2');
    expect(s).toMatchObject({ policy: null, floor: { version: 3 }, enforcement: { state: 'baseline' } });
    expect(s.alerts.map((x: { class: string }) => x.class)).toContain('store-corrupt');
    expect(readFileSync(join(t.dir, 'n2', 'ruleset.nft'), 'utf8')).toContain('baseline');
    const replay = run('publish', 'p1.signed', '--socket', sockOf('n2'));
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/stale/);
    expect(run('publish', 'p3.signed', '--socket', sockOf('n2')).code).toBe(0);
    expect(status('n2')).toMatchObject({ policy: { version: 3 } });
    await stop(b);
  });

  it('picket enforce applies the last good policy, or the baseline on a fresh node, and exits', async () => {
    const fresh = run('enforce', '--config', agentYaml('n3'));
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/enforced the baseline/);
    expect(readFileSync(join(t.dir, 'n3', 'ruleset.nft'), 'utf8')).toContain('baseline');
    const a = await start('n3');
    expect(run('publish', 'p3.signed', '--socket', sockOf('n3')).code).toBe(0);
    // While the agent runs it holds the store and enforces by itself.
    const busy = run('enforce', '--config', agentYaml('n3'));
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/in use by another process/);
    await stop(a);
    rmSync(join(t.dir, 'n3', 'ruleset.nft'));
    const again = run('enforce', '--config', agentYaml('n3'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/enforced policy v3/);
    expect(readFileSync(join(t.dir, 'n3', 'ruleset.nft'), 'utf8')).toContain('8003');
  });

  it('state reset is the only way down: it refuses while the agent runs, then lets an older version in', async () => {
    const a = await start('n4');
    expect(run('publish', 'p3.signed', '--socket', sockOf('n4')).code).toBe(0);
    const refused = run('state', 'reset', '--config', agentYaml('n4'), '--yes');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/agent is running/);
    await stop(a);
    const r = run('state', 'reset', '--config', agentYaml('n4'), '--yes');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/state reset by operator/);
    expect(readFileSync(join(t.dir, 'n4', 'state-reset.log'), 'utf8')).toMatch(/state reset by operator/);
    const b = await start('n4');
    expect(status('n4')).toMatchObject({ policy: null, floor: null });
    expect(run('publish', 'p1.signed', '--socket', sockOf('n4')).code).toBe(0);
    await stop(b);
  });
});
