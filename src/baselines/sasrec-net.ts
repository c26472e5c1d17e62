/**
 * The SASRec network (Kang & McAuley, ICDM 2018), twice: as a tfjs graph for
 * training and batched validation, and as plain Float32Array loops for
 * scoring one user (`score`, no engine needed to load or serve a model).
 * Both compute the same function; test/sasrec.test.ts checks that they agree.
 *
 * The architecture is the paper's (and its reference TensorFlow code):
 *
 *   x   = E[s_t]·√d + P[t]                    item + learned position embedding
 *   x   = dropout(x) ⊙ mask                    pad positions are zero
 *   per block:
 *     q = LN₁(x)
 *     x = q + Attn(q W_q + b_q, x W_k + b_k, x W_v + b_v)    causal, pad keys masked,
 *                                                          dropout on the weights, no output projection
 *     z = LN₂(x)
 *     x = (z + dropout(dropout(ReLU(z W₁ + b₁)) W₂ + b₂)) ⊙ mask
 *   h   = LN_f(x)
 *   r_{t,i} = h_t · E[i]                        the input item table is the output table
 *
 * Sequences are right-aligned in a window of `maxLen`: the most recent item
 * always sits at position maxLen − 1, earlier ones at maxLen − 2, ... (the
 * reference code left-pads to maxLen). A batch only holds its longest row's
 * T ≤ maxLen columns; columns that are padding in every row change nothing,
 * because pad keys are masked and pad rows are zeroed.
 *
 * Weight layout: `item_emb` has numItems + 1 rows, row 0 is the padding
 * token (item i is row i + 1). Dense weights are [in][out] (x·W).
 */
import type { Rng } from '../util/rng.js';
import type { Tensor, Tf } from '../engine/types.js';
import { denseRows, fillGlorot } from './nn.js';

export interface NetShape {
  dim: number;
  blocks: number;
  heads: number;
  maxLen: number;
}

/** LayerNorm epsilon (the reference code's 1e-8). */
export const LN_EPS = 1e-8;
/** Additive attention mask for keys a query may not see. */
export const MASKED = -1e9;

/** Names and shapes of every weight, in a fixed order. */
export function weightShapes(s: NetShape, numItems: number): [string, number[]][] {
  const d = s.dim;
  const out: [string, number[]][] = [['item_emb', [numItems + 1, d]], ['pos_emb', [s.maxLen, d]]];
  for (let b = 0; b < s.blocks; b++) {
    const p = `block${b}.`;
    out.push([`${p}ln1.g`, [d]], [`${p}ln1.b`, [d]]);
    for (const m of ['q', 'k', 'v', 'ffn1', 'ffn2']) {
      if (m === 'ffn1') out.push([`${p}ln2.g`, [d]], [`${p}ln2.b`, [d]]);
      out.push([`${p}${m}.W`, [d, d]], [`${p}${m}.b`, [d]]);
    }
  }
  out.push(['ln_f.g', [d]], ['ln_f.b', [d]]);
  return out;
}

/** Fresh weights: Glorot-uniform tables and dense layers (as the reference's Xavier init), zero biases, LN gain 1. */
export function initWeights(s: NetShape, numItems: number, rng: Rng): Record<string, Float32Array> {
  const w: Record<string, Float32Array> = {};
  for (const [name, shape] of weightShapes(s, numItems)) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (shape.length === 2) fillGlorot(a, shape[0], shape[1], rng);
    else if (name.endsWith('.g')) a.fill(1);
    w[name] = a;
  }
  w.item_emb.fill(0, 0, s.dim); // the padding row
  return w;
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

/** Right-aligned rows of a batch; `items` are table rows (item + 1, 0 = pad). */
export interface NetBatch {
  B: number;
  T: number;
  items: Int32Array;
  pos: Int32Array;
  keep: Float32Array;
  /** [B, T, T]: 0 where query t may attend key s (s ≤ t, s real), else MASKED. */
  bias: Float32Array;
}

/** Lay out sequences (item indices, time order, each at most maxLen long) as one batch. */
export function makeBatch(seqs: readonly ArrayLike<number>[], maxLen: number): NetBatch {
  const B = seqs.length;
  let T = 1;
  for (const s of seqs) T = Math.max(T, s.length);
  const items = new Int32Array(B * T), pos = new Int32Array(B * T), keep = new Float32Array(B * T);
  const bias = new Float32Array(B * T * T).fill(MASKED);
  for (let r = 0; r < B; r++) {
    const s = seqs[r], m = s.length, off = T - m;
    for (let c = 0; c < T; c++) pos[r * T + c] = maxLen - T + c;
    for (let k = 0; k < m; k++) {
      items[r * T + off + k] = s[k] + 1;
      keep[r * T + off + k] = 1;
    }
    for (let i = off; i < T; i++) bias.fill(0, (r * T + i) * T + off, (r * T + i) * T + i + 1);
  }
  return { B, T, items, pos, keep, bias };
}

// ---------------------------------------------------------------------------
// tfjs graph
// ---------------------------------------------------------------------------

/**
 * Dropout masks (values 0 or 1/(1−rate)) from a seeded stream, so a run
 * replays exactly. Each mask takes one draw from `rng` to seed an xorshift32
 * run kept in locals (Rng's uint32 fields are boxed numbers in V8: ~5× slower
 * per value; masks are ~10⁶ values per step).
 */
export class DropoutSource {
  constructor(readonly rate: number, private readonly rng: Rng) {}

  mask(n: number): Float32Array {
    const m = new Float32Array(n);
    const keep = 1 / (1 - this.rate);
    const th = Math.round(-2147483648 + this.rate * 4294967296) | 0;
    let s = this.rng.nextU32() | 1;
    for (let k = 0; k < n; k++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      m[k] = s >= th ? keep : 0;
    }
    return m;
  }
}

type W = Record<string, Tensor>;

function layerNormTf(t: Tf, x: Tensor, g: Tensor, b: Tensor): Tensor {
  const mean = t.mean(x, -1, true);
  const xc = t.sub(x, mean);
  const v = t.mean(t.square(xc), -1, true);
  return t.add(t.mul(t.mul(xc, t.rsqrt(t.add(v, LN_EPS))), g), b);
}

function dropTf(t: Tf, x: Tensor, drop: DropoutSource | null): Tensor {
  if (!drop || drop.rate === 0) return x;
  return t.mul(x, t.tensor(drop.mask(x.size), x.shape));
}

/**
 * Hidden states after the final LayerNorm, [B·T, d], for a batch (call
 * inside a tidy / gradient tape; `w` are the weights as tensors).
 */
export function forwardTf(t: Tf, s: NetShape, w: W, batch: NetBatch, drop: DropoutSource | null): Tensor {
  const { B, T } = batch;
  const d = s.dim, h = s.heads, dh = d / h, BT = B * T;
  const keep = t.tensor2d(batch.keep, [BT, 1]);
  let bias = t.tensor3d(batch.bias, [B, T, T]);
  if (h > 1) bias = t.reshape(t.tile(t.reshape(bias, [B, 1, T, T]), [1, h, 1, 1]), [B * h, T, T]);
  const items = t.tensor1d(batch.items, 'int32');
  const pos = t.tensor1d(batch.pos, 'int32');
  let x = t.add(t.mul(t.gather(w.item_emb, items), Math.sqrt(d)), t.gather(w.pos_emb, pos));
  x = t.mul(dropTf(t, x, drop), keep);
  const dense = (a: Tensor, name: string, activation: 'linear' | 'relu' = 'linear'): Tensor => t.fused.matMul({ a: a as never, b: w[`${name}.W`] as never, bias: w[`${name}.b`] as never, activation });
  const heads = (a: Tensor): Tensor => (h === 1 ? t.reshape(a, [B, T, d]) : t.reshape(t.transpose(t.reshape(a, [B, T, h, dh]), [0, 2, 1, 3]), [B * h, T, dh]));
  for (let b = 0; b < s.blocks; b++) {
    const p = `block${b}.`;
    const q = layerNormTf(t, x, w[`${p}ln1.g`], w[`${p}ln1.b`]);
    const Q = heads(t.mul(dense(q, `${p}q`), 1 / Math.sqrt(dh)));
    const K = heads(dense(x, `${p}k`));
    const V = heads(dense(x, `${p}v`));
    let A = t.softmax(t.add(t.matMul(Q, K, false, true), bias));
    A = dropTf(t, A, drop);
    let O = t.matMul(A, V);
    O = h === 1 ? t.reshape(O, [BT, d]) : t.reshape(t.transpose(t.reshape(O, [B, h, T, dh]), [0, 2, 1, 3]), [BT, d]);
    x = t.add(q, O);
    const z = layerNormTf(t, x, w[`${p}ln2.g`], w[`${p}ln2.b`]);
    let f = dropTf(t, dense(z, `${p}ffn1`, 'relu'), drop);
    f = dropTf(t, dense(f, `${p}ffn2`), drop);
    x = t.mul(t.add(z, f), keep);
  }
  return layerNormTf(t, x, w['ln_f.g'], w['ln_f.b']);
}

/**
 * Mean softmax cross-entropy of rows `H` [N, d] against ALL rows of `E`
 * [items, d], the target of row n being item `targets[n]`, with a
 * hand-written gradient:
 *
 *   P = softmax(H·Eᵀ),  loss = −mean log P[n, tₙ]
 *   dH = (P·E − E[t]) / N,   dE = ((Hᵀ·P)ᵀ − Σₙ onehot(tₙ)·Hₙ) / N
 *
 * One GEMM and one softmax (a single XNNPACK kernel) over the [N, items]
 * logits forward, two GEMMs backward, no other pass over [N, items]: the
 * 1/N and the one-hot parts act on [N, d] / [items, d] tensors. About 2×
 * faster than max/sub/exp/sum ops with their tfjs gradients (and 4× faster
 * than tfjs's logSumExp gradient).
 *
 * Memory: P is N × items floats (a batch of 128 sequences of 50 items on
 * Beauty: 310 MB). Above `chunkRows` rows the logits are computed in row
 * chunks, P is not kept, and the backward pass recomputes each chunk's
 * softmax (one GEMM + one softmax more, only for such batches).
 */
export function softmaxCrossEntropy(t: Tf, targets: Int32Array, chunkRows = 2048): (H: Tensor, E: Tensor) => Tensor {
  const probs = (h: Tensor, e: Tensor): Tensor => {
    const logits = t.matMul(h, e, false, true);
    const p = t.softmax(logits);
    logits.dispose();
    return p;
  };
  return t.customGrad(((H: Tensor, E: Tensor, save: (ts: Tensor[]) => void) => {
    const N = H.shape[0], I = E.shape[0];
    const chunks: [number, number][] = [];
    for (let r = 0; r < N; r += chunkRows) chunks.push([r, Math.min(N, r + chunkRows) - r]);
    let kept: Tensor | null = null;
    const logp = chunks.map(([r0, rows]) => {
      const h = chunks.length === 1 ? H : t.slice(H, [r0, 0], [rows, H.shape[1]!]);
      const p = probs(h, E);
      const flat = t.tensor1d(Int32Array.from(targets.subarray(r0, r0 + rows), (tg, n) => n * I + tg), 'int32');
      const lp = t.log(t.maximum(t.gather(t.reshape(p, [rows * I]), flat), 1e-30));
      if (chunks.length === 1) kept = p;
      else p.dispose();
      return lp;
    });
    const value = t.neg(t.mean(logp.length === 1 ? logp[0] : t.concat(logp)));
    save(kept ? [H, E, kept] : [H, E]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [h, e] = saved;
        const scale = t.div(dy, N);
        const tg = t.tensor1d(targets, 'int32');
        const hs = t.mul(h, scale);
        let dE = t.neg(t.unsortedSegmentSum(hs, tg, I));
        const dHs = chunks.map(([r0, rows]) => {
          const one = chunks.length === 1;
          const hc = one ? h : t.slice(h, [r0, 0], [rows, h.shape[1]!]);
          const p = one ? saved[2] : probs(hc, e);
          const dEc = t.matMul(one ? hs : t.slice(hs, [r0, 0], [rows, h.shape[1]!]), p, true, false);
          const dHc = t.matMul(p, e);
          if (!one) p.dispose();
          const next = t.add(dE, t.transpose(dEc));
          dE.dispose();
          dEc.dispose();
          dE = next;
          return dHc;
        });
        const dH = t.mul(t.sub(dHs.length === 1 ? dHs[0] : t.concat(dHs), t.gather(e, tg)), scale);
        return [dH, dE];
      },
    };
  }) as never) as unknown as (H: Tensor, E: Tensor) => Tensor;
}

// ---------------------------------------------------------------------------
// Plain-array forward (one sequence): scoring without the engine
// ---------------------------------------------------------------------------

function layerNormRows(x: Float32Array, rows: number, d: number, g: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let mean = 0;
    for (let k = 0; k < d; k++) mean += x[o + k];
    mean /= d;
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[o + k] - mean) * (x[o + k] - mean);
    const inv = 1 / Math.sqrt(v / d + LN_EPS);
    for (let k = 0; k < d; k++) out[o + k] = (x[o + k] - mean) * inv * g[k] + b[k];
  }
}

/** [in][out] → [out][in] (denseRows' layout). */
function transposeSquare(W: Float32Array, n: number, m: number): Float32Array {
  const o = new Float32Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) o[j * n + i] = W[i * m + j];
  return o;
}

/** The network over plain arrays, for one sequence at a time. */
export class NetCpu {
  private readonly wt: Record<string, Float32Array> = {};
  readonly zeroBias: Float32Array;
  constructor(readonly s: NetShape, readonly w: Record<string, Float32Array>, readonly numItems: number) {
    const d = s.dim;
    for (let b = 0; b < s.blocks; b++) for (const m of ['q', 'k', 'v', 'ffn1', 'ffn2']) this.wt[`block${b}.${m}`] = transposeSquare(w[`block${b}.${m}.W`], d, d);
    this.zeroBias = new Float32Array(numItems);
  }

  /** The final hidden state after the last item of `history` (its last maxLen items). */
  hidden(history: ArrayLike<number>): Float32Array {
    const { dim: d, heads: h, maxLen: L, blocks } = this.s;
    const dh = d / h;
    const start = Math.max(0, history.length - L);
    const n = history.length - start;
    const out = new Float32Array(d);
    const w = this.w;
    if (n === 0) {
      // No history: every position is padding, x = 0, so LN_f(0) = its bias.
      out.set(w['ln_f.b']);
      return out;
    }
    const sq = Math.sqrt(d);
    let x = new Float32Array(n * d);
    for (let k = 0; k < n; k++) {
      const it = (history[start + k] + 1) * d, p = (L - n + k) * d;
      for (let j = 0; j < d; j++) x[k * d + j] = w.item_emb[it + j] * sq + w.pos_emb[p + j];
    }
    const q = new Float32Array(n * d), Q = new Float32Array(n * d), K = new Float32Array(n * d), V = new Float32Array(n * d);
    const z = new Float32Array(n * d), f = new Float32Array(n * d), att = new Float32Array(n);
    const scale = 1 / Math.sqrt(dh);
    for (let b = 0; b < blocks; b++) {
      const p = `block${b}.`;
      layerNormRows(x, n, d, w[`${p}ln1.g`], w[`${p}ln1.b`], q);
      denseRows(q, n, d, this.wt[`${p}q`], w[`${p}q.b`], d, Q, 0, false);
      denseRows(x, n, d, this.wt[`${p}k`], w[`${p}k.b`], d, K, 0, false);
      denseRows(x, n, d, this.wt[`${p}v`], w[`${p}v.b`], d, V, 0, false);
      const nx = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        for (let hh = 0; hh < h; hh++) {
          const ho = hh * dh;
          let mx = -Infinity;
          for (let j = 0; j <= i; j++) {
            let sdot = 0;
            for (let k = 0; k < dh; k++) sdot += Q[i * d + ho + k] * K[j * d + ho + k];
            att[j] = sdot * scale;
            if (att[j] > mx) mx = att[j];
          }
          let sum = 0;
          for (let j = 0; j <= i; j++) sum += att[j] = Math.exp(att[j] - mx);
          for (let k = 0; k < dh; k++) {
            let acc = 0;
            for (let j = 0; j <= i; j++) acc += att[j] * V[j * d + ho + k];
            nx[i * d + ho + k] = q[i * d + ho + k] + acc / sum;
          }
        }
      }
      x = nx;
      layerNormRows(x, n, d, w[`${p}ln2.g`], w[`${p}ln2.b`], z);
      denseRows(z, n, d, this.wt[`${p}ffn1`], w[`${p}ffn1.b`], d, f, 0, true);
      denseRows(f, n, d, this.wt[`${p}ffn2`], w[`${p}ffn2.b`], d, x, 0, false);
      for (let k = 0; k < n * d; k++) x[k] += z[k];
    }
    layerNormRows(x.subarray((n - 1) * d), 1, d, w['ln_f.g'], w['ln_f.b'], out);
    return out;
  }

  /** Scores h · E[i] of `candidates` (every item when omitted) after `history`. */
  score(history: ArrayLike<number>, candidates?: Int32Array): Float32Array {
    const d = this.s.dim;
    const hv = this.hidden(history);
    const E = this.w.item_emb.subarray(d);
    if (!candidates) {
      const out = new Float32Array(this.numItems);
      denseRows(hv, 1, d, E, this.zeroBias, this.numItems, out, 0, false);
      return out;
    }
    const out = new Float32Array(candidates.length);
    for (let c = 0; c < candidates.length; c++) {
      const o = candidates[c] * d;
      let s = 0;
      for (let k = 0; k < d; k++) s += hv[k] * E[o + k];
      out[c] = s;
    }
    return out;
  }
}
