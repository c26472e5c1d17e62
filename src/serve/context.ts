/**
 * What the routes share, built once per app: the dataset and models, token
 * lookups that fail with the field to blame, ranking with an optional batcher,
 * the answer cache, and generation through the optional P5 generator.
 */
import { NotFoundError, P5recError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import type { Recommender } from '../recommend/recommender.js';
import { defaultPrompt, NO_GENERATOR, type GenerativeTask, type Generator, type PromptFields } from './generator.js';
import { unprocessable } from './http-errors.js';
import type { ServedModel } from './models.js';
import { Sessions } from './session.js';
import { Lru, ScoreBatcher } from './batch.js';
import { topK } from './topk.js';

export interface RankedItem {
  item: string;
  title: string | null;
  score: number | null;
  hit?: boolean;
}

export const round = (s: number): number | null => (Number.isFinite(s) ? Number(s.toPrecision(7)) : null);
export const stripPrefix = (token: string, prefix: string): string => (token.startsWith(prefix) ? token.slice(prefix.length) : token);
export const canRank = (rec: Recommender): boolean => rec.tasks.includes('sequential') || rec.tasks.includes('direct');
export const canRate = (rec: Recommender): boolean => typeof rec.predictRating === 'function' && rec.tasks.includes('rating');

export interface ServeContext {
  ds: Dataset;
  models: ReadonlyMap<string, ServedModel>;
  /** The first loaded model's name. */
  defaultModel: string | undefined;
  generator: Generator | undefined;
  modelRoot: string | undefined;
  /** Interactions per item. */
  itemCount: Int32Array;
  sessions: Sessions;
  /** /v1/recommend answers (capacity 0: no cache). */
  cache: Lru<RankedItem[]>;
  title(i: number): string | null;
  userOf(token: string, field?: string): number;
  itemOf(token: string, field?: string): number;
  /** Distinct items, in first-seen order. */
  itemsOf(tokens: readonly string[], field: string): Int32Array;
  /** The named model, or the default one. */
  modelOf(name: string | undefined): [string, ServedModel];
  needRanking(name: string, rec: Recommender): void;
  /** Score, drop `exclude`, keep the k best: one pass with a size-k heap. */
  rank(rec: Recommender, user: number, history: Int32Array, exclude: Int32Array | null, k: number, candidates?: Int32Array): Promise<RankedItem[]>;
  /** A prompt (built from `fields`, or given raw) through the generator; 501 without one. */
  generate(task: GenerativeTask | 'generate', fields: PromptFields | string): Promise<{ model: string; prompt: string; output: string }>;
}

export function serveContext(o: { dataset: Dataset; models: ReadonlyMap<string, ServedModel>; generator?: Generator; modelRoot?: string; cache?: number }): ServeContext {
  const ds = o.dataset;
  const models = o.models;
  const defaultModel = models.keys().next().value as string | undefined;
  const itemCount = new Int32Array(ds.numItems);
  for (const i of ds.interactions.item) itemCount[i]++;
  const mask = new Uint8Array(ds.numItems); // set/cleared synchronously within one request
  // Models that gain from batching (P5) score concurrent requests together.
  const batchers = new Map<Recommender, ScoreBatcher>();
  for (const m of models.values()) if (ScoreBatcher.wants(m.rec)) batchers.set(m.rec, new ScoreBatcher(m.rec));

  const title = (i: number): string | null => ds.items.title[i] ?? null;
  const itemOf = (token: string, field = 'item'): number => {
    const i = ds.itemByToken(stripPrefix(token, 'item_'));
    if (i === undefined) throw new NotFoundError(`unknown item '${token}'`, { field });
    return i;
  };

  return {
    ds, models, defaultModel, generator: o.generator, modelRoot: o.modelRoot, itemCount,
    sessions: new Sessions(ds),
    cache: new Lru<RankedItem[]>(o.cache ?? 0),
    title,
    itemOf,
    userOf(token, field = 'user') {
      const u = ds.userByToken(stripPrefix(token, 'user_'));
      if (u === undefined) throw new NotFoundError(`unknown user '${token}'`, { field });
      return u;
    },
    itemsOf(tokens, field) {
      const seen = new Set<number>();
      for (const t of tokens) seen.add(itemOf(t, field));
      return Int32Array.from(seen);
    },
    modelOf(name) {
      const n = name ?? defaultModel;
      if (n === undefined) throw unprocessable('no ranking model loaded', 'model');
      const m = models.get(n);
      if (!m) throw new NotFoundError(`unknown model '${n}' (loaded: ${[...models.keys()].join(', ')})`, { field: 'model' });
      return [n, m];
    },
    needRanking(name, rec) {
      if (!canRank(rec)) throw unprocessable(`model '${name}' (${rec.kind}) cannot rank items (its tasks: ${rec.tasks.join(', ')})`, 'model');
    },
    async rank(rec, user, history, exclude, k, candidates) {
      const batcher = batchers.get(rec);
      const scores = batcher ? await batcher.score(user, history, candidates) : await rec.score(user, history, candidates);
      const n = candidates ? candidates.length : ds.numItems;
      if (scores.length !== n) throw new P5recError(`model '${rec.kind}' returned ${scores.length} scores for ${n} items`, { status: 500 });
      // From here to the return nothing awaits, so the shared mask is ours alone.
      if (exclude) for (const i of exclude) mask[i] = 1;
      try {
        const top = candidates ? topK(scores, k, (j) => mask[candidates[j]] === 1) : topK(scores, k, (i) => mask[i] === 1);
        return Array.from(top.index, (j, r) => {
          const i = candidates ? candidates[j] : j;
          return { item: ds.items.token[i], title: title(i), score: round(top.score[r]) };
        });
      } finally {
        if (exclude) for (const i of exclude) mask[i] = 0;
      }
    },
    async generate(task, fields) {
      const g = o.generator;
      if (!g) throw new P5recError(NO_GENERATOR, { status: 501 });
      const prompt = typeof fields === 'string' ? fields : (g.prompt?.(task as GenerativeTask, fields) ?? defaultPrompt(task as GenerativeTask, fields));
      return { model: g.name, prompt, output: await g.generate(prompt) };
    },
  };
}
