import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, MI_REVIEWS, MOVIELENS, tempDir } from './helpers/cli.js';

/**
 * Every bad input gets one stderr line naming file, line and field, a
 * non-zero exit, and no output folder (nor a leftover temp folder).
 */
describe('bad input', () => {
  let tmp: string;
  const review = (o: Record<string, unknown>): string => JSON.stringify({ reviewerID: 'U1', asin: 'I1', overall: 5, reviewText: 'fine', summary: 's', unixReviewTime: 1, ...o });
  const good = [review({}), review({ reviewerID: 'U2', asin: 'I2' }), review({ reviewerID: 'U1', asin: 'I2', unixReviewTime: 2 })];
  beforeAll(() => {
    tmp = tempDir();
  });

  function expectCleanFailure(args: string[], out: string, pattern: RegExp): string {
    const r = cli([...args, '--out', out, '--json']);
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('p5rec: error'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(r.json?.ok).toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(out, '..')).filter((f) => f.includes('.tmp-'))).toEqual([]);
    return lines[0];
  }

  const amazon = (name: string, content: string | Buffer): string[] => {
    const f = join(tmp, name);
    writeFileSync(f, content);
    return ['data', 'import', 'amazon', '--reviews', f];
  };

  it('truncated gzip names the file and the line where data stopped', () => {
    const full = readFileSync(MI_REVIEWS);
    expectCleanFailure(amazon('trunc.json.gz', full.subarray(0, Math.floor(full.length / 2))), join(tmp, 'o1'), /trunc\.json\.gz:\d+: truncated gzip/);
  });

  it('malformed JSON line', () => {
    expectCleanFailure(amazon('bad.json', [good[0], '{"reviewerID": "U2", "asin": ', good[1]].join('\n')), join(tmp, 'o2'), /bad\.json:2: malformed JSON/);
  });

  it('missing required field', () => {
    expectCleanFailure(amazon('missing.json', [good[0], good[1], JSON.stringify({ reviewerID: 'U3', overall: 3 })].join('\n')), join(tmp, 'o3'), /missing\.json:3: field 'asin': missing required field/);
  });

  it('non-numeric and out-of-range ratings', () => {
    expectCleanFailure(amazon('nan.json', [good[0], review({ overall: 'five' })].join('\n')), join(tmp, 'o4'), /nan\.json:2: field 'overall': rating is not a number/);
    expectCleanFailure(amazon('range.json', [review({ overall: 7 }), good[1]].join('\n')), join(tmp, 'o5'), /range\.json:1: field 'overall': rating 7 is outside 1\.\.5/);
  });

  it('empty file (plain and gzip)', () => {
    expectCleanFailure(amazon('empty.json', ''), join(tmp, 'o6'), /empty\.json: file is empty/);
    expectCleanFailure(amazon('empty.json.gz', gzipSync(Buffer.alloc(0))), join(tmp, 'o6b'), /empty\.json\.gz: (file is empty|no reviews)/);
  });

  it('unknown format and missing files', () => {
    const r = cli(['data', 'import', 'parquetz', '--out', join(tmp, 'o7')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown command 'parquetz'/);
    expectCleanFailure(['data', 'import', 'movielens', '--dir', tmp], join(tmp, 'o8'), /not a MovieLens folder/);
    expectCleanFailure(['data', 'import', 'amazon', '--reviews', join(tmp, 'nope.json')], join(tmp, 'o9'), /nope\.json: file not found/);
  });

  it('a sequence naming an item absent from the datamaps', () => {
    const seq = join(tmp, 'seq.txt');
    const maps = join(tmp, 'maps.json');
    writeFileSync(seq, '1 1 2 3\n2 2 3 9\n');
    writeFileSync(maps, JSON.stringify({ id2user: { 1: 'A', 2: 'B' }, id2item: { 1: 'x', 2: 'y', 3: 'z' } }));
    expectCleanFailure(['data', 'import', 'p5', '--sequences', seq, '--datamaps', maps], join(tmp, 'o10'), /seq\.txt:2: field 'item': item id 9 .*not in .*id2item/);
  });

  it('an output folder that exists is refused and left untouched', () => {
    const out = join(tmp, 'exists');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    const r = cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', out, '--json']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/exists: output folder already exists/);
    expect(readdirSync(out)).toEqual(['keep.txt']);
  });

  it('CSV: bad row width, missing column, unterminated quote', () => {
    const csv = join(tmp, 'a.csv');
    writeFileSync(csv, 'u,i,r\nA,x,5\nB,y\n');
    expectCleanFailure(['data', 'import', 'csv', '--file', csv, '--user', 'u', '--item', 'i', '--rating', 'r'], join(tmp, 'o11'), /a\.csv:3: expected 3 fields, found 2/);
    const csv2 = join(tmp, 'b.csv');
    writeFileSync(csv2, 'u,i\nA,x\n');
    expectCleanFailure(['data', 'import', 'csv', '--file', csv2, '--user', 'user', '--item', 'i'], join(tmp, 'o12'), /b\.csv:1: field 'user': column not in header/);
    const csv3 = join(tmp, 'c.csv');
    writeFileSync(csv3, 'u,i,t\nA,x,"never closed\n');
    expectCleanFailure(['data', 'import', 'csv', '--file', csv3, '--user', 'u', '--item', 'i', '--text', 't'], join(tmp, 'o13'), /c\.csv:2: unterminated quoted field/);
  });
});
