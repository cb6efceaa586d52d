/**
 * The element difference between two versions of one nft set, for incremental applies. A
 * 10k-rule ruleset has ~30,000 elements; hashing all of them on every change cost ~30 ms of
 * JS (more than nft's own work for a one-address change), so sets whose elements are sorted
 * (the host sets are) are compared by one merge pass, and only unsorted ones by hashing.
 * Pure: no I/O.
 */

const strictlySorted = (a: readonly string[]) => {
  for (let i = 1; i < a.length; i++) if (!(a[i - 1]! < a[i]!)) return false;
  return true;
};

/** Elements of `before` missing from `after` (in `before`'s order) and the reverse. */
export function diffElements(before: readonly string[], after: readonly string[]): { removed: string[]; added: string[] } {
  if (before.length === after.length && before.every((x, i) => x === after[i])) return { removed: [], added: [] };
  if (strictlySorted(before) && strictlySorted(after)) {
    const removed: string[] = [], added: string[] = [];
    let i = 0, j = 0;
    while (i < before.length && j < after.length) {
      const x = before[i]!, y = after[j]!;
      if (x === y) { i++; j++; } else if (x < y) { removed.push(x); i++; } else { added.push(y); j++; }
    }
    for (; i < before.length; i++) removed.push(before[i]!);
    for (; j < after.length; j++) added.push(after[j]!);
    return { removed, added };
  }
  const old = new Set(before), now = new Set(after);
  return { removed: [...old].filter((x) => !now.has(x)), added: after.filter((x) => !old.has(x)) };
}
