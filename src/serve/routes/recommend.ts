/** Ranking and rating: /v1/recommend, /v1/next, /v1/rate. */
import type { FastifyInstance } from 'fastify';
import { TEST } from '../../data/splits.js';
import { canRate, round, type RankedItem, type ServeContext } from '../context.js';
import { unprocessable } from '../http-errors.js';
import * as S from '../schemas.js';

export function recommendRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const { ds, cache, title } = ctx;

  app.post('/v1/recommend', {
    schema: {
      summary: "Top-k items for a known user, the user's history excluded",
      tags: ['recommend'],
      body: S.recommendBody,
      response: { 200: S.recommendResponse, ...S.errors(400, 401, 404, 413, 422) },
    },
  }, async (req, reply) => {
    const b = req.body as { user: string; k: number; model?: string; candidates?: string[]; holdout: boolean; excludeHistory: boolean };
    const [name, m] = ctx.modelOf(b.model);
    ctx.needRanking(name, m.rec);
    const u = ctx.userOf(b.user);
    const candidates = b.candidates ? ctx.itemsOf(b.candidates, 'candidates') : undefined;
    const history = b.holdout ? ds.historyBefore(u, TEST) : ds.sequence(u);
    let items: RankedItem[];
    if (cache.capacity > 0) {
      const key = `${name}\u0000${u}\u0000${b.k}\u0000${b.holdout}\u0000${b.excludeHistory}\u0000${candidates ? candidates.join(',') : ''}`;
      const hit = cache.get(key);
      reply.header('x-cache', hit ? 'hit' : 'miss');
      // Copies in and out: the holdout branch below marks `hit` on the answer's items.
      if (hit) items = hit.map((x) => ({ ...x }));
      else {
        items = await ctx.rank(m.rec, u, history, b.excludeHistory ? history : null, b.k, candidates);
        cache.set(key, items.map((x) => ({ ...x })));
      }
    } else items = await ctx.rank(m.rec, u, history, b.excludeHistory ? history : null, b.k, candidates);
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
    const [name, m] = ctx.modelOf(b.model);
    ctx.needRanking(name, m.rec);
    // Session order matters to sequential models: keep it, duplicates included.
    const history = Int32Array.from(b.history, (t) => ctx.itemOf(t, 'history'));
    const candidates = b.candidates ? ctx.itemsOf(b.candidates, 'candidates') : undefined;
    const via = await ctx.sessions.mode(m.rec);
    if (via === 'history') return { model: name, via, items: await ctx.rank(m.rec, 0, history, history, b.k, candidates) };
    const near = ctx.sessions.nearestUser(history);
    if (!near) throw unprocessable(`model '${name}' (${m.rec.kind}) scores per user, and no known user shares an item with this session`, 'history');
    const items = await ctx.rank(m.rec, near.user, history, history, b.k, candidates);
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
    const [name, m] = ctx.modelOf(b.model);
    if (!canRate(m.rec)) throw unprocessable(`model '${name}' (${m.rec.kind}) cannot predict ratings`, 'model');
    if (!ds.manifest.fields.rating) throw unprocessable('this dataset has no ratings, so no model can predict stars for it', 'model');
    const u = ctx.userOf(b.user);
    const i = ctx.itemOf(b.item);
    const raw = await m.rec.predictRating!(u, i);
    if (!Number.isFinite(raw)) throw unprocessable(`model '${name}' (${m.rec.kind}) gave no rating for this pair`, 'model');
    let known: number | null = null;
    const x = ds.interactions;
    for (let r = ds.userStart[u]; r < ds.userStart[u] + ds.userLength[u]; r++) if (x.item[r] === i && !Number.isNaN(x.rating[r])) known = x.rating[r];
    return { model: name, user: ds.users.token[u], item: ds.items.token[i], title: title(i), rating: round(Math.min(5, Math.max(1, raw))), raw: round(raw), known };
  });
}
