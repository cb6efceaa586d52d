#!/usr/bin/env node
/**
 * The `picket` command: parsing and printing only. Exit codes: 0 success, 1 rejected or
 * invalid input (one line saying why, never a stack trace), 2 usage error.
 */
import '../runtime/polyfill.js';
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { PicketError, UsageError } from '../errors.js';
import { registerAgent } from './agent.js';
import { registerKeygen } from './keygen.js';
import { registerPublish } from './publish.js';
import { registerStatus } from './status.js';
import { registerPolicy } from './policy.js';
import { registerRoot } from './root.js';
import { registerState } from './state.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('picket')
    .description('a fleet firewall from one signed policy: gossip mesh, nftables on every host, no central server')
    .version(version, '-V, --version')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.startsWith('error:') ? str : `error: ${str}`) })
    .showHelpAfterError('(add --help for usage)');
  registerKeygen(program);
  registerRoot(program);
  registerPolicy(program);
  registerAgent(program);
  registerPublish(program);
  registerStatus(program);
  registerState(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof PicketError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    // A bug, not bad input: still one line for the user, the stack only when asked for.
    process.stderr.write(`error: internal: ${(e as Error)?.message ?? String(e)}\n`);
    if (process.env.PICKET_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
