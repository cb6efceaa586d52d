/**
 * Node identities: libp2p Ed25519 private keys on disk (base64 of the protobuf encoding, as
 * IPFS configs hold them). Kept apart from files.ts so that the offline commands (keygen for
 * admins, root, policy) do not load libp2p's crypto stack.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { InputError } from '../errors.js';
import { readInput } from '../runtime/files.js';

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
