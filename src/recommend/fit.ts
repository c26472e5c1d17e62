/**
 * Fit any registered model as a library call: defaults, overrides, checks,
 * then the factory's own training loop; optionally saved as a model folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { DEFAULT_SEED } from '../data/build.js';
import { InputError } from '../errors.js';
import type { Recommender, TrainSplit } from './recommender.js';
import { getFactory } from './registry.js';
import { readModelCard, saveModel, type ModelCard } from './store.js';

export interface FitOptions {
  /** rating (random 0.8 split), sequential (leave-one-out) or both (P5); default: the model's own. */
  split?: TrainSplit;
  /** Hyper-parameters over the model's defaults (`getFactory(kind).defaults` lists them). */
  hyper?: Record<string, unknown>;
  seed?: number;
  /** Save the fitted model here (model.json + weights), readable by loadModel and the CLI. */
  out?: string;
  log?: (msg: string) => void;
  quiet?: boolean;
}

/**
 * The training-loop settings every fit checks before it starts: an epoch count
 * below 1 would save the untrained initial weights as a model. Returns the
 * first setting that is out of range and what it must be, or null.
 */
export function loopSettingProblem(config: Record<string, unknown>): { field: string; must: string; value: unknown } | null {
  if ('epochs' in config && !(Number.isInteger(config.epochs) && (config.epochs as number) >= 1)) return { field: 'epochs', must: 'an integer >= 1', value: config.epochs };
  if ('patience' in config && !(Number.isInteger(config.patience) && (config.patience as number) >= 0)) return { field: 'patience', must: 'an integer >= 0', value: config.patience };
  return null;
}

export async function fitModel(ds: Dataset, kind: string, opts: FitOptions = {}): Promise<{ rec: Recommender; card?: ModelCard; seconds: number }> {
  const factory = getFactory(kind);
  const unknown = Object.keys(opts.hyper ?? {}).filter((k) => !(k in factory.defaults));
  if (unknown.length) throw new InputError(`${kind}: unknown hyper-parameter(s) ${unknown.join(', ')} (known: ${Object.keys(factory.defaults).join(', ') || 'none'})`, { field: unknown[0] });
  const config = { ...factory.defaults, ...opts.hyper };
  const bad = loopSettingProblem(config);
  if (bad) throw new InputError(`${kind}: ${bad.field} must be ${bad.must}, got ${String(bad.value)}`, { field: bad.field });
  const split: TrainSplit = opts.split ?? factory.defaultSplit;
  const seed = opts.seed ?? DEFAULT_SEED;
  const t0 = Date.now();
  const ctx = { log: opts.log ?? (() => {}), quiet: opts.quiet ?? true, seed };
  if (factory.ownFolder) {
    // It writes its folder as it trains (a temporary one when none is asked for).
    const out = opts.out ?? mkdtempSync(join(tmpdir(), `p5rec-${kind}-`));
    try {
      const rec = await factory.fit(ds, config, split, { ...ctx, out });
      return { rec, card: opts.out ? readModelCard(out) : undefined, seconds: (Date.now() - t0) / 1000 };
    } finally {
      if (!opts.out) rmSync(out, { recursive: true, force: true });
    }
  }
  const rec = await factory.fit(ds, config, split, ctx);
  const seconds = (Date.now() - t0) / 1000;
  const card = opts.out ? saveModel(opts.out, rec, ds, { seconds, peakRssMB: Math.round(process.memoryUsage().rss / 2 ** 20), seed }) : undefined;
  return { rec, card, seconds };
}
