/**
 * One evaluation as the run record `p5rec eval` keeps beside the model
 * (MODEL/evals/<task>-<split>[-p<prompt>][-<rating mode>][-u<n>].json), which
 * `p5rec report` gathers. The CLI and runPipeline both build it here, so a
 * pipeline's files are byte-for-byte what the commands write.
 */
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { InputError } from '../errors.js';
import type { ModelCard } from '../recommend/card.js';
import type { Recommender, Task } from '../recommend/recommender.js';
import type { P5Recommender } from '../p5/recommender.js';
import { evaluateText, type TextTask } from '../p5/evaluate-text.js';
import { writeFileAtomic } from '../util/atomic.js';
import { evaluate, type EvalSplit } from './evaluate.js';
import { isBeauty } from './published.js';

/** The ranking/rating tasks every model has, and P5's two text tasks. */
export type RunTask = Task | TextTask;
export type RatingMode = 'greedy' | 'expected' | 'calibrated';

/** Beam search keeps beams × vocabulary scores per step; far beyond this the WASM heap runs out. P5 uses 20. */
export const MAX_BEAMS = 256;

export interface RunOptions {
  task: RunTask;
  split?: EvalSplit;
  /** The first n users (rows for the text tasks); also part of the file name. */
  users?: number;
  /** P5: the template to ask with. */
  prompt?: string;
  /** P5: beams for item generation. */
  beams?: number;
  /** P5: which star a rating reports; part of the file name when given. */
  ratingMode?: RatingMode;
  quiet?: boolean;
}

/** The run file's name in MODEL/evals/ (`prompt` is the one asked with, given or the model's default). */
export function runFileName(task: string, split: string, o: { prompt?: string; ratingMode?: string; users?: number }): string {
  return `${task}-${split}${o.prompt ? `-p${o.prompt}` : ''}${o.ratingMode ? `-${o.ratingMode}` : ''}${o.users ? `-u${o.users}` : ''}.json`;
}

/** Refuse options a model cannot take, before any work, by field; `prompted`: the model kind has prompts (its factory says so). */
export function checkRunOptions(prompted: boolean, kind: string, modelDir: string, o: RunOptions): void {
  const textTask = o.task === 'explanation' || o.task === 'review';
  if (!['rating', 'direct', 'sequential', 'explanation', 'review'].includes(o.task)) throw new InputError(`must be one of rating, direct, sequential, explanation, review; got '${o.task}'`, { field: 'task' });
  if (o.split !== undefined && o.split !== 'test' && o.split !== 'valid') throw new InputError(`must be test or valid, got '${String(o.split)}'`, { field: 'split' });
  if (o.beams !== undefined && !(Number.isInteger(o.beams) && o.beams >= 1 && o.beams <= MAX_BEAMS)) throw new InputError(`must be an integer in [1, ${MAX_BEAMS}], got '${o.beams}'`, { field: 'beams' });
  if (o.ratingMode !== undefined && !['greedy', 'expected', 'calibrated'].includes(o.ratingMode)) throw new InputError(`must be greedy, expected or calibrated, got '${String(o.ratingMode)}'`, { field: 'ratingMode' });
  if (!prompted && textTask) throw new InputError(`the ${o.task} task is for prompted (P5) models; '${modelDir}' is ${kind}`, { field: 'task' });
  if (!prompted && (o.prompt || o.beams || o.ratingMode)) throw new InputError(`prompt, beams and rating mode are for prompted (P5) models; '${modelDir}' is ${kind}`, { field: o.prompt ? 'prompt' : o.beams ? 'beams' : 'ratingMode' });
}

/**
 * Evaluate a loaded model and write its run record to MODEL/evals/. A P5
 * model's decoding settings are changed for this evaluation (prompt, beams,
 * rating mode), so a caller that reuses one model restores them between runs.
 */
export async function evaluateToRunFile(
  ds: Dataset,
  datasetDir: string,
  modelDir: string,
  loaded: { rec: Recommender; card: ModelCard },
  o: RunOptions,
): Promise<{ run: Record<string, unknown> & { task: string; split: string; metrics: Record<string, number>; count: number }; file: string }> {
  checkRunOptions(Boolean(loaded.rec.prompted), loaded.card.kind, modelDir, o);
  const { rec, card } = loaded;
  const split = o.split ?? 'test';
  const textTask = o.task === 'explanation' || o.task === 'review';
  let result: (Record<string, unknown> & { task: string; split: string; metrics: Record<string, number>; count: number }) | undefined;
  let prompt: string | undefined;
  const prompted = rec.prompted;
  if (prompted) {
    if (o.beams !== undefined) prompted.settings.beams = o.beams;
    if (o.ratingMode) prompted.settings.ratingMode = o.ratingMode;
    if (textTask) {
      // The text tasks are P5's own (checked above): they generate with its tokenizer and beams.
      const p5 = rec as P5Recommender;
      result = { ...(await evaluateText(p5, p5.collection, o.task as TextTask, { split, prompt: o.prompt, maxRows: o.users, quiet: o.quiet })) };
      prompt = result.prompt as string;
    } else {
      if (o.prompt) prompted.usePrompt(o.task as Task, o.prompt);
      prompt = prompted.promptFor(o.task as Task);
    }
  }
  if (!textTask) result = { ...(await evaluate(ds, rec, o.task as Task, { split, maxUsers: o.users, quiet: o.quiet })) };
  const r = result!;
  const tpl = prompt && prompted ? prompted.promptTemplates.find((t) => t.id === prompt) : undefined;
  // P5 ratings: which star the row reports (greedy / expected / calibrated), in the label and the file name.
  const ratingMode = prompted && o.task === 'rating' ? prompted.settings.ratingMode : undefined;
  const promptInfo: { prompt?: string; seen?: boolean; label?: string; ratingMode?: string } = prompt ? { prompt, seen: tpl?.seen ?? true, label: `P5 (${prompt}${tpl && !tpl.seen ? ', unseen' : ''}${ratingMode && ratingMode !== 'greedy' ? `, ${ratingMode} star` : ''})`, ...(ratingMode ? { ratingMode } : {}) } : {};
  const run = { model: modelDir, kind: card.kind, ...promptInfo, dataset: ds.manifest.name, beauty: isBeauty(ds.numUsers, ds.numItems), datasetDir, itemIndex: ds.manifest.options.itemIndex, seed: ds.manifest.options.seed, fit: card.fit, config: card.config, ...r };
  const file = join(modelDir, 'evals', runFileName(r.task, r.split, { prompt, ratingMode: o.ratingMode && ratingMode, users: o.users }));
  writeFileAtomic(file, `${JSON.stringify(run, null, 2)}\n`);
  return { run, file };
}
