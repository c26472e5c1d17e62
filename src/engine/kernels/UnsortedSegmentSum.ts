/**
 * `UnsortedSegmentSum` for wasm (missing from tfjs-backend-wasm 4.22) and
 * for cpu (tfjs-backend-cpu runs equal+mul+sum once per segment: one Adam
 * step of a 22k-user embedding model takes minutes). It is the gradient of
 * `gather`, i.e. of every embedding lookup.
 *
 * TF semantics: `segmentIds` has the shape of a prefix of `x`'s shape; the
 * output is `[numSegments, ...x.shape.slice(segmentIds.rank)]` with
 * `out[s] = sum of x[i] over i with segmentIds[i] == s`. Ids outside
 * `[0, numSegments)` are dropped. One pass over `x`, plain loops over heap
 * views.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, sizeOf } from './wasm_util.js';

interface Parsed {
  outShape: number[];
  inner: number;
  n: number;
}

function parse(x: TensorInfo, segmentIds: TensorInfo, numSegments: number): Parsed {
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum does not support dtype ${x.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  for (let i = 0; i < idRank; i++) {
    if (segmentIds.shape[i] !== x.shape[i]) {
      throw new Error(
        `UnsortedSegmentSum: segmentIds shape ${segmentIds.shape} must be a prefix of x shape ${x.shape}`,
      );
    }
  }
  return {
    outShape: [numSegments, ...x.shape.slice(idRank)],
    inner: sizeOf(x.shape.slice(idRank)),
    n: sizeOf(segmentIds.shape),
  };
}

type Num = Float32Array | Int32Array;

/** out (zeroed here) += x rows by segment id; ids outside [0, numSegments) dropped. */
function segmentSum(
  o: Num,
  xv: Num,
  ids: ArrayLike<number>,
  n: number,
  inner: number,
  numSegments: number,
): void {
  o.fill(0);
  if (o.length === 0 || n === 0) return;
  if (inner === 1) {
    for (let i = 0; i < n; i++) {
      const s = ids[i];
      if (s >= 0 && s < numSegments) o[s] += xv[i];
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const s = ids[i];
    if (!(s >= 0 && s < numSegments)) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xv[src + j];
  }
}

interface Args {
  x: TensorInfo;
  segmentIds: TensorInfo;
  numSegments: number;
}

function args(inputs: unknown, attrs: unknown): Args {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as { numSegments: number };
  return { x, segmentIds, numSegments };
}

export function makeUnsortedSegmentSumConfig(): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, segmentIds, numSegments } = args(inputs, attrs);
    const { outShape, inner, n } = parse(x, segmentIds, numSegments);
    const wb = asWasm(backend);
    const out = wb.makeOutput(outShape, x.dtype);
    // Views after the last allocation (heap growth detaches older views).
    const o = wb.typedArrayFromHeap(out) as Num;
    const xv = wb.typedArrayFromHeap(x) as Num;
    const ids = wb.typedArrayFromHeap(segmentIds);
    segmentSum(o, xv, ids, n, inner, numSegments);
    return out;
  };
  return { kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc };
}

/** Minimal view of tfjs-backend-cpu's storage. */
interface CpuBackendLike {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: string, values: Num): TensorInfo;
}

export function makeUnsortedSegmentSumCpuConfig(): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, segmentIds, numSegments } = args(inputs, attrs);
    const { outShape, inner, n } = parse(x, segmentIds, numSegments);
    const cb = backend as unknown as CpuBackendLike;
    const o = x.dtype === 'int32' ? new Int32Array(sizeOf(outShape)) : new Float32Array(sizeOf(outShape));
    const xv = cb.data.get(x.dataId).values as Num;
    const ids = cb.data.get(segmentIds.dataId).values;
    segmentSum(o, xv, ids, n, inner, numSegments);
    return cb.makeTensorInfo(outShape, x.dtype, o);
  };
  return { kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc };
}
