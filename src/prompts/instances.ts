/**
 * P5 instances (prompt → answer pairs) generated as a stream from a dataset
 * and a template collection. Nothing is materialised per (user, item) pair:
 * every instance is a pure function of (seed, epoch, family, index), so an
 * epoch is a seeded permutation of each family's units (a Feistel cipher over
 * the index range, O(1) memory) interleaved at random across families, and
 * taking the first n instances costs n instances of work.
 *
 * Training instances read only training data: the leave-one-out train prefix
 * (sequential windows, direct positives) and the random split's train rows
 * (rating, explanation, review). Evaluation instances ask about the valid or
 * test item / rows, one stream per template, with the stored negatives.
 */
import type { Dataset } from '../data/dataset.js';
import { TEST, TRAIN, VALID } from '../data/splits.js';
import { InputError } from '../errors.js';
import { hashString, Rng } from '../util/rng.js';
import {
  PROMPT_TASKS,
  renderTemplate,
  selectTemplates,
  type PromptCollection,
  type PromptTask,
  type PromptTemplate,
  type SkippedTemplate,
  type TemplateFields,
  type TemplateSelection,
} from './templates.js';
import { plainIds, templateFor, type IdView } from './ids.js';
import { DEFAULT_SEED, MAX_HISTORY, NEGATIVES } from '../defaults.js';

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
const UNKNOWN_TITLE = 'unknown title';

// ---------------------------------------------------------------- hashing

function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** An Rng that depends only on its key parts (order matters). */
function keyedRng(...parts: number[]): Rng {
  let h = 0x6a09e667;
  for (const p of parts) h = mix32((h ^ mix32(p >>> 0)) + Math.floor(p / 4294967296));
  return new Rng(h);
}

/**
 * A seeded bijection of [0, size): a balanced Feistel network over the
 * smallest power of 4 ≥ size, cycle-walked back into range. A shuffled order
 * without an array of indices.
 */
export class IndexPermutation {
  private readonly half: number;
  private readonly mask: number;
  private readonly scale: number;
  private readonly keys: Uint32Array;

  constructor(readonly size: number, rng: Rng) {
    if (!Number.isInteger(size) || size < 0 || size > 2 ** 32) throw new RangeError(`IndexPermutation: bad size ${size}`);
    let bits = 2;
    while (2 ** bits < size) bits += 2;
    this.half = bits / 2;
    this.scale = 2 ** this.half;
    this.mask = this.scale - 1;
    this.keys = new Uint32Array(6);
    for (let i = 0; i < this.keys.length; i++) this.keys[i] = rng.nextU32();
  }

  at(i: number): number {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`IndexPermutation: index ${i} outside [0, ${this.size})`);
    let x = i;
    do x = this.encrypt(x);
    while (x >= this.size);
    return x;
  }

  private encrypt(x: number): number {
    let l = Math.floor(x / this.scale);
    let r = x % this.scale;
    for (const k of this.keys) {
      const f = mix32((r ^ k) >>> 0) & this.mask;
      const nl = r;
      r = (l ^ f) & this.mask;
      l = nl;
    }
    return l * this.scale + r;
  }
}

/** Units laid end to end per user: global index → (user, offset). */
class UserRanges {
  readonly cum: Float64Array;
  constructor(lengths: ArrayLike<number>) {
    this.cum = new Float64Array(lengths.length + 1);
    for (let u = 0; u < lengths.length; u++) this.cum[u + 1] = this.cum[u] + lengths[u];
  }
  get total(): number {
    return this.cum[this.cum.length - 1];
  }
  find(i: number): [user: number, offset: number] {
    let lo = 0;
    let hi = this.cum.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.cum[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return [lo, i - this.cum[lo]];
  }
}

// ---------------------------------------------------------------- dataset view

/** Per-dataset lookups built once: train-prefix lengths, sorted item sets for negative sampling. */
class PromptData {
  /** Leading TRAIN rows of each user (the leave-one-out train prefix). */
  readonly trainLen: Int32Array;
  /** Each user's items, sorted, at the user's slice of interactions. */
  private readonly sorted: Int32Array;
  /** Distinct items per user. */
  private readonly distinct: Int32Array;

  constructor(readonly ds: Dataset) {
    const { numUsers } = ds;
    const x = ds.interactions;
    this.trainLen = new Int32Array(numUsers);
    this.sorted = new Int32Array(x.item.length);
    this.distinct = new Int32Array(numUsers);
    for (let u = 0; u < numUsers; u++) {
      const s = ds.userStart[u];
      const n = ds.userLength[u];
      let t = 0;
      while (t < n && x.seqSplit[s + t] === TRAIN) t++;
      this.trainLen[u] = t;
      const slice = this.sorted.subarray(s, s + n);
      slice.set(x.item.subarray(s, s + n));
      slice.sort();
      let d = 0;
      for (let k = 0; k < n; k++) if (k === 0 || slice[k] !== slice[k - 1]) d++;
      this.distinct[u] = d;
    }
  }

  touched(u: number, item: number): boolean {
    const s = this.ds.userStart[u];
    let lo = s;
    let hi = s + this.ds.userLength[u] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.sorted[mid];
      if (v === item) return true;
      if (v < item) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** Up to `count` distinct items the user never interacted with (any split), seeded. */
  untouched(u: number, count: number, rng: Rng): number[] {
    const N = this.ds.numItems;
    const available = N - this.distinct[u];
    const n = Math.min(count, available);
    if (n <= 0) return [];
    if (2 * n > available) {
      const all: number[] = [];
      for (let j = 0; j < N; j++) if (!this.touched(u, j)) all.push(j);
      for (let i = 0; i < n; i++) {
        const j = i + rng.int(all.length - i);
        const t = all[i];
        all[i] = all[j];
        all[j] = t;
      }
      return all.slice(0, n);
    }
    const picked = new Set<number>();
    const out: number[] = [];
    while (out.length < n) {
      const j = rng.int(N);
      if (picked.has(j) || this.touched(u, j)) continue;
      picked.add(j);
      out.push(j);
    }
    return out;
  }

  userDesc(u: number, row?: number): string {
    const r = row === undefined ? null : this.ds.interactions.reviewerName[row];
    return nonEmpty(r) ?? nonEmpty(this.ds.users.name[u]) ?? this.ds.users.rawId[u];
  }

  itemFields(item: number, out: TemplateFields, ids: IdView): TemplateFields {
    const it = this.ds.items;
    out.item_id = ids.items[item];
    out.item_title = nonEmpty(it.title[item]) ?? UNKNOWN_TITLE;
    if (nonEmpty(it.brand[item]) !== null) out.brand = it.brand[item] as string;
    if (it.price[item] !== null && it.price[item] !== undefined) out.price = it.price[item] as number;
    return out;
  }
}

function nonEmpty(s: string | null | undefined): string | null {
  return s && s.trim() ? s : null;
}

const cache = new WeakMap<Dataset, PromptData>();
function promptData(ds: Dataset): PromptData {
  let d = cache.get(ds);
  if (!d) cache.set(ds, (d = new PromptData(ds)));
  return d;
}

// ---------------------------------------------------------------- answers

/** P5's star: the integer rating (int(overall)); half stars kept to one decimal. */
export function formatStar(r: number): string {
  return Number.isInteger(r) ? String(r) : String(Math.round(r * 10) / 10);
}

/** P5's training-time rating noise: a Gaussian around the star's band, clipped to [1, 5], one decimal. */
export function noisyStar(r: number, rng: Rng): string {
  const star = Math.max(1, Math.min(5, Math.trunc(r)));
  const [lo, hi] = ([[1.0, 1.4], [1.5, 2.4], [2.5, 3.4], [3.5, 4.4], [4.5, 5.0]] as const)[star - 1];
  const v = Math.min(5, Math.max(1, (lo + hi) / 2 + ((hi - lo) / 4) * rng.normal()));
  return (Math.round(v * 10) / 10).toFixed(1);
}

function likeDislike(r: number): string {
  return r >= 4 ? 'like' : 'dislike';
}

// ---------------------------------------------------------------- row templates

/** Which per-row values a row-family template needs (beyond the dataset having the field). */
function rowChecks(t: PromptTemplate, ds: Dataset): ((k: number) => boolean)[] {
  const x = ds.interactions;
  const it = ds.items;
  const checks: ((k: number) => boolean)[] = [];
  const uses = (n: string): boolean => t.placeholders.includes(n);
  if (uses('star_rating') || ['star_rating', 'like_dislike', 'rating_and_explanation'].includes(t.target) || (t.task === 'rating' && t.target === 'yes_no')) {
    checks.push((k) => Number.isFinite(x.rating[k]));
  }
  if (uses('review_body')) checks.push((k) => nonEmpty(x.review[k]) !== null);
  if (uses('review_headline') || t.target === 'summary') checks.push((k) => nonEmpty(x.summary[k]) !== null);
  if (uses('feature_word')) checks.push((k) => nonEmpty(x.feature[k]) !== null);
  if (t.target === 'explanation' || t.target === 'rating_and_explanation') checks.push((k) => nonEmpty(x.explanation[k]) !== null);
  if (uses('brand')) checks.push((k) => nonEmpty(it.brand[x.item[k]]) !== null);
  if (uses('price')) checks.push((k) => it.price[x.item[k]] !== null && it.price[x.item[k]] !== undefined);
  return checks;
}

const ROW_FAMILIES: readonly PromptTask[] = ['rating', 'explanation', 'review', 'zeroshot'];

/** Fill and answer a row-family template for interaction row k. */
function rowInstance(pd: PromptData, t: PromptTemplate, k: number, rng: Rng, noise: boolean, ids: IdView): PromptInstance {
  const ds = pd.ds;
  const x = ds.interactions;
  const u = x.user[k];
  const item = x.item[k];
  const r = x.rating[k];
  const f: TemplateFields = pd.itemFields(item, { user_id: ids.users[u], user_desc: pd.userDesc(u, k) }, ids);
  if (Number.isFinite(r)) f.star_rating = formatStar(r);
  if (x.review[k] !== null) f.review_body = x.review[k] as string;
  if (x.summary[k] !== null) f.review_headline = x.summary[k] as string;
  if (x.feature[k] !== null) f.feature_word = x.feature[k] as string;
  const star = (): string => (noise && (t.task === 'rating' || t.task === 'explanation') ? noisyStar(r, rng) : formatStar(r));
  let target: string;
  switch (t.target) {
    case 'star_rating':
      target = t.task === 'rating' ? star() : formatStar(r);
      break;
    case 'like_dislike':
      target = likeDislike(r);
      break;
    case 'yes_no': {
      // P5: half the time ask about the true star (yes), else a wrong one (no).
      const truth = Math.max(1, Math.min(5, Math.round(r)));
      if (rng.next() < 0.5) {
        f.star_rating = truth;
        target = 'yes';
      } else {
        const wrong = [1, 2, 3, 4, 5].filter((s) => s !== truth);
        f.star_rating = wrong[rng.int(wrong.length)];
        target = 'no';
      }
      break;
    }
    case 'explanation':
      target = x.explanation[k] as string;
      break;
    case 'rating_and_explanation':
      target = `${star()} , ${x.explanation[k]}`;
      break;
    case 'summary':
      target = x.summary[k] as string;
      break;
    default:
      throw new InputError(`template '${t.id}': answer '${t.target}' is not available to task '${t.task}'`);
  }
  return { source: renderTemplate(templateFor(t, ids), f), target, task: t.task, template: t.id, user: ds.users.token[u], item: ds.items.token[item] };
}

// ---------------------------------------------------------------- user templates

function separator(opt: HistorySeparator, rng: Rng): string {
  if (opt !== 'random') return opt;
  return rng.next() < 0.5 ? ' , ' : ' -> ';
}

interface UserContext {
  u: number;
  /** The item to predict (next item / direct positive). */
  target: number;
  /** Items before it, most recent last (sequential only). */
  history?: ArrayLike<number>;
}

/**
 * Fill a sequential or direct template for a user and a target item. For
 * yes/no templates `asked` is the item asked about (target → yes, else no);
 * for candidate templates `candidates` are the negatives to mix in.
 */
function userInstance(
  pd: PromptData,
  t: PromptTemplate,
  c: UserContext,
  rng: Rng,
  opts: { separator: HistorySeparator; maxHistory: number; ids: IdView; asked?: number; negatives?: () => number[]; candidateRng?: Rng },
): PromptInstance {
  const ds = pd.ds;
  const tok = opts.ids.items;
  const f: TemplateFields = { user_id: opts.ids.users[c.u], user_desc: pd.userDesc(c.u) };
  if (c.history) {
    const h = c.history;
    const from = Math.max(0, h.length - opts.maxHistory);
    const parts: string[] = [];
    for (let i = from; i < h.length; i++) parts.push(tok[h[i]]);
    f.purchase_history = parts.join(separator(opts.separator, rng));
  }
  let item = c.target;
  let target: string;
  let candidates: string[] | undefined;
  if (t.target === 'yes_no') {
    item = opts.asked ?? c.target;
    target = item === c.target ? 'yes' : 'no';
    pd.itemFields(item, f, opts.ids);
  } else {
    pd.itemFields(c.target, f, opts.ids);
    target = tok[c.target];
    if (t.placeholders.includes('candidates')) {
      const list = [...(opts.negatives?.() ?? []), c.target];
      (opts.candidateRng ?? rng).shuffle(list);
      candidates = list.map((j) => tok[j]);
      f.candidates = candidates.join(' , ');
    }
  }
  const out: PromptInstance = { source: renderTemplate(templateFor(t, opts.ids), f), target, task: t.task, template: t.id, user: ds.users.token[c.u], item: ds.items.token[item] };
  if (candidates) out.candidates = candidates;
  return out;
}

// ---------------------------------------------------------------- option checks

function checkOptions(opts: InstanceOptions & TrainingOptions): void {
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

// ---------------------------------------------------------------- training

interface Family {
  task: PromptTask;
  /** Units of data (windows, positives, rows). */
  units: number;
  /** Instances this epoch. */
  count: number;
  make(unit: number, rng: Rng): PromptInstance;
}

/**
 * One epoch of training instances. Families and their units:
 * - sequential: every window of each user's train prefix — for t ≥ 1, history
 *   = items before t (last `maxHistory`), target = item t;
 * - direct: every train-prefix interaction as the positive; yes/no prompts ask
 *   about it or (half the time) a sampled negative, candidate prompts mix it
 *   with `negatives` sampled negatives (never items the user touched);
 * - rating / explanation / review / zeroshot: the random split's train rows
 *   that have what at least one template needs.
 * Each instance draws its template uniformly among the family's usable ones.
 */
export function trainingInstances(ds: Dataset, collection: PromptCollection | readonly PromptTemplate[], opts: TrainingOptions = {}): InstanceStream {
  checkOptions(opts);
  const seed = opts.seed ?? DEFAULT_PROMPT_SEED;
  const epoch = opts.epoch ?? 0;
  const maxHistory = opts.maxHistory ?? MAX_HISTORY;
  const sep = opts.historySeparator ?? 'random';
  const nNeg = opts.negatives ?? NEGATIVES;
  const noise = opts.ratingNoise ?? true;
  const leakFree = opts.leakFree ?? true;
  const ids = opts.ids ?? plainIds(ds);
  const templates = 'templates' in collection ? collection.templates : collection;
  const selected = selectTemplates(templates, ds.manifest.fields, { selection: opts.templates ?? 'seen', tasks: opts.tasks ?? PROMPT_TASKS });
  const skipped = selected.skipped;
  let use = selected.use;
  if (opts.only) {
    for (const id of opts.only) {
      if (!templates.some((t) => t.id === id)) throw new InputError(`unknown prompt '${id}' (known: ${templates.map((t) => t.id).join(', ')})`, { field: 'only' });
      const why = skipped.find((k) => k.id === id);
      if (why) throw new InputError(`prompt ${id} cannot be trained on this dataset: ${why.reason}`, { field: 'only' });
    }
    use = use.filter((t) => opts.only!.includes(t.id));
  }
  const pd = promptData(ds);
  const x = ds.interactions;
  const families: Family[] = [];
  const pick = <T>(arr: readonly T[], rng: Rng): T => arr[rng.int(arr.length)];

  for (const task of opts.tasks ?? PROMPT_TASKS) {
    const ts = use.filter((t) => t.task === task);
    const w = opts.weights?.[task] ?? 1;
    if (!ts.length || w === 0) continue;
    let units: number;
    let make: (unit: number, rng: Rng) => PromptInstance;
    if (task === 'sequential') {
      const ranges = new UserRanges(Array.from(pd.trainLen, (n) => Math.max(0, n - 1)));
      units = ranges.total;
      make = (unit, rng) => {
        const [u, off] = ranges.find(unit);
        const s = ds.userStart[u];
        const t = off + 1;
        const tpl = pick(ts, rng);
        const target = x.item[s + t];
        const asked = tpl.target === 'yes_no' && rng.next() >= 0.5 ? (pd.untouched(u, 1, rng)[0] ?? target) : target;
        return userInstance(pd, tpl, { u, target, history: x.item.subarray(s + Math.max(0, t - maxHistory), s + t) }, rng, {
          separator: sep, maxHistory, ids, asked, negatives: () => pd.untouched(u, nNeg, rng),
        });
      };
    } else if (task === 'direct') {
      const ranges = new UserRanges(pd.trainLen);
      units = ranges.total;
      make = (unit, rng) => {
        const [u, off] = ranges.find(unit);
        const target = x.item[ds.userStart[u] + off];
        const tpl = pick(ts, rng);
        const asked = tpl.target === 'yes_no' && rng.next() >= 0.5 ? (pd.untouched(u, 1, rng)[0] ?? target) : target;
        return userInstance(pd, tpl, { u, target }, rng, { separator: sep, maxHistory, ids, asked, negatives: () => pd.untouched(u, nNeg, rng) });
      };
    } else {
      const checks = ts.map((t) => rowChecks(t, ds));
      const rows: number[] = [];
      for (const k of ds.ratingRows(TRAIN)) {
        if (leakFree && x.seqSplit[k] !== TRAIN) continue;
        if (checks.some((cs) => cs.every((c) => c(k)))) rows.push(k);
      }
      const rowList = Int32Array.from(rows);
      units = rowList.length;
      make = (unit, rng) => {
        const k = rowList[unit];
        const ok = ts.filter((_, i) => checks[i].every((c) => c(k)));
        return rowInstance(pd, pick(ok, rng), k, rng, noise, ids);
      };
    }
    if (units === 0) continue;
    families.push({ task, units, count: Math.round(w * units), make });
  }

  const base = mix32((seed ^ mix32(epoch + 0x51ed27)) >>> 0);
  const perTask: Partial<Record<PromptTask, number>> = {};
  for (const f of families) perTask[f.task] = (perTask[f.task] ?? 0) + f.count;
  const total = families.reduce((a, f) => a + f.count, 0);

  function* generate(): Generator<PromptInstance> {
    const streams = families.map((f) => {
      const reps = Math.max(1, Math.ceil(f.count / f.units));
      const tag = hashString(f.task);
      return { f, tag, perm: new IndexPermutation(f.units * reps, keyedRng(base, tag, 0x9e37)), next: 0 };
    });
    const order = keyedRng(base, hashString('interleave'));
    let remaining = total;
    while (remaining > 0) {
      const r = remaining <= 4294967296 ? order.int(remaining) : Math.floor(order.next() * remaining);
      let acc = 0;
      let s = streams[0];
      for (const st of streams) {
        acc += st.f.count - st.next;
        if (r < acc) {
          s = st;
          break;
        }
      }
      const j = s.next++;
      remaining--;
      yield s.f.make(s.perm.at(j) % s.f.units, keyedRng(base, s.tag, j));
    }
  }

  return { split: 'train', total, perTask, templates: use, skipped, [Symbol.iterator]: generate };
}

// ---------------------------------------------------------------- evaluation

/**
 * Instances for the valid or test split, template by template (every usable
 * template of the selection asks every eligible user / row):
 * - sequential: history = train (+ valid for test), last `maxHistory`; target
 *   = the split's item; candidate prompts show the stored negatives + target;
 *   yes/no prompts ask about the target (yes) and each stored negative (no),
 *   so ranking by P(yes) gives the 1-of-100 protocol;
 * - direct: the same target, candidates and yes/no expansion, no history;
 * - rating / explanation / review / zeroshot: the random split's rows.
 */
export function evaluationInstances(ds: Dataset, collection: PromptCollection | readonly PromptTemplate[], split: EvalSplit, opts: InstanceOptions = {}): InstanceStream {
  checkOptions(opts);
  if (split !== 'valid' && split !== 'test') throw new InputError(`evaluation split must be 'valid' or 'test', got '${String(split)}'`, { field: 'split' });
  const code = split === 'valid' ? VALID : TEST;
  const seed = opts.seed ?? DEFAULT_PROMPT_SEED;
  const maxHistory = opts.maxHistory ?? MAX_HISTORY;
  const sep = opts.historySeparator ?? 'random';
  const ids = opts.ids ?? plainIds(ds);
  const templates = 'templates' in collection ? collection.templates : collection;
  const tasks = opts.tasks ?? PROMPT_TASKS;
  const { use, skipped } = selectTemplates(templates, ds.manifest.fields, { selection: opts.templates ?? 'all', tasks });
  const pd = promptData(ds);
  const x = ds.interactions;
  const base = mix32((seed ^ 0x3c6ef372) >>> 0);

  // Users with an item in the split, and the row holding it.
  const evalRow: number[] = [];
  const evalUsers: number[] = [];
  for (let u = 0; u < ds.numUsers; u++) {
    const s = ds.userStart[u];
    for (let k = s; k < s + ds.userLength[u]; k++) {
      if (x.seqSplit[k] === code) {
        evalUsers.push(u);
        evalRow.push(k);
        break;
      }
    }
  }
  const splitRows = ds.ratingRows(code);

  interface Plan {
    t: PromptTemplate;
    count: number;
    run: () => Generator<PromptInstance>;
  }
  const plans: Plan[] = [];
  for (const t of use) {
    const tag = hashString(t.id);
    if (t.task === 'sequential' || t.task === 'direct') {
      const seqTask = t.task === 'sequential';
      const yesNo = t.target === 'yes_no';
      let count = 0;
      for (const u of evalUsers) count += yesNo ? 1 + ds.negatives[u].length : 1;
      plans.push({
        t,
        count,
        run: function* () {
          for (let i = 0; i < evalUsers.length; i++) {
            const u = evalUsers[i];
            const k = evalRow[i];
            const c: UserContext = { u, target: x.item[k], history: seqTask ? ds.historyBefore(u, code) : undefined };
            const negs = Array.from(ds.negatives[u]);
            if (yesNo) {
              const asks = [c.target, ...negs];
              for (let a = 0; a < asks.length; a++) {
                yield userInstance(pd, t, c, keyedRng(base, tag, u, a), { separator: sep, maxHistory, ids, asked: asks[a] });
              }
            } else {
              // Candidate order depends on the user only, so every template shows the same list.
              yield userInstance(pd, t, c, keyedRng(base, tag, u), {
                separator: sep, maxHistory, ids, negatives: () => negs, candidateRng: keyedRng(base, hashString('candidates'), u),
              });
            }
          }
        },
      });
    } else if (ROW_FAMILIES.includes(t.task)) {
      const checks = rowChecks(t, ds);
      const rows: number[] = [];
      for (const k of splitRows) if (checks.every((c) => c(k))) rows.push(k);
      plans.push({
        t,
        count: rows.length,
        run: function* () {
          for (const k of rows) yield rowInstance(pd, t, k, keyedRng(base, tag, k), false, ids);
        },
      });
    }
  }

  const perTask: Partial<Record<PromptTask, number>> = {};
  const perTemplate: Record<string, number> = {};
  for (const p of plans) {
    perTask[p.t.task] = (perTask[p.t.task] ?? 0) + p.count;
    perTemplate[p.t.id] = p.count;
  }
  const total = plans.reduce((a, p) => a + p.count, 0);
  function* generate(): Generator<PromptInstance> {
    for (const p of plans) yield* p.run();
  }
  return { split, total, perTask, perTemplate, templates: use, skipped, [Symbol.iterator]: generate };
}

// ---------------------------------------------------------------- inference

export interface UserPromptInput {
  user: number;
  /** Items before the prediction point, most recent last (sequential templates). */
  history?: ArrayLike<number>;
  /** The item a yes/no template asks about. */
  asked?: number;
  /** Candidate items, in the order the prompt lists them (candidate templates). */
  candidates?: ArrayLike<number>;
}

/**
 * Fill a sequential or direct template at inference time (P5 as a
 * recommender): the same fields as training, with a fixed history separator
 * (default ' , ') and the candidate list in the given order.
 */
export function renderUserPrompt(ds: Dataset, t: PromptTemplate, input: UserPromptInput, opts: { separator?: ' , ' | ' -> '; maxHistory?: number; ids?: IdView } = {}): string {
  const pd = promptData(ds);
  const ids = opts.ids ?? plainIds(ds);
  const tok = ids.items;
  const f: TemplateFields = { user_id: ids.users[input.user], user_desc: pd.userDesc(input.user) };
  if (t.placeholders.includes('purchase_history')) {
    const h = input.history ?? [];
    const from = Math.max(0, h.length - (opts.maxHistory ?? MAX_HISTORY));
    const parts: string[] = [];
    for (let i = from; i < h.length; i++) parts.push(tok[h[i]]);
    f.purchase_history = parts.join(opts.separator ?? ' , ');
  }
  if (input.asked !== undefined) pd.itemFields(input.asked, f, ids);
  if (t.placeholders.includes('candidates')) {
    const c = input.candidates ?? [];
    const parts: string[] = [];
    for (let i = 0; i < c.length; i++) parts.push(tok[c[i]]);
    f.candidates = parts.join(' , ');
  }
  return renderTemplate(templateFor(t, ids), f);
}

/** Fill a rating template that needs only the user and the item (1-1, 1-2, 1-5, 1-6, 1-10, ...). */
export function renderPairPrompt(ds: Dataset, t: PromptTemplate, user: number, item: number, ids: IdView = plainIds(ds)): string {
  const pd = promptData(ds);
  const f: TemplateFields = pd.itemFields(item, { user_id: ids.users[user], user_desc: pd.userDesc(user) }, ids);
  return renderTemplate(templateFor(t, ids), f);
}
