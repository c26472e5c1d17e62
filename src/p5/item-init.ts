/**
 * Collaborative starting points for P5's item-token embeddings.
 *
 * A T5 that starts from random item rows first learns the popularity of the
 * answers and only later, over many passes, which items follow which. Here
 * each item token starts from a vector whose dot products reproduce the
 * items' co-occurrence in the training prefixes, so "an item bought near
 * the ones in the history" is close to the history's items from the first
 * step. The T5 still learns everything else (attention over the history, the
 * order, the output distribution), and the rows keep training.
 *
 * The vectors: item-item co-occurrence in each user's TRAINING prefix
 * (pairs at most `window` positions apart, weighted 1/distance, so a held-out
 * item never shapes them), turned into positive pointwise mutual information
 * (PPMI), whose leading eigenpairs (a randomized range finder with power
 * iterations, then a Jacobi eigensolve of the projected matrix, on the
 * linear algebra of collaborative indexing) give
 * E = U·√λ over the positive eigenvalues: E·Eᵀ ≈ PPMI (Levy & Goldberg 2014:
 * word2vec-style embeddings are such a factorisation).
 */
import type { Dataset } from '../data/dataset.js';
import { VALID } from '../data/splits.js';
import { applyBlock, jacobiEigen, orthonormalize, type Operator } from '../util/linalg.js';
import { Rng } from '../util/rng.js';
import { DEFAULT_SEED } from '../defaults.js';

/**
 * Where item rows start: T5's random init, the co-occurrence vectors, or
 * those vectors with their last coordinate replaced by the items' standardized
 * log popularity (`withPopularity`).
 */
export const ITEM_INITS = ['random', 'cooccurrence', 'cooccurrence+popularity'] as const;
export type ItemInit = (typeof ITEM_INITS)[number];

export interface CooccurrenceOptions {
  /** Pair items at most this many positions apart (default 3). */
  window?: number;
  /** Range-finder power iterations (default 4). */
  iterations?: number;
  seed?: number;
}

/** numItems × dim row-major item vectors (rows of items never in a training prefix are 0). */
export function cooccurrenceEmbeddings(ds: Dataset, dim: number, opts: CooccurrenceOptions = {}): Float32Array {
  const n = ds.numItems;
  const window = opts.window ?? 3;
  // Symmetric weighted co-occurrence, one map per row.
  const rows: Map<number, number>[] = Array.from({ length: n }, () => new Map());
  for (let u = 0; u < ds.numUsers; u++) {
    const seq = ds.historyBefore(u, VALID); // the training prefix
    for (let a = 0; a < seq.length; a++) {
      for (let b = a + 1; b < Math.min(seq.length, a + 1 + window); b++) {
        const i = seq[a];
        const j = seq[b];
        if (i === j) continue;
        const w = 1 / (b - a);
        rows[i].set(j, (rows[i].get(j) ?? 0) + w);
        rows[j].set(i, (rows[j].get(i) ?? 0) + w);
      }
    }
  }
  const marg = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) for (const v of rows[i].values()) marg[i] += v;
  for (let i = 0; i < n; i++) total += marg[i];
  // PPMI in CSR.
  const ptr = new Int32Array(n + 1);
  const col: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const [j, c] of rows[i]) {
      const pmi = Math.log((c * total) / (marg[i] * marg[j]));
      if (pmi > 0) {
        col.push(j);
        val.push(pmi);
      }
    }
    ptr[i + 1] = col.length;
  }
  // A range finder: Q spans M's leading eigenvectors after a few power steps; B = Qᵀ M Q gives the pairs.
  const op: Operator = { n, ptr, col: Int32Array.from(col), val: Float64Array.from(val), diag: new Float64Array(n) };
  const k = Math.min(n, dim + 8);
  const rng = new Rng(opts.seed ?? DEFAULT_SEED);
  let q = new Float64Array(n * k); // row-major n × k
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  orthonormalize(q, n, k, rng);
  let mq = new Float64Array(n * k);
  for (let it = 0; it < (opts.iterations ?? 4); it++) {
    applyBlock(op, q, mq, k);
    [q, mq] = [mq, q];
    orthonormalize(q, n, k, rng);
  }
  applyBlock(op, q, mq, k);
  const bm = new Float64Array(k * k);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < k; a++) {
      const qa = q[i * k + a];
      if (qa !== 0) for (let b = 0; b < k; b++) bm[a * k + b] += qa * mq[i * k + b];
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) bm[a * k + b] = bm[b * k + a] = (bm[a * k + b] + bm[b * k + a]) / 2;
  const { values, vectors } = jacobiEigen(bm, k);
  const order = Array.from({ length: k }, (_, i) => i).filter((i) => values[i] > 0).sort((a, b) => values[b] - values[a]).slice(0, dim);
  const out = new Float32Array(n * dim);
  order.forEach((e, d) => {
    const s = Math.sqrt(values[e]);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let c = 0; c < k; c++) acc += q[i * k + c] * vectors[c * k + e];
      out[i * dim + d] = acc * s;
    }
  });
  return out;
}

/**
 * Replace the last coordinate of numItems × dim row-major vectors (in place)
 * with each item's log(1 + its count in the training prefixes), standardized
 * and scaled to the root mean square of the first (strongest) coordinate.
 *
 * Why: PMI divides out the items' marginals, so co-occurrence vectors carry
 * no popularity, and P5's output layer has no bias: with the item rows held
 * near their init, the tied output scores h·e_i had no easy direction along
 * which to rank a frequently bought item above a rare one, and the model's
 * top 5 were hardly better than popularity's (docs/p5.md, Musical
 * Instruments). Counted in
 * the training prefixes only, like the vectors, so held-out items do not shape it.
 */
export function withPopularity(ds: Dataset, e: Float32Array, dim: number): Float32Array {
  const n = ds.numItems;
  if (e.length !== n * dim || dim < 2) throw new Error(`withPopularity: ${e.length} values for ${n} items × ${dim} dims`);
  const count = new Float64Array(n);
  for (let u = 0; u < ds.numUsers; u++) for (const i of ds.historyBefore(u, VALID)) count[i]++;
  const lp = Array.from(count, (c) => Math.log1p(c));
  const mean = lp.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(lp.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  let ms = 0;
  for (let j = 0; j < n; j++) ms += e[j * dim] ** 2 / n;
  const rms = Math.sqrt(ms);
  for (let j = 0; j < n; j++) e[j * dim + dim - 1] = sd > 0 ? ((lp[j] - mean) / sd) * rms : 0;
  return e;
}

/**
 * The starting vectors of an item init other than 'random', for rows `width`
 * wide: the first `dims` coordinates (default: all) are the co-occurrence
 * vectors of that rank, the rest 0, and with popularity the last coordinate
 * carries it (`withPopularity`; when dims = width it replaces the weakest
 * co-occurrence coordinate, as before this option).
 *
 * Why fewer than the row's width: a low-rank factorisation smooths the
 * co-occurrence counts, and a small catalogue has few reliable directions.
 * On Musical Instruments (900 items) the vectors alone rank the validation
 * item best at 16 dimensions (HR@10 .1246 against .1057 at 64, seed 0,
 * docs/p5.md); on Beauty (12,101 items) more is better up to 512.
 */
export function itemInitVectors(ds: Dataset, how: Exclude<ItemInit, 'random'>, width: number, opts: { dims?: number; seed?: number; window?: number } = {}): Float32Array {
  const dims = opts.dims ?? width;
  if (!Number.isInteger(dims) || dims < 1 || dims > width) throw new Error(`itemInitVectors: ${dims} co-occurrence dims for rows ${width} wide`);
  const part = cooccurrenceEmbeddings(ds, dims, { seed: opts.seed, window: opts.window });
  let e = part;
  if (dims < width) {
    e = new Float32Array(ds.numItems * width);
    for (let j = 0; j < ds.numItems; j++) e.set(part.subarray(j * dims, (j + 1) * dims), j * width);
  }
  return how === 'cooccurrence+popularity' ? withPopularity(ds, e, width) : e;
}
