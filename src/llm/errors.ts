import { P5recError, type ErrorFacts } from '../errors.js';

/**
 * What went wrong talking to a model. `rate_limit`, `server`, `connection`,
 * `timeout` and `bad_response` are transient (retried); `rejected` (a 4xx
 * other than 408/409/429), `context_overflow` and `aborted` are not.
 */
export type LLMErrorKind = 'rate_limit' | 'server' | 'connection' | 'timeout' | 'bad_response' | 'rejected' | 'context_overflow' | 'aborted';

export interface LLMErrorFacts extends ErrorFacts {
  kind: LLMErrorKind;
  /** HTTP status of the backend's answer, when there was one. */
  statusCode?: number;
  /** Overrides the default for `kind`. */
  isRetryable?: boolean;
  /** The server's `retry-after` (or `retry-after-ms`) in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

const RETRYABLE: Record<LLMErrorKind, boolean> = {
  rate_limit: true, server: true, connection: true, timeout: true, bad_response: true,
  rejected: false, context_overflow: false, aborted: false,
};

/** The one error base every provider throws: facts, not message parsing. */
export class LLMError extends P5recError {
  readonly kind: LLMErrorKind;
  readonly statusCode?: number;
  readonly isRetryable: boolean;
  readonly retryAfterMs?: number;
  constructor(message: string, facts: LLMErrorFacts) {
    const { kind, statusCode, isRetryable, retryAfterMs, cause, ...rest } = facts;
    super(message, { status: statusCode && statusCode >= 500 ? 502 : undefined, ...rest });
    this.name = 'LLMError';
    this.kind = kind;
    this.statusCode = statusCode;
    this.isRetryable = isRetryable ?? RETRYABLE[kind];
    this.retryAfterMs = retryAfterMs;
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

/** Thrown when retries run out: keeps every attempt's error, newest last. */
export class LLMRetryError extends LLMError {
  readonly errors: LLMError[];
  constructor(errors: LLMError[], reason: 'maxRetriesExceeded' | 'errorNotRetryable') {
    const last = errors[errors.length - 1];
    const what = reason === 'maxRetriesExceeded' ? `failed after ${errors.length} attempts` : `failed on attempt ${errors.length} with a non-retryable error`;
    super(`${what}: ${last.message} (attempts: ${errors.map((e) => e.kind + (e.statusCode ? ` ${e.statusCode}` : '')).join(', ')})`, {
      kind: last.kind, statusCode: last.statusCode, isRetryable: false,
    });
    this.name = 'LLMRetryError';
    this.errors = errors;
  }
}

/** True for the errors an AbortSignal produces (DOM AbortError, our `aborted` kind). */
export function isAbortError(err: unknown): boolean {
  if (err instanceof LLMError) return err.kind === 'aborted';
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'APIUserAbortError');
}

/** `retry-after-ms` or `retry-after` (seconds or an HTTP date) → milliseconds. */
export function parseRetryAfter(get: (name: string) => string | null | undefined, now = Date.now()): number | undefined {
  const ms = get('retry-after-ms');
  if (ms != null && ms.trim() !== '') {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = get('retry-after');
  if (ra == null || ra.trim() === '') return undefined;
  const s = Number(ra);
  if (Number.isFinite(s)) return s >= 0 ? s * 1000 : undefined;
  const at = Date.parse(ra);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
