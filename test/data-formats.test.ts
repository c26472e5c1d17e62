import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePythonLiteral } from '../src/data/pyliteral.js';
import { loadDataset } from '../src/data/dataset.js';
import { kcoreMask } from '../src/data/kcore.js';
import { leaveOneOut, randomSplit, sampleNegatives, TRAIN, VALID, TEST } from '../src/data/splits.js';
import { Rng } from '../src/util/rng.js';
import { BEAUTY, cli, tempDir } from './helpers/cli.js';

describe('Python-literal metadata (Amazon 2014 meta files)', () => {
  it('parses dicts, nested lists, quotes, escapes, numbers and constants', () => {
    const v = parsePythonLiteral(`{'asin': '0205616461', 'title': "Bioderma's \\"best\\"", 'price': 12.5, 'salesRank': {'Beauty': 10486}, 'categories': [['Beauty', 'Skin Care', 'Face']], 'x': None, 'y': True, 'z': (1, -2e3,)}`);
    expect(v).toEqual({ asin: '0205616461', title: 'Bioderma\'s "best"', price: 12.5, salesRank: { Beauty: 10486 }, categories: [['Beauty', 'Skin Care', 'Face']], x: null, y: true, z: [1, -2000] });
  });
  it('rejects broken literals', () => {
    expect(() => parsePythonLiteral("{'asin': 'x'")).toThrow(/expected ',' or '}'|end of line/);
  });
});

describe('importers on small files', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = tempDir();
  });

  it('amazon 2014 reviews with Python-literal meta, and 2018 reviews (extra fields) with JSON meta', async () => {
    const reviews = [
      { reviewerID: 'A', asin: 'X', overall: 5, reviewerName: 'Ann', reviewText: 'Great tone.', summary: 'ok', unixReviewTime: 10 },
      { reviewerID: 'A', asin: 'Y', overall: 4, reviewText: 'Fine strings.', summary: 'fine', unixReviewTime: 5 },
      { reviewerID: 'B', asin: 'X', overall: 1, reviewText: 'Bad.', summary: 'no', unixReviewTime: 7, vote: '3', style: { 'Size:': ' Large' }, image: ['u'], verified: true },
    ];
    const rev = join(tmp, 'reviews.json.gz');
    writeFileSync(rev, gzipSync(reviews.map((r) => JSON.stringify(r)).join('\n')));
    const meta14 = join(tmp, 'meta14.json.gz');
    writeFileSync(meta14, gzipSync([
      "{'asin': 'X', 'title': 'Pop Filter', 'price': 9.99, 'brand': 'Acme', 'categories': [['Musical Instruments', 'Microphones']]}",
      "{'asin': 'Y', 'title': 'Strings', 'categories': [['Musical Instruments']]}",
      "{'asin': 'Z', 'title': 'Not reviewed'}",
    ].join('\n')));
    const out = join(tmp, 'a14');
    const r = cli(['data', 'import', 'amazon', '--reviews', rev, '--meta', meta14, '--out', out, '--item-index', 'sequential', '--user-index', 'sequential', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const ds = await loadDataset(out);
    expect(ds.numUsers).toBe(2);
    expect(ds.numItems).toBe(2);
    // Time order: A bought Y (t=5) before X (t=10).
    expect(Array.from(ds.sequence(0), (i) => ds.items.rawId[i])).toEqual(['Y', 'X']);
    const x = ds.items.rawId.indexOf('X');
    expect(ds.items.title[x]).toBe('Pop Filter');
    expect(ds.items.brand[x]).toBe('Acme');
    expect(ds.items.price[x]).toBeCloseTo(9.99);
    expect(ds.items.categories[x]).toEqual(['Musical Instruments > Microphones']);
    expect(ds.users.name[0]).toBe('Ann');

    const meta18 = join(tmp, 'meta18.json');
    writeFileSync(meta18, [JSON.stringify({ asin: 'X', title: 'Pop Filter 2', category: ['Musical Instruments', 'Mics'], price: '$1,009.50' })].join('\n'));
    const out2 = join(tmp, 'a18');
    expect(cli(['data', 'import', 'amazon', '--reviews', rev, '--meta', meta18, '--out', out2, '--quiet', '--json']).status).toBe(0);
    const ds2 = await loadDataset(out2);
    const x2 = ds2.items.rawId.indexOf('X');
    expect(ds2.items.categories[x2]).toEqual(['Musical Instruments > Mics']);
    expect(ds2.items.price[x2]).toBeCloseTo(1009.5);
  });

  it('csv (quoted fields spanning lines, ISO dates) and jsonl', async () => {
    const csv = join(tmp, 'ints.csv');
    writeFileSync(csv, 'uid,iid,stars,when,text\nu1,i1,4,2020-01-02,"multi\nline, with ""quotes"""\nu1,i2,5,2020-01-01,plain\nu2,i1,3,2021-05-05,\n');
    const out = join(tmp, 'csv');
    const r = cli(['data', 'import', 'csv', '--file', csv, '--user', 'uid', '--item', 'iid', '--rating', 'stars', '--time', 'when', '--text', 'text', '--out', out, '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const ds = await loadDataset(out);
    expect(ds.numInteractions).toBe(3);
    expect(Array.from(ds.sequence(0), (i) => ds.items.rawId[i])).toEqual(['i2', 'i1']);
    expect(ds.interactions.review[1]).toBe('multi\nline, with "quotes"');

    const jsonl = join(tmp, 'ints.jsonl');
    writeFileSync(jsonl, [{ u: 1, i: 'a', r: 2 }, { u: 1, i: 'b', r: 3 }, { u: 2, i: 'a', r: 10 }].map((o) => JSON.stringify(o)).join('\n'));
    const bad = cli(['data', 'import', 'jsonl', '--file', jsonl, '--user', 'u', '--item', 'i', '--rating', 'r', '--out', join(tmp, 'jl'), '--json']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/ints\.jsonl:3: field 'r': rating 10 is outside 1\.\.5/);
    const ok = cli(['data', 'import', 'jsonl', '--file', jsonl, '--user', 'u', '--item', 'i', '--rating', 'r', '--rating-scale', '1,10', '--out', join(tmp, 'jl'), '--json', '--quiet']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.json).toMatchObject({ counts: { users: 2, items: 2, interactions: 3 } });
  });

  it('MovieLens 1M layout (:: separators)', async () => {
    const dir = join(tmp, 'ml-1m');
    mkdirSync(dir);
    writeFileSync(join(dir, 'ratings.dat'), '1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n');
    writeFileSync(join(dir, 'movies.dat'), Buffer.from('1193::One Flew Over the Cuckoo\'s Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children\'s|Musical\n', 'latin1'));
    const out = join(tmp, 'ml1m');
    const r = cli(['data', 'import', 'movielens', '--dir', dir, '--out', out, '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const ds = await loadDataset(out);
    expect(ds.numInteractions).toBe(3);
    expect(ds.items.categories[ds.items.rawId.indexOf('661')]).toEqual(['Animation', "Children's", 'Musical']);
  });

  it('collaborative ids: unique, prefix-free digit paths, and no leak on Beauty', async () => {
    const out = join(tmp, 'beauty-cid');
    const r = cli(['data', 'import', 'p5', '--sequences', join(BEAUTY, 'sequential.txt'), '--datamaps', join(BEAUTY, 'datamaps.json'), '--out', out, '--item-index', 'collaborative', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const ds = await loadDataset(out);
    const toks = ds.items.token;
    expect(new Set(toks).size).toBe(ds.numItems);
    for (const t of toks) expect(t).toMatch(/^[1-9]\d*$/);
    const sorted = [...toks].sort();
    for (let k = 1; k < sorted.length; k++) expect(sorted[k].startsWith(sorted[k - 1])).toBe(false);
    const audit = cli(['data', 'audit', out, '--json']).json as Record<string, number>;
    expect(audit.successorHR1).toBeLessThan(0.03);
  });
});

describe('splits, negatives, k-core (units)', () => {
  it('leave-one-out by position', () => {
    const user = [0, 0, 0, 0, 1, 1, 2];
    const pos = [0, 1, 2, 3, 0, 1, 0];
    const len = [4, 2, 1];
    expect(Array.from(leaveOneOut(user, pos, len))).toEqual([TRAIN, TRAIN, VALID, TEST, TRAIN, TEST, TRAIN]);
  });

  it('random split keeps every user and item in train and hits the shares', () => {
    const rng = new Rng(3);
    const n = 5000;
    const user = Array.from({ length: n }, () => rng.int(300));
    const item = Array.from({ length: n }, () => rng.int(200));
    const s = randomSplit(user, item, 300, 200, new Rng(9));
    const train = [...s.keys()].filter((k) => s[k] === TRAIN);
    expect(new Set(train.map((k) => user[k])).size).toBe(new Set(user).size);
    expect(new Set(train.map((k) => item[k])).size).toBe(new Set(item).size);
    expect(train.length).toBe(4000);
    expect(s.filter((x) => x === VALID).length).toBe(500);
    expect(s.filter((x) => x === TEST).length).toBe(500);
    expect(Array.from(randomSplit(user, item, 300, 200, new Rng(9)))).toEqual(Array.from(s));
  });

  it('negatives avoid the history; users who saw almost everything get what exists', () => {
    const negs = sampleNegatives([Int32Array.from([0, 1, 2]), Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7])], 10, 5, new Rng(1));
    expect(negs[0].length).toBe(5);
    for (const j of negs[0]) expect([0, 1, 2]).not.toContain(j);
    expect(Array.from(negs[1]).sort()).toEqual([8, 9]);
  });

  it('k-core is repeated until stable', () => {
    // user 0: items 0,1; user 1: items 0,1; user 2: items 0,2 -> with k=2 item 2 goes, then user 2 has 1 and goes, then item 0 has 2.
    const keep = kcoreMask([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 2], 3, 3, 2);
    expect(Array.from(keep)).toEqual([1, 1, 1, 1, 0, 0]);
  });
});
