/**
 * A hostile mesh peer for the adversary suite, built only from the libp2p packages and the
 * wire contract (the .proto files, the topic names, the signing domains), never from the
 * agent's own classes: what it sends is what any attacker could send.
 */
import { createLibp2p, type Libp2p } from 'libp2p';
import { memory } from '@libp2p/memory';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Connection, PrivateKey } from '@libp2p/interface';
import protobuf from 'protobufjs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';

const PROTO = join(import.meta.dirname, '..', '..', 'proto', 'picket');
const root = await protobuf.load([join(PROTO, 'status/v1/status.proto'), join(PROTO, 'envelope/v1/envelope.proto'), join(PROTO, 'sync/v1/sync.proto')]);
const Status = root.lookupType('picket.status.v1.Status');
const SignedStatus = root.lookupType('picket.status.v1.SignedStatus');
const Envelope = root.lookupType('picket.envelope.v1.Envelope');
const Announce = root.lookupType('picket.sync.v1.Announce');
const SignedAnnounce = root.lookupType('picket.sync.v1.SignedAnnounce');

export const SYNC = '/picket/sync/1.0.0';
export const topics = (meshId: string) => ({
  policy: `/picket/${meshId}/policy/1`,
  status: `/picket/${meshId}/status/1`,
  announce: `/picket/${meshId}/announce/1`,
});
const STATUS_DOMAIN = new TextEncoder().encode('picket-status-v1');
const ANNOUNCE_DOMAIN = new TextEncoder().encode('picket-announce-v1');

/** Decodes the signer of a signed status (what a receiver would read), or undefined. */
export function statusOrigin(bytes: Uint8Array): string | undefined {
  try {
    const signed = SignedStatus.decode(bytes) as unknown as { status: Uint8Array };
    return (Status.decode(signed.status) as unknown as { peerId: string }).peerId;
  } catch {
    return undefined;
  }
}

export class HostileNode {
  readonly peerId: string;
  private constructor(readonly node: Libp2p<{ pubsub: GossipSub }>, readonly key: PrivateKey, readonly meshId: string) {
    this.peerId = peerIdFromPrivateKey(key).toString();
  }

  static async start(key: PrivateKey, listen: string, meshId = 'test'): Promise<HostileNode> {
    const node = (await createLibp2p({
      privateKey: key,
      addresses: { listen: [listen] },
      transports: [memory({ latency: 1 })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Far above any sane peer: the victim's limits, not ours, must decide.
      connectionManager: { maxConnections: 1024 },
      services: { identify: identify(), pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', allowPublishToZeroTopicPeers: true, emitSelf: false }) },
    })) as unknown as Libp2p<{ pubsub: GossipSub }>;
    const t = topics(meshId);
    node.services.pubsub.subscribe(t.policy);
    node.services.pubsub.subscribe(t.status);
    node.services.pubsub.subscribe(t.announce);
    return new HostileNode(node, key, meshId);
  }

  /** Opens up to `n` separate connections to the victim (never reusing an existing one). */
  async connectMany(addr: string, n: number): Promise<Connection[]> {
    const out: Connection[] = [];
    for (let i = 0; i < n; i++) {
      const c = await this.node.dial(multiaddr(addr), { force: true }).catch(() => undefined);
      if (c) out.push(c);
    }
    return out;
  }

  /** A validly signed status of this node (it is a listed node: it holds its own key). */
  async signedStatus(seq: number): Promise<Uint8Array> {
    const status = Status.encode(Status.create({
      meshId: this.meshId, peerId: this.peerId, policyVersion: 1, digest: 'ab'.repeat(32), rulesetHash: 'cd'.repeat(32),
      enforcement: 'ok', lastApplyAtMs: Date.now(), alerts: [], seq, timeMs: Date.now(), findings: [],
    })).finish();
    const msg = new Uint8Array(STATUS_DOMAIN.length + status.length);
    msg.set(STATUS_DOMAIN);
    msg.set(status, STATUS_DOMAIN.length);
    const signature = await this.key.sign(msg);
    return SignedStatus.encode(SignedStatus.create({ status, signature })).finish();
  }

  /** A validly signed announcement by this node of a policy version (held or not: a claim). */
  async signedAnnouncement(policyVersion: number, time: number): Promise<Uint8Array> {
    const announce = Announce.encode(Announce.create({
      meshId: this.meshId, peerId: this.peerId, policyVersion, policyDigest: 'ef'.repeat(32), size: 100_000, rootVersion: 1, timeMs: time,
    })).finish();
    const msg = new Uint8Array(ANNOUNCE_DOMAIN.length + announce.length);
    msg.set(ANNOUNCE_DOMAIN);
    msg.set(announce, ANNOUNCE_DOMAIN.length);
    return SignedAnnounce.encode(SignedAnnounce.create({ announce, signature: await this.key.sign(msg) })).finish();
  }

  /** A policy envelope signed by a key no root knows (a forgery; well-formed on the wire). */
  static forgedPolicy(): Uint8Array {
    return Envelope.encode(Envelope.create({
      payloadType: 'application/vnd.picket.policy.v1+protobuf', payload: randomBytes(200),
      signatures: [{ keyId: createHash('sha256').update(randomBytes(32)).digest('hex'), sig: randomBytes(64) }],
    })).finish();
  }

  publish(topic: string, bytes: Uint8Array): Promise<unknown> {
    return this.node.services.pubsub.publish(topic, bytes).catch(() => undefined);
  }

  /** True once `peerId` is subscribed to `topic` as far as this node knows. */
  sees(topic: string, peerId: string): boolean {
    return this.node.services.pubsub.getSubscribers(topic).some((p) => p.toString() === peerId);
  }

  async stop(): Promise<void> {
    await this.node.stop();
  }
}
