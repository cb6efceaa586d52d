/**
 * The trust decision: a pure function of (bytes, trusted state, now) returning a tagged
 * result. No I/O, no clock: callers capture `now` once per update (as go-tuf does).
 *
 * Order matters and is part of the contract:
 *   size → envelope shape → payload type → signatures (threshold of distinct keys)
 *   → payload decode → mesh → version (stale / duplicate / equivocation / gap) → expiry
 *   → compile budget.
 * Signatures are checked before the payload is decoded, so unsigned junk never reaches
 * the policy decoder; expiry is checked last, so an old replay is reported as stale.
 */
import { decodePolicy, type Policy } from '../policy/model.js';
import { compiledSize, overBudget } from '../policy/budget.js';
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
  | 'too-large'
  /** Validly signed under a root this node has since superseded: an operator's mistake, not a forgery. */
  | 'stale-root-signature'
  /** The trusted root has expired: nothing new is accepted until a newer root arrives. */
  | 'root-expired';

export interface Rejection {
  outcome: Exclude<Outcome, 'accepted'>;
  reason: string;
  /** Known once the payload decoded: lets the caller log and alert with context. */
  version?: number;
  digest?: string;
}

/** `verified`: the policy signatures checked to reach the threshold, by key id (ThresholdCount.verified). */
export type PolicyVerdict = { outcome: 'accepted'; policy: Policy; envelope: Envelope; digest: string; verified: ReadonlyMap<string, boolean> } | Rejection;
export type RootVerdict = { outcome: 'accepted'; root: RootDoc; envelope: Envelope; digest: string } | Rejection;
/** A pinned root: a RootVerdict whose success also carries it as trusted state (`ok` kept for older callers). */
export type PinnedVerdict = { ok: true; outcome: 'accepted'; root: RootDoc; envelope: Envelope; digest: string; trusted: TrustedRoot } | Rejection;

export interface TrustedRoot {
  root: RootDoc;
  digest: string;
}

export interface TrustedState {
  root: TrustedRoot;
  /** The mesh this node belongs to; undefined accepts any (offline `policy verify`). */
  meshId?: string;
  /**
   * The version floor: the highest policy version ever accepted and its digest. Anything
   * older is stale, a different document with the same version is an equivocation.
   * `held: false` means the node lost the body of the floor version (a damaged store): the
   * same digest is then accepted again (restored) instead of being called a duplicate.
   */
  policy?: { version: number; digest: string; held?: boolean };
  /**
   * Roots this node trusted before the current one, newest first (at most a few): a policy
   * validly signed under one of them is `stale-root-signature`, not a forgery.
   */
  superseded?: RootDoc[];
}

/** True once a root's expiry has passed: only the newest trusted root's expiry matters (TUF). */
export function rootExpired(root: RootDoc, now: number): boolean {
  return root.expires <= now;
}

function envelopeOf(input: Uint8Array | Envelope): DecodeResult<Envelope> {
  return input instanceof Uint8Array ? decodeEnvelope(input) : { ok: true, outcome: 'decoded', value: input };
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
    const old = (state.superseded ?? []).find((r) => { const c = countSignatures(env, r.roles.policy, r.keys); return c.valid >= c.threshold; });
    if (old) {
      return { outcome: 'stale-root-signature', reason: `signed under superseded root v${old.version}; root v${root.version} needs ${describeCount(count, 'policy')}` };
    }
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
      if (digest === current.digest && current.held === false) {
        // The floor's own document, whose body this node lost: restore it. It was accepted once,
        // so neither its own expiry nor the root's stops it from being the last good policy again.
        return { outcome: 'accepted', policy, envelope: env, digest, verified: count.verified };
      }
      return digest === current.digest
        ? { outcome: 'duplicate', reason: `v${policy.version} is already held`, ...at }
        : { outcome: 'equivocation', reason: `a different v${policy.version} is already held (${current.digest.slice(0, 12)} vs ${digest.slice(0, 12)}): a policy key signed two documents with one version`, ...at };
    }
  }
  if (policy.expires <= now) return { outcome: 'expired', reason: `v${policy.version} expired at ${isoOf(policy.expires)}`, ...at };
  // What the document expands to, bounded before it is accepted (issue 13: a 72 KB policy
  // lowered to millions of elements). After the version checks, so stale and duplicate
  // copies cost nothing.
  const budget = overBudget(compiledSize(policy));
  if (budget) return { outcome: 'too-large', reason: `v${policy.version} ${budget}`, ...at };
  // Checked last so that replays and forgeries keep their own names; an honest peer's new
  // policy under an expired root is refused without blame (the operator must rotate the root).
  if (rootExpired(root, now)) return { outcome: 'root-expired', reason: `trusted root v${root.version} expired at ${isoOf(root.expires)}; no new policy is accepted until a newer root arrives`, ...at };
  return { outcome: 'accepted', policy, envelope: env, digest, verified: count.verified };
}

function isoOf(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms` : d.toISOString();
}

/**
 * Verifies root N+1 against trusted root N: a threshold of N's root keys AND of its own,
 * version exactly N+1. Expiry plays no part (TUF semantics): a newer root is verified against
 * the trusted root's keys even if either has expired, so a node offline through several
 * rotations walks through roots that have since expired. Only the newest trusted root's
 * expiry matters, and it is the caller's state (see rootExpired): while it is expired the
 * node accepts no new policy but never falls back to an older root.
 */
export function verifyRoot(input: Uint8Array | Envelope, trusted: TrustedRoot): RootVerdict {
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
  return { outcome: 'accepted', root, envelope: env, digest };
}

/**
 * Walks a chain of root envelopes (ascending) from a pinned root, expired or not. Stops at the
 * first failure; `trusted` is then the newest root verified so far — never an older one.
 */
export function verifyRootChain(chain: (Uint8Array | Envelope)[], pinned: TrustedRoot):
  { ok: true; trusted: TrustedRoot; accepted: Envelope[] } | { ok: false; index: number; rejection: Rejection; trusted: TrustedRoot; accepted: Envelope[] } {
  let trusted = pinned;
  const accepted: Envelope[] = [];
  for (const [i, item] of chain.entries()) {
    const v = verifyRoot(item, trusted);
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
export function trustPinnedRoot(input: Uint8Array | Envelope): PinnedVerdict {
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
  const digest = digestOf(env);
  return { ok: true, outcome: 'accepted', root: body.root, envelope: env, digest, trusted: { root: body.root, digest } };
}
