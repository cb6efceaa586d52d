/**
 * What signatures may cost. Each Ed25519 verify hashes the whole message (~12 ms for a 4 MiB
 * envelope), so a peer must not be able to buy 32 of them per message: at most one per
 * distinct allowed key id, and none once the threshold is reached or out of reach.
 * `checked` (signatures verified) is asserted: it is the cost, independent of machine speed.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { countSignatures, describeCount, validSigners } from '../../src/trust/root.js';
import { encodeEnvelope, type Envelope, type Signature } from '../../src/trust/envelope.js';
import { verifyPolicy } from '../../src/trust/verify.js';
import { keys, NOW, policy, rootDoc, signPolicy, trusted } from '../helpers/trust.js';

const [a, b, c, d] = keys(4) as [ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0]];
/** Random R and S < 2^252: well-formed, canonical, and false. */
const bogus = (keyId: string): Signature => ({ keyId, sig: new Uint8Array(randomBytes(64)).map((x, i) => (i === 63 ? x & 0x0f : x)) });
const honest = (env: Envelope, keyId: string): Signature => env.signatures.find((s) => s.keyId === keyId)!;
const withSigs = (env: Envelope, signatures: Signature[]): Envelope => ({ ...env, signatures });

describe('countSignatures: bounded verification cost', () => {
  const signed = signPolicy(policy(5), [a, b, c, d]);

  it('verifies 32 bogus signatures under one allowed key id only once', () => {
    const role = { keyIds: [a.keyId, b.keyId], threshold: 1 };
    const count = countSignatures(withSigs(signed, Array.from({ length: 32 }, () => bogus(a.keyId))), role, rootDoc([a], 1, [a, b], 1).keys);
    expect(count).toMatchObject({ valid: 0, invalid: 1, checked: 1 });
  });

  it('tries only the first signature under a key id: a valid one after a bogus one is not tried', () => {
    const root = rootDoc([a], 1, [a, b], 1);
    const env = withSigs(signed, [bogus(a.keyId), honest(signed, a.keyId)]);
    expect(countSignatures(env, root.roles.policy, root.keys)).toMatchObject({ valid: 0, checked: 1 });
    expect(verifyPolicy(encodeEnvelope(env), { root: trusted(root, [a]) }, NOW).outcome).toBe('bad-signature');
  });

  it('stops as soon as the threshold is reached', () => {
    const root = rootDoc([a], 1, [a, b, c, d], 2);
    expect(countSignatures(signed, root.roles.policy, root.keys)).toMatchObject({ valid: 2, checked: 2 });
  });

  it('stops as soon as the threshold is out of reach', () => {
    const root = rootDoc([a], 1, [a, b, c], 3);
    const env = withSigs(signed, [bogus(a.keyId), honest(signed, b.keyId), honest(signed, c.keyId)]);
    expect(countSignatures(env, root.roles.policy, root.keys)).toMatchObject({ valid: 0, invalid: 1, checked: 1 });
    expect(verifyPolicy(encodeEnvelope(env), { root: trusted(root, [a]) }, NOW).outcome).toBe('bad-signature');
  });

  it('verifies nothing when fewer role keys signed than the threshold', () => {
    const root = rootDoc([a], 1, [a, b, c], 3);
    const env = withSigs(signed, [bogus(a.keyId), honest(signed, b.keyId)]);
    expect(countSignatures(env, root.roles.policy, root.keys)).toMatchObject({ valid: 0, checked: 0 });
    expect(verifyPolicy(encodeEnvelope(env), { root: trusted(root, [a]) }, NOW).outcome).toBe('below-threshold');
  });

  it('says how many role keys signed when too few did to reach the threshold', () => {
    const root = rootDoc([a], 1, [a, b, c], 3);
    const count = countSignatures(withSigs(signed, [honest(signed, a.keyId), honest(signed, b.keyId)]), root.roles.policy, root.keys);
    expect(describeCount(count, 'policy')).toBe('2 of 3 required policy signatures');
  });

  it('exhaustive counting (who has signed so far, for policy sign) still verifies each key id once', () => {
    const root = rootDoc([a], 1, [a, b, c], 3);
    const env = withSigs(signed, [honest(signed, a.keyId), bogus(a.keyId), bogus(b.keyId), bogus(b.keyId)]);
    expect(countSignatures(env, root.roles.policy, root.keys, { exhaustive: true })).toMatchObject({ valid: 1, invalid: 1, checked: 2 });
  });

  it('never verifies signatures by keys outside the role', () => {
    const root = rootDoc([a], 1, [a], 1);
    const env = withSigs(signed, [honest(signed, b.keyId), honest(signed, c.keyId), honest(signed, a.keyId)]);
    expect(countSignatures(env, root.roles.policy, root.keys)).toMatchObject({ valid: 1, unknown: 2, checked: 1 });
  });

  it('costs at most (distinct allowed key ids) verifications whatever the signatures', () => {
    const root = rootDoc([a], 1, [a, b, c, d], 2);
    for (let trial = 0; trial < 50; trial++) {
      const pool = [a, b, c, d];
      const sigs = Array.from({ length: 1 + (trial % 32) }, (_, i) => {
        const k = pool[(i * 7 + trial) % 4]!;
        return (i + trial) % 3 === 0 ? honest(signed, k.keyId) : bogus(k.keyId);
      });
      const count = countSignatures(withSigs(signed, sigs), root.roles.policy, root.keys);
      expect(count.checked).toBeLessThanOrEqual(new Set(sigs.map((s) => s.keyId)).size);
      expect(count.valid).toBeLessThanOrEqual(root.roles.policy.threshold);
    }
  });
});

describe('the signers an accept records: each signature verified once', () => {
  const signed = signPolicy(policy(5), [a, b, c]);
  const root = rootDoc([a], 1, [a, b, c], 1);

  it('an accepted verdict carries what the threshold count verified', () => {
    const v = verifyPolicy(encodeEnvelope(signed), { root: trusted(root, [a]) }, NOW);
    expect(v.outcome).toBe('accepted');
    if (v.outcome !== 'accepted') return;
    // Threshold 1: one verification decided it, and the verdict says which key and how.
    expect([...v.verified]).toEqual([[a.keyId, true]]);
  });

  it('validSigners does not verify again what the count already verified (the engine re-verified every signature on every accept to name the signers)', () => {
    // a's signature is replaced by a bogus one: verified again, it would fail. Told that a's
    // verified, validSigners takes that answer; b and c are still verified here.
    const env = withSigs(signed, [bogus(a.keyId), honest(signed, b.keyId), honest(signed, c.keyId)]);
    expect(validSigners(env, root.roles.policy, root.keys, new Map([[a.keyId, true]])).map((k) => k.keyId)).toEqual([a.keyId, b.keyId, c.keyId]);
    // A key the count found invalid stays out, even with an honest signature now.
    expect(validSigners(signed, root.roles.policy, root.keys, new Map([[a.keyId, false]])).map((k) => k.keyId)).toEqual([b.keyId, c.keyId]);
    // Without answers, every distinct role key is verified (offline tools).
    expect(validSigners(env, root.roles.policy, root.keys).map((k) => k.keyId)).toEqual([b.keyId, c.keyId]);
  });
});
