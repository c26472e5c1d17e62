/**
 * Rating calibration: star ≈ a + b·E[star], fitted by least squares on the
 * validation split's ratings, one map per rating template.
 *
 * A small P5 learns some user and item signal for ratings, but its expected
 * star is mis-scaled: a model trained briefly stays near the training
 * marginal, and one trained longer is too spread out, because it overfits the
 * few ratings each user has. Both are worse than the global mean in RMSE
 * even when the stars correlate with the truth. The linear map is Platt-style
 * post-hoc calibration on held-out data. It turns that correlation into RMSE,
 * and with no signal it collapses to about the validation mean (b = 0). The
 * raw expectation stays available (`ratingMode: 'expected'`), and reports
 * show both.
 */
import type { Dataset } from '../data/dataset.js';
import { VALID } from '../data/splits.js';
import { InputError } from '../errors.js';
import type { P5Recommender, RatingCalibration } from './recommender.js';

/** Least squares y ≈ a + b·x with b clipped at 0 (an anti-correlated star is not used). */
export function fitLinear(x: readonly number[], y: readonly number[]): { a: number; b: number } {
  const n = x.length;
  if (n === 0 || n !== y.length) throw new InputError(`calibration needs paired predictions and ratings, got ${n} and ${y.length}`);
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  const b = sxx > 1e-12 ? Math.max(0, sxy / sxx) : 0;
  return { a: my - b * mx, b };
}

/**
 * Fit one calibration per rating template on `ds`'s validation ratings. Templates
 * the dataset cannot fill are left out. Returns {} when there are no validation ratings.
 */
export async function fitRatingCalibration(rec: P5Recommender, ds: Dataset, templateIds: readonly string[]): Promise<Record<string, RatingCalibration>> {
  const rows = ds.manifest.fields.rating ? Array.from(ds.ratingRows(VALID)) : [];
  if (rows.length === 0) return {};
  const pairs = rows.map((k) => [ds.interactions.user[k], ds.interactions.item[k]] as const);
  const truth = rows.map((k) => ds.interactions.rating[k]);
  const out: Record<string, RatingCalibration> = {};
  for (const id of templateIds) {
    let x: number[];
    try {
      x = await rec.expectedStars(pairs, id);
    } catch (e) {
      if (e instanceof InputError) continue; // a template this dataset cannot fill
      throw e;
    }
    const { a, b } = fitLinear(x, truth);
    out[id] = { a, b, n: rows.length };
  }
  return out;
}
