#!/usr/bin/env node
/**
 * Matmul GFLOPS: the native SGEMM (1 and 2 threads) vs the engine's wasm
 * kernel (XNNPACK) vs stock tfjs-backend-wasm, through tf.matMul on the wasm
 * backend (what models run), plus the raw addon on Float32Arrays.
 *
 *   npx tsc -p tsconfig.build.json && node bench/native-matmul.mjs [--quick] [--no-stock] [--json]
 *
 * Shapes: those of bench/engine-matmul.mjs, the T5 benchmark's feed-forward
 * and output-layer shapes, and large squares. Each round runs every variant
 * (after one untimed call, which also starts the pool's threads), so the
 * machine's background load hits all alike; medians (and the best run) are
 * printed. tf.matMul is timed without reading the result back (the wasm
 * backend computes synchronously). Stock is timed separately and only once
 * on the shapes where it takes seconds.
 */
import { performance } from 'node:perf_hooks';
import { initEngine, installKernels, nativeInfo, setNativeThreads, loadNativeAddon as loadNative } from '../dist/engine/backend.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const withStock = !args.includes('--no-stock');
const jsonOut = args.includes('--json');

const { tf } = await initEngine({ backend: 'wasm' });
const addon = loadNative();
const info = nativeInfo();
const STOCK = ['wasm/UnsortedSegmentSum', 'cpu/UnsortedSegmentSum'];

const T = (s, t) => (t ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
const NN = [false, false];
const ALL = [[false, false], [false, true], [true, false], [true, true]];
const CASES = [
  { name: 'dense [2048,256]x[256,256]', a: [2048, 256], b: [256, 256], tr: ALL },
  { name: 'batched dense [32,64,256]x[256,256]', a: [32, 64, 256], b: [256, 256], tr: ALL },
  { name: 'attention [128,64,64]x[128,64,64]', a: [128, 64, 64], b: [128, 64, 64], tr: ALL },
  { name: 'T5 ff in [2048,256]x[256,1024]', a: [2048, 256], b: [256, 1024], tr: [NN, [true, false]] },
  { name: 'T5 ff out [2048,1024]x[1024,256]', a: [2048, 1024], b: [1024, 256], tr: [NN, [false, true]] },
  { name: 'T5 logits [256,256]x[256,8000]', a: [256, 256], b: [256, 8000], tr: [[false, true], [true, false]] },
  { name: 'square 512', a: [512, 512], b: [512, 512], tr: [NN] },
  { name: 'square 1024', a: [1024, 1024], b: [1024, 1024], tr: [NN, [true, true]] },
  { name: 'square 2048', a: [2048, 2048], b: [2048, 2048], tr: [NN] },
];

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
};

function setMode(mode) {
  if (mode === 'stock') installKernels(tf, STOCK);
  else installKernels(tf, 'all', { native: mode.startsWith('native') });
  if (mode === 'native1') setNativeThreads(1);
  if (mode === 'native2') setNativeThreads(2);
}

/** Interleaved rounds: each variant is set up, warmed up once, then timed `per` times. */
function timeEach(fns, { minMs, minRounds = 3, maxRounds = 50, per = 2 }) {
  const names = Object.keys(fns);
  const ts = Object.fromEntries(names.map((n) => [n, []]));
  const start = performance.now();
  let rounds = 0;
  while ((performance.now() - start < minMs || rounds < minRounds) && rounds < maxRounds) {
    for (const n of names) {
      const { setup, run } = fns[n];
      setup();
      run();
      for (let i = 0; i < per; i++) {
        const t0 = performance.now();
        run();
        ts[n].push(performance.now() - t0);
      }
    }
    rounds++;
  }
  return Object.fromEntries(names.map((n) => [n, { med: median(ts[n]), best: Math.min(...ts[n]) }]));
}

function rawCall(c, tA, tB) {
  const as = T(c.a, tA);
  const bs = T(c.b, tB);
  const K = c.a[c.a.length - 1];
  const M = c.a[c.a.length - 2];
  const N = c.b[c.b.length - 1];
  const aBatch = as.slice(0, -2).reduce((x, y) => x * y, 1);
  const bBatch = bs.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(aBatch, bBatch);
  const a = Float32Array.from({ length: aBatch * M * K }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: bBatch * K * N }, (_, i) => Math.cos(i));
  const out = new Float32Array(batch * M * N);
  return () =>
    addon.sgemm(a, 0, b, 0, out, 0, M, N, K, tA, tB, 1, 0, batch, aBatch === 1 ? 0 : M * K, bBatch === 1 ? 0 : K * N, M * N);
}

const rows = [];
for (const c of CASES) {
  for (const [tA, tB] of c.tr) {
    const as = T(c.a, tA);
    const bs = T(c.b, tB);
    setMode('wasm');
    const a = tf.randomNormal(as, 0, 1, 'float32', 1);
    const b = tf.randomNormal(bs, 0, 1, 'float32', 2);
    const probe = tf.matMul(a, b, tA, tB);
    const flops = 2 * probe.size * c.a[c.a.length - 1];
    probe.dispose();
    const matmul = () => tf.matMul(a, b, tA, tB).dispose();
    const big = flops > 4e9;
    const variants = { wasm: { setup: () => setMode('wasm'), run: matmul } };
    if (addon) {
      const raw = rawCall(c, tA, tB);
      variants.native1 = { setup: () => setMode('native1'), run: matmul };
      variants.native2 = { setup: () => setMode('native2'), run: matmul };
      variants.raw2 = { setup: () => setMode('native2'), run: raw };
    }
    const res = timeEach(variants, { minMs: quick ? 300 : big ? 3000 : 1500, minRounds: quick ? 2 : 3, per: big ? 1 : 3 });
    if (withStock) {
      // the stock scalar loop takes seconds on the big ones: one timed call there
      const slow = flops > 5e8 && (tA || tB || c.a.length > 2);
      res.stock = timeEach({ stock: { setup: () => setMode('stock'), run: matmul } }, {
        minMs: quick || slow ? 0 : 500,
        minRounds: 1,
        maxRounds: slow ? 1 : 10,
        per: 1,
      }).stock;
    }
    setMode('native2');
    tf.dispose([a, b]);
    const gf = (r) => (r ? flops / r.med / 1e6 : NaN);
    const gfBest = (r) => (r ? flops / r.best / 1e6 : NaN);
    rows.push({
      shape: c.name,
      tr: `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`,
      stock: gf(res.stock),
      wasm: gf(res.wasm),
      native1: gf(res.native1),
      native2: gf(res.native2),
      native2Best: gfBest(res.native2),
      raw2: gf(res.raw2),
    });
  }
}

if (jsonOut) {
  console.log(JSON.stringify({ node: process.version, native: info, rows }, null, 2));
} else {
  console.log(`p5rec native matmul benchmark — node ${process.version}, tfjs-core ${tf.version_core}`);
  console.log(info ? `native: ${info.isa} (cpu: ${info.detectedIsa}), default ${info.threads} threads\n` : 'native: unavailable\n');
  console.log('GFLOPS, median (best) over interleaved rounds; tf.matMul on the wasm backend unless "raw"');
  const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const head = ['shape', 'tr', 'stock wasm', 'wasm custom', 'native x1', 'native x2', '(best x2)', 'raw native x2', 'x2/wasm'];
  const body = rows.map((r) => [r.shape, r.tr, f(r.stock), f(r.wasm), f(r.native1), f(r.native2), f(r.native2Best), f(r.raw2), Number.isFinite(r.native2) ? `${(r.native2 / r.wasm).toFixed(1)}x` : '-']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i < 2 ? cell.padEnd(w[i]) : cell.padStart(w[i]))).join('  ');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of body) console.log(line(r));
}
