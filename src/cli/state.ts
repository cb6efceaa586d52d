/**
 * `picket enforce` (apply the last good policy or the baseline once, before the agent runs)
 * and `picket state reset` (the one explicit, logged way to lower the trusted state).
 */
import type { Command } from 'commander';
import { appendFileSync, existsSync, rmSync } from 'node:fs';
import { InputError } from '../errors.js';
import { loadConfigFile } from '../agent/config.js';
import { systemClock, formatInstant } from '../runtime/clock.js';

export function registerState(program: Command): void {
  program
    .command('enforce')
    .description('apply the last good policy (or the baseline) to the kernel once and exit: run before the agent, at boot')
    .requiredOption('--config <file>', 'agent configuration (YAML)')
    .action(async (opts: { config: string }) => {
      const config = loadConfigFile(opts.config);
      const { enforceOnce } = await import('../agent/enforce-once.js');
      const r = await enforceOnce(config);
      if (!r.ok) throw new InputError(r.line);
      process.stdout.write(`${r.line}\n`);
    });

  const state = program.command('state').description('the node\'s trusted state (root chain, version floor, blocked set)');
  state
    .command('reset')
    .description('forget the trusted state so the node starts again from its pinned root (refuses while the agent runs)')
    .requiredOption('--config <file>', 'agent configuration (YAML)')
    .requiredOption('--yes', 'confirm: older policies become acceptable again until a new one arrives')
    .action(async (opts: { config: string }) => {
      const config = loadConfigFile(opts.config);
      const { answers } = await import('../agent/control.js');
      if (existsSync(config.control.socket) && await answers(config.control.socket)) throw new InputError(`the agent is running (${config.control.socket} answers): stop it first`);
      const { Store } = await import('../store/store.js');
      const { trustMirrorPath } = await import('../agent/agent.js');
      const store = await Store.open(config.dataDir); // throws StoreLockedError while the agent runs
      let removed: string[];
      try {
        removed = await store.resetTrust();
      } finally {
        await store.close();
      }
      const mirror = trustMirrorPath(config.dataDir);
      const hadMirror = existsSync(mirror);
      rmSync(mirror, { force: true });
      const line = `${formatInstant(systemClock.now())} state reset by operator (uid ${process.getuid?.() ?? '?'}): removed ${removed.length} store records${hadMirror ? ' and the trust-state mirror' : ''}`;
      // The log beside the store is what the agent reports on its next start.
      appendFileSync(`${config.dataDir}/state-reset.log`, `${line}\n`, { mode: 0o600 });
      process.stdout.write(`${line}\n`);
    });
}
