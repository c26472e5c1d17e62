import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { popularity } from '../src/baselines/pop.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { TEST } from '../src/data/splits.js';
import type { ModelState, Recommender, Task } from '../src/recommend/recommender.js';
import { FACTORIES } from '../src/recommend/registry.js';
import { saveModel, type ModelCard } from '../src/recommend/store.js';
import { buildApp } from '../src/serve/app.js';
import type { Generator } from '../src/serve/generator.js';
import { confineModelDir, loadServedModels, parseModelSpec, type ServedModel } from '../src/serve/models.js';
import { topK } from '../src/serve/topk.js';
import { startServe } from '../src/cli/serve.js';
import { cli, MOVIELENS, movieLensCounts, ROOT, tempDir } from './helpers/cli.js';

const ML = movieLensCounts();
import { tinyP5Fixture } from './helpers/p5-fixture.js';

/** A model with a per-user vector: its scores depend on the user index. */
class PerUser implements Recommender {
  readonly kind = 'per-user';
  readonly trainSplit = 'sequential' as const;
  constructor(readonly tasks: readonly Task[] = ['direct', 'sequential'], private readonly delayMs = 0) {}
  async score(user: number, _history: Int32Array, candidates?: Int32Array): Promise<Float32Array> {
    // Yield to the event loop (a random delay) so concurrent requests interleave.
    if (this.delayMs) await new Promise((r) => setTimeout(r, Math.random() * this.delayMs));
    const n = candidates ? candidates.length : ML.items;
    return Float32Array.from({ length: n }, (_, j) => Math.sin((user + 1) * 12.9898 + (candidates ? candidates[j] : j) * 78.233));
  }
  state(): ModelState {
    return { config: {}, tensors: {} };
  }
}

/** Rating only: cannot rank. */
class RatingOnly implements Recommender {
  readonly kind = 'rating-only';
  readonly tasks = ['rating'] as const;
  readonly trainSplit = 'rating' as const;
  score(): Float32Array {
    throw new Error('not a ranker');
  }
  predictRating(): number {
    return 7; // clipped to 5
  }
  state(): ModelState {
    return { config: {}, tensors: {} };
  }
}

const card = (kind: string): ModelCard => ({
  format: 'p5rec-model', kind, trainSplit: 'sequential', config: {},
  dataset: { name: 'movielens:u', fingerprint: 'test', users: ML.users, items: ML.items },
  fit: { seconds: 0, peakRssMB: 0, seed: 0 }, createdBy: 'test',
});

const NO_P5 = "no generative (P5) model loaded; this route needs a P5 model as the server's generator";

describe('p5rec serve', () => {
  let tmp: string;
  let root: string;
  let ds: Dataset;
  let models: Map<string, ServedModel>;
  let app: FastifyInstance;
  let counts: Float32Array;

  const post = (url: string, payload: object, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload, headers });
  const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });

  beforeAll(async () => {
    tmp = tempDir('p5rec-serve-');
    const data = join(tmp, 'ml');
    const r = cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', data, '--quiet', '--json']);
    expect(r.status, r.stderr).toBe(0);
    ds = await loadDataset(data);
    root = join(tmp, 'models');
    const rec = await popularity.fit(ds, {}, 'sequential', { log: () => {}, quiet: true, seed: 1 });
    counts = rec.score(0, new Int32Array()) as Float32Array;
    saveModel(join(root, 'pop'), rec, ds, { seconds: 0, peakRssMB: 0, seed: 1 });
    models = loadServedModels(ds, ['pop'], { modelRoot: root });
    models.set('per-user', { rec: new PerUser(), card: card('per-user') });
    models.set('slow', { rec: new PerUser(['sequential'], 5), card: card('per-user') });
    models.set('rating-only', { rec: new RatingOnly(), card: card('rating-only') });
    app = buildApp({ dataset: ds, models, modelRoot: root, bodyLimit: 64 * 1024 });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const someUser = (): number => {
    for (let u = 0; u < ds.numUsers; u++) if (ds.sequenceSplit(u, TEST).length && ds.userLength[u] > 20) return u;
    throw new Error('no user');
  };

  it('GET /healthz and /v1/models', async () => {
    const h = await get('/healthz');
    expect(h.statusCode).toBe(200);
    expect(h.json()).toMatchObject({ ok: true, models: 4 });
    const m = (await get('/v1/models')).json();
    expect(m.default).toBe('pop');
    expect(m.dataset).toMatchObject({ name: 'movielens:u', users: ML.users, items: ML.items, ratings: true });
    expect(m.models.map((x: { name: string }) => x.name)).toEqual(['pop', 'per-user', 'slow', 'rating-only']);
    expect(m.models[0]).toMatchObject({ kind: 'pop', path: 'pop', trainSplit: 'sequential', capabilities: { recommend: true, rate: true } });
    expect(m.models[3].capabilities).toMatchObject({ recommend: false, rate: true });
    expect(m.generator).toBeNull();
  });

  it('GET /v1/users searches; /v1/users/:id shows history with titles and the held-out item', async () => {
    const all = (await get('/v1/users?limit=5')).json();
    expect(all.total).toBe(ML.users);
    expect(all.users).toHaveLength(5);
    const page2 = (await get('/v1/users?limit=5&offset=5')).json();
    expect(page2.users.map((x: { user: string }) => x.user)).toEqual(ds.users.token.slice(5, 10));
    expect(page2.total).toBe(ML.users);
    const u = someUser();
    const tok = ds.users.token[u];
    const found = (await get(`/v1/users?search=${ds.users.rawId[u]}&limit=100`)).json();
    expect(found.users.map((x: { user: string }) => x.user)).toContain(tok);
    const exact = (await get(`/v1/users?search=user_${tok}`)).json();
    expect(exact.users[0].user).toBe(tok);
    expect((await get('/v1/users?limit=0')).statusCode).toBe(400);
    expect((await get('/v1/users?limit=101')).statusCode).toBe(400);

    for (const id of [tok, `user_${tok}`]) {
      const r = await get(`/v1/users/${id}`);
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.user).toBe(tok);
      expect(body.history).toHaveLength(ds.userLength[u]);
      expect(body.history.map((h: { item: string }) => h.item)).toEqual(Array.from(ds.sequence(u), (i) => ds.items.token[i]));
      expect(body.history[0].title).toBe(ds.items.title[ds.sequence(u)[0]]);
      const target = ds.sequenceSplit(u, TEST)[0];
      expect(body.heldOut).toEqual({ item: ds.items.token[target], title: ds.items.title[target] });
      expect(body.history.filter((h: { split: string }) => h.split === 'test')).toHaveLength(1);
    }
    const missing = await get('/v1/users/user_nobody');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatch(/unknown user 'user_nobody'/);
  });

  it('GET /v1/items/:id', async () => {
    const tok = ds.items.token[5];
    for (const id of [tok, `item_${tok}`]) {
      const r = await get(`/v1/items/${id}`);
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ item: tok, title: ds.items.title[5], rawId: ds.items.rawId[5] });
      expect(r.json().interactions).toBe(ds.interactions.item.filter((i) => i === 5).length);
    }
    expect((await get('/v1/items/item_nothing')).statusCode).toBe(404);
  });

  it('POST /v1/recommend: top-k over the whole catalogue, the full history excluded', async () => {
    const u = someUser();
    const have = new Set(ds.sequence(u));
    const r = await post('/v1/recommend', { user: `user_${ds.users.token[u]}` });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ model: 'pop', user: ds.users.token[u] });
    expect(body.heldOut).toBeUndefined();
    // Same as a full sort (ties → lower index), history removed.
    const expected = Array.from(counts.keys()).filter((i) => !have.has(i)).sort((a, b) => counts[b] - counts[a] || a - b).slice(0, 10);
    expect(body.items.map((x: { item: string }) => x.item)).toEqual(expected.map((i) => ds.items.token[i]));
    expect(body.items[0]).toEqual({ item: ds.items.token[expected[0]], title: ds.items.title[expected[0]], score: counts[expected[0]] });

    const k3 = (await post('/v1/recommend', { user: ds.users.token[u], k: 3, model: 'per-user' })).json();
    expect(k3.items).toHaveLength(3);
    expect(k3.model).toBe('per-user');
    for (const it of k3.items) expect(have.has(ds.itemByToken(it.item)!)).toBe(false);
  });

  it('POST /v1/recommend with holdout replays the leave-one-out test and marks hits', async () => {
    const u = someUser();
    const target = ds.sequenceSplit(u, TEST)[0];
    const seen = new Set(ds.historyBefore(u, TEST));
    const body = (await post('/v1/recommend', { user: ds.users.token[u], k: 100, holdout: true })).json();
    expect(body.heldOut.item).toBe(ds.items.token[target]);
    for (const it of body.items) expect(seen.has(ds.itemByToken(it.item)!)).toBe(false);
    // Candidates that include the target: it can only be missing if excluded, which it is not.
    const cands = [ds.items.token[target], ...Array.from({ length: 5 }, (_, j) => ds.items.token[j])];
    const c = (await post('/v1/recommend', { user: ds.users.token[u], candidates: cands, holdout: true })).json();
    const hit = c.items.find((x: { hit: boolean }) => x.hit);
    expect(hit.item).toBe(ds.items.token[target]);
    expect(c.items.filter((x: { hit: boolean }) => x.hit)).toHaveLength(1);
  });

  it('POST /v1/recommend with candidates ranks only those; excludeHistory=false keeps seen items', async () => {
    const u = someUser();
    const seen = ds.sequence(u)[0];
    const cands = [ds.items.token[seen], 'item_' + ds.items.token[1], ds.items.token[2], ds.items.token[2]];
    const a = (await post('/v1/recommend', { user: ds.users.token[u], candidates: cands })).json();
    const expectA = [1, 2].filter((i) => !new Set(ds.sequence(u)).has(i));
    expect(a.items.map((x: { item: string }) => x.item).sort()).toEqual(expectA.map((i) => ds.items.token[i]).sort());
    const b = (await post('/v1/recommend', { user: ds.users.token[u], candidates: cands, excludeHistory: false })).json();
    expect(b.items).toHaveLength(3);
    expect(b.items.map((x: { item: string }) => x.item)).toContain(ds.items.token[seen]);
    const bad = await post('/v1/recommend', { user: ds.users.token[u], candidates: ['item_zzz'] });
    expect(bad.statusCode).toBe(404);
    expect(bad.json()).toEqual({ error: "unknown item 'item_zzz'", field: 'candidates' });
  });

  it('400 for invalid bodies, 404 for unknown users/models, 422 for what a model cannot do', async () => {
    const tok = ds.users.token[0];
    const cases: [object, number, RegExp][] = [
      [{ user: tok, k: 0 }, 400, /k must be >= 1/],
      [{ user: tok, k: 101 }, 400, /k must be <= 100/],
      [{ user: tok, k: 2.5 }, 400, /k must be integer/],
      [{}, 400, /missing the required field 'user'/],
      [{ user: tok, top_k: 3 }, 400, /unknown field 'top_k'/],
      [{ user: tok, candidates: [] }, 400, /candidates must NOT have fewer than 1/],
      [{ user: tok, holdout: 'yes' }, 400, /holdout must be boolean/],
      [{ user: 'nobody' }, 404, /unknown user 'nobody'/],
      [{ user: tok, model: 'nope' }, 404, /unknown model 'nope' \(loaded: pop, per-user, slow, rating-only\)/],
      [{ user: tok, model: 'rating-only' }, 422, /cannot rank items/],
    ];
    for (const [payload, status, msg] of cases) {
      const r = await post('/v1/recommend', payload);
      expect(r.statusCode, JSON.stringify(payload)).toBe(status);
      expect(r.json().error).toMatch(msg);
    }
    const notJson = await app.inject({ method: 'POST', url: '/v1/recommend', payload: '{"user":', headers: { 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    expect((await get('/v1/nothing')).statusCode).toBe(404);
  });

  it('413 for bodies over the limit', async () => {
    const big = { user: ds.users.token[0], candidates: Array.from({ length: 20_000 }, (_, i) => `item_${i}`) };
    const r = await post('/v1/recommend', big);
    expect(r.statusCode).toBe(413);
    expect(r.json().error).toMatch(/larger than 65536 bytes/);
  });

  it('POST /v1/next: history-only models use the session; per-user models borrow the nearest user', async () => {
    const u = someUser();
    const session = Array.from(ds.sequence(u).subarray(0, 8), (i) => ds.items.token[i]);
    const p = (await post('/v1/next', { history: session, k: 5 })).json();
    expect(p).toMatchObject({ model: 'pop', via: 'history' });
    expect(p.items).toHaveLength(5);
    for (const it of p.items) expect(session).not.toContain(it.item);

    const q = await post('/v1/next', { history: session, k: 5, model: 'per-user' });
    expect(q.statusCode).toBe(200);
    const body = q.json();
    expect(body.via).toBe('nearest-user');
    expect(body.proxyUser.similarity).toBeGreaterThan(0);
    expect(ds.userByToken(body.proxyUser.user)).toBeDefined();
    for (const it of body.items) expect(session).not.toContain(it.item);
    // The probe result shows up in /v1/models.
    const caps = (await get('/v1/models')).json().models.map((m: { capabilities: { next: string } }) => m.capabilities.next);
    expect(caps.slice(0, 2)).toEqual(['history', 'nearest-user']);

    expect((await post('/v1/next', { history: [] })).statusCode).toBe(400);
    expect((await post('/v1/next', { history: ['item_zzz'] })).json()).toEqual({ error: "unknown item 'item_zzz'", field: 'history' });
    expect((await post('/v1/next', { history: session, model: 'rating-only' })).statusCode).toBe(422);
  });

  it('POST /v1/rate: stars clipped to 1..5 with the known rating; 422 for models without ratings', async () => {
    const u = someUser();
    const i = ds.sequence(u)[0];
    const r = (await post('/v1/rate', { user: ds.users.token[u], item: `item_${ds.items.token[i]}` })).json();
    expect(r.model).toBe('pop');
    expect(r.rating).toBeGreaterThan(3);
    expect(r.rating).toBeLessThan(4);
    expect(r.known).toBe(ds.interactions.rating[ds.userStart[u]]);
    const clipped = (await post('/v1/rate', { user: ds.users.token[u], item: ds.items.token[i], model: 'rating-only' })).json();
    expect(clipped).toMatchObject({ rating: 5, raw: 7 });
    const no = await post('/v1/rate', { user: ds.users.token[u], item: ds.items.token[i], model: 'per-user' });
    expect(no.statusCode).toBe(422);
    expect(no.json().error).toMatch(/cannot predict ratings/);
    expect((await post('/v1/rate', { user: ds.users.token[u], item: 'nope' })).statusCode).toBe(404);
    expect((await post('/v1/rate', { user: ds.users.token[u] })).statusCode).toBe(400);
  });

  it('explain/summarize/generate answer 501 without a P5 model, and use a generator when one is plugged in', async () => {
    const tok = ds.users.token[0];
    for (const [url, body] of [['/v1/explain', { user: tok, item: ds.items.token[0] }], ['/v1/summarize', { review: 'great' }], ['/v1/generate', { prompt: 'hi' }]] as const) {
      const r = await post(url, body);
      expect(r.statusCode).toBe(501);
      expect(r.json()).toEqual({ error: NO_P5 });
    }
    expect((await post('/v1/explain', { user: tok })).statusCode).toBe(400);

    const prompts: string[] = [];
    const gen: Generator = { name: 'fake-p5', kind: 'p5', generate: async (p) => (prompts.push(p), `echo: ${p}`) };
    const g = buildApp({ dataset: ds, models, generator: gen, webDir: null });
    const e = await g.inject({ method: 'POST', url: '/v1/explain', payload: { user: tok, item: ds.items.token[0], feature: 'plot' } });
    expect(e.statusCode).toBe(200);
    expect(e.json().model).toBe('fake-p5');
    expect(prompts[0]).toContain(`user_${tok}`);
    expect(prompts[0]).toContain(ds.items.title[0]);
    expect(prompts[0]).toContain('plot');
    expect((await g.inject({ method: 'POST', url: '/v1/summarize', payload: { review: 'Loved it' } })).json().output).toMatch(/Loved it/);
    expect((await g.inject({ method: 'POST', url: '/v1/generate', payload: { prompt: 'raw' } })).json()).toEqual({ model: 'fake-p5', prompt: 'raw', output: 'echo: raw' });
    expect((await g.inject({ method: 'POST', url: '/v1/explain', payload: { user: 'nobody', item: ds.items.token[0] } })).statusCode).toBe(404);
    expect((await g.inject({ method: 'GET', url: '/v1/models' })).json().generator).toEqual({ name: 'fake-p5', kind: 'p5' });
    await g.close();
  });

  it('401 without the API key on /v1/*, with Bearer or x-api-key it passes; health and docs stay open', async () => {
    const s = buildApp({ dataset: ds, models, apiKey: 's3cret' });
    const body = { user: ds.users.token[0], k: 1 };
    const none = await s.inject({ method: 'POST', url: '/v1/recommend', payload: body });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await s.inject({ method: 'POST', url: '/v1/recommend', payload: body, headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    expect((await s.inject({ method: 'GET', url: '/v1/users/x', headers: { 'x-api-key': 's3cre' } })).statusCode).toBe(401);
    expect((await s.inject({ method: 'POST', url: '/v1/recommend', payload: body, headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
    expect((await s.inject({ method: 'POST', url: '/v1/recommend', payload: body, headers: { 'x-api-key': 's3cret' } })).statusCode).toBe(200);
    expect((await s.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await s.inject({ method: 'GET', url: '/' })).statusCode).toBe(200);
    const doc = (await s.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    await s.close();
  });

  it('GET /openapi.json is generated from the route schemas; /docs lists the routes; / serves the page', async () => {
    const doc = (await get('/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths as Record<string, object>).flatMap(([p, o]) => Object.keys(o).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    expect(ops).toEqual([
      'GET /healthz', 'GET /v1/items/{id}', 'GET /v1/models', 'GET /v1/users', 'GET /v1/users/{id}',
      'POST /v1/explain', 'POST /v1/generate', 'POST /v1/next', 'POST /v1/rate', 'POST /v1/recommend', 'POST /v1/summarize',
    ]);
    expect(doc.paths['/v1/recommend'].post.requestBody.content['application/json'].schema.properties.k).toMatchObject({ minimum: 1, maximum: 100, default: 10 });
    expect(doc.paths['/v1/users/{id}'].get.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    expect(Object.keys(doc.paths['/v1/recommend'].post.responses)).toEqual(['200', '400', '401', '404', '413', '422']);
    const html = await get('/docs');
    expect(html.headers['content-type']).toMatch(/text\/html/);
    expect(html.body).toContain('/v1/recommend');
    const page = await get('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.body).toContain('<script type="module" src="/app.js">');
    expect((await get('/app.js')).headers['content-type']).toMatch(/text\/javascript/);
    expect((await get('/style.css')).headers['content-type']).toMatch(/text\/css/);
  });

  it('serves concurrent requests correctly (async models interleave; the shared exclusion mask does not leak)', async () => {
    const users = Array.from({ length: 40 }, (_, j) => (j * 23) % ds.numUsers);
    const reqs = users.flatMap((u) => ['pop', 'slow'].map((model) => ({ user: ds.users.token[u], model, k: 20 })));
    const serial = [];
    for (const r of reqs) serial.push((await post('/v1/recommend', r)).json());
    const parallel = await Promise.all(reqs.map((r) => post('/v1/recommend', r).then((x) => x.json())));
    expect(parallel).toEqual(serial);
    for (let j = 0; j < reqs.length; j++) {
      const have = new Set(ds.sequence(ds.userByToken(reqs[j].user)!));
      for (const it of parallel[j].items) expect(have.has(ds.itemByToken(it.item)!)).toBe(false);
    }
  });

  it('model paths cannot escape --model-root (.., absolute, symlinked folders or files)', () => {
    expect(confineModelDir(root, 'pop')).toBe(join(root, 'pop'));
    expect(confineModelDir(root, join(root, 'pop'))).toBe(join(root, 'pop'));
    expect(() => confineModelDir(root, '../ml')).toThrow(/resolves to .*ml, outside the model root/);
    expect(() => confineModelDir(root, join(tmp, 'ml'))).toThrow(/outside the model root/);
    expect(() => confineModelDir(root, 'pop/../../ml')).toThrow(/outside the model root/);
    symlinkSync(join(tmp, 'ml'), join(root, 'escape'));
    expect(() => confineModelDir(root, 'escape')).toThrow(/is a symlink to .*ml, outside the model root/);
    // A folder inside the root whose model.json links outside it.
    mkdirSync(join(tmp, 'outside'));
    copyFileSync(join(root, 'pop', 'model.json'), join(tmp, 'outside', 'model.json'));
    mkdirSync(join(root, 'sneaky'));
    symlinkSync(join(tmp, 'outside', 'model.json'), join(root, 'sneaky', 'model.json'));
    expect(() => confineModelDir(root, 'sneaky')).toThrow(/model file model.json .* outside the model root/);
    // A link that stays inside the root is fine.
    symlinkSync(join(root, 'pop'), join(root, 'alias'));
    expect(confineModelDir(root, 'alias')).toBe(join(root, 'pop'));
    expect(() => confineModelDir(join(tmp, 'no-such-root'), 'pop')).toThrow(/the model root does not exist/);
    expect(() => confineModelDir(root, 'missing')).toThrow(/does not exist/);
    expect(() => loadServedModels(ds, ['../ml'], { modelRoot: root })).toThrow(/outside the model root/);
    expect(() => loadServedModels(ds, ['pop', 'alias=pop', 'pop'], { modelRoot: root })).toThrow(/two models are named 'pop'/);
    expect(parseModelSpec('a/b/pop')).toEqual({ name: 'pop', dir: 'a/b/pop' });
    expect(parseModelSpec('best=a/b=c')).toEqual({ name: 'best', dir: 'a/b=c' });
    expect(() => parseModelSpec('bad name=x')).toThrow(/model name/);
  });

  it('every registered model kind serves /v1/recommend, /v1/next and /v1/rate (or a clear 422)', async () => {
    const specs: string[] = [];
    // P5 trains into its own folder (minutes, not seconds); it is served from the tiny P5 fixture in the tests above.
    const kinds = FACTORIES.filter((f) => !f.ownFolder);
    for (const f of kinds) {
      // Quick fits: one epoch where the model has epochs, no early stopping.
      const config = { ...f.defaults, ...('epochs' in f.defaults ? { epochs: 1 } : {}), ...('patience' in f.defaults ? { patience: 0 } : {}) };
      const rec = await f.fit(ds, config, f.defaultSplit, { log: () => {}, quiet: true, seed: 1 });
      saveModel(join(root, `conf-${f.kind}`), rec, ds, { seconds: 0, peakRssMB: 0, seed: 1 });
      specs.push(`${f.kind}=conf-${f.kind}`);
    }
    const all = buildApp({ dataset: ds, models: loadServedModels(ds, specs, { modelRoot: root }), webDir: null });
    const u = someUser();
    const have = new Set(ds.sequence(u));
    const session = Array.from(ds.sequence(u).subarray(0, 5), (i) => ds.items.token[i]);
    for (const f of kinds) {
      const rank = f.tasks.includes('direct') || f.tasks.includes('sequential');
      const r = await all.inject({ method: 'POST', url: '/v1/recommend', payload: { user: ds.users.token[u], model: f.kind } });
      expect(r.statusCode, `${f.kind}: ${r.body}`).toBe(rank ? 200 : 422);
      if (rank) {
        expect(r.json().items, f.kind).toHaveLength(10);
        for (const it of r.json().items) expect(have.has(ds.itemByToken(it.item)!), f.kind).toBe(false);
        const n = await all.inject({ method: 'POST', url: '/v1/next', payload: { history: session, model: f.kind, k: 5 } });
        expect(n.statusCode, `${f.kind}: ${n.body}`).toBe(200);
        expect(n.json().items, f.kind).toHaveLength(5);
      }
      const rate = await all.inject({ method: 'POST', url: '/v1/rate', payload: { user: ds.users.token[u], item: ds.items.token[0], model: f.kind } });
      expect([200, 422], `${f.kind}: ${rate.body}`).toContain(rate.statusCode);
      if (rate.statusCode === 200) expect(rate.json().rating).toBeGreaterThanOrEqual(1);
    }
    const vias = (await all.inject({ method: 'GET', url: '/v1/models' })).json().models.map((m: { kind: string; capabilities: { next: string } }) => `${m.kind}:${m.capabilities.next}`);
    expect(vias).toContain('pop:history');
    if (FACTORIES.some((f) => f.kind === 'bpr-mf')) expect(vias).toContain('bpr-mf:nearest-user');
    await all.close();
  });

  it('startServe listens, answers and closes; a bad model path fails before the dataset loads', async () => {
    const s = await startServe({ dataset: join(tmp, 'ml'), models: ['pop'], modelRoot: root, host: '127.0.0.1', port: 0, logLevel: 'silent' });
    try {
      expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(s.models).toEqual([{ name: 'pop', kind: 'pop', trainSplit: 'sequential' }]);
      const r = await fetch(`${s.url}/v1/recommend`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: ds.users.token[0], k: 2 }) });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { items: unknown[] }).items).toHaveLength(2);
    } finally {
      await s.app.close();
    }
    await expect(startServe({ dataset: join(tmp, 'no-dataset'), models: ['../ml'], modelRoot: root, host: '127.0.0.1', port: 0 })).rejects.toThrow(/outside the model root/);
    await expect(startServe({ dataset: join(tmp, 'ml'), models: [], host: '127.0.0.1', port: 0 })).rejects.toThrow(/at least one model/);
  });
});

describe('p5rec serve (the command, in a child process)', () => {
  const built = join(ROOT, 'dist/cli/serve.js');
  // Until `serve` is wired into the main program, drive registerServeCommand through a tiny program of its own.
  const script = `import { Command } from 'commander'; import { registerServeCommand } from ${JSON.stringify(pathToFileURL(built).href)};
const p = new Command('p5rec').exitOverride(); registerServeCommand(p); await p.parseAsync(process.argv);`;
  const start = (args: string[]) => spawn(process.execPath, ['--input-type=module', '-e', script, 'p5rec', 'serve', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (child: ChildProcess) => {
    const out = { stdout: '', stderr: '', code: null as number | null };
    child.stdout!.on('data', (d) => (out.stdout += d));
    child.stderr!.on('data', (d) => (out.stderr += d));
    const exited = new Promise<typeof out>((res) => child.on('exit', (code) => res(((out.code = code), out))));
    return { out, exited };
  };

  it.skipIf(!existsSync(built))('prints {ok, url, models} once listening and exits 0 on SIGTERM; a bad path exits 2 with one line', async () => {
    const tmp = tempDir('p5rec-serve-cli-');
    try {
      const data = join(tmp, 'ml');
      expect(cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', data, '--kcore', '15', '--quiet']).status).toBe(0);
      expect(cli(['fit', data, '--model', 'pop', '--out', join(tmp, 'models', 'pop'), '--quiet']).status).toBe(0);

      const child = start(['--dataset', data, '--model', 'top=pop', '--model-root', join(tmp, 'models'), '--port', '0', '--json']);
      const { out, exited } = collect(child);
      while (!out.stdout.includes('\n') && out.code === null) await new Promise((r) => setTimeout(r, 50));
      const ready = JSON.parse(out.stdout.trim());
      expect(ready).toMatchObject({ ok: true, models: [{ name: 'top', kind: 'pop', trainSplit: 'sequential' }] });
      expect(((await (await fetch(`${ready.url}/healthz`)).json()) as { ok: boolean }).ok).toBe(true);
      child.kill('SIGTERM');
      const done = await exited;
      expect(done.code, done.stderr).toBe(0);
      expect(done.stderr).toMatch(/SIGTERM: closing\nclosed\n$/);
      expect(done.stdout.trim().split('\n')).toHaveLength(1);

      const bad = await collect(start(['--dataset', data, '--model', '../ml', '--model-root', join(tmp, 'models'), '--port', '0', '--json'])).exited;
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^p5rec: error: field 'model': model path '\.\.\/ml' resolves to .*, outside the model root/m);
      expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, field: 'model' });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('topK', () => {
  it('equals a full sort (ties → lower index), skips NaN and excluded positions', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const n of [0, 1, 5, 100, 1000]) {
      for (const k of [1, 3, 10, 100, 2000]) {
        const s = Float32Array.from({ length: n }, () => Math.floor(rand() * 20) / 4);
        if (n > 3) s[2] = NaN;
        const skip = (i: number): boolean => i % 7 === 0;
        const want = Array.from(s.keys()).filter((i) => !Number.isNaN(s[i]) && !skip(i)).sort((a, b) => s[b] - s[a] || a - b).slice(0, k);
        const got = topK(s, k, skip);
        expect(Array.from(got.index)).toEqual(want);
        expect(Array.from(got.score)).toEqual(want.map((i) => s[i]));
      }
    }
  });
});

describe('p5rec serve with a P5 model (tiny, trained here)', () => {
  let tmp: string;
  let ds: Dataset;
  let served: Awaited<ReturnType<typeof startServe>>;
  let nocache: FastifyInstance;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Json = Record<string, any>;
  const call = async (path: string, body?: object): Promise<{ status: number; cache: string | null; json: Json }> => {
    const r = await fetch(`${served.url}${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, cache: r.headers.get('x-cache'), json: (await r.json()) as Json };
  };
  const userWithHistory = (min: number): number => {
    for (let u = 0; u < ds.numUsers; u++) if (ds.userLength[u] >= min && ds.sequenceSplit(u, TEST).length) return u;
    throw new Error('no user');
  };

  beforeAll(async () => {
    let data: string;
    ({ tmp, data, ds } = await tinyP5Fixture('p5rec-serve-p5-'));
    // startServe sees a P5 folder: it starts the tensor engine and makes P5 the generator.
    served = await startServe({ dataset: data, models: ['p5', 'pop'], modelRoot: join(tmp, 'models'), host: '127.0.0.1', port: 0, logLevel: 'silent' });
    nocache = buildApp({ dataset: ds, models: loadServedModels(ds, ['p5'], { modelRoot: join(tmp, 'models') }), webDir: null });
  }, 180_000);
  afterAll(async () => {
    await served?.app.close();
    await nocache?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('loads P5 from its model.json, reports its capabilities and makes it the generator', async () => {
    expect(served.models).toEqual([{ name: 'p5', kind: 'p5', trainSplit: 'both' }, { name: 'pop', kind: 'pop', trainSplit: 'sequential' }]);
    expect(served.generator).toBe('p5');
    const m = (await call('/v1/models')).json;
    expect(m.default).toBe('p5');
    expect(m.models[0]).toMatchObject({ name: 'p5', kind: 'p5', tasks: ['rating', 'direct', 'sequential'], capabilities: { recommend: true, rate: true, next: 'nearest-user' } });
    expect(m.generator).toEqual({ name: 'p5', kind: 'p5' });
  });

  it('/v1/recommend: beam-search top-k without history items, cached on repeat; holdout and candidates work', async () => {
    const u = userWithHistory(5);
    const have = new Set(ds.sequence(u));
    const first = await call('/v1/recommend', { user: ds.users.token[u], k: 10 });
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    expect(first.cache).toBe('miss');
    const items = first.json.items as { item: string; score: number }[];
    // At most `beams` (20) items are retrieved; history items are dropped from them.
    expect(items.length).toBeGreaterThan(0);
    expect(items.length).toBeLessThanOrEqual(10);
    for (const it of items) expect(have.has(ds.itemByToken(it.item)!)).toBe(false);
    for (let j = 1; j < items.length; j++) expect(items[j - 1].score).toBeGreaterThanOrEqual(items[j].score);
    const again = await call('/v1/recommend', { user: ds.users.token[u], k: 10 });
    expect(again.cache).toBe('hit');
    expect(again.json).toEqual(first.json);
    // The uncached app gives the same answer.
    const direct = await nocache.inject({ method: 'POST', url: '/v1/recommend', payload: { user: ds.users.token[u], k: 10 } });
    expect(direct.headers['x-cache']).toBeUndefined();
    expect(direct.json().items.map((x: { item: string }) => x.item)).toEqual(items.map((x) => x.item));

    const h = (await call('/v1/recommend', { user: ds.users.token[u], k: 5, holdout: true })).json;
    expect(h.heldOut.item).toBe(ds.items.token[ds.sequenceSplit(u, TEST)[0]]);
    // Candidates go through the yes/no prompt (5-1): every candidate not in the history is ranked.
    const cands = Array.from({ length: 12 }, (_, j) => ds.items.token[j]);
    const c = (await call('/v1/recommend', { user: ds.users.token[u], candidates: cands, k: 20 })).json;
    const fresh = cands.filter((t) => !have.has(ds.itemByToken(t)!));
    expect(c.items.map((x: { item: string }) => x.item).sort()).toEqual(fresh.sort());
  });

  it('concurrent P5 requests are batched and answer as serial ones do', async () => {
    const users = [0, 7, 19, 33, 48, 60].map((u) => ds.users.token[u]);
    const serial: { user: string; items: { score: number }[] }[] = [];
    for (const user of users) serial.push((await nocache.inject({ method: 'POST', url: '/v1/recommend', payload: { user, k: 5 } })).json());
    const parallel = await Promise.all(users.map((user) => nocache.inject({ method: 'POST', url: '/v1/recommend', payload: { user, k: 5 } }).then((r) => r.json())));
    parallel.forEach((p, j) => {
      expect(p.user).toBe(serial[j].user);
      expect(p.items.length).toBe(serial[j].items.length);
      p.items.forEach((it: { score: number }, r: number) => expect(it.score).toBeCloseTo(serial[j].items[r].score, 2));
    });
  });

  it('/v1/next borrows the nearest user for P5; /v1/rate gives a star', async () => {
    const u = userWithHistory(6);
    const session = Array.from(ds.sequence(u).subarray(0, 4), (i) => ds.items.token[i]);
    const n = await call('/v1/next', { history: session, k: 5, model: 'p5' });
    expect(n.status, JSON.stringify(n.json)).toBe(200);
    expect(n.json.via).toBe('nearest-user');
    expect(ds.userByToken(n.json.proxyUser.user)).toBeDefined();
    for (const it of n.json.items) expect(session).not.toContain(it.item);
    const r = await call('/v1/rate', { user: ds.users.token[u], item: ds.items.token[ds.sequence(u)[0]], model: 'p5' });
    expect(r.status).toBe(200);
    expect(r.json.rating).toBeGreaterThanOrEqual(1);
    expect(r.json.rating).toBeLessThanOrEqual(5);
    expect(r.json.known).toBe(ds.interactions.rating[ds.userStart[u]]);
  });

  it('/v1/explain, /v1/summarize and /v1/generate run the P5 model', async () => {
    const u = userWithHistory(5);
    const item = ds.items.token[ds.sequence(u)[1]];
    const e = await call('/v1/explain', { user: ds.users.token[u], item });
    expect(e.status, JSON.stringify(e.json)).toBe(200);
    expect(e.json).toMatchObject({ model: 'p5', template: '3-6' });
    expect(e.json.prompt).toContain(`item_${item}`);
    expect(typeof e.json.output).toBe('string');
    // Deterministic: the same pair explains the same way.
    expect((await call('/v1/explain', { user: ds.users.token[u], item })).json).toEqual(e.json);
    const f = (await call('/v1/explain', { user: ds.users.token[u], item, feature: 'strings' })).json;
    expect(f.template).toBe('3-11');
    expect(f.prompt).toContain('strings');
    expect(f.prompt).toContain(`user_${ds.users.token[u]}`);
    const s = (await call('/v1/summarize', { review: 'Bright strings that stay in tune.', user: ds.users.token[u] })).json;
    expect(s).toMatchObject({ model: 'p5', template: '4-1' });
    expect(s.prompt).toContain('Bright strings that stay in tune.');
    const g = (await call('/v1/generate', { prompt: `Which star rating will user_${ds.users.token[u]} give item_${item} ? ( 1 being lowest and 5 being highest )` })).json;
    expect(g.model).toBe('p5');
    expect(typeof g.output).toBe('string');
    expect((await call('/v1/explain', { user: 'nobody', item })).status).toBe(404);
  });
});
