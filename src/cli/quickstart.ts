/**
 * `p5rec quickstart`: the main job, offline, on the bundled Musical
 * Instruments reviews, then a part with product names on the bundled titled
 * Amazon Beauty slice. Every stage runs the same CLI command a user would
 * (`data import`, `fit`, `train`, `eval`, `llm eval`, `report`) in a child
 * process, so each fit's peak RSS is its own and the result files are exactly
 * what those commands write:
 *
 *   DIR/dataset/                 the imported dataset
 *   DIR/models/<name>/           baselines and P5 (model.json; evals/*.json)
 *   DIR/models/<name>.recipe.json  what the folder was fitted with (reuse key)
 *   DIR/runs/most-frequent/      the trivial text baseline, as eval runs
 *   DIR/beauty-slice/dataset/    the titled Beauty slice, imported
 *   DIR/beauty-slice/models/     pop, bpr-mf, sasrec on it (and recipes)
 *   DIR/beauty-slice/runs/       the embedded LLM smoke run (stories260K)
 *   DIR/report/                  report.md, report.json, report.html
 *
 * Re-running reuses every finished stage: the dataset, each model whose
 * recipe is unchanged (a changed recipe refits it), and each evaluation
 * already written. An interrupted P5 training resumes from its checkpoint.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { datasetStats } from '../data/stats.js';
import { auditLeak } from '../data/audit.js';
import { P5recError } from '../errors.js';
import { runEnv } from '../eval/run-env.js';
import { mostFrequentAnswer, textMetrics, textStandardErrors, type TextTask } from '../p5/evaluate-text.js';
import { evaluationInstances } from '../prompts/eval-instances.js';
import { loadPromptCollection } from '../prompts/templates.js';
import { isBeauty } from '../eval/published.js';
import { logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';
import { findCheckpoint } from '../train/checkpoint.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The dataset that ships inside the package, so the main job runs offline. */
export const BUNDLED_REVIEWS = resolve(HERE, '../../data/musical-instruments/reviews_Musical_Instruments_5.json.gz');
const BIN = resolve(HERE, '../../bin/p5rec.js');
/**
 * The titled Amazon Beauty slice that ships beside it (data/amazon-beauty-slice,
 * written by scripts/make-beauty-slice.mjs: 1,906 users, 891 items, 20,067
 * interactions, every item with a title and categories). Musical Instruments
 * has review text but no item metadata; the slice has names but no reviews or
 * ratings, so it serves the sequential and direct tasks, the demo page's
 * product names and the LLM recommender (which prompts with titles).
 */
export const BUNDLED_SLICE = resolve(HERE, '../../data/amazon-beauty-slice');
/** The tiny GGUF that ships with the package (data/models, MIT): it proves the embedded LLM path runs, it does not recommend. */
export const BUNDLED_GGUF = resolve(HERE, '../../data/models/stories260K.gguf');

/**
 * The P5 training recipe (one object): a tiny T5 (d 64, 2+2 layers) on all
 * five task families, tuned on Musical Instruments within the 15-minute
 * budget (see docs/p5.md):
 * - every item and every user id is one vocabulary piece, a row the model can
 *   learn (a user's rating bias is most of the rating signal);
 * - no dropout, 10× the learning rate on the embedding table and AdamW's
 *   epsilon at 1e-8. With dropout 0.1 and the base rate, the rare id rows
 *   barely moved, and the model learned the answer marginals but nothing per
 *   user or item; with P5's epsilon (1e-6) two CPU runs did not beat the
 *   global mean on ratings, two with 1e-8 did (why is not settled: the
 *   epsilon made no difference on the GPU trainer, docs/p5.md);
 * - 6 data epochs at a peak learning rate of 3e-3;
 * - integer star answers, so ratings are the expected star, calibrated on the
 *   validation ratings;
 * - the rating family at 4× weight and reviews at half weight;
 * - shorter candidate lists (9 sampled negatives) and prompts clipped to 96 tokens.
 */
export const QUICKSTART_P5 = {
  config: 'tiny',
  epochs: 6,
  negatives: 9,
  maxSourceLength: 96,
  tokensPerBatch: 8192,
  maxBatch: 128,
  lr: 3e-3,
  itemPieces: true,
  userPieces: true,
  dropout: 0,
  embeddingLrScale: 10,
  adamEps: 1e-8,
  ratingNoise: false,
  weights: 'review=0.5,rating=4',
} as const;

/**
 * How models are evaluated (test split). P5's beams for item generation;
 * every user and row (`directUsers` / `textRows` cap the direct task and the
 * text tasks where a smaller run needs it: undefined = all). The direct task
 * on all 1,429 users costs the tiny P5 about a minute (5-1 asks 100 yes/no
 * prompts per user), and 500 users left P5's margins over popularity within
 * a few hits.
 */
export const QUICKSTART_EVAL: { beams: number; directUsers?: number; textRows?: number } = { beams: 20 };

type Task = 'rating' | 'sequential' | 'direct' | 'explanation' | 'review';

interface Baseline {
  name: string;
  kind: string;
  split: 'rating' | 'sequential';
  tasks: Task[];
  /** Hyper-parameters (the model's defaults otherwise); --fast caps epochs. */
  hyper: Record<string, number | string | boolean>;
}

/**
 * The baselines, fitted with settings that suit Musical Instruments (900
 * items, 1.4K users): the models' defaults with early stopping on the
 * validation split, which on this dataset fit in about 40 s together.
 */
export const QUICKSTART_BASELINES: readonly Baseline[] = [
  { name: 'pop-rating', kind: 'pop', split: 'rating', tasks: ['rating'], hyper: {} },
  { name: 'mf', kind: 'mf', split: 'rating', tasks: ['rating'], hyper: {} },
  { name: 'mlp', kind: 'mlp', split: 'rating', tasks: ['rating'], hyper: {} },
  { name: 'pop', kind: 'pop', split: 'sequential', tasks: ['sequential', 'direct'], hyper: {} },
  { name: 'bpr-mf', kind: 'bpr-mf', split: 'sequential', tasks: ['sequential', 'direct'], hyper: {} },
  { name: 'bpr-mlp', kind: 'bpr-mlp', split: 'sequential', tasks: ['sequential', 'direct'], hyper: {} },
  { name: 'simplex', kind: 'simplex', split: 'sequential', tasks: ['sequential', 'direct'], hyper: {} },
  { name: 'sasrec', kind: 'sasrec', split: 'sequential', tasks: ['sequential', 'direct'], hyper: { epochs: 40 } },
];

/**
 * The models fitted on the titled Beauty slice (sequential split; evaluated on
 * sequential and direct): the trivial one, a collaborative one and a
 * sequential one, enough for the page to compare; SASRec at 20 epochs (the
 * slice is about twice Musical Instruments' interactions). --fast caps epochs.
 */
export const QUICKSTART_SLICE_BASELINES: readonly Baseline[] = [
  { name: 'pop', kind: 'pop', split: 'sequential', tasks: ['sequential', 'direct'], hyper: {} },
  { name: 'bpr-mf', kind: 'bpr-mf', split: 'sequential', tasks: ['sequential', 'direct'], hyper: {} },
  { name: 'sasrec', kind: 'sasrec', split: 'sequential', tasks: ['sequential', 'direct'], hyper: { epochs: 20 } },
];

/**
 * The LLM smoke row: `p5rec llm eval` with the bundled stories260K GGUF on the
 * direct task (1 held-out item among 100 titled candidates) for a few users.
 * A 260K-parameter model that writes children's stories: the row shows the
 * path runs end to end (prompt with titles, grammar-constrained answer,
 * refinement, metrics), not a recommender. Short titles and history keep the
 * 100-candidate prompt near 2,300 tokens, which is what costs time on a CPU.
 */
export const QUICKSTART_LLM = { task: 'direct', users: 5, fastUsers: 2, history: 5, titleMaxChars: 20, refineRetries: 1 } as const;
export const LLM_SMOKE_LABEL = 'LLM smoke: stories260K (260K toy model)';
/** What the smoke row's notes start with (after the usable share). */
const LLM_SMOKE_NOTE = 'the bundled 260K-parameter stories model: proves the embedded LLM path runs (titles in the prompt, grammar, refinement, metrics), not a recommender';

/**
 * P5's evaluations: a seen and an unseen prompt per task where the dataset
 * can fill one; direct also with 2-7 (a seen template that shows the
 * history and lists the candidates), besides P5's direct prompts (5-1 yes/no,
 * unseen 5-8) (MI has no item titles, so 1-10 is out and both rating
 * prompts are seen; no summary prompt is unseen).
 */
export const QUICKSTART_P5_PROMPTS: readonly { task: Task; prompt: string; ratingMode?: 'expected' }[] = [
  { task: 'rating', prompt: '1-1' },
  { task: 'rating', prompt: '1-1', ratingMode: 'expected' }, // the raw expected star, beside the calibrated one
  { task: 'rating', prompt: '1-6' },
  { task: 'sequential', prompt: '2-1' },
  { task: 'sequential', prompt: '2-13' },
  { task: 'direct', prompt: '2-7' },
  { task: 'direct', prompt: '5-1' },
  { task: 'direct', prompt: '5-8' },
  { task: 'explanation', prompt: '3-11' },
  { task: 'explanation', prompt: '3-12' },
  { task: 'review', prompt: '4-1' },
];

/** What --fast changes: few epochs, a P5 smoke recipe, and evaluation on the first users/rows only. */
const FAST = { epochs: 2, evalUsers: 40, p5: { config: 'tiny', epochs: 1, negatives: 4, maxSourceLength: 64, tokensPerBatch: 2048, maxBatch: 64, lr: 2e-3, itemPieces: true } };

export interface QuickstartOptions {
  dir: string;
  /** Stop P5 training after this many optimizer steps (development runs). */
  p5Steps?: number;
  skipP5?: boolean;
  /** Cheap settings throughout (tests, smoke runs); results are not comparable with a full run. */
  fast?: boolean;
  quiet?: boolean;
  log?: (msg: string) => void;
}

export interface StageTiming {
  stage: string;
  seconds: number;
  reused: boolean;
}

interface ChildResult {
  json: Record<string, unknown>;
}

/** Run `p5rec <args> --json` in a child process: progress passes through to stderr, the JSON result comes back. */
function p5rec(args: string[], quiet: boolean, { quietFlag = true } = {}): Promise<ChildResult> {
  return new Promise((res, rej) => {
    // (`report` has no --quiet: it logs nothing.)
    const child = spawn(process.execPath, [BIN, ...args, '--json', ...(quiet && quietFlag ? ['--quiet'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      errTail = (errTail + d).slice(-4000);
      if (!quiet) process.stderr.write(d);
    });
    child.on('error', rej);
    child.on('close', (code, signal) => {
      const last = out.trim().split('\n').pop() ?? '';
      let json: Record<string, unknown> | null;
      try {
        json = JSON.parse(last);
      } catch {
        json = null;
      }
      if (code === 0 && json?.ok) return res({ json });
      // The child's own one-line error (ours, or commander's usage error), else its last stderr line.
      const lines = errTail.trim().split('\n');
      const why = typeof json?.error === 'string' ? json.error
        : (lines.filter((l) => /^(p5rec: )?error:/.test(l)).pop()?.replace(/^(p5rec: )?error: /, '') ?? (lines.pop() || `exit ${code ?? signal}`));
      rej(new P5recError(`p5rec ${args.slice(0, 2).join(' ')} failed: ${why}`));
    });
  });
}

const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));
const sameJson = (p: string, v: unknown): boolean => existsSync(p) && JSON.stringify(readJson(p)) === JSON.stringify(v);

/** The trivial text baseline on the same rows P5 is scored on, written as an eval run. */
function mostFrequentRun(ds: Dataset, datasetDir: string, task: TextTask, prompt: string, maxRows?: number): Record<string, unknown> {
  const collection = loadPromptCollection();
  const t = collection.templates.find((x) => x.id === prompt)!;
  const rows = [...evaluationInstances(ds, [t], 'test', { tasks: [task], templates: 'all' })].slice(0, maxRows ?? Infinity);
  const refs = rows.map((r) => r.target);
  const answer = mostFrequentAnswer(ds, task);
  const outputs = refs.map(() => answer);
  return {
    model: 'most-frequent', kind: 'most-frequent', label: `most frequent training answer (${prompt} rows)`,
    dataset: ds.manifest.name, beauty: isBeauty(ds.numUsers, ds.numItems), datasetDir, itemIndex: ds.manifest.options.itemIndex, seed: ds.manifest.options.seed,
    task, split: 'test', prompt, answer,
    protocol: `test rows of the random split that prompt ${prompt} is scored on; every row answered with the most frequent training ${task === 'explanation' ? 'explanation' : 'summary'}`,
    metrics: textMetrics(task, outputs, refs), stderr: textStandardErrors(task, outputs, refs), count: refs.length,
    env: runEnv(),
    notes: `always answers "${answer.length > 60 ? `${answer.slice(0, 57)}...` : answer}"`,
  };
}

export async function runQuickstart(o: QuickstartOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? (() => {});
  const quiet = Boolean(o.quiet);
  const dir = o.dir;
  const datasetDir = join(dir, 'dataset');
  const modelsDir = join(dir, 'models');
  const reportDir = join(dir, 'report');
  mkdirSync(modelsDir, { recursive: true });
  const stages: StageTiming[] = [];
  const t00 = Date.now();
  const stage = async <T>(name: string, body: () => Promise<T>, reused = false): Promise<T> => {
    const t0 = Date.now();
    log(`[quickstart] ${name}${reused ? ' (reused)' : ' ...'}`);
    const r = await body();
    const seconds = (Date.now() - t0) / 1000;
    stages.push({ stage: name, seconds, reused });
    if (!reused) log(`[quickstart] ${name} done in ${seconds.toFixed(1)}s (total ${((Date.now() - t00) / 1000).toFixed(0)}s)`);
    return r;
  };

  // ---- dataset --------------------------------------------------------------------
  const haveDataset = existsSync(join(datasetDir, 'manifest.json'));
  await stage('import', async () => {
    if (!haveDataset) await p5rec(['data', 'import', 'amazon', '--reviews', BUNDLED_REVIEWS, '--out', datasetDir, '--force'], quiet);
  }, haveDataset);
  const ds = await loadDataset(datasetDir);
  const stats = await stage('stats', async () => datasetStats(ds));
  const audit = await stage('audit', async () => auditLeak(ds));

  // ---- fit -------------------------------------------------------------------------
  const evalUsers = o.fast ? FAST.evalUsers : undefined;
  /** Fit (or reuse) a model folder: reused when model.json exists and the recipe is the same. */
  const fitStage = async (name: string, recipe: unknown, args: (out: string, resume: boolean) => string[], where = { models: modelsDir, prefix: '' }): Promise<string> => {
    const out = join(where.models, name);
    const recipePath = join(where.models, `${name}.recipe.json`);
    const same = sameJson(recipePath, recipe);
    const done = same && existsSync(join(out, 'model.json'));
    await stage(`fit ${where.prefix}${name}`, async () => {
      if (done) return;
      // An interrupted P5 training with the same recipe resumes from its checkpoint; anything else
      // (including a run killed before its first checkpoint) starts clean.
      const resume = same && findCheckpoint(join(out, 'train')) !== null;
      if (!resume) {
        rmSync(out, { recursive: true, force: true });
        mkdirSync(where.models, { recursive: true });
        writeFileSync(recipePath, `${JSON.stringify(recipe, null, 2)}\n`);
      }
      await p5rec(args(out, resume), quiet);
    }, done);
    return out;
  };
  /** Fit (or reuse) a baseline on a dataset. */
  const fitBaseline = (b: Baseline, dsDir: string, where = { models: modelsDir, prefix: '' }): Promise<string> => {
    const hyper = { ...b.hyper, ...(o.fast && b.kind !== 'pop' ? { epochs: FAST.epochs } : {}) };
    const recipe = { kind: b.kind, split: b.split, hyper };
    return fitStage(b.name, recipe, (outDir) => [
      'fit', dsDir, '--model', b.kind, '--split', b.split, '--out', outDir, '--force',
      ...Object.entries(hyper).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v)]),
    ], where);
  };

  const fitted: { name: string; kind: string; dir: string; tasks: Task[] }[] = [];
  for (const b of QUICKSTART_BASELINES) fitted.push({ name: b.name, kind: b.kind, dir: await fitBaseline(b, datasetDir), tasks: b.tasks });

  let p5Dir: string | null = null;
  const p5Recipe = { ...(o.fast ? FAST.p5 : QUICKSTART_P5), ...(o.p5Steps !== undefined ? { steps: o.p5Steps } : {}) };
  if (!o.skipP5) {
    p5Dir = await fitStage('p5', p5Recipe, (outDir, resume) => [
      'train', datasetDir, '--out', outDir, '--config', p5Recipe.config, '--epochs', String(p5Recipe.epochs),
      '--negatives', String(p5Recipe.negatives), '--max-source', String(p5Recipe.maxSourceLength),
      '--batch-tokens', String(p5Recipe.tokensPerBatch), '--max-batch', String(p5Recipe.maxBatch), '--lr', String(p5Recipe.lr),
      ...('itemPieces' in p5Recipe && p5Recipe.itemPieces ? ['--item-pieces'] : []),
      ...('userPieces' in p5Recipe && p5Recipe.userPieces ? ['--user-pieces'] : []),
      ...('dropout' in p5Recipe ? ['--dropout', String(p5Recipe.dropout)] : []),
      ...('embeddingLrScale' in p5Recipe ? ['--embedding-lr-scale', String(p5Recipe.embeddingLrScale)] : []),
      ...('adamEps' in p5Recipe ? ['--adam-eps', String(p5Recipe.adamEps)] : []),
      ...('ratingNoise' in p5Recipe && p5Recipe.ratingNoise === false ? ['--no-rating-noise'] : []),
      ...('weights' in p5Recipe && p5Recipe.weights ? ['--weights', p5Recipe.weights] : []),
      ...(o.p5Steps !== undefined ? ['--steps', String(o.p5Steps)] : []),
      ...(resume ? ['--resume'] : ['--force']),
    ]);
  }

  // ---- evaluate ------------------------------------------------------------------------
  const runFiles: string[] = [];
  /** Evaluate (or reuse) one model on one task; the file name is the one `p5rec eval` writes. */
  const evalStage = async (name: string, modelDir: string, task: Task, prompt?: string, ratingMode?: string, dsDir = datasetDir): Promise<void> => {
    const users = evalUsers ?? (task === 'explanation' || task === 'review' ? QUICKSTART_EVAL.textRows : task === 'direct' ? QUICKSTART_EVAL.directUsers : undefined);
    const file = join(modelDir, 'evals', `${task}-test${prompt ? `-p${prompt}` : ''}${ratingMode ? `-${ratingMode}` : ''}${users ? `-u${users}` : ''}.json`);
    const done = existsSync(file);
    await stage(`eval ${name} ${task}${prompt ? ` ${prompt}` : ''}${ratingMode ? ` (${ratingMode} star)` : ''}`, async () => {
      if (done) return;
      await p5rec(['eval', dsDir, '--model', modelDir, '--task', task, '--split', 'test',
        ...(users ? ['--users', String(users)] : []),
        ...(prompt ? ['--prompt', prompt] : []),
        ...(ratingMode ? ['--rating-mode', ratingMode] : []),
        ...(prompt && (task === 'sequential' || task === 'direct') ? ['--beams', String(QUICKSTART_EVAL.beams)] : []),
      ], quiet);
      if (!existsSync(file)) throw new P5recError(`eval ${name} ${task} wrote no ${file}`);
    }, done);
    runFiles.push(file);
  };
  for (const m of fitted) for (const task of m.tasks) await evalStage(m.name, m.dir, task);
  if (p5Dir) for (const { task, prompt, ratingMode } of QUICKSTART_P5_PROMPTS) await evalStage('p5', p5Dir, task, prompt, ratingMode);

  // The trivial text baseline, on the rows each P5 text prompt is scored on.
  const mfDir = join(dir, 'runs', 'most-frequent');
  await stage('most-frequent answer', async () => {
    mkdirSync(mfDir, { recursive: true });
    for (const { task, prompt } of QUICKSTART_P5_PROMPTS) {
      if (task !== 'explanation' && task !== 'review') continue;
      const rows = evalUsers ?? QUICKSTART_EVAL.textRows;
      const file = join(mfDir, `${task}-test-p${prompt}${rows ? `-u${rows}` : ''}.json`);
      if (!existsSync(file)) writeFileSync(file, `${JSON.stringify(mostFrequentRun(ds, datasetDir, task, prompt, rows), null, 2)}\n`);
      runFiles.push(file);
    }
  });

  // ---- names: the titled Beauty slice ---------------------------------------------------------
  // Musical Instruments has no item metadata; the slice's items have titles, so the page
  // shows product names and the LLM recommender (which prompts with titles) can run.
  const sliceRoot = join(dir, 'beauty-slice');
  const sliceDataset = join(sliceRoot, 'dataset');
  const sliceModels = join(sliceRoot, 'models');
  const haveSlice = existsSync(join(sliceDataset, 'manifest.json'));
  await stage('import slice', async () => {
    if (!haveSlice) {
      await p5rec(['data', 'import', 'p5', '--sequences', join(BUNDLED_SLICE, 'sequential.txt'), '--datamaps', join(BUNDLED_SLICE, 'datamaps.json'),
        '--meta', join(BUNDLED_SLICE, 'meta.jsonl'), '--name', 'beauty-slice', '--out', sliceDataset, '--force'], quiet);
    }
  }, haveSlice);
  const sliceDs = await loadDataset(sliceDataset);
  const sliceStats = datasetStats(sliceDs);
  const titled = sliceDs.items.title.filter((t) => typeof t === 'string' && t.trim() !== '').length;
  const sliceFitted: string[] = [];
  for (const b of QUICKSTART_SLICE_BASELINES) {
    const out = await fitBaseline(b, sliceDataset, { models: sliceModels, prefix: 'slice ' });
    sliceFitted.push(b.name);
    for (const task of b.tasks) await evalStage(`slice ${b.name}`, out, task, undefined, undefined, sliceDataset);
  }
  // The embedded LLM recommender on a few users: a smoke row, labelled as the toy model it is.
  const llmUsers = o.fast ? QUICKSTART_LLM.fastUsers : QUICKSTART_LLM.users;
  const llmFile = join(sliceRoot, 'runs', `llm-stories260K-${QUICKSTART_LLM.task}-test-u${llmUsers}.json`);
  const haveLlm = existsSync(llmFile);
  const llm = await stage('llm smoke (stories260K)', async () => {
    if (!haveLlm) {
      try {
        await p5rec(['llm', 'eval', sliceDataset, '--provider', 'llama', '--gguf', BUNDLED_GGUF, '--task', QUICKSTART_LLM.task, '--split', 'test',
          '--users', String(llmUsers), '--history', String(QUICKSTART_LLM.history), '--title-max-chars', String(QUICKSTART_LLM.titleMaxChars),
          '--refine-retries', String(QUICKSTART_LLM.refineRetries), '--cache', join(sliceRoot, 'llm-cache'), '--out', llmFile], quiet);
      } catch (err) {
        // A smoke test of a toy model: its failure is reported, it does not undo the rest of the run.
        log(`[quickstart] the LLM smoke row failed (the report has no LLM row): ${(err as Error).message}`);
        return { file: null, label: LLM_SMOKE_LABEL, count: 0, metrics: {}, notes: undefined, error: (err as Error).message };
      }
      // Label the row as what it is, and put the usable share first in its notes.
      const run = readJson(llmFile) as { notes?: string; llm?: { refinement?: { asked: number; firstTry: number; afterReask: number; gaveUp: number; repairs?: Record<string, number> } } };
      const r = run.llm?.refinement;
      const short = r?.repairs?.short_list ? `, ${r.repairs.short_list} of them listing fewer than 10 distinct candidates` : '';
      const usable = r ? `usable answers ${r.firstTry + r.afterReask}/${r.asked} (${r.firstTry} first try${short})` : 'usable answers unknown';
      writeFileSync(llmFile, `${JSON.stringify({ ...run, label: LLM_SMOKE_LABEL, notes: `${usable}; ${LLM_SMOKE_NOTE} | ${run.notes ?? ''}` }, null, 2)}\n`);
    }
    const run = readJson(llmFile) as { metrics: Record<string, number>; count: number; notes?: string; label: string };
    return { file: llmFile, label: run.label, count: run.count, metrics: run.metrics, notes: run.notes };
  }, haveLlm);
  if (llm.file)   runFiles.push(llmFile);

  // ---- report ------------------------------------------------------------------------------
  const report = await stage('report', async () => (await p5rec(['report', '--runs', ...runFiles, '--out', reportDir, '--force'], quiet, { quietFlag: false })).json);
  // Paths as the user would type them: relative when inside the current folder.
  const rel = (p: string): string => {
    const r = relative(process.cwd(), resolve(p));
    return r && !r.startsWith('..') && !isAbsolute(r) ? r : resolve(p);
  };
  const servedModels = [...(p5Dir ? [`p5=${rel(p5Dir)}`] : []), ...['bpr-mf', 'sasrec', 'pop', 'mf'].map((n) => `${n}=${rel(join(modelsDir, n))}`)];
  const serve = `p5rec serve --dataset ${rel(datasetDir)} ${servedModels.map((m) => `--model ${m}`).join(' ')}`;
  // `serve` takes one dataset: the slice (models with product names) is a second server on the next port.
  const serveNames = `p5rec serve --dataset ${rel(sliceDataset)} ${sliceFitted.map((n) => `--model ${n}=${rel(join(sliceModels, n))}`).join(' ')} --port 8081`;
  const result = {
    dir,
    dataset: datasetDir,
    host: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.versions.node}`,
    fast: Boolean(o.fast),
    p5: o.skipP5 ? null : { dir: p5Dir, recipe: p5Recipe },
    stages,
    seconds: (Date.now() - t00) / 1000,
    stats: { users: stats.users, items: stats.items, interactions: stats.interactions },
    audit: { itemIndex: audit.itemIndex, successorHR1: audit.successorHR1, verdict: audit.verdict },
    models: fitted.map((m) => m.name).concat(p5Dir ? ['p5'] : []),
    runs: runFiles.length,
    report: { dir: reportDir, files: report.files as string[], html: join(reportDir, 'report.html'), markdown: join(reportDir, 'report.md') },
    serve,
    page: 'http://127.0.0.1:8080/',
    slice: {
      dataset: sliceDataset,
      stats: { users: sliceStats.users, items: sliceStats.items, interactions: sliceStats.interactions, titled },
      models: sliceFitted,
      llm,
      serve: serveNames,
      page: 'http://127.0.0.1:8081/',
    },
  };
  // The run's record (stage timings, recipe) beside the report; scripts/readme-results.mjs reads it.
  writeFileSync(join(dir, 'quickstart.json'), `${JSON.stringify(result, null, 2)}\n`);
  log(`[quickstart] finished in ${result.seconds.toFixed(0)}s; report: ${result.report.html}`);
  log(`[quickstart] serve Musical Instruments (P5 with explanations; items are ids): ${serve}`);
  log(`[quickstart] serve the Beauty slice (product names): ${serveNames}`);
  log(`[quickstart] then open ${result.page} and ${result.slice.page} (serve takes one dataset, so two servers)`);
  return result;
}

interface QuickstartFlags extends CommonFlags {
  dir: string;
  p5Steps?: string;
  skipP5?: boolean;
  fast?: boolean;
}

export function registerQuickstartCommand(program: Command): void {
  program.command('quickstart').description('the main job, offline: import the bundled Musical Instruments reviews, fit the baselines, train a tiny P5, evaluate all; then the titled Beauty slice (baselines with product names, an embedded-LLM smoke row); write the report')
    .option('--dir <dir>', 'working folder (re-running reuses what is finished in it)', 'p5rec-quickstart')
    .option('--p5-steps <n>', 'stop P5 training after n optimizer steps (development runs)')
    .option('--skip-p5', 'no P5: baselines only')
    .option('--fast', 'cheap settings throughout (smoke tests): 2 epochs, a smaller P5 recipe, the first 40 users/rows evaluated, 2 LLM users')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((f: QuickstartFlags) => runCommand(f, async () => runQuickstart({
      dir: f.dir,
      p5Steps: f.p5Steps === undefined ? undefined : parseIntFlag('p5-steps', f.p5Steps, 1, 1),
      skipP5: f.skipP5,
      fast: f.fast,
      quiet: f.quiet,
      log: logger(f),
    }), (r) => {
      const s = r.stats as { users: number; items: number; interactions: number };
      const sl = r.slice as { dataset: string; stats: { users: number; items: number; interactions: number; titled: number }; serve: string; page: string; llm: { label: string; count: number; metrics: Record<string, number>; notes?: string; error?: string } };
      return [
        `dataset: ${r.dataset} — ${s.users} users, ${s.items} items, ${s.interactions} interactions`,
        `stages: ${(r.stages as StageTiming[]).filter((x) => !x.reused).length} run, ${(r.stages as StageTiming[]).filter((x) => x.reused).length} reused, ${(r.seconds as number).toFixed(0)}s`,
        `report: ${(r.report as { html: string }).html} (and report.md)`,
        `names:  ${sl.dataset} — ${sl.stats.users} users, ${sl.stats.items} items (${sl.stats.titled} titled), ${sl.stats.interactions} interactions`,
        sl.llm.error ? `llm:    ${sl.llm.label}: failed (${sl.llm.error})`
          : `llm:    ${sl.llm.label}: ${sl.llm.count} users, ${Object.entries(sl.llm.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ')}; ${sl.llm.notes?.split(' | ')[0] ?? ''}`,
        `serve (Musical Instruments, P5 with explanations; items are ids):`,
        `  ${r.serve}`,
        `serve (Beauty slice, models with product names; serve takes one dataset, so a second server):`,
        `  ${sl.serve}`,
        `then open ${r.page} (and ${sl.page}) and click a user, then an item for P5's explanation`,
      ].join('\n');
    }));
}
