/** The demo page: three files read once at start and served public, uncached, with a strict CSP on the HTML. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The package's web/ (two levels up from src/serve/ and from dist/serve/ alike). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const WEB_FILES: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
export const CONTENT_TYPE: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** `webDir` null: no page (each URL answers 404); a missing file answers 404 too. */
export function pageRoutes(app: FastifyInstance, webDir: string | null): void {
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
}
