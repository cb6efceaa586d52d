/**
 * `picket agent --config agent.yaml`: run the daemon until SIGTERM/SIGINT; SIGHUP reloads.
 * A start-up failure is one line naming its cause and a non-zero exit, never a process
 * that lingers holding its ports; `--check` lists every problem it can find without starting.
 */
import type { Command } from 'commander';
import { loadConfigFile as loadConfig, type AgentConfig } from '../agent/config.js';
import { systemClock } from '../runtime/clock.js';

/**
 * After a failed start (everything already closed and the error line written), the process
 * ends within this bound whatever a library left armed (libp2p keeps a 1 s address-manager
 * debounce timer after stop).
 */
const FAILED_START_EXIT_MS = 500;
/** A stop drains and flushes first; past this bound the process exits anyway. */
const STOP_EXIT_MS = 15_000;

/** Once the work is done, exit even if a library left a handle open (the timer itself does not hold the process). */
function exitWithin(code: number, ms: number): void {
  systemClock.setTimeout(() => process.exit(code), ms);
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the picket agent: join the mesh, verify and enforce the fleet policy')
    .requiredOption('--config <file>', 'agent configuration (YAML)')
    .option('--check', 'validate the configuration, files, addresses and tools without starting; list every problem')
    .action(async (opts: { config: string; check?: boolean }) => {
      const config = loadConfig(opts.config);
      if (opts.check) {
        const { checkConfig } = await import('../agent/preflight.js');
        const problems = await checkConfig(config);
        for (const p of problems) process.stderr.write(`error: ${opts.config}: ${p}\n`);
        if (problems.length) {
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`${opts.config}: valid (keys, root, directories, addresses and ${config.enforcement.backend} backend checked)\n`);
        return;
      }
      // Loaded here, not at the top: every other command starts without the agent stack.
      const { Agent } = await import('../agent/agent.js');
      let agent: Awaited<ReturnType<typeof Agent.start>>;
      try {
        agent = await Agent.start(config);
      } catch (e) {
        exitWithin(1, FAILED_START_EXIT_MS);
        throw e;
      }
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          agent.log.info({ signal }, 'shutting down');
          exitWithin(0, STOP_EXIT_MS);
          void agent.stop().then(resolve, (e: unknown) => {
            agent.log.error({ err: (e as Error).message }, 'shutdown error');
            resolve();
          });
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        // Reloads run one at a time, in signal order: two quick SIGHUPs must not interleave.
        let reloading: Promise<unknown> = Promise.resolve();
        process.on('SIGHUP', () => {
          reloading = reloading.then(async () => {
            if (stopping) return;
            let next: AgentConfig;
            try {
              next = loadConfig(opts.config);
            } catch (e) {
              agent.log.error({ err: (e as Error).message }, 'reload refused: configuration invalid; keeping the running one');
              return;
            }
            await agent.reload(next).catch((e: unknown) => agent.log.error({ err: (e as Error).message }, 'reload failed; keeping the running configuration'));
          });
        });
      });
    });
}
