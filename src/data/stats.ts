import type { Dataset } from './dataset.js';
import { SPLIT_NAMES } from './splits.js';

export interface DatasetStats {
  name: string;
  users: number;
  items: number;
  interactions: number;
  density: number;
  ratingHistogram: Record<string, number> | null;
  meanRating: number | null;
  sequenceLength: { mean: number; median: number; min: number; max: number };
  itemPopularity: { mean: number; median: number; max: number };
  fields: Record<string, boolean>;
  /** How many items have each metadata field. */
  itemCoverage: { title: number; categories: number; brand: number; price: number; anyMeta: number };
  splits: { sequential: Record<string, number>; rating: Record<string, number> };
  indexing: { items: string; users: string; seed: number };
}

export function datasetStats(ds: Dataset): DatasetStats {
  const x = ds.interactions;
  const n = ds.numInteractions;
  let hist: Record<string, number> | null = null;
  let sum = 0;
  let rated = 0;
  for (let k = 0; k < n; k++) {
    const r = x.rating[k];
    if (Number.isNaN(r)) continue;
    hist ??= {};
    const key = String(r);
    hist[key] = (hist[key] ?? 0) + 1;
    sum += r;
    rated++;
  }
  if (hist) hist = Object.fromEntries(Object.entries(hist).sort((a, b) => Number(a[0]) - Number(b[0])));
  const pop = new Int32Array(ds.numItems);
  for (let k = 0; k < n; k++) pop[x.item[k]]++;
  const splitCounts = (codes: Uint8Array): Record<string, number> => {
    const c: Record<string, number> = { train: 0, valid: 0, test: 0 };
    for (const s of codes) c[SPLIT_NAMES[s]]++;
    return c;
  };
  return {
    name: ds.manifest.name,
    users: ds.numUsers,
    items: ds.numItems,
    interactions: n,
    density: n / (ds.numUsers * ds.numItems),
    ratingHistogram: hist,
    meanRating: rated ? sum / rated : null,
    sequenceLength: summarize(ds.userLength),
    itemPopularity: summarize(pop),
    fields: { ...ds.manifest.fields },
    itemCoverage: {
      title: ds.items.title.filter((t) => t && t.trim()).length,
      categories: ds.items.categories.filter((c) => c && c.length).length,
      brand: ds.items.brand.filter(Boolean).length,
      price: ds.items.price.filter((p) => p !== null).length,
      anyMeta: ds.items.title.filter((t, i) => t || ds.items.categories[i]?.length || ds.items.brand[i] || ds.items.price[i] !== null).length,
    },
    splits: { sequential: splitCounts(x.seqSplit), rating: splitCounts(x.ratingSplit) },
    indexing: { items: ds.manifest.options.itemIndex, users: ds.manifest.options.userIndex, seed: ds.manifest.options.seed },
  };
}

function summarize(values: Int32Array): { mean: number; median: number; min: number; max: number } {
  const s = Int32Array.from(values).sort();
  const m = s.length;
  const median = m % 2 ? s[(m - 1) / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
  return { mean: s.reduce((a, b) => a + b, 0) / m, median, min: s[0], max: s[m - 1] };
}
