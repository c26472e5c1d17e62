/**
 * Table-driven kernel checks shared by kernels.test.ts and native.test.ts.
 *
 * A `KernelCase` names the custom kernel it exercises, the op that reaches it
 * (a tfjs call, by name in `OPS`), its inputs (shapes with seeded values, or
 * given values) and the op's attributes. `checkCase` runs it on the 'cpu'
 * backend (the reference) and on 'wasm' and compares every output within
 * rtol · (|cpu| + max|cpu over the tensor|); with `check: 'grad'` (or
 * 'both') it compares the gradients of Σ_k Σ(out_k · w_k) with respect to
 * the float inputs, w_k seeded. Behaviour only, no timings.
 */
import { expect } from 'vitest';
import { tf as getTf, type Tf } from '../../src/engine/backend.js';
import type { Tensor } from '../../src/engine/types.js';

/** Deterministic pseudo-random values in [-1, 1). */
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

export function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function rand(shape: number[], seed: number): Tensor {
  return getTf().tensor(values(size(shape), seed), shape, 'float32');
}

export type Fn = () => Tensor | Tensor[];

export interface Result {
  shape: number[];
  data: number[];
}

/** Runs `fn` on `backend` in a tidy and reads its outputs back. */
export function runOn(backend: 'cpu' | 'wasm', fn: Fn): Result[] {
  const tf = getTf();
  tf.setBackend(backend);
  expect(tf.getBackend()).toBe(backend);
  return tf.tidy(() => {
    const r = fn();
    const list = Array.isArray(r) ? r : [r];
    return list.map((t) => ({ shape: t.shape.slice(), data: Array.from(t.dataSync()) }));
  });
}

/** |got - want| <= rtol · (|want| + max|want|) per element; NaN matches NaN. */
export function expectClose(got: Result[], want: Result[], label: string, rtol = 1e-4): void {
  expect(got.length, label).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    expect(got[k].shape, `${label} [${k}] shape`).toEqual(want[k].shape);
    const w = want[k].data;
    const g = got[k].data;
    let scale = 0;
    for (const v of w) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
    let worst = 0;
    let at = -1;
    for (let i = 0; i < w.length; i++) {
      if (g[i] === w[i] || (Number.isNaN(g[i]) && Number.isNaN(w[i]))) continue;
      const err = Math.abs(g[i] - w[i]) - rtol * (Math.abs(w[i]) + scale);
      if (!(err <= worst)) {
        worst = err;
        at = i;
      }
    }
    if (at >= 0) {
      throw new Error(`${label} [${k}]: element ${at}: wasm ${g[at]} vs cpu ${w[at]} (scale ${scale})`);
    }
  }
}

/** `ref` on cpu vs `fn` on wasm; ends on wasm. */
export function compareWith(label: string, ref: Fn, fn: Fn, rtol = 1e-4): Result[] {
  const want = runOn('cpu', ref);
  const got = runOn('wasm', fn);
  expectClose(got, want, label, rtol);
  return got;
}

/** Runs `fn` on cpu (reference) then on wasm and compares; ends on wasm. */
export function compare(label: string, fn: Fn, rtol = 1e-4): Result[] {
  return compareWith(label, fn, fn, rtol);
}

/** The shape with its last two dims swapped when `t` (a transposed matmul operand). */
export function tShape(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = shape.slice();
  [s[s.length - 1], s[s.length - 2]] = [s[s.length - 2], s[s.length - 1]];
  return s;
}

export const TRANSPOSES: Array<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

type DType = 'float32' | 'int32' | 'bool';

/**
 * An input: seeded values in [-1, 1) times `scale` (`negAbs`: -|v|, e.g.
 * the non-positive inputs of a log-sum-exp; `plus` added after; `dtype:
 * 'bool'`: v > 0), or the given values.
 */
export type Input = { shape: number[]; seed: number; scale?: number; plus?: number; negAbs?: boolean; dtype?: 'float32' | 'bool' } | { shape: number[]; values: ArrayLike<number>; dtype?: DType };

export const zeros = (shape: number[]): Input => ({ shape, values: new Float32Array(size(shape)) });
export const ints = (shape: number[], v: ArrayLike<number>): Input => ({ shape, values: v, dtype: 'int32' });

function makeInput(x: Input): Tensor {
  const tf = getTf();
  if ('values' in x) return tf.tensor(Array.from(x.values), x.shape, x.dtype ?? 'float32');
  const v = values(size(x.shape), x.seed);
  const scale = x.scale ?? 1;
  for (let i = 0; i < v.length; i++) {
    const s = v[i] * scale;
    v[i] = (x.negAbs ? -Math.abs(s) : s) + (x.plus ?? 0);
  }
  if (x.dtype === 'bool') return tf.tensor(Array.from(v, (e) => (e > 0 ? 1 : 0)), x.shape, 'bool');
  return tf.tensor(v, x.shape, 'float32');
}

type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu' | 'leakyrelu' | 'prelu';

/** The attributes the ops below read. */
export interface Attrs {
  transposeA?: boolean;
  transposeB?: boolean;
  /** _FusedMatMul: inputs are [a, b, bias?, preluWeights?] */
  activation?: Activation;
  hasBias?: boolean;
  leakyreluAlpha?: number;
  begin?: number[];
  size?: number[];
  end?: number[];
  strides?: number[];
  shrinkAxisMask?: number;
  numOrSizeSplits?: number | number[];
  axis?: number;
  perm?: number[];
  dtype?: DType;
  batchDims?: number;
  numSegments?: number;
}

type Op = (tf: Tf, xs: Tensor[], a: Attrs) => Tensor | Tensor[];

/** The ops the tables use, by name: each reaches one custom kernel (or a composition of them). */
export const OPS = {
  matMul: (tf, [a, b], at) => tf.matMul(a, b, at.transposeA, at.transposeB),
  /**
   * The cpu reference for batch-broadcast products: operands broadcast to the
   * output batch shape first (cpu's own BatchMatMul pairs batch items by
   * index modulo size, which is wrong for e.g. [2,1] x [1,3]).
   */
  matMulFullBatch: (tf, [a, b], at) => {
    const batch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const full = (t: Tensor) => tf.broadcastTo(t, [...batch, ...t.shape.slice(-2)]);
    return tf.matMul(full(a), full(b), at.transposeA, at.transposeB);
  },
  fusedMatMul: (tf, [a, b, ...rest], at) =>
    tf.fused.matMul({
      a,
      b,
      transposeA: at.transposeA,
      transposeB: at.transposeB,
      bias: at.hasBias ? rest.shift() : undefined,
      activation: at.activation,
      preluActivationWeights: at.activation === 'prelu' ? rest.shift() : undefined,
      leakyreluAlpha: at.leakyreluAlpha,
    }),
  slice: (tf, [x], at) => tf.slice(x, at.begin!, at.size!),
  split: (tf, [x], at) => tf.split(x, at.numOrSizeSplits!, at.axis),
  unstack: (tf, [x], at) => tf.unstack(x, at.axis),
  stridedSlice: (tf, [x], at) => tf.stridedSlice(x, at.begin!, at.end!, at.strides, 0, 0, 0, 0, at.shrinkAxisMask ?? 0),
  concat: (tf, xs, at) => tf.concat(xs, at.axis),
  transpose: (tf, [x], at) => tf.transpose(x, at.perm),
  exp: (tf, [x]) => tf.exp(x),
  clone: (tf, [x]) => tf.clone(x),
  cast: (tf, [x], at) => tf.cast(x, at.dtype!),
  gather: (tf, [x, idx], at) => tf.gather(x, idx, at.axis, at.batchDims),
  unsortedSegmentSum: (tf, [x, ids], at) => tf.unsortedSegmentSum(x, ids as never, at.numSegments!),
  softmax: (tf, [x]) => tf.softmax(x),
  /** [loss, its gradient, log-sum-exp] of softmax cross-entropy on int labels (Exp's non-positive path) */
  softmaxCrossEntropy: (tf, [logits, labels]) => {
    const y = tf.oneHot(labels as never, logits.shape[1]!);
    return [tf.losses.softmaxCrossEntropy(y, logits), tf.grad((l: Tensor) => tf.losses.softmaxCrossEntropy(y, l))(logits), tf.logSumExp(logits, 1)];
  },
  /** several uses of one tensor: its gradient saves clones (Identity) */
  savedClones: (tf, [x]) => tf.mul(tf.square(tf.tanh(x)), tf.exp(x)),
} satisfies Record<string, Op>;

export type OpName = keyof typeof OPS;

export interface KernelCase {
  /** the custom kernel the case exercises */
  kernel: string;
  /** what sets the case apart */
  name: string;
  op: OpName;
  inputs: Input[];
  attrs?: Attrs;
  /** the cpu reference op when it is not `op` (forward only) */
  ref?: OpName;
  /** 'forward' (default), 'grad' or 'both' */
  check?: 'forward' | 'grad' | 'both';
  /** seed of the gradient's output weights w_k (seed + k); default 3 */
  gradSeed?: number;
  rtol?: number;
}

export const label = (c: KernelCase): string => `${c.kernel}: ${c.name}`;

function forwardFn(c: KernelCase, op: OpName): Fn {
  return () => (OPS[op] as Op)(getTf(), c.inputs.map(makeInput), c.attrs ?? {});
}

function gradFn(c: KernelCase): Fn {
  return () => {
    const tf = getTf();
    const xs = c.inputs.map(makeInput);
    const wrt = xs.flatMap((x, i) => (x.dtype === 'float32' ? [i] : []));
    const f = (...vs: Tensor[]): Tensor => {
      const args = xs.slice();
      wrt.forEach((i, k) => (args[i] = vs[k]));
      const out = (OPS[c.op] as Op)(tf, args, c.attrs ?? {});
      const outs = Array.isArray(out) ? out : [out];
      return tf.addN(outs.map((o, k) => tf.sum(tf.mul(o, rand(o.shape, (c.gradSeed ?? 3) + k)))));
    };
    return tf.grads(f)(wrt.map((i) => xs[i]));
  };
}

export interface CheckHooks {
  /** wraps the forward comparison (e.g. to count native calls around it) */
  forward?: (c: KernelCase, run: () => void) => void;
}

/** Compares the case on wasm against cpu: its outputs and/or gradients. */
export function checkCase(c: KernelCase, hooks: CheckHooks = {}): void {
  const check = c.check ?? 'forward';
  if (check !== 'grad') {
    const run = () => void compareWith(`forward ${label(c)}`, forwardFn(c, c.ref ?? c.op), forwardFn(c, c.op), c.rtol);
    if (hooks.forward) hooks.forward(c, run);
    else run();
  }
  if (check !== 'forward') compare(`grad ${label(c)}`, gradFn(c), c.rtol);
}

/**
 * BatchMatMul cases: every shape (in the non-transposed layout) under every
 * transpose combination; gradients where tfjs supports them (no broadcasting
 * of batch dims); the reference broadcasts batch dims explicitly.
 */
export function matMulCases(shapes: Array<{ a: number[]; b: number[]; grad: boolean; note?: string }>): KernelCase[] {
  return shapes.flatMap(({ a, b, grad, note }) =>
    TRANSPOSES.map(([tA, tB]) => ({
      kernel: 'BatchMatMul',
      name: `${JSON.stringify(a)}x${JSON.stringify(b)} tA=${tA} tB=${tB}${note ? ` (${note})` : ''}`,
      op: 'matMul' as const,
      ref: 'matMulFullBatch' as const,
      inputs: [{ shape: tShape(a, tA), seed: 1 }, { shape: tShape(b, tB), seed: 2 }],
      attrs: { transposeA: tA, transposeB: tB },
      check: grad ? ('both' as const) : ('forward' as const),
      gradSeed: 3,
    })),
  );
}

export const ACTIVATIONS = ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu', 'prelu'] as const;

/**
 * _FusedMatMul cases: forward for every activation x bias shape (`null`: no
 * bias; 'N' / 'MN' stand for [N] / [M, N]), gradients for `gradActs` with a
 * bias of [N] (forward only where batch dims broadcast: tfjs cannot
 * differentiate those, and their forward is among the forward cases).
 */
export function fusedMatMulCases(
  shapes: Array<{ a: number[]; b: number[] }>,
  transposes: Array<[boolean, boolean]>,
  biases: Array<Array<number | 'M' | 'N'> | null>,
  gradActs: readonly Activation[],
): KernelCase[] {
  const out: KernelCase[] = [];
  for (const { a, b } of shapes) {
    const N = b[b.length - 1];
    const M = a[a.length - 2];
    for (const [tA, tB] of transposes) {
      const base = `${JSON.stringify(a)}x${JSON.stringify(b)} tA=${tA} tB=${tB}`;
      const ab: Input[] = [{ shape: tShape(a, tA), seed: 1 }, { shape: tShape(b, tB), seed: 2 }];
      for (const activation of ACTIVATIONS) {
        for (const bias of biases) {
          const biasShape = bias?.map((d) => (d === 'M' ? M : d === 'N' ? N : d));
          out.push({
            kernel: '_FusedMatMul',
            name: `${base} ${activation} bias=${JSON.stringify(biasShape ?? null)}`,
            op: 'fusedMatMul',
            inputs: [...ab, ...(biasShape ? [{ shape: biasShape, seed: 3 }] : []), ...(activation === 'prelu' ? [{ shape: [N], seed: 4 }] : [])],
            attrs: { transposeA: tA, transposeB: tB, activation, hasBias: !!biasShape, leakyreluAlpha: 0.15 },
          });
        }
      }
      if (a.length === 3 && a[0] !== b[0]) continue;
      for (const activation of gradActs) {
        out.push({
          kernel: '_FusedMatMul',
          name: `${base} ${activation} bias=[${N}] gradients`,
          op: 'fusedMatMul',
          inputs: [...ab, { shape: [N], seed: 3 }],
          attrs: { transposeA: tA, transposeB: tB, activation, hasBias: true },
          check: 'grad',
          gradSeed: 5,
        });
      }
    }
  }
  return out;
}
