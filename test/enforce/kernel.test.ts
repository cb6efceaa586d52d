/**
 * Real packets through real nftables: a server namespace enforcing a policy, and clients
 * in other namespaces probing it. Addresses exist only inside namespaces this test creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { NftBackend } from '../../src/enforce/nft.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { lockoutProblem } from '../../src/policy/compile.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { PEER, policy } from '../helpers/trust.js';

const lab = canUseNetns() ? new NetLab() : null;

describe.runIf(lab)('nftables enforcement in the kernel', () => {
  let srv = '', web = '', out = '';
  let backend: NftBackend;
  let enforcer: Enforcer;
  const nodes = [
    { name: 'db', peerId: PEER(1), addresses: ['10.88.0.2', '10.88.1.2'], roles: ['db'] },
    { name: 'web', peerId: PEER(2), addresses: ['10.88.0.1'], roles: ['web'] },
  ];
  const base = policy(1, {
    nodes,
    rules: [{ name: 'app', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] }],
  });

  beforeAll(async () => {
    srv = lab!.ns('srv');
    web = lab!.ns('web');
    out = lab!.ns('out');
    lab!.link(web, '10.88.0.1/24', srv, '10.88.0.2/24');
    lab!.link(out, '10.88.1.1/24', srv, '10.88.1.2/24');
    const server = lab!.spawn(srv, [process.execPath, PROBE, 'serve', '5432,7946,22,9999']);
    await server.line(/serving/);
    backend = new NftBackend({ wrap: ['ip', 'netns', 'exec', srv] });
    enforcer = new Enforcer({ backend, clock: systemClock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.88.1.0/24'], sshPort: 22 });
    expect((await enforcer.enforce(base, Date.now())).state).toBe('ok');
  });
  afterAll(() => lab?.destroy());

  it('allows a policy port from an allowed source and drops it from another', () => {
    expect(lab!.probe(web, '10.88.0.2', 5432)).toBe('open');
    expect(lab!.probe(out, '10.88.1.2', 5432)).toBe('closed');
  });

  it('drops a port that is not in the policy', () => {
    expect(lab!.probe(web, '10.88.0.2', 9999)).toBe('closed');
  });

  it('opens the mesh port to mesh peers only, and failsafe SSH to its sources only', () => {
    expect(lab!.probe(web, '10.88.0.2', 7946)).toBe('open');
    expect(lab!.probe(out, '10.88.1.2', 7946)).toBe('closed');
    expect(lab!.probe(out, '10.88.1.2', 22)).toBe('open');
    expect(lab!.probe(web, '10.88.0.2', 22)).toBe('closed');
  });

  it('sees no open window and no refused connection during 100 consecutive full applies', async () => {
    const alt = policy(2, { nodes, rules: [...base.rules, { name: 'x', to: ['role:db'], from: ['role:web'], proto: 'udp', ports: [{ first: 53, last: 53 }] }] });
    // Count SYNs from the allowed client just before and just after picket's chain: any
    // difference is a new connection dropped by the firewall during a replace.
    lab!.nft(srv, `table inet witness {
      chain before { type filter hook input priority -10; policy accept; ip saddr 10.88.0.1 tcp dport 5432 tcp flags syn counter; }
      chain after { type filter hook input priority 10; policy accept; ip saddr 10.88.0.1 tcp dport 5432 tcp flags syn counter; }
    }`);
    const allowed = lab!.spawn(web, [process.execPath, PROBE, 'loop', '10.88.0.2', '5432', '120000']);
    const denied = lab!.spawn(out, [process.execPath, PROBE, 'loop', '10.88.1.2', '5432', '120000']);
    await allowed.line(/started/);
    await denied.line(/started/);
    const full = backend.applies.full;
    for (let i = 0; i < 100; i++) {
      backend.invalidate(); // force the full (in-place) replace rather than an element delta
      await enforcer.enforce(i % 2 ? base : alt, Date.now());
    }
    expect(backend.applies.full - full).toBe(100);
    expect(backend.applies.recreated).toBe(0); // every replace kept the table and its hook
    allowed.child.kill('SIGTERM');
    denied.child.kill('SIGTERM');
    const a = JSON.parse(await allowed.line(/\{.*\}/)) as { ok: number; fail: number; reasons: Record<string, number> };
    const d = JSON.parse(await denied.line(/\{.*\}/)) as { ok: number; fail: number };
    const counters = [...lab!.exec(srv, ['nft', 'list', 'table', 'inet', 'witness']).matchAll(/packets (\d+)/g)].map((m) => Number(m[1]));
    lab!.exec(srv, ['nft', 'delete', 'table', 'inet', 'witness']);
    expect(counters[0]).toBeGreaterThan(20);
    expect(counters[0]).toBe(counters[1]); // not one SYN dropped by picket
    expect(a.fail).toBe(0);
    expect(a.ok).toBeGreaterThan(20);
    expect(d.ok).toBe(0);
  }, 120_000); // 200 nft runs through `ip netns exec` (apply + read-back): minutes on a shared CPU

  it('revoking a node cuts its established connection at once', async () => {
    await enforcer.enforce(base, Date.now());
    const hold = lab!.spawn(web, [process.execPath, PROBE, 'hold', '10.88.0.2', '5432']);
    await hold.line(/up/);
    const revoked = policy(5, { nodes: [nodes[0]!], rules: [] });
    expect((await enforcer.enforce(revoked, Date.now())).state).toBe('ok');
    await hold.line(/dead/, 5000);
    expect(lab!.probe(web, '10.88.0.2', 5432)).toBe('closed');
  });

  it('repairs drift in the kernel: a deleted table comes back', async () => {
    await enforcer.enforce(base, Date.now());
    execFileSync('ip', ['netns', 'exec', srv, 'nft', 'delete', 'table', 'inet', 'picket']);
    expect(lab!.probe(out, '10.88.1.2', 5432)).toBe('open'); // nothing enforced: the drift is real
    expect(await enforcer.checkDrift()).toMatch(/gone/);
    expect(lab!.probe(out, '10.88.1.2', 5432)).toBe('closed');
    expect(lab!.probe(web, '10.88.0.2', 5432)).toBe('open');
  });

  it('keeps the old rules when an apply fails', async () => {
    await enforcer.enforce(base, Date.now());
    const original = enforcer.plan.bind(enforcer);
    enforcer.plan = (p, now) => { const r = original(p, now); return { ...r, rs: { ...r.rs, rules: [...r.rs.rules, { kind: 'rule', name: 'bad', proto: 'tcp', ports: [{ first: 0, last: 99999 }] }] } }; };
    const st = await enforcer.enforce(policy(6, { nodes, rules: [] }), Date.now());
    enforcer.plan = original;
    expect(st.state).toBe('failed');
    expect(lab!.probe(web, '10.88.0.2', 5432)).toBe('open');
  });

  it('the lock-out guard refuses a ruleset that would close the mesh port or the failsafe', async () => {
    await enforcer.enforce(base, Date.now());
    const original = enforcer.plan.bind(enforcer);
    enforcer.plan = (p, now) => { const r = original(p, now); return { ...r, rs: { ...r.rs, rules: r.rs.rules.filter((x) => x.kind !== 'failsafe') } }; };
    const st = await enforcer.enforce(policy(7, { nodes, rules: [] }), Date.now());
    enforcer.plan = original;
    expect(st.state).toBe('failed');
    expect(st.reason).toMatch(/lock-out guard refused the ruleset: failsafe SSH/);
    expect(lab!.probe(out, '10.88.1.2', 22)).toBe('open');
    const rs = enforcer.ruleset!;
    expect(lockoutProblem({ ...rs, rules: rs.rules.filter((r) => r.kind !== 'mesh') }, { meshPorts: [7946], sshFrom: [], sshPort: 22 })).toMatch(/mesh port 7946/);
  });

  it('IPv6 addresses in a policy are enforced the same way', async () => {
    lab!.link(web, 'fd00:88::1/64', srv, 'fd00:88::2/64');
    const v6 = policy(8, { nodes: [{ ...nodes[0]!, addresses: [...nodes[0]!.addresses, 'fd00:88::2'] }, { ...nodes[1]!, addresses: ['10.88.0.1', 'fd00:88::1'] }], rules: base.rules });
    await enforcer.enforce(v6, Date.now());
    expect(lab!.probe(web, 'fd00:88::2', 5432, 800)).toBe('open');
    expect(lab!.probe(web, 'fd00:88::2', 9999, 800)).toBe('closed');
  });
});
