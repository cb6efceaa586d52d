/**
 * The signed envelope: {payloadType, payload, signatures[{keyId, sig}]}. On the wire it is
 * protobuf; on disk the same fields as JSON with base64 bytes. Each signature covers
 * PAE(payloadType, payload) exactly as DSSE defines it, so a root can never be replayed as
 * a policy. Decoders return tagged results and never throw on peer input.
 */
import { createHash } from 'node:crypto';
import { LIMITS } from '../wire/limits.js';
import { decoded, malformed, tooLarge, type Decoded } from '../wire/verdict.js';
import { pb } from '../wire/proto.js';
import { signBytes, type SigningKey } from './keys.js';

export const PAYLOAD_TYPE = {
  root: 'application/vnd.picket.root.v1+protobuf',
  policy: 'application/vnd.picket.policy.v1+protobuf',
} as const;

export interface Signature {
  keyId: string;
  sig: Uint8Array;
}

export interface Envelope {
  payloadType: string;
  payload: Uint8Array;
  signatures: Signature[];
}

/** The shared result shape (wire/verdict.ts): `{ ok, outcome: 'decoded', value }` or a DecodeFailure. */
export type DecodeResult<T> = Decoded<{ value: T }>;
export { malformed, tooLarge };

const enc = new TextEncoder();

/** DSSE pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/**
 * What identifies a document's content: two envelopes with the same digest carry the same
 * document whatever signatures they hold, so adding a signature is not equivocation.
 */
export function digestOf(env: Pick<Envelope, 'payloadType' | 'payload'>): string {
  return createHash('sha256').update(pae(env.payloadType, env.payload)).digest('hex');
}

export function signEnvelope(payloadType: string, payload: Uint8Array, keys: SigningKey[]): Envelope {
  const message = pae(payloadType, payload);
  const seen = new Set<string>();
  const signatures: Signature[] = [];
  for (const key of keys) {
    if (seen.has(key.keyId)) continue;
    seen.add(key.keyId);
    signatures.push({ keyId: key.keyId, sig: signBytes(key, message) });
  }
  return { payloadType, payload, signatures };
}

/** Adds signatures to an existing envelope (co-signing by another admin). */
export function addSignatures(env: Envelope, keys: SigningKey[]): Envelope {
  const message = pae(env.payloadType, env.payload);
  const have = new Set(env.signatures.map((s) => s.keyId));
  const extra = keys.filter((k) => !have.has(k.keyId)).map((k) => ({ keyId: k.keyId, sig: signBytes(k, message) }));
  return { ...env, signatures: [...env.signatures, ...extra] };
}

function checkShape(env: Envelope): DecodeResult<Envelope> {
  if (env.payloadType.length === 0) return malformed('envelope has no payloadType');
  if (env.payloadType.length > LIMITS.maxPayloadTypeLength) return tooLarge(`payloadType longer than ${LIMITS.maxPayloadTypeLength}`);
  if (env.payload.length === 0) return malformed('envelope has an empty payload');
  if (env.signatures.length > LIMITS.maxSignatures) return tooLarge(`${env.signatures.length} signatures (limit ${LIMITS.maxSignatures})`);
  for (const [i, s] of env.signatures.entries()) {
    if (!/^[0-9a-f]{64}$/.test(s.keyId)) {
      return s.keyId.length > LIMITS.maxKeyIdLength
        ? tooLarge(`signatures[${i}].keyId longer than ${LIMITS.maxKeyIdLength}`)
        : malformed(`signatures[${i}].keyId is not a hex SHA-256 key id`);
    }
    if (s.sig.length > LIMITS.maxSignatureBytes) return tooLarge(`signatures[${i}].sig longer than ${LIMITS.maxSignatureBytes} bytes`);
    if (s.sig.length !== 64) return malformed(`signatures[${i}].sig is not a 64-byte Ed25519 signature`);
  }
  return decoded({ value: env });
}

export function encodeEnvelope(env: Envelope): Uint8Array {
  return pb.envelope.v1.Envelope.encode({
    payloadType: env.payloadType,
    payload: env.payload,
    signatures: env.signatures.map((s) => ({ keyId: s.keyId, sig: s.sig })),
  }).finish();
}

/** protobufjs hands out Buffers on Node; the model holds plain Uint8Arrays (copies, so they outlive the input). */
const plain = (b: Uint8Array): Uint8Array => new Uint8Array(b);

export function decodeEnvelope(bytes: Uint8Array): DecodeResult<Envelope> {
  if (bytes.length > LIMITS.maxEnvelopeBytes) return tooLarge(`envelope is ${bytes.length} bytes (limit ${LIMITS.maxEnvelopeBytes})`);
  let m: pb.envelope.v1.Envelope;
  try {
    m = pb.envelope.v1.Envelope.decode(bytes);
  } catch (e) {
    return malformed(`envelope is not valid protobuf: ${(e as Error).message}`);
  }
  return checkShape({
    payloadType: m.payloadType,
    payload: plain(m.payload),
    signatures: m.signatures.map((s) => ({ keyId: s.keyId ?? '', sig: plain(s.sig ?? new Uint8Array()) })),
  });
}

export interface EnvelopeJson {
  payloadType: string;
  payload: string;
  signatures: { keyId: string; sig: string }[];
}

export function envelopeToJson(env: Envelope): EnvelopeJson {
  return {
    payloadType: env.payloadType,
    payload: Buffer.from(env.payload).toString('base64'),
    signatures: env.signatures.map((s) => ({ keyId: s.keyId, sig: Buffer.from(s.sig).toString('base64') })),
  };
}

export function envelopeToText(env: Envelope): string {
  return JSON.stringify(envelopeToJson(env), null, 2) + '\n';
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64(value: unknown, field: string): Uint8Array | string {
  if (typeof value !== 'string') return `${field} is not a string`;
  if (!BASE64.test(value) || value.length % 4 !== 0) return `${field} is not base64`;
  return new Uint8Array(Buffer.from(value, 'base64'));
}

/** Parses the on-disk JSON form. Accepts the bytes of the file, so size is checked first. */
export function parseEnvelopeJson(bytes: Uint8Array): DecodeResult<Envelope> {
  if (bytes.length > LIMITS.maxEnvelopeJsonBytes) return tooLarge(`envelope file is ${bytes.length} bytes (limit ${LIMITS.maxEnvelopeJsonBytes})`);
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    return malformed(`not a signed envelope (invalid JSON: ${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return malformed('not a signed envelope (expected a JSON object)');
  const o = doc as Record<string, unknown>;
  if (typeof o.payloadType !== 'string') return malformed('payloadType is missing or not a string');
  const payload = base64(o.payload, 'payload');
  if (typeof payload === 'string') return malformed(payload);
  if (!Array.isArray(o.signatures)) return malformed('signatures is missing or not a list');
  if (o.signatures.length > LIMITS.maxSignatures) return tooLarge(`${o.signatures.length} signatures (limit ${LIMITS.maxSignatures})`);
  const signatures: Signature[] = [];
  for (const [i, s] of o.signatures.entries()) {
    if (typeof s !== 'object' || s === null) return malformed(`signatures[${i}] is not an object`);
    const so = s as Record<string, unknown>;
    if (typeof so.keyId !== 'string') return malformed(`signatures[${i}].keyId is not a string`);
    const sig = base64(so.sig, `signatures[${i}].sig`);
    if (typeof sig === 'string') return malformed(sig);
    signatures.push({ keyId: so.keyId, sig });
  }
  return checkShape({ payloadType: o.payloadType, payload, signatures });
}

/** Accepts either form: files may hold JSON (the default) or raw protobuf. */
export function parseEnvelopeAny(bytes: Uint8Array): DecodeResult<Envelope> {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x7b /* { */) return parseEnvelopeJson(bytes);
  return decodeEnvelope(bytes);
}
