/** The incremental apply's element difference: the merge path must agree with plain hashing. */
import { describe, expect, it } from 'vitest';
import { diffElements } from '../../src/enforce/element-diff.js';

const reference = (a: string[], b: string[]) => {
  const old = new Set(a), now = new Set(b);
  return { removed: [...old].filter((x) => !now.has(x)), added: b.filter((x) => !old.has(x)) };
};

/** A small seeded generator: the same cases on every run. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
}

describe('element difference for incremental applies', () => {
  it('agrees with hashing on sorted and unsorted element lists of every shape', () => {
    const rnd = lcg(7);
    const el = () => `10.${rnd(4)}.${rnd(8)}.${rnd(8)} . ${rnd(2) ? 'tcp' : 'udp'} . ${1000 + rnd(20)}`;
    for (let k = 0; k < 400; k++) {
      const pool = [...new Set(Array.from({ length: rnd(60) }, el))];
      const a = pool.filter(() => rnd(3) > 0), b = [...pool.filter(() => rnd(3) > 0), ...Array.from({ length: rnd(5) }, el).filter((x) => !pool.includes(x))];
      const sorted = k % 2 === 0;
      const [x, y] = sorted ? [[...new Set(a)].sort(), [...new Set(b)].sort()] : [a, b];
      expect(diffElements(x, y)).toEqual(reference(x, y));
    }
  });

  it('finds nothing between equal lists and everything against an empty one', () => {
    const a = ['1.1.1.1 . tcp . 1', '1.1.1.2 . tcp . 1'];
    expect(diffElements(a, [...a])).toEqual({ removed: [], added: [] });
    expect(diffElements([], a)).toEqual({ removed: [], added: a });
    expect(diffElements(a, [])).toEqual({ removed: a, added: [] });
  });

  it('does not trust a list that only looks sorted: duplicates fall back to hashing', () => {
    expect(diffElements(['a', 'a', 'b'], ['b', 'c'])).toEqual(reference(['a', 'a', 'b'], ['b', 'c']));
    expect(diffElements(['b', 'a'], ['a', 'c'])).toEqual(reference(['b', 'a'], ['a', 'c']));
  });
});
