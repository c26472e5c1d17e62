/**
 * wasm `Transpose`: the stock kernel, except for swaps of the last two dims
 * (after dropping size-1 dims and merging the leading ones) whose output row
 * length is a large multiple of 256 floats. There the stock kernel's strided
 * writes hit cache-set conflicts: [1024,512] took 8.3 ms vs 1.0 ms for
 * [2000,500]; the tiled JS loop in wasm_util does those at ~2 GB/s.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, bytesPer, sizeOf, transposeTiled, useTiledTranspose } from './wasm_util.js';

/** [batch, rows, cols] if `perm` (on `shape`) is a batched last-two swap. */
function lastTwoSwap(shape: number[], perm: number[]): [number, number, number] | null {
  const keep: number[] = [];
  for (let i = 0; i < shape.length; i++) if (shape[i] !== 1) keep.push(i);
  const p = perm.filter((d) => shape[d] !== 1);
  const r = p.length;
  if (r < 2) return null;
  for (let i = 0; i < r - 2; i++) if (p[i] !== keep[i]) return null;
  if (p[r - 2] !== keep[r - 1] || p[r - 1] !== keep[r - 2]) return null;
  const dims = keep.map((d) => shape[d]);
  return [sizeOf(dims.slice(0, r - 2)), dims[r - 2], dims[r - 1]];
}

export function makeTransposeConfig(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    const { perm } = attrs as unknown as { perm: number[] };
    if (x.dtype === 'string' || x.dtype === 'complex64' || bytesPer(x.dtype) !== 4) {
      return stock.kernelFunc({ inputs, backend, attrs });
    }
    const swap = lastTwoSwap(x.shape, perm);
    if (!swap || !useTiledTranspose(swap[1], swap[2])) return stock.kernelFunc({ inputs, backend, attrs });
    const [batch, rows, cols] = swap;
    const wb = asWasm(backend);
    const out = wb.makeOutput(
      perm.map((d) => x.shape[d]),
      x.dtype,
    );
    const heap = new Int32Array(wb.wasm.HEAPU8.buffer);
    const src = wb.dataIdMap.get(x.dataId).memoryOffset >>> 2;
    const dst = wb.dataIdMap.get(out.dataId).memoryOffset >>> 2;
    transposeTiled(heap, src, dst, batch, rows, cols);
    return out;
  };
  return { kernelName: 'Transpose', backendName: 'wasm', kernelFunc };
}
