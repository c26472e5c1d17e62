/**
 * wasm `Identity` without a copy.
 *
 * tfjs clones every tensor that a gradient saves (`Engine.clone` runs
 * `Identity`), and the stock wasm kernel copies the tensor into new heap
 * memory each time (~40 ms per T5 training step on the bench shape). Tensors
 * are immutable and the wasm backend reference-counts its data (its own
 * `Reshape` shares the input's memory the same way), so the clone can share
 * the input's memory: one `incRef`, no copy. Nothing in p5rec writes tensor
 * memory in place (kernels write only into outputs they allocate;
 * `Variable.assign` swaps in a new tensor). Strings go to the stock kernel.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, sizeOf } from './wasm_util.js';

export function makeIdentityConfig(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc(args);
    asWasm(args.backend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
  return { kernelName: 'Identity', backendName: 'wasm', kernelFunc };
}

/**
 * wasm `Cast` to the same dtype without a copy (the gradient of every
 * `Engine.clone` is a float32 -> float32 Cast); casts to bool are x != 0 (the
 * stock kernel's typed-array copy made -2.2 into 254); the rest goes to stock.
 */
export function makeCastConfig(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { dtype } = args.attrs as unknown as { dtype: string };
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc(args);
    const backend = asWasm(args.backend);
    if (dtype === 'bool' && x.dtype !== 'bool') {
      // stock converts with a typed-array copy: -2.2 became 254, not true (1)
      const out = backend.makeOutput(x.shape.slice(), 'bool');
      const n = sizeOf(x.shape);
      const buf = backend.wasm.HEAPU8.buffer;
      const xOff = backend.dataIdMap.get(x.dataId).memoryOffset;
      const src = x.dtype === 'int32' ? new Int32Array(buf, xOff, n) : new Float32Array(buf, xOff, n);
      const dst = new Uint8Array(buf, backend.dataIdMap.get(out.dataId).memoryOffset, n);
      for (let i = 0; i < n; i++) dst[i] = src[i] !== 0 ? 1 : 0;
      return out;
    }
    if (dtype !== x.dtype) return stock.kernelFunc(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
  return { kernelName: 'Cast', backendName: 'wasm', kernelFunc };
}
