/**
 * What every trained baseline shares: its training data (per split), seeded
 * random streams, the epoch loop with progress, per-epoch checkpoints and
 * resume, validation with early stopping that keeps the best weights.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { TRAIN, VALID } from '../data/splits.js';
import type { FitContext, HyperSchema, ModelState, Recommender, TrainSplit } from '../recommend/recommender.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Progress } from '../util/progress.js';
import { Rng, hashString } from '../util/rng.js';
import { readSafetensors, writeSafetensors, type Tensor } from '../util/safetensors.js';

/** Training interactions of a split: parallel arrays (rating NaN where the source has none). */
export interface TrainRows {
  user: Int32Array;
  item: Int32Array;
  rating: Float32Array;
  length: number;
}

/**
 * Rows a model may learn from: the random split's train part ('rating') or
 * the leave-one-out train prefix ('sequential'), in (user, time) order.
 */
export function trainRows(ds: Dataset, split: TrainSplit): TrainRows {
  const x = ds.interactions;
  const codes = split === 'rating' ? x.ratingSplit : x.seqSplit;
  let n = 0;
  for (let k = 0; k < codes.length; k++) if (codes[k] === TRAIN) n++;
  const out: TrainRows = { user: new Int32Array(n), item: new Int32Array(n), rating: new Float32Array(n), length: n };
  let r = 0;
  for (let k = 0; k < codes.length; k++) {
    if (codes[k] !== TRAIN) continue;
    out.user[r] = x.user[k];
    out.item[r] = x.item[k];
    out.rating[r] = x.rating[k];
    r++;
  }
  return out;
}

/** Training rows that carry a rating; an error when the dataset has none (e.g. Beauty's P5 sequences). */
export function ratedRows(ds: Dataset, split: TrainSplit, kind: string): TrainRows & { mean: number } {
  const all = trainRows(ds, split);
  const keep: number[] = [];
  let sum = 0;
  for (let r = 0; r < all.length; r++) {
    if (Number.isNaN(all.rating[r])) continue;
    keep.push(r);
    sum += all.rating[r];
  }
  if (!keep.length) throw new InputError(`model '${kind}' fits star ratings, and this dataset has none in its ${split} training split (use bpr-mf, bpr-mlp or simplex for implicit feedback)`, { file: ds.dir, field: 'rating' });
  const pick = <T extends Int32Array | Float32Array>(a: T, make: (n: number) => T): T => {
    const o = make(keep.length);
    keep.forEach((r, j) => (o[j] = a[r]));
    return o;
  };
  return {
    user: pick(all.user, (n) => new Int32Array(n)),
    item: pick(all.item, (n) => new Int32Array(n)),
    rating: pick(all.rating, (n) => new Float32Array(n)),
    length: keep.length,
    mean: sum / keep.length,
  };
}

/** Per-user training items as CSR (time order), with a sorted copy for membership tests. */
export class UserItems {
  readonly start: Int32Array;
  readonly items: Int32Array;
  private readonly sorted: Int32Array;
  constructor(rows: TrainRows, numUsers: number) {
    this.start = new Int32Array(numUsers + 1);
    for (let r = 0; r < rows.length; r++) this.start[rows.user[r] + 1]++;
    for (let u = 0; u < numUsers; u++) this.start[u + 1] += this.start[u];
    this.items = new Int32Array(rows.length);
    const fill = this.start.slice(0, numUsers);
    for (let r = 0; r < rows.length; r++) this.items[fill[rows.user[r]]++] = rows.item[r];
    this.sorted = this.items.slice();
    for (let u = 0; u < numUsers; u++) this.sorted.subarray(this.start[u], this.start[u + 1]).sort();
  }

  of(u: number): Int32Array {
    return this.items.subarray(this.start[u], this.start[u + 1]);
  }

  has(u: number, item: number): boolean {
    let lo = this.start[u], hi = this.start[u + 1] - 1;
    const s = this.sorted;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] === item) return true;
      if (s[mid] < item) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** Uniform item the user has not interacted with in training (gives up after 100 tries). */
  sampleNegative(u: number, numItems: number, rng: Rng): number {
    let j = rng.int(numItems);
    for (let t = 0; t < 100 && this.has(u, j); t++) j = rng.int(numItems);
    return j;
  }
}

/** Seeded streams: one for initialisation, one per epoch, so a resumed fit replays the same data order. */
export function initRng(seed: number, kind: string): Rng {
  return new Rng(hashString(`${seed}/${kind}/init`));
}
export function epochRng(seed: number, kind: string, epoch: number): Rng {
  return new Rng(hashString(`${seed}/${kind}/epoch/${epoch}`));
}

/** A shuffled permutation 0..n-1. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  rng.shuffle(p);
  return p;
}

/** Throw unless `v` is a number in [min, max] (and an integer when asked). */
export function checkNumber(kind: string, name: string, v: unknown, min: number, max = Infinity, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new InputError(`model '${kind}': ${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(v)}`, { field: name });
  }
  return v;
}

/** Check every field of `c` that `schema` names, by field (the first that fails throws). */
export function checkHyper(kind: string, schema: HyperSchema, c: Record<string, unknown>): void {
  for (const [name, spec] of Object.entries(schema)) {
    const v = c[name];
    if (spec.type === 'number') checkNumber(kind, name, v, spec.min, spec.max, spec.integer);
    else if (spec.type === 'boolean' && typeof v !== 'boolean') throw new InputError(`model '${kind}': ${name} must be true or false, got ${JSON.stringify(v)}`, { field: name });
    else if (spec.type === 'string' && (typeof v !== 'string' || (spec.oneOf && !spec.oneOf.includes(v)))) {
      throw new InputError(`model '${kind}': ${name} must be ${spec.oneOf ? spec.oneOf.join(' or ') : 'a string'}, got ${JSON.stringify(v)}`, { field: name });
    }
  }
}

export function f32(shape: number[], data: Float32Array): Tensor {
  return { dtype: 'F32', shape, data };
}

/** A tensor from a loaded model state, checked for its size. */
export function tensorOf(state: ModelState, name: string, length: number): Float32Array {
  const t = state.tensors[name];
  if (!t) throw new InputError(`model weights lack tensor '${name}'`, { field: name });
  if (t.data.length !== length) throw new InputError(`tensor '${name}' has ${t.data.length} values, expected ${length} (model fitted on another dataset?)`, { field: name });
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/** Higher-is-better validation score of a recommender built from the current weights. */
export interface Validator {
  readonly name: string;
  /** Sign-corrected score (e.g. −RMSE) for comparisons; `shown` is what is printed. */
  score(rec: Recommender): Promise<{ value: number; shown: number }>;
}

/**
 * Validation on the VALID split with the evaluation protocol of the model's
 * split: 'rating' → RMSE on the random split's validation ratings (clipped
 * to 1..5 as the evaluator); 'sequential' → NDCG@10 of the validation item
 * among the user's stored negatives (the direct task's 1-of-100), history =
 * the train prefix. Null when the split has no validation data.
 */
export function makeValidator(ds: Dataset, split: TrainSplit): Validator | null {
  if (split === 'rating') {
    const rows = Array.from(ds.ratingRows(VALID)).filter((k) => !Number.isNaN(ds.interactions.rating[k]));
    if (!rows.length) return null;
    return {
      name: 'valid RMSE',
      async score(rec) {
        let s = 0;
        for (const k of rows) {
          let p = await rec.predictRating!(ds.interactions.user[k], ds.interactions.item[k]);
          p = p < 1 ? 1 : p > 5 ? 5 : p;
          const d = p - ds.interactions.rating[k];
          s += d * d;
        }
        const r = Math.sqrt(s / rows.length);
        return { value: -r, shown: r };
      },
    };
  }
  const users: number[] = [];
  const cands: Int32Array[] = [];
  const hist: Int32Array[] = [];
  for (let u = 0; u < ds.numUsers; u++) {
    const v = ds.sequenceSplit(u, VALID);
    if (!v.length) continue;
    const c = new Int32Array(ds.negatives[u].length + 1);
    c[0] = v[0];
    c.set(ds.negatives[u], 1);
    users.push(u);
    cands.push(c);
    hist.push(ds.historyBefore(u, VALID));
  }
  if (!users.length) return null;
  return {
    name: 'valid NDCG@10',
    async score(rec) {
      let s = 0;
      for (let n = 0; n < users.length; n++) {
        const sc = await rec.score(users[n], hist[n], cands[n]);
        let above = 0;
        for (let j = 1; j < sc.length; j++) if (sc[j] >= sc[0]) above++;
        if (above < 10) s += 1 / Math.log2(above + 2);
      }
      const v = s / users.length;
      return { value: v, shown: v };
    },
  };
}

// ---------------------------------------------------------------------------
// The epoch loop: progress, checkpoints, resume, early stopping
// ---------------------------------------------------------------------------

export interface Trainable {
  /** Every array a resumed fit needs (weights and optimizer moments), by name; live references. */
  state(): Record<string, Float32Array>;
  /** Scalars of the optimizer (e.g. Adam's step) to checkpoint beside the arrays. */
  scalars?(): Record<string, number>;
  setScalars?(s: Record<string, number>): void;
  /** Names in state() that are the model's weights (snapshotted when validation improves). */
  readonly weightNames: readonly string[];
  /** Examples in one epoch (progress rate). */
  readonly examplesPerEpoch: number;
  /** One pass over the training data with this epoch's stream; returns the mean loss. */
  epoch(rng: Rng, epoch: number): number;
  /** A recommender over the current weights (validation). */
  recommender(): Recommender;
}

export interface LoopConfig {
  epochs: number;
  /** Stop after this many epochs without validation improvement (0 = never stop early; best weights still kept). */
  patience: number;
}

interface CheckpointMeta {
  kind: string;
  split: TrainSplit;
  seed: number;
  /** The config minus `epochs` and `patience`, which may change on resume. */
  config: Record<string, unknown>;
  epoch: number;
  scalars: Record<string, number>;
  best: number | null;
  bestEpoch: number;
  stale: number;
  history: { epoch: number; loss: number; valid?: number; seconds: number }[];
  /** The weights file of this epoch (absent in older checkpoints: CKPT_WEIGHTS). */
  weights?: string;
}

/** A stored higher-is-better value as printed (errors such as RMSE are stored negated). */
const shown = (v: Validator, value: number): number => (/RMSE|MAE|loss/i.test(v.name) ? -value : value);

const CKPT_WEIGHTS = 'checkpoint.safetensors';
const CKPT_META = 'checkpoint.json';

export interface LoopResult {
  epochs: number;
  bestEpoch: number;
  best: number | null;
  history: CheckpointMeta['history'];
}

/**
 * Train `model` for `cfg.epochs` epochs. After each epoch: validate (when a
 * validator exists), snapshot the weights when the score improved, write a
 * checkpoint (all state, the best snapshot, the epoch, optimizer scalars)
 * into ctx.checkpointDir. With ctx.resume, continue from that checkpoint;
 * the per-epoch random streams make the result identical to an
 * uninterrupted fit. Ends with the best weights in place.
 */
export async function runLoop(kind: string, split: TrainSplit, config: Record<string, unknown>, cfg: LoopConfig, model: Trainable, validator: Validator | null, ctx: FitContext): Promise<LoopResult> {
  const { epochs: _e, patience: _p, ...fixedConfig } = config;
  const state = model.state();
  const best: Record<string, Float32Array> = {};
  for (const n of model.weightNames) best[n] = state[n].slice();
  const meta: CheckpointMeta = { kind, split, seed: ctx.seed, config: fixedConfig, epoch: 0, scalars: {}, best: null, bestEpoch: 0, stale: 0, history: [] };

  const dir = ctx.checkpointDir;
  if (ctx.resume && dir && existsSync(join(dir, CKPT_META))) {
    let saved: CheckpointMeta;
    try {
      saved = JSON.parse(readFileSync(join(dir, CKPT_META), 'utf8'));
    } catch (e) {
      throw new InputError(`unreadable checkpoint (${(e as Error).message})`, { file: join(dir, CKPT_META) });
    }
    const mismatch = saved.kind !== kind ? 'model kind' : saved.split !== split ? 'split' : saved.seed !== ctx.seed ? 'seed' : JSON.stringify(saved.config) !== JSON.stringify(fixedConfig) ? 'set of hyper-parameters' : null;
    if (mismatch) throw new InputError(`checkpoint was written with a different ${mismatch}; resume with the same settings (only epochs and patience may change) or fit afresh (force)`, { file: dir });
    const st = readSafetensors(join(dir, saved.weights ?? CKPT_WEIGHTS));
    for (const [n, a] of Object.entries(state)) {
      const v = st.float32(n);
      if (v.length !== a.length) throw new InputError(`checkpoint tensor '${n}' has ${v.length} values, expected ${a.length}`, { file: dir, field: n });
      a.set(v);
    }
    for (const n of model.weightNames) best[n].set(st.float32(`best/${n}`));
    Object.assign(meta, saved);
    model.setScalars?.(saved.scalars);
    ctx.log(`${kind}: resuming after epoch ${saved.epoch}${validator && saved.best !== null ? ` (best ${validator.name} ${shown(validator, saved.best).toFixed(4)} at epoch ${saved.bestEpoch})` : ''}`);
  } else if (ctx.resume) {
    ctx.log(`${kind}: no checkpoint to resume from${dir ? ` in ${dir}` : ''}; fitting from scratch`);
  }

  // Counts only this run's epochs, so rate and ETA stay right after a resume.
  const bar = new Progress({ label: `fit ${kind}`, total: Math.max(0, cfg.epochs - meta.epoch), unit: 'epochs', quiet: ctx.quiet, intervalMs: 0 });
  const stopped = (): boolean => cfg.patience > 0 && meta.stale >= cfg.patience;
  while (meta.epoch < cfg.epochs && !stopped()) {
    const e = meta.epoch;
    const t0 = Date.now();
    const loss = model.epoch(epochRng(ctx.seed, kind, e), e);
    if (!Number.isFinite(loss)) throw new InputError(`${kind}: training diverged at epoch ${e + 1} (loss ${loss}); lower lr`);
    const seconds = (Date.now() - t0) / 1000;
    const entry: CheckpointMeta['history'][number] = { epoch: e + 1, loss, seconds };
    let note = '';
    if (validator) {
      const v = await validator.score(model.recommender());
      entry.valid = v.shown;
      if (meta.best === null || v.value > meta.best) {
        meta.best = v.value;
        meta.bestEpoch = e + 1;
        meta.stale = 0;
        for (const n of model.weightNames) best[n].set(state[n]);
      } else meta.stale++;
      note = ` | ${validator.name} ${v.shown.toFixed(4)}${meta.bestEpoch === e + 1 ? ' *' : ''}`;
    } else {
      meta.bestEpoch = e + 1;
      for (const n of model.weightNames) best[n].set(state[n]);
    }
    meta.epoch = e + 1;
    meta.history.push(entry);
    meta.scalars = model.scalars?.() ?? {};
    if (dir) {
      const tensors: Record<string, Tensor> = {};
      for (const [n, a] of Object.entries(state)) tensors[n] = f32([a.length], a);
      for (const n of model.weightNames) tensors[`best/${n}`] = f32([best[n].length], best[n]);
      // Weights under a per-epoch name, then the metadata that points at them: a kill at
      // any moment leaves checkpoint.json naming a complete weights file of its own epoch.
      const previous = meta.weights;
      meta.weights = `checkpoint-e${meta.epoch}.safetensors`;
      mkdirSync(dir, { recursive: true });
      writeSafetensors(join(dir, `.${meta.weights}.tmp`), tensors, { kind, epoch: String(meta.epoch) });
      renameSync(join(dir, `.${meta.weights}.tmp`), join(dir, meta.weights));
      writeFileAtomic(join(dir, CKPT_META), `${JSON.stringify(meta, null, 1)}\n`);
      for (const f of [previous ?? CKPT_WEIGHTS]) if (f !== meta.weights) rmSync(join(dir, f), { force: true });
    }
    bar.tick(1, `epoch ${meta.epoch}/${cfg.epochs} | loss ${loss.toFixed(4)}${note} | ${Math.round(model.examplesPerEpoch / Math.max(seconds, 1e-3))} ex/s`);
  }
  // Non-TTY logs already have the last epoch's line; say only why it stopped.
  if (stopped() || process.stderr.isTTY) bar.finish(stopped() ? `early stop: no improvement for ${cfg.patience} epochs` : undefined);
  for (const n of model.weightNames) state[n].set(best[n]);
  if (validator && meta.best !== null) ctx.log(`${kind}: best ${validator.name} ${shown(validator, meta.best).toFixed(4)} at epoch ${meta.bestEpoch}/${meta.epoch}`);
  return { epochs: meta.epoch, bestEpoch: meta.bestEpoch, best: meta.best, history: meta.history };
}
