import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { expectOneLineError, picket, picketAsync, pool, tempDir } from '../helpers/cli.js';
import { keyIdOf, parseSigningKey } from '../../src/trust/keys.js';
import { encodeRoot, type RootDoc } from '../../src/trust/root.js';
import { envelopeToJson, envelopeToText, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { encodePolicy } from '../../src/policy/model.js';
import { parseNodeKey } from '../../src/trust/node-key.js';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { policy } from '../helpers/trust.js';

const t = tempDir();
const p = t.path;
const run = (...args: string[]) => picket(t.dir, ...args);
let peer1 = '', peer2 = '';

const policyYaml = () => `meshId: prod
version: 7
expires: 2099-01-31T00:00:00Z
nodes:
  - { name: web-1, peerId: ${peer1}, addresses: [10.0.1.5], roles: [web] }
  - { name: db-1,  peerId: ${peer2}, addresses: [10.0.2.7], roles: [db] }
rules:
  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
  - { name: app-db, to: role:db, from: role:web, proto: tcp, ports: [5432] }
`;

beforeAll(() => {
  for (const k of ['a', 'b', 'c']) expect(run('keygen', '--out', `${k}.key`).code).toBe(0);
  peer1 = run('keygen', '--node', '--out', 'n1.key').stdout.trim();
  peer2 = run('keygen', '--node', '--out', 'n2.key').stdout.trim();
  expect(run('root', 'create', '--key', 'a.key', '--key', 'b.key', '--threshold', '2', '--policy-key', 'a.pub', '--policy-key', 'b.pub', '--policy-threshold', '2', '--out', 'root.json').code).toBe(0);
  writeFileSync(p('policy.yaml'), policyYaml());
  const r = run('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--out', 'policy.signed');
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => t.cleanup());

describe('picket CLI', () => {
  it('keygen writes a 0600 private key and a public key, and prints the key id', () => {
    const r = run('keygen', '--out', 'k.key', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { keyId: string };
    expect(out.keyId).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(p('k.key')).mode & 0o777).toBe(0o600);
    expect(parseSigningKey(readFileSync(p('k.key'), 'utf8'), 'k').keyId).toBe(out.keyId);
    expect(existsSync(p('k.pub'))).toBe(true);
  });
  it('keygen --node writes a libp2p identity whose PeerId it prints', () => {
    expect(peer1).toMatch(/^12D3KooW/);
    const key = parseNodeKey(readFileSync(p('n1.key')), 'n1');
    expect(peerIdFromPrivateKey(key).toString()).toBe(peer1);
    expect(statSync(p('n1.key')).mode & 0o777).toBe(0o600);
  });
  it('refuses to overwrite an existing key unless --force', () => {
    const before = readFileSync(p('a.key'), 'utf8');
    expectOneLineError(run('keygen', '--out', 'a.key'));
    expect(readFileSync(p('a.key'), 'utf8')).toBe(before);
    expect(run('keygen', '--out', 'a2.key').code).toBe(0);
    expect(run('keygen', '--out', 'a2.key', '--force').code).toBe(0);
  });
  it('verifies a policy signed by the threshold (exit 0, JSON)', () => {
    const r = run('policy', 'verify', 'policy.signed', '--root', 'root.json', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, outcome: 'accepted', version: 7, meshId: 'prod' });
  });
  it('signs below threshold with a warning, and co-signing completes it', () => {
    expect(run('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'a.key', '--out', 'half.signed').stderr).toMatch(/1 of 2 required signatures/);
    expect(JSON.parse(run('policy', 'verify', 'half.signed', '--root', 'root.json', '--json').stdout)).toMatchObject({ valid: false, outcome: 'below-threshold' });
    expect(run('policy', 'sign', 'half.signed', '--root', 'root.json', '--key', 'b.key', '--out', 'half.signed').code).toBe(0);
    expect(run('policy', 'verify', 'half.signed', '--root', 'root.json').code).toBe(0);
  });
  it('rotates the root and verifies a policy against the chain', () => {
    expect(run('root', 'rotate', '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--new-key', 'c.key', '--threshold', '1', '--policy-key', 'c.pub', '--policy-threshold', '1', '--out', 'root2.json').code).toBe(0);
    expect(run('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--root', 'root2.json', '--key', 'c.key', '--out', 'p2.signed').code).toBe(0);
    expect(run('policy', 'verify', 'p2.signed', '--root', 'root.json', '--root', 'root2.json').code).toBe(0);
    // The old policy keys no longer count under root v2.
    expect(run('policy', 'verify', 'policy.signed', '--root', 'root.json', '--root', 'root2.json').code).toBe(1);
    // A rotation signed by the new key alone is refused.
    expectOneLineError(run('root', 'rotate', '--root', 'root.json', '--key', 'c.key', '--new-key', 'c.key', '--out', 'evil.json'));
    expect(existsSync(p('evil.json'))).toBe(false);
  });
  it('show, diff, render and explain read a signed policy', () => {
    expect(run('policy', 'show', 'policy.signed').stdout).toContain('# policy v7 for mesh prod');
    expect(JSON.parse(run('policy', 'show', 'policy.signed', '--json').stdout)).toMatchObject({ version: 7, rules: [{ name: 'https' }, { name: 'app-db' }] });
    writeFileSync(p('policy8.yaml'), policyYaml().replace('version: 7', 'version: 8').replace('ports: [443]', 'ports: [443, 8443]') + '  - { name: dns, to: any, from: any, proto: udp, ports: [53] }\n');
    expect(run('policy', 'sign', 'policy8.yaml', '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--out', 'p8.signed').code).toBe(0);
    const d = run('policy', 'diff', 'policy.signed', 'p8.signed');
    expect(d.stdout).toContain('version 7 -> 8');
    expect(d.stdout).toContain('+ dns: any -> any udp/53');
    expect(d.stdout).toContain('~ https');
    const nft = run('policy', 'render', 'p8.signed', '--node', 'db-1');
    expect(nft.stdout).toContain('table inet picket {');
    expect(nft.stdout).toMatch(/set open \{ type inet_proto \. inet_service; flags interval; elements = \{ udp \. 53 \} \}/);
    expect(nft.stdout).toContain('ip saddr . meta l4proto . th dport @allow_v4 accept');
    expect(run('policy', 'render', 'p8.signed', '--node', peer2, '--backend', 'iptables').stdout).toContain(':PICKET-INPUT - [0:0]');
    expect(run('policy', 'explain', 'p8.signed', '--node', 'db-1', '--from', '10.0.1.5', '--port', '5432').stdout.trim()).toBe('ALLOW by rule app-db');
    expect(JSON.parse(run('policy', 'explain', 'p8.signed', '--node', 'db-1', '--from', '10.0.9.9', '--port', '5432', '--json').stdout)).toMatchObject({ action: 'DROP', reason: 'default' });
  });
  it('explain --to answers for outbound connections under settings.egress: deny; --from and --to together is one line, exit 2', () => {
    writeFileSync(p('policy9.yaml'), policyYaml().replace('version: 7', 'version: 9') + '  - { name: db-out, direction: egress, to: cidr:198.51.100.0/24, from: role:db, proto: tcp, ports: [443] }\nsettings:\n  egress: deny\n');
    expect(run('policy', 'sign', 'policy9.yaml', '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--out', 'p9.signed').code).toBe(0);
    expect(run('policy', 'explain', 'p9.signed', '--node', 'db-1', '--to', '198.51.100.7', '--port', '443').stdout.trim()).toBe('ALLOW by rule db-out');
    expect(JSON.parse(run('policy', 'explain', 'p9.signed', '--node', 'db-1', '--to', '203.0.113.1', '--port', '443', '--json').stdout)).toMatchObject({ action: 'DROP', reason: 'default' });
    expect(JSON.parse(run('policy', 'explain', 'p8.signed', '--node', 'db-1', '--to', '203.0.113.1', '--port', '443', '--json').stdout)).toMatchObject({ action: 'ALLOW', reason: 'egress-allow' });
    expect(run('policy', 'render', 'p9.signed', '--node', 'db-1').stdout).toMatch(/chain output \{\n\s+type filter hook output priority filter; policy drop;/);
    expect(run('policy', 'diff', 'policy.signed', 'p9.signed').stdout).toContain('+ db-out: egress role:db -> cidr:198.51.100.0/24 tcp/443');
    const both = run('policy', 'explain', 'p9.signed', '--node', 'db-1', '--to', '198.51.100.7', '--from', '10.0.1.5', '--port', '443');
    expect(both.code).toBe(2);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
  });
  it('render and explain show monitor mode: a rule on trial and a policy on trial', () => {
    writeFileSync(p('policy11.yaml'), policyYaml().replace('version: 7', 'version: 11') + '  - { name: app-db-old, to: role:db, from: any, proto: tcp, ports: [5432], mode: monitor }\n');
    expect(run('policy', 'sign', 'policy11.yaml', '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--out', 'p11.signed').code).toBe(0);
    expect(run('policy', 'show', 'p11.signed').stdout).toMatch(/name: app-db-old[\s\S]*mode: monitor/);
    const explainOld = run('policy', 'explain', 'p11.signed', '--node', 'db-1', '--from', '10.0.9.9', '--port', '5432');
    expect(explainOld.stdout.trim()).toBe('DROP (monitor: would drop, accepted): only rule app-db-old admits it, and that rule is in monitor mode');
    expect(JSON.parse(run('policy', 'explain', 'p11.signed', '--node', 'db-1', '--from', '10.0.9.9', '--port', '5432', '--json').stdout))
      .toMatchObject({ action: 'ALLOW', reason: 'would-drop', rule: { name: 'app-db-old' }, monitor: { wouldDrop: true, by: 'rule' } });
    expect(run('policy', 'explain', 'p11.signed', '--node', 'db-1', '--from', '10.0.1.5', '--port', '5432').stdout.trim()).toBe('ALLOW by rule app-db');
    expect(run('policy', 'render', 'p11.signed', '--node', 'db-1').stdout).toContain('meta l4proto . th dport @mon_open jump would_drop');
    expect(run('policy', 'render', 'p11.signed', '--node', 'db-1', '--backend', 'iptables').stdout).toMatch(/-A PICKET-WOULD-DROP -m limit[\s\S]*"rule:app-db-old \(monitor\)" -j PICKET-WOULD-DROP/);
    writeFileSync(p('policy10.yaml'), policyYaml().replace('version: 7', 'version: 10') + 'settings: { mode: monitor }\n');
    expect(run('policy', 'sign', 'policy10.yaml', '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--out', 'p10.signed').code).toBe(0);
    expect(run('policy', 'explain', 'p10.signed', '--node', 'db-1', '--from', '10.0.9.9', '--port', '9999').stdout.trim()).toMatch(/^DROP \(monitor: would drop, accepted\): no rule allows it/);
  });
  it('every command has --help and usage errors exit 2', async () => {
    // Nineteen processes, at most three at a time: on two busy cores one after the other they
    // took longer than the default test timeout.
    const helps = [[], ['keygen'], ['root', 'create'], ['root', 'rotate'], ['root', 'show'], ['policy', 'sign'], ['policy', 'verify'], ['policy', 'show'], ['policy', 'diff'], ['policy', 'render'], ['policy', 'explain'], ['agent'], ['publish'], ['status'], ['enforce'], ['state', 'reset']];
    const usage = [['policy', 'verify'], ['nope'], ['keygen', '--out', 'x.key', '--bogus'], ['policy', 'explain', 'policy.signed', '--node', 'db-1', '--from', '1.2.3.4', '--port', '99999']];
    const [helpRuns, usageRuns, version] = await Promise.all([
      pool(helps, 3, (c) => picketAsync(t.dir, ...c, '--help')),
      pool(usage, 2, (c) => picketAsync(t.dir, ...c)),
      picketAsync(t.dir, '--version'),
    ]);
    helpRuns.forEach((r, i) => {
      expect(r.code, helps[i]!.join(' ')).toBe(0);
      expect(r.stdout, helps[i]!.join(' ')).toContain('Usage: picket');
    });
    // The top-level help lists every command group, though none of them is loaded for it.
    for (const g of ['keygen', 'root', 'policy', 'agent', 'publish', 'status', 'enforce', 'state']) expect(helpRuns[0]!.stdout).toMatch(new RegExp(`\\n  ${g}\\b`));
    usageRuns.forEach((r, i) => expect(r.code, usage[i]!.join(' ')).toBe(2));
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  }, 120_000);
});

describe('root show and root files', () => {
  const keyOf = (f: string) => parseSigningKey(readFileSync(p(f), 'utf8'), f);
  const writeRoot = (name: string, doc: RootDoc, signers: string[]) => {
    writeFileSync(p(name), envelopeToText(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(doc), signers.map(keyOf))));
    return name;
  };
  const v2 = (): RootDoc => {
    const [a, c] = [keyOf('a.key'), keyOf('c.key')];
    return {
      version: 2, expires: Date.parse('2098-01-01'),
      keys: [a, c].map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })),
      roles: { root: { keyIds: [a.keyId, c.keyId], threshold: 1 }, policy: { keyIds: [c.keyId], threshold: 1 } },
    };
  };

  it('shows version, expiry, keys with ids and the thresholds of both roles', () => {
    const [a, b] = [keyOf('a.key'), keyOf('b.key')];
    const r = run('root', 'show', 'root.json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^root v1 {2}digest [0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^root {6}2 of 2 keys sign a rotation$/m);
    expect(r.stdout).toMatch(/^policy {4}2 of 2 keys sign a policy$/m);
    expect(r.stdout).toContain(`  ${a.keyId}  root, policy`);
    expect(r.stdout).toContain(`  ${b.keyId}  root, policy`);
    expect(r.stdout).not.toContain('EXPIRED');
    const j = JSON.parse(run('root', 'show', 'root.json', '--json').stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ version: 1, expired: false, roles: { root: { threshold: 2 }, policy: { threshold: 2 } }, selfSigned: { ok: true } });
    expect(j.keys).toEqual([{ keyId: a.keyId, roles: ['root', 'policy'] }, { keyId: b.keyId, roles: ['root', 'policy'] }]);
    expect(j).not.toHaveProperty('chain');
  });
  it('marks an expired root EXPIRED', () => {
    const [a, b] = [keyOf('a.key'), keyOf('b.key')];
    const old: RootDoc = {
      version: 1, expires: Date.parse('2021-01-01'), keys: [a, b].map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })),
      roles: { root: { keyIds: [a.keyId, b.keyId], threshold: 2 }, policy: { keyIds: [a.keyId], threshold: 1 } },
    };
    writeRoot('old-root.json', old, ['a.key', 'b.key']);
    const r = run('root', 'show', 'old-root.json');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^expires {3}2021-01-01T00:00:00\.000Z {2}EXPIRED$/m);
    expect(JSON.parse(run('root', 'show', 'old-root.json', '--json').stdout)).toMatchObject({ expired: true, expires: '2021-01-01T00:00:00.000Z' });
  });
  it('--root: shows that a rotation verifies from the trusted root', () => {
    writeRoot('show-v2.json', v2(), ['a.key', 'b.key', 'c.key']);
    const r = run('root', 'show', 'show-v2.json', '--root', 'root.json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^chain {5}ok from trusted root v1: /m);
    expect(JSON.parse(run('root', 'show', 'show-v2.json', '--root', 'root.json', '--json').stdout)).toMatchObject({ version: 2, chain: { ok: true, from: 1 } });
    expect(JSON.parse(run('root', 'show', 'root.json', '--root', 'root.json', '--json').stdout)).toMatchObject({ chain: { ok: true, note: 'this is the trusted root' } });
  });
  it('--root: a rotation signed only by its new keys (a takeover) is shown NOT VALID, exit 1', () => {
    writeRoot('takeover-v2.json', v2(), ['c.key']);
    const r = run('root', 'show', 'takeover-v2.json', '--root', 'root.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/^invalid: root v2 does not verify from trusted root v1: below-threshold: 0 of 2 required root signatures/);
    expect(r.stdout).toMatch(/^chain {5}NOT VALID from trusted root v1: below-threshold: /m);
    const j = JSON.parse(run('root', 'show', 'takeover-v2.json', '--root', 'root.json', '--json').stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ chain: { ok: false, outcome: 'below-threshold' } });
  });
  it('refuses a file that is not a root, in one line', () => {
    const r = run('root', 'show', 'policy.signed');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/policy\.signed: not a signed root/);
  });
  it('root create refuses to overwrite an existing root unless --force', () => {
    expect(run('root', 'create', '--key', 'a.key', '--out', 'r-once.json').code).toBe(0);
    const before = readFileSync(p('r-once.json'), 'utf8');
    const r = run('root', 'create', '--key', 'b.key', '--out', 'r-once.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/r-once\.json already exists \(use --force to overwrite\)/);
    expect(readFileSync(p('r-once.json'), 'utf8')).toBe(before);
    expect(run('root', 'create', '--key', 'b.key', '--out', 'r-once.json', '--force').code).toBe(0);
    expect(readFileSync(p('r-once.json'), 'utf8')).not.toBe(before);
  });
});

describe('bad input: one clear error, nothing written', () => {
  const load = (f: string) => JSON.parse(readFileSync(p(f), 'utf8')) as ReturnType<typeof envelopeToJson>;
  const bad = (name: string, content: string | Buffer) => { writeFileSync(p(name), content); return name; };
  const verifyFails = (file: string, outcome: RegExp) => {
    const r = run('policy', 'verify', file, '--root', 'root.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(outcome);
  };

  it('tampered payload', () => {
    const e = load('policy.signed');
    const payload = Buffer.from(e.payload, 'base64');
    payload[payload.length - 3]! ^= 1;
    verifyFails(bad('tampered.signed', JSON.stringify({ ...e, payload: payload.toString('base64') })), /bad-signature/);
  });
  it('signature by an unknown key', () => {
    const k = parseSigningKey(readFileSync(p('c.key'), 'utf8'), 'c');
    const e = signEnvelope(PAYLOAD_TYPE.policy, Buffer.from(load('policy.signed').payload, 'base64'), [k]);
    verifyFails(bad('unknown.signed', envelopeToText(e)), /below-threshold.*unknown/);
  });
  it('one key signing twice to fake a threshold', () => {
    const one = load('policy.signed');
    verifyFails(bad('twice.signed', JSON.stringify({ ...one, signatures: [one.signatures[0], one.signatures[0]] })), /below-threshold: 1 of 2/);
  });
  it('wrong payload type (a root presented as a policy)', () => {
    verifyFails('root.json', /malformed: payload type .* is not a policy/);
  });
  it('expired policy', () => {
    const keys = ['a.key', 'b.key'].map((f) => parseSigningKey(readFileSync(p(f), 'utf8'), f));
    const old = policy(3, { issuedAt: Date.parse('2020-01-01'), expires: Date.parse('2020-02-01'), nodes: [], rules: [] });
    verifyFails(bad('expired.signed', envelopeToText(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(old), keys))), /expired/);
  });
  it('a policy expiring at 2^53 - 1 ms is refused by verify, co-sign and show (it used to crash every printer)', () => {
    const keys = ['a.key', 'b.key'].map((f) => parseSigningKey(readFileSync(p(f), 'utf8'), f));
    const far = policy(3, { expires: Number.MAX_SAFE_INTEGER });
    writeFileSync(p('far.signed'), envelopeToText(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(far), keys)));
    writeFileSync(p('far-half.signed'), envelopeToText(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(far), keys.slice(0, 1))));
    const reason = /malformed: expires: 9007199254740991 ms is outside years 2000–9999/;
    for (const args of [['policy', 'verify', 'far.signed', '--root', 'root.json'], ['policy', 'show', 'far.signed'],
      ['policy', 'sign', 'far-half.signed', '--root', 'root.json', '--key', 'b.key', '--out', 'far2.signed']]) {
      const r = run(...args);
      expectOneLineError(r);
      expect(r.stderr, args.join(' ')).toMatch(reason);
    }
    expect(existsSync(p('far2.signed'))).toBe(false);
  });
  it('malformed JSON, random bytes, oversized envelope', () => {
    verifyFails(bad('broken.signed', '{"payloadType": "x", '), /malformed/);
    verifyFails(bad('random.signed', randomBytes(512)), /malformed/);
    verifyFails(bad('huge.signed', Buffer.alloc(7 * 1024 * 1024, 0x20)), /too large|limit/);
  });
  const signFails = (name: string, yaml: string, message: RegExp) => {
    writeFileSync(p(name), yaml);
    const r = run('policy', 'sign', name, '--root', 'root.json', '--key', 'a.key', '--key', 'b.key', '--out', `${name}.signed`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(p(`${name}.signed`))).toBe(false);
  };
  it('YAML syntax error', () => signFails('syntax.yaml', 'meshId: prod\nrules: [\n', /syntax\.yaml:\d+: YAML syntax error/));
  it('schema errors name the field and line', () => signFails('schema.yaml', policyYaml().replace('ports: [443]', 'ports: [70000]'), /schema\.yaml:8: rules\[0\]\.ports\[0\]: 70000 is not a port/));
  it('references to undefined roles', () => signFails('role.yaml', policyYaml().replace('from: role:web', 'from: role:cache'), /role\.yaml:9: rules\[1\]\.from: role cache is not held by any node/));
  it('a key that is not a policy key of the root', () => {
    const r = run('policy', 'sign', 'policy.yaml', '--root', 'root.json', '--key', 'c.key', '--out', 'x.signed');
    expectOneLineError(r);
    expect(existsSync(p('x.signed'))).toBe(false);
  });
  it('policy verify refuses a root listing the identity point as a policy key, whatever "signed" the policy', () => {
    const a = parseSigningKey(readFileSync(p('a.key'), 'utf8'), 'a');
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const weakId = keyIdOf(identity);
    const root: RootDoc = {
      version: 1, expires: Date.parse('2099-01-01'),
      keys: [{ keyId: a.keyId, publicKey: a.publicKey }, { keyId: weakId, publicKey: identity }],
      roles: { root: { keyIds: [a.keyId], threshold: 1 }, policy: { keyIds: [weakId], threshold: 1 } },
    };
    writeFileSync(p('weak-root.json'), envelopeToText(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(root), [a])));
    // R = identity, S = 0: made without any secret; OpenSSL accepts it under the identity key.
    const forged = { payloadType: PAYLOAD_TYPE.policy, payload: encodePolicy(policy(99)), signatures: [{ keyId: weakId, sig: new Uint8Array([1, ...new Uint8Array(63)]) }] };
    writeFileSync(p('forged.signed'), envelopeToText(forged));
    const r = run('policy', 'verify', 'forged.signed', '--root', 'weak-root.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/weak-root\.json: malformed: .*small-order/);
  });
  it('root create refuses a policy key file holding a small-order point', () => {
    const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from('01'.padEnd(64, '0'), 'hex')]);
    writeFileSync(p('weak.pub'), `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`);
    const r = run('root', 'create', '--key', 'a.key', '--policy-key', 'weak.pub', '--out', 'weak-create.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/weak\.pub: weak Ed25519 public key: small-order/);
    expect(existsSync(p('weak-create.json'))).toBe(false);
  });
  it('publish of a policy YAML says to sign it first, without asking the agent', () => {
    const r = run('publish', 'policy.yaml', '--socket', p('no-agent.sock'));
    expectOneLineError(r);
    expect(r.stderr).toMatch(/policy\.yaml: this is a policy YAML, sign it first: picket policy sign/);
    expect(r.stderr).not.toMatch(/protobuf|no-agent\.sock/);
  });
  it('other wrong file kinds are named: a private key, a public key, an agent config, a node key', async () => {
    writeFileSync(p('agent-cfg.yaml'), 'meshId: prod\ndataDir: ./data\nidentityKey: ./n1.key\ntrustedRoot: ./root.json\n');
    const cases = [['a.key', /this is a private key/], ['a.pub', /this is a public key/], ['agent-cfg.yaml', /this is an agent config/], ['n1.key', /node identity key/]] as const;
    const runs = cases.flatMap(([file, kind]) => [['publish', file, '--socket', p('no-agent.sock')], ['policy', 'verify', file, '--root', 'root.json'], ['policy', 'show', file]].map((args) => ({ args, kind })));
    const results = await pool(runs, 3, (c) => picketAsync(t.dir, ...c.args));
    results.forEach((r, i) => {
      expectOneLineError(r);
      expect(r.stderr, runs[i]!.args.join(' ')).toMatch(runs[i]!.kind);
    });
  });
  it('a missing file and a file that is not a key', () => {
    expectOneLineError(run('policy', 'verify', 'nope.signed', '--root', 'root.json'));
    expectOneLineError(run('root', 'create', '--key', 'policy.yaml', '--out', 'r.json'));
    expect(existsSync(p('r.json'))).toBe(false);
  });
});
