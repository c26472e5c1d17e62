#!/usr/bin/env node
/**
 * T5 training and greedy-decoding throughput on the reference shape:
 * vocab 8000, d_model 256, 4+4 layers, 4 heads (d_kv 64), d_ff 1024,
 * dropout 0.1, batch 32, source 64 tokens, target 8 tokens, AdamW.
 *
 *   npx tsc -p tsconfig.build.json && node bench/train-t5.mjs [options]
 *
 *   --steps N        measured training steps per setting (default 4; 1 warm-up step first)
 *   --backends LIST  comma list of: wasm (the engine's kernels, with its native SGEMM when
 *                    build/Release/p5rec_native.node is built), wasm-only (the engine's wasm
 *                    kernels, native SGEMM off), wasm-x2 / wasm-only-x2 (2 data-parallel
 *                    workers), wasm-stock (stock tfjs kernels + the UnsortedSegmentSum
 *                    gradient), cpu (default: wasm,wasm-only,wasm-x2,wasm-only-x2,cpu)
 *   --cpu-steps N    measured steps on 'cpu' (default 1, no warm-up step; it is slow)
 *   --profile        print the kernels that take the time in one wasm step (native kernels on,
 *                    when built); --profile-wasm-only: the same with the native kernels off
 *   --json           print one JSON object instead of tables
 *
 * Reported: tokens/s = (source + target tokens, padding excluded; all real
 * here) per second of optimizer step (forward, backward, AdamW, parameter
 * sync), ms/step split into forward+backward (with the gradient transfer)
 * and update (clip, AdamW, parameter copy), peak RSS of the process
 * (workers are threads: included),
 * and greedy-decode latency for 8 new tokens (encoder once + 8 cached
 * decoder steps) at batch 1 and 32. Medians; other load on the machine shows
 * up in them.
 */
import { performance } from 'node:perf_hooks';
import * as engine from '../dist/engine/backend.js';

const { initEngine, installKernels } = engine;
import { resolveT5Config, T5Model, t5Task, T5_TASK_MODULE, train } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const STEPS = Number(opt('--steps', 4));
const CPU_STEPS = Number(opt('--cpu-steps', 1));
const BACKENDS = opt('--backends', 'wasm,wasm-only,wasm-x2,wasm-only-x2,cpu').split(',');
const PROFILE = args.includes('--profile') || args.includes('--profile-wasm-only');
const PROFILE_NATIVE = !args.includes('--profile-wasm-only');
const JSON_OUT = args.includes('--json');

const SHAPE = { vocab: 8000, d_model: 256, layers: 4, heads: 4, d_ff: 1024, batch: 32, src: 64, tgt: 8 };
const CONFIG = {
  preset: 'small',
  vocab_size: SHAPE.vocab,
  d_model: SHAPE.d_model,
  d_kv: SHAPE.d_model / SHAPE.heads,
  num_heads: SHAPE.heads,
  d_ff: SHAPE.d_ff,
  num_layers: SHAPE.layers,
  num_decoder_layers: SHAPE.layers,
  dropout_rate: 0.1,
};

function lcg(seed) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
}

/** Random full-length examples (no padding: every token counts). */
function makeExamples(n) {
  const r = lcg(7);
  return Array.from({ length: n }, () => {
    const inputIds = Array.from({ length: SHAPE.src - 1 }, () => 3 + (r() % (SHAPE.vocab - 3)));
    inputIds.push(1);
    const wholeWordIds = inputIds.map((_, i) => (i === SHAPE.src - 1 ? 0 : 1 + (i >> 2)));
    const labels = Array.from({ length: SHAPE.tgt - 1 }, () => 3 + (r() % (SHAPE.vocab - 3)));
    labels.push(1);
    return { inputIds, wholeWordIds, labels };
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const rssMB = () => process.resourceUsage().maxRSS / 1024;

async function benchTrain(label, backend, steps, extra = {}) {
  const warmup = extra.warmup ?? 1;
  const examples = makeExamples(SHAPE.batch * (steps + warmup));
  const tokensPerStep = SHAPE.batch * (SHAPE.src + SHAPE.tgt);
  const records = [];
  const common = { batchSize: SHAPE.batch, steps: steps + warmup, lr: 1e-3, quiet: true, onStep: (r) => records.push(r) };
  if (extra.workers) {
    await train({
      ...common,
      workers: extra.workers,
      backend,
      taskModule: { module: T5_TASK_MODULE, options: { config: CONFIG, seed: 1, examples, srcLen: SHAPE.src, tgtLen: SHAPE.tgt } },
    });
  } else {
    await initEngine({ backend });
    const model = T5Model.create(resolveT5Config(CONFIG), { seed: 1 });
    await train({ ...common, task: t5Task(model, examples, { srcLen: SHAPE.src, tgtLen: SHAPE.tgt }) });
    model.dispose();
  }
  const measured = records.slice(warmup);
  const ms = median(measured.map((r) => r.stepMs));
  return {
    label,
    backend,
    workers: extra.workers ?? 1,
    steps,
    msPerStep: ms,
    gradMs: median(measured.map((r) => r.gradMs)),
    updateMs: median(measured.map((r) => r.updateMs)),
    tokensPerSec: (tokensPerStep * 1000) / ms,
    tokensPerStep,
    firstStepMs: records[0].stepMs,
    peakRssMB: rssMB(),
  };
}

function benchDecode(tf, model, batch, reps) {
  const r = lcg(9 + batch);
  const L = SHAPE.src;
  const enc = {
    batchSize: batch,
    srcLen: L,
    inputIds: Int32Array.from({ length: batch * L }, (_, i) => (i % L === L - 1 ? 1 : 3 + (r() % (SHAPE.vocab - 3)))),
    attentionMask: new Int32Array(batch * L).fill(1),
    wholeWordIds: Int32Array.from({ length: batch * L }, (_, i) => (i % L === L - 1 ? 0 : 1 + ((i % L) >> 2))),
  };
  const once = () => {
    const cache = model.encodeCache(enc);
    const dec = model.newDecoderCache();
    let tokens = new Int32Array(batch).fill(0);
    for (let s = 0; s < SHAPE.tgt; s++) {
      const logits = model.decodeStep(cache, dec, tokens);
      const next = tf.tidy(() => tf.argMax(logits, -1));
      tokens = Int32Array.from(next.dataSync());
      next.dispose();
      logits.dispose();
    }
    dec.dispose();
    cache.dispose();
  };
  once();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    once();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

async function decodeLatency(backend) {
  const { tf } = await initEngine({ backend });
  const model = T5Model.create(resolveT5Config({ ...CONFIG, dropout_rate: 0 }), { seed: 1 });
  const out = { backend, batch1Ms: benchDecode(tf, model, 1, 5), batch32Ms: benchDecode(tf, model, 32, 3) };
  model.dispose();
  return out;
}

async function profileStep(native = true) {
  const { tf } = await initEngine({ backend: 'wasm' });
  installKernels(tf, 'all', { native });
  const model = T5Model.create(resolveT5Config(CONFIG), { seed: 1 });
  const task = t5Task(model, makeExamples(SHAPE.batch), { srcLen: SHAPE.src, tgtLen: SHAPE.tgt });
  const vars = [...model.params.values()];
  const batch = task.batch(Array.from({ length: SHAPE.batch }, (_, i) => i));
  const run = () => {
    const { value, grads } = tf.variableGrads(() => task.loss(batch, { step: 1, micro: 0, seed: 1, rank: 0 }).loss, vars);
    for (const g of Object.values(grads)) g.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  run();
  const prof = await tf.profile(run);
  const byKernel = new Map();
  const byMatMul = new Map();
  let total = 0;
  for (const k of prof.kernels) {
    total += k.kernelTimeMs;
    const a = byKernel.get(k.name) ?? { n: 0, ms: 0 };
    a.n++;
    a.ms += k.kernelTimeMs;
    byKernel.set(k.name, a);
    if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul') {
      const key = `${JSON.stringify(k.inputShapes)} → ${JSON.stringify(k.outputShapes)}`;
      const b = byMatMul.get(key) ?? { n: 0, ms: 0 };
      b.n++;
      b.ms += k.kernelTimeMs;
      byMatMul.set(key, b);
    }
  }
  model.dispose();
  const top = (m, n) => [...m.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, n).map(([name, v]) => ({ name, calls: v.n, ms: Math.round(v.ms), share: +(v.ms / total).toFixed(3) }));
  return { kernelMs: Math.round(total), kernels: top(byKernel, 15), matmuls: top(byMatMul, 12) };
}

/** Engine kernels with the native SGEMM on or off (workers read P5REC_NATIVE when they start). */
async function withNative(on, fn) {
  const { tf } = await initEngine({ backend: 'wasm' });
  const saved = process.env.P5REC_NATIVE;
  if (!on) process.env.P5REC_NATIVE = '0';
  installKernels(tf, 'all', { native: on });
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.P5REC_NATIVE;
    else process.env.P5REC_NATIVE = saved;
    installKernels(tf, 'all');
  }
}

await initEngine({ backend: 'wasm' });
const native = engine.nativeInfo?.() ?? null;
const results = { shape: SHAPE, native, train: [], decode: [], profile: null };
for (const b of BACKENDS) {
  if (b === 'wasm') results.train.push(await benchTrain(native ? `wasm + kernels (native ${native.isa} x${native.threads})` : 'wasm + engine kernels', 'wasm', STEPS));
  else if (b === 'wasm-only') {
    const threads = engine.wasmThreads?.() ?? 1;
    results.train.push(await withNative(false, () => benchTrain(`wasm only${threads > 1 ? ' (+matmul thread)' : ''}`, 'wasm', STEPS)));
  }
  else if (b === 'wasm-x2') results.train.push(await benchTrain('wasm, 2 data-parallel workers', 'wasm', STEPS, { workers: 2 }));
  else if (b === 'wasm-only-x2') results.train.push(await withNative(false, () => benchTrain('wasm only, 2 workers', 'wasm', STEPS, { workers: 2 })));
  else if (b === 'wasm-stock') {
    const { tf } = await initEngine({ backend: 'wasm' });
    installKernels(tf, ['UnsortedSegmentSum']);
    results.train.push(await benchTrain('wasm, stock kernels', 'wasm', 1));
    installKernels(tf, 'all');
  } else if (b === 'cpu') results.train.push(await benchTrain("tfjs 'cpu' backend", 'cpu', CPU_STEPS, { warmup: 0 }));
  else throw new Error(`unknown backend ${b}`);
}
if (BACKENDS.some((x) => x.startsWith('wasm'))) {
  results.decode.push(await decodeLatency('wasm'));
  if (native) results.decode.push({ ...(await withNative(false, () => decodeLatency('wasm'))), backend: 'wasm-only' });
}
if (BACKENDS.includes('cpu')) results.decode.push(await decodeLatency('cpu'));
if (PROFILE) results.profile = PROFILE_NATIVE ? await profileStep() : await withNative(false, () => profileStep(false));
results.peakRssMB = rssMB();

if (JSON_OUT) {
  console.log(JSON.stringify(results, null, 2));
} else {
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log(`T5 training: vocab ${SHAPE.vocab}, d ${SHAPE.d_model}, ${SHAPE.layers}+${SHAPE.layers} layers, ${SHAPE.heads} heads, d_ff ${SHAPE.d_ff}, batch ${SHAPE.batch}, source ${SHAPE.src}, target ${SHAPE.tgt}, AdamW\n`);
  console.log(native ? `native kernels: ${native.isa}, ${native.threads} threads per call\n` : 'native kernels: not built (wasm only)\n');
  console.log('setting                          tokens/s   ms/step (fwd+bwd  update)  first step ms  peak RSS MB');
  for (const r of results.train) {
    console.log(`${r.label.padEnd(32)} ${f(r.tokensPerSec).padStart(8)} ${f(r.msPerStep).padStart(9)} ${f(r.gradMs).padStart(9)} ${f(r.updateMs).padStart(7)}  ${f(r.firstStepMs).padStart(14)} ${f(r.peakRssMB).padStart(12)}`);
  }
  console.log('\ngreedy decode, 8 new tokens (encoder + cached decoder steps)');
  for (const d of results.decode) console.log(`${d.backend.padEnd(10)} batch 1: ${f(d.batch1Ms, 1)} ms   batch 32: ${f(d.batch32Ms, 1)} ms`);
  if (results.profile) {
    console.log(`\nwasm step profile, native kernels ${PROFILE_NATIVE && native ? 'on' : 'off'} (kernel time ${results.profile.kernelMs} ms):`);
    for (const k of results.profile.kernels) console.log(`  ${k.name.padEnd(22)} ${String(k.calls).padStart(5)} calls ${String(k.ms).padStart(7)} ms  ${(k.share * 100).toFixed(1)}%`);
    console.log('  matmul shapes:');
    for (const k of results.profile.matmuls) console.log(`    ${k.name.padEnd(58)} ${String(k.calls).padStart(4)} calls ${String(k.ms).padStart(6)} ms`);
  }
  console.log(`\npeak RSS ${f(results.peakRssMB)} MB`);
}
