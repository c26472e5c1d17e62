/**
 * One epoch of P5 training instances as a stream. Nothing is materialised per
 * (user, item) pair: each family's units are visited in a seeded permutation
 * (./permutation.ts) and interleaved at random across families, so taking the
 * first n instances costs n instances of work.
 */
import type { Dataset } from '../data/dataset.js';
import { TRAIN } from '../data/splits.js';
import { InputError } from '../errors.js';
import { hashString, type Rng } from '../util/rng.js';
import { PROMPT_TASKS, selectTemplates, type PromptCollection, type PromptTask, type PromptTemplate } from './templates.js';
import { plainIds } from './ids.js';
import { IndexPermutation, keyedRng, mix32, UserRanges } from './permutation.js';
import { promptData } from './prompt-data.js';
import { rowChecks, rowInstance, userInstance } from './fill-instance.js';
import { checkOptions, DEFAULT_PROMPT_SEED, type InstanceStream, type PromptInstance, type TrainingOptions } from './stream.js';
import { MAX_HISTORY, NEGATIVES } from '../defaults.js';

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
