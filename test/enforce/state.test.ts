/** The enforcement state a node reports must describe the present, not the last incident. */
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { NOW, PEER, policy } from '../helpers/trust.js';

const self = { name: 'self', peerId: PEER(1), addresses: ['10.0.0.1'], roles: ['db'] };
const peer = { name: 'peer', peerId: PEER(2), addresses: ['10.0.0.2'], roles: ['web'] };

function setup() {
  const clock = new ManualClock(NOW);
  const backend = new MemoryBackend();
  const e = new Enforcer({ backend, clock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.9.0.0/16'], sshPort: 22 });
  return { clock, backend, e };
}

describe('drift state', () => {
  it('a repaired drift is reported once; the next clean read-back returns the state to ok', async () => {
    const { backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, peer] }), NOW);
    backend.tampered = 'someone edited the table';
    expect(await e.checkDrift()).toBeTruthy();
    expect(e.status.state).toBe('drift-repaired');
    expect(await e.checkDrift()).toBeNull();
    expect(e.status).toMatchObject({ state: 'ok', policyVersion: 1 });
    expect(e.status.reason).toBeUndefined();
  });

  it('returns to the baseline state (with its reason) when the drift happened under the baseline', async () => {
    const { backend, e } = setup();
    await e.enforce(null, NOW);
    backend.tampered = 'edited';
    await e.checkDrift();
    expect(e.status.state).toBe('drift-repaired');
    await e.checkDrift();
    expect(e.status).toMatchObject({ state: 'baseline', reason: 'no policy yet' });
  });

  it('a failed state is not cleared by a clean read-back (the new ruleset is still not in force)', async () => {
    const { backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, peer] }), NOW);
    backend.failNext = 1;
    await e.enforce(policy(2, { nodes: [self, peer], rules: [] }), NOW);
    expect(e.status.state).toBe('failed');
    expect(await e.checkDrift()).toBeNull();
    expect(e.status.state).toBe('failed');
  });
});

describe('revoked node', () => {
  it('a node no longer listed in its policy reports revoked (not ok), enforces the baseline, and is ok again when listed again', async () => {
    const { backend, e } = setup();
    await e.enforce(policy(1, { nodes: [self, peer] }), NOW);
    expect(e.status.state).toBe('ok');
    const without = policy(2, { nodes: [peer] });
    await e.enforce(without, NOW);
    expect(e.status).toMatchObject({ state: 'revoked', policyVersion: 2 });
    expect(e.status.reason).toMatch(/not listed in policy v2/);
    // What it enforces is still never "open": the baseline, mesh port to the policy's nodes.
    expect(backend.current!.policy ?? null).toBeNull();
    await e.enforce(policy(3, { nodes: [self, peer] }), NOW);
    expect(e.status.state).toBe('ok');
  });
});
