/**
 * Address classes on a real kernel: hosts with identical allowed ports share one class
 * chain, entered from a verdict map keyed by source address. What must hold whatever the
 * lowering: a class opens only its own ports, a host in no class is default-denied, a port
 * a CIDR rule allows still works for a host that also has a class (the class chain falls
 * through), and moving an address is one element-only transaction that closes the old
 * address and opens the new one. IPv4 and IPv6 alike. Every address exists only inside the
 * namespaces this test creates and deletes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftBackend } from '../../src/enforce/nft.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { nftChainNames } from '../../src/enforce/render-nft.js';
import { compile } from '../../src/policy/compile.js';
import type { Policy, Rule } from '../../src/policy/model.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { NOW, PEER, policy } from '../helpers/trust.js';

const usable = canUseNetns();
const N = (name: string, i: number, addresses: string[], roles: string[]) => ({ name, peerId: PEER(i), addresses, roles });
// srv enforces; a1, a2 (class A), b1 (class B) and x are real namespaces on one bridge;
// b2 exists only in the policy (it makes class B two hosts wide).
const nodes = [
  N('srv', 0, ['10.77.0.1', 'fd77::1'], ['srv']),
  N('a1', 1, ['10.77.0.2', 'fd77::2'], ['ca']),
  N('a2', 2, ['10.77.0.3', 'fd77::3'], ['ca']),
  N('b1', 3, ['10.77.0.4', 'fd77::4'], ['cb']),
  N('x', 4, ['10.77.0.5', 'fd77::5'], ['none']),
  N('b2', 5, ['10.77.0.9', 'fd77::9'], ['cb']),
];
const rules: Rule[] = [
  { name: 'a-ports', to: ['role:srv'], from: ['role:ca'], proto: 'tcp', ports: [{ first: 7001, last: 7003 }] },
  { name: 'b-ports', to: ['role:srv'], from: ['role:cb'], proto: 'tcp', ports: [{ first: 8001, last: 8003 }] },
  // a1's addresses (10.77.0.2, fd77::2) and a2's (.3, ::3): a CIDR rule beside their class.
  { name: 'cidr-port', to: ['role:srv'], from: ['cidr:10.77.0.2/31', 'cidr:fd77::2/127'], proto: 'tcp', ports: [{ first: 9001, last: 9001 }] },
  // On trial: evaluated after every enforced rule, the host classes included.
  { name: 'on-trial', to: ['role:srv'], from: ['cidr:10.77.0.0/24', 'cidr:fd77::/64'], proto: 'tcp', ports: [{ first: 9500, last: 9500 }], mode: 'monitor' },
];
const base = (v: number, list = nodes): Policy => policy(v, { nodes: list, rules });

describe.runIf(usable)('address classes in the kernel (nft, netns)', () => {
  const lab = new NetLab();
  let srv = '', a1 = '', a2 = '', b1 = '', x = '';
  let backend: NftBackend;
  let enforcer: Enforcer;
  const apply = async (p: Policy) => expect((await enforcer.enforce(p, NOW)).state).toBe('ok');
  const v4 = '10.77.0.1', v6 = 'fd77::1';

  beforeAll(async () => {
    const hosts = lab.bridge(['srv', 'a1', 'a2', 'b1', 'x']);
    [srv, a1, a2, b1, x] = hosts.map((h) => h.ns) as [string, string, string, string, string];
    hosts.forEach((h, i) => lab.exec(h.ns, ['ip', 'addr', 'add', `fd77::${i + 1}/64`, 'dev', `h${i}`, 'nodad']));
    const server = lab.spawn(srv, [process.execPath, PROBE, 'serve', '7001,7003,8001,9001,9500']);
    await server.line(/serving/);
    backend = new NftBackend({ wrap: ['ip', 'netns', 'exec', srv] });
    enforcer = new Enforcer({ backend, clock: systemClock, log: silentLogger, peerId: PEER(0), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.78.9.0/24'], sshPort: 22 });
    await apply(base(1));
    // The lowering really uses classes here (else this file would test the old host sets).
    const chains = nftChainNames(compile(base(1), PEER(0), { now: NOW, meshPorts: [7946] }));
    expect(chains.filter((c) => /^class_\d+$/.test(c))).toHaveLength(2);
  });
  afterAll(() => lab.destroy());

  it('a host in class A reaches its own ports and cannot reach a port only class B may reach (v4 and v6)', () => {
    for (const to of [v4, v6]) {
      expect(lab.probe(a1, to, 7001)).toBe('open');
      expect(lab.probe(a2, to, 7003)).toBe('open');
      expect(lab.probe(a1, to, 8001)).toBe('closed');
      expect(lab.probe(b1, to, 8001)).toBe('open');
      expect(lab.probe(b1, to, 7001)).toBe('closed');
    }
  });

  it('a host in no class is default-denied, and the drop is counted as default deny', async () => {
    const before = (await backend.readDrops())?.counts['default-deny']?.packets ?? 0;
    for (const to of [v4, v6]) for (const port of [7001, 8001, 9001]) expect(lab.probe(x, to, port)).toBe('closed');
    expect((await backend.readDrops())?.counts['default-deny']?.packets ?? 0).toBeGreaterThan(before);
  });

  it('a CIDR-allowed port still works for a host that also has a class', () => {
    for (const to of [v4, v6]) {
      expect(lab.probe(a1, to, 9001)).toBe('open');
      expect(lab.probe(a2, to, 9001)).toBe('open');
      expect(lab.probe(b1, to, 9001)).toBe('closed');
    }
  });

  it('a class without a matching port falls through to the rules after it: monitor rules, then the counted default deny', async () => {
    for (const to of [v4, v6]) expect(lab.probe(a1, to, 9500)).toBe('open'); // would drop: accepted and counted
    const before = (await backend.readDrops())?.counts['default-deny']?.packets ?? 0;
    for (const to of [v4, v6]) expect(lab.probe(a1, to, 8001)).toBe('closed');
    expect((await backend.readDrops())?.counts['default-deny']?.packets ?? 0).toBeGreaterThan(before);
  });

  it('an address change moves a host from allowed to denied (and the other way) in one element-only transaction', async () => {
    // a1 and x swap addresses in the policy: x's namespace now holds a1's class, a1's none.
    const swapped = nodes.map((n) => n.name === 'a1' ? { ...n, addresses: ['10.77.0.5', 'fd77::5'] } : n.name === 'x' ? { ...n, addresses: ['10.77.0.2', 'fd77::2'] } : n);
    const { full, incremental } = { ...backend.applies };
    await apply(base(2, swapped));
    expect(backend.applies.full).toBe(full);
    expect(backend.applies.incremental).toBe(incremental + 1);
    for (const to of [v4, v6]) {
      expect(lab.probe(a1, to, 7001)).toBe('closed');
      expect(lab.probe(x, to, 7001)).toBe('open');
      expect(lab.probe(x, to, 8001)).toBe('closed');
      expect(lab.probe(a1, to, 9001)).toBe('open'); // the CIDR rule is about addresses, not nodes
    }
    await apply(base(3));
    for (const to of [v4, v6]) {
      expect(lab.probe(a1, to, 7001)).toBe('open');
      expect(lab.probe(x, to, 7001)).toBe('closed');
    }
  });

  it('reads back a map edited by hand as drift and repairs it', async () => {
    await apply(base(4));
    lab.exec(srv, ['nft', 'add', 'element', 'inet', 'picket', 'classes_v4', '{ 10.77.0.5 : jump class_1 }']);
    expect(lab.probe(x, v4, 8001)).toBe('open'); // what the hand edit did
    expect(await enforcer.checkDrift()).toBeTruthy();
    expect(lab.probe(x, v4, 8001)).toBe('closed');
  });
});

describe.runIf(usable)('address classes in the forward chain (nft, netns, a DNAT-published port)', () => {
  const lab = new NetLab();
  let srv = '', a1 = '', b1 = '';
  let backend: NftBackend;

  beforeAll(async () => {
    const hosts = lab.bridge(['srv', 'a1', 'a2', 'b1', 'x'], '10.77.0');
    [srv, a1, , b1] = hosts.map((h) => h.ns) as [string, string, string, string, string];
    // A container behind srv, published the way Docker does: host port 8002 → its port 80.
    const ctr = lab.ns('ctr');
    lab.link(ctr, '172.31.0.2/24', srv, '172.31.0.1/24');
    lab.exec(ctr, ['ip', 'route', 'add', 'default', 'via', '172.31.0.1']);
    lab.exec(srv, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    lab.exec(srv, ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '8002', '-j', 'DNAT', '--to-destination', '172.31.0.2:80']);
    await lab.spawn(ctr, [process.execPath, PROBE, 'serve', '80']).line(/serving/);
    backend = new NftBackend({ wrap: ['ip', 'netns', 'exec', srv] });
    const rs = compile(policy(1, { nodes, rules, settings: { onExpiry: 'keep', forward: 'filter' } }), PEER(0), { now: NOW, meshPorts: [7946], sshFrom: ['10.78.9.0/24'] });
    expect(nftChainNames(rs).filter((c) => /^fwd_class_\d+$/.test(c))).toHaveLength(2);
    await backend.apply(rs);
  });
  afterAll(() => lab.destroy());

  it('a published port opens to the class whose rule names it, not to another class', () => {
    expect(lab.probe(b1, '10.77.0.1', 8002)).toBe('open');
    expect(lab.probe(a1, '10.77.0.1', 8002)).toBe('closed');
  });
});
