#!/usr/bin/env node
// Serving benchmark: a loopback load test of POST /v1/recommend at a fixed
// request rate (open loop, keep-alive), per loaded model. Run: npm run bench:serve
// (needs a built dist/ and ../shared/datasets).
//
// Default: import Musical Instruments into a temp folder, fit bpr-mf and train
// a tiny P5 (4 steps: the serving cost of the architecture, not a good model),
// start the server in a child process (so the load generator does not share
// its event loop) and send RATE req/s for DURATION s to each model, random
// users, k=10. Latency is measured from each request's *scheduled* send time,
// so a server that falls behind shows it (no coordinated omission).
//
// Every model is first measured COLD: the server's recommendation cache off,
// so every request runs the model (for P5: a 20-beam search per request,
// concurrent requests micro-batched). P5 is then measured WARM: cache on,
// every user of a pool of --warm-users users asked once before the clock
// starts, load drawn from that pool (so nearly every request is a cache hit;
// the hit count is reported).
//
// Options: --rate 200 --duration 10 --warmup 2 --k 10 --sockets 64
//          --datasets mi,movielens-100k,beauty   --models bpr-mf,p5,pop
//          --p5-duration 10 (seconds of cold P5 load; shorter bursts bound the drain when P5 falls behind)
//          --warm-users 200
//          --dataset DIR --model [NAME=]DIR ...   (bench existing folders instead)
//          --json (one JSON object on stdout)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(root, '../shared/datasets');
const bin = join(root, 'bin/p5rec.js');

const IMPORTS = {
  mi: ['amazon', '--reviews', `${shared}/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz`],
  'movielens-100k': ['movielens', '--dir', `${shared}/movielens-100k`],
  beauty: ['p5', '--sequences', `${shared}/amazon-beauty/sequential.txt`, '--datamaps', `${shared}/amazon-beauty/datamaps.json`, '--meta', `${shared}/amazon-beauty/meta.jsonl`],
};

// ---- child mode: the server ------------------------------------------------------
let gcMs = 0;
const gcTotal = () => {
  const t = gcMs;
  gcMs = 0;
  return Math.round(t);
};

if (process.argv[2] === '--server') {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  }).observe({ entryTypes: ['gc'] });
  const opts = JSON.parse(process.argv[3]);
  const { startServe } = await import(join(root, 'dist/cli/serve.js'));
  const s = await startServe({ ...opts, host: '127.0.0.1', port: 0, logLevel: 'silent' });
  process.stdout.write(`${JSON.stringify({ url: s.url, models: s.models })}\n`);
  // Event-loop delay inside the server (blocking work, GC, or the OS not scheduling it), reset per model on request.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  process.on('message', (m) => {
    if (m === 'reset') loop.reset();
    if (m === 'stats') process.send({ loopP99ms: loop.percentile(99) / 1e6, loopMaxms: loop.max / 1e6, gcMs: gcTotal() });
  });
  const stop = () => s.app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await new Promise(() => {});
}

const { values: flags } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    k: { type: 'string', default: '10' },
    sockets: { type: 'string', default: '64' },
    datasets: { type: 'string', default: 'mi' },
    'p5-duration': { type: 'string', default: '10' },
    'warm-users': { type: 'string', default: '200' },
    models: { type: 'string' },
    dataset: { type: 'string' },
    model: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  },
});
const rate = Number(flags.rate);
const duration = Number(flags.duration);
const warmup = Number(flags.warmup);
const k = Number(flags.k);
const log = (msg) => process.stderr.write(`${msg}\n`);

function run(args) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`p5rec ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
  return r;
}

/** Start the server child; resolves to {url, child}. */
function startServer(opts) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--server', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  return new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) res({ child, ...JSON.parse(out.slice(0, nl)) });
    });
    child.on('exit', (code) => rej(new Error(`server exited with ${code}`)));
  });
}

/** Ask the server child for its event-loop / GC numbers. */
function ask(child, msg) {
  return new Promise((res) => {
    child.once('message', res);
    child.send(msg);
  });
}

/** Peak RSS of a process in MB (Linux /proc). */
function peakRssMB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);

/** Open-loop load at `rate` req/s for `seconds`; latency from the scheduled send time. */
async function load(url, agent, model, users, seconds) {
  let cacheHits = 0;
  const { hostname, port } = new URL(url);
  const n = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const latencies = [];
  const serverMs = [];
  const lags = [];
  const statuses = {};
  let errors = 0;
  let seed = 12345;
  const pending = [];
  const fire = (scheduled) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const body = JSON.stringify({ user: users[seed % users.length], k, model });
    lags.push(performance.now() - scheduled);
    pending.push(new Promise((done) => {
      const req = http.request({ hostname, port, path: '/v1/recommend', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          latencies.push(performance.now() - scheduled);
          const st = /dur=([\d.]+)/.exec(res.headers['server-timing'] ?? '');
          if (st) serverMs.push(Number(st[1]));
          if (res.headers['x-cache'] === 'hit') cacheHits++;
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode !== 200) errors++;
          done();
        });
      });
      req.on('error', () => {
        errors++;
        statuses.network = (statuses.network ?? 0) + 1;
        done();
      });
      req.end(body);
    }));
  };
  const t0 = performance.now();
  for (let i = 0; i < n;) {
    const now = performance.now();
    while (i < n && t0 + i * interval <= now) fire(t0 + i++ * interval);
    if (i < n) await sleep(Math.max(0, t0 + i * interval - performance.now()));
  }
  await Promise.all(pending);
  const wall = (performance.now() - t0) / 1000;
  for (const xs of [latencies, serverMs, lags]) xs.sort((a, b) => a - b);
  const r3 = (x) => Math.round(x * 1000) / 1000;
  return {
    requests: n, seconds: r3(wall), throughput: Math.round((latencies.length / wall) * 10) / 10, errors, statuses, cacheHits,
    p50ms: r3(pct(latencies, 50)), p90ms: r3(pct(latencies, 90)), p99ms: r3(pct(latencies, 99)), maxms: r3(latencies[latencies.length - 1] ?? NaN),
    // In-server time (Server-Timing header) and how late the generator sent (its own scheduling delay).
    serverP50ms: r3(pct(serverMs, 50)), serverP99ms: r3(pct(serverMs, 99)), sendLagP99ms: r3(pct(lags, 99)),
  };
}

/** Ask for every user of the pool once (8 at a time), so the server's cache holds their answers. */
async function prewarm(url, agent, model, users) {
  const { hostname, port } = new URL(url);
  let next = 0;
  const one = () => new Promise((done, fail) => {
    const body = JSON.stringify({ user: users[next++], k, model });
    const req = http.request({ hostname, port, path: '/v1/recommend', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? done() : fail(new Error(`prewarm: HTTP ${res.statusCode}`))));
    });
    req.on('error', fail);
    req.end(body);
  });
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < users.length) await one();
  }));
}

/**
 * One server, each model in turn. cache: 'off' (cold: the model runs for
 * every request) or 'warm' (cache on, the user pool asked once beforehand).
 */
async function benchServer(label, opts, { cache = 'off', only, durationOf = () => duration } = {}) {
  const { child, url, models } = await startServer({ ...opts, cache: cache === 'off' ? 0 : 100_000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(flags.sockets) });
  const results = [];
  try {
    let tokens = await collectUsers(url, agent);
    if (cache === 'warm') tokens = tokens.slice(0, Number(flags['warm-users']));
    for (const m of models) {
      if (only && !only(m)) continue;
      const seconds = durationOf(m);
      if (cache === 'warm') {
        const t0 = performance.now();
        await prewarm(url, agent, m.name, tokens);
        log(`${label} ${m.name}: prewarmed ${tokens.length} users in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } else if (warmup > 0) await load(url, agent, m.name, tokens, Math.min(warmup, seconds / 4));
      await ask(child, 'stats'); // drop the warm-up's numbers
      child.send('reset');
      const r = await load(url, agent, m.name, tokens, seconds);
      const server = await ask(child, 'stats');
      results.push({ dataset: label, model: m.name, kind: m.kind, cache, users: tokens.length, rate, k, ...r, serverLoopP99ms: Math.round(server.loopP99ms * 10) / 10, serverLoopMaxms: Math.round(server.loopMaxms * 10) / 10, serverGcMs: server.gcMs, serverPeakRssMB: peakRssMB(child.pid) });
      log(`${label} ${m.name} (cache ${cache}): ${r.throughput} req/s, p50 ${r.p50ms} ms, p99 ${r.p99ms} ms, errors ${r.errors}, cache hits ${r.cacheHits}/${r.requests}`);
    }
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
  }
  return results;
}

/** Every user token, paging through GET /v1/users. */
async function collectUsers(url, agent) {
  const tokens = [];
  for (let offset = 0; ; offset += 100) {
    const page = await new Promise((res, rej) => {
      http.get(`${url}/v1/users?limit=100&offset=${offset}`, { agent }, (r) => {
        let s = '';
        r.on('data', (d) => (s += d));
        r.on('end', () => res(JSON.parse(s)));
      }).on('error', rej);
    });
    tokens.push(...page.users.map((u) => u.user));
    if (offset + 100 >= page.total) return tokens;
  }
}

const all = [];
const p5Seconds = Number(flags['p5-duration']);
const benchBoth = async (label, opts) => {
  all.push(...(await benchServer(label, opts, { cache: 'off', durationOf: (m) => (m.kind === 'p5' ? p5Seconds : duration) })));
  all.push(...(await benchServer(label, opts, { cache: 'warm', only: (m) => m.kind === 'p5' })));
};
if (flags.dataset) {
  await benchBoth(flags.dataset, { dataset: flags.dataset, models: flags.model ?? [] });
} else {
  const { FACTORIES } = await import(join(root, 'dist/recommend/registry.js'));
  const known = new Set([...FACTORIES.map((f) => f.kind), 'p5']);
  const want = flags.models ? flags.models.split(',') : ['bpr-mf', 'p5'].filter((m) => known.has(m));
  const tmp = mkdtempSync(join(tmpdir(), 'p5rec-bench-serve-'));
  try {
    for (const name of flags.datasets.split(',')) {
      if (!IMPORTS[name]) throw new Error(`unknown dataset '${name}' (known: ${Object.keys(IMPORTS).join(', ')})`);
      const dir = join(tmp, name);
      log(`importing ${name}…`);
      run(['data', 'import', ...IMPORTS[name], '--out', dir, '--quiet']);
      const specs = [];
      for (const m of want) {
        log(`fitting ${m} on ${name}…`);
        if (m === 'p5') run(['train', dir, '--out', join(tmp, `${name}-${m}`), '--config', 'tiny', '--epochs', '1', '--steps', '4', '--negatives', '4', '--max-source', '64', '--batch-tokens', '2048', '--item-pieces', '--quiet']);
        else run(['fit', dir, '--model', m, '--out', join(tmp, `${name}-${m}`), '--quiet']);
        specs.push(`${m}=${name}-${m}`);
      }
      await benchBoth(name, { dataset: dir, models: specs, modelRoot: tmp });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (flags.json) console.log(JSON.stringify({ target: { rate, p99ms: 50, errors: 0 }, results: all }));
else {
  console.log(`| dataset | model | cache | users | rate (req/s) | requests | throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | errors | cache hits | in-server p50/p99 (ms) | server loop delay p99/max (ms) | server GC (ms) | client send lag p99 (ms) | server peak RSS (MB) |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of all) console.log(`| ${r.dataset} | ${r.model} | ${r.cache} | ${r.users} | ${r.rate} | ${r.requests} | ${r.throughput} | ${r.p50ms} | ${r.p90ms} | ${r.p99ms} | ${r.maxms} | ${r.errors} | ${r.cacheHits} | ${r.serverP50ms} / ${r.serverP99ms} | ${r.serverLoopP99ms} / ${r.serverLoopMaxms} | ${r.serverGcMs} | ${r.sendLagP99ms} | ${r.serverPeakRssMB ?? '?'} |`);
  console.log(`target: p99 < 50 ms at ${rate} req/s, 0 errors`);
}
