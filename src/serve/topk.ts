/**
 * Top-k by partial selection: one pass over the scores with a size-k min-heap
 * (O(n log k)), never a full sort of the catalogue. Ties go to the lower
 * position, so results are deterministic; NaN scores and excluded positions
 * are skipped.
 */
export interface TopK {
  /** Positions into `scores`, best first. */
  index: Int32Array;
  score: Float32Array;
}

/** `a` ranks below `b`: lower score, or equal score and higher position. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

/**
 * The k best positions of `scores`. `skip(i)` (optional) excludes a position,
 * e.g. an item the user already has.
 */
export function topK(scores: ArrayLike<number>, k: number, skip?: (i: number) => boolean): TopK {
  const cap = Math.max(0, Math.min(k, scores.length));
  const hs = new Float64Array(cap);
  const hi = new Int32Array(cap);
  let n = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s !== s || (skip && skip(i))) continue; // NaN or excluded
    if (n < cap) {
      // Sift up: the heap root is the worst kept entry.
      let c = n++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!worse(s, i, hs[p], hi[p])) break;
        hs[c] = hs[p];
        hi[c] = hi[p];
        c = p;
      }
      hs[c] = s;
      hi[c] = i;
    } else if (cap > 0 && worse(hs[0], hi[0], s, i)) {
      // Replace the root and sift down.
      let c = 0;
      while (true) {
        const l = 2 * c + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && worse(hs[r], hi[r], hs[l], hi[l]) ? r : l;
        if (!worse(hs[m], hi[m], s, i)) break;
        hs[c] = hs[m];
        hi[c] = hi[m];
        c = m;
      }
      hs[c] = s;
      hi[c] = i;
    }
  }
  // Heap → best-first order (n ≤ 100, so sorting the kept entries is cheap).
  const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => (worse(hs[a], hi[a], hs[b], hi[b]) ? 1 : worse(hs[b], hi[b], hs[a], hi[a]) ? -1 : 0));
  return { index: Int32Array.from(order, (j) => hi[j]), score: Float32Array.from(order, (j) => hs[j]) };
}
