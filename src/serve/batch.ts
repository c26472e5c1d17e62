import type { Recommender } from '../recommend/recommender.js';

type ScoreRequest = { user: number; history: Int32Array; candidates?: Int32Array };
type Batched = Recommender & { scoreMany(reqs: readonly ScoreRequest[]): Promise<Float32Array[]> };

/**
 * Micro-batching for models that score faster in batches (P5: one beam
 * search over several prompts). Requests that arrive while a batch is being
 * scored wait and go together into the next `scoreMany` call, up to
 * `maxBatch` at a time; a lone request goes alone, with no added wait. If a
 * batch fails, its requests are retried one by one so one bad request does
 * not fail the others.
 */
export class ScoreBatcher {
  private queue: { req: ScoreRequest; resolve: (s: Float32Array) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly rec: Batched, private readonly maxBatch = 16) {}

  static wants(rec: Recommender): rec is Batched {
    return typeof rec.scoreMany === 'function';
  }

  score(user: number, history: Int32Array, candidates?: Int32Array): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req: { user, history, candidates }, resolve, reject });
      if (!this.running) {
        this.running = true;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        // Let requests already on the sockets be parsed and join this batch.
        await new Promise((r) => setImmediate(r));
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const out = await this.rec.scoreMany(batch.map((b) => b.req));
          batch.forEach((b, i) => b.resolve(out[i]));
        } catch (err) {
          if (batch.length === 1) batch[0].reject(err);
          else {
            for (const b of batch) {
              try {
                b.resolve((await this.rec.scoreMany([b.req]))[0]);
              } catch (e) {
                b.reject(e);
              }
            }
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/** A small LRU map (insertion order = recency). */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: string, v: V): void {
    if (this.capacity <= 0) return;
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }

  get size(): number {
    return this.map.size;
  }
}
