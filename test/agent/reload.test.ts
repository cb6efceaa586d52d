/**
 * SIGHUP reload, in process (the CLI's SIGHUP handler calls the same Agent.reload): every
 * field that can change at run time takes effect, each checked by what the agent does
 * afterwards; the rest are named as needing a restart and keep their running values.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { AgentConfigSchema, buildConfig, RELOAD_FIELDS, RESTART_FIELDS, type AgentConfig } from '../../src/agent/config.js';
import { createLogger, silentLogger } from '../../src/runtime/logger.js';
import { encodeEnvelope, signEnvelope, PAYLOAD_TYPE } from '../../src/trust/envelope.js';
import { formatPrefix } from '../../src/policy/ip.js';
import { encodePolicy } from '../../src/policy/model.js';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { EventsReceiver } from '../helpers/receiver.js';

let cluster: Cluster | null = null;
const extra: Agent[] = [];
const receivers: EventsReceiver[] = [];
afterEach(async () => {
  for (const a of extra.splice(0)) await a.stop();
  for (const r of receivers.splice(0)) await r.stop();
  await cluster?.destroy();
  cluster = null;
});

/** The agent's config with some fields replaced (as an edited agent.yaml would give). */
function edit(c: Cluster, spec: NodeSpec, bootstrap: string[], patch: Record<string, unknown>): AgentConfig {
  const base = c.config(spec, bootstrap);
  const raw = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  delete raw.configPath;
  for (const [k, v] of Object.entries(patch)) {
    const [top, sub] = k.split('.') as [string, string | undefined];
    if (sub) raw[top] = { ...(raw[top] as object), [sub]: v };
    else raw[top] = v;
  }
  // buildConfig re-derives defaults; the file backend path stays what it was unless patched.
  return buildConfig(raw, c.dir);
}

async function tcpCluster(n: number): Promise<Cluster> {
  cluster = await Cluster.create(n, { transport: 'tcp', syncInterval: '1h' });
  return cluster;
}

const meshSet = (a: Agent) => {
  const m = a.enforcer.ruleset?.sets.find((s) => s.name === 'mesh');
  return m ? [...m.v4, ...m.v6].map(formatPrefix) : [];
};
const setOf = (a: Agent, name: string) => {
  const set = a.enforcer.ruleset?.sets.find((s) => s.name === name);
  return set ? [...set.v4, ...set.v6].map(formatPrefix) : null;
};

describe('agent reload', () => {
  it('classifies every config field as reloaded or needing a restart, exactly once', () => {
    const groups = new Set(['identity', 'mesh', 'enforcement', 'audit', 'control', 'log']);
    const shape = AgentConfigSchema.shape as Record<string, { def?: { innerType?: { shape?: object }; shape?: object }; unwrap?: () => unknown }>;
    const leaves: string[] = [];
    for (const [k, v] of Object.entries(shape)) {
      if (!groups.has(k)) { leaves.push(k); continue; }
      // prefault({}) wraps the group object: its own shape lists the group's fields.
      const inner = (v as unknown as { _zod: { def: { innerType: { shape: Record<string, unknown> } } } })._zod.def.innerType.shape;
      for (const f of Object.keys(inner)) leaves.push(`${k}.${f}`);
    }
    const classified = [...RELOAD_FIELDS, ...RESTART_FIELDS] as string[];
    expect(classified.filter((f, i) => classified.indexOf(f) !== i)).toEqual([]);
    // enforcement.failsafe is one field on reload (sources and port go together).
    const want = leaves.filter((f) => !f.startsWith('enforcement.failsafe.')).sort();
    expect(classified.sort()).toEqual(want);
  });

  it('switches the enforcement backend (memory → file) and puts the ruleset in force there', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await Agent.start(c.config(n, []), { log: silentLogger, noControl: true });
    extra.push(agent);
    expect(agent.status().enforcement.backend).toBe('memory');
    const file = join(c.dir, 'switched.nft');
    const r = await agent.reload(edit(c, n, [], { 'enforcement.backend': 'file', 'enforcement.file': file }));
    expect(r.applied).toContain('enforcement.backend');
    expect(r.failed).toEqual([]);
    expect(agent.status().enforcement).toMatchObject({ backend: 'file', state: 'baseline' });
    expect(readFileSync(file, 'utf8')).toContain('table inet picket');
  });

  it('keeps the previous backend when the new one cannot apply, and says so', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    writeFileSync(join(c.dir, 'a-file'), 'x');
    const agent = await Agent.start(c.config(n, []), { log: silentLogger, noControl: true });
    extra.push(agent);
    const r = await agent.reload(edit(c, n, [], { 'enforcement.backend': 'file', 'enforcement.file': join(c.dir, 'a-file', 'ruleset.nft') }));
    expect(r.failed.map((f) => f.field)).toEqual(['enforcement.backend']);
    expect(agent.status().enforcement).toMatchObject({ backend: 'memory', state: 'baseline' });
    expect(agent.config.enforcement.backend).toBe('memory');
  });

  it('applies new failsafe SSH sources', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    expect(setOf(agent, 'failsafe')).toBeNull();
    await agent.reload(edit(c, n, [], { enforcement: { backend: 'memory', failsafe: { sshFrom: ['10.7.0.0/16'] } } }));
    expect(setOf(agent, 'failsafe')).toEqual(['10.7.0.0/16']);
  });

  it('applies new mesh.allowFrom to the baseline mesh sources', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    await agent.reload(edit(c, n, [], { 'mesh.allowFrom': ['192.0.2.0/24'] }));
    expect(meshSet(agent)).toEqual(['192.0.2.0/24']);
  });

  it('dials a bootstrap peer added on reload, and lets its address reach the mesh port', async () => {
    const c = await tcpCluster(2);
    const [a, b] = c.nodes as [NodeSpec, NodeSpec];
    const A = await c.start(a, []);
    const B = await c.start(b, []);
    expect(B.mesh.connectedPeers()).toEqual([]);
    const addr = A.mesh.listenAddrs()[0]!;
    const r = await B.reload(edit(c, b, [addr], {}));
    expect(r.applied).toContain('bootstrap');
    await until(() => B.mesh.connectedPeers().includes(a.peerId), 15_000);
    expect(meshSet(B)).toContain('127.0.0.1');
  });

  it('applies a new sync interval at once: rounds start running with a connected peer', async () => {
    const c = await tcpCluster(2);
    const [a, b] = c.nodes as [NodeSpec, NodeSpec];
    const A = await c.start(a, []);
    const B = await c.start(b, [A.mesh.listenAddrs()[0]!]);
    let runs = 0;
    const poll = () => void B.mesh.metrics.snapshot().then((c) => (runs = c.syncRuns));
    await until(() => { poll(); return B.mesh.connectedPeers().length > 0 && runs >= 1; }, 15_000);
    const before = runs;
    await B.reload(edit(c, b, [A.mesh.listenAddrs()[0]!], { syncInterval: '100ms' }));
    expect(B.mesh.options.syncInterval).toBe(100);
    await until(() => { poll(); return runs >= before + 3; }, 15_000, () => `sync runs ${runs}`);
  });

  it('applies mesh settings (peers, backoff, penalties, announcements)', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    await agent.reload(edit(c, n, [], { mesh: { minPeers: 9, redialMin: '2s', redialMax: '2m', penaltyThreshold: 11, banFor: '3m', announceAbove: null } }));
    expect(agent.mesh.options).toMatchObject({ minPeers: 9, redialMin: 2000, redialMax: 120_000, penaltyThreshold: 11, banFor: 180_000, announceAbove: null });
  });

  it('applies audit settings, and a shorter status interval publishes more statuses', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    let published = 0;
    const orig = agent.mesh.publishStatus.bind(agent.mesh);
    agent.mesh.publishStatus = (bytes: Uint8Array) => { published++; return orig(bytes); };
    await agent.reload(edit(c, n, [], { audit: { statusInterval: '50ms', probeInterval: 0, silentAfter: '7m', expiryWarning: '2d' } }));
    expect(agent.auditor.options).toMatchObject({ statusInterval: 50, silentAfter: 420_000, expiryWarning: 2 * 86_400_000 });
    await until(() => published >= 3, 10_000, () => `published ${published}`);
  });

  it('delivers alerts to a sink added on reload', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    const rx = await new EventsReceiver().start();
    receivers.push(rx);
    await agent.reload(edit(c, n, [], { alerts: [{ type: 'pagerduty', url: rx.url, routingKey: 'k' }] }));
    await agent.alerts.raise('drift-repaired', 'drift-repaired', 'warning', 'test alert');
    await until(() => rx.events.length > 0, 10_000);
    expect(rx.events[0]).toMatchObject({ routing_key: 'k', event_action: 'trigger' });
  });

  it('starts watching a policyFile added on reload, and enforces the policy dropped there', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    const file = join(c.dir, 'dropin.signed');
    writeFileSync(file, encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(c.policy(4)), [c.signer])));
    const r = await agent.reload(edit(c, n, [], { policyFile: file }));
    expect(r.applied).toContain('policyFile');
    await until(() => agent.enforcer.status.policyVersion === 4, 10_000);
  });

  it('turns on drift checks with a new driftInterval', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const file = join(c.dir, 'drift.nft');
    const cfg = edit(c, n, [], { enforcement: { backend: 'file', file, driftInterval: 0 } });
    const agent = await Agent.start(cfg, { log: silentLogger, noControl: true });
    extra.push(agent);
    let drift = 0;
    agent.enforcer.on('drift', () => drift++);
    await agent.reload(edit(c, n, [], { enforcement: { backend: 'file', file, driftInterval: '100ms' } }));
    writeFileSync(file, 'tampered\n');
    await until(() => drift > 0, 10_000);
    expect(readFileSync(file, 'utf8')).toContain('table inet picket');
  });

  it('applies enforcement timings (confirm window, lock-out grace) and the lag bound', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    const r = await agent.reload(edit(c, n, [], { enforcement: { backend: 'memory', confirmWindow: '2m', lockoutGrace: '45s' }, audit: { probeInterval: 0, lagAfter: '9m' } }));
    expect(r.applied).toEqual(expect.arrayContaining(['enforcement.confirmWindow', 'enforcement.lockoutGrace', 'audit.lagAfter']));
    expect(agent.enforcer.settings).toMatchObject({ confirmWindow: 120_000, lostGrace: 45_000 });
    expect(agent.auditor.options.lagAfter).toBe(540_000);
  });

  it('changes the log level', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const agent = await c.start(n, []);
    await agent.reload(edit(c, n, [], { log: { level: 'debug' } }));
    expect(agent.log.level).toBe('debug');
  });

  it('names every field that needs a restart and keeps their running values', async () => {
    const c = await tcpCluster(1);
    const n = c.nodes[0]!;
    const lines: string[] = [];
    const log = createLogger({ level: 'info', pretty: false, destination: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }) });
    const agent = await Agent.start(c.config(n, []), { log, backend: n.backend, noControl: true });
    extra.push(agent);
    const before = agent.status();
    const r = await agent.reload(edit(c, n, [], {
      meshId: 'other', dataDir: join(c.dir, 'elsewhere'), identityKey: join(c.dir, 'other.key'), listen: ['/ip4/127.0.0.1/tcp/1'],
      control: { metrics: '127.0.0.1:9999', socket: join(c.dir, 'x.sock') }, log: { level: 'info', pretty: true },
    }));
    expect(r.restart.sort()).toEqual(['control.metrics', 'control.socket', 'dataDir', 'identityKey', 'listen', 'log.pretty', 'meshId']);
    expect(agent.config).toMatchObject({ meshId: 'test', dataDir: n.dir, listen: ['/ip4/127.0.0.1/tcp/0'] });
    expect(agent.status()).toMatchObject({ meshId: before.meshId, peerId: before.peerId, listen: before.listen });
    const warn = lines.map((l) => JSON.parse(l) as { msg: string; fields?: string[] }).find((l) => /need a restart/.test(l.msg));
    expect(warn?.fields?.sort()).toEqual(r.restart);
    expect(existsSync(join(c.dir, 'elsewhere'))).toBe(false);
  });
});
