/**
 * The optional native kernels (`build/Release/p5rec_native.node`, built from
 * native/ by `npm install`; see docs/native.md).
 *
 * `loadNative()` loads the addon once per thread; when it is missing, fails
 * to load, is stale, or `P5REC_NATIVE=0` is set, it returns null and prints
 * ONE line on stderr (once per process):
 *
 *   p5rec: native kernels unavailable (<reason>); using wasm kernels
 *
 * The engine's wasm BatchMatMul / _FusedMatMul / Softmax kernels call the
 * addon zero-copy on the wasm heap when it is loaded and enabled
 * (`setNativeKernels`, or `installKernels(tf, ..., { native })`), and run
 * their wasm code otherwise.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

export type NativeIsa = 'avx512' | 'avx2' | 'scalar';

/** Memory the addon reads/writes: an ArrayBuffer (e.g. the wasm heap) or any view of one. */
export type NativeMemory = ArrayBufferLike | ArrayBufferView;

/** Activation codes of the sgemm epilogue. */
export const NATIVE_ACTIVATIONS = {
  linear: 0,
  relu: 1,
  relu6: 2,
  sigmoid: 3,
  elu: 4,
  leakyrelu: 5,
} as const;
export type NativeActivation = keyof typeof NATIVE_ACTIVATIONS;

/** The raw addon: positional arguments, byte offsets, element strides (see native/p5rec_native.cc). */
export interface NativeAddon {
  sgemm(
    a: NativeMemory, aOff: number,
    b: NativeMemory, bOff: number,
    c: NativeMemory, cOff: number,
    M: number, N: number, K: number,
    transA: boolean, transB: boolean,
    alpha: number, beta: number,
    batch: number, strideA: number, strideB: number, strideC: number,
    bias?: NativeMemory | null, biasOff?: number, biasLen?: number,
    activation?: number, activationAlpha?: number,
  ): void;
  /** row-wise softmax of x into y (default: in place) */
  softmax(x: NativeMemory, xOff: number, rows: number, cols: number, y?: NativeMemory | null, yOff?: number): void;
  rmsnorm(
    x: NativeMemory, xOff: number,
    w: NativeMemory | null, wOff: number,
    y: NativeMemory, yOff: number,
    rows: number, cols: number, eps: number,
  ): void;
  /** Counter-based inverted-dropout multipliers (0 or keep) into y, as models/t5/ops.ts's dropoutMask (c, d unused) */
  dropoutMask(y: NativeMemory, yOff: number, n: number, a: number, b: number, c: number, d: number, threshold: number, keep: number): void;
  /** y = x·r·w and r = 1/sqrt(mean(x²) + eps) per row */
  rmsnormForward(
    x: NativeMemory, xOff: number, w: NativeMemory, wOff: number,
    y: NativeMemory, yOff: number, r: NativeMemory, rOff: number,
    rows: number, cols: number, eps: number,
  ): void;
  /** dx, dw of rmsnormForward (dx, dw written) */
  rmsnormBackward(
    dy: NativeMemory, dyOff: number, x: NativeMemory, xOff: number, w: NativeMemory, wOff: number,
    r: NativeMemory, rOff: number, dx: NativeMemory, dxOff: number, dw: NativeMemory, dwOff: number,
    rows: number, cols: number,
  ): void;
  /** lse per row written; returns Σ weight·(lse − x[target]) */
  xentForward(
    x: NativeMemory, xOff: number, target: NativeMemory, tOff: number, weight: NativeMemory, wOff: number,
    lse: NativeMemory, lseOff: number, rows: number, cols: number,
  ): number;
  /** dx = dy·weight·(softmax(x) − onehot(target)) */
  xentBackward(
    x: NativeMemory, xOff: number, target: NativeMemory, tOff: number, weight: NativeMemory, wOff: number,
    lse: NativeMemory, lseOff: number, dy: number, dx: NativeMemory, dxOff: number, rows: number, cols: number,
  ): void;
  /**
   * Fused T5 attention (native/attention.h). dims: [B, H, Lq, Lk, dk, qStride,
   * kStride, vStride, causal 0/1]; q/k/v offsets point at head 0's first
   * column, rows qStride/kStride/vStride floats apart; bias [H, Lq, Lk] and
   * mask [B, Lk] (additive) may be null; dropout: null or [a, b, threshold,
   * keep]. Writes o [B*Lq, H*dk] and p = softmax [B, H, Lq, Lk].
   */
  attentionForward(
    q: NativeMemory, qOff: number, k: NativeMemory, kOff: number, v: NativeMemory, vOff: number,
    bias: NativeMemory | null, biasOff: number, mask: NativeMemory | null, maskOff: number,
    o: NativeMemory, oOff: number, p: NativeMemory, pOff: number,
    dims: number[], dropout: number[] | null,
  ): void;
  /** Its gradients: dq/dk/dv in q/k/v's layouts (head columns only), dbias [H, Lq, Lk] summed over the batch (may be null) */
  attentionBackward(
    q: NativeMemory, qOff: number, k: NativeMemory, kOff: number, v: NativeMemory, vOff: number,
    p: NativeMemory, pOff: number, dout: NativeMemory, doutOff: number,
    dq: NativeMemory, dqOff: number, dk: NativeMemory, dkOff: number, dv: NativeMemory, dvOff: number,
    dbias: NativeMemory | null, dbiasOff: number, dims: number[], dropout: number[] | null,
  ): void;
  /** AdamW in place over n floats at the byte offsets; bit-identical to src/train/adamw.ts */
  adamw(
    params: NativeMemory, pOff: number, grads: NativeMemory, gOff: number,
    m: NativeMemory, mOff: number, v: NativeMemory, vOff: number, n: number,
    beta1: number, beta2: number, eps: number, keep: number, stepSize: number, sqrtBc2: number, gradScale: number,
  ): void;
  info(): { isa: NativeIsa; detectedIsa: NativeIsa; threads: number; version: number };
  setThreads(n: number): number;
  setIsa(isa: NativeIsa): NativeIsa;
}

export interface NativeInfo {
  /** micro-kernels in use */
  isa: NativeIsa;
  /** best the CPU supports */
  detectedIsa: NativeIsa;
  /** threads per call (the caller counts as one; env P5REC_THREADS, default min(2, cores)) */
  threads: number;
  path: string;
}

/** The addon ABI this code expects (`info().version`). */
export const NATIVE_ABI_VERSION = 3;

/** Absolute path of the built addon (same from src/engine and dist/engine). */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../build/Release/p5rec_native.node', import.meta.url));

export type NativeLoader = (path: string) => unknown;

const require = createRequire(import.meta.url);
const defaultLoader: NativeLoader = (p) => require(p);

let loader: NativeLoader = defaultLoader;
let loaded: NativeAddon | null | undefined;
let reason: string | null = null;
let warned = false;
let kernelsEnabled = true;

/** Set in process.env after warning, so worker threads started later stay quiet. */
const WARNED_ENV = 'P5REC_NATIVE_WARNED';

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].trim();
}

function tryLoad(): NativeAddon | null {
  const flag = process.env.P5REC_NATIVE;
  if (flag !== undefined && ['0', 'false', 'off', 'no'].includes(flag.trim().toLowerCase())) {
    reason = `disabled by P5REC_NATIVE=${flag}`;
    return null;
  }
  let mod: unknown;
  try {
    mod = loader(NATIVE_ADDON_PATH);
  } catch (err) {
    const code = (err as { code?: string }).code;
    reason =
      code === 'MODULE_NOT_FOUND' || code === 'ENOENT'
        ? 'build/Release/p5rec_native.node is not built; `npm rebuild p5rec` or `node scripts/build-native.mjs` builds it'
        : `failed to load build/Release/p5rec_native.node: ${firstLine(err)}`;
    return null;
  }
  const addon = mod as Partial<NativeAddon>;
  if (!addon || typeof addon.sgemm !== 'function' || typeof addon.info !== 'function') {
    reason = 'build/Release/p5rec_native.node is not the p5rec addon';
    return null;
  }
  try {
    const v = addon.info().version;
    if (v !== NATIVE_ABI_VERSION) {
      reason = `stale build/Release/p5rec_native.node (version ${v}, expected ${NATIVE_ABI_VERSION}); rebuild it`;
      return null;
    }
  } catch (err) {
    reason = `build/Release/p5rec_native.node: ${firstLine(err)}`;
    return null;
  }
  return addon as NativeAddon;
}

function warnOnce(): void {
  if (warned || process.env[WARNED_ENV] === '1') return;
  warned = true;
  process.env[WARNED_ENV] = '1';
  process.stderr.write(`p5rec: native kernels unavailable (${reason}); using wasm kernels\n`);
}

/** The addon, or null (then one warning line per process says why). Cached. */
export function loadNative(): NativeAddon | null {
  if (loaded === undefined) {
    loaded = tryLoad();
    if (!loaded) warnOnce();
  }
  return loaded;
}

/** Why the addon is unavailable (null when it loaded or was not tried yet). */
export function nativeUnavailableReason(): string | null {
  return loaded === undefined ? null : reason;
}

/** ISA / threads of the loaded addon, or null when it is unavailable. */
export function nativeInfo(): NativeInfo | null {
  const n = loadNative();
  if (!n) return null;
  const i = n.info();
  return { isa: i.isa, detectedIsa: i.detectedIsa, threads: i.threads, path: NATIVE_ADDON_PATH };
}

/**
 * Whether the engine's native-backed wasm kernels (BatchMatMul,
 * _FusedMatMul, Softmax) use the addon when it is loaded. Default true.
 */
export function setNativeKernels(on: boolean): void {
  kernelsEnabled = on;
}

export function nativeKernelsEnabled(): boolean {
  return kernelsEnabled;
}

/** The addon when it is loaded and the kernels may use it; else null. */
export function nativeForKernels(): NativeAddon | null {
  return kernelsEnabled ? loadNative() : null;
}

/**
 * The addon if it is ALREADY loaded (by the wasm kernels) and the kernels may
 * use it; never loads it or warns (for code outside the tensor kernels, e.g.
 * the optimizer, that must stay quiet on the cpu backend).
 */
export function nativeIfLoaded(): NativeAddon | null {
  return kernelsEnabled && loaded ? loaded : null;
}

/** Threads per native call (1 = the calling thread only). Returns the new count. */
export function setNativeThreads(n: number): number {
  const addon = loadNative();
  if (!addon) throw new Error(`native kernels unavailable (${reason})`);
  return addon.setThreads(n);
}

/**
 * Tests: replace the loader (`null` restores `require`) and forget the
 * cached result and the warning, so the next `loadNative()` loads again.
 */
export function resetNativeForTests(newLoader: NativeLoader | null = null): void {
  loader = newLoader ?? defaultLoader;
  loaded = undefined;
  reason = null;
  warned = false;
  if (isMainThread) delete process.env[WARNED_ENV];
}

export interface SgemmOptions {
  /** row-major M x K (K x M when transA) */
  a: Float32Array;
  /** row-major K x N (N x K when transB) */
  b: Float32Array;
  /** row-major M x N, written (and read when beta != 0) */
  c: Float32Array;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** matrices per operand (default 1) */
  batch?: number;
  /** floats between batch items (defaults: the matrix size; 0 = the same matrix for all) */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** added to every row (length N, or 1) */
  bias?: Float32Array;
  activation?: NativeActivation;
  leakyreluAlpha?: number;
}

/**
 * c = act(alpha * op(a) op(b) + beta * c + bias) on Float32Arrays (a
 * convenience over `addon.sgemm`, which takes byte offsets into any buffer).
 */
export function sgemm(addon: NativeAddon, o: SgemmOptions): void {
  const { M, N, K } = o;
  const act = NATIVE_ACTIVATIONS[o.activation ?? 'linear'];
  addon.sgemm(
    o.a, 0, o.b, 0, o.c, 0, M, N, K,
    !!o.transA, !!o.transB, o.alpha ?? 1, o.beta ?? 0,
    o.batch ?? 1, o.strideA ?? M * K, o.strideB ?? K * N, o.strideC ?? M * N,
    o.bias ?? null, 0, o.bias ? o.bias.length : 0, act, o.leakyreluAlpha ?? 0.2,
  );
}
