/**
 * Room: the status plane's merge and decision core (pure: no libp2p, no clock, no I/O; the
 * simulator drives it through a simulated transport, the auditor through gossip).
 *
 * Each node signs a compact claim about itself (version, enforcement, alert classes, seq).
 * Digests carry claims between direct neighbours; `merge` is a join (per node: the highest
 * seq wins), so merging is commutative, idempotent and monotonic, and a digest may arrive
 * late, twice or out of order. What neighbours relay is hearsay until its signature is
 * checked: merging verifies nothing, so a fleet-wide change costs a node no verification at
 * all. A claim is verified only when it is *used*: `verified()` (the operator's view,
 * publish --wait, an alert decision) checks the newest candidate, falling back to older ones
 * if it is forged, and caches the outcome; `sample()` checks a few at random each audit
 * round so forgeries surface even where nothing reads them. A claim that fails is never
 * shown as verified, never relayed again, and counted against the neighbour that sent it.
 *
 * A fleet-wide change does not travel as N signed claims (issue 16): a node whose change is
 * only "now enforces the policy it holds, ok" sets its bit in the tally of that version (one
 * bit per node over the policy's node order, merged by OR) and signs no claim; the tally is
 * what neighbours relay. So a change costs each node O(N/8) bytes, not O(N) claims. Bits are
 * hearsay of the weakest kind (unsigned, unattributable): they feed the unverified view
 * (counts, "seeing v"), never a verified row. A verified read that finds a bit ahead of the
 * node's newest verified claim *wants* that claim: the want spreads with the tallies, holders
 * send what they hold, and the node itself signs a fresh claim. The periodic liveness claims
 * carry the new version anyway within one statusInterval.
 *
 * Security trade-off (docs/threat-model.md "Status plane"): a listed peer can relay forged
 * claims. They cannot become verified rows or decisions, but until a read or a sample
 * checks them they can stand in the *unverified* view (counts, freshness used for silence).
 */

/**
 * When a node sends digests (the auditor's timers; a simulator uses the same numbers):
 * its own change `changeDelay` ms after it happens (uniform in the range: a whole fleet
 * changes at once after a policy lands, and statuses must not compete with the policy);
 * news merged from neighbours coalesced into one digest `relayDelay` ms after the first
 * arrives; liveness alone (newer claims that say what the older ones said) coalesced for
 * `livenessRelay` × statusInterval (relayDelayFor); all claims held on a new connection
 * (after `relayDelay`) and every `fullEvery`-th statusInterval (anti-entropy, and what
 * repairs relay suppression).
 */
export const DIGEST_TIMING = Object.freeze({ changeDelay: [1000, 3000] as const, relayDelay: [250, 600] as const, livenessRelay: [0.1, 0.2] as const, fullEvery: 4, wantEvery: 10_000 });

/**
 * How long a node waits before relaying what it merged (one digest for all of it). News — a
 * claim whose state differs from what the hearsay view showed (FleetDigest.merge), a claim a
 * reader asked for, tally bits, a want — goes on after
 * `relayDelay`. Liveness alone waits `livenessRelay` × statusInterval: every node signs one
 * such claim per interval, and relaying each as it came made every claim its own wave through
 * the fleet (N waves per interval, each node sending a digest per wave: 30 agents in one
 * process spent ~5 CPU s per interval on it). Coalesced, a node relays a handful of times per
 * interval, and a claim still crosses a hop in at most 0.2 × statusInterval, far inside
 * silentAfter (2 min against a 30 s interval by default).
 */
export function relayDelayFor(news: boolean, statusInterval: number, random: () => number): number {
  const [lo, hi] = news ? DIGEST_TIMING.relayDelay : DIGEST_TIMING.livenessRelay.map((f) => f * statusInterval);
  return Math.max(lo!, DIGEST_TIMING.relayDelay[0]) + random() * Math.max(0, hi! - lo!);
}

/**
 * When merged claims are relayed: the due time (clock.now() ms) of a new relay, or null when
 * the one already pending (due at `pendingDue`; null: none) goes as soon or sooner. News
 * arriving while a liveness relay waits brings it forward; nothing pushes a relay back.
 */
export function relayDue(pendingDue: number | null, now: number, news: boolean, statusInterval: number, random: () => number): number | null {
  const due = now + relayDelayFor(news, statusInterval, random);
  return pendingDue !== null && pendingDue <= due ? null : due;
}

/**
 * Where a node starts its cycle of `fullEvery` periodic ticks (the full digest and full
 * status go out when the count is a multiple of fullEvery): at random. Counting from 0 made
 * every node's first tick a full one, so a fleet started together — a benchmark, a rollout of
 * the agent, a power cut — sent all its full statuses and full digests in the same interval,
 * every fullEvery intervals (30 agent processes: ~20 CPU s within seconds, and an update
 * published into it took 4 s instead of 0.2). At random, a quarter of the fleet goes each
 * interval. Start-up sends its own full digest and status regardless.
 */
export function firstTick(random: () => number, fullEvery: number = DIGEST_TIMING.fullEvery): number {
  return Math.min(fullEvery - 1, Math.floor(random() * fullEvery));
}

/** When a periodic task first runs: at a random point of its first interval (never at once: start-up sends its own). */
export function firstRunDelay(interval: number, random: () => number): number {
  return interval * (0.1 + 0.9 * random());
}

/** What a claim says that a reader sees (its seq, time and signature aside). */
type ClaimState = Pick<Claim, 'policyVersion' | 'enforcement' | 'digest' | 'rolloutStage' | 'rolloutEnforcing' | 'alerts'>;

/** True when two claims say the same (what a reader sees), whatever their seq and time: the newer is liveness only. */
export function sameState(a: ClaimState, b: ClaimState): boolean {
  return a.policyVersion === b.policyVersion && a.enforcement === b.enforcement && a.digest === b.digest
    && a.rolloutStage === b.rolloutStage && a.rolloutEnforcing === b.rolloutEnforcing
    && a.alerts.length === b.alerts.length && a.alerts.every((x, i) => x === b.alerts[i]);
}

/** What a node's status plane knows of its own state (the part a claim carries). */
export interface OwnState {
  policyVersion: number;
  enforcement: string;
  alerts: readonly string[];
  rolloutStage?: number;
  rolloutEnforcing?: number;
}

/**
 * True when going from `prev` to `next` is the fleet-wide change a tally bit says in full:
 * a newer version, the one the tally counts, enforced ok, the same alerts, no staged
 * rollout (whose gate reads signed stage and digest). Anything else is signed as a claim.
 */
export function isTallyChange(prev: OwnState | undefined, next: OwnState, tallyVersion: number): boolean {
  return !!prev && next.policyVersion > prev.policyVersion && next.policyVersion === tallyVersion && next.enforcement === 'ok'
    && !next.rolloutStage && !next.rolloutEnforcing && !prev.rolloutStage && !prev.rolloutEnforcing
    && next.alerts.length === prev.alerts.length && next.alerts.every((a, i) => a === prev.alerts[i]);
}

/** A tally or want on the wire: a bitmap over the node order of policy `version`. */
export interface Bits {
  version: number;
  bits: Uint8Array;
}

/**
 * A node list's member set and bit index, built once per array: a simulator gives all its
 * nodes the same array, so 10,000 nodes share one index instead of holding 10⁸ entries.
 */
const lookups = new WeakMap<readonly string[], { set: ReadonlySet<string>; index: ReadonlyMap<string, number> }>();
function lookupOf(ids: readonly string[]): { set: ReadonlySet<string>; index: ReadonlyMap<string, number> } {
  let l = lookups.get(ids);
  if (!l) lookups.set(ids, (l = { set: new Set(ids), index: new Map(ids.map((id, i) => [id, i])) }));
  return l;
}

/** Versions ahead of the held policy whose tallies are kept until it arrives. */
const EARLY_VERSIONS = 4;
/** Tally lengths kept per early version (the policy's node count is not known before it arrives). */
const EARLY_LENGTHS = 4;

export type TallyVerdict = { ok: true; changed: string[] } | { ok: false; reason: string };

export interface Claim {
  peerId: string;
  policyVersion: number;
  enforcement: string;
  alerts: string[];
  seq: number;
  time: number;
  /** The node's stage in the staged rollout of policyVersion (1-based), when it has one. */
  rolloutStage?: number;
  /** Held back by that rollout: the older version it still enforces. */
  rolloutEnforcing?: number;
  /** Hex SHA-256 of the policy at policyVersion: carried with a staged rollout only. */
  digest?: string;
  signature: Uint8Array;
}

/** True when the claim's signature verifies against the key inside its PeerId. */
export type ClaimVerifier = (c: Claim) => boolean;

export interface Held {
  claim: Claim;
  /** The neighbour (PeerId) that handed it over; the node itself for its own claims. */
  from: string;
  /** Local time this seq was first learned: freshness (silence) is judged on it. */
  learnedAt: number;
  verified: boolean;
}

export interface DigestOptions {
  self: string;
  verify: ClaimVerifier;
  /** Unverified claims kept per node (a forged high seq cannot evict the real one). */
  maxCandidates?: number;
  /**
   * Claims stamped (time or seq: a node's seq follows its clock) further ahead of the
   * receiver's clock than this are dropped (ms): a forged far-future seq would shadow the
   * node's real claims for as long as it stays ahead.
   */
  maxAhead?: number;
  /**
   * Relay suppression (as Trickle's k): a changed claim already heard from this many
   * neighbours before the next digest is left out of it — they, and most of ours, have it.
   * The periodic full digest repairs whatever suppression misses. 0 (the default): never
   * suppress. A digest goes to every neighbour at once, so a claim two neighbours sent us may
   * be exactly what a third lacks: with 2, the sim left 25 of 60 views incomplete for up to
   * two minutes (until the periodic full digest); with 0 every view completed within seconds.
   */
  suppressAfter?: number;
}

interface Entry {
  good?: Held;
  /** Unverified claims above good's seq, highest seq first. */
  candidates: Held[];
  /** Neighbours that handed over the current newest claim (for relay suppression). */
  heard: Set<string>;
}

export interface MergeResult {
  /** Nodes whose newest claim changed. */
  changed: string[];
  /**
   * Some changed claim says something new: not what the hearsay view showed for that node
   * (the claim it replaced, or the node's tally bit when that is ahead of it), or it is one a
   * reader asked for (`wanted`).
   */
  news: boolean;
  /** Some changed claim answers a want this node issued or passed on: a reader is waiting for it (relay it to every neighbour). */
  wanted: boolean;
  /** Claims about this node that it did not hand in itself (echoes, forgeries or a twin). */
  aboutSelf: Claim[];
}

const sigKey = (c: Claim) => `${c.peerId}:${c.seq}:${Buffer.from(c.signature).toString('base64')}`;

export class FleetDigest {
  #o: Required<DigestOptions>;
  #entries = new Map<string, Entry>();
  #members: ReadonlySet<string> = new Set<string>();
  /** The array setMembers was last given (a simulator hands every node the same one). */
  #membersRef: readonly string[] | undefined;
  #changed = new Set<string>();
  /** Claims whose signatures failed (bounded): never merged again, never relayed. */
  #forged = new Set<string>();
  #forgeriesBy = new Map<string, number>();
  #verifications = 0;
  /** The tally: the policy version it counts, that policy's node order, one bit per node. */
  #tallyVersion = 0;
  #order: readonly string[] = [];
  #index: ReadonlyMap<string, number> = new Map<string, number>();
  #bits = new Uint8Array(0);
  /**
   * When this tally started (the policy arrived here): a bit's freshness. Bits prove nothing
   * about liveness (claims do); one time per tally, not per bit, keeps a 10,000-node tally at
   * 1.25 KB.
   */
  #tallyAt = 0;
  #tallyChanged = false;
  #tallyN = 0;
  /** Nodes whose signed claims this node asks its neighbours for, and when each was last asked (dedupe). */
  #wantOut = new Set<string>();
  /**
   * Tallies of versions newer than the policy held, OR-merged per version and length (at most
   * EARLY_VERSIONS, the lowest kept; EARLY_LENGTHS lengths each).
   */
  #early = new Map<number, Map<number, Uint8Array>>();
  #wantedAt = new Map<string, number>();
  /**
   * When this node last asked for a node's claim (want(): a read here, or a neighbour's want
   * passed on). Answering a want does not count: a peer sending wants for everyone must not
   * turn every liveness claim into news.
   */
  #askedAt = new Map<string, number>();

  constructor(o: DigestOptions) {
    this.#o = { maxCandidates: 4, maxAhead: 10 * 60_000, suppressAfter: 0, ...o };
  }

  /** Signature checks made so far (the cost the status plane exists to keep small). */
  get verifications(): number {
    return this.#verifications;
  }

  /**
   * The policy's nodes: claims about anyone else are ignored, and held ones dropped. With
   * `version` (the policy's), the order of `peerIds` is the tally's bit order; a new version
   * starts an empty tally.
   */
  setMembers(peerIds: readonly string[], version = 0, now = 0): void {
    if (peerIds === this.#membersRef && version === this.#tallyVersion) return;
    const order = peerIds;
    const shared = lookupOf(order);
    this.#members = shared.set;
    this.#membersRef = order;
    for (const id of [...this.#entries.keys()]) if (!this.isMember(id)) this.#entries.delete(id);
    if (version !== this.#tallyVersion || order.length !== this.#order.length || order.some((id, i) => id !== this.#order[i])) {
      this.#tallyVersion = version;
      this.#order = version ? order : [];
      this.#index = version ? shared.index : new Map();
      this.#bits = new Uint8Array(Math.ceil(this.#order.length / 8));
      this.#tallyN = 0;
      this.#tallyAt = now;
      this.#tallyChanged = false;
      this.#wantOut.clear();
      this.#wantedAt.clear();
      this.#askedAt.clear();
      // Tallies of this version that came before the policy did (a node that learns a version
      // last would otherwise never hear the bits its neighbours sent before it).
      const early = this.#early.get(version);
      for (const v of [...this.#early.keys()]) if (v <= version) this.#early.delete(v);
      // The lengths that do not fit this policy are dropped here (mergeTally: malformed).
      if (early && version) for (const bits of early.values()) this.mergeTally({ version, bits });
    }
  }

  /** The policy version the tally counts (0: none). */
  get tallyVersion(): number {
    return this.#tallyVersion;
  }

  /** Whether the tally has this node's bit: it (says it) enforces tallyVersion, ok. */
  onTally(peerId: string): boolean {
    const i = this.#index.get(peerId);
    return i !== undefined && (this.#bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** How many nodes the tally counts. */
  tallyCount(): number {
    return this.#tallyN;
  }

  /**
   * How many nodes the hearsay view (claimRow unverified) shows on `version`, without a row
   * per node: the tally's count, corrected by the claims held (a simulator asks this of
   * 10,000 nodes every 50 ms).
   */
  countAt(version: number): number {
    let n = version === this.#tallyVersion ? this.#tallyN : 0;
    for (const [id, e] of this.#entries) {
      const v = (e.candidates[0] ?? e.good)?.claim.policyVersion ?? 0;
      const bit = this.onTally(id);
      if (bit && v > this.#tallyVersion) n += (v === version ? 1 : 0) - (version === this.#tallyVersion ? 1 : 0);
      else if (!bit && v === version) n++;
    }
    return n;
  }

  /**
   * What this node's own state change calls for (the auditor's publishDigest, and the
   * simulator's): sets our bit while we enforce tallyVersion ok (no rollout), then 'tally' for
   * a change the bit says in full (isTallyChange), 'claim' for any other change or a periodic
   * (liveness) step, 'none' when nothing changed. Entering `pending` (a version held, its apply
   * not run yet) is 'none' unless periodic: the apply's outcome follows within moments, and
   * until then the last claim (the previous version, as enforced) is still the truth.
   */
  ownStep(last: OwnState | undefined, next: OwnState, changed: boolean, periodic: boolean): 'tally' | 'claim' | 'none' {
    const tallied = next.policyVersion === this.#tallyVersion && next.enforcement === 'ok' && !next.rolloutStage && !next.rolloutEnforcing;
    if (tallied) this.mark(this.#o.self);
    if (!periodic && next.enforcement === 'pending') return 'none';
    if (!periodic && changed && tallied && isTallyChange(last, next, this.#tallyVersion)) return 'tally';
    return periodic || changed ? 'claim' : 'none';
  }

  /** A set bit's freshness: when its tally started here (0: not set). */
  bitLearnedAt(peerId: string): number {
    return this.onTally(peerId) ? this.#tallyAt : 0;
  }

  /** Sets a node's bit (this node's own, once it enforces tallyVersion ok). */
  mark(peerId: string): void {
    const i = this.#index.get(peerId);
    if (i === undefined || this.onTally(peerId)) return;
    this.#bits[i >> 3]! |= 1 << (i & 7);
    this.#tallyN++;
    this.#tallyChanged = true;
  }

  /**
   * Joins a neighbour's tally (OR). A tally of another version is ignored (the sender holds
   * another policy: its bit order is not ours); one whose length or padding does not fit the
   * policy's node count is malformed (the sender is struck).
   */
  mergeTally(t: Bits): TallyVerdict {
    if (t.version > this.#tallyVersion) { this.#keepEarly(t); return { ok: true, changed: [] }; }
    const bad = this.#badBits(t);
    if (bad) return bad === 'other' ? { ok: true, changed: [] } : { ok: false, reason: bad };
    const changed: string[] = [];
    for (let b = 0; b < t.bits.length; b++) {
      const fresh = t.bits[b]! & ~this.#bits[b]!;
      if (!fresh) continue;
      this.#bits[b]! |= fresh;
      for (let k = 0; k < 8; k++) if (fresh & (1 << k)) { changed.push(this.#order[b * 8 + k]!); this.#tallyN++; }
    }
    if (changed.length) this.#tallyChanged = true;
    return { ok: true, changed };
  }

  /** The whole tally, when any bit is set (a new neighbour's copy: leaves what the next delta sends alone). */
  tallyFull(): Bits | undefined {
    return this.tallyCount() > 0 ? this.#tallyCopy() : undefined;
  }

  /** The tally to send when it changed since the last call (or always, with `full`). */
  tallyDelta(full = false): Bits | undefined {
    const send = (full && this.tallyCount() > 0) || this.#tallyChanged;
    this.#tallyChanged = false;
    return send ? this.#tallyCopy() : undefined;
  }

  #tallyCopy(): Bits | undefined {
    return this.#tallyVersion ? { version: this.#tallyVersion, bits: new Uint8Array(this.#bits) } : undefined;
  }

  /**
   * A verified read found these nodes' bits ahead of their newest verified claim: ask for
   * their claims (each at most once per `every` ms). Returns how many were added.
   */
  want(peerIds: Iterable<string>, now: number, every: number = DIGEST_TIMING.wantEvery): number {
    let n = 0;
    for (const id of peerIds) {
      if (id === this.#o.self || !this.onTally(id) || (this.newest(id)?.claim.policyVersion ?? 0) >= this.#tallyVersion) continue;
      if (now - (this.#wantedAt.get(id) ?? -Infinity) < every) continue;
      this.#wantedAt.set(id, now);
      this.#askedAt.set(id, now);
      this.#wantOut.add(id);
      n++;
    }
    return n;
  }

  /**
   * A neighbour's want: claims we hold at tallyVersion or newer go out in the next digest
   * (each at most once per `every` ms); wants for nodes we hold no such claim of are passed on
   * (only for nodes on our tally, once per `every`: a want cannot make the fleet chase a node
   * nobody says is there). `self`: this node itself is wanted (it signs a fresh claim).
   */
  mergeWant(t: Bits, now: number, every: number = DIGEST_TIMING.wantEvery): { ok: true; self: boolean; send: number; passed: number } | { ok: false; reason: string } {
    const bad = this.#badBits(t);
    if (bad) return bad === 'other' ? { ok: true, self: false, send: 0, passed: 0 } : { ok: false, reason: bad };
    let self = false, send = 0, passed = 0;
    for (let b = 0; b < t.bits.length; b++) {
      for (let x = t.bits[b]!; x; x &= x - 1) {
        const id = this.#order[b * 8 + Math.log2(x & -x)]!;
        const h = this.newest(id);
        const held = !!h && h.claim.policyVersion >= this.#tallyVersion;
        if (held || id === this.#o.self) {
          if (now - (this.#wantedAt.get(id) ?? -Infinity) < every) continue;
          this.#wantedAt.set(id, now);
          if (held) { this.#changed.add(id); send++; } else self = true;
        } else passed += this.want([id], now, every);
      }
    }
    return { ok: true, self, send, passed };
  }

  /** The want to send (cleared by the call), if any. */
  wantDelta(): Bits | undefined {
    if (!this.#wantOut.size || !this.#tallyVersion) return undefined;
    const bits = new Uint8Array(this.#bits.length);
    for (const id of this.#wantOut) { const i = this.#index.get(id)!; bits[i >> 3]! |= 1 << (i & 7); }
    this.#wantOut.clear();
    return { version: this.#tallyVersion, bits };
  }

  #keepEarly(t: Bits): void {
    let byLength = this.#early.get(t.version);
    if (!byLength) this.#early.set(t.version, (byLength = new Map()));
    const held = byLength.get(t.bits.length);
    if (held) { for (let i = 0; i < held.length; i++) held[i]! |= t.bits[i]!; return; }
    // Which length fits is known only when the policy arrives: a tally of another length (a
    // liar's) is kept beside the others, never in their place. Past EARLY_LENGTHS a new length
    // is dropped, unless it is the held policy's (node lists seldom change size): that one
    // takes the place of the oldest other.
    if (byLength.size >= EARLY_LENGTHS) {
      if (t.bits.length !== this.#bits.length) return;
      byLength.delete([...byLength.keys()].find((n) => n !== this.#bits.length)!);
    }
    byLength.set(t.bits.length, new Uint8Array(t.bits));
    // A liar's far-future versions go first: the next real version is the lowest above ours.
    while (this.#early.size > EARLY_VERSIONS) this.#early.delete(Math.max(...this.#early.keys()));
  }

  /** Why a tally or want cannot be merged: 'other' (another policy version: ignored), or why it is malformed. */
  bitsProblem(t: Bits): string | 'other' | undefined {
    return this.#badBits(t);
  }

  #badBits(t: Bits): string | 'other' | undefined {
    if (t.version !== this.#tallyVersion || !this.#tallyVersion) return 'other';
    if (t.bits.length !== this.#bits.length) return 'tally length does not fit the policy';
    const spare = this.#bits.length * 8 - this.#order.length;
    if (spare && t.bits[t.bits.length - 1]! >> (8 - spare)) return 'tally sets bits past the policy\'s nodes';
    return undefined;
  }

  isMember(peerId: string): boolean {
    return peerId === this.#o.self || this.#members.has(peerId);
  }

  /** This node's own claim: signed here, so trusted without a check. */
  own(claim: Claim, now: number): void {
    const e = this.#entry(claim.peerId);
    if (e.good && e.good.claim.seq >= claim.seq) return;
    e.good = { claim, from: this.#o.self, learnedAt: now, verified: true };
    e.candidates = e.candidates.filter((c) => c.claim.seq > claim.seq);
    this.#changed.add(claim.peerId);
  }

  /** Joins claims a neighbour sent. Verifies nothing. */
  merge(claims: readonly Claim[], from: string, now: number): MergeResult {
    const out: MergeResult = { changed: [], news: false, wanted: false, aboutSelf: [] };
    for (const c of claims) {
      if (!this.isMember(c.peerId) || c.time > now + this.#o.maxAhead || c.seq > now + this.#o.maxAhead) continue;
      if (this.#forged.size && this.#forged.has(sigKey(c))) continue; // the key (base64 of the signature) only when some forgery is held
      if (c.peerId === this.#o.self) {
        const mine = this.#entries.get(c.peerId)?.good?.claim;
        if (!mine || mine.seq !== c.seq || !sameBytes(mine.signature, c.signature)) out.aboutSelf.push(c);
        continue;
      }
      const e = this.#entry(c.peerId);
      if (e.good && c.seq <= e.good.claim.seq) continue; // stale: never overwrites a newer verified claim
      const top = this.newest(c.peerId)?.claim;
      if (top && top.seq === c.seq && sameBytes(top.signature, c.signature)) { e.heard.add(from); continue; }
      if (e.candidates.some((h) => h.claim.seq === c.seq && sameBytes(h.claim.signature, c.signature))) continue;
      const before = this.newest(c.peerId)?.claim;
      e.candidates.push({ claim: c, from, learnedAt: now, verified: false });
      e.candidates.sort((a, b) => b.claim.seq - a.claim.seq);
      if (e.candidates.length > this.#o.maxCandidates) e.candidates.length = this.#o.maxCandidates;
      if (this.newest(c.peerId)?.claim !== before) {
        e.heard = new Set([from]);
        out.changed.push(c.peerId);
        const shown = this.#shownBefore(c.peerId, before);
        const wanted = this.#fillsAsk(c, before, now);
        if (wanted) out.wanted = true;
        if (!shown || !sameState(shown, c) || wanted) out.news = true;
        this.#changed.add(c.peerId);
      }
    }
    return out;
  }

  /**
   * What the hearsay view showed for a node before `before` was replaced: the claim, or, when
   * the node's tally bit is ahead of it, what the bit says (claimRow). A newer claim that says
   * the same is liveness, not news: after a fleet-wide change every node's next periodic claim
   * repeats its bit, and relaying each as news made N fast waves per change.
   */
  #shownBefore(peerId: string, before: Claim | undefined): ClaimState | undefined {
    if (!this.onTally(peerId) || (before?.policyVersion ?? 0) >= this.#tallyVersion) return before;
    return { policyVersion: this.#tallyVersion, enforcement: 'ok', alerts: before?.alerts ?? [] };
  }

  /**
   * Whether a claim is what this node asked for (want(), within the last wantEvery): the first
   * claim at the tally's version for a node whose bit was ahead of its newest claim. Once that
   * gap is filled, later claims are judged as any other.
   */
  #fillsAsk(c: Claim, before: Claim | undefined, now: number): boolean {
    return now - (this.#askedAt.get(c.peerId) ?? -Infinity) < DIGEST_TIMING.wantEvery
      && c.policyVersion >= this.#tallyVersion && (before?.policyVersion ?? 0) < this.#tallyVersion;
  }

  /** The newest claim held for a node, verified or not (hearsay: counts, freshness). */
  newest(peerId: string): Held | undefined {
    const e = this.#entries.get(peerId);
    return e?.candidates[0] ?? e?.good;
  }

  /**
   * The newest claim for a node whose signature verifies; checks candidates newest first,
   * drops forged ones (counted against their sender) and keeps the result.
   */
  verified(peerId: string): Held | undefined {
    const e = this.#entries.get(peerId);
    if (!e) return undefined;
    while (e.candidates.length) {
      const h = e.candidates.shift()!;
      this.#verifications++;
      if (this.#o.verify(h.claim)) {
        e.good = { ...h, verified: true };
        e.candidates = e.candidates.filter((c) => c.claim.seq > h.claim.seq);
        return e.good;
      }
      this.#markForged(h);
      e.heard = new Set();
      this.#changed.add(peerId); // the next digest relays what is left, not the forgery
    }
    return e.good;
  }

  /** Verifies the newest claim of up to `k` nodes picked by `pick(n)` ∈ [0, n). Returns the forgeries found. */
  sample(k: number, pick: (n: number) => number): number {
    const open = [...this.#entries].filter(([, e]) => e.candidates.length).map(([id]) => id);
    let found = 0;
    for (let i = 0; i < k && open.length; i++) {
      const [id] = open.splice(pick(open.length), 1);
      const before = this.#forgeries();
      this.verified(id!);
      found += this.#forgeries() - before;
    }
    return found;
  }

  /** How many forged claims a neighbour has handed over. */
  forgeriesBy(from: string): number {
    return this.#forgeriesBy.get(from) ?? 0;
  }

  /**
   * The newest claim of every node that changed since the last call (what the next digest
   * carries), less those already heard from `suppressAfter` neighbours. Our own always goes.
   */
  delta(): Claim[] {
    const ids = [...this.#changed];
    this.#changed.clear();
    const k = this.#o.suppressAfter;
    return ids.flatMap((id) => {
      const h = this.newest(id);
      if (!h) return [];
      if (k > 0 && id !== this.#o.self && (this.#entries.get(id)?.heard.size ?? 0) >= k) return [];
      return [h.claim];
    });
  }

  /** The newest claim of every node held (the periodic full digest: anti-entropy for late joiners). */
  all(): Claim[] {
    return [...this.#entries.keys()].flatMap((id) => { const h = this.newest(id); return h ? [h.claim] : []; });
  }

  #entry(peerId: string): Entry {
    let e = this.#entries.get(peerId);
    if (!e) this.#entries.set(peerId, (e = { candidates: [], heard: new Set() }));
    return e;
  }

  #markForged(h: Held): void {
    if (this.#forged.size >= 4096) this.#forged.clear();
    this.#forged.add(sigKey(h.claim));
    this.#forgeriesBy.set(h.from, (this.#forgeriesBy.get(h.from) ?? 0) + 1);
  }

  #forgeries(): number {
    let n = 0;
    for (const v of this.#forgeriesBy.values()) n += v;
    return n;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A fleet row's status facts as the status plane knows them. */
export interface ClaimRow {
  policyVersion: number;
  enforcement: string;
  alerts: string[];
  rolloutStage?: number;
  rolloutEnforcing?: number;
  digest?: string;
  seq: number;
  time: number;
  learnedAt: number;
  verified: boolean;
}

/**
 * What the fleet view shows for a node: its newest *verified* claim when `verifiedOnly`
 * (operator reads, publish --wait, rollout decisions), else its newest claim of any kind
 * (background silence judgement, which `sample` keeps honest).
 */
export function claimRow(d: FleetDigest, peerId: string, verifiedOnly: boolean): ClaimRow | undefined {
  const h = verifiedOnly ? d.verified(peerId) : d.newest(peerId);
  // Hearsay: a tally bit ahead of the newest claim says the node enforces tallyVersion, ok.
  const bit = !verifiedOnly && d.onTally(peerId) && (h?.claim.policyVersion ?? 0) < d.tallyVersion;
  if (bit) {
    const at = d.bitLearnedAt(peerId);
    return { policyVersion: d.tallyVersion, enforcement: 'ok', alerts: h?.claim.alerts ?? [], seq: h?.claim.seq ?? 0, time: h?.claim.time ?? at, learnedAt: Math.max(h?.learnedAt ?? 0, at), verified: false };
  }
  if (!h) return undefined;
  const c = h.claim;
  return {
    policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts, seq: c.seq, time: c.time, learnedAt: h.learnedAt, verified: h.verified,
    ...(c.rolloutStage ? { rolloutStage: c.rolloutStage } : {}), ...(c.rolloutEnforcing ? { rolloutEnforcing: c.rolloutEnforcing } : {}),
    ...(c.digest ? { digest: c.digest } : {}),
  };
}
