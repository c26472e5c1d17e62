/**
 * Trainer checkpoints: everything `resume` needs to continue as if never
 * stopped, in `<outDir>/checkpoint/`:
 *
 *   trainer.json             step, options fingerprint, optimizer step count
 *   params.safetensors       the task's variables (its own layout and names)
 *   optimizer.safetensors    AdamW moments: exp_avg.<name>, exp_avg_sq.<name>
 *   ema.safetensors          the parameters' moving average (runs with emaDecay)
 *
 * A new checkpoint is written into a temp folder, the previous one is moved
 * aside, the new one renamed into place, then the old one removed; a crash at
 * any point leaves a complete checkpoint (`checkpoint` or `checkpoint.old`).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readSafetensors, writeSafetensors, type Tensor as StTensor } from '../util/safetensors.js';
import type { ParamLayout } from './replica.js';

export const CHECKPOINT_DIR = 'checkpoint';

/** Options that must not change between a run and its resumption. */
export interface Fingerprint {
  seed: number;
  examples: number;
  batchSize: number;
  microBatchSize: number;
  totalSteps: number;
}

export interface TrainerState {
  version: 1;
  step: number;
  fingerprint: Fingerprint;
  /** AdamW steps taken (bias correction). */
  adamSteps: number;
  /** Training time and tokens so far (for the log's totals). */
  elapsedMs: number;
  tokens: number;
}

export interface CheckpointData {
  state: TrainerState;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** The moving average of the parameters, when the run keeps one. */
  ema?: Float32Array;
}

export function checkpointDir(outDir: string): string {
  return join(outDir, CHECKPOINT_DIR);
}

export function saveTrainerCheckpoint(outDir: string, layout: ParamLayout, data: CheckpointData): void {
  const final = checkpointDir(outDir);
  const old = `${final}.old`;
  const tmp = join(outDir, `.${CHECKPOINT_DIR}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const params: Record<string, StTensor> = {};
  const moments: Record<string, StTensor> = {};
  for (const e of layout.entries) {
    const span = (a: Float32Array) => a.subarray(e.offset, e.offset + e.size);
    params[e.name] = { dtype: 'F32', shape: e.shape, data: span(data.params) };
    moments[`exp_avg.${e.name}`] = { dtype: 'F32', shape: e.shape, data: span(data.m) };
    moments[`exp_avg_sq.${e.name}`] = { dtype: 'F32', shape: e.shape, data: span(data.v) };
  }
  writeSafetensors(join(tmp, 'params.safetensors'), params, { step: String(data.state.step) });
  writeSafetensors(join(tmp, 'optimizer.safetensors'), moments, { step: String(data.state.step) });
  if (data.ema) {
    const avg: Record<string, StTensor> = {};
    for (const e of layout.entries) avg[e.name] = { dtype: 'F32', shape: e.shape, data: data.ema.subarray(e.offset, e.offset + e.size) };
    writeSafetensors(join(tmp, 'ema.safetensors'), avg, { step: String(data.state.step) });
  }
  writeFileSync(join(tmp, 'trainer.json'), JSON.stringify(data.state, null, 2) + '\n');
  rmSync(old, { recursive: true, force: true });
  if (existsSync(final)) renameSync(final, old);
  renameSync(tmp, final);
  rmSync(old, { recursive: true, force: true });
}

/** The latest checkpoint under `outDir`, or null when there is none. */
export function findCheckpoint(outDir: string): string | null {
  const final = checkpointDir(outDir);
  if (existsSync(join(final, 'trainer.json'))) return final;
  if (existsSync(join(`${final}.old`, 'trainer.json'))) return `${final}.old`;
  return null;
}

export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, 'trainer.json');
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`unreadable trainer state (${(e as Error).message})`, { file });
  }
  if (!state || state.version !== 1 || !Number.isInteger(state.step) || !state.fingerprint) {
    throw new InputError('not a p5rec trainer state (version 1)', { file });
  }
  return state;
}

/** Load a checkpoint for `layout`; names and shapes must match. */
export function loadTrainerCheckpoint(dir: string, layout: ParamLayout): CheckpointData {
  const state = readTrainerState(dir);
  const pFile = join(dir, 'params.safetensors');
  const oFile = join(dir, 'optimizer.safetensors');
  const params = readInto(pFile, layout, (n) => n);
  const m = readInto(oFile, layout, (n) => `exp_avg.${n}`);
  const v = readInto(oFile, layout, (n) => `exp_avg_sq.${n}`);
  const eFile = join(dir, 'ema.safetensors');
  return { state, params, m, v, ...(existsSync(eFile) ? { ema: readInto(eFile, layout, (n) => n) } : {}) };
}

/** A checkpoint's parameters by name (e.g. to rebuild a model from it). */
export function readCheckpointParams(dir: string): Map<string, { shape: number[]; data: Float32Array }> {
  const file = readSafetensors(join(dir, 'params.safetensors'));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const n of file.names) out.set(n, { shape: file.info(n).shape, data: file.float32(n) });
  return out;
}

function readInto(path: string, layout: ParamLayout, key: (name: string) => string): Float32Array {
  const file = readSafetensors(path);
  const out = new Float32Array(layout.total);
  for (const e of layout.entries) {
    const k = key(e.name);
    if (!file.names.includes(k)) throw new InputError(`checkpoint does not match the model: tensor '${k}' is missing`, { file: path });
    const shape = file.info(k).shape;
    if (shape.join(',') !== e.shape.join(',')) {
      throw new InputError(`checkpoint does not match the model: shape [${shape.join(', ')}], the model has [${e.shape.join(', ')}]`, { file: path, field: k });
    }
    out.set(file.float32(k), e.offset);
  }
  return out;
}
