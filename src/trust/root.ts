/**
 * The root of trust: which keys may sign roots and policies, and how many must agree.
 * Encoding, decoding with limits, and the threshold count shared by every verifier.
 */
import { LIMITS } from '../wire/limits.js';
import { pb } from '../wire/proto.js';
import { keyIdOf, publicKeyProblem, verifyBytes, type PublicKey } from './keys.js';
import { pae, type Envelope } from './envelope.js';

export interface Role {
  keyIds: string[];
  threshold: number;
}

export interface RootDoc {
  version: number;
  expires: number;
  keys: PublicKey[];
  roles: { root: Role; policy: Role };
}

export function encodeRoot(r: RootDoc): Uint8Array {
  return pb.root.v1.Root.encode({
    version: r.version,
    expiresMs: r.expires,
    keys: r.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })),
    root: { keyIds: r.roles.root.keyIds, threshold: r.roles.root.threshold },
    policy: { keyIds: r.roles.policy.keyIds, threshold: r.roles.policy.threshold },
  }).finish();
}

export type RootDecode = { ok: true; root: RootDoc } | { ok: false; outcome: 'malformed' | 'too-large'; reason: string };

function checkRole(name: string, role: Role, keys: Set<string>): string | undefined {
  if (role.keyIds.length > LIMITS.maxRootKeys) return `${name} role lists ${role.keyIds.length} keys (limit ${LIMITS.maxRootKeys})`;
  if (new Set(role.keyIds).size !== role.keyIds.length) return `${name} role lists a key twice`;
  for (const id of role.keyIds) if (!keys.has(id)) return `${name} role names key ${id.slice(0, 16)}… that the root does not hold`;
  if (!Number.isInteger(role.threshold) || role.threshold < 1) return `${name} threshold must be at least 1`;
  if (role.threshold > role.keyIds.length) return `${name} threshold ${role.threshold} is more than its ${role.keyIds.length} keys`;
  return undefined;
}

/** Structural checks on a root document, for decoding and for `root create`. */
export function checkRoot(r: RootDoc): string | undefined {
  if (!Number.isSafeInteger(r.version) || r.version < 1) return `version ${r.version} is not a positive integer`;
  if (!Number.isSafeInteger(r.expires) || r.expires <= 0) return 'expires is missing';
  if (r.keys.length > LIMITS.maxRootKeys) return `${r.keys.length} keys (limit ${LIMITS.maxRootKeys})`;
  const ids = new Set<string>();
  for (const k of r.keys) {
    if (k.publicKey.length !== 32) return `key ${k.keyId.slice(0, 16)} is not a 32-byte Ed25519 public key`;
    const weak = publicKeyProblem(k.publicKey);
    if (weak) return `key ${k.keyId.slice(0, 16)}… is a weak Ed25519 public key: ${weak}`;
    if (keyIdOf(k.publicKey) !== k.keyId) return `key id ${k.keyId.slice(0, 16)}… does not match its public key`;
    if (ids.has(k.keyId)) return `key ${k.keyId.slice(0, 16)}… listed twice`;
    ids.add(k.keyId);
  }
  return checkRole('root', r.roles.root, ids) ?? checkRole('policy', r.roles.policy, ids);
}

export function decodeRoot(bytes: Uint8Array): RootDecode {
  let m: pb.root.v1.Root;
  try {
    m = pb.root.v1.Root.decode(bytes);
  } catch (e) {
    return { ok: false, outcome: 'malformed', reason: `root payload is not valid protobuf: ${(e as Error).message}` };
  }
  if (m.keys.length > LIMITS.maxRootKeys) return { ok: false, outcome: 'too-large', reason: `${m.keys.length} keys (limit ${LIMITS.maxRootKeys})` };
  const role = (r: pb.root.v1.IRole | null | undefined): Role => ({ keyIds: [...(r?.keyIds ?? [])], threshold: r?.threshold ?? 0 });
  const root: RootDoc = {
    version: Number(m.version),
    expires: Number(m.expiresMs),
    keys: m.keys.map((k) => ({ keyId: k.keyId ?? '', publicKey: k.publicKey ?? new Uint8Array() })),
    roles: { root: role(m.root), policy: role(m.policy) },
  };
  const problem = checkRoot(root);
  if (problem) return { ok: false, outcome: 'malformed', reason: `root: ${problem}` };
  return { ok: true, root };
}

export interface ThresholdCount {
  /** Distinct role keys with a valid signature. */
  valid: number;
  threshold: number;
  /** A key of the role signed, but the signature does not verify: tampering or corruption. */
  invalid: number;
  /** Signatures by keys the role does not hold. */
  unknown: number;
}

/**
 * Counts distinct role keys that validly signed the envelope. A key that signs twice counts
 * once: a threshold is about independent people, not signatures.
 */
export function countSignatures(env: Envelope, role: Role, keys: PublicKey[]): ThresholdCount {
  const message = pae(env.payloadType, env.payload);
  const byId = new Map(keys.map((k) => [k.keyId, k.publicKey]));
  const allowed = new Set(role.keyIds);
  const good = new Set<string>();
  let invalid = 0, unknown = 0;
  for (const s of env.signatures) {
    const pk = allowed.has(s.keyId) ? byId.get(s.keyId) : undefined;
    if (!pk) { unknown++; continue; }
    if (good.has(s.keyId)) continue;
    if (verifyBytes(pk, message, s.sig)) good.add(s.keyId);
    else invalid++;
  }
  return { valid: good.size, threshold: role.threshold, invalid, unknown };
}

export function describeCount(c: ThresholdCount, roleName: string): string {
  const extra = [c.invalid ? `${c.invalid} invalid` : '', c.unknown ? `${c.unknown} by unknown keys` : ''].filter(Boolean).join(', ');
  return `${c.valid} of ${c.threshold} required ${roleName} signatures${extra ? ` (${extra})` : ''}`;
}
