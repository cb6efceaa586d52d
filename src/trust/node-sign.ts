/**
 * Signatures made with a node's libp2p identity key (not an admin key): signed statuses
 * and large-policy announcements. Each use has its own domain prefix, so a signature made
 * for one kind of message can never be replayed as another.
 * Ed25519 goes through node:crypto (OpenSSL): ~10x faster than the pure-JS path, and every
 * node verifies the messages of every other node.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { verifyBytes } from './keys.js';

function framed(domain: Uint8Array, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(domain.length + bytes.length);
  out.set(domain, 0);
  out.set(bytes, domain.length);
  return out;
}

const signers = new WeakMap<PrivateKey, KeyObject>();
function nodeSigner(key: PrivateKey): KeyObject | undefined {
  if (key.type !== 'Ed25519') return undefined;
  let k = signers.get(key);
  if (!k) {
    const seed = key.raw.subarray(0, 32);
    k = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    signers.set(key, k);
  }
  return k;
}

/** Signs domain || bytes with the node key. */
export async function signAsNode(key: PrivateKey, domain: Uint8Array, bytes: Uint8Array): Promise<Uint8Array> {
  const signer = nodeSigner(key);
  const msg = framed(domain, bytes);
  return signer ? new Uint8Array(sign(null, msg, signer)) : key.sign(msg);
}

/** True when `signature` over domain || bytes verifies against the key inside `peerId`. */
export async function verifyAsNode(peerId: string, domain: Uint8Array, bytes: Uint8Array, signature: Uint8Array): Promise<boolean> {
  try {
    const pk = peerIdFromString(peerId).publicKey;
    if (!pk) return false;
    const msg = framed(domain, bytes);
    if (pk.type === 'Ed25519') return verifyBytes(pk.raw, msg, signature);
    return await pk.verify(msg, signature);
  } catch {
    return false;
  }
}

/**
 * verifyAsNode without a promise, for Ed25519 PeerIds only (every picket node key is
 * Ed25519): the status plane verifies claims lazily inside pure, synchronous code. Any other
 * key type is refused.
 */
export function verifyAsNodeSync(peerId: string, domain: Uint8Array, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    const pk = peerIdFromString(peerId).publicKey;
    if (!pk || pk.type !== 'Ed25519') return false;
    return verifyBytes(pk.raw, framed(domain, bytes), signature);
  } catch {
    return false;
  }
}
