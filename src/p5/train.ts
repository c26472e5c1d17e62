/**
 * `p5rec train`: P5 end to end on a dataset folder — a tokenizer trained on
 * the dataset's prompts (or T5's own with --init), several epochs of prompt
 * instances tokenized into a packed, length-bucketed corpus, the engine's
 * training loop (AdamW, warmup, clipping, checkpoints, resume, workers), and
 * a model folder that is at once a HF T5 folder (config.json,
 * model.safetensors, tokenizer.json) and a p5rec model (model.json).
 *
 *   out/                 config.json  model.safetensors  tokenizer.json  model.json  p5.json  recipe.json (./config.ts)
 *   out/train/           tokenizer.json  checkpoint/  train-log.jsonl  (resume state)
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { InputError } from '../errors.js';
import { resolveT5Config, type T5Config } from '../models/t5/config.js';
import { loadT5, saveT5 } from '../models/t5/checkpoint.js';
import { T5Model } from '../models/t5/model.js';
import { tf } from '../engine/backend.js';
import { trainingInstances } from '../prompts/training-instances.js';
import { buildIdView, checkIdView, idTokens, plainIds, type IdView, type ItemIndexing } from '../prompts/ids.js';
import type { PromptCollection, PromptTask } from '../prompts/templates.js';
import { evaluate } from '../eval/evaluate.js';
import { datasetFingerprint, MODEL_FORMAT, type ModelCard } from '../recommend/card.js';
import { T5Tokenizer } from '../tokenizer/tokenizer.js';
import { train, type StepRecord, type ValidationOptions } from '../train/trainer.js';
import { findCheckpoint, readTrainerState } from '../train/checkpoint.js';
import { InterruptedError, stopSignalOf, throwIfStopped } from '../train/stop.js';
import type { ParamLayout } from '../train/replica.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VERSION } from '../version.js';
import { buildCorpus } from './corpus.js';
import { itemInitVectors, type ItemInit } from './item-init.js';
import { fitRatingCalibration } from './calibrate.js';
import { DEFAULT_P5_SETTINGS, P5Recommender, type P5Settings, type RatingCalibration } from './recommender.js';
import { P5_TASK_MODULE, p5Task } from './task.js';
import { recipeJson, RECIPE_FILE, resolveP5Options, type P5RecipeOptions, type ResolvedP5Config } from './config.js';

/** trainP5's options: the recipe (./config.ts: defaults, checks) and where and how to run it. */
export interface P5TrainOptions extends P5RecipeOptions {
  out: string;
  resume?: boolean;
  /** Replace the model in `out` (built beside it, swapped in when complete). */
  force?: boolean;
  quiet?: boolean;
  log?: (msg: string) => void;
  signal?: AbortSignal;
  onStep?: (r: StepRecord) => void;
}

export interface P5TrainResult {
  out: string;
  steps: number;
  stopped: boolean;
  seconds: number;
  peakRssMB: number;
  parameters: number;
  vocab: number;
  examples: number;
  batches: number;
  perTask: Partial<Record<PromptTask, number>>;
  skippedTemplates: { id: string; reason: string }[];
  finalLoss: number;
  tokensPerSec: number;
  /** Training examples per second of step time. */
  examplesPerSec: number;
  /** Validation while training: the best step and its values, and whether patience ended the run. */
  validation?: { best: { step: number; values: Record<string, number> } | null; earlyStopped: boolean; count: number };
  /** Fitted on the validation ratings (integer-star models). */
  ratingCalibration?: Record<string, RatingCalibration>;
}

/** Prompt text to train the tokenizer on: one epoch's sources and targets (capped), plus every item and user token. */
function tokenizerCorpus(ds: Dataset, collection: PromptCollection, d: ResolvedP5Config['data'], ids: IdView, cap = 40000): string[] {
  const lines: string[] = [];
  const stream = trainingInstances(ds, collection, { tasks: opt(d.tasks), seed: d.seed, negatives: Math.min(d.negatives, 19), leakFree: d.leakFree, ids, only: opt(d.prompts) });
  for (const inst of stream) {
    lines.push(inst.source, inst.target);
    if (lines.length >= cap) break;
  }
  if (ids.indexing === 'plain') for (let j = 0; j < ds.numItems; j++) lines.push(ds.items.token[j]);
  return lines;
}

export const IDS_FILE = 'ids.json';

/** The id view a model folder was trained with (P5's plain text when it has no ids.json). */
export function readIdView(dir: string, ds: Dataset): IdView {
  const path = join(dir, IDS_FILE);
  if (!existsSync(path)) return plainIds(ds);
  let j: { indexing: ItemIndexing; items: string[] };
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(`malformed JSON (${(e as Error).message})`, { file: path });
  }
  const view: IdView = { indexing: j.indexing, items: j.items, users: Array.from(ds.users.token, (t) => `user_${t}`) };
  checkIdView(view, ds, path);
  return view;
}

/** Every word of the templates' fixed text, as a word-initial piece (`▁purchase`). */
function templateWords(collection: PromptCollection): string[] {
  const words = new Set<string>();
  for (const t of collection.templates) {
    for (const w of t.source.replace(/\{[^{}]*\}/g, ' ').split(/\s+/)) if (/^\p{L}+$/u.test(w)) words.add(`\u2581${w}`);
  }
  return [...words];
}

/**
 * Overwrite each item's own token row of the (tied) embedding table with its
 * co-occurrence vector, scaled to the table's mean row norm so the T5's
 * initial activations keep their size.
 */
async function initItemRows(model: T5Model, ds: Dataset, view: IdView, rowsOf: readonly number[], seed: number, how: Exclude<ItemInit, 'random'>, dims: number | null, window: number): Promise<void> {
  if (view.indexing !== 'independent' && view.indexing !== 'cid+iid') throw new InputError(`itemInit '${how}' needs one token per item (itemIds 'independent' or 'cid+iid'), got '${view.indexing}'`, { field: 'itemInit' });
  const table = model.params.get('shared.weight');
  if (!table) throw new InputError('the model has no shared.weight embedding table', { field: 'itemInit' });
  const [V, d] = table.shape as [number, number];
  const w = Float32Array.from(await table.data());
  if (dims !== null && dims > d) throw new InputError(`itemInitDims ${dims} is more than the model's ${d} dimensions`, { field: 'itemInitDims' });
  const e = itemInitVectors(ds, how, d, { dims: dims ?? d, seed, window });
  let tableNorm = 0;
  for (let r = 0; r < V; r++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += w[r * d + k] ** 2;
    tableNorm += Math.sqrt(s) / V;
  }
  let itemNorm = 0;
  for (let j = 0; j < ds.numItems; j++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += e[j * d + k] ** 2;
    itemNorm += Math.sqrt(s) / ds.numItems;
  }
  const scale = itemNorm > 0 ? tableNorm / itemNorm : 0;
  rowsOf.forEach((row, j) => {
    for (let k = 0; k < d; k++) w[row * d + k] = e[j * d + k] * scale;
  });
  table.assign(tf().tensor(w, [V, d]));
}

/** Each item's own token (the last of its id: the independent token in cid+iid) as an embedding row. */
function itemRows(view: IdView, tok: T5Tokenizer, ds: Dataset): number[] {
  return view.items.map((text, j) => {
    const row = tok.pieceToId(text.split(' ').at(-1)!);
    if (row === null || row === undefined) throw new InputError(`item ${ds.items.token[j]}: its id token is not in the tokenizer`, { field: 'itemIds' });
    return row;
  });
}

/** Copy a flat parameter buffer into the model's variables (data-parallel runs keep them in workers). */
function assignParams(model: T5Model, params: Float32Array, layout: ParamLayout): void {
  for (const e of layout.entries) model.params.get(e.name)!.assign(tf().tensor(params.slice(e.offset, e.offset + e.size), e.shape));
}

/** Where a forced run (`force`) is built beside the model it replaces (resumable there; renamed into place when done). */
export function stagingDir(out: string): string {
  return join(dirname(resolve(out)), `.${basename(resolve(out))}.next`);
}

/** `step N of M` of the checkpoint in a run's train/ folder, or null when it has none. */
function partialRun(runDir: string): string | null {
  const ck = findCheckpoint(join(runDir, 'train'));
  if (!ck) return null;
  try {
    const st = readTrainerState(ck);
    return `step ${st.step} of ${st.fingerprint.totalSteps}`;
  } catch {
    return 'an unreadable checkpoint';
  }
}

/**
 * Where this run trains, decided before anything is written: in place (a
 * new or empty folder, or one with a run that never reached a checkpoint),
 * in the staging folder (`force` over a model or a partial run: the old
 * one stays whole until the new one is complete), or where the run to resume is.
 */
function planRun(o: P5TrainOptions): { runDir: string; staged: boolean; createdOut: boolean } {
  const out = o.out;
  const stage = stagingDir(out);
  if (o.resume) {
    const runDir = findCheckpoint(join(stage, 'train')) ? stage : out;
    if (!existsSync(join(runDir, 'train', 'tokenizer.json'))) throw new InputError('nothing to resume: no train/tokenizer.json in the model folder', { file: out });
    return { runDir, staged: runDir === stage, createdOut: false };
  }
  const entries = existsSync(out) ? readdirSync(out) : [];
  const hasModel = entries.includes('model.json');
  const partial = partialRun(out);
  const foreign = entries.length > 0 && !hasModel && !entries.includes('train');
  if (foreign) throw new InputError(`the folder holds files that are not a p5rec model (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); ${o.force ? 'refusing to replace it' : 'choose another out folder'}`, { file: out });
  if (!o.force) {
    const staged = partialRun(stage);
    if (hasModel) throw new InputError(`model folder already holds a model (set force to replace it, resume to continue${staged ? ` the partial forced run in ${stage} (${staged})` : ' its run'})`, { file: out });
    if (partial) throw new InputError(`a partial run exists at ${join(out, 'train')} (${partial}); set resume to continue it or force to start over`, { file: out });
  }
  if (hasModel || partial) return { runDir: stage, staged: true, createdOut: false };
  return { runDir: out, staged: false, createdOut: !existsSync(out) };
}

export async function trainP5(ds: Dataset, collection: PromptCollection, o: P5TrainOptions): Promise<P5TrainResult> {
  // Every option is resolved and checked once, before anything is read or written.
  const cfg = resolveP5Options(o);
  // The init folder is read once, before anything is written: its weights, config and tokenizer.
  const { init: initDir, dropout } = cfg.model;
  const init = initDir ? loadT5(initDir, { tokenizer: true, seed: cfg.loop.seed, overrides: dropout !== null ? { dropout_rate: dropout } : undefined }) : null;
  if (init && !init.tokenizer) throw new InputError('the init folder has no tokenizer.json', { file: initDir!, field: 'init' });
  const plan = planRun(o);
  throwIfStopped(o.signal, 'before training started; nothing was written');
  // force starts over: an earlier forced run left in the staging folder is p5rec's own, and is replaced.
  if (plan.staged && !o.resume) rmSync(plan.runDir, { recursive: true, force: true });
  try {
    return await trainIn(plan.runDir, ds, collection, o, cfg, init, plan.staged);
  } catch (err) {
    init?.model.dispose();
    const kept = partialRun(plan.runDir);
    if (!kept) {
      // Nothing resumable was reached: remove what this run wrote, so a rerun starts clean.
      if (plan.staged || plan.createdOut) rmSync(plan.runDir, { recursive: true, force: true });
      else if (!o.resume) for (const f of ['train', IDS_FILE]) rmSync(join(plan.runDir, f), { recursive: true, force: true });
    }
    if (err instanceof InterruptedError) {
      const untouched = plan.staged ? `; the model in ${o.out} is untouched` : '';
      const msg = kept
        ? `${err.message}; checkpoint saved in ${join(plan.runDir, 'train', 'checkpoint')}${err.message.includes(' at step ') ? '' : ` (${kept})`}: run it again with resume set to continue (or force to start over)${untouched}`
        : `${err.message}; nothing was kept${plan.staged ? untouched : ''}`;
      throw new InterruptedError(msg, err.signal, { file: o.out });
    }
    throw err;
  }
}

async function trainIn(runDir: string, ds: Dataset, collection: PromptCollection, o: P5TrainOptions, cfg: ResolvedP5Config, init: ReturnType<typeof loadT5> | null, staged: boolean): Promise<P5TrainResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const { model: m, optimizer: optim, data: d, loop } = cfg;
  const seed = loop.seed;
  const workDir = join(runDir, 'train');
  mkdirSync(workDir, { recursive: true });
  // The id view: stored with the model, so a resumed run and every evaluation write ids the same way.
  const view = o.resume ? readIdView(runDir, ds) : buildIdView(ds, m.itemIds, d.seed);
  throwIfStopped(o.signal, 'while building the item ids');
  // Tokenizer: kept from the first run on resume, T5's own with --init, else trained on the prompts.
  let tok: T5Tokenizer;
  if (o.resume) tok = T5Tokenizer.load(join(workDir, 'tokenizer.json'));
  else if (init) tok = init.tokenizer!;
  else {
    const t = Date.now();
    const plain = view.indexing === 'plain';
    const ids = plain ? [...(m.itemPieces ? ds.items.token : []), ...(m.userPieces ? ds.users.token : [])] : [];
    let required = ids.length ? [...new Set(ids)].flatMap((x) => [x, `\u2581${x}`]) : undefined;
    // With id tokens, the prompts' own words are whole pieces too: the Unigram trainer, fed
    // prompts where ids are most of the text, otherwise spells template words letter by letter.
    if (!plain) required = templateWords(collection);
    const text = tokenizerCorpus(ds, collection, d, view);
    throwIfStopped(o.signal, 'while collecting the tokenizer text');
    // In a child process: the native training blocks its thread for seconds to minutes, and Ctrl-C must still work.
    tok = await T5Tokenizer.trainStoppable(text, {
      vocabSize: opt(m.vocabSize), digitGroup: m.digitGroup, requiredPieces: required, idTokens: plain ? undefined : idTokens(view, m.userPieces),
    }, o.signal).catch((e: unknown) => {
      throwIfStopped(o.signal, 'while training the tokenizer');
      throw e;
    });
    log(`tokenizer: ${tok.vocabSize} pieces (${tok.idTokenCount} id tokens) trained on the prompts in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  }
  if (!o.resume) {
    tok.save(join(workDir, 'tokenizer.json'));
    if (view.indexing !== 'plain') writeFileAtomic(join(runDir, IDS_FILE), JSON.stringify({ format: 'p5rec-ids', version: 1, indexing: view.indexing, items: view.items }));
  }

  const epochs = loop.epochs;
  const corpus = await buildCorpus(ds, collection, tok, {
    epochs, seed: d.seed, tasks: opt(d.tasks), weights: opt(d.weights), negatives: d.negatives, maxHistory: d.maxHistory, leakFree: d.leakFree, ratingNoise: d.ratingNoise, ids: view, only: opt(d.prompts),
    tokensPerBatch: d.tokensPerBatch, maxBatch: d.maxBatch, maxSourceLength: d.maxSourceLength, quiet: o.quiet, signal: o.signal,
    bareIdAnswers: view.indexing !== 'plain',
  });
  if (corpus.examples === 0) throw new InputError('no training prompts: none of the selected tasks can be filled from this dataset', { file: ds.dir });
  for (const s of corpus.skipped) log(`skipping template ${s.id}: ${s.reason}`);
  log(`corpus: ${corpus.examples.toLocaleString('en-US')} prompts over ${epochs} epochs (${Object.entries(corpus.perTask).map(([k, v]) => `${k} ${v}`).join(', ')}), ${corpus.sourceTokens.toLocaleString('en-US')} source + ${corpus.targetTokens.toLocaleString('en-US')} target tokens, ${corpus.batches} batches`);

  const config: T5Config = init
    ? init.config
    : typeof m.config === 'object'
      ? resolveT5Config({ preset: 'small', ...m.config, vocab_size: tok.vocabSize })
      : resolveT5Config({ ...resolveT5Config(m.config), vocab_size: tok.vocabSize });
  if (m.dropout !== null) config.dropout_rate = m.dropout;
  if (config.vocab_size < tok.vocabSize) throw new InputError(`the model's vocab_size ${config.vocab_size} is smaller than the tokenizer's ${tok.vocabSize}`, { field: 'config' });
  const trainSplit = d.leakFree ? 'both' : 'rating';
  const trained = collection.templates.filter((t) => corpus.templates.includes(t.id));
  const settings: P5Settings = {
    ...DEFAULT_P5_SETTINGS,
    prompts: defaultPrompts(trained),
    maxHistory: d.maxHistory,
    ratingMode: d.ratingNoise ? 'greedy' : 'expected',
    trainedPlaceholders: [...new Set(trained.flatMap((t) => t.placeholders))],
    // With id tokens an item answer is one token; its `</s>` is neither trained nor scored.
    answerEos: view.indexing === 'plain',
  };
  const p5json = {
    format: 'p5rec-p5', version: 1, settings, tasks: d.tasks, leakFree: d.leakFree, itemPieces: m.itemPieces, userPieces: m.userPieces,
    itemIds: view.indexing, itemInit: m.itemInit, trainedTemplates: corpus.templates, digitGroup: m.digitGroup, ratingNoise: d.ratingNoise,
  };

  // The items' own embedding rows, for the co-occurrence init and their own learning rate.
  const itemRowIds = (m.itemInit !== 'random' && !o.resume) || optim.itemLrScale !== null ? itemRows(view, tok, ds) : [];
  const workers = loop.workers;
  const common = {
    batchSize: loop.batchesPerStep,
    microBatchSize: 1,
    ...(loop.steps ? { steps: loop.steps } : { epochs: 1 }),
    lr: optim.lr,
    // 0 too is the base rate, as before the recipe was resolved in one place.
    ...(optim.embeddingLrScale && optim.embeddingLrScale !== 1 ? { lrScale: (name: string) => (name === 'shared.weight' ? optim.embeddingLrScale : 1) } : {}),
    ...(optim.itemLrScale !== null ? { rowLrScales: [{ name: 'shared.weight', rows: itemRowIds, scale: optim.itemLrScale }] } : {}),
    ...(optim.emaDecay !== null ? { emaDecay: optim.emaDecay } : {}),
    warmupRatio: optim.warmupRatio,
    eps: optim.adamEps,
    weightDecay: optim.weightDecay,
    clipNorm: optim.clipNorm,
    seed,
    outDir: workDir,
    checkpointEvery: loop.checkpointEvery,
    resume: o.resume,
    quiet: o.quiet,
    signal: o.signal,
    onStep: o.onStep,
  };
  const model = init ? init.model : T5Model.create(config, { seed });
  if (m.itemInit !== 'random' && !o.resume) {
    const t = Date.now();
    await initItemRows(model, ds, view, itemRowIds, seed, m.itemInit, m.itemInitDims, m.itemInitWindow);
    log(`item rows: ${m.itemInit === 'cooccurrence' ? 'co-occurrence' : 'co-occurrence and popularity'} init (${m.itemInitDims ?? config.d_model} of ${config.d_model} dims, window ${m.itemInitWindow}) in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  }
  // Validation while training: the best parameters are kept (in memory, and in train/best for a resume).
  const bestDir = join(workDir, 'best');
  let bestParams: Float32Array | null = null;
  let bestLayout: ParamLayout | null = null;
  const vopts = loop.validate;
  const validate: ValidationOptions | undefined = vopts ? {
    every: vopts.every,
    patience: vopts.patience,
    run: async (_step, params, layout) => {
      if (workers > 1) assignParams(model, params, layout);
      const rec = new P5Recommender(ds, model, tok, collection, trainSplit, { ...settings }, view);
      const r = await evaluate(ds, rec, 'sequential', { split: 'valid', maxUsers: vopts.users, quiet: true });
      const se = r.stderr ?? {};
      return { metric: r.metrics['NDCG@10'], values: { users: r.count, 'HR@10': r.metrics['HR@10'], 'NDCG@10': r.metrics['NDCG@10'], 'HR@10 se': se['HR@10'], 'NDCG@10 se': se['NDCG@10'] } };
    },
    onBest: (_step, params, layout) => {
      bestParams = Float32Array.from(params);
      bestLayout = layout;
      if (workers > 1) assignParams(model, params, layout);
      const tmp = `${bestDir}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      saveT5(tmp, model);
      rmSync(bestDir, { recursive: true, force: true });
      renameSync(tmp, bestDir);
    },
  } : undefined;
  let result;
  if (workers > 1) {
    result = await train({
      ...common, workers, validate,
      taskModule: { module: P5_TASK_MODULE, options: { corpus, tokenizerJson: tok.toJSON(), config: m.init ? undefined : config, init: opt(m.init), seed } },
    });
    // Final parameters come back flat, in layout order.
    assignParams(model, result.params, result.layout);
  } else {
    result = await train({ ...common, validate, task: p5Task(model, corpus, tok) });
  }
  // The kept model is the best validated one (on a resume, the one saved in train/best).
  const best = result.best;
  if (best && best.step !== result.step && !result.stopped) {
    if (bestParams && bestLayout) assignParams(model, bestParams, bestLayout);
    else if (existsSync(bestDir)) {
      const saved = loadT5(bestDir).model;
      for (const [name, v] of saved.params) model.params.get(name)!.assign(v);
      saved.dispose();
    }
    log(`keeping the best validated model: step ${best.step} of ${result.step} (NDCG@10 ${best.metric.toFixed(4)})`);
  }
  const seconds = (Date.now() - t0) / 1000;
  const peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
  const last = result.records.at(-1);
  const tokens = result.records.reduce((a, r) => a + r.tokens, 0);
  const trainMs = result.records.reduce((a, r) => a + r.stepMs, 0);
  const res: P5TrainResult = {
    out: o.out,
    steps: result.step,
    stopped: result.stopped,
    seconds,
    peakRssMB,
    parameters: model.parameterCount(),
    vocab: tok.vocabSize,
    examples: corpus.examples,
    batches: corpus.batches,
    perTask: corpus.perTask,
    skippedTemplates: corpus.skipped,
    finalLoss: last?.loss ?? NaN,
    tokensPerSec: trainMs ? tokens / (trainMs / 1000) : 0,
    // A step is one length-bucketed batch; batches of one corpus hold examples / batches prompts on average.
    examplesPerSec: trainMs ? (result.records.length * common.batchSize * (corpus.examples / corpus.batches)) / (trainMs / 1000) : 0,
    ...(validate ? { validation: { best: best ? { step: best.step, values: best.values } : null, earlyStopped: Boolean(result.earlyStopped), count: result.validations?.length ?? 0 } } : {}),
  };
  if (result.stopped) {
    model.dispose();
    throw new InterruptedError(`interrupted by ${stopSignalOf(o.signal!)} at step ${result.step} of ${result.totalSteps}`, stopSignalOf(o.signal!));
  }
  {
    // The final files: written beside, then renamed in, so a crash leaves the old ones or none.
    const tmp = join(runDir, `.final-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    saveT5(tmp, model, { tokenizer: tok });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) renameSync(join(tmp, f), join(runDir, f));
    rmSync(tmp, { recursive: true, force: true });
    // Integer-star models predict the expected star; fit its calibration on the validation ratings.
    if (loop.calibrateRatings && !d.ratingNoise && (d.tasks ?? ['rating']).includes('rating') && ds.manifest.fields.rating) {
      const rec = new P5Recommender(ds, model, tok, collection, trainSplit, settings, view);
      const ids = collection.templates.filter((t) => t.task === 'rating').map((t) => t.id);
      const cal = await fitRatingCalibration(rec, ds, ids);
      if (Object.keys(cal).length) {
        settings.ratingCalibration = cal;
        settings.ratingMode = 'calibrated';
        res.ratingCalibration = cal;
        const c = cal[settings.prompts.rating];
        if (c) log(`rating calibration (${settings.prompts.rating}, ${c.n} validation ratings): star = ${c.a.toFixed(3)} + ${c.b.toFixed(3)} × expected`);
      }
    }
    writeFileAtomic(join(runDir, 'p5.json'), `${JSON.stringify(p5json, null, 2)}\n`);
    writeFileAtomic(join(runDir, RECIPE_FILE), `${JSON.stringify(recipeJson(cfg), null, 2)}\n`);
    const card: ModelCard = {
      format: MODEL_FORMAT,
      kind: 'p5',
      trainSplit,
      config: { t5: config, ...p5json, training: { epochs, batchesPerStep: loop.batchesPerStep, tokensPerBatch: d.tokensPerBatch, lr: optim.lr, embeddingLrScale: optim.embeddingLrScale, ...(optim.itemLrScale !== null ? { itemLrScale: optim.itemLrScale } : {}), ...(optim.emaDecay !== null ? { emaDecay: optim.emaDecay } : {}), adamEps: optim.adamEps, negatives: d.negatives, weights: d.weights, init: m.init } },
      dataset: { name: ds.manifest.name, fingerprint: datasetFingerprint(ds), users: ds.numUsers, items: ds.numItems },
      fit: {
        seconds, peakRssMB, seed, steps: result.step, examples: corpus.examples, finalLoss: res.finalLoss, tokensPerSec: Math.round(res.tokensPerSec), examplesPerSec: Math.round(res.examplesPerSec),
        ...(res.validation ? { validation: res.validation } : {}),
      },
      createdBy: `p5rec ${VERSION}`,
    };
    writeFileAtomic(join(runDir, 'model.json'), `${JSON.stringify(card, null, 2)}\n`);
  }
  model.dispose();
  if (staged) {
    // force: the complete new model replaces the old one by renames; the old one is removed only then.
    const old = join(dirname(resolve(o.out)), `.${basename(resolve(o.out))}.old-${process.pid}`);
    renameSync(o.out, old);
    renameSync(runDir, o.out);
    rmSync(old, { recursive: true, force: true });
  }
  return res;
}

/** An optional option of the resolved config as a callee's optional argument. */
function opt<T>(v: T | null): T | undefined {
  return v === null ? undefined : v;
}

/**
 * Default prompts per task from what was trained: P5's (2-1, 5-1, 1-1) when
 * trained, else the first trained template that can answer the task (a
 * history prompt constrained to the candidates answers the direct task).
 */
function defaultPrompts(trained: readonly { id: string; task: PromptTask; target: string; placeholders: string[] }[]): P5Settings['prompts'] {
  const out = { ...DEFAULT_P5_SETTINGS.prompts };
  const has = (id: string): boolean => trained.some((t) => t.id === id);
  const generative = trained.filter((t) => (t.task === 'sequential' || t.task === 'direct') && t.target === 'item_id');
  if (trained.length && !has(out.sequential)) {
    const t = generative.find((x) => !x.placeholders.includes('candidates'));
    if (t) out.sequential = t.id;
  }
  if (trained.length && !has(out.direct)) {
    const t = trained.find((x) => x.task === 'direct') ?? generative[0];
    if (t) out.direct = t.id;
  }
  return out;
}

/** The p5.json of a model folder. */
export function readP5Json(dir: string): { settings: P5Settings; leakFree: boolean } {
  const path = join(dir, 'p5.json');
  if (!existsSync(path)) return { settings: { ...DEFAULT_P5_SETTINGS }, leakFree: true };
  try {
    const j = JSON.parse(readFileSync(path, 'utf8'));
    return { settings: { ...DEFAULT_P5_SETTINGS, ...(j.settings ?? {}) }, leakFree: j.leakFree !== false };
  } catch (e) {
    throw new InputError(`malformed JSON (${(e as Error).message})`, { file: path });
  }
}
