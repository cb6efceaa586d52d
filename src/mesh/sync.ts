/**
 * /picket/sync/1.0.0: length-prefixed protobuf over one libp2p stream.
 *   initiator → Hello, responder → Hello, initiator → Push, responder → Push.
 * Each side sends what the other lacks (planPush). Every read is bounded in size and time;
 * whatever arrives is offered to the engine, which verifies it like any other input.
 */
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { LIMITS } from '../wire/limits.js';
import { pb } from '../wire/proto.js';
import { planPush, type Holdings } from './sync-plan.js';

export const SYNC_PROTOCOL = '/picket/sync/1.0.0';
export const MAX_SYNC_ROOTS = 64;
export const MAX_SYNC_PEERS = 32;
const MAX_PEER_ADDRS = 8;
const MAX_HELLO_BYTES = 1024;
const MAX_PUSH_BYTES = LIMITS.maxEnvelopeBytes + MAX_SYNC_ROOTS * 16 * 1024 + 1024;

export interface SyncLocal {
  holdings(): Holdings;
  rootsAfter(version: number): Uint8Array[];
  policyEnvelope(): Uint8Array | undefined;
  /** Peers to tell the other side about (peer exchange). */
  peers(): PeerInfo[];
  /** Receives what the peer pushed: roots first (ascending), then the policy, then peers. */
  receive(push: Pushed): Promise<void>;
  /**
   * Called once the peer's Hello is read, right before this side says what it still wants:
   * returns the policy version already on its way through other exchanges or pulls (the peer
   * then does not send that body), and registers this exchange as bringing the peer's newer
   * body when nothing else is. `release` runs when the exchange ends.
   */
  claim?(theirs: Holdings): { fetchingVersion: number; release(): void };
}

export interface PeerInfo {
  peerId: string;
  addrs: string[];
}

export interface Pushed {
  roots: Uint8Array[];
  policy?: Uint8Array;
  peers: PeerInfo[];
  fetchingVersion?: number;
}

export class SyncError extends Error {
  override readonly name = 'SyncError';
  readonly code = 'ERR_SYNC';
}

export interface SyncStats {
  sentBytes: number;
  receivedBytes: number;
  receivedRoots: number;
  receivedPolicy: boolean;
  peer: Holdings;
}

function decodeHello(bytes: Uint8Array): Holdings {
  if (bytes.length > MAX_HELLO_BYTES) throw new SyncError(`hello of ${bytes.length} bytes`);
  let h: pb.sync.v1.Hello;
  try {
    h = pb.sync.v1.Hello.decode(bytes);
  } catch (e) {
    throw new SyncError(`malformed hello: ${(e as Error).message}`);
  }
  const rootVersion = Number(h.rootVersion), policyVersion = Number(h.policyVersion), fetchingVersion = Number(h.fetchingVersion);
  if (![rootVersion, policyVersion, fetchingVersion].every(Number.isSafeInteger) || h.meshId.length > LIMITS.maxStringLength || !/^[0-9a-f]{0,64}$/.test(h.policyDigest)) {
    throw new SyncError('malformed hello');
  }
  return { meshId: h.meshId, rootVersion, policyVersion, policyDigest: h.policyDigest, fetchingVersion };
}

function encodePush(local: SyncLocal, theirs: Holdings, fetchingVersion = 0): Uint8Array {
  const plan = planPush(local.holdings(), theirs);
  const roots = plan.rootsAfter !== undefined ? local.rootsAfter(plan.rootsAfter).slice(0, MAX_SYNC_ROOTS) : [];
  const policy = plan.policy ? local.policyEnvelope() : undefined;
  const peers = local.peers().slice(0, MAX_SYNC_PEERS).map((p) => ({ peerId: p.peerId, addrs: p.addrs.slice(0, MAX_PEER_ADDRS) }));
  return pb.sync.v1.Push.encode({ roots, ...(policy ? { policy } : {}), peers, fetchingVersion }).finish();
}

function decodePush(bytes: Uint8Array): Pushed {
  let p: pb.sync.v1.Push;
  try {
    p = pb.sync.v1.Push.decode(bytes);
  } catch (e) {
    throw new SyncError(`malformed push: ${(e as Error).message}`);
  }
  if (p.roots.length > MAX_SYNC_ROOTS) throw new SyncError(`push with ${p.roots.length} roots (limit ${MAX_SYNC_ROOTS})`);
  if (p.peers.length > MAX_SYNC_PEERS) throw new SyncError(`push with ${p.peers.length} peers (limit ${MAX_SYNC_PEERS})`);
  const peers: PeerInfo[] = [];
  for (const info of p.peers) {
    const addrs = info.addrs ?? [];
    const peerId = info.peerId ?? '';
    if (addrs.length > MAX_PEER_ADDRS || peerId.length > LIMITS.maxStringLength || addrs.some((a) => a.length > LIMITS.maxStringLength)) throw new SyncError('push with an oversized peer entry');
    peers.push({ peerId, addrs });
  }
  const fetchingVersion = Number(p.fetchingVersion);
  if (!Number.isSafeInteger(fetchingVersion)) throw new SyncError('malformed push');
  return { roots: p.roots.map((r) => new Uint8Array(r)), ...(p.policy.length ? { policy: new Uint8Array(p.policy) } : {}), peers, fetchingVersion };
}

/** Runs one side of a sync exchange. Throws SyncError on a misbehaving peer. */
export async function runSync(stream: Stream, role: 'initiator' | 'responder', local: SyncLocal, timeoutMs: number): Promise<SyncStats> {
  const lp = lpStream(stream, { maxDataLength: MAX_PUSH_BYTES });
  const signal = AbortSignal.timeout(timeoutMs);
  const helloOf = (mine: Holdings) => pb.sync.v1.Hello.encode({
    meshId: mine.meshId, rootVersion: mine.rootVersion, policyVersion: mine.policyVersion, policyDigest: mine.policyDigest,
    fetchingVersion: mine.fetchingVersion ?? 0,
  }).finish();
  let sentBytes = 0, receivedBytes = 0;
  const read = async () => {
    const b = (await lp.read({ signal })).subarray();
    receivedBytes += b.length;
    return b;
  };
  const write = async (b: Uint8Array) => {
    sentBytes += b.length;
    await lp.write(b, { signal });
  };
  const meshId = local.holdings().meshId;
  let theirs: Holdings;
  let claim: { fetchingVersion: number; release(): void } | undefined;
  try {
    if (role === 'initiator') {
      await write(helloOf(local.holdings()));
      theirs = decodeHello(await read());
    } else {
      theirs = decodeHello(await read());
      // Holdings (with what is on its way from elsewhere) before this exchange claims the body.
      const mine = local.holdings();
      if (theirs.meshId === meshId) claim = local.claim?.(theirs);
      await write(helloOf(mine));
    }
    if (theirs.meshId !== meshId) throw new SyncError(`peer is in mesh ${theirs.meshId.slice(0, 64)}`);
    let push: Pushed;
    if (role === 'initiator') {
      claim = local.claim?.(theirs);
      await write(encodePush(local, theirs, claim?.fetchingVersion));
      push = decodePush(await read());
    } else {
      push = decodePush(await read());
      await write(encodePush(local, { ...theirs, fetchingVersion: Math.max(theirs.fetchingVersion ?? 0, push.fetchingVersion ?? 0) }));
    }
    await local.receive(push);
    return { sentBytes, receivedBytes, receivedRoots: push.roots.length, receivedPolicy: Boolean(push.policy), peer: theirs };
  } finally {
    claim?.release();
  }
}
