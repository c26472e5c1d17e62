/**
 * Custom wasm kernels against the tfjs 'cpu' backend: forward values and
 * gradients must agree within 1e-4 relative, i.e. |wasm - cpu| <= 1e-4 *
 * (|cpu| + max|cpu over the tensor|). The per-kernel checks are tables of
 * cases (kernel-cases.ts runs them); behaviour that does not fit a table
 * (memory, errors, threads, registration) has its own tests. Behaviour only,
 * no timings.
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
import {
  checkCase,
  compare,
  compareWith,
  expectClose,
  fusedMatMulCases,
  ints,
  label,
  matMulCases,
  rand,
  runOn,
  tShape,
  TRANSPOSES,
  values,
  zeros,
  type Attrs,
  type Input,
  type KernelCase,
} from './kernel-cases.js';
import { setWasmSplitMinMacs, setWasmThreads, startWasmHelper, wasmHelperAvailable, wasmHelperChunks, wasmThreads } from '../../src/engine/threads.js';
import { dropoutMask } from '../../src/models/t5/ops.js';
import { Rng, hashString } from '../../src/util/rng.js';

let tf: Tf;

beforeAll(async () => {
  ({ tf } = await initEngine({ backend: 'wasm' }));
});

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

// ------------------------------------------------------------------ tables
// Each row: the kernel, the op that reaches it, inputs, attributes; checked
// on wasm against cpu (forward and/or gradients, see kernel-cases.ts).

const MATMUL_CASES = matMulCases([
  { a: [5, 7], b: [7, 3], grad: true },
  { a: [1, 6, 9], b: [1, 9, 4], grad: true },
  { a: [4, 5, 7], b: [4, 7, 3], grad: true },
  { a: [3, 33, 65], b: [3, 65, 17], grad: true },
  { a: [2, 3, 5, 7], b: [2, 3, 7, 4], grad: true },
  { a: [64, 300], b: [300, 129], grad: true },
  { a: [20, 512], b: [512, 9], grad: true, note: 'K = 512: tiled-JS transpose path' },
  { a: [6, 3, 4], b: [6, 4, 2], grad: true, note: 'tiny items: stock loop' },
  { a: [4, 5, 7], b: [7, 3], grad: false, note: 'b broadcast (rank 2)' },
  { a: [1, 5, 7], b: [3, 7, 4], grad: false, note: 'a broadcast' },
  { a: [2, 1, 5, 7], b: [1, 3, 7, 4], grad: false, note: 'both broadcast' },
  { a: [3, 5, 7], b: [1, 7, 4], grad: false },
]).concat([
  { kernel: 'BatchMatMul', name: 'K=0', op: 'matMul', inputs: [zeros([3, 0]), zeros([0, 4])] },
  { kernel: 'BatchMatMul', name: 'M=0', op: 'matMul', inputs: [zeros([2, 0, 5]), zeros([2, 5, 4])] },
]);

const FUSED_CASES = fusedMatMulCases(
  [
    { a: [1, 9, 13], b: [1, 13, 6] },
    { a: [3, 9, 13], b: [3, 13, 6] },
    { a: [3, 9, 13], b: [1, 13, 6] },
  ],
  TRANSPOSES,
  [null, ['N'], [1], ['M', 'N']],
  ['linear', 'relu'],
);

/** Against the stock cpu kernel (the describe below takes ours off cpu). */
const USS_IDS = [3, 0, 3, 1, 4, 2, 0, 3];
const GATHER_GRAD_IDS = [5, 1, 5, 0, 9, 1, 1, 3];
const USS_CASES: KernelCase[] = [
  ...[[], [1], [4], [2, 3]].map((inner): KernelCase => ({
    kernel: 'UnsortedSegmentSum',
    name: `repeated, out-of-order ids; x inner shape ${JSON.stringify(inner)}`,
    op: 'unsortedSegmentSum',
    inputs: [{ shape: [USS_IDS.length, ...inner], seed: 11 }, ints([USS_IDS.length], USS_IDS)],
    attrs: { numSegments: 6 },
  })),
  { kernel: 'UnsortedSegmentSum', name: 'int32 values', op: 'unsortedSegmentSum', inputs: [ints([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]), ints([4], [2, 0, 2, 1])], attrs: { numSegments: 3 } },
  { kernel: 'UnsortedSegmentSum', name: 'drops ids outside [0, numSegments), as TF does', op: 'unsortedSegmentSum', inputs: [{ shape: [6, 3], seed: 12 }, ints([6], [0, -1, 2, 5, 9, 2])], attrs: { numSegments: 4 } },
  // tf.grad of tf.gather (embedding lookup), incl. repeated indices
  ...([[[10, 4], 0], [[10], 0], [[3, 10, 2], 1]] as Array<[number[], number]>).map(([shape, axis]): KernelCase => ({
    kernel: 'UnsortedSegmentSum',
    name: `gather grad ${JSON.stringify(shape)} axis ${axis}`,
    op: 'gather',
    inputs: [{ shape, seed: 21 }, ints([GATHER_GRAD_IDS.length], GATHER_GRAD_IDS)],
    attrs: { axis },
    check: 'grad',
    gradSeed: 22,
  })),
  { kernel: 'UnsortedSegmentSum', name: 'gather grad 2-D indices', op: 'gather', inputs: [{ shape: [7, 3], seed: 23 }, ints([3, 2], [1, 6, 1, 0, 4, 1])], check: 'grad', gradSeed: 24 },
];

const X5: Input = { shape: [4, 5, 6], seed: 31 };
const SLICE_CASES: KernelCase[] = [
  ...([
    ['rows', X5, [1, 0, 0], [2, 5, 6]],
    ['middle', X5, [1, 2, 1], [3, 2, 4]],
    ['last axis', X5, [0, 0, 5], [4, 5, 1]],
    ['-1 sizes', X5, [2, 1, 3], [-1, -1, -1]],
    ['1d', { shape: [9], seed: 32 }, [2], [5]],
    ['4d', { shape: [3, 4, 5, 6], seed: 33 }, [1, 1, 2, 0], [2, 2, 2, 6]],
    ['4d inner', { shape: [3, 4, 5, 6], seed: 33 }, [0, 1, 0, 2], [3, 3, 5, 3]],
    ['empty', X5, [1, 0, 0], [0, 5, 6]],
    ['int32', ints([6, 10], Array.from({ length: 60 }, (_, i) => i)), [1, 3], [4, 5]],
    ['bool', { ...X5, dtype: 'bool' }, [1, 1, 1], [2, 3, 4]],
  ] as Array<[string, Input, number[], number[]]>).map(([name, x, begin, sz]): KernelCase => ({ kernel: 'Slice', name, op: 'slice', inputs: [x], attrs: { begin, size: sz } })),
  { kernel: 'Slice', name: 'gradient', op: 'slice', inputs: [X5], attrs: { begin: [1, 1, 0], size: [2, 3, 6] }, check: 'grad', gradSeed: 44 },
  { kernel: 'SplitV', name: '2 parts, axis 0', op: 'split', inputs: [X5], attrs: { numOrSizeSplits: 2, axis: 0 } },
  { kernel: 'SplitV', name: 'sizes, axis 1', op: 'split', inputs: [X5], attrs: { numOrSizeSplits: [1, 3, 1], axis: 1 } },
  { kernel: 'SplitV', name: 'sizes with -1, axis 2', op: 'split', inputs: [X5], attrs: { numOrSizeSplits: [2, -1], axis: 2 } },
  { kernel: 'SplitV', name: 'gradient of concat', op: 'concat', inputs: [{ shape: [3, 4], seed: 41 }, { shape: [3, 2], seed: 42 }], attrs: { axis: 1 }, check: 'grad', gradSeed: 43 },
  { kernel: 'Unpack', name: 'axis 0', op: 'unstack', inputs: [X5], attrs: { axis: 0 } },
  { kernel: 'Unpack', name: 'axis 2', op: 'unstack', inputs: [X5], attrs: { axis: 2 } },
  { kernel: 'Unpack', name: 'gradient, axis 1', op: 'unstack', inputs: [X5], attrs: { axis: 1 }, check: 'grad', gradSeed: 45 },
  { kernel: 'StridedSlice', name: 'simple', op: 'stridedSlice', inputs: [X5], attrs: { begin: [1, 0, 0], end: [3, 5, 6], strides: [1, 1, 1] } },
  { kernel: 'StridedSlice', name: 'inner', op: 'stridedSlice', inputs: [X5], attrs: { begin: [0, 1, 2], end: [4, 4, 5], strides: [1, 1, 1] } },
  { kernel: 'StridedSlice', name: 'strided', op: 'stridedSlice', inputs: [X5], attrs: { begin: [0, 0, 0], end: [4, 5, 6], strides: [2, 1, 3] } },
  { kernel: 'StridedSlice', name: 'shrink', op: 'stridedSlice', inputs: [X5], attrs: { begin: [1, 0, 0], end: [2, 5, 6], strides: [1, 1, 1], shrinkAxisMask: 1 } },
];

/** Last-two swaps with 2^k output rows take the tiled path, other perms the stock one. */
const TRANSPOSE_CASES: KernelCase[] = [
  ...([
    ['2d', { shape: [512, 37], seed: 81 }],
    ['2d 1024', { shape: [1024, 64], seed: 82 }],
    ['batched', { shape: [3, 768, 5], seed: 83 }, [0, 2, 1]],
    ['size-1 dims', { shape: [2, 1, 512, 3], seed: 84 }, [0, 1, 3, 2]],
    ['size-1 moved', { shape: [1, 512, 3], seed: 85 }, [2, 0, 1]],
    ['int32', ints([512, 6], Array.from({ length: 512 * 6 }, (_, i) => i))],
    ['4d heads', { shape: [2, 5, 3, 4], seed: 86 }, [0, 2, 1, 3]],
    ['small', { shape: [7, 9], seed: 87 }],
    ['bool', { shape: [512, 4], seed: 88, dtype: 'bool' }],
  ] as Array<[string, Input, number[]?]>).map(([name, x, perm]): KernelCase => ({ kernel: 'Transpose', name, op: 'transpose', inputs: [x], attrs: { perm } })),
  { kernel: 'Transpose', name: 'gradient', op: 'transpose', inputs: [{ shape: [512, 9], seed: 90 }], check: 'grad', gradSeed: 89 },
];

/** All-non-positive inputs take the sigmoid path, mixed signs the stock one. */
const EXP_EDGE = [-Infinity, -1e4, -100, -88, -87.3, -20, -1, -1e-30, 0, -0];
const EXP_CASES: KernelCase[] = [
  { kernel: 'Exp', name: 'x <= 0', op: 'exp', inputs: [{ shape: [64, 300], seed: 71, scale: 30, negAbs: true }] },
  { kernel: 'Exp', name: 'mixed signs', op: 'exp', inputs: [{ shape: [64, 300], seed: 72, scale: 30 }] },
  { kernel: 'Exp', name: 'small', op: 'exp', inputs: [{ shape: [7, 9], seed: 73, scale: 5 }] },
  { kernel: 'Exp', name: 'edge values', op: 'exp', inputs: [{ shape: [EXP_EDGE.length * 500], values: Array.from({ length: 500 }, () => EXP_EDGE).flat() }] },
  { kernel: 'Exp', name: 'NaN', op: 'exp', inputs: [{ shape: [5001], values: [NaN, ...Array.from(values(5000, 74), (v) => -Math.abs(v))] }] },
  {
    kernel: 'Exp',
    name: 'log-sum-exp / softmax cross-entropy and its gradient',
    op: 'softmaxCrossEntropy',
    inputs: [{ shape: [64, 300], seed: 75, scale: 8 }, ints([64], Array.from({ length: 64 }, (_, i) => (i * 37) % 300))],
  },
];

const IDENTITY_CASES: KernelCase[] = [
  { kernel: 'Identity', name: 'clone float32', op: 'clone', inputs: [{ shape: [33, 17], seed: 81 }] },
  { kernel: 'Identity', name: 'clone int32', op: 'clone', inputs: [ints([3], [1, -2, 3])] },
  { kernel: 'Identity', name: 'clone bool', op: 'clone', inputs: [{ shape: [3], values: [1, 0, 1], dtype: 'bool' }] },
  { kernel: 'Identity', name: 'gradients through saved clones', op: 'savedClones', inputs: [{ shape: [8, 9], seed: 83 }], check: 'grad' },
  { kernel: 'Cast', name: 'same dtype', op: 'cast', inputs: [{ shape: [4, 5], seed: 85 }], attrs: { dtype: 'float32' } },
  { kernel: 'Cast', name: 'int32 -> float32 (stock)', op: 'cast', inputs: [ints([3], [1, -2, 3])], attrs: { dtype: 'float32' } },
  { kernel: 'Cast', name: 'float32 -> int32 (stock)', op: 'cast', inputs: [{ shape: [3], values: [1.7, -2.2, 3] }], attrs: { dtype: 'int32' } },
  { kernel: 'Cast', name: 'float32 -> bool', op: 'cast', inputs: [{ shape: [5], values: [0, -2.2, 3, NaN, -0] }], attrs: { dtype: 'bool' } },
  { kernel: 'Cast', name: 'int32 -> bool', op: 'cast', inputs: [ints([3], [0, -2, 300])], attrs: { dtype: 'bool' } },
];

const IDX1 = ints([5], [3, 0, 3, 7, 1]);
const IDX2 = ints([2, 3], [1, 2, 0, 4, 4, 3]);
const GATHER_CASES: KernelCase[] = [
  ...([
    ['embedding rows', { shape: [8, 40], seed: 91 }, IDX1],
    ['2-D ids', { shape: [8, 40], seed: 92 }, IDX2],
    ['narrow rows (< 16)', { shape: [8, 3], seed: 93 }, IDX2],
    ['axis 1', { shape: [4, 8, 20], seed: 94 }, IDX1, { axis: 1 }],
    ['axis 2 (scalars)', { shape: [3, 4, 8], seed: 95 }, IDX1, { axis: 2 }],
    ['axis -1', { shape: [3, 8], seed: 96 }, IDX1, { axis: -1 }],
    ['int32', ints([8, 10], Array.from({ length: 80 }, (_, i) => i - 7)), IDX1],
    ['bool', { shape: [8, 10], values: Array.from({ length: 80 }, (_, i) => i % 3), dtype: 'bool' }, IDX1],
    ['batchDims 1', { shape: [2, 5, 18], seed: 97 }, ints([2, 3], [0, 4, 4, 2, 1, 0]), { axis: 1, batchDims: 1 }],
    ['empty indices', { shape: [8, 4], seed: 98 }, ints([0], [])],
  ] as Array<[string, Input, Input, Attrs?]>).map(([name, x, idx, attrs]): KernelCase => ({ kernel: 'GatherV2', name, op: 'gather', inputs: [x, idx], attrs })),
  { kernel: 'GatherV2', name: 'gradient', op: 'gather', inputs: [{ shape: [8, 20], seed: 99 }, IDX2], check: 'grad', gradSeed: 100 },
];

// ------------------------------------------------------------------ checks

describe('BatchMatMul (wasm) vs cpu', () => {
  for (const c of MATMUL_CASES) it(c.name, () => checkCase(c));

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
  for (const c of FUSED_CASES) it(c.name, () => checkCase(c));
});

describe('UnsortedSegmentSum (wasm) vs the stock cpu kernel', () => {
  // reference: tfjs-backend-cpu's own (slow) kernel, not ours
  beforeAll(() => installKernels(tf, CUSTOM_KERNELS.filter((n) => n.startsWith('wasm/'))));
  afterAll(() => installKernels(tf, 'all'));

  it('is registered for wasm (stock tfjs-backend-wasm 4.22 lacks it)', () => {
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeTruthy();
    expect(activeKernels()).not.toContain('cpu/UnsortedSegmentSum');
  });

  for (const c of USS_CASES) it(c.name, () => checkCase(c));

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
  for (const c of SLICE_CASES) it(label(c), () => checkCase(c));
});

describe('Transpose (wasm) vs cpu', () => {
  for (const c of TRANSPOSE_CASES) it(c.name, () => checkCase(c));
});

describe('Exp (wasm) vs cpu', () => {
  for (const c of EXP_CASES) it(c.name, () => checkCase(c));
});

describe('Identity / Cast (wasm, zero-copy) vs cpu', () => {
  for (const c of IDENTITY_CASES) it(label(c), () => checkCase(c));

  it('clone shares memory safely: disposal of either side', () => {
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
  for (const c of GATHER_CASES) it(c.name, () => checkCase(c));

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
