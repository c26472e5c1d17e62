/**
 * Custom wasm kernels against the tfjs 'cpu' backend: forward values and
 * gradients must agree within 1e-4 relative, i.e. |wasm - cpu| <= 1e-4 *
 * (|cpu| + max|cpu over the tensor|). Behaviour only, no timings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activeKernels,
  CUSTOM_KERNELS,
  initEngine,
  installKernels,
  tf as getTf,
  type Tf,
} from '../../src/engine/backend.js';
import type { Tensor } from '../../src/engine/types.js';
import { setWasmSplitMinMacs, setWasmThreads, startWasmHelper, wasmHelperAvailable, wasmHelperChunks, wasmThreads } from '../../src/engine/threads.js';
import { dropoutMask } from '../../src/models/t5/ops.js';
import { Rng, hashString } from '../../src/util/rng.js';

let tf: Tf;

beforeAll(async () => {
  ({ tf } = await initEngine({ backend: 'wasm' }));
});

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
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

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function rand(shape: number[], seed: number): Tensor {
  return tf.tensor(values(size(shape), seed), shape, 'float32');
}

type Fn = () => Tensor | Tensor[];

interface Result {
  shape: number[];
  data: number[];
}

function runOn(backend: 'cpu' | 'wasm', fn: Fn): Result[] {
  tf.setBackend(backend);
  expect(tf.getBackend()).toBe(backend);
  return tf.tidy(() => {
    const r = fn();
    const list = Array.isArray(r) ? r : [r];
    return list.map((t) => ({ shape: t.shape.slice(), data: Array.from(t.dataSync()) }));
  });
}

function expectClose(got: Result[], want: Result[], label: string, rtol = 1e-4): void {
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

/** Runs `fn` on cpu (reference) then on wasm and compares; ends on wasm. */
function compare(label: string, fn: Fn, rtol = 1e-4): Result[] {
  return compareWith(label, fn, fn, rtol);
}

/** `ref` on cpu vs `fn` on wasm. */
function compareWith(label: string, ref: Fn, fn: Fn, rtol = 1e-4): Result[] {
  const want = runOn('cpu', ref);
  const got = runOn('wasm', fn);
  expectClose(got, want, label, rtol);
  return got;
}

function tShape(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = shape.slice();
  [s[s.length - 1], s[s.length - 2]] = [s[s.length - 2], s[s.length - 1]];
  return s;
}

const TRANSPOSES: Array<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe('initEngine', () => {
  it('loads the CJS tfjs build with one shared core and the wasm backend active', async () => {
    const again = await initEngine();
    expect(again.tf).toBe(tf);
    expect(again.backend).toBe('wasm');
    expect(getTf()).toBe(tf);
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.findBackend('wasm')).toBeTruthy();
    expect(tf.findBackend('cpu')).toBeTruthy();
    expect(activeKernels()).toEqual([...CUSTOM_KERNELS]);
    for (const name of CUSTOM_KERNELS) {
      const [backend, kernel] = name.split('/');
      expect(tf.getKernel(kernel, backend), name).toBeTruthy();
    }
  });

  it('installKernels selects kernels by name (bare names mean wasm) and restores them', () => {
    installKernels(tf, ['UnsortedSegmentSum']);
    expect(activeKernels()).toEqual(['wasm/UnsortedSegmentSum']);
    expect(tf.getKernel('UnsortedSegmentSum', 'cpu')).toBeTruthy(); // the stock cpu one
    expect(() => installKernels(tf, ['NoSuchKernel' as never])).toThrow(/unknown custom kernel/);
    installKernels(tf, 'all');
    expect(activeKernels()).toEqual([...CUSTOM_KERNELS]);
  });

  it('switches backends and back', async () => {
    expect((await initEngine({ backend: 'cpu' })).backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initEngine({ backend: 'wasm' })).backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('explains how to install the native backends when they are missing', async () => {
    for (const backend of ['tensorflow', 'cuda'] as const) {
      let pkg = backend === 'cuda' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      try {
        await import(pkg);
        pkg = '';
      } catch {
        // not installed: the expected case here
      }
      if (!pkg) continue;
      await expect(initEngine({ backend })).rejects.toThrow(`npm install ${pkg}`);
      expect(tf.getBackend()).toBe('wasm');
    }
  });
});

describe('BatchMatMul (wasm) vs cpu', () => {
  // [a shape, b shape] in the non-transposed layout; gradients where tfjs
  // supports them (no broadcasting of batch dims). With broadcasting the
  // reference is cpu on operands explicitly broadcast to the output batch
  // shape (cpu's own BatchMatMul pairs batch items by index modulo size,
  // which is wrong for e.g. [2,1] x [1,3]).
  const cases: Array<{ a: number[]; b: number[]; grad: boolean }> = [
    { a: [5, 7], b: [7, 3], grad: true },
    { a: [1, 6, 9], b: [1, 9, 4], grad: true },
    { a: [4, 5, 7], b: [4, 7, 3], grad: true },
    { a: [3, 33, 65], b: [3, 65, 17], grad: true },
    { a: [2, 3, 5, 7], b: [2, 3, 7, 4], grad: true },
    { a: [64, 300], b: [300, 129], grad: true },
    { a: [20, 512], b: [512, 9], grad: true }, // K = 512: tiled-JS transpose path
    { a: [6, 3, 4], b: [6, 4, 2], grad: true }, // tiny items: stock loop
    { a: [4, 5, 7], b: [7, 3], grad: false }, // b broadcast (rank 2)
    { a: [1, 5, 7], b: [3, 7, 4], grad: false }, // a broadcast
    { a: [2, 1, 5, 7], b: [1, 3, 7, 4], grad: false }, // both broadcast
    { a: [3, 5, 7], b: [1, 7, 4], grad: false },
  ];
  for (const { a, b, grad } of cases) {
    for (const [tA, tB] of TRANSPOSES) {
      const name = `${JSON.stringify(a)}x${JSON.stringify(b)} tA=${tA} tB=${tB}`;
      it(name, () => {
        const as = tShape(a, tA);
        const bs = tShape(b, tB);
        const fwd = () => tf.matMul(rand(as, 1), rand(bs, 2), tA, tB);
        const batch = tf.broadcast_util.assertAndGetBroadcastShape(as.slice(0, -2), bs.slice(0, -2));
        const full = (t: Tensor) => tf.broadcastTo(t, [...batch, ...t.shape.slice(-2)]);
        const ref = () => tf.matMul(full(rand(as, 1)), full(rand(bs, 2)), tA, tB);
        compareWith(`forward ${name}`, ref, fwd);
        if (!grad) return;
        compare(`grad ${name}`, () => {
          const x = rand(as, 1);
          const y = rand(bs, 2);
          const out = tf.matMul(x, y, tA, tB);
          const w = rand(out.shape, 3);
          const g = tf.grads((p: Tensor, q: Tensor) => tf.sum(tf.mul(tf.matMul(p, q, tA, tB), w)));
          return g([x, y]);
        });
      });
    }
  }

  it('zero-sized inner and outer dims', () => {
    compare('K=0', () => tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])));
    compare('M=0', () => tf.matMul(tf.zeros([2, 0, 5]), tf.zeros([2, 5, 4])));
  });

  it('a weight reused under a different shape (reshape alias) is not served a stale XNNPACK operator', () => {
    tf.setBackend('wasm');
    tf.tidy(() => {
      const w = rand([4, 6], 7);
      const x1 = rand([3, 4], 8);
      const x2 = rand([3, 6], 9);
      const y1 = Array.from(tf.matMul(x1, w).dataSync());
      const y2 = Array.from(tf.matMul(x2, tf.reshape(w, [6, 4])).dataSync());
      tf.setBackend('cpu');
      const w1 = tf.tensor(values(24, 7), [4, 6]);
      const r1 = Array.from(tf.matMul(tf.tensor(values(12, 8), [3, 4]), w1).dataSync());
      const r2 = Array.from(tf.matMul(tf.tensor(values(18, 9), [3, 6]), tf.reshape(w1, [6, 4])).dataSync());
      tf.setBackend('wasm');
      expectClose([{ shape: [3, 6], data: y1 }], [{ shape: [3, 6], data: r1 }], 'y1');
      expectClose([{ shape: [3, 4], data: y2 }], [{ shape: [3, 4], data: r2 }], 'y2');
    });
  });

  it('leaves no tensors or heap registrations behind', () => {
    tf.setBackend('wasm');
    const backend = tf.backend();
    const a = rand([3, 40, 24], 1);
    const b = rand([3, 40, 16], 2);
    tf.matMul(a, b, true, false).dispose();
    const tensors = tf.memory().numTensors;
    const ids = backend.numDataIds();
    for (const [tA, tB] of TRANSPOSES) {
      const x = tShape([3, 24, 40], tA);
      const y = tShape([3, 40, 16], tB);
      tf.tidy(() => {
        const p = rand(x, 4);
        const q = rand(y, 5);
        tf.matMul(p, q, tA, tB).dataSync();
        tf.grads((u: Tensor, v: Tensor) => tf.sum(tf.matMul(u, v, tA, tB)))([p, q]);
      });
    }
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(ids);
    a.dispose();
    b.dispose();
  });
});

describe('_FusedMatMul (wasm) vs cpu', () => {
  const acts = ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu', 'prelu'] as const;
  const shapes: Array<{ a: number[]; b: number[] }> = [
    { a: [1, 9, 13], b: [1, 13, 6] },
    { a: [3, 9, 13], b: [3, 13, 6] },
    { a: [3, 9, 13], b: [1, 13, 6] },
  ];
  for (const { a, b } of shapes) {
    for (const [tA, tB] of TRANSPOSES) {
      for (const activation of acts) {
        const name = `${JSON.stringify(a)}x${JSON.stringify(b)} tA=${tA} tB=${tB} ${activation}`;
        it(name, () => {
          const N = b[b.length - 1];
          const M = a[a.length - 2];
          const biases: Array<number[] | null> = [null, [N], [1], [M, N]];
          for (const biasShape of biases) {
            compare(`${name} bias=${JSON.stringify(biasShape)}`, () =>
              tf.fused.matMul({
                a: rand(tShape(a, tA), 1),
                b: rand(tShape(b, tB), 2),
                transposeA: tA,
                transposeB: tB,
                bias: biasShape ? rand(biasShape, 3) : undefined,
                activation,
                preluActivationWeights: activation === 'prelu' ? rand([N], 4) : undefined,
                leakyreluAlpha: 0.15,
              }),
            );
          }
        });
      }
      it(`gradients ${JSON.stringify(a)}x${JSON.stringify(b)} tA=${tA} tB=${tB}`, () => {
        const N = b[b.length - 1];
        for (const activation of ['linear', 'relu'] as const) {
          compare(`fused grad ${activation}`, () => {
            const x = rand(tShape(a, tA), 1);
            const y = rand(tShape(b, tB), 2);
            const bias = rand([N], 3);
            const out = tf.fused.matMul({ a: x, b: y, transposeA: tA, transposeB: tB, bias });
            const w = rand(out.shape, 5);
            const f = (p: Tensor, q: Tensor, r: Tensor) =>
              tf.sum(
                tf.mul(
                  tf.fused.matMul({ a: p, b: q, transposeA: tA, transposeB: tB, bias: r, activation }),
                  w,
                ),
              );
            if (a[0] !== b[0]) return [f(x, y, bias)]; // broadcast: forward only
            return tf.grads(f)([x, y, bias]);
          });
        }
      });
    }
  }
});

describe('UnsortedSegmentSum (wasm) vs the stock cpu kernel', () => {
  // reference: tfjs-backend-cpu's own (slow) kernel, not ours
  beforeAll(() => installKernels(tf, CUSTOM_KERNELS.filter((n) => n.startsWith('wasm/'))));
  afterAll(() => installKernels(tf, 'all'));

  it('is registered for wasm (stock tfjs-backend-wasm 4.22 lacks it)', () => {
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeTruthy();
    expect(activeKernels()).not.toContain('cpu/UnsortedSegmentSum');
  });

  const ids = [3, 0, 3, 1, 4, 2, 0, 3];
  for (const inner of [[], [1], [4], [2, 3]]) {
    it(`repeated, out-of-order ids; x inner shape ${JSON.stringify(inner)}`, () => {
      compare(`uss ${JSON.stringify(inner)}`, () =>
        tf.unsortedSegmentSum(rand([ids.length, ...inner], 11), tf.tensor1d(ids, 'int32'), 6),
      );
    });
  }

  it('int32 values', () => {
    compare('uss int32', () =>
      tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], 'int32'), tf.tensor1d([2, 0, 2, 1], 'int32'), 3),
    );
  });

  it('drops ids outside [0, numSegments), as TF does', () => {
    compare('uss out of range', () =>
      tf.unsortedSegmentSum(rand([6, 3], 12), tf.tensor1d([0, -1, 2, 5, 9, 2], 'int32'), 4),
    );
  });

  it('rank-2 segment ids (TF semantics)', () => {
    tf.setBackend('wasm');
    const x = tf.tensor3d(
      Array.from({ length: 12 }, (_, i) => i + 1),
      [2, 3, 2],
    );
    const ids = tf.tensor2d([[1, 0, 1], [2, 1, 0]], [2, 3], 'int32');
    // the op's typings only allow rank-1 ids; run the kernel directly
    const out = tf.engine().runKernel('UnsortedSegmentSum', { x, segmentIds: ids }, { numSegments: 3 }) as Tensor;
    expect(out.shape).toEqual([3, 2]);
    // seg0: rows (0,1)=[3,4] + (1,2)=[11,12]; seg1: (0,0)=[1,2]+(0,2)=[5,6]+(1,1)=[9,10]; seg2: (1,0)=[7,8]
    expect(Array.from(out.dataSync())).toEqual([14, 16, 15, 18, 7, 8]);
    tf.dispose([x, ids, out]);
  });

  it('makes tf.grad of tf.gather work (embedding lookup), incl. repeated indices', () => {
    const idx = [5, 1, 5, 0, 9, 1, 1, 3];
    for (const [shape, axis] of [
      [[10, 4], 0],
      [[10], 0],
      [[3, 10, 2], 1],
    ] as Array<[number[], number]>) {
      compare(`gather grad ${JSON.stringify(shape)} axis ${axis}`, () => {
        const x = rand(shape, 21);
        const g = tf.grad((t: Tensor) => {
          const y = tf.gather(t, tf.tensor1d(idx, 'int32'), axis);
          return tf.sum(tf.mul(y, rand(y.shape, 22)));
        });
        return g(x);
      });
    }
    compare('gather grad 2-D indices', () => {
      const x = rand([7, 3], 23);
      const g = tf.grad((t: Tensor) => {
        const y = tf.gather(t, tf.tensor2d([[1, 6], [1, 0], [4, 1]], [3, 2], 'int32'));
        return tf.sum(tf.mul(y, rand(y.shape, 24)));
      });
      return g(x);
    });
  });
});

describe('UnsortedSegmentSum (cpu, custom) vs the stock cpu kernel', () => {
  it('same values and gather gradients', () => {
    const cases: Array<() => Tensor | Tensor[]> = [
      () => tf.unsortedSegmentSum(rand([8, 3], 61), tf.tensor1d([3, 0, 3, 1, -1, 7, 2, 0], 'int32'), 5),
      () => tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4], 'int32'), tf.tensor1d([1, 1, 0, 1], 'int32'), 2),
      () =>
        tf.grad((t: Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d([4, 1, 4, 0], 'int32')), rand([4, 2], 62))))(
          rand([6, 2], 63),
        ),
    ];
    for (const [k, fn] of cases.entries()) {
      installKernels(tf, CUSTOM_KERNELS.filter((n) => n !== 'cpu/UnsortedSegmentSum'));
      const want = runOn('cpu', fn);
      installKernels(tf, 'all');
      const got = runOn('cpu', fn);
      expectClose(got, want, `cpu uss case ${k}`);
    }
    tf.setBackend('wasm');
  });
});

describe('Slice / SplitV / Unpack / StridedSlice (wasm) vs cpu', () => {
  const x5 = (): Tensor => rand([4, 5, 6], 31);
  it('slice: contiguous, strided, rank 1..4, -1 sizes', () => {
    compare('slice rows', () => tf.slice(x5(), [1, 0, 0], [2, 5, 6]));
    compare('slice middle', () => tf.slice(x5(), [1, 2, 1], [3, 2, 4]));
    compare('slice last axis', () => tf.slice(x5(), [0, 0, 5], [4, 5, 1]));
    compare('slice -1', () => tf.slice(x5(), [2, 1, 3], [-1, -1, -1]));
    compare('slice 1d', () => tf.slice(rand([9], 32), [2], [5]));
    compare('slice 4d', () => tf.slice(rand([3, 4, 5, 6], 33), [1, 1, 2, 0], [2, 2, 2, 6]));
    compare('slice 4d inner', () => tf.slice(rand([3, 4, 5, 6], 33), [0, 1, 0, 2], [3, 3, 5, 3]));
    compare('slice empty', () => tf.slice(x5(), [1, 0, 0], [0, 5, 6]));
    compare('slice int32', () => tf.slice(tf.reshape(tf.range(0, 60, 1, 'int32'), [6, 10]), [1, 3], [4, 5]));
    compare('slice bool', () => tf.cast(tf.slice(tf.greater(x5(), 0), [1, 1, 1], [2, 3, 4]), 'int32'));
  });

  it('split (SplitV) by count and sizes, any axis', () => {
    compare('split 2 axis0', () => tf.split(x5(), 2, 0));
    compare('split sizes axis1', () => tf.split(x5(), [1, 3, 1], 1));
    compare('split sizes axis2 with -1', () => tf.split(x5(), [2, -1], 2));
  });

  it('unstack (Unpack)', () => {
    compare('unstack 0', () => tf.unstack(x5(), 0));
    compare('unstack 2', () => tf.unstack(x5(), 2));
  });

  it('stridedSlice', () => {
    compare('ss simple', () => tf.stridedSlice(x5(), [1, 0, 0], [3, 5, 6], [1, 1, 1]));
    compare('ss inner', () => tf.stridedSlice(x5(), [0, 1, 2], [4, 4, 5], [1, 1, 1]));
    compare('ss strided', () => tf.stridedSlice(x5(), [0, 0, 0], [4, 5, 6], [2, 1, 3]));
    compare('ss shrink', () => tf.stridedSlice(x5(), [1, 0, 0], [2, 5, 6], [1, 1, 1], 0, 0, 0, 0, 1));
  });

  it('gradients through concat (uses split), slice and unstack', () => {
    compare('concat grad', () => {
      const a = rand([3, 4], 41);
      const b = rand([3, 2], 42);
      return tf.grads((p: Tensor, q: Tensor) => tf.sum(tf.mul(tf.concat([p, q], 1), rand([3, 6], 43))))([a, b]);
    });
    compare('slice grad', () =>
      tf.grad((t: Tensor) => tf.sum(tf.mul(tf.slice(t, [1, 1, 0], [2, 3, 6]), rand([2, 3, 6], 44))))(x5()),
    );
    compare('unstack grad', () =>
      tf.grad((t: Tensor) => tf.sum(tf.mul(tf.unstack(t, 1)[2], rand([4, 6], 45))))(x5()),
    );
  });
});

describe('Transpose (wasm) vs cpu', () => {
  it('last-two swaps with 2^k output rows (tiled path) and other perms (stock path)', () => {
    compare('t 2d', () => tf.transpose(rand([512, 37], 81)));
    compare('t 2d 1024', () => tf.transpose(rand([1024, 64], 82)));
    compare('t batched', () => tf.transpose(rand([3, 768, 5], 83), [0, 2, 1]));
    compare('t size-1 dims', () => tf.transpose(rand([2, 1, 512, 3], 84), [0, 1, 3, 2]));
    compare('t size-1 moved', () => tf.transpose(rand([1, 512, 3], 85), [2, 0, 1]));
    compare('t int32', () => tf.transpose(tf.reshape(tf.range(0, 512 * 6, 1, 'int32'), [512, 6])));
    compare('t 4d heads', () => tf.transpose(rand([2, 5, 3, 4], 86), [0, 2, 1, 3]));
    compare('t small', () => tf.transpose(rand([7, 9], 87)));
    compare('t bool', () => tf.cast(tf.transpose(tf.greater(rand([512, 4], 88), 0)), 'int32'));
    compare('t grad', () =>
      tf.grad((t: Tensor) => tf.sum(tf.mul(tf.transpose(t), rand([9, 512], 89))))(rand([512, 9], 90)),
    );
  });
});

describe('Exp (wasm) vs cpu', () => {
  it('non-positive inputs (sigmoid path), mixed signs (stock path), small tensors, edge values', () => {
    compare('exp x<=0', () => tf.exp(tf.neg(tf.abs(tf.mul(rand([64, 300], 71), 30)))));
    compare('exp mixed', () => tf.exp(tf.mul(rand([64, 300], 72), 30)));
    compare('exp small', () => tf.exp(tf.mul(rand([7, 9], 73), 5)));
    const edge = [-Infinity, -1e4, -100, -88, -87.3, -20, -1, -1e-30, 0, -0];
    compare('exp edge', () => tf.exp(tf.tile(tf.tensor1d(edge), [500])));
    compare('exp NaN', () => tf.exp(tf.concat([tf.tensor1d([NaN]), tf.neg(tf.abs(rand([5000], 74)))])));
  });

  it('log-sum-exp / softmax cross-entropy and its gradient', () => {
    compare('softmax CE grad', () => {
      const logits = tf.mul(rand([64, 300], 75), 8);
      const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => (i * 37) % 300), 'int32'), 300);
      const [loss, grad] = [
        tf.losses.softmaxCrossEntropy(labels, logits),
        tf.grad((l: Tensor) => tf.losses.softmaxCrossEntropy(labels, l))(logits),
      ];
      return [loss, grad, tf.logSumExp(logits, 1)];
    });
  });
});

describe('Identity (wasm, zero-copy) vs cpu', () => {
  it('clone shares memory safely: values, dtypes, disposal of either side, gradients through clones', () => {
    compare('clone f32', () => tf.clone(rand([33, 17], 81)));
    compare('clone int32', () => tf.clone(tf.tensor1d([1, -2, 3], 'int32')));
    compare('clone bool', () => tf.clone(tf.tensor1d([1, 0, 1], 'bool')));
    compare('cast same dtype', () => tf.cast(rand([4, 5], 85), 'float32'));
    compare('cast int32 -> float32 (stock)', () => tf.cast(tf.tensor1d([1, -2, 3], 'int32'), 'float32'));
    compare('cast float32 -> int32 (stock)', () => tf.cast(tf.tensor1d([1.7, -2.2, 3], 'float32'), 'int32'));
    compare('cast float32 -> bool', () => tf.cast(tf.tensor1d([0, -2.2, 3, NaN, -0], 'float32'), 'bool'));
    compare('cast int32 -> bool', () => tf.cast(tf.tensor1d([0, -2, 300], 'int32'), 'bool'));
    tf.setBackend('wasm');
    const a = rand([5, 6], 82);
    const b = tf.clone(a);
    const want = Array.from(a.dataSync());
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual(want); // the clone keeps the memory alive
    const c = tf.clone(b);
    c.dispose();
    expect(Array.from(b.dataSync())).toEqual(want);
    b.dispose();
    const s = tf.clone(tf.tensor1d(['x', 'y'], 'string'));
    expect(s.dataSync()).toEqual(['x', 'y']);
    s.dispose();
    // gradients save clones of their inputs: a multi-use product
    compare('grad through saved clones', () => {
      const x = rand([8, 9], 83);
      const g = tf.grad((p: Tensor) => tf.sum(tf.mul(tf.square(tf.tanh(p)), tf.exp(p))));
      return g(x);
    });
  });

  it('leaves no tensors behind', () => {
    tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    tf.tidy(() => {
      const x = rand([10, 10], 84);
      tf.grad((p: Tensor) => tf.sum(tf.mul(p, p)))(x).dataSync();
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
  });
});

describe('GatherV2 (wasm, row copies) vs cpu', () => {
  it('axis 0..2, batchDims, float32 / int32 / bool, 1- and 2-D indices, repeated indices, slices < 16', () => {
    const idx1 = () => tf.tensor1d([3, 0, 3, 7, 1], 'int32');
    const idx2 = () => tf.tensor2d([[1, 2, 0], [4, 4, 3]], [2, 3], 'int32');
    compare('embedding rows', () => tf.gather(rand([8, 40], 91), idx1()));
    compare('2-D ids', () => tf.gather(rand([8, 40], 92), idx2()));
    compare('narrow rows', () => tf.gather(rand([8, 3], 93), idx2()));
    compare('axis 1', () => tf.gather(rand([4, 8, 20], 94), idx1(), 1));
    compare('axis 2 (scalars)', () => tf.gather(rand([3, 4, 8], 95), idx1(), 2));
    compare('axis -1', () => tf.gather(rand([3, 8], 96), idx1(), -1));
    compare('int32', () => tf.gather(tf.tensor2d(Array.from({ length: 80 }, (_, i) => i - 7), [8, 10], 'int32'), idx1()));
    compare('bool', () => tf.gather(tf.tensor2d(Array.from({ length: 80 }, (_, i) => i % 3), [8, 10], 'bool'), idx1()));
    compare('batchDims 1', () => tf.gather(rand([2, 5, 18], 97), tf.tensor2d([[0, 4, 4], [2, 1, 0]], [2, 3], 'int32'), 1, 1));
    compare('empty indices', () => tf.gather(rand([8, 4], 98), tf.tensor1d([], 'int32')));
    compare('gather gradient', () => {
      const x = rand([8, 20], 99);
      return tf.grad((p: Tensor) => tf.sum(tf.mul(tf.gather(p, idx2()), rand([2, 3, 20], 100))))(x);
    });
  });

  it('rejects indices outside [0, axisDim - 1] like the stock kernel', () => {
    tf.setBackend('wasm');
    expect(() => tf.gather(tf.zeros([4, 20]), tf.tensor1d([0, 4], 'int32'))).toThrow(/index value 4 is not in \[0, 3\]/);
    expect(() => tf.gather(tf.zeros([4, 20]), tf.tensor1d([-1], 'int32'))).toThrow(/not in \[0, 3\]/);
  });
});

describe('fused training kernels (P5RmsNorm, P5SoftmaxXent, P5DropoutMask) vs the tfjs composition on cpu', () => {
  const run = (name: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown> = {}) =>
    tf.engine().runKernel(name, inputs as never, attrs as never) as Tensor | Tensor[];
  const EPS = 1e-6;
  const shapes: Array<[number, number]> = [[7, 33], [64, 256], [3, 5], [1, 17]];

  // reference: tfjs ops (the model's composition), gradients by tf.grads
  const rmsRef = (rows: number, cols: number, seed: number) => {
    const x = tf.mul(rand([rows, cols], seed), 3);
    const w = tf.add(rand([cols], seed + 1), 1.5);
    const dy = rand([rows, cols], seed + 2);
    const f = (xx: Tensor, ww: Tensor) => tf.mul(tf.mul(xx, tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), EPS))), ww);
    const [dx, dw] = tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(f(a, b), dy)))([x, w]);
    return [f(x, w), tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), EPS)), dx, dw];
  };
  const rmsFused = (rows: number, cols: number, seed: number) => {
    const x = tf.mul(rand([rows, cols], seed), 3);
    const w = tf.add(rand([cols], seed + 1), 1.5);
    const dy = rand([rows, cols], seed + 2);
    const [y, r] = run('P5RmsNorm', { x, w }, { eps: EPS }) as Tensor[];
    const [dx, dw] = run('P5RmsNormGrad', { dy, x, w, r }) as Tensor[];
    return [y, r, dx, dw];
  };
  const labelsFor = (rows: number, cols: number) => Array.from({ length: rows }, (_, i) => (i * 37 + 5) % cols);
  const xentRef = (rows: number, cols: number, seed: number) => {
    const x = tf.mul(rand([rows, cols], seed), 8);
    const labels = labelsFor(rows, cols);
    const w = tf.tensor2d(Array.from({ length: rows }, (_, i) => (i % 5 === 3 ? 0 : (1 + (i % 3)) / rows)), [rows, 1]);
    const y = tf.mul(tf.oneHot(tf.tensor1d(labels, 'int32'), cols), w);
    const f = (l: Tensor) => tf.neg(tf.sum(tf.mul(tf.logSoftmax(l), y)));
    return [f(x), tf.logSumExp(x, 1), tf.mul(tf.grad(f)(x), 0.75)];
  };
  const xentFused = (rows: number, cols: number, seed: number) => {
    const x = tf.mul(rand([rows, cols], seed), 8);
    const labels = tf.tensor1d(labelsFor(rows, cols), 'float32');
    const weights = tf.tensor1d(Array.from({ length: rows }, (_, i) => (i % 5 === 3 ? 0 : (1 + (i % 3)) / rows)), 'float32');
    const [loss, lse] = run('P5SoftmaxXent', { logits: x, labels, weights }) as Tensor[];
    const dx = run('P5SoftmaxXentGrad', { logits: x, labels, weights, lse, dy: tf.scalar(0.75) }) as Tensor;
    return [loss, lse, dx];
  };

  for (const native of [true, false]) {
    it(`wasm (${native ? 'native addon when built' : 'JS loops on the heap'}): RMSNorm, its gradient, softmax cross-entropy, its gradient`, () => {
      installKernels(tf, 'all', { native });
      try {
        for (const [rows, cols] of shapes) {
          compareWith(`rmsnorm ${rows}x${cols}`, () => rmsRef(rows, cols, rows + cols), () => rmsFused(rows, cols, rows + cols));
        }
        for (const [rows, cols] of [[8, 300], [256, 1000], [5, 3]] as Array<[number, number]>) {
          compareWith(`xent ${rows}x${cols}`, () => xentRef(rows, cols, rows), () => xentFused(rows, cols, rows));
        }
      } finally {
        installKernels(tf, 'all');
      }
    });
  }

  it('cpu kernels: the same against the cpu composition', () => {
    for (const [rows, cols] of shapes) {
      const want = runOn('cpu', () => rmsRef(rows, cols, 3 * rows + cols));
      expectClose(runOn('cpu', () => rmsFused(rows, cols, 3 * rows + cols)), want, `cpu rmsnorm ${rows}x${cols}`);
    }
    const want = runOn('cpu', () => xentRef(64, 500, 9));
    expectClose(runOn('cpu', () => xentFused(64, 500, 9)), want, 'cpu xent');
    tf.setBackend('wasm');
  });

  it('P5SoftmaxXent rejects labels outside the vocabulary', () => {
    for (const b of ['wasm', 'cpu'] as const) {
      tf.setBackend(b);
      expect(() =>
        tf.tidy(() => run('P5SoftmaxXent', { logits: tf.zeros([2, 4]), labels: tf.tensor1d([1, 4]), weights: tf.ones([2]) })),
      ).toThrow(/outside/);
    }
    tf.setBackend('wasm');
  });

  it('P5DropoutMask is bit-identical to the model\'s dropoutMask (native, wasm JS, cpu)', () => {
    for (const [size, rate, seed] of [[200000, 0.1, 'a'], [4097, 0.5, '7:3'], [10, 0.9, 'x'], [0, 0.1, 'e']] as Array<[number, number, string]>) {
      const init = new Rng(hashString(seed));
      const attrs = { shape: [size], rate, a: init.nextU32(), b: init.nextU32(), c: init.nextU32(), d: init.nextU32() };
      const want = Array.from(dropoutMask(size, rate, seed));
      for (const [backend, native] of [['wasm', true], ['wasm', false], ['cpu', true]] as Array<['wasm' | 'cpu', boolean]>) {
        tf.setBackend(backend);
        installKernels(tf, 'all', { native });
        const got = tf.tidy(() => Array.from((run('P5DropoutMask', {}, attrs) as Tensor).dataSync()));
        expect(got, `${backend} native=${native} ${size}`).toEqual(want);
      }
      installKernels(tf, 'all');
    }
    tf.setBackend('wasm');
  });
});

describe('wasm matmul on two threads (helper worker, native off) vs cpu', () => {
  it('split products (rows of one GEMM, batch items, fused bias + activation) match cpu', async () => {
    installKernels(tf, 'all', { native: false });
    const threads = wasmThreads();
    setWasmThreads(2);
    setWasmSplitMinMacs(1, false); // split everything, never back off
    try {
      const started = await startWasmHelper();
      // the helper runs the compiled dist/engine/wasm-gemm-worker.js (npm run build); without it, one thread
      if (wasmHelperAvailable()) expect(started, 'the helper worker started').toBe(true);
      const before = wasmHelperChunks();
      const cases: Array<[number[], number[], boolean, boolean]> = [
        [[300, 70], [70, 90], false, false],
        [[70, 300], [90, 70], true, true],
        [[9, 40, 33], [9, 33, 20], false, false],
        [[9, 33, 40], [9, 20, 33], true, true],
        [[5, 64, 48], [48, 30], false, false],
        [[1100, 40], [1100, 30], true, false], // weight gradient Xᵀ·Y: split over K
        [[2048, 8], [2048, 3], true, false],
        [[512, 256], [256, 256], false, false], // big enough for the worker to wake in time
      ];
      // several rounds: the helper claims chunks only when it wakes in time
      for (let round = 0; round < 5; round++) {
        for (const [as, bs, tA, tB] of cases) {
          compare(`split ${JSON.stringify(as)}x${JSON.stringify(bs)} ${tA}${tB}`, () => tf.matMul(rand(as, 11), rand(bs, 12), tA, tB));
        }
        compare('split fused bias+relu', () =>
          tf.fused.matMul({ a: rand([300, 70], 13), b: rand([70, 90], 14), bias: rand([90], 15), activation: 'relu' }),
        );
        compare('split gradients', () => {
          const x = rand([300, 70], 16);
          const y = rand([70, 90], 17);
          return tf.grads((p: Tensor, q: Tensor) => tf.sum(tf.mul(tf.matMul(p, q), rand([300, 90], 18))))([x, y]);
        });
      }
      if (started) expect(wasmHelperChunks()).toBeGreaterThan(before);
    } finally {
      setWasmSplitMinMacs(1 << 22);
      setWasmThreads(threads);
      installKernels(tf, 'all');
    }
  });
});

describe('training on wasm', () => {
  it('a tiny embedding + dense model fits (loss decreases)', () => {
    tf.setBackend('wasm');
    const numUsers = 40;
    const dim = 8;
    const numClasses = 5;
    const users = Array.from({ length: 64 }, (_, i) => (i * 7) % numUsers);
    const labels = users.map((u) => (u * 3) % numClasses);
    const emb = tf.variable(tf.mul(rand([numUsers, dim], 51), 0.1), true, 'emb');
    const w = tf.variable(tf.mul(rand([dim, numClasses], 52), 0.3), true, 'w');
    const b = tf.variable(tf.zeros([numClasses]), true, 'b');
    const u = tf.tensor1d(users, 'int32');
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses);
    const opt = tf.train.adam(0.05);
    const lossFn = () =>
      tf.tidy(() => {
        const h = tf.gather(emb, u);
        const logits = tf.fused.matMul({ a: h, b: w, bias: b });
        return tf.losses.softmaxCrossEntropy(y, logits) as Tensor;
      });
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const l = opt.minimize(lossFn as () => never, true, [emb, w, b]);
      losses.push(l!.dataSync()[0]);
      l!.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    // the embedding rows that were looked up moved; the others did not
    const e = emb.arraySync() as number[][];
    const e0 = tf.tidy(() => tf.mul(rand([numUsers, dim], 51), 0.1).arraySync() as number[][]);
    const used = new Set(users);
    for (let r = 0; r < numUsers; r++) {
      const moved = e[r].some((v, j) => Math.abs(v - e0[r][j]) > 1e-6);
      expect(moved, `row ${r}`).toBe(used.has(r));
    }
    tf.dispose([emb, w, b, u, y]);
    opt.dispose();
  });
});
