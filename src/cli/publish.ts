/** `picket publish X.signed`: hand a signed policy (or root) to the local agent. */
import type { Command } from 'commander';
import { readInput } from './io.js';
import { call, resolveSocket } from './client.js';
import { printJson } from './io.js';

export function registerPublish(program: Command): void {
  program
    .command('publish')
    .description('publish a signed policy or root through the local agent (exit 0 accepted or already held, 1 refused)')
    .argument('<file>', 'signed policy or root')
    .option('--socket <path>', 'agent control socket (default: $PICKET_SOCKET or /run/picket/control.sock)')
    .option('--config <file>', 'read the socket path from this agent config')
    .option('--json', 'print the agent\'s answer as JSON')
    .action(async (file: string, opts: { socket?: string; config?: string; json?: boolean }) => {
      const socket = resolveSocket(opts);
      const r = await call(socket, 'POST', '/v1/policy', readInput(file, 'signed file'));
      const b = r.body as { outcome?: string; reason?: string; version?: number; kind?: string };
      if (opts.json) printJson(b);
      if (r.status === 200) {
        if (!opts.json) process.stdout.write(b.outcome === 'duplicate' ? `already held: ${b.kind ?? 'policy'} v${b.version}\n` : `accepted: ${b.kind ?? 'policy'} v${b.version}, spreading to the mesh\n`);
        return;
      }
      if (!opts.json) process.stderr.write(`refused: ${b.outcome ?? r.status}: ${b.reason ?? JSON.stringify(b)}\n`);
      process.exitCode = 1;
    });
}
