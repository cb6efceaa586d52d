/**
 * Peer-provided text: validated where it is decoded, escaped where it is printed. A
 * terminal, a webhook receiver and a log viewer are all interpreters: an ESC, CR, backspace,
 * C1 control (0x9b is a one-byte CSI) or bidi override in a peer's string can rewrite what
 * an operator sees (issue 13: `status --mesh` rows and summary line spoofed by a peer).
 */

/** C0 and C1 controls, DEL, and Unicode format characters (bidi overrides, zero-width), line/paragraph separators. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const UNSAFE_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** True when `s` holds nothing a terminal would interpret and is at most `max` characters. */
export function isPrintable(s: string, max = 256): boolean {
  return s.length <= max && !UNSAFE.test(s);
}

const hex = (c: string) => [...c].map((ch) => {
  const cp = ch.codePointAt(0)!;
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}).join('');

/** `s` with every unsafe character shown as a visible escape (\x1b, \u{202e}); other text unchanged. */
export function escapeText(s: string): string {
  return s.replace(UNSAFE_ALL, hex);
}

/**
 * The same for every string inside a JSON-like value (alert details, API bodies, log
 * fields). Only arrays and plain objects are walked; anything else (an Error, a Buffer) is
 * returned as it is, for its own serializer.
 */
export function escapeDeep<T>(v: T, depth = 0): T {
  if (typeof v === 'string') return escapeText(v) as T;
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x: unknown) => escapeDeep(x, depth + 1)) as T;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [escapeText(k), escapeDeep(x, depth + 1)])) as T;
}
