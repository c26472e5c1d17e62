/**
 * P5's training corpus, tokenized and packed: several epochs of prompt
 * instances (each epoch its own templates, negatives and rating noise), in
 * shared typed arrays so data-parallel workers read them without copies,
 * grouped into length-bucketed batches (examples of similar source length
 * together, at most `tokensPerBatch` padded source tokens each) that the
 * trainer shuffles. Bucketing matters: one 100-candidate prompt (~300 tokens)
 * in a batch of 20-token rating prompts would pad the whole batch to 300.
 */
import type { Dataset } from '../data/dataset.js';
import { InputError } from '../errors.js';
import { trainingInstances } from '../prompts/training-instances.js';
import type { TrainingOptions } from '../prompts/stream.js';
import type { PromptCollection, PromptTask } from '../prompts/templates.js';
import type { T5Tokenizer } from '../tokenizer/tokenizer.js';
import { throwIfStopped } from '../train/stop.js';
import { Progress } from '../util/progress.js';

export interface CorpusOptions extends Omit<TrainingOptions, 'epoch'> {
  /** Data epochs to generate (default 1). */
  epochs?: number;
  /** First data epoch (default 0). */
  firstEpoch?: number;
  /** Clip sources to this many tokens (default 512, T5's input length). */
  maxSourceLength?: number;
  /** Clip targets (default 64). */
  maxTargetLength?: number;
  /** Padded source tokens per batch (default 4096). */
  tokensPerBatch?: number;
  /** Examples per batch at most (default 64). */
  maxBatch?: number;
  /** Targets that are one id token lose their `</s>` (T5Tokenizer.bareIdAnswer; default false). */
  bareIdAnswers?: boolean;
  quiet?: boolean;
  /** Checked after every chunk of prompts: an abort ends the build with an InterruptedError (a chunk is well under a second). */
  signal?: AbortSignal;
}

/** Shared, structured-cloneable corpus (all arrays on SharedArrayBuffers). */
export interface PackedCorpus {
  examples: number;
  /** Source ids, all examples back to back; `srcOff[i]..srcOff[i+1]`. */
  src: Int32Array;
  ww: Int32Array;
  srcOff: Int32Array;
  tgt: Int32Array;
  tgtOff: Int32Array;
  /** Example indices grouped by batch: batch b = `order[batchOff[b]..batchOff[b+1]]`. */
  order: Int32Array;
  batchOff: Int32Array;
  batches: number;
  sourceTokens: number;
  targetTokens: number;
  perTask: Partial<Record<PromptTask, number>>;
  skipped: { id: string; reason: string }[];
  /** Ids of the templates the corpus was drawn from. */
  templates: string[];
}

class Growable {
  data: Int32Array;
  length = 0;
  constructor(cap = 1 << 16) {
    this.data = new Int32Array(cap);
  }
  push(values: readonly number[], max: number): void {
    const n = Math.min(values.length, max);
    if (this.length + n > this.data.length) {
      const next = new Int32Array(Math.max(this.data.length * 2, this.length + n));
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    for (let i = 0; i < n; i++) this.data[this.length + i] = values[i];
    this.length += n;
  }
  shared(): Int32Array {
    const out = new Int32Array(new SharedArrayBuffer(Math.max(4, this.length * 4)), 0, this.length);
    out.set(this.data.subarray(0, this.length));
    return out;
  }
}

/** Keep `</s>` last when a sequence is clipped. */
function clip(ids: number[], max: number, eos: number): number[] {
  if (ids.length <= max) return ids;
  const out = ids.slice(0, max);
  out[max - 1] = eos;
  return out;
}

export async function buildCorpus(ds: Dataset, collection: PromptCollection, tok: T5Tokenizer, opts: CorpusOptions = {}): Promise<PackedCorpus> {
  const epochs = opts.epochs ?? 1;
  const first = opts.firstEpoch ?? 0;
  const maxSrc = opts.maxSourceLength ?? 512;
  const maxTgt = opts.maxTargetLength ?? 64;
  const budget = opts.tokensPerBatch ?? 4096;
  const maxBatch = opts.maxBatch ?? 64;
  if (!Number.isInteger(epochs) || epochs < 1) throw new InputError(`epochs must be a positive integer, got ${epochs}`, { field: 'epochs' });
  const src = new Growable();
  const ww = new Growable();
  const tgt = new Growable();
  const srcOff: number[] = [0];
  const tgtOff: number[] = [0];
  const perTask: Partial<Record<PromptTask, number>> = {};
  const order: number[] = [];
  const batchOff: number[] = [0];
  let skipped: { id: string; reason: string }[] = [];
  const used = new Set<string>();
  const streams = Array.from({ length: epochs }, (_, e) => trainingInstances(ds, collection, { ...opts, epoch: first + e }));
  const total = streams.reduce((a, s) => a + s.total, 0);
  const bar = new Progress({ label: 'tokenize prompts', total, unit: 'prompts', quiet: opts.quiet });
  for (const stream of streams) {
    skipped = stream.skipped.map((s) => ({ id: s.id, reason: s.reason }));
    for (const t of stream.templates) if (stream.perTask[t.task]) used.add(t.id);
    const epochStart = srcOff.length - 1;
    let chunk: { source: string; target: string; task: PromptTask }[] = [];
    const flush = async (): Promise<void> => {
      if (!chunk.length) return;
      const s = await tok.encodeBatch(chunk.map((c) => c.source));
      const t = await tok.encodeBatch(chunk.map((c) => c.target));
      for (let i = 0; i < chunk.length; i++) {
        const ids = clip(s[i].ids, maxSrc, tok.eosId);
        src.push(ids, ids.length);
        ww.push(s[i].wholeWordIds, ids.length);
        srcOff.push(src.length);
        const l = clip(opts.bareIdAnswers ? [...tok.bareIdAnswer(t[i].ids)] : t[i].ids, maxTgt, tok.eosId);
        tgt.push(l, l.length);
        tgtOff.push(tgt.length);
        perTask[chunk[i].task] = (perTask[chunk[i].task] ?? 0) + 1;
      }
      bar.tick(chunk.length);
      chunk = [];
      throwIfStopped(opts.signal, 'while tokenizing the training prompts');
    };
    for (const inst of stream) {
      chunk.push({ source: inst.source, target: inst.target, task: inst.task });
      if (chunk.length >= 2048) await flush();
    }
    await flush();
    // Length buckets within this epoch: sort by source length (stable on index), cut greedily.
    const ids = Array.from({ length: srcOff.length - 1 - epochStart }, (_, i) => epochStart + i);
    const len = (i: number): number => srcOff[i + 1] - srcOff[i];
    ids.sort((a, b) => len(a) - len(b) || a - b);
    let count = 0;
    let longest = 0;
    for (const i of ids) {
      const l = len(i);
      if (count > 0 && (count >= maxBatch || (count + 1) * Math.max(longest, l) > budget)) {
        batchOff.push(order.length);
        count = 0;
        longest = 0;
      }
      order.push(i);
      count++;
      longest = Math.max(longest, l);
    }
    if (count > 0) batchOff.push(order.length);
  }
  bar.finish();
  const shared = (a: number[]): Int32Array => {
    const g = new Growable(Math.max(1, a.length));
    g.push(a, a.length);
    return g.shared();
  };
  return {
    examples: srcOff.length - 1,
    src: src.shared(),
    ww: ww.shared(),
    srcOff: shared(srcOff),
    tgt: tgt.shared(),
    tgtOff: shared(tgtOff),
    order: shared(order),
    batchOff: shared(batchOff),
    batches: batchOff.length - 1,
    sourceTokens: src.length,
    targetTokens: tgt.length,
    perTask,
    skipped,
    templates: [...used],
  };
}

/** The examples of some batches, as `collateSeq2Seq` input. */
export function corpusExamples(c: PackedCorpus, batches: readonly number[]): { inputIds: Int32Array; wholeWordIds: Int32Array; labels: Int32Array }[] {
  const out: { inputIds: Int32Array; wholeWordIds: Int32Array; labels: Int32Array }[] = [];
  for (const b of batches) {
    for (let j = c.batchOff[b]; j < c.batchOff[b + 1]; j++) {
      const i = c.order[j];
      out.push({
        inputIds: c.src.subarray(c.srcOff[i], c.srcOff[i + 1]),
        wholeWordIds: c.ww.subarray(c.srcOff[i], c.srcOff[i + 1]),
        labels: c.tgt.subarray(c.tgtOff[i], c.tgtOff[i + 1]),
      });
    }
  }
  return out;
}
