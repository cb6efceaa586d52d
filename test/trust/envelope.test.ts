import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, envelopeToText, pae, parseEnvelopeAny, parseEnvelopeJson, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { keys } from '../helpers/trust.js';

const [k] = keys(1) as [ReturnType<typeof keys>[0]];

describe('envelope', () => {
  it('uses the DSSE pre-authentication encoding', () => {
    expect(Buffer.from(pae('t', new TextEncoder().encode('hi'))).toString()).toBe('DSSEv1 1 t 2 hi');
  });
  it('round-trips through protobuf and through JSON', () => {
    const env = signEnvelope(PAYLOAD_TYPE.policy, new Uint8Array([1, 2, 3]), [k]);
    expect(decodeEnvelope(encodeEnvelope(env))).toEqual({ ok: true, outcome: 'decoded', value: env });
    const text = envelopeToText(env);
    expect(JSON.parse(text)).toMatchObject({ payloadType: PAYLOAD_TYPE.policy, payload: 'AQID', signatures: [{ keyId: k.keyId }] });
    expect(parseEnvelopeJson(Buffer.from(text))).toEqual({ ok: true, outcome: 'decoded', value: env });
    expect(parseEnvelopeAny(Buffer.from(text))).toEqual({ ok: true, outcome: 'decoded', value: env });
    expect(parseEnvelopeAny(encodeEnvelope(env))).toEqual({ ok: true, outcome: 'decoded', value: env });
  });
  it('signs with each distinct key once', () => {
    expect(signEnvelope(PAYLOAD_TYPE.policy, new Uint8Array([1]), [k, k]).signatures).toHaveLength(1);
  });
  const bad: [string, string][] = [
    ['malformed JSON', '{"payloadType": '],
    ['a JSON array', '[]'],
    ['a missing payload', '{"payloadType":"x","signatures":[]}'],
    ['non-base64 payload', '{"payloadType":"x","payload":"***","signatures":[]}'],
    ['signatures not a list', '{"payloadType":"x","payload":"AQID","signatures":{}}'],
    ['a signature with a non-hex key id', '{"payloadType":"x","payload":"AQID","signatures":[{"keyId":"zz","sig":"AQID"}]}'],
    ['a short signature', `{"payloadType":"x","payload":"AQID","signatures":[{"keyId":"${'a'.repeat(64)}","sig":"AQID"}]}`],
  ];
  for (const [name, text] of bad) {
    it(`rejects ${name} as malformed`, () => {
      expect(parseEnvelopeJson(Buffer.from(text))).toMatchObject({ ok: false, outcome: 'malformed' });
    });
  }
});
