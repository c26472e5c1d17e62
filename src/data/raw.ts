/**
 * The in-memory form every importer produces before indexing and splitting:
 * interactions keyed by the source's own user/item ids, plus item metadata.
 * Columns are parallel arrays (one entry per interaction) to stay compact.
 */
export interface SourceFile {
  /** Role of the file: reviews, meta, sequences, datamaps, ratings, items... */
  role: string;
  path: string;
}

export interface ItemMeta {
  title?: string;
  brand?: string;
  price?: number;
  /** Category path(s) flattened, most general first, e.g. "Beauty > Skin Care > Face". */
  categories?: string[];
}

export interface RawInteractions {
  user: string[];
  item: string[];
  rating: (number | null)[];
  /** Unix seconds. */
  time: (number | null)[];
  review: (string | null)[];
  summary: (string | null)[];
  reviewerName: (string | null)[];
}

export interface RawDataset {
  /** Source format: amazon, p5, movielens, csv, jsonl. */
  kind: string;
  files: SourceFile[];
  interactions: RawInteractions;
  items: Map<string, ItemMeta>;
  /** True when the order of interactions within a user is the time order even without timestamps (P5 sequences). */
  orderedByInput: boolean;
}

export function emptyInteractions(): RawInteractions {
  return { user: [], item: [], rating: [], time: [], review: [], summary: [], reviewerName: [] };
}

// One string per distinct id: a dump repeats each user and item id many times, and
// JSON.parse makes a fresh copy every time (half the import's memory on large files).
const interned = new WeakMap<RawInteractions, Map<string, string>>();
function intern(t: RawInteractions, s: string): string {
  let m = interned.get(t);
  if (!m) interned.set(t, (m = new Map()));
  const hit = m.get(s);
  if (hit !== undefined) return hit;
  m.set(s, s);
  return s;
}

export function pushInteraction(
  t: RawInteractions,
  row: { user: string; item: string; rating?: number | null; time?: number | null; review?: string | null; summary?: string | null; reviewerName?: string | null },
): void {
  t.user.push(intern(t, row.user));
  t.item.push(intern(t, row.item));
  t.rating.push(row.rating ?? null);
  t.time.push(row.time ?? null);
  t.review.push(row.review ?? null);
  t.summary.push(row.summary ?? null);
  t.reviewerName.push(row.reviewerName ?? null);
}

/** Rating bounds checked at import (Amazon and MovieLens are 1–5 stars). */
export interface RatingScale {
  min: number;
  max: number;
}
export const STAR_SCALE: RatingScale = { min: 1, max: 5 };
