/**
 * P5 as a RecommenderFactory like the baselines: its hyper-parameters are the
 * scalar options of the recipe (./config.ts, with P5's defaults), fit is
 * trainP5 into the model folder, load is loadP5. `p5rec train` keeps the
 * options a flat flag list cannot carry (inline configs, validation, init).
 */
import type { ItemInit } from './item-init.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { engineBackend, initEngine } from '../engine/backend.js';
import { InputError } from '../errors.js';
import type { ItemIndexing } from '../prompts/ids.js';
import { loadPromptCollection, parseTaskList } from '../prompts/templates.js';
import type { FitContext, ModelState, Recommender, RecommenderFactory, TrainSplit } from '../recommend/recommender.js';
import { P5_DEFAULTS, type P5RecipeOptions } from './config.js';
import { loadP5 } from './load.js';
import { trainP5 } from './train.js';

const { model: M, optimizer: O, data: D, loop: L } = P5_DEFAULTS;

/** The flat hyper-parameters (`p5rec fit --model p5 --name value`); '' and 0 stand for "unset" where the recipe has null. */
export const P5_HYPER = {
  config: M.config as string,
  tasks: '',
  epochs: L.epochs,
  steps: 0,
  lr: O.lr,
  embeddingLrScale: O.embeddingLrScale,
  adamEps: O.adamEps,
  weightDecay: O.weightDecay,
  warmupRatio: O.warmupRatio,
  clipNorm: O.clipNorm,
  tokensPerBatch: D.tokensPerBatch,
  maxBatch: D.maxBatch,
  batchesPerStep: L.batchesPerStep,
  negatives: D.negatives,
  maxHistory: D.maxHistory,
  maxSourceLength: D.maxSourceLength,
  digitGroup: M.digitGroup,
  itemPieces: M.itemPieces,
  userPieces: M.userPieces,
  itemIds: M.itemIds as string,
  itemInit: M.itemInit as string,
  itemInitDims: 0,
  itemInitWindow: 0,
  ratingNoise: D.ratingNoise,
  calibrateRatings: L.calibrateRatings,
  workers: L.workers,
  checkpointEvery: L.checkpointEvery,
};
export type P5Hyper = typeof P5_HYPER;

/** The hyper-parameters as trainP5's recipe options; trainP5 checks them (by field), only the split is checked here. */
export function p5RecipeOf(h: P5Hyper, split: TrainSplit, seed: number): P5RecipeOptions {
  if (split === 'sequential') throw new InputError("P5 trains on both splits ('both': sequential prefixes, leak-free rating rows) or on 'rating' (P5's leaky rows); not on 'sequential' alone", { field: 'split' });
  let config: P5RecipeOptions['config'] = h.config;
  if (h.config.trim().startsWith('{')) {
    try {
      config = JSON.parse(h.config);
    } catch (e) {
      throw new InputError(`inline JSON does not parse (${(e as Error).message})`, { field: 'config' });
    }
  }
  const { tasks, steps, itemIds, itemInit, itemInitDims, itemInitWindow, ...rest } = h;
  return {
    ...rest,
    config,
    tasks: tasks.trim() ? parseTaskList(tasks) : undefined,
    steps: steps ? steps : undefined,
    // Checked, with every other option, by trainP5's resolveP5Options.
    itemIds: itemIds as ItemIndexing,
    itemInit: itemInit as ItemInit,
    itemInitDims: itemInitDims ? itemInitDims : null,
    itemInitWindow: itemInitWindow ? itemInitWindow : undefined,
    leakFree: split !== 'rating',
    seed,
  };
}

export const p5: RecommenderFactory<P5Hyper> = {
  kind: 'p5',
  description: 'P5: every task as prompts to one T5 (tokenizer, multitask corpus, AdamW); `p5rec train` has every option',
  tasks: ['rating', 'direct', 'sequential'],
  defaultSplit: 'both',
  defaults: P5_HYPER,
  ownFolder: true,
  engine: true,
  prompted: true,
  async fit(ds: Dataset, h: P5Hyper, split: TrainSplit, ctx: FitContext): Promise<Recommender> {
    const recipe = p5RecipeOf(h, split, ctx.seed);
    if (engineBackend() === null) await initEngine();
    // Without a folder to keep, train into a temporary one: the model is read back into memory.
    const out = ctx.out ?? mkdtempSync(join(tmpdir(), 'p5rec-p5-'));
    const collection = loadPromptCollection();
    try {
      await trainP5(ds, collection, { ...recipe, out, resume: ctx.resume, force: ctx.force, quiet: ctx.quiet, log: ctx.log });
      return loadP5(out, ds, { trainSplit: split === 'rating' ? 'rating' : 'both' }, collection);
    } finally {
      if (!ctx.out) rmSync(out, { recursive: true, force: true });
    }
  },
  load(ds: Dataset, state: ModelState, split: TrainSplit): Recommender {
    if (!state.dir) throw new InputError('a P5 model is read from its model folder (state.dir)', { field: 'dir' });
    return loadP5(state.dir, ds, { trainSplit: split });
  },
};
