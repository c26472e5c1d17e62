import type { Dataset } from '../data/dataset.js';
import { TEST, VALID } from '../data/splits.js';
import type { EvalSplit } from '../eval/evaluate.js';
import type { ModelState, Recommender, Task, TrainSplit } from '../recommend/recommender.js';
import type { LLMClient } from './client.js';
import { isAbortError, LLMError } from './errors.js';
import type { ChatMessage } from './provider.js';
import type { Prompt, PromptBuilder } from './prompts.js';
import { parseRating, refineRanking, RepairLog, type Refined, type TitleIndex } from './refine.js';

export type PositiveAt = 'random' | 'first' | 'last';

export interface AskOptions {
  /** Re-asks after an unusable answer (the error is stated). Default 2. */
  refineRetries: number;
  maxTokens: number;
  temperature: number;
  /**
   * `fail` (default): a provider error that survives the retries ends the
   * run (the cache keeps what was paid for, so a rerun resumes). `miss`:
   * count it and score that user as a miss.
   */
  onProviderError: 'fail' | 'miss';
}

export interface LlmRecommenderOptions extends AskOptions {
  task: Task;
  /** The split evaluate() is run on (sequential-with-candidates needs its held-out item to build the pool). */
  split: EvalSplit;
  /** Where the held-out item sits among the shown candidates. Default random (seeded shuffle). */
  positiveAt: PositiveAt;
  /** Sequential task: generate titles (default) or rank 1 held-out + the stored negatives. */
  sequentialMode: 'generate' | 'candidates';
  topK: number;
  /** Dice similarity a generated title needs to match a catalogue title. */
  matchThreshold: number;
  /** Rating scale; an answer that never becomes a rating predicts its midpoint (counted as gave_up). */
  ratingScale: { min: number; max: number };
  signal?: AbortSignal;
}

/** How often answers needed refinement. */
export interface RefinementReport {
  /** Users / rows the model was asked about. */
  asked: number;
  /** Usable on the first answer. */
  firstTry: number;
  /** Usable after one or more re-asks. */
  afterReask: number;
  /** Never usable: scored as a miss (counted in repairs.gave_up too). */
  gaveUp: number;
  /** Counts by repair kind (see REPAIR_KINDS). */
  repairs: Record<string, number>;
}

/** Asks, refines, re-asks with the error stated; never throws on model output. */
export class Asker {
  readonly log = new RepairLog();
  asked = 0;
  firstTry = 0;
  afterReask = 0;
  gaveUp = 0;

  constructor(private readonly client: LLMClient, private readonly builder: PromptBuilder, private readonly opts: AskOptions) {}

  /** The refined answer, or null when it stayed unusable (or the provider failed under onProviderError=miss). */
  async ask<T>(prompt: Prompt, refine: (text: string, log: RepairLog) => Refined<T>, signal?: AbortSignal): Promise<T | null> {
    this.asked++;
    let messages: ChatMessage[] = prompt.messages;
    for (let attempt = 0; attempt <= this.opts.refineRetries; attempt++) {
      let text: string;
      try {
        const a = await this.client.complete({ messages, maxTokens: this.opts.maxTokens, temperature: this.opts.temperature, jsonSchema: prompt.jsonSchema, signal });
        text = a.text;
      } catch (err) {
        if (isAbortError(err) || this.opts.onProviderError === 'fail' || !(err instanceof LLMError) || err.kind === 'context_overflow') throw err;
        this.log.add('provider_failed');
        this.gaveUp++;
        return null;
      }
      let r: Refined<T>;
      try {
        r = refine(text, this.log);
      } catch (err) {
        this.log.add('refine_error');
        r = { ok: false, error: `the answer could not be read (${(err as Error).message})` };
      }
      if (r.ok) {
        if (attempt === 0) this.firstTry++;
        else this.afterReask++;
        return r.value;
      }
      this.log.add('unusable');
      if (attempt < this.opts.refineRetries) {
        this.log.add('reasked');
        messages = [...messages, { role: 'assistant', content: text }, { role: 'user', content: this.builder.reask(r.error) }];
      }
    }
    this.log.add('gave_up');
    this.gaveUp++;
    return null;
  }

  report(): RefinementReport {
    return { asked: this.asked, firstTry: this.firstTry, afterReask: this.afterReask, gaveUp: this.gaveUp, repairs: this.log.toJSON() };
  }
}

/** A unit of work evaluate() will ask for, known in advance so it can run concurrently. */
export type PlannedJob =
  | { kind: 'score'; user: number; history: Int32Array; candidates?: Int32Array }
  | { kind: 'rating'; user: number; item: number };

interface Pending {
  job: PlannedJob;
  promise: Promise<number[] | number | null>;
}

const jobKey = (j: PlannedJob): string => (j.kind === 'score' ? `s:${j.user}` : `r:${j.user}:${j.item}`);

function sameArray(a?: Int32Array, b?: Int32Array): boolean {
  if (!a || !b) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * An LLM as a {@link Recommender}: it trains nothing; each call builds the
 * study's prompt from the history evaluate() passes, asks, refines, and turns
 * the ranked list into scores (rank r → −r, unlisted → −Infinity), so the
 * shared protocols and metrics apply unchanged.
 *
 * evaluate() awaits one user at a time; {@link prefetch} runs the same
 * calls ahead of it with bounded concurrency, and score() then picks up the
 * finished answer.
 */
export class LlmRecommender implements Recommender {
  readonly kind = 'llm';
  readonly tasks: readonly Task[];
  readonly trainSplit: TrainSplit;
  readonly asker: Asker;
  private readonly pending = new Map<string, Pending>();
  private readonly internal = new AbortController();
  private readonly signal: AbortSignal;
  /** The error that stopped prefetching (later jobs fail with an abort; this is the cause). */
  private failure: unknown;

  constructor(readonly ds: Dataset, readonly client: LLMClient, readonly builder: PromptBuilder, readonly index: TitleIndex, readonly opts: LlmRecommenderOptions) {
    this.tasks = [opts.task];
    this.trainSplit = opts.task === 'rating' ? 'rating' : 'sequential';
    this.asker = new Asker(client, builder, opts);
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.internal.signal]) : this.internal.signal;
  }

  /**
   * Start `jobs` with at most `concurrency` in flight, in order. The first
   * failure stops the rest (in-flight requests are aborted) and is what
   * score() then throws.
   */
  prefetch(jobs: PlannedJob[], concurrency: number): void {
    const queue: { job: PlannedJob; resolve: (v: number[] | number | null) => void; reject: (e: unknown) => void }[] = [];
    for (const job of jobs) {
      let resolve!: (v: number[] | number | null) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<number[] | number | null>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => undefined); // handled where score() awaits it
      this.pending.set(jobKey(job), { job, promise });
      queue.push({ job, resolve, reject });
    }
    let next = 0;
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (next < queue.length) {
        const q = queue[next++];
        if (failure !== undefined) {
          q.reject(failure);
          continue;
        }
        try {
          q.resolve(await this.compute(q.job));
        } catch (err) {
          if (failure === undefined) {
            failure = err;
            this.failure ??= err;
            this.internal.abort(err);
          }
          q.reject(err);
        }
      }
    };
    for (let i = 0; i < Math.max(1, concurrency); i++) void worker();
  }

  /** Drop prefetched work that evaluate() did not consume and stop what is in flight. */
  dispose(): void {
    this.pending.clear();
    this.internal.abort(new Error('recommender disposed'));
  }

  private async take(job: PlannedJob): Promise<number[] | number | null> {
    try {
      return await this.takeOrCompute(job);
    } catch (err) {
      throw this.failure ?? err;
    }
  }

  private takeOrCompute(job: PlannedJob): Promise<number[] | number | null> {
    const key = jobKey(job);
    const p = this.pending.get(key);
    if (p) {
      this.pending.delete(key);
      const j = p.job;
      if (j.kind === 'rating' || (job.kind === 'score' && j.kind === 'score' && sameArray(j.history, job.history) && sameArray(j.candidates, job.candidates))) return p.promise;
    }
    return this.compute(job);
  }

  /** The held-out item of `user` in the evaluated split (only sequential-with-candidates builds its pool from it). */
  private heldOut(user: number): number {
    return this.ds.sequenceSplit(user, this.opts.split === 'test' ? TEST : VALID)[0];
  }

  private compute(job: PlannedJob): Promise<number[] | number | null> {
    if (job.kind === 'rating') {
      return this.asker.ask(this.builder.rating(job.user, job.item), (text, log) => parseRating(text, this.opts.ratingScale, log), this.signal);
    }
    const { user, history } = job;
    const exclude = new Set(history);
    let prompt: Prompt;
    let shown: Int32Array | undefined;
    if (this.opts.task === 'direct') {
      if (!job.candidates) throw new LLMError('direct recommendation needs candidates', { kind: 'rejected' });
      shown = this.builder.arrange(job.candidates, user, this.opts.positiveAt);
      prompt = this.builder.candidates(user, history, shown, 'direct');
    } else if (this.opts.sequentialMode === 'candidates') {
      const pool = Int32Array.from([this.heldOut(user), ...this.ds.negatives[user]]);
      shown = this.builder.arrange(pool, user, this.opts.positiveAt);
      prompt = this.builder.candidates(user, history, shown, 'sequentialCandidates');
    } else prompt = this.builder.sequential(user, history);
    const k = shown ? Math.min(this.opts.topK, shown.length) : this.opts.topK;
    return this.asker.ask(prompt, (text, log) => refineRanking(text, { shown, exclude, k, index: this.index, threshold: this.opts.matchThreshold }, log), this.signal);
  }

  async score(user: number, history: Int32Array, candidates?: Int32Array): Promise<Float32Array> {
    const ranking = ((await this.take({ kind: 'score', user, history, candidates })) ?? []) as number[];
    if (candidates) {
      const out = new Float32Array(candidates.length).fill(-Infinity);
      const at = new Map<number, number>();
      for (let i = 0; i < candidates.length; i++) if (!at.has(candidates[i])) at.set(candidates[i], i);
      ranking.forEach((item, r) => {
        const i = at.get(item);
        if (i !== undefined) out[i] = -r;
      });
      return out;
    }
    const out = new Float32Array(this.ds.numItems).fill(-Infinity);
    ranking.forEach((item, r) => (out[item] = -r));
    return out;
  }

  async predictRating(user: number, item: number): Promise<number> {
    const v = await this.take({ kind: 'rating', user, item });
    const { min, max } = this.opts.ratingScale;
    return typeof v === 'number' ? v : (min + max) / 2;
  }

  state(): ModelState {
    return { config: { kind: 'llm', provider: this.client.provider.id, model: this.client.provider.model, ...this.opts, signal: undefined }, tensors: {} };
  }
}
