/**
 * Start-up failures of the real agent process: each prints one line naming the cause, exits
 * non-zero, and leaves nothing behind (no listener on its ports, no control socket), so
 * systemd's Restart= can do its job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, picket, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';

const t = tempDir('picket-start-');
const run = (...a: string[]) => picket(t.dir, ...a);
const procs: AgentProcess[] = [];
const servers: Server[] = [];

beforeAll(() => {
  run('keygen', '--out', 'admin.key');
  run('keygen', '--node', '--out', 'node.key');
  run('root', 'create', '--key', 'admin.key', '--out', 'root.json');
  writeFileSync(join(t.dir, 'not-a-dir'), 'x');
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  t.cleanup();
});

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

async function freePort(): Promise<number> {
  const s = await listenOn(0);
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A port is free when we can listen on it ourselves (nothing half-alive holds it). */
async function expectFree(port: number): Promise<void> {
  const s = await listenOn(port);
  await new Promise((r) => s.close(r));
}

let seq = 0;
function config(o: { listen: number; metrics?: string; identityKey?: string; dataDir?: string; listenTwice?: boolean }): string {
  const name = `agent-${++seq}`;
  const dataDir = o.dataDir ?? `./${name}-data`;
  writeFileSync(join(t.dir, `${name}.yaml`), `meshId: start
dataDir: ${dataDir}
identityKey: ${o.identityKey ?? './node.key'}
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/${o.listen}${o.listenTwice ? `, /ip4/127.0.0.1/tcp/${o.listen}` : ''}]
enforcement: { backend: file }
control: { socket: ./${name}.sock${o.metrics ? `, metrics: "${o.metrics}"` : ''} }
alerts: [{ type: log }]
log: { level: info, pretty: false }
`);
  return join(t.dir, `${name}.yaml`);
}

/** Runs the agent expecting a start-up failure; returns its error output. */
async function failsToStart(cfg: string): Promise<string> {
  const p = spawnAgent(cfg, {}, t.dir);
  procs.push(p);
  const { code, signal } = await p.exited;
  const out = p.output();
  expect(signal, out).toBeNull();
  expect(code, out).toBe(1);
  const errLines = out.split('\n').filter((l) => l && !l.startsWith('{'));
  expect(errLines, out).toHaveLength(1);
  expect(errLines[0]).toMatch(/^error: /);
  expect(out).not.toMatch(/^\s+at /m);
  expect(out).not.toMatch(/Database is not open/);
  expect(existsSync(cfg.replace(/\.yaml$/, '.sock')), 'control socket left behind').toBe(false);
  return errLines[0]!;
}

describe('agent start-up failures', () => {
  it('exits with one line naming the port when the mesh port is in use', async () => {
    const port = await freePort();
    servers.push(await listenOn(port));
    const metrics = await freePort();
    const line = await failsToStart(config({ listen: port, metrics: `127.0.0.1:${metrics}` }));
    expect(line).toMatch(new RegExp(`/ip4/127\\.0\\.0\\.1/tcp/${port}.*in use`));
    await expectFree(metrics);
  });

  it('frees what the mesh bound when it fails half-way through its listen addresses', async () => {
    // Each address passes the bind test alone; the mesh then binds the first and cannot bind
    // the second (its own): the failure comes from libp2p after part of it is listening.
    const port = await freePort();
    const line = await failsToStart(config({ listen: port, listenTwice: true }));
    expect(line).toMatch(new RegExp(`listen .*/tcp/${port}.*in use`));
    await expectFree(port);
  });

  it('exits with one line naming the address when the metrics port is in use, and frees the mesh port', async () => {
    const mesh = await freePort();
    const metrics = await freePort();
    servers.push(await listenOn(metrics));
    const line = await failsToStart(config({ listen: mesh, metrics: `127.0.0.1:${metrics}` }));
    expect(line).toMatch(new RegExp(`control\\.metrics 127\\.0\\.0\\.1:${metrics}.*in use`));
    await expectFree(mesh);
  });

  it('refuses a metrics address beyond loopback before opening anything', async () => {
    const mesh = await freePort();
    const line = await failsToStart(config({ listen: mesh, metrics: '0.0.0.0:9464' }));
    expect(line).toMatch(/control\.metrics.*0\.0\.0\.0:9464.*loopback/);
    await expectFree(mesh);
  });

  it('exits with one line naming the file when the identity key is missing', async () => {
    const mesh = await freePort();
    const line = await failsToStart(config({ listen: mesh, identityKey: './missing.key' }));
    expect(line).toMatch(/missing\.key.*no such file/);
    await expectFree(mesh);
  });

  it('exits with one line naming the file when the identity key is garbage', async () => {
    writeFileSync(join(t.dir, 'garbage.key'), 'not a key at all\n');
    const line = await failsToStart(config({ listen: await freePort(), identityKey: './garbage.key' }));
    expect(line).toMatch(/garbage\.key.*not a libp2p node key/);
  });

  it('exits with one line naming the directory when dataDir cannot be created', async () => {
    const line = await failsToStart(config({ listen: await freePort(), dataDir: './not-a-dir/data' }));
    expect(line).toMatch(/dataDir .*not-a-dir\/data.*(not a directory|ENOTDIR)/);
  });

  it('exits with one line naming the directory when dataDir is not writable', async () => {
    // Root ignores mode bits, so a read-only bind is not available here: a dataDir whose
    // state directory is a file is a write that fails the same way for every user.
    mkdirSync(join(t.dir, 'ro-data'), { recursive: true });
    writeFileSync(join(t.dir, 'ro-data', 'state'), 'not a directory');
    const line = await failsToStart(config({ listen: await freePort(), dataDir: './ro-data' }));
    expect(line).toMatch(/ro-data/);
  });
});

describe('agent --check', () => {
  const check = (cfg: string, env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [BIN, 'agent', '--check', '--config', cfg], { cwd: t.dir, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('lists every problem at once: key, root, dataDir, both addresses, backend tool', async () => {
    const mesh = await freePort();
    const metrics = await freePort();
    servers.push(await listenOn(mesh), await listenOn(metrics));
    writeFileSync(join(t.dir, 'bad-root.json'), '{"payloadType": "x"}');
    const emptyBin = join(t.dir, 'empty-bin');
    mkdirSync(emptyBin, { recursive: true });
    writeFileSync(join(t.dir, 'many.yaml'), `meshId: start
dataDir: ./not-a-dir/data
identityKey: ./missing.key
trustedRoot: ./bad-root.json
listen: [/ip4/127.0.0.1/tcp/${mesh}]
bootstrap: [/ip4/127.0.0.1/tcp/1]
enforcement: { backend: nft }
control: { socket: ./many.sock, metrics: "127.0.0.1:${metrics}" }
`);
    const r = check(join(t.dir, 'many.yaml'), { PATH: emptyBin });
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.every((l) => l.startsWith('error: ')), r.stderr).toBe(true);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const expected = [
      /identityKey: .*missing\.key: cannot read node key \(no such file\)/,
      /trustedRoot: .*bad-root\.json/,
      /dataDir .*not-a-dir\/data: .*not a directory/,
      new RegExp(`listen /ip4/127\\.0\\.0\\.1/tcp/${mesh}: address already in use`),
      new RegExp(`control\\.metrics 127\\.0\\.0\\.1:${metrics}: address already in use`),
      /enforcement\.backend nft: nft not found on PATH/,
      /bootstrap \/ip4\/127\.0\.0\.1\/tcp\/1: no \/p2p\/<PeerId>/,
    ];
    for (const re of expected) expect(lines.some((l) => re.test(l)), `${re} in\n${r.stderr}`).toBe(true);
    expect(lines).toHaveLength(expected.length);
  });

  it('passes a good config, and the addresses it bind-tested are free again', async () => {
    const mesh = await freePort();
    const metrics = await freePort();
    const cfg = config({ listen: mesh, metrics: `127.0.0.1:${metrics}` });
    const r = check(cfg);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/valid/);
    await expectFree(mesh);
    await expectFree(metrics);
  });

  it('accepts a missing identity key when identity.generate is set', () => {
    writeFileSync(join(t.dir, 'gen.yaml'), `meshId: start
dataDir: ./gen-data
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
identity: { generate: true }
enforcement: { backend: file }
`);
    const r = check(join(t.dir, 'gen.yaml'));
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('agent identity', () => {
  it('generates node.key (0600) in dataDir on first start, logs its PeerId, and keeps it across restarts', { timeout: 90_000 }, async () => {
    writeFileSync(join(t.dir, 'idgen.yaml'), `meshId: start
dataDir: ./idgen-data
identity: { generate: true }
trustedRoot: ./root.json
listen: [/ip4/127.0.0.1/tcp/0]
enforcement: { backend: file }
log: { level: info, pretty: false }
`);
    const key = join(t.dir, 'idgen-data', 'node.key');
    const sock = join(t.dir, 'idgen-data', 'control.sock');
    const first = spawnAgent(join(t.dir, 'idgen.yaml'), {}, t.dir);
    procs.push(first);
    await waitForSocket(sock, first, 30_000);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const line = first.output().split('\n').find((l) => /generated a new node identity/.test(l));
    const peerId = (JSON.parse(line!) as { peerId: string }).peerId;
    expect(peerId).toMatch(/^12D3KooW/);
    expect(JSON.parse(run('status', '--socket', sock, '--json').stdout).peerId).toBe(peerId);
    const bytes = readFileSync(key, 'utf8');
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const second = spawnAgent(join(t.dir, 'idgen.yaml'), {}, t.dir);
    procs.push(second);
    await waitForSocket(sock, second, 30_000);
    expect(second.output()).not.toMatch(/generated a new node identity/);
    expect(readFileSync(key, 'utf8')).toBe(bytes);
    expect(JSON.parse(run('status', '--socket', sock, '--json').stdout).peerId).toBe(peerId);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });
});
