/**
 * The tensor-backend seam. Every model in p5rec gets tfjs from here:
 *
 *   const { tf } = await initEngine();         // wasm (default)
 *   const { tf } = await initEngine({ backend: 'cpu' });
 *   ... later, anywhere: tf().matMul(...)
 *
 * tfjs is loaded as CommonJS through `createRequire` (the ESM build of
 * tfjs-core breaks on Node 20), so core, the cpu backend and the wasm backend
 * share one tfjs-core instance (checked below). The CJS core bundle has no
 * gradients and no chained ops; `@tensorflow/tfjs` (its node bundle) is
 * required for them. The wasm backend runs the single-threaded SIMD binary
 * (threaded wasm does not start in Node) and gets the custom kernels in
 * ./kernels once, right after it is initialised (the cpu backend gets its
 * one custom kernel when tfjs is loaded).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { P5recError } from '../errors.js';
import { installKernels, reinstallKernels } from './kernels/index.js';
import type { Tensor, Tf } from './types.js';
import { asWasm } from './kernels/wasm_util.js';
import { nativeForKernels } from './native.js';

export type BackendName = 'wasm' | 'cpu' | 'tensorflow' | 'cuda';

export const BACKENDS: readonly BackendName[] = ['wasm', 'cpu', 'tensorflow', 'cuda'];

export interface EngineOptions {
  /** default 'wasm' */
  backend?: BackendName;
}

export interface Engine {
  tf: Tf;
  backend: BackendName;
}

const require = createRequire(import.meta.url);

let core: Tf | null = null;
let current: BackendName | null = null;
let wasmReady: Promise<void> | null = null;
/** Which native package was loaded ('tensorflow' or 'cuda'); they cannot coexist. */
let nativeLoaded: 'tensorflow' | 'cuda' | null = null;
let queue: Promise<unknown> = Promise.resolve();

function loadCore(): Tf {
  if (!core) {
    const tf = require('@tensorflow/tfjs-core') as Tf;
    require('@tensorflow/tfjs-backend-cpu');
    if (!tf.findBackendFactory('cpu')) {
      throw new P5recError(
        '@tensorflow/tfjs-backend-cpu registered itself with another copy of @tensorflow/tfjs-core; ' +
          'install matching versions (4.22.0) so that npm dedupes them',
      );
    }
    // The CJS bundles of tfjs-core register no gradients and no chained ops
    // (t.sum()); the umbrella package's node bundle registers both, into the
    // same (global) registries and Tensor class.
    require('@tensorflow/tfjs');
    if (!tf.getGradient('BatchMatMul') || !tf.getGradient('GatherV2')) {
      throw new P5recError(
        '@tensorflow/tfjs did not register the tfjs gradients with @tensorflow/tfjs-core; ' +
          'install matching versions (4.22.0) so that npm dedupes them',
      );
    }
    installKernels(tf, 'all'); // cpu ones now; wasm ones once wasm is up
    core = tf;
  }
  return core;
}

function initWasm(tf: Tf): Promise<void> {
  if (!wasmReady) {
    wasmReady = (async () => {
      const wasm = require('@tensorflow/tfjs-backend-wasm') as {
        setWasmPaths(prefix: string): void;
      };
      if (!tf.findBackendFactory('wasm')) {
        throw new P5recError(
          '@tensorflow/tfjs-backend-wasm registered itself with another copy of @tensorflow/tfjs-core; ' +
            'install matching versions (4.22.0) so that npm dedupes them',
        );
      }
      // Threaded wasm needs Web Workers from a Blob URL, which Node lacks.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      // The package main is dist/tf-backend-wasm.node.js; the .wasm binaries
      // (tfjs-backend-wasm-simd.wasm, ...) sit next to it.
      const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
      wasm.setWasmPaths(dir);
      const ok = await tf.setBackend('wasm').catch((err: unknown) => {
        throw new P5recError(`could not start the wasm backend (binaries in ${dir}): ${describe(err)}`);
      });
      if (!ok || tf.getBackend() !== 'wasm') {
        throw new P5recError(`could not start the wasm backend (binaries in ${dir})`);
      }
      reinstallKernels(tf);
    })();
    wasmReady.catch(() => {
      wasmReady = null;
    });
  }
  return wasmReady;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err) return String((err as { message: unknown }).message);
  return String(err);
}

function loadNative(tf: Tf, which: 'tensorflow' | 'cuda'): void {
  const pkg = which === 'cuda' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  if (nativeLoaded && nativeLoaded !== which) {
    const other = nativeLoaded === 'cuda' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
    throw new P5recError(`backend '${which}' needs ${pkg}, but ${other} is already loaded in this process`);
  }
  if (!nativeLoaded) {
    try {
      require(pkg);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const missing = code === 'MODULE_NOT_FOUND' && describe(err).includes(`'${pkg}'`);
      const why = missing ? 'is not installed' : `failed to load (${describe(err)})`;
      throw new P5recError(
        `backend '${which}' needs the optional package ${pkg}, which ${why}. ` +
          `Install it next to p5rec with: npm install ${pkg}@4.22.0` +
          (which === 'cuda' ? ' (needs a CUDA-capable GPU with CUDA 11.x and cuDNN 8 on Linux)' : ''),
      );
    }
    nativeLoaded = which;
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new P5recError(
      `${pkg} registered its backend with another copy of @tensorflow/tfjs-core; ` +
        'install version 4.22.0 so that npm dedupes @tensorflow/tfjs-core',
    );
  }
}

async function switchTo(name: BackendName): Promise<Engine> {
  const tf = loadCore();
  if (name === 'wasm') {
    await initWasm(tf);
  } else if (name === 'tensorflow' || name === 'cuda') {
    loadNative(tf, name);
  }
  const tfName = name === 'cuda' ? 'tensorflow' : name;
  if (tf.getBackend() !== tfName || current !== name) {
    const ok = await tf.setBackend(tfName);
    if (!ok || tf.getBackend() !== tfName) throw new P5recError(`could not start the ${name} backend`);
  }
  current = name;
  return { tf, backend: name };
}

/**
 * Loads tfjs and makes `backend` (default 'wasm') the active backend.
 * Idempotent; calling it again with another backend switches the active
 * backend (tensors made before move to it when next used).
 */
export function initEngine(opts: EngineOptions = {}): Promise<Engine> {
  const name = opts.backend ?? 'wasm';
  if (!BACKENDS.includes(name)) {
    return Promise.reject(new P5recError(`unknown backend '${String(name)}' (expected one of ${BACKENDS.join(', ')})`));
  }
  const run = queue.then(() => switchTo(name));
  queue = run.catch(() => undefined);
  return run;
}

/** The tfjs-core namespace; `initEngine()` must have completed. */
export function tf(): Tf {
  if (!core || current === null) {
    throw new P5recError('the tensor engine is not initialised: await initEngine() first');
  }
  return core;
}

/**
 * The float32 values of `t`, without a copy where the backend allows it: on
 * wasm a view of its heap, valid only until the next tensor allocation (read
 * it at once, never keep it); elsewhere `dataSync()`.
 */
export function readFloat32(t: Tensor): Float32Array {
  const core = tf();
  if (t.dtype === 'float32' && core.getBackend() === 'wasm') {
    const data = asWasm(core.backend()).dataIdMap.get(t.dataId);
    if (data && data.memoryOffset != null) {
      return new Float32Array(asWasm(core.backend()).wasm.HEAPU8.buffer, data.memoryOffset, t.size);
    }
  }
  return t.dataSync() as Float32Array;
}

/** The active backend, or null before `initEngine()`. */
export function engineBackend(): BackendName | null {
  return current;
}

export { installKernels, activeKernels, stockKernel, CUSTOM_KERNELS } from './kernels/index.js';
export type { CustomKernelName, InstallOptions, KernelSelector } from './kernels/index.js';
// The addon itself (null when unavailable), for benchmarks that call its SGEMM directly.
export { nativeInfo, setNativeThreads, loadNative as loadNativeAddon } from './native.js';
export { setWasmThreads, wasmThreads, startWasmHelper } from './threads.js';

/**
 * Whether kernels of the active backend run on the native addon (wasm with
 * the addon loaded and enabled). Model code picks between fused kernels and
 * tfjs compositions with it where the fused kernel's JS fallback is slower.
 */
export function nativeKernelsActive(): boolean {
  return core !== null && core.getBackend() === 'wasm' && nativeForKernels() !== null;
}
export type { NativeInfo } from './native.js';
export type { Tf } from './types.js';
