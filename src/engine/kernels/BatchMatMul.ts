/**
 * Replacement wasm `BatchMatMul` and `_FusedMatMul`.
 *
 * The stock C++ kernel (tfjs-backend-wasm 4.22, batch_mat_mul_impl.cc) only
 * uses XNNPACK's fully-connected GEMM when neither operand is transposed and
 * both batch sizes are 1; everything else (every backward matmul, attention,
 * a tied output layer) runs a scalar triple loop at ~1-3 GFLOPS.
 *
 * This kernel always feeds the fast path:
 *  - a transposed operand is first transposed explicitly (wasm Transpose
 *    kernel) into the row-major [batch, M, K] / [batch, K, N] layout;
 *  - if `b` has a single batch item, all of `a`'s batch items are one GEMM
 *    ([aBatch*M, K] x [K, N]);
 *  - otherwise every output batch item is one XNNPACK call on heap views
 *    (tensors registered at an offset into the operands, owning no memory),
 *    with full numpy-style broadcasting of the batch dims.
 * Very small per-item products fall back to the stock kernel, whose loop has
 * no per-call overhead.
 *
 * `_FusedMatMul` uses the same path and lets the C++ epilogue add the bias and
 * apply the activation when the bias is a rank-1 vector of length N (what
 * XNNPACK supports); any other bias / prelu goes through the wasm Add and
 * activation kernels afterwards.
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';
import {
  asWasm,
  callKernel,
  makeView,
  releaseView,
  shapeBytes,
  transposeLast2,
  type WasmBackendLike,
} from './wasm_util.js';
import { runSplit, runSplitK } from './matmul_split.js';
import { broadcastIndex, dims, type Dims } from './matmul_dims.js';

/** Below this many multiply-adds per batch item the stock loop is used. */
export const SMALL_ITEM_MACS = 16384;

type FusedFn = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  activation: number,
  biasId: number,
  preluId: number,
  leakyreluAlpha: number,
  outId: number,
) => void;

const fusedFns = new WeakMap<object, FusedFn>();

function fusedFn(backend: WasmBackendLike): FusedFn {
  let fn = fusedFns.get(backend);
  if (!fn) {
    fn = backend.wasm.cwrap('_FusedMatMul', null, [
      'number', 'array', 'number', 'number', 'array', 'number',
      'number', 'number', 'number', 'number', 'number', 'number', 'number',
    ]) as unknown as FusedFn;
    fusedFns.set(backend, fn);
  }
  return fn;
}

/** Must match FusableActivation in tfjs-backend-wasm (cc/fusable_activations.h). */
const ACTIVATION_CODE: Record<string, number> = {
  linear: 0,
  relu: 1,
  relu6: 2,
  prelu: 3,
  leakyrelu: 4,
  sigmoid: 5,
  elu: 6,
};

/**
 * Which (K, N) each `b` dataId was last used with on the direct (cached
 * XNNPACK operator) path. XNNPACK operators are cached in C++ by tensor id
 * only, so a reshaped alias of the same data with another (K, N) must not hit
 * that cache; such calls use a fresh view id instead.
 */
const directShapes = new WeakMap<object, string>();

interface Epilogue {
  /** rank-1 bias of length N, fused into the C++ call (0 = none) */
  biasId: number;
  /** the same bias tensor (for the helper thread), or null */
  bias: TensorInfo | null;
  activation: number;
  leakyreluAlpha: number;
}

const NO_EPILOGUE: Epilogue = { biasId: 0, bias: null, activation: 0, leakyreluAlpha: 0 };

/**
 * out = a @ b (+ fused epilogue), written into a new [outBatchShape, M, N]
 * float32 tensor. Both operands must be float32.
 */
function fastMatMul(
  tf: Tf,
  backend: WasmBackendLike,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  d: Dims,
  epi: Epilogue,
): TensorInfo {
  const { M, K, N, outBatch, aBatch, bBatch } = d;
  const out = backend.makeOutput([...d.outBatchShape, M, N], 'float32');
  if (outBatch * M * N === 0) return out;
  if (K === 0) {
    (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
    return out;
  }
  const run = fusedFn(backend);
  const temps: TensorInfo[] = [];
  const views: TensorInfo[] = [];
  try {
    if (transposeA && !transposeB && outBatch === 1 && aBatch === 1 && bBatch === 1 && epi.biasId === 0 && epi.activation === 0 && K >= 1024) {
      // a weight gradient Xᵀ·Y: split over K on the helper thread (row blocks of both)
      const off = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset >>> 2;
      const heapF = () => new Float32Array(backend.wasm.HEAPU8.buffer);
      const split = runSplitK({ M, N, K, a: off(a), b: off(b), c: off(out) }, heapF, (k0, k1, dst) => {
        const kc = k1 - k0;
        const xv = makeView(backend, a, k0 * M, [1, kc, M]);
        const yv = makeView(backend, b, k0 * N, [1, kc, N]);
        let xt: TensorInfo | null = null;
        let part: TensorInfo | null = null;
        try {
          xt = transposeLast2(tf, backend, xv, 1, kc, M);
          part = backend.makeOutput([M, N], 'float32');
          const id = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).id;
          run(id(xt), shapeBytes([1, M, kc]), 3, id(yv), shapeBytes([1, kc, N]), 3, false, false, 0, 0, 0, 0, id(part));
          dst.set(new Float32Array(backend.wasm.HEAPU8.buffer, off(part) * 4, M * N));
        } finally {
          if (part) backend.disposeData(part.dataId);
          if (xt) backend.disposeData(xt.dataId);
          releaseView(backend, yv);
          releaseView(backend, xv);
        }
      });
      if (split) return out;
    }
    let aN = a;
    if (transposeA) {
      aN = transposeLast2(tf, backend, a, aBatch, K, M);
      temps.push(aN);
    }
    let bN = b;
    if (transposeB) {
      bN = transposeLast2(tf, backend, b, bBatch, N, K);
      temps.push(bN);
    }
    const outId = backend.dataIdMap.get(out.dataId).id;
    const bShape = shapeBytes([1, K, N]);
    const idOf = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).id;
    const floatOff = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset >>> 2;
    const heapF = () => new Float32Array(backend.wasm.HEAPU8.buffer);
    const splitBase = {
      N, K,
      a: floatOff(aN), b: floatOff(bN), c: floatOff(out),
      bias: epi.bias ? floatOff(epi.bias) : -1,
      act: epi.activation, alpha: epi.leakyreluAlpha,
    };
    if (bBatch === 1) {
      // One GEMM over all of a's rows: out [aBatch*M, N] = a [aBatch*M, K] @ b [K, N].
      let bId: number;
      const key = `${K},${N}`;
      const seen = directShapes.get(bN.dataId);
      if (bN === b && (seen === undefined || seen === key)) {
        directShapes.set(bN.dataId, key);
        bId = backend.dataIdMap.get(bN.dataId).id;
      } else {
        const v = makeView(backend, bN, 0, [1, K, N]);
        views.push(v);
        bId = backend.dataIdMap.get(v.dataId).id;
      }
      const rows = aBatch * M;
      const split = runSplit({ ...splitBase, items: 1, M: rows, bItems: 1 }, heapF, (_i0, _i1, r0, r1) => {
        const av = makeView(backend, aN, r0 * K, [1, r1 - r0, K]);
        views.push(av);
        const ov = makeView(backend, out, r0 * N, [1, r1 - r0, N]);
        views.push(ov);
        run(idOf(av), shapeBytes([1, r1 - r0, K]), 3, bId, bShape, 3, false, false,
          epi.activation, epi.biasId, 0, epi.leakyreluAlpha, idOf(ov));
      });
      if (split) return out;
      const aId = backend.dataIdMap.get(aN.dataId).id;
      run(aId, shapeBytes([1, rows, K]), 3, bId, bShape, 3, false, false,
        epi.activation, epi.biasId, 0, epi.leakyreluAlpha, outId);
      return out;
    }
    const aShape = shapeBytes([1, M, K]);
    const aIds = new Map<number, number>();
    const bIds = new Map<number, number>();
    const viewId = (base: TensorInfo, cache: Map<number, number>, i: number, rows: number, cols: number) => {
      let id = cache.get(i);
      if (id === undefined) {
        const v = makeView(backend, base, i * rows * cols, [1, rows, cols]);
        views.push(v);
        id = backend.dataIdMap.get(v.dataId).id;
        cache.set(i, id);
      }
      return id;
    };
    const item = (o: number) => {
      const ia = broadcastIndex(o, d.outBatchShape, d.aBatchShape);
      const ib = broadcastIndex(o, d.outBatchShape, d.bBatchShape);
      const aId = viewId(aN, aIds, ia, M, K);
      const bId = viewId(bN, bIds, ib, K, N);
      const ov = makeView(backend, out, o * M * N, [1, M, N]);
      views.push(ov);
      run(aId, aShape, 3, bId, bShape, 3, false, false,
        epi.activation, epi.biasId, 0, epi.leakyreluAlpha, idOf(ov));
    };
    if (aBatch === outBatch && bBatch === outBatch) {
      const split = runSplit({ ...splitBase, items: outBatch, M, bItems: outBatch }, heapF, (i0, i1) => {
        for (let o = i0; o < i1; o++) item(o);
      });
      if (split) return out;
    }
    for (let o = 0; o < outBatch; o++) {
      const ia = broadcastIndex(o, d.outBatchShape, d.aBatchShape);
      const ib = broadcastIndex(o, d.outBatchShape, d.bBatchShape);
      const aId = viewId(aN, aIds, ia, M, K);
      const bId = viewId(bN, bIds, ib, K, N);
      const ov = makeView(backend, out, o * M * N, [1, M, N]);
      views.push(ov);
      run(aId, aShape, 3, bId, bShape, 3, false, false,
        epi.activation, epi.biasId, 0, epi.leakyreluAlpha, backend.dataIdMap.get(ov.dataId).id);
    }
    return out;
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  } finally {
    for (const v of views) releaseView(backend, v);
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * Tiny per-item products with many items: the per-call overhead of the fast
 * path dominates, and the stock loop is correct when neither side broadcasts.
 * (Never used for _FusedMatMul: the stock loop mis-indexes a rank-1 bias.)
 */
function useStock(d: Dims): boolean {
  return d.outBatch > 1 && d.aBatch === d.outBatch && d.bBatch === d.outBatch &&
    d.M * d.K * d.N < SMALL_ITEM_MACS;
}

export function makeBatchMatMulConfig(tf: Tf, stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      return stock.kernelFunc({ inputs, backend, attrs });
    }
    const d = dims(tf, a, b, !!transposeA, !!transposeB);
    if (useStock(d)) return stock.kernelFunc({ inputs, backend, attrs });
    return fastMatMul(tf, asWasm(backend), a, b, !!transposeA, !!transposeB, d, NO_EPILOGUE);
  };
  return { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc };
}

const ACTIVATION_KERNEL: Record<string, string> = {
  relu: 'Relu',
  relu6: 'Relu6',
  sigmoid: 'Sigmoid',
  elu: 'Elu',
  leakyrelu: 'LeakyRelu',
  prelu: 'Prelu',
};

export function makeFusedMatMulConfig(tf: Tf, stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { a, b, bias, preluActivationWeights } = inputs as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation: string;
      leakyreluAlpha?: number;
    };
    const act = activation ?? 'linear';
    const code = ACTIVATION_CODE[act];
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || code === undefined) {
      return stock.kernelFunc({ inputs, backend, attrs });
    }
    const wb = asWasm(backend);
    const d = dims(tf, a, b, !!transposeA, !!transposeB);
    const alpha = leakyreluAlpha ?? 0.2;
    const biasFusable = bias == null || (bias.shape.length === 1 && bias.shape[0] === d.N);
    if (biasFusable && act !== 'prelu' && d.K > 0) {
      const biasId = bias == null ? 0 : wb.dataIdMap.get(bias.dataId).id;
      return fastMatMul(tf, wb, a, b, !!transposeA, !!transposeB, d, {
        biasId,
        bias: bias ?? null,
        activation: code,
        leakyreluAlpha: alpha,
      });
    }
    // General epilogue: matmul, then the wasm Add / activation kernels.
    let y = fastMatMul(tf, wb, a, b, !!transposeA, !!transposeB, d, NO_EPILOGUE);
    const step = (next: TensorInfo) => {
      wb.disposeData(y.dataId);
      y = next;
    };
    if (bias != null) step(callKernel(tf, 'Add', backend, { a: y, b: bias }));
    if (act !== 'linear') {
      const kernel = ACTIVATION_KERNEL[act];
      const extra: Record<string, TensorInfo> = {};
      const kAttrs: NamedAttrMap = {};
      if (act === 'prelu') {
        if (preluActivationWeights == null) throw new Error('prelu activation needs preluActivationWeights');
        extra.alpha = preluActivationWeights;
      }
      if (act === 'leakyrelu') kAttrs.alpha = alpha;
      step(callKernel(tf, kernel, backend, { x: y, ...extra }, kAttrs));
    }
    return y;
  };
  return { kernelName: '_FusedMatMul', backendName: 'wasm', kernelFunc };
}
