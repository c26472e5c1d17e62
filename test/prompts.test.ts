import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BEAUTY, cli, MI_REVIEWS, tempDir } from './helpers/cli.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { TEST, TRAIN, VALID } from '../src/data/splits.js';
import {
  loadPromptCollection,
  parseCollection,
  renderTemplate,
  selectTemplates,
  type PromptCollection,
  type PromptTemplate,
} from '../src/prompts/templates.js';
import { evaluationInstances } from '../src/prompts/eval-instances.js';
import { IndexPermutation } from '../src/prompts/permutation.js';
import { trainingInstances } from '../src/prompts/training-instances.js';
import type { PromptInstance } from '../src/prompts/stream.js';
import { writeInstancesJsonl } from '../src/prompts/export.js';
import { gunzipSync } from 'node:zlib';
import { registerPromptsCommands } from '../src/cli/prompts.js';
import { Rng } from '../src/util/rng.js';

const IDS = {
  rating: ['1-1', '1-2', '1-3', '1-4', '1-5', '1-6', '1-7', '1-8', '1-9', '1-10'],
  sequential: ['2-1', '2-2', '2-3', '2-4', '2-5', '2-6', '2-7', '2-8', '2-9', '2-10', '2-11', '2-12', '2-13'],
  explanation: ['3-1', '3-2', '3-3', '3-4', '3-5', '3-6', '3-7', '3-8', '3-9', '3-10', '3-11', '3-12'],
  review: ['4-1', '4-2', '4-3', '4-4'],
  direct: ['5-1', '5-2', '5-3', '5-4', '5-5', '5-6', '5-7', '5-8'],
  zeroshot: ['Z-1', 'Z-2', 'Z-3', 'Z-4', 'Z-5', 'Z-6', 'Z-7'],
};
const UNSEEN = ['1-10', '2-13', '3-12', '4-4', '5-8', ...IDS.zeroshot];

let tmp: string;
let mi: Dataset;
let beauty: Dataset;
let p5: PromptCollection;
const tpl = (id: string): PromptTemplate => p5.templates.find((t) => t.id === id) as PromptTemplate;

function take<T>(it: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  if (n <= 0) return out;
  for (const x of it) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

/** Per user token: the train-prefix item tokens and the valid/test item tokens. */
function splitTokens(ds: Dataset): Map<string, { train: string[]; heldOut: string[]; all: Set<string> }> {
  const m = new Map<string, { train: string[]; heldOut: string[]; all: Set<string> }>();
  const x = ds.interactions;
  for (let u = 0; u < ds.numUsers; u++) {
    const e = { train: [] as string[], heldOut: [] as string[], all: new Set<string>() };
    for (let k = ds.userStart[u]; k < ds.userStart[u] + ds.userLength[u]; k++) {
      const tok = ds.items.token[x.item[k]];
      (x.seqSplit[k] === TRAIN ? e.train : e.heldOut).push(tok);
      e.all.add(tok);
    }
    m.set(ds.users.token[u], e);
  }
  return m;
}

/** The purchase history shown in a sequential prompt (always its second line). */
function historyOf(source: string): string[] {
  return source.split('\n')[1].trim().split(/ , | -> /);
}

beforeAll(async () => {
  tmp = tempDir('p5rec-prompts-');
  const a = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', join(tmp, 'mi'), '--json', '--quiet']);
  expect(a.json?.ok, a.stderr).toBe(true);
  const b = cli(['data', 'import', 'p5', '--sequences', join(BEAUTY, 'sequential.txt'), '--datamaps', join(BEAUTY, 'datamaps.json'),
    '--meta', join(BEAUTY, 'meta.jsonl'), '--out', join(tmp, 'beauty'), '--json', '--quiet']);
  expect(b.json?.ok, b.stderr).toBe(true);
  [mi, beauty] = await Promise.all([loadDataset(join(tmp, 'mi')), loadDataset(join(tmp, 'beauty'))]);
  p5 = loadPromptCollection();
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the P5 collection', () => {
  it('has exactly the paper ids, families and seen/unseen split', () => {
    const all = Object.values(IDS).flat();
    expect(p5.templates.map((t) => t.id)).toEqual(all);
    for (const [task, ids] of Object.entries(IDS)) expect(p5.templates.filter((t) => t.task === task).map((t) => t.id)).toEqual(ids);
    expect(p5.templates.filter((t) => !t.seen).map((t) => t.id).sort()).toEqual([...UNSEEN].sort());
    expect(p5.replaced).toEqual([]);
  });

  it('has P5 answer forms', () => {
    const target = (id: string): string => tpl(id).target;
    expect(['1-1', '1-2', '1-5', '1-6', '1-7', '1-10', '4-2', '4-4', 'Z-2', 'Z-3'].map(target).every((t) => t === 'star_rating')).toBe(true);
    expect(['1-3', '1-8', '2-11', '2-12', '5-1', '5-2', '5-3', '5-4'].map(target).every((t) => t === 'yes_no')).toBe(true);
    expect(['1-4', '1-9', 'Z-1', 'Z-4'].map(target).every((t) => t === 'like_dislike')).toBe(true);
    expect(['3-7', '3-8'].map(target)).toEqual(['rating_and_explanation', 'rating_and_explanation']);
    expect(['4-1', '4-3'].map(target)).toEqual(['summary', 'summary']);
    expect(['2-1', '2-7', '2-13', '5-5', '5-8'].map(target).every((t) => t === 'item_id')).toBe(true);
  });

  it("renders P5's exact strings", () => {
    expect(renderTemplate(tpl('1-1'), { user_id: 23, item_id: 7391 })).toBe('Which star rating will user_23 give item_7391 ? ( 1 being lowest and 5 being highest )');
    expect(renderTemplate(tpl('1-5'), { user_id: 23, item_id: 7391, item_title: 'Lip Gloss' }))
      .toBe("Predict the user_23 's preference on item_7391 ( Lip Gloss ) \n -1 \n -2 \n -3 \n -4 \n -5");
    expect(renderTemplate(tpl('2-3'), { user_id: 23, purchase_history: '4110 , 4467 , 4468' }))
      .toBe('Here is the purchase history list of user_23 : \n 4110 , 4467 , 4468 \n try to recommend next item to the user');
    expect(renderTemplate(tpl('2-11'), { user_id: 5, purchase_history: '1 -> 2', item_id: 3 }))
      .toBe('user_5 has the following purchase history : \n 1 -> 2 \n does the user likely to buy 3 next ?');
    expect(renderTemplate(tpl('3-7'), { feature_word: 'tuner', user_id: 5, item_id: 9 }))
      .toBe("Predict the star rating , then use tuner as feature word to generate user_5 's purchase explanation for item_9");
    expect(renderTemplate(tpl('4-3'), { user_desc: 'Ann', review_body: 'Great.' })).toBe('Give a short sentence describing the following product review from Ann: \n Great.');
    expect(renderTemplate(tpl('5-8'), { user_id: 7, candidates: '1 , 2' })).toBe('We want to make recommendation for user_7 .  Select the best item from these candidates : \n 1 , 2');
    expect(renderTemplate(tpl('Z-1'), { user_id: 1, item_title: 'T', brand: 'B', price: 9.99 }))
      .toBe('Given the facts about the new product , do you think user_1 will like or dislike it ? \n title : T \n brand : B \n price : 9.99');
    expect(() => renderTemplate(tpl('1-1'), { user_id: 1 })).toThrow(/template '1-1': no value for \{item_id\}/);
  });
});

describe('templates the dataset cannot feed', () => {
  it('are skipped with the missing field on P5-Beauty (no ratings, reviews, names) and MI (no titles)', () => {
    const b = selectTemplates(p5.templates, beauty.manifest.fields);
    const reason = (id: string): string | undefined => b.skipped.find((s) => s.id === id)?.reason;
    expect(reason('1-1')).toMatch(/no star ratings/);
    expect(reason('2-4')).toMatch(/no reviewer names \(for \{user_desc\}\)/);
    expect(reason('4-1')).toMatch(/no review texts/);
    expect(reason('3-1')).toMatch(/no explanations/);
    expect(reason('Z-7')).toMatch(/no reviewer names/);
    expect(b.use.map((t) => t.id)).toEqual(['2-1', '2-2', '2-3', '2-7', '2-9', '2-11', '5-1', '5-4', '5-7', '5-8']);

    const m = selectTemplates(p5.templates, mi.manifest.fields, { selection: 'seen' });
    expect(m.skipped.find((s) => s.id === '1-2')?.reason).toBe('dataset has no item titles (for {item_title})');
    expect(m.skipped.every((s) => s.missing.includes('title'))).toBe(true);
    expect(m.use.map((t) => t.id)).toContain('3-2');
    expect(m.use.some((t) => !t.seen)).toBe(false);
  });

  it('are reported by the generators and never used', () => {
    const s = trainingInstances(beauty, p5);
    expect(s.skipped.map((x) => x.id)).toContain('1-1');
    expect(Object.keys(s.perTask).sort()).toEqual(['direct', 'sequential']);
    const used = new Set(take(s, 2000).map((i) => i.template));
    for (const id of used) expect(['2-1', '2-2', '2-3', '2-7', '2-9', '2-11', '5-1', '5-4', '5-7']).toContain(id);
    const e = evaluationInstances(mi, p5, 'test');
    expect(e.skipped.map((x) => x.id)).toEqual(expect.arrayContaining(['1-2', '1-10', '5-3', 'Z-1']));
    expect(e.templates.map((t) => t.id)).not.toContain('1-10');
  });
});

describe('training instances', () => {
  it('one MI epoch covers every family with the expected unit counts', () => {
    const s = trainingInstances(mi, p5, { seed: 1 });
    const train = mi.manifest.splits.sequential.train;
    expect(s.perTask.sequential).toBe(train - mi.numUsers); // one window per train item but each user's first
    expect(s.perTask.direct).toBe(train);
    // leak-free (default): rating rows in the train part of both splits; P5's recipe: the whole random-split train part
    const both = Array.from(mi.ratingRows(TRAIN)).filter((k) => mi.interactions.seqSplit[k] === TRAIN).length;
    expect(s.perTask.rating).toBe(both);
    expect(both).toBeLessThan(mi.ratingRows(TRAIN).length);
    expect(trainingInstances(mi, p5, { seed: 1, leakFree: false }).perTask.rating).toBe(mi.ratingRows(TRAIN).length);
    expect(s.perTask.explanation).toBeGreaterThan(0);
    expect(s.perTask.review).toBeGreaterThan(0);
    expect(s.perTask.zeroshot).toBeUndefined();
    const counts: Record<string, number> = {};
    let n = 0;
    for (const i of s) {
      counts[i.task] = (counts[i.task] ?? 0) + 1;
      n++;
      expect(tpl(i.template).seen).toBe(true);
    }
    expect(n).toBe(s.total);
    expect(counts).toEqual(s.perTask);
  });

  it("row families never name a user's held-out next item (leak-free default); P5's recipe does", () => {
    const tokens = splitTokens(mi);
    const leaks = (leakFree: boolean): number => {
      let n = 0;
      for (const i of trainingInstances(mi, p5, { seed: 3, tasks: ['rating', 'explanation', 'review'], leakFree })) {
        if (tokens.get(i.user)!.heldOut.includes(i.item)) n++;
      }
      return n;
    };
    expect(leaks(true)).toBe(0);
    expect(leaks(false)).toBeGreaterThan(100);
  });

  it('sequential windows come from the train prefix and never show the valid/test item', () => {
    const tokens = splitTokens(mi);
    const windows = new Set<string>();
    for (const i of trainingInstances(mi, p5, { tasks: ['sequential'], seed: 3 })) {
      const u = tokens.get(i.user)!;
      const h = historyOf(i.source);
      expect(h.length).toBeGreaterThan(0);
      expect(h.length).toBeLessThanOrEqual(20);
      // The history is the run of (at most 20) train items right before some train position t >= 1,
      // and a next-item answer is the train item at t.
      const ends: number[] = [];
      for (let t = 1; t < u.train.length; t++) {
        const w = u.train.slice(Math.max(0, t - 20), t);
        if (w.join() === h.join() && (i.target === 'yes' || i.target === 'no' || u.train[t] === i.target)) ends.push(t);
      }
      expect(ends.length, `${i.user}: ${i.source}`).toBeGreaterThan(0);
      windows.add(`${i.user}:${h.join()}`);
    }
    expect(windows.size).toBeGreaterThan(0.9 * (mi.manifest.splits.sequential.train - mi.numUsers));
  });

  it('direct negatives are never items the user touched; positives are train items', () => {
    const tokens = splitTokens(mi);
    let cand = 0;
    let no = 0;
    for (const i of trainingInstances(mi, p5, { tasks: ['direct'], seed: 5, negatives: 19 })) {
      const u = tokens.get(i.user)!;
      if (i.candidates) {
        cand++;
        expect(i.candidates).toHaveLength(20);
        expect(new Set(i.candidates).size).toBe(20);
        expect(i.candidates).toContain(i.target);
        expect(u.train).toContain(i.target);
        for (const c of i.candidates) if (c !== i.target) expect(u.all.has(c)).toBe(false);
      } else if (i.target === 'no') {
        no++;
        expect(u.all.has(i.item)).toBe(false);
      } else {
        expect(i.target).toBe('yes');
        expect(u.train).toContain(i.item);
      }
    }
    expect(cand).toBeGreaterThan(1000);
    expect(no).toBeGreaterThan(500);
  });

  it('is deterministic per seed and epoch, and re-iterable', () => {
    const a = JSON.stringify(take(trainingInstances(mi, p5, { seed: 7 }), 400));
    const s = trainingInstances(mi, p5, { seed: 7 });
    expect(JSON.stringify(take(s, 400))).toBe(a);
    expect(JSON.stringify(take(s, 400))).toBe(a);
    expect(JSON.stringify(take(trainingInstances(mi, p5, { seed: 8 }), 400))).not.toBe(a);
    expect(JSON.stringify(take(trainingInstances(mi, p5, { seed: 7, epoch: 1 }), 400))).not.toBe(a);
    // The epoch interleaves families rather than running them one after another.
    expect(new Set(take(s, 100).map((i) => i.task)).size).toBe(5);
  });

  it('streams: the first instances of a large dataset come without generating the rest', () => {
    const t0 = performance.now();
    const s = trainingInstances(beauty, p5, { seed: 1 });
    const it = s[Symbol.iterator]();
    const first = Array.from({ length: 10 }, () => it.next().value as PromptInstance);
    const ms = performance.now() - t0;
    expect(s.total).toBeGreaterThan(250_000);
    expect(first.every((i) => i && typeof i.source === 'string')).toBe(true);
    expect(ms).toBeLessThan(1500);
  });

  it('weights scale a family; 0 turns it off', () => {
    const s = trainingInstances(mi, p5, { weights: { sequential: 2, review: 0.5, rating: 0 } });
    const base = trainingInstances(mi, p5);
    expect(s.perTask.sequential).toBe(2 * (base.perTask.sequential as number));
    expect(s.perTask.review).toBe(Math.round((base.perTask.review as number) / 2));
    expect(s.perTask.rating).toBeUndefined();
    const seen = new Map<string, number>();
    for (const i of take(s, s.total)) if (i.task === 'review') seen.set(`${i.user}:${i.item}`, (seen.get(`${i.user}:${i.item}`) ?? 0) + 1);
    expect(Math.max(...seen.values())).toBe(1); // a half weight samples rows without repeats
  });

  it('P5 answer conventions: like = 4-5 stars, yes/no star questions, noisy training stars', () => {
    const rows = new Map<string, number>();
    const x = mi.interactions;
    for (const k of mi.ratingRows(TRAIN)) rows.set(`${mi.users.token[x.user[k]]}:${mi.items.token[x.item[k]]}`, x.rating[k]);
    let yes = 0;
    let noisy = 0;
    for (const i of trainingInstances(mi, p5, { tasks: ['rating'], seed: 2 })) {
      const r = rows.get(`${i.user}:${i.item}`) as number;
      if (i.template === '1-4') expect(i.target).toBe(r >= 4 ? 'like' : 'dislike');
      if (i.template === '1-3') {
        const asked = Number(/a (\d)-star/.exec(i.source)![1]);
        expect(i.target).toBe(asked === r ? 'yes' : 'no');
        if (i.target === 'yes') yes++;
      }
      if (i.template === '1-1') {
        expect(Math.abs(Number(i.target) - r)).toBeLessThan(1);
        if (/\.\d$/.test(i.target)) noisy++;
      }
    }
    expect(yes).toBeGreaterThan(0);
    expect(noisy).toBeGreaterThan(0);
    for (const i of take(trainingInstances(mi, p5, { tasks: ['rating'], ratingNoise: false }), 300)) if (i.template === '1-1') expect(i.target).toMatch(/^[1-5]$/);
  });
});

describe('evaluation instances', () => {
  it('ask about the test item with train+valid history and the stored negatives', () => {
    const byUser = new Map<string, number>();
    for (let u = 0; u < mi.numUsers; u++) byUser.set(mi.users.token[u], u);
    const s = evaluationInstances(mi, p5, 'test', { tasks: ['sequential', 'direct'] });
    expect(s.perTemplate?.['2-1']).toBe(mi.manifest.splits.sequential.test);
    expect(s.perTemplate?.['5-1']).toBe(mi.manifest.splits.sequential.test * 100);
    let checked = 0;
    for (const i of s) {
      if (i.template !== '2-7' && i.template !== '5-8' && i.template !== '2-13') continue;
      const u = byUser.get(i.user) as number;
      const test = mi.sequenceSplit(u, TEST)[0];
      expect(i.target).toBe(mi.items.token[test]);
      if (i.template !== '5-8') {
        const h = historyOf(i.source);
        const before = Array.from(mi.historyBefore(u, TEST), (j) => mi.items.token[j]).slice(-20);
        expect(h).toEqual(before);
        const valid = mi.sequenceSplit(u, VALID);
        if (valid.length) expect(before[before.length - 1]).toBe(mi.items.token[valid[0]]);
      }
      if (i.candidates) expect([...i.candidates].sort()).toEqual([...Array.from(mi.negatives[u], (j) => mi.items.token[j]), i.target].sort());
      checked++;
    }
    expect(checked).toBe(3 * mi.manifest.splits.sequential.test);
  });

  it('cover rating, explanation and review rows of the split, per template', () => {
    const s = evaluationInstances(mi, p5, 'valid', { tasks: ['rating', 'review'], templates: 'unseen' });
    expect(s.templates.map((t) => t.id)).toEqual(['4-4']);
    expect(s.perTemplate).toEqual({ '4-4': mi.ratingRows(VALID).filter((k) => mi.interactions.review[k]).length });
    for (const i of take(s, 50)) expect(i.target).toMatch(/^[1-5]$/);
  });
});

describe('IndexPermutation', () => {
  it('is a bijection for awkward sizes', () => {
    for (const n of [1, 2, 3, 5, 17, 1000, 4097]) {
      const p = new IndexPermutation(n, new Rng(n));
      const seen = new Set(Array.from({ length: n }, (_, i) => p.at(i)));
      expect(seen.size).toBe(n);
      expect(Math.max(...seen)).toBe(n - 1);
    }
  });
});

describe('export', () => {
  it('writes valid JSONL atomically (temp file, then rename)', async () => {
    const out = join(tmp, 'pairs.jsonl');
    const s = trainingInstances(mi, p5, { seed: 4 });
    const r = await writeInstancesJsonl(s, out, { limit: 3000 });
    expect(r.written).toBe(3000);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3000);
    for (const l of lines) {
      const o = JSON.parse(l);
      expect(Object.keys(o)).toEqual(['source', 'target', 'task', 'template', 'user', 'item']);
      expect(typeof o.source).toBe('string');
    }
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('an output named .gz is gzip, with the same lines', async () => {
    const s = trainingInstances(mi, p5, { seed: 4 });
    const r = await writeInstancesJsonl(s, join(tmp, 'pairs.jsonl.gz'), { limit: 500 });
    const raw = readFileSync(join(tmp, 'pairs.jsonl.gz'));
    expect(raw.subarray(0, 2).toString('hex')).toBe('1f8b');
    const lines = gunzipSync(raw).toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(r.written);
    expect(lines).toEqual(readFileSync(join(tmp, 'pairs.jsonl'), 'utf8').trimEnd().split('\n').slice(0, 500));
  });

  it('a failure mid-stream leaves neither the output nor a temp file', async () => {
    const out = join(tmp, 'broken.jsonl');
    function* broken(): Generator<PromptInstance> {
      yield* take(trainingInstances(mi, p5), 10);
      throw new Error('boom');
    }
    await expect(writeInstancesJsonl(broken(), out)).rejects.toThrow('boom');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('p5rec prompts export', () => {
  let stdout: string[];
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  async function run(args: string[]): Promise<Record<string, unknown>> {
    stdout = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout.push(String(chunk));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const program = new Command('p5rec').exitOverride();
    registerPromptsCommands(program);
    await program.parseAsync(['node', 'p5rec', ...args]);
    vi.restoreAllMocks();
    return JSON.parse(stdout.join('').trim().split('\n').pop() as string);
  }

  it('exports the requested tasks and split with counts and skipped templates', async () => {
    const out = join(tmp, 'cli.jsonl');
    const r = await run(['prompts', 'export', join(tmp, 'mi'), '--out', out, '--tasks', 'rating,review', '--split', 'test', '--limit', '500', '--seed', '3', '--json', '--quiet']);
    expect(r.ok).toBe(true);
    expect(r.instances).toBe(500);
    expect(Object.keys(r.perTask as object).every((t) => t === 'rating' || t === 'review')).toBe(true);
    expect((r.skipped as { id: string }[]).map((s) => s.id)).toContain('1-2');
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(500);
  });

  it('a user template file with an error names the file, the template and the field', async () => {
    const bad = join(tmp, 'bad-prompts.json');
    writeFileSync(bad, JSON.stringify({ format: 'p5rec-p5-prompts', version: 1, templates: [
      { id: 'my-1', task: 'rating', source: 'Rate item_{item_id} for user_{user_id} :', target: 'star_rating', seen: true },
      { id: 'my-2', task: 'rating', source: 'How much will user_{user_id} like {item_name} ?', target: 'star_rating', seen: true },
    ] }));
    const r = await run(['prompts', 'export', join(tmp, 'mi'), '--out', join(tmp, 'x.jsonl'), '--prompts', bad, '--json', '--quiet']);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/bad-prompts\.json: field 'templates\[1\]\.source': template 'my-2': unknown placeholder \{item_name\}/);
    expect(process.exitCode).toBe(2);
    expect(existsSync(join(tmp, 'x.jsonl'))).toBe(false);
  });
});

describe('user template files', () => {
  const file = 'mine.json';
  const doc = (templates: unknown[]): unknown => ({ format: 'p5rec-p5-prompts', version: 1, templates });
  const good = { id: 'my-1', task: 'rating', source: 'Rate item_{item_id} for user_{user_id} :', target: 'star_rating', seen: true };

  it('extend the collection and are used', () => {
    const f = join(tmp, file);
    writeFileSync(f, JSON.stringify(doc([good, { ...good, id: '1-1', source: 'Stars from user_{user_id} for item_{item_id} ?' }])));
    const c = loadPromptCollection([f]);
    expect(c.templates).toHaveLength(55);
    expect(c.replaced).toEqual([{ id: '1-1', file: f }]);
    const ids = new Set(take(trainingInstances(mi, c, { tasks: ['rating'] }), 500).map((i) => i.template));
    expect(ids.has('my-1')).toBe(true);
    const mine = take(trainingInstances(mi, c.templates.filter((t) => t.id === 'my-1'), { tasks: ['rating'] }), 1)[0];
    expect(mine.source).toMatch(/^Rate item_\d+ for user_\d+ :$/);
  });

  it.each([
    [{ ...good, task: 'ratings' }, "field 'templates[0].task': template 'my-1': must be one of rating, sequential"],
    [{ ...good, seen: 'yes' }, "field 'templates[0].seen': template 'my-1': missing or not true/false"],
    [{ ...good, target: 'item_id' }, "field 'templates[0].target': template 'my-1': task 'rating' answers with star_rating, yes_no, like_dislike"],
    [{ ...good, source: 'Rate {item_id for {user_id}' }, "field 'templates[0].source': template 'my-1': unbalanced"],
    [{ ...good, task: 'sequential', target: 'item_id' }, "template 'my-1': a sequential template must show {purchase_history}"],
    [{ ...good, source: 'history {purchase_history}' }, "template 'my-1': placeholder {purchase_history} is not available to task 'rating'"],
    [{ ...good, id: '' }, "field 'templates[0].id': template id missing"],
  ])('rejects %j', (t, msg) => {
    expect(() => parseCollection(doc([t]), file)).toThrow(expect.objectContaining({ facts: expect.objectContaining({ file }) }));
    let line = '';
    try {
      parseCollection(doc([t]), file);
    } catch (e) {
      line = (e as { oneLine(): string }).oneLine();
    }
    expect(line).toContain(`${file}: `);
    expect(line).toContain(msg);
  });

  it('rejects duplicates and a wrong format', () => {
    expect(() => parseCollection(doc([good, good]), file)).toThrow(/template 'my-1': duplicate id/);
    expect(() => parseCollection({ format: 'p5rec-llm-prompts', templates: [] }, file)).toThrow(/not a P5 prompt collection/);
    const missing = join(tmp, 'nope.json');
    expect(() => loadPromptCollection([missing])).toThrow(/cannot read prompt collection/);
  });
});
