/**
 * The root of trust: which keys may sign roots and policies, and how many must agree.
 * Encoding, decoding with limits, and the threshold count shared by every verifier.
 */
import { LIMITS, timeProblem } from '../wire/limits.js';
import { decoded, malformed, tooLarge, type Decoded } from '../wire/verdict.js';
import { pb } from '../wire/proto.js';
import { escapeText } from '../wire/text.js';
import { keyIdOf, keyLabelProblem, publicKeyProblem, verifyBytes, type PublicKey } from './keys.js';
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
    // A key without a label leaves field 3 out entirely, so old roots re-encode to the same bytes.
    keys: r.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey, ...(k.label !== undefined ? { label: k.label } : {}) })),
    root: { keyIds: r.roles.root.keyIds, threshold: r.roles.root.threshold },
    policy: { keyIds: r.roles.policy.keyIds, threshold: r.roles.policy.threshold },
  }).finish();
}

export type RootDecode = Decoded<{ root: RootDoc }>;

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
  if (r.expires === 0) return 'expires is missing';
  const expires = timeProblem(r.expires);
  if (expires) return `expires: ${expires}`;
  if (r.keys.length > LIMITS.maxRootKeys) return `${r.keys.length} keys (limit ${LIMITS.maxRootKeys})`;
  const ids = new Set<string>();
  for (const k of r.keys) {
    if (k.publicKey.length !== 32) return `key ${k.keyId.slice(0, 16)} is not a 32-byte Ed25519 public key`;
    const weak = publicKeyProblem(k.publicKey);
    if (weak) return `key ${k.keyId.slice(0, 16)}… is a weak Ed25519 public key: ${weak}`;
    if (keyIdOf(k.publicKey) !== k.keyId) return `key id ${k.keyId.slice(0, 16)}… does not match its public key`;
    if (k.label !== undefined) {
      const bad = keyLabelProblem(k.label);
      if (bad) return `key ${k.keyId.slice(0, 16)}…: ${bad}`;
    }
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
    return malformed(`root payload is not valid protobuf: ${(e as Error).message}`);
  }
  if (m.keys.length > LIMITS.maxRootKeys) return tooLarge(`${m.keys.length} keys (limit ${LIMITS.maxRootKeys})`);
  const role = (r: pb.root.v1.IRole | null | undefined): Role => ({ keyIds: [...(r?.keyIds ?? [])], threshold: r?.threshold ?? 0 });
  const root: RootDoc = {
    version: Number(m.version),
    expires: Number(m.expiresMs),
    keys: m.keys.map((k) => ({ keyId: k.keyId ?? '', publicKey: k.publicKey ?? new Uint8Array(), ...(k.label ? { label: k.label } : {}) })),
    roles: { root: role(m.root), policy: role(m.policy) },
  };
  const problem = checkRoot(root);
  if (problem) return malformed(`root: ${problem}`);
  return decoded({ root });
}

export interface ThresholdCount {
  /** Distinct role keys with a valid signature (counting stops once this reaches the threshold). */
  valid: number;
  threshold: number;
  /** A key of the role signed, but the signature does not verify: tampering or corruption. */
  invalid: number;
  /** Signatures by keys the role does not hold. */
  unknown: number;
  /** Distinct role keys that signed (valid or not): fewer than the threshold needs no verification. */
  present: number;
  /** Signatures actually verified: the CPU this envelope cost (each one hashes the whole message). */
  checked: number;
  /** What each verified signature's key id came to (`checked` entries): validSigners need not verify them again. */
  verified: ReadonlyMap<string, boolean>;
}

/**
 * Counts distinct role keys that validly signed the envelope. A key that signs twice counts
 * once: a threshold is about independent people, not signatures.
 *
 * Cost is bounded, because every verification hashes the whole message (~12 ms at the 4 MiB
 * wire limit) and any listed peer can send an envelope:
 * - only the first signature under each allowed key id is considered (signers never write two;
 *   a peer that adds a second cannot buy more verifications, see docs/decisions.md);
 * - verification stops once the threshold is reached, or as soon as the keys left to try
 *   cannot reach it. So the counts describe what was needed to decide, not every signature.
 * `exhaustive` (offline tools that report who has signed so far) verifies every distinct
 * allowed key instead; still one signature per key id.
 */
export function countSignatures(env: Envelope, role: Role, keys: PublicKey[], opts: { exhaustive?: boolean } = {}): ThresholdCount {
  const byId = new Map(keys.map((k) => [k.keyId, k.publicKey]));
  const allowed = new Set(role.keyIds);
  const candidates: { keyId: string; key: Uint8Array; sig: Uint8Array }[] = [];
  const seen = new Set<string>();
  let unknown = 0;
  for (const s of env.signatures) {
    const pk = allowed.has(s.keyId) ? byId.get(s.keyId) : undefined;
    if (!pk) unknown++;
    else if (!seen.has(s.keyId)) {
      seen.add(s.keyId);
      candidates.push({ keyId: s.keyId, key: pk, sig: s.sig });
    }
  }
  let valid = 0, invalid = 0, checked = 0;
  const verified = new Map<string, boolean>();
  // The message is built only if some signature is worth checking (a 4 MiB copy otherwise wasted).
  let message: Uint8Array | undefined;
  for (const [i, c] of candidates.entries()) {
    if (!opts.exhaustive && (valid >= role.threshold || valid + (candidates.length - i) < role.threshold)) break;
    message ??= pae(env.payloadType, env.payload);
    checked++;
    const ok = verifyBytes(c.key, message, c.sig);
    verified.set(c.keyId, ok);
    if (ok) valid++;
    else invalid++;
  }
  return { valid, threshold: role.threshold, invalid, unknown, present: candidates.length, checked, verified };
}

export function describeCount(c: ThresholdCount, roleName: string): string {
  const extra = [c.invalid ? `${c.invalid} invalid` : '', c.unknown ? `${c.unknown} by unknown keys` : ''].filter(Boolean).join(', ');
  // Too few role keys signed to ever reach the threshold: nothing was verified, say how many signed.
  const have = c.present < c.threshold ? c.present : c.valid;
  return `${have} of ${c.threshold} required ${roleName} signatures${extra ? ` (${extra})` : ''}`;
}

/**
 * The role keys whose signature on `env` verifies, in the root's key order, for reports that
 * name who signed (`policy verify`, the accept record). It verifies every distinct role key
 * (one signature each, the first) except those in `known`: what countSignatures already
 * verified on this envelope (`ThresholdCount.verified`), so an accept verifies each signature once.
 */
export function validSigners(env: Envelope, role: Role, keys: PublicKey[], known?: ReadonlyMap<string, boolean>): PublicKey[] {
  const allowed = new Set(role.keyIds);
  const first = new Map<string, Uint8Array>();
  for (const s of env.signatures) if (allowed.has(s.keyId) && !first.has(s.keyId)) first.set(s.keyId, s.sig);
  if (first.size === 0) return [];
  let message: Uint8Array | undefined;
  return keys.filter((k) => {
    const sig = first.get(k.keyId);
    if (sig === undefined) return false;
    const answer = known?.get(k.keyId);
    if (answer !== undefined) return answer;
    message ??= pae(env.payloadType, env.payload);
    return verifyBytes(k.publicKey, message, sig);
  });
}

/** "alice@ops (3f2a9c01…)" or, for a key without a label, its short id. Labels are checked at decode; escaped anyway. */
export function describeKey(k: PublicKey): string {
  return k.label ? `${escapeText(k.label)} (${k.keyId.slice(0, 8)}…)` : `${k.keyId.slice(0, 16)}…`;
}
