/**
 * Who makes a signature: a key file this process holds, or an external command (ssh-agent,
 * a PKCS#11 token, a cloud KMS CLI) so the private key never sits in a file. Either way the
 * signature is verified against the named public key before it is used: a signer that signs
 * other bytes, uses another key or prints garbage is refused and nothing gets written.
 *
 * The external signer's contract (docs/operations.md "Sign with a hardware key or KMS"):
 * it receives on stdin the exact bytes Ed25519 signs, PAE(payloadType, payload) as DSSE
 * defines it, and prints the 64-byte signature: raw (exactly 64 bytes), or as text in hex
 * (128 digits) or base64 (88 characters), surrounding whitespace ignored.
 */
import { InputError } from '../errors.js';
import { runFilter } from '../runtime/subprocess.js';
import { escapeText } from '../wire/text.js';
import { pae, type Envelope, type Signature } from './envelope.js';
import { signBytes, verifyBytes, type PublicKey, type SigningKey } from './keys.js';

export interface Signer extends PublicKey {
  /** Where the key comes from, for error lines: a file path or `signer 'CMD'`. */
  source: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export function keySigner(key: SigningKey, source: string): Signer {
  return { keyId: key.keyId, publicKey: key.publicKey, ...(key.label !== undefined ? { label: key.label } : {}), source, sign: async (m) => signBytes(key, m) };
}

export interface ExternalSignerOptions {
  /** How long the command may take: a touch on a token, an approval in a KMS. */
  timeoutMs: number;
  /** The operator is at a terminal (see runtime/subprocess.ts). */
  interactive: boolean;
}

/** Nothing a signer should print comes close: 88 characters of base64 and a newline. */
const MAX_SIGNER_OUTPUT = 64 * 1024;

/** The signature in a signer's output, or why there is none. */
export function parseSignerOutput(out: Uint8Array): Uint8Array | string {
  if (out.length === 64) return new Uint8Array(out);
  if (out.length === 0) return 'printed nothing';
  const text = Buffer.from(out).toString('latin1').trim();
  if (/^[0-9a-fA-F]{128}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/]{86}==$/.test(text)) return new Uint8Array(Buffer.from(text, 'base64'));
  return `printed ${out.length} bytes, not a 64-byte Ed25519 signature (raw, 128 hex digits or base64)`;
}

export function externalSigner(command: string, key: PublicKey, opts: ExternalSignerOptions): Signer {
  const source = `signer '${escapeText(command.length > 60 ? `${command.slice(0, 60)}…` : command)}'`;
  return {
    ...key,
    source,
    async sign(message) {
      const r = await runFilter(command, message, { timeoutMs: opts.timeoutMs, maxOutputBytes: MAX_SIGNER_OUTPUT, interactive: opts.interactive });
      switch (r.outcome) {
        case 'timeout': throw new InputError(`${source}: no signature after ${r.timeoutMs / 1000} s (killed; --signer-timeout to wait longer)`);
        case 'killed': throw new InputError(`${source}: killed by ${r.signal}`);
        case 'too-much-output': throw new InputError(`${source}: printed more than ${r.limit} bytes, not a signature (killed)`);
        case 'spawn-failed': throw new InputError(`${source}: cannot run: ${r.reason}`);
        case 'exited': break;
      }
      if (r.code !== 0) throw new InputError(`${source}: exited with code ${r.code}`);
      const sig = parseSignerOutput(r.stdout);
      if (typeof sig === 'string') throw new InputError(`${source}: ${sig}`);
      return sig;
    },
  };
}

/**
 * One signature by each signer (once per key id), each verified against the signer's public
 * key before it is kept. Signers run one at a time: a person may have to touch each token.
 */
async function signaturesBy(signers: Signer[], message: Uint8Array, skip: Set<string>): Promise<Signature[]> {
  const out: Signature[] = [];
  for (const s of signers) {
    if (skip.has(s.keyId)) continue;
    skip.add(s.keyId);
    const sig = await s.sign(message);
    if (!verifyBytes(s.publicKey, message, sig)) {
      throw new InputError(`${s.source}: the signature does not verify against key ${s.keyId.slice(0, 16)}… (it signed other bytes or holds another key); nothing written`);
    }
    out.push({ keyId: s.keyId, sig });
  }
  return out;
}

/** signEnvelope (envelope.ts) for any mix of key files and external signers. */
export async function signEnvelopeWith(payloadType: string, payload: Uint8Array, signers: Signer[]): Promise<Envelope> {
  return { payloadType, payload, signatures: await signaturesBy(signers, pae(payloadType, payload), new Set()) };
}

/** addSignatures (envelope.ts) for any signers: the signatures already there are kept as they are. */
export async function addSignaturesWith(env: Envelope, signers: Signer[]): Promise<Envelope> {
  const extra = await signaturesBy(signers, pae(env.payloadType, env.payload), new Set(env.signatures.map((s) => s.keyId)));
  return { ...env, signatures: [...env.signatures, ...extra] };
}
