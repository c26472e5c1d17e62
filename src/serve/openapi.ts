/**
 * OpenAPI 3.1 generated from the routes' own Fastify schemas (collected with
 * an onRoute hook), so the document cannot drift from what is validated.
 * OpenAPI 3.1 takes JSON Schema as is, so schemas are copied verbatim.
 */
export interface RouteDoc {
  method: string;
  url: string;
  /** Served without the API key (health, docs, the page); every other route needs it. */
  public?: boolean;
  schema?: {
    summary?: string;
    description?: string;
    tags?: string[];
    body?: unknown;
    params?: { properties?: Record<string, unknown>; required?: string[] };
    querystring?: { properties?: Record<string, unknown>; required?: string[] };
    response?: Record<string, unknown>;
  };
}

const REASON: Record<string, string> = {
  200: 'OK', 400: 'invalid request', 401: 'missing or invalid API key', 404: 'unknown user, item, model or route',
  413: 'request body too large', 422: 'the model cannot do this', 501: 'no generative model loaded',
};

export function buildOpenApi(routes: readonly RouteDoc[], info: { title: string; version: string; description?: string }, opts: { apiKey: boolean }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = r.schema ?? {};
    const parameters = [
      ...Object.entries(s.params?.properties ?? {}).map(([name, schema]) => ({ name, in: 'path', required: true, schema })),
      ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({ name, in: 'query', required: Boolean(s.querystring?.required?.includes(name)), schema })),
    ];
    const responses = Object.fromEntries(Object.entries(s.response ?? { 200: {} }).map(([code, schema]) => [code, { description: REASON[code] ?? code, content: { 'application/json': { schema } } }]));
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(s.summary ? { summary: s.summary } : {}),
      ...(s.description ? { description: s.description } : {}),
      ...(s.tags ? { tags: s.tags } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: s.body } } } } : {}),
      responses,
      ...(opts.apiKey && !r.public ? { security: [{ bearer: [] }, { apiKeyHeader: [] }] } : {}),
    };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    ...(opts.apiKey ? { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key' } } } } : {}),
  };
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain HTML page listing the routes (no Swagger UI download). */
export function renderDocsPage(doc: Record<string, unknown>): string {
  const info = doc.info as { title: string; version: string; description?: string };
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { summary?: string; description?: string; requestBody?: { content: Record<string, { schema: unknown }> } }>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = op.requestBody ? `<details><summary>request body</summary><pre>${esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2))}</pre></details>` : '';
      rows.push(`<tr><td class="m">${method.toUpperCase()}</td><td><code>${esc(path)}</code></td><td>${esc(op.summary ?? '')}${op.description ? `<div class="d">${esc(op.description)}</div>` : ''}${body}</td></tr>`);
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)} API</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:.4rem .6rem;vertical-align:top}.m{font-weight:600;font-family:monospace}.d{color:#555}pre{background:#f6f6f6;padding:.5rem;overflow:auto}</style>
</head><body><h1>${esc(info.title)} <small>${esc(info.version)}</small></h1>
<p>${esc(info.description ?? '')} Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Demo page: <a href="/">/</a>.</p>
<table><tbody>${rows.join('\n')}</tbody></table></body></html>
`;
}
