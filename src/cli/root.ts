/** `picket root create|rotate`: the offline root of trust. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { systemClock } from '../runtime/clock.js';
import { envelopeToText, PAYLOAD_TYPE, signEnvelope } from '../trust/envelope.js';
import { loadPublicKey, loadRootChain, loadSigningKey } from '../trust/files.js';
import type { PublicKey, SigningKey } from '../trust/keys.js';
import { checkRoot, encodeRoot, type RootDoc } from '../trust/root.js';
import { trustPinnedRoot, verifyRoot } from '../trust/verify.js';
import { printJson } from './print.js';
import { writeAtomic } from '../runtime/files.js';
import { collect, instantOption, intOption, YEAR_MS } from './options.js';

function uniqueKeys<T extends PublicKey>(keys: T[]): T[] {
  const seen = new Set<string>();
  return keys.filter((k) => (seen.has(k.keyId) ? false : (seen.add(k.keyId), true)));
}

function buildRoot(version: number, expires: number, rootKeys: SigningKey[], rootThreshold: number, policyKeys: PublicKey[], policyThreshold: number): RootDoc {
  const keys = uniqueKeys<PublicKey>([...rootKeys, ...policyKeys].map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })));
  const doc: RootDoc = {
    version,
    expires,
    keys,
    roles: {
      root: { keyIds: uniqueKeys(rootKeys).map((k) => k.keyId), threshold: rootThreshold },
      policy: { keyIds: uniqueKeys(policyKeys).map((k) => k.keyId), threshold: policyThreshold },
    },
  };
  const problem = checkRoot(doc);
  if (problem) throw new InputError(`root: ${problem}`);
  return doc;
}

interface CommonOpts {
  threshold?: number;
  policyKey?: string[];
  policyThreshold?: number;
  expires?: number;
  out: string;
  json?: boolean;
}

function report(doc: RootDoc, out: string, json: boolean | undefined, digest: string): void {
  if (json) {
    printJson({ version: doc.version, expires: new Date(doc.expires).toISOString(), digest, out, rootKeys: doc.roles.root, policyKeys: doc.roles.policy });
  } else {
    process.stdout.write(`root v${doc.version}: ${doc.roles.root.threshold} of ${doc.roles.root.keyIds.length} root keys, ${doc.roles.policy.threshold} of ${doc.roles.policy.keyIds.length} policy keys, expires ${new Date(doc.expires).toISOString()} -> ${out}\n`);
  }
}

export function registerRoot(program: Command): void {
  const root = program.command('root').description('create and rotate the root of trust (offline)');

  root
    .command('create')
    .description('create root v1, self-signed by its root keys')
    .requiredOption('--key <file>', 'root signing key (repeat for several)', collect)
    .option('--threshold <n>', 'root keys needed to sign a rotation', intOption(1, 64), 1)
    .option('--policy-key <file>', 'policy signing key, public or private (repeat); default: the root keys', collect)
    .option('--policy-threshold <n>', 'policy keys needed to sign a policy', intOption(1, 64), 1)
    .option('--expires <date>', 'expiry (default: one year from now)', instantOption)
    .requiredOption('--out <file>', 'where to write the signed root (JSON)')
    .option('--json', 'print the result as JSON')
    .action((opts: CommonOpts & { key: string[] }) => {
      const now = systemClock.now();
      const rootKeys = opts.key.map(loadSigningKey);
      const policyKeys = opts.policyKey?.length ? opts.policyKey.map(loadPublicKey) : rootKeys;
      const expires = opts.expires ?? now + YEAR_MS;
      if (expires <= now) throw new InputError(`--expires ${new Date(expires).toISOString()} is in the past`);
      const doc = buildRoot(1, expires, rootKeys, opts.threshold ?? 1, policyKeys, opts.policyThreshold ?? 1);
      const env = signEnvelope(PAYLOAD_TYPE.root, encodeRoot(doc), rootKeys);
      // Self-check: what we write must be accepted as a pinned root (threshold reachable).
      const check = trustPinnedRoot(env);
      if (!('ok' in check)) throw new InputError(`root: ${check.reason}`);
      writeAtomic(opts.out, envelopeToText(env));
      report(doc, opts.out, opts.json, check.trusted.digest);
    });

  root
    .command('rotate')
    .description('create root N+1, signed by a threshold of root N\'s root keys and of its own')
    .requiredOption('--root <file>', 'the current root, or the pinned root followed by later ones (repeat)', collect)
    .requiredOption('--key <file>', 'a current root key (repeat until the threshold)', collect)
    .option('--new-key <file>', 'a root key of the new root (repeat); default: the current keys given', collect)
    .option('--threshold <n>', 'root threshold of the new root (default: unchanged)', intOption(1, 64))
    .option('--policy-key <file>', 'policy key of the new root (repeat); default: unchanged', collect)
    .option('--policy-threshold <n>', 'policy threshold of the new root (default: unchanged)', intOption(1, 64))
    .option('--expires <date>', 'expiry (default: one year from now)', instantOption)
    .requiredOption('--out <file>', 'where to write the new signed root (JSON)')
    .option('--json', 'print the result as JSON')
    .action((opts: CommonOpts & { root: string[]; key: string[]; newKey?: string[] }) => {
      const now = systemClock.now();
      const { trusted } = loadRootChain(opts.root);
      const old = trusted.root;
      const oldKeys = opts.key.map(loadSigningKey);
      const newKeys = opts.newKey?.length ? opts.newKey.map(loadSigningKey) : oldKeys;
      const policyKeys = opts.policyKey?.length
        ? opts.policyKey.map(loadPublicKey)
        : old.keys.filter((k) => old.roles.policy.keyIds.includes(k.keyId));
      const expires = opts.expires ?? now + YEAR_MS;
      if (expires <= now) throw new InputError(`--expires ${new Date(expires).toISOString()} is in the past`);
      const doc = buildRoot(old.version + 1, expires, newKeys, opts.threshold ?? Math.min(old.roles.root.threshold, newKeys.length),
        policyKeys, opts.policyThreshold ?? old.roles.policy.threshold);
      const env = signEnvelope(PAYLOAD_TYPE.root, encodeRoot(doc), [...oldKeys, ...newKeys]);
      const v = verifyRoot(env, trusted);
      if (v.outcome !== 'accepted') throw new InputError(`root v${doc.version} would be rejected: ${v.outcome}: ${v.reason}`);
      writeAtomic(opts.out, envelopeToText(env));
      report(doc, opts.out, opts.json, v.digest);
    });
}
