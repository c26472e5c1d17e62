import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { TEST } from '../src/data/splits.js';
import { evaluate } from '../src/eval/evaluate.js';
import { buildTables, collectRuns, renderMarkdown } from '../src/eval/report.js';
import { decodeRanks, decodeUsers, metricFromRanks } from '../src/eval/paired.js';
import { evaluateToRunFile } from '../src/eval/run-file.js';
import type { ModelCard } from '../src/recommend/card.js';
import type { ModelState, Recommender } from '../src/recommend/recommender.js';
import { readSafetensors, writeSafetensors } from '../src/util/safetensors.js';
import { parseHyper } from '../src/cli/models.js';
import { BEAUTY, cli, MOVIELENS, tempDir } from './helpers/cli.js';

/** A recommender that knows the answer: checks the protocols' plumbing end to end. */
class Oracle implements Recommender {
  readonly kind = 'oracle';
  readonly tasks = ['rating', 'direct', 'sequential'] as const;
  constructor(private readonly ds: Dataset, readonly trainSplit: 'rating' | 'sequential', private readonly rankAt = 0) {}
  score(user: number, _history: Int32Array, candidates?: Int32Array): Float32Array {
    const target = this.ds.sequenceSplit(user, TEST)[0];
    const items = candidates ?? Int32Array.from({ length: this.ds.numItems }, (_, i) => i);
    // The target gets score 0.5; the first `rankAt` other items score above it.
    let above = 0;
    return Float32Array.from(items, (i) => (i === target ? 0.5 : above++ < this.rankAt ? 1 : 0));
  }
  predictRating(user: number, item: number): number {
    const x = this.ds.interactions;
    for (let k = this.ds.userStart[user]; k < this.ds.userStart[user] + this.ds.userLength[user]; k++) if (x.item[k] === item) return x.rating[k];
    return 3;
  }
  state(): ModelState {
    return { config: {}, tensors: {} };
  }
}

describe('evaluation harness', () => {
  let tmp: string;
  let ds: Dataset;
  beforeAll(async () => {
    tmp = tempDir();
    const out = join(tmp, 'ml');
    expect(cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', out, '--kcore', '15', '--quiet', '--json']).status).toBe(0);
    ds = await loadDataset(out);
  });

  it('a perfect model scores HR=NDCG=1 and RMSE=0; a rank-k model scores exactly what the formulas say', async () => {
    const seq = await evaluate(ds, new Oracle(ds, 'sequential'), 'sequential', { quiet: true });
    expect(seq.metrics['HR@5']).toBe(1);
    expect(seq.metrics['NDCG@10']).toBe(1);
    expect(seq.count).toBe(ds.numUsers);
    const dir = await evaluate(ds, new Oracle(ds, 'sequential', 2), 'direct', { quiet: true });
    // Two candidates above the target: rank 2 → HR@1 0, HR@5 1, NDCG@5 = 1/log2(4) = 0.5.
    expect(dir.metrics['HR@1']).toBe(0);
    expect(dir.metrics['HR@5']).toBe(1);
    expect(dir.metrics['NDCG@5']).toBeCloseTo(0.5, 12);
    const rat = await evaluate(ds, new Oracle(ds, 'rating'), 'rating', { quiet: true });
    expect(rat.metrics.RMSE).toBe(0);
    expect(rat.count).toBe(ds.ratingRows(TEST).length);
  });

  it('ranking runs keep each user\'s rank (not retrieved: -), which round-trip through the run file and pair in the report', async () => {
    // Popularity-like: rank u % 15; the model: two places better, and user 3 outside its beams (NaN target).
    const ranker = (kind: string, rankOf: (u: number) => number): Recommender => ({
      kind, tasks: ['sequential', 'direct'], trainSplit: 'sequential',
      score: (user, _h, candidates) => {
        const target = ds.sequenceSplit(user, TEST)[0];
        const items = candidates ?? Int32Array.from({ length: ds.numItems }, (_, i) => i);
        const r = rankOf(user);
        let above = 0;
        return Float32Array.from(items, (i) => (i === target ? (r === Infinity ? NaN : 0.5) : above++ < r ? 1 : 0));
      },
      state: () => ({ config: {}, tensors: {} }),
    });
    const card = (kind: string) => ({ kind, fit: { seconds: 1, peakRssMB: 1, seed: 1 }, config: {} }) as unknown as ModelCard;
    const pop = ranker('pop', (u) => u % 15);
    const model = ranker('sasrec', (u) => (u === 3 ? Infinity : Math.max(0, (u % 15) - 2)));
    const res = await evaluate(ds, model, 'sequential', { quiet: true, maxUsers: 30 });
    expect(decodeUsers(res.perUser!.users)).toEqual(Array.from({ length: 30 }, (_, u) => u));
    expect(decodeRanks(res.perUser!.ranks).slice(0, 5)).toEqual([0, 0, 0, Infinity, 2]);
    const dirs: string[] = [];
    for (const rec of [pop, model]) {
      const dir = join(tmp, `paired-${rec.kind}`);
      const { file } = await evaluateToRunFile(ds, join(tmp, 'ml'), dir, { rec, card: card(rec.kind) }, { task: 'sequential', quiet: true });
      const text = readFileSync(file, 'utf8');
      // Two lines of JSON, however many users.
      expect(text).toMatch(/"perUser": \{\n\s+"users": "0-\d+",\n\s+"ranks": "[0-9 -]+"\n\s+\}/);
      dirs.push(dir);
    }
    const runs = collectRuns(dirs);
    for (const r of runs) for (const m of ['HR@5', 'HR@10', 'NDCG@10', 'NDCG@20']) expect(metricFromRanks(r.perUser!, m)).toBe(r.metrics[m]);
    const [t] = buildTables(runs);
    const vs = t.rows.find((r) => r.kind === 'sasrec')!.vs!;
    expect(vs).toMatchObject({ test: 'paired', metric: 'HR@10' });
    expect(vs.se!).toBeLessThan(Math.hypot(...t.rows.map((r) => r.se[t.columns.indexOf('HR@10')]!)));
    // Direct too: the sampled rank among 1 + 99.
    const d = await evaluate(ds, model, 'direct', { quiet: true, maxUsers: 5 });
    expect(d.perUser).toEqual({ users: '0-4', ranks: '0 0 0 - 2' });
    const rat = await evaluate(ds, new Oracle(ds, 'rating'), 'rating', { quiet: true, maxUsers: 5 });
    expect(rat.perUser).toBeUndefined();
  });

  it('refuses a model trained on the other split, and a task the model cannot do', async () => {
    await expect(evaluate(ds, new Oracle(ds, 'rating'), 'direct', { quiet: true })).rejects.toThrow(/trained on the rating split/);
    const noRating = { ...new Oracle(ds, 'sequential'), kind: 'x', tasks: ['direct'] as const, trainSplit: 'sequential' as const, score: () => new Float32Array(0), state: () => ({ config: {}, tensors: {} }) };
    await expect(evaluate(ds, noRating, 'sequential', { quiet: true })).rejects.toThrow(/cannot do the sequential task/);
  });

  it('fit/eval through the CLI: popularity, clear errors for bad model paths, datasets without ratings, unknown models and hyper-parameters', () => {
    const model = join(tmp, 'pop');
    expect(cli(['fit', ds.dir, '--model', 'pop', '--out', model, '--quiet', '--json']).status).toBe(0);
    const r = cli(['eval', ds.dir, '--model', model, '--task', 'sequential', '--quiet', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect((r.json!.metrics as Record<string, number>)['HR@10']).toBeGreaterThan(0);
    expect(existsSync(join(model, 'evals', 'sequential-test.json'))).toBe(true);

    const bad = cli(['eval', ds.dir, '--model', join(tmp, 'nope'), '--task', 'direct', '--json']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/nope: not a p5rec model folder/);
    const unk = cli(['fit', ds.dir, '--model', 'deepfm', '--out', join(tmp, 'x'), '--json']);
    expect(unk.stderr).toMatch(/unknown model 'deepfm'/);
    const hp = cli(['fit', ds.dir, '--model', 'pop', '--out', join(tmp, 'y'), '--dim', '8', '--json']);
    expect(hp.stderr).toMatch(/unknown option '--dim' for model 'pop'/);

    const beauty = join(tmp, 'beauty');
    const seq = BEAUTY;
    expect(cli(['data', 'import', 'p5', '--sequences', join(seq, 'sequential.txt'), '--datamaps', join(seq, 'datamaps.json'), '--out', beauty, '--kcore', '15', '--quiet', '--json']).status).toBe(0);
    const popR = join(tmp, 'pop-r');
    expect(cli(['fit', beauty, '--model', 'pop', '--split', 'rating', '--out', popR, '--quiet', '--json']).status).toBe(0);
    const noRatings = cli(['eval', beauty, '--model', popR, '--task', 'rating', '--json']);
    expect(noRatings.status).not.toBe(0);
    expect(noRatings.stderr).toMatch(/dataset has no ratings/);
    const other = cli(['eval', beauty, '--model', model, '--task', 'direct', '--json']);
    expect(other.stderr).toMatch(/model was trained on dataset/);
  });

  it('parses hyper-parameters by the defaults\' types', () => {
    expect(parseHyper({ dim: 64, lr: 0.01, loss: 'ce', early: false }, ['--dim', '32', '--lr=0.5', '--loss', 'bce', '--early'], 'm')).toEqual({ dim: 32, lr: 0.5, loss: 'bce', early: true });
    expect(() => parseHyper({ dim: 64 }, ['--dim', 'big'], 'm')).toThrow(/must be a number/);
  });
});

describe('report', () => {
  it('tables per task with rows = models; Beauty adds the published rows, marked', () => {
    const tmp = tempDir();
    mkdirSync(join(tmp, 'm', 'evals'), { recursive: true });
    const run = { model: 'm', kind: 'bpr-mf', dataset: 'beauty', itemIndex: 'random', task: 'direct', split: 'test', protocol: 'x', metrics: { 'HR@1': 0.03, 'HR@5': 0.13, 'NDCG@5': 0.08, 'HR@10': 0.25, 'NDCG@10': 0.12 }, count: 22363, beauty: true, fit: { seconds: 60, peakRssMB: 300 } };
    writeFileSync(join(tmp, 'm', 'evals', 'direct-test.json'), JSON.stringify(run));
    const tables = buildTables(collectRuns([join(tmp, 'm')]));
    expect(tables).toHaveLength(1);
    expect(tables[0].columns).toEqual(['HR@1', 'HR@5', 'NDCG@5', 'HR@10', 'NDCG@10']);
    expect(tables[0].rows.map((r) => [r.model, r.published])).toEqual([['bpr-mf (random ids)', false], ['BPR-MF', true], ['SimpleX', true], ['P5-S (5-8)', true]]);
    const md = renderMarkdown(tables);
    expect(md).toContain('| bpr-mf (random ids) | 22363 | 0.0300 | 0.1300 | 0.0800 | 0.2500 | 0.1200 | – | 60.0 | 300 |');
    expect(md).toContain('BPR-MF *(published: P5 paper)* | – | 0.0311 | 0.1426');
    const r = cli(['report', '--runs', join(tmp, 'm'), '--out', join(tmp, 'rep'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(join(tmp, 'rep', 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('published: P5 paper');
    expect(cli(['report', '--runs', join(tmp, 'missing'), '--out', join(tmp, 'rep2')]).stderr).toMatch(/missing: run not found/);
  });
});

describe('safetensors', () => {
  it('round-trips and rejects truncated or inconsistent files with one clear line', () => {
    const tmp = tempDir();
    const p = join(tmp, 'w.safetensors');
    writeSafetensors(p, { a: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, b: { dtype: 'I32', shape: [2], data: Int32Array.from([7, -8]) } });
    const f = readSafetensors(p);
    expect(f.names.sort()).toEqual(['a', 'b']);
    expect(Array.from(f.float32('a'))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(f.int32('b'))).toEqual([7, -8]);
    const bytes = readFileSync(p);
    writeFileSync(join(tmp, 't.safetensors'), bytes.subarray(0, bytes.length - 4));
    expect(() => readSafetensors(join(tmp, 't.safetensors'))).toThrow(/run past the end of the data/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(join(tmp, 'h.safetensors'), huge);
    expect(() => readSafetensors(join(tmp, 'h.safetensors'))).toThrow(/exceeds/);
    const hdr = Buffer.from(JSON.stringify({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }));
    const bad = Buffer.concat([Buffer.alloc(8), hdr, Buffer.alloc(8)]);
    bad.writeBigUInt64LE(BigInt(hdr.length), 0);
    writeFileSync(join(tmp, 'b.safetensors'), bad);
    expect(() => readSafetensors(join(tmp, 'b.safetensors'))).toThrow(/needs 12 bytes, offsets give 8/);
  });
});
