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
  /** A root key's label ("alice@ops"): printed to operators, so short and plain (trust/keys.ts keyLabelProblem). */
  maxKeyLabelLength: 64,
  maxNodes: 10_000,
  maxRules: 20_000,
  maxExceptions: 1_000,
  maxAddressesPerNode: 32,
  maxRolesPerNode: 32,
  maxSelectorsPerRule: 64,
  maxPortRangesPerRule: 64,
  maxStringLength: 256,
  maxReasonLength: 1024,
  /**
   * Every instant a document or a peer states (unix ms) lies in years 2000–9999: policy
   * issuedAt/expires, exception expiries, root expiry, status and announcement times. Past
   * year 275760 Date cannot even print a time (toISOString throws), and no signer or clock
   * that means well says anything outside these years.
   */
  minTimeMs: 946_684_800_000, // 2000-01-01T00:00:00.000Z
  maxTimeMs: 253_402_300_799_999, // 9999-12-31T23:59:59.999Z
  /**
   * What a policy may compile to on its largest node (src/policy/budget.ts): nft set
   * elements and compiled rules. Checked before a policy is accepted, so a small signed
   * document cannot expand to millions of (host × port) elements. Sized for a 10,000-node
   * fleet: its mesh set (2 addresses a node) plus rules from fleet-wide roles on a few ports
   * is ~60k elements (measured). Half a million elements take ~3 s to lower and ~12 MB of nft script.
   * A constant, not a setting: every node must reach the same verdict on the same bytes, or
   * honest peers forwarding a policy would be penalised by nodes with a smaller budget.
   */
  maxCompiledElements: 500_000,
  maxCompiledRules: 200_000,
} as const;

/** True for a whole number of unix ms within [minTimeMs, maxTimeMs]. */
export function isBoundedTime(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= LIMITS.minTimeMs && ms <= LIMITS.maxTimeMs;
}

/** Why an instant is refused, or undefined: "1999-12-31T00:00:00.000Z is outside years 2000–9999". */
export function timeProblem(ms: number): string | undefined {
  if (isBoundedTime(ms)) return undefined;
  const shown = Number.isSafeInteger(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
  return `${shown} is outside years 2000–9999`;
}
