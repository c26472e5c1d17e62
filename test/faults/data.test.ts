import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLines, setReadProgress } from '../../src/data/lines.js';
import { readAmazon } from '../../src/data/import-amazon.js';
import { parseTime } from '../../src/data/fields.js';
import { loadDataset } from '../../src/data/dataset.js';
import { writeReport } from '../../src/eval/report.js';
import { TRAIN, TEST } from '../../src/data/splits.js';
import { BIN, cli, tempDir } from '../helpers/cli.js';

/**
 * Fault corpus for the data layer (issue 15): bad inputs, --force misuse,
 * interrupted runs and tampered datasets. Every refusal is one stderr line
 * naming file, line and field, a non-zero exit, no output and no temp folder
 * left; every acceptance keeps every record it should (counts checked).
 * Inputs are synthetic, written to a temp folder.
 */
let tmp: string;
let n = 0;
beforeAll(() => {
  tmp = tempDir('p5rec-faults-data-');
});
afterAll(() => {
  setReadProgress(false);
  rmSync(tmp, { recursive: true, force: true });
});

const file = (name: string, content: string | Buffer): string => {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
};
const outDir = (): string => join(tmp, `out${++n}`);
const review = (o: Record<string, unknown>): string => JSON.stringify({ reviewerID: 'U1', asin: 'I1', overall: 5, unixReviewTime: 1400000000, ...o });
const leftovers = (dir: string): string[] => readdirSync(dir).filter((f) => /\.(tmp|old)-/.test(f));

/** The command fails with exit 2, one error line matching `pattern`, and leaves neither output nor temp folder. */
function refused(args: string[], pattern: RegExp, out = outDir()): string {
  const r = cli([...args, '--out', out, '--json', '--quiet']);
  expect(r.status, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('p5rec: error'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.json?.ok).toBe(false);
  expect(existsSync(out)).toBe(false);
  expect(leftovers(join(out, '..'))).toEqual([]);
  return lines[0];
}

/** The command succeeds; returns its JSON result and the output folder. */
function imported(args: string[], out = outDir()): { json: Record<string, unknown>; out: string; stderr: string } {
  const r = cli([...args, '--out', out, '--json', '--quiet']);
  expect(r.status, r.stderr).toBe(0);
  expect(leftovers(join(out, '..'))).toEqual([]);
  return { json: r.json as Record<string, unknown>, out, stderr: r.stderr };
}
const counts = (j: Record<string, unknown>): Record<string, number> => j.counts as Record<string, number>;
const amazon = (f: string): string[] => ['data', 'import', 'amazon', '--reviews', f];
const csv = (f: string, ...extra: string[]): string[] => ['data', 'import', 'csv', '--file', f, '--user', 'u', '--item', 'i', ...extra];

/** `count` review lines over 37 users, all distinct (user, item) pairs. */
function reviews(count: number, pad = 0): string {
  const out: string[] = [];
  for (let k = 0; k < count; k++) out.push(review({ reviewerID: `U${k % 37}`, asin: `I${Math.floor(k / 37)}`, unixReviewTime: 1400000000 + k, reviewText: 'x'.repeat(pad) }));
  return `${out.join('\n')}\n`;
}

async function countLines(path: string): Promise<{ count: number; first: string; last: string }> {
  let count = 0;
  let first = '';
  let last = '';
  for await (const { text } of readLines(path)) {
    if (count++ === 0) first = text;
    last = text;
  }
  return { count, first, last };
}

describe('streaming reads', () => {
  it('progress on: a multi-chunk plain file loses no line (the listener-order bug)', async () => {
    setReadProgress(true, 0);
    const p = file('prog.jsonl', reviews(40000, 40)); // ~4 MB: four 1 MiB reads
    const r = await countLines(p);
    setReadProgress(false);
    expect(r.count).toBe(40000);
    expect(JSON.parse(r.first).reviewerID).toBe('U0');
    expect(JSON.parse(r.last).asin).toBe(`I${Math.floor(39999 / 37)}`);
  });

  it('progress on: a multi-chunk gzip file reads whole, never "incorrect header check"', async () => {
    setReadProgress(true, 0);
    const p = file('prog.jsonl.gz', gzipSync(reviews(40000, 40), { level: 1 }));
    for (let k = 0; k < 3; k++) expect((await countLines(p)).count).toBe(40000);
    setReadProgress(false);
  });

  it('a 48 MB single line is one record, read whole', async () => {
    const text = 'a'.repeat(48 << 20);
    const p = file('long.json', `${review({ reviewText: text })}\n${review({ reviewerID: 'U2' })}\n`);
    const raw = await readAmazon(p);
    expect(raw.interactions.user).toEqual(['U1', 'U2']);
    expect(raw.interactions.review[0]?.length).toBe(48 << 20);
    rmSync(p);
  });

  it('concatenated gzip members, CRLF endings, a BOM and no final newline: every record, ids clean', async () => {
    const p = file('multi.json.gz', Buffer.concat([gzipSync(`\ufeff${review({})}\r\n${review({ reviewerID: 'U2' })}\r\n`), gzipSync(review({ reviewerID: 'U3', asin: 'I2' }))]));
    const raw = await readAmazon(p);
    expect(raw.interactions.user).toEqual(['U1', 'U2', 'U3']);
    expect(raw.interactions.item).toEqual(['I1', 'I1', 'I2']);
  });

  it('CLI import of a multi-chunk gzip with progress on stderr counts every record', () => {
    const p = file('cli.json.gz', gzipSync(reviews(20000), { level: 1 }));
    const out = outDir();
    const r = cli([...amazon(p), '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(counts(r.json as Record<string, unknown>).interactions).toBe(20000);
  });

  it('truncated gzip: file and the line where data stopped', () => {
    const gz = gzipSync(reviews(5000));
    refused(amazon(file('trunc.json.gz', gz.subarray(0, gz.length >> 1))), /trunc\.json\.gz:\d+: truncated gzip stream/);
  });

  it('corrupt gzip body: file and line', () => {
    const gz = Buffer.from(gzipSync(reviews(5000)));
    for (let k = 200; k < 260; k++) gz[k] ^= 0x5a;
    refused(amazon(file('corrupt.json.gz', gz)), /corrupt\.json\.gz:\d+: (corrupt|truncated) gzip stream/);
  });
});

describe('--force replaces only what p5rec wrote', () => {
  const small = (): string => file(`small${++n}.json`, `${[review({}), review({ reviewerID: 'U2', asin: 'I2' }), review({ asin: 'I2', unixReviewTime: 1400000001 })].join('\n')}\n`);

  it('a folder holding the input and a notes/ folder is refused and left intact', () => {
    const dir = join(tmp, 'mine');
    mkdirSync(join(dir, 'notes'), { recursive: true });
    writeFileSync(join(dir, 'notes', 'n.txt'), 'keep');
    const input = join(dir, 'reviews.json');
    copyFileSync(small(), input);
    const r = cli([...amazon(input), '--out', dir, '--force', '--quiet']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^p5rec: error: .*mine: not a p5rec dataset folder \(no valid manifest\.json\); 'force' only replaces p5rec output/);
    expect(readdirSync(dir).sort()).toEqual(['notes', 'reviews.json']);
    expect(readFileSync(join(dir, 'notes', 'n.txt'), 'utf8')).toBe('keep');
  });

  it('a plain file as --out is refused and kept', () => {
    const target = file('plain.txt', 'precious');
    const r = cli([...amazon(small()), '--out', target, '--force', '--quiet']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/plain\.txt: is a file, not an output folder/);
    expect(readFileSync(target, 'utf8')).toBe('precious');
  });

  it('a p5rec dataset is replaced by rename, nothing left aside', () => {
    const { out } = imported(amazon(small()));
    const r = cli([...amazon(file('bigger.json', reviews(30))), '--out', out, '--force', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(counts(r.json as Record<string, unknown>).interactions).toBe(30);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('an input inside a p5rec dataset folder is refused (it would be deleted)', () => {
    const { out } = imported(amazon(small()));
    const input = join(out, 'r.json');
    copyFileSync(small(), input);
    const r = cli([...amazon(input), '--out', out, '--force', '--quiet']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/input .*r\.json is inside the output folder/);
    expect(existsSync(input)).toBe(true);
  });

  it('an empty folder may be replaced', () => {
    const out = outDir();
    mkdirSync(out);
    const r = cli([...amazon(small()), '--out', out, '--force', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(counts(r.json as Record<string, unknown>).interactions).toBe(3);
  });

  it('report --force refuses a folder without report.json, replaces a report', async () => {
    const dir = join(tmp, 'notreport');
    mkdirSync(dir);
    writeFileSync(join(dir, 'thesis.tex'), 'mine');
    await expect(writeReport([], dir, true)).rejects.toThrow(/not a p5rec report folder \(no valid report\.json\)/);
    expect(readdirSync(dir)).toEqual(['thesis.tex']);
    const rep = join(tmp, 'report');
    await writeReport([], rep, false);
    await writeReport([], rep, true);
    expect(readdirSync(rep).sort()).toEqual(['report.html', 'report.json', 'report.md']);
    await expect(writeReport([], file('report.txt', 'x'), true)).rejects.toThrow(/is a file, not an output folder/);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('temp folders of a dead run are removed by the next run; a live one is kept', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const parent = join(tmp, 'stale');
    mkdirSync(parent);
    mkdirSync(join(parent, `.ds.tmp-${dead}-1`));
    writeFileSync(join(parent, `.ds.tmp-${dead}-1`, 'users.parquet'), 'half');
    mkdirSync(join(parent, `.ds.tmp-${process.pid}-2`));
    const r = cli([...amazon(small()), '--out', join(parent, 'ds'), '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(parent).sort()).toEqual([`.ds.tmp-${process.pid}-2`, 'ds']);
  });

  it('SIGINT during the build removes the temp folder and exits by the signal', async () => {
    const input = file('sig.json', reviews(150000));
    const parent = join(tmp, 'sig');
    mkdirSync(parent);
    const child = spawn(process.execPath, [BIN, ...amazon(input), '--out', join(parent, 'ds'), '--quiet'], { stdio: 'ignore' });
    const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
    let sent = false;
    for (let k = 0; k < 1500 && !sent; k++) {
      await new Promise((r) => setTimeout(r, 20));
      if (readdirSync(parent).some((f) => f.startsWith('.ds.tmp-'))) {
        child.kill('SIGINT');
        sent = true;
      }
    }
    const { code, signal } = await exited;
    expect(sent).toBe(true);
    expect(signal ?? code).toBe('SIGINT');
    expect(readdirSync(parent)).toEqual([]);
  }, 60000);
});

describe('one interaction per (user, item)', () => {
  it('50 repeated review lines: dropped as exact duplicates, counted, no (user, item) in both train and test', async () => {
    const base = reviews(300).trim().split('\n');
    const lines = [...base, ...base.slice(0, 50)];
    const { json, out } = imported(amazon(file('dups.json', lines.join('\n'))));
    expect(counts(json)).toMatchObject({ interactions: 300, duplicates: 50, repeats: 0 });
    const ds = await loadDataset(out);
    for (const split of ['seqSplit', 'ratingSplit'] as const) {
      const train = new Set<string>();
      const test: string[] = [];
      for (let k = 0; k < ds.numInteractions; k++) {
        const key = `${ds.interactions.user[k]}/${ds.interactions.item[k]}`;
        if (ds.interactions[split][k] === TRAIN) train.add(key);
        if (ds.interactions[split][k] === TEST) test.push(key);
      }
      expect(test.filter((t) => train.has(t))).toEqual([]);
    }
  });

  it('a repeat at another time keeps the earliest and is counted apart', async () => {
    const p = file('repeat.json', [review({ asin: 'I1', unixReviewTime: 300 }), review({ asin: 'I2', unixReviewTime: 200 }), review({ asin: 'I1', unixReviewTime: 100, overall: 2 }), review({ reviewerID: 'U2', asin: 'I2' })].join('\n'));
    const { json, out } = imported(amazon(p));
    expect(counts(json)).toMatchObject({ interactions: 3, duplicates: 0, repeats: 1 });
    const ds = await loadDataset(out);
    const u = ds.users.rawId.indexOf('U1');
    expect(Array.from(ds.sequence(u), (i) => ds.items.rawId[i])).toEqual(['I1', 'I2']);
    expect(ds.interactions.rating[ds.userStart[u]]).toBe(2);
  });

  it('sequential.txt: a user on two lines is refused naming the user and both lines', () => {
    const maps = file('maps-ok.json', JSON.stringify({ id2user: { 1: 'A', 2: 'B' }, id2item: { 1: 'x', 2: 'y', 3: 'z' } }));
    const seq = file('twice.txt', '1 1 2\n2 2 3\n1 3\n');
    refused(['data', 'import', 'p5', '--sequences', seq, '--datamaps', maps], /twice\.txt:3: field 'user': user id 1 \(A\) already has a sequence on line 1/);
  });

  it('sequential.txt: an item twice in one history is kept once and counted', () => {
    const maps = file('maps-rep.json', JSON.stringify({ id2user: { 1: 'A', 2: 'B' }, id2item: { 1: 'x', 2: 'y', 3: 'z' } }));
    const { json } = imported(['data', 'import', 'p5', '--sequences', file('rep.txt', '1 1 2 1 3\n2 2 3\n'), '--datamaps', maps]);
    expect(counts(json)).toMatchObject({ interactions: 5, duplicates: 1 });
  });

  it('MovieLens ratings.dat with a repeated line: counted, not doubled', () => {
    const dir = join(tmp, 'ml-dup');
    mkdirSync(dir);
    writeFileSync(join(dir, 'ratings.dat'), '1::10::5::978300760\n1::11::3::978302109\n1::10::5::978300760\n2::10::4::978298413\n');
    const { json } = imported(['data', 'import', 'movielens', '--dir', dir]);
    expect(counts(json)).toMatchObject({ interactions: 3, duplicates: 1 });
  });
});

describe('ids are never merged silently', () => {
  const latin1Csv = (): string => file('latin1.csv', Buffer.from('u,i,r\nJosé,x,5\nJosë,y,4\nJosé,y,3\n', 'latin1'));

  it('a Latin-1 CSV read as UTF-8 is refused at the line and field', () => {
    refused(csv(latin1Csv(), '--rating', 'r'), /latin1\.csv:2: field 'u': invalid UTF-8 .*set 'encoding' to latin1/);
  });

  it('the same CSV with --encoding latin1 keeps José and Josë apart', async () => {
    const { json, out } = imported(csv(latin1Csv(), '--rating', 'r', '--encoding', 'latin1'));
    expect(counts(json)).toMatchObject({ users: 2, interactions: 3 });
    expect((await loadDataset(out)).users.rawId.sort()).toEqual(['José', 'Josë']);
  });

  it('invalid UTF-8 inside an Amazon JSON line names the field', () => {
    const bad = Buffer.concat([Buffer.from(`${review({})}\n{"reviewerID": "Jos`), Buffer.from([0xe9]), Buffer.from('", "asin": "I2", "overall": 4}\n')]);
    refused(amazon(file('badutf.json', bad)), /badutf\.json:2: field 'reviewerID': invalid UTF-8/);
  });

  it('invalid UTF-8 in sequential.txt names the line', () => {
    const maps = file('maps-u.json', JSON.stringify({ id2user: { 1: 'A' }, id2item: { 1: 'x', 2: 'y' } }));
    refused(['data', 'import', 'p5', '--sequences', file('badseq.txt', Buffer.concat([Buffer.from('1 1 2\n2 '), Buffer.from([0xff, 0xfe]), Buffer.from(' 1\n')])), '--datamaps', maps], /badseq\.txt:2: invalid UTF-8 at byte 3/);
  });

  it('MovieLens u.data with a Latin-1 byte names the field', () => {
    const dir = join(tmp, 'ml-latin');
    mkdirSync(dir);
    writeFileSync(join(dir, 'u.data'), Buffer.concat([Buffer.from('1\t10\t5\t881250949\n'), Buffer.from([0x4a, 0xe9]), Buffer.from('\t11\t3\t881250950\n')]));
    refused(['data', 'import', 'movielens', '--dir', dir], /u\.data:2: field 'user': invalid UTF-8/);
  });

  it('numeric JSON ids past 2^53 are refused (JSON already rounded them)', () => {
    const p = file('bigid.jsonl', '{"u": 9007199254740993, "i": "a"}\n{"u": 9007199254740992, "i": "b"}\n');
    refused(['data', 'import', 'jsonl', '--file', p, '--user', 'u', '--item', 'i'], /bigid\.jsonl:1: field 'u': numeric id 9007199254740992 is not an integer below 2\^53/);
  });

  it('numeric ids as strings past 2^53 stay distinct', () => {
    const p = file('bigid-str.jsonl', '{"u": "9007199254740993", "i": "a"}\n{"u": "9007199254740992", "i": "b"}\n');
    expect(counts(imported(['data', 'import', 'jsonl', '--file', p, '--user', 'u', '--item', 'i']).json).users).toBe(2);
  });

  it('datamaps: two item ids naming one ASIN are refused with both ids', () => {
    const maps = file('maps-dup.json', JSON.stringify({ id2user: { 1: 'A' }, id2item: { 1: 'B00X', 2: 'B00Y', 3: 'B00X' } }));
    refused(['data', 'import', 'p5', '--sequences', file('s1.txt', '1 1 2 3\n'), '--datamaps', maps], /maps-dup\.json: field 'id2item': ids 1 and 3 both map to 'B00X'/);
  });

  it('datamaps: two users on one id (user2id form) are refused', () => {
    const maps = file('maps-inv.json', JSON.stringify({ user2id: { A: 1, B: 1 }, item2id: { x: 1, y: 2 } }));
    refused(['data', 'import', 'p5', '--sequences', file('s2.txt', '1 1 2\n'), '--datamaps', maps], /maps-inv\.json: field 'user2id': 'A' and 'B' both map to id 1/);
  });

  it('datamaps that are not UTF-8 are refused', () => {
    const maps = file('maps-latin.json', Buffer.from('{"id2user": {"1": "José"}, "id2item": {"1": "x", "2": "y"}}', 'latin1'));
    refused(['data', 'import', 'p5', '--sequences', file('s3.txt', '1 1 2\n'), '--datamaps', maps], /maps-latin\.json: invalid UTF-8/);
  });
});

describe('dataset integrity', () => {
  let a: string;
  let b: string;
  beforeAll(() => {
    a = imported(amazon(file('ds-a.json', reviews(400)))).out;
    b = imported(amazon(file('ds-b.json', reviews(120)))).out;
  });
  const copyDs = (from: string): string => {
    const to = outDir();
    mkdirSync(to);
    for (const f of readdirSync(from)) copyFileSync(join(from, f), join(to, f));
    return to;
  };
  const statsFails = (dir: string, pattern: RegExp): void => {
    const r = cli(['data', 'stats', dir, '--json']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('p5rec: error'))).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };

  it('the manifest records size, rows and sha256 of every file', () => {
    const m = JSON.parse(readFileSync(join(a, 'manifest.json'), 'utf8'));
    expect(Object.keys(m.contents).sort()).toEqual(['features.json', 'interactions.parquet', 'items.parquet', 'negatives.parquet', 'users.parquet']);
    expect(m.contents['interactions.parquet']).toMatchObject({ rows: 400, bytes: statSync(join(a, 'interactions.parquet')).size });
    expect(m.contents['users.parquet'].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("another dataset's interactions.parquet copied in is refused by name", () => {
    const d = copyDs(a);
    copyFileSync(join(b, 'interactions.parquet'), join(d, 'interactions.parquet'));
    statsFails(d, /interactions\.parquet: does not match manifest \(\d+ bytes, expected \d+\)/);
  });

  it('a swapped negatives.parquet is refused by name, not a TypeError', () => {
    const d = copyDs(a);
    copyFileSync(join(b, 'negatives.parquet'), join(d, 'negatives.parquet'));
    statsFails(d, /negatives\.parquet: does not match manifest/);
  });

  it('a same-size damaged file is caught by its sha256', () => {
    const d = copyDs(a);
    const p = join(d, 'items.parquet');
    const bytes = readFileSync(p);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(p, bytes);
    statsFails(d, /items\.parquet: does not match manifest \(sha256 differs\)/);
  });

  it('a listed file that is gone is named', () => {
    const d = copyDs(a);
    rmSync(join(d, 'features.json'));
    statsFails(d, /features\.json: missing, but listed in manifest\.json/);
  });

  it('an old dataset without checksums loads with one warning, and row counts still catch a copied table', () => {
    const d = copyDs(a);
    const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
    delete m.contents;
    writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
    const ok = cli(['data', 'stats', d, '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr.match(/warning: .*no file checksums/g)).toHaveLength(1);
    copyFileSync(join(b, 'interactions.parquet'), join(d, 'interactions.parquet'));
    statsFails(d, /interactions\.parquet: does not match manifest \(rows 120, expected 400\)/);
  });

  it('data audit hashes every file', async () => {
    const d = copyDs(a);
    await expect(loadDataset(d, { verify: 'full' })).resolves.toBeTruthy();
    const r = cli(['data', 'audit', d, '--json']);
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('timestamps, dates and numbers', () => {
  it('millisecond and microsecond timestamps are read as seconds', async () => {
    const p = file('ms.json', [review({ unixReviewTime: 1388534400000 }), review({ asin: 'I2', unixReviewTime: 1388534500000000 }), review({ reviewerID: 'U2', unixReviewTime: '1388534600000' })].join('\n'));
    const { out } = imported(amazon(p));
    const ds = await loadDataset(out);
    expect(Array.from(ds.interactions.time).sort()).toEqual([1388534400, 1388534500, 1388534600]);
  });

  it('a timestamp too large for any unit is refused', () => {
    refused(amazon(file('huge-ts.json', [review({}), review({ asin: 'I2', unixReviewTime: 1e21 })].join('\n'))), /huge-ts\.json:2: field 'unixReviewTime': timestamp 1e\+21 is out of range/);
  });

  it("a CSV timestamp '1e20' is a line error, not a DuckDB error", () => {
    refused(csv(file('e20.csv', 'u,i,t\nA,x,1400000000\nA,y,1e20\n'), '--time', 't'), /e20\.csv:3: field 't': timestamp "1e20" is out of range/);
  });

  it('2014-02-30 is refused, not rolled over into March', () => {
    refused(csv(file('feb30.csv', 'u,i,t\nA,x,2014-02-28\nA,y,2014-02-30\n'), '--time', 't'), /feb30\.csv:3: field 't': not a calendar date: "2014-02-30"/);
  });

  it('an hour 25 and a free-text date are refused', () => {
    refused(csv(file('h25.csv', 'u,i,t\nA,x,2014-02-28T25:00\n'), '--time', 't'), /h25\.csv:2: field 't': not a calendar date/);
    refused(csv(file('words.csv', 'u,i,t\nA,x,yesterday 1\n'), '--time', 't'), /words\.csv:2: field 't': not a timestamp: "yesterday 1"/);
  });

  it('ISO dates with zones are exact', () => {
    const at = { file: 'f', line: 1 };
    expect(parseTime('2014-02-28', 't', at, true)).toBe(Date.UTC(2014, 1, 28) / 1000);
    expect(parseTime('2014-02-28T10:00:00+02:00', 't', at, true)).toBe(Date.UTC(2014, 1, 28, 8) / 1000);
    expect(parseTime('2016-02-29 23:59:59Z', 't', at, true)).toBe(Date.UTC(2016, 1, 29, 23, 59, 59) / 1000);
    expect(() => parseTime('2015-02-29', 't', at, true)).toThrow(/not a calendar date/);
  });

  it("rating '0x5' is refused, not read as 5", () => {
    refused(csv(file('hex.csv', 'u,i,r\nA,x,4\nA,y,0x5\n'), '--rating', 'r'), /hex\.csv:3: field 'r': rating is not a number: "0x5"/);
  });

  it("ratings 'Infinity' and ' ' and a --rating-scale of '1e400' are refused", () => {
    refused(csv(file('inf.csv', 'u,i,r\nA,x,Infinity\n'), '--rating', 'r', '--rating-scale', '1,1e400'), /--rating-scale must be 'min,max'/);
    refused(csv(file('inf2.csv', 'u,i,r\nA,x,Infinity\n'), '--rating', 'r'), /inf2\.csv:2: field 'r': rating is not a number/);
    refused(csv(file('blank.csv', 'u,i,r\nA,x, \n'), '--rating', 'r'), /blank\.csv:2: field 'r': rating is not a number/);
  });

  it('decimal ratings in scientific notation are fine', () => {
    expect(counts(imported(csv(file('sci.csv', 'u,i,r\nA,x,4.5\nA,y,5e0\n'), '--rating', 'r')).json).interactions).toBe(2);
  });
});
