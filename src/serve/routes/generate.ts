/** Generation through the P5 generator: /v1/explain, /v1/summarize, /v1/generate (501 without one). */
import type { FastifyInstance } from 'fastify';
import { P5recError } from '../../errors.js';
import type { ServeContext } from '../context.js';
import { NO_GENERATOR } from '../generator.js';
import * as S from '../schemas.js';

export function generateRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const { ds } = ctx;
  const generated = { 200: S.generatedResponse, ...S.errors(400, 401, 404, 413, 501) };

  app.post('/v1/explain', {
    schema: { summary: 'Explain why a user would like an item (generative P5 model)', tags: ['generate'], body: S.explainBody, response: generated },
  }, async (req) => {
    const b = req.body as { user: string; item: string; feature?: string };
    const g = ctx.generator;
    // 501 before the lookups: without a generator, a bad user is beside the point.
    if (!g) throw new P5recError(NO_GENERATOR, { status: 501 });
    const u = ctx.userOf(b.user);
    const i = ctx.itemOf(b.item);
    if (g.explain) {
      const r = await g.explain(u, i, b.feature);
      return { model: g.name, prompt: r.prompt, output: r.text, ...(r.template ? { template: r.template } : {}) };
    }
    return ctx.generate('explain', { user: `user_${ds.users.token[u]}`, item: `item_${ds.items.token[i]}`, title: ctx.title(i) ?? undefined, feature: b.feature });
  });

  app.post('/v1/summarize', {
    schema: { summary: 'Summarize a review (generative P5 model)', tags: ['generate'], body: S.summarizeBody, response: generated },
  }, async (req) => {
    const b = req.body as { review: string; user?: string };
    const g = ctx.generator;
    if (!g) throw new P5recError(NO_GENERATOR, { status: 501 });
    if (g.summarize) {
      const r = await g.summarize(b.review, b.user ? ctx.userOf(b.user) : undefined);
      return { model: g.name, prompt: r.prompt, output: r.text, ...(r.template ? { template: r.template } : {}) };
    }
    return ctx.generate('summarize', { review: b.review, ...(b.user ? { user: `user_${ds.users.token[ctx.userOf(b.user)]}` } : {}) });
  });

  app.post('/v1/generate', {
    schema: { summary: 'Run a raw prompt through the generative (P5) model', tags: ['generate'], body: S.generateBody, response: generated },
  }, async (req) => ctx.generate('generate', (req.body as { prompt: string }).prompt));
}
