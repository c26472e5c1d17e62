/**
 * P5 instances (prompt → answer pairs) generated as a stream from a dataset
 * and a template collection: what a stream yields and the options it takes,
 * shared by the training stream (./training-instances.ts) and the evaluation
 * one (./eval-instances.ts).
 *
 * Training instances read only training data: the leave-one-out train prefix
 * (sequential windows, direct positives) and the random split's train rows
 * (rating, explanation, review). Evaluation instances ask about the valid or
 * test item / rows, one stream per template, with the stored negatives.
 */
import { InputError } from '../errors.js';
import { PROMPT_TASKS, type PromptTask, type PromptTemplate, type SkippedTemplate, type TemplateSelection } from './templates.js';
import type { IdView } from './ids.js';
import { DEFAULT_SEED } from '../defaults.js';

/** One prompt and its answer. `user` / `item` are dataset tokens; `item` is the item the prompt is about (the asked item for yes/no prompts, the positive otherwise). */
export interface PromptInstance {
  source: string;
  target: string;
  task: PromptTask;
  template: string;
  user: string;
  item: string;
  /** Candidate item tokens in prompt order (candidate-list prompts only). */
  candidates?: string[];
}

export type HistorySeparator = 'random' | ' , ' | ' -> ';

export interface InstanceOptions {
  /** Default 2022. */
  seed?: number;
  /** Families to generate (default: all). */
  tasks?: readonly PromptTask[];
  /** Which templates: P5's seen ones (training default), unseen, or all (evaluation default). */
  templates?: TemplateSelection;
  /** Most recent items shown in a purchase history (default 20). */
  maxHistory?: number;
  /** How histories are joined: P5 picks ' , ' or ' -> ' at random per instance (default). */
  historySeparator?: HistorySeparator;
  /** How ids are written (default: P5's plain text; see ./ids.ts). */
  ids?: IdView;
}

export interface TrainingOptions extends InstanceOptions {
  /** Different epochs, different shuffles and samples (default 0). */
  epoch?: number;
  /** Instances per unit of data, per family (default 1; 0 turns a family off; 2.5 = every unit twice, half of them thrice). */
  weights?: Partial<Record<PromptTask, number>>;
  /** Sampled negatives in training candidate lists (default 99, as P5; the positive makes 100). */
  negatives?: number;
  /** P5's training-time Gaussian noise on star targets (`4` → `3.9`), default true. */
  ratingNoise?: boolean;
  /**
   * Row families (rating, explanation, review, zeroshot) train only on rows
   * that are also in the leave-one-out train prefix, so no training prompt
   * names a user's held-out next item (default true). P5's own code trains
   * them on the whole random-split train part, which contains most users'
   * sequential test items; `false` reproduces that.
   */
  leakFree?: boolean;
  /** Train only these template ids (default: every usable one of the selection). */
  only?: readonly string[];
}

export type EvalSplit = 'valid' | 'test';

export interface InstanceStream extends Iterable<PromptInstance> {
  readonly split: 'train' | EvalSplit;
  /** Instances the stream yields. */
  readonly total: number;
  readonly perTask: Partial<Record<PromptTask, number>>;
  /** Evaluation only: instances per template (training draws a template per instance). */
  readonly perTemplate?: Record<string, number>;
  /** Templates in use (selection, tasks and dataset fields allowing). */
  readonly templates: PromptTemplate[];
  /** Templates of the selection the dataset cannot feed, with the reason. */
  readonly skipped: SkippedTemplate[];
}

export const DEFAULT_PROMPT_SEED = DEFAULT_SEED;

/** Throws InputError (naming the field) on an option out of range. */
export function checkOptions(opts: InstanceOptions & TrainingOptions): void {
  const int = (name: string, v: number | undefined, min: number): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new InputError(`${name} must be an integer >= ${min}, got ${v}`, { field: name });
  };
  int('seed', opts.seed, 0);
  int('epoch', opts.epoch, 0);
  int('maxHistory', opts.maxHistory, 1);
  int('negatives', opts.negatives, 0);
  for (const [task, w] of Object.entries(opts.weights ?? {})) {
    if (!PROMPT_TASKS.includes(task as PromptTask)) throw new InputError(`weights: unknown task '${task}' (tasks: ${PROMPT_TASKS.join(', ')})`, { field: 'weights' });
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new InputError(`weights: '${task}' must be a number >= 0, got ${w}`, { field: 'weights' });
  }
  if (opts.historySeparator !== undefined && !['random', ' , ', ' -> '].includes(opts.historySeparator)) {
    throw new InputError(`historySeparator must be 'random', ' , ' or ' -> '`, { field: 'historySeparator' });
  }
}
