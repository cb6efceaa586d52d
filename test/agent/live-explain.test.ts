/**
 * `picket explain` and `picket policy history` against a real agent process: the verdict is
 * read from the ruleset the agent enforces now (baseline first, then the published policy with
 * its open exception), the accept log lists every publish with its signers, and garbage sent
 * to the control endpoint is a 400 with one line while the agent keeps serving.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { picket, picketWith, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';

const t = tempDir('picket-live-');
const run = (...a: string[]) => picket(t.dir, ...a);
let peer = '';
let adminId = '', otherId = '';
const procs: AgentProcess[] = [];
const sock = join(t.dir, 'data', 'control.sock');

function policy(version: number, port: number): string {
  return `meshId: live
version: ${version}
expires: 2099-01-01
nodes:
  - { name: solo, peerId: ${peer}, addresses: [127.0.0.1], roles: [app] }
rules:
  - { name: app, to: role:app, from: any, proto: tcp, ports: [${port}] }
exceptions:
  - { name: vendor, to: node:solo, from: cidr:198.51.100.0/24, proto: tcp, ports: [2222], reason: vendor debugging, expires: 2098-01-01 }
`;
}

/** A raw GET, so the test sends exactly the bytes the CLI would refuse to. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method: 'GET', path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(() => {
  adminId = run('keygen', '--out', 'admin.key').stdout.trim();
  otherId = run('keygen', '--out', 'other.key').stdout.trim();
  peer = run('keygen', '--node', '--out', 'node.key').stdout.trim();
  expect(run('root', 'create', '--key', 'admin.key', '--policy-key', 'admin.pub', '--policy-key', 'other.pub', '--policy-threshold', '1', '--out', 'root.json').code).toBe(0);
  writeFileSync(join(t.dir, 'p1.yaml'), policy(1, 8001));
  writeFileSync(join(t.dir, 'p2.yaml'), policy(2, 8002));
  expect(run('policy', 'sign', 'p1.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'p1.signed').code).toBe(0);
  const s2 = run('policy', 'sign', 'p2.yaml', '--root', 'root.json', '--key', 'admin.key', '--key', 'other.key', '--out', 'p2.signed');
  expect(s2.code, s2.stderr).toBe(0);
  writeFileSync(join(t.dir, 'agent.yaml'), `meshId: live
dataDir: ./data
identityKey: ./node.key
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
enforcement: { backend: file }
log: { level: info, pretty: false }
`);
});
afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited; }
  }
});
afterAll(() => t.cleanup());

describe('live explain and policy history', () => {
  it('explains against what the agent enforces now, and lists the versions it accepted', async () => {
    const a = spawnAgent(join(t.dir, 'agent.yaml'), {}, t.dir);
    procs.push(a);
    await waitForSocket(sock, a);

    // Before any policy: the baseline decides, and the answer says so.
    const base = run('explain', '--socket', sock, '--from', '203.0.113.9', '--port', '8001');
    expect(base.code, base.stderr).toBe(0);
    expect(base.stdout).toMatch(/^DROP \(default deny: no rule allows it\)\nenforcing the baseline \(no policy yet\)/);
    expect(run('policy', 'history', '--socket', sock).stdout).toMatch(/no policy accepted yet/);

    expect(run('publish', 'p1.signed', '--socket', sock).code).toBe(0);
    const allow = JSON.parse(run('explain', '--socket', sock, '--from', '203.0.113.9', '--port', '8001', '--json').stdout);
    expect(allow).toMatchObject({ action: 'ALLOW', reason: 'rule', rule: { kind: 'rule', name: 'app' }, enforcing: { baseline: false, policyVersion: 1, node: 'solo', state: 'ok' } });
    // The open exception is part of what is enforced.
    const exc = run('explain', '--socket', sock, '--from', '198.51.100.20', '--port', '2222');
    expect(exc.stdout).toMatch(/^ALLOW by exception vendor \(expires 2098-01-01T00:00:00\.000Z\)\nenforcing policy v1 as node solo/);
    expect(run('explain', '--socket', sock, '--from', '203.0.113.9', '--port', '2222').stdout).toMatch(/^DROP \(default deny/);

    // Outbound (egress): the policy leaves settings.egress at allow, and the answer says so.
    const out = JSON.parse(run('explain', '--socket', sock, '--to', '192.0.2.1', '--port', '25', '--json').stdout);
    expect(out).toMatchObject({ action: 'ALLOW', reason: 'egress-allow', direction: 'egress', to: '192.0.2.1' });

    // Via $PICKET_SOCKET, as every client command.
    const viaEnv = picketWith({ cwd: t.dir, env: { PICKET_SOCKET: sock } }, 'explain', '--from', '203.0.113.9', '--port', '8001');
    expect(viaEnv.code, viaEnv.stderr).toBe(0);

    expect(run('publish', 'p2.signed', '--socket', sock).code).toBe(0);
    // The new version is what explain reads now: 8001 closed, 8002 open.
    expect(run('explain', '--socket', sock, '--from', '203.0.113.9', '--port', '8001').stdout).toMatch(/^DROP/);
    expect(run('explain', '--socket', sock, '--from', '203.0.113.9', '--port', '8002').stdout).toMatch(/^ALLOW by rule app\nenforcing policy v2/);

    const hist = JSON.parse(run('policy', 'history', '--socket', sock, '--json').stdout) as { policies: { version: number; digest: string; signers: string[]; acceptedAt: string; source: string }[] };
    expect(hist.policies.map((p) => p.version)).toEqual([2, 1]);
    expect(hist.policies[0]!.signers.sort()).toEqual([adminId, otherId].sort());
    expect(hist.policies[1]!.signers).toEqual([adminId]);
    for (const p of hist.policies) {
      expect(p.source).toBe('control');
      expect(p.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(Number.isFinite(Date.parse(p.acceptedAt))).toBe(true);
    }
    const text = run('policy', 'history', '--socket', sock).stdout.trim().split('\n');
    expect(text).toHaveLength(3);
    expect(text[1]).toMatch(/^v2\s+[0-9a-f]{12}\s+\S+Z\s+control\s+/);

    // A restart keeps the log.
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    const b = spawnAgent(join(t.dir, 'agent.yaml'), {}, t.dir);
    procs.push(b);
    await waitForSocket(sock, b);
    const again = JSON.parse(run('policy', 'history', '--socket', sock, '--json').stdout) as { policies: { version: number }[] };
    expect(again.policies.map((p) => p.version)).toEqual([2, 1]);
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
  });

  it('answers garbage sent to the explain endpoint with a 400 and one line, and keeps serving', async () => {
    const a = spawnAgent(join(t.dir, 'agent.yaml'), {}, t.dir);
    procs.push(a);
    await waitForSocket(sock, a);
    const garbage = [
      '/v1/explain', '/v1/explain?from=not-an-ip&port=80', '/v1/explain?from=10.0.0.1&port=0x50', '/v1/explain?from=10.0.0.1&port=80abc',
      '/v1/explain?from=10.0.0.1&port=70000', '/v1/explain?from=10.0.0.1&port=-1', '/v1/explain?from=10.0.0.1&port=1e3', '/v1/explain?from=10.0.0.1',
      '/v1/explain?from=10.0.0.1&proto=sctp&port=80', '/v1/explain?from=10.0.0.1&proto=icmp&port=80', `/v1/explain?from=${'1'.repeat(5000)}&port=80`,
      '/v1/explain?from=10.0.0.1%00&port=80', '/v1/explain?from=%E2%80%AE10.0.0.1&port=80',
      '/v1/explain?from=10.0.0.1&to=10.0.0.2&port=80', '/v1/explain?to=evil&port=80', '/v1/explain?to=10.0.0.2&port=0x50',
    ];
    for (const path of garbage) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      const body = JSON.parse(r.body) as { error: string };
      expect(body.error, path).toMatch(/^[^\n]{1,120}$/);
      expect(body.error).not.toContain('1111111111');
    }
    // The CLI turns a refused query into one line and exit 1.
    const cli = run('explain', '--socket', sock, '--from', 'evil;rm', '--port', '80');
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim().split('\n')).toEqual(['error: agent: from "evil;rm" is not an IP address']);
    // Still serving, still the same process.
    const ok = await get('/v1/explain?from=10.0.0.1&port=8002');
    expect(ok.status).toBe(200);
    expect(a.child.exitCode).toBeNull();
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
  });
});
