import { describe, expect, it } from 'vitest';
import { decideRollout, heldPolicy, type PeerHealth, type RolloutInput } from '../../src/node/rollout.js';
import { compile } from '../../src/policy/compile.js';
import { renderNft } from '../../src/enforce/render-nft.js';
import type { Policy } from '../../src/policy/model.js';
import { NOW, PEER, policy } from '../helpers/trust.js';

const MIN = 60_000;
// canary-1, canary-2 (stage 1), web-3, web-4 (stage 2, after 10m, healthy 50%), db-5 (stage 3, after 20m).
const nodes = [
  { name: 'canary-1', peerId: PEER(1), addresses: ['10.0.0.1'], roles: ['canary', 'web'] },
  { name: 'canary-2', peerId: PEER(2), addresses: ['10.0.0.2'], roles: ['canary', 'web'] },
  { name: 'web-3', peerId: PEER(3), addresses: ['10.0.0.3'], roles: ['web'] },
  { name: 'web-4', peerId: PEER(4), addresses: ['10.0.0.4'], roles: ['web'] },
  { name: 'db-5', peerId: PEER(5), addresses: ['10.0.0.5'], roles: ['db'] },
];
const v1 = policy(1, { nodes });
const v2: Policy = policy(2, {
  nodes,
  rollout: { stages: [{ select: 'role:canary' }, { select: 'role:web', after: 10 * MIN, healthy: 50 }, { select: 'any', after: 20 * MIN }] },
});
const D2 = 'd2'.repeat(32);
const ok = (i: number, over: Partial<PeerHealth> = {}): PeerHealth => ({ peerId: PEER(i), policyVersion: 2, digest: D2, enforcement: 'ok', held: false, silent: false, newAlerts: [], ...over });
const input = (over: Partial<RolloutInput>): RolloutInput => ({ newest: v2, digest: D2, firstSeen: NOW, enforcing: v1, self: PEER(3), now: NOW + 11 * MIN, health: [], ...over });

describe('staged rollout: the decision (pure)', () => {
  it('a policy without a rollout is enforced at once', () => {
    expect(decideRollout(input({ newest: policy(2, { nodes }) }))).toMatchObject({ kind: 'enforce', why: 'no-rollout' });
  });

  it('a node of the first stage enforces at once', () => {
    expect(decideRollout(input({ self: PEER(1), now: NOW }))).toMatchObject({ kind: 'enforce', stage: 1, why: 'first-stage' });
  });

  it('holds a later stage while its after has not passed, even with every canary healthy', () => {
    expect(decideRollout(input({ now: NOW + 9 * MIN, health: [ok(1), ok(2)] }))).toMatchObject({ kind: 'hold', stage: 2, why: 'waiting', until: NOW + 10 * MIN, healthy: 2, needed: 1 });
  });

  it('holds once the time has passed while the canaries are not healthy enough', () => {
    const unhealthy = [ok(1, { enforcement: 'pending' }), ok(2, { newAlerts: ['unexpected-listener'] })];
    expect(decideRollout(input({ health: unhealthy }))).toMatchObject({ kind: 'hold', why: 'unhealthy', healthy: 0, needed: 1 });
  });

  it('goes once the time has passed and healthy% of the earlier stages enforce this version (50% of 2 = 1)', () => {
    expect(decideRollout(input({ health: [ok(1), ok(2, { silent: true })] }))).toMatchObject({ kind: 'enforce', stage: 2, why: 'stage-reached' });
  });

  it('does not count a canary that reports another digest of the same version (equivocation) or an older version', () => {
    expect(decideRollout(input({ health: [ok(1, { digest: 'ee'.repeat(32) }), ok(2, { policyVersion: 1 })] }))).toMatchObject({ kind: 'hold', why: 'unhealthy' });
  });

  it('does not count a standing alert from before this version, only new ones', () => {
    expect(decideRollout(input({ health: [ok(1, { newAlerts: ['node-silent'] })] }))).toMatchObject({ kind: 'enforce' });
  });

  it('halts when a canary reports that this version failed to apply, whatever the time', () => {
    const d = decideRollout(input({ now: NOW + MIN, health: [ok(1), ok(2, { enforcement: 'failed' })] }));
    expect(d).toMatchObject({ kind: 'halted', stage: 2, failed: PEER(2), reason: 'its apply failed' });
  });

  it('halts on a lock-out revert raised under this version', () => {
    expect(decideRollout(input({ health: [ok(1, { newAlerts: ['lockout-revert'] }), ok(2)] }))).toMatchObject({ kind: 'halted', reason: 'it raised lockout-revert' });
  });

  it('does not halt on a failure reported for an older version (the canary held v1, or failed before v2)', () => {
    const d = decideRollout(input({ health: [ok(1, { policyVersion: 1, enforcement: 'failed' }), ok(2)] }));
    expect(d).toMatchObject({ kind: 'enforce' });
  });

  it('stays halted once recorded, even when the canary recovers', () => {
    expect(decideRollout(input({ health: [ok(1), ok(2)], halted: { failed: PEER(2), reason: 'its apply failed' } }))).toMatchObject({ kind: 'halted' });
  });

  it('a third stage needs the second: held web nodes do not count as healthy', () => {
    const d = decideRollout(input({ self: PEER(5), now: NOW + 21 * MIN, health: [ok(1), ok(2), ok(3, { held: true }), ok(4, { held: true })] }));
    expect(d).toMatchObject({ kind: 'hold', stage: 3, why: 'unhealthy', healthy: 2, needed: 4 });
    const go = decideRollout(input({ self: PEER(5), now: NOW + 21 * MIN, health: [ok(1), ok(2), ok(3), ok(4)] }));
    expect(go).toMatchObject({ kind: 'enforce', stage: 3 });
  });

  it('a third stage halts when a second-stage node fails after switching', () => {
    expect(decideRollout(input({ self: PEER(5), health: [ok(1), ok(2), ok(3, { enforcement: 'failed' }), ok(4)] }))).toMatchObject({ kind: 'halted', failed: PEER(3) });
  });

  it('counts the delay from when this node first saw the version, not from issuedAt: a signer clock far ahead cannot skip it', () => {
    const skewed = { ...v2, issuedAt: NOW + 365 * 86_400_000 };
    expect(decideRollout(input({ newest: skewed, now: NOW + 5 * MIN, health: [ok(1), ok(2)] }))).toMatchObject({ kind: 'hold', why: 'waiting' });
  });

  it('a peer status claiming a far-future time changes nothing: only this node\'s clock counts', () => {
    // Health rows carry no time at all: the port cannot move this node's timer.
    expect(decideRollout(input({ now: NOW + 9 * MIN, health: [ok(1), ok(2)] }))).toMatchObject({ kind: 'hold', why: 'waiting' });
  });

  it('a node with no previous version enforces the new one at once (fresh)', () => {
    expect(decideRollout(input({ enforcing: null, now: NOW }))).toMatchObject({ kind: 'enforce', why: 'fresh' });
  });

  it('a node the version it enforces did not list (newly added) enforces the new one at once', () => {
    expect(decideRollout(input({ enforcing: policy(1, { nodes: nodes.slice(0, 2) }), now: NOW }))).toMatchObject({ kind: 'enforce', why: 'fresh' });
  });

  it('a node the newest version removes enforces it at once (a rollout never delays a revocation)', () => {
    expect(decideRollout(input({ self: PEER(9), now: NOW }))).toMatchObject({ kind: 'enforce', why: 'revoked' });
  });

  it('a superseding version without a rollout is enforced at once, even over a halted one', () => {
    expect(decideRollout(input({ newest: policy(3, { nodes }), now: NOW, halted: { failed: PEER(1), reason: 'x' } }))).toMatchObject({ kind: 'enforce', why: 'no-rollout' });
  });

  it('a superseding version with its own rollout starts its own clock and ignores the halted one\'s failures', () => {
    const v3 = { ...v2, version: 3 };
    const health = [ok(1, { policyVersion: 3, digest: 'd3'.repeat(32) }), ok(2, { enforcement: 'failed' })];
    expect(decideRollout(input({ newest: v3, digest: 'd3'.repeat(32), firstSeen: NOW + 30 * MIN, now: NOW + 35 * MIN, health }))).toMatchObject({ kind: 'hold', why: 'waiting' });
    expect(decideRollout(input({ newest: v3, digest: 'd3'.repeat(32), firstSeen: NOW + 30 * MIN, now: NOW + 41 * MIN, health }))).toMatchObject({ kind: 'enforce' });
  });
});

describe('staged rollout: what a held node enforces', () => {
  it('drops the nodes the newest version removed (their addresses leave every set)', () => {
    const v3 = policy(3, { nodes: nodes.filter((n) => n.name !== 'web-4'), rollout: v2.rollout! });
    const old = policy(2, { nodes, rules: [...v1.rules, { name: 'to-web-4', to: ['node:web-4'], from: ['any'], proto: 'tcp', ports: [{ first: 9000, last: 9000 }] }, { name: 'from-web-4', to: ['any'], from: ['node:web-4', 'role:db'], proto: 'tcp', ports: [{ first: 9001, last: 9001 }] }] });
    const held = heldPolicy(old, v3);
    expect(held.version).toBe(2);
    expect(held.nodes.map((n) => n.name)).not.toContain('web-4');
    expect(held.rules.map((r) => r.name)).not.toContain('to-web-4');
    expect(held.rules.find((r) => r.name === 'from-web-4')?.from).toEqual(['role:db']);
    const rs = compile(held, PEER(3), { now: NOW, meshPorts: [7946], sshFrom: [], sshPort: 22, blocked: [] });
    expect(renderNft(rs)).not.toContain('10.0.0.4');
  });

  it('is the previous version itself when nobody was removed (no needless re-apply)', () => {
    expect(heldPolicy(v1, v2)).toBe(v1);
  });
});
