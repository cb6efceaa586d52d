/**
 * Room: gossip. The topics (policy envelopes, large-policy announcements, signed statuses,
 * status digests), their validators — each maps what the engine or a verifier says into
 * accept / ignore / reject, and a reject is a strike against the forwarding peer — and
 * publishing: a policy is pushed whole, or announced and pulled through anti-entropy when large.
 * Status digests also travel on a direct stream to one neighbour (digestProtocol), with the
 * same budget and merge as the topic.
 */
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { lpStream } from '@libp2p/utils';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { CurrentPolicy, NodePort, Verified } from '../node/engine.js';
import type { Admission, Penalise } from './admission.js';
import type { AntiEntropy } from './anti-entropy.js';
import type { MeshMetrics } from './metrics.js';
import type { Budgets } from './budgets.js';
import { excludeFromLazyGossip, keepGossipAttached, type MeshNode } from './node.js';
import { signAnnouncement } from './announce.js';
import { AnnouncementIntake, policyIntake } from './intake.js';
import { FrameError, step } from './frames.js';

import { gossipVerdict, TopicValidatorResult, type Overrun } from './verdicts.js';

export { gossipVerdict, TopicValidatorResult, type Overrun };

export const policyTopic = (meshId: string) => `/picket/${meshId}/policy/1`;
export const statusTopic = (meshId: string) => `/picket/${meshId}/status/1`;
/** Status-plane digests: from a node to its direct neighbours only, never relayed by gossipsub. */
export const digestTopic = (meshId: string) => `/picket/${meshId}/digest/1`;
/** Merges one digest from a direct neighbour: 'reject' when it is malformed (the sender is struck). */
export type DigestHandler = (bytes: Uint8Array, from: string) => 'merged' | 'reject';
/**
 * A full digest for one new neighbour, on a stream of its own: gossipsub cannot address one
 * peer, and a full digest to every neighbour for each new connection made mixing cost
 * O(N × degree) per connection. The stream carries length-prefixed digest messages, one way.
 */
export const digestProtocol = (meshId: string) => `/picket/${meshId}/digest/1.0.0`;
/** How long one direct digest stream may take, end to end. */
const DIRECT_DIGEST_TIMEOUT = 10_000;
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
  #announcements: AnnouncementIntake;

  constructor(o: GossipInit) {
    this.#o = o;
    this.#announcements = new AnnouncementIntake({
      meshId: o.meshId,
      announcement: (from) => this.#o.budgets.announcement(from),
      overrun: (peer, charge) => this.#o.overrun(peer, charge),
      penalise: (peer, reason, detail) => this.#o.penalise(peer, reason, detail),
      isMember: (p) => this.#o.engine.current?.policy.nodes.some((n) => n.peerId === p) ?? false,
      holdings: () => this.#o.antiEntropy.holdings(),
      pull: (from, key, a) => this.#o.antiEntropy.pull(from, key, a),
    });
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
    if (!keepGossipAttached(node, o.clock)) o.log.warn('gossipsub stream book not found: a peer whose gossip connection closes while another stays gets no gossip until it reconnects');
  }

  /**
   * A policy or root envelope forwarded by `from`. The verdict is Accept the moment the engine
   * says it verified — gossipsub forwards it then, while this node persists and enforces it —
   * so every hop costs a verification, not a disk write and a queue behind it.
   */
  async #onPolicy(from: string, data: Uint8Array): Promise<TopicValidatorResult> {
    const o = this.#o;
    o.metrics.gossipBytesIn.inc(data.length);
    const { verdict, outcome, verified, settled } = await policyIntake({
      offer: (d, source, opts) => o.engine.offer(d, source, opts),
      isBanned: (p) => o.admission.isBanned(p),
      syncWith: (p) => o.antiEntropy.syncWith(p),
      penalise: o.penalise,
    }, from, data);
    if (verified) {
      // Accepted the moment it verified: gossipsub forwards it now, the engine persists it meanwhile.
      if (verified.kind === 'policy') o.engine.mark(verified.version, verified.digest, 'forwarded', this.#meshSize(policyTopic(o.meshId)));
      void settled.then((r) => o.metrics.gossipIn.inc({ outcome: r.outcome }), (e: unknown) => o.log.warn({ err: (e as Error).message, peer: from }, 'forwarded envelope not persisted'));
    } else {
      o.metrics.gossipIn.inc({ outcome });
      // Accepted on the second offer (after a sync brought the root): forwarded once persisted.
      void settled.then((r) => { if (r.outcome === 'accepted' && r.kind === 'policy') o.engine.mark(r.version, r.digest, 'forwarded', this.#meshSize(policyTopic(o.meshId))); });
    }
    return verdict;
  }

  /** An announcement of a large policy, forwarded to us by `from` (intake.ts decides). */
  async #onAnnouncement(from: string, data: Uint8Array): Promise<TopicValidatorResult> {
    this.#o.metrics.gossipBytesIn.inc(data.length);
    const { verdict, outcome } = await this.#announcements.judge(from, data);
    this.#o.metrics.announcementsIn.inc({ outcome });
    return verdict;
  }

  /**
   * Subscribes to the signed-status topic; the validator decides accept / ignore / reject.
   * Only statuses newer than what is held for their node (the validator's seq check) and
   * within their node's budget are stored and relayed.
   * `lazyGossip: false` (the digest plane): full statuses are details a node refreshes every
   * few intervals, and eager push through the gossip mesh delivers them; gossipsub's IHAVE for
   * them, at every heartbeat to ~6 neighbours outside the mesh, cost more than what it repaired
   * (100 agents in one process: the heartbeats 7.1 → 3.2 CPU s over a run). On the full plane
   * statuses are the whole plane and keep it.
   */
  subscribeStatus(validate: StatusValidator, opts: { lazyGossip?: boolean } = {}): void {
    const o = this.#o;
    const topic = statusTopic(o.meshId);
    const map = { accept: TopicValidatorResult.Accept, ignore: TopicValidatorResult.Ignore, reject: TopicValidatorResult.Reject } as const;
    this.#node.services.pubsub.topicValidators.set(topic, async (peer, msg) => {
      const from = peer.toString();
      o.metrics.statusBytesIn.inc({ kind: 'status' }, msg.data.length);
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
    if (opts.lazyGossip === false && !excludeFromLazyGossip(this.#node, topic)) o.log.warn({ topic }, 'gossipsub lazy gossip could not be turned off for full statuses');
  }

  /** Gossip mesh and topic peers of `topic` now (what a forward reaches at once). */
  #meshSize(topic: string): Record<string, number> {
    const pubsub = this.#node.services.pubsub;
    // The implementation has getMeshPeers; the exported GossipSub interface does not declare it.
    const mesh = (pubsub as unknown as { getMeshPeers?: (t: string) => string[] }).getMeshPeers?.(topic);
    return { meshPeers: mesh?.length ?? -1, topicPeers: pubsub.getSubscribers(topic).length };
  }

  /** True when a policy of `size` bytes is pushed whole (else announced and pulled). */
  pushesWhole(size: number): boolean {
    const a = this.#o.announceAbove;
    return a === null || size <= a;
  }

  /** Pushes a verified policy whole, before it is persisted (the mesh's verified step). */
  async pushPolicy(v: Verified): Promise<void> {
    const o = this.#o;
    o.engine.mark(v.version, v.digest, 'forwarded', this.#meshSize(policyTopic(o.meshId)));
    return this.publishRaw(policyTopic(o.meshId), v.bytes);
  }

  publishStatus(bytes: Uint8Array): Promise<void> {
    return this.publishRaw(statusTopic(this.#o.meshId), bytes);
  }

  /**
   * Subscribes to the digest topic and serves the direct digest protocol. Every digest is
   * charged to its sender's digest budget, handed to `merge`, and then never forwarded
   * (Ignore): a digest is one neighbour's view, and the receiver republishes its own merged
   * view instead. `maxBytes`: one digest message's limit, checked before a direct frame is buffered.
   */
  subscribeDigest(merge: DigestHandler, maxBytes: number): void {
    const o = this.#o;
    const topic = digestTopic(o.meshId);
    this.#node.services.pubsub.topicValidators.set(topic, async (peer, msg) => {
      const from = peer.toString();
      return this.#takeDigest(msg.data, from, merge) === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore;
    });
    this.#node.services.pubsub.subscribe(topic);
    // A relay goes to the gossip mesh only: no IHAVE that would hand it to every other neighbour.
    if (!excludeFromLazyGossip(this.#node, topic)) o.log.warn({ topic }, 'gossipsub lazy gossip could not be turned off for digests: every neighbour gets every digest');
    // The same digests on a direct stream (a new neighbour's full view): the same budget, the
    // same merge; a stream is charged before a byte is read, its frames are bounded before
    // they are buffered, and the whole stream by a timeout.
    const protocol = digestProtocol(o.meshId);
    void this.#node.handle(protocol, (stream: Stream, connection: Connection) => {
      const from = connection.remotePeer.toString();
      const { charge, release } = o.budgets.openStream(protocol, from);
      if (!charge.ok) {
        stream.abort(new Error(`over the ${charge.kind} budget`));
        o.overrun(from, charge);
        return;
      }
      void this.#readDirect(stream, from, merge, maxBytes).finally(release);
    }, { maxInboundStreams: 4 }).catch((e: unknown) => o.log.warn({ err: (e as Error).message }, 'digest protocol not registered'));
  }

  /** One digest from `from`: charged, merged; 'over' past its budget, 'reject' when malformed (struck). */
  #takeDigest(bytes: Uint8Array, from: string, merge: DigestHandler): 'merged' | 'over' | 'reject' {
    const o = this.#o;
    o.metrics.statusBytesIn.inc({ kind: 'digest' }, bytes.length);
    const charge = o.budgets.digest(from);
    if (!charge.ok) { o.overrun(from, charge); return 'over'; }
    if (merge(bytes, from) === 'reject') {
      o.penalise(from, 'invalid-status', 'invalid digest');
      return 'reject';
    }
    return 'merged';
  }

  async #readDirect(stream: Stream, from: string, merge: DigestHandler, maxBytes: number): Promise<void> {
    const signal = AbortSignal.timeout(DIRECT_DIGEST_TIMEOUT);
    try {
      for (;;) {
        const bytes = await step(stream, signal, undefined, maxBytes);
        if (this.#takeDigest(bytes!, from, merge) !== 'merged') break;
      }
    } catch (e) {
      const f = e instanceof FrameError ? e.fault : 'closed';
      // The end of the stream ends the digest; a frame past the limit or a broken one is a strike.
      if (f === 'oversize' || f === 'framing') this.#o.penalise(from, 'invalid-status', `direct digest: ${(e as Error).message}`);
      if (f === 'closed') { await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => stream.abort(new Error('close timed out'))); return; }
    }
    stream.abort(new Error('digest stream ended'));
  }

  /**
   * Sends digests to one connected neighbour on a stream of their own. False when that is not
   * possible (not connected, or a peer that does not speak the protocol: an older agent).
   */
  async sendDigest(peer: string, frames: readonly Uint8Array[]): Promise<boolean> {
    const conn = this.#node.getConnections(peerIdFromString(peer)).find((c) => c.status === 'open');
    if (!conn) return false;
    let stream: Stream | undefined;
    try {
      const signal = AbortSignal.timeout(DIRECT_DIGEST_TIMEOUT);
      stream = await conn.newStream(digestProtocol(this.#o.meshId), { signal });
      const lp = lpStream(stream, { maxDataLength: Math.max(...frames.map((f) => f.length), 1) });
      for (const f of frames) await lp.write(f, { signal });
      lp.unwrap();
      await stream.close({ signal });
      return true;
    } catch (e) {
      stream?.abort(e as Error);
      this.#o.log.debug({ peer, err: (e as Error).message }, 'direct digest not sent');
      return false;
    }
  }

  /**
   * Sends one digest to direct neighbours: `to: 'all'` every subscribed peer (full digests:
   * repair and new connections), `'mesh'` only this node's gossip mesh for the topic (D ≈ 6
   * peers; changed claims: the mesh is a connected overlay and every node passes news on to
   * its own mesh, so news still reaches everyone while each node receives a claim from ~D
   * neighbours instead of from every connection — measured in bench/status.ts).
   */
  publishDigest(bytes: Uint8Array, to: 'all' | 'mesh' = 'all'): Promise<void> {
    return this.publishRaw(digestTopic(this.#o.meshId), bytes, to === 'all');
  }

  /** Spreads the policy this node holds: pushed whole, or announced when large. */
  async publishPolicy(cur: CurrentPolicy): Promise<void> {
    const o = this.#o;
    if (this.pushesWhole(cur.bytes.length)) return this.pushPolicy({ kind: 'policy', version: cur.policy.version, digest: cur.digest, bytes: cur.bytes });
    const signed = await signAnnouncement({
      meshId: o.meshId, peerId: o.self, policyVersion: cur.policy.version, policyDigest: cur.digest,
      size: cur.bytes.length, rootVersion: o.engine.root.root.version, time: o.clock.now(),
    }, o.privateKey);
    o.metrics.announcementsOut.inc();
    o.engine.mark(cur.policy.version, cur.digest, 'forwarded', this.#meshSize(announceTopic(o.meshId)));
    return this.publishRaw(announceTopic(o.meshId), signed);
  }

  /** Spreads a root this node accepted from elsewhere than gossip. */
  publishRoot(bytes: Uint8Array): Promise<void> {
    return this.publishRaw(policyTopic(this.#o.meshId), bytes);
  }

  async publishRaw(topic: string, bytes: Uint8Array, floodPublish = true): Promise<void> {
    try {
      // The implementation takes per-call options (gossipsub's PublishOpts); its exported interface omits them.
      const pubsub = this.#node.services.pubsub as unknown as { publish(t: string, d: Uint8Array, opts: { floodPublish: boolean }): Promise<unknown> };
      await pubsub.publish(topic, bytes, { floodPublish });
    } catch (e) {
      this.#o.log.debug({ topic, err: (e as Error).message }, 'publish failed');
    }
  }
}
