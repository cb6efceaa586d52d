/**
 * Announcements of large policies: a small message signed by the announcing node that says
 * "I hold policy vN (digest, size)". Receivers pull the body once through the sync protocol
 * instead of receiving a full copy from every gossip mesh peer. The announcement carries no
 * authority: the body it leads to is verified against the root like any other envelope.
 */
import type { PrivateKey } from '@libp2p/interface';
import type { Clock } from '../runtime/clock.js';
import { isBoundedTime, LIMITS } from '../wire/limits.js';
import { signAsNode, verifyAsNode } from '../trust/node-sign.js';
import { pb } from '../wire/proto.js';
import type { Holdings } from './sync-plan.js';

const DOMAIN = new TextEncoder().encode('picket-announce-v1');
export const MAX_ANNOUNCE_BYTES = 1024;

export interface Announcement {
  meshId: string;
  peerId: string;
  policyVersion: number;
  policyDigest: string;
  size: number;
  rootVersion: number;
  time: number;
}

export async function signAnnouncement(a: Announcement, key: PrivateKey): Promise<Uint8Array> {
  const announce = pb.sync.v1.Announce.encode({
    meshId: a.meshId, peerId: a.peerId, policyVersion: a.policyVersion, policyDigest: a.policyDigest, size: a.size, rootVersion: a.rootVersion, timeMs: a.time,
  }).finish();
  return pb.sync.v1.SignedAnnounce.encode({ announce, signature: await signAsNode(key, DOMAIN, announce) }).finish();
}

export type AnnounceVerdict = { ok: true; announcement: Announcement } | { ok: false; reject: boolean; reason: string };

/**
 * Checks form, mesh and signature. `isMember` says whether a PeerId is a node of the policy
 * this node holds: an unknown signer may belong to a policy we lack yet, so it is ignored,
 * not penalised (sync still delivers that policy).
 */
export async function verifyAnnouncement(bytes: Uint8Array, meshId: string, isMember: (peerId: string) => boolean): Promise<AnnounceVerdict> {
  if (bytes.length > MAX_ANNOUNCE_BYTES) return { ok: false, reject: true, reason: 'announcement too large' };
  let signed: pb.sync.v1.SignedAnnounce, m: pb.sync.v1.Announce;
  try {
    signed = pb.sync.v1.SignedAnnounce.decode(bytes);
    m = pb.sync.v1.Announce.decode(signed.announce);
  } catch {
    return { ok: false, reject: true, reason: 'malformed announcement' };
  }
  const policyVersion = Number(m.policyVersion), size = Number(m.size), rootVersion = Number(m.rootVersion), time = Number(m.timeMs);
  if (![policyVersion, size, rootVersion, time].every(Number.isSafeInteger) || !isBoundedTime(time) || policyVersion < 1 || size < 1 || size > LIMITS.maxEnvelopeBytes
    || !/^[0-9a-f]{64}$/.test(m.policyDigest) || m.meshId.length > LIMITS.maxStringLength || m.peerId.length > LIMITS.maxStringLength) {
    return { ok: false, reject: true, reason: 'malformed announcement' };
  }
  if (m.meshId !== meshId) return { ok: false, reject: true, reason: `announcement for mesh ${m.meshId.slice(0, 64)}` };
  if (!(await verifyAsNode(m.peerId, DOMAIN, signed.announce, signed.signature))) return { ok: false, reject: true, reason: 'announcement signature does not verify' };
  if (!isMember(m.peerId)) return { ok: false, reject: false, reason: 'announcement from a node not in the policy' };
  return { ok: true, announcement: { meshId: m.meshId, peerId: m.peerId, policyVersion, policyDigest: m.policyDigest, size, rootVersion, time } };
}

/**
 * What a node does with a verified announcement (pure):
 * `forward` — it holds exactly that body and can serve it; `ignore` — older than what it
 * holds; `pull` — newer, or the same version with other content (pulled so the engine sees
 * the equivocation).
 */
export function judgeAnnouncement(mine: Holdings, a: Pick<Announcement, 'policyVersion' | 'policyDigest'>): 'forward' | 'ignore' | 'pull' {
  if (a.policyVersion < mine.policyVersion) return 'ignore';
  if (a.policyVersion === mine.policyVersion && a.policyDigest === mine.policyDigest) return 'forward';
  return 'pull';
}

/**
 * Pulls one forwarding peer can make this node run (issue 13, "fake announcements"): an
 * announcement is a claim, and every pull it triggers is a sync exchange. At most one
 * outstanding pull per peer and `perMinute` a minute (a token bucket holding up to `burst`);
 * announcements beyond that are ignored, not pulled (sync still brings any real body).
 */
export const PULL_BURST = 3;
export const PULLS_PER_MINUTE = 3;

export class PullBudget {
  #outstanding = new Set<string>();
  #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly clock: Clock, private readonly burst = PULL_BURST, private readonly perMinute = PULLS_PER_MINUTE) {}

  /** True (and counted) when `peer` may be pulled from now; call done() when the pull ends. */
  take(peer: string): boolean {
    if (this.#outstanding.has(peer)) return false;
    const now = this.clock.now();
    const b = this.#buckets.get(peer) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 60_000) * this.perMinute);
    b.at = now;
    this.#buckets.set(peer, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    this.#outstanding.add(peer);
    return true;
  }

  done(peer: string): void {
    this.#outstanding.delete(peer);
  }

  /** Forget peers no longer listed (bounds the map by the policy's node count). */
  retain(listed: (peer: string) => boolean): void {
    for (const p of this.#buckets.keys()) if (!listed(p)) this.#buckets.delete(p);
  }
}
