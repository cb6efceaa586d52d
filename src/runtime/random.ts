/** Randomness is injected too: seeded in tests and simulations, crypto-backed in production. */
import { randomInt } from 'node:crypto';

export interface Random {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export const systemRandom: Random = {
  next: () => Math.random(),
  int: (n) => (n <= 1 ? 0 : randomInt(n)),
};

/** mulberry32: small, fast, good enough for simulations; never for keys. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}
