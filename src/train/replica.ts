/**
 * One model replica: a task's variables laid out in one flat float32 buffer
 * (the optimizer's view), gradient computation into such a buffer, and
 * copying parameters between the buffer and the variables. Used in-process
 * and by every data-parallel worker.
 */
import type { Scalar, Variable } from '@tensorflow/tfjs-core';
import { readFloat32, tf } from '../engine/backend.js';
import { P5recError } from '../errors.js';
import { defaultNoDecay, type LossResult, type StepContext, type TrainTask } from './task.js';
import type { DecayRange } from './adamw.js';

export interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface ParamLayout {
  entries: ParamEntry[];
  total: number;
}

export function layoutOf(params: ReadonlyMap<string, Variable>): ParamLayout {
  const entries: ParamEntry[] = [];
  let offset = 0;
  for (const [name, v] of params) {
    if (v.dtype !== 'float32') throw new P5recError(`parameter ${name} is ${v.dtype}; only float32 parameters can be trained`);
    entries.push({ name, shape: v.shape.slice(), offset, size: v.size });
    offset += v.size;
  }
  return { entries, total: offset };
}

/** A learning-rate multiplier for some rows of one 2-D parameter (e.g. the item id rows of the embedding table). */
export interface RowLrScale {
  name: string;
  rows: readonly number[];
  scale: number;
}

export function decayRanges(layout: ParamLayout, noDecay: (name: string) => boolean = defaultNoDecay, lrScale?: (name: string) => number, rowScales: readonly RowLrScale[] = []): DecayRange[] {
  const out: DecayRange[] = [];
  for (const e of layout.entries) {
    const decay = !noDecay(e.name);
    const base = lrScale ? lrScale(e.name) : 1;
    const range = (offset: number, size: number, scale: number): void => {
      if (size > 0) out.push({ offset, size, decay, ...(scale !== 1 ? { lrScale: scale } : {}) });
    };
    const rs = rowScales.filter((r) => r.name === e.name);
    if (!rs.length) {
      range(e.offset, e.size, base);
      continue;
    }
    if (rs.length > 1 || e.shape.length !== 2) throw new P5recError(`row learning-rate scales: ${e.name} needs one entry and a 2-D shape`);
    const [rowsN, width] = e.shape as [number, number];
    const rows = [...new Set(rs[0].rows)].sort((a, b) => a - b);
    for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= rowsN) throw new P5recError(`row learning-rate scales: row ${r} is outside ${e.name} (${rowsN} rows)`);
    // Runs of consecutive rows become one range each; the rows between keep the parameter's scale.
    let next = 0;
    for (let i = 0; i < rows.length; ) {
      let j = i;
      while (j + 1 < rows.length && rows[j + 1] === rows[j] + 1) j++;
      range(e.offset + next * width, (rows[i] - next) * width, base);
      range(e.offset + rows[i] * width, (rows[j] - rows[i] + 1) * width, rs[0].scale);
      next = rows[j] + 1;
      i = j + 1;
    }
    range(e.offset + next * width, (rowsN - next) * width, base);
  }
  return out;
}

/** Same names, shapes and order. */
export function sameLayout(a: ParamLayout, b: ParamLayout): boolean {
  return (
    a.total === b.total &&
    a.entries.length === b.entries.length &&
    a.entries.every((e, i) => e.name === b.entries[i].name && e.size === b.entries[i].size && e.shape.join(',') === b.entries[i].shape.join(','))
  );
}

export interface MicroResult {
  /** weight · loss */
  lossSum: number;
  weight: number;
  tokens: number;
}

export class Replica {
  readonly layout: ParamLayout;
  private readonly vars: Variable[];

  constructor(readonly task: TrainTask) {
    this.layout = layoutOf(task.params);
    this.vars = [...task.params.values()];
  }

  /** Copy the variables into `flat`. */
  writeParams(flat: Float32Array): void {
    for (let i = 0; i < this.vars.length; i++) {
      const e = this.layout.entries[i];
      flat.set(this.vars[i].dataSync() as Float32Array, e.offset);
    }
  }

  /** Set the variables from `flat`. */
  readParams(flat: Float32Array): void {
    const t = tf();
    // The wasm backend copies the values into its heap; the cpu backend keeps
    // the array it is given, so it gets a private copy (slice).
    const copy = t.getBackend() !== 'wasm';
    t.tidy(() => {
      for (let i = 0; i < this.vars.length; i++) {
        const e = this.layout.entries[i];
        const part = copy ? flat.slice(e.offset, e.offset + e.size) : flat.subarray(e.offset, e.offset + e.size);
        this.vars[i].assign(t.tensor(part, e.shape, 'float32'));
      }
    });
  }

  /**
   * Gradient of the micro-batch loss, added to `acc` scaled by the batch
   * weight (acc += w·∇loss). Parameters the loss does not reach get nothing.
   */
  accumulate(indices: readonly number[], ctx: StepContext, acc: Float32Array): MicroResult {
    const t = tf();
    let out: MicroResult = { lossSum: 0, weight: 0, tokens: 0 };
    t.tidy(() => {
      const batch = this.task.batch(indices);
      let res: LossResult | null = null;
      const { value, grads } = t.variableGrads(() => {
        res = this.task.loss(batch, ctx);
        return isScalar(res) ? res : res.loss;
      }, this.vars);
      const r = res as unknown as LossResult;
      const weight = isScalar(r) ? indices.length : (r.weight ?? indices.length);
      const tokens = isScalar(r) ? 0 : (r.tokens ?? 0);
      const loss = value.dataSync()[0];
      if (!Number.isFinite(loss)) throw new P5recError(`the loss is ${loss} at step ${ctx.step} (micro-batch ${ctx.micro}); lower the learning rate?`);
      if (weight > 0) {
        for (let i = 0; i < this.vars.length; i++) {
          const g = grads[this.vars[i].name];
          if (!g) continue;
          const data = readFloat32(g); // a heap view on wasm: used at once, no copy
          const off = this.layout.entries[i].offset;
          // w·g is rounded to float32 before the add, as it is when a worker
          // writes it to its own slot: in-process and data-parallel sums then
          // round identically (bit-equal results for one micro-batch per worker).
          addScaled(acc, off, data, weight);
        }
      }
      out = { lossSum: weight * loss, weight, tokens };
    });
    return out;
  }
}

/** acc[off + k] += fround(w · data[k]) (a small function: optimised on its own). */
function addScaled(acc: Float32Array, off: number, data: Float32Array, w: number): void {
  const n = data.length;
  if (w === 1) for (let k = 0; k < n; k++) acc[off + k] += data[k];
  else for (let k = 0; k < n; k++) acc[off + k] += Math.fround(w * data[k]);
}

function isScalar(r: LossResult): r is Scalar {
  return typeof (r as Scalar).dataSync === 'function';
}
