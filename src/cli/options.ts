/** Option parsers shared by the commands: each rejects bad input with a usage error (exit 2). */
import { InvalidArgumentError } from 'commander';
import { parseInstant } from '../runtime/clock.js';

export function intOption(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${value} is not a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${value} is not between ${min} and ${max}`);
    return n;
  };
}

export function instantOption(value: string): number {
  const ms = parseInstant(value);
  if (ms === undefined) throw new InvalidArgumentError(`${value} is not a date (2027-12-31 or 2027-12-31T00:00:00Z)`);
  return ms;
}

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export const YEAR_MS = 365 * 24 * 3600 * 1000;
