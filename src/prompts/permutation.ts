/**
 * Seeded hashing for instance streams: every instance is a pure function of
 * (seed, epoch, family, index), so an epoch is a seeded permutation of each
 * family's units (a Feistel cipher over the index range, O(1) memory) and a
 * per-instance Rng keyed by its position; nothing is stored per unit.
 */
import { Rng } from '../util/rng.js';

export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** An Rng that depends only on its key parts (order matters). */
export function keyedRng(...parts: number[]): Rng {
  let h = 0x6a09e667;
  for (const p of parts) h = mix32((h ^ mix32(p >>> 0)) + Math.floor(p / 4294967296));
  return new Rng(h);
}

/**
 * A seeded bijection of [0, size): a balanced Feistel network over the
 * smallest power of 4 ≥ size, cycle-walked back into range. A shuffled order
 * without an array of indices.
 */
export class IndexPermutation {
  private readonly half: number;
  private readonly mask: number;
  private readonly scale: number;
  private readonly keys: Uint32Array;

  constructor(readonly size: number, rng: Rng) {
    if (!Number.isInteger(size) || size < 0 || size > 2 ** 32) throw new RangeError(`IndexPermutation: bad size ${size}`);
    let bits = 2;
    while (2 ** bits < size) bits += 2;
    this.half = bits / 2;
    this.scale = 2 ** this.half;
    this.mask = this.scale - 1;
    this.keys = new Uint32Array(6);
    for (let i = 0; i < this.keys.length; i++) this.keys[i] = rng.nextU32();
  }

  at(i: number): number {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`IndexPermutation: index ${i} outside [0, ${this.size})`);
    let x = i;
    do x = this.encrypt(x);
    while (x >= this.size);
    return x;
  }

  private encrypt(x: number): number {
    let l = Math.floor(x / this.scale);
    let r = x % this.scale;
    for (const k of this.keys) {
      const f = mix32((r ^ k) >>> 0) & this.mask;
      const nl = r;
      r = (l ^ f) & this.mask;
      l = nl;
    }
    return l * this.scale + r;
  }
}

/** Units laid end to end per user: global index → (user, offset). */
export class UserRanges {
  readonly cum: Float64Array;
  constructor(lengths: ArrayLike<number>) {
    this.cum = new Float64Array(lengths.length + 1);
    for (let u = 0; u < lengths.length; u++) this.cum[u + 1] = this.cum[u] + lengths[u];
  }
  get total(): number {
    return this.cum[this.cum.length - 1];
  }
  find(i: number): [user: number, offset: number] {
    let lo = 0;
    let hi = this.cum.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.cum[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return [lo, i - this.cum[lo]];
  }
}
