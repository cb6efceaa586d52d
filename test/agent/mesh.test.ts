import { Writable } from 'node:stream';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { isCoalesced } from '../../src/runtime/socket-writes.js';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { createLogger } from '../../src/runtime/logger.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { policyTopic } from '../../src/mesh/mesh.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const monotonic = (h: number[]) => h.every((v, i) => i === 0 || v > h[i - 1]!);

describe('mesh convergence', () => {
  /**
   * Each node knows only the one started before it; the sync interval is far beyond the test.
   * After the first policy, at least half the nodes must hold a connection beyond the line.
   */
  async function lineMixes(extra: Partial<Parameters<typeof Cluster.create>[1]> = {}): Promise<void> {
    cluster = await Cluster.create(8, { transport: 'tcp', minPeers: 2, bootstrapCount: 1, bootstrapMode: 'previous', syncInterval: '1h', ...extra });
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= 1), 20_000);
    const far = () => cluster!.nodes.filter((n, i) => n.agent!.mesh.connectedPeers().some((p) => Math.abs(cluster!.nodes.findIndex((m) => m.peerId === p) - i) > 1)).length;
    expect(far()).toBe(0);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1, 30_000);
    await until(() => far() >= cluster!.nodes.length / 2, 20_000);
  }

  it('a fleet bootstrapped as a line mixes within seconds of its first policy (peer addresses are only taken once a policy says who belongs)', async () => {
    // Addresses learned in the exchanges the policy starts lead to dials beyond the line.
    await lineMixes();
  });

  it('a line-bootstrapped fleet whose policy already names every address still mixes after its first policy (nothing left to learn from exchanges)', async () => {
    // One port everywhere, policy addresses dialable: exchanges teach no new address, so mixing
    // must come from the accept itself (bench: 30 agents stayed a ring, 9 hops deep).
    await lineMixes({ sharedPort: 20000 + (process.pid % 20000) });
  });

  it('after its first policy every node reaches its connection target in seconds, one paced dial at a time, not one dial per sync interval (no storm either)', { timeout: 120_000 }, async () => {
    // One port everywhere (nothing to learn from exchanges) and a sync interval beyond the test:
    // only the mixing that the accept starts can take a line to the target of 3 × minPeers.
    cluster = await Cluster.create(8, { transport: 'tcp', minPeers: 2, bootstrapCount: 1, bootstrapMode: 'previous', syncInterval: '1h', sharedPort: 20000 + ((process.pid + 7) % 20000) });
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= 1), 20_000);
    let opened = 0;
    for (const n of cluster.nodes) n.agent!.mesh.libp2p.addEventListener('connection:open', () => { opened++; });
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1, 30_000);
    const target = 3 * 2;
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length >= target - 1), 60_000, () => cluster!.nodes.map((n) => n.agent!.mesh.connectedPeers().length).join(','));
    // Paced, not a storm: each connection is opened once on each side, and 8 nodes hold at most 28.
    expect(opened).toBeLessThanOrEqual(2 * 28 + 8);
  });

  it('a node that missed the first policy\'s push and is never dialed again still pulls it within seconds, though its sync interval is an hour', { timeout: 60_000 }, async () => {
    // A full mesh of 4 at its connection target (minPeers 1: 3 connections), so nobody mixes
    // or dials after the publish; the sync interval is beyond the test. d stops listening on
    // the policy topic: what a node misses when it joins the gossip mesh a heartbeat after
    // the eager push (a fresh fleet's first publish under load, CI: n7=0 for 30 s).
    cluster = await Cluster.create(4, { minPeers: 1, bootstrapCount: 3, syncInterval: '1h' });
    await cluster.startAll();
    // Bootstrap dials stop at minPeers: the test completes the mesh itself.
    for (const [i, a] of cluster.nodes.entries()) {
      for (const b of cluster.nodes.slice(i + 1)) if (!a.agent!.mesh.connectedPeers().includes(b.peerId)) await a.agent!.mesh.libp2p.dial(multiaddr(b.agent!.mesh.listenAddrs()[0]!));
    }
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length === 3), 20_000, () => cluster!.nodes.map((n) => n.agent!.mesh.connectedPeers().length).join(','));
    const d = cluster.nodes[3]!;
    d.agent!.mesh.libp2p.services.pubsub.unsubscribe(policyTopic('test'));
    await until(() => cluster!.nodes.slice(0, 3).every((n) => !n.agent!.mesh.libp2p.services.pubsub.getSubscribers(policyTopic('test')).some((p) => p.toString() === d.peerId)), 10_000);
    // The exchange each new connection starts has ended on d's three links (one in flight
    // would carry the policy, as it should).
    await until(async () => { const c = await Cluster.counters(d); return c.syncRuns + c.syncFailures >= 3; }, 20_000);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1, 30_000, cluster.nodes.slice(0, 3));
    // Only d's own exchange can bring it: a node without a policy runs one every few seconds.
    await cluster.converged(1, 30_000, [d]);
  });

  it('a node at its connection target redials as soon as a connection closes, not at its slow idle tick', { timeout: 60_000 }, async () => {
    // On this clock a timer of 4 s or more never fires: the redial loop's backstop tick at its
    // target (5 s), the sync rounds, the periodic statuses. Only the close can bring the loop
    // back, so without the wake the two nodes stay apart for good.
    const shortTimersOnly: Clock = {
      ...systemClock,
      setTimeout: (fn, ms) => (ms >= 4000 ? { cancel: () => undefined } : systemClock.setTimeout(fn, ms)),
      sleep: (ms) => (ms >= 4000 ? new Promise<void>(() => undefined) : systemClock.sleep(ms)),
    };
    cluster = await Cluster.create(2, { minPeers: 1, syncInterval: '1h' });
    cluster.deps = () => ({ clock: shortTimersOnly });
    await cluster.startAll();
    const [a, b] = cluster.nodes as [NodeSpec, NodeSpec];
    await until(() => a.agent!.mesh.connectedPeers().includes(b.peerId), 20_000);
    // With a policy both list each other: each is at its target (before one, a bootstrap peer
    // listed nobody and kept its loop busy).
    await cluster.publish(a, cluster.policy(1));
    await cluster.converged(1, 20_000);
    await new Promise((r) => setTimeout(r, 2500)); // the mixing after the policy ends (one 300–1000 ms step), the loops idle
    await a.agent!.mesh.libp2p.hangUp(b.agent!.mesh.libp2p.peerId);
    await until(() => !a.agent!.mesh.connectedPeers().includes(b.peerId), 10_000);
    await until(() => a.agent!.mesh.connectedPeers().includes(b.peerId), 20_000);
  });

  it('10 nodes on the memory transport with latency converge on a published policy', async () => {
    cluster = await Cluster.create(10, { latency: 5 });
    await cluster.startAll();
    await until(() => cluster!.running().every((n) => n.agent!.mesh.connectedPeers().length > 0), 10_000);
    // Every node enforces the baseline before any policy exists.
    for (const n of cluster.nodes) expect(n.agent!.enforcer.status.state).toBe('baseline');
    await cluster.publish(cluster.nodes[3]!, cluster.policy(1));
    await cluster.converged(1);
    for (const n of cluster.nodes) {
      expect(n.agent!.enforcer.status.state).toBe('ok');
      expect(n.backend.current?.policy?.version).toBe(1);
    }
    // Regression: honest nodes never count strikes against each other (statuses sent before
    // a receiver held any policy used to be rejected, and honest peers got banned).
    const strikes = (await Promise.all(cluster.nodes.map(Cluster.counters))).map((c) => Object.values(c.strikes).reduce((a, b) => a + b, 0));
    expect(strikes).toEqual(cluster.nodes.map(() => 0));
  });

  it('3 nodes over loopback TCP converge', async () => {
    cluster = await Cluster.create(3, { transport: 'tcp' });
    await cluster.startAll();
    await until(() => cluster!.running().every((n) => n.agent!.mesh.connectedPeers().length > 0), 10_000);
    await cluster.publish(cluster.nodes[2]!, cluster.policy(1));
    await cluster.converged(1);
    // Every TCP connection's socket writes are coalesced per tick (src/runtime/socket-writes.ts):
    // if a libp2p upgrade changes the connection's shape, this says so instead of silently not.
    const conns = cluster.running().flatMap((n) => n.agent!.mesh.libp2p.getConnections());
    expect(conns.length).toBeGreaterThan(0);
    expect(conns.every((c) => isCoalesced((c as unknown as { maConn: unknown }).maConn))).toBe(true);
  });

  it('a node offline during an update catches up through sync when it returns', async () => {
    cluster = await Cluster.create(5);
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const late = cluster.nodes[4]!;
    await cluster.stop(late);
    await cluster.publish(cluster.nodes[1]!, cluster.policy(2));
    await cluster.publish(cluster.nodes[2]!, cluster.policy(3));
    await cluster.converged(3);
    await cluster.start(late);
    await cluster.converged(3);
    expect(late.history).toEqual([1, 3]);
  });

  it('a healed 50/50 partition converges and no version ever goes backwards', async () => {
    cluster = await Cluster.create(8, { bootstrapCount: 2 });
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const [a, b] = [cluster.nodes.slice(0, 4), cluster.nodes.slice(4)];
    await cluster.partition(a, b);
    await cluster.publish(a[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, a);
    await cluster.publish(b[1]!, cluster.policy(3));
    await cluster.converged(3, 10_000, b);
    expect(a.every((n) => cluster!.versionOf(n) === 2)).toBe(true);
    await cluster.heal();
    await cluster.converged(3);
    for (const n of cluster.nodes) expect(monotonic(n.history), `${n.name}: ${n.history}`).toBe(true);
  });

  it('a healed partition whose sides each hold their full connection target still converges (the periodic exchange reaches nodes it is not connected to)', async () => {
    // minPeers 1: the mixing target is 3 connections, and each side of 4 is a full mesh of 3
    // (one port everywhere: the policy gives every node every address). Neither the redial loop
    // (at minPeers) nor mixing (at its target) dials across: only the periodic exchange with a
    // random policy node, connected or not, can.
    cluster = await Cluster.create(8, { transport: 'tcp', minPeers: 1, bootstrapCount: 2, sharedPort: 40000 + (process.pid % 20000) });
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const [a, b] = [cluster.nodes.slice(0, 4), cluster.nodes.slice(4)];
    await cluster.partition(a, b);
    const side = (n: NodeSpec) => (a.includes(n) ? a : b);
    const inSide = (n: NodeSpec) => n.agent!.mesh.connectedPeers().filter((p) => side(n).some((m) => m.peerId === p)).length;
    await until(() => cluster!.nodes.every((n) => inSide(n) === 3), 20_000, () => `peers on its side: ${cluster!.nodes.map((n) => `${n.name}=${inSide(n)}/${n.agent!.mesh.connectedPeers().length}`).join(' ')}`);
    await cluster.publish(a[0]!, cluster.policy(2));
    await cluster.converged(2, 10_000, a);
    await cluster.heal();
    await cluster.converged(2, 20_000);
  });

  it('restarts with every bootstrap peer down and rejoins through the peer cache', async () => {
    cluster = await Cluster.create(4);
    await cluster.startAll();
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    const n3 = cluster.nodes[3]!;
    await until(() => n3.agent!.mesh.connectedPeers().length >= 2, 10_000);
    await cluster.stop(n3);
    await cluster.stop(cluster.nodes[0]!); // the only bootstrap peer
    await cluster.publish(cluster.nodes[1]!, cluster.policy(2));
    await cluster.converged(2);
    await cluster.start(n3, [cluster.nodes[0]!.listen + '/p2p/' + cluster.nodes[0]!.peerId]);
    await cluster.converged(2, 15_000, [n3]);
    expect(n3.agent!.mesh.connectedPeers().length).toBeGreaterThan(0);
  });
});

describe('the update path, hop by hop', () => {
  /** Every JSON log line an agent writes, by node name (the agents log at info here). */
  const logsOf = (c: Cluster) => {
    const lines = new Map<string, Record<string, unknown>[]>();
    c.deps = (spec) => {
      const mine: Record<string, unknown>[] = [];
      lines.set(spec.name, mine);
      const destination = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n')) if (l) mine.push(JSON.parse(l) as Record<string, unknown>); done(); } });
      return { log: createLogger({ level: 'info', pretty: false, destination }) };
    };
    return (name: string) => lines.get(name) ?? [];
  };

  it('an accepted policy leaves one update-trace line with every stage on the publisher and on a node that got it by gossip', async () => {
    cluster = await Cluster.create(3, { syncInterval: '1h' });
    const logs = logsOf(cluster);
    await cluster.startAll();
    await until(() => cluster!.nodes.every((n) => n.agent!.mesh.connectedPeers().length > 0), 10_000);
    await cluster.publish(cluster.nodes[0]!, cluster.policy(1));
    await cluster.converged(1);
    // The second version: the first one is often carried by the sync exchange it starts.
    await cluster.publish(cluster.nodes[0]!, cluster.policy(2));
    await cluster.converged(2);
    const trace = (name: string) => logs(name).find((l) => l.msg === 'update trace' && l.version === 2) as { source: string; at: Record<string, number>; ms: Record<string, number> } | undefined;
    await until(() => cluster!.nodes.every((n) => trace(n.name)), 10_000, () => cluster!.nodes.filter((n) => !trace(n.name)).map((n) => n.name).join(' '));
    const stages = ['received', 'verified', 'forwarded', 'persisted', 'enforced'];
    const complete = (t: { at: Record<string, number>; ms: Record<string, number> }) => {
      for (const s of stages) expect(typeof t.at[s], s).toBe('number');
      // Each stage is measured from the moment the engine was handed the envelope.
      for (const s of stages) expect(t.ms[s]).toBe(t.at[s]! - t.at.received!);
      expect(t.at.verified).toBeGreaterThanOrEqual(t.at.received!);
      expect(t.at.persisted).toBeGreaterThanOrEqual(t.at.verified!);
      expect(t.at.enforced).toBeGreaterThanOrEqual(t.at.persisted!);
    };
    const origin = trace('n0')!;
    expect(origin.source).toBe('control');
    complete(origin);
    const byGossip = cluster.nodes.slice(1).map((n) => trace(n.name)!).filter((t) => t.source === 'gossip');
    expect(byGossip.length).toBeGreaterThan(0);
    byGossip.forEach(complete);
    // One line per node per version.
    for (const n of cluster.nodes) expect(logs(n.name).filter((l) => l.msg === 'update trace' && l.version === 2)).toHaveLength(1);
  });

  it('a node forwards a verified policy while its own write is still held: the next hop gets it before the relay has persisted or applied it', async () => {
    // A line: n0 — n1 — n2. n2 can hear of v2 only through n1.
    cluster = await Cluster.create(3, { bootstrapCount: 1, bootstrapMode: 'previous', syncInterval: '1h' });
    await cluster.startAll();
    const [n0, n1, n2] = cluster.nodes as [NodeSpec, NodeSpec, NodeSpec];
    await n0.links.set(n0.agent!.mesh, (p) => p === n1.peerId);
    await n2.links.set(n2.agent!.mesh, (p) => p === n1.peerId);
    await until(() => n1.agent!.mesh.connectedPeers().length === 2, 10_000);
    await cluster.publish(n0, cluster.policy(1));
    await cluster.converged(1);
    // Both links of the relay in its gossip mesh for the policy topic.
    const pubsub = n1.agent!.mesh.libp2p.services.pubsub as unknown as { getMeshPeers(t: string): string[] };
    await until(() => pubsub.getMeshPeers(policyTopic('test')).length === 2, 10_000);

    // The relay's disk stalls: its policy write waits until released.
    const store = n1.agent!.store;
    const write = store.savePolicy.bind(store);
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let writing = false;
    store.savePolicy = async (...a) => { writing = true; await held; return write(...a); };
    try {
      await cluster.publish(n0, cluster.policy(2));
      await until(() => cluster!.versionOf(n2) === 2, 20_000, () => `n2 holds v${cluster!.versionOf(n2)}, relay writing: ${writing}`);
      // The relay verified and forwarded it, but has neither made it current nor applied it.
      expect(writing).toBe(true);
      expect(cluster.versionOf(n1)).toBe(1);
      expect(n1.agent!.enforcer.status.policyVersion).toBe(1);
    } finally {
      release();
    }
    await cluster.converged(2);
  });
});
