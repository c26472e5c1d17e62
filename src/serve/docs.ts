/** /openapi.json and /docs, built from the routes as Fastify registers them (see ./openapi.ts). */
import type { FastifyInstance } from 'fastify';
import { buildOpenApi, renderDocsPage, type RouteDoc } from './openapi.js';
import { CONTENT_TYPE } from './static.js';

/**
 * Collects every documented route from here on (call it before adding them);
 * the returned list fills as routes are added. HEAD twins of GETs are left out.
 */
export function collectRouteDocs(app: FastifyInstance): RouteDoc[] {
  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    if (r.config?.docs === false) return;
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, public: r.config?.public === true, schema: r.schema as RouteDoc['schema'] });
  });
  return routes;
}

/** Both public; the document is built on first request, when every route is known. */
export function docsRoutes(app: FastifyInstance, routes: readonly RouteDoc[], info: { title: string; version: string; description?: string }, opts: { apiKey: boolean }): void {
  let openapi: Record<string, unknown> | undefined;
  const doc = (): Record<string, unknown> => (openapi ??= buildOpenApi(routes, info, opts));
  app.get('/openapi.json', { config: { docs: false, public: true } }, async () => doc());
  app.get('/docs', { config: { docs: false, public: true } }, async (_req, reply) => reply.type(CONTENT_TYPE.html).send(renderDocsPage(doc())));
}
