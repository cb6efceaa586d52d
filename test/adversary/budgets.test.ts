/**
 * Per-peer budgets under attack: a listed peer (a compromised host) or strangers before the
 * first policy try to take connection slots, sync streams, the status topic and the alert
 * channel. Each test asserts the honest outcome and that the attacker pays for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Stream } from '@libp2p/interface';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { EventsReceiver } from '../helpers/receiver.js';
import { DEFAULT_BUDGETS } from '../../src/mesh/budgets.js';
import { HostileNode, statusOrigin, SYNC, topics } from './hostile-node.js';

let cluster: Cluster | undefined;
let rx: EventsReceiver | undefined;
const hostile: HostileNode[] = [];
afterEach(async () => {
  await Promise.all(hostile.splice(0).map((h) => h.stop().catch(() => undefined)));
  await cluster?.destroy();
  await rx?.stop();
  cluster = undefined;
  rx = undefined;
});

const T = topics('test');
const struck = (victim: NodeSpec, peer: string) => victim.agent!.mesh.admission.isBanned(peer) || victim.agent!.mesh.admission.strikes(peer) > 0;
const addrOf = (n: NodeSpec) => n.agent!.mesh.listenAddrs()[0]!;

async function hostileFor(spec: NodeSpec): Promise<HostileNode> {
  const h = await HostileNode.start(spec.key, spec.listen);
  hostile.push(h);
  return h;
}

/** Two honest nodes on policy v1 that also lists the extra nodes asked for (not started). */
async function fleet(extra: number): Promise<{ victim: NodeSpec; other: NodeSpec; extras: NodeSpec[] }> {
  cluster = await Cluster.create(2);
  const extras: NodeSpec[] = [];
  for (let i = 0; i < extra; i++) extras.push(await cluster.addNode());
  const [victim, other] = cluster.nodes as [NodeSpec, NodeSpec];
  await cluster.start(victim);
  await cluster.start(other);
  await cluster.publish(victim, cluster.policy(1));
  await cluster.converged(1, 10_000, [victim, other]);
  return { victim, other, extras };
}

describe('per-peer budgets', () => {
  it('a listed PeerId holding 63 of 64 connection slots cannot stop a new honest node from joining', async () => {
    const { victim, extras: [evilSpec, newcomer] } = await fleet(2);
    const evil = await hostileFor(evilSpec!);
    await evil.connectMany(addrOf(victim), 63);
    const held = () => victim.agent!.mesh.libp2p.getConnections(peerIdFromString(evilSpec!.peerId)).length;
    await until(() => held() <= DEFAULT_BUDGETS.connectionsPerPeer, 10_000, () => `attacker holds ${held()} connections`);
    await cluster!.start(newcomer!, [addrOf(victim)]);
    await cluster!.converged(1, 15_000, [newcomer!]);
    expect(victim.agent!.mesh.connectedPeers()).toContain(newcomer!.peerId);
    expect(struck(victim, evilSpec!.peerId)).toBe(true);
  });

  it('a listed peer opening sync streams on every connection at once is served a bounded number and struck', async () => {
    const { victim, extras: [evilSpec] } = await fleet(1);
    // Long exchanges: nothing the victim serves ends by itself while the test looks.
    await cluster!.stop(victim);
    cluster!.deps = () => ({ syncTimeout: 60_000 });
    await cluster!.start(victim);
    const evil = await hostileFor(evilSpec!);
    const conns = await evil.connectMany(addrOf(victim), 2);
    const streams: Stream[] = [];
    for (const c of conns) for (let i = 0; i < 4; i++) { const s = await c.newStream(SYNC).catch(() => undefined); if (s) streams.push(s); }
    const serving = () => victim.agent!.mesh.libp2p.getConnections(peerIdFromString(evilSpec!.peerId))
      .flatMap((c) => c.streams).filter((s) => s.protocol === SYNC && s.status === 'open').length;
    await until(() => serving() <= DEFAULT_BUDGETS.inboundStreamsPerProtocol && struck(victim, evilSpec!.peerId), 10_000, () => `serving ${serving()} streams, struck: ${struck(victim, evilSpec!.peerId)}`);
  });

  it('3000 validly signed statuses from one listed peer: a bounded number accepted and relayed, the peer rate-limited and struck', async () => {
    const { victim, other, extras: [evilSpec] } = await fleet(1);
    const count = (n: NodeSpec) => {
      const box = { n: 0 };
      n.agent!.mesh.libp2p.services.pubsub.addEventListener('message', (e) => {
        if (e.detail.topic === T.status && statusOrigin(e.detail.data) === evilSpec!.peerId) box.n++;
      });
      return box;
    };
    const accepted = count(victim), relayed = count(other);
    const evil = await hostileFor(evilSpec!);
    await evil.node.dial(peerIdFromString(victim.peerId), { signal: AbortSignal.timeout(5000) }).catch(() => evil.connectMany(addrOf(victim), 1));
    await until(() => evil.sees(T.status, victim.peerId), 10_000);
    const t0 = Date.now();
    for (let seq = 1; seq <= 3000; seq++) await evil.publish(T.status, await evil.signedStatus(seq));
    await until(() => victim.agent!.mesh.admission.isBanned(evilSpec!.peerId), 15_000, () => `accepted ${accepted.n}, strikes ${victim.agent!.mesh.admission.strikes(evilSpec!.peerId)}`);
    const minutes = (Date.now() - t0) / 60_000;
    const bound = DEFAULT_BUDGETS.statusBurst + DEFAULT_BUDGETS.statusesPerMinute * minutes + 1;
    expect(accepted.n).toBeLessThanOrEqual(bound);
    expect(relayed.n).toBeLessThanOrEqual(accepted.n);
    // Honest statuses still flow: the other node keeps hearing the victim's.
    const before = victim.agent!.auditor.fleet().nodes.find((n) => n.peerId === other.peerId)?.lastSeen;
    await other.agent!.auditor.publishStatus(true);
    await until(() => victim.agent!.auditor.fleet().nodes.find((n) => n.peerId === other.peerId)?.lastSeen !== before, 10_000);
  });

  it('200 validly signed announcements from one listed peer: a bounded number looked at, the peer rate-limited and struck', async () => {
    const { victim, extras: [evilSpec] } = await fleet(1);
    await cluster!.publish(victim, cluster!.policy(2));
    await cluster!.converged(2, 10_000, [victim]);
    const evil = await hostileFor(evilSpec!);
    await evil.connectMany(addrOf(victim), 1);
    await until(() => evil.sees(T.announce, victim.peerId), 10_000);
    // Announcements of an old version: nothing to pull, so only the budget can stop the flood.
    for (let i = 0; i < 200; i++) await evil.publish(T.announce, await evil.signedAnnouncement(1, Date.now() + i));
    await until(() => victim.agent!.mesh.admission.isBanned(evilSpec!.peerId), 15_000, () => `strikes ${victim.agent!.mesh.admission.strikes(evilSpec!.peerId)}`);
    const c = await Cluster.counters(victim);
    const lookedAt = Object.entries(c.announcementsIn).filter(([k]) => k !== 'over-budget').reduce((a, [, n]) => a + n, 0);
    expect(lookedAt).toBeLessThanOrEqual(DEFAULT_BUDGETS.announcementBurst + 1);
    expect(c.budgetExceeded.announcements).toBeGreaterThanOrEqual(1);
  });
});

describe('strangers before the first policy', () => {
  it('25 fresh identities sending forgeries raise one aggregated alert, not one each', async () => {
    rx = await new EventsReceiver().start();
    // minPeers high enough that trimming (above 4 × minPeers) leaves every stranger connected.
    cluster = await Cluster.create(1, { minPeers: 10, overrides: { alerts: [{ type: 'webhook', url: rx.url }] } });
    const victim = cluster.nodes[0]!;
    await cluster.start(victim);
    let rejected = 0;
    victim.agent!.engine.on('rejected', () => rejected++);
    for (let i = 0; i < 25; i++) {
      const h = await HostileNode.start(await generateKeyPair('Ed25519'), `/memory/sybil-${process.pid}-${i}`);
      hostile.push(h);
      await h.connectMany(addrOf(victim), 1);
      await until(() => h.sees(T.policy, victim.peerId), 10_000, () => `stranger ${i} does not see the victim's subscription`);
      await h.publish(T.policy, HostileNode.forgedPolicy());
    }
    await until(() => rejected >= 25, 20_000, () => `rejected ${rejected}`);
    await until(() => rx!.events.length >= 1, 10_000, () => `no webhook; open: ${victim.agent!.alerts.openAlerts().map((a) => a.class).join(',')}`);
    const open = victim.agent!.alerts.openAlerts();
    expect(open.map((a) => a.class)).toEqual(['unadmitted-peers']);
    expect(rx.events.filter((e) => e.event_action === 'trigger' || e.action === 'trigger').length).toBeLessThanOrEqual(1);
  });

  it('fresh identities cannot take more than the unadmitted budget of connections; a bootstrap peer still connects', async () => {
    // minPeers high enough that trimming (above 4 × minPeers) never hides what admission lets in.
    cluster = await Cluster.create(2, { minPeers: 20 });
    const [victim, seed] = cluster.nodes as [NodeSpec, NodeSpec];
    // The seed is down while the crowd arrives; the victim keeps redialling it.
    await cluster.start(victim, [`${seed.listen}/p2p/${seed.peerId}`]);
    const n = DEFAULT_BUDGETS.unadmittedConnections + 8;
    for (let i = 0; i < n; i++) {
      const h = await HostileNode.start(await generateKeyPair('Ed25519'), `/memory/crowd-${process.pid}-${i}`);
      hostile.push(h);
      await h.connectMany(addrOf(victim), 1);
    }
    const strangers = () => victim.agent!.mesh.connectedPeers().filter((p) => p !== seed.peerId).length;
    await until(() => strangers() <= DEFAULT_BUDGETS.unadmittedConnections, 10_000, () => `${strangers()} strangers connected`);
    await cluster.start(seed, []);
    // Strangers filling minPeers must not stop the victim from dialling its bootstrap peer.
    await until(() => victim.agent!.mesh.connectedPeers().includes(seed.peerId), 10_000, () => `${strangers()} strangers connected, seed not`);
    await cluster.publish(seed, cluster.policy(1));
    await cluster.converged(1, 10_000, [victim, seed]);
  });
});
