import type { Dataset } from '../data/dataset.js';
import type { Tensor } from '../util/safetensors.js';

/** The evaluation tasks a recommender can be judged on. */
export const TASKS = ['rating', 'direct', 'sequential'] as const;
export type Task = (typeof TASKS)[number];

/**
 * Which split a model trained on. Rating models learn from the random 0.8
 * split, ranking models from the leave-one-out train prefix; evaluating a
 * model on the other protocol would leak test items, so eval refuses it.
 */
export type TrainSplit = 'rating' | 'sequential' | 'both';

/**
 * Optional capability of a model that is asked through natural-language
 * prompt templates (P5): which template each task uses and how answers are
 * decoded. Callers (the CLI, reports) use this, never the concrete class.
 */
export interface PromptedRecommender {
  /** The templates it can be asked with; `seen`: one of the templates training used. */
  readonly promptTemplates: readonly { id: string; task: string; seen: boolean }[];
  /** Ask `task` with template `id` from now on; refused (by field) when the model cannot answer it. */
  usePrompt(task: Task, id: string): void;
  promptFor(task: Task): string;
  /** Decoding: beams for item generation, and which star a rating reports. */
  readonly settings: { beams: number; ratingMode: 'greedy' | 'expected' | 'calibrated' };
}

/**
 * The one seam every model implements: baselines, P5 and LLM recommenders.
 * Indices are the dataset's 0-based user/item indices.
 */
export interface Recommender {
  readonly kind: string;
  readonly tasks: readonly Task[];
  readonly trainSplit: TrainSplit;
  /**
   * Scores (higher = better) for `candidates`, or for every item when
   * omitted. `history` is what the model may see: the user's items before
   * the target, in time order.
   */
  score(user: number, history: Int32Array, candidates?: Int32Array): Float32Array | Promise<Float32Array>;
  /** Optional batched `score` (models that gain from batching, e.g. P5's prompts); same results. */
  scoreMany?(requests: readonly { user: number; history: Int32Array; candidates?: Int32Array }[]): Promise<Float32Array[]>;
  /** Optional batched `predictRating`. */
  predictRatings?(pairs: readonly (readonly [number, number])[]): Promise<number[]>;
  /** Predicted star rating (rating task). */
  predictRating?(user: number, item: number): number | Promise<number>;
  /** Weights and config for `save`; loaded back by the factory's `load`. */
  state(): ModelState;
  /** Present on models asked through prompt templates (P5). */
  readonly prompted?: PromptedRecommender;
}

export interface ModelState {
  config: Record<string, unknown>;
  tensors: Record<string, Tensor>;
  /** Small JSON-able extras (e.g. popularity counts kept as tensors instead). */
  extra?: Record<string, unknown>;
  /** The model folder, when the store loads one: a factory with `ownFolder` reads its own files there. */
  dir?: string;
}

export interface FitContext {
  log: (msg: string) => void;
  quiet: boolean;
  seed: number;
  /** Folder for intermediate checkpoints; fit resumes from it when `resume` is set. */
  checkpointDir?: string;
  resume?: boolean;
  /** The model folder a factory with `ownFolder` writes during fit (the others leave saving to the store). */
  out?: string;
  /** ownFolder factories: replace a model already in `out`. */
  force?: boolean;
}

/** One hyper-parameter's allowed values: a number in [min, max] (an integer when `integer`), a boolean, or one of some strings. */
export type HyperSpec =
  | { readonly type: 'number'; readonly min: number; readonly max?: number; readonly integer?: boolean }
  | { readonly type: 'boolean' }
  | { readonly type: 'string'; readonly oneOf?: readonly string[] };

export type HyperSchema = Readonly<Record<string, HyperSpec>>;

/** The spec as `fit --help` writes it: `[1, 4096] integer`, `true|false`, `ce|bce`. */
export function describeHyper(spec: HyperSpec): string {
  if (spec.type === 'boolean') return 'true|false';
  if (spec.type === 'string') return spec.oneOf ? spec.oneOf.join('|') : 'text';
  return `[${spec.min}, ${spec.max ?? '∞'}]${spec.integer ? ' integer' : ''}`;
}

/** How a model is built: defaults documented beside the model, fit and load. */
export interface RecommenderFactory<C extends Record<string, unknown> = Record<string, unknown>> {
  readonly kind: string;
  readonly description: string;
  readonly tasks: readonly Task[];
  readonly defaultSplit: TrainSplit;
  /** Hyper-parameters with their defaults; CLI flags --name value override them. */
  readonly defaults: C;
  /**
   * What each hyper-parameter may be: checked (by field) before every fit and
   * load, shown by `fit --help`. Relations between fields (e.g. SASRec's
   * heads dividing dim) stay in the model's own check.
   */
  readonly schema?: HyperSchema;
  fit(ds: Dataset, config: C, split: TrainSplit, ctx: FitContext): Promise<Recommender>;
  load(ds: Dataset, state: ModelState, split: TrainSplit): Recommender;
  /**
   * The model keeps its own folder format (P5: a Hugging Face T5 folder with
   * its tokenizer): fit writes the whole folder, model.json included, into
   * `ctx.out`, and load reads it from `state.dir`. The store then neither
   * saves `state()` nor reads weights.safetensors for it.
   */
  readonly ownFolder?: boolean;
  /** Runs on the tensor engine: `initEngine()` must be done before load (fit starts it when it is not). */
  readonly engine?: boolean;
  /** Asked through prompt templates (its recommenders have `prompted`): prompts, beams, the text tasks. */
  readonly prompted?: boolean;
}
