/**
 * The custom kernels, in one explicit list, keyed `backend/KernelName`.
 * `initEngine` installs all of them once (cpu ones when tfjs is loaded, wasm
 * ones right after the wasm backend is initialised, since they wrap stock
 * kernels whose setup runs at that point). Benchmarks and tests call
 * `installKernels` again to compare against the stock kernels.
 */
import type { KernelConfig } from '@tensorflow/tfjs-core';
import type { Tf } from '../types.js';
import { makeBatchMatMulConfig, makeFusedMatMulConfig } from './BatchMatMul.js';
import { makeNativeBatchMatMulConfig, makeNativeFusedMatMulConfig } from './native/BatchMatMul.js';
import { makeNativeSoftmaxConfig } from './native/Softmax.js';
import { makeNativeAttentionConfig, makeNativeAttentionGradConfig } from './native/Attention.js';
import { nativeKernelsEnabled, setNativeKernels } from '../native.js';
import { makeExpConfig } from './Exp.js';
import { makeTransposeConfig } from './Transpose.js';
import { makeCastConfig, makeIdentityConfig } from './Identity.js';
import { makeGatherV2Config } from './Gather.js';
import { makeFusedConfig, type FusedKernelName } from './Fused.js';
import { makeSliceConfig, makeSplitVConfig, makeStridedSliceConfig, makeUnpackConfig } from './Slice.js';
import { makeUnsortedSegmentSumConfig, makeUnsortedSegmentSumCpuConfig } from './UnsortedSegmentSum.js';

export const CUSTOM_KERNELS = [
  'wasm/UnsortedSegmentSum', // missing in tfjs-backend-wasm: gradient of gather
  'wasm/BatchMatMul', // stock: scalar loop unless no transpose and batch 1; native SGEMM when available
  'wasm/_FusedMatMul', // same slow path in the forward pass; native SGEMM when available
  'wasm/Slice', // stock copies the whole input per call
  'wasm/SplitV', // n stock slices
  'wasm/Unpack', // n stock slices
  'wasm/StridedSlice', // contiguous cases went through the stock slice
  'wasm/Exp', // stock: scalar libm exp; x <= 0 via XNNPACK sigmoid
  'wasm/Transpose', // stock: cache-conflict slow for 2^k-ish output rows
  'wasm/Softmax', // native (multi-threaded AVX-512) when available, else stock
  'wasm/Identity', // stock copies; tfjs clones every tensor a gradient saves
  'wasm/GatherV2', // stock: per-element loop; here one heap copy per row
  'wasm/Cast', // same-dtype casts (the gradient of every clone) share memory; stock copies
  'cpu/UnsortedSegmentSum', // stock: 4 kernels per segment (minutes per step)
  // fused training kernels (./Fused.ts; no stock kernel: the model composes tfjs ops without them)
  'wasm/P5DropoutMask',
  'wasm/P5RmsNorm',
  'wasm/P5RmsNormGrad',
  'wasm/P5SoftmaxXent',
  'wasm/P5SoftmaxXentGrad',
  'cpu/P5DropoutMask',
  'cpu/P5RmsNorm',
  'cpu/P5RmsNormGrad',
  'cpu/P5SoftmaxXent',
  'cpu/P5SoftmaxXentGrad',
  // T5's fused attention core and its gradient (./native/Attention.ts): native addon only
  'wasm/P5Attention',
  'wasm/P5AttentionGrad',
] as const;

export type CustomKernelName = (typeof CUSTOM_KERNELS)[number];

/** A bare kernel name ('BatchMatMul') is accepted for its wasm entry. */
type BareWasmName = CustomKernelName extends infer N ? (N extends `wasm/${infer K}` ? K : never) : never;
export type KernelSelector = CustomKernelName | BareWasmName;

function normalize(sel: KernelSelector): CustomKernelName {
  const name = (sel.includes('/') ? sel : `wasm/${sel}`) as CustomKernelName;
  if (!CUSTOM_KERNELS.includes(name)) throw new Error(`unknown custom kernel '${sel}'`);
  return name;
}

type Backend = 'wasm' | 'cpu';

function split(name: CustomKernelName): [Backend, string] {
  const i = name.indexOf('/');
  return [name.slice(0, i) as Backend, name.slice(i + 1)];
}

/** Stock configs, captured before the first replacement. */
const stockConfigs = new Map<CustomKernelName, KernelConfig | undefined>();
const customConfigs = new Map<CustomKernelName, KernelConfig>();
/** What is registered now, and what was asked for. */
const active = new Set<CustomKernelName>();
let wanted = new Set<CustomKernelName>();

function stock(name: CustomKernelName): KernelConfig {
  const k = stockConfigs.get(name);
  if (!k) throw new Error(`no stock ${name} kernel to wrap`);
  return k;
}

function build(tf: Tf, name: CustomKernelName): KernelConfig {
  switch (name) {
    case 'wasm/UnsortedSegmentSum':
      return makeUnsortedSegmentSumConfig();
    case 'wasm/BatchMatMul':
      return makeNativeBatchMatMulConfig(tf, makeBatchMatMulConfig(tf, stock(name)));
    case 'wasm/_FusedMatMul':
      return makeNativeFusedMatMulConfig(tf, makeFusedMatMulConfig(tf, stock(name)));
    case 'wasm/Slice':
      return makeSliceConfig(tf, stock(name));
    case 'wasm/SplitV':
      return makeSplitVConfig(tf, stock(name));
    case 'wasm/Unpack':
      return makeUnpackConfig(stock(name));
    case 'wasm/StridedSlice':
      return makeStridedSliceConfig(tf, stock(name));
    case 'wasm/Exp':
      return makeExpConfig(tf, stock(name));
    case 'wasm/Transpose':
      return makeTransposeConfig(stock(name));
    case 'wasm/Softmax':
      return makeNativeSoftmaxConfig(stock(name));
    case 'wasm/Identity':
      return makeIdentityConfig(stock(name));
    case 'wasm/GatherV2':
      return makeGatherV2Config(tf, stock(name));
    case 'wasm/Cast':
      return makeCastConfig(stock(name));
    case 'cpu/UnsortedSegmentSum':
      return makeUnsortedSegmentSumCpuConfig();
    case 'wasm/P5Attention':
      return makeNativeAttentionConfig();
    case 'wasm/P5AttentionGrad':
      return makeNativeAttentionGradConfig();
    default: {
      const [backend, kernel] = split(name);
      return makeFusedConfig(tf, kernel as FusedKernelName, backend);
    }
  }
}

/** The wasm kernels wrap stock ones whose setupFunc runs at backend init. */
function ready(tf: Tf, backend: Backend): boolean {
  return backend === 'cpu' || tf.findBackend(backend) != null;
}

export interface InstallOptions {
  /**
   * wasm/BatchMatMul, wasm/_FusedMatMul and wasm/Softmax (when active) run
   * the native kernels of ../native.ts when its addon loaded (default true);
   * false: their wasm code (XNNPACK matmul, stock softmax).
   */
  native?: boolean;
}

/**
 * Makes exactly the listed custom kernels active (default: all) and puts the
 * stock kernel (or none, where stock has none) back for the others. Names are
 * `backend/Kernel`; a bare `Kernel` means `wasm/Kernel`. Kernels
 * of a backend that is not initialised yet are applied by the next call
 * after it is (initEngine does that). Matmul variants for benchmarks: stock
 * (leave `BatchMatMul` out), wasm custom (`{ native: false }`), native (default).
 */
export function installKernels(
  tf: Tf,
  enabled: 'all' | readonly KernelSelector[] = 'all',
  opts: InstallOptions = {},
): void {
  setNativeKernels(opts.native ?? true);
  wanted = new Set<CustomKernelName>(enabled === 'all' ? CUSTOM_KERNELS : enabled.map(normalize));
  for (const name of CUSTOM_KERNELS) {
    const [backend, kernel] = split(name);
    if (!ready(tf, backend)) continue;
    if (!stockConfigs.has(name)) stockConfigs.set(name, tf.getKernel(kernel, backend));
    const on = wanted.has(name);
    if (on === active.has(name)) continue;
    if (tf.getKernel(kernel, backend)) tf.unregisterKernel(kernel, backend);
    if (on) {
      let cfg = customConfigs.get(name);
      if (!cfg) {
        cfg = build(tf, name);
        customConfigs.set(name, cfg);
      }
      tf.registerKernel(cfg);
      active.add(name);
    } else {
      const s = stockConfigs.get(name);
      if (s) tf.registerKernel(s);
      active.delete(name);
    }
  }
}

/** Re-applies the last requested set (after a backend finished initialising). */
export function reinstallKernels(tf: Tf): void {
  installKernels(tf, [...wanted], { native: nativeKernelsEnabled() });
}

/** Custom kernels currently registered. */
export function activeKernels(): CustomKernelName[] {
  return CUSTOM_KERNELS.filter((n) => active.has(n));
}

/** The stock kernel config a custom one replaced (undefined: none). */
export function stockKernel(name: CustomKernelName): KernelConfig | undefined {
  return stockConfigs.get(name);
}
