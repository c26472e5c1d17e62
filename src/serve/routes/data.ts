/** Lookups over the dataset and the loaded models: users, items, /v1/models, /healthz. */
import { basename, isAbsolute, win32 } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { SPLIT_NAMES, TEST } from '../../data/splits.js';
import { canRank, canRate, stripPrefix, type ServeContext } from '../context.js';
import { displayPath } from '../models.js';
import * as S from '../schemas.js';

/** Model config as shown to clients: absolute paths (a P5 `init` checkpoint, say) cut to their last part. */
function hidePaths(v: unknown): unknown {
  if (typeof v === 'string') return isAbsolute(v) || win32.isAbsolute(v) ? basename(v) || '.' : v;
  if (Array.isArray(v)) return v.map(hidePaths);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hidePaths(x)]));
  return v;
}

export function dataRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const { ds, models, title } = ctx;
  // Lower-cased ids and names for /v1/users search, built on its first call.
  let lowerRaw: string[] | undefined;
  let lowerName: (string | null)[] | undefined;

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
    const u = ctx.userOf((req.params as { id: string }).id, 'id');
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
    const i = ctx.itemOf((req.params as { id: string }).id, 'id');
    const it = ds.items;
    return { item: it.token[i], rawId: String(it.rawId[i]), title: title(i), brand: it.brand[i] ?? null, price: it.price[i] ?? null, categories: it.categories[i] ? Array.from(it.categories[i]!) : null, interactions: ctx.itemCount[i] };
  });

  app.get('/v1/models', {
    schema: { summary: 'Loaded models, their capabilities, and the dataset', tags: ['data'], response: { 200: S.modelsResponse, ...S.errors(401) } },
  }, async () => ({
    dataset: { name: ds.manifest.name, users: ds.numUsers, items: ds.numItems, interactions: ds.numInteractions, ratings: ds.manifest.fields.rating },
    default: ctx.defaultModel ?? null,
    models: [...models].map(([name, m]) => {
      const path = displayPath(m.dir, ctx.modelRoot);
      return {
        name, kind: m.rec.kind, tasks: [...m.rec.tasks], trainSplit: m.rec.trainSplit,
        ...(path ? { path } : {}),
        config: hidePaths(m.card.config), fit: hidePaths(m.card.fit),
        capabilities: { recommend: canRank(m.rec), rate: canRate(m.rec) && ds.manifest.fields.rating, next: canRank(m.rec) ? ctx.sessions.known(m.rec) : 'unprobed' },
      };
    }),
    generator: ctx.generator ? { name: ctx.generator.name, kind: ctx.generator.kind } : null,
  }));

  const started = Date.now();
  app.get('/healthz', {
    config: { public: true },
    schema: { summary: 'Liveness', tags: ['meta'], response: { 200: S.healthResponse } },
  }, async () => ({ ok: true, models: models.size, uptimeSeconds: (Date.now() - started) / 1000 }));
}
