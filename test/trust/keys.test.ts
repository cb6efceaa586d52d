/**
 * Weak Ed25519 keys and malleable signatures. A small-order public key lets anyone "sign"
 * for it (node:crypto/OpenSSL accepts R = identity, S = 0 under the identity key for every
 * message); non-canonical encodings give one key several ids. Each case is an attack.
 * @noble/curves is the independent oracle: its strict RFC 8032 decoder and isSmallOrder().
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { keyIdOf, parsePublicKey, publicKeyProblem, signatureProblem, signBytes, verifyBytes, type PublicKey } from '../../src/trust/keys.js';
import { checkRoot, decodeRoot, encodeRoot, type RootDoc } from '../../src/trust/root.js';
import { encodeEnvelope, pae, PAYLOAD_TYPE, type Envelope } from '../../src/trust/envelope.js';
import { trustPinnedRoot, verifyPolicy } from '../../src/trust/verify.js';
import { encodePolicy } from '../../src/policy/model.js';
import { verifyAsNode } from '../../src/trust/node-sign.js';
import { InputError } from '../../src/errors.js';
import { keys, NOW, policy, rootDoc, signRoot, trusted } from '../helpers/trust.js';

const [a] = keys(1) as [ReturnType<typeof keys>[0]];
const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const le = (n: bigint, signBit = false): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0, x = n; i < 32; i++, x >>= 8n) out[i] = Number(x & 0xffn);
  if (signBit) out[31]! |= 0x80;
  return out;
};
const IDENTITY = le(1n);
const pub = (raw: Uint8Array): PublicKey => ({ keyId: keyIdOf(raw), publicKey: raw });

/** Every encoding that decodes (in some implementation) to a point of order 1, 2, 4 or 8. */
const SMALL_ORDER = [
  ...ED25519_TORSION_SUBGROUP.map((h) => ({ name: `torsion point ${h.slice(0, 8)}…${h.slice(-2)}`, raw: hex(h) })),
  { name: 'identity with the sign bit set (x = -0)', raw: le(1n, true) },
  { name: 'order-2 point with the sign bit set (x = -0)', raw: le(P - 1n, true) },
  { name: 'identity as y = p + 1 (non-canonical)', raw: le(P + 1n) },
  { name: 'order-4 point as y = p (non-canonical)', raw: le(P) },
];

/** A root whose policy role is one weak key (the attacker's), self-signed by an honest root key. */
function rootWithPolicyKey(weak: Uint8Array): RootDoc {
  const doc = rootDoc([a], 1, [a], 1);
  return { ...doc, keys: [...doc.keys, pub(weak)], roles: { ...doc.roles, policy: { keyIds: [keyIdOf(weak)], threshold: 1 } } };
}

/** A "signature" nobody made: R = identity, S = 0. It satisfies [S]B = R + [k]A when A is the identity. */
function forged(payloadType: string, payload: Uint8Array, keyId: string): Envelope {
  return { payloadType, payload, signatures: [{ keyId, sig: new Uint8Array([...IDENTITY, ...new Uint8Array(32)]) }] };
}

describe('weak Ed25519 public keys', () => {
  it('rejects a policy "signed" by anyone for a root whose policy key is the identity point', () => {
    // The trusted state is built directly (as if an older decoder had let the root in): the
    // signature check itself must refuse the weak key, not only the root decoder.
    const root = rootWithPolicyKey(IDENTITY);
    const env = forged(PAYLOAD_TYPE.policy, encodePolicy(policy(9)), keyIdOf(IDENTITY));
    const v = verifyPolicy(encodeEnvelope(env), { root: trusted(root, [a]), meshId: 'prod' }, NOW);
    expect(v.outcome, 'reason' in v ? v.reason : '').toBe('bad-signature');
  });

  for (const k of SMALL_ORDER) {
    it(`rejects a pinned root listing a small-order key: ${k.name}`, () => {
      const doc = rootWithPolicyKey(k.raw);
      expect(checkRoot(doc)).toMatch(/small-order|non-canonical/);
      expect(trustPinnedRoot(signRoot(doc, [a]))).toMatchObject({ outcome: 'malformed' });
      expect(decodeRoot(encodeRoot(doc))).toMatchObject({ outcome: 'malformed' });
    });
  }

  it('rejects every non-canonical encoding (y >= p, either sign)', () => {
    for (let y = P; y < 1n << 255n; y++) {
      for (const sign of [false, true]) expect(publicKeyProblem(le(y, sign)), `y = p + ${y - P}`).toMatch(/non-canonical/);
    }
  });

  it('rejects a key that is not a point on the curve', () => {
    let offCurve: Uint8Array | undefined;
    for (let y = 2n; !offCurve; y++) {
      try { ed25519.Point.fromBytes(le(y)); } catch { offCurve = le(y); }
    }
    expect(publicKeyProblem(offCurve)).toMatch(/not a point/);
    expect(checkRoot(rootWithPolicyKey(offCurve))).toMatch(/not a point/);
  });

  it('agrees with a strict RFC 8032 decoder on random encodings and on every small-order one', () => {
    const samples = [...SMALL_ORDER.map((k) => k.raw), ...Array.from({ length: 2000 }, () => new Uint8Array(randomBytes(32)))];
    let good = 0;
    for (const raw of samples) {
      let oracle = true;
      try { oracle = !ed25519.Point.fromBytes(raw).isSmallOrder(); } catch { oracle = false; }
      expect(publicKeyProblem(raw) === undefined, Buffer.from(raw).toString('hex')).toBe(oracle);
      if (oracle) good++;
    }
    expect(good).toBeGreaterThan(500); // about half of random strings are points: the check is not refusing everything
  });

  it('accepts ordinary generated keys', () => {
    for (const k of keys(50)) expect(publicKeyProblem(k.publicKey)).toBeUndefined();
  });

  it('refuses a PEM public key file that holds the identity point (admin key files)', () => {
    const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), IDENTITY]);
    const pem = `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`;
    expect(() => parsePublicKey(pem, 'weak.pub')).toThrow(InputError);
    expect(() => parsePublicKey(pem, 'weak.pub')).toThrow(/weak\.pub: .*small-order/);
  });

  it('refuses a node status "signed" under a PeerId whose key is the identity point', async () => {
    const peerId = peerIdFromPublicKey(publicKeyFromRaw(IDENTITY)).toString();
    const sig = new Uint8Array([...IDENTITY, ...new Uint8Array(32)]);
    expect(await verifyAsNode(peerId, new TextEncoder().encode('picket-status-v1'), new Uint8Array([1, 2, 3]), sig)).toBe(false);
  });
});

describe('non-canonical signatures', () => {
  const message = pae(PAYLOAD_TYPE.policy, new Uint8Array([1, 2, 3]));
  const good = signBytes(a, message);
  const withS = (s: bigint) => new Uint8Array([...good.subarray(0, 32), ...le(s)]);
  const sOf = (sig: Uint8Array) => sig.subarray(32).reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);

  it('accepts an honest signature', () => {
    expect(signatureProblem(good)).toBeUndefined();
    expect(verifyBytes(a.publicKey, message, good)).toBe(true);
  });

  it('rejects a signature whose S is not reduced (S + L: the same signature, another byte string)', () => {
    // OpenSSL refuses it too; the explicit check keeps that true whatever verifies underneath.
    const malleated = new Uint8Array([...good.subarray(0, 32), ...le(sOf(good) + L)]); // S + L < 2L < 2^254: still 32 bytes
    expect(signatureProblem(malleated)).toMatch(/S is not reduced/);
    expect(verifyBytes(a.publicKey, message, malleated)).toBe(false);
    expect(signatureProblem(withS(L))).toMatch(/S is not reduced/);
    expect(signatureProblem(withS(L - 1n))).toBeUndefined();
  });

  for (const k of SMALL_ORDER) {
    it(`rejects a signature whose R is small-order or non-canonical: ${k.name}`, () => {
      expect(signatureProblem(new Uint8Array([...k.raw, ...good.subarray(32)]))).toMatch(/small-order|non-canonical/);
    });
  }

  it('rejects a signature whose R is a non-canonical encoding (y >= p)', () => {
    expect(signatureProblem(new Uint8Array([...le(P + 5n), ...good.subarray(32)]))).toMatch(/non-canonical/);
  });
});
