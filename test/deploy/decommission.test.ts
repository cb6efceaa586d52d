/**
 * docs/operations.md "Decommission a node", run as written: the `picket` commands of that
 * section against two real agent processes (one that stays, one removed), each on its own
 * control socket. systemctl and rm lines are host administration and are not run here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { picket, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';
import { until } from '../helpers/cluster.js';

const t = tempDir('picket-decom-');
const run = (...a: string[]) => picket(t.dir, ...a);
const procs: AgentProcess[] = [];
const peers: Record<string, string> = {};
const sock = (name: string) => join(t.dir, name, 'control.sock');
type Status = { enforcement: { state: string }; alerts: { class: string }[]; policy: { version: number } };
/** GET /v1/status straight from the socket (polling through the CLI would spawn a process each time). */
const api = (name: string) => new Promise<Status>((res, rej) => {
  request({ socketPath: sock(name), path: '/v1/status' }, (r) => {
    let b = '';
    r.on('data', (d: Buffer) => (b += d.toString()));
    r.on('end', () => res(JSON.parse(b) as Status));
  }).on('error', rej).end();
});

/** The `picket …` command lines of a docs section's sh blocks, comments stripped. */
function docCommands(section: string): string[] {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');
  const start = doc.indexOf(`## ${section}`);
  const body = doc.slice(start, doc.indexOf('\n## ', start + 3));
  return [...body.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l.startsWith('picket '));
}

const policy = (version: number, names: string[]) => `meshId: decom
version: ${version}
expires: 2099-01-01
nodes:
${names.map((n, i) => `  - { name: ${n}, peerId: ${peers[n]}, addresses: [127.0.0.${i + 1}], roles: [web] }`).join('\n')}
rules:
  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
`;

beforeAll(async () => {
  expect(run('keygen', '--out', 'alice.key').code).toBe(0);
  for (const n of ['web-1', 'web-3']) peers[n] = run('keygen', '--node', '--out', `${n}.key`).stdout.trim();
  expect(run('root', 'create', '--key', 'alice.key', '--out', 'root.json').code).toBe(0);
  writeFileSync(join(t.dir, 'current.yaml'), policy(1, ['web-1', 'web-3']));
  writeFileSync(join(t.dir, 'policy.yaml'), policy(2, ['web-1']));
  expect(run('policy', 'sign', 'current.yaml', '--root', 'root.json', '--key', 'alice.key', '--out', 'current.signed').code).toBe(0);
  for (const n of ['web-1', 'web-3']) {
    writeFileSync(join(t.dir, `${n}.yaml`), `meshId: decom
dataDir: ./${n}
identityKey: ./${n}.key
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
enforcement: { backend: file }
audit: { statusInterval: 300ms, probeInterval: 0 }
log: { level: warn, pretty: false }
`);
    const p = spawnAgent(join(t.dir, `${n}.yaml`), {}, t.dir);
    procs.push(p);
    await waitForSocket(sock(n), p);
    expect(run('publish', 'current.signed', '--socket', sock(n)).code).toBe(0);
  }
}, 180_000);

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  t.cleanup();
});

describe('docs/operations.md: decommission a node', () => {
  it('runs the section as written: the removed node ends up revoked, alerted, on the baseline', async () => {
    const ran: string[] = [];
    const cmd = (args: string[], socket?: string) => {
      ran.push(['picket', ...args].join(' '));
      return run(...args, ...(socket ? ['--socket', socket] : []));
    };
    const status = (n: string) => JSON.parse(run('status', '--json', '--socket', sock(n)).stdout) as Status;
    expect(status('web-3').enforcement.state).toBe('ok'); // on v1, still listed

    expect(cmd(['policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'alice.key', '--out', 'policy.signed']).code).toBe(0);
    const diff = cmd(['policy', 'diff', 'current.signed', 'policy.signed']);
    expect(diff.stdout).toMatch(/^\s+- web-3 /m);
    const wait = cmd(['publish', 'policy.signed', '--wait'], sock('web-1'));
    expect(wait.code, wait.stderr).toBe(0);
    expect(wait.stdout).toMatch(/converged: 1\/1 nodes enforce v2/);

    // The removed node is not told by the mesh; the runbook hands it the policy.
    expect(status('web-3')).toMatchObject({ policy: { version: 1 }, enforcement: { state: 'ok' } });
    expect(cmd(['publish', 'policy.signed'], sock('web-3')).code).toBe(0);
    let last: Status | undefined;
    let inflight: Promise<unknown> | null = null;
    const poll = () => { inflight ??= api('web-3').then((x) => { last = x; }).finally(() => { inflight = null; }); };
    await until(() => { poll(); return last?.alerts.some((a) => a.class === 'node-revoked') ?? false; }, 30_000, () => JSON.stringify(last));
    await inflight;
    ran.push('picket status');
    expect(status('web-3')).toMatchObject({ policy: { version: 2 }, enforcement: { state: 'revoked' } });
    const ruleset = readFileSync(join(t.dir, 'web-3', 'ruleset.nft'), 'utf8');
    expect(ruleset).toContain('picket: baseline (no policy)');

    expect(ran).toEqual(docCommands('Decommission a node'));
  }, 180_000);
});
