/**
 * `picket keygen`: admin signing keys and node identities.
 *
 * Admin keys are encrypted (PKCS#8, see trust/keys.ts) whenever a passphrase can be had:
 * --passphrase-file, $PICKET_PASSPHRASE or a terminal, where keygen asks twice. --encrypt
 * insists (and fails without a passphrase); --no-encrypt writes a plain key for tests and
 * automation. With no passphrase source and neither flag (a script, CI), the key is written
 * plain as before, with a warning: see docs/decisions.md for why that is not an error.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { InputError } from '../errors.js';
import { generateSigningKey, keyLabelProblem, privateKeyPem, publicKeyPem } from '../trust/keys.js';
import { printJson } from './print.js';
import { assertAbsent, writeNew } from '../runtime/files.js';
import { passphraseAvailable, passphraseFrom, passphraseOption, PASSPHRASE_ENV, readHidden } from './signing.js';

/** With PBKDF2 at OpenSSL's 2048 iterations, the passphrase is all that guards a stolen file. */
export const MIN_PASSPHRASE_LENGTH = 12;

export function publicPathFor(keyPath: string): string {
  return keyPath.endsWith('.key') ? `${keyPath.slice(0, -4)}.pub` : `${keyPath}.pub`;
}

function labelOption(v: string): string {
  const bad = keyLabelProblem(v);
  if (bad) throw new InvalidArgumentError(bad);
  return v;
}

interface KeygenOpts { out: string; node?: boolean; force?: boolean; json?: boolean; label?: string; encrypt?: boolean; passphraseFile?: string }

/** The passphrase to encrypt with, or undefined for a plain key. */
async function newPassphrase(opts: KeygenOpts): Promise<string | undefined> {
  if (opts.encrypt === false) return undefined;
  if (!passphraseAvailable(opts)) {
    if (opts.encrypt) throw new InputError(`--encrypt: no passphrase: give --passphrase-file FILE, set ${PASSPHRASE_ENV} or run on a terminal`);
    process.stderr.write(`warning: ${opts.out} is not encrypted (no passphrase: --passphrase-file FILE, ${PASSPHRASE_ENV} or a terminal; --no-encrypt to say so)\n`);
    return undefined;
  }
  const interactive = opts.passphraseFile === undefined && !process.env[PASSPHRASE_ENV];
  const pass = await passphraseFrom(opts, `passphrase for ${opts.out}: `);
  if (pass === undefined) return undefined;
  if (pass.length < MIN_PASSPHRASE_LENGTH) throw new InputError(`passphrase is ${pass.length} characters: use at least ${MIN_PASSPHRASE_LENGTH}`);
  if (interactive && (await readHidden('again: ')) !== pass) throw new InputError('the passphrases do not match');
  return pass;
}

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('generate an Ed25519 admin signing key (KEY + .pub) or, with --node, a node identity')
    .requiredOption('--out <path>', 'where to write the private key (mode 0600)')
    .option('--node', 'generate a libp2p node identity and print its PeerId')
    .option('--label <label>', 'who holds the key (alice@ops): carried into the root, shown by root show and policy verify', labelOption)
    .option('--encrypt', 'encrypt the key with a passphrase, or fail (default: encrypt when a passphrase source exists)')
    .option('--no-encrypt', 'write the key unencrypted (tests, automation)')
    .addOption(passphraseOption())
    .option('--force', 'overwrite existing files')
    .option('--json', 'print the result as JSON')
    .action(async (opts: KeygenOpts) => {
      const force = opts.force ?? false;
      if (opts.node) {
        if (opts.label !== undefined || opts.encrypt !== undefined || opts.passphraseFile !== undefined) {
          throw new InputError('--label, --encrypt and --passphrase-file are for admin keys, not --node identities');
        }
        const { generateNodeKey } = await import('../trust/node-key.js'); // libp2p crypto: only for node keys
        const key = await generateNodeKey();
        writeNew(opts.out, key.text, 0o600, force);
        if (opts.json) printJson({ peerId: key.peerId, private: opts.out });
        else process.stdout.write(`${key.peerId}\n`);
        return;
      }
      const pub = publicPathFor(opts.out);
      assertAbsent(opts.out, force);
      assertAbsent(pub, force);
      const passphrase = await newPassphrase(opts);
      const key = generateSigningKey();
      writeNew(opts.out, privateKeyPem(key, passphrase, opts.label), 0o600, force);
      writeNew(pub, publicKeyPem(key.publicKey, opts.label), 0o644, true);
      if (opts.json) printJson({ keyId: key.keyId, private: opts.out, public: pub, encrypted: passphrase !== undefined, ...(opts.label ? { label: opts.label } : {}) });
      else process.stdout.write(`${key.keyId}\n`);
    });
}
