/**
 * Fused training kernels (new kernel names, no stock counterpart), for the
 * wasm and cpu backends. The T5 model uses them when they are registered
 * (`tf.getKernel(name, backend)`), and its plain tfjs composition otherwise.
 *
 *   P5DropoutMask  ()                           attrs {shape, rate, a, b, c, d} -> mask
 *       inverted-dropout multipliers (0 or 1/(1-rate)), counter-based from the key (a, b):
 *       exactly `dropoutMask` of models/t5/ops.ts, written straight into the
 *       output tensor (no JS array, no upload)
 *   P5RmsNorm      (x [n, d], w [d])             attrs {eps} -> [y [n, d], r [n, 1]]
 *       r = 1/sqrt(mean(x²) + eps) per row, y = x·r·w
 *   P5RmsNormGrad  (dy, x, w, r)                 -> [dx [n, d], dw [d]]
 *       g = dy·w, x̂ = x·r, dx = r·(g − x̂·mean(g·x̂)), dw = Σ_rows dy·x̂
 *   P5SoftmaxXent  (logits [n, V], labels [n], weights [n])  -> [loss [], lse [n]]
 *       loss = Σ_i weights[i]·(lse[i] − logits[i, labels[i]]); labels are
 *       float32 ids (exact below 2^24)
 *   P5SoftmaxXentGrad (logits, labels, weights, lse, dy [])  -> dlogits
 *       dy·weights[i]·(softmax(logits_i) − onehot(labels[i]))
 *
 * On wasm they run on the native addon when it is loaded (multi-threaded,
 * AVX-512 exp), else as JS loops over the wasm heap (the cross-entropy's
 * exps on the engine's wasm Exp kernel); on cpu as JS loops over the
 * tensors' arrays. Every one is tested against the tfjs
 * composition on the cpu backend (test/engine/kernels.test.ts).
 */
import type { DataType, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeForKernels } from '../native.js';
import type { Tf } from '../types.js';
import { asWasm, callKernel, sizeOf, type WasmBackendLike } from './wasm_util.js';

export const FUSED_KERNELS = ['P5DropoutMask', 'P5RmsNorm', 'P5RmsNormGrad', 'P5SoftmaxXent', 'P5SoftmaxXentGrad'] as const;
export type FusedKernelName = (typeof FUSED_KERNELS)[number];

// ------------------------------------------------------------------ shared JS loops

/**
 * Inverted-dropout multipliers into out[off, off+n), element i (counted from
 * off) drawn from its index and the key (a, b) alone: murmur3's 32-bit
 * finalizer, twice. Counter-based, so the native kernel splits the range over
 * threads with identical bits; c and d are unused. Identical bits to
 * models/t5/ops.ts's dropoutMask.
 */
export function fillDropoutMask(out: Float32Array, off: number, n: number, rate: number, a0: number, b0: number, _c0: number, _d0: number): void {
  const a = a0 | 0;
  const b = b0 | 0;
  const threshold = dropoutThreshold(rate);
  const keep = 1 / (1 - rate);
  for (let i = 0; i < n; i++) {
    const t = mix32(mix32(i ^ a) ^ b);
    out[off + i] = (t ^ 0x80000000) >= threshold ? keep : 0;
  }
}

/** murmur3's 32-bit finalizer (as an int32). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x;
}

/** Keep iff the draw, as a signed int, is >= this (same as unsigned >= rate·2³²). */
export function dropoutThreshold(rate: number): number {
  return Math.min(4294967295, Math.round(rate * 4294967296)) - 2147483648;
}

function rmsnormForwardJs(x: Float32Array, xo: number, w: Float32Array, wo: number, y: Float32Array, yo: number, r: Float32Array, ro: number, rows: number, cols: number, eps: number): void {
  for (let i = 0; i < rows; i++) {
    const xb = xo + i * cols;
    const yb = yo + i * cols;
    let ss = 0;
    for (let k = 0; k < cols; k++) ss += x[xb + k] * x[xb + k];
    const rr = Math.fround(1 / Math.sqrt(ss / cols + eps));
    r[ro + i] = rr;
    for (let k = 0; k < cols; k++) y[yb + k] = x[xb + k] * rr * w[wo + k];
  }
}

function rmsnormBackwardJs(
  dy: Float32Array, dyo: number, x: Float32Array, xo: number, w: Float32Array, wo: number, r: Float32Array, ro: number,
  dx: Float32Array, dxo: number, dw: Float32Array, dwo: number, rows: number, cols: number,
): void {
  const acc = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const xb = xo + i * cols;
    const gb = dyo + i * cols;
    const rr = r[ro + i];
    let dot = 0;
    for (let k = 0; k < cols; k++) {
      const xh = x[xb + k] * rr;
      dot += dy[gb + k] * w[wo + k] * xh;
      acc[k] += dy[gb + k] * xh;
    }
    const c = dot / cols;
    const ob = dxo + i * cols;
    for (let k = 0; k < cols; k++) dx[ob + k] = rr * (dy[gb + k] * w[wo + k] - x[xb + k] * rr * c);
  }
  for (let k = 0; k < cols; k++) dw[dwo + k] = acc[k];
}

function checkLabels(labels: Int32Array, cols: number): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!(v >= 0 && v < cols)) throw new Error(`P5SoftmaxXent: label ${v} is outside [0, ${cols})`);
  }
}

function rowLse(x: Float32Array, b: number, cols: number): number {
  let mx = -Infinity;
  for (let k = 0; k < cols; k++) if (x[b + k] > mx) mx = x[b + k];
  if (!(mx > -Infinity) || mx === Infinity) return NaN;
  let s = 0;
  for (let k = 0; k < cols; k++) s += Math.exp(x[b + k] - mx);
  return mx + Math.log(s);
}

function xentForwardJs(x: Float32Array, xo: number, labels: Int32Array, weights: Float32Array, lse: Float32Array, lo: number, rows: number, cols: number): number {
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    const b = xo + i * cols;
    const l = Math.fround(rowLse(x, b, cols));
    lse[lo + i] = l;
    if (weights[i] !== 0) loss += weights[i] * (l - x[b + labels[i]]);
  }
  return loss;
}

function xentBackwardJs(x: Float32Array, xo: number, labels: Int32Array, weights: Float32Array, lse: Float32Array, lo: number, dy: number, dx: Float32Array, dxo: number, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    const b = xo + i * cols;
    const ob = dxo + i * cols;
    const scale = weights[i] * dy;
    const l = lse[lo + i];
    for (let k = 0; k < cols; k++) dx[ob + k] = Math.exp(Math.min(x[b + k] - l, 0)) * scale;
    dx[ob + labels[i]] -= scale;
  }
}

/**
 * wasm without the addon: the exps run on the engine's wasm Exp kernel (for
 * x <= 0 an XNNPACK sigmoid, ~4x Math.exp) over a shifted copy; the row
 * maxima / sums and the label terms are JS loops over the heap.
 */
function xentForwardWasm(tf: Tf, backend: WasmBackendLike, logits: TensorInfo, labels: Int32Array, weights: Float32Array, lse: TensorInfo, rows: number, cols: number): number {
  const heap = () => new Float32Array(backend.wasm.HEAPU8.buffer);
  const off = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset >>> 2;
  const shifted = backend.makeOutput([rows, cols], 'float32');
  const mx = new Float32Array(rows);
  {
    const h = heap();
    const xo = off(logits);
    const so = off(shifted);
    for (let i = 0; i < rows; i++) {
      const b = xo + i * cols;
      let m = -Infinity;
      for (let k = 0; k < cols; k++) if (h[b + k] > m) m = h[b + k];
      // all -inf / +inf / NaN rows: NaN, as the composition gives
      if (!(m > -Infinity) || m === Infinity) m = NaN;
      mx[i] = m;
      const o = so + i * cols;
      for (let k = 0; k < cols; k++) h[o + k] = h[b + k] - m;
    }
  }
  let e: TensorInfo;
  try {
    e = callKernel(tf, 'Exp', backend, { x: shifted });
  } finally {
    backend.disposeData(shifted.dataId);
  }
  let loss = 0;
  const h = heap();
  const eo = off(e);
  const xo = off(logits);
  const lo = off(lse);
  for (let i = 0; i < rows; i++) {
    let sum = 0;
    const b = eo + i * cols;
    for (let k = 0; k < cols; k++) sum += h[b + k];
    const l = Math.fround(mx[i] + Math.log(sum));
    h[lo + i] = l;
    if (weights[i] !== 0) loss += weights[i] * (l - h[xo + i * cols + labels[i]]);
  }
  backend.disposeData(e.dataId);
  return loss;
}

function xentBackwardWasm(tf: Tf, backend: WasmBackendLike, logits: TensorInfo, labels: Int32Array, weights: Float32Array, lse: TensorInfo, dy: number, rows: number, cols: number): TensorInfo {
  const off = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset >>> 2;
  const shifted = backend.makeOutput([rows, cols], 'float32');
  {
    const h = new Float32Array(backend.wasm.HEAPU8.buffer);
    const xo = off(logits);
    const so = off(shifted);
    const lo = off(lse);
    for (let i = 0; i < rows; i++) {
      const l = h[lo + i];
      const b = xo + i * cols;
      const o = so + i * cols;
      for (let k = 0; k < cols; k++) {
        const v = h[b + k] - l;
        h[o + k] = v < 0 ? v : 0;
      }
    }
  }
  let e: TensorInfo;
  try {
    e = callKernel(tf, 'Exp', backend, { x: shifted });
  } finally {
    backend.disposeData(shifted.dataId);
  }
  const h = new Float32Array(backend.wasm.HEAPU8.buffer);
  const eo = off(e);
  for (let i = 0; i < rows; i++) {
    const scale = weights[i] * dy;
    const b = eo + i * cols;
    for (let k = 0; k < cols; k++) h[b + k] *= scale;
    h[b + labels[i]] -= scale;
  }
  return e;
}

// ------------------------------------------------------------------ backends

interface Mem {
  f32: Float32Array;
  /** float offset of the tensor in f32 */
  off: number;
}

/** How a backend exposes tensor memory and makes outputs. */
interface Access {
  out(shape: number[], dtype: DataType, fill?: (m: Mem) => void): TensorInfo;
  read(t: TensorInfo): Mem;
}

function wasmAccess(backend: WasmBackendLike): Access {
  return {
    out(shape, dtype, fill) {
      const t = backend.makeOutput(shape, dtype);
      if (fill) fill(this.read(t));
      return t;
    },
    read(t) {
      // a fresh view each time: any allocation can grow (detach) the heap
      return { f32: new Float32Array(backend.wasm.HEAPU8.buffer), off: backend.dataIdMap.get(t.dataId).memoryOffset >>> 2 };
    },
  };
}

interface CpuBackendLike {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo(shape: number[], dtype: DataType, values?: Float32Array): TensorInfo;
}

function cpuAccess(backend: CpuBackendLike): Access {
  return {
    out(shape, dtype, fill) {
      const values = new Float32Array(sizeOf(shape));
      if (fill) fill({ f32: values, off: 0 });
      return backend.makeTensorInfo(shape, dtype, values);
    },
    read(t) {
      const v = backend.readSync(t.dataId);
      return { f32: v instanceof Float32Array ? v : Float32Array.from(v), off: 0 };
    },
  };
}

type Which = 'wasm' | 'cpu';

function access(which: Which, backend: unknown): Access {
  return which === 'wasm' ? wasmAccess(asWasm(backend)) : cpuAccess(backend as CpuBackendLike);
}

function native(which: Which) {
  return which === 'wasm' ? nativeForKernels() : null;
}

function f32(t: TensorInfo, what: string): void {
  if (t.dtype !== 'float32') throw new Error(`${what} must be float32, got ${t.dtype}`);
}

function labelsOf(io: Access, labels: TensorInfo, rows: number): Int32Array {
  const m = io.read(labels);
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) out[i] = m.f32[m.off + i];
  return out;
}

function weightsOf(io: Access, weights: TensorInfo, rows: number): Float32Array {
  const m = io.read(weights);
  return m.f32.slice(m.off, m.off + rows);
}

function dims2(x: TensorInfo, what: string): [number, number] {
  if (x.shape.length < 1) throw new Error(`${what} must have rank >= 1`);
  const cols = x.shape[x.shape.length - 1];
  return [cols === 0 ? 0 : sizeOf(x.shape) / cols, cols];
}

function makeKernel(tf: Tf, name: FusedKernelName, which: Which): KernelFunc {
  switch (name) {
    case 'P5DropoutMask':
      return ({ backend, attrs }) => {
        const { shape, rate, a, b, c, d } = attrs as unknown as { shape: number[]; rate: number; a: number; b: number; c: number; d: number };
        if (!(rate >= 0 && rate < 1)) throw new Error(`P5DropoutMask: rate ${rate} is not in [0, 1)`);
        const io = access(which, backend);
        const n = sizeOf(shape);
        const addon = native(which);
        return io.out(shape.slice(), 'float32', (m) => {
          if (addon && n > 0) addon.dropoutMask(m.f32, m.off * 4, n, a >>> 0, b >>> 0, c >>> 0, d >>> 0, dropoutThreshold(rate), 1 / (1 - rate));
          else fillDropoutMask(m.f32, m.off, n, rate, a, b, c, d);
        });
      };
    case 'P5RmsNorm':
      return ({ backend, inputs, attrs }) => {
        const { x, w } = inputs as { x: TensorInfo; w: TensorInfo };
        const { eps } = attrs as unknown as { eps: number };
        f32(x, 'P5RmsNorm x');
        f32(w, 'P5RmsNorm w');
        const [rows, cols] = dims2(x, 'P5RmsNorm x');
        if (sizeOf(w.shape) !== cols) throw new Error(`P5RmsNorm: w has ${sizeOf(w.shape)} values, x rows have ${cols}`);
        const io = access(which, backend);
        const addon = native(which);
        const y = io.out(x.shape.slice(), 'float32');
        const r = io.out([...x.shape.slice(0, -1), 1], 'float32');
        if (rows * cols === 0) return [y, r];
        const [mx, mw, my, mr] = [io.read(x), io.read(w), io.read(y), io.read(r)];
        if (addon) addon.rmsnormForward(mx.f32, mx.off * 4, mw.f32, mw.off * 4, my.f32, my.off * 4, mr.f32, mr.off * 4, rows, cols, eps);
        else rmsnormForwardJs(mx.f32, mx.off, mw.f32, mw.off, my.f32, my.off, mr.f32, mr.off, rows, cols, eps);
        return [y, r];
      };
    case 'P5RmsNormGrad':
      return ({ backend, inputs }) => {
        const { dy, x, w, r } = inputs as { dy: TensorInfo; x: TensorInfo; w: TensorInfo; r: TensorInfo };
        for (const [t, n] of [[dy, 'dy'], [x, 'x'], [w, 'w'], [r, 'r']] as const) f32(t, `P5RmsNormGrad ${n}`);
        const [rows, cols] = dims2(x, 'P5RmsNormGrad x');
        const io = access(which, backend);
        const addon = native(which);
        const dx = io.out(x.shape.slice(), 'float32');
        const dw = io.out(w.shape.slice(), 'float32');
        const [mdy, mx, mw, mr, mdx, mdw] = [io.read(dy), io.read(x), io.read(w), io.read(r), io.read(dx), io.read(dw)];
        if (addon && cols > 0) {
          addon.rmsnormBackward(mdy.f32, mdy.off * 4, mx.f32, mx.off * 4, mw.f32, mw.off * 4, mr.f32, mr.off * 4,
            mdx.f32, mdx.off * 4, mdw.f32, mdw.off * 4, rows, cols);
        } else {
          rmsnormBackwardJs(mdy.f32, mdy.off, mx.f32, mx.off, mw.f32, mw.off, mr.f32, mr.off, mdx.f32, mdx.off, mdw.f32, mdw.off, rows, cols);
        }
        return [dx, dw];
      };
    case 'P5SoftmaxXent':
      return ({ backend, inputs }) => {
        const { logits, labels, weights } = inputs as { logits: TensorInfo; labels: TensorInfo; weights: TensorInfo };
        for (const [t, n] of [[logits, 'logits'], [labels, 'labels'], [weights, 'weights']] as const) f32(t, `P5SoftmaxXent ${n}`);
        const [rows, cols] = dims2(logits, 'P5SoftmaxXent logits');
        const io = access(which, backend);
        const lab = labelsOf(io, labels, rows);
        checkLabels(lab, cols);
        const wts = weightsOf(io, weights, rows);
        const addon = native(which);
        const lse = io.out([rows], 'float32');
        let loss = 0;
        if (rows > 0 && !addon && which === 'wasm') {
          loss = xentForwardWasm(tf, asWasm(backend), logits, lab, wts, lse, rows, cols);
        } else if (rows > 0) {
          const [mx, ml] = [io.read(logits), io.read(lse)];
          loss = addon
            ? addon.xentForward(mx.f32, mx.off * 4, lab, 0, wts, 0, ml.f32, ml.off * 4, rows, cols)
            : xentForwardJs(mx.f32, mx.off, lab, wts, ml.f32, ml.off, rows, cols);
        }
        const out = io.out([], 'float32', (m) => {
          m.f32[m.off] = loss;
        });
        return [out, lse];
      };
    case 'P5SoftmaxXentGrad':
      return ({ backend, inputs }) => {
        const { logits, labels, weights, lse, dy } = inputs as { logits: TensorInfo; labels: TensorInfo; weights: TensorInfo; lse: TensorInfo; dy: TensorInfo };
        for (const [t, n] of [[logits, 'logits'], [labels, 'labels'], [weights, 'weights'], [lse, 'lse'], [dy, 'dy']] as const) f32(t, `P5SoftmaxXentGrad ${n}`);
        const [rows, cols] = dims2(logits, 'P5SoftmaxXentGrad logits');
        const io = access(which, backend);
        const lab = labelsOf(io, labels, rows);
        checkLabels(lab, cols);
        const wts = weightsOf(io, weights, rows);
        const g = io.read(dy);
        const dyv = g.f32[g.off];
        const addon = native(which);
        if (rows > 0 && !addon && which === 'wasm') {
          const e = xentBackwardWasm(tf, asWasm(backend), logits, lab, wts, lse, dyv, rows, cols);
          return { dataId: e.dataId, shape: logits.shape.slice(), dtype: 'float32' };
        }
        const dx = io.out(logits.shape.slice(), 'float32');
        if (rows > 0) {
          const [mx, ml, md] = [io.read(logits), io.read(lse), io.read(dx)];
          if (addon) addon.xentBackward(mx.f32, mx.off * 4, lab, 0, wts, 0, ml.f32, ml.off * 4, dyv, md.f32, md.off * 4, rows, cols);
          else xentBackwardJs(mx.f32, mx.off, lab, wts, ml.f32, ml.off, dyv, md.f32, md.off, rows, cols);
        }
        return dx;
      };
  }
}

export function makeFusedConfig(tf: Tf, name: FusedKernelName, which: Which): KernelConfig {
  return { kernelName: name, backendName: which, kernelFunc: makeKernel(tf, name, which) };
}
