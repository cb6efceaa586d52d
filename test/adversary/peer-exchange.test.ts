/**
 * Eclipse by peer exchange: a listed peer pushes bogus addresses for an honest peer H in
 * sync Pushes. The victim must still redial H, and must never take addresses outside the
 * policy's ranges (or the configured mesh CIDRs), for anyone, from anyone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { EvilPeer, type HelloFields } from './evil-peer.js';
import type { Agent } from '../../src/agent/agent.js';

let cluster: Cluster | undefined;
const peers: EvilPeer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
  await cluster?.destroy();
  cluster = undefined;
});

async function evilPeer(spec: NodeSpec): Promise<EvilPeer> {
  const p = await EvilPeer.start(spec.key, spec.listen, 'test');
  peers.push(p);
  return p;
}

const helloOf = (victim: Agent): HelloFields => ({
  meshId: 'test', rootVersion: victim.engine.root.root.version,
  policyVersion: victim.engine.current!.policy.version, policyDigest: victim.engine.current!.digest,
});

describe('peer exchange', () => {
  it('four sync Pushes carrying 32 bogus public addresses for an honest peer do not stop the victim from redialling it', async () => {
    // Loopback TCP, so libp2p's own dial order applies (public addresses first, 25 at most).
    // The bogus addresses are multicast: "public" to libp2p, refused by the kernel before any
    // packet is sent (connect() to a multicast address fails with ENETUNREACH), so this test
    // sends nothing off the host.
    cluster = await Cluster.create(1, { transport: 'tcp' });
    const hSpec = await cluster.addNode();
    const evilSpec = await cluster.addNode();
    const victim = await cluster.start(cluster.nodes[0]!, []);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));

    // The attacker speaks first: the victim hears of H from it before H ever connects.
    const evil = await evilPeer(evilSpec);
    await evil.dial(victim.mesh.listenAddrs()[0]!);
    for (let i = 0; i < 4; i++) {
      const addrs = Array.from({ length: 8 }, (_x, j) => `/ip4/224.1.${i}.${j + 1}/tcp/7946/p2p/${hSpec.peerId}`);
      await evil.syncOnce(victim.mesh.peerId, helloOf(victim), { peers: [{ peerId: hSpec.peerId, addrs }] });
    }

    // H is honest and passive: it connects once, then its connection is cut; only the victim redials.
    const h = await evilPeer(hSpec);
    await h.dial(victim.mesh.listenAddrs()[0]!);
    await until(() => victim.mesh.connectedPeers().includes(hSpec.peerId), 10_000);
    const real = h.addrs()[0]!.split('/p2p/')[0]!;
    await until(() => victim.mesh.knownAddrs(hSpec.peerId).some((a) => a.startsWith(real)), 10_000);
    // The outcome, not the gap: the victim may redial before a poll ever sees H disconnected
    // (on busy cores that gap can be shorter than a poll), so wait for a new connection the
    // victim itself opened to H.
    const toH = () => victim.mesh.libp2p.getConnections(peerIdFromString(hSpec.peerId));
    const before = new Set(toH().map((c) => c.id));
    await h.node.hangUp(peerIdFromString(victim.mesh.peerId));
    await until(() => toH().some((c) => !before.has(c.id) && c.direction === 'outbound' && c.status === 'open'), 15_000, () => `victim dials ${victim.mesh.knownAddrs(hSpec.peerId).length} addresses for H`);
    // Nothing outside the policy's ranges (and the mesh CIDRs) was kept.
    expect(victim.mesh.knownAddrs(hSpec.peerId).filter((a) => a.includes('/224.1.'))).toEqual([]);
  });

  it('a peer cannot make the victim dial addresses outside the policy\'s ranges, nor learn peers the policy does not list', async () => {
    cluster = await Cluster.create(1);
    const hSpec = await cluster.addNode();
    const evilSpec = await cluster.addNode();
    const victim = await cluster.start(cluster.nodes[0]!, []);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    const hPolicyAddr = cluster.policy(1).nodes.find((n) => n.peerId === hSpec.peerId)!.addresses[0]!;
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();

    // Every address the victim hands to libp2p to dial (it runs the memory transport only, so a
    // TCP address here fails locally: nothing leaves the host).
    const dialled: string[] = [];
    const node = victim.mesh.libp2p;
    const dial = node.dial.bind(node);
    node.dial = ((to, opts) => { dialled.push(...[to].flat().map(String)); return dial(to, opts); }) as typeof node.dial;

    const evil = await evilPeer(evilSpec);
    await evil.dial(victim.mesh.listenAddrs()[0]!);
    const outside = ['/ip4/203.0.113.7/tcp/22', '/ip4/127.0.0.1/tcp/6379', '/ip6/2001:db8::1/tcp/80', '/dns4/evil.example/tcp/443', '/ip4/10.99.0.250/tcp/7946'];
    await evil.syncOnce(victim.mesh.peerId, helloOf(victim), {
      peers: [
        { peerId: hSpec.peerId, addrs: [...outside, `/ip4/${hPolicyAddr}/tcp/7946`] },
        { peerId: stranger, addrs: [`/ip4/${hPolicyAddr}/tcp/7946`, '/ip4/198.51.100.1/tcp/80'] },
      ],
    });
    // The one address inside H's policy range is dialled (the push was taken) …
    await until(() => dialled.some((a) => a.startsWith(`/ip4/${hPolicyAddr}/tcp/7946/p2p/${hSpec.peerId}`)), 10_000, () => dialled.join(' '));
    // … and nothing outside it, for H or for a PeerId the policy does not list.
    for (const bad of outside) expect(dialled.some((a) => a.startsWith(bad)), bad).toBe(false);
    expect(dialled.some((a) => a.includes(stranger) || a.includes('198.51.100.1'))).toBe(false);
    // A pushed address that keeps failing is not kept for ever.
    await until(() => victim.mesh.knownAddrs(hSpec.peerId).length === 0, 30_000);
  });
});
