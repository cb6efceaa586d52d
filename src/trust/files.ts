/**
 * The I/O shell around the pure trust core: reading keys, roots and signed policies from
 * files, with one clear InputError for anything wrong. Used by the CLI and the agent.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { InputError } from '../errors.js';
import { readInput, readText } from '../runtime/files.js';
import { decodePolicy, type Policy } from '../policy/model.js';
import { digestOf, parseEnvelopeAny, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import { parsePublicKey, parseSigningKey, type PublicKey, type SigningKey } from './keys.js';
import { trustPinnedRoot, verifyRootChain, type TrustedRoot } from './verify.js';

export function loadSigningKey(path: string): SigningKey {
  return parseSigningKey(readText(path, 'key file', 64 * 1024), path);
}

export function loadPublicKey(path: string): PublicKey {
  return parsePublicKey(readText(path, 'key file', 64 * 1024), path);
}

export function loadEnvelope(path: string): Envelope {
  const r = parseEnvelopeAny(readInput(path, 'signed file'));
  if (!r.ok) throw new InputError(`${path}: ${r.outcome}: ${r.reason}`);
  return r.value;
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

/** A libp2p node identity: base64 of the protobuf-encoded private key, as IPFS configs hold it. */
export async function generateNodeKey(): Promise<{ text: string; peerId: string }> {
  const key = await generateKeyPair('Ed25519');
  return { text: Buffer.from(privateKeyToProtobuf(key)).toString('base64') + '\n', peerId: peerIdFromPrivateKey(key).toString() };
}

export function parseNodeKey(data: Uint8Array, what: string): PrivateKey {
  const text = new TextDecoder().decode(data).trim();
  const bytes = /^[A-Za-z0-9+/=\s]+$/.test(text) ? Buffer.from(text, 'base64') : data;
  try {
    return privateKeyFromProtobuf(bytes);
  } catch {
    throw new InputError(`${what}: not a libp2p node key (picket keygen --node)`);
  }
}

export function loadNodeKey(path: string): PrivateKey {
  return parseNodeKey(readInput(path, 'node key', 64 * 1024), path);
}
