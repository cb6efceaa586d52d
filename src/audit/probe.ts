/**
 * Peer probes: from outside, check that peers really drop what the policy says they drop
 * for this node. Only addresses listed in the policy are ever probed, with short timeouts
 * and a small budget per round. A port that answers is an exposed-port finding.
 */
import { connect } from 'node:net';
import { compile } from '../policy/compile.js';
import { explain } from '../policy/explain.js';
import type { Policy } from '../policy/model.js';
import type { Random } from '../runtime/random.js';
import type { Finding } from './status.js';

/** Ports commonly left open by mistake; probed when the policy closes them to this node. */
export const COMMON_PORTS = [22, 80, 443, 2379, 3306, 5432, 6379, 8080, 9200, 27017];

export interface ProbeTarget {
  peerId: string;
  name: string;
  address: string;
  port: number;
}

/**
 * Chooses what to probe (pure): up to `peers` random other nodes, and for each up to
 * `ports` ports that the policy closes to this node's address — ports the policy opens to
 * others first (the most telling), then common ones.
 */
export function planProbes(policy: Policy, selfPeerId: string, now: number, random: Random, budget: { peers: number; ports: number; meshPorts: number[] }): ProbeTarget[] {
  const self = policy.nodes.find((n) => n.peerId === selfPeerId);
  const myAddr = self?.addresses.find((a) => !a.includes(':')) ?? self?.addresses[0];
  if (!self || !myAddr) return [];
  const others = policy.nodes.filter((n) => n.peerId !== selfPeerId && n.addresses.length);
  for (let i = others.length - 1; i > 0; i--) { const j = random.int(i + 1); [others[i], others[j]] = [others[j]!, others[i]!]; }
  const out: ProbeTarget[] = [];
  for (const peer of others.slice(0, budget.peers)) {
    let rs;
    try {
      rs = compile(policy, peer.peerId, { now, meshPorts: budget.meshPorts });
    } catch {
      continue;
    }
    const opened = rs.rules.filter((r) => r.proto === 'tcp' && r.kind !== 'mesh').flatMap((r) => r.ports.map((p) => p.first));
    const candidates = [...new Set([...opened, ...COMMON_PORTS])];
    const closed = candidates.filter((port) => explain(rs, { from: myAddr, port, proto: 'tcp' }).action === 'DROP');
    for (const port of closed.slice(0, budget.ports)) out.push({ peerId: peer.peerId, name: peer.name, address: peer.addresses[0]!, port });
  }
  return out;
}

/** TCP connect with a timeout: true when the port answers (connection established). */
export function tcpAnswers(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    const done = (v: boolean) => { s.destroy(); resolve(v); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export async function runProbes(targets: ProbeTarget[], timeoutMs: number, probe = tcpAnswers): Promise<Finding[]> {
  const results = await Promise.all(targets.map(async (t) => ((await probe(t.address, t.port, timeoutMs)) ? t : null)));
  return results.filter((t): t is ProbeTarget => t !== null).map((t) => ({
    kind: 'exposed-port' as const, target: t.peerId, address: t.address, port: t.port, proto: 'tcp', detail: `${t.name} answers on tcp/${t.port}, which the policy closes to this node`,
  }));
}
