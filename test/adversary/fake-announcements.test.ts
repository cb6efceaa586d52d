/**
 * Fake announcements: a listed peer announces policy versions it does not hold, and when
 * pulled, claims them in its sync Hello but sends nothing. Each pull costs the victim an
 * exchange; the pulls one peer can cause must be bounded and its lies struck.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { pb } from '../../src/wire/proto.js';
import { Cluster, until } from '../helpers/cluster.js';
import { announceTopicOf, encodeHello, encodePush, EvilPeer } from './evil-peer.js';

let cluster: Cluster | undefined;
let evil: EvilPeer | undefined;
afterEach(async () => {
  await evil?.stop();
  evil = undefined;
  await cluster?.destroy();
  cluster = undefined;
});

describe('fake announcements', () => {
  it('100 announcements of versions the peer does not hold cause a bounded number of pulls, and the peer is struck', async () => {
    cluster = await Cluster.create(1, { syncInterval: '1h' });
    const evilSpec = await cluster.addNode();
    const victim = await cluster.start(cluster.nodes[0]!, []);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));

    evil = await EvilPeer.start(evilSpec.key, evilSpec.listen, 'test');
    evil.node.services.pubsub.subscribe(announceTopicOf('test'));
    let served = 0;
    // Pulled, it says it holds v10^6 (more than anything it announced) and sends nothing.
    await evil.serveSync(async (s) => {
      served++;
      const theirs = pb.sync.v1.Hello.decode(await s.read());
      await s.frame(encodeHello({ meshId: 'test', rootVersion: Number(theirs.rootVersion), policyVersion: 1e6, policyDigest: 'ee'.repeat(32) }));
      await s.read();
      await s.frame(encodePush({}));
    });
    await evil.dial(victim.mesh.listenAddrs()[0]!);
    await until(() => evil!.node.services.pubsub.getSubscribers(announceTopicOf('test')).length > 0, 10_000);

    for (let i = 0; i < 100; i++) {
      const a = await evil.announcement(evilSpec.key, { policyVersion: 100 + i, policyDigest: randomBytes(32).toString('hex'), size: 100_000, time: Date.now() + i });
      await evil.publish(announceTopicOf('test'), a);
    }
    const victimSpec = cluster.nodes[0]!;
    const seen = async () => Object.values((await Cluster.counters(victimSpec)).announcementsIn).reduce((s, n) => s + n, 0);
    await until(async () => (await seen()) >= 100 || victim.mesh.admission.isBanned(evilSpec.peerId), 20_000, async () => `seen ${await seen()}`);
    // Its claim did not materialise when pulled: struck.
    await until(() => victim.mesh.admission.strikes(evilSpec.peerId) >= 1 || victim.mesh.admission.isBanned(evilSpec.peerId), 10_000);
    expect((await Cluster.counters(victimSpec)).pulls).toBeLessThanOrEqual(5);
    expect(served).toBeLessThanOrEqual(5);
    expect(victim.engine.current!.policy.version).toBe(1);
  });
});
