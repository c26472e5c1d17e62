/**
 * wasm `Softmax` on the native addon: one multi-threaded call, straight from
 * the logits' heap memory into the output's (AVX-512 exp where available).
 * Softmax over the last axis of a float32 tensor; anything else, or no addon,
 * runs the stock wasm (XNNPACK) kernel.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { loadNative, nativeForKernels } from '../../native.js';
import { asWasm, sizeOf } from '../wasm_util.js';

export function makeNativeSoftmaxConfig(stock: KernelConfig): KernelConfig {
  loadNative();
  const kernelFunc: KernelFunc = (args) => {
    const addon = nativeForKernels();
    const { logits } = args.inputs as { logits: TensorInfo };
    const { dim } = args.attrs as unknown as { dim: number };
    const rank = logits.shape.length;
    const axis = dim < 0 ? dim + rank : dim;
    if (!addon || logits.dtype !== 'float32' || rank === 0 || axis !== rank - 1) return stock.kernelFunc(args);
    const backend = asWasm(args.backend);
    const out = backend.makeOutput(logits.shape.slice(), 'float32');
    const size = sizeOf(logits.shape);
    if (size === 0) return out;
    const cols = logits.shape[rank - 1];
    // after the allocation: the heap's current buffer
    const heap = backend.wasm.HEAPU8.buffer;
    const xOff = backend.dataIdMap.get(logits.dataId).memoryOffset;
    const yOff = backend.dataIdMap.get(out.dataId).memoryOffset;
    try {
      addon.softmax(heap, xOff, size / cols, cols, heap, yOff);
    } catch (err) {
      backend.disposeData(out.dataId);
      throw err;
    }
    return out;
  };
  return { kernelName: 'Softmax', backendName: 'wasm', kernelFunc };
}
