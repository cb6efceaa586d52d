/**
 * The status plane's wire: signing a node's compact claim, and encoding and decoding digests
 * (proto/picket/status/v1/status.proto Claim, WireClaim, Digest). Decoding checks every
 * limit and field before anything is merged; it verifies no signature (status-digest.ts
 * decides when a signature is worth checking).
 */
import { createHash } from 'node:crypto';
import type { PrivateKey } from '@libp2p/interface';
import { isBoundedTime, LIMITS } from '../wire/limits.js';
import { signAsNode, verifyAsNodeSync } from '../trust/node-sign.js';
import { pb } from '../wire/proto.js';
import { MAX_STAGES } from '../policy/model.js';
import type { Bits, Claim, ClaimVerifier } from './status-digest.js';

const DOMAIN = new TextEncoder().encode('picket-claim-v1');
/** Claims per digest message: a 10,000-node fleet's full digest goes in several. */
export const MAX_DIGEST_CLAIMS = 2048;
export const MAX_DIGEST_BYTES = MAX_DIGEST_CLAIMS * 512;
const MAX_ALERTS = 32;
const TOKEN = /^[a-z][a-z0-9-]{0,63}$/;

/** nodeRef's answers: a fleet's PeerIds, hashed once each (at most this many held; then started afresh). */
const refs = new Map<string, string>();
const MAX_REFS = 16_384;

/**
 * The 8-byte reference a digest uses for a node instead of its PeerId string. Remembered:
 * every digest encoded names each of its claims' nodes, and every policy rebuilt the whole
 * table (100 agents in one process: 0.4 s of SHA-256 objects over ten updates).
 */
export function nodeRef(peerId: string): string {
  let ref = refs.get(peerId);
  if (ref === undefined) {
    if (refs.size >= MAX_REFS) refs.clear();
    ref = createHash('sha256').update(peerId).digest('hex').slice(0, 16);
    refs.set(peerId, ref);
  }
  return ref;
}

function body(meshId: string, c: Omit<Claim, 'signature'>): Uint8Array {
  return pb.status.v1.Claim.encode({
    meshId, peerId: c.peerId, policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts, seq: c.seq, timeMs: c.time,
    ...(c.rolloutStage ? { rolloutStage: c.rolloutStage } : {}), ...(c.rolloutEnforcing ? { rolloutEnforcing: c.rolloutEnforcing } : {}),
    ...(c.digest ? { policyDigest: Buffer.from(c.digest, 'hex') } : {}),
  }).finish();
}

export async function signClaim(meshId: string, c: Omit<Claim, 'signature'>, key: PrivateKey): Promise<Claim> {
  return { ...c, alerts: [...c.alerts], signature: await signAsNode(key, DOMAIN, body(meshId, c)) };
}

/** The verifier the digest uses: the claim's signature, over this mesh's id, by its PeerId's key. */
export function claimVerifier(meshId: string): ClaimVerifier {
  return (c) => verifyAsNodeSync(c.peerId, DOMAIN, body(meshId, c), c.signature);
}

/** Tally and want bytes: one bit per node of the largest policy. */
const MAX_BITS_BYTES = Math.ceil(LIMITS.maxNodes / 8);

/**
 * Digest messages for these claims (split so none exceeds MAX_DIGEST_CLAIMS), the first
 * carrying the tally and the want when given. Nothing to say: no message.
 */
export function encodeDigests(claims: readonly Claim[], extra: { tally?: Bits; want?: Bits; nonce?: number } = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  const version = extra.tally?.version ?? extra.want?.version;
  if (extra.tally && extra.want && extra.tally.version !== extra.want.version) throw new Error('tally and want of different versions');
  for (let i = 0; i < claims.length || (i === 0 && version); i += MAX_DIGEST_CLAIMS) {
    out.push(pb.status.v1.Digest.encode({
      ...(extra.nonce ? { nonce: extra.nonce } : {}),
      ...(i === 0 && version ? { tallyVersion: version, ...(extra.tally ? { tally: extra.tally.bits } : {}), ...(extra.want ? { want: extra.want.bits } : {}) } : {}),
      claims: claims.slice(i, i + MAX_DIGEST_CLAIMS).map((c) => ({
        node: Buffer.from(nodeRef(c.peerId), 'hex'), policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts, seq: c.seq, timeMs: c.time, signature: c.signature,
        ...(c.rolloutStage ? { rolloutStage: c.rolloutStage } : {}), ...(c.rolloutEnforcing ? { rolloutEnforcing: c.rolloutEnforcing } : {}),
        ...(c.digest ? { policyDigest: Buffer.from(c.digest, 'hex') } : {}),
      })),
    }).finish());
  }
  return out;
}

export type DigestVerdict = { ok: true; claims: Claim[]; tally?: Bits; want?: Bits } | { ok: false; reason: string };

/**
 * Decodes a digest. `resolve` maps a node reference to a PeerId of the receiver's policy
 * (undefined: not a node it knows; that claim is skipped, not an error: the sender may hold
 * a newer policy). Any malformed claim rejects the whole message (the sender is struck).
 */
export function decodeDigest(bytes: Uint8Array, resolve: (ref: string) => string | undefined): DigestVerdict {
  if (bytes.length > MAX_DIGEST_BYTES) return { ok: false, reason: 'digest too large' };
  let d: pb.status.v1.Digest;
  try {
    d = pb.status.v1.Digest.decode(bytes);
  } catch {
    return { ok: false, reason: 'malformed digest' };
  }
  if (d.claims.length > MAX_DIGEST_CLAIMS) return { ok: false, reason: 'digest lists too many claims' };
  const version = Number(d.tallyVersion ?? 0);
  const tally = d.tally ?? new Uint8Array(), want = d.want ?? new Uint8Array();
  if (!Number.isSafeInteger(version) || tally.length > MAX_BITS_BYTES || want.length > MAX_BITS_BYTES) return { ok: false, reason: 'digest tally out of range' };
  if ((tally.length || want.length) && !version) return { ok: false, reason: 'digest tally without a version' };
  const claims: Claim[] = [];
  for (const w of d.claims) {
    const node = w.node ?? new Uint8Array();
    const sig = w.signature ?? new Uint8Array();
    const alerts = w.alerts ?? [];
    if (node.length !== 8 || sig.length !== 64) return { ok: false, reason: 'malformed digest claim' };
    if (alerts.length > MAX_ALERTS || !alerts.every((a) => TOKEN.test(a)) || !TOKEN.test(w.enforcement ?? '')) return { ok: false, reason: 'digest claim field is not a name' };
    const seq = Number(w.seq ?? 0), time = Number(w.timeMs ?? 0), policyVersion = Number(w.policyVersion ?? 0);
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(policyVersion) || !isBoundedTime(time) || alerts.some((a) => a.length > LIMITS.maxStringLength)) return { ok: false, reason: 'digest claim number out of range' };
    // Same bounds as a full status's rollout fields: a stage of at most MAX_STAGES, and a held
    // version older than the one claimed.
    const stage = Number(w.rolloutStage ?? 0), enforcing = Number(w.rolloutEnforcing ?? 0);
    if (stage > MAX_STAGES || !Number.isSafeInteger(enforcing) || (enforcing !== 0 && enforcing >= policyVersion)) return { ok: false, reason: 'digest claim rollout field out of range' };
    const pd = w.policyDigest ?? new Uint8Array();
    if (pd.length !== 0 && pd.length !== 32) return { ok: false, reason: 'malformed digest claim' };
    const peerId = resolve(Buffer.from(node).toString('hex'));
    if (!peerId) continue;
    claims.push({ peerId, policyVersion, enforcement: w.enforcement!, alerts: [...alerts], seq, time, ...(stage ? { rolloutStage: stage } : {}), ...(enforcing ? { rolloutEnforcing: enforcing } : {}), ...(pd.length ? { digest: Buffer.from(pd).toString('hex') } : {}), signature: new Uint8Array(sig) });
  }
  return {
    ok: true, claims,
    ...(tally.length ? { tally: { version, bits: new Uint8Array(tally) } } : {}),
    ...(want.length ? { want: { version, bits: new Uint8Array(want) } } : {}),
  };
}
