/**
 * SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM
 * 2018): a causal Transformer over the user's most recent `maxLen` items;
 * the hidden state at position t, dotted with the (shared) item embeddings,
 * scores the item at t + 1. Network: ./sasrec-net.ts.
 *
 * Training data: each user's leave-one-out TRAIN prefix s₁..sₙ (n ≥ 2), its
 * last maxLen + 1 items, input s₁..sₙ₋₁ and targets s₂..sₙ (every position
 * is a training example). Losses:
 *  - `ce` (default): softmax cross-entropy over ALL items at every non-pad
 *    position — the "tuned" SASRec of later work (e.g. Klenitskiy & Vasilev,
 *    RecSys 2023), much stronger than the paper's loss on full ranking;
 *  - `bce`: the paper's binary cross-entropy with one uniformly sampled
 *    negative (an item not in the user's training prefix) per position.
 * Adam (β₂ = 0.98 as the reference code), per-epoch checkpoints with the
 * Adam moments, resume, and early stopping on validation NDCG@10 over the
 * full item ranking (history excluded, the evaluator's protocol), keeping
 * the best epoch's weights.
 *
 * Cost: the CE's [positions, d] × [d, items] logits dominate; they are
 * computed only at non-pad positions (128k per Beauty epoch, 11% of
 * users × maxLen) through the engine's GEMM path, with a hand-written
 * softmax-CE gradient (./sasrec-net.ts). Batches are bucketed by length
 * (sorted within chunks of 32 batches, batch order shuffled), so a batch of
 * short sequences runs a short window. Weights and Adam live in
 * Float32Arrays; each step builds the graph on tensors made from them
 * (tfjs wasm backend; the engine's native matmul when it is built).
 *
 * Measured with the defaults on Beauty (P5 sequences, random item ids,
 * seed 2022; 2 shared cores): 24 epochs (best 19, validation on all users
 * every epoch), fit 11 min with the native matmul / 20 min on wasm alone,
 * peak RSS ~1.1 GB; test HR@10 .085, NDCG@10 .051 (bench/sasrec.mjs).
 *
 * Scoring (`score`, evaluation, serving) runs the network in plain arrays on
 * the visible history's last maxLen items: loading a model needs no engine.
 */
import { InputError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { VALID } from '../data/splits.js';
import { initEngine } from '../engine/backend.js';
import type { Tensor, Tf } from '../engine/types.js';
import { rankOfTarget } from '../eval/metrics.js';
import type { FitContext, HyperSchema, ModelState, Recommender, RecommenderFactory, TrainSplit } from '../recommend/recommender.js';
import { Rng, hashString } from '../util/rng.js';
import { requireSequential } from './bpr-mf.js';
import { Adam, Param, paramState } from './nn.js';
import { DropoutSource, forwardTf, initWeights, makeBatch, NetCpu, softmaxCrossEntropy, weightShapes, type NetShape } from './sasrec-net.js';
import { checkHyper, f32, initRng, permutation, runLoop, tensorOf, trainRows, UserItems, type Trainable, type Validator } from './train.js';

export type SasrecLoss = 'ce' | 'bce';

export interface SasrecConfig extends Record<string, unknown> {
  dim: number;
  blocks: number;
  heads: number;
  maxLen: number;
  dropout: number;
  loss: SasrecLoss;
  lr: number;
  batchSize: number;
  epochs: number;
  patience: number;
  validUsers: number;
}

export const SASREC_DEFAULTS: SasrecConfig = {
  /** d: item/position embedding and hidden size. */
  dim: 64,
  /** Self-attention blocks (attention + point-wise FFN). */
  blocks: 2,
  /** Attention heads (dim must be divisible by it); the paper uses 1. */
  heads: 1,
  /** L: most recent items the model sees (longer histories are cut from the front). */
  maxLen: 50,
  /** Dropout on the embeddings, attention weights and FFN (the paper: 0.5 with its BCE loss on the sparse Amazon data). */
  dropout: 0.3,
  /** 'ce': softmax cross-entropy over all items; 'bce': the paper's BCE with one sampled negative per position. */
  loss: 'ce',
  /** Adam step size. */
  lr: 0.001,
  /** Sequences (users) per Adam step. */
  batchSize: 128,
  /** Maximum passes over the users' training sequences. */
  epochs: 100,
  /** Early stopping: epochs without a better validation NDCG@10 before stopping (0 = never); the best epoch's weights are kept. */
  patience: 5,
  /** Users in the per-epoch validation (a fixed seeded sample; 0 = every user with a validation item). */
  validUsers: 0,
};

function shapeOf(c: SasrecConfig): NetShape {
  return { dim: c.dim, blocks: c.blocks, heads: c.heads, maxLen: c.maxLen };
}

class SasrecModel implements Recommender {
  readonly kind = 'sasrec';
  readonly tasks = ['direct', 'sequential'] as const;
  readonly net: NetCpu;
  constructor(readonly trainSplit: TrainSplit, readonly config: SasrecConfig, readonly weights: Record<string, Float32Array>, readonly numItems: number, readonly extra: Record<string, unknown> = {}) {
    this.net = new NetCpu(shapeOf(config), weights, numItems);
  }

  score(_user: number, history: Int32Array, candidates?: Int32Array): Float32Array {
    return this.net.score(history, candidates);
  }

  state(): ModelState {
    const tensors: ModelState['tensors'] = {};
    for (const [name, shape] of weightShapes(shapeOf(this.config), this.numItems)) tensors[name] = f32(shape, this.weights[name]);
    return { config: this.config, tensors, extra: this.extra };
  }
}

/** What each hyper-parameter may be (checked before fit and load; `fit --help` shows it). */
export const SASREC_SCHEMA: HyperSchema = {
  dim: { type: 'number', min: 1, max: 4096, integer: true },
  blocks: { type: 'number', min: 0, max: 64, integer: true },
  heads: { type: 'number', min: 1, max: 4096, integer: true },
  maxLen: { type: 'number', min: 1, max: 4096, integer: true },
  dropout: { type: 'number', min: 0, max: 0.95 },
  loss: { type: 'string', oneOf: ['ce', 'bce'] },
  lr: { type: 'number', min: 0, max: 10 },
  batchSize: { type: 'number', min: 1, max: 1e5, integer: true },
  epochs: { type: 'number', min: 0, max: 1e6, integer: true },
  patience: { type: 'number', min: 0, max: 1e6, integer: true },
  validUsers: { type: 'number', min: 0, max: 1e9, integer: true },
};

function checkConfig(c: SasrecConfig): void {
  checkHyper('sasrec', SASREC_SCHEMA, c);
  if (c.dim % c.heads !== 0) throw new InputError(`model 'sasrec': dim (${c.dim}) must be divisible by heads (${c.heads})`, { field: 'heads' });
}

/** One training sequence: a user's train prefix (last maxLen + 1 items). */
interface Example {
  user: number;
  input: Int32Array;
  target: Int32Array;
}

function examples(ds: Dataset, split: TrainSplit, maxLen: number): { list: Example[]; hist: UserItems } {
  const hist = new UserItems(trainRows(ds, split), ds.numUsers);
  const list: Example[] = [];
  for (let u = 0; u < ds.numUsers; u++) {
    const s = hist.of(u);
    if (s.length < 2) continue;
    const m = Math.min(s.length - 1, maxLen);
    list.push({ user: u, input: s.slice(s.length - 1 - m, s.length - 1), target: s.slice(s.length - m) });
  }
  return { list, hist };
}

/** Batches of example indices: a shuffle, sorted by length within chunks of 32 batches, batch order shuffled. */
function bucketedBatches(list: readonly Example[], batchSize: number, rng: Rng): Int32Array[] {
  const order = permutation(list.length, rng);
  const chunk = batchSize * 32;
  const batches: Int32Array[] = [];
  for (let s = 0; s < order.length; s += chunk) {
    const part = order.slice(s, Math.min(order.length, s + chunk));
    part.sort((a, b) => list[b].input.length - list[a].input.length || a - b);
    for (let k = 0; k < part.length; k += batchSize) batches.push(part.slice(k, Math.min(part.length, k + batchSize)));
  }
  rng.shuffle(batches);
  return batches;
}

/** Weights as tensors (inside a tidy). */
function tensorsOf(t: Tf, s: NetShape, numItems: number, w: Record<string, Float32Array>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of weightShapes(s, numItems)) out[name] = t.tensor(w[name], shape);
  return out;
}

/**
 * Validation: NDCG@10 (and HR@10, logged) of the VALID item ranked among all
 * items with the train prefix as history (history items excluded, the
 * evaluator's tie rule), the network batched through the engine.
 */
function makeSasrecValidator(t: Tf, ds: Dataset, c: SasrecConfig, seed: number, log: (m: string) => void): Validator | null {
  let users: number[] = [];
  for (let u = 0; u < ds.numUsers; u++) if (ds.sequenceSplit(u, VALID).length) users.push(u);
  if (!users.length) return null;
  if (c.validUsers > 0 && c.validUsers < users.length) {
    const rng = new Rng(hashString(`${seed}/sasrec/valid-users`));
    const pick = permutation(users.length, rng).slice(0, c.validUsers).sort();
    users = Array.from(pick, (k) => users[k]);
  }
  const hists = users.map((u) => ds.historyBefore(u, VALID));
  const targets = users.map((u) => ds.sequenceSplit(u, VALID)[0]);
  // Similar lengths together: short windows for most batches.
  const order = users.map((_, k) => k).sort((a, b) => Math.min(hists[a].length, c.maxLen) - Math.min(hists[b].length, c.maxLen) || a - b);
  const s = shapeOf(c), I = ds.numItems, d = c.dim, VB = 256;
  return {
    name: 'valid NDCG@10',
    async score(rec) {
      const wt = tensorsOf(t, s, I, (rec as SasrecModel).weights);
      const items = t.slice(wt.item_emb, [1, 0], [I, d]);
      let ndcg = 0, hr = 0;
      for (let b0 = 0; b0 < order.length; b0 += VB) {
        const idx = order.slice(b0, b0 + VB);
        const batch = makeBatch(idx.map((k) => hists[k].subarray(Math.max(0, hists[k].length - c.maxLen))), c.maxLen);
        let scores: Float32Array = new Float32Array(0);
        t.tidy(() => {
          const H = forwardTf(t, s, wt, batch, null);
          const last = t.gather(H, t.tensor1d(Int32Array.from(idx, (_, r) => r * batch.T + batch.T - 1), 'int32'));
          scores = t.matMul(last, items, false, true).dataSync() as Float32Array;
        });
        for (let r = 0; r < idx.length; r++) {
          const k = idx[r];
          const rank = rankOfTarget(scores.subarray(r * I, (r + 1) * I), targets[k], hists[k]);
          if (rank < 10) {
            hr += 1;
            ndcg += 1 / Math.log2(rank + 2);
          }
        }
      }
      t.dispose([...Object.values(wt), items]);
      const n = order.length;
      log(`sasrec: valid HR@10 ${(hr / n).toFixed(4)} NDCG@10 ${(ndcg / n).toFixed(4)} (${n} users)`);
      return { value: ndcg / n, shown: ndcg / n };
    },
  };
}

export const sasrec: RecommenderFactory<SasrecConfig> = {
  kind: 'sasrec',
  description: 'SASRec: causal self-attention over the recent items, shared item embeddings; CE over all items or the paper\'s BCE (Kang & McAuley 2018)',
  tasks: ['direct', 'sequential'],
  defaultSplit: 'sequential',
  defaults: SASREC_DEFAULTS,
  schema: SASREC_SCHEMA,
  async fit(ds: Dataset, config: SasrecConfig, split: TrainSplit, ctx: FitContext) {
    const c = { ...SASREC_DEFAULTS, ...config };
    checkConfig(c);
    requireSequential('sasrec', split);
    const { list, hist } = examples(ds, split, c.maxLen);
    if (!list.length) throw new InputError('no user has two or more training interactions: nothing to learn a next item from', { file: ds.dir });
    const { tf: t } = await initEngine();
    const s = shapeOf(c), I = ds.numItems, d = c.dim;
    const w = initWeights(s, I, initRng(ctx.seed, 'sasrec'));
    const shapes = weightShapes(s, I);
    const params = shapes.map(([name, shape]) => new Param(name, w[name], shape[shape.length - 1]));
    const adam = new Adam(c.lr, 0.9, 0.98);
    const targets = list.reduce((a, e) => a + e.target.length, 0);
    ctx.log(`sasrec: ${list.length} training sequences, ${targets} target positions, ${I} items, loss ${c.loss}`);

    const step = (idx: Int32Array, drop: DropoutSource, rng: Rng): { loss: number; n: number } => {
      const exs = Array.from(idx, (k) => list[k]);
      const batch = makeBatch(exs.map((e) => e.input), c.maxLen);
      const T = batch.T;
      let n = 0;
      for (const e of exs) n += e.target.length;
      const rows = new Int32Array(n), tgt = new Int32Array(n), neg = c.loss === 'bce' ? new Int32Array(n) : null;
      let j = 0;
      exs.forEach((e, r) => {
        const off = T - e.target.length;
        for (let k = 0; k < e.target.length; k++, j++) {
          rows[j] = r * T + off + k;
          tgt[j] = e.target[k];
          if (neg) neg[j] = hist.sampleNegative(e.user, I, rng) + 1;
        }
      });
      let loss = NaN;
      t.tidy(() => {
        const f = (...xs: Tensor[]): Tensor => {
          const wt: Record<string, Tensor> = {};
          shapes.forEach(([nm], k) => (wt[nm] = xs[k]));
          const H = t.gather(forwardTf(t, s, wt, batch, drop), t.tensor1d(rows, 'int32'));
          if (neg) {
            const pos = t.sum(t.mul(H, t.gather(wt.item_emb, t.tensor1d(tgt.map((x) => x + 1), 'int32'))), 1);
            const ng = t.sum(t.mul(H, t.gather(wt.item_emb, t.tensor1d(neg, 'int32'))), 1);
            return t.add(t.mean(t.softplus(t.neg(pos))), t.mean(t.softplus(ng)));
          }
          return softmaxCrossEntropy(t, tgt)(H, t.slice(wt.item_emb, [1, 0], [I, d]));
        };
        const { value, grads } = t.valueAndGrads(f)(params.map((p, k) => t.tensor(p.w, shapes[k][1])));
        loss = value.dataSync()[0];
        grads.forEach((g, k) => params[k].g.set(g.dataSync() as Float32Array));
      });
      adam.step(params);
      return { loss, n };
    };

    const trainable: Trainable = {
      weightNames: params.map((p) => p.name),
      examplesPerEpoch: list.length,
      state: () => paramState(params),
      scalars: () => ({ adamStep: adam.t }),
      setScalars: (sc) => void (adam.t = sc.adamStep ?? 0),
      recommender: () => new SasrecModel(split, c, w, I),
      epoch(erng: Rng): number {
        const batches = bucketedBatches(list, c.batchSize, erng);
        const drop = new DropoutSource(c.dropout, erng.fork('dropout'));
        const negRng = erng.fork('negatives');
        let sum = 0, cnt = 0;
        for (const b of batches) {
          const r = step(b, drop, negRng);
          sum += r.loss * r.n;
          cnt += r.n;
        }
        return sum / Math.max(1, cnt);
      },
    };
    const validator = makeSasrecValidator(t, ds, c, ctx.seed, ctx.quiet ? () => {} : ctx.log);
    const res = await runLoop('sasrec', split, c, c, trainable, validator, ctx);
    return new SasrecModel(split, c, w, I, { training: { epochs: res.epochs, bestEpoch: res.bestEpoch, history: res.history } });
  },
  load(ds: Dataset, state: ModelState, split: TrainSplit) {
    const c = { ...SASREC_DEFAULTS, ...(state.config as Partial<SasrecConfig>) };
    checkConfig(c);
    const w: Record<string, Float32Array> = {};
    for (const [name, shape] of weightShapes(shapeOf(c), ds.numItems)) w[name] = tensorOf(state, name, shape.reduce((a, b) => a * b, 1));
    return new SasrecModel(split, c, w, ds.numItems, state.extra ?? {});
  },
};
