/**
 * Data-parallel worker thread (started by ./parallel.ts). It starts its own
 * tensor engine, builds the task from the task module, and on each step reads
 * the shared parameters, computes the gradients of its micro-batches into its
 * slot of the shared gradient buffer and reports loss sums.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { initEngine, type BackendName } from '../engine/backend.js';
import { P5recError } from '../errors.js';
import { Replica, type MicroResult } from './replica.js';
import { moduleUrl, type CreateTask, type StepContext, type TaskModuleSpec } from './task.js';

export interface WorkerData {
  /** Marks a p5rec training worker (only then does this module start listening). */
  p5recTrainWorker: true;
  rank: number;
  workers: number;
  backend: BackendName;
  task: TaskModuleSpec;
}

export type WorkerRequest =
  | { id: number; type: 'init'; params: SharedArrayBuffer; grads: SharedArrayBuffer }
  | { id: number; type: 'pull' }
  | { id: number; type: 'step'; micros: { indices: number[]; ctx: StepContext }[] }
  | { id: number; type: 'export'; dir: string }
  | { id: number; type: 'close' };

export type WorkerReply =
  | { type: 'ready'; layout: { name: string; shape: number[] }[]; size: number }
  | { id: number; ok: true; results?: MicroResult[] }
  | { id: number; ok: false; error: { name: string; message: string; facts?: Record<string, unknown> } };

async function main(): Promise<void> {
  const port = parentPort!;
  const data = workerData as WorkerData;
  const send = (m: WorkerReply): void => port.postMessage(m);
  const fail = (id: number, err: unknown): void => {
    const e = err as { name?: string; message?: string; facts?: Record<string, unknown> };
    send({ id, ok: false, error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), facts: e?.facts } });
  };
  let replica: Replica;
  try {
    await initEngine({ backend: data.backend });
    const mod = (await import(moduleUrl(data.task.module))) as Record<string, unknown>;
    const factory = mod[data.task.export ?? 'createTask'] as CreateTask | undefined;
    if (typeof factory !== 'function') throw new P5recError(`task module ${data.task.module} has no export '${data.task.export ?? 'createTask'}'`);
    const task = await factory(data.task.options, { rank: data.rank, workers: data.workers, backend: data.backend });
    replica = new Replica(task);
    send({ type: 'ready', layout: replica.layout.entries.map((e) => ({ name: e.name, shape: e.shape })), size: task.size });
  } catch (err) {
    fail(-1, err);
    return;
  }
  let params: Float32Array | null = null;
  let slot: Float32Array | null = null;
  port.on('message', async (msg: WorkerRequest) => {
    try {
      switch (msg.type) {
        case 'init': {
          const total = replica.layout.total;
          params = new Float32Array(msg.params, 0, total);
          slot = new Float32Array(msg.grads, data.rank * total * 4, total);
          send({ id: msg.id, ok: true });
          break;
        }
        case 'pull':
          replica.writeParams(params!);
          send({ id: msg.id, ok: true });
          break;
        case 'step': {
          replica.readParams(params!);
          slot!.fill(0);
          const results = msg.micros.map((m) => replica.accumulate(m.indices, { ...m.ctx, rank: data.rank }, slot!));
          send({ id: msg.id, ok: true, results });
          break;
        }
        case 'export':
          replica.readParams(params!);
          await replica.task.exportModel?.(msg.dir);
          send({ id: msg.id, ok: true });
          break;
        case 'close':
          replica.task.dispose?.();
          send({ id: msg.id, ok: true });
          port.close();
          break;
      }
    } catch (err) {
      fail(msg.id, err);
    }
  });
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerData> | null)?.p5recTrainWorker) void main();
