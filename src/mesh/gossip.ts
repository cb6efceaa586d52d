/**
 * Room: gossip. The three topics (policy envelopes, large-policy announcements, signed
 * statuses), their validators — each maps what the engine or a verifier says into
 * accept / ignore / reject, and a reject is a strike against the forwarding peer — and
 * publishing: a policy is pushed whole, or announced and pulled through anti-entropy when large.
 */
import type { PrivateKey } from '@libp2p/interface';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { CurrentPolicy, NodePort } from '../node/engine.js';
import type { Admission, Penalise } from './admission.js';
import type { AntiEntropy } from './anti-entropy.js';
import type { MeshMetrics } from './metrics.js';
import type { Budgets } from './budgets.js';
import type { MeshNode } from './node.js';
import { judgeAnnouncement, signAnnouncement, verifyAnnouncement } from './announce.js';

import { gossipVerdict, TopicValidatorResult, type Overrun } from './verdicts.js';

export { gossipVerdict, TopicValidatorResult, type Overrun };

export const policyTopic = (meshId: string) => `/picket/${meshId}/policy/1`;
export const statusTopic = (meshId: string) => `/picket/${meshId}/status/1`;
export const announceTopic = (meshId: string) => `/picket/${meshId}/announce/1`;

export type StatusVerdict = 'accept' | 'ignore' | 'reject';

/**
 * Validates one signed status forwarded by `from`. `withinBudget(origin)` must be asked once
 * the status verified and is newer than what is held, before it is stored: false means
 * ignore it (neither stored nor relayed).
 */
export type StatusValidator = (bytes: Uint8Array, from: string, withinBudget: (origin: string) => boolean) => Promise<StatusVerdict>;

export interface GossipInit {
  meshId: string;
  self: string;
  privateKey: PrivateKey;
  engine: NodePort;
  admission: Admission;
  antiEntropy: AntiEntropy;
  clock: Clock;
  log: Logger;
  metrics: MeshMetrics;
  penalise: Penalise;
  budgets: Budgets;
  overrun: Overrun;
  /**
   * Envelopes larger than this many bytes are announced (a small signed message) and pulled
   * once through sync, instead of being pushed whole to every gossip mesh peer. null: always push.
   */
  announceAbove: number | null;
}

export class Gossip {
  #o: GossipInit;
  #node!: MeshNode;
  /** Same-version-other-digest announcements already pulled once (an equivocation seen). */
  #pulledOther = new Set<string>();

  constructor(o: GossipInit) {
    this.#o = o;
  }
  /** Run-time settings (the agent's SIGHUP): read at their next use. */
  reconfigure(c: Partial<Pick<GossipInit, 'announceAbove'>>): void {
    this.#o = { ...this.#o, ...c };
  }


  /** Subscribes to the policy and announcement topics with their validators. */
  install(node: MeshNode): void {
    const o = this.#o;
    this.#node = node;
    const pubsub = node.services.pubsub;
    const topic = policyTopic(o.meshId);
    pubsub.topicValidators.set(topic, async (peer, msg) => this.#onPolicy(peer.toString(), msg.data));
    pubsub.subscribe(topic);
    const announce = announceTopic(o.meshId);
    pubsub.topicValidators.set(announce, async (peer, msg) => this.#onAnnouncement(peer.toString(), msg.data));
    pubsub.subscribe(announce);
  }

  async #onPolicy(from: string, data: Uint8Array): Promise<TopicValidatorResult> {
    const o = this.#o;
    o.metrics.gossipBytesIn.inc(data.length);
    const retry = !o.admission.isBanned(from);
    let r = await o.engine.offer(data, { kind: 'gossip', peer: from }, { retryBelowThreshold: retry });
    if (r.outcome === 'below-threshold' && retry) {
      // Signed under a root this node may not hold yet (a rotation still spreading): sync
      // with the sender, which pulls any newer root, then judge the message again.
      await o.antiEntropy.syncWith(from);
      r = await o.engine.offer(data, { kind: 'gossip', peer: from });
    }
    o.metrics.gossipIn.inc({ outcome: r.outcome });
    const verdict = gossipVerdict(r.outcome);
    if (verdict === TopicValidatorResult.Reject) o.penalise(from, 'gossip-rejected', `gossip ${r.outcome}`);
    if (r.outcome === 'gap') void o.antiEntropy.syncWith(from);
    return verdict;
  }

  /**
   * An announcement of a large policy, forwarded to us by `from`. Pull the body from that
   * peer (an honest node forwards an announcement only once it holds the body), then let
   * gossipsub forward the announcement only if we now hold exactly that body, so whoever
   * hears it from us can pull from us in turn.
   */
  async #onAnnouncement(from: string, data: Uint8Array): Promise<TopicValidatorResult> {
    const o = this.#o;
    o.metrics.gossipBytesIn.inc(data.length);
    // Charged before the signature is checked: a flood costs its sender, not our CPU.
    const charge = o.budgets.announcement(from);
    if (!charge.ok) {
      o.overrun(from, charge);
      o.metrics.announcementsIn.inc({ outcome: 'over-budget' });
      return TopicValidatorResult.Ignore;
    }
    const isMember = (p: string) => o.engine.current?.policy.nodes.some((n) => n.peerId === p) ?? false;
    const v = await verifyAnnouncement(data, o.meshId, isMember);
    let outcome: string;
    if (!v.ok) {
      outcome = v.reject ? 'rejected' : 'ignored';
      if (v.reject) o.penalise(from, 'invalid-announcement', v.reason);
    } else {
      const a = v.announcement;
      const holdings = () => o.antiEntropy.holdings();
      let judged = judgeAnnouncement(holdings(), a);
      const key = `${a.policyVersion}:${a.policyDigest}`;
      if (judged === 'pull' && a.policyVersion === holdings().policyVersion) {
        // Same version, other content: pull once so the engine sees (and alerts on) the equivocation.
        if (this.#pulledOther.has(key)) judged = 'ignore';
        else { if (this.#pulledOther.size > 64) this.#pulledOther.clear(); this.#pulledOther.add(key); }
      }
      if (judged === 'pull') {
        await o.antiEntropy.pull(from, key, a);
        judged = judgeAnnouncement(holdings(), a);
      }
      outcome = judged === 'forward' ? 'forwarded' : judged === 'pull' ? 'not-pulled' : 'ignored';
    }
    o.metrics.announcementsIn.inc({ outcome });
    if (outcome === 'rejected') return TopicValidatorResult.Reject;
    return outcome === 'forwarded' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
  }

  /**
   * Subscribes to the signed-status topic; the validator decides accept / ignore / reject.
   * Only statuses newer than what is held for their node (the validator's seq check) and
   * within their node's budget are stored and relayed.
   */
  subscribeStatus(validate: StatusValidator): void {
    const o = this.#o;
    const topic = statusTopic(o.meshId);
    const map = { accept: TopicValidatorResult.Accept, ignore: TopicValidatorResult.Ignore, reject: TopicValidatorResult.Reject } as const;
    this.#node.services.pubsub.topicValidators.set(topic, async (peer, msg) => {
      const from = peer.toString();
      const withinBudget = (origin: string) => {
        const charge = o.budgets.status(origin, from);
        if (!charge.ok) o.overrun(from, charge);
        return charge.ok;
      };
      const v = await validate(msg.data, from, withinBudget);
      if (v === 'reject') o.penalise(from, 'invalid-status', 'invalid status');
      return map[v];
    });
    this.#node.services.pubsub.subscribe(topic);
  }

  publishStatus(bytes: Uint8Array): Promise<void> {
    return this.publishRaw(statusTopic(this.#o.meshId), bytes);
  }

  /** Spreads the policy this node holds: pushed whole, or announced when large. */
  async publishPolicy(cur: CurrentPolicy): Promise<void> {
    const o = this.#o;
    if (o.announceAbove === null || cur.bytes.length <= o.announceAbove) return this.publishRaw(policyTopic(o.meshId), cur.bytes);
    const signed = await signAnnouncement({
      meshId: o.meshId, peerId: o.self, policyVersion: cur.policy.version, policyDigest: cur.digest,
      size: cur.bytes.length, rootVersion: o.engine.root.root.version, time: o.clock.now(),
    }, o.privateKey);
    o.metrics.announcementsOut.inc();
    return this.publishRaw(announceTopic(o.meshId), signed);
  }

  /** Spreads a root this node accepted from elsewhere than gossip. */
  publishRoot(bytes: Uint8Array): Promise<void> {
    return this.publishRaw(policyTopic(this.#o.meshId), bytes);
  }

  async publishRaw(topic: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.#node.services.pubsub.publish(topic, bytes);
    } catch (e) {
      this.#o.log.debug({ topic, err: (e as Error).message }, 'publish failed');
    }
  }
}
