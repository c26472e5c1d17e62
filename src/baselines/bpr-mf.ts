/**
 * BPR-MF (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian
 * Personalized Ranking from Implicit Feedback", UAI 2009):
 *
 *   x̂(u, i) = b_i + p_u · q_i,   loss = −log σ(x̂(u, i) − x̂(u, j)) + L2
 *
 * for an observed (u, i) and a uniformly sampled item j the user has not
 * interacted with in training. LearnBPR's per-triple SGD; one epoch visits
 * every training interaction once in a seeded shuffle. The item bias b_i
 * (as in MyMediaLite's BPRMF; `--item-bias false` gives the paper's pure
 * dot product) lets the model express popularity, which matters on the 1-of-100
 * direct task whose negatives are uniform.
 *
 * Default split 'sequential' (leave-one-out train prefix); tasks direct and
 * sequential. Plain Float32Array loops (see nn.ts): one epoch over Beauty's
 * 154k training interactions at d = 64 takes ~0.14 s here; validation and the
 * checkpoint add ~0.25 s per epoch. Defaults: the best validation NDCG@10
 * (direct task) on Beauty over lr {0.05, 0.1, 0.2}, reg {0.005 … 0.05},
 * d {32, 64}, item bias on/off (a partial grid); it still improves slowly at
 * epoch 100, kept for the 2-minute budget (~40 s here).
 */
import { InputError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import type { FitContext, HyperSchema, ModelState, Recommender, RecommenderFactory, TrainSplit } from '../recommend/recommender.js';
import type { Rng } from '../util/rng.js';
import { biasedDotScores, fillNormal, softplusNeg, sigmoid } from './nn.js';
import { MF_SCHEMA } from './mf.js';
import { checkHyper, f32, initRng, makeValidator, permutation, runLoop, tensorOf, trainRows, UserItems, type Trainable } from './train.js';

export interface BprMfConfig extends Record<string, unknown> {
  dim: number;
  epochs: number;
  lr: number;
  lrDecay: number;
  reg: number;
  regBias: number;
  itemBias: boolean;
  initStd: number;
  patience: number;
}

export const BPR_MF_DEFAULTS: BprMfConfig = {
  /** Latent factors per user and item. */
  dim: 64,
  /** Maximum passes over the training interactions (one sampled negative each). */
  epochs: 100,
  /** SGD step size of the first epoch. */
  lr: 0.2,
  /** Step size multiplier per epoch (epoch e uses lr · lrDecay^e). */
  lrDecay: 1,
  /** L2 weight on p_u, q_i, q_j (per update, as LearnBPR's λ). */
  reg: 0.03,
  /** L2 weight on the item biases. */
  regBias: 0.01,
  /** Learn an item bias b_i (false: the paper's pure dot product). */
  itemBias: true,
  /** Std of the Gaussian initialisation of the factors. */
  initStd: 0.1,
  /** Early stopping on validation NDCG@10 (1-of-100): epochs without improvement before stopping (0 = off); the best weights are kept. */
  patience: 5,
};

class BprMfModel implements Recommender {
  readonly kind = 'bpr-mf';
  readonly tasks = ['direct', 'sequential'] as const;
  constructor(
    readonly trainSplit: TrainSplit,
    readonly config: BprMfConfig,
    readonly P: Float32Array,
    readonly Q: Float32Array,
    readonly bi: Float32Array,
    readonly extra: Record<string, unknown> = {},
  ) {}

  score(user: number, _history: Int32Array, candidates?: Int32Array): Float32Array {
    return biasedDotScores(this.P, this.Q, this.bi, this.config.dim, user, candidates);
  }

  state(): ModelState {
    const d = this.config.dim;
    return {
      config: this.config,
      tensors: { P: f32([this.P.length / d, d], this.P), Q: f32([this.bi.length, d], this.Q), bi: f32([this.bi.length], this.bi) },
      extra: this.extra,
    };
  }
}

/** What each hyper-parameter may be (checked before fit and load; `fit --help` shows it). */
export const BPR_MF_SCHEMA: HyperSchema = {
  // MF's hyper-parameters, with the same ranges, and the item bias switch.
  ...MF_SCHEMA,
  itemBias: { type: 'boolean' },
};

/** Ranking models learn from the leave-one-out prefix: the random split cannot be evaluated by ranking without leaking. */
export function requireSequential(kind: string, split: TrainSplit): void {
  if (split !== 'sequential') throw new InputError(`model '${kind}' ranks items (direct and sequential tasks) and trains on the sequential split; split '${split}' would leave it no task to be evaluated on`, { field: 'split' });
}

export const bprMf: RecommenderFactory<BprMfConfig> = {
  kind: 'bpr-mf',
  description: 'BPR-MF: matrix factorization with the pairwise BPR loss, uniform negatives, SGD (Rendle et al. 2009)',
  tasks: ['direct', 'sequential'],
  defaultSplit: 'sequential',
  defaults: BPR_MF_DEFAULTS,
  schema: BPR_MF_SCHEMA,
  async fit(ds: Dataset, config: BprMfConfig, split: TrainSplit, ctx: FitContext) {
    const c = { ...BPR_MF_DEFAULTS, ...config };
    checkHyper('bpr-mf', BPR_MF_SCHEMA, c);
    requireSequential('bpr-mf', split);
    const rows = trainRows(ds, split);
    if (!rows.length) throw new InputError('no training interactions', { file: ds.dir });
    const seen = new UserItems(rows, ds.numUsers);
    const d = c.dim, U = ds.numUsers, I = ds.numItems;
    const rng = initRng(ctx.seed, 'bpr-mf');
    const P = fillNormal(new Float32Array(U * d), c.initStd, rng);
    const Q = fillNormal(new Float32Array(I * d), c.initStd, rng);
    const bi = new Float32Array(I);
    const trainable: Trainable = {
      weightNames: ['P', 'Q', 'bi'],
      examplesPerEpoch: rows.length,
      state: () => ({ P, Q, bi }),
      recommender: () => new BprMfModel(split, c, P, Q, bi),
      epoch(erng: Rng, e: number): number {
        const lr = c.lr * Math.pow(c.lrDecay, e);
        const { reg, regBias, itemBias } = c;
        const order = permutation(rows.length, erng);
        let loss = 0;
        for (let n = 0; n < order.length; n++) {
          const r = order[n];
          const u = rows.user[r], i = rows.item[r];
          const j = seen.sampleNegative(u, I, erng);
          const po = u * d, io = i * d, jo = j * d;
          let x = 0;
          for (let k = 0; k < d; k++) x += P[po + k] * (Q[io + k] - Q[jo + k]);
          if (itemBias) x += bi[i] - bi[j];
          loss += softplusNeg(x);
          const g = sigmoid(-x);
          for (let k = 0; k < d; k++) {
            const pk = P[po + k], qi = Q[io + k], qj = Q[jo + k];
            P[po + k] = pk + lr * (g * (qi - qj) - reg * pk);
            Q[io + k] = qi + lr * (g * pk - reg * qi);
            Q[jo + k] = qj + lr * (-g * pk - reg * qj);
          }
          if (itemBias) {
            bi[i] += lr * (g - regBias * bi[i]);
            bi[j] += lr * (-g - regBias * bi[j]);
          }
        }
        return loss / order.length;
      },
    };
    const res = await runLoop('bpr-mf', split, c, c, trainable, makeValidator(ds, split), ctx);
    return new BprMfModel(split, c, P, Q, bi, { training: { epochs: res.epochs, bestEpoch: res.bestEpoch, history: res.history } });
  },
  load(ds: Dataset, state: ModelState, split: TrainSplit) {
    const c = { ...BPR_MF_DEFAULTS, ...(state.config as Partial<BprMfConfig>) };
    return new BprMfModel(split, c, tensorOf(state, 'P', ds.numUsers * c.dim), tensorOf(state, 'Q', ds.numItems * c.dim), tensorOf(state, 'bi', ds.numItems), state.extra ?? {});
  },
};
