/**
 * P5's training recipe: every default in one place, grouped by component
 * (model, optimizer, data, loop), and `resolveP5Options`, which turns the
 * flat P5TrainOptions into one frozen, checked config. trainP5 reads only
 * the resolved config; the model folder keeps it as recipe.json, which the
 * PyTorch trainer (python/p5rec/recipe.py) reads for its own defaults.
 */
import { ITEM_INITS, type ItemInit } from './item-init.js';
import { InputError } from '../errors.js';
import { DEFAULT_SEED, MAX_HISTORY, NEGATIVES } from '../defaults.js';
import { resolveT5Config, type T5Config } from '../models/t5/config.js';
import { ITEM_INDEXINGS, type ItemIndexing } from '../prompts/ids.js';
import type { PromptTask } from '../prompts/templates.js';

/** The model folder file holding the resolved recipe. */
export const RECIPE_FILE = 'recipe.json';
export const RECIPE_FORMAT = 'p5rec-recipe';

/** P5's defaults (the paper's where it has one), one object per component. */
export const P5_DEFAULTS = deepFreeze({
  model: {
    /** T5 preset (tiny|small|base), config.json path, or fields over a preset. */
    config: 'small' as string | Partial<T5Config>,
    /** A T5 folder to start from (weights and tokenizer); null: a fresh model. */
    init: null as string | null,
    /** null: the T5 config's own dropout rate. */
    dropout: null as number | null,
    /** null: what the tokenizer trainer keeps (at most 8003). */
    vocabSize: null as number | null,
    digitGroup: 0,
    itemPieces: false,
    userPieces: false,
    itemIds: 'plain' as ItemIndexing,
    itemInit: 'random' as ItemInit,
    /** null: the co-occurrence vectors fill the whole row (d_model coordinates). */
    itemInitDims: null as number | null,
    /** Items at most this many positions apart count as co-occurring (./item-init.ts). */
    itemInitWindow: 3,
  },
  optimizer: {
    lr: 1e-3,
    embeddingLrScale: 1,
    /** null: the item rows learn at embeddingLrScale like the rest of the table. */
    itemLrScale: null as number | null,
    /** null: no parameter averaging (the model is the last step's). */
    emaDecay: null as number | null,
    adamEps: 1e-6,
    weightDecay: 0.01,
    warmupRatio: 0.05,
    clipNorm: 1.0,
  },
  data: {
    /** null: every task the dataset can feed. */
    tasks: null as PromptTask[] | null,
    weights: null as Partial<Record<PromptTask, number>> | null,
    /** Template ids to train; null: every usable one of the tasks. */
    prompts: null as string[] | null,
    negatives: NEGATIVES,
    maxHistory: MAX_HISTORY,
    maxSourceLength: 512,
    tokensPerBatch: 4096,
    maxBatch: 64,
    leakFree: true,
    ratingNoise: true,
    /** Seeds the id view, the prompt sampling and the negatives. */
    seed: DEFAULT_SEED,
  },
  loop: {
    epochs: 10,
    /** null: one pass over the epochs' corpus. */
    steps: null as number | null,
    batchesPerStep: 1,
    /** Seeds the weights' initialisation and the trainer. */
    seed: 0,
    workers: 1,
    checkpointEvery: 200,
    validate: null as { every: number; users: number; patience: number } | null,
    calibrateRatings: true,
  },
});

/** Validation while training, when asked for (`validate.every`): these users and patience unless given. */
export const P5_VALIDATE_DEFAULTS = deepFreeze({ users: 1000, patience: 0 });

type DeepReadonly<T> = T extends (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Defaults = typeof P5_DEFAULTS;

/** One training run's recipe: the defaults with the caller's options over them, checked and frozen. */
export type ResolvedP5Config = DeepReadonly<{
  model: Mutable<Defaults['model']>;
  optimizer: Mutable<Defaults['optimizer']>;
  data: Mutable<Defaults['data']>;
  loop: Mutable<Defaults['loop']>;
}>;

/** The recipe-bearing fields of P5TrainOptions (the others say where and how to run: out, resume, log...). */
export interface P5RecipeOptions {
  /** Preset (tiny|small|base), config.json path, or fields over a preset. */
  config?: string | Partial<T5Config>;
  /** Start from a T5 folder (HF t5-small, or an earlier p5rec model); its tokenizer is used. */
  init?: string;
  tasks?: PromptTask[];
  weights?: Partial<Record<PromptTask, number>>;
  /** Data epochs (default 10). */
  epochs?: number;
  /** Stop after this many optimizer steps (default: one pass over the corpus); smoke tests and budgets. */
  steps?: number;
  /** Length-bucketed batches per optimizer step (default 1). */
  batchesPerStep?: number;
  tokensPerBatch?: number;
  maxBatch?: number;
  maxSourceLength?: number;
  negatives?: number;
  maxHistory?: number;
  lr?: number;
  /**
   * Learning-rate multiplier for the token embedding table (`shared.weight`).
   * Default 1. Each user or item id token is a rare row: it gets a gradient
   * only when its id is in the batch, so at the base rate it hardly moves
   * from its random start within a CPU budget.
   */
  embeddingLrScale?: number;
  /**
   * Learning-rate multiplier for the item tokens' own rows of the embedding
   * table, in place of `embeddingLrScale` there (needs one token per item:
   * itemIds 'independent' or 'cid+iid'). Lets item rows started from their
   * co-occurrence (`itemInit`) stay near it while user rows learn fast.
   */
  itemLrScale?: number;
  /**
   * Keep an exponential moving average of the weights (decay in (0, 1), e.g.
   * 0.998: about the last 500 steps) and end with it; validation scores it.
   * Not in any recipe: on Musical Instruments it changed nothing beyond noise
   * (docs/p5.md, run e1), the linear decay already stilling the last steps.
   */
  emaDecay?: number;
  /**
   * AdamW's epsilon. Default 1e-6 (P5's). A rare id row's gradient is small,
   * and an epsilon near the root of its second moment damps the row's steps;
   * the quickstart uses 1e-8 (PyTorch's default), which did better on ratings
   * in its CPU runs (docs/p5.md).
   */
  adamEps?: number;
  warmupRatio?: number;
  weightDecay?: number;
  clipNorm?: number;
  dropout?: number;
  vocabSize?: number;
  /**
   * Tokenizer digit grouping (see T5Tokenizer.train): 2 cuts ids into pairs
   * as T5's vocabulary does; 0 (default) leaves digit runs to the Unigram
   * trainer, which keeps frequent ids (every item of a small catalogue) as
   * single pieces, so an item is one embedding instead of a digit sequence
   * to compose — much faster to learn on a CPU budget.
   */
  digitGroup?: number;
  /** Every item id one vocabulary piece (bare and after `▁`): an item is one token to embed and to emit. Default false (P5: ids are split into pieces). */
  itemPieces?: boolean;
  /**
   * Every user id one vocabulary piece too. A user's rating bias is most of
   * what a rating model can learn (Musical Instruments: user biases alone take
   * the RMSE from .918 to .901, item biases alone make it worse), and a user
   * cut into digit pieces has no row of its own to hold it. Where a user and
   * an item share a number they share the piece; the context (`user_` or
   * `item_`) tells them apart. Default false.
   */
  userPieces?: boolean;
  /**
   * How ids are written (src/prompts/ids.ts): 'plain' (P5's text, default),
   * 'independent' (one token per item), 'collaborative' (tokens of the item's
   * co-occurrence cluster path) or 'cid+iid' (cluster tokens, then the item's
   * own). With any but 'plain', `userPieces` makes every user one token too.
   */
  itemIds?: ItemIndexing;
  /** Train only these template ids (e.g. ['2-1', '2-2', '2-3']); default every usable one of the tasks. */
  prompts?: string[];
  /**
   * Validation while training: sequential HR@10 / NDCG@10 of the first `users`
   * validation users (default 1000) every `every` steps and at the end, logged
   * to train-log.jsonl; the best model (by NDCG@10) is kept as the result;
   * `patience` validations without a new best stop the run.
   */
  validate?: { every: number; users?: number; patience?: number };
  /**
   * Where the item tokens' embedding rows start: 'random' (T5's init, the
   * default) or 'cooccurrence' (vectors whose dot products reproduce the
   * items' co-occurrence in the training prefixes, ./item-init.ts; needs an
   * indexing with one token per item: independent or cid+iid), or
   * 'cooccurrence+popularity' (the same with the last coordinate carrying the
   * items' log popularity in the training prefixes: the output layer has no
   * bias, and PMI vectors know no popularity).
   */
  itemInit?: ItemInit;
  /**
   * How many leading coordinates of each item row the co-occurrence vectors
   * fill (their rank; the rest start at 0). Default: all d_model. Fewer
   * smooth more: a small catalogue has few reliable directions
   * (./item-init.ts `itemInitVectors`).
   */
  itemInitDims?: number | null;
  /**
   * Pair items at most this many positions apart when counting co-occurrence
   * for the init (default 3). On Beauty's longer histories 7 gives a better
   * init on its own (not a better trained P5); on Musical Instruments 3 is
   * best (docs/p5.md).
   */
  itemInitWindow?: number;
  /** Fit the expected star's calibration on the validation ratings after training (integer-star models; default true). */
  calibrateRatings?: boolean;
  /** Seeds everything; unset: the data seed DEFAULT_SEED and the weights seed 0 (P5_DEFAULTS). */
  seed?: number;
  workers?: number;
  checkpointEvery?: number;
  /** false: rating, explanation and review rows from the whole random-split train part, as P5 (the model card then says trainSplit rating). */
  leakFree?: boolean;
  /**
   * P5's training noise on star answers (5 → 4.5–5.0). Default true. Without
   * it the answers are integer stars and the model's star probabilities are
   * calibrated, so rating prediction defaults to their expectation (which
   * minimises squared error) instead of the decoded star.
   */
  ratingNoise?: boolean;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

const pick = <T>(v: T | undefined, def: T): T => (v === undefined ? def : v);

/**
 * The one place options are checked: a bad one fails here, named by its
 * field, before anything is read or written. (The CLI parses its flags
 * first and names them; a library caller gets the field.)
 */
export function resolveP5Options(o: P5RecipeOptions): ResolvedP5Config {
  const D = P5_DEFAULTS;
  const int = (field: string, v: number, min: number): number => {
    if (!(Number.isInteger(v) && v >= min)) throw new InputError(`${field} must be an integer >= ${min}, got ${v}`, { field });
    return v;
  };
  const num = (field: string, v: number, ok: (x: number) => boolean, must: string): number => {
    if (!(typeof v === 'number' && Number.isFinite(v) && ok(v))) throw new InputError(`${field} must be ${must}, got ${v}`, { field });
    return v;
  };
  const model = {
    config: typeof o.config === 'object' ? { ...o.config } : pick(o.config, D.model.config),
    init: o.init ?? null,
    dropout: o.dropout ?? null,
    vocabSize: o.vocabSize ?? null,
    digitGroup: int('digitGroup', pick(o.digitGroup, D.model.digitGroup), 0),
    itemPieces: Boolean(pick(o.itemPieces, D.model.itemPieces)),
    userPieces: Boolean(pick(o.userPieces, D.model.userPieces)),
    itemIds: pick(o.itemIds, D.model.itemIds),
    itemInit: pick(o.itemInit, D.model.itemInit),
    itemInitDims: o.itemInitDims === undefined || o.itemInitDims === null ? D.model.itemInitDims : int('itemInitDims', o.itemInitDims, 1),
    itemInitWindow: int('itemInitWindow', pick(o.itemInitWindow, D.model.itemInitWindow), 1),
  };
  if (!(ITEM_INDEXINGS as readonly string[]).includes(model.itemIds)) throw new InputError(`unknown item indexing '${model.itemIds}' (one of ${ITEM_INDEXINGS.join(', ')})`, { field: 'itemIds' });
  if (!(ITEM_INITS as readonly string[]).includes(model.itemInit)) throw new InputError(`itemInit must be one of ${ITEM_INITS.join(', ')}, got '${String(model.itemInit)}'`, { field: 'itemInit' });
  if (model.itemIds !== 'plain' && model.init) throw new InputError(`item ids '${model.itemIds}' need a tokenizer trained here; they cannot start from init`, { field: 'itemIds' });
  if (model.itemInit !== 'random' && model.itemIds !== 'independent' && model.itemIds !== 'cid+iid') {
    throw new InputError(`itemInit '${model.itemInit}' needs one token per item (itemIds 'independent' or 'cid+iid'), got '${model.itemIds}'`, { field: 'itemInit' });
  }
  if (model.itemInitDims !== null && model.itemInit === 'random') throw new InputError("itemInitDims needs a co-occurrence itemInit ('cooccurrence' or 'cooccurrence+popularity'), got 'random'", { field: 'itemInitDims' });
  if (o.itemInitWindow !== undefined && model.itemInit === 'random') throw new InputError("itemInitWindow needs a co-occurrence itemInit ('cooccurrence' or 'cooccurrence+popularity'), got 'random'", { field: 'itemInitWindow' });
  if (o.itemLrScale !== undefined && o.itemLrScale !== null && model.itemIds !== 'independent' && model.itemIds !== 'cid+iid') {
    throw new InputError(`itemLrScale needs one token per item (itemIds 'independent' or 'cid+iid'), got '${model.itemIds}'`, { field: 'itemLrScale' });
  }
  if (model.dropout !== null && !(model.dropout >= 0 && model.dropout < 1)) throw new InputError(`must be in [0, 1), got ${model.dropout}`, { field: 'dropout' });
  if (model.vocabSize !== null) int('vocabSize', model.vocabSize, 16);

  const optimizer = {
    lr: num('lr', pick(o.lr, D.optimizer.lr), (x) => x >= 0, 'a number >= 0'),
    embeddingLrScale: num('embeddingLrScale', pick(o.embeddingLrScale, D.optimizer.embeddingLrScale), (x) => x >= 0, 'a number >= 0'),
    itemLrScale: o.itemLrScale === undefined || o.itemLrScale === null ? D.optimizer.itemLrScale : num('itemLrScale', o.itemLrScale, (x) => x >= 0, 'a number >= 0'),
    emaDecay: o.emaDecay === undefined || o.emaDecay === null ? D.optimizer.emaDecay : num('emaDecay', o.emaDecay, (x) => x > 0 && x < 1, 'in (0, 1)'),
    adamEps: num('adamEps', pick(o.adamEps, D.optimizer.adamEps), (x) => x > 0, 'a number > 0'),
    weightDecay: num('weightDecay', pick(o.weightDecay, D.optimizer.weightDecay), (x) => x >= 0, 'a number >= 0'),
    warmupRatio: num('warmupRatio', pick(o.warmupRatio, D.optimizer.warmupRatio), (x) => x >= 0 && x <= 1, 'in [0, 1]'),
    clipNorm: num('clipNorm', pick(o.clipNorm, D.optimizer.clipNorm), (x) => x >= 0, 'a number >= 0'),
  };

  const data = {
    tasks: o.tasks ? [...o.tasks] : null,
    weights: o.weights ? { ...o.weights } : null,
    prompts: o.prompts ? [...o.prompts] : null,
    negatives: int('negatives', pick(o.negatives, D.data.negatives), 0),
    maxHistory: int('maxHistory', pick(o.maxHistory, D.data.maxHistory), 1),
    maxSourceLength: int('maxSourceLength', pick(o.maxSourceLength, D.data.maxSourceLength), 8),
    tokensPerBatch: int('tokensPerBatch', pick(o.tokensPerBatch, D.data.tokensPerBatch), 16),
    maxBatch: int('maxBatch', pick(o.maxBatch, D.data.maxBatch), 1),
    leakFree: o.leakFree !== false,
    ratingNoise: o.ratingNoise !== false,
    seed: int('seed', pick(o.seed, D.data.seed), 0),
  };

  const v = o.validate;
  if (v && !(Number.isInteger(v.every) && v.every > 0)) throw new InputError(`validate.every must be a positive integer, got ${v.every}`, { field: 'validate.every' });
  const epochs = pick(o.epochs, D.loop.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) throw new InputError(`epochs must be a positive integer, got ${epochs}`, { field: 'epochs' });
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps >= 1)) throw new InputError(`steps must be a positive integer, got ${o.steps}`, { field: 'steps' });
  const loop = {
    epochs,
    steps: o.steps ?? null,
    batchesPerStep: int('batchesPerStep', pick(o.batchesPerStep, D.loop.batchesPerStep), 1),
    seed: int('seed', pick(o.seed, D.loop.seed), 0),
    workers: int('workers', pick(o.workers, D.loop.workers), 1),
    checkpointEvery: int('checkpointEvery', pick(o.checkpointEvery, D.loop.checkpointEvery), 0),
    validate: v ? { every: v.every, users: int('validate.users', v.users ?? P5_VALIDATE_DEFAULTS.users, 1), patience: int('validate.patience', v.patience ?? P5_VALIDATE_DEFAULTS.patience, 0) } : null,
    calibrateRatings: o.calibrateRatings !== false,
  };

  // The model config, with a stand-in vocabulary size (the tokenizer's is set later): every other field is checked now.
  if (!model.init) {
    try {
      if (typeof model.config === 'object') resolveT5Config({ preset: 'small', ...model.config, vocab_size: 8003 });
      else resolveT5Config(model.config);
    } catch (e) {
      if (e instanceof InputError && !e.facts.file) throw new InputError(e.message, { ...e.facts, field: `config.${e.facts.field ?? ''}`.replace(/\.$/, '') });
      throw e;
    }
  }
  return deepFreeze({ model, optimizer, data, loop }) as ResolvedP5Config;
}

/** recipe.json: the resolved config, as JSON (the PyTorch trainer reads its defaults from it). */
export function recipeJson(cfg: ResolvedP5Config): Record<string, unknown> {
  return { format: RECIPE_FORMAT, version: 1, model: cfg.model, optimizer: cfg.optimizer, data: cfg.data, loop: cfg.loop };
}
