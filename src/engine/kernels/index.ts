/**
 * The custom wasm kernels, in one explicit list. `installKernels` is called
 * once by `initEngine` (after the wasm backend is up); benchmarks call it
 * again to compare against the stock kernels.
 */
import type { KernelConfig } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';
import { makeBatchMatMulConfig, makeFusedMatMulConfig } from './BatchMatMul.js';
import { makeSliceConfig, makeSplitVConfig, makeStridedSliceConfig, makeUnpackConfig } from './Slice.js';
import { makeUnsortedSegmentSumConfig } from './UnsortedSegmentSum.js';

export const CUSTOM_KERNELS = [
  'UnsortedSegmentSum',
  'BatchMatMul',
  '_FusedMatMul',
  'Slice',
  'SplitV',
  'Unpack',
  'StridedSlice',
] as const;

export type CustomKernelName = (typeof CUSTOM_KERNELS)[number];

/** Stock wasm configs, captured before the first replacement. */
const stockConfigs = new Map<string, KernelConfig | undefined>();
const customConfigs = new Map<string, KernelConfig>();
let active = new Set<CustomKernelName>();

function stock(name: string): KernelConfig {
  const k = stockConfigs.get(name);
  if (!k) throw new Error(`tfjs-backend-wasm has no stock ${name} kernel`);
  return k;
}

function build(tf: Tf, name: CustomKernelName): KernelConfig {
  switch (name) {
    case 'UnsortedSegmentSum':
      return makeUnsortedSegmentSumConfig();
    case 'BatchMatMul':
      return makeBatchMatMulConfig(tf, stock(name));
    case '_FusedMatMul':
      return makeFusedMatMulConfig(tf, stock(name));
    case 'Slice':
      return makeSliceConfig(tf, stock(name));
    case 'SplitV':
      return makeSplitVConfig(tf, stock(name));
    case 'Unpack':
      return makeUnpackConfig(stock(name));
    case 'StridedSlice':
      return makeStridedSliceConfig(tf, stock(name));
  }
}

/**
 * Registers the listed custom kernels for 'wasm' and (re)registers the stock
 * kernel (or none, for UnsortedSegmentSum) for every other custom name.
 */
export function installKernels(tf: Tf, enabled: 'all' | readonly CustomKernelName[] = 'all'): void {
  for (const name of CUSTOM_KERNELS) {
    if (!stockConfigs.has(name)) stockConfigs.set(name, tf.getKernel(name, 'wasm'));
  }
  const want = new Set<CustomKernelName>(enabled === 'all' ? CUSTOM_KERNELS : enabled);
  for (const name of CUSTOM_KERNELS) {
    const on = want.has(name);
    if (on === active.has(name) && tf.getKernel(name, 'wasm')) continue;
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    if (on) {
      let cfg = customConfigs.get(name);
      if (!cfg) {
        cfg = build(tf, name);
        customConfigs.set(name, cfg);
      }
      tf.registerKernel(cfg);
    } else {
      const s = stockConfigs.get(name);
      if (s) tf.registerKernel(s);
    }
  }
  active = want;
}

/** Custom kernels currently registered for 'wasm'. */
export function activeKernels(): CustomKernelName[] {
  return CUSTOM_KERNELS.filter((n) => active.has(n));
}

/** The stock wasm kernel config (for benchmarks and tests). */
export function stockKernel(name: CustomKernelName): KernelConfig | undefined {
  return stockConfigs.get(name);
}
