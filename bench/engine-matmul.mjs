#!/usr/bin/env node
/**
 * Engine benchmark: stock tfjs-backend-wasm kernels vs the custom ones in
 * src/engine/kernels, plus the 'cpu' backend for reference.
 *
 *   npx tsc -p tsconfig.build.json && node bench/engine-matmul.mjs [--quick]
 *
 * 1. BatchMatMul GFLOPS for each transpose combination on dense-layer,
 *    batched-dense and attention-like shapes.
 * 2. SplitV (e.g. a fused QKV projection split in 3), Transpose, Exp and a
 *    softmax cross-entropy forward+backward, ms.
 * 3. Training steps/s of two embedding models (Adam):
 *    - BPR-MF: 22k users, 12k items, dim 64, batch 1024 (gathers only);
 *    - MF with a full softmax over the items through the tied item table
 *      (logits = U[u] I^T): transposed matmuls in forward and backward.
 *    "stock wasm" = stock kernels plus only the custom UnsortedSegmentSum
 *    (without it, training an embedding model on wasm fails); "cpu" =
 *    tfjs-backend-cpu with the custom cpu UnsortedSegmentSum (its stock one
 *    makes one step take minutes at these sizes).
 * Timings are medians; the machine's other load shows up in them.
 */
import { performance } from 'node:perf_hooks';
import { initEngine, installKernels } from '../dist/engine/backend.js';

const quick = process.argv.includes('--quick');
const { tf } = await initEngine({ backend: 'wasm' });

const STOCK = ['wasm/UnsortedSegmentSum', 'cpu/UnsortedSegmentSum'];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median ms of fn() over at least `minReps` runs and `minMs` ms (after 1 warm-up). */
function time(fn, { minMs = quick ? 150 : 600, minReps = 3, maxReps = 200 } = {}) {
  fn();
  const ts = [];
  const start = performance.now();
  while ((performance.now() - start < minMs || ts.length < minReps) && ts.length < maxReps) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/**
 * Interleaved medians: each round runs every fn once (after its setup), so
 * the machine's background load hits all variants alike.
 */
function timeEach(fns, { minMs = quick ? 200 : 800, minReps = 3, maxReps = 200 } = {}) {
  const names = Object.keys(fns);
  const ts = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) fns[n]();
  const start = performance.now();
  let reps = 0;
  while ((performance.now() - start < minMs || reps < minReps) && reps < maxReps) {
    for (const n of names) {
      const t0 = performance.now();
      fns[n]();
      ts[n].push(performance.now() - t0);
    }
    reps++;
  }
  return Object.fromEntries(names.map((n) => [n, median(ts[n])]));
}

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function lpad(s, n) {
  s = String(s);
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}
function table(headers, rows) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i < 2 ? pad(c, w[i]) : lpad(c, w[i]))).join('  ');
  console.log(line(headers));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows) console.log(line(r));
  console.log();
}

function setMode(mode) {
  installKernels(tf, mode === 'stock' ? STOCK : 'all');
  const backend = mode === 'cpu' ? 'cpu' : 'wasm';
  if (tf.getBackend() !== backend) tf.setBackend(backend);
}

// ---------------------------------------------------------------- matmul
const T = (s, t) => (t ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
const matmulCases = [
  { name: 'dense [2048,256]x[256,256]', a: [2048, 256], b: [256, 256] },
  { name: 'batched dense [32,64,256]x[256,256]', a: [32, 64, 256], b: [256, 256] },
  { name: 'attention [128,64,64]x[128,64,64]', a: [128, 64, 64], b: [128, 64, 64] },
];
const combos = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

console.log(`p5rec engine benchmark — node ${process.version}, tfjs-core ${tf.version_core}`);
console.log('wasm: single-threaded SIMD build; custom kernels from src/engine/kernels\n');

const mmRows = [];
for (const c of matmulCases) {
  for (const [tA, tB] of combos) {
    const as = T(c.a, tA);
    const bs = T(c.b, tB);
    const K = c.a[c.a.length - 1];
    setMode('custom');
    const a = tf.randomNormal(as, 0, 1, 'float32', 1);
    const b = tf.randomNormal(bs, 0, 1, 'float32', 2);
    const out = tf.matMul(a, b, tA, tB);
    const flops = 2 * out.size * K;
    out.dispose();
    const run = (mode) => () => {
      setMode(mode);
      const o = tf.matMul(a, b, tA, tB);
      o.dataSync();
      o.dispose();
    };
    const ms = timeEach({ stock: run('stock'), custom: run('custom') });
    // cpu last: its warm-up run moves a and b to the cpu backend
    ms.cpu = time(run('cpu'), { minMs: quick ? 100 : 300, minReps: 2 });
    tf.dispose([a, b]);
    const res = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, { ms: v, gf: flops / v / 1e6 }]));
    mmRows.push([
      c.name,
      `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`,
      res.stock.gf.toFixed(2),
      res.custom.gf.toFixed(2),
      res.cpu.gf.toFixed(2),
      `${(res.stock.ms / res.custom.ms).toFixed(1)}x`,
    ]);
  }
}
console.log('BatchMatMul GFLOPS (median; NT = transposeA false, transposeB true)');
table(['shape', 'tr', 'stock wasm', 'custom wasm', 'cpu', 'custom/stock'], mmRows);

// ---------------------------------------------------------------- other kernels
const otherCases = [
  ['split [1024,768] in 3, axis 1', [1024, 768], (x) => tf.split(x, 3, 1)],
  ['split [64,50,192] in 3, axis 2', [64, 50, 192], (x) => tf.split(x, 3, 2)],
  ['split [12000,64] in 4, axis 0', [12000, 64], (x) => tf.split(x, 4, 0)],
  ['transpose [1024,512]', [1024, 512], (x) => tf.transpose(x)],
  ['transpose [2000,500]', [2000, 500], (x) => tf.transpose(x)],
  ['exp [1024,12000], x <= 0', [1024, 12000], (x) => tf.exp(x), (x) => tf.neg(tf.abs(x))],
  ['softmax CE + grad [1024,12000]', [1024, 12000], null],
];
const otherRows = [];
for (const [label, shape, op, prep] of otherCases) {
  setMode('custom');
  let x = tf.randomNormal(shape);
  if (prep) {
    const y = prep(x);
    x.dispose();
    x = y;
  }
  const labels = op ? null : tf.oneHot(tf.tensor1d(Int32Array.from({ length: shape[0] }, (_, i) => (i * 11) % shape[1]), 'int32'), shape[1]);
  const f = op ?? ((l) => tf.grad((t) => tf.losses.softmaxCrossEntropy(labels, t))(l));
  const run = (mode) => () => {
    setMode(mode);
    const outs = [f(x)].flat();
    for (const o of outs) o.dataSync();
    tf.dispose(outs);
  };
  const res = timeEach({ stock: run('stock'), custom: run('custom') });
  res.cpu = time(run('cpu'), { minMs: quick ? 100 : 300, minReps: 2 });
  tf.dispose([x, labels].filter(Boolean));
  otherRows.push([
    label,
    '',
    res.stock.toFixed(2),
    res.custom.toFixed(2),
    res.cpu.toFixed(2),
    `${(res.stock / res.custom).toFixed(1)}x`,
  ]);
}
console.log('Other kernels, ms (median, incl. reading the results back)');
table(['op', '', 'stock wasm', 'custom wasm', 'cpu', 'custom/stock'], otherRows);

// ---------------------------------------------------------------- training
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const USERS = 22000;
const ITEMS = 12000;
const DIM = 64;
const BATCH = 1024;

function makeTrainer(model, mode) {
  setMode(mode);
  const r = rng(7);
  const U = tf.variable(tf.randomNormal([USERS, DIM], 0, 0.1, 'float32', 3), true, `U_${model}_${mode}`);
  const I = tf.variable(tf.randomNormal([ITEMS, DIM], 0, 0.1, 'float32', 4), true, `I_${model}_${mode}`);
  const opt = tf.train.adam(1e-3);
  const ints = (n, max) => tf.tensor1d(Int32Array.from({ length: n }, () => Math.floor(r() * max)), 'int32');
  const step = () => {
    setMode(mode);
    const u = ints(BATCH, USERS);
    const i = ints(BATCH, ITEMS);
    const j = model === 'bpr' ? ints(BATCH, ITEMS) : null;
    const loss = opt.minimize(
      () =>
        tf.tidy(() => {
          const eu = tf.gather(U, u);
          if (model === 'bpr') {
            const x = tf.sum(tf.mul(eu, tf.sub(tf.gather(I, i), tf.gather(I, j))), -1);
            // -log(sigmoid(x)) = softplus(-x). (tf.logSigmoid's gradient closes
            // over its input without saving it, so it breaks inside tf.tidy.)
            return tf.mean(tf.softplus(tf.neg(x)));
          }
          const logits = tf.matMul(eu, I, false, true); // tied output layer
          return tf.losses.softmaxCrossEntropy(tf.oneHot(i, ITEMS), logits);
        }),
      true,
      [U, I],
    );
    loss.dataSync();
    tf.dispose([loss, u, i, j].filter(Boolean));
  };
  const dispose = () => {
    tf.dispose([U, I]);
    opt.dispose();
  };
  return { step, dispose };
}

const trainRows = [];
for (const [model, label] of [
  ['bpr', 'BPR-MF 22k users x 12k items, dim 64, batch 1024'],
  ['softmax', 'MF + full softmax via tied item table, same sizes'],
]) {
  const stock = makeTrainer(model, 'stock');
  const custom = makeTrainer(model, 'custom');
  const ms = timeEach(
    { stock: stock.step, custom: custom.step },
    { minMs: quick ? 1000 : 10000, minReps: quick ? 2 : 5, maxReps: 100 },
  );
  stock.dispose();
  custom.dispose();
  const cpu = makeTrainer(model, 'cpu');
  ms.cpu = time(cpu.step, { minMs: quick ? 500 : 4000, minReps: 2, maxReps: 50 });
  cpu.dispose();
  trainRows.push([
    label,
    'adam',
    (1000 / ms.stock).toFixed(2),
    (1000 / ms.custom).toFixed(2),
    (1000 / ms.cpu).toFixed(2),
    `${(ms.stock / ms.custom).toFixed(1)}x`,
  ]);
}
setMode('custom');
console.log(
  'Training steps/s (median step time). stock wasm = stock kernels + the custom UnsortedSegmentSum only\n' +
    '(without it gather has no gradient on wasm); cpu = tfjs-backend-cpu + the custom cpu UnsortedSegmentSum\n' +
    "(the stock cpu one makes a step take minutes at these sizes)",
);
table(['model', 'opt', 'stock wasm', 'custom wasm', 'cpu', 'custom/stock'], trainRows);
