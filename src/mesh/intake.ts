/**
 * What a node decides about a message a peer forwarded on a gossip topic, behind narrow
 * ports (no libp2p in here): the policy topic's validator and the announcement topic's.
 * gossip.ts installs them as gossipsub topic validators; the simulator (bench/sim/) calls the
 * same functions with a simulated transport, so there is one implementation of the protocol.
 */
import type { OfferOptions, OfferResult, Source, Verified } from '../node/engine.js';
import type { Penalise } from './admission.js';
import type { Charge } from './budgets.js';
import type { Holdings } from './sync-plan.js';
import { judgeAnnouncement, verifyAnnouncement, type Announcement, type PullBudget } from './announce.js';
import type { InFlight, Pull } from './inflight.js';
import type { Clock } from '../runtime/clock.js';
import { gossipVerdict, TopicValidatorResult, type Overrun } from './verdicts.js';

export interface PolicyIntakePorts {
  /** The engine's offer; a port that calls `opts.verified` lets the verdict come before the write. */
  offer(data: Uint8Array, source: Source, opts?: OfferOptions): Promise<OfferResult>;
  isBanned(peer: string): boolean;
  /** One anti-entropy exchange with `peer` (resolves when it ended, however it ended). */
  syncWith(peer: string): Promise<unknown>;
  penalise: Penalise;
}

export interface PolicyIntakeResult {
  verdict: TopicValidatorResult;
  outcome: OfferResult['outcome'];
  /** Set when the verdict came the moment the envelope verified, before the engine persisted it. */
  verified?: Verified;
  /** The engine's final result (after its write, when `verified` is set). */
  settled: Promise<OfferResult>;
}

/**
 * A policy (or root) envelope on the policy topic, forwarded by `from`. Accept comes the
 * moment the engine says it verified — gossipsub forwards it then, while this node persists
 * and enforces it — so each hop costs a verification, not a disk write and the queue behind
 * it. The bytes are signed: a peer that gets them early verifies them itself.
 */
export async function policyIntake(p: PolicyIntakePorts, from: string, data: Uint8Array): Promise<PolicyIntakeResult> {
  const retry = !p.isBanned(from);
  let early!: (v: Verified) => void;
  const verified = new Promise<Verified>((resolve) => { early = resolve; });
  const offered = p.offer(data, { kind: 'gossip', peer: from }, { retryBelowThreshold: retry, verified: early });
  const first = await Promise.race([verified.then((v) => ({ verified: v })), offered.then((r) => ({ result: r }))]);
  if ('verified' in first) return { verdict: TopicValidatorResult.Accept, outcome: 'accepted', verified: first.verified, settled: offered };
  let r = first.result;
  if (r.outcome === 'below-threshold' && retry) {
    // Signed under a root this node may not hold yet (a rotation still spreading): sync
    // with the sender, which pulls any newer root, then judge the message again.
    await p.syncWith(from);
    r = await p.offer(data, { kind: 'gossip', peer: from });
  }
  const verdict = gossipVerdict(r.outcome);
  if (verdict === TopicValidatorResult.Reject) p.penalise(from, 'gossip-rejected', `gossip ${r.outcome}`);
  if (r.outcome === 'gap') void p.syncWith(from);
  return { verdict, outcome: r.outcome, settled: Promise.resolve(r) };
}

export interface AnnouncementIntakePorts {
  meshId: string;
  announcement(from: string): Charge;
  overrun: Overrun;
  penalise: Penalise;
  /** A PeerId the held policy lists. */
  isMember(peer: string): boolean;
  holdings(): Holdings;
  /** Pull the announced body from `from` (anti-entropy's pull: budgeted, one per body). */
  pull(from: string, key: string, a: Announcement): Promise<void>;
}

export type AnnouncementOutcome = 'over-budget' | 'rejected' | 'ignored' | 'forwarded' | 'not-pulled';

/**
 * An announcement of a large policy, forwarded by `from`. Pull the body from that peer (an
 * honest node forwards an announcement only once it holds the body), then accept (gossipsub
 * forwards it) only if this node now holds exactly that body, so whoever hears it from us can
 * pull from us in turn.
 */
export class AnnouncementIntake {
  /** Same-version-other-digest announcements already pulled once (an equivocation seen). */
  #pulledOther = new Set<string>();

  constructor(private readonly p: AnnouncementIntakePorts) {}

  async judge(from: string, data: Uint8Array): Promise<{ verdict: TopicValidatorResult; outcome: AnnouncementOutcome }> {
    const p = this.p;
    // Charged before the signature is checked: a flood costs its sender, not our CPU.
    const charge = p.announcement(from);
    if (!charge.ok) {
      p.overrun(from, charge);
      return { verdict: TopicValidatorResult.Ignore, outcome: 'over-budget' };
    }
    const v = await verifyAnnouncement(data, p.meshId, (peer) => p.isMember(peer));
    let outcome: AnnouncementOutcome;
    if (!v.ok) {
      outcome = v.reject ? 'rejected' : 'ignored';
      if (v.reject) p.penalise(from, 'invalid-announcement', v.reason);
    } else {
      const a = v.announcement;
      let judged = judgeAnnouncement(p.holdings(), a);
      const key = `${a.policyVersion}:${a.policyDigest}`;
      if (judged === 'pull' && a.policyVersion === p.holdings().policyVersion) {
        // Same version, other content: pull once so the engine sees (and alerts on) the equivocation.
        if (this.#pulledOther.has(key)) judged = 'ignore';
        else { if (this.#pulledOther.size > 64) this.#pulledOther.clear(); this.#pulledOther.add(key); }
      }
      if (judged === 'pull') {
        await p.pull(from, key, a);
        judged = judgeAnnouncement(p.holdings(), a);
      }
      outcome = judged === 'forward' ? 'forwarded' : judged === 'pull' ? 'not-pulled' : 'ignored';
    }
    const verdict = outcome === 'rejected' ? TopicValidatorResult.Reject : outcome === 'forwarded' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
    return { verdict, outcome };
  }
}

/**
 * After the pull of an announced body from `from`: the lie, if the peer told one, or
 * undefined. `served`: what the peer's Hello said it holds (undefined: the exchange failed).
 */
export function judgePull(a: Pick<Announcement, 'policyVersion' | 'policyDigest'>, served: Holdings | undefined, mine: Holdings): string | undefined {
  // It forwarded an announcement for a body it does not hold: honest peers never do.
  if (served && served.policyVersion < a.policyVersion) return `announced v${a.policyVersion}, holds v${served.policyVersion}`;
  // It announced a body and then could not serve it.
  if (!served && judgeAnnouncement(mine, a) === 'pull') return `announced v${a.policyVersion}, did not serve it`;
  return undefined;
}

export interface PullPorts {
  inflight: InFlight;
  budget: PullBudget;
  clock: Clock;
  holdings(): Holdings;
  /** Sync exchanges in progress (initiated or served). */
  exchanges(): Iterable<Promise<unknown>>;
  /** One exchange with `peer`: what its Hello said it holds, or undefined when it failed. */
  syncWith(peer: string): Promise<{ peer: Holdings } | undefined>;
  penalise: Penalise;
  /** Counts a pull that runs (metrics). */
  started?(): void;
}

/**
 * Pulls an announced body from the peer that forwarded the announcement: one pull per body
 * however many peers announce it, within the forwarding peer's pull budget; a peer that
 * announced a body it then does not serve is struck (judgePull).
 */
export function pullAnnounced(p: PullPorts, from: string, key: string, a: Announcement): Promise<void> {
  const running = p.inflight.pulls.get(key);
  if (running) return running.done;
  if (!p.budget.take(from)) return Promise.resolve();
  const pull: Pull = { from, version: a.policyVersion, digest: a.policyDigest, since: p.clock.now(), done: Promise.resolve() };
  pull.done = (async () => {
    p.started?.();
    // Exchanges already running (a new connection's sync, one with `from` that started before
    // it held the body) may be bringing this body: let them finish first, then judge only an
    // exchange started after the announcement arrived.
    const running = [...p.exchanges()];
    if (running.length) await Promise.allSettled(running);
    if (judgeAnnouncement(p.holdings(), a) !== 'pull') return;
    const stats = await p.syncWith(from);
    const lie = judgePull(a, stats?.peer, p.holdings());
    if (lie) p.penalise(from, 'announced-not-held', lie);
  })().finally(() => {
    p.inflight.pulls.delete(key);
    p.budget.done(from);
  });
  p.inflight.pulls.set(key, pull);
  return pull.done;
}
