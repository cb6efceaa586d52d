/**
 * The simulator: N picket nodes on a simulated transport (net.ts), each running the product's
 * own decision code behind the mesh's narrow ports —
 *  - the policy topic's validator (mesh/intake.ts policyIntake) feeding the engine's accept
 *    judgement and version floor (node/accept.ts judgePolicy, floorAfter) on the real signed
 *    envelope;
 *  - the announcement topic's validator (AnnouncementIntake: budget, verifyAnnouncement,
 *    judgeAnnouncement) and the pull it starts (pullAnnounced, PullBudget, judgePull);
 *  - sync exchanges whose every decision is the product's: what to push (planPush), which
 *    body to ask for and what to tell the peer is on its way (InFlight.claim), how much to
 *    read (pushLimit), whether the peer lied (judgeDelivery);
 *  - admission, strikes and bans (Admission), per-peer budgets (Budgets);
 *  - the status plane behind StatusPlaneSim (status.ts).
 * Gossipsub is a library and is modelled as such (gossipsub.ts). What is not the product's
 * code is said where it is: the order of the four sync messages (sync.ts runSync), the
 * anti-entropy schedule's dialling (each round's delay is the agent's roundDelay; one exchange
 * after an accept while below 3 × minPeers, a sync on every reconnection), and the 20 ms apply. Not run: peer
 * exchange (counted in bytes only; no peer book, no dialling beyond the initial connections),
 * root rotations (only policy envelopes are offered), gossipsub mesh maintenance and scoring.
 * Same seed → same result: all randomness comes from one seeded generator, all time from the
 * event queue; keys are derived from the seed.
 */
import { createHash } from 'node:crypto';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { seededRandom } from '../../src/runtime/random.js';
import { generateSigningKey } from '../../src/trust/keys.js';
import { digestOf, encodeEnvelope, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { encodeRoot, type RootDoc } from '../../src/trust/root.js';
import { encodePolicy, type Policy } from '../../src/policy/model.js';
import { pb } from '../../src/wire/proto.js';
import type { OfferResult, Source } from '../../src/node/engine.js';
import { floorAfter, judgePolicy, type AcceptState } from '../../src/node/accept.js';
import { Admission, type Penalise, type StrikeReason } from '../../src/mesh/admission.js';
import { Budgets } from '../../src/mesh/budgets.js';
import { InFlight } from '../../src/mesh/inflight.js';
import { PullBudget, signAnnouncement, type Announcement } from '../../src/mesh/announce.js';
import { AnnouncementIntake, policyIntake, pullAnnounced } from '../../src/mesh/intake.js';
import { planPush, pushLimit, roundDelay, type Holdings } from '../../src/mesh/sync-plan.js';
import { judgeDelivery, type Pushed } from '../../src/mesh/sync.js';
import { TopicValidatorResult } from '../../src/mesh/verdicts.js';
import { GossipsubModel, type Verdict } from './gossipsub.js';
import { Meter, SimNet } from './net.js';
import type { NodeState, StatusFleet, StatusPlaneSim } from './status.js';
import { mean } from '../stats.js';

export interface SimOptions {
  nodes: number;
  degree: number;
  latencyMs: number;
  loss: number;
  seed: number;
  /** The two halves cannot reach each other from the publish until this time (0: no partition). */
  partitionMs: number;
  syncIntervalMs: number;
  /** Extra rules in the published policy (its size decides push vs announce-then-pull). */
  extraRules: number;
  /** The agent's mesh.announceAbove (bytes; null: always push). */
  announceAbove: number | null;
  /** The status plane to run (undefined: none). */
  statusPlane?: StatusPlaneSim;
  /** Simulate one operator read of the verified view once every view is complete (planes with read()). Default true. */
  statusRead?: boolean;
  /** Origins whose status change is simulated when the plane is per-origin (≥ nodes: all). */
  statusSample: number;
  /** Nodes that forward a forged announcement of v3 (a fresh key, not the node's) right after the publish. */
  forgers?: number[];
  /** Simulated time limit (ms after the publish). */
  endMs?: number;
}

export const DEFAULTS: Omit<SimOptions, 'nodes' | 'seed'> = {
  degree: 6, latencyMs: 50, loss: 0.05, partitionMs: 0, syncIntervalMs: 30_000, extraRules: 0,
  announceAbove: 16 * 1024, statusSample: 0,
};

/** The agent's mesh defaults the simulator uses (src/agent/config.ts). */
const MIN_PEERS = 6, PENALTY_THRESHOLD = 5, BAN_FOR = 600_000, SYNC_TIMEOUT = 10_000;
const APPLY_MS = 20;
const MESH = 'sim';
const EPOCH = Date.parse('2026-06-01T00:00:00Z');

interface SimNode {
  i: number;
  id: string;
  accept: AcceptState;
  current: { version: number; digest: string; bytes: Uint8Array };
  admission: Admission;
  budgets: Budgets;
  inflight: InFlight;
  pullBudget: PullBudget;
  announcements: AnnouncementIntake;
  syncing: Map<number, Promise<{ peer: Holdings } | undefined>>;
  exchanges: Set<Promise<unknown>>;
  appliedAt: number;
}

export interface SimResult {
  nodes: number; degree: number; latencyMs: number; loss: number; seed: number; partitionMs: number;
  envelopeBytes: number; path: 'push' | 'announce-then-pull';
  timeTo999Ms: number | null; timeTo100Ms: number | null;
  messagesPerNode: number; bytesPerNode: number;
  policyVerifications: number; syncExchanges: number; bodiesBySync: number; pulls: number;
  strikes: Record<string, number>; bans: number;
  /** Nodes of the far half that got the policy through a sync exchange (partition runs). */
  healedBySync: number;
  status?: {
    plane: string; sampledOrigins: number; scale: number;
    bytesPerNodePerChange: number; messagesPerNodePerChange: number; verificationsPerNodePerChange: number;
    viewTo999Ms: number | null; viewTo100Ms: number | null;
    /**
     * One operator read of the verified view at the last node once every view is complete
     * (planes with read()): how long until every row verifies, and what it cost per node
     * (bytes received, fleet-wide mean). Null: the plane's views are verified as they come.
     */
    readMs?: number | null; readBytesPerNode?: number;
    observer: { summary: string; lagging: boolean };
  };
  curve: [number, number][];
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function runSim(opts: Partial<SimOptions> & Pick<SimOptions, 'nodes' | 'seed'>): Promise<SimResult> {
  const o: SimOptions = { ...DEFAULTS, ...opts };
  const N = o.nodes;
  const rnd = seededRandom(o.seed);
  const net = new SimNet(EPOCH, rnd, { latencyMs: o.latencyMs, loss: o.loss });
  const clock = net.clock;
  const policyMeter = new Meter(N), syncMeter = new Meter(N), statusMeter = new Meter(N);

  // Identities derived from the seed; the admin key signs the root and both policies.
  const keys: (PrivateKey | undefined)[] = new Array(N);
  const keyOf = async (i: number) => (keys[i] ??= await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`picket-sim/${o.seed}/${i}`).digest()));
  const ids: string[] = [];
  for (let i = 0; i < N; i++) ids.push(peerIdFromPrivateKey(await keyOf(i)).toString());
  const index = new Map(ids.map((id, i) => [id, i]));
  const members: ReadonlySet<string> = new Set(ids);
  const admin = generateSigningKey();
  const root: RootDoc = { version: 1, expires: EPOCH + 365 * 86400e3, keys: [{ keyId: admin.keyId, publicKey: admin.publicKey }], roles: { root: { keyIds: [admin.keyId], threshold: 1 }, policy: { keyIds: [admin.keyId], threshold: 1 } } };
  const trusted = { root, digest: digestOf(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(root), [admin])) };
  // The policy lists no nodes (10,000 entries would not fit an envelope): admission and
  // membership come from the simulated fleet instead.
  const policyOf = (version: number, extra: number): Policy => ({
    meshId: MESH, version, issuedAt: EPOCH - 1000, expires: EPOCH + 86400e3, nodes: [],
    rules: [{ name: 'https', to: ['any'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] },
      ...Array.from({ length: extra }, (_, k) => ({ name: `r${k}`, to: ['any'], from: [`cidr:10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}/32`], proto: 'tcp' as const, ports: [{ first: 1000 + (k % 60000), last: 1000 + (k % 60000) }] }))],
    exceptions: [], settings: { onExpiry: 'keep' },
  });
  const sign = (p: Policy) => { const env = signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(p), [admin]); return { bytes: encodeEnvelope(env), digest: digestOf(env) }; };
  const v1 = sign(policyOf(1, 0));
  const v2 = sign(policyOf(2, o.extraRules));
  const announced = o.announceAbove !== null && v2.bytes.length > o.announceAbove;

  // Topology: each node dials random peers until it has `degree` connections.
  const conns = Array.from({ length: N }, () => new Set<number>());
  for (let i = 0; i < N; i++) while (conns[i]!.size < Math.min(o.degree, N - 1)) { const j = rnd.int(N); if (j !== i) { conns[i]!.add(j); conns[j]!.add(i); } }
  const gossip = new GossipsubModel(net, conns, o.degree);

  const strikes: Record<string, number> = {};
  let bans = 0, exchangesRun = 0, bodiesBySync = 0, pulls = 0, policyVerifications = 0, accepted = 0, healedBySync = 0;
  const half = (i: number) => (i < N / 2 ? 0 : 1);
  if (o.partitionMs > 0) net.partition((a, b) => half(a) !== half(b));

  const nodes: SimNode[] = [];
  const penalise = (i: number): Penalise => (peer, reason: StrikeReason) => {
    strikes[reason] = (strikes[reason] ?? 0) + 1;
    const n = nodes[i]!;
    // The mesh's penalise (mesh.ts): past the threshold the peer is banned and hung up on.
    if (n.admission.strike(peer, PENALTY_THRESHOLD, BAN_FOR)) {
      bans++;
      const j = index.get(peer);
      if (j !== undefined) gossip.disconnect(i, j);
    }
  };
  const holdings = (i: number): Holdings => ({ meshId: MESH, rootVersion: 1, policyVersion: nodes[i]!.current.version, policyDigest: nodes[i]!.current.digest });

  /** Engine.offer for a policy envelope: the engine's judgement and floor, without its LevelDB. */
  const offer = (i: number, data: Uint8Array, source: Source): OfferResult => {
    const n = nodes[i]!;
    policyVerifications++;
    const v = judgePolicy(data, MESH, n.accept, clock.now());
    if (v.outcome !== 'accepted') return { ...v, kind: 'policy' };
    n.accept.floor = floorAfter(v);
    n.accept.heldDigest = v.digest;
    n.current = { version: v.policy.version, digest: v.digest, bytes: data };
    afterAccept(i, source);
    return { outcome: 'accepted', kind: 'policy', version: v.policy.version, digest: v.digest };
  };

  const curve: [number, number][] = [];
  let statusOrigin: (i: number) => boolean = () => true;
  let t999: number | null = null, t100: number | null = null;
  function afterAccept(i: number, source: Source): void {
    const n = nodes[i]!;
    if (n.current.version === 2) {
      accepted++;
      if (source.kind === 'sync' && o.partitionMs > 0 && half(i) === 1) healedBySync++;
      if (t999 === null && accepted >= 0.999 * N) t999 = net.t;
      if (t100 === null && accepted === N) t100 = net.t;
    }
    // The mesh's announce step (mesh.ts): what came by gossip (or a pull after an announcement)
    // gossipsub forwards itself; anything else this node publishes.
    if (source.kind !== 'gossip' && !n.inflight.pulling(n.current.version)) void net.track(publishPolicy(i));
    // AntiEntropy.policyAccepted: below 3 × minPeers, one exchange with a random connection soon.
    const c = [...conns[i]!];
    if (c.length && c.length < 3 * MIN_PEERS) {
      const delay = 200 + rnd.next() * 1000;
      net.at(net.t + delay, () => { const now = [...conns[i]!]; if (now.length) void syncWith(i, now[rnd.int(now.length)]!); });
    }
    // Enforce, then the status step (the engine's order).
    net.at(net.t + APPLY_MS, () => { n.appliedAt = net.t; if (statusOrigin(i)) o.statusPlane?.changed(i); });
  }

  const verdictOf = (v: TopicValidatorResult): Verdict => (v === TopicValidatorResult.Accept ? 'accept' : v === TopicValidatorResult.Reject ? 'reject' : 'ignore');

  async function publishPolicy(i: number): Promise<void> {
    const n = nodes[i]!;
    const bytes = n.current.bytes;
    if (o.announceAbove === null || bytes.length <= o.announceAbove) {
      gossip.publish(i, bytes, policyMeter, async (to, from) => verdictOf((await policyIntake({
        offer: async (d, source) => offer(to, d, source),
        isBanned: (p) => nodes[to]!.admission.isBanned(p),
        syncWith: (p) => syncWith(to, index.get(p)!),
        penalise: penalise(to),
      }, ids[from]!, bytes)).verdict));
      return;
    }
    const ann = await signAnnouncement({ meshId: MESH, peerId: n.id, policyVersion: n.current.version, policyDigest: n.current.digest, size: bytes.length, rootVersion: 1, time: clock.now() }, await keyOf(i));
    publishAnnouncement(i, ann);
  }

  function publishAnnouncement(i: number, ann: Uint8Array): void {
    gossip.publish(i, ann, policyMeter, async (to, from) => verdictOf((await nodes[to]!.announcements.judge(ids[from]!, ann)).verdict));
  }

  /** AntiEntropy.syncWith: one exchange per peer at a time; a dial if not connected. */
  function syncWith(i: number, j: number): Promise<{ peer: Holdings } | undefined> {
    const n = nodes[i]!;
    const running = n.syncing.get(j);
    if (running) return running;
    if (!n.admission.isAllowed(ids[j]!) || !nodes[j]!.admission.isAllowed(ids[i]!)) return Promise.resolve(undefined);
    // Bookkeeping is undone synchronously when the exchange ends (before its promise settles).
    const run: Promise<{ peer: Holdings } | undefined> = exchange(i, j, () => { n.syncing.delete(j); n.exchanges.delete(run); nodes[j]!.exchanges.delete(run); });
    n.syncing.set(j, run);
    n.exchanges.add(run); nodes[j]!.exchanges.add(run);
    return run;
  }

  /**
   * One sync exchange, initiator a and responder b, in runSync's order: Hello →, ← Hello,
   * Push →, ← Push. Every decision is the product's; a lost message (or a cut link) fails
   * the exchange when the waiting side times out.
   */
  function exchange(a: number, b: number, ended: () => void): Promise<{ peer: Holdings } | undefined> {
    exchangesRun++;
    const A = nodes[a]!, B = nodes[b]!;
    return new Promise((settle) => {
      const resolve = (r: { peer: Holdings } | undefined) => { ended(); settle(r); };
      const claims: { release(): void }[] = [];
      const fail = () => net.at(net.t + SYNC_TIMEOUT, () => { for (const c of claims) c.release(); resolve(undefined); });
      // A stream fails as a whole (reset, timeout) with the link's loss probability; its
      // messages are otherwise delivered in order. A cut link fails it too.
      const broken = rnd.next() < o.loss ? 1 + rnd.int(4) : 0;
      let hops = 0;
      const hop = (from: number, to: number, size: number, next: () => void) => {
        if (++hops === broken || !net.send(syncMeter, from, to, size, next, true)) fail();
      };
      const nothing = { fetchingVersion: 0, fetchingDigest: '' };
      const helloSize = (h: Holdings, f: typeof nothing) => pb.sync.v1.Hello.encode({ meshId: h.meshId, rootVersion: h.rootVersion, policyVersion: h.policyVersion, policyDigest: h.policyDigest, ...f }).finish().length;
      const pushOf = (local: number, said: Holdings, theirs: Holdings, fetching: typeof nothing): Pushed => {
        const plan = planPush(said, theirs);
        const policy = plan.policy && holdings(local).policyDigest === said.policyDigest ? nodes[local]!.current.bytes : undefined;
        return { roots: [], ...(policy ? { policy } : {}), peers: [], ...fetching };
      };
      // Peer exchange entries (up to MAX_SYNC_PEERS connected peers with one address each) are counted, not acted on.
      const pushSize = (p: Pushed, local: number) => (p.policy?.length ?? 0) + 16 + Math.min(32, conns[local]!.size) * 100;
      const receive = (local: number, peer: number, push: Pushed) => {
        if (!push.policy) return {};
        bodiesBySync++;
        const r = offer(local, push.policy, { kind: 'sync', peer: ids[peer]! });
        if (r.outcome === 'bad-signature' || r.outcome === 'below-threshold' || r.outcome === 'malformed') penalise(local)(ids[peer]!, 'sync-violation', `sync ${r.outcome}`);
        return { policy: { outcome: r.outcome, ...(r.version !== undefined ? { version: r.version } : {}) } };
      };
      const A0 = holdings(a);
      hop(a, b, helloSize(A0, nothing), () => {
        const B0 = holdings(b);
        const cB = B.inflight.claim(ids[a]!, B0, A0);
        claims.push(cB);
        const B0said: Holdings = { ...B0, fetchingVersion: cB.fetchingVersion, fetchingDigest: cB.fetchingDigest };
        hop(b, a, helloSize(B0, cB), () => {
          const cA = A.inflight.claim(ids[b]!, A0, B0said);
          claims.push(cA);
          const pushA = pushOf(a, A0, B0said, cA);
          const sizeA = pushSize(pushA, a);
          hop(a, b, sizeA, () => {
            if (sizeA > pushLimit(B0, A0, cB.bodyWanted)) { penalise(b)(ids[a]!, 'sync-violation', 'oversize push'); fail(); return; }
            const told = pushA.fetchingDigest ? { fetchingVersion: pushA.fetchingVersion ?? 0, fetchingDigest: pushA.fetchingDigest } : nothing;
            const pushB = pushOf(b, B0, { ...A0, ...told }, nothing);
            const rB = receive(b, a, pushA);
            const lieA = judgeDelivery(A0, B0, pushA, rB, cB.bodyWanted);
            if (lieA) penalise(b)(ids[a]!, 'sync-violation', lieA);
            cB.release();
            hop(b, a, pushSize(pushB, b), () => {
              const rA = receive(a, b, pushB);
              const lieB = judgeDelivery(B0said, A0, pushB, rA, cA.bodyWanted);
              if (lieB) penalise(a)(ids[b]!, 'sync-violation', lieB);
              cA.release();
              resolve({ peer: B0said });
            });
          });
        });
      });
    });
  }

  for (let i = 0; i < N; i++) {
    const admission = new Admission(clock, ids[i]!);
    admission.setAllowed(members);
    const n: SimNode = {
      i, id: ids[i]!,
      accept: { root: trusted, superseded: [], floor: { version: 1, digest: v1.digest }, heldDigest: v1.digest },
      current: { version: 1, digest: v1.digest, bytes: v1.bytes },
      admission,
      budgets: new Budgets(clock, (p) => admission.isListed(p)),
      inflight: new InFlight(clock, (peer, version) => { if (holdings(i).policyVersion < version) void syncWith(i, index.get(peer)!); }),
      pullBudget: new PullBudget(clock),
      announcements: undefined as unknown as AnnouncementIntake,
      syncing: new Map(), exchanges: new Set(), appliedAt: -1,
    };
    n.announcements = new AnnouncementIntake({
      meshId: MESH,
      announcement: (from) => n.budgets.announcement(from),
      overrun: (peer, charge) => { if (charge.strike) penalise(i)(peer, 'over-budget', `over the ${charge.kind} budget`); },
      penalise: (peer, reason, detail) => penalise(i)(peer, reason, detail),
      isMember: (p) => index.has(p),
      holdings: () => holdings(i),
      pull: (from, key, a: Announcement) => {
        const pull = pullAnnounced({
          inflight: n.inflight, budget: n.pullBudget, clock, holdings: () => holdings(i), exchanges: () => n.exchanges,
          syncWith: (peer) => syncWith(i, index.get(peer)!), penalise: penalise(i), started: () => { pulls++; },
        }, from, key, a);
        return net.track(pull);
      },
    });
    nodes.push(n);
  }

  // Anti-entropy rounds: the agent's schedule (roundDelay), one exchange with a random connection.
  const END = o.endMs ?? 60_000 + o.partitionMs;
  for (let i = 0; i < N; i++) {
    const delay = () => roundDelay(o.syncIntervalMs, nodes[i]!.current.version > 0, rnd.next());
    const round = () => {
      const c = [...conns[i]!];
      if (c.length) void syncWith(i, c[rnd.int(c.length)]!);
      const next = net.t + delay();
      if (next <= END) net.at(next, round);
    };
    net.at(delay(), round);
  }
  gossip.startHeartbeats(END);

  // The status plane.
  const plane = o.statusPlane;
  const sample = Math.min(N, o.statusSample);
  const origins: number[] = [];
  if (plane) {
    const fleet: StatusFleet = {
      n: N, meshId: MESH, peerIds: ids, clock, random: rnd, meter: statusMeter,
      key: keyOf,
      state: (i): NodeState => ({ policyVersion: nodes[i]!.current.version, digest: nodes[i]!.current.digest, enforcement: 'ok', rulesetHash: nodes[i]!.current.digest, lastApplyAt: nodes[i]!.appliedAt >= 0 ? EPOCH + nodes[i]!.appliedAt : 0 }),
      budgets: (i) => nodes[i]!.budgets,
      penalise,
      publish: (origin, data, validate) => { gossip.publish(origin, data, statusMeter, validate); },
      send: (from, to, data, deliver) => { net.send(statusMeter, from, to, data.length, deliver); },
      connections: (i) => conns[i]!,
    };
    await plane.start(fleet);
    if (plane.perOrigin && sample < N) {
      // A seeded sample of origins; only their changes are simulated.
      const pick = new Set<number>();
      while (pick.size < sample) pick.add(rnd.int(N));
      origins.push(...[...pick].sort((x, y) => x - y));
      const chosen = new Set(origins);
      statusOrigin = (i) => chosen.has(i);
    } else {
      for (let i = 0; i < N; i++) origins.push(i);
    }
  }

  // Forgers: a node forwards an announcement of v3 signed with a key that is not its own.
  for (const f of o.forgers ?? []) {
    net.at(o.latencyMs, async () => {
      const stranger = await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`picket-sim/forger/${o.seed}/${f}`).digest());
      const ann = await signAnnouncement({ meshId: MESH, peerId: ids[f]!, policyVersion: 3, policyDigest: 'ab'.repeat(32), size: 1000, rootVersion: 1, time: clock.now() }, stranger);
      for (let k = 0; k < PENALTY_THRESHOLD; k++) publishAnnouncement(f, ann.slice());
    });
  }

  // The partition heals: every connection that crossed it is re-established (the dialer's
  // redial, within a second) and a new outbound connection starts a sync (anti-entropy).
  if (o.partitionMs > 0) {
    net.at(o.partitionMs, () => {
      net.partition(null);
      for (let i = 0; i < N; i++) for (const j of conns[i]!) if (i < j && half(i) !== half(j)) net.at(net.t + rnd.next() * 1000, () => { void syncWith(i, j); });
    });
  }

  // The publish: node 0 accepts v2 from its control socket.
  net.at(0, () => {
    const r = offer(0, v2.bytes, { kind: 'control' });
    if (r.outcome !== 'accepted') throw new Error(`the publishing node refused v2: ${r.outcome} (${'reason' in r ? r.reason : ''})`);
  });
  let viewCount = 0, view999: number | null = null, view100: number | null = null;
  const viewDone = new Uint8Array(N);
  let nextSample = 0;
  const statusComplete = () => {
    if (!plane) return true;
    // Checked every 50 ms of simulated time (a full scan per event would be O(N) each).
    for (let i = 0; i < N; i++) {
      if (viewDone[i]) continue;
      if (plane.seenAt(i, 2, origins) === origins.length) { viewDone[i] = 1; viewCount++; }
    }
    if (view999 === null && viewCount >= 0.999 * N) view999 = net.t;
    if (view100 === null && viewCount === N) view100 = net.t;
    return viewCount === N;
  };
  let done = false;
  await net.run(END, () => {
    while (net.t >= nextSample) {
      curve.push([nextSample, round(accepted / N, 4)]);
      if (accepted === N && !done) done = statusComplete();
      nextSample += 50;
    }
    return done && (o.partitionMs === 0 || net.t > o.partitionMs);
  });
  if (!done && accepted === N) statusComplete();
  curve.push([nextSample, round(accepted / N, 4)]);
  // The change's own cost, before any read.
  const changeBytes = Float64Array.from(statusMeter.received), changeMsgs = Float64Array.from(statusMeter.messages);
  const ver = new Float64Array(N);
  if (plane) for (let i = 0; i < N; i++) ver[i] = plane.verifications(i);

  // The operator's read (planes whose views are hearsay until read): the last node's verified view.
  let read: { ms: number | null; bytes: number } | undefined;
  if (plane?.read && plane.readDone && done && o.statusRead !== false) {
    const t0 = net.t, reader = N - 1;
    plane.read(reader, origins);
    const readDone = () => plane.readDone!(reader, 2, origins);
    // The read is retried as `status --mesh --watch` would (every 2 s): a want lost to a budget or a race is asked again after wantEvery.
    const again = () => { if (!readDone()) { plane.read!(reader, origins); net.at(net.t + 2000, again); } };
    net.at(t0 + 2000, again);
    await net.run(t0 + 120_000, readDone);
    let sum = 0;
    for (let i = 0; i < N; i++) sum += statusMeter.received[i]! - changeBytes[i]!;
    read = { ms: readDone() ? Math.round(net.t - t0) : null, bytes: Math.round(sum / N) };
  }

  const combined = new Float64Array(N);
  for (let i = 0; i < N; i++) combined[i] = policyMeter.received[i]! + syncMeter.received[i]!;
  const msgs = new Float64Array(N);
  for (let i = 0; i < N; i++) msgs[i] = policyMeter.messages[i]! + syncMeter.messages[i]!;
  const result: SimResult = {
    nodes: N, degree: o.degree, latencyMs: o.latencyMs, loss: o.loss, seed: o.seed, partitionMs: o.partitionMs,
    envelopeBytes: v2.bytes.length, path: announced ? 'announce-then-pull' : 'push',
    timeTo999Ms: t999 === null ? null : Math.round(t999), timeTo100Ms: t100 === null ? null : Math.round(t100),
    messagesPerNode: round(mean(msgs)), bytesPerNode: Math.round(mean(combined)),
    policyVerifications, syncExchanges: exchangesRun, bodiesBySync, pulls, strikes, bans, healedBySync, curve,
  };
  if (plane) {
    const scale = origins.length ? N / origins.length : 1;
    result.status = {
      plane: plane.name, sampledOrigins: origins.length, scale: round(scale, 3),
      bytesPerNodePerChange: Math.round(mean(changeBytes) * scale),
      messagesPerNodePerChange: round(mean(changeMsgs) * scale),
      verificationsPerNodePerChange: round(mean(ver) * scale),
      viewTo999Ms: view999 === null ? null : Math.round(view999), viewTo100Ms: view100 === null ? null : Math.round(view100),
      ...(read ? { readMs: read.ms, readBytesPerNode: read.bytes } : {}),
      observer: plane.observe(N - 1, origins),
    };
  }
  return result;
}
