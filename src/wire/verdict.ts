/**
 * One result shape for every decoder and verifier of peer and file input: a tagged union on
 * `outcome`, with a `reason` whenever it is not a success. Decoders answer `decoded` or a
 * `DecodeFailure`; verifiers (trust/verify.ts) answer `accepted` or a Rejection with the same
 * two fields, so callers, logs and metrics switch on one field. `ok` stays on decoder results
 * as shorthand for `outcome === 'decoded'`.
 */
export type DecodeFailure = { ok: false; outcome: 'malformed' | 'too-large'; reason: string };

/** A decoder's answer: the decoded fields of T, tagged, or why not. */
export type Decoded<T> = ({ ok: true; outcome: 'decoded' } & T) | DecodeFailure;

export const decoded = <T extends object>(fields: T): { ok: true; outcome: 'decoded' } & T => ({ ok: true, outcome: 'decoded', ...fields });
export const malformed = (reason: string): DecodeFailure => ({ ok: false, outcome: 'malformed', reason });
export const tooLarge = (reason: string): DecodeFailure => ({ ok: false, outcome: 'too-large', reason });
