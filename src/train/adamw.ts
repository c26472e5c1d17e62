/**
 * AdamW (Loshchilov & Hutter; PyTorch `torch.optim.AdamW` update order:
 * decoupled decay p ← p·(1 − lr·wd) first, then the bias-corrected Adam
 * step) on one flat Float32Array of parameters, with per-range weight decay
 * (norms and biases are usually excluded). Plus global-norm gradient
 * clipping (`clip_grad_norm_`).
 */
import { nativeIfLoaded } from '../engine/native.js';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  /** P5: 1e-6 */
  eps?: number;
  /** P5: 0.01 */
  weightDecay?: number;
}

export interface DecayRange {
  offset: number;
  size: number;
  decay: boolean;
  /** Multiplies the learning rate of this range's Adam step (default 1); the weight decay keeps the base rate. */
  lrScale?: number;
}

/** Below this many parameters the JS loop is used (the call overhead is not worth it). */
const NATIVE_MIN = 4096;

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken (bias correction). */
  t = 0;
  readonly m: Float32Array;
  readonly v: Float32Array;

  constructor(
    readonly size: number,
    private readonly ranges: readonly DecayRange[],
    opts: AdamWOptions = {},
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-6;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /**
   * One step. `gradScale` (default 1) multiplies every gradient first, rounded
   * to float32 as if `grads` had been scaled in place (clipping, fused here).
   */
  step(params: Float32Array, grads: Float32Array, lr: number, gradScale = 1): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps, m, v } = this;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const sqrtBc2 = Math.sqrt(bc2);
    // the native addon (when the engine loaded it) runs the same arithmetic,
    // bit for bit, vectorised and on two threads
    const addon = params.length >= NATIVE_MIN && grads.length === params.length ? nativeIfLoaded() : null;
    for (const r of this.ranges) {
      const rlr = lr * (r.lrScale ?? 1);
      // The scale speeds up the Adam step only: scaling the decay too would shrink a
      // rare id row by (1 − scale·lr·wd) at every step between its rare gradients.
      const keep = r.decay ? 1 - lr * this.weightDecay : 1;
      const stepSize = rlr / bc1;
      if (addon) {
        const o = r.offset * 4;
        addon.adamw(params, o, grads, o, m, o, v, o, r.size, b1, b2, eps, keep, stepSize, sqrtBc2, gradScale);
      } else {
        adamRange(params, grads, m, v, r.offset, r.offset + r.size, b1, b2, eps, keep, stepSize, sqrtBc2, gradScale);
      }
    }
  }
}

/** The AdamW loop over [start, end) (a small function: it gets optimised on its own). */
function adamRange(
  params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array,
  start: number, end: number,
  b1: number, b2: number, eps: number, keep: number, stepSize: number, sqrtBc2: number, gradScale: number,
): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  if (gradScale === 1) {
    for (let i = start; i < end; i++) {
      const g = grads[i];
      const mi = (m[i] = b1 * m[i] + c1 * g);
      const vi = (v[i] = b2 * v[i] + c2 * g * g);
      params[i] = params[i] * keep - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  } else {
    for (let i = start; i < end; i++) {
      const g = Math.fround(grads[i] * gradScale);
      const mi = (m[i] = b1 * m[i] + c1 * g);
      const vi = (v[i] = b2 * v[i] + c2 * g * g);
      params[i] = params[i] * keep - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  }
}

/**
 * Scales `grads` by `scale` in place (float32) and returns the L2 norm of the
 * result, in one pass (the trainer's 1/Σw normalisation + the norm for clipping).
 */
export function scaleAndNorm(grads: Float32Array, scale: number): number {
  let ss = 0;
  if (scale === 1) {
    for (let i = 0; i < grads.length; i++) ss += grads[i] * grads[i];
  } else {
    for (let i = 0; i < grads.length; i++) {
      const g = (grads[i] = grads[i] * scale);
      const r = Math.fround(g);
      ss += r * r;
    }
  }
  return Math.sqrt(ss);
}

/** The factor `clipGlobalNorm` scales by for a given norm (1 = no clipping). */
export function clipFactor(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}

/** Scales `grads` in place to global L2 norm ≤ maxNorm (0 = off); returns the norm before clipping. */
export function clipGlobalNorm(grads: Float32Array, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i] * grads[i];
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (let i = 0; i < grads.length; i++) grads[i] *= s;
  }
  return norm;
}

export type ScheduleKind = 'linear' | 'constant';

/**
 * Learning rate at optimizer step `step` (1-based) of `total`: linear warmup
 * over the first ⌈warmupRatio·total⌉ steps (reaching `base` at the last of
 * them), then linear decay from `base` towards 0 (the last step gets
 * base / decay steps). HF's get_linear_schedule_with_warmup, shifted by one
 * step so that no step runs with lr = 0. 'constant': warmup, then `base`.
 */
export function learningRate(step: number, total: number, base: number, warmupRatio: number, kind: ScheduleKind = 'linear'): number {
  const warm = Math.ceil(warmupRatio * total);
  if (warm > 0 && step <= warm) return (base * step) / warm;
  if (kind === 'constant') return base;
  const rest = total - warm;
  return rest <= 0 ? base : (base * Math.max(0, total - step + 1)) / rest;
}
