/**
 * Minimal typed view of the tfjs wasm backend internals the custom kernels
 * use. `@tensorflow/tfjs-backend-wasm` keeps tensors in the emscripten heap:
 * `dataIdMap.get(dataId)` gives `{id, memoryOffset}`, `id` is the handle the
 * C++ kernels take, `memoryOffset` the byte offset in `wasm.HEAPU8`.
 *
 * Heap views (`Float32Array` over `HEAPU8.buffer`) are invalidated whenever
 * the heap grows (any allocation: `makeOutput`, or a C++ call that mallocs),
 * so take them after the last allocation and never keep them across calls.
 */
import type { DataType, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';

export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: DataType;
  refCount: number;
}

export interface WasmModuleLike {
  HEAPU8: Uint8Array;
  cwrap(name: string, ret: string | null, args: string[]): (...args: unknown[]) => unknown;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

export interface WasmBackendLike {
  wasm: WasmModuleLike;
  dataIdMap: {
    get(dataId: object): WasmTensorData;
    delete(dataId: object): boolean;
  };
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

export function asWasm(backend: unknown): WasmBackendLike {
  return backend as WasmBackendLike;
}

export function sizeOf(shape: readonly number[]): number {
  let s = 1;
  for (const d of shape) s *= d;
  return s;
}

export function bytesPer(dtype: DataType): number {
  if (dtype === 'float32' || dtype === 'int32') return 4;
  if (dtype === 'bool') return 1;
  throw new Error(`unsupported dtype ${dtype} in a custom wasm kernel`);
}

/**
 * A tensor that aliases `elemOffset` elements into `base`'s heap memory: it is
 * registered with the C++ side (so wasm kernels can take its id) but owns no
 * memory. Release it with `releaseView`, never with `disposeData` (which
 * would free the base's memory).
 */
export function makeView(
  backend: WasmBackendLike,
  base: TensorInfo,
  elemOffset: number,
  shape: number[],
): TensorInfo {
  const { memoryOffset } = backend.dataIdMap.get(base.dataId);
  return backend.makeOutput(shape, base.dtype, memoryOffset + elemOffset * bytesPer(base.dtype));
}

export function releaseView(backend: WasmBackendLike, view: TensorInfo): void {
  const data = backend.dataIdMap.get(view.dataId);
  backend.wasm.tfjs.disposeData(data.id);
  backend.dataIdMap.delete(view.dataId);
}

/** Shape bytes as the stock kernels pass them to cwrap'd 'array' args. */
export function shapeBytes(shape: readonly number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/** Looks up a kernel function that is registered for wasm (stock or custom). */
export function wasmKernel(tf: Tf, name: string): KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  return k.kernelFunc;
}

export type CallKernel = (
  inputs: Record<string, TensorInfo>,
  attrs?: NamedAttrMap,
) => TensorInfo;

/** Runs a registered wasm kernel function directly (inside another kernel). */
export function callKernel(
  tf: Tf,
  name: string,
  backend: unknown,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const out = wasmKernel(tf, name)({ inputs, backend: backend as never, attrs });
  return out as TensorInfo;
}

/**
 * Transposes the last two dims of a contiguous [batch, rows, cols] tensor
 * into a new [batch, cols, rows] tensor.
 *
 * The stock wasm Transpose runs at 5-20 GB/s except when `rows` (the output
 * row length) is a large multiple of 256 floats, where its strided writes hit
 * cache-set conflicts and it drops to ~0.5-1 GB/s (measured: [2048,256] 3.7
 * ms vs 1.0 ms for the tiled JS loop below). Those shapes (a transposed
 * batch-of-rows operand in every weight gradient) use the JS loop.
 */
export function transposeLast2(
  tf: Tf,
  backend: WasmBackendLike,
  x: TensorInfo,
  batch: number,
  rows: number,
  cols: number,
): TensorInfo {
  if (useTiledTranspose(rows, cols) && bytesPer(x.dtype) === 4) {
    const out = backend.makeOutput([batch, cols, rows], x.dtype);
    const heap = new Int32Array(backend.wasm.HEAPU8.buffer);
    const src = backend.dataIdMap.get(x.dataId).memoryOffset >>> 2;
    const dst = backend.dataIdMap.get(out.dataId).memoryOffset >>> 2;
    transposeTiled(heap, src, dst, batch, rows, cols);
    return out;
  }
  const x3: TensorInfo = { dataId: x.dataId, dtype: x.dtype, shape: [batch, rows, cols] };
  return callKernel(tf, 'Transpose', backend, { x: x3 }, { perm: [0, 2, 1] });
}

/** Output rows of >= 512 floats, a multiple of 256: the stock kernel's bad case. */
export function useTiledTranspose(rows: number, cols: number): boolean {
  return rows >= 512 && rows % 256 === 0 && cols > 1;
}

const TILE = 32;

/** heap[dst + b*R*C + j*R + i] = heap[src + b*R*C + i*C + j], 32x32 tiles. */
export function transposeTiled(
  heap: Int32Array,
  src: number,
  dst: number,
  batch: number,
  rows: number,
  cols: number,
): void {
  const plane = rows * cols;
  for (let b = 0; b < batch; b++) {
    const s0 = src + b * plane;
    const d0 = dst + b * plane;
    for (let i0 = 0; i0 < rows; i0 += TILE) {
      const i1 = Math.min(i0 + TILE, rows);
      for (let j0 = 0; j0 < cols; j0 += TILE) {
        const j1 = Math.min(j0 + TILE, cols);
        for (let j = j0; j < j1; j++) {
          const d = d0 + j * rows;
          for (let i = i0; i < i1; i++) heap[d + i] = heap[s0 + i * cols + j];
        }
      }
    }
  }
}
