#!/usr/bin/env node
/**
 * One P5 training step at the Beauty recipe's shape (119 prompts of 51
 * tokens, a one-token answer, vocabulary 14,558, dropout 0.1), with the
 * attention composed from tfjs ops and with the fused native kernel: the
 * median wall time of a forward + backward over 10 steps, and the kernels
 * that take the time in one of them (tf.profile; a kernel's time includes
 * the kernels it calls, so the column can sum to more than the step).
 * Random token ids: the cost does not depend on them.
 *
 *   npm run bench:p5-step -- [--d 64|128] [--top 12] [--json]
 */
import { performance } from 'node:perf_hooks';
import { initEngine, resolveT5Config, T5Model, t5Task } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const D = Number(opt('--d', '64'));
const TOP = Number(opt('--top', '12'));
if (D !== 64 && D !== 128) throw new Error(`--d must be 64 or 128, got '${opt('--d')}'`);
const SHAPE = { vocab: 14558, batch: 119, src: 51 };
const CONFIG = { preset: 'tiny', vocab_size: SHAPE.vocab, dropout_rate: 0.1, ...(D === 128 ? { d_model: 128, d_kv: 32, d_ff: 512 } : {}) };

let seed = 7;
const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
const examples = Array.from({ length: SHAPE.batch }, () => {
  const inputIds = Array.from({ length: SHAPE.src - 1 }, () => 3 + (next() % (SHAPE.vocab - 3)));
  inputIds.push(1);
  return { inputIds, wholeWordIds: inputIds.map((_, i) => (i === SHAPE.src - 1 ? 0 : 1 + (i >> 2))), labels: [3 + (next() % (SHAPE.vocab - 3))] };
});

const { tf } = await initEngine({ backend: 'wasm' });
const model = T5Model.create(resolveT5Config(CONFIG), { seed: 1 });
const task = t5Task(model, examples, { srcLen: SHAPE.src, tgtLen: 1 });
const vars = [...model.params.values()];
const batch = task.batch(examples.map((_, i) => i));
const step = () => {
  const { value, grads } = tf.variableGrads(() => task.loss(batch, { step: 1, micro: 0, seed: 1, rank: 0 }).loss, vars);
  for (const g of Object.values(grads)) g.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
};

const results = [];
for (const fused of [false, true]) {
  model.fusedAttention = fused;
  for (let i = 0; i < 3; i++) step();
  const ms = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    step();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const prof = await tf.profile(step);
  const by = new Map();
  for (const k of prof.kernels) {
    const a = by.get(k.name) ?? { calls: 0, ms: 0 };
    a.calls++;
    a.ms += k.kernelTimeMs;
    by.set(k.name, a);
  }
  const kernels = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, TOP).map(([name, v]) => ({ name, calls: v.calls, ms: Math.round(v.ms * 10) / 10 }));
  results.push({ attention: fused ? 'fused' : 'composed', medianMs: Math.round(ms[5] * 10) / 10, minMs: Math.round(ms[0] * 10) / 10, kernelCalls: prof.kernels.length, kernels });
}
model.dispose();

if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ d: D, shape: SHAPE, results })}\n`);
else {
  console.log(`P5 training step, d ${D}, ${SHAPE.batch} prompts × ${SHAPE.src} tokens, vocabulary ${SHAPE.vocab} (median of 10 steps)`);
  for (const r of results) {
    console.log(`\n${r.attention} attention: ${r.medianMs} ms/step (min ${r.minMs}), ${r.kernelCalls} kernel calls`);
    for (const k of r.kernels) console.log(`  ${k.name.padEnd(22)} ${String(k.calls).padStart(4)} calls ${k.ms.toFixed(1).padStart(7)} ms`);
  }
}
