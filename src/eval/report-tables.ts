/**
 * Report tables: evaluation runs grouped by dataset, task and split, each row
 * with its standard errors and its margin over the trivial baseline; the run
 * header; the number formatting report.md and report.html share.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { VERSION } from '../version.js';
import { metricFromRanks, pairedDifference, type PairedDifference, type PerUserRanks } from './paired.js';
import { BEAUTY_PUBLISHED } from './published.js';
import type { RunEnv } from './run-env.js';

/** One evaluation as `p5rec eval` writes it (model/evals/<task>-<split>.json). */
export interface Run {
  model: string;
  kind: string;
  label?: string;
  prompt?: string;
  dataset: string;
  itemIndex?: string;
  seed?: number;
  task: 'rating' | 'direct' | 'sequential' | 'explanation' | 'review';
  split: string;
  protocol: string;
  metrics: Record<string, number>;
  /** Standard error of each metric (same keys), where the evaluation measured one. */
  stderr?: Record<string, number>;
  count: number;
  /** Ranking runs: each scored user's 0-based rank of the held-out item (layout in paired.ts); absent from older files and other tasks. */
  perUser?: PerUserRanks;
  fit?: { seconds?: number; peakRssMB?: number; seed?: number };
  /** Which code and machine produced the number (absent from runs written before it was recorded). */
  env?: RunEnv;
  /** Set when the dataset is Amazon Beauty (published rows are added). */
  beauty?: boolean;
  /** Extra columns a model wants shown (refinement counts, cost...). */
  notes?: string;
  /** The model folder the run was read from (set by collectRuns, not stored by eval). */
  dir?: string;
}

export const TASK_TITLES: Record<string, string> = { explanation: 'Explanation generation', review: 'Review summarization', rating: 'Rating prediction', sequential: 'Sequential recommendation (all-item ranking)', direct: 'Direct recommendation (1 positive among 100 candidates)' };
const METRIC_ORDER: Record<string, string[]> = {
  rating: ['RMSE', 'MAE'],
  sequential: ['HR@5', 'NDCG@5', 'HR@10', 'NDCG@10', 'HR@20', 'NDCG@20'],
  direct: ['HR@1', 'HR@5', 'NDCG@5', 'HR@10', 'NDCG@10'],
  explanation: ['BLEU-4', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L'],
  review: ['BLEU-2', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L'],
};
/** The metric each task's chart and significance mark use. */
const HEADLINE: Record<string, string> = { rating: 'RMSE', sequential: 'HR@10', direct: 'HR@10', explanation: 'BLEU-4', review: 'BLEU-2' };
/** The trivial predictor every model of a task is measured against (popularity / the global mean; the most frequent answer). */
const TRIVIAL: Record<string, string> = { rating: 'pop', sequential: 'pop', direct: 'pop', explanation: 'most-frequent', review: 'most-frequent' };
export const lowerIsBetter = (metric: string): boolean => /RMSE|MAE/.test(metric);
/** A margin counts as a win or a loss only beyond this many standard errors. */
export const SIGNIFICANT_Z = 2;
/** The one sentence report.md and report.html give on which test each mark used. */
export const TEST_NOTE = `A margin against the trivial baseline counts only beyond ${SIGNIFICANT_Z} standard errors of the difference: "paired SE" where both ranking runs kept per-user ranks of the same users (sd of the per-user differences / √n), else "SE" (unpaired, √(se² + se_baseline²); ratings and text are always unpaired).`;

/** A model's margin over the trivial baseline on the headline metric, in standard errors of the difference. */
export interface Margin {
  baseline: string;
  metric: string;
  /** Positive = better than the baseline (for RMSE/MAE: lower). */
  margin: number;
  /**
   * Which standard error of the difference z divides by. 'paired': both ranking runs kept per-user
   * ranks of the same users, so se = sd(d_u)/√n of the per-user differences d_u (their correlation
   * cancels). 'unpaired': √(se² + se_baseline²), which treats the runs as independent — right for
   * runs on different draws, conservative for the same users (ratings and text are always unpaired).
   */
  test: 'paired' | 'unpaired';
  /** That standard error of the difference; null without it. */
  se: number | null;
  /** margin / se. Null without both errors. */
  z: number | null;
  /** |z| ≥ 2; null when z is unknown. */
  significant: boolean | null;
  /** Why no z is given, when the reason is not a missing error (e.g. the two runs scored different users). */
  note?: string;
  /** Why both runs' per-user ranks could not be paired (different users, or ranks that do not reproduce the stored metric). */
  unpairedBecause?: string;
}

export interface TableRow {
  model: string;
  kind?: string;
  published: boolean;
  source?: string;
  values: (number | null)[];
  se: (number | null)[];
  count?: number;
  fitSeconds?: number;
  peakRssMB?: number;
  notes?: string;
  vs?: Margin;
}

export interface Table {
  dataset: string;
  task: string;
  split: string;
  columns: string[];
  headline: string;
  rows: TableRow[];
}

/**
 * The margin of `value` over the baseline's `base` on `metric`. With `paired` (the per-user
 * difference model − baseline of two runs on the same users) z is the paired one; otherwise the
 * two standard errors add (unpaired).
 */
export function margin(metric: string, value: number, se: number | undefined, base: number, baseSe: number | undefined, baseline: string, paired?: PairedDifference): Margin {
  const lower = lowerIsBetter(metric);
  const m = lower ? base - value : value - base;
  if (paired) {
    const z = paired.z === null ? null : lower ? -paired.z : paired.z;
    const out: Margin = { baseline, metric, margin: m, test: 'paired', se: Number.isFinite(paired.se) ? paired.se : null, z, significant: z === null ? null : Math.abs(z) >= SIGNIFICANT_Z };
    return z === null ? { ...out, note: paired.n < 2 ? 'fewer than two users' : 'every user differs by the same amount' } : out;
  }
  const s = se !== undefined && baseSe !== undefined && Number.isFinite(se) && Number.isFinite(baseSe) ? Math.sqrt(se * se + baseSe * baseSe) : NaN;
  const z = s > 0 ? m / s : null;
  return { baseline, metric, margin: m, test: 'unpaired', se: Number.isFinite(s) ? s : null, z, significant: z === null ? null : Math.abs(z) >= SIGNIFICANT_Z };
}

/** Stored and recomputed metrics may differ by summation order only: anything beyond this is misalignment. */
const RECOMPUTE_TOLERANCE = 1e-9;

/**
 * The paired difference run − base on a ranking `metric`, when both runs kept per-user ranks:
 * `{ diff }`, or `{ reason }` when they cannot be paired (different users, or ranks that do not
 * reproduce a run's stored metric); undefined when either run has no per-user ranks.
 */
export function pairRuns(run: Run, base: Run, metric: string): { diff?: PairedDifference; reason?: string } | undefined {
  if (!run.perUser || !base.perUser || !/^(HR|NDCG)@\d+$/.test(metric) || (run.task !== 'sequential' && run.task !== 'direct')) return undefined;
  try {
    for (const r of [run, base]) {
      const again = metricFromRanks(r.perUser!, metric);
      if (!(Math.abs(again - r.metrics[metric]) <= RECOMPUTE_TOLERANCE)) return { reason: `per-user ranks of ${rowLabel(r)} give ${metric} ${again}, not its ${r.metrics[metric]}` };
    }
    return { diff: pairedDifference(run.perUser, base.perUser, metric) };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

const rowLabel = (r: Run): string => r.label ?? `${r.kind}${r.itemIndex ? ` (${r.itemIndex} ids)` : ''}`;

export function buildTables(runs: Run[]): Table[] {
  const groups = new Map<string, Run[]>();
  for (const r of runs) {
    const key = `${r.dataset}\u0000${r.task}\u0000${r.split}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const tables: Table[] = [];
  for (const [key, rs] of groups) {
    const [dataset, task, split] = key.split('\u0000');
    const seen = new Set(rs.flatMap((r) => Object.keys(r.metrics)));
    const columns = [...(METRIC_ORDER[task] ?? []).filter((m) => seen.has(m)), ...[...seen].filter((m) => !(METRIC_ORDER[task] ?? []).includes(m)).sort()];
    const headline = columns.includes(HEADLINE[task]) ? HEADLINE[task] : columns[0];
    // Two runs with one label (the same prompt on two models) get their folder names so no two rows read the same.
    const labels = rs.map(rowLabel);
    const dup = new Set(labels.filter((l, i) => labels.indexOf(l) !== i));
    const rows: TableRow[] = rs.map((r, i) => ({
      model: dup.has(labels[i]) ? `${labels[i]} — ${basename(r.dir ?? r.model)}` : labels[i],
      kind: r.kind,
      published: false,
      values: columns.map((c) => r.metrics[c] ?? null),
      se: columns.map((c) => (r.stderr?.[c] !== undefined && Number.isFinite(r.stderr[c]) ? r.stderr[c] : null)),
      count: r.count,
      fitSeconds: r.fit?.seconds,
      peakRssMB: r.fit?.peakRssMB,
      notes: r.notes,
    }));
    // The trivial baseline: of the same prompt's rows where the runs carry one (text tasks), else the first of its kind.
    rs.forEach((r, i) => {
      if (r.kind === TRIVIAL[task]) return;
      const base = rs.find((b) => b.kind === TRIVIAL[task] && (!r.prompt || !b.prompt || b.prompt === r.prompt || TRIVIAL[task] === 'pop')) ?? rs.find((b) => b.kind === TRIVIAL[task]);
      const v = r.metrics[headline];
      if (!base || v === undefined || base.metrics[headline] === undefined) return;
      // Runs over different users (a 5-user smoke row beside all users) differ by more than noise: no verdict.
      const pair = r.count === base.count ? pairRuns(r, base, headline) : undefined;
      const m = margin(headline, v, r.stderr?.[headline], base.metrics[headline], base.stderr?.[headline], rows[rs.indexOf(base)].model, pair?.diff);
      rows[i].vs = r.count !== base.count ? { ...m, z: null, significant: null, note: `scored on ${r.count} vs ${base.count}` } : pair?.reason ? { ...m, unpairedBecause: pair.reason } : m;
    });
    if (rs.some((r) => r.beauty) && split === 'test') {
      for (const p of BEAUTY_PUBLISHED.filter((x) => x.task === task)) {
        rows.push({ model: p.model, published: true, source: p.source, values: columns.map((c) => p.metrics[c] ?? null), se: columns.map(() => null) });
      }
    }
    tables.push({ dataset, task, split, columns, headline, rows });
  }
  const order = ['rating', 'sequential', 'explanation', 'review', 'direct'];
  return tables.sort((a, b) => a.dataset.localeCompare(b.dataset) || order.indexOf(a.task) - order.indexOf(b.task) || a.split.localeCompare(b.split));
}

/** Who produced the report's numbers: code, machines, datasets, and each model's fit. */
export interface ReportHeader {
  generated: string;
  p5rec: string;
  commits: string[];
  hosts: string[];
  datasets: { name: string; fingerprint?: string; seed?: number }[];
  models: { model: string; kind: string; fitSeconds?: number; trainSeed?: number; commit?: string; host?: string; evaluated?: string }[];
}

function readCard(dir: string | undefined): Record<string, unknown> | undefined {
  if (!dir || !existsSync(join(dir, 'model.json'))) return undefined;
  try {
    return JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

export function buildHeader(runs: Run[]): ReportHeader {
  const uniq = <T>(xs: (T | undefined)[]): T[] => [...new Set(xs.filter((x): x is T => x !== undefined))];
  const datasets = new Map<string, ReportHeader['datasets'][number]>();
  const models = new Map<string, ReportHeader['models'][number]>();
  // One model folder holds many runs: read each model.json once.
  const cards = new Map<string | undefined, Record<string, unknown> | undefined>();
  for (const r of runs) {
    if (!cards.has(r.dir)) cards.set(r.dir, readCard(r.dir));
    const card = cards.get(r.dir);
    const fingerprint = (card?.dataset as { fingerprint?: string } | undefined)?.fingerprint;
    const d = datasets.get(r.dataset) ?? { name: r.dataset, seed: r.seed };
    if (fingerprint && !d.fingerprint) d.fingerprint = fingerprint;
    datasets.set(r.dataset, d);
    const key = r.dir ?? r.model;
    if (!models.has(key)) models.set(key, { model: r.dir ? basename(r.dir) : r.model, kind: r.kind, fitSeconds: r.fit?.seconds, trainSeed: r.fit?.seed, commit: r.env?.commit, host: r.env?.host, evaluated: r.env?.time });
  }
  return {
    generated: new Date().toISOString(),
    p5rec: VERSION,
    commits: uniq(runs.map((r) => r.env?.commit)),
    hosts: uniq(runs.map((r) => r.env?.host)),
    datasets: [...datasets.values()],
    models: [...models.values()],
  };
}

export const fmt = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
/** `value ± se`, or the value alone when no error was measured. */
export const withSe = (v: number | null, se: number | null): string => (se === null ? fmt(v) : `${fmt(v)} ± ${fmt(se)}`);
export function marginText(m: Margin | undefined): string {
  if (!m) return '–';
  const sign = m.margin >= 0 ? '+' : '−';
  if (m.z === null) return `${sign}${fmt(Math.abs(m.margin))} (${m.note ?? 'no error measured'})`;
  const verdict = m.significant ? (m.margin > 0 ? 'better' : 'worse') : 'within noise';
  return `${sign}${fmt(Math.abs(m.margin))} (${Math.abs(m.z).toFixed(1)} ${m.test === 'paired' ? 'paired SE' : 'SE'}, ${verdict}${m.unpairedBecause ? `; unpaired: ${m.unpairedBecause}` : ''})`;
}

