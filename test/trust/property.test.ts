/** Random bytes and mutated envelopes never crash a decoder and are never accepted. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeEnvelope, encodeEnvelope, parseEnvelopeAny } from '../../src/trust/envelope.js';
import { verifyPolicy, verifyRoot, type TrustedState } from '../../src/trust/verify.js';
import { decodePolicy } from '../../src/policy/model.js';
import { decodeRoot } from '../../src/trust/root.js';
import { keys, NOW, policy, rootDoc, signPolicy, trusted } from '../helpers/trust.js';

const [a, b] = keys(2) as [ReturnType<typeof keys>[0], ReturnType<typeof keys>[0]];
const root = rootDoc([a, b], 2, [a, b], 2);
const state: TrustedState = { root: trusted(root, [a, b]), meshId: 'prod' };
const good = encodeEnvelope(signPolicy(policy(4), [a, b]));

describe('decoders and verifier under random input', () => {
  it('random bytes: no throw, never accepted', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      expect(verifyPolicy(bytes, state, NOW).outcome).not.toBe('accepted');
      expect(verifyRoot(bytes, state.root).outcome).not.toBe('accepted');
      decodePolicy(bytes);
      decodeRoot(bytes);
      parseEnvelopeAny(bytes);
    }), { numRuns: 2000 });
  });

  it('a valid envelope with any byte flipped, dropped or inserted is never accepted unless unchanged in meaning', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(good.length - 1), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(good.length - 1) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(good.length - 1), byte: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
      let bytes = new Uint8Array(good);
      for (const m of muts) {
        if (m.kind === 'flip') bytes[m.at % bytes.length]! ^= 1 << m.bit;
        else if (m.kind === 'cut') bytes = bytes.slice(0, m.at % bytes.length);
        else bytes = new Uint8Array([...bytes.slice(0, m.at), m.byte, ...bytes.slice(m.at)]);
        if (bytes.length === 0) return;
      }
      const v = verifyPolicy(bytes, state, NOW);
      if (v.outcome === 'accepted') {
        // The only acceptable "accepted" is the same signed document (e.g. a flip in an unknown field).
        const d = decodeEnvelope(bytes);
        expect(d.ok && Buffer.from(d.value.payload).equals(Buffer.from(decodeEnvelope(good).ok ? (decodeEnvelope(good) as { ok: true; value: { payload: Uint8Array } }).value.payload : new Uint8Array()))).toBe(true);
      }
    }), { numRuns: 3000 });
  });

  it('random JSON-shaped text never crashes the envelope parser', () => {
    fc.assert(fc.property(fc.json(), (text) => {
      const r = parseEnvelopeAny(Buffer.from(text));
      expect(typeof r.ok).toBe('boolean');
    }), { numRuns: 1000 });
  });
});
