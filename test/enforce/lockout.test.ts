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

const GRACE = 30_000;

function setup(lostGrace = GRACE) {
  const clock = new ManualClock(NOW);
  const backend = new MemoryBackend();
  const e = new Enforcer({ backend, clock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.9.0.0/16'], sshPort: 22, confirmWindow: 60_000, lostGrace });
  return { clock, backend, e };
}

/** Resolves with the next 'lockout' event, or null once the enforcer's queued work is done without one. */
function nextLockout(e: Enforcer): Promise<string> {
  return new Promise((resolve) => e.once('lockout', resolve));
}

describe('lock-out guard: confirm window', () => {
  it('restores the previous mesh allowances when every peer is lost right after a narrowing apply and none returns within the grace, without reopening closed ports', async () => {
    const { clock, backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const narrowed = policy(2, { nodes: [self, b], rules: [] }); // drops node a and closes 5432
    await e.enforce(narrowed, NOW);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 7946, proto: 'tcp' }).action).toBe('DROP');
    const events: string[] = [];
    e.on('lockout', (r) => events.push(r));
    // Losing every peer is not acted on at once: peers get a grace window to come back.
    expect(await e.onAllPeersLost(narrowed)).toBe(false);
    expect(events).toHaveLength(0);
    const fired = nextLockout(e);
    clock.advance(GRACE);
    await fired;
    expect(events).toHaveLength(1);
    const rs = backend.current!;
    expect(explain(rs, { from: '10.0.0.3', port: 7946, proto: 'tcp' }).action).toBe('ALLOW');
    // Node a was revoked: the restore never re-admits it (issue 13), it stays blocked.
    expect(rs.sets.find((s) => s.name === 'mesh')!.v4.length).toBe(1);
    expect(explain(rs, { from: '10.0.0.2', port: 7946, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
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

  it('does not fire when the only peer of a two-node mesh restarts inside the confirm window and comes back', async () => {
    const { clock, backend, e } = setup();
    const c = { ...b, name: 'c', peerId: PEER(4), addresses: ['10.0.0.4'] };
    await e.enforce(policy(1, { nodes: [self, b, c], rules: [rule] }), NOW);
    // c leaves the fleet: mesh access narrows; b is now the only peer, and it restarts.
    const two = policy(2, { nodes: [self, b], rules: [rule] });
    await e.enforce(two, NOW);
    const applied = backend.applied.length;
    let fired = 0;
    e.on('lockout', () => fired++);
    clock.advance(5_000);
    expect(await e.onAllPeersLost(two)).toBe(false);
    clock.advance(3_000); // the restarted agent dials back in
    e.peerConnected();
    clock.advance(10 * GRACE);
    await e.enforce(two, clock.now()); // flushes anything the guard queued
    expect(fired).toBe(0);
    expect(backend.applied.length).toBe(applied + 1);
    expect(explain(backend.current!, { from: '10.0.0.4', port: 7946, proto: 'tcp' }).action).toBe('DROP');
    expect(e.status.reason).toBeUndefined();
  });

  it('a peer that restarts twice is given the grace each time; only a loss that outlasts the grace acts', async () => {
    const { clock, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const narrowed = policy(2, { nodes: [self, b], rules: [] });
    await e.enforce(narrowed, NOW);
    let fired = 0;
    e.on('lockout', () => fired++);
    expect(await e.onAllPeersLost(narrowed)).toBe(false);
    clock.advance(GRACE - 1);
    e.peerConnected();
    expect(await e.onAllPeersLost(narrowed)).toBe(false);
    clock.advance(GRACE - 1);
    expect(fired).toBe(0);
    const lockout = nextLockout(e);
    clock.advance(1);
    await lockout;
    expect(fired).toBe(1);
  });

  it('a new policy applied during the grace supersedes the pending check', async () => {
    const { clock, backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const narrowed = policy(2, { nodes: [self, b], rules: [] });
    await e.enforce(narrowed, NOW);
    let fired = 0;
    e.on('lockout', () => fired++);
    expect(await e.onAllPeersLost(narrowed)).toBe(false);
    const v3 = policy(3, { nodes: [self, b], rules: [rule] });
    await e.enforce(v3, clock.now());
    clock.advance(GRACE);
    await e.enforce(v3, clock.now());
    expect(fired).toBe(0);
    expect(explain(backend.current!, { from: '10.0.0.2', port: 7946, proto: 'tcp' }).action).toBe('DROP');
  });

  it('stop() cancels a pending check: nothing is applied after the agent stopped', async () => {
    const { clock, backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const narrowed = policy(2, { nodes: [self, b], rules: [] });
    await e.enforce(narrowed, NOW);
    await e.onAllPeersLost(narrowed);
    e.stop();
    const applied = backend.applied.length;
    clock.advance(GRACE);
    await new Promise((r) => setImmediate(r));
    expect(backend.applied.length).toBe(applied);
  });

  it('with no grace configured it acts at once (the previous behaviour, for operators who want it)', async () => {
    const { e } = setup(0);
    await e.enforce(policy(1, { nodes: [self, a, b], rules: [rule] }), NOW);
    const narrowed = policy(2, { nodes: [self, b], rules: [] });
    await e.enforce(narrowed, NOW);
    expect(await e.onAllPeersLost(narrowed)).toBe(true);
  });

  it('blocks a removed node that sat inside a failsafe prefix, and keeps SSH for the rest of the prefix', async () => {
    const { backend, e } = setup();
    const inside = { ...a, addresses: ['10.9.1.1'] };
    await e.enforce(policy(1, { nodes: [self, inside, b], rules: [rule] }), NOW);
    await e.enforce(policy(2, { nodes: [self, b], rules: [rule] }), NOW);
    expect(e.status.state).toBe('ok');
    expect(explain(backend.current!, { from: '10.9.1.1', port: 22, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    expect(explain(backend.current!, { from: '10.9.1.2', port: 22, proto: 'tcp' }).action).toBe('ALLOW');
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
