import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLearningCurve } from '../src/eval/curves.js';
import { mae, ratingStandardErrors, rmse } from '../src/eval/metrics.js';
import { buildTables, collectRuns, margin, renderMarkdown } from '../src/eval/report.js';
import { barChart } from '../src/eval/report-html.js';
import { runEnv } from '../src/eval/run-env.js';
import { textMetrics, textStandardErrors } from '../src/p5/evaluate-text.js';
import { cli, tempDir } from './helpers/cli.js';

const seq = (metrics: Record<string, number>, stderr: Record<string, number>, extra: Record<string, unknown> = {}) => ({
  dataset: 'toy', task: 'sequential', split: 'test', protocol: 'leave-one-out', metrics, stderr, count: 1000, ...extra,
});

/** A model folder with one eval run, as `p5rec eval` leaves it. */
function modelDir(root: string, name: string, run: Record<string, unknown>, card: Record<string, unknown> = {}): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'evals'), { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'p5rec-model', kind: run.kind, trainSplit: 'sequential', dataset: { name: 'toy', fingerprint: 'abc123', users: 10, items: 5 }, ...card }));
  writeFileSync(join(dir, 'evals', `${run.task}-${run.split}.json`), JSON.stringify({ model: dir, ...run }));
  return dir;
}

describe('standard errors', () => {
  it('rating: MAE is sd(|e|)/√n and RMSE the delta-method se of √MSE', () => {
    const pred = [3, 4, 5, 2, 4.5, 1, 3.5, 4];
    const truth = [4, 4, 3, 2, 5, 2, 5, 1];
    const e = pred.map((p, i) => Math.abs(p - truth[i]));
    const n = e.length;
    const sd = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
    };
    const se = ratingStandardErrors(pred, truth);
    expect(se.MAE).toBeCloseTo(sd(e) / Math.sqrt(n), 12);
    expect(se.RMSE).toBeCloseTo(sd(e.map((x) => x * x)) / Math.sqrt(n) / (2 * rmse(pred, truth)), 12);
    expect(mae(pred, truth)).toBeGreaterThan(0);
    expect(Number.isNaN(ratingStandardErrors([1], [2]).MAE)).toBe(true);
  });

  it('text: a seeded bootstrap, repeatable, zero when every row scores the same', () => {
    const refs = ['great strings for the price', 'the tuner holds pitch well', 'a solid stand', 'cheap cable broke fast', 'good sound'];
    const outs = ['great strings', 'the tuner works well', 'a stand', 'cable broke', 'nice sound'];
    const a = textStandardErrors('explanation', outs, refs);
    expect(a).toEqual(textStandardErrors('explanation', outs, refs));
    expect(Object.keys(a).sort()).toEqual(Object.keys(textMetrics('explanation', outs, refs)).sort());
    expect(a['ROUGE-1']).toBeGreaterThan(0);
    const same = textStandardErrors('review', refs.map(() => 'good'), refs.map(() => 'good'));
    expect(same['ROUGE-1']).toBe(0);
  });

  it('a margin is significant only beyond two standard errors, in the better direction for errors', () => {
    expect(margin('HR@10', 0.08, 0.005, 0.06, 0.005, 'pop')).toMatchObject({ significant: true });
    expect(margin('HR@10', 0.065, 0.005, 0.06, 0.005, 'pop')).toMatchObject({ significant: false });
    const rm = margin('RMSE', 0.90, 0.01, 0.95, 0.01, 'mean');
    expect(rm.margin).toBeCloseTo(0.05, 12);
    expect(rm.z).toBeCloseTo(0.05 / Math.sqrt(2e-4), 9);
    expect(margin('HR@10', 0.1, undefined, 0.06, 0.005, 'pop')).toMatchObject({ z: null, significant: null });
  });

  it('every evaluation records where it ran', () => {
    const env = runEnv();
    expect(env.host.length).toBeGreaterThan(0);
    expect(env.node).toBe(process.version);
    expect(Date.parse(env.time)).not.toBeNaN();
  });
});

describe('report', () => {
  it('shows n, ± se, the margin over popularity with its verdict, the run header and full labels', () => {
    const tmp = tempDir();
    const long = 'P5 (2-1, constrained to the one hundred candidates of the direct task)';
    modelDir(tmp, 'pop', seq({ 'HR@10': 0.06, 'NDCG@10': 0.03 }, { 'HR@10': 0.005, 'NDCG@10': 0.003 }, { kind: 'pop' }));
    modelDir(tmp, 'sasrec', seq({ 'HR@10': 0.09, 'NDCG@10': 0.05 }, { 'HR@10': 0.006, 'NDCG@10': 0.004 }, { kind: 'sasrec', env: { p5rec: '0.1.0', commit: 'deadbeef0001', host: 'box', platform: 'linux-x64', node: 'v20', cpus: 2, time: '2026-12-04T00:00:00Z' } }));
    modelDir(tmp, 'p5', seq({ 'HR@10': 0.065, 'NDCG@10': 0.031 }, { 'HR@10': 0.006, 'NDCG@10': 0.003 }, { kind: 'p5', label: long }));
    const runs = collectRuns([join(tmp, 'pop'), join(tmp, 'sasrec'), join(tmp, 'p5')]);
    const [t] = buildTables(runs);
    expect(t.headline).toBe('HR@10');
    const row = (k: string) => t.rows.find((r) => r.kind === k)!;
    expect(row('sasrec').vs).toMatchObject({ baseline: 'pop', significant: true });
    expect(row('p5').vs?.significant).toBe(false);
    expect(row('pop').vs).toBeUndefined();

    const out = join(tmp, 'rep');
    const r = cli(['report', '--runs', join(tmp, 'pop'), join(tmp, 'sasrec'), join(tmp, 'p5'), '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('| sasrec | 1000 | 0.0900 ± 0.0060 | 0.0500 ± 0.0040 | +0.0300 (3.8 SE, better) |');
    expect(md).toContain('(0.6 SE, within noise)');
    expect(md).toContain('| toy | abc123 |');
    expect(md).toContain('commit deadbeef0001');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain(`>${long}</text>`); // the chart label in full, not cut
    expect(html).toMatch(/class="se"/);
    expect(html).toContain('name="viewport"');
  });

  it('gives no verdict between runs that scored different users', () => {
    const tmp = tempDir();
    modelDir(tmp, 'pop', seq({ 'HR@10': 0.06 }, { 'HR@10': 0.005 }, { kind: 'pop' }));
    modelDir(tmp, 'llm', seq({ 'HR@10': 0 }, { 'HR@10': 0 }, { kind: 'llm', label: 'LLM smoke', count: 5 }));
    const [t] = buildTables(collectRuns([join(tmp, 'pop'), join(tmp, 'llm')]));
    expect(t.rows.find((r) => r.kind === 'llm')!.vs).toMatchObject({ z: null, significant: null, note: 'scored on 5 vs 1000' });
  });

  it('draws no bar chart when the rows do not differ', () => {
    const tmp = tempDir();
    modelDir(tmp, 'a', { dataset: 'toy', task: 'explanation', split: 'test', protocol: 'x', kind: 'p5', label: 'P5 (3-1)', metrics: { 'BLEU-4': 0, 'ROUGE-1': 10 }, count: 50 });
    modelDir(tmp, 'b', { dataset: 'toy', task: 'explanation', split: 'test', protocol: 'x', kind: 'most-frequent', label: 'most frequent', metrics: { 'BLEU-4': 0, 'ROUGE-1': 12 }, count: 50 });
    const [t] = buildTables(collectRuns([join(tmp, 'a'), join(tmp, 'b')]));
    expect(t.headline).toBe('BLEU-4');
    expect(barChart(t)).toBe('');
    expect(t.rows[0].vs).toMatchObject({ baseline: 'most frequent', margin: 0, z: null });
  });

  it('learning curves: P5 loss and validation points from its train log, baselines from their epoch history', () => {
    const tmp = tempDir();
    const p5 = modelDir(tmp, 'p5', seq({ 'HR@10': 0.05 }, { 'HR@10': 0.005 }, { kind: 'p5' }));
    mkdirSync(join(p5, 'train'));
    const lines: string[] = [];
    for (let s = 1; s <= 1000; s++) lines.push(JSON.stringify({ step: s, loss: 5 - s / 500 }));
    lines.splice(500, 0, JSON.stringify({ type: 'valid', step: 500, metric: 0.02, users: 100, 'HR@10': 0.04, 'NDCG@10': 0.02, 'NDCG@10 se': 0.004 }));
    lines.push(JSON.stringify({ type: 'valid', step: 1000, metric: 0.015, users: 100, 'HR@10': 0.03, 'NDCG@10': 0.015, 'NDCG@10 se': 0.003 }), '{"step": 100');
    writeFileSync(join(p5, 'train', 'train-log.jsonl'), lines.join('\n'));
    const c = readLearningCurve(p5)!;
    expect(c.xLabel).toBe('step');
    expect(c.loss.length).toBe(300);
    expect(c.loss[c.loss.length - 1].x).toBe(1000);
    expect(c.valid).toMatchObject({ metric: 'NDCG@10', best: { x: 500, y: 0.02, se: 0.004 } });

    const mf = modelDir(tmp, 'mf', { dataset: 'toy', task: 'rating', split: 'test', protocol: 'x', kind: 'mf', metrics: { RMSE: 1 }, count: 9 },
      { trainSplit: 'rating', extra: { training: { history: [{ epoch: 1, loss: 2, valid: -1.2, seconds: 1 }, { epoch: 2, loss: 1.5, valid: -1.1, seconds: 1 }, { epoch: 3, loss: 1.4, valid: -1.15, seconds: 1 }] } } });
    const m = readLearningCurve(mf)!;
    expect(m.valid).toMatchObject({ metric: 'RMSE', lowerIsBetter: true, best: { x: 2, y: 1.1 } });

    const md = renderMarkdown(buildTables(collectRuns([p5, mf])), undefined, [c, m]);
    expect(md).toContain('## Learning curves');
    expect(md).toContain('| 500 (best) | 0.0200 ± 0.0040 |');
    const out = join(tmp, 'rep');
    expect(cli(['report', '--runs', p5, mf, '--out', out]).status).toBe(0);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('aria-label="p5: training loss"');
    expect(html).toContain('aria-label="mf: validation RMSE (best 1.1000 at epoch 2)"');
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(json.curves.map((x: { kind: string }) => x.kind)).toEqual(['p5', 'mf']);
  });

  it('a shell glob over a quickstart models/ folder skips recipes and unevaluated models, and says so', () => {
    const tmp = tempDir();
    modelDir(tmp, 'pop', seq({ 'HR@10': 0.06 }, { 'HR@10': 0.005 }, { kind: 'pop' }));
    writeFileSync(join(tmp, 'pop.recipe.json'), JSON.stringify({ kind: 'pop' }));
    mkdirSync(join(tmp, 'fresh'));
    writeFileSync(join(tmp, 'fresh', 'model.json'), '{}');
    const r = cli(['report', '--runs', join(tmp, 'pop'), join(tmp, 'pop.recipe.json'), join(tmp, 'fresh'), '--out', join(tmp, 'rep'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ runs: 1 });
    expect(r.stderr).toMatch(/skipped .*pop\.recipe\.json: a quickstart recipe/);
    expect(r.stderr).toMatch(/skipped .*fresh: model folder without evals/);
  });
});
