import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../src/data/build.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { emptyInteractions, pushInteraction, type RawDataset } from '../src/data/raw.js';
import { initEngine } from '../src/engine/backend.js';
import type { Tensor } from '../src/engine/types.js';
import { evaluate } from '../src/eval/evaluate.js';
import { popularity } from '../src/baselines/pop.js';
import { SASREC_DEFAULTS, sasrec, type SasrecConfig } from '../src/baselines/sasrec.js';
import { forwardTf, initWeights, makeBatch, NetCpu, softmaxCrossEntropy, weightShapes, type NetShape } from '../src/baselines/sasrec-net.js';
import { getFactory } from '../src/recommend/registry.js';
import type { FitContext } from '../src/recommend/recommender.js';
import { loadModel, saveModel } from '../src/recommend/store.js';
import { Rng } from '../src/util/rng.js';
import { tempDir } from './helpers/cli.js';

// ---------------------------------------------------------------------------
// A synthetic dataset with a deterministic next item: the items form one
// cycle in a random order (item perm[k] is followed by perm[k+1]); every user
// walks it from a random start for 8–14 steps. The next item is a function of
// the last one, which a sequential model must learn; popularity is flat.
// ---------------------------------------------------------------------------

const USERS = 300, ITEMS = 80;

function cycleRaw(): RawDataset {
  const rng = new Rng(3);
  const perm = Array.from({ length: ITEMS }, (_, i) => i);
  rng.shuffle(perm);
  const t = emptyInteractions();
  for (let u = 0; u < USERS; u++) {
    const start = rng.int(ITEMS), len = 8 + rng.int(7);
    for (let k = 0; k < len; k++) pushInteraction(t, { user: `U${u}`, item: `I${perm[(start + k) % ITEMS]}`, time: 1_000_000 + k * 100 + u });
  }
  return { kind: 'jsonl', files: [], interactions: t, items: new Map(), orderedByInput: false };
}

const SMALL: SasrecConfig = { ...SASREC_DEFAULTS, dim: 32, heads: 2, maxLen: 10, dropout: 0.1, lr: 0.005, batchSize: 32, epochs: 12, patience: 0 };
const ctx = (o: Partial<FitContext> = {}): FitContext => ({ log: () => {}, quiet: true, seed: 5, ...o });

describe('sasrec', () => {
  let tmp: string;
  let ds: Dataset;
  beforeAll(async () => {
    tmp = tempDir('p5rec-sasrec-');
    await buildDataset(cycleRaw(), { out: join(tmp, 'ds'), name: 'cycle', negatives: 20 });
    ds = await loadDataset(join(tmp, 'ds'));
  });

  it('is registered as a sequential-split ranking model', () => {
    const f = getFactory('sasrec');
    expect(f.defaultSplit).toBe('sequential');
    expect(f.tasks).toEqual(['direct', 'sequential']);
    expect(f.defaults).toMatchObject({ dim: 64, blocks: 2, maxLen: 50, loss: 'ce', lr: 0.001 });
  });

  it('learns the next-item cycle (CE over all items): sequential HR@10 far above popularity', async () => {
    const pop = await evaluate(ds, await popularity.fit(ds, {}, 'sequential', ctx()), 'sequential', { quiet: true });
    const rec = await sasrec.fit(ds, SMALL, 'sequential', ctx());
    const r = await evaluate(ds, rec, 'sequential', { quiet: true });
    expect(pop.metrics['HR@10']).toBeLessThan(0.3);
    expect(r.metrics['HR@10']).toBeGreaterThan(0.8);
    expect(r.metrics['NDCG@10']).toBeGreaterThan(0.5);
    const training = (rec.state().extra as { training: { history: { loss: number }[] } }).training;
    expect(training.history.length).toBe(SMALL.epochs);
    expect(training.history.at(-1)!.loss).toBeLessThan(training.history[0].loss);
  });

  it('learns it with the paper\'s BCE loss too', async () => {
    const rec = await sasrec.fit(ds, { ...SMALL, loss: 'bce', epochs: 20, lr: 0.01 }, 'sequential', ctx());
    const r = await evaluate(ds, rec, 'sequential', { quiet: true });
    expect(r.metrics['HR@10']).toBeGreaterThan(0.6);
  });

  it('save → load gives identical scores', async () => {
    const rec = await sasrec.fit(ds, { ...SMALL, epochs: 2 }, 'sequential', ctx());
    const dir = join(tmp, 'saved');
    saveModel(dir, rec, ds, { seconds: 0, peakRssMB: 0, seed: 5 });
    const { rec: back, card } = loadModel(dir, ds);
    expect(card.kind).toBe('sasrec');
    expect(card.config).toMatchObject({ dim: 32, heads: 2, maxLen: 10 });
    for (const u of [0, 17, 123]) {
      const h = ds.historyBefore(u, 2);
      expect(Array.from(back.score(u, h) as Float32Array)).toEqual(Array.from(rec.score(u, h) as Float32Array));
      const cands = Int32Array.of(3, 1, 4, 1, 5);
      expect(Array.from(back.score(u, h, cands) as Float32Array)).toEqual(Array.from(rec.score(u, h, cands) as Float32Array));
    }
    // Scoring uses the last maxLen items; an empty history still gives finite scores.
    expect((back.score(0, new Int32Array(0)) as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('resuming from a checkpoint replays an uninterrupted fit', async () => {
    const cfg = { ...SMALL, epochs: 4 };
    const full = await sasrec.fit(ds, cfg, 'sequential', ctx({ checkpointDir: join(tmp, 'ck-full') }));
    const dir = join(tmp, 'ck-split');
    await sasrec.fit(ds, { ...cfg, epochs: 2 }, 'sequential', ctx({ checkpointDir: dir }));
    const resumed = await sasrec.fit(ds, cfg, 'sequential', ctx({ checkpointDir: dir, resume: true }));
    type H = { training: { history: { epoch: number; loss: number; valid?: number }[] } };
    const ha = (full.state().extra as H).training.history, hb = (resumed.state().extra as H).training.history;
    expect(hb.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
    for (let e = 0; e < 4; e++) {
      expect(hb[e].loss).toBeCloseTo(ha[e].loss, 5);
      expect(hb[e].valid!).toBeCloseTo(ha[e].valid!, 5);
    }
    const ta = full.state().tensors, tb = resumed.state().tensors;
    for (const k of Object.keys(ta)) {
      const a = ta[k].data, b = tb[k].data;
      let md = 0;
      for (let j = 0; j < a.length; j++) md = Math.max(md, Math.abs(a[j] - b[j]));
      expect(md, k).toBeLessThan(1e-5);
    }
    // A checkpoint written with other hyper-parameters is refused.
    await expect(sasrec.fit(ds, { ...cfg, dim: 16, heads: 1 }, 'sequential', ctx({ checkpointDir: dir, resume: true }))).rejects.toThrow(/hyper-parameters/);
  });

  it('rejects bad hyper-parameters and the rating split', async () => {
    await expect(sasrec.fit(ds, { ...SMALL, heads: 3 }, 'sequential', ctx())).rejects.toThrow(/divisible/);
    await expect(sasrec.fit(ds, { ...SMALL, loss: 'mse' as never }, 'sequential', ctx())).rejects.toThrow(/loss must be ce or bce/);
    await expect(sasrec.fit(ds, SMALL, 'rating', ctx())).rejects.toThrow(/sequential/);
  });
});

describe('sasrec network', () => {
  const I = 50;

  it('the plain-array forward (scoring) equals the tfjs forward (training) on right-aligned rows', async () => {
    const { tf: t } = await initEngine();
    for (const heads of [1, 4]) {
      const s: NetShape = { dim: 16, blocks: 2, heads, maxLen: 6 };
      const rng = new Rng(9);
      const w = initWeights(s, I, rng);
      // Non-trivial LayerNorm gains and biases.
      for (const k of Object.keys(w)) if (!k.endsWith('emb')) for (let j = 0; j < w[k].length; j++) w[k][j] += 0.2 * (rng.next() - 0.5);
      const seqs = [[1, 2, 3], [7], [4, 9, 16, 25, 36, 49], [0, 0, 5]].map((x) => Int32Array.from(x));
      const batch = makeBatch(seqs, s.maxLen);
      const H = t.tidy(() => forwardTf(t, s, Object.fromEntries(weightShapes(s, I).map(([n, sh]) => [n, t.tensor(w[n], sh)])) as Record<string, Tensor>, batch, null).arraySync()) as number[][];
      const net = new NetCpu(s, w, I);
      seqs.forEach((sq, r) => {
        const h = net.hidden(sq);
        const row = H[r * batch.T + batch.T - 1];
        for (let k = 0; k < s.dim; k++) expect(h[k]).toBeCloseTo(row[k], 4);
        // A longer history is cut to its last maxLen items.
        const long = Int32Array.from([11, 12, 13, 14, ...sq]);
        if (sq.length === s.maxLen) expect(Array.from(net.hidden(long))).toEqual(Array.from(h));
      });
    }
  });

  it('the hand-written softmax cross-entropy gradient equals autograd of log-sum-exp (whole and in row chunks)', async () => {
    const { tf: t } = await initEngine();
    const N = 23, d = 8;
    const targets = Int32Array.from({ length: N }, (_, n) => (n * 7) % I);
    t.tidy(() => {
      const H = t.randomNormal([N, d], 0, 1, 'float32', 1), E = t.randomNormal([I, d], 0, 1, 'float32', 2);
      const ref = t.valueAndGrads((h: Tensor, e: Tensor) => {
        const pos = t.sum(t.mul(h, t.gather(e, t.tensor1d(targets, 'int32'))), 1);
        return t.mean(t.sub(t.logSumExp(t.matMul(h, e, false, true), 1), pos));
      })([H, E]);
      for (const chunkRows of [2048, 5]) {
        const a = t.valueAndGrads((h: Tensor, e: Tensor) => softmaxCrossEntropy(t, targets, chunkRows)(h, e))([H, E]);
        expect(a.value.dataSync()[0]).toBeCloseTo(ref.value.dataSync()[0], 4);
        for (let k = 0; k < 2; k++) {
          const x = a.grads[k].dataSync(), y = ref.grads[k].dataSync();
          for (let j = 0; j < x.length; j++) expect(x[j]).toBeCloseTo(y[j], 5);
        }
      }
    });
  });
});
