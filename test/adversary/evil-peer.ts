/**
 * A malicious mesh peer for the adversary suite: a real libp2p node (TCP or memory, Noise,
 * yamux, identify, gossipsub) holding a valid identity, that speaks the picket wire formats
 * from the .proto files directly and so can say anything — oversized frames, lying Hellos,
 * stalls, bogus peer exchange, fake announcements. It is deliberately NOT built from the
 * agent's own Mesh/Agent classes: an attacker does not run our code.
 *
 * Shared by every test in test/adversary/ (and usable by any other mesh test).
 */
import { createLibp2p, type Libp2p } from 'libp2p';
import { memory } from '@libp2p/memory';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { pb } from '../../src/wire/proto.js';
import { signAsNode } from '../../src/trust/node-sign.js';

export const SYNC = '/picket/sync/1.0.0';
export const policyTopicOf = (meshId: string) => `/picket/${meshId}/policy/1`;
export const announceTopicOf = (meshId: string) => `/picket/${meshId}/announce/1`;
export const statusTopicOf = (meshId: string) => `/picket/${meshId}/status/1`;

export interface HelloFields {
  meshId: string;
  rootVersion: number;
  policyVersion: number;
  policyDigest: string;
  fetchingVersion?: number;
  fetchingDigest?: string;
}

export interface PushFields {
  roots?: Uint8Array[];
  policy?: Uint8Array;
  peers?: { peerId: string; addrs: string[] }[];
  fetchingVersion?: number;
  fetchingDigest?: string;
}

export const encodeHello = (h: HelloFields): Uint8Array => pb.sync.v1.Hello.encode(h).finish();
export const encodePush = (p: PushFields): Uint8Array => pb.sync.v1.Push.encode({ roots: p.roots ?? [], peers: p.peers ?? [], ...p }).finish();

/** One sync stream driven by hand: frames, raw bytes, or nothing at all. */
/** Unsigned LEB128, as the length prefix of /picket/sync frames. */
export function varintOf(n: number): Uint8Array {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return new Uint8Array(out);
}

export class EvilStream {
  readonly lp;
  constructor(readonly stream: Stream) {
    this.lp = lpStream(stream, { maxDataLength: 8 * 1024 * 1024 });
  }

  frame(bytes: Uint8Array): Promise<void> {
    return this.lp.write(bytes);
  }

  async read(timeoutMs = 5000): Promise<Uint8Array> {
    return (await this.lp.read({ signal: AbortSignal.timeout(timeoutMs) })).subarray();
  }

  /** Bytes as they are (no length prefix): a forged prefix, half a frame. */
  async raw(bytes: Uint8Array): Promise<void> {
    if (!this.stream.send(bytes)) await new Promise<void>((resolve, reject) => {
      this.stream.addEventListener('drain', () => resolve(), { once: true });
      this.stream.addEventListener('close', () => reject(new Error('closed')), { once: true });
    });
  }

  /**
   * Announces a frame of `claimed` bytes and then sends up to `send` of them in chunks;
   * returns how many body bytes were accepted by the stream before it was cut.
   */
  async hugeFrame(claimed: number, send: number, chunk = 64 * 1024): Promise<number> {
    let sent = 0;
    const piece = new Uint8Array(chunk).fill(0x41);
    try {
      await this.raw(varintOf(claimed));
      while (sent < send && this.stream.status === 'open') {
        await this.raw(piece.subarray(0, Math.min(chunk, send - sent)));
        sent += Math.min(chunk, send - sent);
      }
    } catch {
      /* cut by the victim: what we want to measure */
    }
    return sent;
  }

  closed(): boolean {
    return this.stream.status !== 'open';
  }

  abort(): void {
    this.stream.abort(new Error('evil peer done'));
  }
}

export class EvilPeer {
  #loops = new Set<{ stop: boolean }>();

  private constructor(readonly node: Libp2p<{ pubsub: GossipSub }>, readonly meshId: string) {}

  static async start(key: PrivateKey, listen: string, meshId: string): Promise<EvilPeer> {
    const node = (await createLibp2p({
      privateKey: key,
      addresses: { listen: [listen] },
      transports: listen.startsWith('/memory/') ? [memory({ latency: 1 })] : [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', allowPublishToZeroTopicPeers: true, emitSelf: false }) },
    })) as unknown as Libp2p<{ pubsub: GossipSub }>;
    return new EvilPeer(node, meshId);
  }

  get peerId(): string {
    return this.node.peerId.toString();
  }

  addrs(): string[] {
    return this.node.getMultiaddrs().map(String);
  }

  /** A connection to `addr`; `fresh` forces a new one even if one is open. */
  dial(addr: string, fresh = false): Promise<Connection> {
    return this.node.dial(multiaddr(addr), fresh ? { force: true } : {});
  }

  /** Opens a sync stream to `peer` (over `conn` when given, so several connections can be used). */
  async openSync(peer: string, conn?: Connection): Promise<EvilStream> {
    const stream = conn ? await conn.newStream(SYNC, { signal: AbortSignal.timeout(5000) })
      : await this.node.dialProtocol(peerIdFromString(peer), SYNC, { signal: AbortSignal.timeout(5000) });
    return new EvilStream(stream);
  }

  /**
   * Keeps `n` sync streams to `peer` open that each send `hello` and then say nothing more,
   * reopening each one the moment the victim drops it. Returns the number of streams opened
   * so far and a stop function.
   */
  stallSyncs(peer: string, n: number, hello: HelloFields): { opened: () => number; stop: () => void } {
    const loop = { stop: false };
    this.#loops.add(loop);
    let opened = 0;
    const one = async (): Promise<void> => {
      while (!loop.stop) {
        try {
          const s = await this.openSync(peer);
          opened++;
          await s.frame(encodeHello(hello));
          // Read the victim's Hello (or nothing), then stall until the victim gives up.
          await new Promise<void>((resolve) => {
            if (s.closed()) { resolve(); return; }
            s.stream.addEventListener('close', () => resolve(), { once: true });
          });
        } catch {
          if (loop.stop) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    for (let i = 0; i < n; i++) void one();
    return { opened: () => opened, stop: () => { loop.stop = true; } };
  }

  /** Serves sync with a handler (answers as the responder however the test likes). */
  async serveSync(handler: (s: EvilStream, from: string) => Promise<void>): Promise<void> {
    await this.node.handle(SYNC, (stream: Stream, connection: Connection) => {
      void handler(new EvilStream(stream), connection.remotePeer.toString()).catch(() => undefined);
    }, { maxInboundStreams: 64 });
  }

  /** A complete initiator exchange: Hello, read Hello, Push, read Push. Returns the victim's Hello. */
  async syncOnce(peer: string, hello: HelloFields, push: PushFields): Promise<pb.sync.v1.Hello> {
    const s = await this.openSync(peer);
    await s.frame(encodeHello(hello));
    const theirs = pb.sync.v1.Hello.decode(await s.read());
    await s.frame(encodePush(push));
    await s.read().catch(() => undefined);
    await s.stream.close().catch(() => undefined);
    return theirs;
  }

  /** A signed announcement (signed with this peer's own key) that it holds version v. */
  async announcement(key: PrivateKey, a: { policyVersion: number; policyDigest: string; size: number; rootVersion?: number; time: number }): Promise<Uint8Array> {
    const announce = pb.sync.v1.Announce.encode({
      meshId: this.meshId, peerId: this.peerId, policyVersion: a.policyVersion, policyDigest: a.policyDigest, size: a.size, rootVersion: a.rootVersion ?? 1, timeMs: a.time,
    }).finish();
    const signature = await signAsNode(key, new TextEncoder().encode('picket-announce-v1'), announce);
    return pb.sync.v1.SignedAnnounce.encode({ announce, signature }).finish();
  }

  publish(topic: string, bytes: Uint8Array): Promise<unknown> {
    return this.node.services.pubsub.publish(topic, bytes).catch(() => undefined);
  }

  async stop(): Promise<void> {
    for (const l of this.#loops) l.stop = true;
    await this.node.stop();
  }
}
