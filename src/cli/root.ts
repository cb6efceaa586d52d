/** `picket root create|rotate|show`: the offline root of trust. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { systemClock } from '../runtime/clock.js';
import { digestOf, envelopeToText, PAYLOAD_TYPE, type Envelope } from '../trust/envelope.js';
import { loadEnvelope, loadPublicKey, loadRootChain } from '../trust/files.js';
import { isEncryptedKeyFile, type PublicKey } from '../trust/keys.js';
import { signEnvelopeWith, type Signer } from '../trust/signer.js';
import { escapeText } from '../wire/text.js';
import { addSignerOptions, loadSigners, requireSomeSigner, type SigningOpts } from './signing.js';
import { checkRoot, countSignatures, decodeRoot, describeCount, encodeRoot, type RootDoc } from '../trust/root.js';
import { trustPinnedRoot, verifyRoot, type TrustedRoot } from '../trust/verify.js';
import { printJson } from './print.js';
import { assertAbsent, readInput, writeAtomic } from '../runtime/files.js';
import { collect, instantOption, intOption, YEAR_MS } from './options.js';

function uniqueKeys<T extends PublicKey>(keys: T[]): T[] {
  const seen = new Set<string>();
  return keys.filter((k) => (seen.has(k.keyId) ? false : (seen.add(k.keyId), true)));
}

const publicPart = (k: PublicKey): PublicKey => ({ keyId: k.keyId, publicKey: k.publicKey, ...(k.label !== undefined ? { label: k.label } : {}) });

function buildRoot(version: number, expires: number, rootKeys: PublicKey[], rootThreshold: number, policyKeys: PublicKey[], policyThreshold: number): RootDoc {
  const keys = uniqueKeys<PublicKey>([...rootKeys, ...policyKeys].map(publicPart));
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
  force?: boolean;
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

  const create = root
    .command('create')
    .description('create root v1, self-signed by its root keys')
    .option('--key <file>', 'root signing key, plain or encrypted (repeat for several)', collect)
    .option('--threshold <n>', 'root keys needed to sign a rotation', intOption(1, 64), 1)
    .option('--policy-key <file>', 'policy signing key, public or private (repeat); default: the root keys', collect)
    .option('--policy-threshold <n>', 'policy keys needed to sign a policy', intOption(1, 64), 1)
    .option('--expires <date>', 'expiry (default: one year from now)', instantOption)
    .requiredOption('--out <file>', 'where to write the signed root (JSON)')
    .option('--force', 'overwrite an existing --out file')
    .option('--json', 'print the result as JSON');
  addSignerOptions(create)
    .action(async (opts: CommonOpts & SigningOpts) => {
      requireSomeSigner(opts);
      // A root is provisioned to every node: overwriting one by a slip must be deliberate.
      assertAbsent(opts.out, opts.force ?? false);
      const now = systemClock.now();
      const rootKeys = await loadSigners(opts);
      const policyKeys = opts.policyKey?.length ? opts.policyKey.map(loadPublicKey) : rootKeys;
      const expires = opts.expires ?? now + YEAR_MS;
      if (expires <= now) throw new InputError(`--expires ${new Date(expires).toISOString()} is in the past`);
      const doc = buildRoot(1, expires, rootKeys, opts.threshold ?? 1, policyKeys, opts.policyThreshold ?? 1);
      const env = await signEnvelopeWith(PAYLOAD_TYPE.root, encodeRoot(doc), rootKeys);
      // Self-check: what we write must be accepted as a pinned root (threshold reachable).
      const check = trustPinnedRoot(env);
      if (check.outcome !== 'accepted') throw new InputError(`root: ${check.reason}`);
      writeAtomic(opts.out, envelopeToText(env));
      report(doc, opts.out, opts.json, check.trusted.digest);
    });

  const rotate = root
    .command('rotate')
    .description('create root N+1, signed by a threshold of root N\'s root keys and of its own')
    .requiredOption('--root <file>', 'the current root, or the pinned root followed by later ones (repeat)', collect)
    .option('--key <file>', 'a current root key, plain or encrypted (repeat until the threshold)', collect)
    .option('--new-key <file>', 'a root key of the new root (repeat): its private key, or the public key of a --signer given; default: the current keys and signers given', collect)
    .option('--threshold <n>', 'root threshold of the new root (default: unchanged)', intOption(1, 64))
    .option('--policy-key <file>', 'policy key of the new root (repeat); default: unchanged', collect)
    .option('--policy-threshold <n>', 'policy threshold of the new root (default: unchanged)', intOption(1, 64))
    .option('--expires <date>', 'expiry (default: one year from now)', instantOption)
    .requiredOption('--out <file>', 'where to write the new signed root (JSON)')
    .option('--force', 'overwrite an existing --out file')
    .option('--json', 'print the result as JSON');
  addSignerOptions(rotate)
    .action(async (opts: CommonOpts & SigningOpts & { root: string[]; newKey?: string[] }) => {
      requireSomeSigner(opts);
      assertAbsent(opts.out, opts.force ?? false);
      const now = systemClock.now();
      const { trusted } = loadRootChain(opts.root);
      const old = trusted.root;
      const given = await loadSigners(opts);
      const newKeys = opts.newKey?.length ? await newRootKeys(opts.newKey, given, opts) : given;
      // A key keeps the label the current root gave it unless its file names one.
      const oldLabel = new Map(old.keys.filter((k) => k.label !== undefined).map((k) => [k.keyId, k.label!]));
      const labelled = <T extends PublicKey>(k: T): T => (k.label === undefined && oldLabel.has(k.keyId) ? { ...k, label: oldLabel.get(k.keyId)! } : k);
      const policyKeys = (opts.policyKey?.length
        ? opts.policyKey.map(loadPublicKey)
        : old.keys.filter((k) => old.roles.policy.keyIds.includes(k.keyId))).map(labelled);
      const expires = opts.expires ?? now + YEAR_MS;
      if (expires <= now) throw new InputError(`--expires ${new Date(expires).toISOString()} is in the past`);
      const doc = buildRoot(old.version + 1, expires, newKeys.map(labelled), opts.threshold ?? Math.min(old.roles.root.threshold, newKeys.length),
        policyKeys, opts.policyThreshold ?? old.roles.policy.threshold);
      const env = await signEnvelopeWith(PAYLOAD_TYPE.root, encodeRoot(doc), [...given, ...newKeys]);
      const v = verifyRoot(env, trusted);
      if (v.outcome !== 'accepted') throw new InputError(`root v${doc.version} would be rejected: ${v.outcome}: ${v.reason}`);
      writeAtomic(opts.out, envelopeToText(env));
      report(doc, opts.out, opts.json, v.digest);
    });

  root
    .command('show')
    .description('print a root: version, expiry, keys and thresholds; with --root, whether it verifies from the trusted root')
    .argument('<file>', 'a signed root (root.json)')
    .option('--root <file>', 'the trusted root to verify from (repeat: pinned root, then rotations)', collect)
    .option('--json', 'print as JSON')
    .action((file: string, opts: { root?: string[]; json?: boolean }) => {
      const now = systemClock.now();
      const env = loadEnvelope(file);
      if (env.payloadType !== PAYLOAD_TYPE.root) throw new InputError(`${file}: not a signed root (payload type ${JSON.stringify(env.payloadType.slice(0, 64))})`);
      const body = decodeRoot(env.payload);
      if (!body.ok) throw new InputError(`${file}: ${body.outcome}: ${body.reason}`);
      const chain = opts.root?.length ? chainFrom(env, loadRootChain(opts.root).trusted) : undefined;
      const view = rootView(body.root, env, now, chain);
      if (opts.json) printJson(view);
      else process.stdout.write(formatRootView(view));
      if (chain && !chain.ok) {
        process.stderr.write(`invalid: root v${body.root.version} does not verify from trusted root v${chain.from}: ${chain.outcome}: ${chain.reason}\n`);
        process.exitCode = 1;
      }
    });
}

/**
 * The new root's root keys: each --new-key file is a private key (read and signed with), or
 * a public key whose private half is one of the --signer given (it signs through that).
 */
async function newRootKeys(paths: string[], given: Signer[], opts: SigningOpts): Promise<Signer[]> {
  const out: Signer[] = [];
  for (const path of paths) {
    // latin1: a raw 32-byte public key need not be UTF-8.
    const text = readInput(path, 'key file', 64 * 1024).toString('latin1');
    if (isEncryptedKeyFile(text) || text.includes('PRIVATE KEY-----')) {
      out.push(...(await loadSigners({ ...opts, signer: [], signerPub: [] }, [path])));
      continue;
    }
    const pub = loadPublicKey(path);
    const signer = given.find((g) => g.keyId === pub.keyId);
    if (!signer) throw new InputError(`${path}: a public key: give its private key, or a --signer with this key (${pub.keyId.slice(0, 16)}…) as --signer-pub`);
    out.push(pub.label !== undefined && signer.label === undefined ? { ...signer, label: pub.label } : signer);
  }
  return out;
}

type ChainCheck = { ok: true; from: number; note: string } | { ok: false; from: number; outcome: string; reason: string };

/**
 * Does `env` follow from the trusted root? Signatures and versions only: expiry is shown on its
 * own line (an expired root can still be a valid link, and only the newest root's expiry matters).
 */
function chainFrom(env: Envelope, trusted: TrustedRoot): ChainCheck {
  const from = trusted.root.version;
  const v = verifyRoot(env, trusted);
  if (v.outcome === 'accepted') return { ok: true, from, note: `root v${v.root.version} is signed by a threshold of trusted root v${from}'s root keys and of its own` };
  if (v.outcome === 'duplicate') return { ok: true, from, note: 'this is the trusted root' };
  return { ok: false, from, outcome: v.outcome, reason: v.reason };
}

function rootView(r: RootDoc, env: Envelope, now: number, chain: ChainCheck | undefined) {
  const roles = (id: string) => (['root', 'policy'] as const).filter((role) => r.roles[role].keyIds.includes(id));
  const self = countSignatures(env, r.roles.root, r.keys, { exhaustive: true });
  return {
    version: r.version,
    expires: new Date(r.expires).toISOString(),
    expired: r.expires <= now,
    digest: digestOf(env),
    keys: r.keys.map((k) => ({ keyId: k.keyId, roles: roles(k.keyId), ...(k.label !== undefined ? { label: k.label } : {}) })),
    roles: {
      root: { threshold: r.roles.root.threshold, keyIds: r.roles.root.keyIds },
      policy: { threshold: r.roles.policy.threshold, keyIds: r.roles.policy.keyIds },
    },
    selfSigned: { ok: self.valid >= self.threshold, detail: describeCount(self, 'root') },
    ...(chain ? { chain } : {}),
  };
}

function formatRootView(v: ReturnType<typeof rootView>): string {
  const lines = [
    `root v${v.version}  digest ${v.digest}`,
    `expires   ${v.expires}${v.expired ? '  EXPIRED' : ''}`,
    `root      ${v.roles.root.threshold} of ${v.roles.root.keyIds.length} keys sign a rotation`,
    `policy    ${v.roles.policy.threshold} of ${v.roles.policy.keyIds.length} keys sign a policy`,
    `keys      ${v.keys.length}`,
    ...v.keys.map((k) => `  ${k.keyId}  ${(k.roles.join(', ') || '(no role)').padEnd(12)}${k.label !== undefined ? `  ${escapeText(k.label)}` : ''}`),
    `signed    ${v.selfSigned.detail} of its own${v.selfSigned.ok ? '' : '  NOT SELF-SIGNED'}`,
  ];
  if (v.chain) lines.push(v.chain.ok ? `chain     ok from trusted root v${v.chain.from}: ${v.chain.note}` : `chain     NOT VALID from trusted root v${v.chain.from}: ${v.chain.outcome}: ${v.chain.reason}`);
  return lines.join('\n') + '\n';
}
