/**
 * P5 item indexing and training-time validation, on the Musical Instruments
 * reviews bundled in data/ (a real 5-core dump; see data/musical-instruments/README.md).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT, tempDir } from './helpers/cli.js';
import { initEngine } from '../src/engine/backend.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { loadPromptCollection, type PromptCollection } from '../src/prompts/templates.js';
import { renderPairPrompt, renderUserPrompt } from '../src/prompts/render.js';
import { buildIdView, idTokens, type IdView } from '../src/prompts/ids.js';
import { T5Tokenizer } from '../src/tokenizer/tokenizer.js';
import { resolveT5Config } from '../src/models/t5/config.js';
import { T5Model } from '../src/models/t5/model.js';
import { TokenTrie } from '../src/p5/trie.js';
import { P5Recommender, DEFAULT_P5_SETTINGS } from '../src/p5/recommender.js';
import { trainP5 } from '../src/p5/train.js';
import { resolveP5Options } from '../src/p5/config.js';
import { AdamW } from '../src/train/adamw.js';
import { cooccurrenceEmbeddings, itemInitVectors, withPopularity } from '../src/p5/item-init.js';
import { jacobiEigen } from '../src/util/linalg.js';
import { TRAIN, VALID } from '../src/data/splits.js';
import { buildCorpus } from '../src/p5/corpus.js';
import { encodePrompts, sequenceLogProbs } from '../src/p5/decode.js';
import { loadModel } from '../src/recommend/store.js';
import { readSafetensors } from '../src/util/safetensors.js';

const MI_REVIEWS = join(ROOT, 'data/musical-instruments/reviews_Musical_Instruments_5.json.gz');
let tmp: string;
let mi: Dataset;
let collection: PromptCollection;

beforeAll(async () => {
  tmp = tempDir('p5rec-ids-');
  const a = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', join(tmp, 'mi'), '--json', '--quiet']);
  expect(a.json?.ok, a.stderr).toBe(true);
  mi = await loadDataset(join(tmp, 'mi'));
  collection = loadPromptCollection();
  await initEngine();
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Every prompt a user and an item can appear in: each template, rendered for them. */
function renderAll(view: IdView, u: number, j: number): { id: string; text: string }[] {
  const out: { id: string; text: string }[] = [];
  const other = (j + 1) % mi.numItems;
  for (const t of collection.templates) {
    if (t.placeholders.some((p) => ['review_body', 'review_headline', 'feature_word', 'star_rating', 'brand', 'price', 'item_title'].includes(p))) {
      if (t.task === 'rating' || t.task === 'explanation' || t.task === 'review' || t.task === 'zeroshot') continue;
    }
    if (t.task === 'sequential' || t.task === 'direct') {
      if (t.placeholders.includes('item_title')) continue;
      out.push({ id: t.id, text: renderUserPrompt(mi, t, { user: u, history: Int32Array.of(other, j), asked: j, candidates: Int32Array.of(j, other) }, { ids: view }) });
    } else if (!t.placeholders.some((p) => !['user_id', 'user_desc', 'item_id'].includes(p))) {
      out.push({ id: t.id, text: renderPairPrompt(mi, t, u, j, view) });
    }
  }
  return out;
}

describe('item and user ids', () => {
  it('never collide: a user and an item with the same number are two tokens, and an item has one form in every template', async () => {
    const view = buildIdView(mi, 'independent');
    const n = '7';
    const u = mi.users.token.indexOf(n);
    const j = mi.items.token.indexOf(n);
    expect(u).toBeGreaterThanOrEqual(0);
    expect(j).toBeGreaterThanOrEqual(0);
    const prompts = renderAll(view, u, j);
    expect(prompts.length).toBeGreaterThan(15);
    const tok = T5Tokenizer.train(prompts.map((p) => p.text), { idTokens: idTokens(view, true) });
    const itemId = tok.pieceToId(`item_${n}`);
    const userId = tok.pieceToId(`user_${n}`);
    expect(itemId).not.toBeNull();
    expect(userId).not.toBeNull();
    expect(itemId).not.toBe(userId);
    let sawItem = 0;
    for (const p of prompts) {
      const e = await tok.encode(p.text);
      // The bare number never appears as a piece of its own: it is always inside its namespace's token.
      expect(e.pieces.filter((x) => x === n || x === `\u2581${n}`), p.id).toEqual([]);
      if (p.text.includes(`item_${n}`)) {
        expect(e.ids, p.id).toContain(itemId);
        sawItem++;
      }
      if (p.text.includes(`user_${n}`)) expect(e.ids, p.id).toContain(userId);
      // `item_{item_id}` no longer doubles the prefix.
      expect(p.text, p.id).not.toMatch(/item_item_|user_user_/);
    }
    expect(sawItem).toBeGreaterThan(10);
    // The answer is the same single token.
    const answer = await tok.encode(view.items[j]);
    expect(answer.ids).toEqual([itemId, tok.eosId]);
    // Id tokens start whole words and decode with spaces around them.
    const e = await tok.encode(`history : item_${n} , user_${n}`);
    const at = e.ids.indexOf(itemId!);
    expect(e.wholeWordIds[at]).toBeGreaterThan(e.wholeWordIds[at - 1]);
    expect(await tok.decode(e.ids)).toBe(`history : item_${n} , user_${n}`);
  });

  it('collaborative and cid+iid ids: the trie admits exactly the catalogue', async () => {
    for (const indexing of ['collaborative', 'cid+iid'] as const) {
      const view = buildIdView(mi, indexing, 2022);
      expect(new Set(view.items).size).toBe(mi.numItems);
      const tok = T5Tokenizer.train(['a purchase history', ...view.items.slice(0, 50)], { idTokens: idTokens(view, false) });
      const enc = await tok.encodeBatch(view.items);
      const trie = new TokenTrie();
      enc.forEach((e, j) => trie.insert(e.ids, j));
      expect(trie.size).toBe(mi.numItems);
      enc.forEach((e, j) => expect(trie.lookup(e.ids)).toBe(j));
      // Every complete path from the root ends at a catalogue item: count the leaves.
      let leaves = 0;
      const walk = (node: number): void => {
        if (trie.value(node) >= 0) leaves++;
        for (const [, next] of trie.allowed(node)) walk(next);
      };
      walk(TokenTrie.ROOT);
      expect(leaves).toBe(mi.numItems);
      // Cluster prefixes are shared (the point of collaborative ids), yet two items' tails swapped are not items.
      const first = new Set(enc.map((e) => e.ids[0]));
      expect(first.size).toBeLessThan(mi.numItems / 10);
      const a = enc[0].ids;
      const b = enc.find((e) => e.ids[0] !== a[0])!.ids;
      expect(trie.lookup([a[0], ...b.slice(1)])).toBe(-1);
    }
  });
});

describe('templates a model cannot answer', () => {
  it('are refused, naming the field the dataset or the training never had', async () => {
    const csv = join(tmp, 'plain.csv');
    const rows = ['user,item,rating,time'];
    for (let u = 0; u < 30; u++) for (let k = 0; k < 6; k++) rows.push(`u${u},i${(u * 7 + k * 3) % 40},${1 + ((u + k) % 5)},${1000 + u * 10 + k}`);
    writeFileSync(csv, rows.join('\n') + '\n');
    const r = cli(['data', 'import', 'csv', '--file', csv, '--user', 'user', '--item', 'item', '--rating', 'rating', '--time', 'time', '--out', join(tmp, 'plain'), '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
    const ds = await loadDataset(join(tmp, 'plain'));
    expect(ds.manifest.fields.reviewerName).toBe(false);
    const tok = T5Tokenizer.train(['a purchase history of user_1 : 1 , 2']);
    const model = T5Model.create(resolveT5Config({ preset: 'tiny', vocab_size: tok.vocabSize }), { seed: 1 });
    try {
      const rec = new P5Recommender(ds, model, tok, collection, 'both', { ...DEFAULT_P5_SETTINGS, trainedPlaceholders: ['user_id', 'purchase_history'] });
      // 2-13 (P5's unseen sequential prompt) describes the user by name: this dataset has none.
      expect(() => rec.usePrompt('sequential', '2-13')).toThrow(/\{user_desc\}.*reviewerName/);
      // 5-1 asks about {item_id}, which no training prompt of this model filled.
      expect(() => rec.usePrompt('direct', '5-1')).toThrow(/\{item_id\}.*no training prompt/);
      rec.usePrompt('sequential', '2-1');
    } finally {
      model.dispose();
    }
  });
});

describe('training with independent ids and validation', () => {
  it.each([['cooccurrence', null, undefined], ['cooccurrence+popularity', null, undefined], ['cooccurrence+popularity', 12, undefined], ['cooccurrence', null, 1]] as const)('keeps %s-initialised item rows (dims %s, window %s) where they started with itemLrScale 0', async (itemInit, dims, window) => {
    const out = join(tmp, `p5-frozen-items-${itemInit}-${dims}-${window}`);
    const d = 32;
    await trainP5(mi, collection, {
      out, config: { preset: 'tiny', d_model: d, d_kv: 8, d_ff: 64, num_heads: 4 } as never, tasks: ['sequential'], prompts: ['2-1'], itemIds: 'independent', userPieces: true,
      itemInit, itemInitDims: dims, itemInitWindow: window, itemLrScale: 0, embeddingLrScale: 10, epochs: 1, steps: 3, tokensPerBatch: 2048, maxBatch: 32, lr: 1e-2, seed: 0, quiet: true,
    });
    const { rec } = loadModel(out, mi);
    const p5rec = rec as P5Recommender;
    try {
      const table = (await p5rec.model.params.get('shared.weight')!.data()) as Float32Array;
      const tok = T5Tokenizer.load(join(out, 'tokenizer.json'));
      const e = itemInitVectors(mi, itemInit, d, { dims: dims ?? d, seed: 0, window });
      const rowOf = (text: string): number => tok.pieceToId(text.split(' ').at(-1)!)!;
      // Every item row is the same multiple of its init vector (the weight decay shrinks all rows alike).
      const first = p5rec.ids.items.findIndex((_, j) => e[j * d] !== 0);
      let [te, ee] = [0, 0];
      for (let k = 0; k < d; k++) {
        te += table[rowOf(p5rec.ids.items[first]) * d + k] * e[first * d + k];
        ee += e[first * d + k] ** 2;
      }
      const c = te / ee;
      expect(Math.abs(c)).toBeGreaterThan(0);
      for (let j = 0; j < mi.numItems; j++) {
        const r = rowOf(p5rec.ids.items[j]);
        for (let k = 0; k < d; k++) expect(table[r * d + k]).toBeCloseTo(c * e[j * d + k], 4);
      }
      const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
      expect(card.config.training.itemLrScale).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'recipe.json'), 'utf8')).model).toMatchObject({ itemInitDims: dims, itemInitWindow: window ?? 3 });
    } finally {
      p5rec.model.dispose();
    }
    expect(() => resolveP5Options({ itemLrScale: 0.1 })).toThrow(/^itemLrScale needs one token per item/);
  });

  it('saves the moving average of the weights with emaDecay (not the last step), and records it', async () => {
    const out = join(tmp, 'p5-ema');
    await trainP5(mi, collection, {
      out, config: { preset: 'tiny', d_model: 32, d_kv: 8, d_ff: 64, num_heads: 4 } as never, tasks: ['sequential'], prompts: ['2-1'], itemIds: 'independent',
      emaDecay: 0.9, epochs: 1, steps: 3, tokensPerBatch: 2048, maxBatch: 32, lr: 1e-2, seed: 0, quiet: true,
    });
    const ck = join(out, 'train', 'checkpoint');
    const avg = readSafetensors(join(ck, 'ema.safetensors')).float32('shared.weight');
    const last = readSafetensors(join(ck, 'params.safetensors')).float32('shared.weight');
    const { rec } = loadModel(out, mi);
    const p5rec = rec as P5Recommender;
    try {
      const saved = (await p5rec.model.params.get('shared.weight')!.data()) as Float32Array;
      expect(Array.from(saved)).toEqual(Array.from(avg));
      expect(Array.from(saved)).not.toEqual(Array.from(last));
      expect(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).config.training.emaDecay).toBe(0.9);
    } finally {
      p5rec.model.dispose();
    }
    expect(() => resolveP5Options({ emaDecay: 1 })).toThrow(/^emaDecay must be in \(0, 1\)/);
  });

  it('logs a validation curve, keeps the best model, and evaluates with the ids it was trained on', async () => {
    const out = join(tmp, 'p5');
    const steps: number[] = [];
    const r = await trainP5(mi, collection, {
      out, config: { preset: 'tiny', d_model: 32, d_kv: 8, d_ff: 64, num_heads: 4 } as never, tasks: ['sequential'], prompts: ['2-1', '2-3'], itemIds: 'independent', epochs: 1,
      steps: 4, tokensPerBatch: 2048, maxBatch: 32, lr: 1e-3, validate: { every: 2, users: 20 }, quiet: true, onStep: (s) => steps.push(s.step),
    });
    expect(steps).toEqual([1, 2, 3, 4]);
    const log = readFileSync(join(out, 'train', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const valid = log.filter((l) => l.type === 'valid');
    expect(valid.map((v) => v.step)).toEqual([2, 4]);
    for (const v of valid) {
      expect(v.users).toBe(20);
      expect(v['HR@10']).toBeGreaterThanOrEqual(0);
      expect(v['HR@10']).toBeLessThanOrEqual(1);
      expect(v.metric).toBe(v['NDCG@10']);
    }
    expect(r.validation?.count).toBe(2);
    expect(existsSync(join(out, 'train', 'best', 'model.safetensors'))).toBe(true);
    const p5 = JSON.parse(readFileSync(join(out, 'p5.json'), 'utf8'));
    expect(p5.itemIds).toBe('independent');
    expect(p5.trainedTemplates.sort()).toEqual(['2-1', '2-3']);
    expect(p5.settings.prompts.sequential).toBe('2-1');
    expect(p5.settings.answerEos).toBe(false);

    // One-token item answers carry no `</s>`: not in the training targets, not in the scores.
    const tok = T5Tokenizer.load(join(out, 'tokenizer.json'));
    const bare = await buildCorpus(mi, collection, tok, { tasks: ['sequential'], only: ['2-1'], ids: buildIdView(mi, 'independent', 2022), bareIdAnswers: true, quiet: true });
    expect(bare.targetTokens).toBe(bare.examples);
    const full = await buildCorpus(mi, collection, tok, { tasks: ['sequential'], only: ['2-1'], ids: buildIdView(mi, 'independent', 2022), quiet: true });
    expect(full.targetTokens).toBe(2 * full.examples);
    const { rec } = loadModel(out, mi);
    const p5rec = rec as P5Recommender;
    const user = 3;
    const history = mi.historyBefore(user, VALID);
    const scores = await p5rec.score(user, history);
    const found = [...scores.keys()].filter((j) => Number.isFinite(scores[j]));
    expect(found.length).toBe(DEFAULT_P5_SETTINGS.beams);
    const prompt = renderUserPrompt(mi, p5rec.template('2-1'), { user, history }, { maxHistory: p5rec.settings.maxHistory, ids: p5rec.ids });
    const enc = await encodePrompts(tok, [prompt]);
    const targets = await Promise.all(found.map(async (j) => [...tok.bareIdAnswer((await tok.encode(p5rec.ids.items[j])).ids)]));
    expect(targets.every((t) => t.length === 1)).toBe(true);
    const lp = sequenceLogProbs(p5rec.model, enc, targets, targets.length);
    found.forEach((j, k) => expect(scores[j]).toBeCloseTo(lp[k], 4));
    expect(JSON.parse(readFileSync(join(out, 'ids.json'), 'utf8')).items[0]).toBe(`item_${mi.items.token[0]}`);
    const ev = cli(['eval', join(tmp, 'mi'), '--model', out, '--task', 'sequential', '--users', '30', '--json', '--quiet']);
    expect(ev.json?.ok, ev.stderr).toBe(true);
    expect((ev.json as { count: number }).count).toBe(30);
    expect((ev.json as { stderr: Record<string, number> }).stderr['HR@10']).toBeGreaterThanOrEqual(0);
    const bad = cli(['eval', join(tmp, 'mi'), '--model', out, '--task', 'direct', '--prompt', '5-1', '--users', '5', '--json', '--quiet']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/\{item_id\}/);

    // The GPU trainer's pairs: written with this model's ids, only its templates.
    const pairs = join(tmp, 'pairs.jsonl');
    const ex = cli(['prompts', 'export', join(tmp, 'mi'), '--out', pairs, '--tasks', 'sequential', '--only', '2-3', '--ids-from', out, '--limit', '40', '--json', '--quiet']);
    expect(ex.json?.ok, ex.stderr).toBe(true);
    expect(ex.json).toMatchObject({ itemIds: 'independent', instances: 40, perTemplate: { '2-3': 40 } });
    const itemTokens = new Set(JSON.parse(readFileSync(join(out, 'ids.json'), 'utf8')).items as string[]);
    for (const line of readFileSync(pairs, 'utf8').trim().split('\n')) {
      const pair = JSON.parse(line) as { source: string; target: string };
      expect(itemTokens.has(pair.target), pair.target).toBe(true);
      expect(pair.source).toMatch(/item_\d+/);
    }
    expect(cli(['prompts', 'export', join(tmp, 'mi'), '--out', pairs, '--ids-from', out, '--item-ids', 'plain']).stderr).toMatch(/not both/);

    // The validation curve reaches the report as a plot.
    const rep = cli(['report', '--runs', out, '--out', join(tmp, 'report'), '--json', '--quiet']);
    expect(rep.json?.ok, rep.stderr).toBe(true);
    const html = readFileSync(join(tmp, 'report', 'report.html'), 'utf8');
    expect(html).toMatch(/aria-label="p5: validation NDCG@10 \(best [0-9.]+ at step [24]\)"/);
    expect(html).toContain('aria-label="p5: training loss"');
  }, 240_000);
});

describe('AdamW learning-rate scale', () => {
  it('speeds up the Adam step of a range but not its weight decay', () => {
    const params = new Float32Array(8).fill(1);
    const grads = new Float32Array(8);
    const adam = new AdamW(8, [{ offset: 0, size: 4, decay: true }, { offset: 4, size: 4, decay: true, lrScale: 10 }], { weightDecay: 0.1 });
    adam.step(params, grads, 0.01, 1);
    // zero gradient: only decay moves the weights, by the same factor in both ranges
    expect(params[0]).toBeCloseTo(1 - 0.01 * 0.1, 6);
    expect(params[4]).toBeCloseTo(params[0], 6);
  });
});

describe('co-occurrence item init', () => {
  it('a Jacobi eigensolve reproduces a symmetric matrix', () => {
    const k = 4;
    const m = Float64Array.from([4, 1, 0, 2, 1, 3, 1, 0, 0, 1, 2, 1, 2, 0, 1, 5]);
    const { values, vectors } = jacobiEigen(Float64Array.from(m), k);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        let r = 0;
        for (let e = 0; e < k; e++) r += vectors[i * k + e] * values[e] * vectors[j * k + e];
        expect(r).toBeCloseTo(m[i * k + j], 9);
      }
    }
  });

  it('with popularity: the last coordinate is the standardized log count in the training prefixes, the others stay', () => {
    const d = 8;
    const e = cooccurrenceEmbeddings(mi, d);
    const p = withPopularity(mi, Float32Array.from(e), d);
    const count = new Float64Array(mi.numItems);
    for (let u = 0; u < mi.numUsers; u++) for (const i of mi.historyBefore(u, VALID)) count[i]++;
    let mean = 0;
    let sq = 0;
    let first = 0;
    for (let j = 0; j < mi.numItems; j++) {
      for (let k = 0; k < d - 1; k++) expect(p[j * d + k]).toBe(e[j * d + k]);
      mean += p[j * d + d - 1] / mi.numItems;
      sq += p[j * d + d - 1] ** 2 / mi.numItems;
      first += e[j * d] ** 2 / mi.numItems;
    }
    expect(Math.abs(mean)).toBeLessThan(1e-5);
    expect(Math.sqrt(sq)).toBeCloseTo(Math.sqrt(first), 4); // at the size of the strongest coordinate
    // monotone in the training count; held-out interactions do not count
    const order = Array.from({ length: mi.numItems }, (_, j) => j).sort((a, b) => count[a] - count[b]);
    for (let r = 1; r < order.length; r++) {
      const [a, b] = [order[r - 1], order[r]];
      if (count[a] < count[b]) expect(p[a * d + d - 1]).toBeLessThan(p[b * d + d - 1]);
      else expect(p[a * d + d - 1]).toBe(p[b * d + d - 1]);
    }
    expect(count.some((c) => c === 0)).toBe(true); // items only held out: the lowest value, like never-bought
    // counting every interaction instead would reorder some pair: the coordinate follows the training count there
    const all = new Float64Array(mi.numItems);
    for (const i of mi.interactions.item) all[i]++;
    const flipped = order.filter((a, r) => r > 0 && count[order[r - 1]] < count[a] && all[order[r - 1]] > all[a]);
    expect(flipped.length).toBeGreaterThan(0);
    for (const a of flipped) {
      const b = order[order.indexOf(a) - 1];
      expect(p[b * d + d - 1]).toBeLessThan(p[a * d + d - 1]);
    }
  });

  it('with fewer dims than the row: the leading coordinates are that rank\'s vectors, the rest 0, popularity last', () => {
    const [d, k] = [16, 5];
    const low = cooccurrenceEmbeddings(mi, k, { seed: 3 });
    const e = itemInitVectors(mi, 'cooccurrence', d, { dims: k, seed: 3 });
    const p = itemInitVectors(mi, 'cooccurrence+popularity', d, { dims: k, seed: 3 });
    const full = withPopularity(mi, itemInitVectors(mi, 'cooccurrence', d, { dims: k, seed: 3 }), d);
    for (let j = 0; j < mi.numItems; j++) {
      for (let c = 0; c < d; c++) {
        expect(e[j * d + c]).toBe(c < k ? low[j * k + c] : 0);
        expect(p[j * d + c]).toBe(c < d - 1 ? e[j * d + c] : full[j * d + c]);
      }
    }
    expect(p.some((v, i) => i % d === d - 1 && v !== 0)).toBe(true);
    // All dims: exactly the vectors the option's absence gave.
    expect(itemInitVectors(mi, 'cooccurrence+popularity', 8, { seed: 1 })).toEqual(withPopularity(mi, cooccurrenceEmbeddings(mi, 8, { seed: 1 }), 8));
    expect(() => itemInitVectors(mi, 'cooccurrence', 8, { dims: 9 })).toThrow(/9 co-occurrence dims for rows 8 wide/);
  });

  it('takes its co-occurrence window from the option (default 3), through itemInitVectors too', () => {
    const d = 8;
    const def = cooccurrenceEmbeddings(mi, d, { seed: 2 });
    expect(cooccurrenceEmbeddings(mi, d, { seed: 2, window: 3 })).toEqual(def);
    expect(itemInitVectors(mi, 'cooccurrence', d, { seed: 2, window: 7 })).toEqual(cooccurrenceEmbeddings(mi, d, { seed: 2, window: 7 }));
    expect(cooccurrenceEmbeddings(mi, d, { seed: 2, window: 7 })).not.toEqual(def);
    // Window 1 keeps only adjacent pairs: fewer pairs than window 3, so other vectors again.
    expect(cooccurrenceEmbeddings(mi, d, { seed: 2, window: 1 })).not.toEqual(def);
  });

  it('gives items bought together larger dot products, and items never in a training prefix no vector', () => {
    const d = 16;
    const e = cooccurrenceEmbeddings(mi, d);
    const x = mi.interactions;
    const inTrain = new Uint8Array(mi.numItems);
    const pairs: [number, number][] = [];
    for (let u = 0; u < mi.numUsers; u++) {
      const s = mi.userStart[u];
      for (let t = 0; t < mi.userLength[u] && x.seqSplit[s + t] === TRAIN; t++) {
        inTrain[x.item[s + t]] = 1;
        if (t > 0 && x.seqSplit[s + t - 1] === TRAIN && x.item[s + t] !== x.item[s + t - 1]) pairs.push([x.item[s + t - 1], x.item[s + t]]);
      }
    }
    const dot = (i: number, j: number): number => {
      let a = 0;
      for (let k = 0; k < d; k++) a += e[i * d + k] * e[j * d + k];
      return a;
    };
    let adjacent = 0;
    let random = 0;
    let m = 0;
    for (let p = 0; p < pairs.length; p += 7) {
      const [i, j] = pairs[p];
      adjacent += dot(i, j);
      random += dot(i, (j * 31 + 17) % mi.numItems);
      m++;
    }
    expect(adjacent / m).toBeGreaterThan(3 * Math.abs(random / m));
    for (let j = 0; j < mi.numItems; j++) {
      if (inTrain[j]) continue;
      for (let k = 0; k < d; k++) expect(e[j * d + k]).toBe(0);
    }
  });
});
