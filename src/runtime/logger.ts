/** Logging with pino: JSON lines by default, human-readable on a TTY. */
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { escapeDeep, escapeText } from '../wire/text.js';

export type Logger = PinoLogger;

export function createLogger(opts: { level: LevelWithSilent; pretty?: boolean; base?: Record<string, unknown>; destination?: NodeJS.WritableStream }): Logger {
  const usePretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const options = {
    level: opts.level, base: opts.base ?? {}, timestamp: pino.stdTimeFunctions.isoTime,
    // Log lines quote what peers sent (reasons, names): escape control characters in the
    // message and in every field, or a log viewer on a terminal would interpret them.
    formatters: { log: (o: Record<string, unknown>) => escapeDeep(o) },
    hooks: { logMethod(this: PinoLogger, args: unknown[], method: (...a: unknown[]) => void) { method.apply(this, args.map((a) => (typeof a === 'string' ? escapeText(a) : a))); } },
  };
  if (usePretty) return pino(options, pretty({ colorize: Boolean(process.stdout.isTTY), destination: opts.destination ?? 1, sync: true, ignore: 'pid,hostname' }));
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

export const silentLogger: Logger = pino({ level: 'silent' });
