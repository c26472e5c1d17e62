import type { Rng } from '../util/rng.js';

export const TRAIN = 0;
export const VALID = 1;
export const TEST = 2;
export const SPLIT_NAMES = ['train', 'valid', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/**
 * Leave-one-out over each user's time-ordered sequence (sequential and direct
 * tasks, as P5 and SASRec): last item test, second-to-last validation, the
 * rest train. Users with 2 interactions get train+test, with 1 only train.
 * `pos[i]` is interaction i's position in its user's sequence, `len[u]` the length.
 */
export function leaveOneOut(user: ArrayLike<number>, pos: ArrayLike<number>, len: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(user.length);
  for (let i = 0; i < user.length; i++) {
    const n = len[user[i]];
    const p = pos[i];
    if (n >= 2 && p === n - 1) out[i] = TEST;
    else if (n >= 3 && p === n - 2) out[i] = VALID;
    else out[i] = TRAIN;
  }
  return out;
}

/**
 * Seeded random split of interactions (rating, explanation and review tasks)
 * that keeps every user and every item in train: walk a seeded shuffle and
 * force an interaction into train when its user or item has none there yet,
 * then fill train, validation and test to the requested shares.
 */
export function randomSplit(user: ArrayLike<number>, item: ArrayLike<number>, numUsers: number, numItems: number, rng: Rng, shares: [number, number, number] = [0.8, 0.1, 0.1]): Uint8Array {
  const n = user.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  rng.shuffle(order);
  const out = new Uint8Array(n).fill(255);
  const uSeen = new Uint8Array(numUsers);
  const iSeen = new Uint8Array(numItems);
  let nTrain = 0;
  for (const i of order) {
    if (!uSeen[user[i]] || !iSeen[item[i]]) {
      out[i] = TRAIN;
      uSeen[user[i]] = 1;
      iSeen[item[i]] = 1;
      nTrain++;
    }
  }
  const total = shares[0] + shares[1] + shares[2];
  const wantTrain = Math.round((n * shares[0]) / total);
  const wantValid = Math.round((n * shares[1]) / total);
  let nValid = 0;
  for (const i of order) {
    if (out[i] !== 255) continue;
    if (nTrain < wantTrain) {
      out[i] = TRAIN;
      nTrain++;
    } else if (nValid < wantValid) {
      out[i] = VALID;
      nValid++;
    } else out[i] = TEST;
  }
  return out;
}

/**
 * `count` seeded negatives per user for the 1-of-100 protocol: items the user
 * never interacted with (in any split), without replacement. Users who have
 * touched almost everything get as many as exist.
 */
export function sampleNegatives(sequences: ArrayLike<number>[], numItems: number, count: number, rng: Rng): Int32Array[] {
  return sequences.map((seq) => {
    const seen = new Set<number>();
    for (let k = 0; k < seq.length; k++) seen.add(seq[k]);
    const available = numItems - seen.size;
    if (available <= count) {
      const all: number[] = [];
      for (let j = 0; j < numItems; j++) if (!seen.has(j)) all.push(j);
      return Int32Array.from(rng.shuffle(all) as number[]);
    }
    const out = new Int32Array(count);
    for (let k = 0; k < count; ) {
      const j = rng.int(numItems);
      if (seen.has(j)) continue;
      seen.add(j);
      out[k++] = j;
    }
    return out;
  });
}
