/**
 * Data-parallel training over worker_threads, the main-thread side.
 *
 * Every worker runs its own tensor engine (one wasm backend each) and its own
 * replica of the task. The parameters live in one SharedArrayBuffer that the
 * main thread updates (AdamW) and every worker reads before a step; each
 * worker writes its summed, weight-scaled gradients into its own slot of a
 * second SharedArrayBuffer, and the main thread adds the slots up. Messages
 * only carry indices and loss sums.
 */
import { Worker } from 'node:worker_threads';
import { P5recError } from '../errors.js';
import type { BackendName } from '../engine/backend.js';
import { sameLayout, type MicroResult, type ParamLayout } from './replica.js';
import type { StepContext, TaskModuleSpec } from './task.js';
import type { WorkerData, WorkerReply, WorkerRequest } from './worker.js';

type OkReply = Extract<WorkerReply, { ok: true }>;
type Pending = { resolve: (r: OkReply) => void; reject: (e: Error) => void };
/** A request without its id (distributes over the union). */
type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

class WorkerHandle {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private dead: Error | null = null;
  readonly ready: Promise<{ layout: { name: string; shape: number[] }[]; size: number }>;

  constructor(
    readonly worker: Worker,
    readonly rank: number,
  ) {
    this.ready = new Promise((resolve, reject) => {
      worker.on('message', (m: WorkerReply) => {
        if ('type' in m && m.type === 'ready') return resolve(m);
        if (!('id' in m)) return;
        if (m.id === -1 && !m.ok) return reject(toError(m.error, rank));
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m);
        else p.reject(toError(m.error, rank));
      });
      const die = (err: Error): void => {
        this.dead = err;
        reject(err);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      worker.on('error', (err) => die(new P5recError(`training worker ${rank} crashed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (code !== 0 || this.pending.size > 0) die(new P5recError(`training worker ${rank} exited (code ${code})`));
      });
    });
    this.ready.catch(() => undefined);
  }

  call(msg: Request): Promise<OkReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }
}

function toError(e: { name: string; message: string; facts?: Record<string, unknown> }, rank: number): Error {
  const err = new P5recError(`worker ${rank}: ${e.message}`, (e.facts ?? {}) as never);
  err.name = e.name;
  return err;
}

export interface PoolOptions {
  workers: number;
  backend: BackendName;
  task: TaskModuleSpec;
  /** The worker script; default ./worker.js next to this module. */
  workerUrl?: string | URL;
}

export class WorkerPool {
  /** Shared parameters (the optimizer writes them in place). */
  readonly params: Float32Array;
  private readonly slots: Float32Array[];

  private constructor(
    private readonly handles: WorkerHandle[],
    readonly layout: ParamLayout,
    readonly size: number,
    paramsBuf: SharedArrayBuffer,
    gradsBuf: SharedArrayBuffer,
  ) {
    this.params = new Float32Array(paramsBuf);
    this.slots = handles.map((_, r) => new Float32Array(gradsBuf, r * layout.total * 4, layout.total));
  }

  get workers(): number {
    return this.handles.length;
  }

  static async start(opts: PoolOptions): Promise<WorkerPool> {
    const url = opts.workerUrl ?? new URL('./worker.js', import.meta.url);
    const handles: WorkerHandle[] = [];
    try {
      for (let rank = 0; rank < opts.workers; rank++) {
        const workerData: WorkerData = { p5recTrainWorker: true, rank, workers: opts.workers, backend: opts.backend, task: opts.task };
        handles.push(new WorkerHandle(new Worker(url, { workerData }), rank));
      }
      const infos = await Promise.all(handles.map((h) => h.ready));
      const layouts: ParamLayout[] = infos.map((info) => {
        let offset = 0;
        const entries = info.layout.map((e) => {
          const size = e.shape.reduce((a, b) => a * b, 1);
          const entry = { name: e.name, shape: e.shape, offset, size };
          offset += size;
          return entry;
        });
        return { entries, total: offset };
      });
      for (let r = 1; r < layouts.length; r++) {
        if (!sameLayout(layouts[0], layouts[r])) throw new P5recError(`worker ${r} built a model with other parameters than worker 0`);
        if (infos[r].size !== infos[0].size) throw new P5recError(`worker ${r} sees ${infos[r].size} examples, worker 0 ${infos[0].size}`);
      }
      const total = layouts[0].total;
      const paramsBuf = new SharedArrayBuffer(total * 4);
      const gradsBuf = new SharedArrayBuffer(total * 4 * opts.workers);
      await Promise.all(handles.map((h) => h.call({ type: 'init', params: paramsBuf, grads: gradsBuf })));
      return new WorkerPool(handles, layouts[0], infos[0].size, paramsBuf, gradsBuf);
    } catch (err) {
      await Promise.all(handles.map((h) => h.worker.terminate()));
      throw err;
    }
  }

  /** Rank 0 writes its (initial) parameters into the shared buffer. */
  async pullParams(): Promise<void> {
    await this.handles[0].call({ type: 'pull' });
  }

  /**
   * Runs each rank's micro-batches and returns their results in global order;
   * `grad` receives Σ over ranks of Σ wᵢ·∇lossᵢ.
   */
  async step(perRank: { indices: number[]; ctx: StepContext }[][], grad: Float32Array): Promise<MicroResult[]> {
    const replies = await Promise.all(this.handles.map((h, r) => (perRank[r]?.length ? h.call({ type: 'step', micros: perRank[r] }) : Promise.resolve(null))));
    grad.fill(0);
    const out: MicroResult[] = [];
    for (let r = 0; r < this.handles.length; r++) {
      if (!replies[r]) continue;
      const s = this.slots[r];
      for (let i = 0; i < grad.length; i++) grad[i] += s[i];
      out.push(...(replies[r]!.results ?? []));
    }
    return out;
  }

  async exportModel(dir: string): Promise<void> {
    await this.handles[0].call({ type: 'export', dir });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.handles.map(async (h) => {
        try {
          await h.call({ type: 'close' });
        } catch {
          // already gone
        }
        await h.worker.terminate();
      }),
    );
  }
}
