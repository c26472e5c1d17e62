/**
 * T5 encoder-decoder (HF transformers `T5ForConditionalGeneration`) with P5's
 * whole-word embeddings, on tfjs (whatever backend `initEngine` made active).
 *
 * Parameters are tfjs variables keyed by HF's module names, which are the
 * checkpoint keys (`shared.weight`, `encoder.block.0.layer.0.SelfAttention.q.weight`,
 * ...). Linear weights are held as [in, out] so that the forward pass is
 * `x · W`; HF (PyTorch) stores them as [out, in] and `exportWeights` /
 * `importWeights` transpose (see `isLinearWeight`).
 *
 * Architecture (as HF):
 *  - RMSNorm (T5LayerNorm: no mean subtraction, no bias) before every
 *    sub-layer, residual add after it, a final norm per stack;
 *  - bucketed relative position bias, one table per stack in block 0
 *    (bidirectional in the encoder, causal in the decoder), computed once per
 *    forward and added in every layer together with the attention mask;
 *    attention scores are not scaled by 1/sqrt(d_kv) (folded into the init);
 *  - FFN: ReLU (`wi`, `wo`) or gated (`wi_0`, `wi_1`, `wo`, GELU-tanh / ReLU);
 *  - dropout on embeddings, attention weights, sub-layer outputs, the FFN
 *    hidden layer and the final norm output (training only);
 *  - tied output layer `shared` with the d_model^-0.5 rescale, or `lm_head`;
 *  - P5: `encoder.whole_word_embeddings.weight` [512, d_model] added to the
 *    encoder token embeddings.
 * Decoding: `encodeCache` runs the encoder once and precomputes each decoder
 * layer's cross-attention keys/values; `decodeStep` feeds one token per
 * sequence and appends to per-layer self-attention key/value caches.
 *
 * Batches and their collation live in collate.ts, the hand-written ops
 * (dropout, RMSNorm, cross-entropy) in ops.ts, the fused attention op in
 * attention.ts, greedy decoding in greedy.ts.
 */
import type { Scalar, Tensor, Tensor2D, Tensor3D, Variable } from '@tensorflow/tfjs-core';
import { nativeKernelsActive, tf as getTf } from '../../engine/backend.js';
import { InputError } from '../../errors.js';
import type { T5Config } from './config.js';
import { validateT5Config } from './config.js';
import type { EncoderBatch, Seq2SeqBatch } from './collate.js';
import { generateGreedy } from './greedy.js';
import { normalInit } from './init.js';
import { fusedAttention, fusedAttentionAvailable } from './attention.js';
import { Dropout, fusedSoftmaxCrossEntropy, geluTanh, hasKernel, rmsNorm, softmaxCrossEntropy } from './ops.js';
import { bucketMatrix } from './position-bias.js';

const NEG = -1e9;

export interface ForwardOptions {
  /** Apply dropout (default false). */
  training?: boolean;
  /** Seed of the dropout masks (vary it per step). */
  seed?: number;
}

export interface LossOutput {
  /** Mean cross-entropy over the non-ignored target tokens. */
  loss: Scalar;
  /** Number of target tokens in the mean (the batch's weight when averaging). */
  weight: number;
  /** Source + target tokens processed (non-padding). */
  tokens: number;
}

/** Precomputed encoder side for decoding. Dispose when done. */
export interface EncoderCache {
  batchSize: number;
  srcLen: number;
  /** [B, 1, 1, L] additive mask (0 / -1e9) */
  maskAdd: Tensor;
  /** `shared.weight` transposed [d_model, V] (tied output layer), made once per decode */
  sharedT?: Tensor;
  /** per decoder layer, [B, H, L, d_kv] */
  crossK: Tensor[];
  crossV: Tensor[];
  dispose(): void;
}

/** Self-attention key/value cache of the decoder; `decodeStep` advances it. */
export interface DecoderCache {
  step: number;
  selfK: Tensor[];
  selfV: Tensor[];
  dispose(): void;
}

/** Weight in HF's layout (Linear: [out, in]). */
export interface HFTensor {
  shape: number[];
  data: Float32Array;
}

/** True for weights that PyTorch stores as [out, in] (nn.Linear) and we hold as [in, out]. */
export function isLinearWeight(name: string): boolean {
  return name === 'lm_head.weight' || /\.(q|k|v|o|wi|wi_0|wi_1|wo)\.weight$/.test(name);
}

/** Parameter names and shapes in HF's layout, in a fixed order. */
export function t5ParameterShapes(config: T5Config): [string, number[]][] {
  const c = config;
  const d = c.d_model;
  const inner = c.num_heads * c.d_kv;
  const out: [string, number[]][] = [['shared.weight', [c.vocab_size, d]]];
  if (c.whole_word_embeddings > 0) out.push(['encoder.whole_word_embeddings.weight', [c.whole_word_embeddings, d]]);
  const attn = (pre: string, relBias: boolean): void => {
    out.push([`${pre}.q.weight`, [inner, d]], [`${pre}.k.weight`, [inner, d]], [`${pre}.v.weight`, [inner, d]], [`${pre}.o.weight`, [d, inner]]);
    if (relBias) out.push([`${pre}.relative_attention_bias.weight`, [c.relative_attention_num_buckets, c.num_heads]]);
  };
  const ff = (pre: string): void => {
    if (c.feed_forward_proj === 'relu') out.push([`${pre}.DenseReluDense.wi.weight`, [c.d_ff, d]]);
    else out.push([`${pre}.DenseReluDense.wi_0.weight`, [c.d_ff, d]], [`${pre}.DenseReluDense.wi_1.weight`, [c.d_ff, d]]);
    out.push([`${pre}.DenseReluDense.wo.weight`, [d, c.d_ff]], [`${pre}.layer_norm.weight`, [d]]);
  };
  for (let i = 0; i < c.num_layers; i++) {
    const p = `encoder.block.${i}.layer`;
    attn(`${p}.0.SelfAttention`, i === 0);
    out.push([`${p}.0.layer_norm.weight`, [d]]);
    ff(`${p}.1`);
  }
  out.push(['encoder.final_layer_norm.weight', [d]]);
  for (let i = 0; i < c.num_decoder_layers; i++) {
    const p = `decoder.block.${i}.layer`;
    attn(`${p}.0.SelfAttention`, i === 0);
    out.push([`${p}.0.layer_norm.weight`, [d]]);
    attn(`${p}.1.EncDecAttention`, false);
    out.push([`${p}.1.layer_norm.weight`, [d]]);
    ff(`${p}.2`);
  }
  out.push(['decoder.final_layer_norm.weight', [d]]);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [c.vocab_size, d]]);
  return out;
}

/** HF `_init_weights` standard deviation for a parameter (0 = ones, for norms). */
function initStd(name: string, c: T5Config): number {
  const f = c.initializer_factor;
  if (name.endsWith('layer_norm.weight')) return 0;
  if (name === 'shared.weight' || name === 'lm_head.weight' || name.endsWith('whole_word_embeddings.weight')) return f;
  if (name.endsWith('relative_attention_bias.weight')) return f * c.d_model ** -0.5;
  if (name.endsWith('.q.weight')) return f * (c.d_model * c.d_kv) ** -0.5;
  if (name.endsWith('.k.weight') || name.endsWith('.v.weight')) return f * c.d_model ** -0.5;
  if (name.endsWith('.o.weight')) return f * (c.num_heads * c.d_kv) ** -0.5;
  if (name.endsWith('.wo.weight')) return f * c.d_ff ** -0.5;
  if (/\.wi(_0|_1)?\.weight$/.test(name)) return f * c.d_model ** -0.5;
  throw new Error(`no initialiser for ${name}`);
}

/** [rows, cols] row-major → [cols, rows]. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c];
  }
  return out;
}


export class T5Model {
  readonly config: T5Config;
  /** HF name → variable (Linear weights as [in, out]). */
  readonly params: Map<string, Variable>;
  private readonly hfShapes: Map<string, number[]>;
  private readonly buckets = new Map<string, Int32Array>();
  private disposed = false;
  /**
   * Fuse the Q/K/V (cross: K/V) projections into one matmul. Same numbers;
   * off by default: on the wasm backend the larger GEMM did not pay for the
   * weight concat and the split/concat in the backward pass (measured on the
   * bench shape). A switch for re-measuring when the kernels change.
   */
  fuseProjections = false;
  /**
   * Run the attention core of the teacher-forced forward pass (encoder,
   * decoder self- and cross-attention; not `decodeStep`) as one fused op
   * (attention.ts) where the engine has it: wasm with the native addon.
   * Elsewhere, or false: the tfjs composition (`attend`). The same numbers
   * to float32 rounding, the same dropout masks. Default true (off with
   * P5REC_FUSED_ATTENTION=0): on the P5 workload (119 prompts of 51 tokens)
   * `npm run bench:p5-step` measured a training step at 75 against 88 ms
   * composed at d 64, 158 against 182 ms at d 128, with less memory (no head
   * transposes or [B, H, Lq, Lk] bias tensor).
   */
  fusedAttention = fusedAttentionDefault();

  private constructor(config: T5Config, params: Map<string, Variable>, hfShapes: Map<string, number[]>) {
    this.config = config;
    this.params = params;
    this.hfShapes = hfShapes;
  }

  /**
   * A freshly initialised model (HF's init, seeded per tensor). `init(name)`
   * false leaves a weight at zero (it is about to be loaded). `initEngine()` first.
   */
  static create(config: T5Config, opts: { seed?: number; init?: (name: string) => boolean } = {}): T5Model {
    const c = validateT5Config(config);
    const t = getTf();
    const seed = opts.seed ?? 0;
    const init = opts.init ?? (() => true);
    const params = new Map<string, Variable>();
    const shapes = new Map<string, number[]>();
    for (const [name, shape] of t5ParameterShapes(c)) {
      shapes.set(name, shape);
      const size = shape.reduce((a, b) => a * b, 1);
      const std = initStd(name, c);
      const data = std === 0 ? new Float32Array(size).fill(1) : init(name) ? normalInit(size, std, seed, name) : new Float32Array(size);
      const local = isLinearWeight(name) ? [shape[1], shape[0]] : shape;
      // Values are iid, so the [out, in] draw is used as [in, out] directly for a fresh model.
      params.set(name, t.tidy(() => t.variable(t.tensor(data, local, 'float32'), true)));
    }
    return new T5Model(c, params, shapes);
  }

  /** Parameter names and HF shapes, in order. */
  parameterShapes(): [string, number[]][] {
    return [...this.hfShapes.entries()].map(([n, s]) => [n, s.slice()]);
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** All weights in HF's layout (Linear weights transposed to [out, in]). */
  exportWeights(): Map<string, HFTensor> {
    const out = new Map<string, HFTensor>();
    for (const [name, v] of this.params) {
      const local = v.dataSync() as Float32Array;
      const shape = this.hfShapes.get(name)!;
      out.set(name, { shape: shape.slice(), data: isLinearWeight(name) ? transpose2d(local, shape[1], shape[0]) : Float32Array.from(local) });
    }
    return out;
  }

  /** Set one weight from HF's layout; the shape must match. */
  importWeight(name: string, w: HFTensor): void {
    const v = this.params.get(name);
    const shape = this.hfShapes.get(name);
    if (!v || !shape) throw new InputError(`the model has no parameter '${name}'`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
      throw new InputError(`tensor '${name}' has shape [${w.shape.join(', ')}], the config implies [${shape.join(', ')}]`);
    }
    const data = isLinearWeight(name) ? transpose2d(w.data, shape[0], shape[1]) : w.data;
    const t = getTf();
    t.tidy(() => v.assign(t.tensor(data, v.shape, 'float32')));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.params.values()) v.dispose();
  }

  private w(name: string): Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`T5Model: no parameter ${name}`);
    return v;
  }

  // ------------------------------------------------------------------ blocks

  private rmsNorm(x: Tensor2D, name: string): Tensor2D {
    return rmsNorm(x, this.w(name), this.config.layer_norm_epsilon);
  }

  /** [B*L, H*dk] → [B, H, L, dk] */
  private heads(x: Tensor2D, B: number, L: number): Tensor {
    const { num_heads: H, d_kv: dk } = this.config;
    return getTf().transpose(getTf().reshape(x, [B, L, H, dk]), [0, 2, 1, 3]);
  }

  /** Attention over prepared heads: q [B,H,Lq,dk], k/v [B,H,Lk,dk], bias broadcastable to [B,H,Lq,Lk]. */
  private attend(pre: string, q: Tensor, k: Tensor, v: Tensor, B: number, Lq: number, bias: Tensor, drop: Dropout): Tensor2D {
    const t = getTf();
    const scores = t.add(t.matMul(q as Tensor3D, k as Tensor3D, false, true), bias);
    const weights = drop.apply(t.softmax(scores));
    const ctx = t.matMul(weights as Tensor3D, v as Tensor3D);
    const merged = t.reshape(t.transpose(ctx, [0, 2, 1, 3]), [B * Lq, this.config.num_heads * this.config.d_kv]) as Tensor2D;
    return t.matMul(merged, this.w(`${pre}.o.weight`));
  }

  /** Whether this forward pass runs the fused attention op. */
  private useFusedAttention(): boolean {
    return this.fusedAttention && fusedAttentionAvailable();
  }

  /** The bias of an attention: the fused op's parts, or (composed) their sum. */
  private attnBias(fused: boolean, parts: { pos?: Tensor; mask?: Tensor; causal: boolean; Lq: number }): AttnBias {
    if (fused) return { ...parts, fused: true };
    const t = getTf();
    const { pos, mask, causal, Lq } = parts;
    let full = pos ?? mask!;
    if (pos && mask) full = t.add(pos, mask);
    if (causal) full = t.add(full, causalMask(Lq));
    return { fused: false, full };
  }

  /**
   * With `fuseProjections`, self-attention multiplies by [Wq | Wk | Wv] once
   * and cross-attention by [Wk | Wv] (one larger GEMM instead of three/two in
   * the forward pass and in both backward products).
   */
  private attention(pre: string, x: Tensor2D, kvSrc: Tensor2D, B: number, Lq: number, Lk: number, bias: AttnBias, drop: Dropout): Tensor2D {
    const t = getTf();
    const { num_heads: H, d_kv: dk } = this.config;
    const HD = H * dk;
    const wq = this.w(`${pre}.q.weight`);
    const wk = this.w(`${pre}.k.weight`);
    const wv = this.w(`${pre}.v.weight`);
    // the projections: [q, k, v], [qkv] or [q, kv]; which holds q, k, v and at which column
    let srcs: Tensor2D[];
    let srcOf: [number, number, number];
    let cols: [number, number, number];
    if (!this.fuseProjections) {
      srcs = [t.matMul(x, wq), t.matMul(kvSrc, wk), t.matMul(kvSrc, wv)];
      [srcOf, cols] = [[0, 1, 2], [0, 0, 0]];
    } else if (x === kvSrc) {
      srcs = [t.matMul(x, t.concat([wq, wk, wv], 1))];
      [srcOf, cols] = [[0, 0, 0], [0, HD, 2 * HD]];
    } else {
      srcs = [t.matMul(x, wq), t.matMul(kvSrc, t.concat([wk, wv], 1))];
      [srcOf, cols] = [[0, 1, 1], [0, 0, HD]];
    }
    if (bias.fused) {
      const ctx = fusedAttention({
        sources: srcs, srcOf, cols, numHeads: H, headDim: dk, Lq, Lk,
        posBias: bias.pos, mask: bias.mask, causal: bias.causal, dropout: drop.nextKey(),
      });
      return t.matMul(ctx, this.w(`${pre}.o.weight`));
    }
    let q: Tensor2D, k: Tensor2D, v: Tensor2D;
    if (srcs.length === 3) [q, k, v] = srcs;
    else if (srcs.length === 1) [q, k, v] = t.split(srcs[0], 3, 1) as Tensor2D[];
    else {
      q = srcs[0];
      [k, v] = t.split(srcs[1], 2, 1) as Tensor2D[];
    }
    return this.attend(pre, this.heads(q, B, Lq), this.heads(k, B, Lk), this.heads(v, B, Lk), B, Lq, bias.full, drop);
  }

  private feedForward(pre: string, x: Tensor2D, drop: Dropout): Tensor2D {
    const t = getTf();
    const ff = `${pre}.DenseReluDense`;
    let h: Tensor2D;
    if (this.config.feed_forward_proj === 'relu') {
      h = t.relu(t.matMul(x, this.w(`${ff}.wi.weight`)));
    } else {
      const a = t.matMul(x, this.w(`${ff}.wi_0.weight`)) as Tensor2D;
      const g = this.config.feed_forward_proj === 'gated-gelu' ? geluTanh(a) : t.relu(a);
      h = t.mul(g, t.matMul(x, this.w(`${ff}.wi_1.weight`)));
    }
    return t.matMul(drop.apply(h), this.w(`${ff}.wo.weight`));
  }

  /** [1, H, Lq, Lk] relative position bias of a stack (block 0's table). */
  private positionBias(stack: 'encoder' | 'decoder', qLen: number, kLen: number, qStart = 0): Tensor {
    const t = getTf();
    const c = this.config;
    const bidirectional = stack === 'encoder';
    const key = `${stack}:${qLen}:${kLen}:${qStart}`;
    let b = this.buckets.get(key);
    if (!b) {
      b = bucketMatrix(qLen, kLen, bidirectional, c.relative_attention_num_buckets, c.relative_attention_max_distance, qStart);
      if (this.buckets.size > 256) this.buckets.clear();
      this.buckets.set(key, b);
    }
    const table = this.w(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`);
    const values = t.gather(table, t.tensor2d(b, [qLen, kLen], 'int32')); // [q, k, H]
    return t.expandDims(t.transpose(values, [2, 0, 1]), 0);
  }

  // ----------------------------------------------------------------- encoder

  /** Encoder output [B*L, d] (2-D) for a batch. */
  private encodeHidden(batch: EncoderBatch, drop: Dropout): { hidden: Tensor2D; maskAdd: Tensor } {
    const t = getTf();
    const c = this.config;
    const { batchSize: B, srcLen: L } = batch;
    checkIds(batch.inputIds, B * L, c.vocab_size, 'inputIds');
    const ids = t.tensor2d(batch.inputIds, [B, L], 'int32');
    let emb = t.gather(this.w('shared.weight'), ids) as Tensor3D;
    if (c.whole_word_embeddings > 0 && batch.wholeWordIds) {
      const ww = clipWholeWord(batch.wholeWordIds, c.whole_word_embeddings);
      emb = t.add(emb, t.gather(this.w('encoder.whole_word_embeddings.weight'), t.tensor2d(ww, [B, L], 'int32')));
    }
    let x = drop.apply(t.reshape(emb, [B * L, c.d_model]) as Tensor2D);
    const maskAdd = maskToAdditive(batch.attentionMask, B, L);
    // composed: position bias + mask as one [B, H, L, L] tensor
    const bias = this.attnBias(this.useFusedAttention(), { pos: this.positionBias('encoder', L, L), mask: maskAdd, causal: false, Lq: L });
    for (let i = 0; i < c.num_layers; i++) {
      const p = `encoder.block.${i}.layer`;
      const n = this.rmsNorm(x, `${p}.0.layer_norm.weight`);
      x = t.add(x, drop.apply(this.attention(`${p}.0.SelfAttention`, n, n, B, L, L, bias, drop)));
      x = t.add(x, drop.apply(this.feedForward(`${p}.1`, this.rmsNorm(x, `${p}.1.layer_norm.weight`), drop)));
    }
    return { hidden: drop.apply(this.rmsNorm(x, 'encoder.final_layer_norm.weight')), maskAdd };
  }

  /** Encoder output [B, L, d_model]. */
  encode(batch: EncoderBatch, opts: ForwardOptions = {}): Tensor3D {
    const drop = new Dropout(this.config.dropout_rate, opts.training ?? false, opts.seed ?? 0);
    return getTf().tidy(() => {
      const { hidden } = this.encodeHidden(batch, drop);
      return getTf().reshape(hidden, [batch.batchSize, batch.srcLen, this.config.d_model]) as Tensor3D;
    });
  }

  // ----------------------------------------------------------------- decoder

  private lmHead(h: Tensor2D, sharedT?: Tensor): Tensor2D {
    const t = getTf();
    if (this.config.tie_word_embeddings) {
      const scaled = t.mul(h, this.config.d_model ** -0.5);
      return sharedT ? t.matMul(scaled, sharedT as Tensor2D) : t.matMul(scaled, this.w('shared.weight'), false, true);
    }
    return t.matMul(h, this.w('lm_head.weight'));
  }

  /** Logits [B*T, V] for teacher-forced decoder inputs. */
  private logits2d(batch: Seq2SeqBatch, drop: Dropout): Tensor2D {
    const t = getTf();
    const c = this.config;
    const { batchSize: B, srcLen: L, tgtLen: T } = batch;
    const { hidden: enc, maskAdd } = this.encodeHidden(batch, drop);
    checkIds(batch.decoderInputIds, B * T, c.vocab_size, 'decoderInputIds');
    const dec = t.tensor2d(batch.decoderInputIds, [B, T], 'int32');
    let x = drop.apply(t.reshape(t.gather(this.w('shared.weight'), dec), [B * T, c.d_model]) as Tensor2D);
    const fused = this.useFusedAttention();
    const selfBias = this.attnBias(fused, { pos: this.positionBias('decoder', T, T), causal: true, Lq: T }); // composed: [1, H, T, T]
    const crossBias = this.attnBias(fused, { mask: maskAdd, causal: false, Lq: T });
    for (let i = 0; i < c.num_decoder_layers; i++) {
      const p = `decoder.block.${i}.layer`;
      const n0 = this.rmsNorm(x, `${p}.0.layer_norm.weight`);
      x = t.add(x, drop.apply(this.attention(`${p}.0.SelfAttention`, n0, n0, B, T, T, selfBias, drop)));
      const n1 = this.rmsNorm(x, `${p}.1.layer_norm.weight`);
      x = t.add(x, drop.apply(this.attention(`${p}.1.EncDecAttention`, n1, enc, B, T, L, crossBias, drop)));
      x = t.add(x, drop.apply(this.feedForward(`${p}.2`, this.rmsNorm(x, `${p}.2.layer_norm.weight`), drop)));
    }
    const h = drop.apply(this.rmsNorm(x, 'decoder.final_layer_norm.weight'));
    return this.lmHead(h);
  }

  /** Logits [B, T, V] (teacher forcing on `decoderInputIds`). */
  forward(batch: Seq2SeqBatch, opts: ForwardOptions = {}): Tensor3D {
    const drop = new Dropout(this.config.dropout_rate, opts.training ?? false, opts.seed ?? 0);
    return getTf().tidy(() => getTf().reshape(this.logits2d(batch, drop), [batch.batchSize, batch.tgtLen, this.config.vocab_size]) as Tensor3D);
  }

  /**
   * Mean token cross-entropy over labels that are not -100 (nor pad, when
   * `ignorePad`); dropout on when `training`. Call inside a gradient tape
   * (the trainer does) or a tidy.
   */
  loss(batch: Seq2SeqBatch, opts: ForwardOptions & { ignorePad?: boolean } = {}): LossOutput {
    const t = getTf();
    const c = this.config;
    const drop = new Dropout(c.dropout_rate, opts.training ?? false, opts.seed ?? 0);
    const N = batch.batchSize * batch.tgtLen;
    const target = new Int32Array(N);
    const weight = new Float32Array(N);
    let count = 0;
    for (let i = 0; i < N; i++) {
      const l = batch.labels[i];
      const ignored = l === -100 || (opts.ignorePad !== false && l === c.pad_token_id && c.pad_token_id !== c.eos_token_id);
      if (ignored) continue;
      if (!(l >= 0 && l < c.vocab_size)) throw new InputError(`label ${l} is outside the vocabulary (0..${c.vocab_size - 1})`);
      target[i] = l;
      weight[i] = 1;
      count++;
    }
    let tokens = count;
    for (let i = 0; i < batch.attentionMask.length; i++) tokens += batch.attentionMask[i] ? 1 : 0;
    const logits = this.logits2d(batch, drop);
    if (count === 0) return { loss: t.mul(t.sum(logits), 0) as Scalar, weight: 0, tokens };
    for (let i = 0; i < N; i++) weight[i] /= count;
    // fused cross-entropy: native on wasm, JS on cpu (on wasm without the addon
    // the composition below is faster: its exps run on the wasm Exp kernel)
    if (hasKernel('P5SoftmaxXent') && hasKernel('P5SoftmaxXentGrad') && (getTf().getBackend() !== 'wasm' || nativeKernelsActive())) {
      return { loss: fusedSoftmaxCrossEntropy(logits, t.tensor1d(Float32Array.from(target), 'float32'), t.tensor1d(weight, 'float32')), weight: count, tokens };
    }
    const onehotW = t.mul(t.oneHot(t.tensor1d(target, 'int32'), c.vocab_size), t.tensor2d(weight, [N, 1]));
    return { loss: softmaxCrossEntropy(logits, onehotW), weight: count, tokens };
  }

  // ---------------------------------------------------------------- decoding

  /** Run the encoder once and precompute every decoder layer's cross-attention K/V. */
  encodeCache(batch: EncoderBatch): EncoderCache {
    const t = getTf();
    const c = this.config;
    const drop = new Dropout(0, false, 0);
    const { batchSize: B, srcLen: L } = batch;
    const kept = t.tidy(() => {
      const { hidden, maskAdd } = this.encodeHidden(batch, drop);
      const ks: Tensor[] = [];
      const vs: Tensor[] = [];
      for (let i = 0; i < c.num_decoder_layers; i++) {
        const pre = `decoder.block.${i}.layer.1.EncDecAttention`;
        ks.push(this.heads(t.matMul(hidden, this.w(`${pre}.k.weight`)), B, L));
        vs.push(this.heads(t.matMul(hidden, this.w(`${pre}.v.weight`)), B, L));
      }
      // the tied output layer, transposed once for all decoding steps
      const sharedT = c.tie_word_embeddings ? t.transpose(this.w('shared.weight')) : t.zeros([0]);
      return [maskAdd, sharedT, ...ks, ...vs];
    });
    const n = c.num_decoder_layers;
    const cache: EncoderCache = {
      batchSize: B,
      srcLen: L,
      maskAdd: kept[0],
      sharedT: c.tie_word_embeddings ? kept[1] : undefined,
      crossK: kept.slice(2, 2 + n),
      crossV: kept.slice(2 + n),
      dispose: () => t.dispose(kept),
    };
    return cache;
  }

  /** An empty self-attention cache for `decodeStep`. */
  newDecoderCache(): DecoderCache {
    const cache: DecoderCache = {
      step: 0,
      selfK: [],
      selfV: [],
      dispose: () => {
        getTf().dispose([...cache.selfK, ...cache.selfV]);
        cache.selfK = [];
        cache.selfV = [];
      },
    };
    return cache;
  }

  /**
   * One decoder step: `tokens` [B] are the inputs at position `cache.step`
   * (decoder_start_token_id first). Returns logits [B, V]; the cache grows by
   * one position (old cache tensors are released).
   */
  decodeStep(enc: EncoderCache, cache: DecoderCache, tokens: Int32Array | readonly number[]): Tensor2D {
    const t = getTf();
    const c = this.config;
    const B = enc.batchSize;
    if (tokens.length !== B) throw new InputError(`decodeStep: ${tokens.length} tokens for a batch of ${B}`);
    const ids = Int32Array.from(tokens);
    checkIds(ids, B, c.vocab_size, 'tokens');
    const step = cache.step;
    const drop = new Dropout(0, false, 0);
    const oldK = cache.selfK;
    const oldV = cache.selfV;
    const out = t.tidy(() => {
      let x = t.gather(this.w('shared.weight'), t.tensor1d(ids, 'int32')) as Tensor2D; // [B, d]
      const bias = this.positionBias('decoder', 1, step + 1, step); // [1, H, 1, step+1]
      const newK: Tensor[] = [];
      const newV: Tensor[] = [];
      for (let i = 0; i < c.num_decoder_layers; i++) {
        const p = `decoder.block.${i}.layer`;
        const pre = `${p}.0.SelfAttention`;
        const n0 = this.rmsNorm(x, `${p}.0.layer_norm.weight`);
        const q = this.heads(t.matMul(n0, this.w(`${pre}.q.weight`)), B, 1);
        let k = this.heads(t.matMul(n0, this.w(`${pre}.k.weight`)), B, 1);
        let v = this.heads(t.matMul(n0, this.w(`${pre}.v.weight`)), B, 1);
        if (step > 0) {
          k = t.concat([oldK[i], k], 2);
          v = t.concat([oldV[i], v], 2);
        }
        newK.push(k);
        newV.push(v);
        x = t.add(x, this.attend(pre, q, k, v, B, 1, bias, drop));
        const cross = `${p}.1.EncDecAttention`;
        const n1 = this.rmsNorm(x, `${p}.1.layer_norm.weight`);
        const q1 = this.heads(t.matMul(n1, this.w(`${cross}.q.weight`)), B, 1);
        x = t.add(x, this.attend(cross, q1, enc.crossK[i], enc.crossV[i], B, 1, enc.maskAdd, drop));
        x = t.add(x, this.feedForward(`${p}.2`, this.rmsNorm(x, `${p}.2.layer_norm.weight`), drop));
      }
      const logits = this.lmHead(this.rmsNorm(x, 'decoder.final_layer_norm.weight'), enc.sharedT);
      return [logits, ...newK, ...newV];
    });
    t.dispose([...oldK, ...oldV]);
    const n = c.num_decoder_layers;
    cache.selfK = out.slice(1, 1 + n);
    cache.selfV = out.slice(1 + n);
    cache.step = step + 1;
    return out[0] as Tensor2D;
  }

  /** Reorder a decoder cache along the batch (beam search): row i takes row `rows[i]`. */
  reorderCache(cache: DecoderCache, rows: Int32Array | readonly number[]): void {
    const t = getTf();
    const idx = Int32Array.from(rows);
    const next = t.tidy(() => {
      const r = t.tensor1d(idx, 'int32');
      return [...cache.selfK.map((k) => t.gather(k, r)), ...cache.selfV.map((v) => t.gather(v, r))];
    });
    t.dispose([...cache.selfK, ...cache.selfV]);
    cache.selfK = next.slice(0, cache.selfK.length);
    cache.selfV = next.slice(cache.selfK.length);
  }

  /**
   * Greedy decoding with the encoder cache and the incremental self-attention
   * cache. Returns, per input, the generated ids up to (not including) `</s>`.
   */
  generateGreedy(batch: EncoderBatch, opts: { maxNewTokens?: number } = {}): number[][] {
    return generateGreedy(this, batch, opts);
  }
}

// ---------------------------------------------------------------- helpers

/** An attention's bias: position bias / padding mask / causal for the fused op, or their sum for the composition. */
type AttnBias = { fused: true; pos?: Tensor; mask?: Tensor; causal: boolean } | { fused: false; full: Tensor };

/** `fusedAttention`'s default: on unless P5REC_FUSED_ATTENTION is 0 / false / off / no. */
function fusedAttentionDefault(): boolean {
  const v = process.env.P5REC_FUSED_ATTENTION;
  return v === undefined || !['0', 'false', 'off', 'no'].includes(v.trim().toLowerCase());
}

/** [B, L] 1/0 mask → [B, 1, 1, L] additive (0 / -1e9). */
function maskToAdditive(mask: Int32Array, B: number, L: number): Tensor {
  const add = new Float32Array(B * L);
  for (let i = 0; i < add.length; i++) add[i] = mask[i] ? 0 : NEG;
  return getTf().tensor4d(add, [B, 1, 1, L]);
}

function causalMask(T: number): Tensor {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = NEG;
  return getTf().tensor4d(m, [1, 1, T, T]);
}

function checkIds(ids: Int32Array, n: number, vocab: number, what: string): void {
  if (ids.length !== n) throw new InputError(`${what}: ${ids.length} values, expected ${n}`);
  for (let i = 0; i < n; i++) {
    const v = ids[i];
    if (!(v >= 0 && v < vocab)) throw new InputError(`${what}: token id ${v} is outside the vocabulary (0..${vocab - 1})`);
  }
}

function clipWholeWord(ids: Int32Array, rows: number): Int32Array {
  let ok = true;
  for (let i = 0; i < ids.length; i++) if (!(ids[i] >= 0 && ids[i] < rows)) ok = false;
  if (ok) return ids;
  return ids.map((v) => Math.min(Math.max(v, 0), rows - 1));
}
