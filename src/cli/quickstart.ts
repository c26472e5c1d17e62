/**
 * `p5rec quickstart`: the main job, offline, on the bundled Musical
 * Instruments reviews, then a part with product names on the bundled titled
 * Amazon Beauty slice. A thin shell: flags → a pipeline config
 * (quickstartConfig) → runPipeline, which runs every stage in this process
 * and writes what the matching commands (`data import`, `fit`, `train`,
 * `eval`, `llm eval`, `report`) would:
 *
 *   DIR/dataset/                 the imported dataset
 *   DIR/models/<name>/           baselines and P5 (model.json; evals/*.json)
 *   DIR/models/<name>.recipe.json  what the folder was fitted with (reuse key)
 *   DIR/runs/most-frequent/      the trivial text baseline, as eval runs
 *   DIR/beauty-slice/dataset/    the titled Beauty slice, imported
 *   DIR/beauty-slice/models/     pop, bpr-mf, sasrec on it (and recipes)
 *   DIR/beauty-slice/runs/       the embedded LLM smoke run (stories260K)
 *   DIR/report/                  report.md, report.json, report.html
 *   DIR/quickstart.json          this run's record (stages, recipe)
 *
 * Re-running reuses every finished stage: the dataset, each model whose
 * recipe is unchanged (a changed recipe refits it), and each evaluation
 * already written. An interrupted P5 training resumes from its checkpoint.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parseTaskWeights } from '../prompts/templates.js';
import { runPipeline, type PipelineConfig, type PipelineModel, type PipelineP5, type PipelineStage } from '../pipeline/pipeline.js';
import { logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The dataset that ships inside the package, so the main job runs offline. */
export const BUNDLED_REVIEWS = resolve(HERE, '../../data/musical-instruments/reviews_Musical_Instruments_5.json.gz');
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
 * - one token per item and per user (independent ids), a row the model can
 *   learn (a user's rating bias is most of the rating signal);
 * - item rows start from the items' co-occurrence in the training prefixes,
 *   one coordinate carrying their popularity there (the output layer has no
 *   bias), the co-occurrence at rank 16 in the first 16 coordinates (on 900
 *   items a low rank smooths more: best on validation of 8/16/32/64, and
 *   direct ranking better in each of three seeds), and stay near it (1/20
 *   of the base rate on them), while the rest of the table learns at 10×
 *   the base rate: with ~7 training interactions per item, rows trained
 *   fast overfit, and more sequential training then made them worse, not
 *   better;
 * - no dropout and AdamW's epsilon at 1e-8. With dropout 0.1 and the base
 *   rate, the rare id rows barely moved, and the model learned the answer
 *   marginals but nothing per user or item; with P5's epsilon (1e-6) two CPU
 *   runs did not beat the global mean on ratings, two with 1e-8 did (why is
 *   not settled: the epsilon made no difference on the GPU trainer);
 * - 3 data epochs at a peak learning rate of 3e-3 (direct ranking is best
 *   by mid-run of 6, and the rating family at 8× learns in 3);
 * - integer star answers, so ratings are the expected star, calibrated on the
 *   validation ratings;
 * - the sequential family at 2× weight, the rating family at 8× and reviews at half;
 * - shorter candidate lists (9 sampled negatives) and prompts clipped to 96 tokens.
 */
export const QUICKSTART_P5 = {
  config: 'tiny',
  epochs: 3,
  negatives: 9,
  maxSourceLength: 96,
  tokensPerBatch: 8192,
  maxBatch: 128,
  lr: 3e-3,
  itemIds: 'independent',
  itemInit: 'cooccurrence+popularity',
  itemInitDims: 16,
  itemLrScale: 0.05,
  userPieces: true,
  dropout: 0,
  embeddingLrScale: 10,
  adamEps: 1e-8,
  ratingNoise: false,
  weights: 'sequential=2,review=0.5,rating=8',
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
 * can fill one; direct also with 2-1 (the next-item prompt, its decoding
 * constrained to the 100 candidates, as bench:p5-beauty does) and 2-7 (a
 * seen template that shows the history and lists the candidates), besides
 * P5's direct prompts (5-1 yes/no, unseen 5-8) (MI has no item titles, so 1-10 is out and both rating
 * prompts are seen; no summary prompt is unseen).
 */
export const QUICKSTART_P5_PROMPTS: readonly { task: Task; prompt: string; ratingMode?: 'expected' }[] = [
  { task: 'rating', prompt: '1-1' },
  { task: 'rating', prompt: '1-1', ratingMode: 'expected' }, // the raw expected star, beside the calibrated one
  { task: 'rating', prompt: '1-6' },
  { task: 'sequential', prompt: '2-1' },
  { task: 'sequential', prompt: '2-13' },
  { task: 'direct', prompt: '2-1' },
  { task: 'direct', prompt: '2-7' },
  { task: 'direct', prompt: '5-1' },
  { task: 'direct', prompt: '5-8' },
  { task: 'explanation', prompt: '3-11' },
  { task: 'explanation', prompt: '3-12' },
  { task: 'review', prompt: '4-1' },
];

/** What --fast changes: few epochs, a P5 smoke recipe, and evaluation on the first users/rows only. */
const FAST = { epochs: 2, evalUsers: 40, p5: { config: 'tiny', epochs: 1, negatives: 4, maxSourceLength: 64, tokensPerBatch: 2048, maxBatch: 64, lr: 2e-3, itemIds: 'independent', itemInit: 'cooccurrence+popularity', itemInitDims: 16, itemLrScale: 0.05 } };

export interface QuickstartOptions {
  dir: string;
  /** Stop P5 training after this many optimizer steps (development runs). */
  p5Steps?: number;
  skipP5?: boolean;
  /** Cheap settings throughout (tests, smoke runs); results are not comparable with a full run. */
  fast?: boolean;
  quiet?: boolean;
  log?: (msg: string) => void;
  /** SIGINT/SIGTERM as runPipeline's handleSignals (the CLI sets it). */
  handleSignals?: boolean;
}

/** A stage's record in the result (and quickstart.json): see PipelineStage for what peakRssMB means. */
export type StageTiming = PipelineStage;

/** Recipe fields whose value training takes unchanged. */
const AS_IS = ['itemIds', 'itemInit', 'itemInitDims', 'itemLrScale', 'dropout', 'embeddingLrScale', 'adamEps'] as const;

/** The quickstart as a pipeline config: the Musical Instruments part, then the titled Beauty slice. */
export function quickstartConfig(o: QuickstartOptions, signal?: AbortSignal): PipelineConfig & { p5Recipe: Record<string, unknown> } {
  const dir = o.dir;
  const fastHyper = (b: Baseline): Baseline['hyper'] => ({ ...b.hyper, ...(o.fast && b.kind !== 'pop' ? { epochs: FAST.epochs } : {}) });
  const models = (list: readonly Baseline[]): PipelineModel[] => list.map((b) => ({ name: b.name, kind: b.kind, split: b.split, hyper: fastHyper(b), tasks: b.tasks.filter((t): t is 'rating' | 'sequential' | 'direct' => t !== 'explanation' && t !== 'review') }));
  const r: Record<string, unknown> = { ...(o.fast ? FAST.p5 : QUICKSTART_P5), ...(o.p5Steps !== undefined ? { steps: o.p5Steps } : {}) };
  // The recipe object is the reuse key (models/p5.recipe.json): its shape stays what earlier quickstarts wrote.
  const train: PipelineP5['train'] = {
    config: r.config as string, epochs: r.epochs as number, negatives: r.negatives as number, maxSourceLength: r.maxSourceLength as number,
    tokensPerBatch: r.tokensPerBatch as number, maxBatch: r.maxBatch as number, lr: r.lr as number,
    itemPieces: Boolean(r.itemPieces), userPieces: Boolean(r.userPieces),
    // Fields the recipe names as training takes them, passed on only where set.
    ...(Object.fromEntries(AS_IS.filter((k) => r[k] !== undefined).map((k) => [k, r[k]])) as Partial<PipelineP5['train']>),
    ...(r.ratingNoise === false ? { ratingNoise: false } : {}),
    ...(r.weights ? { weights: parseTaskWeights(r.weights as string) } : {}),
    ...(o.p5Steps !== undefined ? { steps: o.p5Steps } : {}),
    // One seed for the prompts and the weights, as `p5rec train` (which the quickstart ran before it moved in-process) defaults to.
    seed: 0,
  };
  const sliceRoot = join(dir, 'beauty-slice');
  const llmUsers = o.fast ? QUICKSTART_LLM.fastUsers : QUICKSTART_LLM.users;
  return {
    dir,
    dataset: { source: { kind: 'amazon', reviews: BUNDLED_REVIEWS } },
    models: models(QUICKSTART_BASELINES),
    ...(o.skipP5 ? {} : { p5: { recipe: r, train, evals: QUICKSTART_P5_PROMPTS.map((x) => ({ ...x })) } }),
    mostFrequent: true,
    // Musical Instruments has no item metadata; the slice's items have titles, so the page
    // shows product names and the LLM recommender (which prompts with titles) can run.
    parts: [{
      label: 'slice', folder: 'beauty-slice',
      dataset: { source: { kind: 'p5', sequences: join(BUNDLED_SLICE, 'sequential.txt'), datamaps: join(BUNDLED_SLICE, 'datamaps.json'), meta: join(BUNDLED_SLICE, 'meta.jsonl') }, build: { name: 'beauty-slice' } },
      models: models(QUICKSTART_SLICE_BASELINES),
      // The embedded LLM recommender on a few users: a smoke row, labelled as the toy model it is;
      // its failure is reported, it does not undo the rest of the run.
      llm: [{
        name: 'stories260K', stage: 'llm smoke (stories260K)', label: LLM_SMOKE_LABEL, note: LLM_SMOKE_NOTE, optional: true,
        provider: { kind: 'llama', gguf: BUNDLED_GGUF },
        eval: { task: QUICKSTART_LLM.task, users: llmUsers, historyLength: QUICKSTART_LLM.history, titleMaxChars: QUICKSTART_LLM.titleMaxChars, refineRetries: QUICKSTART_LLM.refineRetries },
        cacheDir: join(sliceRoot, 'llm-cache'),
      }],
    }],
    eval: { users: o.fast ? FAST.evalUsers : undefined, directUsers: QUICKSTART_EVAL.directUsers, textRows: QUICKSTART_EVAL.textRows, beams: QUICKSTART_EVAL.beams },
    report: join(dir, 'report'),
    quiet: o.quiet,
    log: o.log,
    signal,
    handleSignals: o.handleSignals,
    p5Recipe: r,
  };
}

export async function runQuickstart(o: QuickstartOptions, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const log = o.log ?? (() => {});
  const config = quickstartConfig({ ...o, log: (m) => log(`[quickstart] ${m}`) }, signal);
  const r = await runPipeline(config);
  const [main, slice] = r.parts;
  const dir = o.dir;
  // Paths as the user would type them: relative when inside the current folder.
  const rel = (p: string): string => {
    const x = relative(process.cwd(), resolve(p));
    return x && !x.startsWith('..') && !isAbsolute(x) ? x : resolve(p);
  };
  const modelsDir = join(dir, 'models');
  const servedModels = [...(main.p5 ? [`p5=${rel(main.p5.dir)}`] : []), ...['bpr-mf', 'sasrec', 'pop', 'mf'].map((n) => `${n}=${rel(join(modelsDir, n))}`)];
  const serve = `p5rec serve --dataset ${rel(main.dataset)} ${servedModels.map((m) => `--model ${m}`).join(' ')}`;
  // `serve` takes one dataset: the slice (models with product names) is a second server on the next port.
  const serveNames = `p5rec serve --dataset ${rel(slice.dataset)} ${slice.models.map((m) => `--model ${m.name}=${rel(m.dir)}`).join(' ')} --port 8081`;
  const { name: _name, ...llm } = slice.llm[0];
  const reportDir = r.report!.dir;
  const result = {
    dir,
    dataset: main.dataset,
    host: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.versions.node}`,
    fast: Boolean(o.fast),
    p5: main.p5 ? { dir: main.p5.dir, recipe: config.p5Recipe } : null,
    stages: r.stages,
    seconds: r.seconds,
    stats: { users: main.stats.users, items: main.stats.items, interactions: main.stats.interactions },
    audit: { itemIndex: main.audit.itemIndex, successorHR1: main.audit.successorHR1, verdict: main.audit.verdict },
    models: main.models.map((m) => m.name).concat(main.p5 ? [main.p5.name] : []),
    runs: r.runs.length,
    report: { dir: reportDir, files: r.report!.files, html: join(reportDir, 'report.html'), markdown: join(reportDir, 'report.md') },
    serve,
    page: 'http://127.0.0.1:8080/',
    slice: {
      dataset: slice.dataset,
      stats: { users: slice.stats.users, items: slice.stats.items, interactions: slice.stats.interactions, titled: slice.titled },
      models: slice.models.map((m) => m.name),
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
    // SIGINT/SIGTERM: runPipeline's handleSignals (P5 training stops cleanly and resumes on a rerun; other stages end at once).
    .action((f: QuickstartFlags) => runCommand(f, async () => runQuickstart({
      dir: f.dir,
      p5Steps: f.p5Steps === undefined ? undefined : parseIntFlag('p5-steps', f.p5Steps, 1, 1),
      skipP5: f.skipP5,
      fast: f.fast,
      quiet: f.quiet,
      log: logger(f),
      handleSignals: true,
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
