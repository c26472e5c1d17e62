/**
 * T5's attention core, softmax(Q K^T + position bias + mask) → dropout → · V,
 * as ONE engine op (P5Attention, native on wasm) with its gradient
 * (P5AttentionGrad): Q, K, V are read in place from the projections' rows
 * ([B*L, H*dk], or fused QKV / KV), the context comes back as [B*Lq, H*dk],
 * so no head transposes, no [B, H, Lq, Lk] bias tensor and no separate
 * softmax / dropout passes, forward or backward. The model's tfjs composition
 * (model.ts `attend`) computes the same thing and is used where the op is
 * unavailable (no addon, other backends, `fusedAttention` off).
 */
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import { nativeKernelsActive, tf as getTf } from '../../engine/backend.js';
import { hasKernel, type DropoutKey } from './ops.js';

export interface FusedAttentionSpec {
  /** the distinct projection outputs, [B*L, width] each */
  sources: Tensor2D[];
  /** which source holds q, k and v */
  srcOf: [number, number, number];
  /** the column of head 0 of q, k and v in its source */
  cols: [number, number, number];
  numHeads: number;
  headDim: number;
  Lq: number;
  Lk: number;
  /** relative position bias [1, H, Lq, Lk] (differentiated) */
  posBias?: Tensor;
  /** additive padding mask [B, 1, 1, Lk] (0 / -1e9; a constant) */
  mask?: Tensor;
  /** mask key j > query i (decoder self-attention, Lq == Lk) */
  causal: boolean;
  /** dropout of the attention weights (Dropout.nextKey), null for none */
  dropout: DropoutKey | null;
}

/** Whether the engine can run `fusedAttention` now (wasm backend with the native addon). */
export function fusedAttentionAvailable(): boolean {
  return nativeKernelsActive() && hasKernel('P5Attention') && hasKernel('P5AttentionGrad');
}

/** The attention context [B*Lq, H*dk] (before the output projection); differentiable in the sources and posBias. */
export function fusedAttention(spec: FusedAttentionSpec): Tensor2D {
  const t = getTf();
  const n = spec.sources.length;
  const attrs = {
    numHeads: spec.numHeads,
    headDim: spec.headDim,
    Lq: spec.Lq,
    Lk: spec.Lk,
    srcOf: spec.srcOf.slice(),
    cols: spec.cols.slice(),
    causal: spec.causal,
    rate: spec.dropout?.rate ?? 0,
    a: spec.dropout?.a ?? 0,
    b: spec.dropout?.b ?? 0,
  };
  const named = (ts: Tensor[]): Record<string, Tensor> => Object.fromEntries(ts.map((x, i) => [`s${i}`, x]));
  const op = t.customGrad((...args) => {
    const save = args.pop() as unknown as (ts: Tensor[]) => void;
    const srcs = (args as Tensor[]).slice(0, n);
    const bias = spec.posBias ? (args as Tensor[])[n] : undefined;
    const inputs: Record<string, Tensor> = named(srcs);
    if (bias) inputs.bias = bias;
    if (spec.mask) inputs.mask = spec.mask;
    const [o, p] = t.engine().runKernel('P5Attention', inputs as never, attrs as never) as Tensor[];
    save([...srcs, p]);
    return {
      value: o as Tensor2D,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const inputs = { ...named(saved.slice(0, n)), p: saved[n], dy };
        return t.engine().runKernel('P5AttentionGrad', inputs as never, { ...attrs, biasGrad: !!bias } as never) as Tensor[];
      },
    };
  });
  const args: Tensor[] = spec.posBias ? [...spec.sources, spec.posBias] : spec.sources;
  return op(...args) as Tensor2D;
}
