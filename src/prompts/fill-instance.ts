/**
 * One instance from one template: the fields it shows and the answer it
 * expects, for row families (rating, explanation, review, zeroshot: one
 * interaction row) and user families (sequential, direct: a user and a target
 * item). Training and evaluation streams both build their instances here.
 */
import type { Dataset } from '../data/dataset.js';
import { InputError } from '../errors.js';
import type { Rng } from '../util/rng.js';
import { renderTemplate, type PromptTask, type PromptTemplate, type TemplateFields } from './templates.js';
import { templateFor, type IdView } from './ids.js';
import { nonEmpty, type PromptData } from './prompt-data.js';
import type { HistorySeparator, PromptInstance } from './stream.js';

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
export function rowChecks(t: PromptTemplate, ds: Dataset): ((k: number) => boolean)[] {
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

export const ROW_FAMILIES: readonly PromptTask[] = ['rating', 'explanation', 'review', 'zeroshot'];

/** Fill and answer a row-family template for interaction row k. */
export function rowInstance(pd: PromptData, t: PromptTemplate, k: number, rng: Rng, noise: boolean, ids: IdView): PromptInstance {
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

export interface UserContext {
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
export function userInstance(
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
