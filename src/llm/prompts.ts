import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { TRAIN } from '../data/splits.js';
import { Rng } from '../util/rng.js';
import type { ChatMessage, JsonSchemaSpec } from './provider.js';

/** The prompt tasks: the three ranking/rating protocols and the two text tasks. */
export const LLM_TASKS = ['rating', 'sequential', 'direct', 'explanation', 'review'] as const;
export type LlmTask = (typeof LLM_TASKS)[number];

const TEMPLATE_TASKS = ['rating', 'sequential', 'sequentialCandidates', 'direct', 'explanation', 'review'] as const;
type TemplateTask = (typeof TEMPLATE_TASKS)[number];

export interface TaskTemplate {
  /** Task description. */
  description: string;
  /** Behaviour injection: the user's recent items ({history}); empty for tasks without one. */
  behaviour: string;
  /** What is asked about this user / item. */
  query: string;
  /** Format indicator. */
  format: string;
}

/** Templates as data (data/prompts/llm.json); see docs/llm.md for the variables. */
export interface PromptSet {
  format: 'p5rec-llm-prompts';
  version: number;
  system: string;
  item: string;
  ratedItem: string;
  historyLine: string;
  candidateLine: string;
  reask: string;
  tasks: Record<TemplateTask, TaskTemplate>;
}

/** data/prompts/llm.json, found relative to this module (src/llm or dist/llm). */
export const DEFAULT_PROMPTS_PATH = fileURLToPath(new URL('../../data/prompts/llm.json', import.meta.url));

/** Read and check a template file: every field present and a string. */
export function loadPromptSet(path: string = DEFAULT_PROMPTS_PATH): PromptSet {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(`cannot read prompt templates (${(e as Error).message})`, { file: path });
  }
  const o = v as Record<string, unknown>;
  if (!o || o.format !== 'p5rec-llm-prompts') throw new InputError("not a prompt template file (format must be 'p5rec-llm-prompts')", { file: path, field: 'format' });
  for (const f of ['system', 'item', 'ratedItem', 'historyLine', 'candidateLine', 'reask']) {
    if (typeof o[f] !== 'string') throw new InputError('missing or not a string', { file: path, field: f });
  }
  const tasks = o.tasks as Record<string, Record<string, unknown>> | undefined;
  for (const t of TEMPLATE_TASKS) {
    for (const f of ['description', 'behaviour', 'query', 'format']) {
      if (typeof tasks?.[t]?.[f] !== 'string') throw new InputError('missing or not a string', { file: path, field: `tasks.${t}.${f}` });
    }
  }
  return v as PromptSet;
}

/** Fill `{name}` placeholders; an unknown name is a template error, never left in a prompt. */
export function render(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{([A-Za-z_]\w*)\}/g, (_m, name: string) => {
    if (!(name in vars)) throw new InputError(`prompt template uses {${name}}, which this template does not receive (it gets: ${Object.keys(vars).join(', ')})`, { field: 'prompts' });
    return String(vars[name]);
  });
}

export interface PromptOptions {
  /** Demonstrations from other users' training data (0 = zero-shot). */
  shots: number;
  /** Items of behaviour injection (the most recent n). */
  historyLength: number;
  /** Length of the ranked list asked for. */
  topK: number;
  seed: number;
  /** Titles longer than this are cut (with …) to bound prompt length. */
  titleMaxChars: number;
  /** Review text longer than this is cut in the review task. */
  reviewMaxChars: number;
  /** What the catalogue is ("beauty products"); default derived from item categories. */
  domain?: string;
}

/** One prompt: messages, plus the JSON schema of the answer when it has one. */
export interface Prompt {
  messages: ChatMessage[];
  jsonSchema?: JsonSchemaSpec;
}

/** The schema of each answer kind. Kept within what OpenAI strict mode accepts. */
export function answerSchema(kind: 'rating' | 'ranking' | 'titles', n = 0, k = 10): JsonSchemaSpec {
  const obj = (name: string, prop: string, schema: Record<string, unknown>): JsonSchemaSpec => ({
    name, schema: { type: 'object', properties: { [prop]: schema }, required: [prop], additionalProperties: false },
  });
  if (kind === 'rating') return obj('rating_prediction', 'rating', { type: 'number' });
  if (kind === 'ranking') {
    return obj('candidate_ranking', 'ranking', { type: 'array', items: { type: 'integer', enum: Array.from({ length: n }, (_, i) => i + 1) }, minItems: 1, maxItems: k });
  }
  return obj('next_item_titles', 'titles', { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: k });
}

/**
 * Builds the study's prompts from a dataset: task description + behaviour
 * injection + format indicator, zero- or few-shot. Demonstrations are drawn
 * with a seeded Rng keyed by (seed, task, user), only from OTHER users and
 * only from training data, so a prompt never shows a held-out answer.
 */
export class PromptBuilder {
  readonly domain: string;
  private seqDemoUsers?: Int32Array;
  private demoRows = new Map<string, Int32Array>();

  constructor(readonly ds: Dataset, readonly set: PromptSet, readonly opts: PromptOptions) {
    this.domain = opts.domain ?? inferDomain(ds);
  }

  /** Display title of an item: its title (whitespace collapsed, cut at titleMaxChars) or `item <token>`. */
  title(item: number): string {
    const t = this.ds.items.title[item];
    const s = t && t.trim() ? t.replace(/\s+/g, ' ').trim() : `item ${this.ds.items.token[item]}`;
    const max = this.opts.titleMaxChars;
    return max > 0 && s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s;
  }

  private ratingOf(user: number): Map<number, number> {
    const m = new Map<number, number>();
    const s = this.ds.userStart[user];
    const x = this.ds.interactions;
    for (let k = s; k < s + this.ds.userLength[user]; k++) if (Number.isFinite(x.rating[k])) m.set(x.item[k], x.rating[k]);
    return m;
  }

  private fmtRating(r: number): string {
    return Number.isInteger(r) ? r.toFixed(1) : String(Math.round(r * 100) / 100);
  }

  /** Behaviour injection: the last `historyLength` items, oldest first, with ratings where known. */
  historyBlock(user: number, items: ArrayLike<number>, ratings?: Map<number, number>): string {
    const n = this.opts.historyLength;
    const start = Math.max(0, items.length - n);
    const r = ratings ?? this.ratingOf(user);
    const lines: string[] = [];
    for (let i = start; i < items.length; i++) {
      const it = items[i];
      const rating = r.get(it);
      const item = rating === undefined ? render(this.set.item, { title: this.title(it) }) : render(this.set.ratedItem, { title: this.title(it), rating: this.fmtRating(rating) });
      lines.push(render(this.set.historyLine, { n: lines.length + 1, item }));
    }
    return lines.join('\n');
  }

  candidateBlock(shown: ArrayLike<number>): string {
    const lines: string[] = [];
    for (let i = 0; i < shown.length; i++) lines.push(render(this.set.candidateLine, { n: i + 1, title: this.title(shown[i]) }));
    return lines.join('\n');
  }

  private body(task: TemplateTask, vars: Record<string, string | number>, hasHistory: boolean): string {
    const t = this.set.tasks[task];
    const v = { domain: this.domain, k: this.opts.topK, ...vars };
    const parts = [render(t.description, v), hasHistory && t.behaviour ? render(t.behaviour, v) : '', render(t.query, v), render(t.format, v)];
    return parts.filter((p) => p.trim() !== '').join('\n\n');
  }

  private assemble(demos: { user: string; answer: string }[], user: string, jsonSchema?: JsonSchemaSpec): Prompt {
    const messages: ChatMessage[] = [{ role: 'system', content: render(this.set.system, { domain: this.domain }) }];
    for (const d of demos) messages.push({ role: 'user', content: d.user }, { role: 'assistant', content: d.answer });
    messages.push({ role: 'user', content: user });
    return { messages, jsonSchema };
  }

  /** The re-ask turn after an unusable answer. */
  reask(error: string): string {
    return render(this.set.reask, { error });
  }

  private rng(task: string, user: number, extra: string | number = ''): Rng {
    return new Rng(`${this.opts.seed}|demo|${task}|${user}|${extra}`);
  }

  /** `count` distinct entries of `pool` whose owner differs from `user`, seeded. */
  private drawFrom(pool: Int32Array, owner: (x: number) => number, user: number, count: number, rng: Rng): number[] {
    const out: number[] = [];
    const seen = new Set<number>();
    for (let tries = 0; out.length < count && tries < count * 50 && pool.length > 0; tries++) {
      const x = pool[rng.int(pool.length)];
      if (owner(x) === user || seen.has(x)) continue;
      seen.add(x);
      out.push(x);
    }
    return out;
  }

  /** Users with at least two training items (one to show, one to answer). */
  private sequentialDemoPool(): Int32Array {
    if (!this.seqDemoUsers) {
      const ok: number[] = [];
      const sp = this.ds.interactions.seqSplit;
      for (let u = 0; u < this.ds.numUsers; u++) {
        let n = 0;
        for (let k = this.ds.userStart[u]; k < this.ds.userStart[u] + this.ds.userLength[u]; k++) if (sp[k] === TRAIN) n++;
        if (n >= 2) ok.push(u);
      }
      this.seqDemoUsers = Int32Array.from(ok);
    }
    return this.seqDemoUsers;
  }

  /** Training rows (random split) that can serve as a demonstration for `task`. */
  private rowPool(task: 'rating' | 'explanation' | 'review'): Int32Array {
    let p = this.demoRows.get(task);
    if (!p) {
      const x = this.ds.interactions;
      const ok: number[] = [];
      for (let k = 0; k < x.user.length; k++) {
        if (x.ratingSplit[k] !== TRAIN) continue;
        if (task === 'rating' && Number.isFinite(x.rating[k])) ok.push(k);
        if (task === 'explanation' && x.explanation[k] && x.feature[k]) ok.push(k);
        if (task === 'review' && x.review[k] && x.summary[k]) ok.push(k);
      }
      p = Int32Array.from(ok);
      this.demoRows.set(task, p);
    }
    return p;
  }

  private trainItems(user: number): Int32Array {
    return this.ds.sequenceSplit(user, TRAIN);
  }

  /** Candidates in the order shown: seeded shuffle, or the positive pinned first/last. */
  arrange(candidates: ArrayLike<number>, user: number, positiveAt: 'random' | 'first' | 'last', purpose = 'candidates'): Int32Array {
    const rng = new Rng(`${this.opts.seed}|${purpose}|${user}`);
    if (positiveAt === 'random') return rng.shuffle(Int32Array.from(candidates)) as Int32Array;
    const negs = rng.shuffle(Int32Array.from(Array.prototype.slice.call(candidates, 1) as number[])) as Int32Array;
    const out = new Int32Array(candidates.length);
    if (positiveAt === 'first') {
      out[0] = candidates[0];
      out.set(negs, 1);
    } else {
      out.set(negs, 0);
      out[candidates.length - 1] = candidates[0];
    }
    return out;
  }

  /** Direct recommendation (or sequential with candidates): rank the shown candidates by number. */
  candidates(user: number, history: ArrayLike<number>, shown: Int32Array, task: 'direct' | 'sequentialCandidates'): Prompt {
    const k = Math.min(this.opts.topK, shown.length);
    const demos = this.sequentialDemoPool().length === 0 ? [] : this.drawFrom(this.sequentialDemoPool(), (x) => x, user, this.opts.shots, this.rng(task, user)).map((d) => {
      const train = this.trainItems(d);
      const target = train[train.length - 1];
      const negs = this.ds.negatives[d].subarray(0, shown.length - 1);
      const demoShown = this.arrange(Int32Array.from([target, ...negs]), d, 'random', `demo-candidates|${task}`);
      const pos = demoShown.indexOf(target);
      const answer = [pos + 1];
      for (let i = 0; answer.length < k && i < demoShown.length; i++) if (i !== pos) answer.push(i + 1);
      return {
        user: this.body(task, { history: this.historyBlock(d, train.subarray(0, train.length - 1)), n: demoShown.length, candidates: this.candidateBlock(demoShown) }, train.length > 1),
        answer: JSON.stringify({ ranking: answer }),
      };
    });
    const user_ = this.body(task, { history: this.historyBlock(user, history), n: shown.length, candidates: this.candidateBlock(shown) }, history.length > 0);
    return this.assemble(demos, user_, answerSchema('ranking', shown.length, k));
  }

  /** Sequential recommendation by generation: name the next items by title. */
  sequential(user: number, history: ArrayLike<number>): Prompt {
    const demos = this.drawFrom(this.sequentialDemoPool(), (x) => x, user, this.opts.shots, this.rng('sequential', user)).map((d) => {
      const train = this.trainItems(d);
      return {
        user: this.body('sequential', { history: this.historyBlock(d, train.subarray(0, train.length - 1)) }, train.length > 1),
        answer: JSON.stringify({ titles: [this.title(train[train.length - 1])] }),
      };
    });
    return this.assemble(demos, this.body('sequential', { history: this.historyBlock(user, history) }, history.length > 0), answerSchema('titles', 0, this.opts.topK));
  }

  /** The user's training ratings (random split) except `item`, in time order. */
  private ratingHistory(user: number, exceptItem: number): { items: number[]; ratings: Map<number, number> } {
    const x = this.ds.interactions;
    const items: number[] = [];
    const ratings = new Map<number, number>();
    for (let k = this.ds.userStart[user]; k < this.ds.userStart[user] + this.ds.userLength[user]; k++) {
      if (x.ratingSplit[k] !== TRAIN || x.item[k] === exceptItem || !Number.isFinite(x.rating[k])) continue;
      items.push(x.item[k]);
      ratings.set(x.item[k], x.rating[k]);
    }
    return { items, ratings };
  }

  /** Rating prediction for (user, item) from the user's training ratings. */
  rating(user: number, item: number): Prompt {
    const demos = this.drawFrom(this.rowPool('rating'), (k) => this.ds.interactions.user[k], user, this.opts.shots, this.rng('rating', user, item)).map((row) => {
      const x = this.ds.interactions;
      const h = this.ratingHistory(x.user[row], x.item[row]);
      return {
        user: this.body('rating', { history: this.historyBlock(x.user[row], h.items, h.ratings), target: render(this.set.item, { title: this.title(x.item[row]) }) }, h.items.length > 0),
        answer: JSON.stringify({ rating: x.rating[row] }),
      };
    });
    const h = this.ratingHistory(user, item);
    return this.assemble(demos, this.body('rating', { history: this.historyBlock(user, h.items, h.ratings), target: render(this.set.item, { title: this.title(item) }) }, h.items.length > 0), answerSchema('rating'));
  }

  private textVars(row: number, task: 'explanation' | 'review'): Record<string, string | number> {
    const x = this.ds.interactions;
    const rating = Number.isFinite(x.rating[row]) ? this.fmtRating(x.rating[row]) : '5.0';
    const target = render(this.set.item, { title: this.title(x.item[row]) });
    if (task === 'explanation') return { target, rating, feature: x.feature[row] ?? 'features' };
    const review = (x.review[row] ?? '').replace(/\s+/g, ' ').trim();
    const max = this.opts.reviewMaxChars;
    return { target, rating, review: max > 0 && review.length > max ? `${review.slice(0, max - 1)}…` : review };
  }

  /** Explanation generation or review summarisation for one interaction row. */
  text(row: number, task: 'explanation' | 'review'): Prompt {
    const x = this.ds.interactions;
    const demos = this.drawFrom(this.rowPool(task), (k) => x.user[k], x.user[row], this.opts.shots, this.rng(task, x.user[row], row)).map((d) => ({
      user: this.body(task, this.textVars(d, task), false),
      answer: (task === 'explanation' ? x.explanation[d] : x.summary[d]) ?? '',
    }));
    return this.assemble(demos, this.body(task, this.textVars(row, task), false));
  }
}

/** "beauty products" from the most common top-level category, else "products". */
export function inferDomain(ds: Dataset): string {
  const counts = new Map<string, number>();
  for (const cats of ds.items.categories) {
    const root = cats?.[0]?.split('>')[0]?.trim();
    if (root) counts.set(root, (counts.get(root) ?? 0) + 1);
  }
  let best = '';
  let n = 0;
  for (const [k, v] of counts) {
    if (v > n) {
      best = k;
      n = v;
    }
  }
  return best ? `${best.toLowerCase()} products` : 'products';
}
