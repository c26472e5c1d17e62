/**
 * The Recommender seam's conformance suite, run over the registry (so a new
 * model kind is covered by adding it to FACTORIES): every factory fits on a
 * real slice (the bundled Musical Instruments reviews), saves, loads back to
 * the same scores, and evaluates every task it declares with finite metrics
 * and standard errors.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importDataset } from '../src/data/import.js';
import type { Dataset } from '../src/data/dataset.js';
import { evaluate } from '../src/eval/evaluate.js';
import { fitModel } from '../src/recommend/fit.js';
import { FACTORIES } from '../src/recommend/registry.js';
import { loadModel, readModelCard } from '../src/recommend/store.js';
import { cli, MI_REVIEWS, tempDir } from './helpers/cli.js';

/** Per kind, what keeps its fit to seconds: P5 is a tiny T5 trained a few steps on one task family pair. */
const FAST: Record<string, Record<string, unknown>> = {
  p5: { config: 'tiny', epochs: 1, steps: 3, tasks: 'sequential,rating', negatives: 4, maxSourceLength: 64, tokensPerBatch: 1024 },
};

let tmp: string;
let ds: Dataset;

beforeAll(async () => {
  tmp = tempDir('p5rec-conformance-');
  ({ dataset: ds } = await importDataset({ kind: 'amazon', reviews: MI_REVIEWS }, { out: join(tmp, 'mi') }));
}, 120_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.each(FACTORIES.map((f) => [f.kind, f] as const))('%s conforms to the Recommender seam', (kind, factory) => {
  it('declares itself completely', () => {
    expect(factory.description.length).toBeGreaterThan(10);
    expect(factory.tasks.length).toBeGreaterThan(0);
    expect(['rating', 'sequential', 'both']).toContain(factory.defaultSplit);
    for (const v of Object.values(factory.defaults)) expect(['number', 'string', 'boolean']).toContain(typeof v);
  });

  it('fits, saves, loads to identical scores, and evaluates every declared task', async () => {
    // One epoch: this checks the seam, not the model's quality (test/baselines.test.ts does that).
    const hyper = FAST[kind] ?? ('epochs' in factory.defaults ? { epochs: 1 } : {});
    const out = join(tmp, kind);
    const { rec, card } = await fitModel(ds, kind, { hyper, out, seed: 3 });
    expect(rec.kind).toBe(kind);
    expect(card).toMatchObject({ kind, trainSplit: factory.defaultSplit, dataset: { users: ds.numUsers, items: ds.numItems } });
    expect(readModelCard(out).kind).toBe(kind);
    const back = loadModel(out, ds).rec;
    const history = ds.historyBefore(0, 2);
    const a = await rec.score(0, history), b = await back.score(0, history);
    expect(a.length).toBe(ds.numItems);
    expect(Array.from(b)).toEqual(Array.from(a));
    if (rec.predictRating) expect(await back.predictRating!(0, 1)).toBe(await rec.predictRating(0, 1));
    for (const task of factory.tasks) {
      // A model is evaluated on the tasks of the split it was fitted on (P5 fits both).
      if (factory.defaultSplit !== 'both' && (task === 'rating') !== (factory.defaultSplit === 'rating')) continue;
      const r = await evaluate(ds, back, task, { maxUsers: 40, quiet: true });
      expect(r.count).toBeGreaterThan(0);
      for (const [k, v] of Object.entries(r.metrics)) {
        expect(Number.isFinite(v), `${task} ${k}`).toBe(true);
        expect(Number.isFinite(r.stderr?.[k]), `${task} ${k} se`).toBe(true);
      }
    }
  }, 120_000);

  it('lists every hyper-parameter with its default in `p5rec fit --help`', () => {
    const help = cli(['fit', '--help']).stdout;
    const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    for (const [k, v] of Object.entries(factory.defaults)) expect(help).toContain(`--${kebab(k)} ${String(v)}`);
    expect(help).toContain(`  ${kind} (${factory.defaultSplit} split;`);
  });

  it('has a schema for every hyper-parameter it declares, which its defaults satisfy and its fit enforces by field', async () => {
    if (!factory.schema) {
      // Only models without hyper-parameters, or with a resolver of their own (P5: resolveP5Options), go without one.
      expect(Object.keys(factory.defaults).length === 0 || factory.ownFolder).toBe(true);
      return;
    }
    expect(Object.keys(factory.schema).sort()).toEqual(Object.keys(factory.defaults).sort());
    for (const [name, spec] of Object.entries(factory.schema)) {
      const bad = spec.type === 'number' ? (spec.max !== undefined && spec.max < 1e6 ? spec.max + 1 : spec.min - 1) : spec.type === 'boolean' ? 'yes' : spec.oneOf ? 'none-of-them' : 7;
      const err = await fitModel(ds, kind, { hyper: { [name]: bad } }).then(() => null, (e: unknown) => e as { facts?: { field?: string }; message: string });
      expect(err, `${name}=${String(bad)} was accepted`).not.toBeNull();
      expect(err!.facts?.field, err!.message).toBe(name);
    }
  });

  it('refuses an unknown hyper-parameter and a zero epoch count by name', async () => {
    await expect(fitModel(ds, kind, { hyper: { nonsense: 1 } })).rejects.toThrow(/unknown hyper-parameter\(s\) nonsense/);
    if ('epochs' in factory.defaults) await expect(fitModel(ds, kind, { hyper: { epochs: 0 } })).rejects.toThrow(/epochs must be an integer >= 1/);
  });
});
