import { InputError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { TEST, VALID } from '../data/splits.js';
import type { Recommender, Task } from '../recommend/recommender.js';
import { Progress } from '../util/progress.js';
import { runEnv, type RunEnv } from './run-env.js';
import { mae, rankOfTarget, RankingAccumulator, ratingStandardErrors, rmse, sampledRank } from './metrics.js';
import { encodePerUser, type PerUserRanks } from './paired.js';

export type EvalSplit = 'test' | 'valid';

export interface EvalOptions {
  split?: EvalSplit;
  /** Evaluate only the first N eligible users (quick checks); default all. */
  maxUsers?: number;
  quiet?: boolean;
  /** Rating range predictions are clipped to (the dataset's star scale). */
  ratingRange?: { min: number; max: number };
}

export interface EvalResult {
  task: Task;
  split: EvalSplit;
  protocol: string;
  metrics: Record<string, number>;
  /** The standard error of each metric (same keys): over users for ranking, over rows for rating. */
  stderr?: Record<string, number>;
  count: number;
  /** Ranking: each scored user's 0-based rank of the held-out item, in the order scored (layout in paired.ts), for paired comparisons. */
  perUser?: PerUserRanks;
  seconds: number;
  /** The code and machine that produced the numbers. */
  env: RunEnv;
}

/**
 * The three protocols of the P5 paper, identical for every model:
 * - rating: RMSE/MAE on the random split's held-out interactions;
 * - direct: rank the held-out item among the user's 99 stored negatives (1 of 100);
 * - sequential: rank the held-out item among all items, history excluded.
 * The history a model sees is train (for valid) or train+valid (for test).
 */
export async function evaluate(ds: Dataset, rec: Recommender, task: Task, opts: EvalOptions = {}): Promise<EvalResult> {
  const split = opts.split ?? 'test';
  const code = split === 'test' ? TEST : VALID;
  if (!rec.tasks.includes(task)) throw new InputError(`model '${rec.kind}' cannot do the ${task} task (it does: ${rec.tasks.join(', ')})`, { field: 'task' });
  const wantSplit = task === 'rating' ? 'rating' : 'sequential';
  if (rec.trainSplit !== wantSplit && rec.trainSplit !== 'both') {
    throw new InputError(`model '${rec.kind}' was trained on the ${rec.trainSplit} split, whose training part contains the ${task} task's held-out items; refit it on the ${wantSplit} split`, { field: 'task' });
  }
  const t0 = Date.now();
  if (task === 'rating') {
    if (!ds.manifest.fields.rating) throw new InputError(`dataset has no ratings, so it has no rating task`, { file: ds.dir, field: 'rating' });
    if (!rec.predictRating) throw new InputError(`model '${rec.kind}' cannot predict ratings`, { field: 'task' });
    let rows = Array.from(ds.ratingRows(code));
    if (opts.maxUsers) {
      const keep = new Set(Array.from({ length: Math.min(opts.maxUsers, ds.numUsers) }, (_, u) => u));
      rows = rows.filter((k) => keep.has(ds.interactions.user[k]));
    }
    const pred = new Float64Array(rows.length);
    const truth = new Float64Array(rows.length);
    const bar = new Progress({ label: `eval rating/${split}`, total: rows.length, unit: 'ratings', quiet: opts.quiet });
    const chunk = rec.predictRatings ? 256 : 1;
    for (let j0 = 0; j0 < rows.length; j0 += chunk) {
      const part = rows.slice(j0, j0 + chunk);
      const p = rec.predictRatings
        ? await rec.predictRatings(part.map((k) => [ds.interactions.user[k], ds.interactions.item[k]] as const))
        : [await rec.predictRating(ds.interactions.user[part[0]], ds.interactions.item[part[0]])];
      part.forEach((k, i) => {
        pred[j0 + i] = p[i];
        truth[j0 + i] = ds.interactions.rating[k];
      });
      bar.tick(part.length);
    }
    bar.finish();
    const range = opts.ratingRange ?? { min: 1, max: 5 };
    return {
      task, split, protocol: `random 0.8/0.1/0.1 split, ${split} ratings, predictions clipped to ${range.min}..${range.max}`,
      metrics: { RMSE: rmse(pred, truth, range), MAE: mae(pred, truth, range) }, stderr: ratingStandardErrors(pred, truth, range),
      count: rows.length, seconds: (Date.now() - t0) / 1000, env: runEnv(),
    };
  }
  const acc = new RankingAccumulator(task === 'direct' ? [1, 5, 10] : [5, 10, 20]);
  const users: number[] = [];
  for (let u = 0; u < ds.numUsers && (!opts.maxUsers || users.length < opts.maxUsers); u++) if (ds.sequenceSplit(u, code).length) users.push(u);
  const bar = new Progress({ label: `eval ${task}/${split}`, total: users.length, unit: 'users', quiet: opts.quiet });
  const ranks: number[] = [];
  const chunk = rec.scoreMany ? 64 : 1;
  for (let i0 = 0; i0 < users.length; i0 += chunk) {
    const part = users.slice(i0, i0 + chunk).map((u) => {
      const target = ds.sequenceSplit(u, code)[0];
      const history = ds.historyBefore(u, code);
      let candidates: Int32Array | undefined;
      if (task === 'direct') {
        const negs = ds.negatives[u];
        candidates = new Int32Array(negs.length + 1);
        candidates[0] = target;
        candidates.set(negs, 1);
      }
      return { user: u, history, candidates, target };
    });
    const scores = rec.scoreMany ? await rec.scoreMany(part) : [await rec.score(part[0].user, part[0].history, part[0].candidates)];
    part.forEach((r, i) => {
      const s = scores[i];
      const rank = task === 'direct' ? sampledRank(s[0], s.subarray(1)) : rankOfTarget(s, r.target, r.history);
      acc.add(rank);
      ranks.push(rank);
    });
    bar.tick(part.length);
  }
  bar.finish();
  const { count, ...metrics } = acc.result();
  delete metrics['NDCG@1']; // equals HR@1 with one relevant item
  const stderr = acc.standardErrors();
  delete stderr['NDCG@1'];
  return {
    task, split,
    protocol: task === 'direct' ? `leave-one-out, ${split} item ranked among the ${ds.manifest.options.negatives} stored negatives` : `leave-one-out, ${split} item ranked among all ${ds.numItems} items, history excluded`,
    metrics, stderr, count, perUser: encodePerUser(users, ranks), seconds: (Date.now() - t0) / 1000, env: runEnv(),
  };
}
