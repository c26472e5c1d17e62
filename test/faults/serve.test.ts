/**
 * Fault corpus for `p5rec serve`: what a hostile or broken client tries.
 * Auth tricks go over a real socket (app.inject and curl normalise some
 * paths; a raw client sends them as written), so does everything about
 * timeouts. Every case asserts the status and the message.
 */
import { spawn, spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { popularity } from '../../src/baselines/pop.js';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { P5recError } from '../../src/errors.js';
import type { ModelState, Recommender } from '../../src/recommend/recommender.js';
import { saveModel, type ModelCard } from '../../src/recommend/store.js';
import { buildApp, resolveTimeouts } from '../../src/serve/app.js';
import { loadServedModels, type ServedModel } from '../../src/serve/models.js';
import { BIN, cli, MI_REVIEWS, ROOT, tempDir } from '../helpers/cli.js';

const KEY = 's3cret';
const NO_KEY = 'missing or invalid API key (send Authorization: Bearer <key> or x-api-key: <key>)';
const T = { headers: 300, request: 800, keepAlive: 300, idle: 3000 };

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One request over a fresh socket, the path sent exactly as written. */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, agent: false, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: data, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw socket: what it received and how long it stayed open. */
function rawSocket(base: string): { sock: Socket; received: () => string; closed: Promise<number> } {
  const u = new URL(base);
  const sock = connect(Number(u.port), u.hostname);
  const t0 = Date.now();
  let got = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (got += d));
  sock.on('error', () => {});
  const closed = new Promise<number>((res) => sock.on('close', () => res(Date.now() - t0)));
  return { sock, received: () => got, closed };
}

/** Writes `text` one byte every `ms` until the socket closes or the text runs out. */
async function trickle(sock: Socket, text: string, ms: number): Promise<void> {
  for (const ch of text) {
    if (sock.destroyed || !sock.writable) return;
    sock.write(ch);
    await new Promise((r) => setTimeout(r, ms));
  }
}

const card = (kind: string, config: Record<string, unknown>): ModelCard => ({
  format: 'p5rec-model', kind, trainSplit: 'sequential', config,
  dataset: { name: 'x', fingerprint: 'test', users: 0, items: 0 },
  fit: { seconds: 0, peakRssMB: 0, seed: 0 }, createdBy: 'test',
});

/** A model whose scoring fails the way deep code does: a message naming a server file. */
class Failing implements Recommender {
  readonly tasks = ['sequential'] as const;
  readonly trainSplit = 'sequential' as const;
  constructor(readonly kind: string, private readonly err: () => Error) {}
  score(): Float32Array {
    throw this.err();
  }
  state(): ModelState {
    return { config: {}, tensors: {} };
  }
}

/** Scores after a delay: a request whose answer takes longer than the request timeout. */
class Slow implements Recommender {
  readonly kind = 'slow';
  readonly tasks = ['sequential'] as const;
  readonly trainSplit = 'sequential' as const;
  constructor(private readonly n: number, private readonly ms: number) {}
  async score(): Promise<Float32Array> {
    await new Promise((r) => setTimeout(r, this.ms));
    return Float32Array.from({ length: this.n }, (_, i) => -i);
  }
  state(): ModelState {
    return { config: {}, tensors: {} };
  }
}

describe('serve fault corpus', () => {
  let tmp: string;
  let data: string;
  let root: string;
  let ds: Dataset;
  let models: Map<string, ServedModel>;
  let app: FastifyInstance;
  let base: string;
  let user: string;
  /** Every response body seen; none may name a server path. */
  const bodies: string[] = [];
  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> => {
    const r = await send(base, method, path, headers, body);
    bodies.push(r.body);
    return r;
  };
  const error = (r: Answer): string => (JSON.parse(r.body) as { error: string }).error;

  beforeAll(async () => {
    tmp = tempDir('p5rec-faults-serve-');
    data = join(tmp, 'mi');
    const r = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', data, '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
    ds = await loadDataset(data);
    user = ds.users.token[0];
    root = join(tmp, 'models');
    saveModel(join(root, 'pop'), await popularity.fit(ds, {}, 'sequential', { log: () => {}, quiet: true, seed: 1 }), ds, { seconds: 0, peakRssMB: 0, seed: 1 });
    models = loadServedModels(ds, ['pop'], { modelRoot: root });
    app = buildApp({ dataset: ds, models, modelRoot: root, apiKey: KEY, bodyLimit: 4096, timeouts: T });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  describe('auth: no spelling of a URL reaches a non-public route without the key', () => {
    // [method, path as sent]: each routes to a real route (or a 404) and must answer 401 without the key.
    const tricks: [string, string][] = [
      ['GET', '/%761/models'],
      ['GET', '/%76%31/models'],
      ['GET', '/%761/users/USER'],
      ['POST', '/%761/generate'],
      ['POST', '/%761/recommend'],
      ['GET', '/v1%2Fmodels'],
      ['GET', '/v1%2fusers%2fUSER'],
      ['GET', '//v1/models'],
      ['GET', '/v1//models'],
      ['GET', '/v1/models.'],
      ['GET', '/v1/models/'],
      ['GET', '/V1/models'],
      ['GET', '/v1/../v1/models'],
      ['GET', '/./v1/models'],
      ['GET', '/healthz/../v1/models'],
      ['GET', '/v1/models;x'],
      ['GET', '/v1/models%00'],
      ['GET', '/v1/models?api_key=s3cret'],
      ['GET', '/v1/models?key=s3cret&x-api-key=s3cret'],
      ['OPTIONS', '/v1/models'],
      ['OPTIONS', '*'],
      ['DELETE', '/v1/models'],
      ['GET', '/v1/nothing'],
      ['GET', '/nothing'],
    ];
    for (const [method, raw] of tricks) {
      it(`${method} ${raw} without a key: 401`, async () => {
        const path = raw.replace('USER', user);
        const r = await call(method, path, {}, method === 'POST' ? JSON.stringify({ user, prompt: 'hi' }) : undefined);
        expect(r.status, r.body).toBe(401);
        expect(error(r)).toBe(NO_KEY);
        expect(r.headers['www-authenticate']).toBe('Bearer');
      });
    }

    it('the encoded paths route to the real routes: with the key they answer, so the 401 above is auth, not a miss', async () => {
      const m = await call('GET', '/%761/models', { 'x-api-key': KEY });
      expect(m.status).toBe(200);
      expect(JSON.parse(m.body).default).toBe('pop');
      const u = await call('GET', `/%761/users/${user}`, { authorization: `Bearer ${KEY}` });
      expect(u.status).toBe(200);
      expect(JSON.parse(u.body).user).toBe(user);
      const g = await call('POST', '/%761/generate', { 'x-api-key': KEY }, JSON.stringify({ prompt: 'hi' }));
      expect(g.status).toBe(501);
      expect(error(g)).toMatch(/no generative \(P5\) model loaded/);
      const miss = await call('GET', '/V1/models', { 'x-api-key': KEY });
      expect(miss.status).toBe(404);
      expect(error(miss)).toBe('no route GET /V1/models');
    });

    it('HEAD on a non-public route needs the key too (HEAD routes inherit the route config)', async () => {
      const r = await call('HEAD', '/v1/models');
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer');
      const h = await call('HEAD', '/%761/models', { 'x-api-key': KEY });
      expect(h.status).toBe(200);
      expect(h.body).toBe('');
      expect(h.headers['content-type']).toMatch(/application\/json/);
    });

    it('key forms: x-api-key and Bearer (any case) pass; wrong, empty, repeated, Basic or other headers do not', async () => {
      const ok: Record<string, string>[] = [{ 'x-api-key': KEY }, { authorization: `Bearer ${KEY}` }, { authorization: `bearer ${KEY}` }, { authorization: `BEARER   ${KEY} ` }];
      for (const h of ok) {
        const r = await call('GET', '/v1/models', h);
        expect(r.status, JSON.stringify(h)).toBe(200);
        expect(JSON.parse(r.body).models[0].name).toBe('pop');
      }
      const bad: Record<string, string>[] = [
        {}, { 'x-api-key': 'wrong' }, { 'x-api-key': 's3cre' }, { 'x-api-key': `${KEY}x` }, { 'x-api-key': '' },
        { authorization: 'Bearer ' }, { authorization: `Bearer wrong` }, { authorization: KEY }, { authorization: `Bearer ${KEY} extra` },
        { authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` }, { 'api-key': KEY }, { cookie: `api_key=${KEY}` },
        { 'x-api-key': `${KEY}, ${KEY}` },
      ];
      for (const h of bad) {
        const r = await call('GET', '/v1/models', h);
        expect(r.status, JSON.stringify(h)).toBe(401);
        expect(error(r)).toBe(NO_KEY);
      }
    });

    it('a repeated x-api-key header (two values) is refused, not matched by one of them', async () => {
      const r = await new Promise<Answer>((resolve, reject) => {
        const u = new URL(base);
        const req = httpRequest({ host: u.hostname, port: u.port, path: '/v1/models', agent: false, headers: { 'x-api-key': [KEY, 'other'] } }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: b, headers: res.headers }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(r.status).toBe(401);
      expect(error(r)).toBe(NO_KEY);
    });

    it('every non-public route needs the key; exactly health, docs and the page are open', async () => {
      const doc = JSON.parse((await call('GET', '/openapi.json')).body) as { paths: Record<string, Record<string, { security?: unknown }>> };
      const open = ['/healthz', '/openapi.json', '/docs', '/', '/app.js', '/style.css'];
      const locked: [string, string][] = [];
      for (const [p, ops] of Object.entries(doc.paths)) {
        for (const [m, op] of Object.entries(ops)) {
          if (open.includes(p)) expect(op.security, p).toBeUndefined();
          else {
            expect(op.security, p).toBeDefined();
            locked.push([m.toUpperCase(), p.replace('{id}', user)]);
          }
        }
      }
      expect(locked.map(([m, p]) => `${m} ${p}`.replace(user, ':id')).sort()).toEqual([
        'GET /v1/items/:id', 'GET /v1/models', 'GET /v1/users', 'GET /v1/users/:id',
        'POST /v1/explain', 'POST /v1/generate', 'POST /v1/next', 'POST /v1/rate', 'POST /v1/recommend', 'POST /v1/summarize',
      ]);
      for (const [m, p] of locked) {
        const r = await call(m, p, {}, m === 'POST' ? '{}' : undefined);
        expect(r.status, `${m} ${p}`).toBe(401);
        expect(error(r)).toBe(NO_KEY);
        // With the key the same request gets past auth (here: a schema 400, a 404 or a 200).
        const k = await call(m, p, { 'x-api-key': KEY }, m === 'POST' ? '{}' : undefined);
        expect(k.status, `${m} ${p} with key`).not.toBe(401);
      }
      for (const p of open) {
        const r = await call('GET', p);
        expect(r.status, p).toBe(200);
      }
      expect(JSON.parse((await call('GET', '/healthz')).body)).toMatchObject({ ok: true, models: 1 });
    });

    it('a malformed percent-escape is a 400 that reaches no route', async () => {
      const r = await call('GET', '/%E0%A4%A/models');
      expect(r.status).toBe(400);
      expect(r.body).not.toMatch(/"models"|"users"|"dataset"/);
      expect(JSON.parse(r.body).message).toMatch(/not a valid url component/);
    });
  });

  describe('bodies: limits, bad JSON, wrong types, unknown fields (with the key)', () => {
    const H = { 'x-api-key': KEY };
    const cases: [string, string, string, Record<string, string>, number, RegExp][] = [
      ['body over the limit', '/v1/recommend', JSON.stringify({ user: 'u', candidates: Array.from({ length: 1000 }, (_, i) => `item_${i}`) }), H, 413, /^request body is larger than 4096 bytes$/],
      ['body over the limit, no key: auth first, body unread', '/v1/recommend', 'x'.repeat(10_000), {}, 401, /^missing or invalid API key/],
      ['truncated JSON', '/v1/recommend', '{"user":', H, 400, /JSON/],
      ['not JSON at all', '/v1/recommend', 'user=1', H, 400, /JSON/],
      ['empty JSON body', '/v1/recommend', '', H, 400, /Body cannot be empty when content-type is set to 'application\/json'/],
      ['a JSON array, not an object', '/v1/recommend', '[1,2]', H, 400, /body must be object/],
      ['k is a string', '/v1/recommend', JSON.stringify({ user: 'u', k: 'ten' }), H, 400, /body\/k must be integer/],
      ['k is fractional', '/v1/recommend', JSON.stringify({ user: 'u', k: 2.5 }), H, 400, /body\/k must be integer/],
      ['k is huge', '/v1/recommend', JSON.stringify({ user: 'u', k: 1e9 }), H, 400, /body\/k must be <= 100/],
      ['holdout is a string', '/v1/recommend', JSON.stringify({ user: 'u', holdout: 'yes' }), H, 400, /body\/holdout must be boolean/],
      ['history is an object', '/v1/next', JSON.stringify({ history: { a: 1 } }), H, 400, /body\/history must be array/],
      ['unknown field', '/v1/recommend', JSON.stringify({ user: 'u', top_k: 3 }), H, 400, /^body has an unknown field 'top_k'$/],
      ['missing field', '/v1/rate', JSON.stringify({ user: 'u' }), H, 400, /^body is missing the required field 'item'$/],
      // Prototype poisoning is refused by the JSON parser itself.
      ['__proto__ key', '/v1/recommend', '{"user":"u","__proto__":{"admin":true}}', H, 400, /^Body is not valid JSON but content-type is set to 'application\/json'$/],
      ['constructor.prototype key', '/v1/recommend', '{"user":"u","constructor":{"prototype":{"admin":true}}}', H, 400, /^Body is not valid JSON/],
    ];
    for (const [name, url, body, headers, status, msg] of cases) {
      it(`${name}: ${status}`, async () => {
        const r = await call('POST', url, headers, body);
        expect(r.status, r.body).toBe(status);
        const b = JSON.parse(r.body) as { error?: string; message?: string };
        expect(b.error ?? b.message).toMatch(msg);
      });
    }

    it('a body that is not JSON by content-type: 415', async () => {
      const r = await call('POST', '/v1/recommend', { ...H, 'content-type': 'application/xml' }, '<user>1</user>');
      expect(r.status).toBe(415);
      expect(error(r)).toBe('Unsupported Media Type');
      // text/plain has a parser, so it reaches the schema: a string is not an object.
      const t = await call('POST', '/v1/recommend', { ...H, 'content-type': 'text/plain' }, 'user=1');
      expect(t.status).toBe(400);
      expect(error(t)).toBe('body must be object');
    });
  });

  describe('slow and idle clients are cut off by the timeouts', () => {
    it('50 slow-loris sockets (a header byte every 100 ms) get 408 and are closed at the headers timeout', async () => {
      const socks = Array.from({ length: 50 }, () => rawSocket(base));
      const head = `GET /healthz HTTP/1.1\r\nHost: x\r\n${'X-Pad: ' + 'a'.repeat(200)}\r\n\r\n`;
      for (const s of socks) void trickle(s.sock, head, 100);
      const times = await Promise.all(socks.map((s) => s.closed));
      for (const [j, s] of socks.entries()) {
        expect(s.received(), `socket ${j}`).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"message":"Client Timeout"/);
        expect(times[j]).toBeLessThan(T.headers + 1500);
      }
      // The server still answers.
      expect((await call('GET', '/healthz')).status).toBe(200);
    });

    it('a socket that connects and sends nothing is closed at the headers timeout', async () => {
      const s = rawSocket(base);
      const ms = await s.closed;
      expect(ms).toBeLessThan(T.headers + 1500);
      expect(s.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"message":"Client Timeout"/);
    });

    it('a body sent one byte at a time is cut off at the request timeout with 408', async () => {
      const s = rawSocket(base);
      const body = JSON.stringify({ user, k: 1 }).padEnd(200, ' ');
      s.sock.write(`POST /v1/recommend HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
      void trickle(s.sock, body, 50);
      const ms = await s.closed;
      expect(s.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(ms).toBeGreaterThanOrEqual(T.headers);
      expect(ms).toBeLessThan(T.request + 1500);
    });

    it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
      const s = rawSocket(base);
      s.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
      const ms = await s.closed;
      expect(s.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*"ok":true/);
      expect(s.received()).toMatch(/keep-alive: timeout=/i);
      expect(ms).toBeLessThan(T.keepAlive + 1500);
    });

    it('a slow answer is not cut: the request timeout covers receiving the request, not computing the answer', async () => {
      const a = buildApp({ dataset: ds, models: new Map([['slow', { rec: new Slow(ds.numItems, T.request + 700), card: card('slow', {}) }]]), webDir: null, timeouts: T });
      const url = await a.listen({ host: '127.0.0.1', port: 0 });
      try {
        const r = await send(url, 'POST', '/v1/recommend', {}, JSON.stringify({ user, k: 2 }));
        bodies.push(r.body);
        expect(r.status, r.body).toBe(200);
        const b = JSON.parse(r.body) as { model: string; items: unknown[] };
        expect(b.model).toBe('slow');
        expect(b.items).toHaveLength(2);
      } finally {
        await a.close();
      }
    });

    it('bad timeout settings are refused with one line naming the flag', () => {
      expect(() => resolveTimeouts({ headers: 0 })).toThrow(/^the headers timeout must be a whole number of milliseconds >= 1, got 0$/);
      expect(() => resolveTimeouts({ idle: 1.5 })).toThrow(/^the idle timeout must be/);
      expect(() => resolveTimeouts({ headers: 5000, request: 1000 })).toThrow(/^the headers timeout \(5000 ms\) must not exceed the request timeout \(1000 ms\)$/);
      expect(resolveTimeouts({ headers: 100, request: undefined })).toMatchObject({ headers: 100, request: 30_000 });
    });
  });

  describe('no server path in any answer', () => {
    it('/v1/models without --model-root names models, never their folders; absolute paths in a config are cut to their last part', async () => {
      const plain = loadServedModels(ds, [join(root, 'pop')]);
      plain.set('p5-like', { rec: (plain.get('pop')!).rec, card: card('p5', { training: { init: join(tmp, 'ckpt', 'step-4'), weights: null }, files: ['/etc/a/b.json', 'rel/x'] }), dir: join(tmp, 'elsewhere') });
      const a = buildApp({ dataset: ds, models: plain, webDir: null });
      const r = await a.inject({ method: 'GET', url: '/v1/models' });
      await a.close();
      bodies.push(r.body);
      expect(r.statusCode).toBe(200);
      const m = r.json() as { models: { name: string; path?: string; config: { training?: { init: string }; files?: string[] } }[] };
      expect(m.models.map((x) => x.name)).toEqual(['pop', 'p5-like']);
      expect(m.models.map((x) => x.path)).toEqual([undefined, undefined]);
      expect(m.models[1].config.training!.init).toBe('step-4');
      expect(m.models[1].config.files).toEqual(['b.json', 'rel/x']);
      expect(r.body).not.toContain(tmp);
      // With a root: relative to it.
      const withRoot = await call('GET', '/v1/models', { 'x-api-key': KEY });
      expect(JSON.parse(withRoot.body).models[0].path).toBe('pop');
    });

    it('a 500 whose message names a file shows <path>; an unexpected error shows "internal error"', async () => {
      const file = join(tmp, 'models', 'pop', 'weights.safetensors');
      const failing = new Map<string, ServedModel>([
        ['named', { rec: new Failing('named', () => new P5recError(`cannot read ${file}: truncated`, { status: 500 })), card: card('named', {}) }],
        ['raw', { rec: new Failing('raw', () => new Error(`ENOENT: no such file or directory, open '${file}'`)), card: card('raw', {}) }],
      ]);
      const a = buildApp({ dataset: ds, models: failing, webDir: null });
      const named = await a.inject({ method: 'POST', url: '/v1/recommend', payload: { user, model: 'named' } });
      const raw = await a.inject({ method: 'POST', url: '/v1/recommend', payload: { user, model: 'raw' } });
      await a.close();
      bodies.push(named.body, raw.body);
      expect(named.statusCode).toBe(500);
      expect(named.json()).toEqual({ error: 'cannot read <path>: truncated' });
      expect(raw.statusCode).toBe(500);
      expect(raw.json()).toEqual({ error: 'internal error' });
    });

    it('no answer in this corpus names the temp folder, the checkout or the home folder', () => {
      expect(bodies.length).toBeGreaterThan(60);
      for (const b of bodies) {
        expect(b).not.toContain(tmp);
        expect(b).not.toContain(ROOT);
        if (process.env.HOME && process.env.HOME !== '/') expect(b).not.toContain(process.env.HOME);
      }
    });
  });

  describe('the command', () => {
    const serve = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [BIN, 'serve', '--dataset', join(tmp, 'no-dataset'), '--model', 'pop', '--port', '0', ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env }, timeout: 30_000 });

    it("--api-key '' is refused with one line (exit 2), even with P5REC_API_KEY set", () => {
      for (const env of [{}, { P5REC_API_KEY: KEY }] as Record<string, string>[]) {
        const r = serve(['--api-key', ''], env);
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr).toBe("p5rec: error: field 'api-key': --api-key is empty; give a non-empty key, or unset it to serve without one\n");
      }
      const eq = serve(['--api-key=', '--json']);
      expect(eq.status).toBe(2);
      expect(JSON.parse(eq.stdout)).toMatchObject({ ok: false, field: 'api-key' });
      const blank = serve(['--api-key', '   ']);
      expect(blank.status).toBe(2);
      expect(blank.stderr).toMatch(/^p5rec: error: field 'api-key': --api-key is empty/);
    });

    it('an empty P5REC_API_KEY is refused too, not read as "no auth"', () => {
      const r = serve([], { P5REC_API_KEY: '' });
      expect(r.status).toBe(2);
      expect(r.stderr).toBe("p5rec: error: field 'api-key': P5REC_API_KEY is empty; give a non-empty key, or unset it to serve without one\n");
    });

    it('bad timeout flags are refused with one line', () => {
      const zero = serve(['--headers-timeout', '0']);
      expect(zero.status).toBe(2);
      expect(zero.stderr).toBe("p5rec: error: --headers-timeout must be an integer >= 1, got '0'\n");
      const order = serve(['--headers-timeout', '5000', '--request-timeout', '1000']);
      expect(order.status).toBe(2);
      expect(order.stderr).toBe("p5rec: error: field 'headers-timeout': the headers timeout (5000 ms) must not exceed the request timeout (1000 ms)\n");
    });

    it('the reproduction: `serve --api-key s3cret` answers /%761/models with 401, and its --headers-timeout cuts a slow client', async () => {
      const child = spawn(process.execPath, [BIN, 'serve', '--dataset', data, '--model', 'pop', '--model-root', root, '--port', '0', '--api-key', KEY, '--headers-timeout', '300', '--json', '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
      try {
        const t0 = Date.now();
        while (!out.includes('\n') && child.exitCode === null && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
        const url = (JSON.parse(out) as { url: string }).url;
        for (const [m, p] of [['GET', '/%761/models'], ['GET', `/%761/users/${user}`], ['POST', '/%761/generate']]) {
          const r = await send(url, m, p, {}, m === 'POST' ? '{"prompt":"hi"}' : undefined);
          expect(r.status, `${m} ${p}`).toBe(401);
          expect(error(r)).toBe(NO_KEY);
        }
        const ok = await send(url, 'GET', '/%761/models', { authorization: `Bearer ${KEY}` });
        expect(ok.status).toBe(200);
        expect(ok.body).not.toContain(tmp);
        const s = rawSocket(url);
        void trickle(s.sock, 'GET /healthz HTTP/1.1\r\nHost: x\r\n' + 'X: y\r\n'.repeat(100), 100);
        expect(await s.closed).toBeLessThan(2000);
        expect(s.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited, err).toBe(0);
    }, 60_000);
  });
});
