import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BEAUTY, cli, MI_REVIEWS, MOVIELENS, tempDir } from './helpers/cli.js';
import { initEngine } from '../src/engine/backend.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { loadPromptCollection, type PromptCollection } from '../src/prompts/templates.js';
import { evaluationInstances } from '../src/prompts/eval-instances.js';
import { T5Tokenizer } from '../src/tokenizer/tokenizer.js';
import { resolveT5Config } from '../src/models/t5/config.js';
import { T5Model } from '../src/models/t5/model.js';
import { TokenTrie } from '../src/p5/trie.js';
import { beamSearch, encodePrompts, sequenceLogProbs } from '../src/p5/decode.js';
import { parseStar } from '../src/p5/recommender.js';

let tmp: string;
let mi: Dataset;
let beauty: Dataset;
let ml: Dataset;
let collection: PromptCollection;
let tok: T5Tokenizer;
let model: T5Model;

beforeAll(async () => {
  tmp = tempDir('p5rec-p5-');
  const a = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', join(tmp, 'mi'), '--json', '--quiet']);
  expect(a.json?.ok, a.stderr).toBe(true);
  const b = cli(['data', 'import', 'p5', '--sequences', join(BEAUTY, 'sequential.txt'), '--datamaps', join(BEAUTY, 'datamaps.json'),
    '--meta', join(BEAUTY, 'meta.jsonl'), '--out', join(tmp, 'beauty'), '--json', '--quiet']);
  expect(b.json?.ok, b.stderr).toBe(true);
  const c = cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', join(tmp, 'ml'), '--json', '--quiet']);
  expect(c.json?.ok, c.stderr).toBe(true);
  [mi, beauty, ml] = await Promise.all([loadDataset(join(tmp, 'mi')), loadDataset(join(tmp, 'beauty')), loadDataset(join(tmp, 'ml'))]);
  collection = loadPromptCollection();
  await initEngine();
  // A tokenizer on real prompts and item ids, and an untrained tiny T5 over it.
  const corpus = [...evaluationInstances(mi, collection, 'test', { tasks: ['sequential', 'rating', 'explanation'] })].slice(0, 3000).flatMap((x) => [x.source, x.target]);
  tok = T5Tokenizer.train([...corpus, ...mi.items.token]);
  model = T5Model.create(resolveT5Config({ preset: 'tiny', vocab_size: tok.vocabSize }), { seed: 1 });
}, 240_000);

afterAll(() => {
  model?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('prompts on real records', () => {
  it('every template renders from a real record of MI, Beauty or MovieLens, with no placeholder left', () => {
    const rendered = new Map<string, string>();
    for (const ds of [mi, beauty, ml]) {
      for (const t of collection.templates) {
        if (rendered.has(t.id)) continue;
        for (const inst of evaluationInstances(ds, [t], 'test', { templates: 'all' })) {
          rendered.set(t.id, inst.source);
          break;
        }
      }
    }
    for (const [id, src] of rendered) {
      expect(src, id).not.toMatch(/\{[a-z_]+\}/);
      expect(src.length, id).toBeGreaterThan(10);
    }
    // The rest need reviews or reviewer names together with titles (or brand/price): no test
    // dataset has both (MI: reviews and names, no titles; MovieLens and Beauty: titles, no reviews
    // or names), and each is skipped with the missing field named.
    const missing = collection.templates.filter((t) => !rendered.has(t.id)).map((t) => t.id);
    expect(missing.filter((id) => !id.startsWith('Z-'))).toEqual(['1-7', '1-8', '1-9', '1-10', '3-1', '3-3', '3-4', '3-5', '3-9', '3-10', '5-3']);
    const skipped = evaluationInstances(mi, collection, 'test', { templates: 'all' }).skipped;
    for (const id of missing) expect(skipped.find((x) => x.id === id)?.reason, id).toMatch(/no item titles|brand|price/);
  });
});

describe('item trie', () => {
  it('admits exactly the catalogue', async () => {
    const enc = await tok.encodeBatch(mi.items.token);
    const trie = new TokenTrie();
    enc.forEach((e, j) => trie.insert(e.ids, j));
    expect(trie.size).toBe(mi.numItems);
    for (let j = 0; j < mi.numItems; j++) expect(trie.lookup(enc[j].ids)).toBe(j);
    // a prefix, a sequence without </s>, an id that is no item, and junk are rejected
    expect(trie.lookup(enc[0].ids.slice(0, -1))).toBe(-1);
    expect(trie.lookup((await tok.encode(String(mi.numItems + 5000))).ids)).toBe(-1);
    expect(trie.lookup([tok.eosId])).toBe(-1);
    expect(trie.lookup((await tok.encode('great strings')).ids)).toBe(-1);
  });
});

describe('decoding', () => {
  it('constrained beams never emit a non-item; with beams >= the items every item comes back with its exact log-probability', async () => {
    const items = Array.from({ length: 30 }, (_, j) => j * 7);
    const enc = await tok.encodeBatch(items.map((j) => mi.items.token[j]));
    const trie = new TokenTrie();
    enc.forEach((e, j) => trie.insert(e.ids, items[j]));
    const prompts = ['Given the following purchase history of user_12 : \n 5 , 9 \n predict next possible item to be purchased by the user ?', 'Will user_3 likely to interact with item_44 ?'];
    const batch = await encodePrompts(tok, prompts);
    const all = beamSearch(model, batch, { beams: 30, trie, maxLength: 16 });
    for (const hyps of all) {
      expect(hyps.length).toBe(30);
      expect(new Set(hyps.map((h) => h.value))).toEqual(new Set(items));
      for (let i = 1; i < hyps.length; i++) expect(hyps[i - 1].logProb).toBeGreaterThanOrEqual(hyps[i].logProb);
    }
    // Beam scores equal teacher-forced sequence log-probabilities.
    const targets = all.flatMap((hyps) => hyps.slice(0, 5).map((h) => [...h.ids, tok.eosId]));
    const exact = sequenceLogProbs(model, batch, targets, 5);
    all.forEach((hyps, b) => hyps.slice(0, 5).forEach((h, i) => expect(h.logProb).toBeCloseTo(exact[b * 5 + i], 3)));
    // Fewer beams over the whole catalogue: every output is an item and decodes to its id.
    const catalogue = new TokenTrie();
    (await tok.encodeBatch(mi.items.token)).forEach((e, j) => catalogue.insert(e.ids, j));
    const few = beamSearch(model, batch, { beams: 5, trie: catalogue });
    for (const hyps of few) {
      expect(hyps.length).toBe(5);
      for (const h of hyps) {
        expect(h.value).toBeGreaterThanOrEqual(0);
        expect((await tok.decode(h.ids, { skipSpecialTokens: true })).replace(/\s/g, '')).toBe(mi.items.token[h.value]);
      }
    }
  });

  it('unconstrained beam search honours the minimum length', async () => {
    const batch = await encodePrompts(tok, ['Help user_5 generate a 5-star explanation for item_8']);
    const [hyps] = beamSearch(model, batch, { beams: 3, minLength: 6, maxLength: 12 });
    expect(hyps.length).toBeGreaterThan(0);
    for (const h of hyps) expect(h.ids.length).toBeGreaterThanOrEqual(6);
  });

  it('reads stars out of generated answers', () => {
    expect(parseStar('4.3')).toBe(4.3);
    expect(parseStar('5 , great sound')).toBe(5);
    expect(parseStar('9')).toBe(5);
    expect(parseStar('no idea')).toBeNull();
  });
});

describe('p5rec train / eval / predict / generate', () => {
  let out: string;
  beforeAll(() => {
    out = join(tmp, 'p5');
    const r = cli(['train', join(tmp, 'mi'), '--out', out, '--config', 'tiny', '--epochs', '1', '--steps', '6', '--negatives', '4', '--max-source', '64',
      '--batch-tokens', '2048', '--checkpoint-every', '3', '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
  }, 300_000);

  it('writes a HF T5 folder that is also a p5rec model, trained a few steps on all five tasks', () => {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'model.json', 'p5.json', 'train/train-log.jsonl']) expect(existsSync(join(out, f)), f).toBe(true);
    const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(card.kind).toBe('p5');
    expect(card.trainSplit).toBe('both');
    expect(card.fit.steps).toBe(6);
    const log = readFileSync(join(out, 'train/train-log.jsonl'), 'utf8').trim().split('\n');
    expect(log.length).toBe(6);
    expect(Number.isFinite(JSON.parse(log[5]).loss)).toBe(true);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.d_model).toBe(64);
    // The resolved recipe: the flags given, every other value the one default (src/p5/config.ts).
    const recipe = JSON.parse(readFileSync(join(out, 'recipe.json'), 'utf8'));
    expect(recipe).toMatchObject({ format: 'p5rec-recipe', version: 1, model: { config: 'tiny', itemIds: 'plain' }, optimizer: { lr: 1e-3, adamEps: 1e-6, weightDecay: 0.01, warmupRatio: 0.05 }, data: { negatives: 4, maxSourceLength: 64, tokensPerBatch: 2048 }, loop: { epochs: 1, steps: 6, checkpointEvery: 3 } });
  });

  it('evaluates on every task through the shared harness, seen and unseen prompts', () => {
    const ev = (args: string[]): Record<string, unknown> => {
      const r = cli(['eval', join(tmp, 'mi'), '--model', out, ...args, '--json', '--quiet']);
      expect(r.json?.ok, r.stderr).toBe(true);
      return r.json as Record<string, unknown>;
    };
    const seq = ev(['--task', 'sequential', '--users', '12', '--beams', '10']);
    expect(seq.prompt).toBe('2-1');
    expect(seq.count).toBe(12);
    expect(Object.keys(seq.metrics as object)).toContain('HR@10');
    const unseen = ev(['--task', 'sequential', '--users', '6', '--prompt', '2-13', '--beams', '5']);
    expect(unseen.seen).toBe(false);
    expect(unseen.label).toBe('P5 (2-13, unseen)');
    const direct = ev(['--task', 'direct', '--users', '4', '--prompt', '5-8', '--beams', '10']);
    expect((direct.metrics as Record<string, number>)['HR@10']).toBeGreaterThanOrEqual(0);
    const yesNo = ev(['--task', 'direct', '--users', '4']);
    expect(yesNo.prompt).toBe('5-1');
    const rating = ev(['--task', 'rating', '--users', '10']);
    const m = rating.metrics as Record<string, number>;
    expect(m.RMSE).toBeGreaterThan(0);
    expect(m.RMSE).toBeLessThanOrEqual(4);
    const expl = ev(['--task', 'explanation', '--users', '6']);
    expect(expl.prompt).toBe('3-12');
    expect(Object.keys(expl.metrics as object)).toEqual(['BLEU-4', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L']);
    const rev = ev(['--task', 'review', '--users', '6']);
    expect(Object.keys(rev.metrics as object)).toContain('BLEU-2');
    // the report shows P5 rows per prompt
    const rep = cli(['report', '--runs', out, '--out', join(tmp, 'report'), '--json']);
    expect(rep.json?.ok, rep.stderr).toBe(true);
    const md = readFileSync(join(tmp, 'report', 'report.md'), 'utf8');
    expect(md).toContain('P5 (2-13, unseen)');
    expect(md).toContain('P5 (2-1)');
  }, 300_000);

  it('predicts real items for a user and generates text for any prompt', () => {
    const user = mi.users.rawId[3];
    const p = cli(['predict', out, '--dataset', join(tmp, 'mi'), '--task', 'sequential', '--user', user, '--k', '5', '--json', '--quiet']);
    expect(p.json?.ok, p.stderr).toBe(true);
    const items = p.json!.items as { item: string; score: number }[];
    expect(items.length).toBe(5);
    for (const it of items) expect(mi.items.rawId).toContain(it.item);
    const r = cli(['predict', out, '--dataset', join(tmp, 'mi'), '--task', 'rating', '--user', user, '--item', mi.items.rawId[0], '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
    expect(r.json!.rating).toBeGreaterThanOrEqual(1);
    expect(r.json!.rating).toBeLessThanOrEqual(5);
    const g = cli(['generate', out, '--prompt', 'Will user_3 likely to interact with item_44 ?', '--beams', '2', '--n', '2', '--max-length', '5', '--json', '--quiet']);
    expect(g.json?.ok, g.stderr).toBe(true);
    const res = g.json!.results as { outputs: { text: string }[] }[];
    expect(res[0].outputs.length).toBe(2);
  }, 120_000);

  it('trains with data-parallel workers sharing the corpus, and resumes from a checkpoint', async () => {
    const w = join(tmp, 'p5w');
    const args = ['train', join(tmp, 'mi'), '--out', w, '--config', 'tiny', '--epochs', '1', '--negatives', '4', '--max-source', '48', '--batch-tokens', '1024',
      '--item-pieces', '--user-pieces', '--embedding-lr-scale', '5', '--adam-eps', '1e-8', '--dropout', '0', '--no-rating-noise', '--checkpoint-every', '2', '--json', '--quiet'];
    const bad = cli([...args.slice(0, -2), '--adam-eps', '0', '--steps', '1']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--adam-eps must be a number > 0');
    const a = cli([...args, '--steps', '2', '--workers', '2', '--batches-per-step', '2']);
    expect(a.json?.ok, a.stderr).toBe(true);
    expect(a.json!.steps).toBe(2);
    // --user-pieces: every user id is one piece of the trained tokenizer, as every item id is
    const tok = T5Tokenizer.load(join(w, 'tokenizer.json'));
    for (const [u, i] of [[0, 0], [1, 1], [mi.numUsers - 1, mi.numItems - 1]]) {
      expect((await tok.encode(`user_${mi.users.token[u]} bought item_${mi.items.token[i]}`)).pieces).toEqual(expect.arrayContaining([mi.users.token[u], mi.items.token[i]]));
    }
    const card = JSON.parse(readFileSync(join(w, 'model.json'), 'utf8'));
    expect(card.config.userPieces).toBe(true);
    expect(card.config.training.embeddingLrScale).toBe(5);
    expect(card.config.training.adamEps).toBe(1e-8);
    expect(card.config.t5.dropout_rate).toBe(0);
    // integer stars: the expected star's calibration was fitted on the validation ratings, per star template
    const p5j = JSON.parse(readFileSync(join(w, 'p5.json'), 'utf8'));
    expect(p5j.settings.ratingMode).toBe('calibrated');
    const validRatings = mi.ratingRows(1).length;
    for (const id of ['1-1', '1-6']) {
      const c = p5j.settings.ratingCalibration[id];
      expect(c.n).toBe(validRatings);
      expect(c.b).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(c.a)).toBe(true);
    }
    expect(p5j.settings.ratingCalibration['1-4']).toBeUndefined(); // like/dislike has no star answer
    const raw = cli(['eval', join(tmp, 'mi'), '--model', w, '--task', 'rating', '--rating-mode', 'expected', '--users', '30', '--json', '--quiet']);
    const cal = cli(['eval', join(tmp, 'mi'), '--model', w, '--task', 'rating', '--users', '30', '--json', '--quiet']);
    expect(raw.json?.label).toBe('P5 (1-1, expected star)');
    expect(cal.json?.label).toBe('P5 (1-1, calibrated star)');
    expect(existsSync(join(w, 'evals', 'rating-test-p1-1-expected-u30.json'))).toBe(true);
    expect(existsSync(join(w, 'evals', 'rating-test-p1-1-u30.json'))).toBe(true);
    const again = cli(['calibrate', w, '--dataset', join(tmp, 'mi'), '--json', '--quiet']);
    expect(again.json?.ok, again.stderr).toBe(true);
    expect((again.json!.ratingCalibration as Record<string, { a: number }>)['1-1'].a).toBeCloseTo(p5j.settings.ratingCalibration['1-1'].a, 6);
    // a finished run's checkpoint continues into a longer run only with the same plan: refused clearly
    const r = cli([...args, '--steps', '4', '--resume']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/checkpoint/);
  }, 180_000);

  it('bad prompts and wrong models give one clear line', () => {
    const bad = cli(['eval', join(tmp, 'mi'), '--model', out, '--task', 'sequential', '--prompt', '3-1', '--json', '--quiet']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/prompt 3-1 is a explanation prompt|sequential or direct prompt/);
    const unknown = cli(['eval', join(tmp, 'mi'), '--model', out, '--task', 'sequential', '--prompt', '9-9', '--quiet']);
    expect(unknown.stderr).toMatch(/unknown prompt '9-9'/);
    const cands = cli(['eval', join(tmp, 'mi'), '--model', out, '--task', 'sequential', '--prompt', '5-5', '--users', '2', '--quiet']);
    expect(cands.stderr).toMatch(/lists candidates/);
    const again = cli(['train', join(tmp, 'mi'), '--out', out, '--config', 'tiny', '--quiet']);
    expect(again.stderr).toMatch(/already holds a model/);
    expect(again.stderr.trim().split('\n').length).toBe(1);
  }, 120_000);
});

describe('rating calibration', () => {
  it('fits y = a + b·x by least squares, with b clipped at 0 and a flat x giving the mean', async () => {
    const { fitLinear } = await import('../src/p5/calibrate.js');
    const fit = fitLinear([1, 2, 3, 4], [3, 5, 7, 9]);
    expect(fit.b).toBeCloseTo(2, 10);
    expect(fit.a).toBeCloseTo(1, 10);
    expect(fitLinear([1, 2, 3], [3, 2, 1])).toEqual({ a: 2, b: 0 }); // anti-correlated: the mean
    expect(fitLinear([4, 4, 4], [1, 2, 6])).toEqual({ a: 3, b: 0 });
    expect(() => fitLinear([], [])).toThrow(/calibration needs/);
  });
});
