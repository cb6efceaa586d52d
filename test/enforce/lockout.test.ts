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

function setup() {
  const clock = new ManualClock(NOW);
  const backend = new MemoryBackend();
  const e = new Enforcer({ backend, clock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.9.0.0/16'], sshPort: 22, confirmWindow: 60_000 });
  return { clock, backend, e };
}

describe('lock-out guard: confirm window', () => {
  it('restores the previous mesh allowances when every peer is lost right after a narrowing apply, without reopening closed ports', async () => {
    const { backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const narrowed = policy(2, { nodes: [self, b], rules: [] }); // drops node a and closes 5432
    await e.enforce(narrowed, NOW);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 7946, proto: 'tcp' }).action).toBe('DROP');
    const events: string[] = [];
    e.on('lockout', (r) => events.push(r));
    expect(await e.onAllPeersLost(narrowed)).toBe(true);
    expect(events).toHaveLength(1);
    const rs = backend.current!;
    expect(explain(rs, { from: '10.0.0.3', port: 7946, proto: 'tcp' }).action).toBe('ALLOW');
    expect(rs.sets.find((s) => s.name === 'mesh')!.v4.length).toBe(2);
    // Port 5432 stays closed: the guard restores mesh reachability only.
    expect(explain(rs, { from: '10.0.0.3', port: 5432, proto: 'tcp' }).action).toBe('DROP');
    expect(e.status.reason).toMatch(/lost every mesh peer/);
  });

  it('does nothing outside the window, or after an apply that did not narrow mesh access', async () => {
    const { clock, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    expect(await e.onAllPeersLost(null)).toBe(false); // first apply narrowed nothing
    await e.enforce(policy(2, { nodes: [self, b], rules: [] }), NOW);
    clock.advance(61_000);
    expect(await e.onAllPeersLost(null)).toBe(false);
  });

  it('never blocks a failsafe source even when a removed node sat inside it', async () => {
    const { backend, e } = setup();
    const inside = { ...a, addresses: ['10.9.1.1'] };
    await e.enforce(policy(1, { nodes: [self, inside, b], rules: [rule] }), NOW);
    await e.enforce(policy(2, { nodes: [self, b], rules: [rule] }), NOW);
    expect(e.status.state).toBe('ok');
    expect(explain(backend.current!, { from: '10.9.1.1', port: 22, proto: 'tcp' }).action).toBe('ALLOW');
  });
});

describe('blocked set memory', () => {
  it('keeps a removed node blocked across later versions and across a restart, and unblocks it when it is listed again', async () => {
    const { backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    await e.enforce(policy(2, { nodes: [self, b], rules: [rule] }), NOW);
    await e.enforce(policy(3, { nodes: [self, b], rules: [] }), NOW);
    expect(e.blockedAddresses).toEqual(['10.0.0.2']);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 7946, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    // A restarted agent is handed the persisted set and blocks the same address at once.
    const restarted = new Enforcer({ backend, clock: new ManualClock(NOW), log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: [], sshPort: 22, blocked: e.blockedAddresses });
    await restarted.enforce(policy(3, { nodes: [self, b], rules: [] }), NOW);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 7946, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    await restarted.enforce(policy(4, { nodes: [self, a, b], rules: [] }), NOW);
    expect(restarted.blockedAddresses).toEqual([]);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 7946, proto: 'tcp' }).action).toBe('ALLOW');
  });
});
