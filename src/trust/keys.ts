/**
 * Admin signing keys (Ed25519 through node:crypto) and libp2p node identities.
 * Key id = hex SHA-256 of the raw 32-byte public key, so it never depends on file format.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { InputError } from '../errors.js';

export interface SigningKey {
  keyId: string;
  publicKey: Uint8Array; // raw 32 bytes
  privateKey: KeyObject;
}

export interface PublicKey {
  keyId: string;
  publicKey: Uint8Array;
}

export function keyIdOf(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex');
}

function rawPublic(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new InputError('not an Ed25519 key');
  }
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublic(publicKey);
  return { keyId: keyIdOf(raw), publicKey: raw, privateKey };
}

export function privateKeyPem(key: SigningKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function publicKeyPem(raw: Uint8Array): string {
  return publicKeyObject(raw).export({ format: 'pem', type: 'spki' }).toString();
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** Parses a PEM private key (PKCS#8). `what` names the source in errors. */
export function parseSigningKey(pem: string, what: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new InputError(`${what}: not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new InputError(`${what}: not an Ed25519 private key`);
  const raw = rawPublic(createPublicKey(privateKey));
  return { keyId: keyIdOf(raw), publicKey: raw, privateKey };
}

/** Parses a PEM public key (SPKI) or, for convenience, a private key (its public half). */
export function parsePublicKey(pem: string, what: string): PublicKey {
  let key: KeyObject;
  try {
    key = pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new InputError(`${what}: not a PEM Ed25519 key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new InputError(`${what}: not an Ed25519 key`);
  const raw = rawPublic(key);
  return { keyId: keyIdOf(raw), publicKey: raw };
}

export function signBytes(key: SigningKey, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key.privateKey));
}

// Public keys are parsed once per distinct key: verification is on the hot path of gossip.
const publicKeyCache = new Map<string, KeyObject>();

export function verifyBytes(rawPublicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (rawPublicKey.length !== 32 || signature.length !== 64) return false;
  const cacheKey = Buffer.from(rawPublicKey).toString('hex');
  let key = publicKeyCache.get(cacheKey);
  if (!key) {
    try {
      key = publicKeyObject(rawPublicKey);
    } catch {
      return false;
    }
    if (publicKeyCache.size > 1024) publicKeyCache.clear();
    publicKeyCache.set(cacheKey, key);
  }
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
