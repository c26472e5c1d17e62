/**
 * P5's training task for the generic loop (src/train): a T5 over the packed
 * corpus, one unit = one length-bucketed batch. Usable in-process or as a
 * worker task module (the corpus lives on SharedArrayBuffers, so workers
 * share it).
 */
import { resolveT5Config, type T5ConfigInput } from '../models/t5/config.js';
import { loadT5, saveT5 } from '../models/t5/checkpoint.js';
import { collateSeq2Seq, type Seq2SeqBatch, type Seq2SeqExample } from '../models/t5/collate.js';
import { T5Model } from '../models/t5/model.js';
import { T5Tokenizer } from '../tokenizer/tokenizer.js';
import { writeFileAtomic } from '../util/atomic.js';
import { join } from 'node:path';
import type { StepContext, TaskEnv, TrainTask } from '../train/task.js';
import { corpusExamples, type PackedCorpus } from './corpus.js';

export const P5_TASK_MODULE = import.meta.url;

export interface P5TaskOptions {
  corpus: PackedCorpus;
  /** tokenizer.json text, written with every model export. */
  tokenizerJson: string;
  /** A fresh model from this config (vocab_size already set to the tokenizer's)... */
  config?: T5ConfigInput;
  /** ...or start from a T5 folder (ours, or HF's t5-small with its own tokenizer). */
  init?: string;
  seed?: number;
  /** Extra files written next to each model export (P5 metadata). */
  extraFiles?: Record<string, string>;
}

export interface P5TrainTask extends TrainTask<Seq2SeqBatch> {
  readonly model: T5Model;
}

export function p5Task(model: T5Model, corpus: PackedCorpus, tokenizer: T5Tokenizer, extraFiles: Record<string, string> = {}): P5TrainTask {
  return {
    model,
    params: model.params,
    size: corpus.batches,
    batch: (indices) => collateSeq2Seq(corpusExamples(corpus, indices) as unknown as Seq2SeqExample[], model.config),
    loss: (batch: Seq2SeqBatch, ctx: StepContext) => model.loss(batch, { training: true, seed: ctx.seed }),
    exportModel: (dir: string) => {
      saveT5(dir, model, { tokenizer });
      for (const [name, text] of Object.entries(extraFiles)) writeFileAtomic(join(dir, name), text);
    },
    dispose: () => model.dispose(),
  };
}

export async function createTask(o: P5TaskOptions, _env?: TaskEnv): Promise<P5TrainTask> {
  const tokenizer = T5Tokenizer.fromJSON(o.tokenizerJson);
  let model: T5Model;
  if (o.init) model = loadT5(o.init, { seed: o.seed }).model;
  else model = T5Model.create(resolveT5Config(o.config ?? 'small'), { seed: o.seed ?? 0 });
  return p5Task(model, o.corpus, tokenizer, o.extraFiles);
}
