/**
 * The length-prefix decoder fix (src/mesh/length-prefix.ts): the same frames out of any split
 * of the input, hostile lengths refused as before, and no exception thrown for a chunk that
 * ends on a frame boundary.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { LengthPrefixedDecoder } from '@libp2p/utils';
import { installLengthPrefixFix } from '../../src/mesh/length-prefix.js';

installLengthPrefixFix();

type LengthDecoder = NonNullable<NonNullable<ConstructorParameters<typeof LengthPrefixedDecoder>[0]>['lengthDecoder']>;
/** A 2-byte big-endian length, as Noise reads it. */
const uint16: LengthDecoder = (x) => (x instanceof Uint8Array ? (x[0]! << 8) | x[1]! : x.getUint16(0));

/** Noise's framing: a 2-byte big-endian length. Counts the RangeErrors it throws. */
function noiseDecoder() {
  const counts = { throws: 0 };
  const d = new LengthPrefixedDecoder({
    lengthDecoder: (data) => {
      if (data.length < 2) { counts.throws++; throw new RangeError('Could not decode int16BE'); }
      return uint16(data);
    },
    encodingLength: () => 2,
    maxDataLength: 65535,
  });
  return { d, counts };
}
const frame = (body: Uint8Array) => Uint8Array.from([body.length >> 8, body.length & 255, ...body]);
const drain = (d: LengthPrefixedDecoder, chunk: Uint8Array) => [...d.decode(chunk)].map((b) => Buffer.from(b.subarray()).toString('hex'));

describe('length-prefixed decoding (Noise frames) without an exception per chunk', () => {
  it('decodes the same frames whatever the split, byte by byte included', () => {
    const bodies = Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes(1 + ((i * 37) % 300))));
    const stream = Buffer.concat(bodies.map(frame));
    const want = bodies.map((b) => Buffer.from(b).toString('hex'));
    for (const step of [1, 2, 3, 7, 64, 301, stream.length]) {
      const { d } = noiseDecoder();
      const got: string[] = [];
      for (let i = 0; i < stream.length; i += step) got.push(...drain(d, stream.subarray(i, i + step)));
      expect(got).toEqual(want);
    }
  });
  it('throws no exception for chunks that end on a frame boundary (the usual case)', () => {
    const { d, counts } = noiseDecoder();
    for (let i = 0; i < 200; i++) expect(drain(d, frame(new Uint8Array(randomBytes(50))))).toHaveLength(1);
    expect(counts.throws).toBe(0);
  });
  it('a peer announcing a frame longer than allowed is still refused', () => {
    const d = new LengthPrefixedDecoder({ maxDataLength: 100 });
    expect(() => [...d.decode(Uint8Array.from([0xc8, 0x01, 1, 2, 3]))]).toThrow(/Invalid message length/);
  });
  it('a peer flooding the buffer without ever completing a frame is still cut at the buffer limit', () => {
    const d = new LengthPrefixedDecoder({ maxBufferSize: 1024, maxDataLength: 65535, encodingLength: () => 2, lengthDecoder: uint16 });
    expect(drain(d, Uint8Array.from([0xff, 0xff]))).toEqual([]); // a 65,535-byte frame announced
    expect(() => { for (let i = 0; i < 100; i++) drain(d, new Uint8Array(30)); }).toThrow(/Buffer length limit exceeded/);
  });
  it('an empty chunk decodes nothing', () => {
    expect(drain(noiseDecoder().d, new Uint8Array(0))).toEqual([]);
  });
});
