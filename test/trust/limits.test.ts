/** Every decoder limit, exceeded once: peer input is bounded before it is trusted. */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/wire/limits.js';
import { decodeEnvelope, encodeEnvelope, parseEnvelopeJson, PAYLOAD_TYPE, signEnvelope, envelopeToText } from '../../src/trust/envelope.js';
import { decodePolicy, encodePolicy, type Policy } from '../../src/policy/model.js';
import { checkRoot, decodeRoot, encodeRoot } from '../../src/trust/root.js';
import { trustPinnedRoot, verifyPolicy } from '../../src/trust/verify.js';
import { pb } from '../../src/wire/proto.js';
import { keys, NOW, PEER, policy, rootDoc, signRoot, trusted } from '../helpers/trust.js';

const [k] = keys(1) as [ReturnType<typeof keys>[0]];
const rule = (i: number) => ({ name: `r${i}`, to: ['any'], from: ['any'], proto: 'tcp' as const, ports: [{ first: 1 + (i % 60000), last: 1 + (i % 60000) }] });

describe('envelope limits', () => {
  it('rejects an envelope over maxEnvelopeBytes as too-large', () => {
    const r = decodeEnvelope(new Uint8Array(LIMITS.maxEnvelopeBytes + 1));
    expect(r).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects an envelope file over maxEnvelopeJsonBytes as too-large', () => {
    expect(parseEnvelopeJson(new Uint8Array(LIMITS.maxEnvelopeJsonBytes + 1))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects more than maxSignatures signatures', () => {
    const env = signEnvelope(PAYLOAD_TYPE.policy, new Uint8Array([1]), [k]);
    const many = { ...env, signatures: Array.from({ length: LIMITS.maxSignatures + 1 }, () => env.signatures[0]!) };
    expect(decodeEnvelope(encodeEnvelope(many))).toMatchObject({ ok: false, outcome: 'too-large' });
    expect(parseEnvelopeJson(Buffer.from(envelopeToText(many)))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects a payload type longer than maxPayloadTypeLength', () => {
    const env = signEnvelope('x'.repeat(LIMITS.maxPayloadTypeLength + 1), new Uint8Array([1]), [k]);
    expect(decodeEnvelope(encodeEnvelope(env))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects an over-long key id and an over-long signature', () => {
    const env = signEnvelope(PAYLOAD_TYPE.policy, new Uint8Array([1]), [k]);
    const longId = { ...env, signatures: [{ keyId: 'a'.repeat(LIMITS.maxKeyIdLength + 1), sig: env.signatures[0]!.sig }] };
    expect(decodeEnvelope(encodeEnvelope(longId))).toMatchObject({ ok: false, outcome: 'too-large' });
    const longSig = { ...env, signatures: [{ keyId: k.keyId, sig: new Uint8Array(LIMITS.maxSignatureBytes + 1) }] };
    expect(decodeEnvelope(encodeEnvelope(longSig))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
});

describe('policy limits', () => {
  const raw = (p: Partial<pb.policy.v1.IPolicy>) => pb.policy.v1.Policy.encode({ meshId: 'prod', version: 1, issuedAtMs: 1, expiresMs: 2, ...p }).finish();
  it('rejects more than maxNodes nodes', () => {
    const nodes = Array.from({ length: LIMITS.maxNodes + 1 }, (_, i) => ({ name: `n${i}` }));
    expect(decodePolicy(raw({ nodes }))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects more than maxRules rules', () => {
    const rules = Array.from({ length: LIMITS.maxRules + 1 }, () => ({ name: 'r' }));
    expect(decodePolicy(raw({ rules }))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects more than maxExceptions exceptions', () => {
    const exceptions = Array.from({ length: LIMITS.maxExceptions + 1 }, () => ({ reason: 'x' }));
    expect(decodePolicy(raw({ exceptions }))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects a string longer than maxStringLength', () => {
    expect(decodePolicy(raw({ meshId: 'm'.repeat(LIMITS.maxStringLength + 1) }))).toMatchObject({ ok: false, outcome: 'too-large' });
    expect(decodePolicy(raw({ nodes: [{ name: 'n', peerId: 'p'.repeat(LIMITS.maxStringLength + 1) }] }))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects an exception reason longer than maxReasonLength', () => {
    expect(decodePolicy(raw({ exceptions: [{ reason: 'r'.repeat(LIMITS.maxReasonLength + 1) }] }))).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  const checked = (p: Policy) => decodePolicy(encodePolicy(p));
  it('rejects more than maxAddressesPerNode addresses on a node', () => {
    const addresses = Array.from({ length: LIMITS.maxAddressesPerNode + 1 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    expect(checked(policy(1, { nodes: [{ name: 'a', peerId: PEER(1), addresses, roles: ['web'] }, { name: 'db', peerId: PEER(2), addresses: [], roles: ['db'] }] }))).toMatchObject({ ok: false });
  });
  it('rejects more than maxRolesPerNode roles on a node', () => {
    const roles = Array.from({ length: LIMITS.maxRolesPerNode + 1 }, (_, i) => `r${i}`);
    expect(checked(policy(1, { nodes: [{ name: 'a', peerId: PEER(1), addresses: [], roles: [...roles, 'web', 'db'] }] }))).toMatchObject({ ok: false });
  });
  it('rejects more than maxSelectorsPerRule sources and maxPortRangesPerRule ports', () => {
    const from = Array.from({ length: LIMITS.maxSelectorsPerRule + 1 }, (_, i) => `cidr:10.${i}.0.0/16`);
    expect(checked(policy(1, { rules: [{ ...rule(1), from }] }))).toMatchObject({ ok: false });
    const ports = Array.from({ length: LIMITS.maxPortRangesPerRule + 1 }, (_, i) => ({ first: i + 1, last: i + 1 }));
    expect(checked(policy(1, { rules: [{ ...rule(1), ports }] }))).toMatchObject({ ok: false });
  });
  it('accepts a policy at the rule limit (10k-rule policies are supported)', () => {
    const rules = Array.from({ length: 10_000 }, (_, i) => rule(i));
    const r = checked(policy(1, { rules }));
    expect(r.ok).toBe(true);
  });
});

describe('root limits', () => {
  it('rejects more than maxRootKeys keys', () => {
    const bytes = pb.root.v1.Root.encode({ version: 1, expiresMs: 5, keys: Array.from({ length: LIMITS.maxRootKeys + 1 }, () => ({ keyId: 'x' })) }).finish();
    expect(decodeRoot(bytes)).toMatchObject({ ok: false, outcome: 'too-large' });
  });
  it('rejects a root whose key id does not match its public key', () => {
    const doc = rootDoc([k], 1, [k], 1);
    const bad = { ...doc, keys: [{ keyId: 'f'.repeat(64), publicKey: k.publicKey }], roles: { root: { keyIds: ['f'.repeat(64)], threshold: 1 }, policy: { keyIds: ['f'.repeat(64)], threshold: 1 } } };
    expect(decodeRoot(encodeRoot(bad))).toMatchObject({ ok: false, outcome: 'malformed' });
  });
  it('rejects a threshold larger than its role', () => {
    const doc = rootDoc([k], 2, [k], 1);
    expect(decodeRoot(encodeRoot(doc))).toMatchObject({ ok: false, outcome: 'malformed' });
  });
  it('rejects a key label longer than maxKeyLabelLength, or holding anything but [A-Za-z0-9._@+:-]; accepts one at the limit', () => {
    const doc = rootDoc([k], 1, [k], 1);
    const withLabel = (label: string) => decodeRoot(encodeRoot({ ...doc, keys: doc.keys.map((x) => ({ ...x, label })) }));
    const atLimit = withLabel('a'.repeat(LIMITS.maxKeyLabelLength));
    expect(atLimit.ok && atLimit.root.keys[0]!.label).toBe('a'.repeat(LIMITS.maxKeyLabelLength));
    expect(withLabel('a'.repeat(LIMITS.maxKeyLabelLength + 1))).toMatchObject({ ok: false, outcome: 'malformed' });
    for (const bad of ['\x1b[31mops', 'ops\u202e', 'оps' /* Cyrillic o */, ' ops', 'a b', 'ops\n', '-ops']) {
      expect(withLabel(bad), JSON.stringify(bad)).toMatchObject({ ok: false, outcome: 'malformed' });
    }
  });
});

describe('time limits: every stated instant lies in years 2000–9999', () => {
  // 2^53 - 1 ms is a safe integer that Date cannot print (toISOString throws past year 275760):
  // before this limit it passed every decoder and then crashed status, verify and show.
  const FAR = Number.MAX_SAFE_INTEGER;
  const at = (y: number) => Date.UTC(y, 0, 1);
  const [signer] = keys(1) as [ReturnType<typeof keys>[0]];
  it('names the bounds in LIMITS', () => {
    expect(new Date(LIMITS.minTimeMs).toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect(new Date(LIMITS.maxTimeMs).toISOString()).toBe('9999-12-31T23:59:59.999Z');
  });
  for (const [field, over] of [
    ['expires', (ms: number) => ({ expires: ms })],
    ['issuedAt', (ms: number) => ({ issuedAt: ms })],
    ['exceptions[0].expires', (ms: number) => ({ exceptions: [{ name: 'e', to: ['any'], from: ['any'], proto: 'tcp' as const, ports: [{ first: 1, last: 1 }], reason: 'r', expires: ms }] })],
  ] as const) {
    it(`refuses a policy whose ${field} is 2^53 - 1 ms, or before 2000, at decode and at verify`, () => {
      for (const ms of [FAR, LIMITS.maxTimeMs + 1, at(1999), 1]) {
        const p = policy(5, over(ms));
        const r = decodePolicy(encodePolicy(p));
        expect(r, `${field} = ${ms}`).toMatchObject({ ok: false, outcome: 'malformed' });
        if (!r.ok) expect(r.reason).toMatch(new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}: .*outside years 2000–9999`));
        const v = verifyPolicy(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(p), [signer]), { root: trusted(rootDoc([signer], 1, [signer], 1), [signer]) }, NOW);
        expect(v.outcome).toBe('malformed');
      }
      expect(decodePolicy(encodePolicy(policy(5, over(NOW)))).ok).toBe(true);
    });
  }
  it('refuses a root whose expires is 2^53 - 1 ms, or before 2000, at decode and as a pinned root', () => {
    for (const ms of [FAR, LIMITS.maxTimeMs + 1, at(1999)]) {
      const doc = { ...rootDoc([signer], 1, [signer], 1), expires: ms };
      expect(checkRoot(doc)).toMatch(/expires: .*outside years 2000–9999/);
      expect(decodeRoot(encodeRoot(doc))).toMatchObject({ ok: false, outcome: 'malformed' });
      expect(trustPinnedRoot(signRoot(doc, [signer]))).toMatchObject({ outcome: 'malformed' });
    }
    expect(checkRoot({ ...rootDoc([signer], 1, [signer], 1), expires: LIMITS.maxTimeMs })).toBeUndefined();
  });
});
