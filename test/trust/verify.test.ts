import { describe, expect, it } from 'vitest';
import { verifyPolicy, verifyRoot, verifyRootChain, trustPinnedRoot, type TrustedState } from '../../src/trust/verify.js';
import { digestOf, encodeEnvelope, PAYLOAD_TYPE, signEnvelope, type Envelope } from '../../src/trust/envelope.js';
import { encodePolicy } from '../../src/policy/model.js';
import { DAY, keys, NOW, policy, rootDoc, signPolicy, signRoot, trusted } from '../helpers/trust.js';

const [a, b, c, outsider] = keys(4) as [ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0]];
const root1 = rootDoc([a, b], 2, [a, b, c], 2);
const state: TrustedState = { root: trusted(root1, [a, b]), meshId: 'prod' };

function tamper(env: Envelope): Envelope {
  const payload = new Uint8Array(env.payload);
  payload[payload.length - 1]! ^= 0x01;
  return { ...env, payload };
}

describe('verifyPolicy: attacks and outcomes', () => {
  const v5 = signPolicy(policy(5), [a, b]);
  const v5digest = digestOf(v5);
  const cases: { name: string; env: Envelope | Uint8Array; state?: TrustedState; now?: number; outcome: string }[] = [
    { name: 'accepts a policy signed by a threshold of distinct policy keys', env: v5, outcome: 'accepted' },
    { name: 'accepts any threshold subset (b + c)', env: signPolicy(policy(5), [b, c]), outcome: 'accepted' },
    { name: 'rejects a policy signed below threshold', env: signPolicy(policy(5), [a]), outcome: 'below-threshold' },
    { name: 'rejects one key signing twice to fake a threshold', env: { ...signPolicy(policy(5), [a]), signatures: [...signPolicy(policy(5), [a]).signatures, ...signPolicy(policy(5), [a]).signatures] }, outcome: 'below-threshold' },
    { name: 'rejects signatures by unknown keys', env: signPolicy(policy(5), [outsider, a]), outcome: 'below-threshold' },
    { name: 'rejects a tampered payload', env: tamper(v5), outcome: 'bad-signature' },
    { name: 'rejects a signature moved onto other content', env: { ...signPolicy(policy(6), [a, b]), signatures: v5.signatures }, outcome: 'bad-signature' },
    { name: 'rejects a root presented as a policy (wrong payload type)', env: signRoot(root1, [a, b]), outcome: 'malformed' },
    { name: 'rejects a policy relabelled with another payload type', env: { ...v5, payloadType: PAYLOAD_TYPE.root }, outcome: 'malformed' },
    { name: 'rejects a policy for another mesh', env: signPolicy(policy(5, { meshId: 'staging' }), [a, b]), outcome: 'wrong-mesh' },
    { name: 'rejects an expired policy', env: signPolicy(policy(5, { expires: NOW - 1 }), [a, b]), outcome: 'expired' },
    { name: 'reports a lower version as stale (rollback)', env: signPolicy(policy(4), [a, b]), state: { ...state, policy: { version: 5, digest: v5digest } }, outcome: 'stale' },
    { name: 'reports the same version and digest as duplicate', env: v5, state: { ...state, policy: { version: 5, digest: v5digest } }, outcome: 'duplicate' },
    { name: 'reports the same document with extra signatures as duplicate', env: signPolicy(policy(5), [a, b, c]), state: { ...state, policy: { version: 5, digest: v5digest } }, outcome: 'duplicate' },
    { name: 'detects equivocation: same version, other content', env: signPolicy(policy(5, { rules: [] }), [a, b]), state: { ...state, policy: { version: 5, digest: v5digest } }, outcome: 'equivocation' },
    { name: 'reports an old replay as stale even when it has expired', env: signPolicy(policy(2, { issuedAt: NOW - 3 * DAY, expires: NOW - DAY }), [a, b]), state: { ...state, policy: { version: 5, digest: v5digest } }, outcome: 'stale' },
    { name: 'rejects random bytes', env: new Uint8Array([1, 2, 3, 4, 250, 251]), outcome: 'malformed' },
    { name: 'rejects an empty message', env: new Uint8Array(), outcome: 'malformed' },
    { name: 'rejects a validly signed payload that is not a policy', env: signEnvelope(PAYLOAD_TYPE.policy, new Uint8Array([0x0a, 0x02, 0xff, 0xfe, 0x10]), [a, b]), outcome: 'malformed' },
    { name: 'rejects a signed policy that fails semantic checks', env: signPolicy(policy(5, { rules: [{ name: 'x', to: ['role:nope'], from: ['any'], proto: 'tcp', ports: [{ first: 1, last: 1 }] }] }), [a, b]), outcome: 'malformed' },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const v = verifyPolicy(t.env instanceof Uint8Array ? t.env : encodeEnvelope(t.env), t.state ?? state, t.now ?? NOW);
      expect(v.outcome, 'reason' in v ? v.reason : '').toBe(t.outcome);
    });
  }

  it('returns the decoded policy and digest when accepted', () => {
    const v = verifyPolicy(v5, state, NOW);
    expect(v.outcome).toBe('accepted');
    if (v.outcome === 'accepted') {
      expect(v.policy.version).toBe(5);
      expect(v.digest).toBe(v5digest);
    }
  });

  it('does not count a policy key signature toward a different role (root keys are not policy keys)', () => {
    const r = rootDoc([a], 1, [c], 1);
    const v = verifyPolicy(signPolicy(policy(1), [a]), { root: trusted(r, [a]) }, NOW);
    expect(v.outcome).toBe('below-threshold');
  });
});

describe('verifyRoot: rotation', () => {
  const [d, e] = keys(2) as [typeof a, typeof a];
  const root2 = rootDoc([d, e], 2, [c], 1, 2);

  it('accepts root N+1 signed by a threshold of the old root keys and of its own', () => {
    expect(verifyRoot(signRoot(root2, [a, b, d, e]), state.root).outcome).toBe('accepted');
  });
  it('rejects root N+1 signed only by the new keys (a stolen-key takeover)', () => {
    expect(verifyRoot(signRoot(root2, [d, e]), state.root).outcome).toBe('below-threshold');
  });
  it('rejects root N+1 signed only by the old keys (new keys never proved possession)', () => {
    expect(verifyRoot(signRoot(root2, [a, b]), state.root).outcome).toBe('below-threshold');
  });
  it('rejects a version jump (roots go up by exactly one)', () => {
    const root3 = rootDoc([d, e], 2, [c], 1, 3);
    expect(verifyRoot(signRoot(root3, [a, b, d, e]), state.root).outcome).toBe('gap');
  });
  it('rejects a rollback to an older root', () => {
    const t2 = { root: root2, digest: digestOf(signRoot(root2, [a, b, d, e])) };
    expect(verifyRoot(signRoot(root1, [a, b]), t2).outcome).toBe('stale');
  });
  it('detects a second, different root with the same version', () => {
    const other = rootDoc([a, b], 2, [a], 1, 1);
    expect(verifyRoot(signRoot(other, [a, b]), state.root).outcome).toBe('equivocation');
  });
  it('accepts a newer root even if it has expired (TUF: only the newest root\'s expiry matters), and walks through expired intermediate roots', () => {
    const r2 = rootDoc([d, e], 2, [c], 1, 2, NOW - DAY);
    const [f] = keys(1) as [typeof a];
    const r3 = rootDoc([f], 1, [c], 1, 3, NOW + DAY);
    expect(verifyRoot(signRoot(r2, [a, b, d, e]), state.root).outcome).toBe('accepted');
    const chain = verifyRootChain([signRoot(r2, [a, b, d, e]), signRoot(r3, [d, e, f])], state.root);
    expect(chain.ok).toBe(true);
    if (chain.ok) expect(chain.trusted.root.version).toBe(3);
  });
  it('a policy signed under a rotated-out key is rejected after rotation', () => {
    const chain = verifyRootChain([signRoot(root2, [a, b, d, e])], state.root);
    expect(chain.ok).toBe(true);
    if (!chain.ok) return;
    expect(verifyPolicy(signPolicy(policy(9), [a, b]), { root: chain.trusted }, NOW).outcome).toBe('below-threshold');
    expect(verifyPolicy(signPolicy(policy(9), [c]), { root: chain.trusted }, NOW).outcome).toBe('accepted');
  });
  it('trusts a pinned root only when it is self-signed by its root threshold', () => {
    expect('ok' in trustPinnedRoot(signRoot(root1, [a, b]))).toBe(true);
    expect(trustPinnedRoot(signRoot(root1, [a]))).toMatchObject({ outcome: 'below-threshold' });
    expect(trustPinnedRoot(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(policy(1)), [a, b]))).toMatchObject({ outcome: 'malformed' });
  });
});
