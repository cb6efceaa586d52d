/** `picket agent --config agent.yaml`: run the daemon until SIGTERM/SIGINT; SIGHUP reloads. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { parseConfigText, type AgentConfig } from '../agent/config.js';

function loadConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`${path}: cannot read config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseConfigText(text, path);
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the picket agent: join the mesh, verify and enforce the fleet policy')
    .requiredOption('--config <file>', 'agent configuration (YAML)')
    .option('--check', 'validate the configuration and exit')
    .action(async (opts: { config: string; check?: boolean }) => {
      const config = loadConfig(opts.config);
      if (opts.check) {
        process.stdout.write(`${opts.config}: valid\n`);
        return;
      }
      // libp2p and LevelDB load here, not when the command line is parsed.
      const { Agent } = await import('../agent/agent.js');
      const agent = await Agent.start(config);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          agent.log.info({ signal }, 'shutting down');
          void agent.stop().then(resolve, (e: unknown) => {
            agent.log.error({ err: (e as Error).message }, 'shutdown error');
            resolve();
          });
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', () => {
          try {
            void agent.reload(loadConfig(opts.config));
          } catch (e) {
            agent.log.error({ err: (e as Error).message }, 'reload refused: configuration invalid; keeping the running one');
          }
        });
      });
    });
}
