/**
 * One compliance suite, every backend: apply, read back, keep the old ruleset when an
 * apply fails, detect and repair drift. nft and iptables run against a real kernel inside
 * a network namespace that the suite creates and deletes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { FileBackend, MemoryBackend, type Backend } from '../../src/enforce/backend.js';
import { NftBackend } from '../../src/enforce/nft.js';
import { IptablesBackend } from '../../src/enforce/iptables.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { compile, type NodeRuleset } from '../../src/policy/compile.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { canUseNetns, NetLab } from '../helpers/netns.js';
import { NOW, PEER, policy } from '../helpers/trust.js';

const lab = canUseNetns() ? new NetLab() : null;
const ns = lab?.ns('cmp');
afterAll(() => lab?.destroy());

interface Subject {
  name: string;
  make: () => Backend;
  /** Changes what is in force behind the backend's back. */
  tamper: (b: Backend) => void;
  /** Makes the next apply fail (undefined: the backend cannot fail on valid input). */
  breakNext?: (b: Backend) => (rs: NodeRuleset) => NodeRuleset;
}

const wrap = ns ? ['ip', 'netns', 'exec', ns] : [];
const invalidPort = (rs: NodeRuleset): NodeRuleset => ({ ...rs, rules: [...rs.rules, { kind: 'rule', name: 'bad', proto: 'tcp', ports: [{ first: 70000, last: 70000 }] }] });
const subjects: Subject[] = [
  { name: 'memory', make: () => new MemoryBackend(), tamper: (b) => { (b as MemoryBackend).tampered = 'edited by hand'; }, breakNext: (b) => { (b as MemoryBackend).failNext = 1; return (rs) => rs; } },
  { name: 'file', make: () => new FileBackend(join(mkdtempSync(join(tmpdir(), 'picket-file-')), 'ruleset.nft')), tamper: (b) => appendFileSync((b as FileBackend).path, '# edited\n') },
];
if (ns) {
  subjects.push({
    name: 'nft (kernel, netns)', make: () => new NftBackend({ wrap }),
    tamper: () => execFileSync('ip', ['netns', 'exec', ns, 'nft', 'add', 'element', 'inet', 'picket', 'mesh_v4', '{ 192.0.2.99 }']),
    breakNext: () => invalidPort,
  });
  subjects.push({
    name: 'iptables (kernel, netns)', make: () => new IptablesBackend({ wrap }),
    tamper: () => execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-I', 'PICKET-INPUT', '1', '-s', '192.0.2.99', '-j', 'ACCEPT']),
    breakNext: () => invalidPort,
  });
}

const p1 = policy(1, { nodes: [{ name: 'a', peerId: PEER(1), addresses: ['10.0.0.1', '2001:db8::1'], roles: ['web'] }, { name: 'b', peerId: PEER(2), addresses: ['10.0.0.2'], roles: ['db'] }] });
const p2 = policy(2, { nodes: p1.nodes, rules: [...p1.rules, { name: 'dns', to: ['any'], from: ['any'], proto: 'udp', ports: [{ first: 53, last: 53 }] }] });
const enforcer = (backend: Backend) => new Enforcer({ backend, clock: systemClock, log: silentLogger, peerId: PEER(2), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.9.0.0/16'], sshPort: 22 });

describe.each(subjects)('backend compliance: $name', (s) => {
  it('applies, reads back a stable hash, and a different ruleset reads back differently', async () => {
    const b = s.make();
    const e = enforcer(b);
    expect((await e.enforce(p1, NOW)).state).toBe('ok');
    const h1 = await b.readBack();
    expect(h1).not.toBeNull();
    expect((await b.readBack())!.hash).toBe(h1!.hash);
    await e.enforce(p2, NOW);
    expect((await b.readBack())!.hash).not.toBe(h1!.hash);
  });

  it('keeps the last good ruleset when an apply fails', async () => {
    if (!s.breakNext) return; // the file backend writes any valid render; it has no failing apply
    const b = s.make();
    const e = enforcer(b);
    await e.enforce(p1, NOW);
    const before = await b.readBack();
    const mangle = s.breakNext(b);
    const original = e.plan.bind(e);
    e.plan = (p, now) => { const r = original(p, now); return { ...r, rs: mangle(r.rs) }; };
    const st = await e.enforce(p2, NOW);
    expect(st.state).toBe('failed');
    expect(st.reason).toMatch(/apply failed/);
    expect(st.policyVersion).toBe(1);
    expect((await b.readBack())!.hash).toBe(before!.hash);
  });

  it('detects drift, says what differed, and repairs it', async () => {
    const b = s.make();
    const e = enforcer(b);
    await e.enforce(p1, NOW);
    const good = await b.readBack();
    expect(await e.checkDrift()).toBeNull();
    s.tamper(b);
    const what = await e.checkDrift();
    expect(what).toBeTruthy();
    expect(e.status.state).toBe('drift-repaired');
    expect((await b.readBack())!.hash).toBe(good!.hash);
  });
});

describe.runIf(ns)('nft specifics (kernel, netns)', () => {
  it('applies address and port changes as set-element operations; only a change of shape is a full replace', async () => {
    const b = new NftBackend({ wrap });
    const e = enforcer(b);
    await e.enforce(p1, NOW);
    const moved = policy(3, { nodes: [{ ...p1.nodes[0]!, addresses: ['10.0.0.11', '2001:db8::1'] }, p1.nodes[1]!] });
    const full = b.applies.full;
    await e.enforce(moved, NOW);
    const list = () => execFileSync('ip', ['netns', 'exec', ns!, 'nft', 'list', 'set', 'inet', 'picket', 'hosts_v4'], { encoding: 'utf8' });
    expect(list()).toContain('10.0.0.11 . tcp . 5432');
    expect(list()).not.toContain('10.0.0.1 . tcp');
    await e.enforce(policy(4, { nodes: moved.nodes, rules: p2.rules }), NOW); // a new port: still elements
    expect(b.applies.incremental).toBe(2);
    expect(b.applies.full).toBe(full);
    await e.enforce(policy(5, { nodes: moved.nodes, rules: [...p2.rules, { name: 'ping', to: ['any'], from: ['any'], proto: 'icmp', ports: [] }] }), NOW);
    expect(b.applies.full).toBe(full + 1); // icmp from anywhere adds a rule: new shape
  });

  it('coexists with other tables and never touches them', async () => {
    execFileSync('ip', ['netns', 'exec', ns!, 'nft', 'add', 'table', 'ip', 'docker_like']);
    execFileSync('ip', ['netns', 'exec', ns!, 'nft', 'add', 'chain', 'ip', 'docker_like', 'keep']);
    const e = enforcer(new NftBackend({ wrap }));
    await e.enforce(p1, NOW);
    await e.enforce(p2, NOW);
    expect(execFileSync('ip', ['netns', 'exec', ns!, 'nft', 'list', 'tables'], { encoding: 'utf8' })).toMatch(/table ip docker_like/);
  });

  it('renders the same rules for a compiled ruleset as compile produced (hash of the compiled model is backend-independent)', () => {
    const rs = compile(p1, PEER(2), { now: NOW });
    expect(rs.rules.map((r) => r.name)).toEqual(['mesh', 'app-db']);
  });
});
