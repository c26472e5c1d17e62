import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join, win32 } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { InputError, NotFoundError, P5recError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { SPLIT_NAMES, TEST } from '../data/splits.js';
import type { Recommender } from '../recommend/recommender.js';
import { VERSION } from '../version.js';
import { defaultPrompt, NO_GENERATOR, type GenerativeTask, type Generator, type PromptFields } from './generator.js';
import { displayPath, type ServedModel } from './models.js';
import { buildOpenApi, renderDocsPage, type RouteDoc } from './openapi.js';
import * as S from './schemas.js';
import { Sessions } from './session.js';
import { Lru, ScoreBatcher } from './batch.js';
import { topK } from './topk.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the API key; every route without it (unknown routes included) needs the key. */
    public?: boolean;
    /** false: left out of /openapi.json. */
    docs?: boolean;
  }
}

/** Node HTTP server timeouts in milliseconds (a real socket only: app.inject ignores them). */
export interface ServerTimeouts {
  /** Whole request head received (slow-loris headers get 408 and are closed). */
  headers: number;
  /** Whole request, head and body, received. */
  request: number;
  /** An idle keep-alive connection between requests. */
  keepAlive: number;
  /** No byte moved either way on the socket (a client that stops reading its answer). */
  idle: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = { headers: 10_000, request: 30_000, keepAlive: 5_000, idle: 120_000 };

/** Defaults filled in; refuses non-positive values and a head timeout longer than the request one (Node would throw). */
export function resolveTimeouts(t: Partial<ServerTimeouts> = {}): ServerTimeouts {
  const out = { ...DEFAULT_TIMEOUTS, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`the ${k} timeout must be a whole number of milliseconds >= 1, got ${v}`, { field: `${k}-timeout` });
  }
  if (out.headers > out.request) throw new InputError(`the headers timeout (${out.headers} ms) must not exceed the request timeout (${out.request} ms)`, { field: 'headers-timeout' });
  return out;
}

/** An explicitly empty or blank key would turn auth off by accident: refuse it. */
export function checkApiKey(key: string | undefined, source = 'the API key'): string | undefined {
  if (key === undefined) return undefined;
  if (!key.trim()) throw new InputError(`${source} is empty; give a non-empty key, or unset it to serve without one`, { field: 'api-key' });
  if (key !== key.trim()) throw new InputError(`${source} starts or ends with whitespace, which no Bearer header can carry`, { field: 'api-key' });
  return key;
}

/** Model config as shown to clients: absolute paths (a P5 `init` checkpoint, say) cut to their last part. */
function hidePaths(v: unknown): unknown {
  if (typeof v === 'string') return isAbsolute(v) || win32.isAbsolute(v) ? basename(v) || '.' : v;
  if (Array.isArray(v)) return v.map(hidePaths);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hidePaths(x)]));
  return v;
}

/** A server-side failure's message without file paths (a 5xx message may come from deep code that names files). */
const ABS_PATH = /(?:[A-Za-z]:)?[\\/](?:[^\s'"`\\/]+[\\/])+[^\s'"`:,;)]*/g;
const scrub = (message: string): string => message.replace(ABS_PATH, '<path>');

/** Everything the server answers from; built by the CLI (or a test), never read from argv/env here. */
export interface AppDeps {
  dataset: Dataset;
  /** Loaded ranking models by name; the first is the default. Loaded once, shared by all requests. */
  models: ReadonlyMap<string, ServedModel>;
  /** A generative (P5) model for /v1/explain, /v1/summarize, /v1/generate; without one they answer 501. */
  generator?: Generator;
  /** When set, every route but health, docs and the page needs `Authorization: Bearer <key>` or `x-api-key: <key>`; '' is refused. */
  apiKey?: string;
  /** Server timeouts (defaults: DEFAULT_TIMEOUTS). */
  timeouts?: Partial<ServerTimeouts>;
  /** Largest request body in bytes (default 256 KiB); larger bodies get 413. */
  bodyLimit?: number;
  /** The --model-root models were confined to; model paths are shown relative to it (and not at all without one). */
  modelRoot?: string;
  /** Folder with index.html, app.js, style.css (default: the package's web/); null: no page. */
  webDir?: string | null;
  /** Fastify logger option (default: off). */
  logger?: FastifyServerOptions['logger'];
  /**
   * Entries in the LRU cache of /v1/recommend answers per (model, user, k,
   * holdout, excludeHistory, candidates); 0 or unset: no cache. Loaded models
   * never change, so a cached answer is the answer.
   */
  cache?: number;
}

export const DEFAULT_BODY_LIMIT = 256 * 1024;
const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const WEB_FILES: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
const CONTENT_TYPE: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

interface RankedItem {
  item: string;
  title: string | null;
  score: number | null;
  hit?: boolean;
}

/** A request the model cannot serve (422) or that needs a missing component (501). */
function unprocessable(message: string, field?: string): P5recError {
  return new P5recError(message, { status: 422, ...(field ? { field } : {}) });
}

/** One line for a schema violation, naming the field (Ajv reports the first error only). */
function validationError(err: FastifyError): { error: string; field?: string } {
  const v = err.validation![0];
  const part = err.validationContext ?? 'body';
  const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (v.keyword === 'additionalProperties') {
    const name = String((v.params as { additionalProperty?: string }).additionalProperty);
    return { error: `${part} has an unknown field '${path ? `${path}.` : ''}${name}'`, field: name };
  }
  if (v.keyword === 'required') {
    const name = String((v.params as { missingProperty?: string }).missingProperty);
    return { error: `${part} is missing the required field '${name}'`, field: name };
  }
  return { error: err.message, ...(path ? { field: path } : {}) };
}

const round = (s: number): number | null => (Number.isFinite(s) ? Number(s.toPrecision(7)) : null);
const stripPrefix = (token: string, prefix: string): string => (token.startsWith(prefix) ? token.slice(prefix.length) : token);

/**
 * The HTTP API (and the demo page) over one dataset and its loaded models.
 * No listen here: the CLI listens, tests use `app.inject`.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const ds = deps.dataset;
  const models = deps.models;
  const defaultModel = models.keys().next().value as string | undefined;
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const apiKey = checkApiKey(deps.apiKey);
  const t = resolveTimeouts(deps.timeouts);
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit,
    connectionTimeout: t.idle,
    keepAliveTimeout: t.keepAlive,
    requestTimeout: t.request,
    // Node checks head/request deadlines only every connectionsCheckingInterval (30 s by default),
    // so a slow-loris socket outlived its timeout by up to that much: check at least every second.
    http: { headersTimeout: t.headers, connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(t.headers / 4))) },
    // Unknown body fields are an error (a typo like `top_k` should not be silently ignored).
    ajv: { customOptions: { removeAdditional: false } },
  });

  // ---- shared state, built once --------------------------------------------
  const itemCount = new Int32Array(ds.numItems);
  for (const i of ds.interactions.item) itemCount[i]++;
  const mask = new Uint8Array(ds.numItems); // set/cleared synchronously within one request
  const sessions = new Sessions(ds);
  const cache = new Lru<RankedItem[]>(deps.cache ?? 0);
  // Models that gain from batching (P5) score concurrent requests together.
  const batchers = new Map<Recommender, ScoreBatcher>();
  for (const m of models.values()) if (ScoreBatcher.wants(m.rec)) batchers.set(m.rec, new ScoreBatcher(m.rec));
  let lowerRaw: string[] | undefined;
  let lowerName: (string | null)[] | undefined;

  const title = (i: number): string | null => ds.items.title[i] ?? null;
  const userOf = (token: string, field = 'user'): number => {
    const u = ds.userByToken(stripPrefix(token, 'user_'));
    if (u === undefined) throw new NotFoundError(`unknown user '${token}'`, { field });
    return u;
  };
  const itemOf = (token: string, field = 'item'): number => {
    const i = ds.itemByToken(stripPrefix(token, 'item_'));
    if (i === undefined) throw new NotFoundError(`unknown item '${token}'`, { field });
    return i;
  };
  const itemsOf = (tokens: readonly string[], field: string): Int32Array => {
    const seen = new Set<number>();
    for (const t of tokens) seen.add(itemOf(t, field));
    return Int32Array.from(seen);
  };
  const modelOf = (name: string | undefined): [string, ServedModel] => {
    const n = name ?? defaultModel;
    if (n === undefined) throw unprocessable('no ranking model loaded', 'model');
    const m = models.get(n);
    if (!m) throw new NotFoundError(`unknown model '${n}' (loaded: ${[...models.keys()].join(', ')})`, { field: 'model' });
    return [n, m];
  };
  const canRank = (rec: Recommender): boolean => rec.tasks.includes('sequential') || rec.tasks.includes('direct');
  const canRate = (rec: Recommender): boolean => typeof rec.predictRating === 'function' && rec.tasks.includes('rating');
  const needRanking = (name: string, rec: Recommender): void => {
    if (!canRank(rec)) throw unprocessable(`model '${name}' (${rec.kind}) cannot rank items (its tasks: ${rec.tasks.join(', ')})`, 'model');
  };

  /** Score, drop `exclude`, keep the k best: one pass with a size-k heap. */
  async function rank(rec: Recommender, user: number, history: Int32Array, exclude: Int32Array | null, k: number, candidates?: Int32Array): Promise<RankedItem[]> {
    const batcher = batchers.get(rec);
    const scores = batcher ? await batcher.score(user, history, candidates) : await rec.score(user, history, candidates);
    const n = candidates ? candidates.length : ds.numItems;
    if (scores.length !== n) throw new P5recError(`model '${rec.kind}' returned ${scores.length} scores for ${n} items`, { status: 500 });
    // From here to the return nothing awaits, so the shared mask is ours alone.
    if (exclude) for (const i of exclude) mask[i] = 1;
    try {
      const top = candidates ? topK(scores, k, (j) => mask[candidates[j]] === 1) : topK(scores, k, (i) => mask[i] === 1);
      return Array.from(top.index, (j, r) => {
        const i = candidates ? candidates[j] : j;
        return { item: ds.items.token[i], title: title(i), score: round(top.score[r]) };
      });
    } finally {
      if (exclude) for (const i of exclude) mask[i] = 0;
    }
  }

  async function generate(task: GenerativeTask | 'generate', fields: PromptFields | string): Promise<{ model: string; prompt: string; output: string }> {
    const g = deps.generator;
    if (!g) throw new P5recError(NO_GENERATOR, { status: 501 });
    const prompt = typeof fields === 'string' ? fields : (g.prompt?.(task as GenerativeTask, fields) ?? defaultPrompt(task as GenerativeTask, fields));
    return { model: g.name, prompt, output: await g.generate(prompt) };
  }

  // ---- errors, auth, headers ---------------------------------------------------
  app.setErrorHandler((err: FastifyError | P5recError | Error, req, reply) => {
    if ('validation' in err && err.validation) return reply.code(400).send(validationError(err));
    if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: `request body is larger than ${bodyLimit} bytes` });
    if (err instanceof P5recError) {
      const status = err.facts.status ?? 500;
      const server = status >= 500 && status !== 501;
      if (server) req.log.error(err);
      return reply.code(status).send({ error: server ? scrub(err.message) : err.message, ...(err.facts.field ? { field: err.facts.field } : {}) });
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) return reply.code(status).send({ error: err.message });
    req.log.error(err);
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  // Time spent in the server (validation, scoring, serialization) as a Server-Timing header,
  // so a load test can tell server time from network and client delay.
  const startedAt = new WeakMap<object, number>();
  app.addHook('onRequest', async (req) => {
    startedAt.set(req, performance.now());
  });
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    const t0 = startedAt.get(req);
    if (t0 !== undefined) reply.header('server-timing', `app;dur=${(performance.now() - t0).toFixed(2)}`);
    return payload;
  });

  // Auth is decided on the route the router matched (req.url is still percent-encoded: '/%761/models'
  // routes to /v1/models), so no spelling of a URL reaches a non-public route, or a 404, without the key.
  if (apiKey) {
    const want = createHash('sha256').update(apiKey).digest();
    app.addHook('onRequest', async (req, reply) => {
      if (req.routeOptions.config?.public === true) return;
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      const given = bearer ? bearer[1] : req.headers['x-api-key'];
      if (typeof given === 'string' && timingSafeEqual(createHash('sha256').update(given).digest(), want)) return;
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send({ error: 'missing or invalid API key (send Authorization: Bearer <key> or x-api-key: <key>)' });
    });
  }

  // Every documented route is collected here; /openapi.json is built from them.
  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    if (r.config?.docs === false) return;
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, public: r.config?.public === true, schema: r.schema as RouteDoc['schema'] });
  });

  // ---- ranking -----------------------------------------------------------------
  app.post('/v1/recommend', {
    schema: {
      summary: "Top-k items for a known user, the user's history excluded",
      tags: ['recommend'],
      body: S.recommendBody,
      response: { 200: S.recommendResponse, ...S.errors(400, 401, 404, 413, 422) },
    },
  }, async (req, reply) => {
    const b = req.body as { user: string; k: number; model?: string; candidates?: string[]; holdout: boolean; excludeHistory: boolean };
    const [name, m] = modelOf(b.model);
    needRanking(name, m.rec);
    const u = userOf(b.user);
    const candidates = b.candidates ? itemsOf(b.candidates, 'candidates') : undefined;
    const history = b.holdout ? ds.historyBefore(u, TEST) : ds.sequence(u);
    let items: RankedItem[];
    if (cache.capacity > 0) {
      const key = `${name}\u0000${u}\u0000${b.k}\u0000${b.holdout}\u0000${b.excludeHistory}\u0000${candidates ? candidates.join(',') : ''}`;
      const hit = cache.get(key);
      reply.header('x-cache', hit ? 'hit' : 'miss');
      if (hit) items = hit.map((x) => ({ ...x }));
      else {
        items = await rank(m.rec, u, history, b.excludeHistory ? history : null, b.k, candidates);
        cache.set(key, items.map((x) => ({ ...x })));
      }
    } else items = await rank(m.rec, u, history, b.excludeHistory ? history : null, b.k, candidates);
    const out: Record<string, unknown> = { model: name, user: ds.users.token[u], items };
    if (b.holdout) {
      const target = ds.sequenceSplit(u, TEST)[0];
      out.heldOut = target === undefined ? null : { item: ds.items.token[target], title: title(target) };
      const t = target === undefined ? null : ds.items.token[target];
      for (const it of items) it.hit = it.item === t;
    }
    return out;
  });

  app.post('/v1/next', {
    schema: {
      summary: 'Next-item recommendations for an anonymous session (a history, no user)',
      description: 'Models that ignore the user index score the history directly (`via: history`); models with per-user parameters borrow the known user whose history overlaps the session most (`via: nearest-user`). Session items are excluded.',
      tags: ['recommend'],
      body: S.nextBody,
      response: { 200: S.nextResponse, ...S.errors(400, 401, 404, 413, 422) },
    },
  }, async (req) => {
    const b = req.body as { history: string[]; k: number; model?: string; candidates?: string[] };
    const [name, m] = modelOf(b.model);
    needRanking(name, m.rec);
    // Session order matters to sequential models: keep it, duplicates included.
    const history = Int32Array.from(b.history, (t) => itemOf(t, 'history'));
    const candidates = b.candidates ? itemsOf(b.candidates, 'candidates') : undefined;
    const via = await sessions.mode(m.rec);
    if (via === 'history') return { model: name, via, items: await rank(m.rec, 0, history, history, b.k, candidates) };
    const near = sessions.nearestUser(history);
    if (!near) throw unprocessable(`model '${name}' (${m.rec.kind}) scores per user, and no known user shares an item with this session`, 'history');
    const items = await rank(m.rec, near.user, history, history, b.k, candidates);
    return { model: name, via, proxyUser: { user: ds.users.token[near.user], similarity: round(near.similarity) }, items };
  });

  app.post('/v1/rate', {
    schema: {
      summary: 'Predicted star rating of an item by a user',
      tags: ['recommend'],
      body: S.rateBody,
      response: { 200: S.rateResponse, ...S.errors(400, 401, 404, 413, 422) },
    },
  }, async (req) => {
    const b = req.body as { user: string; item: string; model?: string };
    const [name, m] = modelOf(b.model);
    if (!canRate(m.rec)) throw unprocessable(`model '${name}' (${m.rec.kind}) cannot predict ratings`, 'model');
    if (!ds.manifest.fields.rating) throw unprocessable('this dataset has no ratings, so no model can predict stars for it', 'model');
    const u = userOf(b.user);
    const i = itemOf(b.item);
    const raw = await m.rec.predictRating!(u, i);
    if (!Number.isFinite(raw)) throw unprocessable(`model '${name}' (${m.rec.kind}) gave no rating for this pair`, 'model');
    let known: number | null = null;
    const x = ds.interactions;
    for (let r = ds.userStart[u]; r < ds.userStart[u] + ds.userLength[u]; r++) if (x.item[r] === i && !Number.isNaN(x.rating[r])) known = x.rating[r];
    return { model: name, user: ds.users.token[u], item: ds.items.token[i], title: title(i), rating: round(Math.min(5, Math.max(1, raw))), raw: round(raw), known };
  });

  // ---- generation (P5) -----------------------------------------------------------
  const generated = { 200: S.generatedResponse, ...S.errors(400, 401, 404, 413, 501) };
  app.post('/v1/explain', {
    schema: { summary: 'Explain why a user would like an item (generative P5 model)', tags: ['generate'], body: S.explainBody, response: generated },
  }, async (req) => {
    const b = req.body as { user: string; item: string; feature?: string };
    const g = deps.generator;
    if (!g) throw new P5recError(NO_GENERATOR, { status: 501 });
    const u = userOf(b.user);
    const i = itemOf(b.item);
    if (g.explain) {
      const r = await g.explain(u, i, b.feature);
      return { model: g.name, prompt: r.prompt, output: r.text, ...(r.template ? { template: r.template } : {}) };
    }
    return generate('explain', { user: `user_${ds.users.token[u]}`, item: `item_${ds.items.token[i]}`, title: title(i) ?? undefined, feature: b.feature });
  });
  app.post('/v1/summarize', {
    schema: { summary: 'Summarize a review (generative P5 model)', tags: ['generate'], body: S.summarizeBody, response: generated },
  }, async (req) => {
    const b = req.body as { review: string; user?: string };
    const g = deps.generator;
    if (!g) throw new P5recError(NO_GENERATOR, { status: 501 });
    if (g.summarize) {
      const r = await g.summarize(b.review, b.user ? userOf(b.user) : undefined);
      return { model: g.name, prompt: r.prompt, output: r.text, ...(r.template ? { template: r.template } : {}) };
    }
    return generate('summarize', { review: b.review, ...(b.user ? { user: `user_${ds.users.token[userOf(b.user)]}` } : {}) });
  });
  app.post('/v1/generate', {
    schema: { summary: 'Run a raw prompt through the generative (P5) model', tags: ['generate'], body: S.generateBody, response: generated },
  }, async (req) => generate('generate', (req.body as { prompt: string }).prompt));

  // ---- lookups -------------------------------------------------------------------
  app.get('/v1/users', {
    schema: { summary: 'Search users (for a user picker)', tags: ['data'], querystring: S.usersQuery, response: { 200: S.usersResponse, ...S.errors(400, 401) } },
  }, async (req) => {
    const q = req.query as { search: string; limit: number; offset: number };
    const s = q.search.trim().toLowerCase();
    const tok = stripPrefix(s, 'user_');
    lowerRaw ??= ds.users.rawId.map((r) => String(r).toLowerCase());
    lowerName ??= ds.users.name.map((n) => (n ? n.toLowerCase() : null));
    const users: { user: string; rawId: string; name: string | null; interactions: number }[] = [];
    let total = 0;
    for (let u = 0; u < ds.numUsers; u++) {
      if (s && !ds.users.token[u].startsWith(tok) && !lowerRaw[u].includes(s) && !lowerName[u]?.includes(s)) continue;
      if (total++ < q.offset) continue;
      if (users.length < q.limit) users.push({ user: ds.users.token[u], rawId: String(ds.users.rawId[u]), name: ds.users.name[u] ?? null, interactions: ds.userLength[u] });
    }
    // An exact token match goes first.
    const exact = users.findIndex((x) => x.user === tok);
    if (exact > 0) users.unshift(...users.splice(exact, 1));
    return { users, total };
  });

  app.get('/v1/users/:id', {
    schema: { summary: "A user's history with titles and held-out test item", tags: ['data'], params: S.idParams, response: { 200: S.userResponse, ...S.errors(401, 404) } },
  }, async (req) => {
    const u = userOf((req.params as { id: string }).id, 'id');
    const x = ds.interactions;
    const history = [];
    let heldOut: { item: string; title: string | null } | null = null;
    for (let r = ds.userStart[u]; r < ds.userStart[u] + ds.userLength[u]; r++) {
      const i = x.item[r];
      const split = SPLIT_NAMES[x.seqSplit[r]];
      history.push({ item: ds.items.token[i], title: title(i), split, rating: Number.isNaN(x.rating[r]) ? null : x.rating[r], time: Number.isNaN(x.time[r]) ? null : x.time[r] });
      if (x.seqSplit[r] === TEST) heldOut = { item: ds.items.token[i], title: title(i) };
    }
    return { user: ds.users.token[u], rawId: String(ds.users.rawId[u]), name: ds.users.name[u] ?? null, interactions: ds.userLength[u], history, heldOut };
  });

  app.get('/v1/items/:id', {
    schema: { summary: 'An item', tags: ['data'], params: S.idParams, response: { 200: S.itemResponse, ...S.errors(401, 404) } },
  }, async (req) => {
    const i = itemOf((req.params as { id: string }).id, 'id');
    const it = ds.items;
    return { item: it.token[i], rawId: String(it.rawId[i]), title: title(i), brand: it.brand[i] ?? null, price: it.price[i] ?? null, categories: it.categories[i] ? Array.from(it.categories[i]!) : null, interactions: itemCount[i] };
  });

  app.get('/v1/models', {
    schema: { summary: 'Loaded models, their capabilities, and the dataset', tags: ['data'], response: { 200: S.modelsResponse, ...S.errors(401) } },
  }, async () => ({
    dataset: { name: ds.manifest.name, users: ds.numUsers, items: ds.numItems, interactions: ds.numInteractions, ratings: ds.manifest.fields.rating },
    default: defaultModel ?? null,
    models: [...models].map(([name, m]) => {
      const path = displayPath(m.dir, deps.modelRoot);
      return {
        name, kind: m.rec.kind, tasks: [...m.rec.tasks], trainSplit: m.rec.trainSplit,
        ...(path ? { path } : {}),
        config: hidePaths(m.card.config), fit: hidePaths(m.card.fit),
        capabilities: { recommend: canRank(m.rec), rate: canRate(m.rec) && ds.manifest.fields.rating, next: canRank(m.rec) ? sessions.known(m.rec) : 'unprobed' },
      };
    }),
    generator: deps.generator ? { name: deps.generator.name, kind: deps.generator.kind } : null,
  }));

  const started = Date.now();
  app.get('/healthz', {
    config: { public: true },
    schema: { summary: 'Liveness', tags: ['meta'], response: { 200: S.healthResponse } },
  }, async () => ({ ok: true, models: models.size, uptimeSeconds: (Date.now() - started) / 1000 }));

  // ---- docs and page -------------------------------------------------------------------
  let openapi: Record<string, unknown> | undefined;
  const doc = (): Record<string, unknown> => (openapi ??= buildOpenApi(routes, {
    title: 'p5rec',
    version: VERSION,
    description: `Recommendations over dataset '${ds.manifest.name}' (${ds.numUsers} users, ${ds.numItems} items).`,
  }, { apiKey: Boolean(apiKey) }));
  app.get('/openapi.json', { config: { docs: false, public: true } }, async () => doc());
  app.get('/docs', { config: { docs: false, public: true } }, async (_req, reply) => reply.type(CONTENT_TYPE.html).send(renderDocsPage(doc())));

  const webDir = deps.webDir === undefined ? DEFAULT_WEB_DIR : deps.webDir;
  for (const [url, file] of Object.entries(WEB_FILES)) {
    const path = webDir ? join(webDir, file) : '';
    const body = path && existsSync(path) ? readFileSync(path) : null;
    app.get(url, { config: { docs: false, public: true } }, async (_req, reply) => {
      if (!body) return reply.code(404).send({ error: 'the demo page is not installed with this server' });
      reply.header('cache-control', 'no-cache');
      if (file === 'index.html') reply.header('content-security-policy', "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      return reply.type(CONTENT_TYPE[file.split('.').pop()!]).send(body);
    });
  }
  return app;
}
