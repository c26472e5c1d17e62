/**
 * Seeded parameter initialisation (HF `T5PreTrainedModel._init_weights`):
 * every tensor gets its own stream, `Rng(seed + ':' + name)`, so values do
 * not depend on creation order or on the backend.
 */
import { Rng } from '../../util/rng.js';

/** Fill `out` with N(0, std²) values (Box-Muller, both outputs used). */
export function fillNormal(out: Float32Array, std: number, rng: Rng): Float32Array {
  const n = out.length;
  let i = 0;
  while (i < n) {
    let u = 0;
    while (u === 0) u = rng.next();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    const t = 2 * Math.PI * rng.next();
    out[i++] = r * Math.cos(t);
    if (i < n) out[i++] = r * Math.sin(t);
  }
  return out;
}

export function normalInit(size: number, std: number, seed: number, name: string): Float32Array {
  return fillNormal(new Float32Array(size), std, new Rng(`${seed}:${name}`));
}
