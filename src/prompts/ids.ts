/**
 * How a P5 prompt writes user and item ids.
 *
 * - `plain` is P5's own text: the bare dataset tokens (`user_{user_id}` gives
 *   `user_23`, a history `548 , 12`), cut into pieces by the tokenizer. An
 *   item has two surface forms there (`548` after `item_`, `▁548` in a
 *   history) and user 23 and item 23 share the piece `23`.
 * - The other indexings give every item one written form, used everywhere
 *   (histories, candidate lists, `item_{item_id}`, answers), made of id
 *   tokens that the tokenizer keeps whole (see T5Tokenizer's `idTokens`):
 *   - `independent` (IID): one token per item, `item_548`;
 *   - `collaborative` (CID): the item's path in the spectral co-occurrence
 *     tree (src/data/collaborative.ts) as one token per tree node
 *     (`c_3 c_31 c_317`) plus its place in the leaf (`cl_2`), so items bought
 *     by the same users share leading tokens;
 *   - `cid+iid`: the tree's node tokens, then the item's own token
 *     (`c_3 c_31 c_317 item_548`).
 *   Users are written `user_<token>` in their own namespace; with user
 *   tokens on, each user is one token too.
 * Hua et al., "How to Index Item IDs for Recommendation Foundation Models"
 * (SIGIR-AP 2023) compare these indexings; the token layout here is ours.
 */
import type { Dataset } from '../data/dataset.js';
import { VALID } from '../data/splits.js';
import { collaborativeTokens } from '../data/collaborative.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { PromptTemplate } from './templates.js';
import { DEFAULT_SEED } from '../defaults.js';

export const ITEM_INDEXINGS = ['plain', 'independent', 'collaborative', 'cid+iid'] as const;
export type ItemIndexing = (typeof ITEM_INDEXINGS)[number];

/** The written form of every item and user, by dataset index. */
export interface IdView {
  indexing: ItemIndexing;
  /** Item j's text (space-separated id tokens, or the bare token for `plain`). */
  items: readonly string[];
  /** User u's text as it stands after `user_` in P5's templates is removed (`user_23`), or the bare token for `plain`. */
  users: readonly string[];
}

export function parseItemIndexing(value: string, field = 'item-ids'): ItemIndexing {
  if (!(ITEM_INDEXINGS as readonly string[]).includes(value)) throw new InputError(`${field}: unknown item indexing '${value}' (one of ${ITEM_INDEXINGS.join(', ')})`, { field });
  return value as ItemIndexing;
}

/** P5's text: the dataset tokens as they are. */
export function plainIds(ds: Dataset): IdView {
  return { indexing: 'plain', items: ds.items.token, users: ds.users.token };
}

/** Each user's training-prefix items, in time order (what collaborative ids may see). */
function trainSequences(ds: Dataset): Int32Array[] {
  return Array.from({ length: ds.numUsers }, (_, u) => ds.historyBefore(u, VALID));
}

/**
 * The id view of an indexing. Collaborative ids come from the training
 * prefixes only (never a held-out item's position) and are deterministic for
 * a seed; a model folder stores its item texts, so later runs reuse them.
 */
export function buildIdView(ds: Dataset, indexing: ItemIndexing, seed = DEFAULT_SEED): IdView {
  if (indexing === 'plain') return plainIds(ds);
  const users = Array.from(ds.users.token, (t) => `user_${t}`);
  const iid = Array.from(ds.items.token, (t) => `item_${t}`);
  if (indexing === 'independent') return { indexing, items: iid, users };
  const paths = collaborativeTokens(ds.numItems, trainSequences(ds), new Rng(seed));
  const items = paths.map((p, j) => {
    const nodes: string[] = [];
    for (let k = 1; k < p.length; k++) nodes.push(`c_${p.slice(0, k)}`);
    return indexing === 'collaborative' ? [...nodes, `cl_${p[p.length - 1]}`].join(' ') : [...nodes, iid[j]].join(' ');
  });
  return { indexing, items, users };
}

/** Every distinct id token of a view (items, and users when `users` is set): what the tokenizer must keep whole. */
export function idTokens(view: IdView, users: boolean): string[] {
  if (view.indexing === 'plain') return [];
  const set = new Set<string>();
  for (const t of view.items) for (const p of t.split(' ')) set.add(p);
  if (users) for (const u of view.users) set.add(u);
  return [...set];
}

/** Check a stored view against its dataset (a model folder's item texts). */
export function checkIdView(view: IdView, ds: Dataset, file: string): void {
  if (!ITEM_INDEXINGS.includes(view.indexing)) throw new InputError(`unknown item indexing '${String(view.indexing)}'`, { file, field: 'indexing' });
  if (view.items.length !== ds.numItems) throw new InputError(`holds ${view.items.length} item ids; the dataset has ${ds.numItems} items`, { file, field: 'items' });
  if (view.users.length !== ds.numUsers) throw new InputError(`holds ${view.users.length} user ids; the dataset has ${ds.numUsers} users`, { file, field: 'users' });
  if (new Set(view.items).size !== view.items.length) throw new InputError('two items share one id', { file, field: 'items' });
}

const sourceCache = new WeakMap<PromptTemplate, PromptTemplate>();

/**
 * The template as an id view writes it: P5's literal `item_` / `user_` before
 * an id placeholder is dropped, because the id's own text carries the
 * namespace (`item_{item_id}` → `{item_id}` → `item_548`).
 */
export function templateFor(t: PromptTemplate, view: IdView): PromptTemplate {
  if (view.indexing === 'plain') return t;
  let out = sourceCache.get(t);
  if (!out) {
    out = { ...t, source: t.source.replace(/\bitem_\{item_id\}/g, '{item_id}').replace(/\buser_\{user_id\}/g, '{user_id}') };
    sourceCache.set(t, out);
  }
  return out;
}
