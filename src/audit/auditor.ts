/**
 * Constant validation for one agent: signed status out (on change and periodically) and in
 * (verified, kept per node), self-audit of listening sockets, peer probes, the fleet view,
 * and every alert condition wired to its source. Timers come from the injected clock.
 */
import type { PrivateKey } from '@libp2p/interface';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Logger } from '../runtime/logger.js';
import type { Store } from '../store/store.js';
import type { NodePort } from '../node/engine.js';
import type { Enforcer, EnforcementStatus } from '../enforce/enforcer.js';
import type { Mesh } from '../mesh/mesh.js';
import type { AlertManager } from '../alerts/alerts.js';
import { createHash } from 'node:crypto';
import { stageOfNodes, staleAt } from '../policy/model.js';
import type { PeerHealth } from '../node/rollout.js';
import { fleetView, intakeStatus, statusDelay, judgeOwnStatus, newerClaim, statusFieldProblem, signStatus, type Finding, type NodeStatus } from './status.js';
import { processesByInode, readListeners, unexpectedListeners, type Listener } from './listeners.js';
import { planProbes, runProbes } from './probe.js';
import { TwinWatch } from './twins.js';
import { claimRow, DIGEST_TIMING, FleetDigest, firstRunDelay, firstTick, relayDue, type Claim, type OwnState } from './status-digest.js';
import { claimVerifier, decodeDigest, encodeDigests, MAX_DIGEST_BYTES, nodeRef, signClaim } from './status-claims.js';

export interface AuditOptions {
  meshId: string;
  privateKey: PrivateKey;
  peerId: string;
  store: Store;
  clock: Clock;
  random: Random;
  log: Logger;
  engine: NodePort;
  enforcer: Enforcer;
  mesh: Mesh;
  alerts: AlertManager;
  meshPorts: number[];
  statusInterval: number;
  auditInterval: number;
  silentAfter: number;
  probeInterval: number;
  probePeers: number;
  probePorts: number;
  probeTimeout: number;
  expiryWarning: number;
  rootExpiryWarning: number;
  /** How long a newer version may be reported by peers while this node enforces an older one. */
  lagAfter?: number;
  /**
   * How changes travel (docs/decisions.md "status plane"): 'digest' (default) sends compact
   * signed claims to direct neighbours, who merge and verify only what they use; 'full' is the
   * earlier plane, every node's full signed status flooded and verified by every node on
   * every change (kept for side-by-side benchmarks).
   */
  statusPlane?: 'digest' | 'full';
  /** digest plane: every how many statusIntervals the full signed status and the full digest go out (default 4). */
  fullEvery?: number;
  /** digest plane: unverified claims checked at random per audit round (default 3). */
  sampleClaims?: number;
  /** Test hook: where listening sockets come from. */
  listeners?: () => Listener[];
  /** The node's drop totals as last read (the agent's DropReader); absent or null: not counted. */
  drops?: () => { dropped: number; wouldDrop: number } | null;
}

const EVENT_ALERT_TTL = 3_600_000; // forged-policy and peer-penalised resolve after an hour of quiet
/** A strike reason simple enough to repeat in an alert ("gossip malformed", "sync stalled"). */
const PLAIN_REASON = /^[a-z][a-z0-9 -]{0,63}$/;

/** How long a new connection must stay before this node sends that neighbour its full digest (ms). */
const NEW_NEIGHBOUR_SETTLE = 3000;

export class Auditor {
  #o: AuditOptions;
  #statuses = new Map<string, { status: NodeStatus; receivedAt: number }>();
  #seq = 0;
  #timers: Timer[] = [];
  #generation = 0;
  /** Digests of the statuses this process published, by seq (bounded): tells echoes from twins. */
  #published = new Map<number, string>();
  /** duplicate-identity alert key → when its condition was last seen (resolved after a quiet window). */
  #twinSeenAt = new Map<string, number>();
  #twins = new TwinWatch();
  #findings: Finding[] = [];
  #startedAt: number;
  #stopped = false;
  #publishing: Promise<void> = Promise.resolve();
  #dirty = new Set<string>();
  /** What our last claim said (digest plane) and our last full status (publishStatus): each changes only its own. */
  #lastPublished = '';
  #lastStatusPublished = '';
  /** The state our last claim (or tally bit) said: whether the next change is one a tally bit says. */
  #lastState: OwnState | undefined;
  /** Since when peers' signed statuses have reported a newer version than this node enforces. */
  #behindSince: number | null = null;
  #digest: FleetDigest;
  /** Node reference (status-claims.ts nodeRef) → PeerId, for the policy held. */
  #refs = new Map<string, string>();
  #refsFor = -1;
  /** Signatures of the claims this process signed, by seq (bounded): tells echoes from twins. */
  #publishedClaims = new Map<number, string>();
  /** Periodic ticks so far, from a random phase (firstTick): -1 until the first. */
  #ticks = -1;
  #relay: Timer | null = null;
  /** When the pending relay fires (clock.now() time). */
  #relayDue = 0;
  #relayFull = false;
  #relayAll = false;
  /** When each neighbour last got our full digest (bounded by the policy's nodes). */
  #servedAt = new Map<string, number>();
  /** Full statuses verified (the 'full' plane's cost, and the periodic detail on the digest plane). */
  #statusVerifications = 0;
  /** Claims this node signed, by why: a change a tally bit cannot say, the periodic (liveness) step, or a reader's want. */
  #claimsSigned = { change: 0, periodic: 0, wanted: 0 };
  /** Per node, the alert classes of its latest status for an older version: what a rollout's "new alerts" are measured against. */
  #alertsBefore = new Map<string, string[]>();
  #healthListeners: (() => void)[] = [];

  constructor(o: AuditOptions) {
    this.#o = o;
    this.#startedAt = o.clock.now();
    this.#digest = new FleetDigest({ self: o.peerId, verify: claimVerifier(o.meshId) });
  }

  get #plane(): 'digest' | 'full' {
    return this.#o.statusPlane ?? 'digest';
  }

  /** Signature checks this node made for the status plane (benchmarks, metrics). */
  get verifications(): { statuses: number; claims: number } {
    return { statuses: this.#statusVerifications, claims: this.#digest.verifications };
  }

  /** Claims this node signed, by reason (benchmarks, metrics, tests). */
  get claimsSigned(): { change: number; periodic: number; wanted: number } {
    return { ...this.#claimsSigned };
  }

  /** The pure status-plane state (tests, simulations). */
  get digest(): FleetDigest {
    return this.#digest;
  }

  #members(): void {
    const p = this.#o.engine.current?.policy;
    if (!p || p.version === this.#refsFor) return;
    this.#refsFor = p.version;
    this.#refs = new Map(p.nodes.map((n) => [nodeRef(n.peerId), n.peerId]));
    this.#digest.setMembers(p.nodes.map((n) => n.peerId), p.version, this.#o.clock.now());
  }

  async start(): Promise<void> {
    const o = this.#o;
    this.#seq = (await o.store.getJson<number>('status-seq')) ?? 0;
    for (const [k, v] of await o.store.listJson<{ status: NodeStatus; receivedAt: number }>('status/')) {
      // Statuses stored before decode-time validation existed are checked as if they had just arrived.
      if (v?.status && !statusFieldProblem(v.status)) this.#statuses.set(k.slice('status/'.length), v);
    }
    o.mesh.subscribeStatus((bytes, from, withinBudget) => this.#receive(bytes, from, withinBudget), { lazyGossip: this.#plane === 'full' });
    this.#members();
    o.engine.on('policy', () => this.#members());
    if (this.#plane === 'digest') o.mesh.subscribeDigest((bytes, from) => this.#receiveDigest(bytes, from), MAX_DIGEST_BYTES);
    // Alerts open from before a restart stay open at least one quiet window.
    for (const a of o.alerts.openAlerts()) if (a.class === 'duplicate-identity') this.#twinSeenAt.set(a.key, this.#startedAt);
    o.mesh.libp2p.addEventListener('peer:identify', (e) => {
      const seen = this.#twins.identified(e.detail.connection.id, e.detail.peerId.toString(), e.detail.listenAddrs.map(String));
      if (seen) void this.#twinSeen(seen.peer, `two connections claim PeerId ${seen.peer} with different listen addresses (${seen.claims[0].join(' ')} and ${seen.claims[1].join(' ')})`, { peer: seen.peer, listenAddrs: seen.claims });
    });
    o.mesh.libp2p.addEventListener('connection:close', (e) => this.#twins.closed(e.detail.id));
    this.#wireAlerts();
    // The first apply ran before alerts were wired: report its failure now.
    const st = o.enforcer.status;
    if (st.state === 'failed') await o.alerts.raise('apply-failed', 'apply-failed', 'critical', `Ruleset apply failed at start: ${st.reason}`, { reason: st.reason });
    await this.#startAlerts();
    await this.#revokedAlert(st);
    // On change, but a moment later and jittered: right after a policy lands the whole fleet
    // changes at once, and statuses must not compete with the policy's own propagation.
    // The status step after an accept (once it is enforced), and after any other apply.
    o.engine.setSteps({ status: () => this.#soon() });
    // Staged rollouts are decided by the engine from this fleet view (a narrow port).
    o.engine.setRolloutHealth({ rows: () => this.rolloutHealth(), onChange: (fn) => this.#healthListeners.push(fn) });
    o.engine.on('rollout', (view) => {
      this.#soon();
      if (view.decision.kind === 'halted') {
        const d = view.decision;
        const name = o.engine.current?.policy.nodes.find((n) => n.peerId === d.failed)?.name ?? d.failed;
        void o.alerts.raise('rollout-halted', 'rollout-halted', 'error',
          `Staged rollout of policy v${view.version} halted: ${name} (stage before this node's) reported it failed (${d.reason}); this node keeps enforcing v${view.enforcing ?? '?'} until a newer version is published`,
          { version: view.version, enforcing: view.enforcing, failed: d.failed, reason: d.reason });
      }
    });
    o.engine.on('policy', (cur) => void o.alerts.resolve('rollout-halted', `superseded by policy v${cur.policy.version}`));
    o.engine.on('enforced', () => this.#soon());
    o.enforcer.on('recovered', () => this.#soon());
    o.alerts.on('event', () => this.#soon());
    this.#schedule();
    await this.publishStatus();
    if (this.#plane === 'digest') {
      // A new neighbour holds none of our view: it gets all of it, on a stream of its own
      // (#sendFull), unless it had our full view lately — without any, views missed nodes
      // after start-up (lost first digests). Only a connection that stays (NEW_NEIGHBOUR_SETTLE):
      // the periodic exchange opens one to a node it is not connected to and closes it after
      // one sync, and connections come and go (sync dials, trimming).
      o.mesh.libp2p.addEventListener('peer:connect', (e) => {
        const peer = e.detail.toString();
        o.clock.setTimeout(() => {
          if (this.#stopped || !o.mesh.connectedPeers().includes(peer)) return;
          const at = this.#servedAt.get(peer);
          if (at === undefined || o.clock.now() - at > (this.#o.fullEvery ?? DIGEST_TIMING.fullEvery) * this.#o.statusInterval) void this.#sendFull(peer);
        }, NEW_NEIGHBOUR_SETTLE);
      });
      await this.publishDigest({ periodic: true, full: true });
    }
  }

  #schedule(): void {
    const o = this.#o;
    this.#every(o.statusInterval, () => (this.#plane === 'full' ? this.publishStatus(true) : this.#tick()));
    this.#every(5000, () => this.#flushStatuses());
    this.#every(o.auditInterval, () => this.audit());
    if (o.probeInterval > 0) this.#every(o.probeInterval, () => this.probe());
  }

  /**
   * Settings an operator may change at run time (the agent's SIGHUP): intervals take effect
   * at once (every periodic task is rescheduled), the rest at their next use.
   */
  reconfigure(c: Partial<Pick<AuditOptions, 'statusInterval' | 'auditInterval' | 'silentAfter' | 'probeInterval' | 'probePeers' | 'probePorts' | 'probeTimeout' | 'expiryWarning' | 'rootExpiryWarning' | 'lagAfter'>>): void {
    this.#o = { ...this.#o, ...c };
    if (this.#stopped) return;
    this.#generation++;
    for (const t of this.#timers) t.cancel();
    this.#timers = [];
    this.#schedule();
  }

  /** The settings in force. */
  get options(): Readonly<AuditOptions> {
    return this.#o;
  }

  /**
   * `fn` every `ms` (jittered 0.9–1.1). The first run comes at a random point of the first
   * interval (firstRunDelay): agents started together — a fleet-wide restart, a benchmark whose
   * 30 agents finish starting within a second of each other on shared cores — would otherwise
   * run every periodic task in the same second, every interval (30 agent processes: each
   * status round a burst of ~10 CPU s, and an update published into one took 4 s).
   */
  #every(ms: number, fn: () => Promise<unknown>, delay = firstRunDelay(ms, () => this.#o.random.next())): void {
    if (!ms || this.#stopped) return;
    const gen = this.#generation;
    const t = this.#o.clock.setTimeout(() => {
      void fn().catch((e: unknown) => this.#o.log.warn({ err: (e as Error).message }, 'audit task failed')).finally(() => {
        this.#timers = this.#timers.filter((x) => x !== t);
        // A reconfigure() since this task started has armed its own schedule.
        if (gen === this.#generation) this.#every(ms, fn, ms * (0.9 + this.#o.random.next() * 0.2));
      });
    }, delay);
    this.#timers.push(t);
  }

  /** What the node found when it loaded its state: damage is an alert, never a silent reset. */
  async #startAlerts(): Promise<void> {
    const { engine, store, alerts } = this.#o;
    const rec = store.recovered ?? (await store.getJson<{ movedTo: string; error: string }>('store-recovered'));
    if (rec) {
      await alerts.raise('store-corrupt', 'store-corrupt', 'critical',
        `The state store could not be opened and was moved aside to ${rec.movedTo}; the version floor was kept from the trust-state mirror and the policy returns by sync`,
        { movedTo: rec.movedTo, error: rec.error });
      await store.delJson('store-recovered');
    }
    const r = engine.startReport;
    // Both copies missing is a fresh node (or one upgraded from before the record existed);
    // one missing, or any present but undecodable, is damage.
    if (r.damagedCopies.length || r.lostCopies.length === 1) {
      await alerts.raise('trust-state-damaged', 'trust-state-damaged', 'error', `A copy of the trusted state was missing or damaged (${r.lostCopies.join(', ')}); restored from the other`, { lost: r.lostCopies });
    }
    if (r.policyLost) await alerts.raise('policy-lost', 'policy-lost', 'critical', `The stored policy could not be used (${r.policyLost}); enforcing the baseline until v${engine.floor?.version ?? '?'} or newer arrives`, { floor: engine.floor?.version ?? null });
    if (r.rootProblem) await alerts.raise('root-chain-short', 'root-chain-short', 'error', r.rootProblem, {});
    const stopLost = () => void alerts.resolve('policy-lost', 'a policy at or above the version floor was accepted');
    engine.on('policy', stopLost);
  }

  #wireAlerts(): void {
    const { engine, enforcer, mesh, alerts } = this.#o;
    engine.on('rejected', (r, source) => {
      if (r.outcome === 'stale-root-signature') {
        if (source.peer && !mesh.admission.isListed(source.peer)) return this.#unadmitted(source.peer, `sent a ${r.kind} signed under a superseded root`);
        // The operator signed under a root this node has superseded: a mistake to fix, not an attack.
        void alerts.raise(`stale-root-signature/${source.peer ?? source.kind}`, 'stale-root-signature', 'warning',
          `A ${r.kind} signed under a superseded root was received from ${source.peer ? 'a peer' : source.kind}: re-sign it under root v${engine.root.root.version}`,
          { reason: r.reason, source: source.kind, peer: source.peer });
      } else if (r.outcome === 'equivocation') {
        void alerts.raise(`equivocation/${r.kind}/v${r.version}`, 'equivocation', 'critical',
          `Equivocation: two different ${r.kind} documents signed with version ${r.version} — a signing key was misused or stolen`,
          { version: r.version, digest: r.digest, reason: r.reason, source: source.kind, peer: source.peer });
      } else if (r.outcome === 'bad-signature' || r.outcome === 'below-threshold') {
        if (source.peer && !mesh.admission.isListed(source.peer)) return this.#unadmitted(source.peer, `sent a ${r.kind} ${r.outcome}`);
        void alerts.raise(`forged-policy/${source.peer ?? source.kind}`, 'forged-policy', 'error',
          `A ${r.kind} not signed by the trusted threshold was received (${r.outcome}) from ${source.peer ?? source.kind}`,
          // Not r.reason: it quotes the forged document (payload type, key ids), i.e. attacker text.
          { outcome: r.outcome, source: source.kind, peer: source.peer });
      }
    });
    engine.on('policy', (cur) => {
      for (const a of alerts.openAlerts()) {
        if (a.class === 'equivocation' && a.key.startsWith('equivocation/policy/')) {
          const v = Number(a.key.split('/v')[1]);
          if (v < cur.policy.version) void alerts.resolve(a.key, `superseded by policy v${cur.policy.version}`);
        }
      }
    });
    enforcer.on('failed', (reason) => void alerts.raise('apply-failed', 'apply-failed', 'critical', `Ruleset apply failed; the previous ruleset stays in force: ${reason}`, { reason }));
    enforcer.on('applied', (st) => {
      void alerts.resolve('apply-failed', `applied ruleset ${st.rulesetHash?.slice(0, 12)}`);
      void this.#revokedAlert(st);
      if (this.#behindSince !== null) void this.#checkLagging(this.#o.clock.now());
      if (!enforcer.status.reason?.startsWith('lost every mesh peer')) void alerts.resolve('lockout-revert');
    });
    enforcer.on('drift', (what) => void alerts.raise('drift-repaired', 'drift-repaired', 'warning', `Firewall drift detected and repaired: ${what}`, { drift: what }));
    enforcer.on('lockout', (reason) => void alerts.raise('lockout-revert', 'lockout-revert', 'critical', `Lock-out guard restored mesh access: ${reason}`, { reason }));
    mesh.on('penalised', (peer, why) => {
      // `why` may quote what the peer sent: only a short plain reason goes into the alert.
      const reason = PLAIN_REASON.test(why) ? why : 'invalid data';
      void alerts.raise(`peer-penalised/${peer}`, 'peer-penalised', 'warning', `Peer ${peer} sent invalid data repeatedly (${reason}); disconnected and banned for a while`, { peer, why: reason });
    });
    mesh.on('unadmitted', (peer, why) => this.#unadmitted(peer, why));
  }

  /**
   * Strangers (peers no policy, or before any policy no bootstrap entry, lists) that misbehave
   * share one alert: identities are free, and an alert per identity is what a Sybil flood wants.
   */
  #unadmitted(peer: string, why: string): void {
    const { alerts } = this.#o;
    if (alerts.isOpen('unadmitted-peers')) return;
    void alerts.raise('unadmitted-peers', 'unadmitted-peers', 'warning',
      'Peers not listed in any policy sent invalid data or ran over the strangers\' budget; they are reported together, not one alert per identity',
      { firstPeer: peer, why: PLAIN_REASON.test(why) ? why : 'invalid data' });
  }

  /**
   * node-lagging: a member's latest signed status reports a newer version than this node
   * enforces, and has for longer than lagAfter. A peer's claim, not a fact: it only alerts
   * (naming the claimant), and it is re-derived from the latest statuses every time.
   */
  async #checkLagging(now: number): Promise<void> {
    const { alerts, enforcer, engine } = this.#o;
    const applied = enforcer.status.policyVersion ?? 0;
    const members = engine.current?.policy.nodes.map((n) => n.peerId) ?? [];
    // Hearsay notices that someone is ahead; only a verified claim may raise the alert.
    let claim = newerClaim(applied, this.#rows(members, false), members, this.#o.peerId);
    if (claim && now - (this.#behindSince ?? now) >= (this.#o.lagAfter ?? 300_000)) claim = newerClaim(applied, this.#rows([claim.peerId], true), [claim.peerId], this.#o.peerId) ?? newerClaim(applied, this.#rows(members, true), members, this.#o.peerId);
    // Held back by a staged rollout of a version it holds: waiting by design, not lagging.
    const staged = claim && engine.heldBack && (engine.current?.policy.version ?? 0) >= claim.version;
    if (!claim || staged) {
      this.#behindSince = null;
      await alerts.resolve('node-lagging', `enforcing v${applied}`);
      return;
    }
    const since = (this.#behindSince ??= now);
    if (now - since < (this.#o.lagAfter ?? 300_000)) return;
    const held = engine.current?.policy.version ?? 0;
    const why = held >= claim.version ? `it holds v${held} but enforcement is ${enforcer.status.state}${enforcer.status.reason ? ` (${enforcer.status.reason})` : ''}` : `it has not received v${claim.version}`;
    const name = engine.current?.policy.nodes.find((n) => n.peerId === claim.peerId)?.name ?? claim.peerId;
    await alerts.raise('node-lagging', 'node-lagging', 'warning',
      `This node is lagging: ${name} reports policy v${claim.version} (behind since ${new Date(since).toISOString()}) and this node still enforces v${applied}; ${why}`,
      { version: claim.version, applied, held, claimedBy: claim.peerId, since });
  }

  /** Removed from the fleet: the others have cut this node off, so it is the one that must say so. */
  async #revokedAlert(st: EnforcementStatus): Promise<void> {
    const { alerts } = this.#o;
    if (st.state === 'revoked') {
      await alerts.raise('node-revoked', 'node-revoked', 'critical',
        `This node was removed from policy v${st.policyVersion}: it enforces the baseline and the mesh no longer admits it; decommission it (docs/operations.md) or list it again`,
        { version: st.policyVersion, reason: st.reason });
    } else if (st.state === 'ok') {
      await alerts.resolve('node-revoked', `listed again in policy v${st.policyVersion}`);
    }
  }

  /** Drift check results come from the agent's loop: a clean check resolves the drift alert. */
  async driftChecked(drift: string | null): Promise<void> {
    if (drift === null) await this.#o.alerts.resolve('drift-repaired', 'no drift at the last read-back');
  }

  /** A status signed with our own key that we did not publish: another agent has our identity. */
  #twin(s: NodeStatus, from: string): Promise<void> {
    return this.#twinSeen(this.#o.peerId, `a status signed with this node's key that this agent did not publish arrived via ${from}`,
      { peer: this.#o.peerId, via: from, seq: s.seq, time: s.time, policyVersion: s.policyVersion, enforcement: s.enforcement });
  }

  async #twinSeen(peer: string, how: string, details: Record<string, unknown>): Promise<void> {
    const o = this.#o;
    const key = peer === o.peerId ? 'duplicate-identity' : `duplicate-identity/${peer}`;
    this.#twinSeenAt.set(key, o.clock.now());
    if (o.alerts.isOpen(key)) return;
    const name = o.engine.current?.policy.nodes.find((n) => n.peerId === peer)?.name;
    const who = peer === o.peerId ? `this node's identity (PeerId ${peer})` : `the identity of ${name ? `node ${name}, ` : ''}PeerId ${peer}`;
    o.log.error({ peer, how }, 'two agents present one identity');
    await o.alerts.raise(key, 'duplicate-identity', 'critical',
      `Two agents present ${who}: ${how}. Give every node its own key (identity.generate, or picket keygen --node).`, details);
  }

  #isMember(peerId: string): boolean {
    return this.#o.engine.current?.policy.nodes.some((n) => n.peerId === peerId) ?? false;
  }

  async #receive(bytes: Uint8Array, from: string, withinBudget: (origin: string) => boolean): Promise<'accept' | 'ignore' | 'reject'> {
    const self = this.#o.peerId;
    // Our own PeerId is judged apart (never stored, and before any policy too): it is how two
    // agents sharing one identity find out.
    this.#statusVerifications++;
    const v = await intakeStatus(bytes, this.#o.meshId, self, (p) => this.#isMember(p), this.#statuses, withinBudget);
    if ('reason' in v) {
      this.#o.log.debug({ from, reason: v.reason }, 'status not accepted');
      return v.verdict;
    }
    if (v.verdict === 'own') {
      const digest = createHash('sha256').update(bytes).digest('hex');
      if (judgeOwnStatus(v.status, digest, { startedAt: this.#startedAt, lastSeq: this.#seq, published: this.#published }) === 'twin') await this.#twin(v.status, from);
      return 'ignore';
    }
    // Newer than what is held and within its node's budget (intakeStatus asked): stored.
    const rec = { status: v.status, receivedAt: this.#o.clock.now() };
    const prev = this.#statuses.get(v.status.peerId)?.status;
    if (prev && prev.policyVersion < v.status.policyVersion) this.#alertsBefore.set(v.status.peerId, prev.alerts);
    this.#statuses.set(v.status.peerId, rec);
    for (const fn of this.#healthListeners) fn();
    this.#dirty.add(v.status.peerId); // persisted in batches: a fleet's statuses arrive in bursts
    if (this.#behindSince === null && v.status.policyVersion > (this.#o.enforcer.status.policyVersion ?? 0)) this.#behindSince = rec.receivedAt;
    if (this.#o.alerts.isOpen(`node-silent/${v.status.peerId}`)) await this.#o.alerts.resolve(`node-silent/${v.status.peerId}`, 'heard from again');
    return 'accept';
  }

  #pending: Timer | null = null;
  #soon(): void {
    if (this.#pending || this.#stopped) return;
    this.#pending = this.#o.clock.setTimeout(() => {
      this.#pending = null;
      void (this.#plane === 'full' ? this.publishStatus() : this.publishDigest());
    }, statusDelay(this.#o.random.next()));
  }

  /** The periodic step on the digest plane: a fresh claim (liveness); every fullEvery-th, the details too. */
  async #tick(): Promise<void> {
    const every = this.#o.fullEvery ?? DIGEST_TIMING.fullEvery;
    if (this.#ticks < 0) this.#ticks = 1 + firstTick(() => this.#o.random.next(), every);
    const full = this.#ticks++ % every === 0;
    await this.publishDigest({ periodic: true, full });
    if (full) await this.publishStatus(true);
  }

  /**
   * One digest from a direct neighbour: decoded (limits, fields), merged without any
   * signature check, and the change passed on to our own neighbours a moment later.
   */
  #receiveDigest(bytes: Uint8Array, from: string): 'merged' | 'reject' {
    this.#members();
    const d = decodeDigest(bytes, (ref) => this.#refs.get(ref));
    if (!d.ok) {
      this.#o.log.debug({ from, reason: d.reason }, 'digest not accepted');
      return 'reject';
    }
    const now = this.#o.clock.now();
    // A tally or want that does not fit the policy both sides hold is malformed: nothing of it is merged.
    for (const t of [d.tally, d.want]) {
      const bad = t && this.#digest.bitsProblem(t);
      if (bad && bad !== 'other') {
        this.#o.log.debug({ from, reason: bad }, 'digest not accepted');
        return 'reject';
      }
    }
    const r = this.#digest.merge(d.claims, from, now);
    for (const c of r.aboutSelf) this.#claimAboutSelf(c, from);
    if (r.changed.length) {
      const applied = this.#o.enforcer.status.policyVersion ?? 0;
      if (this.#behindSince === null && r.changed.some((id) => (this.#digest.newest(id)?.claim.policyVersion ?? 0) > applied)) this.#behindSince = now;
      // A claim a reader asked for goes to every neighbour: the one that asked may not be in our gossip mesh.
      this.#relaySoon(false, r.wanted, r.news);
    }
    if (d.tally) {
      const t = this.#digest.mergeTally(d.tally);
      if (t.ok && t.changed.length) this.#relaySoon();
    }
    if (d.want) {
      const w = this.#digest.mergeWant(d.want, now);
      // Wanted claims and passed-on wants go to every neighbour: the one that asked may not be in our gossip mesh.
      if (w.ok && w.self) void this.publishDigest({ periodic: true, all: true, wanted: true });
      else if (w.ok && w.send + w.passed > 0) this.#relaySoon(false, true);
    }
    return 'merged';
  }

  /** A claim with our PeerId that we did not sign here: an echo of an earlier run, or a twin (checked: one signature). */
  #claimAboutSelf(c: Claim, from: string): void {
    const sig = Buffer.from(c.signature).toString('base64');
    if (this.#publishedClaims.get(c.seq) === sig) return;
    if (judgeOwnStatus(c, sig, { startedAt: this.#startedAt, lastSeq: this.#seq, published: this.#publishedClaims }) !== 'twin') return;
    const ok = claimVerifier(this.#o.meshId)(c);
    this.#statusVerifications++;
    if (ok) void this.#twin({ ...this.statusNow(), seq: c.seq, time: c.time, policyVersion: c.policyVersion, enforcement: c.enforcement }, from);
  }

  /**
   * Our whole view (every claim held, the full tally) to one new neighbour, on a stream of its
   * own: O(N) bytes per connection instead of O(N × degree) through gossip. A neighbour that
   * does not speak the direct protocol (an older agent) gets a full digest the old way.
   */
  async #sendFull(peer: string): Promise<void> {
    const o = this.#o;
    this.#members();
    this.#servedAt.set(peer, o.clock.now());
    const frames = encodeDigests(this.#digest.all(), { tally: this.#digest.tallyFull(), nonce: 1 + o.random.int(0xffff_fffe) });
    if (await o.mesh.sendDigest(peer, frames)) return;
    if (this.#stopped || !o.mesh.connectedPeers().includes(peer)) return;
    this.#servedAt.delete(peer);
    this.#relaySoon(true);
  }

  /**
   * Merged news goes on to our neighbours together, a moment later (one digest, not one per
   * arrival); liveness alone (`news` false) later still (relayDelayFor). News arriving while a
   * liveness relay waits brings it forward: the one digest carries both.
   */
  #relaySoon(full = false, all = false, news = true): void {
    this.#relayFull ||= full;
    this.#relayAll ||= all;
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    const due = relayDue(this.#relay ? this.#relayDue : null, now, news, this.#o.statusInterval, () => this.#o.random.next());
    if (due === null) return;
    this.#relay?.cancel();
    this.#relayDue = due;
    this.#relay = this.#o.clock.setTimeout(() => {
      this.#relay = null;
      const opts = { full: this.#relayFull, all: this.#relayAll };
      this.#relayFull = this.#relayAll = false;
      void this.publishDigest(opts);
    }, due - now);
  }

  /**
   * Signs a fresh claim when what a reader sees changed (or `periodic`: liveness), and sends
   * our neighbours the claims that changed since the last digest (`full`: every claim held),
   * with the tally when it changed and the claims we want. A change a tally bit says in full
   * (isTallyChange: the new version, enforced ok) sets our bit and signs nothing: the next
   * periodic claim carries it, or a want asks for it sooner.
   */
  publishDigest(opts: { periodic?: boolean; full?: boolean; all?: boolean; wanted?: boolean } = {}): Promise<void> {
    this.#publishing = this.#publishing.then(async () => {
      if (this.#stopped) return;
      const o = this.#o;
      this.#members();
      const now = this.statusNow();
      const fingerprint = JSON.stringify({ ...now, time: 0, findings: [] });
      const state: OwnState = { policyVersion: now.policyVersion, enforcement: now.enforcement, alerts: now.alerts, ...(now.rolloutStage ? { rolloutStage: now.rolloutStage } : {}), ...(now.rolloutEnforcing ? { rolloutEnforcing: now.rolloutEnforcing } : {}) };
      const step = this.#digest.ownStep(this.#lastState, state, fingerprint !== this.#lastPublished, !!opts.periodic);
      if (step !== 'none') {
        this.#lastPublished = fingerprint;
        this.#lastState = state;
      }
      if (step === 'claim') {
        this.#claimsSigned[opts.wanted ? 'wanted' : opts.periodic ? 'periodic' : 'change']++;
        this.#seq = Math.max(this.#seq + 1, o.clock.now());
        await o.store.putJson('status-seq', this.#seq);
        const claim = await signClaim(o.meshId, {
          peerId: o.peerId, policyVersion: now.policyVersion, enforcement: now.enforcement, alerts: now.alerts, seq: this.#seq, time: now.time,
          // A staged rollout's gate compares version and digest: the claim carries both then.
          ...(now.rolloutStage ? { rolloutStage: now.rolloutStage, digest: now.digest } : {}), ...(now.rolloutEnforcing ? { rolloutEnforcing: now.rolloutEnforcing } : {}),
        }, o.privateKey);
        this.#publishedClaims.set(claim.seq, Buffer.from(claim.signature).toString('base64'));
        if (this.#publishedClaims.size > 256) this.#publishedClaims.delete(this.#publishedClaims.keys().next().value!);
        this.#digest.own(claim, o.clock.now());
      }
      const claims = opts.full ? this.#digest.all() : this.#digest.delta();
      const extra = { tally: this.#digest.tallyDelta(opts.full), want: this.#digest.wantDelta(), nonce: 1 + o.random.int(0xffff_fffe) };
      if (opts.full) {
        this.#digest.delta();
        const at = o.clock.now();
        this.#servedAt = new Map([...this.#servedAt].filter(([id]) => this.#digest.isMember(id)));
        for (const id of o.mesh.connectedPeers()) this.#servedAt.set(id, at);
      }
      // News (a delta) goes to the gossip mesh, which passes it on; a full digest (repair, a
      // new connection) to every neighbour.
      for (const bytes of encodeDigests(claims, extra)) await o.mesh.publishDigest(bytes, opts.full || opts.all || extra.want ? 'all' : 'mesh');
    }).catch((e: unknown) => this.#o.log.warn({ err: (e as Error).message }, 'digest publish failed'));
    return this.#publishing;
  }

  async #flushStatuses(): Promise<void> {
    const ids = [...this.#dirty];
    this.#dirty.clear();
    await this.#o.store.putJsonBatch(ids.flatMap((id) => { const r = this.#statuses.get(id); return r ? [[`status/${id}`, r] as [string, unknown]] : []; }));
  }

  /** The fleet view as the staged rollout reads it (RolloutHealthPort.rows). */
  rolloutHealth(): PeerHealth[] {
    return this.fleet().nodes.map((n) => {
      const before = new Set(this.#alertsBefore.get(n.peerId) ?? []);
      return {
        peerId: n.peerId, policyVersion: n.policyVersion, digest: n.digest, enforcement: n.enforcement,
        held: n.rolloutEnforcing != null, silent: n.silent, newAlerts: n.alerts.filter((a) => !before.has(a)),
      };
    });
  }

  statusNow(): NodeStatus {
    const { engine, enforcer, alerts, clock } = this.#o;
    const en = enforcer.status;
    const cur = engine.current;
    const stage = cur?.policy.rollout ? stageOfNodes(cur.policy).get(this.#o.peerId) : undefined;
    const held = engine.heldBack;
    return {
      ...(stage !== undefined ? { rolloutStage: stage + 1 } : {}),
      ...(held ? { rolloutEnforcing: held.policy.version } : {}),
      meshId: this.#o.meshId,
      peerId: this.#o.peerId,
      policyVersion: engine.current?.policy.version ?? 0,
      digest: engine.current?.digest ?? '',
      rulesetHash: en.rulesetHash ?? '',
      // Between accepting a version and applying it, the enforcer still reports the previous
      // version's state: say `pending`, or a peer's staged rollout would read "v2 ok" for a
      // node whose v2 apply has not run (or is about to fail).
      enforcement: cur && !held && (en.state === 'ok' || en.state === 'drift-repaired') && en.policyVersion !== cur.policy.version ? 'pending' : en.state,
      lastApplyAt: en.lastApplyAt ?? 0,
      alerts: alerts.openClasses(),
      seq: 0,
      time: clock.now(),
      findings: this.#findings,
      ...this.#o.drops?.(),
    };
  }

  /**
   * Signs and gossips this node's status (serialized; seq strictly increases, even across
   * restarts). On events it is sent only when something a reader sees changed; `periodic`
   * sends it regardless (it is also the liveness signal).
   */
  publishStatus(periodic = false): Promise<void> {
    this.#publishing = this.#publishing.then(async () => {
      if (this.#stopped) return;
      const o = this.#o;
      const now = this.statusNow();
      // Drop counters move all the time: they ride along, they are not a reason to publish.
      const fingerprint = JSON.stringify({ ...now, time: 0, dropped: 0, wouldDrop: 0 });
      if (!periodic && fingerprint === this.#lastStatusPublished) return;
      this.#lastStatusPublished = fingerprint;
      this.#seq = Math.max(this.#seq + 1, o.clock.now());
      await o.store.putJson('status-seq', this.#seq);
      const s = { ...this.statusNow(), seq: this.#seq };
      this.#statuses.set(o.peerId, { status: s, receivedAt: o.clock.now() });
      const bytes = await signStatus(s, o.privateKey);
      this.#published.set(s.seq, createHash('sha256').update(bytes).digest('hex'));
      if (this.#published.size > 256) this.#published.delete(this.#published.keys().next().value!);
      await o.mesh.publishStatus(bytes);
    }).catch((e: unknown) => this.#o.log.warn({ err: (e as Error).message }, 'status publish failed'));
    return this.#publishing;
  }

  /**
   * The fleet from signed statuses; this node's own row is its live state, not the status it
   * last gossiped (that one waits a jittered moment after an apply, and an operator who just
   * saw `status` say v2 must not read v0 for the same node in `status --mesh`).
   */
  fleet(opts: { verify?: boolean } = {}): ReturnType<typeof fleetView> {
    const o = this.#o;
    this.#members();
    const nodes = o.engine.current?.policy.nodes ?? [];
    const now = o.clock.now();
    const ids = nodes.map((n) => n.peerId);
    const verify = opts.verify ?? true;
    const statuses = this.#rows(ids, verify);
    statuses.set(o.peerId, { status: { ...this.statusNow(), seq: this.#seq }, receivedAt: now, verified: true });
    // What hearsay says beyond the verified rows (a fleet-wide change is tally bits until the claims arrive).
    const reported = verify ? new Map([...this.#rows(ids, false)].map(([id, r]) => [id, r.status.policyVersion])) : undefined;
    return fleetView(nodes.map((n) => ({ peerId: n.peerId, name: n.name })), statuses, now, o.silentAfter, reported);
  }

  /**
   * Per node, the newer of its last full signed status and its newest claim: verified claims
   * only when `verify` (checked now if need be, each claim once), any claim otherwise. The
   * details a claim leaves out (policy digest, ruleset hash, findings) come from the full
   * status while it speaks of the same version.
   */
  #rows(ids: readonly string[], verify: boolean): Map<string, { status: NodeStatus; receivedAt: number; verified: boolean }> {
    const out = new Map<string, { status: NodeStatus; receivedAt: number; verified: boolean }>();
    // A verified read of nodes whose tally bit is ahead of their newest claim asks for their claims.
    if (verify && this.#digest.want(ids, this.#o.clock.now()) > 0) this.#relaySoon(false, true);
    for (const id of ids) {
      const s = this.#statuses.get(id);
      const c = claimRow(this.#digest, id, verify);
      // A tally bit carries no seq (its row has the node's last claim's): it says the node
      // enforces tallyVersion, which is newer than any status of an older version. Every
      // fullEvery-th tick signs the claim and then the full status, so without this a quarter
      // of the fleet's bits would hide behind their own statuses.
      const bit = !verify && c !== undefined && !c.verified && c.policyVersion === this.#digest.tallyVersion && this.#digest.onTally(id);
      if (c && (!s || c.seq > s.status.seq || (bit && s.status.policyVersion < c.policyVersion))) {
        const same = s?.status.policyVersion === c.policyVersion;
        out.set(id, {
          status: {
            meshId: this.#o.meshId, peerId: id, policyVersion: c.policyVersion, digest: c.digest ?? (same ? s.status.digest : ''), rulesetHash: same ? s.status.rulesetHash : '', enforcement: c.enforcement, lastApplyAt: same ? s.status.lastApplyAt : 0, alerts: c.alerts, seq: c.seq, time: c.time, findings: same ? s.status.findings : [],
            // The claim carries the node's rollout stage and held version itself (signed).
            ...(c.rolloutStage ? { rolloutStage: c.rolloutStage } : {}),
            ...(c.rolloutEnforcing ? { rolloutEnforcing: c.rolloutEnforcing } : {}),
          },
          receivedAt: c.learnedAt, verified: c.verified,
        });
      } else if (s) out.set(id, { ...s, verified: true });
    }
    return out;
  }

  /** One audit round: listeners, expiry, silent nodes, stale event alerts. */
  async audit(): Promise<void> {
    const o = this.#o;
    const now = o.clock.now();
    const rs = o.enforcer.ruleset;
    if (rs) {
      const bad = unexpectedListeners((o.listeners ?? readListeners)(), rs);
      const keep = new Set<string>();
      // Naming the owning process walks /proc: do it only for listeners not already alerted.
      const fresh = bad.filter((l) => !o.alerts.isOpen(`unexpected-listener/${l.proto}/${l.port}`));
      const procs = fresh.length ? await processesByInode(new Set(fresh.map((l) => l.inode))) : new Map<string, string>();
      for (const found of bad) {
        const l = procs.has(found.inode) ? { ...found, process: procs.get(found.inode)! } : found;
        const key = `unexpected-listener/${l.proto}/${l.port}`;
        keep.add(key);
        await o.alerts.raise(key, 'unexpected-listener', 'warning', `Unexpected listener: ${l.proto}/${l.port} on ${l.address}${l.process ? ` (${l.process})` : ''} is not opened by the policy for this node`, { ...l });
      }
      await o.alerts.resolveClassExcept('unexpected-listener', keep);
    }
    const root = o.engine.root.root;
    if (root.expires <= now) await o.alerts.raise('root-expired', 'root-expired', 'critical', `Trusted root v${root.version} expired at ${new Date(root.expires).toISOString()}: no new policy is accepted until a newer root is published; the last good policy stays enforced`, { rootVersion: root.version });
    else await o.alerts.resolve('root-expired');
    if (root.expires > now && root.expires - now < o.rootExpiryWarning) await o.alerts.raise('root-expiring', 'root-expiring', 'warning', `Trusted root v${root.version} expires at ${new Date(root.expires).toISOString()}: rotate it (picket root rotate) before then`, { rootVersion: root.version });
    else await o.alerts.resolve('root-expiring');
    const p = o.engine.current?.policy;
    if (p) {
      const stale = staleAt(p);
      if (stale !== undefined && stale <= now) {
        await o.alerts.raise('policy-stale', 'policy-stale', 'error', `Policy v${p.version} is stale (issued ${new Date(p.issuedAt).toISOString()}, settings.maxAge ${Math.round(p.settings.maxAge! / 3_600_000)}h); ${p.settings.onExpiry === 'baseline' ? 'enforcing the baseline' : 'still enforcing it'}: sign and publish a fresh version`, { version: p.version, issuedAt: p.issuedAt, maxAge: p.settings.maxAge });
      } else {
        await o.alerts.resolve('policy-stale', `policy v${p.version} is fresh`);
      }
      if (p.expires <= now) await o.alerts.raise('policy-expired', 'policy-expired', 'critical', `Policy v${p.version} expired at ${new Date(p.expires).toISOString()}; ${p.settings.onExpiry === 'baseline' ? 'enforcing the baseline' : 'still enforcing it'}`, { version: p.version });
      else await o.alerts.resolve('policy-expired');
      if (p.expires > now && p.expires - now < o.expiryWarning) await o.alerts.raise('policy-expiring', 'policy-expiring', 'warning', `Policy v${p.version} expires at ${new Date(p.expires).toISOString()}`, { version: p.version });
      else await o.alerts.resolve('policy-expiring');
    }
    await this.#checkLagging(now);
    // Silence is judged only once the agent has been up long enough to have heard everyone.
    if (now - this.#startedAt > o.silentAfter) {
      const keep = new Set<string>();
      // Silence is judged on any claim (a verified view would check every node's signature
      // every round); an open alert resolves only on a verified one, and a few random claims
      // are checked each round so forged ones surface (docs/threat-model.md "Status plane").
      this.#digest.sample(o.sampleClaims ?? 3, (n) => o.random.int(n));
      const open = new Set(o.alerts.openAlerts().filter((a) => a.class === 'node-silent').map((a) => a.key.slice('node-silent/'.length)));
      // An open alert resolves only on a verified row: a checked claim or full status, never a
      // tally bit (bits are unsigned and prove no liveness; a liar could set a dead node's).
      // Checking also drops forged claims, so the background view below no longer shows them.
      const checked = open.size ? this.#rows([...open], true) : new Map<string, { receivedAt: number }>();
      const heard = (id: string) => { const r = checked.get(id); return !!r && now - r.receivedAt <= o.silentAfter; };
      for (const n of this.fleet({ verify: false }).nodes) {
        if (n.peerId === o.peerId || (!n.silent && (!open.has(n.peerId) || heard(n.peerId)))) continue;
        const key = `node-silent/${n.peerId}`;
        keep.add(key);
        await o.alerts.raise(key, 'node-silent', 'warning', `Node ${n.name} has not been heard from ${n.lastSeen ? `since ${n.lastSeen}` : 'since this agent started'}`, { peerId: n.peerId, name: n.name, lastSeen: n.lastSeen });
      }
      await o.alerts.resolveClassExcept('node-silent', keep);
    }
    // A twin still running signs a status every statusInterval; silence for silentAfter means it is gone.
    for (const t of this.#twins.current()) this.#twinSeenAt.set(`duplicate-identity/${t.peer}`, now);
    for (const [key, at] of this.#twinSeenAt) {
      if (now - at <= Math.max(o.silentAfter, 3 * o.statusInterval)) continue;
      this.#twinSeenAt.delete(key);
      await o.alerts.resolve(key, 'no sign of a second agent with this identity lately');
    }
    for (const a of o.alerts.openAlerts()) {
      if ((a.class === 'forged-policy' || a.class === 'peer-penalised' || a.class === 'unadmitted-peers') && now - a.since > EVENT_ALERT_TTL) await o.alerts.resolve(a.key, 'quiet for an hour');
    }
  }

  /** One probe round against a few peers' policy-closed ports. */
  async probe(): Promise<Finding[]> {
    const o = this.#o;
    const p = o.engine.current?.policy;
    if (!p) return [];
    const targets = planProbes(p, o.peerId, o.clock.now(), o.random, { peers: o.probePeers, ports: o.probePorts, meshPorts: o.meshPorts });
    const findings = await runProbes(targets, o.probeTimeout);
    const probedPeers = new Set(targets.map((t) => t.peerId));
    // Keep findings about peers not probed this round; replace the others.
    this.#findings = [...this.#findings.filter((f) => !probedPeers.has(f.target)), ...findings].slice(0, 64);
    const keep = new Set(this.#findings.map((f) => `exposed-port/${f.target}/${f.port}`));
    for (const f of this.#findings) {
      await o.alerts.raise(`exposed-port/${f.target}/${f.port}`, 'exposed-port', 'error', `Exposed port: ${f.detail} (${f.address})`, { ...f });
    }
    await o.alerts.resolveClassExcept('exposed-port', keep);
    if (findings.length) await this.publishStatus();
    return findings;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) t.cancel();
    this.#pending?.cancel();
    this.#relay?.cancel();
    await this.#publishing;
    await this.#flushStatuses().catch(() => undefined);
  }
}
