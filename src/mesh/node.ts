/**
 * Room: libp2p construction. Builds the node an agent runs — TCP (or the in-process memory
 * transport), Noise, yamux, identify, ping and gossipsub — with the gater and metrics it is
 * handed. It registers no protocol handler and no topic: the other mesh rooms do that.
 */
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { memory } from '@libp2p/memory';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import type { Connection, ConnectionGater, Metrics, PeerId, PrivateKey } from '@libp2p/interface';
import type { Clock } from '../runtime/clock.js';
import { LIMITS } from '../wire/limits.js';
import { coalesceWrites } from '../runtime/socket-writes.js';
import { installLengthPrefixFix } from './length-prefix.js';

installLengthPrefixFix();

export type MeshNode = Libp2p<{ pubsub: GossipSub }>;

export interface NodeInit {
  privateKey: PrivateKey;
  listen: string[];
  /** Addresses the node will dial at start: they decide which transports it needs. */
  bootstrap: string[];
  gater: ConnectionGater;
  metrics: () => Metrics;
  maxConnections: number;
  /** Per-link latency for the in-process memory transport (tests, simulations). */
  memoryLatency?: number;
  /** Benchmarks only: never send IDONTWANT (gossipsub v1.1 behaviour), to measure duplicates. */
  noIdontwant?: boolean;
}

/** How often each end pings each connection (keepalive.ts). */
export const PING_INTERVAL = 30_000;
/** How long a keep-alive ping may go unanswered before the connection is aborted. */
export const PING_TIMEOUT = 10_000;
/**
 * gossipsub v1.2 answers every received message of at least this many bytes with an
 * IDONTWANT to each mesh peer. Its default (512 B) covered every status digest (~1–2 KB),
 * which is never forwarded, so each digest a node received cost 6–12 control messages for
 * nothing. Policies large enough for duplicates to matter (tens of KB and up; a 200 KB one is
 * where IDONTWANT paid off in bench/bytes.ts) stay above it.
 */
export const IDONTWANT_MIN_BYTES = 16 * 1024;

export async function createMeshNode(o: NodeInit): Promise<MeshNode> {
  const addrs = [...o.listen, ...o.bootstrap];
  const transports = [];
  if (addrs.some((a) => a.startsWith('/memory/'))) transports.push(memory({ latency: o.memoryLatency ?? 0 }));
  if (addrs.some((a) => /\/tcp\//.test(a)) || transports.length === 0) transports.push(tcp());
  const node = (await createLibp2p({
    privateKey: o.privateKey,
    addresses: { listen: o.listen },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ enableKeepAlive: false })],
    connectionGater: o.gater,
    connectionManager: { maxConnections: o.maxConnections },
    // Both ends ping every connection to find dead ones (a host that vanished without a FIN),
    // at the muxer (keepalive.ts), not with libp2p's monitor's stream per ping; yamux's own
    // keep-alive pings but never acts on a missing answer. libp2p's 10 s made pings a third of
    // an idle fleet's CPU (30 agents in one process: 11.5% of a core of 27% with periodic
    // statuses off); at 30 s a dead connection is dropped within ~30–40 s instead of ~10–20 s,
    // while gossip reaches every node through the others.
    connectionMonitor: { enabled: false },
    metrics: o.metrics,
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        emitSelf: false,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        globalSignaturePolicy: 'StrictNoSign',
        maxInboundDataLength: LIMITS.maxEnvelopeBytes + 64 * 1024,
        idontwantMinDataSize: o.noIdontwant ? Number.MAX_SAFE_INTEGER : IDONTWANT_MIN_BYTES,
        heartbeatInterval: 700,
        // Admission already limits the mesh to PeerIds the signed policy lists, so gossipsub's
        // Sybil defence against many peers behind one IP only hurts here: fleets share IPs
        // (NAT, containers, one test host), and above 10 co-located peers it drove every
        // score to -500 and emptied the gossip mesh (measured: 30 loopback nodes, 7.5 s medians).
        scoreParams: { IPColocationFactorWeight: 0 },
      }),
    },
  })) as unknown as MeshNode;
  // Coalesce each connection's socket writes per tick (src/runtime/socket-writes.ts).
  node.addEventListener('connection:open', (e) => { coalesceWrites((e.detail as unknown as { maConn?: unknown }).maConn); });
  return node;
}

type GossipIds = (topics: Set<string>) => Map<string, unknown[]>;
/** Per gossipsub message cache: the topics it no longer advertises. */
const noLazy = new WeakMap<object, Set<string>>();

/**
 * Messages on `topic` are never advertised by lazy gossip (IHAVE at each heartbeat to peers
 * outside the topic's gossip mesh, who answer IWANT and get the message). For the status
 * digests this was the whole relay again: a digest is never forwarded and goes to the gossip
 * mesh on purpose, yet gossipsub offered each one this node published to ~6 more neighbours
 * per heartbeat for 3 heartbeats, so every neighbour got every digest plus an IHAVE and an
 * IWANT for it. Eager delivery (flood publish to every peer, the mesh) is unchanged.
 * gossipsub has no per-topic setting for it: this filters the topics its heartbeat asks its
 * message cache for (@libp2p/gossipsub 17: `mcache.getGossipIDs`). False when that shape is
 * not there (a test says so rather than the setting silently doing nothing).
 */
export function excludeFromLazyGossip(node: MeshNode, topic: string): boolean {
  const mcache = (node.services.pubsub as unknown as { mcache?: { getGossipIDs?: GossipIds } }).mcache;
  if (typeof mcache !== 'object' || mcache === null || typeof mcache.getGossipIDs !== 'function') return false;
  let off = noLazy.get(mcache);
  if (!off) {
    const excluded = (off = new Set());
    noLazy.set(mcache, off);
    const ids = mcache.getGossipIDs.bind(mcache);
    mcache.getGossipIDs = (topics) => ids(new Set([...topics].filter((t) => !excluded.has(t))));
  }
  off.add(topic);
  return true;
}

/**
 * Gossipsub opens its stream to a peer when the peer identifies on a connection, and ignores
 * later connections while it holds one. Two connections between a pair are common (two nodes
 * that dial each other at the same moment keep both): when the one carrying the stream closed
 * and the other stayed, the peer stayed in the topic meshes while nothing could be sent to it
 * — no eager push, no IHAVE — until a new connection identified or the far end opened a new
 * stream, which nothing made happen. This watches connection closes and, for a peer gossipsub
 * still tracks that has an open connection and no stream, hands gossipsub that connection as
 * if the peer had just connected (@libp2p/gossipsub 17: `peers`, `streamsOutbound`,
 * `onPeerConnected`; the far end answers the new stream with its own). Only peers gossipsub
 * tracks: one it never attached (no identify, no gossipsub protocol) would be added to its
 * books and never removed. False when that shape is not there.
 */
export function keepGossipAttached(node: MeshNode, clock: Clock): boolean {
  const pubsub = node.services.pubsub as unknown as { peers?: unknown; streamsOutbound?: unknown; onPeerConnected?: unknown };
  if (!(pubsub.peers instanceof Map) || !(pubsub.streamsOutbound instanceof Map) || typeof pubsub.onPeerConnected !== 'function') return false;
  const tracked = pubsub.peers as Map<string, unknown>;
  const streams = pubsub.streamsOutbound as Map<string, unknown>;
  const connected = pubsub.onPeerConnected as (peerId: PeerId, connection: Connection) => void;
  node.addEventListener('connection:close', (e) => {
    const peerId = e.detail.remotePeer;
    // After the closing connection's streams are gone from gossipsub's book (their close events).
    clock.setTimeout(() => {
      const id = peerId.toString();
      if (!tracked.has(id) || streams.has(id)) return;
      const open = node.getConnections(peerId).find((c) => c.status === 'open');
      if (open) connected.call(node.services.pubsub, peerId, open);
    }, 0);
  });
  return true;
}

/** The topics excludeFromLazyGossip took out of this node's lazy gossip. */
export function lazyGossipOff(node: MeshNode): string[] {
  const mcache = (node.services.pubsub as unknown as { mcache?: object }).mcache;
  return [...((mcache && noLazy.get(mcache)) ?? [])];
}
