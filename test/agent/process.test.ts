/** The agent as a real process: control API, CLI, signals, crash recovery. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { picket, picketWith, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';
import { until } from '../helpers/cluster.js';

const t = tempDir('picket-proc-');
const run = (...a: string[]) => picket(t.dir, ...a);
let peer = '';
const procs: AgentProcess[] = [];
const sock = join(t.dir, 'data', 'control.sock');

function policy(version: number, port: number): string {
  return `meshId: proc
version: ${version}
expires: 2099-01-01
nodes:
  - { name: solo, peerId: ${peer}, addresses: [127.0.0.1], roles: [app] }
rules:
  - { name: app, to: role:app, from: any, proto: tcp, ports: [${port}] }
`;
}

beforeAll(() => {
  run('keygen', '--out', 'admin.key');
  run('keygen', '--out', 'other.key');
  peer = run('keygen', '--node', '--out', 'node.key').stdout.trim();
  run('root', 'create', '--key', 'admin.key', '--out', 'root.json');
  for (const v of [1, 2, 3]) {
    writeFileSync(join(t.dir, `p${v}.yaml`), policy(v, 8000 + v));
    expect(run('policy', 'sign', `p${v}.yaml`, '--root', 'root.json', '--key', 'admin.key', '--out', `p${v}.signed`).code).toBe(0);
  }
  writeFileSync(join(t.dir, 'agent.yaml'), `meshId: proc
dataDir: ./data
identityKey: ./node.key
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
enforcement: { backend: file, failsafe: { sshFrom: [10.0.0.0/8] } }
control: { metrics: 127.0.0.1:0 }
audit: { statusInterval: 1s }
log: { level: info, pretty: false }
`);
});
// A failed assertion must not leave its agent answering on the shared socket: the next test's
// agent would be refused (one agent per socket) and every later test would talk to the old one.
afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited; }
  }
});
afterAll(() => t.cleanup());

async function start(env: Record<string, string> = {}): Promise<AgentProcess> {
  const p = spawnAgent(join(t.dir, 'agent.yaml'), env, t.dir);
  procs.push(p);
  await waitForSocket(sock, p);
  return p;
}

describe('agent process', () => {
  it('enforces the baseline first, serves status over a 0600 socket, and publishes through the CLI', async () => {
    const a = await start();
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const s0 = JSON.parse(run('status', '--socket', sock, '--json').stdout);
    expect(s0).toMatchObject({ peerId: peer, meshId: 'proc', policy: null, root: { version: 1 }, enforcement: { backend: 'file', state: 'baseline' } });
    expect(readFileSync(join(t.dir, 'data', 'ruleset.nft'), 'utf8')).toContain('baseline (no policy)');
    const pub = run('publish', 'p2.signed', '--socket', sock);
    expect(pub.code, pub.stderr).toBe(0);
    expect(run('publish', 'p2.signed', '--socket', sock).stdout).toContain('already held');
    const stale = run('publish', 'p1.signed', '--socket', sock);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/refused: stale/);
    const s1 = JSON.parse(run('status', '--socket', sock, '--json').stdout);
    expect(s1).toMatchObject({ node: { name: 'solo' }, policy: { version: 2 }, enforcement: { state: 'ok' } });
    expect(s1.enforcement.rulesetHash).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(join(t.dir, 'data', 'ruleset.nft'), 'utf8')).toContain('tcp . 8002');
    expect(run('status', '--socket', sock).stdout).toMatch(/policy\s+v2/);
    // Fleet view and metrics.
    const mesh = JSON.parse(run('status', '--mesh', '--socket', sock, '--json').stdout);
    expect(mesh).toMatchObject({ summary: '1/1 on v2', nodes: [{ peerId: peer, name: 'solo', policyVersion: 2, enforcement: 'ok', silent: false }] });
    expect(run('status', '--mesh', '--socket', sock).stdout).toMatch(/solo \*\s+v2\s+ok/);
    const metricsAddr = s1.metrics as string;
    const text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
    expect(text).toMatch(/picket_policy_version 2/);
    expect(text).toMatch(/picket_verifications_total\{outcome="stale",source="control"\} 1/);
    expect(text).toMatch(/picket_apply_duration_seconds_count \d+/);
    // The mesh registers its own counters in the agent's registry.
    expect(text).toMatch(/# TYPE picket_peer_strikes_total counter/);
    expect(text).toMatch(/# TYPE picket_budget_exceeded_total counter/);
    expect(text).toMatch(/picket_sync_runs_total \d+/);
    // What the status plane's signature checks cost, by kind (a lone node checks nobody's).
    expect(text).toMatch(/picket_status_signature_checks_total\{kind="status"\} 0/);
    expect(text).toMatch(/picket_status_signature_checks_total\{kind="claim"\} 0/);
    // The claims it signed, by reason: its start-up claim is periodic (liveness), nobody wanted one.
    expect(text).toMatch(/picket_status_claims_signed_total\{reason="periodic"\} [1-9]/);
    expect(text).toMatch(/picket_status_claims_signed_total\{reason="wanted"\} 0/);
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
  });

  it('publish --wait shows the fleet converge and exits 0 when every node enforces the version', async () => {
    const a = await start();
    const r = run('publish', 'p2.signed', '--socket', sock, '--wait', '--timeout', '20s');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/converged: 1\/1 nodes enforce v2 in/);
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
  });

  it('the CLI finds the socket through the agent config the agent itself reads (--config, $PICKET_CONFIG)', async () => {
    // agent.yaml does not set control.socket: the agent listens on <dataDir>/control.sock and
    // every client command finds it there from the same file.
    const a = await start();
    const viaFlag = run('status', '--config', 'agent.yaml', '--json');
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    expect(JSON.parse(viaFlag.stdout)).toMatchObject({ peerId: peer });
    const viaEnv = picketWith({ cwd: t.dir, env: { PICKET_CONFIG: join(t.dir, 'agent.yaml'), PICKET_SOCKET: undefined } }, 'status', '--mesh', '--json');
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const pub = run('publish', 'p2.signed', '--config', 'agent.yaml');
    expect(pub.code, pub.stderr).toBe(0);
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
  });

  it('kill -9 between persist and enforce: the restart enforces the persisted policy', async () => {
    const a = await start({ PICKET_CRASHPOINT: 'after-persist' });
    run('publish', 'p3.signed', '--socket', sock);
    expect((await a.exited).signal).toBe('SIGKILL');
    // The ruleset on disk is still v2's: the crash came before enforcement.
    expect(readFileSync(join(t.dir, 'data', 'ruleset.nft'), 'utf8')).toContain('policy v2');
    const b = await start();
    await until(() => readFileSync(join(t.dir, 'data', 'ruleset.nft'), 'utf8').includes('policy v3'), 10_000);
    // The killed agent left its socket file behind, and the ruleset is applied before the
    // control API opens: wait for the new agent to answer, not for the file.
    let status = run('status', '--socket', sock, '--json');
    await until(() => (status = run('status', '--socket', sock, '--json')).code === 0, 20_000, () => status.stderr);
    expect(JSON.parse(status.stdout)).toMatchObject({ policy: { version: 3 }, enforcement: { state: 'ok' } });
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
  });

  it('rejects a bad config with the field named, and no stack trace', () => {
    writeFileSync(join(t.dir, 'bad.yaml'), 'meshId: proc\ndataDir: ./x\nidentityKey: ./node.key\ntrustedRoot: ./root.json\nsyncInterval: soon\n');
    const r = run('agent', '--config', 'bad.yaml');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:5: syncInterval: "soon" is not a duration/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    writeFileSync(join(t.dir, 'bad2.yaml'), 'meshId: proc\n');
    expect(run('agent', '--config', 'bad2.yaml').stderr).toMatch(/dataDir: is required/);
    expect(run('agent', '--config', 'agent.yaml', '--check').code).toBe(0);
  });

  it('status without an agent says so in one line', () => {
    const r = run('status', '--socket', join(t.dir, 'nope.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
