/**
 * A second core for the wasm engine when the native addon is not used: one
 * helper worker thread and the chunk scheduler that shares a job with it.
 *
 * tfjs-backend-wasm runs single-threaded in Node (its threaded build does not
 * start), so the engine starts ONE helper worker (./wasm-gemm-worker.ts),
 * which runs its own tfjs wasm engine (XNNPACK) on copies of the operands in
 * a SharedArrayBuffer. The kernels that use it (./kernels/matmul_split.ts)
 * cut a job into up to 8 chunks, copy the operands into the shared buffer
 * (`sharedData`), publish the job (`publishJob`) and share the chunks with
 * the worker (`runChunks`):
 *
 *  - both threads claim chunks from an atomic counter: the calling thread
 *    computes its chunks itself, the worker writes its results into the
 *    shared buffer, which the caller reads after all chunks are done. When
 *    the worker gets no core (a busy machine), the caller simply claims more
 *    chunks;
 *  - the caller waits (`Atomics.wait`) for a chunk the worker is still on for
 *    about one chunk's time, then takes it back and computes it itself (the
 *    worker's late result is dropped); while the worker is still inside such
 *    a job, jobs run single-threaded. After a job where the split did not pay
 *    (its time > 85% of the caller's chunk time x chunks: no free core for
 *    the worker), the next 2, 4, ... 64 jobs skip it.
 *
 * The worker starts on the first job big enough, in the background
 * (~0.5 s); jobs run single-threaded until it reports ready. It is
 * `unref`'d (it never keeps a process alive). A worker that fails or exits
 * disables the helper for the process; its unfinished chunks run on the caller.
 *
 * Threads: env `P5REC_WASM_THREADS` (1 = off, 2 = one helper, the default
 * when the machine has >= 2 cores), `setWasmThreads(n)`. Off by default in
 * worker threads (data-parallel replicas already use the cores).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

/** ctrl (Int32Array over a SharedArrayBuffer) slots. */
export const CTRL = {
  seq: 0,
  ready: 1,
  next: 2,
  done: 3,
  nChunks: 4,
  items: 5,
  M: 6,
  N: 7,
  K: 8,
  per: 9,
  act: 10,
  hasBias: 11,
  alpha: 12, // float32 bits
  aOff: 13,
  bOff: 14,
  cOff: 15,
  biasOff: 16,
  bItems: 17,
  error: 18,
  /** generation of the data buffer the job uses */
  gen: 19,
  /** 1 while the worker is inside a job (the caller then leaves the shared buffer alone) */
  busy: 20,
  /** 0: chunks of rows / batch items; 1: chunks of K (C = Σ A_kᵀ B_k, partial sums) */
  mode: 21,
  chunk0: 64,
} as const;
export const CTRL_SIZE = 128;
export const MAX_CHUNKS = 64;
/** chunk states */
export const CHUNK_FREE = 0;
export const CHUNK_MAIN = 1;
export const CHUNK_WORKER = 2;
export const CHUNK_WORKER_DONE = 3;
/** taken back by the caller from a worker that had not finished it (its result is dropped) */
export const CHUNK_STOLEN = 4;

/**
 * `ctrl[seq]` is a seqlock: odd while the caller writes a job's parameters,
 * even when published. `ctrl[next]` holds (job id << 8) | next chunk, so a
 * thread still looping over an old job can never claim a chunk of a new one.
 */
export function jobId(seq: number): number {
  return (seq >>> 1) & 0x7fffff;
}

/** Claims the next chunk of job `id` (of `n`), or -1 when none is left / the job is over. */
export function claimChunk(ctrl: Int32Array, id: number, n: number): number {
  for (;;) {
    const v = Atomics.load(ctrl, CTRL.next);
    if (v >>> 8 !== id) return -1;
    const c = v & 255;
    if (c >= n) return -1;
    if (Atomics.compareExchange(ctrl, CTRL.next, v, v + 1) === v) return c;
  }
}

/** Activation order of the chunk protocol (`ctrl[act]`). */
export const HELPER_ACTIVATIONS = ['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid', 'elu'] as const;

/** The helper worker and its shared buffers (opaque to the kernels). */
export interface Helper {
  worker: Worker;
  ctrl: Int32Array;
  ctrlF: Float32Array;
  port: MessagePort;
  data: Float32Array | null;
  gen: number;
  dead: boolean;
}

let helper: Helper | null | undefined;
let threads = defaultThreads();
/** Jobs with fewer multiply-adds run on the calling thread only. */
let minMacs = 1 << 22;

function defaultThreads(): number {
  const env = process.env.P5REC_WASM_THREADS;
  if (env !== undefined && env.trim() !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 1) return Math.min(n, 2);
  }
  if (!isMainThread) return 1;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.min(2, cores);
}

/** Threads for the wasm matmuls (1 or 2); returns the count now in use. */
export function setWasmThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setWasmThreads: expected a positive integer, got ${n}`);
  threads = Math.min(n, 2);
  return threads;
}

export function wasmThreads(): number {
  return threads;
}

let judging = true;

/**
 * Tests: the size (multiply-adds) from which a product is split (default 4M),
 * and whether splits that did not pay back off (default true).
 */
export function setWasmSplitMinMacs(n: number, backoffOn = true): void {
  minMacs = n;
  judging = backoffOn;
  skip = 0;
  backoff = 1;
}

function workerPath(): string | null {
  const candidates = [
    new URL('./wasm-gemm-worker.js', import.meta.url), // dist/engine
    new URL('../../dist/engine/wasm-gemm-worker.js', import.meta.url), // src/engine (ts sources, tests)
  ];
  for (const u of candidates) {
    try {
      const p = fileURLToPath(u);
      if (existsSync(p)) return p;
    } catch {
      // not a file URL
    }
  }
  return null;
}

/** Whether the compiled helper script exists (dist/engine/wasm-gemm-worker.js). */
export function wasmHelperAvailable(): boolean {
  return workerPath() !== null;
}

function spawn(): Helper | null {
  const path = workerPath();
  if (!path) return null;
  try {
    const ctrlBuf = new SharedArrayBuffer(CTRL_SIZE * 4);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(path, {
      workerData: { p5recWasmGemm: true, ctrl: ctrlBuf, port: port2 },
      transferList: [port2],
      // not the parent's --input-type / --eval flags (a worker file is no string input)
      execArgv: process.execArgv.filter((a) => !/^--(input-type|eval|print)\b/.test(a) && a !== '-e' && a !== '-p'),
      // the helper is wasm only: never load (or warn about) the addon there
      env: { ...process.env, P5REC_NATIVE: '0', P5REC_NATIVE_WARNED: '1', P5REC_WASM_THREADS: '1' },
      stdout: false,
      stderr: false,
    });
    worker.unref();
    port1.unref();
    const h: Helper = { worker, ctrl: new Int32Array(ctrlBuf), ctrlF: new Float32Array(ctrlBuf), port: port1, data: null, gen: 0, dead: false };
    worker.on('error', () => {
      h.dead = true;
    });
    worker.on('exit', () => {
      h.dead = true;
    });
    return h;
  } catch {
    return null;
  }
}

/** The helper when it is up (starts it on first use); null: run on this thread. */
function ready(): Helper | null {
  if (threads < 2) return null;
  if (helper === undefined) helper = spawn();
  if (!helper || helper.dead || Atomics.load(helper.ctrl, CTRL.error) !== 0) return null;
  return Atomics.load(helper.ctrl, CTRL.ready) === 1 ? helper : null;
}

/** Starts the helper now and waits (tests, benchmarks); true when it is ready. */
export async function startWasmHelper(timeoutMs = 20_000): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    if (ready()) return true;
    if (threads < 2 || !helper || helper.dead || Date.now() - t0 > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Splits done on the helper so far (tests). */
let splitCount = 0;
/** Jobs to run single-threaded before trying the helper again (it did nothing lately). */
let skip = 0;
let backoff = 1;
let helperChunks = 0;
export function wasmSplitCount(): number {
  return splitCount;
}
/** Chunks the helper computed so far (tests, benchmarks). */
export function wasmHelperChunks(): number {
  return helperChunks;
}

/**
 * The helper for a job of `macs` multiply-adds with `outSize` outputs, or
 * null when it runs on this thread: too small, backing off (counts one job
 * down), the helper not up, or still inside an older job (a chunk the caller
 * took back: its shared buffer must be left alone).
 */
export function helperFor(macs: number, outSize: number): Helper | null {
  if (macs < minMacs || outSize === 0) return null;
  if (skip > 0) {
    skip--;
    return null;
  }
  const h = ready();
  if (!h) return null;
  if (Atomics.load(h.ctrl, CTRL.busy) !== 0) return null;
  return h;
}

/** The shared data buffer, grown to at least `need` floats (a new one is posted to the worker). */
export function sharedData(h: Helper, need: number): Float32Array {
  if (!h.data || h.data.length < need) {
    const floats = Math.max(need, h.data ? Math.min(h.data.length * 2, need * 2) : need);
    h.data = new Float32Array(new SharedArrayBuffer(floats * 4));
    h.gen++;
    h.port.postMessage({ buffer: h.data.buffer, gen: h.gen }); // read synchronously when the worker wakes
  }
  return h.data;
}

/** A job's parameters, as the worker reads them from `ctrl` (float offsets into the shared buffer). */
export interface JobParams {
  nChunks: number;
  items: number;
  M: number;
  N: number;
  K: number;
  per: number;
  act: number;
  hasBias: number;
  aOff: number;
  bOff: number;
  cOff: number;
  bItems: number;
  mode: number;
  /** left as they are when absent (a job that does not read them) */
  alpha?: number;
  biasOff?: number;
}

/** Writes the job into `ctrl` under the seqlock and wakes the worker; returns the job id. */
export function publishJob(h: Helper, j: JobParams): number {
  const ctrl = h.ctrl;
  const seq = Atomics.add(ctrl, CTRL.seq, 1) + 1; // odd: writing
  const id = jobId(seq + 1);
  ctrl[CTRL.gen] = h.gen;
  ctrl[CTRL.nChunks] = j.nChunks;
  ctrl[CTRL.items] = j.items;
  ctrl[CTRL.M] = j.M;
  ctrl[CTRL.N] = j.N;
  ctrl[CTRL.K] = j.K;
  ctrl[CTRL.per] = j.per;
  ctrl[CTRL.act] = j.act;
  ctrl[CTRL.hasBias] = j.hasBias;
  if (j.alpha !== undefined) h.ctrlF[CTRL.alpha] = j.alpha;
  ctrl[CTRL.aOff] = j.aOff;
  ctrl[CTRL.bOff] = j.bOff;
  ctrl[CTRL.cOff] = j.cOff;
  if (j.biasOff !== undefined) ctrl[CTRL.biasOff] = j.biasOff;
  ctrl[CTRL.bItems] = j.bItems;
  ctrl[CTRL.mode] = j.mode;
  for (let c = 0; c < j.nChunks; c++) ctrl[CTRL.chunk0 + c] = CHUNK_FREE;
  Atomics.store(ctrl, CTRL.done, 0);
  Atomics.store(ctrl, CTRL.next, id << 8);
  Atomics.store(ctrl, CTRL.seq, seq + 1); // published
  Atomics.notify(ctrl, CTRL.seq);
  splitCount++;
  return id;
}

export interface ChunkHandlers {
  /** compute chunk c on this thread (claimed by it) */
  own(c: number): void;
  /** compute chunk c on this thread, taken back from the worker (which may still write its late result) */
  steal(c: number): void;
  /** chunk c was done by the worker (its result is in the shared buffer) */
  fromWorker?(c: number): void;
  /** after all chunks are in; its time counts in judging the split */
  finish?(): void;
}

/**
 * Shares the chunks of published job `id` between this thread and the
 * worker, takes back those the worker is late on, and judges whether the
 * split paid (`tStart`: when the job began, operand copies included).
 * Returns once every chunk's result is in (on this thread, or `fromWorker`).
 */
export function runChunks(h: Helper, id: number, nChunks: number, tStart: number, on: ChunkHandlers): void {
  const ctrl = h.ctrl;
  let ownMs = 0;
  let owned = 0;
  for (;;) {
    const c = claimChunk(ctrl, id, nChunks);
    if (c < 0) break;
    Atomics.store(ctrl, CTRL.chunk0 + c, CHUNK_MAIN);
    const t0 = performance.now();
    on.own(c);
    ownMs += performance.now() - t0;
    owned++;
  }
  // Chunks the worker is still on: wait up to about one chunk's time, then
  // take them back (a worker without a core must not stall the caller).
  const deadline = performance.now() + (owned ? ownMs / owned : 1) + 0.05;
  let workerDone = 0;
  for (let c = 0; c < nChunks; c++) {
    let state = awaitChunk(h, ctrl, c, deadline);
    if (state === CHUNK_WORKER || state === CHUNK_FREE) {
      // CHUNK_FREE: claimed by the worker, state not yet written; stealing is safe either way
      const prev = Atomics.compareExchange(ctrl, CTRL.chunk0 + c, state, CHUNK_STOLEN);
      if (prev === state) {
        on.steal(c);
        continue;
      }
      state = prev;
    }
    if (state === CHUNK_WORKER_DONE) {
      workerDone++;
      on.fromWorker?.(c);
    }
  }
  on.finish?.();
  helperChunks += workerDone;
  judge(workerDone, owned, ownMs, nChunks, performance.now() - tStart);
}

/** Wait (until `deadline`) while chunk `c` is the worker's or unclaimed; returns its last state. */
function awaitChunk(h: Helper, ctrl: Int32Array, c: number, deadline: number): number {
  let state = Atomics.load(ctrl, CTRL.chunk0 + c);
  while (state === CHUNK_WORKER || state === CHUNK_FREE) {
    const left = deadline - performance.now();
    if (left <= 0 || h.dead || Atomics.load(ctrl, CTRL.error) !== 0) break;
    const d = Atomics.load(ctrl, CTRL.done);
    Atomics.wait(ctrl, CTRL.done, d, Math.min(left, 1));
    state = Atomics.load(ctrl, CTRL.chunk0 + c);
  }
  return state;
}

/**
 * Did the split pay? The caller's own chunks tell how long the whole job
 * would have taken on this thread alone; when the split took more than 85% of
 * that (a worker without a free core, copies, chunks taken back), the next
 * 2, 4, ... 64 jobs run single-threaded before it is tried again.
 */
function judge(workerDone: number, owned: number, ownMs: number, nChunks: number, elapsedMs: number): void {
  if (!judging) return;
  const alone = owned > 0 ? (ownMs / owned) * nChunks : 0;
  const paid = workerDone > 0 && elapsedMs < 0.85 * alone;
  if (paid) {
    backoff = 1;
    skip = 0;
  } else {
    backoff = Math.min(64, backoff * 2);
    skip = backoff;
  }
}
