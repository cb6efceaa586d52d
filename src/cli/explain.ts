/**
 * `picket explain`: asks the running agent whether it would accept a new connection now, and
 * which rule (or the default, or the baseline) decides — read from the ruleset it enforces,
 * not from a policy file. `picket policy explain` is the offline twin for a signed file.
 */
import { Option, type Command } from 'commander';
import type { LiveExplainJson } from '../agent/live-explain.js';
import { InputError, UsageError } from '../errors.js';
import { call, CONFIG_HELP, resolveSocket, SOCKET_HELP } from './client.js';
import { intOption } from './options.js';
import { printJson } from './print.js';
import { escapeText as e } from '../wire/text.js';

export function formatLiveExplain(x: LiveExplainJson): string {
  const en = x.enforcing;
  const what = en.baseline
    ? `the baseline${en.reason ? ` (${e(en.reason)})` : ''}`
    : `policy v${en.policyVersion ?? '?'}${en.node ? ` as node ${e(en.node)}` : ''}${en.state !== 'ok' ? ` (enforcement ${e(en.state)}${en.reason ? `: ${e(en.reason)}` : ''})` : ''}`;
  return `${e(x.text)}\nenforcing ${what}, ruleset ${e(en.rulesetHash?.slice(0, 16) ?? '-')}\n`;
}

export function registerExplain(program: Command): void {
  program
    .command('explain')
    .description('ask the running agent whether it accepts a new connection (--from) or may open one (--to) now, and which rule decides')
    .option('--from <ip>', 'source address of an inbound connection')
    .option('--to <ip>', 'destination address of an outbound connection (egress)')
    .option('--port <n>', 'destination port (tcp, udp)', intOption(1, 65535))
    .addOption(new Option('--proto <proto>', 'protocol').choices(['tcp', 'udp', 'icmp']).default('tcp'))
    .option('--socket <path>', SOCKET_HELP)
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { from?: string; to?: string; port?: number; proto: string; socket?: string; config?: string; json?: boolean }) => {
      if ((opts.from === undefined) === (opts.to === undefined)) throw new UsageError('give exactly one of --from (inbound) or --to (outbound)');
      const socket = await resolveSocket(opts);
      const q = new URLSearchParams({ ...(opts.from !== undefined ? { from: opts.from } : { to: opts.to! }), proto: opts.proto, ...(opts.port !== undefined ? { port: String(opts.port) } : {}) });
      const r = await call(socket, 'GET', `/v1/explain?${q.toString()}`);
      if (r.status !== 200) throw new InputError(`agent: ${(r.body as { error?: string }).error ?? `status ${r.status}`}`);
      if (opts.json) return printJson(r.body);
      process.stdout.write(formatLiveExplain(r.body as LiveExplainJson));
    });
}
