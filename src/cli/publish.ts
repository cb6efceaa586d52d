/** `picket publish X.signed`: hand a signed policy (or root) to the local agent. */
import type { Command } from 'commander';
import { loadEnvelope } from '../trust/files.js';
import { encodeEnvelope } from '../trust/envelope.js';
import { call, CONFIG_HELP, resolveSocket, SOCKET_HELP } from './client.js';
import { printJson } from './print.js';
import { systemClock } from '../runtime/clock.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { UsageError } from '../errors.js';
import type { MeshJson } from '../agent/agent.js';
import { escapeText } from '../wire/text.js';

/** Polls the fleet view until every node enforces `version`; returns the exit code. */
async function waitForFleet(socket: string, version: number, timeoutMs: number): Promise<number> {
  const tty = Boolean(process.stdout.isTTY);
  const t0 = systemClock.monotonic();
  let last = '';
  for (;;) {
    const m = (await call(socket, 'GET', '/v1/mesh')).body as MeshJson;
    // A node held back by a staged rollout holds the version but does not enforce it yet.
    const done = m.nodes.filter((n) => (n.policyVersion ?? 0) >= version && n.rolloutEnforcing == null && (n.enforcement === 'ok' || n.enforcement === 'drift-repaired'));
    const elapsed = systemClock.monotonic() - t0;
    const line = `v${version}: ${done.length}/${m.nodes.length} nodes enforce it${stages(m, version)} (${formatDuration(elapsed)})`;
    if (tty) process.stdout.write(`\r${line}   `);
    else if (line.replace(/\(.*\)/, '') !== last.replace(/\(.*\)/, '')) process.stdout.write(`${line}\n`);
    last = line;
    if (m.nodes.length && done.length === m.nodes.length) {
      if (tty) process.stdout.write('\n');
      process.stdout.write(`converged: ${m.nodes.length}/${m.nodes.length} nodes enforce v${version} in ${formatDuration(elapsed)}\n`);
      return 0;
    }
    if (m.rollout?.version === version && m.rollout.state === 'halted') {
      if (tty) process.stdout.write('\n');
      process.stderr.write(`${escapeText(m.rollout.summary)}: publish a newer version to supersede it\n`);
      return 1;
    }
    if (elapsed > timeoutMs) {
      if (tty) process.stdout.write('\n');
      const late = m.nodes.filter((n) => !done.includes(n)).map((n) => `${n.name} (${n.policyVersion === null ? 'never heard' : n.rolloutEnforcing != null ? `holds v${n.policyVersion}, stage ${n.rolloutStage ?? '?'} still enforces v${n.rolloutEnforcing}` : `v${n.policyVersion} ${n.enforcement}`})`);
      process.stderr.write(`timed out after ${formatDuration(elapsed)}: ${late.length} not on v${version}: ${late.join(', ')}\n`);
      return 1;
    }
    await systemClock.sleep(200);
  }
}

/** Per-stage progress of a staged rollout: ", stage 1: 1/1, stage 2: 0/4" (empty without one). */
function stages(m: MeshJson, version: number): string {
  const by = new Map<number, { done: number; all: number }>();
  for (const n of m.nodes) {
    if (n.rolloutStage == null || n.policyVersion !== version) continue;
    const s = by.get(n.rolloutStage) ?? { done: 0, all: 0 };
    s.all++;
    if (n.rolloutEnforcing == null && (n.enforcement === 'ok' || n.enforcement === 'drift-repaired')) s.done++;
    by.set(n.rolloutStage, s);
  }
  return [...by].sort(([a], [b]) => a - b).map(([st, c]) => `, stage ${st}: ${c.done}/${c.all}`).join('');
}

export function registerPublish(program: Command): void {
  program
    .command('publish')
    .description('publish a signed policy or root through the local agent (exit 0 accepted or already held, 1 refused)')
    .argument('<file>', 'signed policy or root')
    .option('--socket <path>', SOCKET_HELP)
    .option('--config <file>', CONFIG_HELP)
    .option('--wait', 'show the fleet converging and exit when every node enforces the new version')
    .option('--timeout <duration>', 'with --wait: give up after this long (default 60s)', '60s')
    .option('--json', 'print the agent\'s answer as JSON')
    .action(async (file: string, opts: { socket?: string; config?: string; json?: boolean; wait?: boolean; timeout: string }) => {
      // Read it here first: a policy YAML or a key handed over by mistake gets one line saying
      // what it is, and the agent is not asked at all.
      const envelope = loadEnvelope(file);
      const socket = await resolveSocket(opts);
      const r = await call(socket, 'POST', '/v1/policy', encodeEnvelope(envelope));
      const b = r.body as { outcome?: string; reason?: string; version?: number; kind?: string };
      if (opts.json) printJson(b);
      if (r.status === 200) {
        if (!opts.json) process.stdout.write(b.outcome === 'duplicate' ? `already held: ${b.kind ?? 'policy'} v${b.version}\n` : `accepted: ${b.kind ?? 'policy'} v${b.version}, spreading to the mesh\n`);
        if (opts.wait && b.kind === 'policy' && b.version !== undefined) {
          const timeout = parseDuration(opts.timeout);
          if (timeout === undefined) throw new UsageError(`--timeout ${opts.timeout} is not a duration`);
          process.exitCode = await waitForFleet(socket, b.version, timeout);
        }
        return;
      }
      if (!opts.json) process.stderr.write(`refused: ${b.outcome ?? r.status}: ${b.reason ?? JSON.stringify(b)}\n`);
      process.exitCode = 1;
    });
}
