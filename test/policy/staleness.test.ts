/** settings.maxAge: a policy older than issuedAt + maxAge is stale and follows onExpiry. */
import { describe, expect, it } from 'vitest';
import { parsePolicyYaml, policyToAuthoring } from '../../src/policy/authoring.js';
import { decodePolicy, encodePolicy } from '../../src/policy/model.js';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { DAY, NOW, PEER, policy } from '../helpers/trust.js';

const yaml = (settings: string) => `meshId: prod
version: 3
expires: 2027-06-30T00:00:00Z
nodes:
  - { name: web-1, peerId: ${PEER(1)}, addresses: [10.0.1.5], roles: [web] }
rules:
  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
settings: ${settings}
`;

describe('settings.maxAge in the policy model', () => {
  it('parses a duration, survives signing (protobuf) and reads back in the authoring form', () => {
    const r = parsePolicyYaml(yaml('{ onExpiry: baseline, maxAge: 14d }'), NOW);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.policy.settings).toEqual({ onExpiry: 'baseline', maxAge: 14 * DAY });
    const back = decodePolicy(encodePolicy(r.policy));
    expect(back.ok && back.policy.settings).toEqual({ onExpiry: 'baseline', maxAge: 14 * DAY });
    expect(policyToAuthoring(r.policy).settings).toEqual({ onExpiry: 'baseline', maxAge: '14d' });
  });

  it('a policy without maxAge encodes exactly as before (signed policies keep their digest)', () => {
    const p = policy(1);
    const back = decodePolicy(encodePolicy(p));
    expect(back.ok && back.policy.settings).toEqual({ onExpiry: 'keep' });
  });

  it.each([
    ['not a duration', '{ maxAge: soon }', /settings\.maxAge: .*not a duration/],
    ['zero', '{ maxAge: 0s }', /settings\.maxAge: .*positive/],
  ])('rejects a maxAge that is %s', (_n, settings, re) => {
    const r = parsePolicyYaml(yaml(settings), NOW);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => `${e.path}: ${e.message}`).join('\n')).toMatch(re);
  });

  it('warns when maxAge is longer than the policy lives (it would never apply)', () => {
    const r = parsePolicyYaml(yaml('{ maxAge: 3650d }'), NOW);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.warnings.map((w) => `${w.path}: ${w.message}`).join('\n')).toMatch(/settings\.maxAge: .*longer than the policy lives/);
  });

  it('a signed payload with a maxAge beyond a safe integer is malformed, not a crash', () => {
    const p = { ...policy(1), settings: { onExpiry: 'keep' as const, maxAge: 2 ** 60 } };
    const r = decodePolicy(encodePolicy(p));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/settings\.maxAge/);
  });
});

describe('a stale policy on a node', () => {
  const self = { name: 'self', peerId: PEER(1), addresses: ['10.0.0.1'], roles: ['db'] };
  function setup() {
    const clock = new ManualClock(NOW);
    const backend = new MemoryBackend();
    const e = new Enforcer({ backend, clock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.9.0.0/16'], sshPort: 22 });
    return { clock, backend, e };
  }

  it('with onExpiry: baseline it falls back to the baseline once issuedAt + maxAge has passed, though not expired', async () => {
    const { e } = setup();
    const p = policy(1, { nodes: [self], issuedAt: NOW - 10 * DAY, expires: NOW + 30 * DAY, settings: { onExpiry: 'baseline', maxAge: 7 * DAY } });
    await e.enforce(p, NOW);
    expect(e.status).toMatchObject({ state: 'baseline', policyVersion: 1 });
    expect(e.status.reason).toMatch(/stale/);
  });

  it('with onExpiry: keep it keeps enforcing the stale policy (never fails open)', async () => {
    const { e } = setup();
    const p = policy(1, { nodes: [self], issuedAt: NOW - 10 * DAY, settings: { onExpiry: 'keep', maxAge: 7 * DAY } });
    await e.enforce(p, NOW);
    expect(e.status.state).toBe('ok');
  });

  it('schedules the next enforce at the moment the policy turns stale', async () => {
    const { e } = setup();
    const p = policy(1, { nodes: [self], issuedAt: NOW - DAY, settings: { onExpiry: 'baseline', maxAge: 7 * DAY } });
    await e.enforce(p, NOW);
    expect(e.status.state).toBe('ok');
    expect(e.nextChangeAt).toBe(NOW + 6 * DAY);
    await e.enforce(p, NOW + 6 * DAY);
    expect(e.status.state).toBe('baseline');
  });
});
