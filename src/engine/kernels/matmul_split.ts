/**
 * The wasm matmuls on two threads when the native addon is not used: the
 * wasm-custom `BatchMatMul` / `_FusedMatMul` (./BatchMatMul.ts) hand big
 * products to the helper worker (../threads.ts, which schedules the chunks):
 *
 *  - `runSplit`: the product is cut into up to 8 chunks (row ranges of a
 *    single [M, K] operand, or ranges of batch items); the operands (in the
 *    row-major [items, M, K] x [items | 1, K, N] layout the kernel has made)
 *    and the bias are copied into the shared buffer; the calling thread
 *    computes its chunks in place on the wasm heap (XNNPACK, as without the
 *    helper), the worker's rows are copied out of the shared buffer;
 *  - `runSplitK`: Xᵀ·Y cut along K, partial sums added in chunk order.
 */
import { helperFor, publishJob, runChunks, sharedData } from '../threads.js';

/** B operands (per item) larger than this many floats are not split (see runSplit). */
const MAX_B_FLOATS = 320 * 1024;

export interface SplitProduct {
  /** batch items with their own A (and C); 1 = a single [M, K] x [K, N] */
  items: number;
  M: number;
  N: number;
  K: number;
  /** B items: 1 (shared) or `items` */
  bItems: number;
  /** float offsets into the heap: A [items, M, K], B [bItems, K, N], C [items, M, N] */
  a: number;
  b: number;
  c: number;
  /** float offset of a length-N bias, or -1 */
  bias: number;
  /** index into HELPER_ACTIVATIONS (not prelu) */
  act: number;
  alpha: number;
}

/**
 * Runs the product on this thread and the helper. `heap()` returns a current
 * Float32Array over the whole wasm heap (re-read after every `own` call: it
 * may allocate). `own(i0, i1, r0, r1)` computes C for items [i0, i1) and, for
 * a single item, rows [r0, r1), in place. Returns false (nothing done) when
 * the helper is not available or the product is small.
 */
export function runSplit(p: SplitProduct, heap: () => Float32Array, own: (i0: number, i1: number, r0: number, r1: number) => void): boolean {
  // XNNPACK streams the packed B once per few rows of A: with B past the
  // L2 cache the product is bound by memory bandwidth, which a second
  // thread shares (measured: slower than one thread). Those stay here.
  // (Checked before helperFor, which counts a back-off job down.)
  if (p.K * p.N > MAX_B_FLOATS) return false;
  const h = helperFor(p.items * p.M * p.N * p.K, p.M * p.N);
  if (!h) return false;
  // chunks
  let nChunks: number;
  let per: number;
  if (p.items === 1) {
    nChunks = Math.min(8, Math.max(1, Math.floor(p.M / 8)));
    per = Math.ceil(p.M / nChunks);
    nChunks = Math.ceil(p.M / per);
  } else {
    nChunks = Math.min(8, p.items);
    per = Math.ceil(p.items / nChunks);
    nChunks = Math.ceil(p.items / per);
  }
  if (nChunks < 2) return false;
  const aLen = p.items * p.M * p.K;
  const bLen = p.bItems * p.K * p.N;
  const cLen = p.items * p.M * p.N;
  const biasLen = p.bias >= 0 ? p.N : 0;
  const f = sharedData(h, aLen + bLen + cLen + biasLen);
  const tStart = performance.now();
  const aOff = 0;
  const bOff = aLen;
  const cOff = aLen + bLen;
  const biasOff = cOff + cLen;
  {
    const hp = heap();
    f.set(hp.subarray(p.a, p.a + aLen), aOff);
    f.set(hp.subarray(p.b, p.b + bLen), bOff);
    if (biasLen) f.set(hp.subarray(p.bias, p.bias + biasLen), biasOff);
  }
  const id = publishJob(h, {
    nChunks,
    items: p.items,
    M: p.M,
    N: p.N,
    K: p.K,
    per,
    act: p.act,
    hasBias: biasLen ? 1 : 0,
    alpha: p.alpha,
    aOff,
    bOff,
    cOff,
    biasOff,
    bItems: p.bItems,
    mode: 0,
  });
  const range = (c: number): [number, number, number, number] =>
    p.items === 1 ? [0, 1, c * per, Math.min(p.M, (c + 1) * per)] : [c * per, Math.min(p.items, (c + 1) * per), 0, p.M];
  runChunks(h, id, nChunks, tStart, {
    own: (c) => own(...range(c)),
    steal: (c) => own(...range(c)),
    fromWorker: (c) => {
      const [i0, i1, r0, r1] = range(c);
      const s = cOff + (i0 * p.M + r0) * p.N;
      const n = (i1 - i0 - 1) * p.M * p.N + (r1 - r0) * p.N;
      heap().set(f.subarray(s, s + n), p.c + (i0 * p.M + r0) * p.N);
    },
  });
  return true;
}

/** A transposed-A product C [M, N] = Xᵀ · Y with X [K, M] and Y [K, N] (a weight gradient). */
export interface SplitKProduct {
  M: number;
  N: number;
  K: number;
  /** float offsets into the heap: X [K, M], Y [K, N], C [M, N] */
  a: number;
  b: number;
  c: number;
}

/**
 * Xᵀ·Y split over K (rows of both X and Y, contiguous, so the helper gets
 * only row blocks): each chunk's partial product goes to a slot of the
 * shared buffer and the caller adds the slots in chunk order (the result does
 * not depend on which thread computed which chunk). `own(k0, k1, dst)` writes
 * the partial of rows [k0, k1) into `dst` ([M, N]). Used where XNNPACK alone is
 * bound by memory bandwidth (a large Y streamed once per few rows of Xᵀ).
 * Returns false when the helper is not available (nothing done).
 */
export function runSplitK(p: SplitKProduct, heap: () => Float32Array, own: (k0: number, k1: number, dst: Float32Array) => void): boolean {
  const h = helperFor(p.M * p.N * p.K, p.M * p.N);
  if (!h) return false;
  let nChunks = Math.min(8, Math.floor(p.K / 128));
  if (nChunks < 2) return false;
  const per = Math.ceil(p.K / nChunks);
  nChunks = Math.ceil(p.K / per);
  const aLen = p.K * p.M;
  const bLen = p.K * p.N;
  const mn = p.M * p.N;
  const f = sharedData(h, aLen + bLen + nChunks * mn);
  const tStart = performance.now();
  const aOff = 0;
  const bOff = aLen;
  const cOff = aLen + bLen;
  {
    const hp = heap();
    f.set(hp.subarray(p.a, p.a + aLen), aOff);
    f.set(hp.subarray(p.b, p.b + bLen), bOff);
  }
  // alpha and biasOff are not read in mode 1
  const id = publishJob(h, { nChunks, items: 1, M: p.M, N: p.N, K: p.K, per, act: 0, hasBias: 0, aOff, bOff, cOff, bItems: 0, mode: 1 });
  const slot = (c: number) => f.subarray(cOff + c * mn, cOff + (c + 1) * mn);
  const range = (c: number): [number, number] => [c * per, Math.min(p.K, (c + 1) * per)];
  runChunks(h, id, nChunks, tStart, {
    own: (c) => own(...range(c), slot(c)),
    steal: (c) => {
      // the worker may still write its late result into this slot: use a private one
      const mine = new Float32Array(mn);
      own(...range(c), mine);
      stolen.set(c, mine);
    },
    finish: () => {
      // C = Σ_c partial_c, in chunk order
      const out = heap().subarray(p.c, p.c + mn);
      const part = (c: number) => stolen.get(c) ?? slot(c);
      out.set(part(0));
      for (let c = 1; c < nChunks; c++) addInto(out, part(c));
      stolen.clear();
    },
  });
  return true;
}

const stolen = new Map<number, Float32Array>();

function addInto(out: Float32Array, x: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] += x[i];
}
