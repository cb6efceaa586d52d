/**
 * The signing options every command that signs shares (policy sign, root create, root
 * rotate): key files (plain or encrypted), external signers, and where a passphrase comes
 * from. One place, so each command reads keys the same way and says the same things.
 *
 * Passphrase sources, first that applies: --passphrase-file FILE (its first line), the
 * PICKET_PASSPHRASE environment variable, a prompt on the terminal (no echo). A passphrase
 * is asked for only when an encrypted key is actually read.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { InputError, UsageError } from '../errors.js';
import { readInput } from '../runtime/files.js';
import { loadPublicKey, readKeyFile } from '../trust/files.js';
import { isEncryptedKeyFile, parseSigningKey } from '../trust/keys.js';
import { externalSigner, keySigner, type Signer } from '../trust/signer.js';
import { collect } from './options.js';

export const PASSPHRASE_ENV = 'PICKET_PASSPHRASE';
/** A signer may wait for a touch or an approval; a hung one must not hang a script forever. */
export const DEFAULT_SIGNER_TIMEOUT_S = 120;

export interface SigningOpts {
  key?: string[];
  signer?: string[];
  signerPub?: string[];
  signerTimeout?: number;
  passphraseFile?: string;
}

export function passphraseOption(): Option {
  return new Option('--passphrase-file <file>', `read the key passphrase from the first line of FILE (else $${PASSPHRASE_ENV}, else a terminal prompt)`);
}

/** Adds --signer, --signer-pub, --signer-timeout and --passphrase-file (the caller adds --key). */
export function addSignerOptions(cmd: Command): Command {
  return cmd
    .option('--signer <command>', 'external signer: a shell command that reads the bytes to sign on stdin and prints the Ed25519 signature (repeat)', collect)
    .option('--signer-pub <file>', 'the public key of the --signer at the same position (PEM, ssh-ed25519 line, raw, hex or base64)', collect)
    .addOption(new Option('--signer-timeout <seconds>', 'how long a signer may take').default(DEFAULT_SIGNER_TIMEOUT_S).argParser(seconds))
    .addOption(passphraseOption());
}

function seconds(v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0 || Number(v) > 3600) throw new InvalidArgumentError(`${v} is not a number of seconds between 0 and 3600`);
  return Number(v);
}

/** Reads a passphrase the way every command does; undefined when no source is available. */
export async function passphraseFrom(opts: { passphraseFile?: string }, prompt: string): Promise<string | undefined> {
  if (opts.passphraseFile !== undefined) {
    const text = readInput(opts.passphraseFile, 'passphrase file', 4096).toString('utf8');
    const line = text.split(/\r?\n/, 1)[0] ?? '';
    if (line === '') throw new InputError(`${opts.passphraseFile}: the passphrase file's first line is empty`);
    return line;
  }
  const env = process.env[PASSPHRASE_ENV];
  if (env !== undefined && env !== '') return env;
  if (process.stdin.isTTY) return readHidden(prompt);
  return undefined;
}

/** True when a passphrase can be had without failing (a file, the variable, or a terminal). */
export function passphraseAvailable(opts: { passphraseFile?: string }): boolean {
  return opts.passphraseFile !== undefined || !!process.env[PASSPHRASE_ENV] || !!process.stdin.isTTY;
}

/** Reads one line from the terminal without echo. Ctrl-C and Ctrl-D abort with one line. */
export function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the prompt shows: whatever is typed (or pasted) once the prompt is
  // visible must never appear on the screen.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new InputError('no passphrase given (interrupted)'));
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Reads a key file, asking for its passphrase only if it is encrypted. */
async function fileSigner(path: string, opts: SigningOpts): Promise<Signer> {
  const text = readKeyFile(path);
  const passphrase = isEncryptedKeyFile(text) ? await passphraseFrom(opts, `passphrase for ${path}: `) : undefined;
  return keySigner(parseSigningKey(text, path, passphrase), path);
}

/** Key files (in order), then external signers (in order). */
export async function loadSigners(opts: SigningOpts, keys: string[] = opts.key ?? []): Promise<Signer[]> {
  const signers: Signer[] = [];
  for (const path of keys) signers.push(await fileSigner(path, opts));
  signers.push(...externalSigners(opts));
  return signers;
}

export function externalSigners(opts: SigningOpts): Signer[] {
  const cmds = opts.signer ?? [], pubs = opts.signerPub ?? [];
  if (cmds.length !== pubs.length) throw new UsageError(`each --signer needs its --signer-pub (got ${cmds.length} --signer, ${pubs.length} --signer-pub)`);
  const timeoutMs = (opts.signerTimeout ?? DEFAULT_SIGNER_TIMEOUT_S) * 1000;
  return cmds.map((cmd, i) => externalSigner(cmd, loadPublicKey(pubs[i]!), { timeoutMs, interactive: !!process.stdin.isTTY }));
}

/** Each signing command needs at least one key file or signer. */
export function requireSomeSigner(opts: SigningOpts, flag = '--key'): void {
  if (!(opts.key?.length || opts.signer?.length)) throw new UsageError(`give a signing key: ${flag} FILE or --signer CMD --signer-pub FILE`);
}
