/** Issue 13 #7: revocation beats the failsafe and the lock-out guard. */
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { explain } from '../../src/policy/explain.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { NOW, PEER, policy } from '../helpers/trust.js';

const self = { name: 'self', peerId: PEER(1), addresses: ['10.0.0.1'], roles: ['db'] };
const a = { name: 'a', peerId: PEER(2), addresses: ['10.0.0.2'], roles: ['web'] };
const b = { name: 'b', peerId: PEER(3), addresses: ['10.0.0.3'], roles: ['web'] };
const rule = { name: 'app', to: ['role:db'], from: ['role:web'], proto: 'tcp' as const, ports: [{ first: 5432, last: 5432 }] };

function setup(sshFrom: string[]) {
  const clock = new ManualClock(NOW);
  const backend = new MemoryBackend();
  const e = new Enforcer({ backend, clock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom, sshPort: 22, confirmWindow: 60_000, lostGrace: 0 });
  return { clock, backend, e };
}

describe('revocation beats the failsafe', () => {
  it('blocks a revoked node whose address is inside a failsafe prefix (sshFrom: 10.0.0.0/8)', async () => {
    const { backend, e } = setup(['10.0.0.0/8']);
    expect((await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW)).state).toBe('ok');
    expect((await e.enforce(policy(2, { nodes: [self, b], rules: [rule] }), NOW)).state).toBe('ok');
    // Before established/related and before the failsafe accept: live flows are cut, SSH too.
    expect(explain(backend.current!, { from: '10.0.0.2', port: 22, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    // The rest of the failsafe prefix keeps SSH.
    expect(explain(backend.current!, { from: '10.0.0.3', port: 22, proto: 'tcp' }).action).toBe('ALLOW');
    expect(explain(backend.current!, { from: '10.200.0.9', port: 22, proto: 'tcp' }).action).toBe('ALLOW');
    expect(e.blockedAddresses).toEqual(['10.0.0.2']);
  });

  it('exempts only an exact failsafe host, and still remembers it as revoked', async () => {
    const { backend, e } = setup(['10.0.0.2', '192.168.0.0/16']);
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    await e.enforce(policy(2, { nodes: [self, b], rules: [rule] }), NOW);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 22, proto: 'tcp' }).action).toBe('ALLOW');
    expect(explain(backend.current!, { from: '10.0.0.2', port: 5432, proto: 'tcp' }).action).toBe('DROP');
    expect(e.blockedAddresses).toEqual(['10.0.0.2']);
    // Once the operator takes the host out of the failsafe, it is blocked at the next enforce.
    e.setFailsafe(['192.168.0.0/16'], 22);
    await e.enforce(policy(2, { nodes: [self, b], rules: [rule] }), NOW);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 22, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
  });

  it("the lock-out guard's restore never re-admits a revoked address and never forgets the blocked set", async () => {
    const { backend, e } = setup(['10.0.0.0/8']);
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const moved = { ...b, addresses: ['10.0.0.30'] }; // b renumbered: the mesh set narrowed
    const v2 = policy(2, { nodes: [self, moved], rules: [rule] });
    await e.enforce(v2, NOW);
    expect(await e.onAllPeersLost(v2)).toBe(true);
    const rs = backend.current!;
    // b's old address is back on the mesh port (the guard's job); a's is not, and stays blocked.
    expect(explain(rs, { from: '10.0.0.3', port: 7946, proto: 'tcp' }).action).toBe('ALLOW');
    expect(explain(rs, { from: '10.0.0.2', port: 7946, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    expect(e.blockedAddresses).toEqual(['10.0.0.2']);
    // And the next policy still blocks it.
    await e.enforce(policy(3, { nodes: [self, moved], rules: [] }), NOW);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 22, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    expect(e.blockedAddresses).toEqual(['10.0.0.2']);
  });
});
