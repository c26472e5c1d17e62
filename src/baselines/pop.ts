import type { Dataset } from '../data/dataset.js';
import { TRAIN } from '../data/splits.js';
import type { ModelState, Recommender, RecommenderFactory, TrainSplit } from '../recommend/recommender.js';

export type PopConfig = Record<string, unknown>;

/** Most-popular items (count of training interactions); the floor every model must clear. Rating: the global training mean. */
class Popularity implements Recommender {
  readonly kind = 'pop';
  readonly tasks = ['rating', 'direct', 'sequential'] as const;
  constructor(readonly trainSplit: TrainSplit, private readonly counts: Float32Array, private readonly mean: number) {}

  score(_user: number, _history: Int32Array, candidates?: Int32Array): Float32Array {
    if (!candidates) return this.counts.slice();
    return Float32Array.from(candidates, (i) => this.counts[i]);
  }

  predictRating(): number {
    return this.mean;
  }

  state(): ModelState {
    return { config: {}, tensors: { counts: { dtype: 'F32', shape: [this.counts.length], data: this.counts }, mean: { dtype: 'F32', shape: [1], data: Float32Array.of(this.mean) } } };
  }
}

export const popularity: RecommenderFactory<PopConfig> = {
  kind: 'pop',
  description: 'item popularity in the training split (rating: global mean)',
  tasks: ['rating', 'direct', 'sequential'],
  defaultSplit: 'sequential',
  defaults: {},
  async fit(ds: Dataset, _config: PopConfig, split: TrainSplit) {
    const x = ds.interactions;
    const codes = split === 'rating' ? x.ratingSplit : x.seqSplit;
    const counts = new Float32Array(ds.numItems);
    let sum = 0;
    let n = 0;
    for (let k = 0; k < ds.numInteractions; k++) {
      if (codes[k] !== TRAIN) continue;
      counts[x.item[k]]++;
      if (!Number.isNaN(x.rating[k])) {
        sum += x.rating[k];
        n++;
      }
    }
    // Stored as float32 (weights.safetensors): round now, so a loaded model predicts exactly what the fitted one did.
    return new Popularity(split, counts, n ? Math.fround(sum / n) : NaN);
  },
  load(_ds: Dataset, state: ModelState, split: TrainSplit) {
    return new Popularity(split, state.tensors.counts.data as Float32Array, (state.tensors.mean.data as Float32Array)[0]);
  },
};
