/**
 * Training loop: AdamW / schedule / clipping against hand-computed values, a
 * tiny T5 overfitting a small batch on wasm, gradient accumulation, resume
 * reproducing an uninterrupted run, the JSONL log and resume errors.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, type Tf } from '../src/engine/backend.js';
import { resolveT5Config, type T5Config } from '../src/models/t5/config.js';
import { loadT5 } from '../src/models/t5/checkpoint.js';
import type { Seq2SeqExample } from '../src/models/t5/collate.js';
import { T5Model } from '../src/models/t5/model.js';
import { AdamW, clipGlobalNorm, learningRate } from '../src/train/adamw.js';
import { readCheckpointParams } from '../src/train/checkpoint.js';
import { decayRanges, Replica } from '../src/train/replica.js';
import { t5Task } from '../src/train/t5-task.js';
import { train, type StepRecord } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await initEngine({ backend: 'wasm' }));
});

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'p5rec-train-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function tinyConfig(over: Partial<T5Config> = {}): T5Config {
  return resolveT5Config({ preset: 'tiny', vocab_size: 60, d_model: 32, d_kv: 8, num_heads: 4, d_ff: 64, num_layers: 2, num_decoder_layers: 2, whole_word_embeddings: 32, ...over });
}

/** Copy tasks: target = a function of the source, so the model can learn it. */
function examples(n: number, seed = 1): Seq2SeqExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 3 + rng.int(5);
    const src = Array.from({ length: len }, () => 3 + rng.int(50));
    return { inputIds: [...src, 1], wholeWordIds: [...src.map((_, i) => 1 + (i >> 1)), 0], labels: [src[0], src[len - 1], 1] };
  });
}

describe('AdamW, schedule, clipping', () => {
  it('AdamW matches a hand-computed step (decoupled decay, bias correction)', () => {
    const adam = new AdamW(2, [{ offset: 0, size: 1, decay: true }, { offset: 1, size: 1, decay: false }], { eps: 1e-6, weightDecay: 0.01 });
    const p = new Float32Array([1, 1]);
    adam.step(p, new Float32Array([0.5, 0.5]), 0.1);
    // m̂ = 0.5, v̂ = 0.25 → update 0.1·0.5/(0.5+1e-6); decay multiplies by (1 − 0.1·0.01)
    expect(p[0]).toBeCloseTo(0.999 - 0.1 * (0.5 / 0.500001), 6);
    expect(p[1]).toBeCloseTo(1 - 0.1 * (0.5 / 0.500001), 6);
    adam.step(p, new Float32Array([-1, 0]), 0.1);
    const m = 0.9 * 0.05 + 0.1 * -1;
    const v = 0.999 * 0.00025 + 0.001 * 1;
    const want = (0.999 - 0.1 * (0.5 / 0.500001)) * 0.999 - (0.1 / (1 - 0.81)) * m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** 2) + 1e-6);
    expect(p[0]).toBeCloseTo(want, 5);
  });

  it('a range with lrScale steps at its own learning rate (its weight decay keeps the base rate)', () => {
    const adam = new AdamW(2, [{ offset: 0, size: 1, decay: true }, { offset: 1, size: 1, decay: true, lrScale: 10 }], { eps: 1e-6, weightDecay: 0.01 });
    const p = new Float32Array([1, 1]);
    adam.step(p, new Float32Array([0.5, 0.5]), 0.01);
    expect(p[0]).toBeCloseTo((1 - 0.01 * 0.01) - 0.01 * (0.5 / 0.500001), 6);
    expect(p[1]).toBeCloseTo((1 - 0.01 * 0.01) - 0.1 * (0.5 / 0.500001), 6);
  });

  it('row learning-rate scales split a 2-D parameter into runs of rows at their own rate', () => {
    const layout = { entries: [{ name: 'a.bias', shape: [3], offset: 0, size: 3 }, { name: 'shared.weight', shape: [6, 2], offset: 3, size: 12 }], total: 15 };
    const ranges = decayRanges(layout, (n) => n.endsWith('bias'), (n) => (n === 'shared.weight' ? 10 : 1), [{ name: 'shared.weight', rows: [4, 1, 2, 2], scale: 0 }]);
    expect(ranges).toEqual([
      { offset: 0, size: 3, decay: false },
      { offset: 3, size: 2, decay: true, lrScale: 10 },
      { offset: 5, size: 4, decay: true, lrScale: 0 },
      { offset: 9, size: 2, decay: true, lrScale: 10 },
      { offset: 11, size: 2, decay: true, lrScale: 0 },
      { offset: 13, size: 2, decay: true, lrScale: 10 },
    ]);
    // rows 1, 2 and 4 only decay; rows 0, 3 and 5 take the step
    const adam = new AdamW(15, ranges, { eps: 1e-6, weightDecay: 0.01 });
    const p = new Float32Array(15).fill(1);
    adam.step(p, new Float32Array(15).fill(0.5), 0.01);
    const row = (r: number) => p[3 + 2 * r];
    for (const r of [1, 2, 4]) expect(row(r)).toBeCloseTo(1 - 0.01 * 0.01, 6);
    for (const r of [0, 3, 5]) expect(row(r)).toBeCloseTo(1 - 0.01 * 0.01 - 0.1 * (0.5 / 0.500001), 6);
    expect(() => decayRanges(layout, undefined, undefined, [{ name: 'shared.weight', rows: [6], scale: 0 }])).toThrow(/row 6 is outside shared.weight/);
    expect(() => decayRanges(layout, undefined, undefined, [{ name: 'a.bias', rows: [0], scale: 0 }])).toThrow(/2-D shape/);
  });

  it('linear warmup then linear decay', () => {
    const lr = (s: number) => learningRate(s, 100, 1e-3, 0.05);
    expect([1, 2, 5].map(lr)).toEqual([2e-4, 4e-4, 1e-3]);
    expect(lr(6)).toBeCloseTo(1e-3, 12);
    expect(lr(7)).toBeCloseTo((1e-3 * 94) / 95, 12);
    expect(lr(100)).toBeCloseTo(1e-3 / 95, 12);
    expect(learningRate(50, 100, 1e-3, 0.05, 'constant')).toBe(1e-3);
    expect(learningRate(1, 10, 1e-3, 0)).toBe(1e-3);
  });

  it('clips by global norm', () => {
    const g = new Float32Array([3, 4]);
    expect(clipGlobalNorm(g, 1)).toBe(5);
    expect(Math.hypot(g[0], g[1])).toBeCloseTo(1, 5);
    const h = new Float32Array([0.3, 0.4]);
    clipGlobalNorm(h, 1);
    expect(Array.from(h)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });
});

describe('train (in-process)', () => {
  it('a tiny T5 overfits a small batch to near-zero loss on wasm', async () => {
    const c = tinyConfig({ dropout_rate: 0 });
    const model = T5Model.create(c, { seed: 1 });
    const data = examples(8);
    const before = tf.memory().numTensors;
    const res = await train({ task: t5Task(model, data), batchSize: 8, steps: 150, lr: 3e-3, warmupRatio: 0.05, schedule: 'constant', weightDecay: 0, quiet: true });
    expect(tf.memory().numTensors).toBe(before); // no leaked tensors per step
    const losses = res.records.map((r) => r.loss);
    expect(losses[0]).toBeGreaterThan(3);
    expect(losses[losses.length - 1]).toBeLessThan(0.05);
    expect(res.records[0].tokens).toBe(data.reduce((a, e) => a + e.inputIds.length + e.labels.length, 0));
    const out = model.generateGreedy({ batchSize: 1, srcLen: data[0].inputIds.length, inputIds: Int32Array.from(data[0].inputIds), attentionMask: new Int32Array(data[0].inputIds.length).fill(1), wholeWordIds: Int32Array.from(data[0].wholeWordIds!) }, { maxNewTokens: 4 });
    expect(out[0]).toEqual(data[0].labels.slice(0, -1));
    model.dispose();
  });

  it('gradient accumulation equals one big batch', async () => {
    const c = tinyConfig({ dropout_rate: 0 });
    const data = examples(16, 2);
    const run = async (micro: number) => {
      const model = T5Model.create(c, { seed: 2 });
      const res = await train({ task: t5Task(model, data), batchSize: 8, microBatchSize: micro, steps: 4, quiet: true });
      model.dispose();
      return res;
    };
    const a = await run(8);
    const b = await run(3);
    for (let i = 0; i < 4; i++) expect(b.records[i].loss).toBeCloseTo(a.records[i].loss, 5);
    let worst = 0;
    for (let i = 0; i < a.params.length; i++) worst = Math.max(worst, Math.abs(a.params[i] - b.params[i]));
    expect(worst).toBeLessThan(1e-4);
  });

  it('resume after an interruption reproduces the uninterrupted run exactly (dropout on)', async () => {
    const c = tinyConfig({ dropout_rate: 0.1 });
    const data = examples(20, 3);
    const common = { batchSize: 6, epochs: 3, checkpointEvery: 4, seed: 7, quiet: true } as const;

    const full = tmp();
    const m1 = T5Model.create(c, { seed: 3 });
    const uninterrupted = await train({ ...common, task: t5Task(m1, data), outDir: full });
    m1.dispose();
    expect(uninterrupted.totalSteps).toBe(12);

    const cut = tmp();
    const abort = new AbortController();
    const m2 = T5Model.create(c, { seed: 3 });
    const first = await train({ ...common, task: t5Task(m2, data), outDir: cut, signal: abort.signal, onStep: (r: StepRecord) => r.step === 6 && abort.abort() });
    m2.dispose();
    expect(first.stopped).toBe(true);
    expect(first.step).toBe(6);
    // a fresh process would build a fresh model: different init, overwritten by the checkpoint
    const m3 = T5Model.create(c, { seed: 99 });
    const resumed = await train({ ...common, task: t5Task(m3, data), outDir: cut, resume: true });
    expect(resumed.records[0].step).toBe(7); // a stopped run checkpoints its last completed step (6), not only the step-4 one
    expect(resumed.records.map((r) => r.loss)).toEqual(uninterrupted.records.slice(6).map((r) => r.loss));
    expect(Array.from(resumed.params)).toEqual(Array.from(uninterrupted.params));
    m3.dispose();

    const log = readFileSync(join(cut, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(log[11].loss).toBe(uninterrupted.records[11].loss);
    expect(Object.keys(log[0])).toEqual(expect.arrayContaining(['step', 'loss', 'lr', 'gradNorm', 'tokens', 'tokensPerSec', 'stepMs', 'gradMs', 'updateMs', 'time']));
  });

  it('emaDecay ends with the moving average of the per-step parameters, validates it, and resumes it', async () => {
    const c = tinyConfig({ dropout_rate: 0 });
    const data = examples(12, 5);
    // Constant rate, no warmup: a k-step run is the first k steps of a longer one.
    const common = { batchSize: 4, schedule: 'constant', warmupRatio: 0, lr: 3e-3, seed: 5, quiet: true } as const;
    const flat = (m: T5Model): Float32Array => {
      const r = new Replica(t5Task(m, data));
      const out = new Float32Array(r.layout.total);
      r.writeParams(out);
      return out;
    };
    const raw: Float32Array[] = [];
    for (let k = 0; k <= 5; k++) {
      const m = T5Model.create(c, { seed: 6 });
      raw.push(k === 0 ? flat(m) : (await train({ ...common, task: t5Task(m, data), steps: k })).params);
      m.dispose();
    }
    const D = 0.3; // (1+n)/(10+n) < D for n ≤ 2, so both branches of the decay are used
    const want = Float64Array.from(raw[0]);
    for (let n = 1; n <= 5; n++) {
      const d = Math.min(D, (1 + n) / (10 + n));
      for (let i = 0; i < want.length; i++) want[i] += (1 - d) * (raw[n][i] - want[i]);
    }
    const seen: Float32Array[] = [];
    const dir = tmp();
    const m = T5Model.create(c, { seed: 6 });
    const res = await train({
      ...common, task: t5Task(m, data), steps: 5, emaDecay: D, outDir: dir,
      validate: { every: 2, run: async (_s, p) => (seen.push(Float32Array.from(p)), { metric: 0, values: {} }) },
    });
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(res.params[i] - want[i]));
    expect(worst).toBeLessThan(1e-5);
    expect(worst).toBeGreaterThan(0); // float32 accumulation, not a copy of some step
    let fromLast = 0;
    for (let i = 0; i < want.length; i++) fromLast = Math.max(fromLast, Math.abs(res.params[i] - raw[5][i]));
    expect(fromLast).toBeGreaterThan(1e-3); // the average is not the last step
    expect(Array.from(seen.at(-1)!)).toEqual(Array.from(res.params)); // validation scored the average
    expect(Array.from(flat(m))).toEqual(Array.from(res.params)); // and the model holds it
    // the checkpoint keeps the raw parameters (training goes on from them) beside the average
    expect(Array.from(readCheckpointParams(join(dir, 'checkpoint')).get('shared.weight')!.data)).toEqual(Array.from(raw[5].subarray(0, 60 * 32)));
    m.dispose();

    // resume continues the same average, and only as a run that keeps one
    const interrupted = async (at: number, emaDecay?: number): Promise<string> => {
      const d = tmp();
      const abort = new AbortController();
      const mm = T5Model.create(c, { seed: 6 });
      await train({ ...common, task: t5Task(mm, data), steps: 5, ...(emaDecay ? { emaDecay } : {}), outDir: d, signal: abort.signal, onStep: (r: StepRecord) => r.step === at && abort.abort() });
      mm.dispose();
      return d;
    };
    const cut = await interrupted(2, D);
    const fresh = T5Model.create(c, { seed: 99 });
    await expect(train({ ...common, task: t5Task(fresh, data), steps: 5, outDir: cut, resume: true })).rejects.toThrow(/keeps a parameter average; resume with the emaDecay/);
    const resumed = await train({ ...common, task: t5Task(fresh, data), steps: 5, emaDecay: D, outDir: cut, resume: true });
    expect(Array.from(resumed.params)).toEqual(Array.from(res.params));
    const plain = await interrupted(1);
    await expect(train({ ...common, task: t5Task(fresh, data), steps: 5, emaDecay: D, outDir: plain, resume: true })).rejects.toThrow(/no parameter average/);
    await expect(train({ ...common, task: t5Task(fresh, data), steps: 5, emaDecay: 1 })).rejects.toThrow(/emaDecay must be in \(0, 1\)/);
    fresh.dispose();
  });

  it('exports the model at checkpoints and refuses a mismatched resume', async () => {
    const c = tinyConfig({ dropout_rate: 0 });
    const data = examples(10, 4);
    const dir = tmp();
    const m = T5Model.create(c, { seed: 4 });
    const res = await train({ task: t5Task(m, data), batchSize: 5, steps: 2, outDir: dir, exportModel: true, quiet: true });
    expect(existsSync(join(dir, 'checkpoint', 'trainer.json'))).toBe(true);
    const exported = loadT5(join(dir, 'model'));
    const probe = { batchSize: 1, srcLen: 3, tgtLen: 2, inputIds: Int32Array.from([5, 6, 1]), attentionMask: Int32Array.from([1, 1, 1]), labels: Int32Array.from([7, 1]), decoderInputIds: Int32Array.from([0, 7]) };
    expect(Array.from(exported.model.forward(probe).dataSync())).toEqual(Array.from(m.forward(probe).dataSync()));
    exported.model.dispose();
    const raw = readCheckpointParams(join(dir, 'checkpoint'));
    expect(Array.from(raw.get('shared.weight')!.data)).toEqual(Array.from(res.params.subarray(0, 60 * 32)));
    await expect(train({ task: t5Task(m, data), batchSize: 4, steps: 2, outDir: dir, resume: true, quiet: true })).rejects.toThrow(/checkpoint was made with batchSize 5, this run has 4/);
    await expect(train({ task: t5Task(m, data), batchSize: 5, steps: 2, outDir: tmp(), resume: true, quiet: true })).rejects.toThrow(/nothing to resume/);
    const other = T5Model.create(tinyConfig({ dropout_rate: 0, d_ff: 32 }));
    await expect(train({ task: t5Task(other, data), batchSize: 5, steps: 2, outDir: dir, resume: true, quiet: true })).rejects.toThrow(/checkpoint does not match the model/);
    other.dispose();
    m.dispose();
  });
});
