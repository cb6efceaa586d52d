/**
 * Byzantine peers: real libp2p nodes holding a valid identity listed in the policy, that
 * send forged, stale, equivocating, oversized, truncated and random messages, and flood.
 */
import { createLibp2p, type Libp2p } from 'libp2p';
import { memory } from '@libp2p/memory';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { generateSigningKey } from '../../src/trust/keys.js';
import { encodeEnvelope, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { encodePolicy, type Policy } from '../../src/policy/model.js';
import { policyTopic } from '../../src/mesh/mesh.js';
import { SYNC_PROTOCOL } from '../../src/mesh/sync.js';
import type { Random } from '../../src/runtime/random.js';

export class Byzantine {
  readonly forger = generateSigningKey();
  sent = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  private constructor(readonly node: Libp2p<{ pubsub: GossipSub }>, readonly meshId: string) {}

  static async start(key: PrivateKey, listen: string, meshId: string): Promise<Byzantine> {
    const node = (await createLibp2p({
      privateKey: key,
      addresses: { listen: [listen] },
      transports: [memory({ latency: 1 })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', allowPublishToZeroTopicPeers: true, emitSelf: false }) },
    })) as unknown as Libp2p<{ pubsub: GossipSub }>;
    node.services.pubsub.subscribe(policyTopic(meshId));
    return new Byzantine(node, meshId);
  }

  async dial(addr: string): Promise<void> {
    await this.node.dial(multiaddr(addr)).catch(() => undefined);
  }

  /**
   * Floods every `everyMs` with one lie picked at random: forged (wrong key), a replay of an
   * old validly signed version, an equivocating copy, garbage, a truncated envelope, an
   * oversized blob, or a garbage sync exchange.
   */
  flood(random: Random, lies: { old: Uint8Array[]; equivocating: () => Uint8Array; template: Policy }, everyMs = 20): void {
    this.#timer = setInterval(() => {
      const pick = random.int(7);
      let msg: Uint8Array;
      switch (pick) {
        case 0: msg = encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy({ ...lies.template, version: 1000 + random.int(1000) }), [this.forger])); break;
        case 1: msg = lies.old[random.int(lies.old.length)] ?? new Uint8Array([1]); break;
        case 2: msg = lies.equivocating(); break;
        case 3: msg = crypto.getRandomValues(new Uint8Array(1 + random.int(2000))); break;
        case 4: { const good = lies.old[0] ?? new Uint8Array(10); msg = good.slice(0, Math.max(1, random.int(good.length))); break; }
        case 5: msg = new Uint8Array(600 * 1024).fill(7); break;
        default: void this.#garbageSync(random); return;
      }
      this.sent++;
      void this.node.services.pubsub.publish(policyTopic(this.meshId), msg).catch(() => undefined);
    }, everyMs);
  }

  async #garbageSync(random: Random): Promise<void> {
    const peers = this.node.getPeers();
    const peer = peers[random.int(peers.length)];
    if (!peer) return;
    try {
      const s = await this.node.dialProtocol(peerIdFromString(peer.toString()), SYNC_PROTOCOL, { signal: AbortSignal.timeout(1000) });
      await lpStream(s).write(crypto.getRandomValues(new Uint8Array(64)));
      this.sent++;
    } catch {
      /* refused or banned: expected */
    }
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.node.stop();
  }
}
