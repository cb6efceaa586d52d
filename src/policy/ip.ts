/**
 * IPv4/IPv6 addresses and prefixes as bigints: enough to check host bits, test containment
 * and print the canonical form nft expects. No I/O, no dependencies.
 */
export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  addr: bigint;
  len: number;
}

function parseV4(text: string): bigint | undefined {
  // One pass over the characters, a Number, then one BigInt: the agent parses every listed
  // address on each accept (decode, compile, the blocked set), so per-octet regexes and BigInt
  // shifts showed in profiles. Four decimal octets 0-255, no leading zeros, nothing else.
  let v = 0, octet = 0, digits = 0, dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57 || (digits === 1 && octet === 0)) return undefined;
    octet = octet * 10 + (c - 48);
    if (++digits > 3 || octet > 255) return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return BigInt(v * 256 + octet);
}

function parseV6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return undefined;
  let tail: bigint | undefined;
  let body = text;
  // An embedded IPv4 tail (::ffff:10.0.0.1) counts as the last two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tail = parseV4(text.slice(lastColon + 1));
    if (tail === undefined) return undefined;
    body = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const group = (s: string) => (s === '' ? [] : s.split(':'));
  const head = group(halves[0] ?? '');
  const rest = halves.length === 2 ? group(halves[1] ?? '') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail !== undefined) v = (v & ~0xffffffffn) | tail;
  return v;
}

export function parseIp(text: string): { family: Family; addr: bigint } | undefined {
  const v4 = parseV4(text);
  if (v4 !== undefined) return { family: 4, addr: v4 };
  const v6 = text.includes(':') ? parseV6(text) : undefined;
  if (v6 !== undefined) return { family: 6, addr: v6 };
  return undefined;
}

export const bits = (f: Family): number => (f === 4 ? 32 : 128);

function mask(f: Family, len: number): bigint {
  const total = BigInt(bits(f));
  return ((1n << total) - 1n) ^ ((1n << (total - BigInt(len))) - 1n);
}

export type PrefixResult = { ok: true; prefix: Prefix } | { ok: false; reason: string };

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a host prefix). Host bits must be zero. */
export function parsePrefix(text: string): PrefixResult {
  const [a, l, extra] = text.split('/');
  if (extra !== undefined || a === undefined) return { ok: false, reason: `${text} is not an address or CIDR` };
  const ip = parseIp(a);
  if (!ip) return { ok: false, reason: `${text} is not an address or CIDR` };
  let len = bits(ip.family);
  if (l !== undefined) {
    if (!/^\d{1,3}$/.test(l) || Number(l) > bits(ip.family)) return { ok: false, reason: `${text} has an invalid prefix length` };
    len = Number(l);
  }
  if ((ip.addr & ~mask(ip.family, len)) !== 0n) {
    return { ok: false, reason: `${text} has host bits set (did you mean ${formatPrefix({ family: ip.family, addr: ip.addr & mask(ip.family, len), len })}?)` };
  }
  return { ok: true, prefix: { family: ip.family, addr: ip.addr, len } };
}

export function formatIp(family: Family, addr: bigint): string {
  if (family === 4) {
    // One Number (exact below 2^32), not four BigInt shifts: every enforce formats the whole mesh set.
    const n = Number(addr);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function formatPrefix(p: Prefix): string {
  const a = formatIp(p.family, p.addr);
  return p.len === bits(p.family) ? a : `${a}/${p.len}`;
}

export function contains(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.len <= inner.len && (inner.addr & mask(outer.family, outer.len)) === outer.addr;
}

export function containsIp(p: Prefix, family: Family, addr: bigint): boolean {
  return p.family === family && (addr & mask(family, p.len)) === p.addr;
}

export function comparePrefix(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.addr !== b.addr) return a.addr < b.addr ? -1 : 1;
  return a.len - b.len;
}

/**
 * Sorts and removes prefixes covered by another: nft interval sets refuse overlaps. Sorted
 * by address then length, the kept prefixes are disjoint and ascending, so a prefix is
 * covered exactly when the last kept one contains it: O(n log n) for a 10,000-node mesh set.
 */
export function normalizePrefixes(list: Prefix[]): Prefix[] {
  const sorted = [...list].sort(comparePrefix);
  const out: Prefix[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (!last || !contains(last, p)) out.push(p);
  }
  return out;
}
