/**
 * Small dense/sparse linear algebra on row-major Float64Array blocks, shared
 * by collaborative item indexing (src/data/collaborative.ts) and the P5
 * co-occurrence item init (src/p5/item-init.ts): a symmetric sparse operator
 * with a block product, Cholesky-QR orthonormalization (Gram-Schmidt
 * fallback), Rayleigh-Ritz, subspace iteration and a cyclic Jacobi
 * eigensolver. Everything is deterministic for a given `Rng` seed; the rng
 * is only drawn from when a column must be restarted or a start block seeded.
 */
import type { Rng } from './rng.js';

/** Stop subspace iteration when the wanted Ritz values move less than this. */
const RITZ_TOL = 1e-6;
/** Rayleigh-Ritz (and convergence test) every this many iterations. */
const RR_EVERY = 5;

/** Symmetric sparse operator: y = diag .* x + (off-diagonal CSR) x. */
export interface Operator {
  n: number;
  ptr: Int32Array;
  col: Int32Array;
  val: Float64Array;
  diag: Float64Array;
}

/** Y = Op X for a row-major n x p block (columns in register blocks of four). */
export function applyBlock(op: Operator, x: Float64Array, y: Float64Array, p: number): void {
  const { n, ptr, col, val, diag } = op;
  for (let i = 0; i < n; i++) {
    const o = i * p, d = diag[i], k0 = ptr[i], k1 = ptr[i + 1];
    let j = 0;
    for (; j + 3 < p; j += 4) {
      let s0 = d * x[o + j], s1 = d * x[o + j + 1], s2 = d * x[o + j + 2], s3 = d * x[o + j + 3];
      for (let k = k0; k < k1; k++) {
        const w = val[k], c = col[k] * p + j;
        s0 += w * x[c];
        s1 += w * x[c + 1];
        s2 += w * x[c + 2];
        s3 += w * x[c + 3];
      }
      y[o + j] = s0;
      y[o + j + 1] = s1;
      y[o + j + 2] = s2;
      y[o + j + 3] = s3;
    }
    for (; j < p; j++) {
      let s0 = d * x[o + j];
      for (let k = k0; k < k1; k++) s0 += val[k] * x[col[k] * p + j];
      y[o + j] = s0;
    }
  }
}

/**
 * Orthonormalizes the columns of a row-major n x p block in place: Cholesky QR
 * twice (contiguous, fast), or modified Gram-Schmidt when the Gram matrix is
 * too ill-conditioned for that.
 */
export function orthonormalize(x: Float64Array, n: number, p: number, rng: Rng, passes = 2): void {
  const g = new Float64Array(p * p);
  for (let pass = 0; pass < passes; pass++) {
    g.fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * p;
      for (let r = 0; r < p; r++) {
        const xr = x[o + r];
        if (xr === 0) continue;
        for (let s = r; s < p; s++) g[r * p + s] += xr * x[o + s];
      }
    }
    // In place: upper triangle of g becomes R with g = R^T R.
    for (let j = 0; j < p; j++) {
      let d = g[j * p + j];
      for (let q = 0; q < j; q++) d -= g[q * p + j] * g[q * p + j];
      const scale = g[j * p + j];
      if (!(d > 1e-10 * scale) || !(scale > 0)) return gramSchmidt(x, n, p, rng);
      const rjj = Math.sqrt(d);
      g[j * p + j] = rjj;
      for (let s = j + 1; s < p; s++) {
        let v = g[j * p + s];
        for (let q = 0; q < j; q++) v -= g[q * p + j] * g[q * p + s];
        g[j * p + s] = v / rjj;
      }
    }
    // X <- X R^-1, row by row (forward substitution).
    for (let i = 0; i < n; i++) {
      const o = i * p;
      for (let j = 0; j < p; j++) {
        let v = x[o + j];
        for (let q = 0; q < j; q++) v -= x[o + q] * g[q * p + j];
        x[o + j] = v / g[j * p + j];
      }
    }
  }
}

/** Modified Gram-Schmidt (twice per column); a column in the span of the previous ones restarts at random. */
function gramSchmidt(x: Float64Array, n: number, p: number, rng: Rng): void {
  for (let j = 0; j < p; j++) {
    for (let attempt = 0; ; attempt++) {
      let before = 0;
      for (let i = 0; i < n; i++) before += x[i * p + j] * x[i * p + j];
      for (let pass = 0; pass < 2; pass++) {
        for (let q = 0; q < j; q++) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += x[i * p + j] * x[i * p + q];
          for (let i = 0; i < n; i++) x[i * p + j] -= dot * x[i * p + q];
        }
      }
      let s = 0;
      for (let i = 0; i < n; i++) s += x[i * p + j] * x[i * p + j];
      if (s > 1e-20 * before && s > 0) {
        const inv = 1 / Math.sqrt(s);
        for (let i = 0; i < n; i++) x[i * p + j] *= inv;
        break;
      }
      if (attempt > 5) throw new Error('collaborative index: cannot orthonormalize');
      for (let i = 0; i < n; i++) x[i * p + j] = rng.normal();
    }
  }
}

/**
 * Rayleigh-Ritz: given orthonormal X and Y = Op X, rotates X (and Y) onto the
 * Ritz vectors, ordered by Ritz value descending; returns the Ritz values.
 */
function rayleighRitz(x: Float64Array, y: Float64Array, n: number, p: number): Float64Array {
  const b = new Float64Array(p * p);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    for (let r = 0; r < p; r++) {
      const xr = x[o + r];
      for (let s = r; s < p; s++) b[r * p + s] += xr * y[o + s];
    }
  }
  for (let r = 0; r < p; r++) for (let s = 0; s < r; s++) b[r * p + s] = b[s * p + r]; // X^T Op X is symmetric
  const { values, vectors } = jacobiEigen(b, p);
  const tmp = new Float64Array(p);
  for (const m of [x, y]) {
    for (let i = 0; i < n; i++) {
      const o = i * p;
      for (let s = 0; s < p; s++) {
        let v = 0;
        for (let r = 0; r < p; r++) v += m[o + r] * vectors[r * p + s];
        tmp[s] = v;
      }
      m.set(tmp, o);
    }
  }
  return values;
}

/** The c leading eigenvectors (n x c row-major) by subspace iteration. */
export function subspaceEigvecs(op: Operator, c: number, rng: Rng, maxIter: number): Float64Array {
  const n = op.n;
  // c wanted vectors plus at least 4 guard vectors, rounded up to the mat-vec's block of 4.
  const p = Math.min(n, Math.ceil((c + 4) / 4) * 4);
  let x = new Float64Array(n * p);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  orthonormalize(x, n, p, rng);
  let y = new Float64Array(n * p);
  let prev: Float64Array | null = null;
  for (let it = 1; it <= maxIter; it++) {
    applyBlock(op, x, y, p);
    if (it % RR_EVERY === 0 || it === maxIter) {
      const ritz = rayleighRitz(x, y, n, p);
      let change = Infinity;
      if (prev) {
        change = 0;
        for (let j = 0; j < c; j++) change = Math.max(change, Math.abs(ritz[j] - prev[j]));
      }
      prev = ritz;
      if (change < RITZ_TOL || it === maxIter) break; // x holds the Ritz vectors
    }
    const t = x;
    x = y;
    y = t;
    // One Cholesky-QR pass keeps the block orthonormal to working precision
    // between Rayleigh-Ritz steps; two before each of them.
    orthonormalize(x, n, p, rng, (it + 1) % RR_EVERY === 0 || it + 1 === maxIter ? 2 : 1);
  }
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) out[i * c + j] = x[i * p + j];
  return out;
}

/** The c leading eigenvectors (n x c row-major) of a small operator, densely. */
export function denseEigvecs(op: Operator, c: number): Float64Array {
  const n = op.n;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    a[i * n + i] = op.diag[i];
    for (let k = op.ptr[i]; k < op.ptr[i + 1]; k++) a[i * n + op.col[k]] = op.val[k];
  }
  const { vectors } = jacobiEigen(a, n);
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) out[i * c + j] = vectors[i * n + j];
  return out;
}

/**
 * Cyclic Jacobi for a symmetric n x n matrix (row-major, destroyed). Returns
 * eigenvalues descending and the matching eigenvectors as columns.
 */
export function jacobiEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let pI = 0; pI < n; pI++) {
      for (let q = pI + 1; q < n; q++) {
        const apq = a[pI * n + q];
        if (apq === 0) continue;
        const app = a[pI * n + pI], aqq = a[q * n + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1), sn = t * cs;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + pI], akq = a[k * n + q];
          a[k * n + pI] = cs * akp - sn * akq;
          a[k * n + q] = sn * akp + cs * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[pI * n + k], aqk = a[q * n + k];
          a[pI * n + k] = cs * apk - sn * aqk;
          a[q * n + k] = sn * apk + cs * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + pI], vkq = v[k * n + q];
          v[k * n + pI] = cs * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + cs * vkq;
        }
      }
    }
  }
  const idx = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i] || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let s = 0; s < n; s++) {
    const src = idx[s];
    values[s] = a[src * n + src];
    // Fix the sign (largest-magnitude entry positive) so results do not depend on rotation order.
    let big = 0;
    for (let k = 0; k < n; k++) if (Math.abs(v[k * n + src]) > Math.abs(big)) big = v[k * n + src];
    const sgn = big < 0 ? -1 : 1;
    for (let k = 0; k < n; k++) vectors[k * n + s] = sgn * v[k * n + src];
  }
  return { values, vectors };
}
