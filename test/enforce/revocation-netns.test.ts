/**
 * Issue 13 #7 with real packets: a revoked node whose address lies inside the failsafe
 * prefix (failsafe.sshFrom: [10.0.0.0/8], the design's own example) loses its established
 * flows at once, SSH included; the rest of the prefix keeps SSH. Addresses exist only
 * inside namespaces this test creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftBackend } from '../../src/enforce/nft.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { PEER, policy } from '../helpers/trust.js';

const lab = canUseNetns() ? new NetLab() : null;

describe.runIf(lab)('revocation in the kernel', () => {
  let srv = '', web = '', admin = '';
  let enforcer: Enforcer;
  const db = { name: 'db', peerId: PEER(1), addresses: ['10.66.0.2', '10.66.1.2'], roles: ['db'] };
  const webNode = { name: 'web', peerId: PEER(2), addresses: ['10.66.0.1'], roles: ['web'] };
  const rules = [{ name: 'app', to: ['role:db'], from: ['role:web'], proto: 'tcp' as const, ports: [{ first: 5432, last: 5432 }] }];

  beforeAll(async () => {
    srv = lab!.ns('srv');
    web = lab!.ns('web');
    admin = lab!.ns('adm');
    lab!.link(web, '10.66.0.1/24', srv, '10.66.0.2/24');
    lab!.link(admin, '10.66.1.1/24', srv, '10.66.1.2/24');
    const server = lab!.spawn(srv, [process.execPath, PROBE, 'serve', '5432,7946,22']);
    await server.line(/serving/);
    const backend = new NftBackend({ wrap: ['ip', 'netns', 'exec', srv] });
    enforcer = new Enforcer({ backend, clock: systemClock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.0.0.0/8'], sshPort: 22 });
    expect((await enforcer.enforce(policy(1, { nodes: [db, webNode], rules }), Date.now())).state).toBe('ok');
  });
  afterAll(() => lab?.destroy());

  it("cuts a revoked node's established flows when its address is inside a failsafe prefix", async () => {
    const app = lab!.spawn(web, [process.execPath, PROBE, 'hold', '10.66.0.2', '5432']);
    const ssh = lab!.spawn(web, [process.execPath, PROBE, 'hold', '10.66.0.2', '22']);
    await app.line(/up/);
    await ssh.line(/up/);
    expect((await enforcer.enforce(policy(2, { nodes: [db], rules }), Date.now())).state).toBe('ok');
    await app.line(/dead/, 5000);
    await ssh.line(/dead/, 5000);
    expect(lab!.probe(web, '10.66.0.2', 22)).toBe('closed');
    expect(lab!.probe(web, '10.66.0.2', 7946)).toBe('closed');
    // The rest of the failsafe prefix still reaches SSH.
    expect(lab!.probe(admin, '10.66.1.2', 22)).toBe('open');
  });
});
