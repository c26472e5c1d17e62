import { LLMError, LLMRetryError, isAbortError } from './errors.js';

export interface RetryOptions {
  /** Retries after the first attempt (0 = try once). Default 3. */
  retries?: number;
  /** First backoff delay in ms; doubled (× factor) each retry. Default 1000. */
  initialDelayMs?: number;
  factor?: number;
  /** Cap on one backoff delay. Default 30 000. */
  maxDelayMs?: number;
  /**
   * A server's retry-after is honoured when it asks for at most this long;
   * longer requests fall back to exponential backoff. Default 60 000.
   */
  maxRetryAfterMs?: number;
  /** [0, 1) source for jitter; default Math.random (jitter does not change results). */
  random?: () => number;
  /** Injectable for tests; default a timer that the signal cancels. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
  /** Called before each wait: which attempt failed, with what, and how long we wait. */
  onRetry?: (info: { attempt: number; error: LLMError; delayMs: number }) => void;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Delay before retry number `retry` (0-based): the server's retry-after when
 * it gave a reasonable one, else exponential backoff with "equal jitter"
 * (half fixed, half random) so that parallel callers spread out.
 */
export function backoffDelay(retry: number, error: LLMError, opts: RetryOptions = {}): number {
  const maxRetryAfter = opts.maxRetryAfterMs ?? 60_000;
  if (error.retryAfterMs !== undefined && error.retryAfterMs <= maxRetryAfter) return error.retryAfterMs;
  const exp = Math.min(opts.maxDelayMs ?? 30_000, (opts.initialDelayMs ?? 1000) * (opts.factor ?? 2) ** retry);
  return exp / 2 + (opts.random ?? Math.random)() * (exp / 2);
}

/**
 * Run `fn` until it succeeds, retrying {@link LLMError}s that are retryable.
 * A non-retryable error on the first attempt is thrown as is; otherwise the
 * caller gets one {@link LLMRetryError} that keeps every attempt's error.
 * Aborts are never retried. Non-LLMError exceptions are programming errors
 * and propagate untouched.
 */
export async function retryWithBackoff<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const retries = opts.retries ?? 3;
  const errors: LLMError[] = [];
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (isAbortError(err) || !(err instanceof LLMError)) throw err;
      errors.push(err);
      if (!err.isRetryable) {
        if (errors.length === 1) throw err;
        throw new LLMRetryError(errors, 'errorNotRetryable');
      }
      if (attempt >= retries) throw new LLMRetryError(errors, 'maxRetriesExceeded');
      const delayMs = backoffDelay(attempt, err, opts);
      opts.onRetry?.({ attempt, error: err, delayMs });
      await (opts.sleep ?? sleep)(delayMs, opts.signal);
    }
  }
}
