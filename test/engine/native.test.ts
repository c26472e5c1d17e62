/**
 * The native kernels (build/Release/p5rec_native.node):
 *  - the raw SGEMM against a float64 JS reference on many shapes, every
 *    transpose combination, alpha/beta, batch broadcasting, every ISA the
 *    CPU has and 1-3 threads: within 1e-5 relative;
 *  - bias / activation epilogues, softmax, RMSNorm, argument checking;
 *  - the engine's native-backed wasm BatchMatMul / _FusedMatMul / Softmax
 *    (forward and gradients) against the 'cpu' backend within 1e-4 relative,
 *    as tables of cases (kernel-cases.ts), and that they really run natively;
 *  - the fallback when the addon fails to load: wasm kernels, one warning.
 * (native-fallback.test.ts covers P5REC_NATIVE=0 in a fresh process.)
 * Behaviour only, no timings. Needs the addon built (`npm ci` or
 * `node scripts/build-native.mjs`); the native-specific parts are skipped,
 * saying so, when it is not.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initEngine, installKernels, type Tf } from '../../src/engine/backend.js';
import {
  loadNative,
  NATIVE_ACTIVATIONS,
  NATIVE_ADDON_PATH,
  nativeInfo,
  resetNativeForTests,
  sgemm,
  type NativeActivation,
  type NativeAddon,
  type NativeIsa,
} from '../../src/engine/native.js';
import type { Tensor } from '../../src/engine/types.js';
import { checkCase, compare, fusedMatMulCases, label, matMulCases, rand, values, zeros, type KernelCase } from './kernel-cases.js';
import { AdamW } from '../../src/train/adamw.js';
import { setNativeKernels } from '../../src/engine/native.js';

const built = existsSync(NATIVE_ADDON_PATH);
const require = createRequire(import.meta.url);
const SKIP = `(skipped: ${NATIVE_ADDON_PATH} is not built; run \`node scripts/build-native.mjs\`)`;
if (!built) console.warn(`native.test.ts: native-specific tests ${SKIP}`);

interface Case {
  M: number;
  N: number;
  K: number;
  tA: boolean;
  tB: boolean;
  alpha?: number;
  beta?: number;
  batch?: number;
  /** per-operand batch strides; default: the matrix size */
  sA?: number;
  sB?: number;
  bias?: 'row' | 'scalar';
  act?: NativeActivation;
}

function activate(v: number, act: NativeActivation, slope: number): number {
  switch (act) {
    case 'relu':
      return Math.max(v, 0);
    case 'relu6':
      return Math.min(Math.max(v, 0), 6);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'elu':
      return v >= 0 ? v : Math.expm1(v);
    case 'leakyrelu':
      return v < 0 ? slope * v : v;
    default:
      return v;
  }
}

/** float64 reference of what addon.sgemm computes; returns [got, want, bound] per element. */
function runCase(addon: NativeAddon, c: Case, seed: number): { got: Float32Array; want: Float64Array; scale: Float64Array } {
  const { M, N, K, tA, tB } = c;
  const batch = c.batch ?? 1;
  const alpha = c.alpha ?? 1;
  const beta = c.beta ?? 0;
  const sA = c.sA ?? M * K;
  const sB = c.sB ?? K * N;
  const lenA = batch > 0 && M * K > 0 ? (batch - 1) * sA + M * K : 0;
  const lenB = batch > 0 && K * N > 0 ? (batch - 1) * sB + K * N : 0;
  const a = values(lenA, seed);
  const b = values(lenB, seed + 1);
  const c0 = values(batch * M * N, seed + 2);
  const bias = c.bias ? values(c.bias === 'row' ? N : 1, seed + 3) : undefined;
  const got = beta === 0 ? new Float32Array(batch * M * N).fill(NaN) : c0.slice(); // beta 0: C is never read
  const slope = 0.15;
  sgemm(addon, {
    a, b, c: got, M, N, K, transA: tA, transB: tB, alpha, beta, batch, strideA: sA, strideB: sB,
    bias, activation: c.act, leakyreluAlpha: slope,
  });
  const want = new Float64Array(batch * M * N);
  const scale = new Float64Array(batch * M * N);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        let abs = 0;
        for (let k = 0; k < K; k++) {
          const x = tA ? a[p * sA + k * M + i] : a[p * sA + i * K + k];
          const y = tB ? b[p * sB + j * K + k] : b[p * sB + k * N + j];
          s += x * y;
          abs += Math.abs(x * y);
        }
        const o = p * M * N + i * N + j;
        let v = alpha * s + (beta === 0 ? 0 : beta * c0[o]);
        if (bias) v += bias[c.bias === 'row' ? j : 0];
        want[o] = activate(v, c.act ?? 'linear', slope);
        scale[o] = Math.abs(alpha) * abs + Math.abs(beta * c0[o]) + (bias ? Math.abs(bias[c.bias === 'row' ? j : 0]) : 0);
      }
    }
  }
  return { got, want, scale };
}

/**
 * |got - want| <= rtol * (|want| + max|want|): the engine tests' metric
 * (relative to the element and to the tensor's scale). Also checked against
 * the sum of |terms|, which bounds float32 accumulation error.
 */
function expectClose(got: Float32Array, want: Float64Array, scale: Float64Array, label: string, rtol = 1e-5): void {
  expect(got.length, label).toBe(want.length);
  let max = 0;
  for (const v of want) max = Math.max(max, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= rtol * (Math.abs(want[i]) + max) && err <= rtol * (scale[i] + 1e-30) + 1e-30)) {
      throw new Error(`${label}: element ${i}: native ${got[i]} vs float64 ${want[i]} (max ${max}, sum|terms| ${scale[i]})`);
    }
  }
}

const TRANSPOSES: Array<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe.skipIf(!built)(`native addon ${built ? '' : SKIP}`, () => {
  let addon: NativeAddon;
  let isas: NativeIsa[];

  beforeAll(() => {
    resetNativeForTests();
    const n = loadNative();
    if (!n) throw new Error('the addon is built but does not load');
    addon = n;
    const best = addon.info().detectedIsa;
    isas = best === 'avx512' ? ['avx512', 'avx2', 'scalar'] : best === 'avx2' ? ['avx2', 'scalar'] : ['scalar'];
  });

  afterAll(() => {
    addon.setIsa(addon.info().detectedIsa);
    addon.setThreads(2);
  });

  it('adamw is bit-identical to the JS AdamW loop (decay / no decay ranges, gradient scale, every ISA, 1-3 threads)', () => {
    const n = 70001; // an odd size: SIMD tails
    const ranges = [
      { offset: 0, size: 40000, decay: true },
      { offset: 40000, size: 3, decay: false },
      { offset: 40003, size: n - 40003, decay: true },
    ];
    const run = (native: boolean, scale: number) => {
      setNativeKernels(native);
      try {
        const adam = new AdamW(n, ranges, { eps: 1e-6, weightDecay: 0.01 });
        const p = values(n, 5);
        for (let step = 1; step <= 3; step++) adam.step(p, values(n, 10 + step), 1e-3 * step, scale);
        return [p, adam.m, adam.v];
      } finally {
        setNativeKernels(true);
      }
    };
    for (const scale of [1, 0.3]) {
      const want = run(false, scale);
      for (const isa of isas) {
        addon.setIsa(isa);
        for (const threads of [1, 2, 3]) {
          addon.setThreads(threads);
          const got = run(true, scale);
          for (let k = 0; k < 3; k++) expect(Array.from(got[k]), `${isa} x${threads} scale ${scale} [${k}]`).toEqual(Array.from(want[k]));
        }
      }
    }
    addon.setIsa(addon.info().detectedIsa);
    addon.setThreads(2);
    const buf = new Float32Array(10);
    expect(() => addon.adamw(buf, 0, buf, 0, new Float32Array(10), 0, new Float32Array(10), 0, 10, 0.9, 0.999, 1e-6, 1, 1, 1, 1)).toThrow(/overlap/);
    expect(() => addon.adamw(buf, 0, new Float32Array(5), 0, new Float32Array(10), 0, new Float32Array(10), 0, 10, 0.9, 0.999, 1e-6, 1, 1, 1, 1)).toThrow(RangeError);
  });

  it('fused kernels reject out-of-range memory and labels', () => {
    const x = new Float32Array(12);
    expect(() => addon.rmsnormForward(x, 0, new Float32Array(4), 0, new Float32Array(12), 0, new Float32Array(2), 0, 3, 4, 1e-6)).toThrow(RangeError);
    expect(() => addon.xentForward(x, 0, new Int32Array([0, 5, 1]), 0, new Float32Array(3), 0, new Float32Array(3), 0, 3, 4)).toThrow(/outside/);
    expect(() => addon.dropoutMask(new Float32Array(4), 0, 5, 1, 2, 3, 4, 0, 2)).toThrow(RangeError);
    expect(addon.xentForward(x, 0, new Int32Array([0, 3, 1]), 0, new Float32Array([1, 0, 0.5]), 0, new Float32Array(3), 0, 3, 4)).toBeCloseTo(1.5 * Math.log(4), 5);
  });

  it('reports its ISA and threads', () => {
    const info = nativeInfo();
    expect(info).not.toBeNull();
    expect(['avx512', 'avx2', 'scalar']).toContain(info!.isa);
    expect(info!.isa).toBe(info!.detectedIsa);
    expect(info!.threads).toBeGreaterThanOrEqual(1);
    expect(info!.path).toBe(NATIVE_ADDON_PATH);
  });

  // Sizes around every blocking edge: MR (4/6/8), NR (8/16/32), 16-wide transposes, MC 144, KC 256.
  const DIMS = [1, 2, 3, 5, 7, 8, 9, 12, 13, 16, 17, 31, 32, 33, 65, 145];
  const shapes: Array<[number, number, number]> = [];
  for (let i = 0; i < DIMS.length; i++) {
    shapes.push([DIMS[i], DIMS[(i * 5 + 3) % DIMS.length], DIMS[(i * 3 + 7) % DIMS.length]]);
  }
  shapes.push([1, 1, 1], [1, 300, 1], [300, 1, 300], [300, 200, 150], [160, 37, 513], [3, 3100, 5], [200, 3100, 4]);

  it('SGEMM vs float64 on many shapes, every transpose, every ISA, 1-3 threads', () => {
    let n = 0;
    for (const isa of isas) {
      expect(addon.setIsa(isa)).toBe(isa);
      for (const threads of [1, 2, 3]) {
        addon.setThreads(threads);
        for (const [M, N, K] of shapes) {
          for (const [tA, tB] of TRANSPOSES) {
            const c: Case = { M, N, K, tA, tB };
            const r = runCase(addon, c, ++n);
            expectClose(r.got, r.want, r.scale, `${isa} x${threads} ${JSON.stringify(c)}`);
          }
        }
      }
    }
  });

  it('alpha / beta (beta 0 never reads C), K past one panel', () => {
    for (const isa of isas) {
      addon.setIsa(isa);
      for (const threads of [1, 2]) {
        addon.setThreads(threads);
        for (const [M, N, K] of [[7, 9, 11], [150, 70, 600], [33, 65, 257]]) {
          for (const [tA, tB] of TRANSPOSES) {
            for (const [alpha, beta] of [[1, 1], [0.5, -1.5], [-2, 0], [0, 0.25]]) {
              const c: Case = { M, N, K, tA, tB, alpha, beta };
              const r = runCase(addon, c, M + N + K);
              expectClose(r.got, r.want, r.scale, `${isa} x${threads} ${JSON.stringify(c)}`);
            }
          }
        }
      }
    }
  });

  it('batches: full, broadcast A or B (stride 0), merged into one GEMM, split over threads', () => {
    for (const isa of isas) {
      addon.setIsa(isa);
      for (const threads of [1, 2]) {
        addon.setThreads(threads);
        const cases: Case[] = [];
        for (const [tA, tB] of TRANSPOSES) {
          for (const [M, N, K, batch] of [[5, 7, 3, 4], [64, 64, 64, 3], [130, 40, 70, 2], [8, 8, 64, 17]]) {
            cases.push({ M, N, K, tA, tB, batch });
            cases.push({ M, N, K, tA, tB, batch, sA: 0 });
            cases.push({ M, N, K, tA, tB, batch, sB: 0 });
            cases.push({ M, N, K, tA, tB, batch, sA: 0, sB: 0 });
          }
        }
        for (const c of cases) {
          const r = runCase(addon, c, c.M * 7 + c.batch!);
          expectClose(r.got, r.want, r.scale, `${isa} x${threads} ${JSON.stringify(c)}`);
        }
      }
    }
  });

  it('bias (row of N or one value) and activations in the epilogue', () => {
    const acts = Object.keys(NATIVE_ACTIVATIONS) as NativeActivation[];
    for (const isa of isas) {
      addon.setIsa(isa);
      for (const act of acts) {
        for (const bias of [undefined, 'row', 'scalar'] as const) {
          for (const [M, N, K, batch, tA, tB] of [
            [9, 13, 6, 1, false, true],
            [150, 70, 40, 2, true, false],
            [3, 3100, 5, 1, false, false],
          ] as Array<[number, number, number, number, boolean, boolean]>) {
            const c: Case = { M, N, K, tA, tB, batch, bias, act, alpha: 3 };
            const r = runCase(addon, c, M + K);
            expectClose(r.got, r.want, r.scale, `${isa} ${JSON.stringify(c)}`);
          }
        }
      }
    }
  });

  it('empty products: M, N or batch 0 write nothing; K = 0 gives beta * C (zeros for beta 0)', () => {
    for (const [M, N, K, batch] of [[0, 5, 3, 1], [4, 0, 3, 1], [4, 5, 3, 0], [0, 0, 0, 2]]) {
      const c = new Float32Array(Math.max(1, batch * M * N) + 4).fill(7);
      addon.sgemm(new Float32Array(64), 0, new Float32Array(64), 0, c, 0, M, N, K, false, false, 1, 0, batch, M * K, K * N, M * N);
      expect(Array.from(c).every((v) => v === 7), `${M}x${N}x${K} b${batch}`).toBe(true);
    }
    for (const beta of [0, 2]) {
      const c = new Float32Array(6).fill(NaN).fill(3, 0, beta ? 6 : 0);
      addon.sgemm(new Float32Array(0), 0, new Float32Array(0), 0, c, 0, 2, 3, 0, true, true, 1, beta, 1, 0, 0, 6);
      expect(Array.from(c)).toEqual(new Array(6).fill(beta ? 6 : 0));
    }
    const r = runCase(addon, { M: 3, N: 4, K: 0, tA: false, tB: false, bias: 'row', act: 'sigmoid' }, 5);
    expectClose(r.got, r.want, r.scale, 'K=0 with bias and sigmoid');
  });

  it('flushes subnormal floats to zero inside its kernels (on the pool too), and leaves JS arithmetic on the calling thread exact', () => {
    const tiny = 1e-39; // a float32 subnormal (the smallest normal is ~1.18e-38)
    expect(Math.fround(tiny)).toBeGreaterThan(0);
    // One element on the calling thread: a subnormal input reads as 0, and a subnormal product is flushed to 0.
    const c = new Float32Array(1).fill(NaN);
    addon.sgemm(Float32Array.of(tiny), 0, Float32Array.of(1), 0, c, 0, 1, 1, 1, false, false, 1, 0, 1, 0, 0, 0);
    expect(c[0]).toBe(0);
    addon.sgemm(Float32Array.of(1e-20), 0, Float32Array.of(1e-20), 0, c, 0, 1, 1, 1, false, false, 1, 0, 1, 0, 0, 0);
    expect(c[0]).toBe(0);
    // A product large enough for the pool: 128 subnormals would sum to a normal 1.28e-37 each; read as 0 they give 0.
    const [M, N, K] = [96, 96, 128];
    const big = new Float32Array(M * N).fill(NaN);
    addon.sgemm(new Float32Array(M * K).fill(tiny), 0, new Float32Array(K * N).fill(1), 0, big, 0, M, N, K, false, false, 1, 0, 1, 0, 0, 0);
    expect(big.every((v) => v === 0)).toBe(true);
    // Normal values are untouched: the same product with 1e-30 in place of the subnormal.
    addon.sgemm(new Float32Array(M * K).fill(1e-30), 0, new Float32Array(K * N).fill(1), 0, big, 0, M, N, K, false, false, 1, 0, 1, 0, 0, 0);
    expect(big.every((v) => Math.abs(v - 1.28e-28) < 1e-5 * 1.28e-28)).toBe(true);
    // The mode was restored: JS doubles keep their subnormals after the calls.
    const half = [Number.MIN_VALUE, 3];
    expect(half[0] * half[1]).toBe(3 * Number.MIN_VALUE);
    expect(half[0] * half[1]).toBeGreaterThan(0);
  });

  it('works on any ArrayBuffer view at byte offsets, incl. a WebAssembly.Memory that grew', () => {
    // (the WebAssembly global is not in this project's type libs)
    const { WebAssembly: WA } = globalThis as unknown as {
      WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer; grow(pages: number): number } };
    };
    const mem = new WA.Memory({ initial: 1 });
    const M = 6;
    const N = 5;
    const K = 4;
    const a = values(M * K, 1);
    const b = values(K * N, 2);
    const ref = new Float32Array(M * N);
    sgemm(addon, { a, b, c: ref, M, N, K });
    const old = mem.buffer;
    mem.grow(1); // detaches `old`
    const heap = mem.buffer;
    new Float32Array(heap, 64, M * K).set(a);
    new Float32Array(heap, 65536, K * N).set(b);
    addon.sgemm(heap, 64, heap, 65536, heap, 70000, M, N, K, false, false, 1, 0, 1, 0, 0, 0);
    expect(Array.from(new Float32Array(heap, 70000, M * N))).toEqual(Array.from(ref));
    // a view: its own byteOffset counts too
    const view = new Uint8Array(heap, 32);
    addon.sgemm(view, 32, view, 65536 - 32, view, 80000 - 32, M, N, K, false, false, 1, 0, 1, 0, 0, 0);
    expect(Array.from(new Float32Array(heap, 80000, M * N))).toEqual(Array.from(ref));
    expect(() => addon.sgemm(old, 64, heap, 65536, heap, 70000, M, N, K, false, false, 1, 0, 1, 0, 0, 0)).toThrow(
      /detached/,
    );
  });

  it('rejects bad arguments instead of touching memory out of bounds', () => {
    const buf = new Float32Array(100);
    const out = new Float32Array(100);
    const call = (over: Partial<Record<'aOff' | 'cOff' | 'M' | 'batch' | 'sC', number>>, c = out) =>
      addon.sgemm(buf, over.aOff ?? 0, buf, 0, c, over.cOff ?? 0, over.M ?? 5, 5, 4, false, false, 1, 0,
        over.batch ?? 1, 20, 20, over.sC ?? 25);
    expect(() => call({})).not.toThrow();
    expect(() => call({ aOff: 2 })).toThrow(/multiple of 4/);
    expect(() => call({ aOff: 400 - 16 * 4 })).toThrow(/exceed/);
    expect(() => call({ cOff: 300 })).not.toThrow(); // ends exactly at the end
    expect(() => call({ cOff: 304 })).toThrow(/exceed/);
    expect(() => call({ M: 21 })).toThrow(/exceed/);
    expect(() => call({ M: -1 })).toThrow(/integer/);
    expect(() => call({ M: 2.5 })).toThrow(/integer/);
    expect(() => call({ batch: 5 })).toThrow(/exceed/);
    expect(() => call({ batch: 2, sC: 3 })).toThrow(/strideC/);
    expect(() => call({}, buf)).toThrow(/overlaps/);
    expect(() => addon.sgemm({} as never, 0, buf, 0, out, 0, 1, 1, 1, false, false, 1, 0, 1, 1, 1, 1)).toThrow(
      /ArrayBuffer/,
    );
    expect(() => addon.sgemm(buf, 0, buf, 0, out, 0, 1, 1, 1, false, false, 1, 0, 1, 1, 1, 1, buf, 0, 3, 0, 0)).toThrow(
      /biasLen/,
    );
    expect(() => addon.sgemm(buf, 0, buf, 0, out, 0, 1, 1, 1, false, false, 1, 0, 1, 1, 1, 1, null, 0, 0, 9, 0)).toThrow(
      /activation/,
    );
    expect(() => addon.setThreads(0)).toThrow();
    expect(() => addon.setIsa('sse9' as never)).toThrow();
  });

  it('concurrent calls from worker threads (the pool is shared; a busy pool runs the call on its own thread)', async () => {
    const { Worker } = await import('node:worker_threads');
    addon.setThreads(2);
    // Each worker loads the addon (context-aware) and checks 40 products against its first result.
    const src = `
      const { parentPort, workerData } = require('node:worker_threads');
      const n = require(workerData.path);
      const M = 96, N = 80, K = 300;
      const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37 + workerData.id));
      const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
      const ref = new Float32Array(M * N);
      n.sgemm(a, 0, b, 0, ref, 0, M, N, K, workerData.id % 2 === 1, false, 1, 0, 1, 0, 0, 0);
      let bad = 0;
      for (let r = 0; r < 40; r++) {
        const c = new Float32Array(M * N);
        n.sgemm(a, 0, b, 0, c, 0, M, N, K, workerData.id % 2 === 1, false, 1, 0, 1, 0, 0, 0);
        for (let i = 0; i < c.length; i++) if (c[i] !== ref[i]) bad++;
      }
      parentPort.postMessage(bad);`;
    const runs = [0, 1, 2].map(
      (id) =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(src, { eval: true, workerData: { path: NATIVE_ADDON_PATH, id } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    // and the main thread at the same time
    for (let r = 0; r < 20; r++) {
      const c = runCase(addon, { M: 150, N: 70, K: 300, tA: false, tB: true }, 77);
      expectClose(c.got, c.want, c.scale, `main thread, round ${r}`);
    }
    expect(await Promise.all(runs)).toEqual([0, 0, 0]);
  });

  it('softmax (in place, row-wise) vs float64 within 1e-5 relative, incl. -Infinity, NaN and underflow', () => {
    for (const [rows, cols] of [[1, 1], [3, 17], [64, 64], [300, 8000], [5, 1000]]) {
      const x = values(rows * cols, rows + cols).map((v) => v * 12);
      x[0] = -Infinity;
      if (cols > 3) x[cols + 2] = 88.5;
      const ref = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        let mx = -Infinity;
        for (let j = 0; j < cols; j++) mx = Math.max(mx, x[r * cols + j]);
        let s = 0;
        for (let j = 0; j < cols; j++) s += Math.exp(x[r * cols + j] - mx);
        for (let j = 0; j < cols; j++) ref[r * cols + j] = Math.exp(x[r * cols + j] - mx) / s;
      }
      const got = x.slice();
      addon.softmax(got, 0, rows, cols);
      for (let i = 0; i < ref.length; i++) {
        if (Number.isNaN(ref[i]) ? !Number.isNaN(got[i]) : !(Math.abs(got[i] - ref[i]) <= 1e-5 * ref[i] + 1e-30)) {
          throw new Error(`softmax ${rows}x${cols} [${i}]: ${got[i]} vs ${ref[i]}`);
        }
      }
    }
    // out of place, at byte offsets
    const src = values(3 * 40, 9).map((v) => v * 5);
    const dst = new Float32Array(4 + 3 * 40);
    addon.softmax(src, 0, 3, 40, dst, 16);
    const inPlace = src.slice();
    addon.softmax(inPlace, 0, 3, 40);
    expect(Array.from(dst.subarray(4))).toEqual(Array.from(inPlace));
    expect(() => addon.softmax(dst, 0, 2, 40, dst, 4)).toThrow(/overlaps/);
    const nan = new Float32Array([1, NaN, 2, 0, 0, 0, -Infinity, -Infinity]);
    addon.softmax(nan, 0, 4, 2);
    expect(Array.from(nan.slice(0, 2)).every(Number.isNaN)).toBe(true);
    expect(Array.from(nan.slice(4, 6))).toEqual([0.5, 0.5]);
    expect(Array.from(nan.slice(6)).every(Number.isNaN)).toBe(true); // all -inf: NaN, like exp(-inf - -inf)
  });

  it('RMSNorm vs float64, with and without a weight, in place', () => {
    for (const [rows, cols] of [[1, 1], [7, 33], [2048, 256]]) {
      const x = values(rows * cols, cols);
      const w = values(cols, 3);
      for (const weight of [w, null]) {
        const y = new Float32Array(rows * cols);
        addon.rmsnorm(x, 0, weight, 0, y, 0, rows, cols, 1e-6);
        const inPlace = x.slice();
        addon.rmsnorm(inPlace, 0, weight, 0, inPlace, 0, rows, cols, 1e-6);
        expect(inPlace.every((v, i) => v === y[i]), 'in place = out of place').toBe(true);
        for (let r = 0; r < rows; r++) {
          let ss = 0;
          for (let j = 0; j < cols; j++) ss += x[r * cols + j] ** 2;
          const inv = 1 / Math.sqrt(ss / cols + 1e-6);
          for (let j = 0; j < cols; j++) {
            const want = x[r * cols + j] * inv * (weight ? weight[j] : 1);
            if (!(Math.abs(y[r * cols + j] - want) <= 1e-5 * (Math.abs(want) + 1))) {
              throw new Error(`rmsnorm ${rows}x${cols} [${r}, ${j}]: ${y[r * cols + j]} vs ${want}`);
            }
          }
        }
      }
    }
  });
});

// ---------------------------------------------------------------- engine kernels
let tf: Tf;

/** Loads the real addon through a wrapper that counts sgemm (and softmax) calls. */
function countingLoader(counter: { calls: number; softmax?: number }) {
  return (p: string) => {
    const real = require(p) as NativeAddon;
    return {
      ...real,
      sgemm: (...args: Parameters<NativeAddon['sgemm']>) => {
        counter.calls++;
        return real.sgemm(...args);
      },
      softmax: (...args: Parameters<NativeAddon['softmax']>) => {
        counter.softmax = (counter.softmax ?? 0) + 1;
        return real.softmax(...args);
      },
    };
  };
}

/** Checks a case and that its forward pass did (or did not) call the addon (`count` reads the counter). */
function checkNative(c: KernelCase, count: () => number, expectNative: () => boolean): void {
  checkCase(c, {
    forward: (_, run) => {
      const before = count();
      run();
      expect(count() > before, `${label(c)}: ran natively`).toBe(expectNative());
    },
  });
}

const MATMUL_CASES = matMulCases([
  { a: [5, 7], b: [7, 3], grad: true },
  { a: [1, 6, 9], b: [1, 9, 4], grad: true },
  { a: [3, 33, 65], b: [3, 65, 17], grad: true },
  { a: [2, 3, 5, 7], b: [2, 3, 7, 4], grad: true },
  { a: [64, 300], b: [300, 129], grad: true },
  { a: [200, 512], b: [512, 40], grad: true, note: 'multi-threaded, K past one panel' },
  { a: [6, 3, 4], b: [6, 4, 2], grad: true, note: 'tiny items' },
  { a: [4, 5, 7], b: [7, 3], grad: false, note: 'b broadcast (rank 2)' },
  { a: [1, 5, 7], b: [3, 7, 4], grad: false, note: 'a broadcast' },
  { a: [2, 1, 5, 7], b: [1, 3, 7, 4], grad: false, note: 'both broadcast: one call per item' },
  { a: [3, 5, 7], b: [1, 7, 4], grad: false },
]);

/** Zero-sized products (no native call needed). */
const EMPTY_MATMUL_CASES: KernelCase[] = [
  { kernel: 'BatchMatMul', name: 'K=0', op: 'matMul', inputs: [zeros([3, 0]), zeros([0, 4])] },
  { kernel: 'BatchMatMul', name: 'M=0', op: 'matMul', inputs: [zeros([2, 0, 5]), zeros([2, 5, 4])] },
  { kernel: 'BatchMatMul', name: 'batch 0', op: 'matMul', inputs: [zeros([0, 3, 5]), zeros([0, 5, 4])] },
];

const FUSED_CASES = fusedMatMulCases(
  [
    { a: [9, 13], b: [13, 6] },
    { a: [3, 9, 13], b: [3, 13, 6] },
    { a: [3, 9, 13], b: [1, 13, 6] },
    { a: [130, 70], b: [70, 90] },
  ],
  [[false, false], [true, true], [false, true]],
  [null, ['N'], [1], [1, 'N'], ['M', 'N']],
  ['linear', 'relu', 'sigmoid'],
);

/** Softmax on the last axis, float32: native (forward rows); gradients; edge cases. */
const SOFTMAX_SHAPES = [[5], [3, 7], [2, 3, 33], [64, 8000], [2, 4, 64, 64]];
const SOFTMAX_CASES: KernelCase[] = SOFTMAX_SHAPES.flatMap((shape): KernelCase[] => [
  { kernel: 'Softmax', name: JSON.stringify(shape), op: 'softmax', inputs: [{ shape, seed: 21, scale: 9 }] },
  { kernel: 'Softmax', name: `${JSON.stringify(shape)} gradient`, op: 'softmax', inputs: [{ shape, seed: 23, scale: 4 }], check: 'grad', gradSeed: 22 },
]);
const SOFTMAX_EDGE_CASES: KernelCase[] = [
  { kernel: 'Softmax', name: 'empty', op: 'softmax', inputs: [zeros([0, 5])] },
  { kernel: 'Softmax', name: '-inf', op: 'softmax', inputs: [{ shape: [2, 2], values: [0, -Infinity, 1, -Infinity] }] },
];

describe('engine: native-backed wasm BatchMatMul / _FusedMatMul / Softmax vs cpu', () => {
  const counter: { calls: number; softmax?: number } = { calls: 0 };
  beforeAll(async () => {
    ({ tf } = await initEngine({ backend: 'wasm' }));
    resetNativeForTests(built ? countingLoader(counter) : null);
    installKernels(tf, 'all');
  });
  afterAll(() => {
    resetNativeForTests();
    installKernels(tf, 'all');
    tf.setBackend('wasm');
  });

  for (const c of [...MATMUL_CASES, ...FUSED_CASES]) it(`native ${label(c)}`, () => checkNative(c, () => counter.calls, () => built));
  for (const c of SOFTMAX_CASES) it(`native ${label(c)}`, () => checkNative(c, () => counter.softmax ?? 0, () => built));
  for (const c of [...EMPTY_MATMUL_CASES, ...SOFTMAX_EDGE_CASES]) it(label(c), () => checkCase(c));

  it('leaves no tensors or heap registrations behind', () => {
    tf.setBackend('wasm');
    const backend = tf.backend();
    const tensors = tf.memory().numTensors;
    const ids = backend.numDataIds();
    tf.tidy(() => {
      const p = rand([3, 24, 40], 4);
      const q = rand([3, 40, 16], 5);
      tf.matMul(p, q).dataSync();
      tf.grads((u: Tensor, v: Tensor) => tf.sum(tf.matMul(u, v, true, true)))([rand([3, 40, 24], 6), rand([3, 16, 40], 7)]);
      tf.fused.matMul({ a: rand([2, 9, 13], 8), b: rand([13, 6], 9), bias: rand([9, 6], 10), activation: 'prelu', preluActivationWeights: rand([6], 11) }).dataSync();
    });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(ids);
  });

  it('survives heap growth between calls (views are taken after allocating)', () => {
    tf.setBackend('wasm');
    tf.tidy(() => {
      const a = rand([64, 96], 12);
      const b = rand([96, 48], 13);
      const first = Array.from(tf.matMul(a, b).dataSync());
      const big = tf.zeros([64 * 1024 * 1024 / 4]); // 64 MB: the heap has to grow
      const again = Array.from(tf.matMul(a, b).dataSync());
      big.dispose();
      expect(again).toEqual(first);
    });
  });
});

describe('engine: installKernels selects native or wasm-custom matmul', () => {
  const counter = { calls: 0 };
  beforeAll(async () => {
    ({ tf } = await initEngine({ backend: 'wasm' }));
    resetNativeForTests(built ? countingLoader(counter) : null);
    installKernels(tf, 'all', { native: false });
  });
  afterAll(() => {
    resetNativeForTests();
    installKernels(tf, 'all');
  });

  // the wasm (XNNPACK) path stays correct and is what { native: false } runs
  for (const c of MATMUL_CASES) it(`wasm-custom ${label(c)}`, () => checkNative(c, () => counter.calls, () => false));

  it('native again by default; stock when BatchMatMul is not listed', () => {
    installKernels(tf, 'all');
    const before = counter.calls;
    compare('native', () => tf.matMul(rand([20, 30], 1), rand([30, 10], 2)));
    expect(counter.calls > before).toBe(built);
    installKernels(tf, ['UnsortedSegmentSum']);
    const mid = counter.calls;
    compare('stock', () => tf.matMul(rand([30, 20], 1), rand([10, 30], 2), true, true));
    expect(counter.calls).toBe(mid);
    installKernels(tf, 'all', { native: false });
  });
});

describe('engine: fallback when the addon cannot load', () => {
  let writes: string[];
  let spy: ReturnType<typeof vi.spyOn>;
  beforeAll(async () => {
    ({ tf } = await initEngine({ backend: 'wasm' }));
  });
  afterEach(() => {
    spy?.mockRestore();
    resetNativeForTests();
    installKernels(tf, 'all');
  });

  it('uses the wasm kernels and warns exactly once', () => {
    writes = [];
    spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    resetNativeForTests(() => {
      throw new Error('libfoo.so: cannot open shared object file\nmore detail');
    });
    installKernels(tf, 'all'); // reinstalling does not rebuild configs; the kernels ask for the addon per call
    expect(loadNative()).toBeNull();
    compare('fallback forward', () => tf.matMul(rand([3, 20, 30], 1), rand([3, 10, 30], 2), false, true));
    compare('fallback fused', () => tf.fused.matMul({ a: rand([20, 30], 1), b: rand([30, 10], 2), bias: rand([10], 3), activation: 'relu' }));
    expect(loadNative()).toBeNull();
    expect(nativeInfo()).toBeNull();
    const lines = writes.join('').split('\n').filter((l) => l.includes('p5rec: native'));
    expect(lines).toEqual([
      'p5rec: native kernels unavailable (failed to load build/Release/p5rec_native.node: libfoo.so: cannot open shared object file); using wasm kernels',
    ]);
  });

  it('a missing build says how to build it', () => {
    writes = [];
    spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    resetNativeForTests(() => {
      throw Object.assign(new Error(`Cannot find module '${NATIVE_ADDON_PATH}'`), { code: 'MODULE_NOT_FOUND' });
    });
    expect(loadNative()).toBeNull();
    expect(writes.join('')).toMatch(/^p5rec: native kernels unavailable \(build\/Release\/p5rec_native\.node is not built; .*scripts\/build-native\.mjs.*\); using wasm kernels\n$/);
  });

  it('a stale build is refused', () => {
    spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    resetNativeForTests(() => ({ sgemm() {}, info: () => ({ version: 0 }) }));
    expect(loadNative()).toBeNull();
  });
});
