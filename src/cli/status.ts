/**
 * `picket status`: what the local agent holds and enforces; --mesh for the fleet. Peers'
 * statuses are validated when they arrive, and every string is escaped again here: a row
 * is one line, and nothing a peer says can move the cursor over another row or the summary.
 */
import type { Command } from 'commander';
import type { MeshJson, StatusJson } from '../agent/agent.js';
import { systemClock } from '../runtime/clock.js';
import { call, CONFIG_HELP, resolveSocket, SOCKET_HELP } from './client.js';
import { printJson } from './print.js';
import { escapeText as e } from '../wire/text.js';

export function formatStatus(s: StatusJson): string {
  const lines = [
    `node      ${e(s.node?.name ?? '(not in policy)')}  ${e(s.peerId)}`,
    `mesh      ${e(s.meshId)}, ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'} connected${s.peers.length ? `: ${s.peers.map((p) => e(p.name ?? p.peerId.slice(-8))).join(', ')}` : ''}`,
    `policy    ${s.policy ? `v${s.policy.version} (${e(s.policy.digest.slice(0, 12))}), expires ${e(s.policy.expires)}${s.policy.expired ? ' — EXPIRED' : ''}` : 'none yet (baseline)'}`,
    `root      v${s.root.version}, expires ${e(s.root.expires)}${s.root.expired ? ' — EXPIRED: no new policy is accepted until a newer root is published' : ''}`,
    `floor     ${s.floor ? `v${s.floor.version} (never lower)` : 'none'}`,
    `enforce   ${e(s.enforcement.backend)}: ${e(s.enforcement.state)}${s.enforcement.reason ? ` (${e(s.enforcement.reason)})` : ''}`,
    `ruleset   ${e(s.enforcement.rulesetHash?.slice(0, 16) ?? '-')}, applied ${e(s.enforcement.lastApplyAt ?? 'never')}`,
    ...(s.monitor && (s.monitor.policy || s.monitor.rules.length) ? [`monitor   ${[s.monitor.policy ? 'policy (settings.mode: monitor)' : '', s.monitor.rules.length ? `rules ${s.monitor.rules.map(e).join(', ')}` : ''].filter(Boolean).join('; ')}: would-drops are accepted`] : []),
    ...(s.drops ? [`drops     ${formatDrops(s.drops)}`] : []),
    ...(s.rollout ? [`rollout   ${e(s.rollout.summary)}`] : []),
    `alerts    ${s.alerts.length ? s.alerts.map((a) => `${e(a.severity)} ${e(a.class)}: ${e(a.summary)}`).join('\n          ') : 'none'}`,
  ];
  return lines.join('\n') + '\n';
}

/** "default-deny 12 (720 B), blocked 0, invalid 3 (120 B), would-drop 0" */
export function formatDrops(d: NonNullable<StatusJson['drops']>): string {
  return Object.entries(d).map(([reason, c]) => `${e(reason)} ${c.packets}${c.packets ? ` (${c.bytes} B)` : ''}`).join(', ');
}

/** The fleet table and its one-line summary ("48/50 on v7, 1 drifted, 1 silent"). */
export function formatMesh(m: MeshJson, now: number): string {
  const ago = (iso: string | null) => {
    if (!iso) return 'never';
    const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    if (!Number.isFinite(s)) return '?';
    return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
  };
  const staged = m.nodes.some((n) => n.rolloutStage != null);
  const head = `${'NODE'.padEnd(16)} ${'VERSION'.padEnd(8)} ${staged ? `${'STAGE'.padEnd(14)} ` : ''}${'ENFORCEMENT'.padEnd(15)} ${'LAST SEEN'.padEnd(10)} ${'ALERTS'.padEnd(20)} ${'DROPPED'.padEnd(10)} ${'WOULD-DROP'.padEnd(10)} PEER`;
  const count = (n: number | undefined) => (n === undefined ? '-' : String(Math.trunc(Number(n)) || 0)).padEnd(10);
  const rows = m.nodes.map((n) => [
    `${e(n.name)}${n.self ? ' *' : ''}`.padEnd(16),
    // "v1>v2?": signed v1, reported (unsigned) v2 while its claim is on the way.
    (n.policyVersion === null ? '-' : `v${n.policyVersion}${n.reportedVersion ? `>v${Math.trunc(Number(n.reportedVersion))}?` : ''}`).padEnd(8),
    ...(staged ? [stageCell(n).padEnd(14)] : []),
    e(n.silent ? `${n.enforcement ?? '-'} (silent)` : n.enforcement ?? '-').padEnd(15),
    ago(n.lastSeen).padEnd(10),
    e(n.alerts.join(',') || '-').padEnd(20),
    count(n.dropped),
    count(n.wouldDrop),
    e(n.peerId),
  ].join(' '));
  return `${head}\n${rows.join('\n')}\n${e(m.summary)}\n${m.rollout && m.rollout.state !== 'enforcing' ? `rollout: ${e(m.rollout.summary)}\n` : ''}`;
}

/** "2: holds v3" while a node's rollout keeps an older version in force, "1" once it enforces. */
export function stageCell(n: { rolloutStage?: number | null; rolloutEnforcing?: number | null }): string {
  if (n.rolloutStage == null) return '-';
  return n.rolloutEnforcing != null ? `${n.rolloutStage}: holds v${n.rolloutEnforcing}` : String(n.rolloutStage);
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show what the local agent holds and enforces')
    .option('--socket <path>', SOCKET_HELP)
    .option('--config <file>', CONFIG_HELP)
    .option('--mesh', 'show every node of the policy')
    .option('--json', 'print as JSON')
    .action(async (opts: { socket?: string; config?: string; mesh?: boolean; json?: boolean }) => {
      const socket = await resolveSocket(opts);
      if (opts.mesh) {
        const r = await call(socket, 'GET', '/v1/mesh');
        const m = r.body as MeshJson;
        if (opts.json) return printJson(m);
        process.stdout.write(formatMesh(m, systemClock.now()));
        return;
      }
      const r = await call(socket, 'GET', '/v1/status');
      if (opts.json) return printJson(r.body);
      process.stdout.write(formatStatus(r.body as StatusJson));
    });
}
