/**
 * The I/O shell around the pure trust core: reading keys, roots and signed policies from
 * files, with one clear InputError for anything wrong. Used by the CLI and the agent.
 * Node identities (libp2p keys) are in node-key.ts, so the offline commands never load libp2p.
 */
import { InputError } from '../errors.js';
import { readInput, readText } from '../runtime/files.js';
import { decodePolicy, type Policy } from '../policy/model.js';
import { digestOf, parseEnvelopeAny, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import { parsePublicKeyBytes, parseSigningKey, type PublicKey, type SigningKey } from './keys.js';
import { trustPinnedRoot, verifyRootChain, type TrustedRoot } from './verify.js';

/** The text of a key file, bounded (a key file is a few hundred bytes). */
export function readKeyFile(path: string): string {
  return readText(path, 'key file', 64 * 1024);
}

/** A private key file, plain or encrypted (then `passphrase` is needed: cli/signing.ts asks for it). */
export function loadSigningKey(path: string, passphrase?: string): SigningKey {
  return parseSigningKey(readKeyFile(path), path, passphrase);
}

/** A public key in any form parsePublicKeyBytes reads (PEM, ssh-ed25519 line, raw/hex/base64), or a plain private key. */
export function loadPublicKey(path: string): PublicKey {
  return parsePublicKeyBytes(readInput(path, 'key file', 64 * 1024), path);
}

export function loadEnvelope(path: string): Envelope {
  const bytes = readInput(path, 'signed file');
  const r = parseEnvelopeAny(bytes);
  if (!r.ok) {
    const hint = r.outcome === 'malformed' ? fileKindHint(bytes) : undefined;
    throw new InputError(`${path}: ${hint ?? `${r.outcome}: ${r.reason}`}`);
  }
  return r.value;
}

/**
 * What a file that is not a signed envelope most likely is, so that the error says what to
 * do instead of quoting the protobuf decoder. Only a guess from the first few KB of text.
 */
export function fileKindHint(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder().decode(bytes.subarray(0, 8192));
  const key = (k: string) => new RegExp(`^${k}\\s*:`, 'm').test(head);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(head)) return 'this is a private key, not a signed document';
  if (/-----BEGIN PUBLIC KEY-----/.test(head)) return 'this is a public key, not a signed document';
  if (key('dataDir') || key('identityKey') || key('trustedRoot')) return 'this is an agent config (picket agent --config), not a signed document';
  if (key('meshId') && (key('version') || key('rules') || key('nodes'))) {
    return 'this is a policy YAML, sign it first: picket policy sign FILE --root root.json --key admin.key --out policy.signed';
  }
  if (/^[A-Za-z0-9+/]{80,100}={0,2}\s*$/.test(head)) return 'this looks like a node identity key (picket keygen --node), not a signed document';
  return undefined;
}

/**
 * Loads a pinned root and optionally later roots: the first file is trusted as provisioned,
 * each following one must verify against the one before (rotation chain).
 */
export function loadRootChain(paths: string[]): { trusted: TrustedRoot; envelopes: Envelope[] } {
  const [first, ...rest] = paths;
  if (!first) throw new InputError('no root given (--root root.json)');
  const env = loadEnvelope(first);
  const pinned = trustPinnedRoot(env);
  if (pinned.outcome !== 'accepted') throw new InputError(`${first}: ${pinned.outcome}: ${pinned.reason}`);
  const envs = rest.map(loadEnvelope);
  const chain = verifyRootChain(envs, pinned.trusted);
  if (!chain.ok) throw new InputError(`${rest[chain.index]}: ${chain.rejection.outcome}: ${chain.rejection.reason}`);
  return { trusted: chain.trusted, envelopes: [env, ...chain.accepted] };
}

/** Reads a signed policy for display (show, diff, render, explain) without checking signatures. */
export function loadPolicyUnverified(path: string): { policy: Policy; envelope: Envelope; digest: string } {
  const envelope = loadEnvelope(path);
  if (envelope.payloadType !== PAYLOAD_TYPE.policy) throw new InputError(`${path}: not a signed policy (payload type ${envelope.payloadType})`);
  const r = decodePolicy(envelope.payload);
  if (!r.ok) throw new InputError(`${path}: ${r.outcome}: ${r.reason}`);
  return { policy: r.policy, envelope, digest: digestOf(envelope) };
}
