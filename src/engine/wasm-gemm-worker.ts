/**
 * The wasm matmul helper thread (see ./threads.ts): its own
 * tfjs wasm engine (XNNPACK), woken through `Atomics.wait` on a shared control
 * block; it claims chunks of the product, computes them from the operands in
 * the shared data buffer and writes its rows of C there. New data buffers
 * arrive on a MessagePort and are read synchronously (`receiveMessageOnPort`)
 * when a job needs them.
 */
import { isMainThread, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Tensor } from '@tensorflow/tfjs-core';
import { initEngine, installKernels } from './backend.js';
import {
  CHUNK_FREE,
  CHUNK_WORKER,
  CHUNK_WORKER_DONE,
  claimChunk,
  CTRL,
  HELPER_ACTIVATIONS,
  jobId,
  setWasmThreads,
  type JobParams,
} from './threads.js';
import type { Tf } from './types.js';

interface HelperData {
  p5recWasmGemm: true;
  ctrl: SharedArrayBuffer;
  port: MessagePort;
}

/** What the main thread published (threads.ts publishJob), every field read back. */
type Params = Required<JobParams>;

function readParams(ctrl: Int32Array, ctrlF: Float32Array): Params {
  return {
    nChunks: ctrl[CTRL.nChunks],
    items: ctrl[CTRL.items],
    M: ctrl[CTRL.M],
    N: ctrl[CTRL.N],
    K: ctrl[CTRL.K],
    per: ctrl[CTRL.per],
    bItems: ctrl[CTRL.bItems],
    act: ctrl[CTRL.act],
    alpha: ctrlF[CTRL.alpha],
    aOff: ctrl[CTRL.aOff],
    bOff: ctrl[CTRL.bOff],
    cOff: ctrl[CTRL.cOff],
    hasBias: ctrl[CTRL.hasBias],
    biasOff: ctrl[CTRL.biasOff],
    mode: ctrl[CTRL.mode],
  };
}

type Act = 'linear' | 'relu' | 'relu6' | 'leakyrelu' | 'sigmoid' | 'elu';

function job(tf: Tf, ctrl: Int32Array, id: number, p: Params, f: Float32Array): void {
  const { nChunks, items, M, N, K, per, bItems, alpha, aOff, bOff, cOff } = p;
  const act = HELPER_ACTIVATIONS[p.act] as Act;
  const v = Atomics.load(ctrl, CTRL.next);
  if (v >>> 8 !== id || (v & 255) >= nChunks) return; // over before we woke
  const keep: Tensor[] = [];
  let shared: Tensor | null = null;
  let bias: Tensor | null = null;
  try {
    if (p.hasBias) keep.push((bias = tf.tensor1d(f.subarray(p.biasOff, p.biasOff + N), 'float32')));
    if (bItems === 1) keep.push((shared = tf.tensor2d(f.subarray(bOff, bOff + K * N), [K, N], 'float32')));
    for (;;) {
      const c = claimChunk(ctrl, id, nChunks);
      if (c < 0) break;
      // the caller may already have taken it back (it writes CHUNK_STOLEN)
      if (Atomics.compareExchange(ctrl, CTRL.chunk0 + c, CHUNK_FREE, CHUNK_WORKER) !== CHUNK_FREE) continue;
      tf.tidy(() => {
        let a: Tensor;
        let b: Tensor;
        let dst: number;
        if (p.mode === 1) {
          // K split: partial Xᵀ·Y of rows [k0, k1) into slot c
          const k0 = c * per;
          const k1 = Math.min(K, k0 + per);
          a = tf.tensor2d(f.subarray(aOff + k0 * M, aOff + k1 * M), [k1 - k0, M], 'float32');
          b = tf.tensor2d(f.subarray(bOff + k0 * N, bOff + k1 * N), [k1 - k0, N], 'float32');
          f.set(tf.matMul(a as never, b as never, true, false).dataSync() as Float32Array, cOff + c * M * N);
          return;
        }
        if (items === 1) {
          const r0 = c * per;
          const r1 = Math.min(M, r0 + per);
          a = tf.tensor2d(f.subarray(aOff + r0 * K, aOff + r1 * K), [r1 - r0, K], 'float32');
          b = shared!;
          dst = cOff + r0 * N;
        } else {
          const i0 = c * per;
          const i1 = Math.min(items, i0 + per);
          a = tf.tensor3d(f.subarray(aOff + i0 * M * K, aOff + i1 * M * K), [i1 - i0, M, K], 'float32');
          b = shared ?? tf.tensor3d(f.subarray(bOff + i0 * K * N, bOff + i1 * K * N), [i1 - i0, K, N], 'float32');
          dst = cOff + i0 * M * N;
        }
        const out =
          act === 'linear' && !bias
            ? tf.matMul(a as never, b as never)
            : tf.fused.matMul({ a: a as never, b: b as never, bias: bias ?? undefined, activation: act, leakyreluAlpha: alpha });
        f.set(out.dataSync() as Float32Array, dst);
      });
      if (Atomics.compareExchange(ctrl, CTRL.chunk0 + c, CHUNK_WORKER, CHUNK_WORKER_DONE) === CHUNK_WORKER) {
        Atomics.add(ctrl, CTRL.done, 1);
        Atomics.notify(ctrl, CTRL.done);
      }
    }
  } finally {
    tf.dispose(keep);
  }
}

async function main(): Promise<void> {
  const data = workerData as HelperData;
  const ctrl = new Int32Array(data.ctrl);
  const ctrlF = new Float32Array(data.ctrl);
  setWasmThreads(1);
  let tf: Tf;
  try {
    ({ tf } = await initEngine({ backend: 'wasm' }));
    installKernels(tf, 'all', { native: false });
  } catch {
    Atomics.store(ctrl, CTRL.error, 1);
    return;
  }
  Atomics.store(ctrl, CTRL.ready, 1);
  let f: Float32Array | null = null;
  let gen = 0;
  let seen = Atomics.load(ctrl, CTRL.seq);
  for (;;) {
    Atomics.wait(ctrl, CTRL.seq, seen);
    const s = Atomics.load(ctrl, CTRL.seq);
    seen = s;
    if (s & 1) continue; // being written: wait for the publish
    const p = readParams(ctrl, ctrlF);
    const want = ctrl[CTRL.gen];
    if (Atomics.load(ctrl, CTRL.seq) !== s) continue; // torn: a newer job is being written
    for (let spins = 0; gen !== want && spins < 100000; spins++) {
      const m = receiveMessageOnPort(data.port);
      if (!m) continue;
      const msg = m.message as { buffer: SharedArrayBuffer; gen: number };
      f = new Float32Array(msg.buffer);
      gen = msg.gen;
    }
    if (!f || gen !== want) continue; // the caller runs the chunks itself
    Atomics.store(ctrl, CTRL.busy, 1);
    try {
      job(tf, ctrl, jobId(s), p, f);
    } catch {
      Atomics.store(ctrl, CTRL.error, 1);
      Atomics.notify(ctrl, CTRL.done);
      return;
    } finally {
      Atomics.store(ctrl, CTRL.busy, 0);
    }
  }
}

if (!isMainThread && (workerData as Partial<HelperData> | null)?.p5recWasmGemm) void main();
