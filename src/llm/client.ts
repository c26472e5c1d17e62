import { cacheKey, type ResponseCache } from './cache.js';
import { estimateCost, priceFor, type Price } from './cost.js';
import { LLMError, isAbortError } from './errors.js';
import type { CompletionRequest, LLMProvider, TokenUsage } from './provider.js';
import { retryWithBackoff, type RetryOptions } from './retry.js';
import { Semaphore } from './semaphore.js';

export interface LLMClientOptions {
  provider: LLMProvider;
  /** Persistent answers; a hit costs nothing and sends nothing. */
  cache?: ResponseCache;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
  /** Per attempt, in ms. Default 60 000. */
  timeoutMs?: number;
  /** Retries on 429/5xx/connection/timeout/bad body, with backoff. Default 3 retries. */
  retry?: RetryOptions;
  /** Overrides of the price table (USD per 1M tokens). */
  price?: Partial<Price>;
  /** Aborts every request, queued or in flight. */
  signal?: AbortSignal;
}

export interface ClientAnswer {
  text: string;
  usage: TokenUsage;
  cached: boolean;
  /** Backend calls this answer took (0 when cached). */
  attempts: number;
  constrained?: string;
  finishReason?: string;
}

/** Totals for a run: what was asked, what was sent, what it cost. */
export interface UsageReport {
  provider: string;
  model: string;
  /** complete() calls. */
  requests: number;
  cacheHits: number;
  /** Attempts that reached the backend (retries included). */
  providerCalls: number;
  /** Retries by the error that caused them (rate_limit, server, timeout, ...). */
  retries: Record<string, number>;
  /** Requests that failed after retries. */
  failures: number;
  /** Tokens of answers fetched in this run (what it paid for). */
  promptTokens: number;
  completionTokens: number;
  /** Tokens of answers served from the cache (paid for by an earlier run). */
  cachedPromptTokens: number;
  cachedCompletionTokens: number;
  /** Answers whose token usage the backend did not report (estimated as characters / 4). */
  estimatedUsage: number;
  /** How answers were constrained: json_schema / grammar / none. */
  constrained: Record<string, number>;
  /** USD per 1M tokens; null for an unknown model. */
  price: Price | null;
  /** Estimated USD for this run's live tokens; null when the price is unknown. */
  cost: number | null;
}

/**
 * Wraps any {@link LLMProvider} with the caller-side policies: response
 * cache → concurrency limit → retries with backoff (honouring retry-after)
 * → per-attempt timeout, and keeps usage and cost totals.
 */
export class LLMClient {
  readonly provider: LLMProvider;
  private readonly sem: Semaphore;
  private readonly timeoutMs: number;
  private readonly price: Price | null;
  private readonly stats: Omit<UsageReport, 'price' | 'cost' | 'provider' | 'model'> = {
    requests: 0, cacheHits: 0, providerCalls: 0, retries: {}, failures: 0,
    promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0, cachedCompletionTokens: 0, estimatedUsage: 0, constrained: {},
  };

  constructor(private readonly opts: LLMClientOptions) {
    this.provider = opts.provider;
    this.sem = new Semaphore(opts.concurrency ?? 4);
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.price = priceFor(opts.provider.id, opts.provider.model, opts.price);
  }

  get cache(): ResponseCache | undefined {
    return this.opts.cache;
  }

  /** One answer: from the cache, or from the provider (then cached at once). */
  async complete(req: Omit<CompletionRequest, 'signal'> & { signal?: AbortSignal }): Promise<ClientAnswer> {
    const p = this.provider;
    this.stats.requests++;
    const key = cacheKey({ provider: p.id, cacheScope: p.cacheScope, model: p.model, messages: req.messages, maxTokens: req.maxTokens, temperature: req.temperature, jsonSchema: req.jsonSchema });
    const hit = await this.opts.cache?.get(key);
    if (hit) {
      this.stats.cacheHits++;
      this.stats.cachedPromptTokens += hit.promptTokens;
      this.stats.cachedCompletionTokens += hit.completionTokens;
      return { text: hit.text, usage: { promptTokens: hit.promptTokens, completionTokens: hit.completionTokens }, cached: true, attempts: 0 };
    }
    const outer = [this.opts.signal, req.signal].filter((s): s is AbortSignal => Boolean(s));
    const outerSignal = outer.length === 0 ? undefined : outer.length === 1 ? outer[0] : AbortSignal.any(outer);
    const release = await this.sem.acquire();
    let attempts = 0;
    try {
      throwIfAborted(outerSignal);
      const result = await retryWithBackoff(async () => {
        attempts++;
        this.stats.providerCalls++;
        const timeout = AbortSignal.timeout(this.timeoutMs);
        const signal = outerSignal ? AbortSignal.any([outerSignal, timeout]) : timeout;
        try {
          const out = await p.complete({ ...req, signal });
          // Usage feeds the cost: a negative or fractional count is a broken backend, not a number to add up.
          for (const [name, v] of [['promptTokens', out.usage.promptTokens], ['completionTokens', out.usage.completionTokens]] as const) {
            if (!(Number.isInteger(v) && v >= 0)) throw new LLMError(`${p.id} reported an invalid token count ${name} ${JSON.stringify(v)} (must be an integer >= 0); answer refused`, { kind: 'bad_response', isRetryable: false, field: `usage.${name}` });
          }
          return out;
        } catch (err) {
          if (outerSignal?.aborted) throw abortedError(outerSignal);
          if (timeout.aborted && (isAbortError(err) || (err instanceof LLMError && err.kind === 'aborted') || !(err instanceof LLMError))) {
            throw new LLMError(`no answer within ${this.timeoutMs} ms`, { kind: 'timeout', cause: err });
          }
          throw err;
        }
      }, {
        ...this.opts.retry,
        signal: outerSignal,
        onRetry: (info) => {
          this.stats.retries[info.error.kind] = (this.stats.retries[info.error.kind] ?? 0) + 1;
          this.opts.retry?.onRetry?.(info);
        },
      });
      const s = this.stats;
      s.promptTokens += result.usage.promptTokens;
      s.completionTokens += result.usage.completionTokens;
      if (result.usage.estimated) s.estimatedUsage++;
      const how = result.constrained ?? 'none';
      s.constrained[how] = (s.constrained[how] ?? 0) + 1;
      await this.opts.cache?.put(key, { provider: p.id, model: p.model }, { text: result.text, promptTokens: result.usage.promptTokens, completionTokens: result.usage.completionTokens });
      return { text: result.text, usage: result.usage, cached: false, attempts, constrained: result.constrained, finishReason: result.finishReason };
    } catch (err) {
      if (outerSignal?.aborted) throw abortedError(outerSignal);
      this.stats.failures++;
      throw err;
    } finally {
      release();
    }
  }

  usage(): UsageReport {
    const s = this.stats;
    return {
      provider: this.provider.id, model: this.provider.model, ...s, retries: { ...s.retries }, constrained: { ...s.constrained },
      price: this.price, cost: estimateCost(this.price, s.promptTokens, s.completionTokens),
    };
  }

  /** Closes the cache and the provider. */
  async close(): Promise<void> {
    await this.opts.cache?.close();
    await this.provider.close?.();
  }
}

function abortedError(signal: AbortSignal): LLMError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : reason !== undefined ? String(reason) : 'aborted';
  return new LLMError(`request aborted (${why})`, { kind: 'aborted', cause: reason });
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortedError(signal);
}
