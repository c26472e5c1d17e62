/**
 * Per-user ranks as a ranking run file keeps them, and the paired comparison
 * of two runs that scored the same users.
 *
 * Layout of a run file's `perUser` field (two strings, so a 22,363-user run
 * stays two lines of JSON instead of 44,726):
 *
 *   users: the dataset's user indices, in the order scored, as comma-separated
 *          runs of consecutive indices: "a-b" (a, a+1, ..., b) or "a".
 *          All 22,363 Beauty users read "0-22362"; users 0, 1, 2 and 7 read "0-2,7".
 *   ranks: the 0-based rank of each user's held-out item, same order,
 *          space-separated; "-" when it was not retrieved (rank Infinity,
 *          e.g. outside P5's beams): "0 17 - 3".
 */
import { InputError } from '../errors.js';

/** The per-user ranks of one ranking run (see the module comment for the layout). */
export interface PerUserRanks {
  users: string;
  ranks: string;
}

/** The mean of the per-user differences a − b, its standard error sd(d)/√n, z = mean/se, and n. */
export interface PairedDifference {
  mean: number;
  /** Sample standard deviation of the differences / √n; NaN below two users. */
  se: number;
  /** mean / se. 0 when every user's difference is 0 (identical runs: se 0, nothing differs); null when se is NaN, or 0 while the mean is not. */
  z: number | null;
  n: number;
}

/** Encode users (dataset indices) and their 0-based ranks (`Infinity` = not retrieved) as a run file keeps them. */
export function encodePerUser(users: ArrayLike<number>, ranks: ArrayLike<number>): PerUserRanks {
  if (users.length !== ranks.length) throw new InputError(`${users.length} users but ${ranks.length} ranks`, { field: 'perUser.ranks' });
  const runs: string[] = [];
  for (let i = 0; i < users.length; ) {
    const a = users[i];
    if (!Number.isInteger(a) || a < 0) throw new InputError(`user index must be a non-negative integer, got ${a}`, { field: 'perUser.users' });
    let j = i;
    while (j + 1 < users.length && users[j + 1] === users[j] + 1) j++;
    runs.push(j > i ? `${a}-${users[j]}` : `${a}`);
    i = j + 1;
  }
  const rs: string[] = [];
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (Number.isNaN(r) || r < 0) throw new InputError(`rank must be a non-negative number, got ${r}`, { field: 'perUser.ranks' });
    rs.push(r === Infinity ? '-' : String(r));
  }
  return { users: runs.join(','), ranks: rs.join(' ') };
}

/** The user indices of `perUser.users`, in order. */
export function decodeUsers(users: unknown): number[] {
  if (typeof users !== 'string') throw new InputError(`must be a string of user index ranges such as "0-99,120", got ${typeof users}`, { field: 'perUser.users' });
  if (users === '') return [];
  const out: number[] = [];
  for (const part of users.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const a = m ? Number(m[1]) : NaN, b = m?.[2] !== undefined ? Number(m[2]) : a;
    if (!m || b < a) throw new InputError(`'${part}' is not a user index or an ascending range a-b`, { field: 'perUser.users' });
    for (let u = a; u <= b; u++) out.push(u);
  }
  return out;
}

/** The ranks of `perUser.ranks`, in order (`Infinity` for "-"). */
export function decodeRanks(ranks: unknown): number[] {
  if (typeof ranks !== 'string') throw new InputError(`must be a string of space-separated ranks, got ${typeof ranks}`, { field: 'perUser.ranks' });
  if (ranks === '') return [];
  return ranks.split(' ').map((t) => {
    const r = t === '-' ? Infinity : t === '' ? NaN : Number(t);
    if (!(r >= 0)) throw new InputError(`'${t}' is not a rank (a non-negative number, or - for not retrieved)`, { field: 'perUser.ranks' });
    return r;
  });
}

/** The cutoff of a per-user ranking metric (`HR@k` or `NDCG@k`). */
function parseMetric(metric: string): { ndcg: boolean; k: number } {
  const m = /^(HR|NDCG)@(\d+)$/.exec(metric);
  if (!m || Number(m[2]) < 1) throw new InputError(`'${metric}' is not a per-user ranking metric (HR@k or NDCG@k)`, { field: 'metric' });
  return { ndcg: m[1] === 'NDCG', k: Number(m[2]) };
}

/** Each user's value of `metric` (HR@k or NDCG@k) from the 0-based ranks, exactly as RankingAccumulator adds them. */
export function perUserValues(ranks: readonly number[], metric: string): Float64Array {
  const { ndcg, k } = parseMetric(metric);
  return Float64Array.from(ranks, (r) => (r < k ? (ndcg ? 1 / Math.log2(r + 2) : 1) : 0));
}

/** The run's `metric` recomputed from its per-user ranks (summed in the order scored, as the evaluation did). */
export function metricFromRanks(p: PerUserRanks, metric: string): number {
  const v = perUserValues(decodeRanks(p.ranks), metric);
  let s = 0;
  for (const x of v) s += x;
  return s / (v.length || 1);
}

/**
 * The paired comparison of two ranking runs on `metric` (HR@k or NDCG@k):
 * d_u = metric_a(u) − metric_b(u) over the users both scored, which must be
 * the same users in the same order (refused otherwise, naming the field).
 * se = sample sd(d) / √n, so a positive correlation between the runs
 * shrinks it below the unpaired √(se_a² + se_b²).
 */
export function pairedDifference(a: PerUserRanks, b: PerUserRanks, metric: string): PairedDifference {
  for (const [name, p] of [['a', a], ['b', b]] as const) {
    if (!p || typeof p !== 'object') throw new InputError(`run ${name} has no per-user ranks`, { field: 'perUser' });
  }
  const ua = decodeUsers(a.users), ub = decodeUsers(b.users);
  const ra = decodeRanks(a.ranks), rb = decodeRanks(b.ranks);
  if (ra.length !== ua.length) throw new InputError(`run a lists ${ua.length} users but ${ra.length} ranks`, { field: 'perUser.ranks' });
  if (rb.length !== ub.length) throw new InputError(`run b lists ${ub.length} users but ${rb.length} ranks`, { field: 'perUser.ranks' });
  if (ua.length !== ub.length) throw new InputError(`the runs scored different users (${ua.length} vs ${ub.length}); a paired test needs the same users in the same order`, { field: 'perUser.users' });
  const at = ua.findIndex((u, i) => u !== ub[i]);
  if (at >= 0) throw new InputError(`the runs scored different users (position ${at}: user ${ua[at]} vs ${ub[at]}); a paired test needs the same users in the same order`, { field: 'perUser.users' });
  const va = perUserValues(ra, metric), vb = perUserValues(rb, metric);
  const n = va.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += va[i] - vb[i];
  const mean = n ? sum / n : 0;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (va[i] - vb[i] - mean) ** 2;
  const se = n < 2 ? NaN : Math.sqrt(ss / (n - 1) / n);
  const z = Number.isNaN(se) ? null : se > 0 ? mean / se : mean === 0 ? 0 : null;
  return { mean, se, z, n };
}
