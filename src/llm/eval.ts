import type { Dataset } from '../data/dataset.js';
import { TEST, VALID } from '../data/splits.js';
import { InputError } from '../errors.js';
import { evaluate, type EvalResult, type EvalSplit } from '../eval/evaluate.js';
import { bleu4, rouge } from '../eval/metrics.js';
import { isBeauty } from '../eval/published.js';
import type { Run } from '../eval/report.js';
import { Progress } from '../util/progress.js';
import type { LLMClient, UsageReport } from './client.js';
import { loadPromptSet, PromptBuilder, type LlmTask, type PromptSet } from './prompts.js';
import { Asker, LlmRecommender, type PlannedJob, type PositiveAt, type RefinementReport } from './recommender.js';
import { refineText, TitleIndex } from './refine.js';
import { DEFAULT_SEED } from '../defaults.js';

export interface LlmEvalOptions {
  task: LlmTask;
  /** Default test. */
  split?: EvalSplit;
  /** Evaluate the first N eligible users (ranking) or the rows of users 0..N-1 (rating, text), as evaluate() does. */
  users?: number;
  /** Few-shot demonstrations (0 = zero-shot). Default 0. */
  shots?: number;
  /** Behaviour injection length. Default 10. */
  historyLength?: number;
  /** Ranked-list length asked for. Default 10 (direct), 20 (sequential). */
  topK?: number;
  /** Seeds candidate shuffles and demonstration draws. Default 2022. */
  seed?: number;
  positiveAt?: PositiveAt;
  sequentialMode?: 'generate' | 'candidates';
  /** Re-asks after an unusable answer. Default 2. */
  refineRetries?: number;
  /** Title-match Dice threshold. Default 0.6. */
  matchThreshold?: number;
  /** Default per task: rating 32, direct 128, sequential 640, explanation 96, review 48. */
  maxTokens?: number;
  /** Default 0. */
  temperature?: number;
  /** Default 100. */
  titleMaxChars?: number;
  /** Default 2000. */
  reviewMaxChars?: number;
  domain?: string;
  /** Users asked about at once. Default 4. */
  concurrency?: number;
  onProviderError?: 'fail' | 'miss';
  ratingScale?: { min: number; max: number };
  prompts?: PromptSet;
  quiet?: boolean;
  signal?: AbortSignal;
}

const MAX_TOKENS: Record<LlmTask, number> = { rating: 32, direct: 128, sequential: 640, explanation: 96, review: 48 };

export interface PositionBiasReport {
  positiveAt: PositiveAt;
  /** The same users with candidates shuffled (positive at a random place). */
  baseline: Record<string, number>;
  /** metric(positiveAt) / metric(random); null where the random run scored 0. */
  ratio: Record<string, number | null>;
  baselineRefinement: RefinementReport;
}

export interface LlmRunDetails {
  provider: string;
  model: string;
  shots: number;
  historyLength: number;
  topK?: number;
  positiveAt?: PositiveAt;
  sequentialMode?: 'generate' | 'candidates';
  seed: number;
  refinement: RefinementReport;
  usage: UsageReport;
  positionBias?: PositionBiasReport;
  /** Text tasks: a few predictions beside their references. */
  samples?: { prediction: string; reference: string }[];
  cache?: string;
}

/** A Run as `p5rec report` reads it, with the LLM's own facts under `llm`. */
export type LlmRun = Omit<Run, 'task'> & { task: LlmTask; datasetDir: string; seconds: number; llm: LlmRunDetails };

/**
 * The calls evaluate() will make, in its order (it walks users 0.. and keeps
 * those with a held-out item; rating walks the split's rows). Mirrors
 * evaluate(): a mismatch would only cost a recomputation, never a wrong score.
 */
export function planJobs(ds: Dataset, task: 'rating' | 'direct' | 'sequential', split: EvalSplit, maxUsers?: number): PlannedJob[] {
  const code = split === 'test' ? TEST : VALID;
  const jobs: PlannedJob[] = [];
  if (task === 'rating') {
    for (const k of ds.ratingRows(code)) {
      const u = ds.interactions.user[k];
      if (!maxUsers || u < maxUsers) jobs.push({ kind: 'rating', user: u, item: ds.interactions.item[k] });
    }
    return jobs;
  }
  for (let u = 0; u < ds.numUsers && (!maxUsers || jobs.length < maxUsers); u++) {
    const held = ds.sequenceSplit(u, code);
    if (!held.length) continue;
    const history = ds.historyBefore(u, code);
    if (task === 'direct') {
      const negs = ds.negatives[u];
      const cands = new Int32Array(negs.length + 1);
      cands[0] = held[0];
      cands.set(negs, 1);
      jobs.push({ kind: 'score', user: u, history, candidates: cands });
    } else jobs.push({ kind: 'score', user: u, history });
  }
  return jobs;
}

let titleIndexCache: WeakMap<Dataset, TitleIndex> = new WeakMap();

/** The catalogue's title index, built once per dataset object. */
export function titleIndexFor(ds: Dataset): TitleIndex {
  let idx = titleIndexCache.get(ds);
  if (!idx) {
    idx = new TitleIndex(ds.items.title.map((t, i) => t ?? `item ${ds.items.token[i]}`));
    titleIndexCache.set(ds, idx);
  }
  return idx;
}

/** For tests: forget cached title indices. */
export function resetTitleIndexCache(): void {
  titleIndexCache = new WeakMap();
}

/**
 * Evaluate an LLM as a recommender with the shared protocols: rating,
 * direct and sequential go through evaluate() (the same metrics as every
 * model); explanation and review are scored with BLEU-4 and ROUGE against the
 * dataset's explanation / summary fields. With `positiveAt` first or last,
 * the same users are also run with the candidates shuffled, and the ratio of
 * each metric is reported (position bias).
 */
export async function runLlmEval(ds: Dataset, client: LLMClient, o: LlmEvalOptions): Promise<LlmRun> {
  const t0 = Date.now();
  const task = o.task;
  const split = o.split ?? 'test';
  const shots = o.shots ?? 0;
  const seed = o.seed ?? DEFAULT_SEED;
  const positiveAt = o.positiveAt ?? 'random';
  const sequentialMode = o.sequentialMode ?? 'generate';
  const topK = o.topK ?? (task === 'sequential' ? 20 : 10);
  // Demonstrations come from other users: asking for more than exist would search for them forever.
  if (!(Number.isInteger(shots) && shots >= 0)) throw new InputError(`shots must be an integer >= 0, got ${shots}`, { field: 'shots' });
  if (shots > ds.numUsers - 1) throw new InputError(`shots ${shots} is more than the ${ds.numUsers - 1} other users who can give demonstrations`, { field: 'shots' });
  const prompts = o.prompts ?? loadPromptSet();
  const builder = new PromptBuilder(ds, prompts, { shots, historyLength: o.historyLength ?? 10, topK, seed, titleMaxChars: o.titleMaxChars ?? 100, reviewMaxChars: o.reviewMaxChars ?? 2000, domain: o.domain });
  const ask = { refineRetries: o.refineRetries ?? 2, maxTokens: o.maxTokens ?? MAX_TOKENS[task], temperature: o.temperature ?? 0, onProviderError: o.onProviderError ?? 'fail' } as const;
  const concurrency = o.concurrency ?? 4;
  const usesCandidates = task === 'direct' || (task === 'sequential' && sequentialMode === 'candidates');
  if (positiveAt !== 'random' && !usesCandidates) throw new InputError(`positiveAt applies to tasks that show candidates (direct, or sequential with sequentialMode 'candidates'), not ${task}`, { field: 'positiveAt' });
  const ratingScale = o.ratingScale ?? { min: 1, max: 5 };

  let result: EvalResult | { task: LlmTask; split: EvalSplit; protocol: string; metrics: Record<string, number>; count: number; seconds: number };
  let refinement: RefinementReport;
  let positionBias: PositionBiasReport | undefined;
  let samples: { prediction: string; reference: string }[] | undefined;

  if (task === 'explanation' || task === 'review') {
    const asker = new Asker(client, builder, ask);
    const r = await evaluateText(ds, asker, builder, task, split, o.users, concurrency, o.quiet, o.signal);
    result = r.result;
    samples = r.samples;
    refinement = asker.report();
  } else {
    const index = titleIndexFor(ds);
    const runOnce = async (at: PositiveAt): Promise<{ result: EvalResult; refinement: RefinementReport }> => {
      const rec = new LlmRecommender(ds, client, builder, index, { ...ask, task, split, positiveAt: at, sequentialMode, topK, matchThreshold: o.matchThreshold ?? 0.6, ratingScale, signal: o.signal });
      rec.prefetch(planJobs(ds, task, split, o.users), concurrency);
      try {
        const res = await evaluate(ds, rec, task, { split, maxUsers: o.users, quiet: o.quiet, ratingRange: ratingScale });
        return { result: res, refinement: rec.asker.report() };
      } finally {
        rec.dispose();
      }
    };
    const main = await runOnce(positiveAt);
    result = main.result;
    refinement = main.refinement;
    if (task === 'sequential' && sequentialMode === 'candidates') {
      result = { ...result, protocol: `leave-one-out, ${split} item among 1 held-out + ${ds.manifest.options.negatives} stored negatives shown to the model as candidates; unlisted items score -Infinity in the all-item ranking` };
    }
    if (positiveAt !== 'random') {
      const base = await runOnce('random');
      const ratio: Record<string, number | null> = {};
      for (const [m, v] of Object.entries(result.metrics)) {
        const b = base.result.metrics[m];
        ratio[m] = b ? v / b : null;
      }
      positionBias = { positiveAt, baseline: base.result.metrics, ratio, baselineRefinement: base.refinement };
    }
  }

  const usage = client.usage();
  const p = client.provider;
  const label = `llm:${p.model} ${shots}-shot${usesCandidates && task === 'sequential' ? ' candidates' : ''}${positiveAt !== 'random' ? ` positive-${positiveAt}` : ''}`;
  return {
    model: `${p.id}:${p.model}`,
    kind: 'llm',
    label,
    dataset: ds.manifest.name,
    beauty: isBeauty(ds.numUsers, ds.numItems),
    datasetDir: ds.dir,
    itemIndex: ds.manifest.options.itemIndex,
    seed,
    ...result,
    task,
    notes: formatNotes(refinement, usage, positionBias),
    seconds: (Date.now() - t0) / 1000,
    llm: {
      provider: p.id, model: p.model, shots, historyLength: o.historyLength ?? 10, seed,
      ...(task === 'direct' || task === 'sequential' ? { topK, positiveAt } : {}),
      ...(task === 'sequential' ? { sequentialMode } : {}),
      refinement, usage, positionBias, samples, cache: client.cache?.location,
    },
  };
}

/** One line for the report's notes column: refinement, tokens, cost, cache. */
export function formatNotes(r: RefinementReport, u: UsageReport, bias?: PositionBiasReport): string {
  const rep = Object.entries(r.repairs).filter(([k]) => k !== 'reasked' && k !== 'gave_up' && k !== 'unusable').map(([k, v]) => `${k} ${v}`).join(', ');
  const parts = [
    `refinement: ${r.firstTry}/${r.asked} usable first try, ${r.afterReask} after re-ask, ${r.gaveUp} gave up (${r.asked ? ((100 * r.gaveUp) / r.asked).toFixed(1) : '0.0'}% unusable)${rep ? `; ${rep}` : ''}`,
    `tokens ${u.promptTokens} in / ${u.completionTokens} out (${u.cacheHits}/${u.requests} from cache)`,
    `cost ${u.cost === null ? 'unknown' : `$${u.cost.toFixed(4)}`}`,
  ];
  if (bias) {
    const key = bias.ratio['HR@10'] !== undefined ? 'HR@10' : Object.keys(bias.ratio)[0];
    const v = bias.ratio[key];
    parts.push(`position bias ${bias.positiveAt}/random ${key} ${v === null || v === undefined ? 'n/a' : v.toFixed(2)}`);
  }
  return parts.join(' | ');
}

/**
 * Explanation generation / review summarisation on the random split's
 * held-out rows that have a reference: corpus BLEU-4 and ROUGE-1/2/L (x100,
 * see docs/metrics.md). An answer that stays unusable scores as an empty
 * prediction (counted as gave_up).
 */
async function evaluateText(ds: Dataset, asker: Asker, builder: PromptBuilder, task: 'explanation' | 'review', split: EvalSplit, maxUsers: number | undefined, concurrency: number, quiet?: boolean, signal?: AbortSignal) {
  const t0 = Date.now();
  const code = split === 'test' ? TEST : VALID;
  const x = ds.interactions;
  const field = task === 'explanation' ? 'explanation' : 'summary';
  if (!ds.manifest.fields[field === 'summary' ? 'summary' : 'explanation']) {
    throw new InputError(`dataset has no ${field} field, so it has no ${task} task (import reviews with text)`, { file: ds.dir, field });
  }
  const rows: number[] = [];
  for (const k of ds.ratingRows(code)) {
    if (maxUsers && x.user[k] >= maxUsers) continue;
    const ref = task === 'explanation' ? x.explanation[k] : x.summary[k];
    if (!ref || (task === 'review' && !x.review[k])) continue;
    rows.push(k);
  }
  if (rows.length === 0) throw new InputError(`no ${split} rows with a ${field} to evaluate`, { file: ds.dir, field });
  const preds = new Array<string>(rows.length).fill('');
  const bar = new Progress({ label: `eval ${task}/${split}`, total: rows.length, unit: 'rows', quiet });
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < rows.length && failure === undefined) {
      const j = next++;
      try {
        preds[j] = (await asker.ask(builder.text(rows[j], task), refineText, signal)) ?? '';
      } catch (err) {
        failure ??= err;
      }
      bar.tick();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  bar.finish();
  if (failure !== undefined) throw failure;
  const refs = rows.map((k) => (task === 'explanation' ? x.explanation[k] : x.summary[k]) as string);
  const metrics: Record<string, number> = { 'BLEU-4': bleu4(preds, refs), ...rouge(preds, refs) };
  return {
    result: {
      task, split, metrics, count: rows.length, seconds: (Date.now() - t0) / 1000,
      protocol: `random 0.8/0.1/0.1 split, ${split} rows with a ${field}; corpus BLEU-4 and ROUGE-1/2/L F1 (x100) against the ${field}`,
    },
    samples: rows.slice(0, 5).map((_, j) => ({ prediction: preds[j], reference: refs[j] })),
  };
}
