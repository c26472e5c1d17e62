/**
 * The HTTP API and the demo page, assembled from their parts: the server and
 * its timeouts (./server.ts), error answers (./http-errors.ts), the API key
 * (./auth.ts), the routes (./routes/), the docs (./docs.ts) and the page
 * (./static.ts). The order below is the order hooks run and routes are listed.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Dataset } from '../data/dataset.js';
import { VERSION } from '../version.js';
import { addApiKeyAuth, checkApiKey } from './auth.js';
import { serveContext } from './context.js';
import { collectRouteDocs, docsRoutes } from './docs.js';
import type { Generator } from './generator.js';
import { addErrorHandlers } from './http-errors.js';
import type { ServedModel } from './models.js';
import { dataRoutes } from './routes/data.js';
import { generateRoutes } from './routes/generate.js';
import { recommendRoutes } from './routes/recommend.js';
import { addResponseHeaders, createServer, DEFAULT_BODY_LIMIT, resolveTimeouts, type ServerTimeouts } from './server.js';
import { DEFAULT_WEB_DIR, pageRoutes } from './static.js';

export { checkApiKey } from './auth.js';
export { DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUTS, resolveTimeouts, type ServerTimeouts } from './server.js';

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
  /** The folder models were confined to; model paths are shown relative to it (and not at all without one). */
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

/**
 * The HTTP API (and the demo page) over one dataset and its loaded models.
 * No listen here: the CLI listens, tests use `app.inject`.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const ds = deps.dataset;
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const apiKey = checkApiKey(deps.apiKey);
  const app = createServer({ timeouts: resolveTimeouts(deps.timeouts), bodyLimit, logger: deps.logger });
  const ctx = serveContext(deps);

  addErrorHandlers(app, bodyLimit);
  addResponseHeaders(app);
  if (apiKey) addApiKeyAuth(app, apiKey);

  const routes = collectRouteDocs(app);
  recommendRoutes(app, ctx);
  generateRoutes(app, ctx);
  dataRoutes(app, ctx);
  docsRoutes(app, routes, {
    title: 'p5rec',
    version: VERSION,
    description: `Recommendations over dataset '${ds.manifest.name}' (${ds.numUsers} users, ${ds.numItems} items).`,
  }, { apiKey: Boolean(apiKey) });
  pageRoutes(app, deps.webDir === undefined ? DEFAULT_WEB_DIR : deps.webDir);
  return app;
}
