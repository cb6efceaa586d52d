/**
 * /picket/sync/1.0.0: length-prefixed protobuf over one libp2p stream.
 *   initiator → Hello, responder → Hello, initiator → Push, responder → Push.
 * Each side sends what the other lacks (planPush). Every read is bounded in size (by the
 * message expected next, before it is buffered: frames.ts) and in time; whatever arrives is
 * offered to the engine, which verifies it like any other input.
 *
 * A Hello is a claim. It decides how much this side will read, never what it believes:
 * a peer that claimed a body this exchange asked for and did not deliver it (nothing, or
 * something older) is struck through `local.strike`; so is a peer that stalls while it owes
 * such a body, or sends a broken or oversize frame (thrown as SyncError with its `strike`).
 */
import type { Stream } from '@libp2p/interface';
import { LIMITS } from '../wire/limits.js';
import { pb } from '../wire/proto.js';
import { FrameError, step } from './frames.js';
import { MAX_HELLO_BYTES, MAX_PEER_ADDRS, MAX_SYNC_PEERS, MAX_SYNC_ROOTS, planPush, pushLimit, type Holdings } from './sync-plan.js';

export { MAX_SYNC_PEERS, MAX_SYNC_ROOTS } from './sync-plan.js';
export const SYNC_PROTOCOL = '/picket/sync/1.0.0';

/** What an exchange's claim bookkeeping (inflight.ts) answers once the peer's Hello is read. */
export interface ExchangeClaim {
  fetchingVersion: number;
  fetchingDigest: string;
  /** This exchange asks for the peer's body: it may be body-sized, and the peer owes it. */
  bodyWanted: boolean;
  release(): void;
}

/** What became of a pushed policy body (the engine's verdict), for judging the peer's claim. */
export interface Received {
  policy?: { outcome: string; version?: number };
}

export interface SyncLocal {
  holdings(): Holdings;
  rootsAfter(version: number): Uint8Array[];
  policyEnvelope(): Uint8Array | undefined;
  /** Peers to tell the other side about (peer exchange). */
  peers(): PeerInfo[];
  /** Receives what the peer pushed: roots first (ascending), then the policy, then peers. */
  receive(push: Pushed): Promise<Received | void>;
  /**
   * Called once the peer's Hello is read, before this side says what it still wants. Without
   * it, every body the peer claims is asked for.
   */
  claim?(theirs: Holdings): ExchangeClaim;
  /** A misbehaviour that did not end the exchange (a claim that did not materialise). */
  strike?(reason: string): void;
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
  fetchingDigest?: string;
}

export type SyncStrike = 'malformed' | 'wrong-mesh' | 'oversize' | 'framing' | 'stall';

export class SyncError extends Error {
  override readonly name = 'SyncError';
  readonly code = 'ERR_SYNC';
  /** The strike this costs the peer; null: not the peer's fault (the stream closed). */
  constructor(message: string, readonly strike: SyncStrike | null = 'malformed') {
    super(message);
  }
}

export interface SyncStats {
  sentBytes: number;
  receivedBytes: number;
  receivedRoots: number;
  receivedPolicy: boolean;
  peer: Holdings;
}

const hexDigest = /^[0-9a-f]{0,64}$/;

function decodeHello(bytes: Uint8Array): Holdings {
  let h: pb.sync.v1.Hello;
  try {
    h = pb.sync.v1.Hello.decode(bytes);
  } catch (e) {
    throw new SyncError(`malformed hello: ${(e as Error).message}`);
  }
  const rootVersion = Number(h.rootVersion), policyVersion = Number(h.policyVersion), fetchingVersion = Number(h.fetchingVersion);
  if (![rootVersion, policyVersion, fetchingVersion].every(Number.isSafeInteger) || h.meshId.length > LIMITS.maxStringLength || !hexDigest.test(h.policyDigest) || !hexDigest.test(h.fetchingDigest)) {
    throw new SyncError('malformed hello');
  }
  return { meshId: h.meshId, rootVersion, policyVersion, policyDigest: h.policyDigest, fetchingVersion, fetchingDigest: h.fetchingDigest };
}

/**
 * Sends only what this side's Hello claimed (`said`): the peer sized its read from that
 * claim, so a body or root accepted meanwhile waits for the next exchange or gossip.
 */
function encodePush(local: SyncLocal, said: Holdings, theirs: Holdings, fetching: { fetchingVersion: number; fetchingDigest: string }): Uint8Array {
  const plan = planPush(said, theirs);
  const roots = plan.rootsAfter !== undefined ? local.rootsAfter(plan.rootsAfter).slice(0, Math.min(MAX_SYNC_ROOTS, said.rootVersion - plan.rootsAfter)) : [];
  const policy = plan.policy && local.holdings().policyDigest === said.policyDigest ? local.policyEnvelope() : undefined;
  const peers = local.peers().slice(0, MAX_SYNC_PEERS).map((p) => ({ peerId: p.peerId, addrs: p.addrs.slice(0, MAX_PEER_ADDRS) }));
  return pb.sync.v1.Push.encode({ roots, ...(policy ? { policy } : {}), peers, ...fetching }).finish();
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
  if (!Number.isSafeInteger(fetchingVersion) || !hexDigest.test(p.fetchingDigest)) throw new SyncError('malformed push');
  return {
    roots: p.roots.map((r) => new Uint8Array(r)), ...(p.policy.length ? { policy: new Uint8Array(p.policy) } : {}), peers,
    fetchingVersion, fetchingDigest: p.fetchingDigest,
  };
}

/**
 * Did the peer deliver what this exchange asked for? Returns the lie, or undefined.
 * A body that the engine rejected as forged is penalised where it is offered, not here.
 */
export function judgeDelivery(theirs: Holdings, mine: Holdings, push: Pushed, received: Received | void, bodyWanted: boolean): string | undefined {
  if (theirs.rootVersion > mine.rootVersion && push.roots.length === 0) return `claimed root v${theirs.rootVersion} but sent no root`;
  if (!bodyWanted) return undefined;
  if (!push.policy) return `claimed policy v${theirs.policyVersion} but sent no body`;
  const v = received?.policy?.version;
  if (v !== undefined && v < theirs.policyVersion) return `claimed policy v${theirs.policyVersion} but sent v${v}`;
  return undefined;
}

/** Runs one side of a sync exchange. Throws SyncError on a misbehaving peer. */
export async function runSync(stream: Stream, role: 'initiator' | 'responder', local: SyncLocal, timeoutMs: number): Promise<SyncStats> {
  const signal = AbortSignal.timeout(timeoutMs);
  const helloOf = (mine: Holdings, f: { fetchingVersion: number; fetchingDigest: string }) => pb.sync.v1.Hello.encode({
    meshId: mine.meshId, rootVersion: mine.rootVersion, policyVersion: mine.policyVersion, policyDigest: mine.policyDigest, ...f,
  }).finish();
  let sentBytes = 0, receivedBytes = 0;
  const io = async (out: Uint8Array | undefined, limit: number, awaiting: string) => {
    sentBytes += out?.length ?? 0;
    try {
      const b = await step(stream, signal, out, limit);
      receivedBytes += b?.length ?? 0;
      return b;
    } catch (e) {
      if (e instanceof FrameError) throw new SyncError(`${e.message} (${role}, ${awaiting})`, e.fault === 'closed' ? null : e.fault);
      throw e;
    }
  };
  const nothing = { fetchingVersion: 0, fetchingDigest: '' };
  const mineAtStart = local.holdings();
  const meshId = mineAtStart.meshId;
  let claim: ExchangeClaim | undefined;
  try {
    let theirs: Holdings, push: Pushed;
    const ask = (t: Holdings) => {
      if (t.meshId !== meshId) throw new SyncError(`peer is in mesh ${t.meshId.slice(0, 64)}`, 'wrong-mesh');
      claim = local.claim?.(t) ?? { ...nothing, bodyWanted: true, release: () => undefined };
      return claim;
    };
    if (role === 'initiator') {
      theirs = decodeHello((await io(helloOf(mineAtStart, nothing), MAX_HELLO_BYTES, 'awaiting hello'))!);
      const c = ask(theirs);
      push = decodePush((await io(encodePush(local, mineAtStart, theirs, c), pushLimit(mineAtStart, theirs, c.bodyWanted), 'awaiting push'))!);
    } else {
      theirs = decodeHello((await io(undefined, MAX_HELLO_BYTES, 'awaiting hello'))!);
      const c = ask(theirs);
      push = decodePush((await io(helloOf(mineAtStart, c), pushLimit(mineAtStart, theirs, c.bodyWanted), 'awaiting push'))!);
      const told = push.fetchingDigest ? { fetchingVersion: push.fetchingVersion ?? 0, fetchingDigest: push.fetchingDigest } : { fetchingVersion: theirs.fetchingVersion ?? 0, fetchingDigest: theirs.fetchingDigest ?? '' };
      await io(encodePush(local, mineAtStart, { ...theirs, ...told }, nothing), 0, 'sending push');
    }
    const received = await local.receive(push);
    const lie = judgeDelivery(theirs, mineAtStart, push, received, claim!.bodyWanted);
    if (lie) local.strike?.(lie);
    return { sentBytes, receivedBytes, receivedRoots: push.roots.length, receivedPolicy: Boolean(push.policy), peer: theirs };
  } catch (e) {
    // A stall is a strike when the peer owed this exchange a body it claimed (the sync-block
    // attack). Any other timeout is what an overloaded honest peer also produces (measured:
    // ~100 timeouts between honest in-process agents at load 15 on 2 cores): not a strike;
    // what such a stream costs is bounded by the per-peer sync stream budget (budgets.ts).
    if (e instanceof SyncError && e.strike === 'stall' && !claim?.bodyWanted) throw new SyncError(e.message, null);
    throw e;
  } finally {
    claim?.release();
  }
}
