/** A policy that got past verification (an older agent persisted it) still cannot blow up enforcement. */
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { explain } from '../../src/policy/explain.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { NOW, PEER, policy } from '../helpers/trust.js';
import { poisonPolicy } from '../helpers/poison.js';

function setup() {
  const backend = new MemoryBackend();
  const e = new Enforcer({ backend, clock: new ManualClock(NOW), log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: ['10.0.0.9'], sshFrom: ['10.9.0.0/16'], sshPort: 22 });
  return { backend, e };
}
const poison = poisonPolicy(9, { now: NOW, meshId: 'prod', real: [{ name: 'self', peerId: PEER(1) }] });

describe('enforcement budget', () => {
  it('keeps the previous ruleset when a held poison policy compiles over budget', async () => {
    const { backend, e } = setup();
    const good = policy(1, { nodes: [{ name: 'self', peerId: PEER(1), addresses: ['10.0.0.1'], roles: ['web'] }, { name: 'b', peerId: PEER(2), addresses: ['10.0.0.2'], roles: ['db'] }] });
    await e.enforce(good, NOW);
    const before = backend.current;
    const failed: string[] = [];
    e.on('failed', (r) => failed.push(r));
    const st = await e.enforce(poison, NOW);
    expect(st.state).toBe('failed');
    expect(st.reason).toMatch(/set elements .*limit/);
    expect(st.policyVersion).toBe(1);
    expect(backend.current).toBe(before);
    expect(failed).toHaveLength(1);
  });

  it('enforces the baseline, never nothing, when the first policy it holds is over budget', async () => {
    const { backend, e } = setup();
    const st = await e.enforce(poison, NOW);
    expect(st.state).toBe('failed');
    expect(backend.current?.policy).toBeNull();
    // The baseline opens the mesh port to the policy's nodes (a corrected policy can arrive) and nothing else.
    expect(explain(backend.current!, { from: poison.nodes[5]!.addresses[3]!, port: 7946, proto: 'tcp' }).action).toBe('ALLOW');
    expect(explain(backend.current!, { from: poison.nodes[5]!.addresses[3]!, port: 1024, proto: 'tcp' }).action).toBe('DROP');
  });
});
