/**
 * runPipeline: a whole experiment from one typed config, in the spirit of
 * RecBole's quick start. Every stage runs in this process through the library
 * (importDataset, fitModel, trainP5, evaluate, the LLM evaluation,
 * writeReport) and writes what the matching CLI command writes:
 *
 *   DIR[/FOLDER]/dataset/                 the imported dataset (or `dataset.dir`)
 *   DIR[/FOLDER]/models/<name>/           each model (model.json; evals/*.json)
 *   DIR[/FOLDER]/models/<name>.recipe.json  what the folder was fitted with (reuse key)
 *   DIR[/FOLDER]/runs/most-frequent/      the trivial text baseline
 *   DIR[/FOLDER]/runs/llm-<name>-….json   LLM evaluations
 *   DIR/report/                           report.md, report.json, report.html
 *
 * Re-running reuses every finished stage: the dataset, each model whose recipe
 * is unchanged (a changed recipe refits it), each evaluation already written.
 * An interrupted P5 training resumes from its checkpoint, and only from one.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { importDataset, type ImportSource } from '../data/import.js';
import type { BuildOptions } from '../data/build.js';
import { loadDataset } from '../data/dataset.js';
import { datasetStats, type DatasetStats } from '../data/stats.js';
import { auditLeak, type AuditResult } from '../data/audit.js';
import { initEngine, engineBackend } from '../engine/backend.js';
import type { EvalSplit } from '../eval/evaluate.js';
import { collectRunsWithSkips, writeReport } from '../eval/report.js';
import { evaluateToRunFile, runFileName, type RatingMode, type RunTask } from '../eval/run-file.js';
import type { TextTask } from '../p5/evaluate-text.js';
import type { P5Settings } from '../p5/recommender.js';
import { trainP5, type P5TrainOptions } from '../p5/train.js';
import { loadPromptCollection } from '../prompts/templates.js';
import { fitModel } from '../recommend/fit.js';
import { loadModel, saveModel } from '../recommend/store.js';
import { findCheckpoint } from '../train/checkpoint.js';
import { stopOnSignals, throwIfStopped } from '../train/stop.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Progress, setProgressInterrupt } from '../util/progress.js';
import type { LlmEvalOptions, LlmRun } from '../llm/eval.js';
import { DEFAULT_SEED } from '../defaults.js';
import { llmRunToFile, mostFrequentRun, type PipelineLlmProvider } from './extra-runs.js';

export type { PipelineLlmProvider } from './extra-runs.js';

/** A baseline (any registered kind), fitted with these hyper-parameters and evaluated on `tasks`. */
export interface PipelineModel {
  /** Folder name under models/ and the name in stage names. */
  name: string;
  kind: string;
  /** Training split; default the model's own. */
  split?: 'rating' | 'sequential';
  /** Over the model's defaults (getFactory(kind).defaults lists them). */
  hyper?: Record<string, unknown>;
  tasks: ('rating' | 'sequential' | 'direct')[];
}

/** A P5 model: trainP5's options, and the (task, prompt) pairs it is evaluated on. */
export interface PipelineP5 {
  /** Folder name under models/; default 'p5'. */
  name?: string;
  train: Omit<P5TrainOptions, 'out' | 'resume' | 'force' | 'signal' | 'log' | 'quiet' | 'onStep'>;
  evals: { task: RunTask; prompt?: string; ratingMode?: RatingMode }[];
  /** What decides reuse (written as <name>.recipe.json); default `train`. */
  recipe?: unknown;
  /** Engine backend for training and evaluation; default wasm. */
  backend?: 'wasm' | 'cpu' | 'tensorflow' | 'cuda';
}

/** An LLM recommender's evaluation, written as runs/llm-<name>-<task>-<split>[-u<users>].json. */
export interface PipelineLlm {
  name: string;
  provider: PipelineLlmProvider;
  eval: Omit<LlmEvalOptions, 'signal' | 'quiet' | 'split'>;
  /** Stage name; default `llm <name>`. */
  stage?: string;
  /** The row's label in the report, replacing the run's own. */
  label?: string;
  /** Put in front of the run's notes, after the share of usable answers. */
  note?: string;
  /** Response cache folder; default FOLDER/llm-cache. */
  cacheDir?: string;
  /** A failure is recorded (result.llm[].error) and the pipeline goes on; default false. */
  optional?: boolean;
}

/** One dataset and what runs on it. */
export interface PipelinePart {
  /** Either raw files to import (into FOLDER/dataset) or an existing dataset folder. */
  dataset: { source: ImportSource; build?: Omit<BuildOptions, 'out' | 'force' | 'log'> } | { dir: string };
  models?: PipelineModel[];
  p5?: PipelineP5;
  /** The trivial text baseline on the rows of each P5 explanation/review prompt. */
  mostFrequent?: boolean;
  llm?: PipelineLlm[];
}

/** A further dataset, in its own subfolder; `label` goes into its stage names ('fit slice pop'). */
export interface PipelineSubPart extends PipelinePart {
  label: string;
  folder: string;
}

export interface PipelineEval {
  /** Default test. */
  split?: EvalSplit;
  /** The first n users (rows for text tasks) of every evaluation; default all. */
  users?: number;
  /** Caps for the direct task and for the text tasks alone, when `users` is not set. */
  directUsers?: number;
  textRows?: number;
  /** P5's beams for item generation. */
  beams?: number;
}

export interface PipelineConfig extends PipelinePart {
  /** Working folder; re-running reuses what is finished in it. */
  dir: string;
  /** Further datasets, after the main one. */
  parts?: PipelineSubPart[];
  eval?: PipelineEval;
  /** The report folder; default DIR/report. False: no report. */
  report?: string | false;
  /** No progress bars on stderr (a progress listener still gets every report). */
  quiet?: boolean;
  /** Stage notes and the stages' own logs (default: none). */
  log?: (msg: string) => void;
  /** Stops the run: P5 training and LLM requests at once, other stages at their next progress report. */
  signal?: AbortSignal;
  /**
   * Handle SIGINT/SIGTERM (the CLI does): during P5 training and LLM requests
   * the first signal stops the stage cleanly (the last completed step is kept
   * for a resume; a second signal exits at once); during every other stage no
   * handler is installed, so a signal ends the process at once. Default false.
   */
  handleSignals?: boolean;
}

export interface PipelineStage {
  stage: string;
  seconds: number;
  reused: boolean;
  /**
   * The process's peak RSS after the stage, in MB (process.resourceUsage().maxRSS).
   * Stages share one process, so this is the peak so far, not the stage's own:
   * it only grows, and a stage's own peak shows only where it raised it.
   */
  peakRssMB: number;
}

export interface PipelineLlmResult {
  name: string;
  file: string | null;
  label: string;
  count: number;
  metrics: Record<string, number>;
  notes?: string;
  error?: string;
}

export interface PipelinePartResult {
  /** '' for the main dataset. */
  label: string;
  root: string;
  dataset: string;
  stats: DatasetStats;
  audit: AuditResult;
  titled: number;
  models: { name: string; kind: string; dir: string; tasks: PipelineModel['tasks'] }[];
  p5: { name: string; dir: string; recipe: unknown } | null;
  llm: PipelineLlmResult[];
  /** The run files written (or reused) for this dataset, in report order. */
  runs: string[];
}

export interface PipelineResult {
  dir: string;
  stages: PipelineStage[];
  seconds: number;
  parts: PipelinePartResult[];
  runs: string[];
  report: { dir: string; files: string[]; tables: number; runs: number; skipped: { file: string; reason: string }[] } | null;
}

const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));
/** Whether the JSON file at `p` holds `v` (a missing or unreadable file does not: the model is refitted). */
const sameJson = (p: string, v: unknown): boolean => {
  try {
    return existsSync(p) && JSON.stringify(readJson(p)) === JSON.stringify(v);
  } catch {
    return false;
  }
};
const peakRssMB = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const isText = (t: string): t is TextTask => t === 'explanation' || t === 'review';

/** A signal aborted when either is, with its reason (the signal's name, for the exit status). */
function eitherSignal(a: AbortSignal | undefined, b: AbortSignal): { signal: AbortSignal; dispose(): void } {
  if (!a) return { signal: b, dispose: () => {} };
  const ac = new AbortController();
  const onA = (): void => ac.abort(a.reason);
  const onB = (): void => ac.abort(b.reason);
  if (a.aborted) onA();
  a.addEventListener('abort', onA, { once: true });
  b.addEventListener('abort', onB, { once: true });
  return { signal: ac.signal, dispose: () => { a.removeEventListener('abort', onA); b.removeEventListener('abort', onB); } };
}

/** How many stages a config has (the pipeline's progress total). */
function countStages(c: PipelineConfig): number {
  const part = (p: PipelinePart): number => 3 + (p.models?.length ?? 0) + (p.p5 ? 1 + p.p5.evals.length : 0)
    + (p.models ?? []).reduce((n, m) => n + m.tasks.length, 0) + (p.mostFrequent ? 1 : 0) + (p.llm?.length ?? 0);
  return part(c) + (c.parts ?? []).reduce((n, p) => n + part(p), 0) + (c.report === false ? 0 : 1);
}

/**
 * Run every stage of `config` in this process; see the module comment for
 * what lands where. Progress goes through the progress listener
 * (setProgressListener), one report per stage labelled 'pipeline', besides
 * the stages' own; `log` gets one line per stage.
 */
export async function runPipeline(config: PipelineConfig): Promise<PipelineResult> {
  const log = config.log ?? (() => {});
  const quiet = Boolean(config.quiet);
  const signal = config.signal;
  const ev = config.eval ?? {};
  const split: EvalSplit = ev.split ?? 'test';
  const stages: PipelineStage[] = [];
  const t00 = Date.now();
  // Only a listener sees it (stage lines go to `log`); every stage reaches it.
  const bar = new Progress({ label: 'pipeline', total: countStages(config), unit: 'stages', quiet: true, throttle: false });

  /**
   * One stage: timed, logged, with the process's peak RSS after it. The CLI
   * once ran each stage in a child process so a fit's peak RSS was its own;
   * in one process only the peak so far can be read, and that is recorded.
   *
   * Stopping: a stage that takes an AbortSignal (`takesSignal`: P5 training,
   * LLM requests) gets one, aborted by `config.signal` or, with
   * `handleSignals`, by SIGINT/SIGTERM. Any other stage runs synchronous
   * compute that leaves the event loop no turn to run a signal handler, so it
   * gets none: `config.signal` stops it at its next progress report, and a
   * process signal ends the process at once, as it ended the child process
   * each stage once ran in. Those stages write their outputs atomically
   * (model.json last, eval files and the dataset by rename), so a rerun
   * redoes just the stage that was cut.
   */
  const stage = async <T>(name: string, body: (signal?: AbortSignal) => Promise<T>, reused = false, takesSignal = false): Promise<T> => {
    throwIfStopped(signal, `before ${name}`);
    const t0 = Date.now();
    log(`${name}${reused ? ' (reused)' : ' ...'}`);
    const handlers = takesSignal && config.handleSignals && !reused ? stopOnSignals(`stopping ${name} (finished stages are kept; run again to resume)`) : null;
    const linked = handlers ? eitherSignal(signal, handlers.signal) : null;
    if (signal && !takesSignal) setProgressInterrupt(() => throwIfStopped(signal, `during ${name}`));
    let r: T;
    try {
      r = await body(linked?.signal ?? signal);
    } finally {
      setProgressInterrupt(null);
      linked?.dispose();
      handlers?.dispose();
    }
    const seconds = (Date.now() - t0) / 1000;
    stages.push({ stage: name, seconds, reused, peakRssMB: peakRssMB() });
    bar.tick(1, name);
    if (!reused) log(`${name} done in ${seconds.toFixed(1)}s (total ${((Date.now() - t00) / 1000).toFixed(0)}s)`);
    return r;
  };

  const parts: PipelinePartResult[] = [];
  const all: { p: PipelinePart; label: string; root: string }[] = [
    { p: config, label: '', root: config.dir },
    ...(config.parts ?? []).map((p) => ({ p, label: p.label, root: join(config.dir, p.folder) })),
  ];
  for (const { p, label, root } of all) {
    const named = (verb: string, rest = ''): string => [verb, label, rest].filter(Boolean).join(' ');
    const modelsDir = join(root, 'models');
    mkdirSync(modelsDir, { recursive: true });

    // ---- dataset ----------------------------------------------------------------
    const datasetDir = 'dir' in p.dataset ? p.dataset.dir : join(root, 'dataset');
    const haveDataset = 'dir' in p.dataset || existsSync(join(datasetDir, 'manifest.json'));
    const src = p.dataset;
    await stage(named('import'), async () => {
      if (!haveDataset && 'source' in src) await importDataset(src.source, { ...src.build, out: datasetDir, force: true, log });
    }, haveDataset);
    const ds = await loadDataset(datasetDir);
    const stats = await stage(named('stats'), async () => datasetStats(ds));
    const audit = await stage(named('audit'), async () => auditLeak(ds));

    // ---- fit --------------------------------------------------------------------
    /** Fit (or reuse) a model folder: reused when model.json exists and the recipe is the same. */
    const fitStage = async (name: string, recipe: unknown, fit: (out: string, resume: boolean, signal?: AbortSignal) => Promise<void>, takesSignal: boolean): Promise<string> => {
      const out = join(modelsDir, name);
      const recipePath = join(modelsDir, `${name}.recipe.json`);
      const same = sameJson(recipePath, recipe);
      const done = same && existsSync(join(out, 'model.json'));
      await stage(named('fit', name), async (stageSignal) => {
        if (done) return;
        // An interrupted P5 training with the same recipe resumes from its checkpoint; anything else
        // (including a run killed before its first checkpoint) starts clean.
        const resume = same && findCheckpoint(join(out, 'train')) !== null;
        if (!resume) {
          rmSync(out, { recursive: true, force: true });
          writeFileAtomic(recipePath, `${JSON.stringify(recipe, null, 2)}\n`);
        }
        try {
          await fit(out, resume, stageSignal);
        } catch (err) {
          // A baseline keeps nothing to resume: leave no half-made folder behind.
          if (!takesSignal) rmSync(out, { recursive: true, force: true });
          throw err;
        }
      }, done, takesSignal);
      return out;
    };

    const fitted: PipelinePartResult['models'] = [];
    for (const m of p.models ?? []) {
      const recipe = { kind: m.kind, split: m.split, hyper: m.hyper ?? {} };
      const dir = await fitStage(m.name, recipe, async (out) => {
        const t0 = Date.now();
        const { rec } = await fitModel(ds, m.kind, { split: m.split, hyper: m.hyper, log, quiet });
        // Fitted after earlier stages in this process: the card says its peak RSS is the process's so far, not the fit's own.
        saveModel(out, rec, ds, { seconds: (Date.now() - t0) / 1000, peakRssMB: peakRssMB(), peakRssScope: 'process so far (in-process pipeline)', seed: DEFAULT_SEED });
      }, false);
      fitted.push({ name: m.name, kind: m.kind, dir, tasks: m.tasks });
    }

    let p5: PipelinePartResult['p5'] = null;
    if (p.p5) {
      const cfg = p.p5;
      const name = cfg.name ?? 'p5';
      const recipe = cfg.recipe ?? cfg.train;
      const dir = await fitStage(name, recipe, async (out, resume, stageSignal) => {
        if (engineBackend() === null) await initEngine({ backend: cfg.backend ?? 'wasm' });
        // trainP5 stops on the signal itself, keeping the last completed step for a resume.
        await trainP5(ds, loadPromptCollection(), { ...cfg.train, out, resume, force: !resume, quiet, log, signal: stageSignal });
      }, true);
      p5 = { name, dir, recipe };
    }

    // ---- evaluate ---------------------------------------------------------------
    const runs: string[] = [];
    const usersFor = (task: RunTask): number | undefined => ev.users ?? (isText(task) ? ev.textRows : task === 'direct' ? ev.directUsers : undefined);
    /** Evaluate (or reuse) one model on one task; the file is the one `p5rec eval` writes. */
    const evalModel = async (m: { name: string; dir: string }, evals: { task: RunTask; prompt?: string; ratingMode?: RatingMode }[], isP5: boolean): Promise<void> => {
      let loaded: ReturnType<typeof loadModel> | null = null;
      let base: P5Settings | null = null;
      for (const e of evals) {
        const users = usersFor(e.task);
        const file = join(m.dir, 'evals', runFileName(e.task, split, { prompt: e.prompt, ratingMode: e.ratingMode, users }));
        const done = existsSync(file);
        await stage(named('eval', `${m.name} ${e.task}${e.prompt ? ` ${e.prompt}` : ''}${e.ratingMode ? ` (${e.ratingMode} star)` : ''}`), async () => {
          if (done) return;
          if (!loaded) {
            if (isP5 && engineBackend() === null) await initEngine({ backend: p.p5?.backend ?? 'wasm' });
            loaded = loadModel(m.dir, ds);
            const s = loaded.rec.prompted?.settings as P5Settings | undefined;
            if (s) base = structuredClone(s);
          }
          // One loaded model serves every evaluation: each starts from its saved decoding settings.
          if (base) Object.assign(loaded.rec.prompted!.settings, structuredClone(base));
          const beams = isP5 && (e.task === 'sequential' || e.task === 'direct') ? ev.beams : undefined;
          const { file: written } = await evaluateToRunFile(ds, datasetDir, m.dir, loaded, { task: e.task, split, users, prompt: e.prompt, ratingMode: e.ratingMode, beams, quiet });
          if (written !== file) throw new Error(`eval ${m.name} ${e.task} wrote ${written}, not ${file}`);
        }, done);
        runs.push(file);
      }
    };
    for (const m of fitted) await evalModel(m, m.tasks.map((task) => ({ task })), false);
    if (p5 && p.p5) await evalModel(p5, p.p5.evals, true);

    if (p.mostFrequent) {
      // The trivial text baseline, on the rows each P5 text prompt is scored on.
      const mfDir = join(root, 'runs', 'most-frequent');
      await stage(named('most-frequent answer'), async () => {
        mkdirSync(mfDir, { recursive: true });
        for (const { task, prompt } of p.p5?.evals ?? []) {
          if (!isText(task) || !prompt) continue;
          const rows = usersFor(task);
          const file = join(mfDir, runFileName(task, split, { prompt, users: rows }));
          if (!existsSync(file)) writeFileAtomic(file, `${JSON.stringify(mostFrequentRun(ds, datasetDir, task, prompt, split, rows), null, 2)}\n`);
          runs.push(file);
        }
      });
    }

    // ---- LLM recommenders ---------------------------------------------------------
    const llm: PipelineLlmResult[] = [];
    for (const l of p.llm ?? []) {
      const file = join(root, 'runs', `llm-${l.name}-${l.eval.task}-${split}${l.eval.users ? `-u${l.eval.users}` : ''}.json`);
      const have = existsSync(file);
      const label = l.label ?? `llm ${l.name}`;
      const r = await stage(l.stage ?? named('llm', l.name), async (stageSignal): Promise<PipelineLlmResult> => {
        if (!have) {
          // Label the row as what it is, and put the usable share first in its notes (before the
          // file is written: a reused file is always the finished one).
          const relabel = (run: LlmRun): LlmRun => {
            if (!l.label && !l.note) return run;
            const ref = run.llm.refinement;
            const short = ref.repairs?.short_list ? `, ${ref.repairs.short_list} of them listing fewer than 10 distinct candidates` : '';
            const usable = `usable answers ${ref.firstTry + ref.afterReask}/${ref.asked} (${ref.firstTry} first try${short})`;
            return { ...run, label: l.label ?? run.label, notes: l.note ? `${usable}; ${l.note} | ${run.notes ?? ''}` : run.notes };
          };
          try {
            // In-process: node-llama-cpp runs beside the tensor engine (the quickstart's smoke row does), so no child process.
            await llmRunToFile(ds, { provider: l.provider, eval: { ...l.eval, split }, file, cacheDir: l.cacheDir ?? join(root, 'llm-cache'), quiet, log, signal: stageSignal, relabel });
          } catch (err) {
            if (!l.optional || stageSignal?.aborted) throw err;
            log(`the ${label} run failed (the report has no row for it): ${(err as Error).message}`);
            return { name: l.name, file: null, label, count: 0, metrics: {}, error: (err as Error).message };
          }
        }
        const run = readJson(file) as { metrics: Record<string, number>; count: number; notes?: string; label: string };
        return { name: l.name, file, label: run.label, count: run.count, metrics: run.metrics, notes: run.notes };
      }, have, true);
      if (r.file) runs.push(r.file);
      llm.push(r);
    }

    const titled = ds.items.title.filter((t) => typeof t === 'string' && t.trim() !== '').length;
    parts.push({ label, root, dataset: datasetDir, stats, audit, titled, models: fitted, p5, llm, runs });
  }

  // ---- report -------------------------------------------------------------------
  const runs = parts.flatMap((x) => x.runs);
  let report: PipelineResult['report'] = null;
  if (config.report !== false) {
    const reportDir = config.report ?? join(config.dir, 'report');
    report = await stage('report', async () => {
      const { runs: loaded, skipped } = collectRunsWithSkips(runs);
      for (const s of skipped) log(`report: skipped ${s.file}: ${s.reason}`);
      const { tables, files } = await writeReport(loaded, reportDir, true);
      return { dir: reportDir, files, tables: tables.length, runs: loaded.length, skipped };
    });
  }
  bar.finish('done');
  return { dir: config.dir, stages, seconds: (Date.now() - t00) / 1000, parts, runs, report };
}
