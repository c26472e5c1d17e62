/**
 * wasm `P5Attention` / `P5AttentionGrad`: T5's whole attention core (Q K^T +
 * position bias + padding / causal mask, softmax, dropout of the weights,
 * times V) and its gradient as one native call each, on the wasm heap. They
 * replace ~10 memory-bound tfjs passes per layer (head transposes, the
 * materialised [B, H, Lq, Lk] bias, softmax, dropout and their gradients);
 * see native/attention.cc. Native only: without the addon they throw, and
 * the model composes tfjs ops instead (models/t5/attention.ts decides).
 *
 *   P5Attention (s0[, s1, s2][, bias][, mask])  -> [o [B*Lq, H*dk], p [B, H, Lq, Lk]]
 *   P5AttentionGrad (s0[, s1, s2], p, dy)       -> [ds0[, ds1, ds2][, dbias]]
 *
 * s0..s2 are the DISTINCT projection outputs, [B*L, width] each; attrs
 * `srcOf` [iq, ik, iv] say which one holds q, k and v, `cols` at which
 * column (fused QKV: one source, columns 0, H*dk, 2*H*dk). bias is the
 * position bias [1, H, Lq, Lk] (its gradient, summed over the batch, is
 * output when `biasGrad`), mask the additive padding mask [B, 1, 1, Lk];
 * `causal` masks key j > query i. Dropout: `rate` > 0 with the key (a, b)
 * of P5DropoutMask, over the weights' [B, H, Lq, Lk] element index.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeForKernels, type NativeAddon } from '../../native.js';
import { dropoutThreshold } from '../Fused.js';
import { asWasm, sizeOf, type WasmBackendLike } from '../wasm_util.js';

export interface AttentionAttrs {
  numHeads: number;
  headDim: number;
  Lq: number;
  Lk: number;
  /** which source input (s0, s1, s2) holds q, k and v */
  srcOf: number[];
  /** the column of head 0 of q, k and v in its source */
  cols: number[];
  causal: boolean;
  /** dropout of the attention weights (0: none) and its key */
  rate: number;
  a: number;
  b: number;
  /** P5AttentionGrad: also output d(bias) [1, H, Lq, Lk] */
  biasGrad?: boolean;
}

interface Prepared {
  addon: NativeAddon;
  backend: WasmBackendLike;
  srcs: TensorInfo[];
  B: number;
  dims: number[];
  dropout: number[] | null;
}

function prepare(name: string, inputs: Record<string, TensorInfo | undefined>, backendIn: unknown, at: AttentionAttrs): Prepared {
  const addon = nativeForKernels();
  if (!addon) throw new Error(`${name} needs the native addon (the model composes tfjs ops without it)`);
  const backend = asWasm(backendIn);
  const nSrc = Math.max(...at.srcOf) + 1;
  const srcs: TensorInfo[] = [];
  for (let i = 0; i < nSrc; i++) {
    const s = inputs[`s${i}`];
    if (!s || s.dtype !== 'float32' || s.shape.length !== 2) throw new Error(`${name}: s${i} must be a float32 [rows, width] tensor`);
    srcs.push(s);
  }
  const { numHeads: H, headDim: dk, Lq, Lk } = at;
  const q = srcs[at.srcOf[0]];
  const B = Lq > 0 ? q.shape[0] / Lq : 0;
  if (!Number.isInteger(B)) throw new Error(`${name}: ${q.shape[0]} query rows are not a multiple of Lq = ${Lq}`);
  at.srcOf.forEach((si, role) => {
    const s = srcs[si];
    const rows = role === 0 ? B * Lq : B * Lk;
    if (s.shape[0] !== rows || at.cols[role] + H * dk > s.shape[1]) {
      throw new Error(`${name}: source ${si} [${s.shape.join(', ')}] cannot hold ${'qkv'[role]} (${rows} rows, columns ${at.cols[role]}..${at.cols[role] + H * dk})`);
    }
  });
  const stride = (role: number) => srcs[at.srcOf[role]].shape[1];
  const dims = [B, H, Lq, Lk, dk, stride(0), stride(1), stride(2), at.causal ? 1 : 0];
  if (!(at.rate >= 0 && at.rate < 1)) throw new Error(`${name}: dropout rate ${at.rate} is not in [0, 1)`);
  const dropout = at.rate > 0 ? [at.a >>> 0, at.b >>> 0, dropoutThreshold(at.rate), 1 / (1 - at.rate)] : null;
  return { addon, backend, srcs, B, dims, dropout };
}

/** Byte offset of a tensor on the heap, plus `floats`. */
function at(backend: WasmBackendLike, t: TensorInfo, floats = 0): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset + 4 * floats;
}

function checkShape(name: string, t: TensorInfo | undefined, want: number[], what: string): void {
  if (t && (t.dtype !== 'float32' || sizeOf(t.shape) !== sizeOf(want))) {
    throw new Error(`${name}: ${what} must be float32 with the size of [${want.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

export function makeNativeAttentionConfig(): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const inp = inputs as Record<string, TensorInfo | undefined>;
    const a = attrs as unknown as AttentionAttrs;
    const { addon, backend, srcs, B, dims, dropout } = prepare('P5Attention', inp, b, a);
    const { numHeads: H, headDim: dk, Lq, Lk } = a;
    const { bias, mask } = inp;
    checkShape('P5Attention', bias, [H, Lq, Lk], 'bias');
    checkShape('P5Attention', mask, [B, Lk], 'mask');
    const o = backend.makeOutput([B * Lq, H * dk], 'float32');
    const p = backend.makeOutput([B, H, Lq, Lk], 'float32');
    const heap = backend.wasm.HEAPU8.buffer; // after the allocations
    const src = (role: number) => srcs[a.srcOf[role]];
    try {
      addon.attentionForward(
        heap, at(backend, src(0), a.cols[0]), heap, at(backend, src(1), a.cols[1]), heap, at(backend, src(2), a.cols[2]),
        bias ? heap : null, bias ? at(backend, bias) : 0, mask ? heap : null, mask ? at(backend, mask) : 0,
        heap, at(backend, o), heap, at(backend, p), dims, dropout,
      );
    } catch (err) {
      backend.disposeData(o.dataId);
      backend.disposeData(p.dataId);
      throw err;
    }
    return [o, p];
  };
  return { kernelName: 'P5Attention', backendName: 'wasm', kernelFunc };
}

export function makeNativeAttentionGradConfig(): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const inp = inputs as Record<string, TensorInfo | undefined>;
    const a = attrs as unknown as AttentionAttrs;
    const { addon, backend, srcs, B, dims, dropout } = prepare('P5AttentionGrad', inp, b, a);
    const { numHeads: H, headDim: dk, Lq, Lk } = a;
    const { p, dy } = inp;
    if (!p || !dy) throw new Error('P5AttentionGrad needs p and dy');
    checkShape('P5AttentionGrad', p, [B, H, Lq, Lk], 'p');
    checkShape('P5AttentionGrad', dy, [B * Lq, H * dk], 'dy');
    const grads = srcs.map((s) => backend.makeOutput(s.shape.slice(), 'float32'));
    const dbias = a.biasGrad ? backend.makeOutput([1, H, Lq, Lk], 'float32') : null;
    const outs = dbias ? [...grads, dbias] : grads;
    const heap = backend.wasm.HEAPU8.buffer; // after the allocations
    // the kernel writes only the head columns of q / k / v: zero the rest
    grads.forEach((g, i) => {
      const covered = a.srcOf.filter((s) => s === i).length * H * dk;
      if (covered < srcs[i].shape[1]) new Float32Array(heap, at(backend, g), sizeOf(g.shape)).fill(0);
    });
    const grad = (role: number) => grads[a.srcOf[role]];
    const src = (role: number) => srcs[a.srcOf[role]];
    try {
      addon.attentionBackward(
        heap, at(backend, src(0), a.cols[0]), heap, at(backend, src(1), a.cols[1]), heap, at(backend, src(2), a.cols[2]),
        heap, at(backend, p), heap, at(backend, dy),
        heap, at(backend, grad(0), a.cols[0]), heap, at(backend, grad(1), a.cols[1]), heap, at(backend, grad(2), a.cols[2]),
        dbias ? heap : null, dbias ? at(backend, dbias) : 0, dims, dropout,
      );
    } catch (err) {
      for (const t of outs) backend.disposeData(t.dataId);
      throw err;
    }
    return outs;
  };
  return { kernelName: 'P5AttentionGrad', backendName: 'wasm', kernelFunc };
}
