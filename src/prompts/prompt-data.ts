/**
 * The dataset as the prompt streams read it: per-user train-prefix lengths,
 * sorted item sets for negative sampling, and the user / item fields a
 * template shows. Built once per Dataset and cached.
 */
import type { Dataset } from '../data/dataset.js';
import { TRAIN } from '../data/splits.js';
import type { Rng } from '../util/rng.js';
import type { TemplateFields } from './templates.js';
import type { IdView } from './ids.js';

const UNKNOWN_TITLE = 'unknown title';

/** Per-dataset lookups built once: train-prefix lengths, sorted item sets for negative sampling. */
export class PromptData {
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

export function nonEmpty(s: string | null | undefined): string | null {
  return s && s.trim() ? s : null;
}

const cache = new WeakMap<Dataset, PromptData>();
/** The view of `ds`, built on first use. */
export function promptData(ds: Dataset): PromptData {
  let d = cache.get(ds);
  if (!d) cache.set(ds, (d = new PromptData(ds)));
  return d;
}
