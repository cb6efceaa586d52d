/**
 * Sync block: a listed peer claims (in sync Hellos) a policy version it does not hold and
 * stalls. Its claim must not stop an honest peer's newer policy from reaching the victim,
 * and the stalls must cost it strikes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until } from '../helpers/cluster.js';
import { EvilPeer } from './evil-peer.js';

let cluster: Cluster | undefined;
let evil: EvilPeer | undefined;
afterEach(async () => {
  await evil?.stop();
  evil = undefined;
  await cluster?.destroy();
  cluster = undefined;
});

describe('sync block', () => {
  it('a peer claiming policy v10^15 in stalled sync Hellos does not keep an honest peer\'s v2 from the victim, and is struck', async () => {
    cluster = await Cluster.create(1, { syncInterval: '200ms' });
    const honestSpec = await cluster.addNode();
    const evilSpec = await cluster.addNode();
    const [victimSpec] = cluster.nodes;
    const victim = await cluster.start(victimSpec!, []);
    await cluster.publish(victimSpec!, cluster.policy(1));

    // The honest peer holds v2, alone (its gossip reached no one).
    const honest = await cluster.start(honestSpec, []);
    await cluster.publish(honestSpec, cluster.policy(1));
    await cluster.publish(honestSpec, cluster.policy(2));

    evil = await EvilPeer.start(evilSpec.key, evilSpec.listen, 'test');
    await evil.dial(victim.mesh.listenAddrs()[0]!);
    const stall = evil.stallSyncs(victim.mesh.peerId, 4, { meshId: 'test', rootVersion: 1, policyVersion: 1e15, policyDigest: 'ee'.repeat(32) });
    await until(() => stall.opened() >= 4, 10_000);

    const runs = async () => (await Cluster.counters(victimSpec!)).syncRuns;
    const runsBefore = await runs();
    await honest.mesh.libp2p.dial(victim.mesh.libp2p.getMultiaddrs()[0]!);
    // Within a few exchanges with the honest peer, while the liar still holds its stalled streams.
    await until(() => cluster!.versionOf(victimSpec!) === 2, 15_000, async () => `victim on v${cluster!.versionOf(victimSpec!)}, ${(await runs()) - runsBefore} exchanges`);
    expect((await runs()) - runsBefore).toBeLessThanOrEqual(3);

    // A stalled claim that never materialised is a strike (when the stall times out).
    await until(() => victim.mesh.admission.strikes(evilSpec.peerId) >= 1 || victim.mesh.admission.isBanned(evilSpec.peerId), 20_000);
    stall.stop();
  });

  it('a peer claiming exactly the honest v2 (version and digest) and stalling delays it by the claim grace only', async () => {
    cluster = await Cluster.create(1, { syncInterval: '200ms' });
    const honestSpec = await cluster.addNode();
    const evilSpec = await cluster.addNode();
    const [victimSpec] = cluster.nodes;
    // The liar's stalls outlive the test: only the claim grace can let v2 through.
    cluster.deps = () => ({ syncTimeout: 60_000 });
    const victim = await cluster.start(victimSpec!, []);
    await cluster.publish(victimSpec!, cluster.policy(1));
    const honest = await cluster.start(honestSpec, []);
    await cluster.publish(honestSpec, cluster.policy(1));
    await cluster.publish(honestSpec, cluster.policy(2));
    const digest = honest.engine.current!.digest;

    evil = await EvilPeer.start(evilSpec.key, evilSpec.listen, 'test');
    await evil.dial(victim.mesh.listenAddrs()[0]!);
    // Two streams: what the per-peer stream budget lets one peer hold open.
    const stall = evil.stallSyncs(victim.mesh.peerId, 2, { meshId: 'test', rootVersion: 1, policyVersion: 2, policyDigest: digest });
    await until(() => stall.opened() >= 2, 10_000);
    await honest.mesh.libp2p.dial(victim.mesh.libp2p.getMultiaddrs()[0]!);
    await until(() => cluster!.versionOf(victimSpec!) === 2, 20_000, () => `victim on v${cluster!.versionOf(victimSpec!)}`);
    // None of the liar's stalled streams had ended: v2 came while its claim was still open.
    expect(stall.opened()).toBe(2);
    stall.stop();
  });
});
