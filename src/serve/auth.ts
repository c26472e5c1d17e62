/** The optional API key: checked once at start, then on every non-public route. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors.js';

/** An explicitly empty or blank key would turn auth off by accident: refuse it. */
export function checkApiKey(key: string | undefined, source = 'the API key'): string | undefined {
  if (key === undefined) return undefined;
  if (!key.trim()) throw new InputError(`${source} is empty; give a non-empty key, or unset it to serve without one`, { field: 'api-key' });
  if (key !== key.trim()) throw new InputError(`${source} starts or ends with whitespace, which no Bearer header can carry`, { field: 'api-key' });
  return key;
}

/**
 * 401 unless `Authorization: Bearer <key>` or `x-api-key: <key>` matches.
 * Auth is decided on the route the router matched (req.url is still percent-encoded: '/%761/models'
 * routes to /v1/models), so no spelling of a URL reaches a non-public route, or a 404, without the key.
 */
export function addApiKeyAuth(app: FastifyInstance, apiKey: string): void {
  // Both sides hashed, so the constant-time compare sees equal lengths and the key's length does not leak.
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
