/**
 * T5 model: HF parameter names, relative position buckets against
 * hand-computed values, the tfjs forward pass against a plain-loop reference
 * written from HF's modeling_t5.py (weights in HF's [out, in] layout),
 * incremental decoding against the full forward pass, and wasm vs cpu.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine, loadNativeAddon, type Tf } from '../src/engine/backend.js';
import { countT5Parameters, resolveT5Config, T5_PRESETS, type T5Config } from '../src/models/t5/config.js';
import { collateSeq2Seq, type Seq2SeqBatch } from '../src/models/t5/collate.js';
import { T5Model, type HFTensor } from '../src/models/t5/model.js';
import { fusedAttentionAvailable } from '../src/models/t5/attention.js';
import { dropoutMask } from '../src/models/t5/ops.js';
import { relativePositionBucket } from '../src/models/t5/position-bias.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await initEngine({ backend: 'wasm' }));
});

function tinyConfig(over: Partial<T5Config> = {}): T5Config {
  return resolveT5Config({ preset: 'tiny', vocab_size: 40, d_model: 16, d_kv: 4, num_heads: 2, d_ff: 24, num_layers: 2, num_decoder_layers: 2, dropout_rate: 0, whole_word_embeddings: 8, relative_attention_num_buckets: 8, relative_attention_max_distance: 12, ...over });
}

function sampleBatch(c: T5Config): Seq2SeqBatch {
  return collateSeq2Seq(
    [
      { inputIds: [5, 6, 7, 8, 9, 10, 11, 1], wholeWordIds: [1, 1, 2, 3, 3, 4, 5, 0], labels: [12, 13, 14, 1] },
      { inputIds: [20, 21, 22, 1], wholeWordIds: [1, 2, 2, 0], labels: [30, 1] },
    ],
    c,
  );
}

// ------------------------------------------------------------------ reference

type W = Map<string, HFTensor>;
const vec = (n: number): number[] => new Array(n).fill(0);

/** y = W x with W [out, in] (PyTorch Linear). */
function linear(w: HFTensor, x: number[]): number[] {
  const [out, inn] = w.shape;
  const y = vec(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inn; i++) s += w.data[o * inn + i] * x[i];
    y[o] = s;
  }
  return y;
}
function rms(x: number[], w: HFTensor, eps: number): number[] {
  const v = x.reduce((a, b) => a + b * b, 0) / x.length;
  return x.map((xi, i) => (xi / Math.sqrt(v + eps)) * w.data[i]);
}
const row = (t: HFTensor, r: number): number[] => Array.from(t.data.subarray(r * t.shape[1], (r + 1) * t.shape[1]));
const add = (a: number[], b: number[]): number[] => a.map((x, i) => x + b[i]);
const gelu = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

function refAttention(c: T5Config, w: W, pre: string, xq: number[][], xkv: number[][], bias: (h: number, i: number, j: number) => number): number[][] {
  const H = c.num_heads;
  const dk = c.d_kv;
  const q = xq.map((x) => linear(w.get(`${pre}.q.weight`)!, x));
  const k = xkv.map((x) => linear(w.get(`${pre}.k.weight`)!, x));
  const v = xkv.map((x) => linear(w.get(`${pre}.v.weight`)!, x));
  return q.map((qi, i) => {
    const ctx = vec(H * dk);
    for (let h = 0; h < H; h++) {
      const s = k.map((kj, j) => {
        let d = 0;
        for (let e = 0; e < dk; e++) d += qi[h * dk + e] * kj[h * dk + e];
        return d + bias(h, i, j);
      });
      const m = Math.max(...s);
      const p = s.map((x) => Math.exp(x - m));
      const z = p.reduce((a, b) => a + b, 0);
      for (let j = 0; j < k.length; j++) for (let e = 0; e < dk; e++) ctx[h * dk + e] += (p[j] / z) * v[j][h * dk + e];
    }
    return linear(w.get(`${pre}.o.weight`)!, ctx);
  });
}

function refFF(c: T5Config, w: W, pre: string, x: number[]): number[] {
  const ff = `${pre}.DenseReluDense`;
  let h: number[];
  if (c.feed_forward_proj === 'relu') h = linear(w.get(`${ff}.wi.weight`)!, x).map((a) => Math.max(0, a));
  else {
    const a = linear(w.get(`${ff}.wi_0.weight`)!, x);
    const b = linear(w.get(`${ff}.wi_1.weight`)!, x);
    h = a.map((ai, i) => (c.feed_forward_proj === 'gated-gelu' ? gelu(ai) : Math.max(0, ai)) * b[i]);
  }
  return linear(w.get(`${ff}.wo.weight`)!, h);
}

/** Logits [B][T][V] from HF-layout weights, HF's forward written as loops. */
function refLogits(c: T5Config, w: W, b: Seq2SeqBatch): number[][][] {
  const { batchSize: B, srcLen: L, tgtLen: T } = b;
  const eps = c.layer_norm_epsilon;
  const out: number[][][] = [];
  const encTable = w.get('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight')!;
  const decTable = w.get('decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight')!;
  const nb = c.relative_attention_num_buckets;
  const md = c.relative_attention_max_distance;
  for (let s = 0; s < B; s++) {
    const mask = Array.from(b.attentionMask.subarray(s * L, (s + 1) * L));
    let x = Array.from({ length: L }, (_, i) => {
      const e = row(w.get('shared.weight')!, b.inputIds[s * L + i]);
      return b.wholeWordIds ? add(e, row(w.get('encoder.whole_word_embeddings.weight')!, b.wholeWordIds[s * L + i])) : e;
    });
    const encBias = (h: number, i: number, j: number): number => encTable.data[relativePositionBucket(j - i, true, nb, md) * c.num_heads + h] + (mask[j] ? 0 : -1e9);
    for (let l = 0; l < c.num_layers; l++) {
      const p = `encoder.block.${l}.layer`;
      const n = x.map((xi) => rms(xi, w.get(`${p}.0.layer_norm.weight`)!, eps));
      const a = refAttention(c, w, `${p}.0.SelfAttention`, n, n, encBias);
      x = x.map((xi, i) => add(xi, a[i]));
      x = x.map((xi) => add(xi, refFF(c, w, `${p}.1`, rms(xi, w.get(`${p}.1.layer_norm.weight`)!, eps))));
    }
    const enc = x.map((xi) => rms(xi, w.get('encoder.final_layer_norm.weight')!, eps));
    let y = Array.from({ length: T }, (_, i) => row(w.get('shared.weight')!, b.decoderInputIds[s * T + i]));
    const selfBias = (h: number, i: number, j: number): number => decTable.data[relativePositionBucket(j - i, false, nb, md) * c.num_heads + h] + (j > i ? -1e9 : 0);
    const crossBias = (_h: number, _i: number, j: number): number => (mask[j] ? 0 : -1e9);
    for (let l = 0; l < c.num_decoder_layers; l++) {
      const p = `decoder.block.${l}.layer`;
      const n0 = y.map((yi) => rms(yi, w.get(`${p}.0.layer_norm.weight`)!, eps));
      const a0 = refAttention(c, w, `${p}.0.SelfAttention`, n0, n0, selfBias);
      y = y.map((yi, i) => add(yi, a0[i]));
      const n1 = y.map((yi) => rms(yi, w.get(`${p}.1.layer_norm.weight`)!, eps));
      const a1 = refAttention(c, w, `${p}.1.EncDecAttention`, n1, enc, crossBias);
      y = y.map((yi, i) => add(yi, a1[i]));
      y = y.map((yi) => add(yi, refFF(c, w, `${p}.2`, rms(yi, w.get(`${p}.2.layer_norm.weight`)!, eps))));
    }
    const hs = y.map((yi) => rms(yi, w.get('decoder.final_layer_norm.weight')!, eps));
    out.push(
      hs.map((h) => {
        if (c.tie_word_embeddings) return linear(w.get('shared.weight')!, h.map((v) => v * c.d_model ** -0.5));
        return linear(w.get('lm_head.weight')!, h);
      }),
    );
  }
  return out;
}

function maxRelErr(got: number[][][], want: number[][][]): number {
  let scale = 0;
  for (const a of want) for (const r of a) for (const v of r) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  want.forEach((a, i) => a.forEach((r, j) => r.forEach((v, k) => (worst = Math.max(worst, Math.abs(got[i][j][k] - v) / scale)))));
  return worst;
}

// ---------------------------------------------------------------------- tests

describe('T5 config and parameter names', () => {
  it('uses HF checkpoint keys and shapes', () => {
    const c = tinyConfig();
    const baseline = tf.memory().numTensors;
    T5Model.create(c).dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    const m = T5Model.create(c, { seed: 1 });
    const shapes = new Map(m.parameterShapes());
    expect(shapes.get('shared.weight')).toEqual([40, 16]);
    expect(shapes.get('encoder.whole_word_embeddings.weight')).toEqual([8, 16]);
    expect(shapes.get('encoder.block.0.layer.0.SelfAttention.q.weight')).toEqual([8, 16]);
    expect(shapes.get('encoder.block.0.layer.0.SelfAttention.o.weight')).toEqual([16, 8]);
    expect(shapes.get('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight')).toEqual([8, 2]);
    expect(shapes.has('encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight')).toBe(false);
    expect(shapes.get('encoder.block.1.layer.1.DenseReluDense.wi.weight')).toEqual([24, 16]);
    expect(shapes.get('encoder.block.1.layer.1.DenseReluDense.wo.weight')).toEqual([16, 24]);
    expect(shapes.get('decoder.block.1.layer.1.EncDecAttention.k.weight')).toEqual([8, 16]);
    expect(shapes.get('decoder.block.1.layer.2.layer_norm.weight')).toEqual([16]);
    expect(shapes.has('encoder.final_layer_norm.weight') && shapes.has('decoder.final_layer_norm.weight')).toBe(true);
    expect(shapes.has('lm_head.weight')).toBe(false);
    expect(m.parameterCount()).toBe(countT5Parameters(c));
    // the variables hold Linear weights as [in, out]
    expect(m.params.get('encoder.block.0.layer.0.SelfAttention.o.weight')!.shape).toEqual([8, 16]);
    m.dispose();
    const g = T5Model.create(tinyConfig({ feed_forward_proj: 'gated-gelu', tie_word_embeddings: false }));
    const gs = new Map(g.parameterShapes());
    expect(gs.get('decoder.block.0.layer.2.DenseReluDense.wi_0.weight')).toEqual([24, 16]);
    expect(gs.get('decoder.block.0.layer.2.DenseReluDense.wi_1.weight')).toEqual([24, 16]);
    expect(gs.get('lm_head.weight')).toEqual([40, 16]);
    expect(g.parameterCount()).toBe(countT5Parameters(g.config));
    g.dispose();
  });

  it('has t5-small and t5-base sized presets', () => {
    const small = countT5Parameters(T5_PRESETS.small) - 512 * 512; // without P5's whole-word table
    const base = countT5Parameters(T5_PRESETS.base) - 512 * 768;
    expect(small).toBe(60506624); // HF t5-small
    expect(base).toBe(222903552); // HF t5-base
  });
});

describe('relative position buckets', () => {
  it('match hand-computed HF values', () => {
    // bidirectional, 32 buckets, max distance 128: 16 per direction, 8 exact
    const bi = (rp: number): number => relativePositionBucket(rp, true, 32, 128);
    expect([0, -3, 3, -7, -8, -16, -127, -1000, 20].map(bi)).toEqual([0, 3, 19, 7, 8, 10, 15, 15, 26]);
    // causal: 32 buckets, 16 exact; keys after the query land in bucket 0
    const causal = (rp: number): number => relativePositionBucket(rp, false, 32, 128);
    expect([0, 3, -5, -15, -16, -20, -200].map(causal)).toEqual([0, 0, 5, 15, 16, 17, 31]);
  });
});

describe('T5 forward', () => {
  for (const variant of [
    { name: 'relu, tied', over: {} },
    { name: 'gated-gelu, untied lm_head', over: { feed_forward_proj: 'gated-gelu' as const, tie_word_embeddings: false } },
  ]) {
    it(`equals a plain-loop HF reference (${variant.name})`, () => {
      const c = tinyConfig(variant.over);
      const m = T5Model.create(c, { seed: 3 });
      const b = sampleBatch(c);
      const got = m.forward(b);
      const want = refLogits(c, m.exportWeights(), b);
      expect(maxRelErr(got.arraySync() as number[][][], want)).toBeLessThan(1e-4);
      got.dispose();
      m.dispose();
    });
  }

  it('is the same on the cpu backend', async () => {
    const c = tinyConfig();
    const m = T5Model.create(c, { seed: 4 });
    const b = sampleBatch(c);
    const onWasm = m.forward(b).arraySync() as number[][][];
    await initEngine({ backend: 'cpu' });
    try {
      const m2 = T5Model.create(c, { seed: 4 });
      const onCpu = m2.forward(b).arraySync() as number[][][];
      expect(maxRelErr(onWasm, onCpu)).toBeLessThan(1e-4);
      m2.dispose();
    } finally {
      await initEngine({ backend: 'wasm' });
    }
    m.dispose();
  });

  it('loss is the mean cross-entropy over non-ignored labels', () => {
    const c = tinyConfig();
    const m = T5Model.create(c, { seed: 5 });
    const b = sampleBatch(c);
    const logits = m.forward(b).arraySync() as number[][][];
    let sum = 0;
    let n = 0;
    for (let s = 0; s < b.batchSize; s++) {
      for (let t = 0; t < b.tgtLen; t++) {
        const l = b.labels[s * b.tgtLen + t];
        if (l === -100) continue;
        const r = logits[s][t];
        const mx = Math.max(...r);
        const lse = mx + Math.log(r.reduce((a, v) => a + Math.exp(v - mx), 0));
        sum += lse - r[l];
        n++;
      }
    }
    const out = tf.tidy(() => m.loss(b).loss.dataSync()[0]);
    const { weight, tokens } = tf.tidy(() => {
      const r = m.loss(b);
      return { weight: r.weight, tokens: r.tokens };
    });
    expect(weight).toBe(6);
    expect(tokens).toBe(6 + 12);
    expect(out).toBeCloseTo(sum / n, 4);
    m.dispose();
  });

  it('incremental decoding with caches equals the full forward pass; greedy follows the argmax', () => {
    for (const over of [{ feed_forward_proj: 'gated-gelu' as const, tie_word_embeddings: false }, {}]) {
      const cu = tinyConfig(over);
      const mu = T5Model.create(cu, { seed: 6 });
      const bu = sampleBatch(cu);
      const full = mu.forward(bu).arraySync() as number[][][];
      const enc = mu.encodeCache(bu);
      const cache = mu.newDecoderCache();
      const before = tf.memory().numTensors;
      for (let t = 0; t < bu.tgtLen; t++) {
        const tokens = [bu.decoderInputIds[t], bu.decoderInputIds[bu.tgtLen + t]];
        const logits = mu.decodeStep(enc, cache, tokens);
        const got = logits.arraySync() as number[][];
        logits.dispose();
        expect(maxRelErr([got], [[full[0][t], full[1][t]]])).toBeLessThan(1e-4);
      }
      // the cache replaces its tensors instead of accumulating them
      expect(tf.memory().numTensors - before).toBe(2 * cu.num_decoder_layers);
      cache.dispose();
      enc.dispose();
      mu.dispose();
    }
    const c = tinyConfig();
    const m = T5Model.create(c, { seed: 6 });
    const b = sampleBatch(c);

    const gen = m.generateGreedy(b, { maxNewTokens: 4 });
    // step-by-step argmax with the full forward pass
    for (let s = 0; s < 2; s++) {
      const seq: number[] = [c.decoder_start_token_id];
      const want: number[] = [];
      for (let t = 0; t < 4; t++) {
        const one = collateSeq2Seq([{ inputIds: Array.from(b.inputIds.subarray(s * b.srcLen, (s + 1) * b.srcLen)).filter((_, i) => b.attentionMask[s * b.srcLen + i]), wholeWordIds: Array.from(b.wholeWordIds!.subarray(s * b.srcLen, (s + 1) * b.srcLen)).filter((_, i) => b.attentionMask[s * b.srcLen + i]), labels: [...seq.slice(1), 0] }], c);
        const lg = m.forward(one).arraySync() as number[][][];
        const r = lg[0][t];
        const next = r.indexOf(Math.max(...r));
        if (next === c.eos_token_id) break;
        want.push(next);
        seq.push(next);
      }
      expect(gen[s]).toEqual(want);
    }
    m.dispose();
  });

  it('gradients match central finite differences; fused and unfused projections agree', () => {
    const c = tinyConfig({ feed_forward_proj: 'gated-gelu' });
    const m = T5Model.create(c, { seed: 8 });
    const b = sampleBatch(c);
    const vars = [...m.params.values()];
    const names = [...m.params.keys()];
    const grads = (fuse: boolean): Map<string, Float32Array> => {
      m.fuseProjections = fuse;
      const out = new Map<string, Float32Array>();
      tf.tidy(() => {
        const { grads: g } = tf.variableGrads(() => m.loss(b).loss, vars);
        for (const n of names) out.set(n, g[m.params.get(n)!.name].dataSync() as Float32Array);
      });
      return out;
    };
    const fused = grads(true);
    const plain = grads(false);
    for (const n of names) {
      const a = fused.get(n)!;
      const p = plain.get(n)!;
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - p[i])).toBeLessThan(1e-5 + 1e-4 * Math.abs(p[i]));
    }
    const lossAt = (): number => tf.tidy(() => m.loss(b).loss.dataSync()[0]);
    const probe = [
      ['shared.weight', 12 * 16 + 3],
      ['encoder.whole_word_embeddings.weight', 2 * 16 + 5],
      ['encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', 1],
      ['decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', 0],
      ['encoder.block.1.layer.0.SelfAttention.q.weight', 17],
      ['decoder.block.1.layer.1.EncDecAttention.v.weight', 40],
      ['decoder.block.0.layer.2.DenseReluDense.wi_0.weight', 7],
      ['encoder.final_layer_norm.weight', 4],
      ['decoder.block.1.layer.1.layer_norm.weight', 9],
      ['encoder.block.0.layer.1.layer_norm.weight', 0],
    ] as const;
    for (const [name, idx] of probe) {
      const v = m.params.get(name)!;
      const base = v.dataSync() as Float32Array;
      const h = 1e-2;
      const at = (delta: number): number => {
        const d = Float32Array.from(base);
        d[idx] += delta;
        v.assign(tf.tensor(d, v.shape));
        return lossAt();
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(base, v.shape));
      const analytic = fused.get(name)![idx];
      expect(Math.abs(numeric - analytic), `${name}[${idx}]: numeric ${numeric}, analytic ${analytic}`).toBeLessThan(2e-3 + 2e-2 * Math.abs(analytic));
    }
    m.dispose();
  });

  it('fused attention (native op) and the tfjs composition agree: a training step with dropout, loss and every gradient', () => {
    const c = tinyConfig({ dropout_rate: 0.2, d_kv: 5, num_heads: 3 });
    const m = T5Model.create(c, { seed: 11 });
    const b = sampleBatch(c);
    const vars = [...m.params.values()];
    const names = [...m.params.keys()];
    const step = (fused: boolean, fuse: boolean): { loss: number; grads: Map<string, Float32Array> } => {
      m.fusedAttention = fused;
      m.fuseProjections = fuse;
      const grads = new Map<string, Float32Array>();
      const before = tf.memory().numTensors;
      const loss = tf.tidy(() => {
        const { value, grads: g } = tf.variableGrads(() => m.loss(b, { training: true, seed: 3 }).loss, vars);
        for (const n of names) grads.set(n, g[m.params.get(n)!.name].dataSync() as Float32Array);
        return value.dataSync()[0];
      });
      expect(tf.memory().numTensors).toBe(before);
      return { loss, grads };
    };
    const nativeOn = fusedAttentionAvailable();
    if (loadNativeAddon()) expect(nativeOn).toBe(true); // else both runs compose tfjs ops
    for (const fuse of [false, true]) {
      const composed = step(false, fuse);
      const fused = step(true, fuse);
      expect(Math.abs(fused.loss - composed.loss)).toBeLessThan(1e-5 * Math.abs(composed.loss));
      for (const n of names) {
        const a = fused.grads.get(n)!;
        const p = composed.grads.get(n)!;
        let max = 0;
        for (const v of p) max = Math.max(max, Math.abs(v));
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - p[i]), `${n}[${i}] fuseProjections=${fuse} native=${nativeOn}`).toBeLessThan(1e-4 * (Math.abs(p[i]) + max) + 1e-7);
      }
    }
    m.fusedAttention = true;
    m.fuseProjections = false;
    m.dispose();
  });

  it('reorderCache moves decoder histories between rows (beam search)', () => {
    const c = tinyConfig();
    const m = T5Model.create(c, { seed: 10 });
    const one = { inputIds: [5, 6, 7, 1], wholeWordIds: [1, 2, 3, 0], labels: [1] };
    const b = collateSeq2Seq([one, one], c);
    const run = (step1: number[], reorder: boolean): number[][] => {
      const enc = m.encodeCache(b);
      const cache = m.newDecoderCache();
      m.decodeStep(enc, cache, [0, 0]).dispose();
      m.decodeStep(enc, cache, step1).dispose();
      if (reorder) m.reorderCache(cache, [1, 0]);
      const logits = m.decodeStep(enc, cache, [9, 4]);
      const out = logits.arraySync() as number[][];
      logits.dispose();
      cache.dispose();
      enc.dispose();
      return out;
    };
    expect(run([11, 12], true)).toEqual(run([12, 11], false));
    m.dispose();
  });

  it('dropout: seeded masks, drop rate and 1/(1-rate) scaling; only in training', () => {
    const mask = dropoutMask(200000, 0.1, 'a');
    const zeros = mask.filter((v) => v === 0).length / mask.length;
    expect(zeros).toBeGreaterThan(0.095);
    expect(zeros).toBeLessThan(0.105);
    expect(new Set(mask.filter((v) => v !== 0))).toEqual(new Set([Math.fround(1 / 0.9)]));
    expect(Array.from(dropoutMask(50, 0.5, 'a'))).toEqual(Array.from(dropoutMask(50, 0.5, 'a')));
    expect(Array.from(dropoutMask(50, 0.5, 'a'))).not.toEqual(Array.from(dropoutMask(50, 0.5, 'b')));
    const c = tinyConfig({ dropout_rate: 0.3 });
    const m = T5Model.create(c, { seed: 9 });
    const b = sampleBatch(c);
    const eval1 = m.forward(b).dataSync();
    const eval2 = m.forward(b, { seed: 5 }).dataSync();
    const train1 = m.forward(b, { training: true, seed: 5 }).dataSync();
    const train2 = m.forward(b, { training: true, seed: 5 }).dataSync();
    const train3 = m.forward(b, { training: true, seed: 6 }).dataSync();
    expect(Array.from(eval2)).toEqual(Array.from(eval1));
    expect(Array.from(train2)).toEqual(Array.from(train1));
    expect(Array.from(train1)).not.toEqual(Array.from(eval1));
    expect(Array.from(train3)).not.toEqual(Array.from(train1));
    m.dispose();
  });

  it('rejects token ids outside the vocabulary', () => {
    const c = tinyConfig();
    const m = T5Model.create(c);
    const b = collateSeq2Seq([{ inputIds: [3, 99], labels: [1] }], c);
    expect(() => m.forward(b)).toThrow(/outside the vocabulary/);
    m.dispose();
  });
});
