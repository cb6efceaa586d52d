/** `picket keygen`: admin signing keys and node identities. */
import type { Command } from 'commander';
import { generateSigningKey, privateKeyPem, publicKeyPem } from '../trust/keys.js';
import { printJson } from './print.js';
import { assertAbsent, writeNew } from '../runtime/files.js';

export function publicPathFor(keyPath: string): string {
  return keyPath.endsWith('.key') ? `${keyPath.slice(0, -4)}.pub` : `${keyPath}.pub`;
}

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('generate an Ed25519 admin signing key (KEY + .pub) or, with --node, a node identity')
    .requiredOption('--out <path>', 'where to write the private key (mode 0600)')
    .option('--node', 'generate a libp2p node identity and print its PeerId')
    .option('--force', 'overwrite existing files')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { out: string; node?: boolean; force?: boolean; json?: boolean }) => {
      const force = opts.force ?? false;
      if (opts.node) {
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
      const key = generateSigningKey();
      writeNew(opts.out, privateKeyPem(key), 0o600, force);
      writeNew(pub, publicKeyPem(key.publicKey), 0o644, true);
      if (opts.json) printJson({ keyId: key.keyId, private: opts.out, public: pub });
      else process.stdout.write(`${key.keyId}\n`);
    });
}
