/** Logging with pino: JSON lines by default, human-readable on a TTY. */
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type Logger = PinoLogger;

export function createLogger(opts: { level: LevelWithSilent; pretty?: boolean; base?: Record<string, unknown>; destination?: NodeJS.WritableStream }): Logger {
  const usePretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const options = { level: opts.level, base: opts.base ?? {}, timestamp: pino.stdTimeFunctions.isoTime };
  if (usePretty) return pino(options, pretty({ colorize: Boolean(process.stdout.isTTY), destination: opts.destination ?? 1, sync: true, ignore: 'pid,hostname' }));
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

export const silentLogger: Logger = pino({ level: 'silent' });
