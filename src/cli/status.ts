/** `picket status`: what the local agent holds and enforces; --mesh for the fleet. */
import type { Command } from 'commander';
import type { StatusJson } from '../agent/agent.js';
import { call, resolveSocket } from './client.js';
import { printJson } from './io.js';

export function formatStatus(s: StatusJson): string {
  const lines = [
    `node      ${s.node?.name ?? '(not in policy)'}  ${s.peerId}`,
    `mesh      ${s.meshId}, ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'} connected${s.peers.length ? `: ${s.peers.map((p) => p.name ?? p.peerId.slice(-8)).join(', ')}` : ''}`,
    `policy    ${s.policy ? `v${s.policy.version} (${s.policy.digest.slice(0, 12)}), expires ${s.policy.expires}${s.policy.expired ? ' — EXPIRED' : ''}` : 'none yet (baseline)'}`,
    `root      v${s.root.version}, expires ${s.root.expires}`,
    `enforce   ${s.enforcement.backend}: ${s.enforcement.state}${s.enforcement.reason ? ` (${s.enforcement.reason})` : ''}`,
    `ruleset   ${s.enforcement.rulesetHash?.slice(0, 16) ?? '-'}, applied ${s.enforcement.lastApplyAt ?? 'never'}`,
  ];
  return lines.join('\n') + '\n';
}

interface MeshJson {
  nodes: { peerId: string; name: string; connected: boolean; self: boolean }[];
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show what the local agent holds and enforces')
    .option('--socket <path>', 'agent control socket (default: $PICKET_SOCKET or /run/picket/control.sock)')
    .option('--config <file>', 'read the socket path from this agent config')
    .option('--mesh', 'show every node of the policy')
    .option('--json', 'print as JSON')
    .action(async (opts: { socket?: string; config?: string; mesh?: boolean; json?: boolean }) => {
      const socket = resolveSocket(opts);
      if (opts.mesh) {
        const r = await call(socket, 'GET', '/v1/mesh');
        const m = r.body as MeshJson;
        if (opts.json) return printJson(m);
        const rows = m.nodes.map((n) => `${n.name.padEnd(16)} ${n.peerId}  ${n.self ? 'self' : n.connected ? 'connected' : '-'}`);
        process.stdout.write(`${rows.join('\n')}\n${m.nodes.length} nodes in policy, ${m.nodes.filter((n) => n.connected).length} connected\n`);
        return;
      }
      const r = await call(socket, 'GET', '/v1/status');
      if (opts.json) return printJson(r.body);
      process.stdout.write(formatStatus(r.body as StatusJson));
    });
}
