/**
 * What bogus signatures cost a node: CPU per message for a ~4 MiB envelope (the wire limit)
 * carrying signatures that do not verify, next to honest envelopes. Every Ed25519 verify
 * hashes the whole message, so each signature tried costs ~12 ms at this size.
 * `baseline` is the counting rule before the key-hygiene change (every signature of an
 * allowed key verified until one per key is valid), measured in the same run. The payload is
 * random bytes: honest envelopes pass the signature count and then fail to decode (malformed),
 * which is cheap next to the signatures.
 *   npx tsx bench/sigs.ts [--out bench-out] [--runs 5]
 */
import { randomBytes } from 'node:crypto';
import { generateSigningKey, verifyBytes, type PublicKey, type SigningKey } from '../src/trust/keys.js';
import { digestOf, encodeEnvelope, pae, PAYLOAD_TYPE, signEnvelope, type Envelope } from '../src/trust/envelope.js';
import { countSignatures, encodeRoot, type Role, type RootDoc } from '../src/trust/root.js';
import { verifyPolicy } from '../src/trust/verify.js';
import { LIMITS } from '../src/wire/limits.js';
import { argValue, median, round, saveRows, type Row } from './stats.js';

const out = argValue('--out', 'bench-out');
const runs = Number(argValue('--runs', '5'));
const now = Date.parse('2026-11-27T00:00:00Z');

/** The rule before the change: every signature by an allowed key is verified until that key has a valid one. */
function countEverySignature(env: Envelope, role: Role, keys: PublicKey[]): { valid: number; verified: number } {
  const message = pae(env.payloadType, env.payload);
  const byId = new Map(keys.map((k) => [k.keyId, k.publicKey]));
  const allowed = new Set(role.keyIds);
  const good = new Set<string>();
  let verified = 0;
  for (const s of env.signatures) {
    const pk = allowed.has(s.keyId) ? byId.get(s.keyId) : undefined;
    if (!pk || good.has(s.keyId)) continue;
    verified++;
    if (verifyBytes(pk, message, s.sig)) good.add(s.keyId);
  }
  return { valid: good.size, verified };
}

function cpuMs(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

function rootOf(keys: SigningKey[], threshold: number): RootDoc {
  const ids = keys.map((k) => k.keyId);
  return {
    version: 1, expires: now + 365 * 86400e3,
    keys: keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })),
    roles: { root: { keyIds: ids, threshold: 1 }, policy: { keyIds: ids, threshold } },
  };
}

const keys = Array.from({ length: 32 }, () => generateSigningKey());
// Payload sized so the whole envelope with 32 signatures sits just under the wire limit.
const payload = new Uint8Array(randomBytes(LIMITS.maxEnvelopeBytes - 32 * 160 - 256));
const bogus = (keyId: string) => ({ keyId, sig: new Uint8Array(randomBytes(64)).map((b, i) => (i === 63 ? b & 0x0f : b)) }); // S < L: passes the shape checks, fails the equation
const honest = (signers: SigningKey[]) => signEnvelope(PAYLOAD_TYPE.policy, payload, signers).signatures;

const scenarios: { name: string; root: RootDoc; sigs: Envelope['signatures'] }[] = [
  { name: '32 bogus signatures under one allowed key id (policy role 1 of 2)', root: rootOf(keys.slice(0, 2), 1), sigs: Array.from({ length: 32 }, () => bogus(keys[0]!.keyId)) },
  { name: '32 bogus signatures under one allowed key id (policy role 2 of 2)', root: rootOf(keys.slice(0, 2), 2), sigs: Array.from({ length: 32 }, () => bogus(keys[0]!.keyId)) },
  { name: '31 bogus then 1 valid signature under one key id (1 of 2)', root: rootOf(keys.slice(0, 2), 1), sigs: [...Array.from({ length: 31 }, () => bogus(keys[0]!.keyId)), ...honest([keys[0]!])] },
  { name: 'one bogus signature under each of 32 allowed key ids (2 of 32)', root: rootOf(keys, 2), sigs: keys.map((k) => bogus(k.keyId)) },
  { name: 'honest: 2 valid signatures (2 of 2)', root: rootOf(keys.slice(0, 2), 2), sigs: honest(keys.slice(0, 2)) },
  { name: 'honest: 3 valid signatures (2 of 3)', root: rootOf(keys.slice(0, 3), 2), sigs: honest(keys.slice(0, 3)) },
];

const rows: Row[] = [];
for (const s of scenarios) {
  const env: Envelope = { payloadType: PAYLOAD_TYPE.policy, payload, signatures: s.sigs };
  const bytes = encodeEnvelope(env);
  const trusted = { root: s.root, digest: digestOf(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(s.root), keys.slice(0, 1))) };
  const role = s.root.roles.policy;
  let outcome = '';
  let checked = 0, baseVerified = 0;
  const now1 = median(Array.from({ length: runs }, () => cpuMs(() => { outcome = verifyPolicy(bytes, { root: trusted }, now).outcome; })));
  const count = median(Array.from({ length: runs }, () => cpuMs(() => { checked = countSignatures(env, role, s.root.keys).checked; })));
  const before = median(Array.from({ length: runs }, () => cpuMs(() => { baseVerified = countEverySignature(env, role, s.root.keys).verified; })));
  rows.push({ scenario: 'signatures', metric: `${s.name}: verifyPolicy CPU per message (${outcome})`, unit: 'ms', value: round(now1, 1) });
  rows.push({ scenario: 'signatures', metric: `${s.name}: signature counting CPU`, unit: 'ms', value: round(count, 1), baseline: { name: 'every signature verified (before)', value: round(before, 1) } });
  rows.push({ scenario: 'signatures', metric: `${s.name}: signatures verified`, unit: 'count', value: checked, baseline: { name: 'every signature verified (before)', value: baseVerified } });
}

console.log(`envelope: ${LIMITS.maxEnvelopeBytes - 32 * 160 - 256} byte payload, ${runs} runs each, median CPU time`);
for (const r of rows) console.log(`${r.metric.padEnd(110)} ${String(r.value).padStart(8)} ${r.unit}${r.baseline ? `   (before: ${r.baseline.value} ${r.unit})` : ''}`);
saveRows(`${out}/sigs.json`, rows);
console.log(`saved ${out}/sigs.json`);
