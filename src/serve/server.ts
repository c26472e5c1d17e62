/**
 * The Fastify instance itself: timeouts, body limit, validation options, and
 * the headers every answer carries. Routes are added by the other modules.
 */
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { InputError } from '../errors.js';

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

export const DEFAULT_BODY_LIMIT = 256 * 1024;

/** Defaults filled in; refuses non-positive values and a head timeout longer than the request one (Node would throw). */
export function resolveTimeouts(t: Partial<ServerTimeouts> = {}): ServerTimeouts {
  const out = { ...DEFAULT_TIMEOUTS, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`the ${k} timeout must be a whole number of milliseconds >= 1, got ${v}`, { field: `${k}-timeout` });
  }
  if (out.headers > out.request) throw new InputError(`the headers timeout (${out.headers} ms) must not exceed the request timeout (${out.request} ms)`, { field: 'headers-timeout' });
  return out;
}

export function createServer(o: { timeouts: ServerTimeouts; bodyLimit: number; logger?: FastifyServerOptions['logger'] }): FastifyInstance {
  const t = o.timeouts;
  return Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit,
    connectionTimeout: t.idle,
    keepAliveTimeout: t.keepAlive,
    requestTimeout: t.request,
    // Node checks head/request deadlines only every connectionsCheckingInterval (30 s by default),
    // so a slow-loris socket outlived its timeout by up to that much: check at least every second.
    http: { headersTimeout: t.headers, connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(t.headers / 4))) },
    // Unknown body fields are an error (a typo like `top_k` should not be silently ignored).
    ajv: { customOptions: { removeAdditional: false } },
  });
}

/**
 * Time spent in the server (validation, scoring, serialization) as a Server-Timing header,
 * so a load test can tell server time from network and client delay. Added before the auth
 * hook, so a 401 is timed too.
 */
export function addResponseHeaders(app: FastifyInstance): void {
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
}
