/**
 * wasm `Slice`, `SplitV`, `Unpack` and the contiguous cases of `StridedSlice`.
 *
 * The stock wasm `slice` starts with `backend.readSync(x)`, which copies the
 * whole input out of the heap on every call; `SplitV` / `Unpack` call it
 * once per output, so splitting a tensor in n parts copies it n times. This
 * version copies only the selected elements, heap to heap, in maximal
 * contiguous runs (`copyWithin` on one view of the whole heap).
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';
import { asWasm, bytesPer, sizeOf, type WasmBackendLike } from './wasm_util.js';

function heapView(backend: WasmBackendLike, bytes: number): Int32Array | Uint8Array {
  const buf = backend.wasm.HEAPU8.buffer;
  return bytes === 4 ? new Int32Array(buf) : new Uint8Array(buf);
}

/** Copies x[begin : begin+size] into a new tensor (x not string). */
export function sliceHeap(
  backend: WasmBackendLike,
  x: TensorInfo,
  begin: number[],
  size: number[],
): TensorInfo {
  const out = backend.makeOutput(size.slice(), x.dtype);
  const total = sizeOf(size);
  if (total === 0) return out;
  const rank = x.shape.length;
  const bpe = bytesPer(x.dtype);
  const xBase = backend.dataIdMap.get(x.dataId).memoryOffset / bpe;
  const oBase = backend.dataIdMap.get(out.dataId).memoryOffset / bpe;
  const heap = heapView(backend, bpe);
  if (rank === 0) {
    heap[oBase] = heap[xBase];
    return out;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * x.shape[i + 1];
  // Contiguous run: trailing full dims times the first partial dim.
  let d = rank - 1;
  let run = 1;
  while (d >= 0 && begin[d] === 0 && size[d] === x.shape[d]) {
    run *= size[d];
    d--;
  }
  let start = xBase;
  if (d >= 0) {
    run *= size[d];
    start += begin[d] * strides[d];
  }
  // Odometer over the outer dims 0..d-1.
  const outer = d; // number of outer dims
  if (outer <= 0) {
    heap.copyWithin(oBase, start, start + run);
    return out;
  }
  const idx = new Array<number>(outer).fill(0);
  let src = start;
  for (let i = 0; i < outer; i++) src += begin[i] * strides[i];
  let dst = oBase;
  const count = total / run;
  for (let c = 0; c < count; c++) {
    if (run >= 16) {
      heap.copyWithin(dst, src, src + run);
    } else {
      for (let j = 0; j < run; j++) heap[dst + j] = heap[src + j];
    }
    dst += run;
    for (let k = outer - 1; k >= 0; k--) {
      idx[k]++;
      src += strides[k];
      if (idx[k] < size[k]) break;
      src -= idx[k] * strides[k];
      idx[k] = 0;
    }
  }
  return out;
}

export function makeSliceConfig(tf: Tf, stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc({ inputs, backend, attrs });
    const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as never, begin, size);
    tf.slice_util.assertParamsValid(x as never, b, s);
    return sliceHeap(asWasm(backend), x, b, s);
  };
  return { kernelName: 'Slice', backendName: 'wasm', kernelFunc };
}

export function makeSplitVConfig(tf: Tf, stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc({ inputs, backend, attrs });
    const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as never, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    const wb = asWasm(backend);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[ax] = s;
      const out = sliceHeap(wb, x, begin, size);
      begin[ax] += s;
      return out;
    });
  };
  return { kernelName: 'SplitV', backendName: 'wasm', kernelFunc };
}

export function makeUnpackConfig(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { value } = inputs as { value: TensorInfo };
    if (value.dtype === 'string' || value.dtype === 'complex64') return stock.kernelFunc({ inputs, backend, attrs });
    let { axis } = attrs as unknown as { axis: number };
    const rank = value.shape.length;
    if (axis < 0) axis += rank;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = new Array<number>(rank).fill(0);
    const size = value.shape.slice();
    size[axis] = 1;
    const wb = asWasm(backend);
    const outs: TensorInfo[] = [];
    for (let i = 0; i < value.shape[axis]; i++) {
      begin[axis] = i;
      const o = sliceHeap(wb, value, begin, size);
      outs.push({ dataId: o.dataId, dtype: o.dtype, shape: outShape.slice() });
    }
    return outs;
  };
  return { kernelName: 'Unpack', backendName: 'wasm', kernelFunc };
}

export function makeStridedSliceConfig(tf: Tf, stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc({ inputs, backend, attrs });
    const a = attrs as unknown as {
      begin: number[];
      end: number[];
      strides: number[];
      beginMask: number;
      endMask: number;
      ellipsisMask: number;
      newAxisMask: number;
      shrinkAxisMask: number;
    };
    const info = tf.slice_util.sliceInfo(
      x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask,
    );
    const wb = asWasm(backend);
    if (info.isIdentity) {
      wb.incRef(x.dataId);
      return { dataId: x.dataId, dtype: x.dtype, shape: info.finalShape };
    }
    if (info.sliceDim0 || info.isSimpleSlice) {
      const size = tf.slice_util.computeOutShape(info.begin, info.end, info.strides);
      const out = sliceHeap(wb, x, info.begin, size);
      return { dataId: out.dataId, dtype: out.dtype, shape: info.finalShape };
    }
    return stock.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap });
  };
  return { kernelName: 'StridedSlice', backendName: 'wasm', kernelFunc };
}
