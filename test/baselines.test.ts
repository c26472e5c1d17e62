import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../src/data/build.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { emptyInteractions, pushInteraction, type ItemMeta, type RawDataset } from '../src/data/raw.js';
import { evaluate } from '../src/eval/evaluate.js';
import { popularity } from '../src/baselines/pop.js';
import { Param, PairScorer, Tower } from '../src/baselines/nn.js';
import { CclBatch, SIMPLEX_DEFAULTS } from '../src/baselines/simplex.js';
import { UserItems } from '../src/baselines/train.js';
import { getFactory } from '../src/recommend/registry.js';
import type { FitContext, Recommender, RecommenderFactory, Task, TrainSplit } from '../src/recommend/recommender.js';
import { loadModel, saveModel } from '../src/recommend/store.js';
import { Rng } from '../src/util/rng.js';
import { cli, ROOT, tempDir } from './helpers/cli.js';

// ---------------------------------------------------------------------------
// A small synthetic dataset with structure a personal model can find and
// popularity cannot: 4 taste clusters of users and items; a user picks 70%
// of items from their own cluster (Zipf popularity inside the cluster) and
// rates them high, the rest anywhere and rates them low.
// ---------------------------------------------------------------------------

const USERS = 240, ITEMS = 160, CLUSTERS = 4, PER_USER = 20;

function syntheticRaw(): RawDataset {
  const rng = new Rng(7);
  const t = emptyInteractions();
  const items = new Map<string, ItemMeta>();
  const perCluster = ITEMS / CLUSTERS;
  for (let i = 0; i < ITEMS; i++) items.set(`I${i}`, { title: `Item ${i}` });
  const itemBias = Array.from({ length: ITEMS }, () => 0.4 * rng.normal());
  // Zipf weights within a cluster: rank r gets 1/(r+1).
  const zipf = Array.from({ length: perCluster }, (_, r) => 1 / (r + 1));
  const zsum = zipf.reduce((a, b) => a + b, 0);
  const pickInCluster = (c: number): number => {
    let x = rng.next() * zsum;
    for (let r = 0; r < perCluster; r++) if ((x -= zipf[r]) <= 0) return c * perCluster + r;
    return c * perCluster;
  };
  for (let u = 0; u < USERS; u++) {
    const c = u % CLUSTERS;
    const ub = 0.3 * rng.normal();
    const seen = new Set<number>();
    while (seen.size < PER_USER) {
      const own = rng.next() < 0.7;
      const i = own ? pickInCluster(c) : rng.int(ITEMS);
      if (seen.has(i)) continue;
      seen.add(i);
      const same = Math.floor(i / perCluster) === c;
      const r = Math.round((same ? 4.3 : 1.9) + ub + itemBias[i] + 0.5 * rng.normal());
      pushInteraction(t, { user: `U${u}`, item: `I${i}`, rating: Math.min(5, Math.max(1, r)), time: 1_000_000 + seen.size * 100 + u });
    }
  }
  return { kind: 'jsonl', files: [], interactions: t, items, orderedByInput: false };
}

// Small, fast settings per model, pinned so that retuning a default for the full datasets does not change them.
interface Spec {
  kind: string;
  task: Task;
  config: Record<string, unknown>;
}
const SPECS: Spec[] = [
  { kind: 'mf', task: 'rating', config: { dim: 8, epochs: 30, lr: 0.05, lrDecay: 0.95, reg: 0.02 } },
  { kind: 'mlp', task: 'rating', config: { dim: 8, layers: '16,8', epochs: 20, lr: 0.01, batchSize: 64, reg: 0.5, regTower: 0 } },
  { kind: 'bpr-mf', task: 'direct', config: { dim: 16, epochs: 15, lr: 0.1, reg: 0.01 } },
  { kind: 'bpr-mlp', task: 'direct', config: { dim: 16, layers: '16,8', epochs: 15, lr: 0.005, batchSize: 64, reg: 0.01, regTower: 0 } },
  // CCL with a lower margin and negative weight than on Beauty: 160 items in 4 clusters leave little room between clusters.
  { kind: 'simplex', task: 'direct', config: { dim: 16, epochs: 20, negatives: 50, batchSize: 64, lr: 0.01, margin: 0.2, negWeight: 5, gamma: 0.5, excludeTarget: false } },
];

const ctx = (o: Partial<FitContext> = {}): FitContext => ({ log: () => {}, quiet: true, seed: 11, ...o });

async function fitSpec(ds: Dataset, s: Spec, over: Record<string, unknown> = {}, c: Partial<FitContext> = {}): Promise<Recommender> {
  const f = getFactory(s.kind);
  return f.fit(ds, { ...f.defaults, ...s.config, ...over }, f.defaultSplit, ctx(c));
}

function sameTensors(a: Recommender, b: Recommender): void {
  const ta = a.state().tensors, tb = b.state().tensors;
  expect(Object.keys(tb).sort()).toEqual(Object.keys(ta).sort());
  for (const k of Object.keys(ta)) expect(Array.from(tb[k].data), k).toEqual(Array.from(ta[k].data));
}

describe('baselines on a synthetic 4-cluster dataset', () => {
  let tmp: string;
  let ds: Dataset;
  const popMetric: Partial<Record<Task, number>> = {};

  beforeAll(async () => {
    tmp = tempDir('p5rec-baselines-');
    await buildDataset(syntheticRaw(), { out: join(tmp, 'ds'), name: 'synthetic-clusters', negatives: 99 });
    ds = await loadDataset(join(tmp, 'ds'));
    const popR = await popularity.fit(ds, {}, 'rating', ctx());
    popMetric.rating = (await evaluate(ds, popR, 'rating', { quiet: true })).metrics.RMSE;
    const popS = await popularity.fit(ds, {}, 'sequential', ctx());
    popMetric.direct = (await evaluate(ds, popS, 'direct', { quiet: true })).metrics['HR@10'];
  });

  for (const s of SPECS) {
    describe(s.kind, () => {
      it(`fits and beats popularity on the ${s.task} task`, async () => {
        const rec = await fitSpec(ds, s);
        const r = await evaluate(ds, rec, s.task, { quiet: true });
        if (s.task === 'rating') expect(r.metrics.RMSE, `RMSE vs global mean ${popMetric.rating}`).toBeLessThan(popMetric.rating! - 0.1);
        else expect(r.metrics['HR@10'], `HR@10 vs pop ${popMetric.direct}`).toBeGreaterThan(popMetric.direct! + 0.05);
        const f = getFactory(s.kind) as RecommenderFactory;
        expect(rec.trainSplit).toBe(f.defaultSplit);
      });

      it('save → load gives identical scores and ratings', async () => {
        const rec = await fitSpec(ds, s, { epochs: 2 });
        const dir = join(tmp, `saved-${s.kind}`);
        saveModel(dir, rec, ds, { seconds: 0, peakRssMB: 0, seed: 11 });
        const { rec: back, card } = loadModel(dir, ds);
        expect(card.kind).toBe(s.kind);
        expect(back.trainSplit).toBe(rec.trainSplit);
        for (const u of [0, 7, 101]) {
          const h = ds.historyBefore(u, 2);
          expect(Array.from(await back.score(u, h))).toEqual(Array.from(await rec.score(u, h)));
          const cands = Int32Array.from([3, 50, 99, 140]);
          const sc = await rec.score(u, h, cands);
          expect(sc).toBeInstanceOf(Float32Array);
          expect(Array.from(await back.score(u, h, cands))).toEqual(Array.from(sc));
          if (rec.predictRating) expect(await back.predictRating!(u, 5)).toBe(await rec.predictRating(u, 5));
        }
      });

      it('resume after an interrupted fit (2 epochs, then on to 4) equals an uninterrupted 4-epoch fit', async () => {
        const whole = await fitSpec(ds, s, { epochs: 4 });
        const dir = join(tmp, `ckpt-${s.kind}`);
        await fitSpec(ds, s, { epochs: 2 }, { checkpointDir: dir });
        expect(existsSync(join(dir, 'checkpoint.json'))).toBe(true);
        const resumed = await fitSpec(ds, s, { epochs: 4 }, { checkpointDir: dir, resume: true });
        sameTensors(whole, resumed);
        const hist = (r: Recommender): unknown => (r.state().extra as { training: { history: { loss: number }[] } }).training.history.map((h) => h.loss);
        expect(hist(resumed)).toEqual(hist(whole));
        // Other hyper-parameters cannot change under --resume.
        await expect(fitSpec(ds, s, { epochs: 5, lr: 0.123 }, { checkpointDir: dir, resume: true })).rejects.toThrow(/different set of hyper-parameters/);
      });
    });
  }

  it('a rating-split model cannot be evaluated on the direct or sequential task; ranking models refuse the rating split', async () => {
    const rec = await fitSpec(ds, SPECS[0], { epochs: 1 });
    expect(rec.trainSplit).toBe('rating');
    await expect(evaluate(ds, rec, 'direct', { quiet: true })).rejects.toThrow(/trained on the rating split/);
    await expect(evaluate(ds, rec, 'sequential', { quiet: true })).rejects.toThrow(/trained on the rating split/);
    for (const kind of ['bpr-mf', 'bpr-mlp', 'simplex']) {
      const f = getFactory(kind);
      await expect(f.fit(ds, f.defaults, 'rating' as TrainSplit, ctx())).rejects.toThrow(/sequential split/);
    }
  });

  it('MF on the sequential split ranks (direct task) and still predicts ratings', async () => {
    const f = getFactory('mf');
    const rec = await f.fit(ds, { ...f.defaults, dim: 8, epochs: 5 }, 'sequential', ctx());
    const r = await evaluate(ds, rec, 'direct', { quiet: true });
    expect(r.metrics['HR@10']).toBeGreaterThan(0);
    await expect(evaluate(ds, rec, 'rating', { quiet: true })).rejects.toThrow(/sequential split/);
  });

  it('rejects bad hyper-parameters with one clear message', async () => {
    await expect(fitSpec(ds, SPECS[0], { dim: 0 })).rejects.toThrow(/dim must be an integer/);
    await expect(fitSpec(ds, SPECS[1], { layers: '16,x' })).rejects.toThrow(/layers must be comma-separated/);
    await expect(fitSpec(ds, SPECS[4], { margin: 2 })).rejects.toThrow(/margin must be a number in/);
  });

  it.skipIf(!existsSync(join(ROOT, 'dist/baselines/mf.js')))('CLI: fit --epochs 2, --resume to 3, then eval --json', () => {
    const out = join(tmp, 'cli-mf');
    const dsDir = join(tmp, 'ds');
    const fit = cli(['fit', dsDir, '--model', 'mf', '--out', out, '--json', '--quiet', '--dim', '8', '--epochs', '2']);
    expect(fit.status, fit.stderr).toBe(0);
    expect(fit.json).toMatchObject({ ok: true, kind: 'mf', trainSplit: 'rating', config: { dim: 8, epochs: 2 } });
    const res = cli(['fit', dsDir, '--model', 'mf', '--out', out, '--resume', '--dim', '8', '--epochs', '3']);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/resuming after epoch 2/);
    expect(res.stderr).toMatch(/epoch 3\/3 \| loss [\d.]+ \| valid RMSE/);
    const ev = cli(['eval', dsDir, '--model', out, '--task', 'rating', '--json', '--quiet']);
    expect(ev.status, ev.stderr).toBe(0);
    expect((ev.json as { metrics: { RMSE: number } }).metrics.RMSE).toBeGreaterThan(0);
    const bad = cli(['eval', dsDir, '--model', out, '--task', 'direct']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/refit it on the sequential split/);
  });
});

describe('hand-written gradients match finite differences', () => {
  /** Max |analytic − numeric| over every weight of `params`, for a loss f() that leaves gradients untouched. */
  function worstError(params: Param[], analytic: Float32Array[], f: () => number, eps = 1e-3): number {
    let worst = 0;
    params.forEach((p, pi) => {
      for (let k = 0; k < p.w.length; k++) {
        const w0 = p.w[k];
        p.w[k] = w0 + eps;
        const a = f();
        p.w[k] = w0 - eps;
        const b = f();
        p.w[k] = w0;
        worst = Math.max(worst, Math.abs((a - b) / (2 * eps) - analytic[pi][k]));
      }
    });
    return worst;
  }

  it('ReLU tower: weights, biases and input; the split-first-layer scorer agrees with forward', () => {
    const rng = new Rng(3);
    const t = new Tower('t', [6, 5, 4, 1]);
    t.init(rng);
    for (const b of t.b) for (let k = 0; k < b.w.length; k++) b.w[k] = 0.1 * rng.normal();
    const acts = t.buffers(), tmp = t.buffers();
    const x = Float32Array.from({ length: 6 }, () => rng.normal());
    acts[0].set(x);
    t.forward(acts);
    const dx = t.backward(acts, 1, tmp, 0).slice();
    const f = (): number => {
      acts[0].set(x);
      return t.forward(acts);
    };
    expect(worstError(t.params, t.params.map((p) => p.g.slice()), f)).toBeLessThan(2e-3);
    const xp = new Param('x', x, 6);
    expect(worstError([xp], [dx], f)).toBeLessThan(2e-3);
    // PairScorer: [p_u ; q_i] = x split in halves of 3.
    const sc = new PairScorer(t, x.slice(0, 3), Float32Array.from([...x.slice(3), 1, 2, 3]), 3);
    expect(sc.score(0, Int32Array.of(0))[0]).toBeCloseTo(f(), 5);
  });

  it('SimpleX CCL batch: user, item and V gradients through cosine, history mean and shared negatives', () => {
    const rng = new Rng(5);
    const U = 3, I = 10, d = 4;
    for (const excludeTarget of [true, false]) {
      const c = { ...SIMPLEX_DEFAULTS, dim: d, batchSize: 3, negatives: 6, margin: -0.3, negWeight: 3, gamma: 0.4, reg: 0, excludeTarget };
      const rows = { user: Int32Array.of(0, 0, 0, 1, 1, 2), item: Int32Array.of(1, 2, 3, 2, 4, 5), rating: new Float32Array(6), length: 6 };
      const mk = (name: string, n: number, cols: number, lazy: boolean): Param => new Param(name, Float32Array.from({ length: n }, () => 0.5 * rng.normal()), cols, lazy);
      const P = mk('P', U * d, d, true), Q = mk('Q', I * d, d, true), V = mk('V', d * d, d, false);
      const batch = new CclBatch(c, P, Q, V, new UserItems(rows, U), I);
      const users = Int32Array.of(0, 1, 2), items = Int32Array.of(2, 4, 5), neg = Int32Array.of(1, 3, 6, 7, 2, 9);
      const clear = (): void => {
        for (const p of [P, Q, V]) {
          p.g.fill(0);
          p.takeRows();
        }
      };
      const f = (): number => {
        const l = batch.run(users, items, 3, neg) / 3;
        clear();
        return l;
      };
      batch.run(users, items, 3, neg);
      const analytic = [P, Q, V].map((p) => p.g.slice());
      clear();
      expect(worstError([P, Q, V], analytic, f)).toBeLessThan(1e-3);
    }
  });
});
