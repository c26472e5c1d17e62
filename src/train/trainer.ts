/**
 * The training loop, generic over a `TrainTask` (batch → loss):
 *
 *   await train({ task, batchSize: 32, epochs: 10, outDir: 'runs/p5' });
 *   await train({ taskModule: { module, options }, workers: 2, ... });   // data-parallel
 *   await train({ ..., resume: true });                                  // continue a run
 *
 * Per optimizer step: the global batch (`batchSize` examples, a seeded
 * per-epoch shuffle) is cut into micro-batches of `microBatchSize`
 * (gradient accumulation), micro-batches are spread over the workers in
 * contiguous blocks, gradients are combined as Σ wᵢ·∇lossᵢ / Σ wᵢ, clipped
 * to a global norm, and AdamW updates one flat parameter buffer with a
 * linear warmup / linear decay learning rate. The data order, dropout seeds
 * and the result do not depend on the number of workers.
 *
 * Checkpoints (`<outDir>/checkpoint`, every `checkpointEvery` steps, at
 * the end, and at the last completed step when `signal` stops the run) hold
 * parameters, optimizer moments and the step; `resume`
 * continues from the last one with the same data order. A JSONL log
 * (`<outDir>/train-log.jsonl`, one line per step) and a progress line on
 * stderr (loss, tokens/s, ETA) report progress.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineBackend, type BackendName } from '../engine/backend.js';
import { InputError } from '../errors.js';
import { Progress, fmtCount } from '../util/progress.js';
import { Rng, hashString } from '../util/rng.js';
import { AdamW, clipFactor, learningRate, scaleAndNorm, type ScheduleKind } from './adamw.js';
import { findCheckpoint, loadTrainerCheckpoint, saveTrainerCheckpoint, type Fingerprint, type TrainerState } from './checkpoint.js';
import { WorkerPool } from './parallel.js';
import { decayRanges, Replica, type MicroResult, type ParamLayout, type RowLrScale } from './replica.js';
import { defaultNoDecay, moduleUrl, type CreateTask, type StepContext, type TaskModuleSpec, type TrainTask } from './task.js';

export interface TrainOptions {
  /** The task, in-process (workers = 1). */
  task?: TrainTask;
  /** A task module; required for workers > 1 (each worker builds its own). */
  taskModule?: TaskModuleSpec;
  /** Data-parallel worker threads; default 1 (in-process, no threads). */
  workers?: number;
  /** Backend of the worker threads; default the active one (or 'wasm'). */
  backend?: BackendName;
  /** Worker script override (tests, bundlers). */
  workerUrl?: string | URL;

  /** Examples per optimizer step (the global batch). */
  batchSize: number;
  /** Examples per forward pass; default ⌈batchSize / workers⌉. */
  microBatchSize?: number;
  /** Length of the run: `steps`, or `epochs` over the data (default 1 epoch). */
  steps?: number;
  epochs?: number;

  /** AdamW; defaults are P5's: lr 1e-3, eps 1e-6, weight decay 0.01. */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Default 0.05. */
  warmupRatio?: number;
  /** Default 'linear' (warmup then linear decay). */
  schedule?: ScheduleKind;
  /** Parameters without weight decay; default: names with bias / layer_norm / LayerNorm. */
  noDecay?: (name: string) => boolean;
  /** Learning-rate multiplier per parameter name (default 1 for all). */
  lrScale?: (name: string) => number;
  /** Learning-rate multipliers for some rows of a 2-D parameter; they replace lrScale on those rows. */
  rowLrScales?: readonly RowLrScale[];
  /** Global gradient-norm clip; default 1.0, 0 = off. */
  clipNorm?: number;
  /** Data order and dropout seeds; default 0. */
  seed?: number;

  /** Checkpoints and the JSONL log go here (none without it). */
  outDir?: string;
  /** Checkpoint every N steps (and always at the end); 0 = only at the end. */
  checkpointEvery?: number;
  /** Also write the task's own model export to `<outDir>/model` at each checkpoint. */
  exportModel?: boolean;
  /** Continue from `<outDir>/checkpoint`. */
  resume?: boolean;
  /** JSONL log path; default `<outDir>/train-log.jsonl`. */
  logFile?: string;

  quiet?: boolean;
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Stop after the current step; a checkpoint is written for the last completed step, so `resume` loses nothing. */
  signal?: AbortSignal;
  onStep?(record: StepRecord): void;
  /** Validation while training: see {@link ValidationOptions}. */
  validate?: ValidationOptions;
  /**
   * Keep an exponential moving average of the parameters (Polyak averaging):
   * after each step, ema += (1 − d)·(params − ema) with d = min(emaDecay,
   * (1 + n)/(10 + n)) at the n-th update, so the first steps do not pin it to
   * the initial weights. Validation scores the average, and the average is
   * what the run ends with (`params`, the task's model); checkpoints keep
   * both, so a resume continues the same average. Absent: no averaging.
   */
  emaDecay?: number;
}

/**
 * Score the current parameters every `every` steps and at the end (higher is
 * better). Each result goes to the JSONL log as a `"type":"valid"` line; the
 * best one is handed to `onBest` (keep it); after `patience` validations
 * without a new best the run ends early (a finished run, not an interrupted one).
 */
export interface ValidationOptions {
  every: number;
  /** Validations without improvement before stopping; 0 or absent = never stop early. */
  patience?: number;
  run(step: number, params: Float32Array, layout: ParamLayout): Promise<ValidationResult>;
  onBest?(step: number, params: Float32Array, layout: ParamLayout, result: ValidationResult): Promise<void> | void;
}

export interface ValidationResult {
  /** The number compared across validations (e.g. HR@10). */
  metric: number;
  /** Everything worth logging beside it (metric values, their standard errors, users). */
  values: Record<string, number>;
}

export interface ValidationRecord extends ValidationResult {
  step: number;
  ms: number;
}

export interface StepRecord {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  examples: number;
  tokens: number;
  tokensPerSec: number;
  stepMs: number;
  /** Of stepMs: forward + backward (all micro-batches, all workers, incl. gradient transfer). */
  gradMs: number;
  /** Of stepMs: clipping, AdamW and the parameter update of the replica(s). */
  updateMs: number;
}

export interface TrainResult {
  /** Last completed step. */
  step: number;
  totalSteps: number;
  /** Step records of this run (after a resume: from the checkpoint on). */
  records: StepRecord[];
  /** True when stopped by the signal before the end. */
  stopped: boolean;
  /** True when validation stopped the run early (patience exhausted). */
  earlyStopped?: boolean;
  /** Validations of the whole run (after a resume: read back from the log as well). */
  validations?: ValidationRecord[];
  /** The best validation, when any ran. */
  best?: ValidationRecord;
  layout: ParamLayout;
  /** Final parameters (flat, `layout` order). */
  params: Float32Array;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new InputError(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  const micro = opts.microBatchSize ?? Math.ceil(opts.batchSize / workers);
  if (!Number.isInteger(micro) || micro < 1) throw new InputError(`microBatchSize must be a positive integer, got ${micro}`);
  if (opts.resume && !opts.outDir) throw new InputError('resume needs outDir (where the checkpoint is)');
  if (opts.emaDecay !== undefined && !(opts.emaDecay > 0 && opts.emaDecay < 1)) throw new InputError(`emaDecay must be in (0, 1), got ${opts.emaDecay}`, { field: 'emaDecay' });
  if (opts.emaDecay !== undefined && opts.exportModel && workers > 1) throw new InputError('emaDecay with exportModel needs workers = 1 (the workers hold the raw parameters)', { field: 'emaDecay' });

  // ---- replicas
  let local: Replica | null = null;
  let pool: WorkerPool | null = null;
  let owned: TrainTask | null = null;
  if (workers === 1) {
    let task = opts.task;
    if (!task) {
      if (!opts.taskModule) throw new InputError('train: give a task or a taskModule');
      const mod = (await import(moduleUrl(opts.taskModule.module))) as Record<string, unknown>;
      const factory = mod[opts.taskModule.export ?? 'createTask'] as CreateTask;
      if (typeof factory !== 'function') throw new InputError(`task module ${opts.taskModule.module} has no export '${opts.taskModule.export ?? 'createTask'}'`);
      task = owned = await factory(opts.taskModule.options, { rank: 0, workers: 1, backend: engineBackend() ?? 'wasm' });
    }
    local = new Replica(task);
  } else {
    if (!opts.taskModule) throw new InputError('data-parallel training (workers > 1) needs a taskModule: each worker builds its own task');
    pool = await WorkerPool.start({ workers, backend: opts.backend ?? engineBackend() ?? 'wasm', task: opts.taskModule, workerUrl: opts.workerUrl });
  }
  try {
    return await runLoop(opts, workers, micro, local, pool);
  } finally {
    if (pool) await pool.close();
    owned?.dispose?.();
  }
}

async function runLoop(opts: TrainOptions, workers: number, micro: number, local: Replica | null, pool: WorkerPool | null): Promise<TrainResult> {
  const layout = local ? local.layout : pool!.layout;
  const size = local ? local.task.size : pool!.size;
  if (!(size > 0)) throw new InputError('the training data is empty');
  const seed = opts.seed ?? 0;
  const batchSize = opts.batchSize;
  const stepsPerEpoch = Math.ceil(size / batchSize);
  const totalSteps = opts.steps ?? (opts.epochs ?? 1) * stepsPerEpoch;
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new InputError(`the run has ${totalSteps} steps; set steps or epochs ≥ 1`);
  const fingerprint: Fingerprint = { seed, examples: size, batchSize, microBatchSize: micro, totalSteps };
  const lr = opts.lr ?? 1e-3;
  const warmupRatio = opts.warmupRatio ?? 0.05;
  const clip = opts.clipNorm ?? 1.0;
  const noDecay = opts.noDecay ?? defaultNoDecay;
  const adam = new AdamW(layout.total, decayRanges(layout, noDecay, opts.lrScale, opts.rowLrScales), { beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: opts.weightDecay });
  const params = pool ? pool.params : new Float32Array(layout.total);
  let ema: Float32Array | null = null;
  const grad = new Float32Array(layout.total);
  const logFile = opts.logFile ?? (opts.outDir ? join(opts.outDir, 'train-log.jsonl') : undefined);
  if (opts.outDir) mkdirSync(opts.outDir, { recursive: true });

  let start = 0;
  let elapsedMs = 0;
  let tokensSoFar = 0;
  const validations: ValidationRecord[] = [];
  if (opts.resume) {
    const dir = findCheckpoint(opts.outDir!);
    if (!dir) throw new InputError('nothing to resume: no checkpoint in the output folder', { file: opts.outDir });
    const ck = loadTrainerCheckpoint(dir, layout);
    checkFingerprint(ck.state.fingerprint, fingerprint, dir);
    params.set(ck.params);
    adam.m.set(ck.m);
    adam.v.set(ck.v);
    adam.t = ck.state.adamSteps;
    if (opts.emaDecay !== undefined) {
      if (!ck.ema) throw new InputError('the checkpoint has no parameter average, but this run asks for emaDecay (resume with the options it was started with)', { file: dir, field: 'emaDecay' });
      ema = ck.ema;
    } else if (ck.ema) throw new InputError('the checkpoint keeps a parameter average; resume with the emaDecay it was started with', { file: dir, field: 'emaDecay' });
    start = ck.state.step;
    elapsedMs = ck.state.elapsedMs;
    tokensSoFar = ck.state.tokens;
    if (logFile) {
      truncateLog(logFile, start);
      validations.push(...readValidations(logFile));
    }
    if (local) local.readParams(params);
  } else {
    if (local) local.writeParams(params);
    else await pool!.pullParams();
    if (logFile && existsSync(logFile)) writeFileSync(logFile, '');
  }
  if (opts.emaDecay !== undefined && !ema) ema = Float32Array.from(params);

  // Counted from this run's first step, so that the rate and ETA are right after a resume.
  const progress = new Progress({ label: start > 0 ? `train (resumed at step ${start})` : 'train', total: totalSteps - start, unit: 'step', quiet: opts.quiet, stream: opts.progressStream });
  const records: StepRecord[] = [];
  const perms = new Map<number, Int32Array>();
  const permutation = (epoch: number): Int32Array => {
    let p = perms.get(epoch);
    if (!p) {
      p = new Rng(`${seed}:epoch:${epoch}`).shuffle(Int32Array.from({ length: size }, (_, i) => i)) as Int32Array;
      perms.clear();
      perms.set(epoch, p);
    }
    return p;
  };
  const save = async (step: number): Promise<void> => {
    if (!opts.outDir) return;
    const state: TrainerState = { version: 1, step, fingerprint, adamSteps: adam.t, elapsedMs, tokens: tokensSoFar };
    saveTrainerCheckpoint(opts.outDir, layout, { state, params, m: adam.m, v: adam.v, ...(ema ? { ema } : {}) });
    if (opts.exportModel) {
      const dir = join(opts.outDir, 'model');
      if (pool) await pool.exportModel(dir);
      else {
        // The export is the averaged model; training goes on from the raw parameters.
        if (ema) local!.readParams(ema);
        await local!.task.exportModel?.(dir);
        if (ema) local!.readParams(params);
      }
    }
  };

  const best = (): ValidationRecord | undefined => validations.reduce<ValidationRecord | undefined>((b, v) => (!b || v.metric > b.metric ? v : b), undefined);
  const validateNow = async (s: number): Promise<boolean> => {
    const v = opts.validate!;
    const before = best();
    const t = performance.now();
    const r = await v.run(s, ema ?? params, layout);
    const rec: ValidationRecord = { step: s, metric: r.metric, values: r.values, ms: performance.now() - t };
    validations.push(rec);
    if (logFile) appendFileSync(logFile, JSON.stringify({ type: 'valid', step: s, metric: r.metric, ...r.values, ms: Math.round(rec.ms), time: new Date().toISOString() }) + '\n');
    if (!opts.quiet) (opts.progressStream ?? process.stderr).write(`validation at step ${s}: ${Object.entries(r.values).map(([k, x]) => `${k} ${Number.isInteger(x) ? x : x.toFixed(4)}`).join(', ')}${!before || r.metric > before.metric ? ' (best)' : ''}\n`);
    if (!before || r.metric > before.metric) await v.onBest?.(s, ema ?? params, layout, r);
    const b = best()!;
    const since = validations.filter((x) => x.step > b.step).length;
    return Boolean(v.patience && since >= v.patience);
  };

  let stopped = false;
  let earlyStopped = false;
  let step = start;
  let saved = start;
  let recentTokens = 0;
  let recentMs = 0;
  while (step < totalSteps) {
    // Yield to the event loop once per step: a step is synchronous work, and
    // without this a SIGINT handler (which aborts `signal`) would never run.
    if (opts.signal) await new Promise<void>((r) => setImmediate(r));
    if (opts.signal?.aborted) {
      stopped = true;
      break;
    }
    const s = step + 1;
    const t0 = performance.now();
    const epoch = Math.floor((s - 1) / stepsPerEpoch);
    const k = (s - 1) % stepsPerEpoch;
    const perm = permutation(epoch);
    const batch = Array.from(perm.subarray(k * batchSize, Math.min(size, (k + 1) * batchSize)));
    const micros: { indices: number[]; ctx: StepContext }[] = [];
    for (let i = 0; i * micro < batch.length; i++) {
      micros.push({ indices: batch.slice(i * micro, (i + 1) * micro), ctx: { step: s, micro: i, seed: hashString(`${seed}:${s}:${i}`), rank: 0 } });
    }
    let results: MicroResult[];
    if (pool) {
      const perRank = Array.from({ length: workers }, (_, r) => micros.slice(Math.floor((r * micros.length) / workers), Math.floor(((r + 1) * micros.length) / workers)));
      results = await pool.step(perRank, grad);
    } else {
      grad.fill(0);
      results = micros.map((m) => local!.accumulate(m.indices, m.ctx, grad));
    }
    let wSum = 0;
    let lossSum = 0;
    let tokens = 0;
    for (const r of results) {
      wSum += r.weight;
      lossSum += r.lossSum;
      tokens += r.tokens;
    }
    // grad /= Σw, the global norm, and clipping folded into the AdamW pass
    // (same float32 roundings as scaling in place, then clipGlobalNorm)
    const gradNorm = scaleAndNorm(grad, wSum > 0 ? 1 / wSum : 1);
    const t1 = performance.now();
    const rate = learningRate(s, totalSteps, lr, warmupRatio, opts.schedule ?? 'linear');
    adam.step(params, grad, rate, clipFactor(gradNorm, clip));
    if (ema) updateAverage(ema, params, Math.min(opts.emaDecay!, (1 + adam.t) / (10 + adam.t)));
    if (local) local.readParams(params);
    step = s;
    const t2 = performance.now();
    const stepMs = t2 - t0;
    elapsedMs += stepMs;
    tokensSoFar += tokens;
    recentTokens += tokens;
    recentMs += stepMs;
    const loss = wSum > 0 ? lossSum / wSum : 0;
    const record: StepRecord = {
      step: s,
      totalSteps,
      epoch,
      loss,
      lr: rate,
      gradNorm,
      examples: batch.length,
      tokens,
      tokensPerSec: stepMs > 0 ? (tokens * 1000) / stepMs : 0,
      stepMs,
      gradMs: t1 - t0,
      updateMs: t2 - t1,
    };
    records.push(record);
    if (logFile) appendFileSync(logFile, JSON.stringify({ ...record, time: new Date().toISOString() }) + '\n');
    const tps = recentMs > 0 ? (recentTokens * 1000) / recentMs : 0;
    progress.set(s - start, `loss ${loss.toFixed(4)} | ${tokens > 0 ? `${fmtCount(Math.round(tps))} tok/s | ` : ''}lr ${rate.toExponential(2)}`);
    if (recentMs > 10_000) {
      recentMs = 0;
      recentTokens = 0;
    }
    opts.onStep?.(record);
    if (opts.validate && (s === totalSteps || s % opts.validate.every === 0) && (await validateNow(s))) earlyStopped = true;
    const every = opts.checkpointEvery ?? 0;
    if (s === totalSteps || earlyStopped || (every > 0 && s % every === 0)) {
      await save(s);
      saved = s;
    }
    if (earlyStopped) break;
  }
  // A stopped run keeps every completed step: `resume` continues right after it.
  if (stopped && step > saved) await save(step);
  progress.finish(records.length ? `loss ${records[records.length - 1].loss.toFixed(4)}` : undefined);
  // With averaging the run ends with the average: in the task's model and in `params`.
  if (ema && local) local.readParams(ema);
  return {
    step, totalSteps, records, stopped, layout, params: Float32Array.from(ema ?? params),
    ...(opts.validate ? { earlyStopped, validations, best: best() } : {}),
  };
}

/** ema ← d·ema + (1 − d)·params, in float64 arithmetic per element. */
function updateAverage(ema: Float32Array, params: Float32Array, d: number): void {
  const w = 1 - d;
  for (let i = 0; i < ema.length; i++) ema[i] += w * (params[i] - ema[i]);
}

/** The validation lines of a JSONL training log. */
export function readValidations(file: string): ValidationRecord[] {
  if (!existsSync(file)) return [];
  const out: ValidationRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"type":"valid"')) continue;
    try {
      const { type: _t, step, metric, ms, time: _time, ...values } = JSON.parse(line) as Record<string, number>;
      out.push({ step, metric, ms, values });
    } catch {
      /* a torn last line */
    }
  }
  return out;
}

function checkFingerprint(saved: Fingerprint, now: Fingerprint, dir: string): void {
  for (const key of Object.keys(now) as (keyof Fingerprint)[]) {
    if (saved[key] !== now[key]) {
      throw new InputError(`cannot resume: the checkpoint was made with ${key} ${saved[key]}, this run has ${now[key]}`, { file: dir });
    }
  }
}

/** Drop log lines past `step` (an interrupted run's steps are redone). */
function truncateLog(file: string, step: number): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
  writeFileSync(file, keep.length ? keep.join('\n') + '\n' : '');
}
