import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { TRAIN, VALID, TEST } from '../src/data/splits.js';
import { BEAUTY, cli, MI_REVIEWS, MOVIELENS, movieLensCounts, ROOT, tempDir } from './helpers/cli.js';

const beautyArgs = (out: string, extra: string[] = []): string[] => [
  'data', 'import', 'p5',
  '--sequences', join(BEAUTY, 'sequential.txt'),
  '--datamaps', join(BEAUTY, 'datamaps.json'),
  '--meta', join(BEAUTY, 'meta.jsonl'),
  '--out', out, '--json', '--quiet', ...extra,
];

describe('import real datasets', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = tempDir();
  });

  it('Beauty (p5 + meta): 22,363 users, 12,101 items, 198,502 interactions, metadata for all 12,101 items; audit shows the leak only for sequential ids', async () => {
    const seq = join(tmp, 'beauty-seq');
    const r = cli(beautyArgs(seq, ['--item-index', 'sequential']));
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, counts: { users: 22363, items: 12101, interactions: 198502 } });
    const ds = await loadDataset(seq);
    // Metadata for all 12,101 items; 7 of them have no title in the source meta file.
    const stats = cli(['data', 'stats', seq, '--json']).json as { itemCoverage: Record<string, number> };
    expect(stats.itemCoverage).toMatchObject({ anyMeta: 12101, categories: 12101, title: 12094 });
    // Sequential ids reproduce P5's numbering: the first user's items are 1, 2, 3, ...
    expect(Array.from(ds.sequence(0), (i) => ds.items.token[i]).slice(0, 3)).toEqual(['1', '2', '3']);
    const audit = cli(['data', 'audit', seq, '--json']).json as Record<string, number>;
    expect(audit.successorHR1).toBeGreaterThan(0.04);
    expect(audit.successorHR1).toBeLessThan(0.05);

    const rnd = join(tmp, 'beauty-rnd');
    expect(cli(beautyArgs(rnd)).status).toBe(0);
    const auditR = cli(['data', 'audit', rnd, '--json']).json as Record<string, number>;
    expect(auditR.successorHR1).toBeLessThan(0.002);
    expect(auditR.successorShare).toBeLessThan(0.005);
  });

  it('Musical Instruments (amazon): 1,429 users, 900 items, 10,261 interactions with text and summaries; splits are sound', async () => {
    const out = join(tmp, 'mi');
    const r = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', out, '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ counts: { users: 1429, items: 900, interactions: 10261 }, fields: { review: true, summary: true, rating: true, time: true } });
    const ds = await loadDataset(out);
    const x = ds.interactions;
    expect(x.review.filter(Boolean).length).toBeGreaterThan(10200);
    expect(x.summary.filter(Boolean).length).toBeGreaterThan(10200);
    // Leave-one-out: exactly one test and one valid per user, and they are the last two by time.
    for (let u = 0; u < ds.numUsers; u++) {
      const s = ds.userStart[u], n = ds.userLength[u];
      expect(x.seqSplit[s + n - 1]).toBe(TEST);
      expect(x.seqSplit[s + n - 2]).toBe(VALID);
      for (let k = 1; k < n; k++) expect(x.time[s + k]).toBeGreaterThanOrEqual(x.time[s + k - 1]);
    }
    // Random split: ~80/10/10 with every user and item present in train.
    const train = ds.ratingRows(TRAIN);
    expect(train.length / ds.numInteractions).toBeGreaterThan(0.79);
    expect(new Set(Array.from(train, (k) => x.user[k])).size).toBe(ds.numUsers);
    expect(new Set(Array.from(train, (k) => x.item[k])).size).toBe(ds.numItems);
    expect(ds.ratingRows(VALID).length).toBeGreaterThan(900);
    expect(ds.ratingRows(TEST).length).toBeGreaterThan(900);
    // 99 stored negatives per user, never in the user's history.
    for (let u = 0; u < ds.numUsers; u++) {
      const hist = new Set(ds.sequence(u));
      expect(ds.negatives[u].length).toBe(99);
      expect(new Set(ds.negatives[u]).size).toBe(99);
      for (const j of ds.negatives[u]) expect(hist.has(j)).toBe(false);
    }
    // Explanations: a feature word and a sentence of the review that contains it.
    const labelled = x.feature.map((f, k) => [f, x.explanation[k], x.review[k]] as const).filter(([f]) => f);
    expect(labelled.length).toBeGreaterThan(5000);
    for (const [f, e, rev] of labelled.slice(0, 200)) {
      expect(e!.toLowerCase()).toContain(f!);
      expect(rev!.replace(/\s+/g, ' ')).toContain(e!.slice(0, 20));
    }
    const stats = cli(['data', 'stats', out, '--json']).json as Record<string, unknown>;
    expect(stats).toMatchObject({ users: 1429, items: 900, interactions: 10261, ratingHistogram: { '1': 217, '2': 250, '3': 772, '4': 2084, '5': 6938 } });
  });

  it('MovieLens 100K format: every rating, user and movie of u.data, with titles (Latin-1) and genres from u.item / u.genre', async () => {
    const out = join(tmp, 'ml');
    const r = cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', out, '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const n = movieLensCounts();
    expect(r.json).toMatchObject({ counts: { users: n.users, items: n.items, interactions: n.ratings } });
    const ds = await loadDataset(out);
    // Every movie keeps its u.item title, accents decoded from Latin-1, and its genre flags named by u.genre.
    const genres = readFileSync(join(MOVIELENS, 'u.genre'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('|')[0]);
    const rows = readFileSync(join(MOVIELENS, 'u.item'), 'latin1').split('\n').filter(Boolean).map((l) => l.split('|'));
    expect(rows).toHaveLength(n.items);
    for (const f of rows) {
      const j = ds.items.rawId.indexOf(f[0]);
      expect(ds.items.title[j], f[0]).toBe(f[1]);
      const cats = f.slice(5).flatMap((x, g) => (x === '1' ? [genres[g]] : []));
      if (cats.length) expect(ds.items.categories[j], f[0]).toEqual(cats);
    }
    expect(ds.items.title.some((t) => /[^ -~]/.test(t ?? ''))).toBe(true);
    // Every rating is in the dataset, with its stars and timestamp.
    const data = readFileSync(join(MOVIELENS, 'u.data'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
    const x = ds.interactions;
    const got = new Set(Array.from(x.user, (u, k) => `${ds.users.rawId[u]} ${ds.items.rawId[x.item[k]]} ${x.rating[k]} ${x.time[k]}`));
    expect(got.size).toBe(n.ratings);
    for (const [u, i, r, t] of data) expect(got.has(`${u} ${i} ${r} ${t}`), `${u} ${i}`).toBe(true);
  });

  it('the committed MovieLens-format fixture is what scripts/make-movielens-fixture.mjs writes', () => {
    if (process.env.P5REC_MOVIELENS_DIR) return; // another folder: nothing to compare
    const out = join(tmp, 'ml-fixture');
    const g = spawnSync(process.execPath, [join(ROOT, 'scripts/make-movielens-fixture.mjs'), '--out', out], { encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    const files = readdirSync(MOVIELENS).sort();
    expect(readdirSync(out).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(out, f)).equals(readFileSync(join(MOVIELENS, f))), f).toBe(true);
  });

  it('same seed gives a byte-identical folder; another seed changes ids and splits', () => {
    const ml = MOVIELENS;
    const a = join(tmp, 'ml-a'), b = join(tmp, 'ml-b'), c = join(tmp, 'ml-c');
    for (const [out, seed] of [[a, '7'], [b, '7'], [c, '8']]) expect(cli(['data', 'import', 'movielens', '--dir', ml, '--out', out, '--seed', seed, '--quiet', '--json']).status).toBe(0);
    const files = readdirSync(a).sort();
    expect(readdirSync(b).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    expect(readFileSync(join(c, 'items.parquet')).equals(readFileSync(join(a, 'items.parquet')))).toBe(false);
  });

  it('--kcore filters repeatedly until every user and item has >= k', async () => {
    const out = join(tmp, 'ml-k15');
    const r = cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', out, '--kcore', '15', '--quiet', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const ds = await loadDataset(out);
    const n = movieLensCounts();
    expect(ds.numInteractions).toBeLessThan(n.ratings);
    // Repeatedly: every user starts with >= 20 ratings, yet dropping rare movies takes some users under 15.
    expect(ds.numUsers).toBeLessThan(n.users);
    const ic = new Int32Array(ds.numItems);
    for (const i of ds.interactions.item) ic[i]++;
    expect(Math.min(...ds.userLength)).toBeGreaterThanOrEqual(15);
    expect(Math.min(...ic)).toBeGreaterThanOrEqual(15);
    expect(ds.manifest.counts.droppedByKcore).toBe(n.ratings - ds.numInteractions);
  });
});
