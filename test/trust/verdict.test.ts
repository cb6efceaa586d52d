/**
 * One result shape: every decoder and verifier of the trust core answers with a tagged union
 * on `outcome` (and a `reason` whenever it is not a success), so callers, logs and metrics
 * switch on one field. Decoders keep `ok` as shorthand.
 */
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, parseEnvelopeAny, parseEnvelopeJson } from '../../src/trust/envelope.js';
import { decodeRoot, encodeRoot } from '../../src/trust/root.js';
import { decodePolicy, encodePolicy } from '../../src/policy/model.js';
import { trustPinnedRoot, verifyPolicy, verifyRoot } from '../../src/trust/verify.js';
import { keys, NOW, policy, rootDoc, signPolicy, signRoot, trusted } from '../helpers/trust.js';

const [a] = keys(1) as [ReturnType<typeof keys>[0]];
const root = rootDoc([a], 1, [a], 1);
const env = signPolicy(policy(3), [a]);
const junk = new Uint8Array([0xff, 0xff, 0xff]);

describe('one result shape for decode and verification', () => {
  it('successes are tagged: decoded (decoders) or accepted (verifiers)', () => {
    expect(decodeEnvelope(encodeEnvelope(env))).toMatchObject({ ok: true, outcome: 'decoded' });
    expect(parseEnvelopeJson(Buffer.from(JSON.stringify({ payloadType: 'x', payload: 'AQID', signatures: [] })))).toMatchObject({ ok: true, outcome: 'decoded' });
    expect(decodeRoot(encodeRoot(root))).toMatchObject({ ok: true, outcome: 'decoded' });
    expect(decodePolicy(encodePolicy(policy(3)))).toMatchObject({ ok: true, outcome: 'decoded' });
    expect(trustPinnedRoot(signRoot(root, [a]))).toMatchObject({ outcome: 'accepted' });
    expect(verifyPolicy(env, { root: trusted(root, [a]) }, NOW)).toMatchObject({ outcome: 'accepted' });
  });
  it('failures carry an outcome and a reason, whatever produced them', () => {
    const failures = [decodeEnvelope(junk), parseEnvelopeAny(junk), decodeRoot(junk), decodePolicy(junk), trustPinnedRoot(junk), verifyPolicy(junk, { root: trusted(root, [a]) }, NOW), verifyRoot(junk, trusted(root, [a]))];
    for (const f of failures) {
      expect(f.outcome).toBe('malformed');
      expect('reason' in f && typeof f.reason === 'string' && f.reason.length > 0).toBe(true);
    }
  });
});
