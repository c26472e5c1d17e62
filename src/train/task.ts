/**
 * The seam between the training loop and a model: a `TrainTask` owns the
 * trainable variables, turns example indices into a batch and a batch into a
 * loss. The loop (./trainer.ts) does the rest: data order, gradients,
 * accumulation, clipping, AdamW, schedules, checkpoints, logging, and
 * data-parallel workers.
 *
 * For data-parallel training every worker thread builds its own task from a
 * module (`TaskModuleSpec`): the module exports a factory
 * `createTask(options, env)`; `options` must be structured-cloneable.
 */
import { pathToFileURL } from 'node:url';
import type { Scalar, Variable } from '@tensorflow/tfjs-core';
import type { BackendName } from '../engine/backend.js';

export interface StepContext {
  /** Optimizer step, 1-based. */
  step: number;
  /** Micro-batch index within the step (0-based, global across workers). */
  micro: number;
  /** A seed for this micro-batch (dropout masks); same for any worker count. */
  seed: number;
  /** Worker rank (0 in-process). */
  rank: number;
}

/**
 * A scalar mean loss, or the mean with its weight (e.g. the number of target
 * tokens: micro-batches and workers are combined as Σ wᵢ·lossᵢ / Σ wᵢ, so the
 * result is the mean over the whole global batch) and the number of tokens
 * processed (for tokens/s). Default weight: the number of examples.
 */
export type LossResult = Scalar | { loss: Scalar; weight?: number; tokens?: number };

export interface TrainTask<B = unknown> {
  /** Trainable variables by name; the order is the flat-buffer order. */
  readonly params: ReadonlyMap<string, Variable>;
  /** Number of training examples. */
  readonly size: number;
  /** The batch of the examples at `indices`. */
  batch(indices: readonly number[]): B;
  /** Loss of a batch (called under a gradient tape). */
  loss(batch: B, ctx: StepContext): LossResult;
  /** Write the model in its own format (e.g. a HF T5 folder); called at checkpoints. */
  exportModel?(dir: string): void | Promise<void>;
  dispose?(): void;
}

export interface TaskEnv {
  rank: number;
  workers: number;
  backend: BackendName;
}

export type CreateTask = (options: unknown, env: TaskEnv) => TrainTask | Promise<TrainTask>;

export interface TaskModuleSpec {
  /** Module path or file: URL exporting the factory. */
  module: string;
  /** Export name of the factory; default 'createTask'. */
  export?: string;
  /** Structured-cloneable options passed to the factory. */
  options?: unknown;
}

export function defaultNoDecay(name: string): boolean {
  return /bias|layer_norm|LayerNorm/.test(name);
}

/** A module path or URL as an import() specifier. */
export function moduleUrl(spec: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(spec) && !/^[a-z]:[\\/]/i.test(spec) ? spec : pathToFileURL(spec).href;
}
