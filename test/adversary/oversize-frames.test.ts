/**
 * Memory: limits before buffering. A sync frame's length prefix is checked against the limit
 * of the message expected next (a Hello: 1 KiB) before anything is buffered for it, and
 * what one stream may hold is bounded by that limit, not by the largest Push.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { streamPair } from '@libp2p/utils';
import { runSync, SyncError, type SyncLocal } from '../../src/mesh/sync.js';
import { Cluster, until } from '../helpers/cluster.js';
import { EvilPeer, EvilStream, varintOf } from './evil-peer.js';

const MiB = 1024 * 1024;
let cluster: Cluster | undefined;
let evil: EvilPeer | undefined;
afterEach(async () => {
  await evil?.stop();
  evil = undefined;
  await cluster?.destroy();
  cluster = undefined;
});

const victimSide = (): SyncLocal => ({
  holdings: () => ({ meshId: 'm', rootVersion: 1, policyVersion: 1, policyDigest: 'a'.repeat(64) }),
  rootsAfter: () => [], policyEnvelope: () => undefined, peers: () => [], receive: async () => ({}),
});

describe('oversize sync frames', () => {
  for (const role of ['responder', 'initiator'] as const) {
    it(`a 4 MiB length prefix where a Hello is expected is refused at once, before its body arrives (victim is the ${role})`, async () => {
      const [victim, attacker] = await streamPair();
      const evilSide = new EvilStream(attacker);
      // Only the prefix: a victim that waits for the body (instead of checking the prefix) times out.
      const run = runSync(victim, role, victimSide(), 20_000);
      await evilSide.raw(varintOf(4 * MiB));
      const t0 = performance.now();
      const err = await run.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SyncError);
      expect((err as SyncError).strike).toBe('oversize');
      // Refused on the prefix, not after a timeout.
      expect(performance.now() - t0).toBeLessThan(10_000);
    });
  }

  it('a listed peer sending a 4 MiB frame instead of a Hello is cut after at most a Hello\'s worth is buffered, and struck', async () => {
    cluster = await Cluster.create(1);
    const evilSpec = await cluster.addNode();
    const victim = await cluster.start(cluster.nodes[0]!, []);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    evil = await EvilPeer.start(evilSpec.key, evilSpec.listen, 'test');
    await evil.dial(victim.mesh.listenAddrs()[0]!);
    const s = await evil.openSync(victim.mesh.peerId);
    const sent = await s.hugeFrame(4 * MiB, 4 * MiB);
    await until(() => victim.mesh.admission.strikes(evilSpec.peerId) >= 1, 10_000);
    // The stream was cut long before the body was through (yamux lets a window's worth in flight).
    expect(sent).toBeLessThan(MiB);
    expect(s.closed()).toBe(true);
  });

  it('one listed peer holding many sync streams with huge stalled frames grows the victim by less than 100 MiB', async () => {
    cluster = await Cluster.create(1, { transport: 'tcp', overrides: { mesh: { minPeers: 4, redialMin: '100ms', redialMax: '1s', penaltyThreshold: 1000, banFor: '1m' } } });
    const evilSpec = await cluster.addNode();
    // Stalls are held for as long as the attack runs.
    cluster.deps = () => ({ syncTimeout: 30_000 });
    const victim = await cluster.start(cluster.nodes[0]!, []);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    evil = await EvilPeer.start(evilSpec.key, evilSpec.listen, 'test');
    const base = process.memoryUsage().rss;
    let peak = base;
    const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
    try {
      // 16 connections × 4 streams, each announcing a 4 MiB frame and sending 4 MiB - 1 bytes of it.
      // libp2p admits 5 inbound connections per host and second: dial in batches.
      const conns = [];
      for (let i = 0; i < 16; i++) {
        if (i && i % 4 === 0) await new Promise((r) => setTimeout(r, 1100));
        // Connections beyond the per-peer budget are refused: the attacker uses what it gets.
        const c = await evil.dial(victim.mesh.listenAddrs()[0]!, i > 0).catch(() => undefined);
        if (c) conns.push(c);
      }
      const sends = conns.flatMap((c) => Array.from({ length: 4 }, async () => {
        const s = await evil!.openSync(victim.mesh.peerId, c).catch(() => undefined);
        return s ? s.hugeFrame(4 * MiB, 4 * MiB - 1) : 0;
      }));
      const sent = await Promise.all(sends);
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      clearInterval(sample);
    }
    expect((peak - base) / MiB).toBeLessThan(100);
  });
});
