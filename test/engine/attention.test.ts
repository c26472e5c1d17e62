/**
 * The fused attention op (P5Attention / P5AttentionGrad on the native addon,
 * models/t5/attention.ts) against the model's tfjs composition on the cpu
 * backend: the context and the gradients of the sources (q, k, v in their
 * separate / fused QKV / KV layouts) and of the position bias, for encoder
 * (padding mask), causal decoder and cross-attention shapes (Lq != Lk, odd
 * sizes), dropout off and on (the same mask bits as Dropout.apply), on one
 * and three native threads. Behaviour only, no timings.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, installKernels, setNativeThreads, type Tf } from '../../src/engine/backend.js';
import { NATIVE_ADDON_PATH, loadNative } from '../../src/engine/native.js';
import type { Tensor, Tensor2D } from '../../src/engine/types.js';
import { fusedAttention, fusedAttentionAvailable, type FusedAttentionSpec } from '../../src/models/t5/attention.js';
import { Dropout, dropoutMask } from '../../src/models/t5/ops.js';
import { compareWith, rand, runOn, values } from './kernel-cases.js';

const built = existsSync(NATIVE_ADDON_PATH);
let tf: Tf;

beforeAll(async () => {
  ({ tf } = await initEngine({ backend: 'wasm' }));
});

afterAll(() => {
  if (built && loadNative()) setNativeThreads(2);
});

interface Case {
  name: string;
  B: number;
  H: number;
  dk: number;
  Lq: number;
  Lk: number;
  /** 'qkv': one fused source; 'q,kv': cross-attention's two; 'q,k,v': three; 'wide': one source with spare columns */
  layout: 'q,k,v' | 'qkv' | 'q,kv' | 'wide';
  pos: boolean;
  /** padded key positions per batch item (from the end) */
  pad?: number[];
  causal?: boolean;
}

const CASES: Case[] = [
  { name: 'encoder, padding, separate q/k/v', B: 3, H: 2, dk: 5, Lq: 7, Lk: 7, layout: 'q,k,v', pos: true, pad: [0, 3, 6] },
  { name: 'encoder, padding, fused QKV', B: 2, H: 4, dk: 8, Lq: 9, Lk: 9, layout: 'qkv', pos: true, pad: [2, 0] },
  { name: 'decoder self, causal', B: 3, H: 2, dk: 4, Lq: 6, Lk: 6, layout: 'q,k,v', pos: true, causal: true },
  { name: 'decoder self, causal, fused QKV, odd sizes', B: 1, H: 3, dk: 3, Lq: 11, Lk: 11, layout: 'qkv', pos: true, causal: true },
  { name: 'causal with padding', B: 2, H: 2, dk: 4, Lq: 5, Lk: 5, layout: 'q,k,v', pos: true, causal: true, pad: [0, 2] },
  { name: 'cross-attention Lq < Lk, fused KV, padding', B: 2, H: 2, dk: 6, Lq: 4, Lk: 9, layout: 'q,kv', pos: false, pad: [3, 0] },
  { name: 'cross-attention Lq > Lk, no mask', B: 2, H: 1, dk: 7, Lq: 5, Lk: 2, layout: 'q,k,v', pos: false },
  { name: 'one source with spare columns (strides, zeroed gradient columns)', B: 2, H: 2, dk: 3, Lq: 4, Lk: 4, layout: 'wide', pos: true, pad: [1, 0] },
  { name: 'P5 size', B: 12, H: 4, dk: 16, Lq: 50, Lk: 50, layout: 'q,k,v', pos: true, pad: [0, 10, 20, 30, 40, 49, 0, 5, 1, 2, 3, 4] },
];

/** Sources, their roles, and the constant inputs of a case (made on the current backend). */
function inputsOf(c: Case, seed: number) {
  const HD = c.H * c.dk;
  const rowsQ = c.B * c.Lq;
  const rowsK = c.B * c.Lk;
  const src = (rows: number, width: number, s: number) => tf.mul(rand([rows, width], s), 1.5) as Tensor2D;
  let sources: Tensor2D[];
  let srcOf: [number, number, number];
  let cols: [number, number, number];
  switch (c.layout) {
    case 'q,k,v':
      sources = [src(rowsQ, HD, seed), src(rowsK, HD, seed + 1), src(rowsK, HD, seed + 2)];
      [srcOf, cols] = [[0, 1, 2], [0, 0, 0]];
      break;
    case 'qkv':
      sources = [src(rowsQ, 3 * HD, seed)];
      [srcOf, cols] = [[0, 0, 0], [0, HD, 2 * HD]];
      break;
    case 'q,kv':
      sources = [src(rowsQ, HD, seed), src(rowsK, 2 * HD, seed + 1)];
      [srcOf, cols] = [[0, 1, 1], [0, 0, HD]];
      break;
    case 'wide':
      sources = [src(rowsQ, 3 * HD + 5, seed)];
      [srcOf, cols] = [[0, 0, 0], [2, HD + 4, 2 * HD + 5]];
      break;
  }
  const pos = c.pos ? tf.mul(rand([1, c.H, c.Lq, c.Lk], seed + 7), 2) : undefined;
  let mask: Tensor | undefined;
  if (c.pad) {
    const m = new Float32Array(c.B * c.Lk);
    c.pad.forEach((p, b) => {
      for (let j = c.Lk - p; j < c.Lk; j++) m[b * c.Lk + j] = -1e9;
    });
    mask = tf.tensor4d(m, [c.B, 1, 1, c.Lk]);
  }
  const w = rand([c.B * c.Lq, HD], seed + 9); // output weights of the gradient check
  return { sources, srcOf, cols, pos, mask, w };
}

/** The model's composition (model.ts attention/attend) on tfjs ops. */
function composed(c: Case, srcs: Tensor2D[], srcOf: number[], cols: number[], pos: Tensor | undefined, mask: Tensor | undefined, drop: Dropout): Tensor2D {
  const HD = c.H * c.dk;
  const heads = (r: number, L: number) =>
    tf.transpose(tf.reshape(tf.slice(srcs[srcOf[r]], [0, cols[r]], [-1, HD]), [c.B, L, c.H, c.dk]), [0, 2, 1, 3]);
  let bias: Tensor = tf.zeros([1, 1, 1, 1]);
  if (pos && mask) bias = tf.add(pos, mask);
  else if (pos || mask) bias = (pos ?? mask)!;
  if (c.causal) {
    const m = new Float32Array(c.Lq * c.Lk);
    for (let i = 0; i < c.Lq; i++) for (let j = i + 1; j < c.Lk; j++) m[i * c.Lk + j] = -1e9;
    bias = tf.add(bias, tf.tensor4d(m, [1, 1, c.Lq, c.Lk]));
  }
  const scores = tf.add(tf.matMul(heads(0, c.Lq), heads(1, c.Lk), false, true), bias);
  const ctx = tf.matMul(drop.apply(tf.softmax(scores)), heads(2, c.Lk));
  return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [c.B * c.Lq, HD]) as Tensor2D;
}

/** [context, d sources..., d pos] of Σ(context · w), by `impl`. */
function run(c: Case, rate: number, impl: 'fused' | 'composed'): Tensor[] {
  const { sources, srcOf, cols, pos, mask, w } = inputsOf(c, 11);
  const dropout = () => new Dropout(rate, true, 42);
  const f = (...xs: Tensor[]): Tensor2D => {
    const srcs = xs.slice(0, sources.length) as Tensor2D[];
    const p = pos ? xs[sources.length] : undefined;
    if (impl === 'composed') return composed(c, srcs, srcOf, cols, p, mask, dropout());
    const spec: FusedAttentionSpec = {
      sources: srcs, srcOf, cols, numHeads: c.H, headDim: c.dk, Lq: c.Lq, Lk: c.Lk,
      posBias: p, mask, causal: !!c.causal, dropout: dropout().nextKey(),
    };
    return fusedAttention(spec);
  };
  const xs = pos ? [...sources, pos] : sources;
  const grads = tf.grads((...a: Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
  return [f(...xs), ...grads];
}

describe.skipIf(!built)('fused attention (native) vs the tfjs composition', () => {
  beforeAll(() => {
    installKernels(tf, 'all');
    expect(fusedAttentionAvailable()).toBe(true);
  });

  for (const threads of [1, 3]) {
    for (const rate of [0, 0.3]) {
      for (const c of CASES) {
        it(`${c.name}: B${c.B} H${c.H} dk${c.dk} Lq${c.Lq} Lk${c.Lk}, dropout ${rate}, ${threads} thread(s)`, () => {
          setNativeThreads(threads);
          compareWith(`${c.name} dropout ${rate}`, () => run(c, rate, 'composed'), () => run(c, rate, 'fused'), 2e-5);
        });
      }
    }
  }

  it('the scalar build of the kernel (no AVX2) agrees too', () => {
    const addon = loadNative()!;
    const best = addon.info().detectedIsa;
    try {
      expect(addon.setIsa('scalar')).toBe('scalar');
      for (const c of [CASES[0], CASES[3], CASES[5]]) {
        compareWith(`scalar ${c.name}`, () => run(c, 0.3, 'composed'), () => run(c, 0.3, 'fused'), 2e-5);
      }
    } finally {
      addon.setIsa(best);
    }
  });

  it('drops exactly the elements Dropout.apply drops ([B, H, Lq, Lk] index order)', () => {
    // V = one-hot rows: each output row is its row of dropout(P), whose zeros are the mask's
    const [B, H, L, dk, rate] = [2, 3, 6, 8, 0.4];
    const HD = H * dk;
    const v = new Float32Array(B * L * HD);
    for (let b = 0; b < B; b++) for (let j = 0; j < L; j++) for (let h = 0; h < H; h++) v[(b * L + j) * HD + h * dk + j] = 1;
    const out = tf.tidy(() => {
      const q = tf.tensor2d(values(B * L * HD, 1), [B * L, HD]);
      const k = tf.tensor2d(values(B * L * HD, 2), [B * L, HD]);
      const key = new Dropout(rate, true, 7).nextKey();
      const o = fusedAttention({ sources: [q, k, tf.tensor2d(v, [B * L, HD])], srcOf: [0, 1, 2], cols: [0, 0, 0], numHeads: H, headDim: dk, Lq: L, Lk: L, causal: false, dropout: key });
      return Array.from(o.dataSync());
    });
    const mask = dropoutMask(B * H * L * L, rate, '7:0');
    let dropped = 0;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < L; i++) {
          for (let j = 0; j < L; j++) {
            const m = mask[((b * H + h) * L + i) * L + j];
            const o = out[(b * L + i) * HD + h * dk + j];
            expect(o === 0, `b${b} h${h} i${i} j${j}`).toBe(m === 0);
            if (m === 0) dropped++;
          }
        }
      }
    }
    expect(dropped).toBeGreaterThan(0);
  });

  it('bias gradient: the same bits on 1, 2 and 3 threads', () => {
    const c = CASES[CASES.length - 1];
    const bits = [1, 2, 3].map((n) => {
      setNativeThreads(n);
      return runOn('wasm', () => run(c, 0.2, 'fused')).map((r) => r.data);
    });
    expect(bits[1]).toEqual(bits[0]);
    expect(bits[2]).toEqual(bits[0]);
  });

  it('the addon rejects bad dims and out-of-range memory instead of touching it', () => {
    const addon = loadNative()!;
    const f = (n: number) => new Float32Array(n);
    // B1 H1 Lq2 Lk2 dk2: q/k/v/o 4 floats, p 4 floats
    const dims = [1, 1, 2, 2, 2, 2, 2, 2, 0];
    const fwd = (q: Float32Array, d: number[], drop: number[] | null = null) => addon.attentionForward(q, 0, f(4), 0, f(4), 0, null, 0, null, 0, f(4), 0, f(4), 0, d, drop);
    expect(() => fwd(f(4), dims)).not.toThrow();
    expect(() => fwd(f(3), dims)).toThrow(RangeError);
    expect(() => fwd(f(4), [1, 1, 2, 2, 2, 1, 2, 2, 0])).toThrow(/stride/);
    expect(() => fwd(f(4), [1, 1, 2, 3, 2, 2, 2, 2, 1])).toThrow(/causal/);
    expect(() => fwd(f(4), [1, 1, 2])).toThrow(TypeError);
    expect(() => fwd(f(4), dims, [1, 2])).toThrow(TypeError);
    const q = f(4);
    expect(() => addon.attentionForward(q, 0, f(4), 0, f(4), 0, null, 0, null, 0, q, 0, f(4), 0, dims, null)).toThrow(/overlaps/);
    expect(() => addon.attentionBackward(f(4), 0, f(4), 0, f(4), 0, f(4), 0, f(4), 0, f(4), 0, f(4), 0, f(4), 0, f(3), 0, dims, null)).toThrow(RangeError);
  });

  it('leaves no tensors behind', () => {
    const c = CASES[1];
    runOn('wasm', () => run(c, 0.2, 'fused'));
    const before = tf.memory().numTensors;
    runOn('wasm', () => run(c, 0.2, 'fused'));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is unavailable (the model composes tfjs ops) with the native kernels off or on cpu', () => {
    installKernels(tf, 'all', { native: false });
    expect(fusedAttentionAvailable()).toBe(false);
    installKernels(tf, 'all');
    tf.setBackend('cpu');
    expect(fusedAttentionAvailable()).toBe(false);
    tf.setBackend('wasm');
    expect(fusedAttentionAvailable()).toBe(true);
  });
});
