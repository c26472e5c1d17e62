/**
 * A `TrainTask` for T5 on tokenized seq2seq examples (P5's instances once
 * their prompts are tokenized), in-process or as a worker task module:
 *
 *   train({ task: t5Task(model, examples), batchSize: 32, ... })
 *   train({ taskModule: { module: T5_TASK_MODULE, options: { config: 'small', examplesFile } }, workers: 2, ... })
 *
 * The loss is the mean token cross-entropy, weighted by the number of target
 * tokens, so micro-batches and workers average exactly like one big batch.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { resolveT5Config, type T5ConfigInput } from '../models/t5/config.js';
import { loadT5, saveT5 } from '../models/t5/checkpoint.js';
import { collateSeq2Seq, type Seq2SeqBatch, type Seq2SeqExample } from '../models/t5/collate.js';
import { T5Model } from '../models/t5/model.js';
import { T5Tokenizer } from '../tokenizer/tokenizer.js';
import type { StepContext, TaskEnv, TrainTask } from './task.js';

/** This module's URL, for `taskModule.module`. */
export const T5_TASK_MODULE = import.meta.url;

export interface T5TaskOptions {
  /** A fresh model from a config (preset name, config.json path or fields)... */
  config?: T5ConfigInput;
  /** ...or start from a T5 folder (ours or a HF download such as t5-small). */
  init?: string;
  /** Initialisation seed; default 0. */
  seed?: number;
  /** Override dropout (e.g. 0 for exact comparisons). */
  dropoutRate?: number;
  examples?: Seq2SeqExample[];
  /** JSONL, one `{"inputIds": [...], "wholeWordIds": [...], "labels": [...]}` per line. */
  examplesFile?: string;
  /** Pad every batch to these lengths (default: the longest in the batch). */
  srcLen?: number;
  tgtLen?: number;
  /** tokenizer.json written with model exports. */
  tokenizer?: string;
}

export interface T5TrainTask extends TrainTask<Seq2SeqBatch> {
  readonly model: T5Model;
}

/** A task over an existing model. */
export function t5Task(
  model: T5Model,
  examples: readonly Seq2SeqExample[],
  opts: { srcLen?: number; tgtLen?: number; tokenizer?: T5Tokenizer | null } = {},
): T5TrainTask {
  return {
    model,
    params: model.params,
    size: examples.length,
    batch: (indices) => collateSeq2Seq(indices.map((i) => examples[i]), model.config, { srcLen: opts.srcLen, tgtLen: opts.tgtLen }),
    loss: (batch: Seq2SeqBatch, ctx: StepContext) => model.loss(batch, { training: true, seed: ctx.seed }),
    exportModel: (dir: string) => saveT5(dir, model, { tokenizer: opts.tokenizer ?? null }),
    dispose: () => model.dispose(),
  };
}

/** Task module factory (`createTask`); `initEngine()` must have run (the worker does it). */
export async function createTask(options: T5TaskOptions, _env?: TaskEnv): Promise<T5TrainTask> {
  const o = options ?? {};
  const examples = o.examples ?? (o.examplesFile ? readExamples(o.examplesFile) : null);
  if (!examples) throw new InputError('T5 task: give examples or examplesFile');
  let model: T5Model;
  let tokenizer: T5Tokenizer | null = o.tokenizer ? T5Tokenizer.load(o.tokenizer) : null;
  const overrides = o.dropoutRate !== undefined ? { dropout_rate: o.dropoutRate } : undefined;
  if (o.init) {
    const loaded = loadT5(o.init, { seed: o.seed, overrides });
    model = loaded.model;
    tokenizer = tokenizer ?? loaded.tokenizer;
  } else {
    const config = resolveT5Config(o.config ?? 'small');
    if (overrides) config.dropout_rate = overrides.dropout_rate;
    model = T5Model.create(config, { seed: o.seed ?? 0 });
  }
  return t5Task(model, examples, { srcLen: o.srcLen, tgtLen: o.tgtLen, tokenizer });
}

export function readExamples(path: string): Seq2SeqExample[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new InputError('examples file not found', { file: path });
  }
  const out: Seq2SeqExample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    let e: Seq2SeqExample;
    try {
      e = JSON.parse(lines[i]);
    } catch (err) {
      throw new InputError(`not JSON (${(err as Error).message})`, { file: path, line: i + 1 });
    }
    if (!Array.isArray(e.inputIds) || !Array.isArray(e.labels)) throw new InputError('expected {"inputIds": [...], "labels": [...]}', { file: path, line: i + 1 });
    out.push(e);
  }
  return out;
}
