/**
 * Hard limits on everything decoded from a peer or a file. Every byte from the network is
 * adversarial input: these bound memory and CPU before any signature is checked.
 * Each limit has a test in test/trust/limits.test.ts that exceeds it.
 */
export const LIMITS = {
  /** Whole envelope on the wire (protobuf) — a 10,000-rule policy is ~0.5 MB. */
  maxEnvelopeBytes: 4 * 1024 * 1024,
  /** Whole envelope as JSON on disk (base64 inflates by 4/3). */
  maxEnvelopeJsonBytes: 6 * 1024 * 1024,
  maxSignatures: 32,
  maxPayloadTypeLength: 128,
  maxKeyIdLength: 64,
  maxSignatureBytes: 64,
  maxRootKeys: 64,
  maxNodes: 10_000,
  maxRules: 20_000,
  maxExceptions: 1_000,
  maxAddressesPerNode: 32,
  maxRolesPerNode: 32,
  maxSelectorsPerRule: 64,
  maxPortRangesPerRule: 64,
  maxStringLength: 256,
  maxReasonLength: 1024,
} as const;
