#!/usr/bin/env node
/**
 * The `picket` command: parsing and printing only. Exit codes: 0 success, 1 rejected or
 * invalid input (one line saying why, never a stack trace), 2 usage error.
 */
import '../runtime/polyfill.js';
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { PicketError, UsageError } from '../errors.js';
import { escapeText } from '../wire/text.js';

const escapeLines = (s: string) => s.split('\n').map(escapeText).join('\n');

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

type Register = (program: Command) => void;

async function loadState(): Promise<Register> {
  return (await import('./state.js')).registerState;
}

/**
 * The command groups, each loaded with import() only when it is used: `picket policy verify`
 * must not pay for libp2p and LevelDB, which only `picket agent` needs (start-up went from
 * ~1.1 s to a few hundred ms; bench/cli-start.ts measures it).
 */
export const GROUPS: Record<string, () => Promise<Register>> = {
  keygen: async () => (await import('./keygen.js')).registerKeygen,
  root: async () => (await import('./root.js')).registerRoot,
  policy: async () => (await import('./policy.js')).registerPolicy,
  agent: async () => (await import('./agent.js')).registerAgent,
  publish: async () => (await import('./publish.js')).registerPublish,
  status: async () => (await import('./status.js')).registerStatus,
  explain: async () => (await import('./explain.js')).registerExplain,
  // One module registers both `enforce` and `state`.
  enforce: loadState,
  state: loadState,
};

/** The group argv asks for (`picket help X` counts as X), or null: top-level help, version, a typo. */
export function groupOf(argv: string[]): string | null {
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  const first = words[0] === 'help' ? words[1] : words[0];
  return first !== undefined && Object.hasOwn(GROUPS, first) ? first : null;
}

/** Registers the group argv names, or every group when it names none (help lists them all). */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('picket')
    .description('a fleet firewall from one signed policy: gossip mesh, nftables on every host, no central server')
    .version(version, '-V, --version')
    .exitOverride()
    // Commander quotes the offending argument: a flag value holding ESC must not reach the terminal raw.
    .configureOutput({ outputError: (str, write) => write(escapeLines(str.startsWith('error:') ? str : `error: ${str}`)) })
    .showHelpAfterError('(add --help for usage)');
  const only = groupOf(argv);
  const versionOnly = only === null && argv.slice(2).length === 1 && ['-V', '--version'].includes(argv[2]!);
  if (versionOnly) return program;
  const loaders = only === null ? [...new Set(Object.values(GROUPS))] : [GROUPS[only]!];
  for (const load of loaders) (await load())(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${escapeLines(e.message)}\n`);
      return 2;
    }
    if (e instanceof PicketError) {
      process.stderr.write(`error: ${escapeLines(e.message)}\n`);
      return 1;
    }
    // A bug, not bad input: still one line for the user, the stack only when asked for.
    process.stderr.write(`error: internal: ${(e as Error)?.message ?? String(e)}\n`);
    if (process.env.PICKET_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
