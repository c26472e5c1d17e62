import type { RawInteractions } from './raw.js';

export interface DedupeCounts {
  /** Records identical to an earlier one in every field (a line repeated in the dump). */
  duplicates: number;
  /** Later records of a (user, item) pair already in the history, with other time, rating or text. */
  repeats: number;
}

/**
 * One interaction per (user, item): a pair seen twice would put the same item
 * in a user's training history and as the held-out answer (leave-one-out) or
 * in both rating splits, so evaluation would reward recall of the input.
 * `histories[u]` are row indices in time order; each keeps the first row of
 * every item, in place. Exact duplicates and repeats are counted apart so the
 * import summary can say which it was.
 */
export function dedupeHistories(histories: number[][], item: ArrayLike<number>, raw: RawInteractions): DedupeCounts {
  const counts: DedupeCounts = { duplicates: 0, repeats: 0 };
  for (let u = 0; u < histories.length; u++) {
    const rows = histories[u];
    if (rows.length < 2) continue;
    const first = new Map<number, number>();
    let w = 0;
    for (const i of rows) {
      const j = first.get(item[i]);
      if (j === undefined) {
        first.set(item[i], i);
        rows[w++] = i;
      } else if (sameRecord(raw, i, j)) counts.duplicates++;
      else counts.repeats++;
    }
    rows.length = w;
  }
  return counts;
}

function sameRecord(t: RawInteractions, a: number, b: number): boolean {
  return t.rating[a] === t.rating[b] && t.time[a] === t.time[b] && t.review[a] === t.review[b] && t.summary[a] === t.summary[b] && t.reviewerName[a] === t.reviewerName[b];
}
