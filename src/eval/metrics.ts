/**
 * Evaluation metrics for the P5 task families: rating prediction (RMSE, MAE),
 * top-k ranking (HR@k, NDCG@k over a single held-out item), and text
 * generation (corpus BLEU, ROUGE-1/2/L). Pure functions, no dependencies.
 *
 * Every choice that changes a number (tie rule, tokenization, smoothing,
 * corpus- vs sentence-level) is documented in docs/metrics.md.
 */
import { InputError } from '../errors.js';

// ---------------------------------------------------------------------------
// Rating prediction
// ---------------------------------------------------------------------------

/** Optional clipping of predictions into the rating scale before scoring. */
export interface RatingRange {
  min: number;
  max: number;
}

function checkPair(pred: ArrayLike<number>, truth: ArrayLike<number>, range?: RatingRange): void {
  if (pred.length !== truth.length) {
    throw new InputError(`prediction and truth lengths differ (${pred.length} vs ${truth.length})`);
  }
  if (pred.length === 0) throw new InputError('cannot score an empty set of predictions');
  if (range && !(Number.isFinite(range.min) && Number.isFinite(range.max) && range.min <= range.max)) {
    throw new InputError(`invalid rating range [${range.min}, ${range.max}]`);
  }
  for (let i = 0; i < pred.length; i++) {
    if (!Number.isFinite(pred[i])) throw new InputError(`prediction is not a finite number: ${pred[i]}`, { field: `pred[${i}]` });
    if (!Number.isFinite(truth[i])) throw new InputError(`truth is not a finite number: ${truth[i]}`, { field: `truth[${i}]` });
  }
}

function clip(x: number, range?: RatingRange): number {
  if (!range) return x;
  return x < range.min ? range.min : x > range.max ? range.max : x;
}

/**
 * Root mean squared error, sqrt(mean((p - t)^2)). With `range`, predictions
 * are first clipped into [min, max] (P5's scripts clip to [1, 5]).
 * Throws InputError on a length mismatch, an empty input or a non-finite value.
 */
export function rmse(pred: ArrayLike<number>, truth: ArrayLike<number>, range?: RatingRange): number {
  checkPair(pred, truth, range);
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = clip(pred[i], range) - truth[i];
    s += d * d;
  }
  return Math.sqrt(s / pred.length);
}

/** Mean absolute error, mean(|p - t|); same checks and clipping as {@link rmse}. */
export function mae(pred: ArrayLike<number>, truth: ArrayLike<number>, range?: RatingRange): number {
  checkPair(pred, truth, range);
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += Math.abs(clip(pred[i], range) - truth[i]);
  return s / pred.length;
}

/**
 * Standard errors of {@link rmse} and {@link mae} over the scored rows: MAE's is
 * sd(|e|)/√n; RMSE's comes from the delta method, se(MSE) / (2·RMSE), since
 * RMSE = √MSE and MSE is a mean of per-row squared errors. NaN below two rows.
 */
export function ratingStandardErrors(pred: ArrayLike<number>, truth: ArrayLike<number>, range?: RatingRange): { RMSE: number; MAE: number } {
  checkPair(pred, truth, range);
  const n = pred.length;
  if (n < 2) return { RMSE: NaN, MAE: NaN };
  let s1 = 0, s1sq = 0, s2 = 0, s2sq = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(clip(pred[i], range) - truth[i]);
    s1 += a;
    s1sq += a * a;
    s2 += a * a;
    s2sq += a * a * a * a;
  }
  const sd = (sum: number, sumSq: number): number => Math.sqrt(Math.max(0, (sumSq - (sum * sum) / n) / (n - 1)));
  const rmseValue = Math.sqrt(s2 / n);
  const seMse = sd(s2, s2sq) / Math.sqrt(n);
  return { RMSE: rmseValue > 0 ? seMse / (2 * rmseValue) : 0, MAE: sd(s1, s1sq) / Math.sqrt(n) };
}

// ---------------------------------------------------------------------------
// Ranking (one relevant item per user)
// ---------------------------------------------------------------------------

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new InputError(`k must be a positive integer, got ${k}`);
}

function checkRank(rank: number): void {
  // Infinity is allowed: "the target was not retrieved at all".
  if (Number.isNaN(rank) || rank < 0) throw new InputError(`rank must be a non-negative number, got ${rank}`);
}

/** HR@k for one user: 1 if the 0-based `rank` of the relevant item is < k, else 0. */
export function hitAt(rank: number, k: number): number {
  checkRank(rank);
  checkK(k);
  return rank < k ? 1 : 0;
}

/**
 * NDCG@k for one user with a single relevant item at 0-based `rank`:
 * 1 / log2(rank + 2) if rank < k, else 0 (the ideal DCG is 1).
 */
export function ndcgAt(rank: number, k: number): number {
  checkRank(rank);
  checkK(k);
  return rank < k ? 1 / Math.log2(rank + 2) : 0;
}

/**
 * 0-based rank of item `target` among all items scored in `scores`
 * (higher score = better).
 *
 * Tie rule (pessimistic): rank = number of other candidate items whose score
 * is >= the target's score. Items tied with the target are placed above it,
 * so a model that gives every item the same score gets the worst rank, never
 * the best (as in LightFM and OGB's Hits@K).
 *
 * Candidates: items with a NaN score and indices in `exclude` (e.g. the
 * user's history) are not candidates and are ignored. `-Infinity` is an
 * ordinary score: such items sort below any finite target, and tie with a
 * `-Infinity` target. A target whose own score is NaN was not retrieved
 * (e.g. outside a generative model's beams): rank `Infinity`, a miss at
 * every cutoff — never a hit just because few other items were scored.
 *
 * Throws InputError if `target` or an excluded index is out of range or not
 * an integer, or if `target` is itself excluded.
 */
export function rankOfTarget(scores: ArrayLike<number>, target: number, exclude?: ArrayLike<number>): number {
  const n = scores.length;
  if (!Number.isInteger(target) || target < 0 || target >= n) {
    throw new InputError(`target index ${target} is out of range [0, ${n})`);
  }
  const st = scores[target];
  const targetUnscored = Number.isNaN(st);
  // Counts over all items, then corrects for the excluded ones: O(n + |exclude|).
  const excluded = new Set<number>();
  for (let i = 0; exclude && i < exclude.length; i++) {
    const e = exclude[i];
    if (!Number.isInteger(e) || e < 0 || e >= n) throw new InputError(`excluded index ${e} is out of range [0, ${n})`);
    if (e === target) throw new InputError(`target index ${target} is also in the excluded set`);
    excluded.add(e);
  }
  if (targetUnscored) return Infinity;
  let above = 0;
  for (let j = 0; j < n; j++) {
    const s = scores[j];
    if (j === target || Number.isNaN(s)) continue;
    if (s >= st) above++;
  }
  for (const e of excluded) if (scores[e] >= st) above--;
  return above;
}

/**
 * 0-based rank of the positive item in the sampled protocol (one positive
 * scored against a fixed set of sampled negatives, e.g. 1 + 99 in P5's
 * direct recommendation). Same tie rule as {@link rankOfTarget}: negatives
 * with score >= the positive's are ranked above it; NaN negatives are
 * ignored; a NaN positive was not retrieved: `Infinity`.
 * The result lies in [0, number of valid negatives] or is `Infinity`.
 */
export function sampledRank(scoreOfPositive: number, scoresOfNegatives: ArrayLike<number>): number {
  // A positive that was not retrieved (NaN) is a miss at every cutoff.
  if (Number.isNaN(scoreOfPositive)) return Infinity;
  let above = 0;
  for (let j = 0; j < scoresOfNegatives.length; j++) {
    const s = scoresOfNegatives[j];
    if (Number.isNaN(s)) continue;
    if (s >= scoreOfPositive) above++;
  }
  return above;
}

/** Averages of HR@k and NDCG@k over users, keyed `HR@k` / `NDCG@k`, plus `count` (users added). */
export type RankingResult = Record<string, number> & { count: number };

/**
 * Accumulates per-user ranks and reports HR@k and NDCG@k averaged over users
 * (each user counts once). Add ranks from {@link rankOfTarget} or
 * {@link sampledRank}; `Infinity` means "target not retrieved".
 */
export class RankingAccumulator {
  readonly ks: readonly number[];
  private readonly hr: number[];
  private readonly ndcg: number[];
  /** Σ NDCG² per cutoff (HR is 0/1, so its Σ HR² is Σ HR). */
  private readonly ndcg2: number[];
  private n = 0;

  constructor(ks: readonly number[] = [1, 5, 10, 20]) {
    if (ks.length === 0) throw new InputError('RankingAccumulator needs at least one cutoff k');
    for (const k of ks) checkK(k);
    this.ks = [...new Set(ks)].sort((a, b) => a - b);
    this.hr = this.ks.map(() => 0);
    this.ndcg = this.ks.map(() => 0);
    this.ndcg2 = this.ks.map(() => 0);
  }

  /** Record one user's 0-based rank of the held-out item. */
  add(rank: number): this {
    checkRank(rank);
    for (let i = 0; i < this.ks.length; i++) {
      if (rank < this.ks[i]) {
        this.hr[i] += 1;
        const g = 1 / Math.log2(rank + 2);
        this.ndcg[i] += g;
        this.ndcg2[i] += g * g;
      }
    }
    this.n++;
    return this;
  }

  /** Fold another accumulator with the same cutoffs into this one (e.g. shards of users). */
  merge(other: RankingAccumulator): this {
    if (other.ks.length !== this.ks.length || other.ks.some((k, i) => k !== this.ks[i])) {
      throw new InputError(`cannot merge accumulators with different cutoffs (${this.ks.join(',')} vs ${other.ks.join(',')})`);
    }
    for (let i = 0; i < this.ks.length; i++) {
      this.hr[i] += other.hr[i];
      this.ndcg[i] += other.ndcg[i];
      this.ndcg2[i] += other.ndcg2[i];
    }
    this.n += other.n;
    return this;
  }

  get count(): number {
    return this.n;
  }

  /**
   * `{ 'HR@1', 'HR@5', ..., 'NDCG@1', 'NDCG@5', ..., count }` as fractions in
   * [0, 1]. With no users added every metric is 0 and `count` is 0.
   */
  result(): RankingResult {
    const out: Record<string, number> = {};
    const d = this.n > 0 ? this.n : 1;
    for (let i = 0; i < this.ks.length; i++) out[`HR@${this.ks[i]}`] = this.hr[i] / d;
    for (let i = 0; i < this.ks.length; i++) out[`NDCG@${this.ks[i]}`] = this.ndcg[i] / d;
    return Object.assign(out, { count: this.n });
  }

  /**
   * The standard error over users of each metric in `result()` (same keys):
   * the sample standard deviation of the per-user values / √n. NaN below two users.
   */
  standardErrors(): Record<string, number> {
    const out: Record<string, number> = {};
    const n = this.n;
    const se = (sum: number, sum2: number): number => {
      if (n < 2) return NaN;
      const mean = sum / n;
      return Math.sqrt(Math.max(0, (sum2 - n * mean * mean) / (n - 1)) / n);
    };
    for (let i = 0; i < this.ks.length; i++) out[`HR@${this.ks[i]}`] = se(this.hr[i], this.hr[i]);
    for (let i = 0; i < this.ks.length; i++) out[`NDCG@${this.ks[i]}`] = se(this.ndcg[i], this.ndcg2[i]);
    return out;
  }
}

// ---------------------------------------------------------------------------
// Text generation
// ---------------------------------------------------------------------------

/**
 * Word tokenizer for BLEU/ROUGE: Unicode NFKC, lowercase, curly apostrophe
 * -> `'`, then tokens are (in order of preference)
 *   - numbers with inner `.` or `,` separators (`4.5`, `1,000`),
 *   - runs of letters/digits, keeping inner apostrophes (`don't`, `it's`),
 *   - any other non-space character on its own (punctuation, symbols, emoji).
 * `"Great product!"` -> `['great', 'product', '!']`.
 */
export function tokenize(text: string): string[] {
  const norm = text.normalize('NFKC').toLowerCase().replace(/[\u2018\u2019\u02bc]/g, "'");
  return norm.match(TOKEN_RE) ?? [];
}

const TOKEN_RE = /\p{N}+(?:[.,]\p{N}+)+|[\p{L}\p{M}\p{N}]+(?:'[\p{L}\p{M}\p{N}]+)*|[^\s\p{L}\p{M}\p{N}]/gu;

/** One candidate's reference(s): a single string or several alternatives. */
export type ReferenceSet = string | readonly string[];

export interface TextMetricOptions {
  /** Replace the default {@link tokenize}. */
  tokenizer?: (text: string) => string[];
}

export interface BleuOptions extends TextMetricOptions {
  /**
   * `'none'` (default, as P5's `bleu_score(..., smooth=False)`): BLEU is 0
   * when some order has no matching n-gram. `'add-one'`: every order's
   * precision is (matches + 1) / (possible + 1) (Lin & Och 2004; the
   * `smooth=True` of the TensorFlow NMT `compute_bleu` P5 uses).
   */
  smoothing?: 'none' | 'add-one';
}

/**
 * Tokenizes every candidate and reference and interns tokens as small
 * integers, so n-gram keys (ids joined with ',') cannot collide whatever
 * characters a custom tokenizer lets through.
 */
function tokenizePairs(
  candidates: readonly string[],
  references: readonly ReferenceSet[],
  tok: (text: string) => string[],
): { cand: number[][]; refs: number[][][] } {
  if (candidates.length !== references.length) {
    throw new InputError(`candidates and references lengths differ (${candidates.length} vs ${references.length})`);
  }
  if (candidates.length === 0) throw new InputError('cannot score an empty set of candidates');
  const vocab = new Map<string, number>();
  const ids = (text: string): number[] =>
    tok(text).map((t) => {
      let id = vocab.get(t);
      if (id === undefined) vocab.set(t, (id = vocab.size));
      return id;
    });
  const cand: number[][] = [];
  const refs: number[][][] = [];
  for (let i = 0; i < candidates.length; i++) {
    const c: unknown = candidates[i];
    if (typeof c !== 'string') throw new InputError('candidate is not a string', { field: `candidates[${i}]` });
    const r: unknown = references[i];
    const list: unknown[] | null = typeof r === 'string' ? [r] : Array.isArray(r) ? r : null;
    if (!list || list.length === 0 || list.some((x) => typeof x !== 'string')) {
      throw new InputError('reference must be a string or a non-empty array of strings', { field: `references[${i}]` });
    }
    cand.push(ids(c));
    refs.push((list as string[]).map(ids));
  }
  return { cand, refs };
}

/** Multiset of the n-grams of `tokens` (token ids), keyed by the ids joined with ','. */
function ngramCounts(tokens: readonly number[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join(',');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/**
 * Corpus-level BLEU (Papineni et al. 2002), reported x100, over orders 1..n
 * with uniform weights 1/n:
 *
 *   BLEU = BP * exp( sum_{k=1..n} (1/n) * log p_k )
 *   p_k  = sum over sentences of clipped k-gram matches
 *          / sum over sentences of candidate k-grams
 *   clip: a candidate k-gram counts at most max_ref(count in that reference)
 *   BP   = 1 if c > r else exp(1 - r / c)   (0 when c = 0)
 *   c = total candidate length, r = sum of each sentence's closest reference
 *   length (ties -> the shorter one), as NLTK's corpus_bleu.
 *
 * Counts are pooled over the corpus before dividing (not a mean of sentence
 * BLEU). Without smoothing, BLEU is 0 when any p_k is 0 (see {@link BleuOptions}).
 * Texts are tokenized with {@link tokenize}. Throws InputError on length
 * mismatch, empty input, or an empty reference list.
 */
export function bleu(
  candidates: readonly string[],
  references: readonly ReferenceSet[],
  n = 4,
  opts: BleuOptions = {},
): number {
  if (!Number.isInteger(n) || n < 1) throw new InputError(`BLEU order must be a positive integer, got ${n}`);
  const smoothing = opts.smoothing ?? 'none';
  const { cand, refs } = tokenizePairs(candidates, references, opts.tokenizer ?? tokenize);
  const matches = new Array<number>(n).fill(0);
  const possible = new Array<number>(n).fill(0);
  let c = 0;
  let r = 0;
  for (let i = 0; i < cand.length; i++) {
    const hyp = cand[i];
    c += hyp.length;
    let best = refs[i][0].length;
    for (const ref of refs[i]) {
      const dBest = Math.abs(best - hyp.length), d = Math.abs(ref.length - hyp.length);
      if (d < dBest || (d === dBest && ref.length < best)) best = ref.length;
    }
    r += best;
    for (let k = 1; k <= n; k++) {
      const h = ngramCounts(hyp, k);
      if (h.size === 0) continue;
      const maxRef = new Map<string, number>();
      for (const ref of refs[i]) {
        for (const [g, cnt] of ngramCounts(ref, k)) if (cnt > (maxRef.get(g) ?? 0)) maxRef.set(g, cnt);
      }
      for (const [g, cnt] of h) matches[k - 1] += Math.min(cnt, maxRef.get(g) ?? 0);
      possible[k - 1] += hyp.length - k + 1;
    }
  }
  if (c === 0) return 0;
  let logSum = 0;
  for (let k = 0; k < n; k++) {
    const p = smoothing === 'add-one' ? (matches[k] + 1) / (possible[k] + 1) : possible[k] > 0 ? matches[k] / possible[k] : 0;
    if (p === 0) return 0;
    logSum += Math.log(p) / n;
  }
  const bp = c > r ? 1 : Math.exp(1 - r / c);
  return 100 * bp * Math.exp(logSum);
}

/** Corpus BLEU-2 (orders 1-2), x100. */
export function bleu2(candidates: readonly string[], references: readonly ReferenceSet[], opts: BleuOptions = {}): number {
  return bleu(candidates, references, 2, opts);
}

/** Corpus BLEU-4 (orders 1-4), x100. */
export function bleu4(candidates: readonly string[], references: readonly ReferenceSet[], opts: BleuOptions = {}): number {
  return bleu(candidates, references, 4, opts);
}

/** ROUGE F1 scores x100, each averaged over candidate/reference pairs. */
export interface RougeResult {
  'ROUGE-1': number;
  'ROUGE-2': number;
  'ROUGE-L': number;
}

function f1(overlap: number, candLen: number, refLen: number): number {
  if (overlap === 0 || candLen === 0 || refLen === 0) return 0;
  const p = overlap / candLen, r = overlap / refLen;
  return (2 * p * r) / (p + r);
}

function rougeN(hyp: readonly number[], ref: readonly number[], n: number): number {
  const h = ngramCounts(hyp, n), g = ngramCounts(ref, n);
  let overlap = 0;
  for (const [k, cnt] of h) overlap += Math.min(cnt, g.get(k) ?? 0);
  return f1(overlap, Math.max(0, hyp.length - n + 1), Math.max(0, ref.length - n + 1));
}

/** Length of the longest common subsequence, O(|a|*|b|) time, O(|b|) memory. */
function lcsLength(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/**
 * ROUGE-1, ROUGE-2 and ROUGE-L F1 (Lin 2004), x100, computed per
 * candidate/reference pair and averaged over pairs.
 *
 *   ROUGE-N: overlap = sum over n-grams of min(count in cand, count in ref);
 *            P = overlap / #cand n-grams, R = overlap / #ref n-grams.
 *   ROUGE-L: P = LCS / |cand|, R = LCS / |ref| (summary-free, sentence level).
 *   F1 = 2PR / (P + R), and 0 when the overlap is 0 or either side is empty.
 *
 * With several references for one candidate, each metric takes the best F1
 * over them. Tokenized with {@link tokenize}. Throws InputError on length
 * mismatch, empty input, or an empty reference list.
 */
export function rouge(
  candidates: readonly string[],
  references: readonly ReferenceSet[],
  opts: TextMetricOptions = {},
): RougeResult {
  const { cand, refs } = tokenizePairs(candidates, references, opts.tokenizer ?? tokenize);
  let r1 = 0, r2 = 0, rl = 0;
  for (let i = 0; i < cand.length; i++) {
    let b1 = 0, b2 = 0, bl = 0;
    for (const ref of refs[i]) {
      b1 = Math.max(b1, rougeN(cand[i], ref, 1));
      b2 = Math.max(b2, rougeN(cand[i], ref, 2));
      bl = Math.max(bl, f1(lcsLength(cand[i], ref), cand[i].length, ref.length));
    }
    r1 += b1;
    r2 += b2;
    rl += bl;
  }
  const m = cand.length;
  return { 'ROUGE-1': (100 * r1) / m, 'ROUGE-2': (100 * r2) / m, 'ROUGE-L': (100 * rl) / m };
}
