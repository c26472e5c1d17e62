import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError } from '../src/train/stop.js';
import { runPipeline, setProgressListener, type PipelineConfig, type PipelineResult, type ProgressEvent } from '../src/index.js';
import { MI_REVIEWS, tempDir } from './helpers/cli.js';

/**
 * runPipeline from the library, in this process, on the bundled Musical
 * Instruments reviews with tiny settings: two baselines and a 4-step tiny P5,
 * the first 20 users/rows evaluated.
 */
describe('runPipeline', () => {
  let tmp: string;
  let dir: string;
  let config: PipelineConfig;
  let first: PipelineResult;
  const events: ProgressEvent[] = [];

  beforeAll(async () => {
    tmp = tempDir('p5rec-pipeline-');
    dir = join(tmp, 'run');
    config = {
      dir,
      dataset: { source: { kind: 'amazon', reviews: MI_REVIEWS } },
      models: [
        { name: 'pop', kind: 'pop', split: 'sequential', tasks: ['sequential', 'direct'] },
        { name: 'bpr-mf', kind: 'bpr-mf', split: 'sequential', hyper: { epochs: 1 }, tasks: ['sequential'] },
      ],
      p5: {
        train: { config: 'tiny', epochs: 1, steps: 4, negatives: 4, maxSourceLength: 64, tokensPerBatch: 2048, maxBatch: 64, itemPieces: true },
        evals: [{ task: 'rating', prompt: '1-1' }, { task: 'sequential', prompt: '2-13' }, { task: 'explanation', prompt: '3-11' }],
      },
      mostFrequent: true,
      eval: { users: 20, beams: 5 },
      quiet: true,
    };
    setProgressListener((e) => events.push(e));
    try {
      first = await runPipeline(config);
    } finally {
      setProgressListener(null);
    }
  }, 480_000);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs every stage in order, each timed with the peak RSS after it, and reports progress through the listener', () => {
    expect(first.stages.map((s) => s.stage)).toEqual([
      'import', 'stats', 'audit', 'fit pop', 'fit bpr-mf', 'fit p5',
      'eval pop sequential', 'eval pop direct', 'eval bpr-mf sequential',
      'eval p5 rating 1-1', 'eval p5 sequential 2-13', 'eval p5 explanation 3-11',
      'most-frequent answer', 'report',
    ]);
    for (const s of first.stages) {
      expect(s.reused).toBe(false);
      expect(s.seconds).toBeGreaterThanOrEqual(0);
      expect(s.peakRssMB).toBeGreaterThan(0);
    }
    // The process's peak so far: it never falls.
    const peaks = first.stages.map((s) => s.peakRssMB);
    expect(peaks).toEqual([...peaks].sort((a, b) => a - b));
    const stages = events.filter((e) => e.label === 'pipeline');
    // One report per stage, named in `extra`, then the final one.
    expect(stages.map((e) => e.extra)).toEqual([...first.stages.map((s) => s.stage), 'done']);
    expect(stages.at(-1)).toMatchObject({ final: true, done: 14, total: 14, unit: 'stages' });
    // The stages' own progress (fits, training, evaluations) goes to the listener too.
    expect(events.some((e) => e.label.startsWith('eval '))).toBe(true);
  });

  it('writes the model folders, their run files and a report with a row per model and prompt', () => {
    const [part] = first.parts;
    expect(part.stats).toMatchObject({ users: 1429, items: 900 });
    expect(part.p5?.dir).toBe(join(dir, 'models', 'p5'));
    for (const m of ['pop', 'bpr-mf', 'p5']) expect(existsSync(join(dir, 'models', m, 'model.json'))).toBe(true);
    expect(first.runs).toContain(join(dir, 'models', 'p5', 'evals', 'sequential-test-p2-13-u20.json'));
    expect(first.runs).toContain(join(dir, 'runs', 'most-frequent', 'explanation-test-p3-11-u20.json'));
    const card = JSON.parse(readFileSync(join(dir, 'models', 'bpr-mf', 'model.json'), 'utf8'));
    expect(card.fit).toMatchObject({ peakRssScope: 'process so far (in-process pipeline)' });
    expect(card.fit.peakRssMB).toBeGreaterThan(0);
    const report = JSON.parse(readFileSync(join(dir, 'report', 'report.json'), 'utf8')) as { tables: { task: string; rows: { model: string; count?: number; values: (number | null)[]; vs?: { test: string } }[] }[] };
    const rows = (task: string) => report.tables.find((t) => t.task === task)!.rows;
    expect(report.tables.map((t) => t.task).sort()).toEqual(['direct', 'explanation', 'rating', 'sequential']);
    expect(rows('sequential').map((r) => r.model)).toEqual(['pop (random ids)', 'bpr-mf (random ids)', 'P5 (2-13, unseen)']);
    expect(rows('direct').map((r) => r.model)).toEqual(['pop (random ids)']);
    expect(rows('rating').map((r) => r.model)).toEqual(['P5 (1-1)']);
    expect(rows('explanation').map((r) => r.model)).toEqual(['P5 (3-11)', 'most frequent training answer (3-11 rows)']);
    for (const r of rows('sequential')) expect(r.count).toBe(20);
    // P5 (beams: items outside them are not retrieved, "-") and BPR-MF kept per-user ranks of the same 20 users as popularity: paired marks.
    const p5Run = JSON.parse(readFileSync(join(dir, 'models', 'p5', 'evals', 'sequential-test-p2-13-u20.json'), 'utf8'));
    expect(p5Run.perUser.users).toBe('0-19');
    expect(p5Run.perUser.ranks.split(' ')).toHaveLength(20);
    expect(rows('sequential').slice(1).map((r) => r.vs?.test)).toEqual(['paired', 'paired']);
    for (const t of report.tables) for (const r of t.rows) expect(r.values.every((v) => v === null || Number.isFinite(v)), `${t.task} ${r.model}`).toBe(true);
    expect(first.report).toMatchObject({ dir: join(dir, 'report'), runs: 7, tables: 4 });
  });

  it('a rerun reuses every finished stage', async () => {
    const again = await runPipeline(config);
    for (const s of again.stages) if (s.stage.startsWith('fit') || s.stage.startsWith('eval') || s.stage === 'import') expect(s.reused, s.stage).toBe(true);
    expect(again.runs).toEqual(first.runs);
  });

  it('a stop request ends a baseline fit at its next progress report, leaving no half-made model; the rerun refits it', async () => {
    writeFileSync(join(dir, 'models', 'bpr-mf.recipe.json'), '{"changed":true}\n');
    const ac = new AbortController();
    setProgressListener((e) => {
      if (e.label.includes('bpr-mf') || e.label.startsWith('fit') || e.label.startsWith('train')) ac.abort('SIGINT');
    });
    const cfg = { ...config, models: [{ name: 'bpr-mf', kind: 'bpr-mf', split: 'sequential' as const, hyper: { epochs: 3 }, tasks: ['sequential' as const] }], p5: undefined, mostFrequent: false, report: false as const, signal: ac.signal };
    try {
      await expect(runPipeline(cfg)).rejects.toBeInstanceOf(InterruptedError);
    } finally {
      setProgressListener(null);
    }
    expect(existsSync(join(dir, 'models', 'bpr-mf', 'model.json'))).toBe(false);
    const done = await runPipeline({ ...cfg, signal: undefined });
    expect(done.stages.find((s) => s.stage === 'fit bpr-mf')?.reused).toBe(false);
    expect(existsSync(join(dir, 'models', 'bpr-mf', 'model.json'))).toBe(true);
  });
});
