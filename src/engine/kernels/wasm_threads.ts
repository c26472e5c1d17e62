/**
 * A second core for the wasm matmuls when the native addon is not used.
 *
 * tfjs-backend-wasm runs single-threaded in Node (its threaded build does not
 * start), so the wasm-custom `BatchMatMul` / `_FusedMatMul` (./BatchMatMul.ts)
 * hand big products to ONE helper worker thread (../wasm-gemm-worker.ts),
 * which runs its own tfjs wasm engine (XNNPACK) on copies of the operands in
 * a SharedArrayBuffer:
 *
 *  - the product is cut into up to 8 chunks (row ranges of a single [M, K]
 *    operand, or ranges of batch items); the operands (in the row-major
 *    [items, M, K] x [items | 1, K, N] layout the kernel has made) and the
 *    bias are copied into the shared buffer, and the worker is woken;
 *  - both threads claim chunks from an atomic counter: the calling thread
 *    computes its chunks in place on the wasm heap (XNNPACK, as without the
 *    helper), the worker writes its rows into the shared buffer, which the
 *    caller copies out after all chunks are done. When the worker gets no
 *    core (a busy machine), the caller simply claims more chunks;
 *  - the caller waits (`Atomics.wait`) for a chunk the worker is still on for
 *    about one chunk's time, then takes it back and computes it itself (the
 *    worker's late result is dropped); while the worker is still inside such
 *    a job, products run single-threaded. After a product where the split did
 *    not pay (its time > 85% of the caller's chunk time x chunks: no free core
 *    for the worker), the next 2, 4, ... 64 products skip it.
 *
 * The worker starts on the first product big enough, in the background
 * (~0.5 s); products run single-threaded until it reports ready. It is
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

interface Helper {
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
/** B operands (per item) larger than this many floats are not split (see runSplit). */
const MAX_B_FLOATS = 320 * 1024;
/** Products with fewer multiply-adds run on the calling thread only. */
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
    new URL('../wasm-gemm-worker.js', import.meta.url), // dist/engine/kernels -> dist/engine
    new URL('../../../dist/engine/wasm-gemm-worker.js', import.meta.url), // src/engine/kernels (ts sources, tests)
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
/** Products to run single-threaded before trying the helper again (it did nothing lately). */
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

export interface SplitProduct {
  /** batch items with their own A (and C); 1 = a single [M, K] x [K, N] */
  items: number;
  M: number;
  N: number;
  K: number;
  /** B items: 1 (shared) or `items` */
  bItems: number;
  /** float offsets into the heap: A [items, M, K], B [bItems, K, N], C [items, M, N] */
  a: number;
  b: number;
  c: number;
  /** float offset of a length-N bias, or -1 */
  bias: number;
  /** index into HELPER_ACTIVATIONS (not prelu) */
  act: number;
  alpha: number;
}

/**
 * Runs the product on this thread and the helper. `heap()` returns a current
 * Float32Array over the whole wasm heap (re-read after every `own` call: it
 * may allocate). `own(i0, i1, r0, r1)` computes C for items [i0, i1) and, for
 * a single item, rows [r0, r1), in place. Returns false (nothing done) when
 * the helper is not available or the product is small.
 */
export function runSplit(p: SplitProduct, heap: () => Float32Array, own: (i0: number, i1: number, r0: number, r1: number) => void): boolean {
  if (p.items * p.M * p.N * p.K < minMacs || p.M * p.N === 0) return false;
  // XNNPACK streams the packed B once per few rows of A: with B past the
  // L2 cache the product is bound by memory bandwidth, which a second
  // thread shares (measured: slower than one thread). Those stay here.
  if (p.K * p.N > MAX_B_FLOATS) return false;
  if (skip > 0) {
    skip--;
    return false;
  }
  const h = ready();
  if (!h) return false;
  // still inside an older job (a chunk the caller took back): leave the buffer alone
  if (Atomics.load(h.ctrl, CTRL.busy) !== 0) return false;
  // chunks
  let nChunks: number;
  let per: number;
  if (p.items === 1) {
    nChunks = Math.min(8, Math.max(1, Math.floor(p.M / 8)));
    per = Math.ceil(p.M / nChunks);
    nChunks = Math.ceil(p.M / per);
  } else {
    nChunks = Math.min(8, p.items);
    per = Math.ceil(p.items / nChunks);
    nChunks = Math.ceil(p.items / per);
  }
  if (nChunks < 2) return false;
  const aLen = p.items * p.M * p.K;
  const bLen = p.bItems * p.K * p.N;
  const cLen = p.items * p.M * p.N;
  const biasLen = p.bias >= 0 ? p.N : 0;
  const need = aLen + bLen + cLen + biasLen;
  if (!h.data || h.data.length < need) {
    const floats = Math.max(need, h.data ? Math.min(h.data.length * 2, need * 2) : need);
    h.data = new Float32Array(new SharedArrayBuffer(floats * 4));
    h.gen++;
    h.port.postMessage({ buffer: h.data.buffer, gen: h.gen }); // read synchronously when the worker wakes
  }
  const tStart = performance.now();
  const f = h.data;
  const aOff = 0;
  const bOff = aLen;
  const cOff = aLen + bLen;
  const biasOff = cOff + cLen;
  {
    const hp = heap();
    f.set(hp.subarray(p.a, p.a + aLen), aOff);
    f.set(hp.subarray(p.b, p.b + bLen), bOff);
    if (biasLen) f.set(hp.subarray(p.bias, p.bias + biasLen), biasOff);
  }
  const ctrl = h.ctrl;
  const seq = Atomics.add(ctrl, CTRL.seq, 1) + 1; // odd: writing
  const id = jobId(seq + 1);
  ctrl[CTRL.gen] = h.gen;
  ctrl[CTRL.nChunks] = nChunks;
  ctrl[CTRL.items] = p.items;
  ctrl[CTRL.M] = p.M;
  ctrl[CTRL.N] = p.N;
  ctrl[CTRL.K] = p.K;
  ctrl[CTRL.per] = per;
  ctrl[CTRL.act] = p.act;
  ctrl[CTRL.hasBias] = biasLen ? 1 : 0;
  h.ctrlF[CTRL.alpha] = p.alpha;
  ctrl[CTRL.aOff] = aOff;
  ctrl[CTRL.bOff] = bOff;
  ctrl[CTRL.cOff] = cOff;
  ctrl[CTRL.biasOff] = biasOff;
  ctrl[CTRL.bItems] = p.bItems;
  ctrl[CTRL.mode] = 0;
  for (let c = 0; c < nChunks; c++) ctrl[CTRL.chunk0 + c] = CHUNK_FREE;
  Atomics.store(ctrl, CTRL.done, 0);
  Atomics.store(ctrl, CTRL.next, id << 8);
  Atomics.store(ctrl, CTRL.seq, seq + 1); // published
  Atomics.notify(ctrl, CTRL.seq);
  splitCount++;
  const range = (c: number): [number, number, number, number] =>
    p.items === 1 ? [0, 1, c * per, Math.min(p.M, (c + 1) * per)] : [c * per, Math.min(p.items, (c + 1) * per), 0, p.M];
  let ownMs = 0;
  let owned = 0;
  for (;;) {
    const c = claimChunk(ctrl, id, nChunks);
    if (c < 0) break;
    Atomics.store(ctrl, CTRL.chunk0 + c, CHUNK_MAIN);
    const [i0, i1, r0, r1] = range(c);
    const t0 = performance.now();
    own(i0, i1, r0, r1);
    ownMs += performance.now() - t0;
    owned++;
  }
  // Chunks the worker is still on: wait up to about one chunk's time, then
  // take them back (a worker without a core must not stall the caller).
  const deadline = performance.now() + (owned ? ownMs / owned : 1) + 0.05;
  let workerDone = 0;
  for (let c = 0; c < nChunks; c++) {
    const [i0, i1, r0, r1] = range(c);
    let state = awaitChunk(h, ctrl, c, deadline);
    if (state === CHUNK_WORKER || state === CHUNK_FREE) {
      // CHUNK_FREE: claimed by the worker, state not yet written; stealing is safe either way
      const prev = Atomics.compareExchange(ctrl, CTRL.chunk0 + c, state, CHUNK_STOLEN);
      if (prev === state) {
        own(i0, i1, r0, r1);
        continue;
      }
      state = prev;
    }
    if (state === CHUNK_WORKER_DONE) {
      workerDone++;
      const s = cOff + (i0 * p.M + r0) * p.N;
      const n = (i1 - i0 - 1) * p.M * p.N + (r1 - r0) * p.N;
      heap().set(f.subarray(s, s + n), p.c + (i0 * p.M + r0) * p.N);
    }
  }
  helperChunks += workerDone;
  judge(workerDone, owned, ownMs, nChunks, performance.now() - tStart);
  return true;
}

/** A transposed-A product C [M, N] = Xᵀ · Y with X [K, M] and Y [K, N] (a weight gradient). */
export interface SplitKProduct {
  M: number;
  N: number;
  K: number;
  /** float offsets into the heap: X [K, M], Y [K, N], C [M, N] */
  a: number;
  b: number;
  c: number;
}

/**
 * Xᵀ·Y split over K (rows of both X and Y, contiguous, so the helper gets
 * only row blocks): each chunk's partial product goes to a slot of the
 * shared buffer and the caller adds the slots in chunk order (the result does
 * not depend on which thread computed which chunk). `own(k0, k1, dst)` writes
 * the partial of rows [k0, k1) into `dst` ([M, N]). Used where XNNPACK alone is
 * bound by memory bandwidth (a large Y streamed once per few rows of Xᵀ).
 * Returns false when the helper is not available (nothing done).
 */
export function runSplitK(p: SplitKProduct, heap: () => Float32Array, own: (k0: number, k1: number, dst: Float32Array) => void): boolean {
  if (p.M * p.N * p.K < minMacs || p.M * p.N === 0) return false;
  if (skip > 0) {
    skip--;
    return false;
  }
  const h = ready();
  if (!h) return false;
  if (Atomics.load(h.ctrl, CTRL.busy) !== 0) return false;
  let nChunks = Math.min(8, Math.floor(p.K / 128));
  if (nChunks < 2) return false;
  const per = Math.ceil(p.K / nChunks);
  nChunks = Math.ceil(p.K / per);
  const aLen = p.K * p.M;
  const bLen = p.K * p.N;
  const mn = p.M * p.N;
  const need = aLen + bLen + nChunks * mn;
  if (!h.data || h.data.length < need) {
    const floats = Math.max(need, h.data ? Math.min(h.data.length * 2, need * 2) : need);
    h.data = new Float32Array(new SharedArrayBuffer(floats * 4));
    h.gen++;
    h.port.postMessage({ buffer: h.data.buffer, gen: h.gen });
  }
  const tStart = performance.now();
  const f = h.data;
  const aOff = 0;
  const bOff = aLen;
  const cOff = aLen + bLen;
  {
    const hp = heap();
    f.set(hp.subarray(p.a, p.a + aLen), aOff);
    f.set(hp.subarray(p.b, p.b + bLen), bOff);
  }
  const ctrl = h.ctrl;
  const seq = Atomics.add(ctrl, CTRL.seq, 1) + 1; // odd: writing
  const id = jobId(seq + 1);
  ctrl[CTRL.gen] = h.gen;
  ctrl[CTRL.nChunks] = nChunks;
  ctrl[CTRL.items] = 1;
  ctrl[CTRL.M] = p.M;
  ctrl[CTRL.N] = p.N;
  ctrl[CTRL.K] = p.K;
  ctrl[CTRL.per] = per;
  ctrl[CTRL.act] = 0;
  ctrl[CTRL.hasBias] = 0;
  ctrl[CTRL.aOff] = aOff;
  ctrl[CTRL.bOff] = bOff;
  ctrl[CTRL.cOff] = cOff;
  ctrl[CTRL.bItems] = 0;
  ctrl[CTRL.mode] = 1;
  for (let c = 0; c < nChunks; c++) ctrl[CTRL.chunk0 + c] = CHUNK_FREE;
  Atomics.store(ctrl, CTRL.done, 0);
  Atomics.store(ctrl, CTRL.next, id << 8);
  Atomics.store(ctrl, CTRL.seq, seq + 1); // published
  Atomics.notify(ctrl, CTRL.seq);
  splitCount++;
  const slot = (c: number) => f.subarray(cOff + c * mn, cOff + (c + 1) * mn);
  const range = (c: number): [number, number] => [c * per, Math.min(p.K, (c + 1) * per)];
  let ownMs = 0;
  let owned = 0;
  for (;;) {
    const c = claimChunk(ctrl, id, nChunks);
    if (c < 0) break;
    Atomics.store(ctrl, CTRL.chunk0 + c, CHUNK_MAIN);
    const t0 = performance.now();
    own(...range(c), slot(c));
    ownMs += performance.now() - t0;
    owned++;
  }
  const deadline = performance.now() + (owned ? ownMs / owned : 1) + 0.05;
  let workerDone = 0;
  for (let c = 0; c < nChunks; c++) {
    let state = awaitChunk(h, ctrl, c, deadline);
    if (state === CHUNK_WORKER || state === CHUNK_FREE) {
      const prev = Atomics.compareExchange(ctrl, CTRL.chunk0 + c, state, CHUNK_STOLEN);
      if (prev === state) {
        // the worker may still write its late result into this slot: use a private one
        const mine = new Float32Array(mn);
        own(...range(c), mine);
        stolen.set(c, mine);
        continue;
      }
      state = prev;
    }
    if (state === CHUNK_WORKER_DONE) workerDone++;
  }
  // C = Σ_c partial_c, in chunk order
  const out = heap().subarray(p.c, p.c + mn);
  const part = (c: number) => stolen.get(c) ?? slot(c);
  out.set(part(0));
  for (let c = 1; c < nChunks; c++) addInto(out, part(c));
  stolen.clear();
  helperChunks += workerDone;
  judge(workerDone, owned, ownMs, nChunks, performance.now() - tStart);
  return true;
}

const stolen = new Map<number, Float32Array>();

/**
 * Did the split pay? The caller's own chunks tell how long the whole product
 * would have taken on this thread alone; when the split took more than 85% of
 * that (a worker without a free core, copies, chunks taken back), the next
 * 2, 4, ... 64 products run single-threaded before it is tried again.
 */
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

function addInto(out: Float32Array, x: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] += x[i];
}
