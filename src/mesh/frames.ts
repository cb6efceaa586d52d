/**
 * Length-prefixed frames for /picket/sync with a limit per message, checked before buffering.
 * Each step of an exchange wraps the stream with a reader whose buffer is bounded by the
 * message it expects next (a Hello: 1 KiB), so a peer can never make a Hello-sized read
 * hold a Push-sized buffer; the length prefix is checked before the body is waited for.
 * Failures are classified as the strikes they cost the peer (oversize, framing, stall).
 */
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';

export type FrameFault = 'oversize' | 'framing' | 'stall' | 'closed';

export class FrameError extends Error {
  override readonly name = 'FrameError';
  readonly code = 'ERR_SYNC_FRAME';
  constructor(message: string, readonly fault: FrameFault) {
    super(message);
  }
}

/** Bytes of the varint that encodes `n`. */
const varintBytes = (n: number): number => Math.max(1, Math.ceil(Math.log2(n + 1) / 7));

function classify(e: unknown, signal: AbortSignal): FrameError {
  if (e instanceof FrameError) return e;
  const err = e as Error;
  if (signal.aborted) return new FrameError('peer stalled (timed out)', 'stall');
  switch (err?.name) {
    case 'InvalidDataLengthError':
    case 'InvalidDataLengthLengthError':
    case 'StreamBufferError':
      return new FrameError(`oversize frame: ${err.message}`, 'oversize');
    case 'InvalidMessageLengthError':
      return new FrameError(`broken frame: ${err.message}`, 'framing');
    // A stream that ends, even mid-frame, cost this node nothing beyond what the limits allow,
    // and honest peers' streams end that way when a connection closes (duplicate dials, trims):
    // not a strike. A peer that ends a stream instead of delivering a claimed body is struck for the claim.
    default:
      return new FrameError(err?.message ?? String(e), 'closed');
  }
}

/**
 * One step of an exchange: optionally write our frame, then optionally read theirs, of at
 * most `readLimit` bytes. Whatever arrives while we write counts against the same limit.
 */
export async function step(stream: Stream, signal: AbortSignal, out: Uint8Array | undefined, readLimit: number): Promise<Uint8Array | undefined> {
  // Nothing more expected: a few stray bytes (a close) are tolerated, a body is not.
  const buffer = readLimit === 0 ? 64 : readLimit + varintBytes(readLimit);
  const lp = lpStream(stream, { maxDataLength: readLimit, maxLengthLength: varintBytes(readLimit), maxBufferSize: buffer });
  try {
    if (out) await lp.write(out, { signal });
    if (readLimit === 0) return undefined;
    const b = await lp.read({ signal });
    return b.subarray();
  } catch (e) {
    throw classify(e, signal);
  } finally {
    try { lp.unwrap(); } catch { /* already gone */ }
  }
}
