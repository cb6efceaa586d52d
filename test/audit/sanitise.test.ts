/**
 * Issue 13 #8: what peers say reaches a terminal, a webhook and a log line. Peer strings are
 * validated at decode and escaped at print; alert payloads carry no attacker text.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { join } from 'node:path';
import { signStatus, verifyStatus, type NodeStatus } from '../../src/audit/status.js';
import { formatMesh, formatStatus } from '../../src/cli/status.js';
import { pagerDutyBody } from '../../src/alerts/alerts.js';
import type { MeshJson, StatusJson } from '../../src/agent/agent.js';
import { statusTopic } from '../../src/mesh/mesh.js';
import { Byzantine } from '../chaos/byzantine.js';
import { Cluster, until } from '../helpers/cluster.js';
import { execFile } from 'node:child_process';
import { BIN } from '../helpers/cli.js';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/runtime/logger.js';

/** Control characters a terminal interprets (newline only as the renderer's own line end). */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u;
const ESC = ['\x1b[2J', '\r', '\x1b[1A', '\x1b]0;pwned\x07', '\x9b2J', '\u202e', '\b\b\b'];

const key = await generateKeyPair('Ed25519');
const me = peerIdFromPrivateKey(key).toString();
const status = (over: Partial<NodeStatus> = {}): NodeStatus => ({
  meshId: 'prod', peerId: me, policyVersion: 7, digest: 'ab'.repeat(32), rulesetHash: 'cd'.repeat(32), enforcement: 'ok', lastApplyAt: 0, alerts: [], seq: 5, time: Date.parse('2026-11-26T12:00:00Z'), findings: [], ...over,
});
const finding = { kind: 'exposed-port' as const, target: me, address: '10.0.0.1', port: 22, proto: 'tcp', detail: 'ssh answered' };

describe('peer strings are validated at decode', () => {
  const cases: [string, Partial<NodeStatus>][] = [
    ['an alert name with a clear-screen escape', { alerts: [`node-silent\x1b[2J\x1b[H3/3 on v7`] }],
    ['an alert name with a carriage return', { alerts: ['ok\rdrift-repaired'] }],
    ['an enforcement state with a cursor-up escape', { enforcement: 'ok\x1b[1A' }],
    ['an enforcement state that is not a state name', { enforcement: 'everything is fine' }],
    ['a digest that is not hex', { digest: 'v7\x1b[2K' }],
    ['a ruleset hash with a bidi override', { rulesetHash: `ab\u202ecd` }],
    ['a finding detail with an OSC title escape', { findings: [{ ...finding, detail: 'x\x1b]0;pwned\x07' }] }],
    ['a finding address that is not an address', { findings: [{ ...finding, address: '10.0.0.1\r' }] }],
    ['a finding target that is not a PeerId', { findings: [{ ...finding, target: 'db-1\x9b2J' }] }],
  ];
  for (const [name, over] of cases) {
    it(`rejects a signed status from a listed peer carrying ${name}`, async () => {
      const v = await verifyStatus(await signStatus(status(over), key), 'prod', () => true, () => -1);
      expect(v).toMatchObject({ ok: false, reject: true });
      expect(!v.ok && v.reason).not.toMatch(CONTROL);
    });
  }
  it('still accepts an honest status with alerts and findings', async () => {
    const v = await verifyStatus(await signStatus(status({ alerts: ['drift-repaired', 'node-silent'], findings: [finding] }), key), 'prod', () => true, () => -1);
    expect(v.ok).toBe(true);
  });
});

describe('peer strings are escaped at print', () => {
  it('status --mesh rendering has no control characters and keeps one row per node and a true summary', () => {
    const evil = ESC.join('');
    const m: MeshJson = {
      summary: '1/3 on v7, 1 silent',
      nodes: [
        { peerId: me, name: 'db-1', policyVersion: 7, digest: null, enforcement: `ok${evil}`, rulesetHash: null, lastSeen: new Date(1000).toISOString(), silent: false, alerts: [`a${evil}`], findings: [], connected: true, self: true },
        { peerId: `x${evil}`, name: `web${evil}`, policyVersion: 6, digest: null, enforcement: 'ok', rulesetHash: null, lastSeen: null, silent: true, alerts: [], findings: [], connected: false, self: false },
        { peerId: 'y', name: 'web-2', policyVersion: 6, digest: null, enforcement: 'ok', rulesetHash: null, lastSeen: new Date(1000).toISOString(), silent: false, alerts: [], findings: [], connected: true, self: false },
      ],
    } as MeshJson;
    const out = formatMesh(m, 2000);
    expect(out).not.toMatch(CONTROL);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 3 + 1);
    expect(lines.at(-1)).toBe('1/3 on v7, 1 silent');
  });

  it('status rendering escapes alert summaries, reasons and peer names', () => {
    const s = {
      peerId: 'me', meshId: 'prod', node: { name: 'db-1' }, peers: [{ peerId: 'p', name: `x\x1b[2J` }],
      policy: null, root: { version: 1, expires: 'never' },
      enforcement: { backend: 'nft', state: 'failed', reason: 'r\r\x1b[1A', rulesetHash: null, lastApplyAt: null },
      alerts: [{ key: 'k', class: 'peer-penalised', severity: 'warning', summary: 'Peer sent \x1b]0;t\x07', since: 'now' }],
    } as unknown as StatusJson;
    expect(formatStatus(s)).not.toMatch(CONTROL);
  });

  it('webhook and PagerDuty payloads carry no control characters', () => {
    const body = pagerDutyBody('rk', { action: 'trigger', dedupKey: 'k\x1b', class: 'peer-penalised', severity: 'warning', summary: `Peer ${ESC.join('')}`, source: 's', details: { why: `x${ESC.join('')}`, nested: { list: ['\r'] } }, time: 0 });
    expect(JSON.stringify(body)).not.toMatch(/\\u00(0[0-9a-f]|1[0-9a-f]|7f)|\\[rbt]|[\u0080-\u009f\u202a-\u202e]/i);
  });
});

describe('peer strings are escaped in logs', () => {
  for (const pretty of [false, true]) {
    it(`a log line quoting a peer has no control characters (${pretty ? 'pretty' : 'JSON'})`, () => {
      const out = new PassThrough();
      let text = '';
      out.on('data', (d: Buffer) => { text += d.toString(); });
      const log = createLogger({ level: 'info', pretty, destination: out });
      log.warn({ peer: 'p', why: `x${ESC.join('')}`, nested: { list: [`\u202e${ESC[0]}`] }, err: new Error('boom') }, `peer said ${ESC.join('')}`);
      expect(text).toContain('peer said');
      expect(text.replace(/\n$/, '')).not.toMatch(CONTROL); // (pretty is uncoloured off a TTY)
    });
  }
});

let cluster: Cluster | undefined;
let byz: Byzantine | undefined;
afterEach(async () => {
  await byz?.node.stop();
  byz = undefined;
  await cluster?.destroy();
  cluster = undefined;
});

describe('a listed peer spoofing the operator view', () => {
  it('its escaped status is rejected and struck, and the real `picket status --mesh` output stays clean and true', async () => {
    cluster = await Cluster.create(2);
    const byzSpec = await cluster.addNode(); // listed in the policy, driven by hand
    cluster.deps = () => ({ noControl: false });
    for (const n of cluster.nodes.slice(0, 2)) await cluster.start(n);
    const honest = cluster.nodes.slice(0, 2);
    await cluster.publish(honest[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, honest);
    const victim = honest[1]!;
    byz = await Byzantine.start(byzSpec.key, byzSpec.listen, 'test');
    byz.node.services.pubsub.subscribe(statusTopic('test'));
    await byz.dial(victim.agent!.mesh.listenAddrs()[0]!);
    await until(() => byz!.node.services.pubsub.getSubscribers(statusTopic('test')).length > 0, 10_000);
    const lie = await signStatus({
      meshId: 'test', peerId: byzSpec.peerId, policyVersion: 2, digest: '', rulesetHash: '', enforcement: 'ok', lastApplyAt: 0, seq: Date.now() + 1e9, time: Date.now(),
      alerts: ['\x1b[2J\x1b[H', `\r${'NODE'.padEnd(16)}\x1b[1A3/3 on v2`], findings: [],
    }, byzSpec.key);
    await byz.node.services.pubsub.publish(statusTopic('test'), lie);
    await until(() => victim.agent!.mesh.admission.strikes(byzSpec.peerId) >= 1, 10_000);
    // The honest peers' own statuses saying v2 (sent 1–3 s after a change) are in before we look.
    await until(() => victim.agent!.meshView().nodes.filter((n) => !n.silent && n.policyVersion === 2).length >= 2, 20_000);

    // The agent runs in this process: the CLI must run without blocking its event loop.
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
      execFile(process.execPath, [BIN, 'status', '--mesh', '--socket', join(victim.dir, 'control.sock')], { timeout: 30_000 }, (err, stdout, stderr) => res({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(CONTROL);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 3 + 1);
    // The liar never got a status in: it is silent, and the summary says so.
    expect(lines.at(-1)).toMatch(/^2\/3 on v2, 1 silent$/);
  });
});
