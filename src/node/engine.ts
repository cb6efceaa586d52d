/**
 * The node's state machine, and the only writer of its trusted state. Every envelope — from
 * gossip, sync, the control API or the policy file — goes through offer(), which is
 * serialized: verify (pure, against the trusted state) → the verified step (the mesh forwards
 * the signed bytes; nothing of this node's state changed yet) → persist (one atomic batch plus
 * the fsynced mirror) → the ordered steps after an accept (enforce → announce → status).
 *
 * The trusted state (src/node/trusted-state.ts) only moves forward: the newest verified root
 * stays trusted after it expires (TUF), the version floor survives a lost policy record or a
 * lost store, and the blocked set survives restarts. On start the copies that survived are
 * merged, the last good policy (or the baseline) is enforced, and only then does anything else
 * run.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Clock, Timer } from '../runtime/clock.js';
import { crashpoint } from '../runtime/faults.js';
import { writeDurable } from '../runtime/files.js';
import type { Logger } from '../runtime/logger.js';
import type { Store } from '../store/store.js';
import { decodePolicy, type Policy } from '../policy/model.js';
import { decodeEnvelope, encodeEnvelope, PAYLOAD_TYPE, type Envelope } from '../trust/envelope.js';
import { decodeRoot, validSigners, type RootDoc } from '../trust/root.js';
import { rootExpired, verifyPolicy, verifyRoot, type Outcome, type Rejection, type TrustedRoot } from '../trust/verify.js';
import type { EnforcementPort, EnforcementStatus, RolloutHealthPort } from './ports.js';
import { floorAfter, judgePolicy } from './accept.js';
import { decideRollout, describeDecision, heldPolicy, type RolloutDecision } from './rollout.js';
import { decodeTrust, encodeTrust, maxFloor, mergeTrust, TRUST_FORMAT, type PolicyFloor, type TrustRecord } from './trusted-state.js';
import { UpdateTraces, type TraceStage, type UpdateTrace } from './trace.js';

export type { TraceStage, UpdateTrace };

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
  /** One accepted policy's per-stage times, once it is enforced or superseded (trace.ts). */
  trace: [UpdateTrace];
  /** The staged-rollout decision changed (hold → enforce, waiting → unhealthy, halted…). */
  rollout: [RolloutView];
}

/** What offer() says the moment an envelope verified, before it is persisted. */
export interface Verified {
  kind: 'policy' | 'root';
  version: number;
  digest: string;
  bytes: Uint8Array;
}

export interface OfferOptions {
  /**
   * The caller will offer this envelope again if it is below threshold (after a sync that may
   * bring a newer root), so that outcome is not reported this time.
   */
  retryBelowThreshold?: boolean;
  /**
   * Called once the envelope verified and will be accepted, before it is persisted: gossip
   * lets gossipsub forward it then. Nothing of this node's state is visible to peers yet
   * (sync serves the current policy only once persisted); the bytes are signed, so a peer
   * that gets them early verifies them itself and risks nothing.
   */
  verified?: (v: Verified) => void;
}

/** Where this node stands in the newest version's staged rollout (for status and alerts). */
export interface RolloutView {
  /** The newest version held, and the one in force (they differ while the rollout holds it back). */
  version: number;
  enforcing: number | null;
  decision: RolloutDecision;
  summary: string;
}

/** What is persisted of a rollout (store kv `rollout`): the version in force, and a halt. */
interface RolloutRecord {
  active: { version: number; digest: string; envelope?: string } | null;
  halted?: { version: number; digest: string; failed: string; reason: string };
}

export interface EngineOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  meshId: string;
  pinned: TrustedRoot;
  pinnedEnvelope: Envelope;
  enforcer: EnforcementPort;
  /**
   * The trusted-state mirror file beside the store (`<dataDir>/trust-state.json`): a second,
   * fsynced copy so that losing the store keeps the root chain, the floor and the blocked set.
   */
  mirrorPath: string;
  /** This node's PeerId: its stage in a staged rollout. Absent: every version is enforced at once. */
  self?: string;
}

/** What start() found that an operator must hear about (the agent turns these into alerts). */
export interface StartReport {
  /** Copies of the trusted state that were missing or unreadable. */
  lostCopies: string[];
  /** Of those, the ones that were present but did not decode (damage, not a fresh node). */
  damagedCopies: string[];
  /** The stored policy could not be used; the baseline is enforced until the floor's version returns. */
  policyLost?: string;
  /** Roots in a surviving copy that no longer verify from the pinned root. */
  rootProblem?: string;
}

/**
 * The steps that run after a policy is accepted and persisted, in this order: enforce (the
 * engine's own), then announce (the mesh forwards it), then status (the auditor gossips what
 * this node now holds). One list a reader can find, instead of a fan-out of listeners.
 */
export interface AcceptSteps {
  /**
   * Runs as soon as an envelope from any source verified, before it is persisted: the mesh
   * pushes a small policy to its peers then (what arrived by gossip, gossipsub forwards itself).
   */
  verified?: (v: Verified, source: Source) => void;
  announce?: (current: CurrentPolicy, source: Source) => void;
  status?: (current: CurrentPolicy) => void;
}

/** How many superseded roots are kept to name `stale-root-signature` (each costs a verification). */
const SUPERSEDED_KEPT = 2;

export class Engine extends EventEmitter<EngineEvents> {
  readonly #o: EngineOptions;
  #root: TrustedRoot;
  /** Root envelopes from the pinned one up, ascending: what sync hands to peers that lag. */
  #roots: { version: number; bytes: Uint8Array; doc: RootDoc }[] = [];
  #current: CurrentPolicy | null = null;
  #floor: PolicyFloor | null = null;
  #blocked: string[] = [];
  #seq = 0;
  #steps: AcceptSteps = {};
  #mirrorChain: Promise<void> = Promise.resolve();
  #mirrorNext: string | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #enforceChain: Promise<unknown> = Promise.resolve();
  #timer: Timer | null = null;
  #stopped = false;
  #report: StartReport = { lostCopies: [], damagedCopies: [] };
  readonly #traces: UpdateTraces;
  /** The version in force; differs from #current while a staged rollout holds it back. */
  #active: CurrentPolicy | null = null;
  #halted: RolloutRecord['halted'] | null = null;
  #health: RolloutHealthPort | null = null;
  #decision: RolloutView | null = null;
  #heldMemo: { key: string; policy: Policy } | null = null;
  #enforcedPolicy: Policy | null = null;
  #reconsiderTimer: Timer | null = null;
  #rolloutChain: Promise<void> = Promise.resolve();

  constructor(o: EngineOptions) {
    super();
    this.#o = o;
    this.#traces = new UpdateTraces(o.clock, o.log, (t) => this.emit('trace', t));
    this.#root = o.pinned;
    this.#roots = [{ version: o.pinned.root.version, bytes: encodeEnvelope(o.pinnedEnvelope), doc: o.pinned.root }];
  }

  get root(): TrustedRoot {
    return this.#root;
  }

  get current(): CurrentPolicy | null {
    return this.#current;
  }

  /** The version floor: the highest policy version this node ever accepted. */
  get floor(): PolicyFloor | null {
    return this.#floor;
  }

  /** True while the newest trusted root is expired: nothing new is accepted. */
  rootExpired(now = this.#o.clock.now()): boolean {
    return rootExpired(this.#root.root, now);
  }

  get startReport(): StartReport {
    return this.#report;
  }

  get enforcement(): EnforcementStatus {
    return this.#o.enforcer.status;
  }

  /** Where this node stands in the newest version's staged rollout (null: it enforces the newest, no rollout). */
  get rollout(): RolloutView | null {
    return this.#decision;
  }

  /** The version in force when a staged rollout holds the newest one back (else null). */
  get heldBack(): CurrentPolicy | null {
    return this.#active && this.#current && this.#active.digest !== this.#current.digest ? this.#active : null;
  }

  /**
   * Plugs in the fleet's signed statuses (the auditor): a held version is reconsidered when
   * they change. Before this is called a held version stays held (no health is visible).
   */
  setRolloutHealth(port: RolloutHealthPort): void {
    this.#health = port;
    port.onChange(() => this.#reconsiderSoon());
    this.#reconsiderSoon();
  }

  /** Registers the steps after an accept (mesh: announce; auditor: status). */
  setSteps(steps: AcceptSteps): void {
    this.#steps = { ...this.#steps, ...steps };
  }

  /** Root envelopes with a version above `after`, ascending. */
  rootsAfter(after: number): Uint8Array[] {
    return this.#roots.filter((r) => r.version > after).map((r) => r.bytes);
  }

  /**
   * Loads the trusted state from every copy that survived, re-verifies the root chain from the
   * pinned root, restores the last good policy, then enforces before returning.
   */
  async start(): Promise<void> {
    const { store, clock, log, meshId } = this.#o;
    const now = clock.now();
    const fromStore = this.#readCopy('store', await store.trust());
    const fromMirror = this.#readCopy('mirror', this.#readMirror());
    const merged = mergeTrust([fromStore, fromMirror]);
    const highest = await store.highest();
    this.#floor = maxFloor(merged?.policy, highest);
    this.#seq = merged?.seq ?? 0;
    this.#blocked = merged?.blocked ?? (await store.getJson<string[]>('blocked')) ?? [];

    // The root chain: every envelope any copy holds, walked up from the pinned root. Expired
    // roots are walked through (TUF); the newest verified root stays trusted even if expired.
    const candidates = [...(await store.roots()).map((r) => r.envelope), ...(merged?.roots ?? []).map((b) => new Uint8Array(Buffer.from(b, 'base64')))];
    this.#walkRoots(candidates);
    if (merged && merged.root.version > this.#root.root.version) {
      this.#report.rootProblem = `the trusted state names root v${merged.root.version} but only v${this.#root.root.version} re-verifies from the pinned root`;
      log.error({ recorded: merged.root.version, verified: this.#root.root.version }, 'trusted root chain is shorter than recorded; new roots are accepted from peers, nothing older');
    }

    const sp = await store.policy();
    if (sp) {
      const v = verifyPolicy(sp.envelope, { root: this.#root, meshId, superseded: this.#superseded() }, now);
      // Validly signed once, under this root or one it superseded: still the last good policy,
      // even if it or the root has expired since (never fail open, never fall back to older).
      const good = v.outcome === 'accepted' || v.outcome === 'expired' || v.outcome === 'root-expired' || v.outcome === 'stale-root-signature';
      const body = good ? this.#bodyOf(sp.envelope) : null;
      const floor = this.#floor;
      if (!body) {
        this.#report.policyLost = `stored policy does not verify (${v.outcome}: ${'reason' in v ? v.reason : ''})`;
      } else if (floor && (body.policy.version < floor.version || (body.policy.version === floor.version && sp.digest !== floor.digest))) {
        this.#report.policyLost = `stored policy v${body.policy.version} is below the version floor v${floor.version}`;
      } else {
        this.#current = { policy: body.policy, envelope: body.envelope, bytes: sp.envelope, digest: sp.digest, acceptedAt: sp.acceptedAt };
        this.#floor = maxFloor(this.#floor, { version: body.policy.version, digest: sp.digest });
      }
    } else if (this.#floor) {
      this.#report.policyLost = `the policy body of v${this.#floor.version} is missing from the store`;
    }
    await this.#loadRollout(now);
    if (this.#report.policyLost) log.error({ reason: this.#report.policyLost, floor: this.#floor?.version ?? null }, 'enforcing the baseline until the policy returns by sync; older versions stay refused');
    if (merged && merged.meshId !== meshId) log.warn({ recorded: merged.meshId }, 'trusted state was recorded for another mesh');
    this.#o.enforcer.restoreBlocked(this.#blocked);
    // Write both copies now: a copy that was lost or damaged is restored at once.
    await this.#persistTrust();
    log.info({ rootVersion: this.#root.root.version, version: this.#current?.policy.version ?? null, floor: this.#floor?.version ?? null, rootExpired: this.rootExpired(now) }, 'state loaded');
    await this.enforceNow();
  }

  /**
   * The version in force across a restart: the recorded one if a rollout held the newest back
   * (re-checked like the stored policy: validly signed under this root chain, below the
   * newest), else the newest (today's behaviour, and what an upgraded node without a record does).
   */
  async #loadRollout(now: number): Promise<void> {
    const cur = this.#current;
    this.#active = cur;
    if (!cur) return;
    const rec = await this.#o.store.getJson<RolloutRecord>('rollout').catch(() => null);
    if (rec !== null) this.#rolloutOnDisk = rec?.active?.envelope || rec?.halted ? 'held' : 'inert';
    if (rec?.halted && rec.halted.version === cur.policy.version && rec.halted.digest === cur.digest) this.#halted = rec.halted;
    const a = rec?.active;
    if (!a || a.digest === cur.digest || !a.envelope || a.version >= cur.policy.version) return;
    const bytes = new Uint8Array(Buffer.from(a.envelope, 'base64'));
    const v = verifyPolicy(bytes, { root: this.#root, meshId: this.#o.meshId, superseded: this.#superseded() }, now);
    const good = v.outcome === 'accepted' || v.outcome === 'expired' || v.outcome === 'root-expired' || v.outcome === 'stale-root-signature';
    const body = good ? this.#bodyOf(bytes) : null;
    if (!body || body.policy.version !== a.version) {
      this.#o.log.warn({ version: a.version }, 'the version a rollout held in force does not verify; enforcing the newest');
      return;
    }
    this.#active = { policy: body.policy, envelope: body.envelope, bytes, digest: a.digest, acceptedAt: 0 };
  }

  /**
   * Records the version in force; its envelope too while it is not the newest (`newest`, the
   * version being accepted, else the current one). Writes are serialized and each one is
   * built when it runs, so the last write is always the latest state (the offer path and
   * the enforce path both write).
   */
  #saveRollout(newest?: string): Promise<void> {
    this.#rolloutChain = this.#rolloutChain.then(async () => {
      const a = this.#active;
      const top = newest ?? this.#current?.digest;
      const rec: RolloutRecord = {
        active: a ? { version: a.policy.version, digest: a.digest, ...(a.digest !== top ? { envelope: Buffer.from(a.bytes).toString('base64') } : {}) } : null,
        ...(this.#halted ? { halted: this.#halted } : {}),
      };
      // A record without a held envelope or a halt is inert: a restart reads it as "the newest
      // is in force", as it reads no record. Replacing one inert record by another changes
      // nothing a restart does, and was a store write between persist and apply on every accept.
      const inert = !rec.active?.envelope && !rec.halted;
      if (inert && this.#rolloutOnDisk === 'inert') return;
      try {
        await this.#o.store.putJson('rollout', rec);
        this.#rolloutOnDisk = inert ? 'inert' : 'held';
      } catch (e) {
        this.#rolloutOnDisk = 'unknown';
        this.#o.log.warn({ err: (e as Error).message }, 'rollout state not saved');
      }
    });
    return this.#rolloutChain;
  }
  /** A rollout held an older version in force when the current one was accepted (its switch is news). */
  #heldWhenAccepted = false;
  /** What the stored rollout record says, as far as a restart is concerned (unknown: not read yet). */
  #rolloutOnDisk: 'inert' | 'held' | 'unknown' = 'unknown';

  #readMirror(): string | undefined {
    try {
      return readFileSync(this.#o.mirrorPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.log.error({ file: this.#o.mirrorPath, err: (e as Error).message }, 'trust-state mirror unreadable');
      return undefined;
    }
  }

  #readCopy(name: string, text: string | undefined): TrustRecord | undefined {
    if (text === undefined) {
      this.#report.lostCopies.push(name);
      return undefined;
    }
    const d = decodeTrust(text);
    if (d.ok) return d.record;
    this.#report.lostCopies.push(name);
    this.#report.damagedCopies.push(name);
    this.#o.log.error({ copy: name, reason: d.reason }, 'trusted-state copy is damaged; using the others');
    return undefined;
  }

  /** Walks candidate root envelopes upward from the trusted root (any order, duplicates fine). */
  #walkRoots(candidates: Uint8Array[]): void {
    const byVersion = new Map<number, Uint8Array[]>();
    for (const bytes of candidates) {
      const env = decodeEnvelope(bytes);
      if (!env.ok || env.value.payloadType !== PAYLOAD_TYPE.root) continue;
      const r = decodeRoot(env.value.payload);
      if (!r.ok) continue;
      byVersion.set(r.root.version, [...(byVersion.get(r.root.version) ?? []), bytes]);
    }
    for (;;) {
      const next = byVersion.get(this.#root.root.version + 1) ?? [];
      const ok = next.map((b) => ({ b, v: verifyRoot(b, this.#root) })).find((x) => x.v.outcome === 'accepted');
      if (!ok || ok.v.outcome !== 'accepted') return;
      this.#root = { root: ok.v.root, digest: ok.v.digest };
      this.#roots.push({ version: ok.v.root.version, bytes: ok.b, doc: ok.v.root });
    }
  }

  #superseded(): RootDoc[] {
    return this.#roots.slice(0, -1).reverse().slice(0, SUPERSEDED_KEPT).map((r) => r.doc);
  }

  /**
   * The body of a stored envelope whose signatures start() has just checked (accepted, or
   * valid but expired / under an expired or superseded root): decoded, not verified again.
   */
  #bodyOf(bytes: Uint8Array): { policy: Policy; envelope: Envelope } | null {
    const env = decodeEnvelope(bytes);
    if (!env.ok) return null;
    const p = decodePolicy(env.value.payload);
    return p.ok ? { policy: p.policy, envelope: env.value } : null;
  }

  #record(): TrustRecord {
    return {
      format: TRUST_FORMAT,
      meshId: this.#o.meshId,
      roots: this.#roots.slice(1).map((r) => Buffer.from(r.bytes).toString('base64')),
      root: { version: this.#root.root.version, digest: this.#root.digest, expires: this.#root.root.expires },
      policy: this.#floor,
      blocked: this.#blocked,
      seq: ++this.#seq,
    };
  }

  /** Writes the trusted state to the store and the mirror (used when no document changes with it). */
  async #persistTrust(): Promise<void> {
    const text = encodeTrust(this.#record());
    await this.#o.store.saveTrust(text);
    await this.#writeMirror(text);
  }

  /**
   * Queues a mirror write; writes are serialized and coalesced (only the newest text is
   * written). The store batch, already committed, is the primary copy: the offer path does not
   * wait for this fsync (a crash in between leaves an older mirror, which the max-merge at
   * start ignores). start() and stop() wait for it.
   */
  #writeMirror(text: string): Promise<void> {
    this.#mirrorNext = text;
    this.#mirrorChain = this.#mirrorChain.then(async () => {
      const next = this.#mirrorNext;
      if (next === null) return;
      this.#mirrorNext = null;
      try {
        await writeDurable(this.#o.mirrorPath, next);
      } catch (e) {
        // The store copy holds; a missing mirror only matters if the store is lost as well.
        this.#o.log.error({ file: this.#o.mirrorPath, err: (e as Error).message }, 'trust-state mirror not written');
      }
    });
    return this.#mirrorChain;
  }

  /**
   * Verify → (opts.verified, the verified step) → persist → the ordered accept steps, one
   * envelope at a time. Resolves once persisted.
   */
  offer(input: Uint8Array | Envelope, source: Source, opts: OfferOptions = {}): Promise<OfferResult> {
    const receivedAt = this.#o.clock.now();
    const next = this.#chain.then(() => this.#offer(input, source, opts, receivedAt));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** Marks a stage of an accepted policy's trace that happens outside the engine (the mesh forwarding it). */
  mark(version: number, digest: string, stage: 'forwarded', detail?: Record<string, number | string>): void {
    this.#traces.mark(version, digest, stage, detail);
  }

  #verified(v: Verified, source: Source, opts: OfferOptions): void {
    opts.verified?.(v);
    this.#steps.verified?.(v, source);
  }

  async #offer(input: Uint8Array | Envelope, source: Source, opts: OfferOptions, receivedAt: number): Promise<OfferResult> {
    const { clock, store, log } = this.#o;
    const retryBelowThreshold = opts.retryBelowThreshold ?? false;
    const decoded = input instanceof Uint8Array ? decodeEnvelope(input) : { ok: true as const, value: input };
    if (!decoded.ok) return this.#reject({ outcome: decoded.outcome, reason: decoded.reason, kind: 'unknown' }, source);
    const env = decoded.value;
    const now = clock.now();
    if (env.payloadType === PAYLOAD_TYPE.root) {
      const v = verifyRoot(env, this.#root);
      if (v.outcome !== 'accepted') return this.#reject({ ...v, kind: 'root' }, source);
      const bytes = input instanceof Uint8Array ? input : encodeEnvelope(env);
      this.#verified({ kind: 'root', version: v.root.version, digest: v.digest, bytes }, source, opts);
      this.#root = { root: v.root, digest: v.digest };
      this.#roots.push({ version: v.root.version, bytes, doc: v.root });
      const text = encodeTrust(this.#record());
      await store.saveRoot({ envelope: bytes, version: v.root.version, digest: v.digest }, text);
      void this.#writeMirror(text);
      log.info({ rootVersion: v.root.version, expired: rootExpired(v.root, now), source: source.kind, peer: source.peer }, 'root rotated');
      this.emit('root', this.#root, source);
      return { outcome: 'accepted', kind: 'root', version: v.root.version, digest: v.digest };
    }
    const v = judgePolicy(env, this.#o.meshId, { root: this.#root, superseded: this.#superseded(), floor: this.#floor, heldDigest: this.#current?.digest ?? null }, now);
    if (v.outcome !== 'accepted') {
      if (v.outcome === 'below-threshold' && retryBelowThreshold) return { ...v, kind: 'policy' };
      return this.#reject({ ...v, kind: 'policy' }, source);
    }
    const bytes = input instanceof Uint8Array ? input : encodeEnvelope(env);
    // The version in force is recorded before the new one is: a crash in between must not
    // come back enforcing a staged version (no record reads as "the newest is in force").
    if (v.policy.rollout && this.#o.self && this.#active) await this.#saveRollout(v.digest);
    this.#halted = null;
    this.#decision = null;
    this.#floor = floorAfter(v);
    this.#traces.begin(v.policy.version, v.digest, source, receivedAt, clock.now());
    // Forwarded before the local write: the bytes are signed, peers verify them themselves.
    this.#verified({ kind: 'policy', version: v.policy.version, digest: v.digest, bytes }, source, opts);
    const text = encodeTrust(this.#record());
    const signers = validSigners(env, this.#root.root.roles.policy, this.#root.root.keys, v.verified).map((k) => k.keyId);
    const accept = { version: v.policy.version, digest: v.digest, signers, acceptedAt: now, source: source.kind, ...(source.peer ? { peer: source.peer } : {}) };
    await store.savePolicy({ envelope: bytes, version: v.policy.version, digest: v.digest, acceptedAt: now }, text, accept);
    void this.#writeMirror(text);
    this.#traces.mark(v.policy.version, v.digest, 'persisted');
    crashpoint('after-persist'); // persisted, not yet enforced: a restart must enforce it
    this.#heldWhenAccepted = this.#active !== null && this.#current !== null && this.#active.digest !== this.#current.digest;
    this.#current = { policy: v.policy, envelope: v.envelope, bytes, digest: v.digest, acceptedAt: now };
    log.info({ version: v.policy.version, digest: v.digest.slice(0, 16), source: source.kind, peer: source.peer }, 'policy accepted');
    this.#afterAccept(this.#current, source);
    return { outcome: 'accepted', kind: 'policy', version: v.policy.version, digest: v.digest };
  }

  /**
   * The ordered steps after an accept (persist has happened): enforce is started first; the
   * mesh announces (forwards) the policy without waiting for the kernel, so the fleet is not
   * slowed by this node's apply; the status step runs once this apply finished, so the status
   * says what is really in force. Observers (metrics, alert bookkeeping) hear 'policy' last.
   */
  #afterAccept(current: CurrentPolicy, source: Source): void {
    const enforced = this.enforceNow();
    this.#steps.announce?.(current, source);
    void enforced.then(() => this.#steps.status?.(current), () => undefined);
    this.emit('policy', current, source);
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
      const now = this.#o.clock.now();
      const policy = await this.#toEnforce(now);
      this.#enforcedPolicy = policy;
      const status = await this.#o.enforcer.enforce(policy, now);
      if (status.state !== 'failed' && status.state !== 'pending') this.#traces.enforced(status.policyVersion);
      await this.#saveBlocked();
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
    const next = this.#enforceChain.then(() => this.#o.enforcer.onAllPeersLost(this.#enforcedPolicy));
    this.#enforceChain = next.catch(() => undefined);
    return next;
  }

  /**
   * The policy to enforce now: the newest, unless its staged rollout holds this node back
   * (then the version in force, minus the nodes the newest removed). Switching is recorded
   * before the new version is applied.
   */
  async #toEnforce(now: number): Promise<Policy | null> {
    const cur = this.#current;
    if (!cur) return null;
    const act = this.#active;
    if (act?.digest === cur.digest) return cur.policy;
    const view = this.#decide(now);
    if (!view || view.decision.kind === 'enforce') {
      this.#active = cur;
      const why = view?.decision.kind === 'enforce' ? view.decision.why : 'no-rollout';
      // Every version without a rollout is enforced at once: news only when a rollout let one
      // through, or when a version without one ends a hold.
      this.#o.log[why === 'no-rollout' && !this.#heldWhenAccepted ? 'debug' : 'info']({ version: cur.policy.version, why, firstSeen: new Date(cur.acceptedAt).toISOString(), enforcing: act?.policy.version ?? null }, 'rollout: enforcing the newest version');
      await this.#saveRollout();
      return cur.policy;
    }
    const key = `${act!.digest}/${cur.digest}`;
    if (this.#heldMemo?.key !== key) this.#heldMemo = { key, policy: heldPolicy(act!.policy, cur.policy) };
    return this.#heldMemo.policy;
  }

  /** Decides (pure) and records the outcome; null when nothing is staged for this node. */
  #decide(now: number): RolloutView | null {
    const cur = this.#current, act = this.#active, self = this.#o.self;
    if (!cur || !self || act?.digest === cur.digest) return null;
    const decision = decideRollout({
      newest: cur.policy, digest: cur.digest, firstSeen: cur.acceptedAt, enforcing: act?.policy ?? null, self, now,
      // Reading the fleet view verifies claims: only a staged rollout needs it.
      health: cur.policy.rollout ? this.#health?.rows() ?? [] : [],
      ...(this.#halted ? { halted: this.#halted } : {}),
    });
    if (decision.kind === 'halted' && !this.#halted) {
      this.#halted = { version: cur.policy.version, digest: cur.digest, failed: decision.failed, reason: decision.reason };
      this.#o.log.error({ version: cur.policy.version, failed: decision.failed, reason: decision.reason }, 'rollout halted: an earlier stage failed; this node keeps its version until a newer one is published');
      void this.#saveRollout();
    }
    const enforcing = decision.kind === 'enforce' ? cur.policy.version : act?.policy.version ?? null;
    const view: RolloutView = { version: cur.policy.version, enforcing, decision, summary: describeDecision(decision, cur.policy.version, now) };
    const changed = JSON.stringify({ ...this.#decision?.decision, healthy: 0 }) !== JSON.stringify({ ...decision, healthy: 0 })
      || (this.#decision?.decision.kind === 'hold' && decision.kind === 'hold' && this.#decision.decision.healthy !== decision.healthy);
    this.#decision = view;
    if (changed) this.emit('rollout', view);
    return view;
  }

  /** Statuses changed: a held version may now go (coalesced; status bursts come fleet-wide). */
  #reconsiderSoon(): void {
    if (this.#reconsiderTimer || this.#stopped || !this.heldBack) return;
    this.#reconsiderTimer = this.#o.clock.setTimeout(() => {
      this.#reconsiderTimer = null;
      const view = this.#decide(this.#o.clock.now());
      if (view?.decision.kind === 'enforce') void this.enforceNow();
    }, 20);
  }

  /** The blocked set is part of the trusted state: persist it whenever enforcement changed it. */
  async #saveBlocked(): Promise<void> {
    const now = this.#o.enforcer.blockedAddresses;
    if (JSON.stringify(now) === JSON.stringify(this.#blocked)) return;
    this.#blocked = [...now];
    await this.#persistTrust().catch((e: unknown) => this.#o.log.warn({ err: (e as Error).message }, 'blocked set not saved'));
  }

  #armTimer(): void {
    this.#timer?.cancel();
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    const p = this.#current?.policy;
    const d = this.heldBack ? this.#decision?.decision : undefined;
    const due = d?.kind === 'hold' && d.why === 'waiting' ? d.until : undefined;
    const times = [p && p.expires > now ? p.expires : undefined, this.#o.enforcer.nextChangeAt, due].filter((t): t is number => t !== undefined && t > now);
    if (!times.length) return;
    const delay = Math.min(Math.min(...times) - now, 2 ** 31 - 1);
    this.#timer = this.#o.clock.setTimeout(() => void this.enforceNow().catch((e: unknown) => this.#o.log.error({ err: (e as Error).message }, 'scheduled enforcement failed')), delay);
  }

  /** Resolves once the offers and the applies they started have finished (nothing is stopped). */
  async settled(): Promise<void> {
    await this.#chain;
    await this.#enforceChain;
  }

  /** Waits for in-flight offers and applies (graceful shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#reconsiderTimer?.cancel();
    await this.#chain;
    await this.#enforceChain;
    await this.#rolloutChain;
    await this.#mirrorChain;
  }
}

/**
 * The narrow port the rooms above see of the node's state machine: what the mesh needs to feed
 * it and serve peers, and what the auditor needs to report on it. Neither can enforce, persist
 * or reach the store through it.
 */
export type NodePort = Pick<Engine, 'current' | 'root' | 'floor' | 'offer' | 'mark' | 'rootsAfter' | 'setSteps' | 'on' | 'off' | 'startReport' | 'rootExpired' | 'rollout' | 'heldBack' | 'setRolloutHealth'>;
