/**
 * Prompts at inference time (P5 as a recommender): a template filled for a
 * user and given items, with no answer and no randomness.
 */
import type { Dataset } from '../data/dataset.js';
import { renderTemplate, type PromptTemplate, type TemplateFields } from './templates.js';
import { plainIds, templateFor, type IdView } from './ids.js';
import { promptData } from './prompt-data.js';
import { MAX_HISTORY } from '../defaults.js';

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
