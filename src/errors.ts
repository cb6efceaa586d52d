/**
 * Thrown errors have a stable `name` and `code` so logs, metrics and the CLI can match on
 * them. Expected outcomes (a rejected policy, a stale version) are values, not errors.
 */
export class PicketError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PicketError';
    this.code = code;
  }
}

/** Bad input from a file, a flag or a peer: one clear line for the user, exit 1. */
export class InputError extends PicketError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INPUT', message, options);
    this.name = 'InputError';
  }
}

/** Wrong use of the command line: exit 2. */
export class UsageError extends PicketError {
  constructor(message: string) {
    super('ERR_USAGE', message);
    this.name = 'UsageError';
  }
}
