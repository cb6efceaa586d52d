/**
 * Admin signing keys (Ed25519 through node:crypto) and libp2p node identities.
 * Key id = hex SHA-256 of the raw 32-byte public key, so it never depends on file format.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { InputError } from '../errors.js';
import { LIMITS } from '../wire/limits.js';

export interface SigningKey {
  keyId: string;
  publicKey: Uint8Array; // raw 32 bytes
  privateKey: KeyObject;
  /** From the key file's `picket-label:` line, if it has one. */
  label?: string;
}

export interface PublicKey {
  keyId: string;
  publicKey: Uint8Array;
  /** Who holds the key ("alice@ops"), carried into the root; absent on keys made without one. */
  label?: string;
}

// ---------------------------------------------------------------------------------------
// Key labels. A label is text anyone who reads a root sees printed (root show, policy
// verify): a label holding ESC or a bidi override could rewrite an operator's terminal, and
// one in look-alike Unicode could pass for another admin's. So a label is short plain ASCII
// and a decoder refuses anything else (printers escape it as well).

const LABEL = /^[A-Za-z0-9][A-Za-z0-9._@+:-]*$/;

/** Why `label` is not an acceptable key label, or undefined. */
export function keyLabelProblem(label: string): string | undefined {
  if (label.length === 0) return 'key label is empty';
  if (label.length > LIMITS.maxKeyLabelLength) return `key label is ${label.length} characters (limit ${LIMITS.maxKeyLabelLength})`;
  if (!LABEL.test(label)) return 'key label may hold only letters, digits and . _ @ + : - (starting with a letter or digit)';
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Weak keys and malleable signatures.
//
// node:crypto (OpenSSL 3) checks [S]B = R + [k]A and nothing else. For a small-order A that
// equation is easy to satisfy without any secret: under the identity point (y = 1), R =
// identity and S = 0 verify for every message. A root listing such a key would let anyone
// sign policies. Non-canonical encodings (y >= p) give one point several byte strings, so
// several key ids. Both are refused here, by hand, in one place, before a key is trusted or
// a signature is verified (RFC 8032 §5.1.3 decoding rules, plus small-order refusal as
// libsodium does). Tests cross-check this against @noble/curves' strict decoder.

/** The field prime p = 2^255 - 19. An encoding holds y (255 bits) and the sign of x (top bit). */
const P = (1n << 255n) - 19n;
/** The prime order of the base point: a reduced scalar S satisfies 0 <= S < L. */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** The curve constant d = -121665/121666 mod p. */
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

/**
 * The eight points of small order (1, 2, 4, 8: the torsion subgroup), as 32-byte encodings
 * with both signs of x where x is not 0, plus the two "x = -0" encodings (sign bit set on a
 * point whose x is 0) that lax decoders such as OpenSSL accept. Encodings with y >= p (y = p
 * is the order-4 y = 0, y = p + 1 the identity) are refused by the canonical check instead.
 */
const SMALL_ORDER = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000', // identity, order 1
  '0100000000000000000000000000000000000000000000000000000000000080', //   the same, x = -0
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // (0, -1), order 2
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', //   the same, x = -0
  '0000000000000000000000000000000000000000000000000000000000000000', // (+sqrt(-1), 0), order 4
  '0000000000000000000000000000000000000000000000000000000000000080', // (-sqrt(-1), 0), order 4
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
]);

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function powMod(base: bigint, exp: bigint): bigint {
  let r = 1n, b = base % P, e = exp;
  for (; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
}

/** Why a 32-byte point encoding (a public key or a signature's R) is unacceptable, or undefined. */
function encodingProblem(enc: Uint8Array): string | undefined {
  if (littleEndian(enc) % (1n << 255n) >= P) return 'non-canonical encoding (y >= p)';
  if (SMALL_ORDER.has(Buffer.from(enc).toString('hex'))) return 'small-order point (anyone can sign for it)';
  return undefined;
}

/**
 * Why raw bytes are not an acceptable Ed25519 public key, or undefined when they are: 32
 * bytes, canonical, a point on the curve, not of small order. Cost: one modular exponentiation
 * (~0.3 ms), so callers check a key once (decode time, or the verify cache).
 */
export function publicKeyProblem(raw: Uint8Array): string | undefined {
  if (raw.length !== 32) return `${raw.length} bytes, not a 32-byte Ed25519 public key`;
  const problem = encodingProblem(raw);
  if (problem) return problem;
  // On the curve iff x^2 = (y^2 - 1) / (d y^2 + 1) has a root, i.e. u*v is a square mod p
  // (Euler's criterion; v is never 0 on Ed25519). u = 0 (y = ±1) is in SMALL_ORDER already.
  const y = littleEndian(raw) % (1n << 255n);
  const y2 = (y * y) % P;
  const u = (y2 - 1n + P) % P, v = (D * y2 + 1n) % P;
  if (powMod(u * v, (P - 1n) / 2n) !== 1n) return 'not a point on the Ed25519 curve';
  return undefined;
}

/**
 * Why a 64-byte signature R || S is not in canonical form, or undefined. S >= L is the same
 * signature as S - L written differently (malleability); a small-order or non-canonical R only
 * ever appears in signatures nobody's secret key made. Checked before any verification.
 */
export function signatureProblem(sig: Uint8Array): string | undefined {
  if (sig.length !== 64) return `${sig.length} bytes, not a 64-byte Ed25519 signature`;
  const r = encodingProblem(sig.subarray(0, 32));
  if (r) return `R is a ${r}`;
  if (littleEndian(sig.subarray(32)) >= L) return 'S is not reduced (S >= L): a malleated copy of a signature';
  return undefined;
}

/** Throws one clear InputError when a key read from `what` is weak. */
function assertStrongKey(raw: Uint8Array, what: string): void {
  const problem = publicKeyProblem(raw);
  if (problem) throw new InputError(`${what}: weak Ed25519 public key: ${problem}`);
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
  // A hashed seed never lands on a small-order point in practice; checked so no path skips it.
  assertStrongKey(raw, 'generated key');
  return { keyId: keyIdOf(raw), publicKey: raw, privateKey };
}

/**
 * PKCS#8 PEM of the private key; with a passphrase, standard encrypted PKCS#8 (PBES2,
 * AES-256-CBC, scrypt-free so any OpenSSL reads it: `openssl pkey -in admin.key`).
 * A label goes before the PEM block as a `picket-label:` line: PEM readers (OpenSSL, node)
 * skip text outside the block (RFC 7468 §2), so the file stays a standard key file.
 */
export function privateKeyPem(key: SigningKey, passphrase?: string, label?: string): string {
  const pem = passphrase !== undefined
    ? key.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase }).toString()
    : key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return labelLine(label) + pem;
}

export function publicKeyPem(raw: Uint8Array, label?: string): string {
  return labelLine(label) + publicKeyObject(raw).export({ format: 'pem', type: 'spki' }).toString();
}

const labelLine = (label: string | undefined) => (label === undefined ? '' : `picket-label: ${label}\n`);

/** The `picket-label:` line before a key file's PEM block, checked; undefined when there is none. */
export function labelOfKeyFile(text: string, what: string): string | undefined {
  const begin = text.indexOf('-----BEGIN');
  const m = /^picket-label: ?(.*)$/m.exec(begin >= 0 ? text.slice(0, begin) : text);
  if (!m) return undefined;
  const label = m[1]!.trim();
  const bad = keyLabelProblem(label);
  if (bad) throw new InputError(`${what}: ${bad}`);
  return label;
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** True for an encrypted PKCS#8 PEM (it needs a passphrase before anything can be read from it). */
export function isEncryptedKeyFile(text: string): boolean {
  return text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

/**
 * Parses a PEM private key (PKCS#8, plain or encrypted). `what` names the source in errors.
 * A passphrase given for a plain key is ignored, so one PICKET_PASSPHRASE can serve a mix.
 */
export function parseSigningKey(pem: string, what: string, passphrase?: string): SigningKey {
  const encrypted = isEncryptedKeyFile(pem);
  if (encrypted && passphrase === undefined) throw new InputError(`${what}: encrypted key and no passphrase (--passphrase-file, PICKET_PASSPHRASE or a terminal)`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem', ...(encrypted ? { passphrase } : {}) });
  } catch {
    throw new InputError(encrypted ? `${what}: wrong passphrase (or a damaged key file)` : `${what}: not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new InputError(`${what}: not an Ed25519 private key`);
  const raw = rawPublic(createPublicKey(privateKey));
  assertStrongKey(raw, what);
  const label = labelOfKeyFile(pem, what);
  return { keyId: keyIdOf(raw), publicKey: raw, privateKey, ...(label !== undefined ? { label } : {}) };
}

/** Parses a PEM public key (SPKI) or, for convenience, a plain private key (its public half). */
export function parsePublicKey(pem: string, what: string): PublicKey {
  if (isEncryptedKeyFile(pem)) throw new InputError(`${what}: encrypted private key: give its public key instead (the .pub file keygen wrote beside it)`);
  let key: KeyObject;
  try {
    key = pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new InputError(`${what}: not a PEM Ed25519 key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new InputError(`${what}: not an Ed25519 key`);
  const raw = rawPublic(key);
  assertStrongKey(raw, what);
  const label = labelOfKeyFile(pem, what);
  return { keyId: keyIdOf(raw), publicKey: raw, ...(label !== undefined ? { label } : {}) };
}

/**
 * A public key in any form an external signer's tooling hands out: PEM (SPKI), an OpenSSH
 * line (`ssh-ed25519 AAAA… comment`, what `ssh-add -L` prints), or the raw 32 bytes as they
 * are, in hex (64 digits) or in base64.
 */
export function parsePublicKeyBytes(bytes: Uint8Array, what: string): PublicKey {
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN')) return parsePublicKey(Buffer.from(bytes).toString('utf8'), what);
  let raw: Uint8Array | undefined;
  const t = text.trim();
  const ssh = /^ssh-ed25519\s+([A-Za-z0-9+/]+={0,2})(\s.*)?$/.exec(t);
  if (bytes.length === 32) raw = new Uint8Array(bytes);
  else if (ssh) raw = sshEd25519Blob(Buffer.from(ssh[1]!, 'base64'));
  else if (/^[0-9a-fA-F]{64}$/.test(t)) raw = new Uint8Array(Buffer.from(t, 'hex'));
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t)) raw = new Uint8Array(Buffer.from(t, 'base64'));
  if (raw?.length !== 32) throw new InputError(`${what}: not an Ed25519 public key (PEM, ssh-ed25519 line, or 32 bytes raw, hex or base64)`);
  assertStrongKey(raw, what);
  return { keyId: keyIdOf(raw), publicKey: raw };
}

/** The 32-byte key inside an OpenSSH ed25519 public key blob: string "ssh-ed25519", string key. */
function sshEd25519Blob(blob: Buffer): Uint8Array | undefined {
  if (blob.length !== 4 + 11 + 4 + 32 || blob.readUInt32BE(0) !== 11 || blob.toString('latin1', 4, 15) !== 'ssh-ed25519' || blob.readUInt32BE(15) !== 32) return undefined;
  return new Uint8Array(blob.subarray(19));
}

export function signBytes(key: SigningKey, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key.privateKey));
}

// Public keys are checked and parsed once per distinct key: verification is on the hot path
// of gossip. A weak key is cached as null: it never verifies anything.
const publicKeyCache = new Map<string, KeyObject | null>();

/**
 * True only for a canonical signature by a strong key. Weak keys and non-canonical signatures
 * are refused before OpenSSL sees them (it would accept some: see publicKeyProblem).
 */
export function verifyBytes(rawPublicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (rawPublicKey.length !== 32 || signatureProblem(signature) !== undefined) return false;
  const cacheKey = Buffer.from(rawPublicKey).toString('hex');
  let key = publicKeyCache.get(cacheKey);
  if (key === undefined) {
    try {
      key = publicKeyProblem(rawPublicKey) === undefined ? publicKeyObject(rawPublicKey) : null;
    } catch {
      key = null;
    }
    if (publicKeyCache.size > 1024) publicKeyCache.clear();
    publicKeyCache.set(cacheKey, key);
  }
  if (key === null) return false;
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
