/**
 * Explanation generation and review summarization, evaluated as the P5 paper
 * does: generate for every held-out row with a template, score BLEU and
 * ROUGE (×100) against the user's own sentence. Also the trivial reference
 * point the issue asks P5 to beat: "always answer the most frequent training
 * answer".
 */
import type { Dataset } from '../data/dataset.js';
import { TRAIN } from '../data/splits.js';
import { InputError } from '../errors.js';
import { bleu2, bleu4, rouge } from '../eval/metrics.js';
import { runEnv, type RunEnv } from '../eval/run-env.js';
import { evaluationInstances } from '../prompts/eval-instances.js';
import type { EvalSplit } from '../prompts/stream.js';
import type { PromptCollection } from '../prompts/templates.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import type { P5Recommender } from './recommender.js';

export type TextTask = 'explanation' | 'review';

export interface TextEvalResult {
  task: TextTask;
  split: EvalSplit;
  prompt: string;
  seen: boolean;
  protocol: string;
  metrics: Record<string, number>;
  /** Bootstrap standard error of each metric over rows (same keys). */
  stderr: Record<string, number>;
  count: number;
  seconds: number;
  env: RunEnv;
  samples: { prompt: string; output: string; reference: string }[];
}

/** BLEU-4 (explanation) or BLEU-2 (review) and ROUGE-1/2/L, ×100. */
export function textMetrics(task: TextTask, outputs: readonly string[], refs: readonly string[]): Record<string, number> {
  const r = rouge(outputs, refs);
  const b: Record<string, number> = task === 'explanation' ? { 'BLEU-4': bleu4(outputs, refs) } : { 'BLEU-2': bleu2(outputs, refs) };
  return { ...b, 'ROUGE-1': r['ROUGE-1'], 'ROUGE-2': r['ROUGE-2'], 'ROUGE-L': r['ROUGE-L'] };
}

/**
 * Bootstrap standard errors of {@link textMetrics}: BLEU is a corpus statistic
 * with no per-row value, so rows are resampled with replacement `resamples`
 * times (seeded, so reruns agree) and the spread of each metric is reported.
 */
export function textStandardErrors(task: TextTask, outputs: readonly string[], refs: readonly string[], resamples = 100): Record<string, number> {
  const n = outputs.length;
  if (n < 2) return {};
  const rng = new Rng(`bootstrap:${task}:${n}`);
  const sums: Record<string, number> = {};
  const sqs: Record<string, number> = {};
  for (let b = 0; b < resamples; b++) {
    const idx = Array.from({ length: n }, () => rng.int(n));
    const m = textMetrics(task, idx.map((i) => outputs[i]), idx.map((i) => refs[i]));
    for (const [k, v] of Object.entries(m)) {
      sums[k] = (sums[k] ?? 0) + v;
      sqs[k] = (sqs[k] ?? 0) + v * v;
    }
  }
  const out: Record<string, number> = {};
  for (const k of Object.keys(sums)) {
    const mean = sums[k] / resamples;
    out[k] = Math.sqrt(Math.max(0, (sqs[k] - resamples * mean * mean) / (resamples - 1)));
  }
  return out;
}

export async function evaluateText(
  p5: P5Recommender,
  collection: PromptCollection,
  task: TextTask,
  opts: { split?: EvalSplit; prompt?: string; maxRows?: number; quiet?: boolean } = {},
): Promise<TextEvalResult> {
  const t0 = Date.now();
  const split = opts.split ?? 'test';
  const id = opts.prompt ?? (task === 'explanation' ? '3-12' : '4-1');
  const t = collection.templates.find((x) => x.id === id);
  if (!t) throw new InputError(`unknown prompt '${id}'`, { field: 'prompt' });
  if (t.task !== task || !['explanation', 'summary'].includes(t.target)) throw new InputError(`prompt ${id} is not a ${task} generation prompt`, { field: 'prompt' });
  const stream = evaluationInstances(p5.ds, [t], split, { tasks: [task], templates: 'all' });
  if (stream.skipped.length) throw new InputError(`prompt ${id} cannot be filled from this dataset: ${stream.skipped[0].reason}`, { field: 'prompt' });
  const rows = [...stream].slice(0, opts.maxRows ?? Infinity);
  if (!rows.length) throw new InputError(`no ${split} rows for prompt ${id}`, { file: p5.ds.dir });
  const bar = new Progress({ label: `eval ${task}/${split} (${id})`, total: rows.length, unit: 'rows', quiet: opts.quiet });
  const outputs: string[] = [];
  const B = p5.settings.batchSize;
  for (let s = 0; s < rows.length; s += B) {
    const chunk = rows.slice(s, s + B);
    outputs.push(...(await p5.generate(chunk.map((r) => r.source), task === 'explanation' ? { minLength: p5.settings.textMinLength } : {})));
    bar.tick(chunk.length);
  }
  bar.finish();
  const refs = rows.map((r) => r.target);
  return {
    task, split, prompt: id, seen: t.seen,
    protocol: `${split} rows of the random split, prompt ${id} (${t.seen ? 'seen' : 'unseen'}), beam ${p5.settings.textBeams}${task === 'explanation' ? `, min length ${p5.settings.textMinLength}` : ''}`,
    metrics: textMetrics(task, outputs, refs),
    stderr: textStandardErrors(task, outputs, refs),
    count: rows.length,
    seconds: (Date.now() - t0) / 1000,
    env: runEnv(),
    samples: rows.slice(0, 5).map((r, i) => ({ prompt: r.source, output: outputs[i], reference: r.target })),
  };
}

/** The trivial predictor: the most frequent answer among the training rows (the same answer for every row). */
export function mostFrequentAnswer(ds: Dataset, task: TextTask): string {
  const x = ds.interactions;
  const col = task === 'explanation' ? x.explanation : x.summary;
  const counts = new Map<string, number>();
  for (const k of ds.ratingRows(TRAIN)) {
    const v = col[k];
    if (v && v.trim()) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  let best = '';
  let n = 0;
  for (const [v, c] of counts) if (c > n || (c === n && v < best)) [best, n] = [v, c];
  return best;
}

/** Metrics of the most-frequent-answer predictor on the same rows a prompt is evaluated on. */
export function evaluateMostFrequent(ds: Dataset, collection: PromptCollection, task: TextTask, opts: { split?: EvalSplit; prompt?: string } = {}): { answer: string; metrics: Record<string, number>; stderr: Record<string, number>; count: number } {
  const id = opts.prompt ?? (task === 'explanation' ? '3-12' : '4-1');
  const t = collection.templates.find((x) => x.id === id);
  if (!t) throw new InputError(`unknown prompt '${id}'`, { field: 'prompt' });
  const refs = [...evaluationInstances(ds, [t], opts.split ?? 'test', { tasks: [task], templates: 'all' })].map((r) => r.target);
  const answer = mostFrequentAnswer(ds, task);
  const outputs = refs.map(() => answer);
  return { answer, metrics: textMetrics(task, outputs, refs), stderr: textStandardErrors(task, outputs, refs), count: refs.length };
}
