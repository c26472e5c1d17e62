#!/usr/bin/env node
// Serving benchmark: a loopback load test of POST /v1/recommend at a fixed
// request rate (open loop, keep-alive), per loaded model. Run: npm run bench:serve
// (needs a built dist/ and ../shared/datasets).
//
// Default: for MovieLens-100K and Beauty, import the dataset into a temp
// folder, fit pop (and bpr-mf when the registry has it), start the server in
// a child process (so the load generator does not share its event loop) and
// send RATE req/s for DURATION s to each model, random users, k=10.
// Latency is measured from each request's *scheduled* send time, so a server
// that falls behind shows it (no coordinated omission).
//
// Options: --rate 200 --duration 10 --warmup 2 --k 10 --sockets 64
//          --datasets movielens-100k,beauty   --models pop,bpr-mf
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
    datasets: { type: 'string', default: 'movielens-100k,beauty' },
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
    requests: n, seconds: r3(wall), throughput: Math.round((latencies.length / wall) * 10) / 10, errors, statuses,
    p50ms: r3(pct(latencies, 50)), p90ms: r3(pct(latencies, 90)), p99ms: r3(pct(latencies, 99)), maxms: r3(latencies[latencies.length - 1] ?? NaN),
    // In-server time (Server-Timing header) and how late the generator sent (its own scheduling delay).
    serverP50ms: r3(pct(serverMs, 50)), serverP99ms: r3(pct(serverMs, 99)), sendLagP99ms: r3(pct(lags, 99)),
  };
}

async function benchServer(label, opts) {
  const { child, url, models } = await startServer(opts);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(flags.sockets) });
  const results = [];
  try {
    const tokens = await collectUsers(url, agent);
    for (const m of models) {
      if (warmup > 0) await load(url, agent, m.name, tokens, warmup);
      await ask(child, 'stats'); // drop the warm-up's numbers
      child.send('reset');
      const r = await load(url, agent, m.name, tokens, duration);
      const server = await ask(child, 'stats');
      results.push({ dataset: label, model: m.name, kind: m.kind, rate, k, ...r, serverLoopP99ms: Math.round(server.loopP99ms * 10) / 10, serverLoopMaxms: Math.round(server.loopMaxms * 10) / 10, serverGcMs: server.gcMs, serverPeakRssMB: peakRssMB(child.pid) });
      log(`${label} ${m.name}: ${r.throughput} req/s, p50 ${r.p50ms} ms, p99 ${r.p99ms} ms, errors ${r.errors}`);
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
if (flags.dataset) {
  all.push(...(await benchServer(flags.dataset, { dataset: flags.dataset, models: flags.model ?? [] })));
} else {
  const { FACTORIES } = await import(join(root, 'dist/recommend/registry.js'));
  const known = new Set(FACTORIES.map((f) => f.kind));
  const want = flags.models ? flags.models.split(',') : ['pop', 'bpr-mf'].filter((m) => known.has(m));
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
        run(['fit', dir, '--model', m, '--out', join(tmp, `${name}-${m}`), '--quiet']);
        specs.push(`${m}=${name}-${m}`);
      }
      all.push(...(await benchServer(name, { dataset: dir, models: specs, modelRoot: tmp })));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (flags.json) console.log(JSON.stringify({ target: { rate, p99ms: 50, errors: 0 }, results: all }));
else {
  console.log(`| dataset | model | rate (req/s) | throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | errors | in-server p50/p99 (ms) | server loop delay p99/max (ms) | server GC (ms) | client send lag p99 (ms) | server peak RSS (MB) |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of all) console.log(`| ${r.dataset} | ${r.model} | ${r.rate} | ${r.throughput} | ${r.p50ms} | ${r.p90ms} | ${r.p99ms} | ${r.maxms} | ${r.errors} | ${r.serverP50ms} / ${r.serverP99ms} | ${r.serverLoopP99ms} / ${r.serverLoopMaxms} | ${r.serverGcMs} | ${r.sendLagP99ms} | ${r.serverPeakRssMB ?? '?'} |`);
  console.log(`target: p99 < 50 ms at ${rate} req/s, 0 errors`);
}
