/** Whether a compiled ruleset opens a port to anyone at all (pure). */
import type { NodeRuleset } from '../policy/compile.js';

export function explainPortOpen(rs: NodeRuleset, proto: 'tcp' | 'udp', port: number): boolean {
  return rs.rules.some((r) => r.proto === proto && r.ports.some((p) => p.first <= port && port <= p.last));
}
