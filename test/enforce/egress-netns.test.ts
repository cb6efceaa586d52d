/**
 * Egress and forwarded traffic through a real kernel, for nft and iptables alike. The
 * enforcing node `srv` talks to a mesh peer `peer`, to an outside host `ext`, and publishes
 * a container `ctr` the way Docker does (iptables DNAT of a host port to the container's
 * port, then the forward hook). Every address exists only inside namespaces this test
 * creates and deletes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftBackend } from '../../src/enforce/nft.js';
import { IptablesBackend } from '../../src/enforce/iptables.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import type { Backend } from '../../src/enforce/backend.js';
import type { Policy, Rule } from '../../src/policy/model.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { PEER, policy } from '../helpers/trust.js';

const usable = canUseNetns();

const nodes = [
  { name: 'app', peerId: PEER(1), addresses: ['10.89.0.2', '10.89.1.2', 'fd89::2'], roles: ['app'] },
  { name: 'db', peerId: PEER(2), addresses: ['10.89.0.1', 'fd89::1'], roles: ['db'] },
];
const rules: Rule[] = [
  // The published (host) port of the container, for the mesh peer.
  { name: 'published', to: ['role:app'], from: ['role:db'], proto: 'tcp', ports: [{ first: 8080, last: 8080 }] },
  // The container's own port, for the outside: must not open the published port.
  { name: 'container-port', to: ['role:app'], from: ['cidr:10.89.1.0/24'], proto: 'tcp', ports: [{ first: 80, last: 80 }] },
  { name: 'https-out', direction: 'egress', to: ['cidr:10.89.1.0/24'], from: ['role:app'], proto: 'tcp', ports: [{ first: 443, last: 443 }] },
];
const open = (v: number): Policy => policy(v, { nodes, rules });
const closed = (v: number): Policy => policy(v, { nodes, rules, settings: { onExpiry: 'keep', egress: 'deny', forward: 'filter' } });

const backends: { name: string; make: (wrap: string[]) => Backend }[] = [
  { name: 'nft', make: (wrap) => new NftBackend({ wrap }) },
  { name: 'iptables', make: (wrap) => new IptablesBackend({ wrap }) },
];

describe.runIf(usable).each(backends)('egress and forward in the kernel: $name', ({ make }) => {
  const lab = new NetLab();
  let srv = '', peer = '', ext = '', ctr = '';
  let enforcer: Enforcer;
  const apply = async (p: Policy) => expect((await enforcer.enforce(p, Date.now())).state).toBe('ok');

  beforeAll(async () => {
    srv = lab.ns('srv');
    peer = lab.ns('peer');
    ext = lab.ns('ext');
    ctr = lab.ns('ctr');
    lab.link(peer, '10.89.0.1/24', srv, '10.89.0.2/24');
    lab.exec(peer, ['ip', 'addr', 'add', 'fd89::1/64', 'dev', 'v1a', 'nodad']);
    lab.exec(srv, ['ip', 'addr', 'add', 'fd89::2/64', 'dev', 'v1b', 'nodad']);
    lab.link(ext, '10.89.1.1/24', srv, '10.89.1.2/24');
    lab.link(ctr, '172.30.0.2/24', srv, '172.30.0.1/24');
    lab.exec(ctr, ['ip', 'route', 'add', 'default', 'via', '172.30.0.1']);
    lab.exec(ext, ['ip', 'route', 'add', '172.30.0.0/24', 'via', '10.89.1.2']);
    lab.exec(peer, ['ip', 'route', 'add', '172.30.0.0/24', 'via', '10.89.0.2']);
    // Docker's port publishing: the host port 8080 DNAT-ed to the container's port 80.
    lab.exec(srv, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    lab.exec(srv, ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '8080', '-j', 'DNAT', '--to-destination', '172.30.0.2:80']);
    const servers = [
      lab.spawn(srv, [process.execPath, PROBE, 'serve', '22,7946']),
      lab.spawn(peer, [process.execPath, PROBE, 'serve', '7946,9999']),
      lab.spawn(ext, [process.execPath, PROBE, 'serve', '443,9999']),
      lab.spawn(ctr, [process.execPath, PROBE, 'serve', '80']),
    ];
    for (const s of servers) await s.line(/serving/);
    enforcer = new Enforcer({ backend: make(['ip', 'netns', 'exec', srv]), clock: systemClock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.89.1.0/24'], sshPort: 22 });
  });
  afterAll(() => lab.destroy());

  it('egress: allow (the default) leaves outbound connections and published ports alone', async () => {
    await apply(open(1));
    expect(lab.probe(srv, '10.89.1.1', 9999)).toBe('open');
    expect(lab.probe(srv, '10.89.0.1', 9999)).toBe('open');
    expect(lab.probe(ext, '10.89.1.2', 8080)).toBe('open'); // forward: ignore
  });

  it('egress: deny drops a connection to an address no rule allows, and passes what an egress rule allows', async () => {
    await apply(closed(2));
    expect(lab.probe(srv, '10.89.1.1', 443)).toBe('open');
    expect(lab.probe(srv, '10.89.1.1', 9999)).toBe('closed');
    expect(lab.probe(srv, '10.89.0.1', 9999)).toBe('closed');
    // The egress default deny has its own named counter.
    const drops = await enforcer.backend.readDrops?.();
    expect(drops?.counts['egress-deny']?.packets ?? 0).toBeGreaterThan(0);
  });

  it('egress deny cannot cut the mesh or failsafe', async () => {
    await apply(closed(2));
    expect(lab.probe(srv, '10.89.0.1', 7946)).toBe('open'); // this node dials its peer's mesh port
    expect(lab.probe(peer, '10.89.0.2', 7946)).toBe('open'); // the peer dials in: replies pass
    expect(lab.probe(ext, '10.89.1.2', 22)).toBe('open'); // failsafe SSH: replies pass
    // IPv6 needs neighbour discovery out of this node: with the caches empty, the mesh still works over v6.
    lab.exec(srv, ['ip', '-6', 'neigh', 'flush', 'all']);
    lab.exec(peer, ['ip', '-6', 'neigh', 'flush', 'all']);
    expect(lab.probe(srv, 'fd89::1', 7946, 3000)).toBe('open');
    expect(lab.probe(srv, 'fd89::1', 9999)).toBe('closed');
  });

  it('forward: filter drops a DNAT-published port no inbound rule allows, by its published port, not the container port', async () => {
    await apply(closed(2));
    expect(lab.probe(peer, '10.89.0.2', 8080)).toBe('open'); // rule published (8080 from role:db)
    expect(lab.probe(ext, '10.89.1.2', 8080)).toBe('closed'); // ext may reach port 80, not the published 8080
    const drops = await enforcer.backend.readDrops?.();
    expect(drops?.counts['forward-deny']?.packets ?? 0).toBeGreaterThan(0);
  });

  it('forward: filter leaves forwarded traffic that was not DNAT-ed alone', async () => {
    await apply(closed(2));
    expect(lab.probe(ext, '172.30.0.2', 80)).toBe('open');
  });

  it('going back to egress: allow and forward: ignore removes the output and forward filtering', async () => {
    await apply(closed(3));
    expect(lab.probe(srv, '10.89.1.1', 9999)).toBe('closed');
    await apply(open(4));
    expect(lab.probe(srv, '10.89.1.1', 9999)).toBe('open');
    expect(lab.probe(ext, '10.89.1.2', 8080)).toBe('open');
    expect(await enforcer.checkDrift()).toBeNull(); // read back: what was applied is what is in force
  });

  it('revoking a node cuts its established connection to a published port under forward: filter', async () => {
    await apply(closed(5));
    const hold = lab.spawn(peer, [process.execPath, PROBE, 'hold', '10.89.0.2', '8080']);
    await hold.line(/up/);
    const without = policy(6, { nodes: [nodes[0]!], rules: rules.filter((r) => r.name !== 'published'), settings: { onExpiry: 'keep', egress: 'deny', forward: 'filter' } });
    await apply(without);
    await hold.line(/dead/, 5000);
    expect(lab.probe(peer, '10.89.0.2', 8080)).toBe('closed');
  });
});
