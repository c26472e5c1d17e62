/**
 * The T5 model's hand-written ops: seeded dropout, GELU-tanh, RMSNorm and the
 * softmax cross-entropy, with their gradients written out (tfjs customGrad)
 * and, where the engine registered one, a fused kernel for the active backend.
 */
import type { Scalar, Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import { tf as getTf } from '../../engine/backend.js';
import { Rng, hashString } from '../../util/rng.js';
import { fillDropoutMask } from '../../engine/kernels/Fused.js';

/** A dropout mask's rate and key: the mask of `fillDropoutMask(…, rate, a, b)`. */
export interface DropoutKey {
  rate: number;
  a: number;
  b: number;
}

/**
 * Inverted dropout with seeded masks. The keep/drop mask is drawn from a key
 * (`Rng(hash(seed, call number))`), one counter-based draw per element, and
 * applied as one multiply: tf.dropout's randomUniform + compare + cast + div
 * cost ~4x more on wasm, and the mask is a constant for the gradient tape.
 */
export class Dropout {
  private n = 0;
  constructor(
    private readonly rate: number,
    private readonly on: boolean,
    private readonly seed: number,
  ) {}
  /**
   * The key of the next mask, consumed as `apply` would consume it (null,
   * and nothing consumed, when dropout is off): for fused kernels that draw
   * the mask themselves (P5Attention), so that they drop the same elements.
   */
  nextKey(): DropoutKey | null {
    if (!this.on || this.rate === 0) return null;
    const init = new Rng(hashString(`${this.seed}:${this.n++}`));
    return { rate: this.rate, a: init.nextU32(), b: init.nextU32() };
  }

  apply<T extends Tensor>(x: T): T {
    if (!this.on || this.rate === 0) return x;
    const t = getTf();
    const seed = `${this.seed}:${this.n++}`;
    if (hasKernel('P5DropoutMask')) {
      // the same mask, generated straight into the tensor (engine kernel; native when built)
      const init = new Rng(hashString(seed));
      const [a, b, c, d] = [init.nextU32(), init.nextU32(), init.nextU32(), init.nextU32()];
      const mask = t.engine().runKernel('P5DropoutMask', {}, { shape: x.shape.slice(), rate: this.rate, a, b, c, d }) as Tensor;
      return t.mul(x, mask) as T;
    }
    const mask = dropoutMask(x.size, this.rate, seed);
    return t.mul(x, t.tensor(mask, x.shape, 'float32')) as T;
  }
}

/** Whether the engine registered a fused kernel (src/engine/kernels/Fused.ts) for the active backend. */
export function hasKernel(name: string): boolean {
  const t = getTf();
  return t.getKernel(name, t.getBackend()) != null;
}

/**
 * Inverted-dropout multipliers: 0 with probability `rate`, else 1 / (1 - rate):
 * the P5DropoutMask kernel's draws, keyed by `Rng(hash(seed))`.
 */
export function dropoutMask(size: number, rate: number, seed: string): Float32Array {
  const mask = new Float32Array(size);
  const init = new Rng(hashString(seed));
  fillDropoutMask(mask, 0, size, rate, init.nextU32(), init.nextU32(), init.nextU32(), init.nextU32());
  return mask;
}

/** GELU, tanh approximation (HF `gelu_new`, used by gated-gelu T5 v1.1). */
export function geluTanh(x: Tensor2D): Tensor2D {
  const t = getTf();
  const inner = t.mul(t.add(x, t.mul(t.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return t.mul(t.mul(x, 0.5), t.add(t.tanh(inner), 1));
}

/**
 * T5LayerNorm: y = w · x / sqrt(mean(x²) + eps), no mean subtraction, no
 * bias. The gradient is written out (tfjs would record and clone six
 * intermediate tensors per norm); the weight gradient's column sums run as
 * a [1, N] × [N, d] matmul instead of an axis-0 reduction.
 *   dx = r · (g − x̂ · mean(g · x̂)),  g = dy · w,  x̂ = x · r,  r = (mean(x²) + eps)^-½
 *   dw = Σ_rows dy · x̂
 */
export function rmsNorm(x: Tensor2D, w: Tensor, eps: number): Tensor2D {
  const t = getTf();
  if (hasKernel('P5RmsNorm') && hasKernel('P5RmsNormGrad') && x.dtype === 'float32') {
    // fused forward (y and the per-row r) and backward kernels; saves x (alive anyway) and r
    const fused = t.customGrad((...args) => {
      const [xx, ww, save] = args as [Tensor2D, Tensor, (ts: Tensor[]) => void];
      const [y, r] = t.engine().runKernel('P5RmsNorm', { x: xx, w: ww }, { eps }) as Tensor[];
      save([xx, ww, r]);
      return {
        value: y as Tensor2D,
        gradFunc: (dy: Tensor2D, saved: Tensor[]) => {
          const [xs, wt, rr] = saved;
          return t.engine().runKernel('P5RmsNormGrad', { dy, x: xs, w: wt, r: rr }, {}) as Tensor[];
        },
      };
    });
    return fused(x, w) as Tensor2D;
  }
  const op = t.customGrad((...args) => {
    const [xx, ww, save] = args as [Tensor2D, Tensor, (ts: Tensor[]) => void];
    const r = t.rsqrt(t.add(t.mean(t.square(xx), -1, true), eps));
    const xhat = t.mul(xx, r);
    save([xhat, r, ww]);
    return {
      value: t.mul(xhat, ww) as Tensor2D,
      gradFunc: (dy: Tensor2D, saved: Tensor[]) => {
        const [xh, rr, wt] = saved as [Tensor2D, Tensor, Tensor];
        const [n, d] = dy.shape;
        const dw = t.reshape(t.matMul(t.ones([1, n]), t.mul(dy, xh)), [d]);
        const g = t.mul(dy, wt);
        const dx = t.mul(t.sub(g, t.mul(xh, t.mean(t.mul(g, xh), -1, true))), rr);
        return [dx, dw];
      },
    };
  });
  return op(x, w) as Tensor2D;
}

/**
 * sum(-log softmax(logits) · targetW): `targetW` is the one-hot target scaled
 * by each row's weight. The gradient (softmax · rowWeight − targetW) is
 * written out instead of differentiating logSumExp.
 */
export const softmaxCrossEntropy = (logits: Tensor2D, targetW: Tensor): Scalar => {
  const t = getTf();
  const f = t.customGrad((...args) => {
    const [x, y, save] = args as [Tensor2D, Tensor2D, (ts: Tensor[]) => void];
    const shifted = t.sub(x, t.max(x, -1, true));
    const e = t.exp(shifted);
    const z = t.sum(e, -1, true);
    const probs = t.div(e, z);
    const logp = t.sub(shifted, t.log(z));
    save([probs, y]);
    return {
      value: t.neg(t.sum(t.mul(logp, y))) as Scalar,
      gradFunc: (dy: Scalar, saved: Tensor[]) => {
        const [p, yy] = saved;
        const rowW = t.sum(yy, -1, true);
        return [t.mul(t.sub(t.mul(p, rowW), yy), dy), t.zerosLike(yy)];
      },
    };
  });
  return f(logits, targetW) as Scalar;
};

/**
 * Σ_i weights[i]·(−log softmax(logits_i)[labels[i]]) on the engine's fused
 * kernels (one pass per row forward, one backward; nothing [N, V] is saved
 * but the logits). Labels and weights are inputs (float32) so that the
 * backward pass can read them after the forward scope is gone.
 */
export function fusedSoftmaxCrossEntropy(logits: Tensor2D, labels: Tensor, weights: Tensor): Scalar {
  const t = getTf();
  const f = t.customGrad((...args) => {
    const [x, l, w, save] = args as [Tensor2D, Tensor, Tensor, (ts: Tensor[]) => void];
    const [loss, lse] = t.engine().runKernel('P5SoftmaxXent', { logits: x, labels: l, weights: w }, {}) as Tensor[];
    save([x, l, w, lse]);
    return {
      value: loss as Scalar,
      gradFunc: (dy: Scalar, saved: Tensor[]) => {
        const [xs, ls, ws, lses] = saved;
        const dx = t.engine().runKernel('P5SoftmaxXentGrad', { logits: xs, labels: ls, weights: ws, lse: lses, dy }, {}) as Tensor;
        return [dx, t.zerosLike(ls), t.zerosLike(ws)];
      },
    };
  });
  return f(logits, labels, weights) as Scalar;
}
