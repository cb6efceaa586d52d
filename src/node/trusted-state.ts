/**
 * The node's trusted state as one record: the root chain it trusts, the version floor of its
 * policy, and the blocked set of revoked nodes. Modelled on go-tuf's trustedmetadata: a small
 * value with no I/O whose only moves are forward. The engine persists it twice — in the store
 * (one atomic batch with the document it describes) and in a small fsynced mirror file beside
 * the store — and on start merges whatever survived with `mergeTrust`, which never lowers
 * anything. The only way down is `picket state reset`, an explicit operator command.
 *
 * Decoding is hostile-input decoding (a damaged disk is an attacker we did not choose): every
 * field is checked, and anything malformed is reported, never half-used.
 */
import { LIMITS } from '../wire/limits.js';

export const TRUST_FORMAT = 1;

export interface PolicyFloor {
  version: number;
  digest: string;
}

export interface TrustRecord {
  format: typeof TRUST_FORMAT;
  meshId: string;
  /** Root envelopes after the pinned root, ascending, base64: the chain to re-verify on start. */
  roots: string[];
  /** The newest trusted root (for reading without verification: status, reset, diagnostics). */
  root: { version: number; digest: string; expires: number };
  /** Highest policy version ever accepted, and its digest. */
  policy: PolicyFloor | null;
  /** Addresses of revoked nodes whose flows stay cut (conntrack would readmit them). */
  blocked: string[];
  /** Bumped on every write: with equal floors, the newer record's blocked set wins. */
  seq: number;
}

const MAX_ROOTS = 256;
const MAX_BLOCKED = LIMITS.maxNodes * LIMITS.maxAddressesPerNode;

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isDigest = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

export type TrustDecode = { ok: true; record: TrustRecord } | { ok: false; reason: string };

/** Parses a record from its JSON text (store value or mirror file). */
export function decodeTrust(text: string): TrustDecode {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `not JSON (${(e as Error).message})` };
  }
  if (typeof v !== 'object' || v === null) return { ok: false, reason: 'not an object' };
  const r = v as Record<string, unknown>;
  if (r.format !== TRUST_FORMAT) return { ok: false, reason: `unknown format ${JSON.stringify(r.format)}` };
  if (typeof r.meshId !== 'string' || r.meshId.length > LIMITS.maxStringLength) return { ok: false, reason: 'meshId missing' };
  if (!Array.isArray(r.roots) || r.roots.length > MAX_ROOTS || !r.roots.every((x) => typeof x === 'string' && x.length <= LIMITS.maxEnvelopeJsonBytes)) return { ok: false, reason: 'roots malformed' };
  const root = r.root as Record<string, unknown> | undefined;
  if (!root || !isNat(root.version) || !isDigest(root.digest) || !isNat(root.expires)) return { ok: false, reason: 'root malformed' };
  const p = r.policy as Record<string, unknown> | null | undefined;
  if (p !== null && (!p || !isNat(p.version) || !isDigest(p.digest))) return { ok: false, reason: 'policy floor malformed' };
  if (!Array.isArray(r.blocked) || r.blocked.length > MAX_BLOCKED || !r.blocked.every((x) => typeof x === 'string' && x.length <= 64)) return { ok: false, reason: 'blocked set malformed' };
  if (!isNat(r.seq)) return { ok: false, reason: 'seq malformed' };
  return {
    ok: true,
    record: {
      format: TRUST_FORMAT,
      meshId: r.meshId,
      roots: r.roots as string[],
      root: { version: root.version, digest: root.digest, expires: root.expires },
      policy: p ? { version: p.version as number, digest: p.digest as string } : null,
      blocked: [...(r.blocked as string[])],
      seq: r.seq,
    },
  };
}

export function encodeTrust(r: TrustRecord): string {
  return JSON.stringify(r);
}

/** The higher of two floors; equal versions keep `a` (callers pass the one they trust more first). */
export function maxFloor(a: PolicyFloor | null | undefined, b: PolicyFloor | null | undefined): PolicyFloor | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return b.version > a.version ? b : a;
}

/**
 * Merges the copies that survived (store record, mirror file, the store's highest mark). Every
 * component takes its highest value: losing one copy never lowers the floor, the root chain
 * or the blocked set of the newer write.
 */
export function mergeTrust(copies: (TrustRecord | undefined)[]): TrustRecord | undefined {
  const present = copies.filter((c): c is TrustRecord => c !== undefined);
  if (!present.length) return undefined;
  const newest = present.reduce((a, b) => (b.seq > a.seq ? b : a));
  const longest = present.reduce((a, b) => (b.roots.length > a.roots.length || (b.roots.length === a.roots.length && b.root.version > a.root.version) ? b : a));
  const floor = present.reduce<PolicyFloor | null>((f, c) => maxFloor(f, c.policy), null);
  return {
    format: TRUST_FORMAT,
    meshId: newest.meshId,
    roots: longest.roots,
    root: longest.root,
    policy: floor,
    blocked: newest.blocked,
    seq: Math.max(...present.map((c) => c.seq)),
  };
}
