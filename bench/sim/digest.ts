/**
 * The digest status plane (issue 16) in the simulator: every node runs the product's own
 * FleetDigest (src/audit/status-digest.ts) with real signed claims (signClaim with the node's
 * key) and the real verifier (claimVerifier), and digests travel encoded by the real encoder
 * (encodeDigests) and decoded by the real decoder (decodeDigest) after the real budget charge
 * (Budgets.digest). The schedule and decisions are the auditor's (src/audit/auditor.ts):
 *  - before the change every node's last claim said v1, ok (the steady state);
 *  - a change: after DIGEST_TIMING.changeDelay (statusDelay), isTallyChange decides: the
 *    v1 → v2 change sets the node's tally bit (mark) and signs nothing; any other change signs
 *    a claim and own()s it; then delta(), tallyDelta() and wantDelta() to every connection;
 *  - a digest arrives: charge, decode, merge() (no signature check), mergeTally(), mergeWant()
 *    (wanted itself: sign a fresh claim now); if anything changed, a digest to every
 *    connection when relayDue says (coalesced: news after DIGEST_TIMING.relayDelay,
 *    liveness alone after a fraction of the statusInterval);
 *  - read(i): the operator's verified read at node i (`status --mesh`), which wants the claims
 *    behind its bits, until every row verifies (readDone);
 *  - every statusInterval (jittered 0.9–1.1) from the node's first change (the agent's first
 *    tick comes at a random point of its first interval after start-up, firstRunDelay; the
 *    simulated fleet has no start-up, and its ticks start one interval after the change, so
 *    the change's window holds no liveness traffic): a fresh claim and
 *    delta(); every fullEvery-th, all().
 * Digests are published on the digest topic and never forwarded (the validator answers
 * Ignore), so gossipsub's flood publish delivers each to the sender's direct connections only.
 * What the simulator does not run: the full signed status every fullEvery-th tick (that is
 * the current plane's traffic), the full digest on a new connection (the fleet's connections
 * do not change without a partition), the audit round's sample() (it starts only after
 * silentAfter), and a steady state before the change (views start empty, as the current
 * plane's do). Each digest message is decoded once and the claims shared by its receivers:
 * every receiver gets the same bytes, and merge() never mutates a claim.
 */
import { seededRandom, type Random } from '../../src/runtime/random.js';
import { claimRow, DIGEST_TIMING, FleetDigest, firstTick, relayDue, type OwnState } from '../../src/audit/status-digest.js';
import { claimVerifier, decodeDigest, encodeDigests, nodeRef, signClaim, type DigestVerdict } from '../../src/audit/status-claims.js';
import { fleetView, newerClaim, statusDelay, type NodeStatus } from '../../src/audit/status.js';
import type { Verdict } from './gossipsub.js';
import { everyStatusInterval, SILENT_AFTER, STATUS_INTERVAL, type StatusFleet, type StatusPlaneSim } from './status.js';

export class DigestStatusPlane implements StatusPlaneSim {
  readonly name = 'signed claims in neighbour digests (digest)';
  readonly perOrigin = false;
  #f!: StatusFleet;
  #digests: FleetDigest[] = [];
  #refs = new Map<string, string>();
  #publishing: Promise<void>[] = [];
  #lastState: OwnState[] = [];
  #nonce = 0;
  #seq!: Float64Array;
  #ticks!: Uint32Array;
  #pending!: Uint8Array;
  #relay!: Uint8Array;
  #relayDue!: Float64Array;
  #relayTimer: ({ cancel(): void } | undefined)[] = [];
  #relayFull!: Uint8Array;
  #periodic!: Uint8Array;
  #jitter!: Random;

  /** `suppressAfter`: FleetDigest's relay suppression (undefined: the product's default, as the auditor runs it). */
  constructor(readonly options: { suppressAfter?: number } = {}) {}

  start(fleet: StatusFleet): void {
    this.#f = fleet;
    const verify = claimVerifier(fleet.meshId);
    this.#digests = fleet.peerIds.map((self) => {
      const d = new FleetDigest({ self, verify, ...(this.options.suppressAfter === undefined ? {} : { suppressAfter: this.options.suppressAfter }) });
      d.setMembers(fleet.peerIds, fleet.state(0).policyVersion);
      return d;
    });
    this.#lastState = fleet.peerIds.map((_, i) => this.#own(i));
    this.#refs = new Map(fleet.peerIds.map((id) => [nodeRef(id), id]));
    this.#publishing = Array.from({ length: fleet.n }, () => Promise.resolve());
    this.#seq = new Float64Array(fleet.n);
    this.#ticks = new Uint32Array(fleet.n);
    this.#pending = new Uint8Array(fleet.n);
    this.#relay = new Uint8Array(fleet.n);
    this.#relayDue = new Float64Array(fleet.n);
    this.#relayFull = new Uint8Array(fleet.n);
    this.#periodic = new Uint8Array(fleet.n);
    this.#jitter = seededRandom(fleet.n);
  }

  /** Node i's FleetDigest (the product's), for checks. */
  digest(i: number): FleetDigest {
    return this.#digests[i]!;
  }

  changed(i: number): void {
    const f = this.#f;
    if (!this.#periodic[i]) {
      // The auditor's #tick every statusInterval, from the node's first change on; its own
      // generator, so the shared stream is the same whether or not it fires within a run.
      this.#periodic[i] = 1;
      // The change falls anywhere in the node's cycle of fullEvery ticks (its count runs from start-up).
      this.#ticks[i] = firstTick(() => this.#jitter.next());
      everyStatusInterval(f.clock, this.#jitter, () => this.#publish(i, { periodic: true, full: this.#ticks[i]!++ % DIGEST_TIMING.fullEvery === 0 }));
    }
    if (this.#pending[i]) return; // the auditor's #soon(): one digest per burst of changes
    this.#pending[i] = 1;
    // statusDelay is DIGEST_TIMING.changeDelay (uniform in [1000, 3000] ms), as the auditor uses it.
    f.clock.setTimeout(() => {
      this.#pending[i] = 0;
      return this.#publish(i, {});
    }, statusDelay(f.random.next()));
  }

  #own(i: number): OwnState {
    const st = this.#f.state(i);
    return { policyVersion: st.policyVersion, enforcement: st.enforcement, alerts: [] };
  }

  /** The auditor's #members(): the tally counts the policy version node i holds. */
  #members(i: number): FleetDigest {
    const d = this.#digests[i]!;
    d.setMembers(this.#f.peerIds, this.#f.state(i).policyVersion, this.#f.clock.now());
    return d;
  }

  /** The auditor's publishDigest: a tally bit or a fresh claim when the node's state changed (or periodic), then delta() or all(), the tally and the want. */
  #publish(i: number, opts: { periodic?: boolean; full?: boolean }): Promise<void> {
    this.#publishing[i] = this.#publishing[i]!.then(async () => {
      const f = this.#f;
      const d = this.#members(i);
      const st = this.#own(i);
      const last = this.#lastState[i]!;
      const changed = st.policyVersion !== last.policyVersion || st.enforcement !== last.enforcement;
      const step = d.ownStep(last, st, changed, !!opts.periodic);
      if (step !== 'none') this.#lastState[i] = st;
      if (step === 'claim') {
        const now = f.clock.now();
        this.#seq[i] = Math.max(this.#seq[i]! + 1, now);
        const claim = await signClaim(f.meshId, { peerId: f.peerIds[i]!, policyVersion: st.policyVersion, enforcement: st.enforcement, alerts: [], seq: this.#seq[i]!, time: now }, await f.key(i));
        d.own(claim, f.clock.now());
      }
      const claims = opts.full ? d.all() : d.delta();
      if (opts.full) d.delta();
      // A nonce as the auditor sends (its bytes; the simulated gossip never dedupes by content).
      const extra = { tally: d.tallyDelta(opts.full), want: d.wantDelta(), nonce: 1 + (this.#nonce++ % 0xffff_fffe) };
      for (const bytes of encodeDigests(claims, extra)) {
        let decoded: DigestVerdict | undefined;
        const decode = () => (decoded ??= decodeDigest(bytes, (ref) => this.#refs.get(ref)));
        f.publish(i, bytes, (to, from) => this.#receive(to, from, decode));
      }
    });
    return this.#publishing[i]!;
  }

  /** The digest topic's validator and #receiveDigest: charge, decode, merge, relay a moment later; never forwarded. */
  #receive(to: number, from: number, decode: () => DigestVerdict): Verdict {
    const f = this.#f;
    const fromId = f.peerIds[from]!;
    if (!f.budgets(to).digest(fromId).ok) return 'ignore';
    const d = decode();
    if (!d.ok) {
      f.penalise(to)(fromId, 'invalid-status', 'invalid digest');
      return 'reject';
    }
    const digest = this.#members(to);
    for (const t of [d.tally, d.want]) {
      const bad = t && digest.bitsProblem(t);
      if (bad && bad !== 'other') {
        f.penalise(to)(fromId, 'invalid-status', 'invalid digest');
        return 'reject';
      }
    }
    const now = f.clock.now();
    const r = digest.merge(d.claims, fromId, now);
    if (r.changed.length) this.#relaySoon(to, false, r.news);
    if (d.tally) {
      const t = digest.mergeTally(d.tally);
      if (t.ok && t.changed.length) this.#relaySoon(to);
    }
    if (d.want) {
      const w = digest.mergeWant(d.want, now);
      if (w.ok && w.self) void this.#publish(to, { periodic: true });
      else if (w.ok && w.send + w.passed > 0) this.#relaySoon(to);
    }
    return 'ignore';
  }

  /** The operator's verified read at node i: wants the claims its tally bits stand for. */
  read(i: number, origins: readonly number[]): void {
    const d = this.#members(i);
    if (d.want(origins.map((o) => this.#f.peerIds[o]!), this.#f.clock.now()) > 0) this.#relaySoon(i);
  }

  /** Whether node i's verified view shows every origin on `version` (each claim verified once). */
  readDone(i: number, version: number, origins: readonly number[]): boolean {
    const d = this.#digests[i]!;
    return origins.every((o) => o === i || claimRow(d, this.#f.peerIds[o]!, true)?.policyVersion === version);
  }

  /** The auditor's #relaySoon: when to relay is relayDue's (news soon, liveness later; news brings a waiting relay forward). */
  #relaySoon(i: number, full = false, news = true): void {
    if (full) this.#relayFull[i] = 1;
    const now = this.#f.clock.now();
    const due = relayDue(this.#relay[i] ? this.#relayDue[i]! : null, now, news, STATUS_INTERVAL, () => this.#f.random.next());
    if (due === null) return;
    this.#relayTimer[i]?.cancel();
    this.#relay[i] = 1;
    this.#relayDue[i] = due;
    this.#relayTimer[i] = this.#f.clock.setTimeout(() => {
      this.#relay[i] = 0;
      this.#relayTimer[i] = undefined;
      const all = this.#relayFull[i] === 1;
      this.#relayFull[i] = 0;
      return this.#publish(i, { full: all });
    }, due - now);
  }

  seenAt(i: number, version: number, origins: readonly number[]): number {
    const d = this.#digests[i]!;
    let c = 0;
    // The hearsay view (tally bits and claims, nothing checked), as the auditor's fleet({ verify: false }):
    // counted from the tally when every node is asked (the digest plane is never sampled), row by row otherwise.
    if (origins.length === this.#f.n) return d.countAt(version) + (this.#f.state(i).policyVersion === version && !d.onTally(this.#f.peerIds[i]!) && (d.newest(this.#f.peerIds[i]!)?.claim.policyVersion ?? 0) !== version ? 1 : 0);
    for (const o of origins) if (o === i ? this.#f.state(i).policyVersion === version : claimRow(d, this.#f.peerIds[o]!, false)?.policyVersion === version) c++;
    return c;
  }

  verifications(i: number): number {
    return this.#digests[i]!.verifications;
  }

  /** The operator's view at node i: verified rows (claimRow, as the auditor's fleet()), read through fleetView and newerClaim. */
  observe(i: number, origins: readonly number[]): { summary: string; lagging: boolean } {
    const f = this.#f;
    const held = new Map<string, { status: NodeStatus; receivedAt: number; verified: boolean }>();
    for (const o of origins) {
      const id = f.peerIds[o]!;
      // Its own row from its own state, as the auditor's fleet() does.
      const st = f.state(o);
      const c = o === i ? { policyVersion: st.policyVersion, enforcement: st.enforcement, alerts: [], seq: this.#seq[i]!, time: f.clock.now(), learnedAt: f.clock.now(), verified: true } : claimRow(this.#digests[i]!, id, true);
      if (!c) continue;
      held.set(id, {
        status: { meshId: f.meshId, peerId: id, policyVersion: c.policyVersion, digest: '', rulesetHash: '', enforcement: c.enforcement, lastApplyAt: 0, alerts: c.alerts, seq: c.seq, time: c.time, findings: [] },
        receivedAt: c.learnedAt, verified: c.verified,
      });
    }
    const nodes = origins.map((o) => ({ peerId: f.peerIds[o]!, name: `n${o}` }));
    const view = fleetView(nodes, held, f.clock.now(), SILENT_AFTER);
    const claim = newerClaim(f.state(i).policyVersion, held, nodes.map((n) => n.peerId), f.peerIds[i]!);
    return { summary: view.summary, lagging: claim !== null };
  }
}

