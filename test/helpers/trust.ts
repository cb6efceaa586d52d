/** Tiny builders for trust tests: keys, roots, policies, signed envelopes. */
import { generateSigningKey, type SigningKey } from '../../src/trust/keys.js';
import { encodeRoot, type RootDoc } from '../../src/trust/root.js';
import { digestOf, PAYLOAD_TYPE, signEnvelope, type Envelope } from '../../src/trust/envelope.js';
import { encodePolicy, type Policy } from '../../src/policy/model.js';
import type { TrustedRoot } from '../../src/trust/verify.js';

export const NOW = Date.parse('2026-11-26T12:00:00Z');
export const DAY = 24 * 3600 * 1000;

// Deterministic-looking but valid base58 PeerIds (format only; no key behind them).
export const PEER = (i: number) => `12D3KooW${'A'.repeat(40)}${String.fromCharCode(65 + (i % 26))}${'b'.repeat(3)}`;

export function keys(n: number): SigningKey[] {
  return Array.from({ length: n }, () => generateSigningKey());
}

export function rootDoc(rootKeys: SigningKey[], rootThreshold: number, policyKeys: SigningKey[], policyThreshold: number, version = 1, expires = NOW + 365 * DAY): RootDoc {
  const all = new Map([...rootKeys, ...policyKeys].map((k) => [k.keyId, { keyId: k.keyId, publicKey: k.publicKey }]));
  return {
    version,
    expires,
    keys: [...all.values()],
    roles: {
      root: { keyIds: rootKeys.map((k) => k.keyId), threshold: rootThreshold },
      policy: { keyIds: policyKeys.map((k) => k.keyId), threshold: policyThreshold },
    },
  };
}

export function signRoot(doc: RootDoc, signers: SigningKey[]): Envelope {
  return signEnvelope(PAYLOAD_TYPE.root, encodeRoot(doc), signers);
}

export function trusted(doc: RootDoc, signers: SigningKey[]): TrustedRoot {
  return { root: doc, digest: digestOf(signRoot(doc, signers)) };
}

export function policy(version: number, overrides: Partial<Policy> = {}): Policy {
  return {
    meshId: 'prod',
    version,
    issuedAt: NOW - DAY,
    expires: NOW + 30 * DAY,
    nodes: [
      { name: 'web-1', peerId: PEER(1), addresses: ['10.0.1.5', '2001:db8::5'], roles: ['web'] },
      { name: 'db-1', peerId: PEER(2), addresses: ['10.0.2.7'], roles: ['db'] },
    ],
    rules: [
      { name: 'https', to: ['role:web'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] },
      { name: 'app-db', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] },
    ],
    exceptions: [],
    settings: { onExpiry: 'keep' },
    ...overrides,
  };
}

export function signPolicy(p: Policy, signers: SigningKey[]): Envelope {
  return signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(p), signers);
}
