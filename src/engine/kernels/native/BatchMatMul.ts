/**
 * wasm `BatchMatMul` / `_FusedMatMul` backed by the native SGEMM
 * (src/engine/native.ts), zero-copy on the wasm heap.
 *
 * The operands and the output are float32 tensors in the wasm backend's heap
 * (`memoryOffset` bytes into `wasm.HEAPU8.buffer`). The output is allocated
 * first (`makeOutput` can grow the heap, which detaches every earlier view of
 * it), then the heap's current ArrayBuffer and the three offsets go to one
 * native call: transposes, batch broadcasting (stride 0) and, for
 * `_FusedMatMul`, a bias of length N (or 1) plus relu / relu6 / sigmoid / elu
 * / leakyrelu are all done there, multi-threaded. Batch broadcasting that
 * strides cannot express (e.g. [2,1] x [1,3] batch dims) is one native call
 * per output item. Other bias shapes and prelu run the wasm Add / activation
 * kernels afterwards.
 *
 * Everything else (non-float32 operands, the addon unavailable or disabled)
 * goes to `fallback`: the wasm-custom kernel of ../BatchMatMul.ts.
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from '../../types.js';
import { loadNative, nativeForKernels, NATIVE_ACTIVATIONS, type NativeAddon } from '../../native.js';
import { asWasm, callKernel, sizeOf, type WasmBackendLike } from '../wasm_util.js';
import { broadcastIndex, dims, type Dims } from '../matmul_dims.js';

interface Epilogue {
  bias: TensorInfo | null;
  /** N, or 1 for a single-element bias */
  biasLen: number;
  activation: number;
  alpha: number;
}

const NONE: Epilogue = { bias: null, biasLen: 0, activation: 0, alpha: 0 };

/** A new [outBatch..., M, N] float32 tensor = epilogue(op(a) op(b)), computed natively. */
export function nativeMatMul(
  addon: NativeAddon,
  backend: WasmBackendLike,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  d: Dims,
  epi: Epilogue = NONE,
): TensorInfo {
  const { M, N, K } = d;
  const out = backend.makeOutput([...d.outBatchShape, M, N], 'float32');
  if (d.outBatch * M * N === 0) return out;
  try {
    // After the last allocation: the heap's buffer and offsets are current.
    const heap = backend.wasm.HEAPU8.buffer;
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
    const aOff = offset(a);
    const bOff = offset(b);
    const cOff = offset(out);
    const biasOff = epi.bias ? offset(epi.bias) : 0;
    const bias = epi.bias ? heap : null;
    const sizeA = M * K;
    const sizeB = K * N;
    const sizeC = M * N;
    const strideA = d.aBatch === d.outBatch ? sizeA : d.aBatch === 1 ? 0 : -1;
    const strideB = d.bBatch === d.outBatch ? sizeB : d.bBatch === 1 ? 0 : -1;
    if (strideA >= 0 && strideB >= 0) {
      addon.sgemm(heap, aOff, heap, bOff, heap, cOff, M, N, K, transposeA, transposeB, 1, 0,
        d.outBatch, strideA, strideB, sizeC, bias, biasOff, epi.biasLen, epi.activation, epi.alpha);
    } else {
      for (let o = 0; o < d.outBatch; o++) {
        const ia = broadcastIndex(o, d.outBatchShape, d.aBatchShape);
        const ib = broadcastIndex(o, d.outBatchShape, d.bBatchShape);
        addon.sgemm(heap, aOff + 4 * ia * sizeA, heap, bOff + 4 * ib * sizeB, heap, cOff + 4 * o * sizeC,
          M, N, K, transposeA, transposeB, 1, 0, 1, sizeA, sizeB, sizeC,
          bias, biasOff, epi.biasLen, epi.activation, epi.alpha);
      }
    }
    return out;
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  }
}

export function makeNativeBatchMatMulConfig(tf: Tf, fallback: KernelConfig): KernelConfig {
  loadNative(); // at install time: the one warning, if any, comes with initEngine
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const addon = nativeForKernels();
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    if (!addon || a.dtype !== 'float32' || b.dtype !== 'float32') return fallback.kernelFunc(args);
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const d = dims(tf, a, b, !!transposeA, !!transposeB);
    return nativeMatMul(addon, asWasm(backend), a, b, !!transposeA, !!transposeB, d);
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

/**
 * N for a bias that is one row of N values ([N], [1, N], ...), 1 for a single
 * value, else null; never for a bias of higher rank than the output (adding
 * it would raise the output's rank).
 */
function fusableBiasLen(bias: TensorInfo, N: number, outRank: number): number | null {
  const s = bias.shape;
  if (s.length > outRank) return null;
  const size = sizeOf(s);
  if (size === 1) return 1;
  if (s.length >= 1 && s[s.length - 1] === N && size === N) return N;
  return null;
}

export function makeNativeFusedMatMulConfig(tf: Tf, fallback: KernelConfig): KernelConfig {
  loadNative();
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const addon = nativeForKernels();
    const { a, b, bias, preluActivationWeights } = inputs as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const act = activation ?? 'linear';
    if (
      !addon ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      (bias != null && bias.dtype !== 'float32') ||
      (act !== 'prelu' && !(act in NATIVE_ACTIVATIONS))
    ) {
      return fallback.kernelFunc(args);
    }
    const wb = asWasm(backend);
    const d = dims(tf, a, b, !!transposeA, !!transposeB);
    const alpha = leakyreluAlpha ?? 0.2;
    const biasLen = bias == null ? 0 : fusableBiasLen(bias, d.N, d.outBatchShape.length + 2);
    const fuseBias = bias == null || biasLen !== null;
    const fuseAct = act !== 'prelu' && fuseBias; // the activation comes after the bias
    let y = nativeMatMul(addon, wb, a, b, !!transposeA, !!transposeB, d, {
      bias: fuseBias && bias != null ? bias : null,
      biasLen: fuseBias && bias != null ? (biasLen as number) : 0,
      activation: fuseAct ? NATIVE_ACTIVATIONS[act as keyof typeof NATIVE_ACTIVATIONS] : 0,
      alpha,
    });
    const step = (next: TensorInfo) => {
      wb.disposeData(y.dataId);
      y = next;
    };
    if (!fuseBias && bias != null) step(callKernel(tf, 'Add', backend, { a: y, b: bias }));
    if (!fuseAct && act !== 'linear') {
      const extra: Record<string, TensorInfo> = {};
      const kAttrs: NamedAttrMap = {};
      if (act === 'prelu') {
        if (preluActivationWeights == null) throw new Error('prelu activation needs preluActivationWeights');
        extra.alpha = preluActivationWeights;
      }
      if (act === 'leakyrelu') kAttrs.alpha = alpha;
      step(callKernel(tf, ACTIVATION_KERNEL[act], backend, { x: y, ...extra }, kAttrs));
    }
    return y;
  };
  return { kernelName: '_FusedMatMul', backendName: 'wasm', kernelFunc };
}
