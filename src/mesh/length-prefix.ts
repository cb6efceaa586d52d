/**
 * One hot path of libp2p's stream stack, made cheap. `LengthPrefixedDecoder` (@libp2p/utils,
 * used by Noise for every encrypted frame) reads frame lengths in a loop until the length
 * decoder throws a RangeError for lack of bytes — so every received chunk that ends on a frame
 * boundary, the usual case, built and threw an Error with a stack trace. That throw was the
 * largest single item in an idle fleet's CPU profile (30 agents in one process: 441 ms of
 * 4.4 CPU s in a status round, against 184 ms of actual decryption).
 *
 * installLengthPrefixFix() wraps each decoder's length decoder once: an empty buffer answers
 * length 0, which the loop already reads as "not enough bytes" (a frame needs at least the
 * prefix), so it stops exactly where the throw stopped it. Any other input, a partial prefix
 * included, goes to the original decoder unchanged.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils';

type LengthDecoder = (data: { byteLength: number }) => number;
interface Decoder {
  lengthDecoder: LengthDecoder;
  decode(buf: unknown): Generator<unknown>;
}

const WRAPPED = Symbol('picket.length-prefix');
let installed = false;

export function installLengthPrefixFix(): void {
  if (installed) return;
  installed = true;
  const proto = LengthPrefixedDecoder.prototype as unknown as Decoder;
  const decode = proto.decode;
  proto.decode = function (this: Decoder & { [WRAPPED]?: true }, buf: unknown) {
    if (!this[WRAPPED]) {
      const inner = this.lengthDecoder;
      this.lengthDecoder = (data) => (data.byteLength === 0 ? 0 : inner(data));
      this[WRAPPED] = true;
    }
    return decode.call(this, buf);
  };
}
