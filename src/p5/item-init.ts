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
 * iterations, then a Jacobi eigensolve of the projected matrix) give
 * E = U·√λ over the positive eigenvalues: E·Eᵀ ≈ PPMI (Levy & Goldberg 2014:
 * word2vec-style embeddings are such a factorisation).
 */
import type { Dataset } from '../data/dataset.js';
import { TRAIN } from '../data/splits.js';
import { Rng } from '../util/rng.js';

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
  const x = ds.interactions;
  // Symmetric weighted co-occurrence, one map per row.
  const rows: Map<number, number>[] = Array.from({ length: n }, () => new Map());
  for (let u = 0; u < ds.numUsers; u++) {
    const s = ds.userStart[u];
    let t = 0;
    while (t < ds.userLength[u] && x.seqSplit[s + t] === TRAIN) t++;
    for (let a = 0; a < t; a++) {
      for (let b = a + 1; b < Math.min(t, a + 1 + window); b++) {
        const i = x.item[s + a];
        const j = x.item[s + b];
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
  const colA = Int32Array.from(col);
  const valA = Float64Array.from(val);
  const k = Math.min(n, dim + 8);
  const rng = new Rng(opts.seed ?? 2022);
  // Q: n × k, column-major for cheap column operations.
  let q: Float64Array<ArrayBuffer> = new Float64Array(n * k);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  const multiply = (src: Float64Array): Float64Array<ArrayBuffer> => {
    const out = new Float64Array(n * k);
    for (let c = 0; c < k; c++) {
      const off = c * n;
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let p = ptr[i]; p < ptr[i + 1]; p++) acc += valA[p] * src[off + colA[p]];
        out[off + i] = acc;
      }
    }
    return out;
  };
  orthonormalize(q, n, k);
  for (let it = 0; it < (opts.iterations ?? 4); it++) {
    q = multiply(q);
    orthonormalize(q, n, k);
  }
  // B = Qᵀ M Q (k × k, symmetric), eigendecomposed.
  const mq = multiply(q);
  const bm = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let b = a; b < k; b++) {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += q[a * n + i] * mq[b * n + i];
      bm[a * k + b] = acc;
      bm[b * k + a] = acc;
    }
  }
  const { values, vectors } = jacobiEigen(bm, k);
  const order = Array.from({ length: k }, (_, i) => i).filter((i) => values[i] > 0).sort((a, b) => values[b] - values[a]).slice(0, dim);
  const out = new Float32Array(n * dim);
  order.forEach((e, d) => {
    const s = Math.sqrt(values[e]);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let c = 0; c < k; c++) acc += q[c * n + i] * vectors[c * k + e];
      out[i * dim + d] = acc * s;
    }
  });
  return out;
}

/** Modified Gram-Schmidt on the k columns (column-major n × k), in place; a dependent column becomes 0. */
function orthonormalize(q: Float64Array, n: number, k: number): void {
  for (let c = 0; c < k; c++) {
    const a = c * n;
    for (let p = 0; p < c; p++) {
      const b = p * n;
      let dot = 0;
      for (let i = 0; i < n; i++) dot += q[a + i] * q[b + i];
      for (let i = 0; i < n; i++) q[a + i] -= dot * q[b + i];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += q[a + i] * q[a + i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) q[a + i] = norm > 1e-12 ? q[a + i] / norm : 0;
  }
}

/** Eigenpairs of a symmetric k × k matrix (cyclic Jacobi): eigenvector e is column e of `vectors` (row-major k × k). */
export function jacobiEigen(m: Float64Array, k: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(k * k);
  for (let i = 0; i < k; i++) v[i * k + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let r = p + 1; r < k; r++) off += a[p * k + r] ** 2;
    if (off < 1e-20) break;
    for (let p = 0; p < k; p++) {
      for (let r = p + 1; r < k; r++) {
        const apr = a[p * k + r];
        if (Math.abs(apr) < 1e-300) continue;
        const theta = (a[r * k + r] - a[p * k + p]) / (2 * apr);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let i = 0; i < k; i++) {
          const aip = a[i * k + p];
          const air = a[i * k + r];
          a[i * k + p] = c * aip - s * air;
          a[i * k + r] = s * aip + c * air;
        }
        for (let i = 0; i < k; i++) {
          const api = a[p * k + i];
          const ari = a[r * k + i];
          a[p * k + i] = c * api - s * ari;
          a[r * k + i] = s * api + c * ari;
        }
        for (let i = 0; i < k; i++) {
          const vip = v[i * k + p];
          const vir = v[i * k + r];
          v[i * k + p] = c * vip - s * vir;
          v[i * k + r] = s * vip + c * vir;
        }
      }
    }
  }
  const values = new Float64Array(k);
  for (let i = 0; i < k; i++) values[i] = a[i * k + i];
  return { values, vectors: v };
}
