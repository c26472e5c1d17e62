/**
 * wasm `GatherV2` as row copies on the heap.
 *
 * The stock kernel reads all indices out of the heap, then runs a per-element
 * C++ loop (~14 ms for 2048 rows of a [8000, 256] embedding table). Here the
 * output is laid out as [batch, outer, indices, slice] (as tfjs does) and
 * every selected slice is one `copyWithin` on a view of the whole heap (a
 * plain loop for slices under 16 elements). Same index check as stock: an
 * index outside [0, axisDim - 1] throws. Strings and complex go to stock.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';
import { asWasm, bytesPer, sizeOf } from './wasm_util.js';

export function makeGatherV2Config(tf: Tf, stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if ((x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') || indices.dtype !== 'int32') {
      return stock.kernelFunc(args);
    }
    const backend = asWasm(args.backend);
    const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
      x as never, indices as never, parsedAxis, batchDims ?? 0,
    );
    const axisDim = x.shape[parsedAxis];
    const nIdx = sizeOf(indices.shape);
    const idxOff = backend.dataIdMap.get(indices.dataId).memoryOffset >>> 2;
    {
      const heap32 = new Int32Array(backend.wasm.HEAPU8.buffer);
      for (let i = 0; i < nIdx; i++) {
        const v = heap32[idxOff + i];
        if (!(v >= 0 && v <= axisDim - 1)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${axisDim - 1}]`);
      }
    }
    const out = backend.makeOutput(info.outputShape.slice(), x.dtype);
    if (sizeOf(x.shape) === 0 || sizeOf(info.outputShape) === 0) return out;
    const bpe = bytesPer(x.dtype);
    // after the allocation: the heap's current buffer
    const buf = backend.wasm.HEAPU8.buffer;
    const heap = bpe === 4 ? new Int32Array(buf) : new Uint8Array(buf);
    const idx = new Int32Array(buf, idxOff * 4, nIdx);
    const xBase = backend.dataIdMap.get(x.dataId).memoryOffset / bpe;
    const oBase = backend.dataIdMap.get(out.dataId).memoryOffset / bpe;
    const { batchSize, outerSize, dimSize, sliceSize } = info;
    const perBatch = nIdx / batchSize;
    let dst = oBase;
    for (let b = 0; b < batchSize; b++) {
      for (let o = 0; o < outerSize; o++) {
        const rowBase = xBase + (b * outerSize + o) * dimSize * sliceSize;
        const ib = b * perBatch;
        if (sliceSize >= 16) {
          for (let i = 0; i < perBatch; i++) {
            const s = rowBase + idx[ib + i] * sliceSize;
            heap.copyWithin(dst, s, s + sliceSize);
            dst += sliceSize;
          }
        } else {
          for (let i = 0; i < perBatch; i++) {
            const s = rowBase + idx[ib + i] * sliceSize;
            for (let k = 0; k < sliceSize; k++) heap[dst + k] = heap[s + k];
            dst += sliceSize;
          }
        }
      }
    }
    return out;
  };
  return { kernelName: 'GatherV2', backendName: 'wasm', kernelFunc };
}
