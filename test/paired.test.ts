import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { RankingAccumulator } from '../src/eval/metrics.js';
import { decodeRanks, decodeUsers, encodePerUser, metricFromRanks, pairedDifference } from '../src/eval/paired.js';
import { buildTables, collectRuns, renderMarkdown, writeReport } from '../src/eval/report.js';
import { renderHtml } from '../src/eval/report-html.js';
import { pairedDifference as fromIndex } from '../src/index.js';
import { tempDir } from './helpers/cli.js';

const sd = (xs: number[]): number => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};

describe('per-user ranks', () => {
  it('encode users as ranges and ranks as a space-separated list, "-" for not retrieved, and decode them back', () => {
    const p = encodePerUser([0, 1, 2, 7, 9, 10], [0, 17, Infinity, 3, 99, 1]);
    expect(p).toEqual({ users: '0-2,7,9-10', ranks: '0 17 - 3 99 1' });
    expect(decodeUsers(p.users)).toEqual([0, 1, 2, 7, 9, 10]);
    expect(decodeRanks(p.ranks)).toEqual([0, 17, Infinity, 3, 99, 1]);
    expect(encodePerUser(Array.from({ length: 22363 }, (_, u) => u), new Array(22363).fill(5)).users).toBe('0-22362');
    expect(encodePerUser([], [])).toEqual({ users: '', ranks: '' });
    expect(decodeUsers('')).toEqual([]);
    expect(() => decodeUsers('3-1')).toThrow(/ascending range/);
    expect(() => decodeRanks('1 x')).toThrow(/'x' is not a rank/);
    expect(() => encodePerUser([0, 1], [0])).toThrow(InputError);
  });

  it('recompute HR@k and NDCG@k exactly as RankingAccumulator does', () => {
    const ranks = [0, 3, 9, 10, Infinity, 25, 1];
    const acc = new RankingAccumulator([5, 10, 20]);
    for (const r of ranks) acc.add(r);
    const p = encodePerUser(ranks.map((_, i) => i), ranks);
    const res = acc.result();
    for (const m of ['HR@5', 'HR@10', 'HR@20', 'NDCG@5', 'NDCG@10', 'NDCG@20']) expect(metricFromRanks(p, m)).toBe(res[m]);
  });
});

describe('pairedDifference', () => {
  const a = encodePerUser([0, 1, 2, 3], [0, 5, Infinity, 2]);
  const b = encodePerUser([0, 1, 2, 3], [3, Infinity, 1, 20]);

  it('a hand-computed example: HR@10 differences 0, 1, −1, 1', () => {
    // a hits users 0, 1, 3; b hits 0, 2. d = [0, 1, −1, 1], mean .25, sd² = 2.75/3, se = √(sd²/4).
    const d = pairedDifference(a, b, 'HR@10');
    expect(d.n).toBe(4);
    expect(d.mean).toBe(0.25);
    expect(d.se).toBeCloseTo(Math.sqrt(2.75 / 3 / 4), 14);
    expect(d.z).toBeCloseTo(0.25 / Math.sqrt(2.75 / 3 / 4), 12);
    expect(fromIndex(a, b, 'HR@10')).toEqual(d);
  });

  it('NDCG@10: the per-user gains 1/log2(rank + 2)', () => {
    const da = [1, 1 / Math.log2(7), 0, 1 / Math.log2(4)];
    const db = [1 / Math.log2(5), 0, 1 / Math.log2(3), 0];
    const diff = da.map((x, i) => x - db[i]);
    const d = pairedDifference(a, b, 'NDCG@10');
    expect(d.mean).toBeCloseTo(diff.reduce((s, x) => s + x, 0) / 4, 14);
    expect(d.se).toBeCloseTo(sd(diff) / 2, 14);
  });

  it('identical runs: mean 0, se 0 and z 0 (nothing differs); a single user: se NaN, z null', () => {
    expect(pairedDifference(a, a, 'HR@10')).toEqual({ mean: 0, se: 0, z: 0, n: 4 });
    const one = encodePerUser([4], [1]);
    const d = pairedDifference(one, encodePerUser([4], [30]), 'HR@10');
    expect(d).toMatchObject({ mean: 1, z: null, n: 1 });
    expect(Number.isNaN(d.se)).toBe(true);
  });

  it('refuses different user lists, naming the field, and metrics that are not per-user ranking metrics', () => {
    const other = encodePerUser([0, 1, 2, 4], [0, 0, 0, 0]);
    const err = (() => {
      try {
        pairedDifference(a, other, 'HR@10');
      } catch (e) {
        return e as InputError;
      }
      throw new Error('not refused');
    })();
    expect(err).toBeInstanceOf(InputError);
    expect(err.facts.field).toBe('perUser.users');
    expect(err.oneLine()).toBe("field 'perUser.users': the runs scored different users (position 3: user 3 vs 4); a paired test needs the same users in the same order");
    expect(() => pairedDifference(a, encodePerUser([0, 1, 2], [0, 0, 0]), 'HR@10')).toThrow(/different users \(4 vs 3\)/);
    expect(() => pairedDifference(a, { users: '0-3', ranks: '1 2' }, 'HR@10')).toThrow(/run b lists 4 users but 2 ranks/);
    expect(() => pairedDifference(a, b, 'RMSE')).toThrow(/not a per-user ranking metric/);
  });
});

/** A ranking run as `p5rec eval` writes it, its metrics and errors computed from the ranks. */
function rankRun(kind: string, ranks: number[], withPerUser = true): Record<string, unknown> {
  const acc = new RankingAccumulator([5, 10, 20]);
  for (const r of ranks) acc.add(r);
  const { count, ...metrics } = acc.result();
  return {
    model: kind, kind, dataset: 'toy', task: 'sequential', split: 'test', protocol: 'leave-one-out', metrics, stderr: acc.standardErrors(), count,
    ...(withPerUser ? { perUser: encodePerUser(ranks.map((_, u) => u), ranks) } : {}),
  };
}

function writeRun(root: string, run: Record<string, unknown>): string {
  const dir = join(root, run.kind as string);
  mkdirSync(join(dir, 'evals'), { recursive: true });
  writeFileSync(join(dir, 'evals', 'sequential-test.json'), `${JSON.stringify(run, null, 2)}\n`);
  return dir;
}

describe('the report pairs runs on the same users', () => {
  // 400 users: popularity hits users 0..39 (HR@10 .10); the model hits the same 40 and 12 more (.13).
  // Unpaired the margin .03 is 1.3 SE (noise); paired, every difference is 0 or +1: 3.5 SE.
  const pop = Array.from({ length: 400 }, (_, u) => (u < 40 ? u % 10 : 50 + u));
  const model = Array.from({ length: 400 }, (_, u) => (u < 52 ? u % 10 : u % 7 === 0 ? Infinity : 50 + u));

  it('a correlated margin is significant under the paired test and not under the unpaired one', () => {
    const tmp = tempDir();
    const [t] = buildTables(collectRuns([writeRun(tmp, rankRun('pop', pop)), writeRun(tmp, rankRun('sasrec', model))]));
    const vs = t.rows.find((r) => r.kind === 'sasrec')!.vs!;
    expect(vs.test).toBe('paired');
    expect(vs.margin).toBeCloseTo(0.03, 12);
    const d = Array.from({ length: 400 }, (_, u) => (u >= 40 && u < 52 ? 1 : 0));
    expect(vs.se).toBeCloseTo(sd(d) / 20, 14);
    expect(vs.z).toBeGreaterThan(3.4);
    expect(vs.significant).toBe(true);
    const md = renderMarkdown([t]);
    expect(md).toMatch(/\| \+0\.0300 \(3\.5 paired SE, better\) \|/);
    expect(md).toContain('"paired SE" where both ranking runs kept per-user ranks of the same users');
    expect(renderHtml([t])).toContain('(3.5 paired SE, better)');

    // The same numbers without per-user ranks (older run files): the unpaired test, within noise.
    const old = tempDir();
    const [u] = buildTables(collectRuns([writeRun(old, rankRun('pop', pop, false)), writeRun(old, rankRun('sasrec', model, false))]));
    const uvs = u.rows.find((r) => r.kind === 'sasrec')!.vs!;
    expect(uvs).toMatchObject({ test: 'unpaired', significant: false });
    expect(uvs.z).toBeCloseTo(uvs.margin / Math.sqrt(t.rows[0].se[t.columns.indexOf('HR@10')]! ** 2 + t.rows[1].se[t.columns.indexOf('HR@10')]! ** 2), 12);
    expect(renderMarkdown([u])).toMatch(/\(1\.3 SE, within noise\)/);
  });

  it('an old run file beside a new one, or ranks that do not reproduce the stored metric: unpaired, and why', async () => {
    const tmp = tempDir();
    const mixed = buildTables(collectRuns([writeRun(tmp, rankRun('pop', pop, false)), writeRun(tmp, rankRun('sasrec', model))]))[0];
    expect(mixed.rows.find((r) => r.kind === 'sasrec')!.vs).toMatchObject({ test: 'unpaired' });
    expect(mixed.rows.find((r) => r.kind === 'sasrec')!.vs!.unpairedBecause).toBeUndefined();

    const bad = tempDir();
    const shifted = rankRun('sasrec', model);
    // Another run's ranks in the file: the stored HR@10 no longer matches what they give.
    shifted.perUser = encodePerUser(model.map((_, u) => u), pop);
    const [t] = buildTables(collectRuns([writeRun(bad, rankRun('pop', pop)), writeRun(bad, shifted)]));
    const vs = t.rows.find((r) => r.kind === 'sasrec')!.vs!;
    expect(vs.test).toBe('unpaired');
    expect(vs.unpairedBecause).toMatch(/per-user ranks of sasrec give HR@10 0\.1, not its 0\.13/);
    expect(renderMarkdown([t])).toMatch(/within noise; unpaired: per-user ranks of sasrec/);

    // report.json keeps the paired margins but leaves the ranks in the run files.
    const { files } = await writeReport(collectRuns([join(bad, 'pop'), join(bad, 'sasrec')]), join(bad, 'report'));
    const json = JSON.parse(readFileSync(files[1], 'utf8'));
    expect(json.runs.every((r: Record<string, unknown>) => !('perUser' in r))).toBe(true);
    expect(json.tables[0].rows[1].vs.test).toBe('unpaired');
  });
});
