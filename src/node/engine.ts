/**
 * The trust state machine of one node, and the only writer of its policy state.
 * Every envelope — from gossip, sync, the control API or the policy file — goes through
 * offer(), which is serialized: verify (pure) → persist (one atomic batch) → enforce.
 * On start the last good policy (or the baseline) is enforced before anything else runs.
 */
import { EventEmitter } from 'node:events';
import type { Clock, Timer } from '../runtime/clock.js';
import { crashpoint } from '../runtime/faults.js';
import type { Logger } from '../runtime/logger.js';
import type { Store } from '../store/store.js';
import { decodePolicy, type Policy } from '../policy/model.js';
import { decodeEnvelope, encodeEnvelope, PAYLOAD_TYPE, type Envelope } from '../trust/envelope.js';
import { decodeRoot } from '../trust/root.js';
import { verifyPolicy, verifyRoot, verifyRootChain, type Outcome, type Rejection, type TrustedRoot } from '../trust/verify.js';
import type { EnforcementPort, EnforcementStatus } from './ports.js';

export type SourceKind = 'gossip' | 'sync' | 'control' | 'file';
export interface Source {
  kind: SourceKind;
  peer?: string;
}

export type OfferResult =
  | { outcome: 'accepted'; kind: 'policy' | 'root'; version: number; digest: string }
  | (Rejection & { kind: 'policy' | 'root' | 'unknown' });

export interface CurrentPolicy {
  policy: Policy;
  envelope: Envelope;
  bytes: Uint8Array;
  digest: string;
  acceptedAt: number;
}

export interface EngineEvents {
  policy: [CurrentPolicy, Source];
  root: [TrustedRoot, Source];
  rejected: [OfferResult & { outcome: Exclude<Outcome, 'accepted'> }, Source];
  enforced: [EnforcementStatus];
}

export interface EngineOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  meshId: string;
  pinned: TrustedRoot;
  pinnedEnvelope: Envelope;
  enforcer: EnforcementPort;
}

export class Engine extends EventEmitter<EngineEvents> {
  readonly #o: EngineOptions;
  #root: TrustedRoot;
  /** Root envelopes after the pinned one, ascending: what sync hands to peers that lag. */
  #roots: { version: number; bytes: Uint8Array }[] = [];
  #current: CurrentPolicy | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #enforceChain: Promise<unknown> = Promise.resolve();
  #timer: Timer | null = null;
  #stopped = false;

  constructor(o: EngineOptions) {
    super();
    this.#o = o;
    this.#root = o.pinned;
    this.#roots = [{ version: o.pinned.root.version, bytes: encodeEnvelope(o.pinnedEnvelope) }];
  }

  get root(): TrustedRoot {
    return this.#root;
  }

  get current(): CurrentPolicy | null {
    return this.#current;
  }

  get enforcement(): EnforcementStatus {
    return this.#o.enforcer.status;
  }

  /** Root envelopes with a version above `after`, ascending. */
  rootsAfter(after: number): Uint8Array[] {
    return this.#roots.filter((r) => r.version > after).map((r) => r.bytes);
  }

  /** Loads trust and the last good policy from the store, then enforces before returning. */
  async start(): Promise<void> {
    const { store, clock, log } = this.#o;
    const now = clock.now();
    const stored = (await store.roots()).filter((r) => r.version > this.#root.root.version);
    const chain = verifyRootChain(stored.map((r) => r.envelope), this.#root, now);
    const accepted = chain.accepted;
    if (!chain.ok) log.warn({ reason: chain.rejection.reason }, 'stored root chain stops early; continuing from the last valid root');
    this.#root = chain.trusted;
    for (const env of accepted) this.#roots.push({ version: this.#versionOfRoot(env), bytes: encodeEnvelope(env) });
    const sp = await store.policy();
    if (sp) {
      const v = verifyPolicy(sp.envelope, { root: this.#root, meshId: this.#o.meshId }, now);
      // A stored policy that has since expired is still the last good one: keep it (never fail open).
      const policy = v.outcome === 'accepted' ? v.policy : v.outcome === 'expired' ? decodeStored(sp.envelope) : null;
      if (policy) {
        const env = decodeEnvelope(sp.envelope);
        if (env.ok) this.#current = { policy, envelope: env.value, bytes: sp.envelope, digest: sp.digest, acceptedAt: sp.acceptedAt };
      } else {
        log.error({ outcome: v.outcome, reason: 'reason' in v ? v.reason : '' }, 'stored policy no longer verifies; enforcing the baseline');
      }
    }
    log.info({ rootVersion: this.#root.root.version, version: this.#current?.policy.version ?? null }, 'state loaded');
    await this.enforceNow();
  }

  #versionOfRoot(env: Envelope): number {
    const r = decodeRoot(env.payload);
    return r.ok ? r.root.version : 0;
  }

  /**
   * Verify → persist → enforce, one envelope at a time. Resolves once persisted.
   * `retryBelowThreshold`: the caller will offer this envelope again if it is below threshold
   * (after a sync that may bring a newer root), so that outcome is not reported this time.
   */
  offer(input: Uint8Array | Envelope, source: Source, opts: { retryBelowThreshold?: boolean } = {}): Promise<OfferResult> {
    const next = this.#chain.then(() => this.#offer(input, source, opts.retryBelowThreshold ?? false));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #offer(input: Uint8Array | Envelope, source: Source, retryBelowThreshold: boolean): Promise<OfferResult> {
    const { clock, store, log } = this.#o;
    const decoded = input instanceof Uint8Array ? decodeEnvelope(input) : { ok: true as const, value: input };
    if (!decoded.ok) return this.#reject({ outcome: decoded.outcome, reason: decoded.reason, kind: 'unknown' }, source);
    const env = decoded.value;
    const now = clock.now();
    if (env.payloadType === PAYLOAD_TYPE.root) {
      const v = verifyRoot(env, this.#root, now);
      if (v.outcome !== 'accepted') return this.#reject({ ...v, kind: 'root' }, source);
      const bytes = input instanceof Uint8Array ? input : encodeEnvelope(env);
      await store.saveRoot({ envelope: bytes, version: v.root.version, digest: v.digest });
      this.#root = { root: v.root, digest: v.digest };
      this.#roots.push({ version: v.root.version, bytes });
      log.info({ rootVersion: v.root.version, source: source.kind, peer: source.peer }, 'root rotated');
      this.emit('root', this.#root, source);
      return { outcome: 'accepted', kind: 'root', version: v.root.version, digest: v.digest };
    }
    const cur = this.#current;
    const v = verifyPolicy(env, { root: this.#root, meshId: this.#o.meshId, ...(cur ? { policy: { version: cur.policy.version, digest: cur.digest } } : {}) }, now);
    if (v.outcome !== 'accepted') {
      if (v.outcome === 'below-threshold' && retryBelowThreshold) return { ...v, kind: 'policy' };
      return this.#reject({ ...v, kind: 'policy' }, source);
    }
    const bytes = input instanceof Uint8Array ? input : encodeEnvelope(env);
    await store.savePolicy({ envelope: bytes, version: v.policy.version, digest: v.digest, acceptedAt: now });
    crashpoint('after-persist'); // persisted, not yet enforced: a restart must enforce it
    this.#current = { policy: v.policy, envelope: v.envelope, bytes, digest: v.digest, acceptedAt: now };
    log.info({ version: v.policy.version, digest: v.digest.slice(0, 16), source: source.kind, peer: source.peer }, 'policy accepted');
    this.emit('policy', this.#current, source);
    void this.enforceNow();
    return { outcome: 'accepted', kind: 'policy', version: v.policy.version, digest: v.digest };
  }

  #reject(r: OfferResult & { outcome: Exclude<Outcome, 'accepted'> }, source: Source): OfferResult {
    const quiet = r.outcome === 'duplicate' || r.outcome === 'stale';
    this.#o.log[quiet ? 'debug' : 'warn']({ outcome: r.outcome, kind: r.kind, version: r.version, reason: r.reason, source: source.kind, peer: source.peer }, 'envelope not accepted');
    this.emit('rejected', r, source);
    return r;
  }

  /**
   * Enforces the current policy (serialized, coalesced: a burst of versions applies only
   * the newest). Also re-arms the timer for the next self-change (expiry, exception end).
   */
  enforceNow(): Promise<EnforcementStatus> {
    const next = this.#enforceChain.then(async () => {
      const status = await this.#o.enforcer.enforce(this.#current?.policy ?? null, this.#o.clock.now());
      this.#armTimer();
      this.emit('enforced', status);
      return status;
    });
    this.#enforceChain = next.catch(() => undefined);
    return next;
  }

  /** Drift check, serialized with applies so a repair never races a new policy. */
  checkDrift(): Promise<string | null> {
    const next = this.#enforceChain.then(() => this.#o.enforcer.checkDrift());
    this.#enforceChain = next.catch(() => undefined);
    return next;
  }

  /** Every mesh peer is gone: let the lock-out guard decide whether to restore mesh access. */
  allPeersLost(): Promise<boolean> {
    const next = this.#enforceChain.then(() => this.#o.enforcer.onAllPeersLost(this.#current?.policy ?? null));
    this.#enforceChain = next.catch(() => undefined);
    return next;
  }

  #armTimer(): void {
    this.#timer?.cancel();
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    const p = this.#current?.policy;
        const times = [p && p.expires > now ? p.expires : undefined, this.#o.enforcer.nextChangeAt].filter((t): t is number => t !== undefined && t > now);
    if (!times.length) return;
    const delay = Math.min(Math.min(...times) - now, 2 ** 31 - 1);
    this.#timer = this.#o.clock.setTimeout(() => void this.enforceNow(), delay);
  }

  /** Waits for in-flight offers and applies (graceful shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#chain;
    await this.#enforceChain;
  }
}

function decodeStored(bytes: Uint8Array): Policy | null {
  const env = decodeEnvelope(bytes);
  if (!env.ok) return null;
  const p = decodePolicy(env.value.payload);
  return p.ok ? p.policy : null;
}
