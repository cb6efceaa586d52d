/**
 * The trust decision: a pure function of (bytes, trusted state, now) returning a tagged
 * result. No I/O, no clock: callers capture `now` once per update (as go-tuf does).
 *
 * Order matters and is part of the contract:
 *   size → envelope shape → payload type → signatures (threshold of distinct keys)
 *   → payload decode → mesh → version (stale / duplicate / equivocation / gap) → expiry.
 * Signatures are checked before the payload is decoded, so unsigned junk never reaches
 * the policy decoder; expiry is checked last, so an old replay is reported as stale.
 */
import { decodePolicy, type Policy } from '../policy/model.js';
import { decodeEnvelope, digestOf, PAYLOAD_TYPE, type DecodeResult, type Envelope } from './envelope.js';
import { countSignatures, decodeRoot, describeCount, type RootDoc } from './root.js';

export type Outcome =
  | 'accepted'
  | 'duplicate'
  | 'stale'
  | 'equivocation'
  | 'gap'
  | 'expired'
  | 'bad-signature'
  | 'below-threshold'
  | 'wrong-mesh'
  | 'malformed'
  | 'too-large';

export interface Rejection {
  outcome: Exclude<Outcome, 'accepted'>;
  reason: string;
  /** Known once the payload decoded: lets the caller log and alert with context. */
  version?: number;
  digest?: string;
}

export type PolicyVerdict = { outcome: 'accepted'; policy: Policy; envelope: Envelope; digest: string } | Rejection;
export type RootVerdict = { outcome: 'accepted'; root: RootDoc; envelope: Envelope; digest: string } | Rejection;

export interface TrustedRoot {
  root: RootDoc;
  digest: string;
}

export interface TrustedState {
  root: TrustedRoot;
  /** The mesh this node belongs to; undefined accepts any (offline `policy verify`). */
  meshId?: string;
  /** Highest policy version ever accepted and its digest. */
  policy?: { version: number; digest: string };
}

function envelopeOf(input: Uint8Array | Envelope): DecodeResult<Envelope> {
  return input instanceof Uint8Array ? decodeEnvelope(input) : { ok: true, value: input };
}

export function verifyPolicy(input: Uint8Array | Envelope, state: TrustedState, now: number): PolicyVerdict {
  const decoded = envelopeOf(input);
  if (!decoded.ok) return { outcome: decoded.outcome, reason: decoded.reason };
  const env = decoded.value;
  if (env.payloadType !== PAYLOAD_TYPE.policy) {
    return { outcome: 'malformed', reason: `payload type ${JSON.stringify(env.payloadType.slice(0, 64))} is not a policy` };
  }
  const { root } = state.root;
  const count = countSignatures(env, root.roles.policy, root.keys);
  if (count.valid < count.threshold) {
    return {
      outcome: count.invalid > 0 ? 'bad-signature' : 'below-threshold',
      reason: `${describeCount(count, 'policy')} under root v${root.version}`,
    };
  }
  const digest = digestOf(env);
  const body = decodePolicy(env.payload);
  if (!body.ok) return { outcome: body.outcome, reason: body.reason, digest };
  const policy = body.policy;
  const at = { version: policy.version, digest };
  if (state.meshId !== undefined && policy.meshId !== state.meshId) {
    return { outcome: 'wrong-mesh', reason: `policy is for mesh ${policy.meshId}, this node is in ${state.meshId}`, ...at };
  }
  const current = state.policy;
  if (current) {
    if (policy.version < current.version) return { outcome: 'stale', reason: `v${policy.version} is older than v${current.version}`, ...at };
    if (policy.version === current.version) {
      return digest === current.digest
        ? { outcome: 'duplicate', reason: `v${policy.version} is already held`, ...at }
        : { outcome: 'equivocation', reason: `a different v${policy.version} is already held (${current.digest.slice(0, 12)} vs ${digest.slice(0, 12)}): a policy key signed two documents with one version`, ...at };
    }
  }
  if (policy.expires <= now) return { outcome: 'expired', reason: `v${policy.version} expired at ${new Date(policy.expires).toISOString()}`, ...at };
  return { outcome: 'accepted', policy, envelope: env, digest };
}

/**
 * Verifies root N+1 against trusted root N: a threshold of N's root keys AND of its own,
 * version exactly N+1. Expiry is only checked when `checkExpiry` (the last root of a chain):
 * a node offline through several rotations may walk through roots that have since expired.
 */
export function verifyRoot(input: Uint8Array | Envelope, trusted: TrustedRoot, now: number, checkExpiry = true): RootVerdict {
  const decoded = envelopeOf(input);
  if (!decoded.ok) return { outcome: decoded.outcome, reason: decoded.reason };
  const env = decoded.value;
  if (env.payloadType !== PAYLOAD_TYPE.root) {
    return { outcome: 'malformed', reason: `payload type ${JSON.stringify(env.payloadType.slice(0, 64))} is not a root` };
  }
  const digest = digestOf(env);
  const body = decodeRoot(env.payload);
  // An older root can no longer be verified (its signers may have rotated out), and ignoring
  // it is always safe: classify it as stale before any signature work. The same content as the
  // trusted root is a duplicate. Anything that could change trust goes through signatures.
  if (body.ok && body.root.version < trusted.root.version) {
    return { outcome: 'stale', reason: `root v${body.root.version} is older than v${trusted.root.version}`, version: body.root.version, digest };
  }
  if (body.ok && digest === trusted.digest) return { outcome: 'duplicate', reason: `root v${body.root.version} is already trusted`, version: body.root.version, digest };
  // Signatures by the trusted root come first: unsigned junk is rejected before we trust its content.
  const oldCount = countSignatures(env, trusted.root.roles.root, trusted.root.keys);
  if (oldCount.valid < oldCount.threshold) {
    return { outcome: oldCount.invalid > 0 ? 'bad-signature' : 'below-threshold', reason: `${describeCount(oldCount, 'root')} of trusted root v${trusted.root.version}`, digest };
  }
  if (!body.ok) return { outcome: body.outcome, reason: body.reason, digest };
  const root = body.root;
  const at = { version: root.version, digest };
  if (root.version === trusted.root.version) {
    return { outcome: 'equivocation', reason: `a different root v${root.version}, signed by its root keys, is already trusted`, ...at };
  }
  if (root.version !== trusted.root.version + 1) {
    return { outcome: 'gap', reason: `root v${root.version} does not follow trusted v${trusted.root.version}: the roots in between are needed`, ...at };
  }
  const newCount = countSignatures(env, root.roles.root, root.keys);
  if (newCount.valid < newCount.threshold) {
    return { outcome: newCount.invalid > 0 ? 'bad-signature' : 'below-threshold', reason: `${describeCount(newCount, 'root')} of new root v${root.version}`, ...at };
  }
  if (checkExpiry && root.expires <= now) return { outcome: 'expired', reason: `root v${root.version} expired at ${new Date(root.expires).toISOString()}`, ...at };
  return { outcome: 'accepted', root, envelope: env, digest };
}

/** Walks a chain of root envelopes (ascending) from a pinned root. Stops at the first failure. */
export function verifyRootChain(chain: (Uint8Array | Envelope)[], pinned: TrustedRoot, now: number):
  { ok: true; trusted: TrustedRoot; accepted: Envelope[] } | { ok: false; index: number; rejection: Rejection; trusted: TrustedRoot; accepted: Envelope[] } {
  let trusted = pinned;
  const accepted: Envelope[] = [];
  for (const [i, item] of chain.entries()) {
    const v = verifyRoot(item, trusted, now, i === chain.length - 1);
    if (v.outcome === 'duplicate' || v.outcome === 'stale') continue;
    if (v.outcome !== 'accepted') return { ok: false, index: i, rejection: v, trusted, accepted };
    trusted = { root: v.root, digest: v.digest };
    accepted.push(v.envelope);
  }
  return { ok: true, trusted, accepted };
}

/**
 * Reads a self-signed pinned root (root.json from `picket root create`). It is trusted
 * because it was provisioned out of band; the self-signature catches corruption and
 * checks that its own root threshold can sign.
 */
export function trustPinnedRoot(input: Uint8Array | Envelope): { ok: true; trusted: TrustedRoot; envelope: Envelope } | Rejection {
  const decoded = envelopeOf(input);
  if (!decoded.ok) return { outcome: decoded.outcome, reason: decoded.reason };
  const env = decoded.value;
  if (env.payloadType !== PAYLOAD_TYPE.root) return { outcome: 'malformed', reason: `payload type ${JSON.stringify(env.payloadType.slice(0, 64))} is not a root` };
  const body = decodeRoot(env.payload);
  if (!body.ok) return { outcome: body.outcome, reason: body.reason };
  const count = countSignatures(env, body.root.roles.root, body.root.keys);
  if (count.valid < count.threshold) {
    return { outcome: count.invalid > 0 ? 'bad-signature' : 'below-threshold', reason: `root v${body.root.version} is not self-signed: ${describeCount(count, 'root')}` };
  }
  return { ok: true, trusted: { root: body.root, digest: digestOf(env) }, envelope: env };
}
