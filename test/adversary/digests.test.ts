/**
 * The status plane's digests under attack by a listed peer (a compromised host holding its
 * own key): floods, hostile strings, forged claims about other nodes that would mark them
 * healthy or hide their real state. Digests are built here from the .proto and the signing
 * domain, never from the agent's classes: what is sent is what any attacker could send.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { peerIdFromString } from '@libp2p/peer-id';
import protobuf from 'protobufjs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { DEFAULT_BUDGETS } from '../../src/mesh/budgets.js';
import { HostileNode } from './hostile-node.js';

const root = await protobuf.load(join(import.meta.dirname, '..', '..', 'proto', 'picket', 'status', 'v1', 'status.proto'));
const ClaimPb = root.lookupType('picket.status.v1.Claim');
const DigestPb = root.lookupType('picket.status.v1.Digest');
const CLAIM_DOMAIN = new TextEncoder().encode('picket-claim-v1');
const TOPIC = '/picket/test/digest/1';
const ref = (peerId: string) => createHash('sha256').update(peerId).digest().subarray(0, 8);

let cluster: Cluster | undefined;
const hostile: HostileNode[] = [];
afterEach(async () => {
  await Promise.all(hostile.splice(0).map((h) => h.stop().catch(() => undefined)));
  await cluster?.destroy();
  cluster = undefined;
});

interface ClaimFields { peerId: string; policyVersion: number; enforcement: string; alerts?: string[]; seq: number; time?: number }

/** A claim about `c.peerId` signed with the attacker's own key (the only node key it holds). */
async function claimBy(evil: HostileNode, c: ClaimFields) {
  const time = c.time ?? Date.now();
  const body = ClaimPb.encode(ClaimPb.create({ meshId: 'test', peerId: c.peerId, policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts ?? [], seq: c.seq, timeMs: time })).finish();
  const msg = new Uint8Array(CLAIM_DOMAIN.length + body.length);
  msg.set(CLAIM_DOMAIN);
  msg.set(body, CLAIM_DOMAIN.length);
  return { node: ref(c.peerId), policyVersion: c.policyVersion, enforcement: c.enforcement, alerts: c.alerts ?? [], seq: c.seq, timeMs: time, signature: await evil.key.sign(msg) };
}
const digest = (claims: unknown[]) => DigestPb.encode(DigestPb.create({ claims })).finish();

/** Two honest nodes on policy v1 that also lists the attacker, who is connected to the victim and sees its digest subscription. */
async function setup(): Promise<{ victim: NodeSpec; other: NodeSpec; evilSpec: NodeSpec; evil: HostileNode }> {
  cluster = await Cluster.create(2, { overrides: { audit: { probeInterval: 0, interval: '1h', statusInterval: '1h' } } });
  const evilSpec = await cluster.addNode();
  const [victim, other] = cluster.nodes as [NodeSpec, NodeSpec];
  await cluster.start(victim);
  await cluster.start(other);
  await cluster.publish(victim, cluster.policy(1));
  await cluster.converged(1, 10_000, [victim, other]);
  // The verified view: reading it asks for the claim the tally bit stands for (a want).
  await until(() => victim.agent!.auditor.fleet({ verify: true }).nodes.find((n) => n.peerId === other.peerId)?.policyVersion === 1, 10_000);
  const evil = await HostileNode.start(evilSpec.key, evilSpec.listen);
  hostile.push(evil);
  evil.node.services.pubsub.subscribe(TOPIC);
  await evil.connectMany(victim.agent!.mesh.listenAddrs()[0]!, 1);
  await until(() => evil.sees(TOPIC, victim.peerId), 10_000);
  return { victim, other, evilSpec, evil };
}

const rowOf = (n: NodeSpec, peerId: string, verify: boolean) => n.agent!.auditor.fleet({ verify }).nodes.find((r) => r.peerId === peerId)!;
const struck = (victim: NodeSpec, peer: string) => victim.agent!.mesh.admission.isBanned(peer) || victim.agent!.mesh.admission.strikes(peer) > 0;

describe('status digests from a lying listed peer', () => {
  it('a forged claim marking another node healthy on a version nobody runs never reaches the verified view, and is counted against its sender', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 99, enforcement: 'ok', seq: Date.now() + 1000 })]));
    await until(() => rowOf(victim, other.peerId, false).policyVersion === 99, 10_000);
    // The operator's view, publish --wait and the rollout gate read the verified view.
    const row = rowOf(victim, other.peerId, true);
    expect(row).toMatchObject({ policyVersion: 1, verified: true });
    expect(victim.agent!.auditor.digest.forgeriesBy(evilSpec.peerId)).toBe(1);
    // …and the forgery is gone from the unverified view too.
    expect(rowOf(victim, other.peerId, false).policyVersion).toBe(1);
  });

  it('a forged claim stamped minutes ahead cannot hide the real node\'s next claim', async () => {
    const { victim, other, evil } = await setup();
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 1, enforcement: 'ok', seq: Date.now() + 5 * 60_000 })]));
    await until(() => (victim.agent!.auditor.digest.newest(other.peerId)?.claim.seq ?? 0) > Date.now() + 60_000, 10_000);
    // The real node's state changes (an alert opens) and its next claim is lower than the forgery's seq.
    await other.agent!.alerts.raise('drift-repaired', 'drift-repaired', 'warning', 'test drift', {});
    await other.agent!.auditor.publishDigest();
    await until(() => rowOf(victim, other.peerId, true).alerts.includes('drift-repaired'), 10_000, () => JSON.stringify(rowOf(victim, other.peerId, true)));
  });

  it('a claim with terminal escapes or an unknown state name is rejected, struck and never shown', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    for (const enforcement of ['ok\u001b[2J\u001b[31m', 'OK; rm -rf /', '']) {
      await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 1, enforcement, seq: Date.now() })]));
    }
    await evil.publish(TOPIC, digest([await claimBy(evil, { peerId: other.peerId, policyVersion: 1, enforcement: 'ok', alerts: ['\u001b]0;owned\u0007'], seq: Date.now() })]));
    await until(() => struck(victim, evilSpec.peerId), 10_000);
    const shown = JSON.stringify(victim.agent!.auditor.fleet({ verify: false }));
    expect(shown).not.toMatch(/\u001b|rm -rf|owned/);
  });

  it('3000 digests from one listed peer: cut at the budget, the peer struck and banned, honest digests still merged', async () => {
    const { victim, other, evilSpec, evil } = await setup();
    const claim = await claimBy(evil, { peerId: evilSpec.peerId, policyVersion: 1, enforcement: 'ok', seq: Date.now() });
    for (let i = 0; i < 3000; i++) await evil.publish(TOPIC, digest([{ ...claim, seq: claim.seq + i + 1 }]));
    await until(() => victim.agent!.mesh.admission.isBanned(evilSpec.peerId), 20_000, () => `strikes ${victim.agent!.mesh.admission.strikes(evilSpec.peerId)}`);
    const c = await Cluster.counters(victim);
    expect(c.budgetExceeded.digests).toBeGreaterThanOrEqual(1);
    expect(victim.agent!.mesh.libp2p.getConnections(peerIdFromString(evilSpec.peerId))).toHaveLength(0);
    expect(DEFAULT_BUDGETS.digestBurst).toBeLessThan(3000);
    // The honest neighbour's news still arrives.
    await other.agent!.alerts.raise('drift-repaired', 'drift-repaired', 'warning', 'test drift', {});
    await other.agent!.auditor.publishDigest();
    await until(() => rowOf(victim, other.peerId, true).alerts.includes('drift-repaired'), 10_000);
  });
});
