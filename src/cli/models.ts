import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { loadDataset } from '../data/dataset.js';
import type { EvalSplit } from '../eval/evaluate.js';
import { FACTORIES, getFactory } from '../recommend/registry.js';
import { describeHyper, TASKS, type TrainSplit } from '../recommend/recommender.js';
import { loadModel, readModelCard, saveModel } from '../recommend/store.js';
import { initEngine } from '../engine/backend.js';
import { DEFAULT_SEED } from '../data/build.js';
import { collectRunsWithSkips, writeReport } from '../eval/report.js';
import { boundedInt, logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';
import { checkRunOptions, evaluateToRunFile, MAX_BEAMS, type RatingMode, type RunOptions, type RunTask } from '../eval/run-file.js';
import { loopSettingProblem } from '../recommend/fit.js';

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Hyper-parameters come as `--name value` flags named after the model's
 * defaults (camelCase ↔ kebab-case), typed by the default's type. Unknown
 * flags are an error that lists the model's hyper-parameters.
 */
export function parseHyper(defaults: Record<string, unknown>, args: string[], model: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  const byFlag = new Map(Object.keys(defaults).map((k) => [`--${kebab(k)}`, k]));
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split('=', 2);
    const key = byFlag.get(flag);
    if (!key) throw new InputError(`unknown option '${flag}' for model '${model}' (hyper-parameters: ${[...byFlag.keys()].join(' ') || 'none'})`);
    const def = defaults[key];
    if (typeof def === 'boolean' && inline === undefined && (args[i + 1] === undefined || args[i + 1].startsWith('--'))) {
      out[key] = true;
      continue;
    }
    const raw = inline ?? args[++i];
    if (raw === undefined) throw new InputError(`option '${flag}' needs a value`);
    if (typeof def === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new InputError(`option '${flag}' must be a number, got '${raw}'`);
      out[key] = n;
    } else if (typeof def === 'boolean') out[key] = raw === 'true' || raw === '1';
    else out[key] = raw;
  }
  return out;
}

interface FitFlags extends CommonFlags {
  model: string;
  out: string;
  split?: string;
  seed?: string;
  resume?: boolean;
  force?: boolean;
}

interface EvalFlags extends CommonFlags {
  model: string;
  task: string;
  split: string;
  users?: string;
  prompt?: string;
  beams?: string;
  ratingMode?: string;
}

/** Every model's hyper-parameters with their defaults and allowed values, from the registry (what `--name value` can set). */
function hyperHelp(): string {
  const lines = FACTORIES.map((f) => {
    const h = Object.entries(f.defaults).map(([k, v]) => `--${kebab(k)} ${String(v)}${f.schema?.[k] ? ` ${describeHyper(f.schema[k])}` : ''}`).join('  ');
    return `  ${f.kind} (${f.defaultSplit} split; ${f.description}):\n    ${h || '(none)'}`;
  });
  return `\nHyper-parameters per model, with their defaults and allowed values:\n${lines.join('\n')}\n`;
}

export function registerModelCommands(program: Command): void {
  program.command('fit').description(`fit a model: ${FACTORIES.map((f) => f.kind).join('|')}; hyper-parameters as --name value`)
    .argument('<dataset>', 'dataset folder')
    .requiredOption('--model <kind>', 'model kind')
    .requiredOption('--out <dir>', 'model folder to write')
    .option('--split <split>', 'training split: rating (random 0.8), sequential (leave-one-out), or both (P5); default per model')
    .option('--seed <n>', 'seed')
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--force', 'overwrite an existing model folder')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .addHelpText('after', hyperHelp)
    .allowUnknownOption()
    .allowExcessArguments()
    .action((dir: string, f: FitFlags, cmd: Command) => runCommand(f, async () => {
      const factory = getFactory(f.model);
      const hyper = parseHyper(factory.defaults, cmd.args.slice(1), f.model);
      // An epoch count below 1 would save the untrained initial weights as a model.
      const bad = loopSettingProblem(hyper);
      if (bad) throw new InputError(`--${bad.field} must be ${bad.must}, got '${String(bad.value)}'`);
      const split = (f.split ?? factory.defaultSplit) as TrainSplit;
      const splits = factory.defaultSplit === 'both' ? ['both', 'rating'] : ['rating', 'sequential'];
      if (!splits.includes(split)) throw new InputError(`--split must be ${splits.join(' or ')}, got '${f.split}'`, { field: 'split' });
      const seed = parseIntFlag('seed', f.seed, DEFAULT_SEED, 0);
      if (factory.ownFolder) {
        // It writes, stages (--force) and resumes its own folder as it trains.
        if (factory.engine) await initEngine();
        const ds = await loadDataset(dir);
        await factory.fit(ds, hyper, split, { log: logger(f), quiet: Boolean(f.quiet), seed, out: f.out, resume: f.resume, force: f.force });
        const card = readModelCard(f.out);
        return { model: f.out, kind: card.kind, trainSplit: card.trainSplit, config: card.config, fit: card.fit };
      }
      const place = planFit(f.out, Boolean(f.force), Boolean(f.resume));
      const ds = await loadDataset(dir);
      const log = logger(f);
      const t0 = Date.now();
      if (place.staged && !f.resume) rmSync(place.runDir, { recursive: true, force: true });
      mkdirSync(place.runDir, { recursive: true });
      const ckpt = join(place.runDir, 'checkpoint');
      let rec;
      try {
        rec = await factory.fit(ds, hyper, split, { log, quiet: Boolean(f.quiet), seed, checkpointDir: ckpt, resume: f.resume });
      } catch (err) {
        // Nothing resumable reached: leave no half-made folder behind.
        if (!existsSync(join(ckpt, 'checkpoint.json')) && (place.staged || place.createdOut)) rmSync(place.runDir, { recursive: true, force: true });
        throw err;
      }
      const seconds = (Date.now() - t0) / 1000;
      const peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
      const card = saveModel(place.runDir, rec, ds, { seconds, peakRssMB, seed });
      if (place.staged) {
        // --force: the new model is complete; swap it in by renames, then drop the old one.
        const old = join(dirname(resolve(f.out)), `.${basename(resolve(f.out))}.old-${process.pid}`);
        renameSync(f.out, old);
        renameSync(place.runDir, f.out);
        rmSync(old, { recursive: true, force: true });
      }
      log(`fit ${f.model} in ${seconds.toFixed(1)}s, peak RSS ${peakRssMB} MB → ${f.out}`);
      return { model: f.out, kind: card.kind, trainSplit: card.trainSplit, config: card.config, fit: card.fit };
    }, (r) => `${r.kind} → ${r.model} (${r.fit.seconds.toFixed(1)}s, peak RSS ${r.fit.peakRssMB} MB)`));

  program.command('eval').description('evaluate a model on a task with the shared protocol')
    .argument('<dataset>', 'dataset folder')
    .requiredOption('--model <dir>', 'model folder')
    .requiredOption('--task <task>', `${TASKS.join('|')} (P5 also: explanation|review)`)
    .option('--split <split>', 'test|valid', 'test')
    .option('--users <n>', 'evaluate only the first n users (rows for explanation/review)')
    .option('--prompt <id>', 'P5: the prompt template to ask with (e.g. 2-13, an unseen one)')
    .option('--beams <n>', 'P5: beams for item generation (default 20)')
    .option('--rating-mode <m>', 'P5: greedy (the decoded star) | expected (expectation over the star probabilities) | calibrated (that expectation through the map fitted on validation ratings)')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((dir: string, f: EvalFlags) => runCommand(f, async () => {
      const textTask = f.task === 'explanation' || f.task === 'review';
      if (!(TASKS as readonly string[]).includes(f.task) && !textTask) throw new InputError(`--task must be one of ${TASKS.join(', ')}, explanation, review; got '${f.task}'`);
      if (f.split !== 'test' && f.split !== 'valid') throw new InputError(`--split must be test or valid, got '${f.split}'`);
      const card0 = readModelCard(f.model);
      const factory = getFactory(card0.kind);
      const beams = f.beams ? boundedInt('beams', f.beams, 20, 1, MAX_BEAMS) : undefined;
      const opts: RunOptions = { task: f.task as RunTask, split: f.split as EvalSplit, prompt: f.prompt, beams, ratingMode: f.ratingMode as RatingMode | undefined, quiet: f.quiet };
      checkRunOptions(Boolean(factory.prompted), card0.kind, f.model, opts); // before any loading
      if (factory.engine) await initEngine();
      const ds = await loadDataset(dir);
      const loaded = loadModel(f.model, ds);
      const maxUsers = f.users ? parseIntFlag('users', f.users, 0, 1) : undefined;
      // Every evaluation is kept beside the model so `p5rec report` can gather runs.
      const { run } = await evaluateToRunFile(ds, dir, f.model, loaded, { ...opts, users: maxUsers });
      return run;
    }, (r) => `${r.label ?? r.kind} ${r.task}/${r.split} (${r.count} ${r.task === 'rating' ? 'ratings' : ['explanation', 'review'].includes(r.task) ? 'rows' : 'users'}): ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}${withSe((r as { stderr?: Record<string, number> }).stderr, k)}`).join('  ')}`));
}

export function registerReportCommand(program: Command): void {
  program.command('report').description('tables like the P5 paper\'s (Markdown, JSON, HTML with charts) from evaluation runs')
    .requiredOption('--runs <paths...>', 'eval JSON files or model folders (their evals/)')
    .requiredOption('--out <dir>', 'report folder')
    .option('--force', 'replace the report folder')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no notes on stderr')
    .action((f: CommonFlags & { runs: string[]; out: string; force?: boolean }) => runCommand(f, async () => {
      const { runs, skipped } = collectRunsWithSkips(f.runs);
      const log = logger(f);
      for (const s of skipped) log(`report: skipped ${s.file}: ${s.reason}`);
      const { tables, files } = await writeReport(runs, f.out, f.force);
      return { out: f.out, files, tables: tables.length, runs: runs.length, skipped };
    }, (r) => `report: ${r.files.join(', ')} (${r.tables} tables from ${r.runs} runs)`));
}

/** Where a `--force` fit is built beside the model it replaces. */
function fitStagingDir(out: string): string {
  return join(dirname(resolve(out)), `.${basename(resolve(out))}.next`);
}

/**
 * Where a fit writes, decided before anything is loaded or written: in
 * place for a new folder, beside the old model with --force (swapped in when
 * complete), or where the checkpoint to resume is. A partial fit is never
 * restarted by accident, and a folder p5rec did not write is never replaced.
 */
function planFit(out: string, force: boolean, resume: boolean): { runDir: string; staged: boolean; createdOut: boolean } {
  const stage = fitStagingDir(out);
  if (resume) {
    const staged = existsSync(join(stage, 'checkpoint', 'checkpoint.json'));
    return { runDir: staged ? stage : out, staged, createdOut: !existsSync(out) };
  }
  const entries = existsSync(out) ? readdirSync(out) : [];
  const hasModel = entries.includes('model.json');
  const partial = entries.includes('checkpoint') && existsSync(join(out, 'checkpoint', 'checkpoint.json'));
  if (entries.length > 0 && !hasModel && !entries.includes('checkpoint')) {
    throw new InputError(`the folder holds files that are not a p5rec model (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); ${force ? 'refusing to replace it' : 'choose another --out'}`, { file: out });
  }
  if (!force) {
    if (hasModel) throw new InputError('model folder already holds a model (pass --force to replace it)', { file: out });
    if (partial) throw new InputError(`a partial fit exists at ${join(out, 'checkpoint')} (${fitProgress(join(out, 'checkpoint'))}); pass --resume to continue it or --force to start over`, { file: out });
  }
  if (hasModel || partial) return { runDir: stage, staged: true, createdOut: false };
  return { runDir: out, staged: false, createdOut: !existsSync(out) };
}

function fitProgress(dir: string): string {
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as { epoch?: number };
    return `after epoch ${meta.epoch}`;
  } catch {
    return 'unreadable';
  }
}

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** ` ± se` when the evaluation reports a standard error for the metric. */
function withSe(stderr: Record<string, number> | undefined, key: string): string {
  const se = stderr?.[key];
  return se !== undefined && Number.isFinite(se) ? ` ± ${se.toFixed(4)}` : '';
}
