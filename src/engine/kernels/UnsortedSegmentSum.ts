/**
 * wasm `UnsortedSegmentSum` (missing from tfjs-backend-wasm 4.22). It is the
 * gradient of `gather`, i.e. of every embedding lookup.
 *
 * TF semantics: `segmentIds` has the shape of a prefix of `x`'s shape; the
 * output is `[numSegments, ...x.shape.slice(segmentIds.rank)]` with
 * `out[s] = sum of x[i] over i with segmentIds[i] == s`. Ids outside
 * `[0, numSegments)` are dropped. One pass over `x`, plain loops over heap
 * views.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, sizeOf } from './wasm_util.js';

export function makeUnsortedSegmentSumConfig(): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = attrs as unknown as { numSegments: number };
    if (x.dtype !== 'float32' && x.dtype !== 'int32') {
      throw new Error(`UnsortedSegmentSum (wasm) does not support dtype ${x.dtype}`);
    }
    const idRank = segmentIds.shape.length;
    for (let i = 0; i < idRank; i++) {
      if (segmentIds.shape[i] !== x.shape[i]) {
        throw new Error(
          `UnsortedSegmentSum: segmentIds shape ${segmentIds.shape} must be a prefix of x shape ${x.shape}`,
        );
      }
    }
    const inner = sizeOf(x.shape.slice(idRank));
    const n = sizeOf(segmentIds.shape);
    const wb = asWasm(backend);
    const out = wb.makeOutput([numSegments, ...x.shape.slice(idRank)], x.dtype);
    // Views after the last allocation (heap growth detaches older views).
    const o = wb.typedArrayFromHeap(out) as Float32Array | Int32Array;
    o.fill(0);
    if (o.length === 0 || n === 0) return out;
    const xv = wb.typedArrayFromHeap(x) as Float32Array | Int32Array;
    const ids = wb.typedArrayFromHeap(segmentIds);
    if (inner === 1) {
      for (let i = 0; i < n; i++) {
        const s = ids[i];
        if (s >= 0 && s < numSegments) o[s] += xv[i];
      }
      return out;
    }
    for (let i = 0; i < n; i++) {
      const s = ids[i];
      if (!(s >= 0 && s < numSegments)) continue;
      const src = i * inner;
      const dst = s * inner;
      for (let j = 0; j < inner; j++) o[dst + j] += xv[src + j];
    }
    return out;
  };
  return { kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc };
}
