/**
 * Shapes of a (batched, broadcast) matmul: shared by the wasm-custom and the
 * native BatchMatMul kernels.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';
import { sizeOf } from './wasm_util.js';

export interface Dims {
  M: number;
  K: number;
  N: number;
  aBatchShape: number[];
  bBatchShape: number[];
  outBatchShape: number[];
  aBatch: number;
  bBatch: number;
  outBatch: number;
}

export function dims(tf: Tf, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): Dims {
  const ar = a.shape.length;
  const br = b.shape.length;
  const K = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const kB = transposeB ? b.shape[br - 1] : b.shape[br - 2];
  const M = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const N = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  if (K !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${K}) and (${kB}) of Tensors with shapes ` +
        `${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const aBatchShape = a.shape.slice(0, -2);
  const bBatchShape = b.shape.slice(0, -2);
  const outBatchShape = tf.broadcast_util.assertAndGetBroadcastShape(aBatchShape, bBatchShape);
  return {
    M, K, N, aBatchShape, bBatchShape, outBatchShape,
    aBatch: sizeOf(aBatchShape),
    bBatch: sizeOf(bBatchShape),
    outBatch: sizeOf(outBatchShape),
  };
}

/** Flat index into `shape`'s batch items of output batch item `o` (broadcast). */
export function broadcastIndex(o: number, outShape: number[], shape: number[]): number {
  let idx = 0;
  let stride = 1;
  let rem = o;
  const off = outShape.length - shape.length;
  for (let d = outShape.length - 1; d >= 0; d--) {
    const c = rem % outShape[d];
    rem = (rem - c) / outShape[d];
    if (d >= off) {
      const n = shape[d - off];
      if (n !== 1) idx += c * stride;
      stride *= n;
    }
  }
  return idx;
}
