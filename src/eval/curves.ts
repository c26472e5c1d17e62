/**
 * Learning curves of a trained model, read from what its trainer left in the
 * model folder: P5 writes train/train-log.jsonl (a loss per step and
 * `"type":"valid"` lines), the baselines keep a per-epoch history (loss and
 * the validation metric) in model.json. Reports draw these.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CurvePoint {
  x: number;
  y: number;
  se?: number;
}

export interface LearningCurve {
  /** The model folder the curve was read from. */
  model: string;
  kind: string;
  xLabel: 'step' | 'epoch';
  /** Training loss, bucket-averaged down to at most `maxPoints` points. */
  loss: CurvePoint[];
  /** The validation metric the trainer selected the kept model by, if it recorded one. */
  valid?: { metric: string; lowerIsBetter: boolean; points: CurvePoint[]; best?: CurvePoint };
}

/** Average consecutive points into at most `max` buckets (a 10,000-step log stays readable). */
export function downsample(points: CurvePoint[], max: number): CurvePoint[] {
  if (points.length <= max) return points;
  const size = points.length / max;
  const out: CurvePoint[] = [];
  for (let b = 0; b < max; b++) {
    const part = points.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    if (!part.length) continue;
    out.push({ x: part[part.length - 1].x, y: part.reduce((s, p) => s + p.y, 0) / part.length });
  }
  return out;
}

function p5Curve(dir: string, log: string, maxPoints: number): LearningCurve | undefined {
  const loss: CurvePoint[] = [];
  const valid: CurvePoint[] = [];
  let metric = 'NDCG@10';
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a line cut by a crash mid-write is not a reason to drop the report
    }
    if (e.type === 'valid' && typeof e.step === 'number' && typeof e.metric === 'number') {
      // The log holds the selection metric's value; P5 selects by NDCG@10, so prefer that name on a tie (both 0 early on).
      const key = e['NDCG@10'] === e.metric ? 'NDCG@10' : Object.keys(e).find((k) => e[k] === e.metric && k !== 'metric');
      if (key) metric = key;
      const se = e[`${metric} se`];
      valid.push({ x: e.step, y: e.metric, ...(typeof se === 'number' ? { se } : {}) });
    } else if (typeof e.step === 'number' && typeof e.loss === 'number' && Number.isFinite(e.loss)) {
      loss.push({ x: e.step, y: e.loss });
    }
  }
  if (!loss.length && !valid.length) return undefined;
  const best = valid.length ? valid.reduce((a, b) => (b.y > a.y ? b : a)) : undefined;
  return { model: dir, kind: 'p5', xLabel: 'step', loss: downsample(loss, maxPoints), ...(valid.length ? { valid: { metric, lowerIsBetter: false, points: valid, best } } : {}) };
}

interface HistoryEntry { epoch: number; loss: number; valid?: number }

function baselineCurve(dir: string, card: Record<string, unknown>): LearningCurve | undefined {
  const training = (card.extra as { training?: { history?: HistoryEntry[] } } | undefined)?.training;
  const history = training?.history;
  if (!Array.isArray(history) || !history.length) return undefined;
  // The baselines' trainer selects rating models by validation RMSE (stored negated, higher = better) and rankers by NDCG@10.
  const rating = card.trainSplit === 'rating';
  const metric = rating ? 'RMSE' : 'NDCG@10';
  const loss = history.filter((h) => Number.isFinite(h.loss)).map((h) => ({ x: h.epoch, y: h.loss }));
  const points = history.filter((h) => typeof h.valid === 'number').map((h) => ({ x: h.epoch, y: rating ? -(h.valid as number) : (h.valid as number) }));
  const best = points.length ? points.reduce((a, b) => (rating ? (b.y < a.y ? b : a) : (b.y > a.y ? b : a))) : undefined;
  return { model: dir, kind: String(card.kind), xLabel: 'epoch', loss, ...(points.length ? { valid: { metric, lowerIsBetter: rating, points, best } } : {}) };
}

/** The learning curve of the model in `dir`, or undefined when its trainer recorded none (e.g. popularity). */
export function readLearningCurve(dir: string, maxPoints = 300): LearningCurve | undefined {
  const log = join(dir, 'train', 'train-log.jsonl');
  if (existsSync(log)) return p5Curve(dir, log, maxPoints);
  const cardFile = join(dir, 'model.json');
  if (!existsSync(cardFile)) return undefined;
  try {
    return baselineCurve(dir, JSON.parse(readFileSync(cardFile, 'utf8')));
  } catch {
    return undefined;
  }
}
