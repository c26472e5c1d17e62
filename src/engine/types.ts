/**
 * Type-only view of tfjs. At runtime the CommonJS build is loaded through
 * `createRequire` (see backend.ts); these imports are erased by tsc.
 */
import type * as tfc from '@tensorflow/tfjs-core';

/** The tfjs-core namespace as returned by `initEngine()` / `tf()`. */
export type Tf = typeof tfc;

export type {
  DataType,
  KernelConfig,
  NamedTensorMap,
  Rank,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  TensorInfo,
  Variable,
} from '@tensorflow/tfjs-core';
