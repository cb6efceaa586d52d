/**
 * The end of a cluster's warm-up (agents in one process): the fleet has stopped mixing once
 * its connection count has not grown for 5 s (at least max(5 s, n × 300 ms), at most 3
 * minutes). A fixed n × 300 ms measured 100 agents in one process while they were still
 * dialling towards their targets (~16 handshakes a second, the thread saturated), not the
 * steady state a benchmark is about. (Each periodic exchange with an unconnected node opens
 * and closes one connection, so "no connection opened" never holds at 100 nodes.) Returns the
 * warm-up's length in ms.
 */
import { performance } from 'node:perf_hooks';
import type { Cluster } from '../test/helpers/cluster.js';

export async function untilMixed(c: Cluster): Promise<number> {
  const n = c.nodes.length;
  const warm0 = performance.now();
  const total = (): number => c.nodes.reduce((a, x) => a + x.agent!.mesh.connectedPeers().length, 0);
  let most = total(), grewAt = warm0;
  for (let now = warm0; now - warm0 < 180_000 && (now - warm0 < Math.max(5000, n * 300) || now - grewAt < 5000); now = performance.now()) {
    await new Promise((r) => setTimeout(r, 500));
    const t = total();
    if (t > most) { most = t; grewAt = performance.now(); }
  }
  return Math.round(performance.now() - warm0);
}
