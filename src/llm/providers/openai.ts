import OpenAI from 'openai';
import { LLMError, parseRetryAfter, type LLMErrorKind } from '../errors.js';
import type { CompletionRequest, CompletionResult, LLMProvider } from '../provider.js';

export interface OpenAICompatibleOptions {
  model: string;
  /** Default https://api.openai.com/v1. Any server that speaks POST /chat/completions (vLLM, llama.cpp server, Ollama...). */
  baseURL?: string;
  /** Passed in by the caller (the CLI reads OPENAI_API_KEY); local servers often need none. */
  apiKey?: string;
  /** Injectable fetch (tests, proxies, instrumentation). */
  fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  headers?: Record<string, string>;
  /**
   * `auto` (default): send `response_format: {type: 'json_schema'}` when the
   * request carries a schema, and fall back to plain text for the rest of the
   * run if the server rejects it. `off`: never send it.
   */
  structuredOutput?: 'auto' | 'off';
  /** Newer OpenAI models take `max_completion_tokens`; most compatible servers `max_tokens` (default). */
  maxTokensParam?: 'max_tokens' | 'max_completion_tokens';
}

export interface OpenAICompatibleProvider extends LLMProvider {
  /** undefined until a schema request was answered; false after the server rejected json_schema. */
  readonly structuredOutputSupported: boolean | undefined;
  /** How many requests were re-sent without response_format after a rejection. */
  readonly structuredOutputFallbacks: number;
}

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/**
 * An OpenAI-compatible chat-completions provider on the `openai` SDK. The
 * SDK's own retries are off (maxRetries 0): {@link LLMClient} retries, so the
 * policy is the same for every provider. Nothing is read from the
 * environment here; every SDK default that would read it is set explicitly.
 */
export function createOpenAICompatible(opts: OpenAICompatibleOptions): OpenAICompatibleProvider {
  const baseURL = (opts.baseURL ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  const client = new OpenAI({
    apiKey: opts.apiKey || 'no-key',
    baseURL,
    organization: null,
    project: null,
    webhookSecret: null,
    maxRetries: 0,
    timeout: 2_147_483_647, // the client's AbortSignal decides
    fetch: opts.fetch,
    defaultHeaders: opts.headers,
    logLevel: 'off',
  });
  let structured: boolean | undefined = opts.structuredOutput === 'off' ? false : undefined;
  let fallbacks = 0;

  const send = async (req: CompletionRequest, withSchema: boolean): Promise<CompletionResult> => {
    const body: Record<string, unknown> = {
      model: opts.model,
      messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
      temperature: req.temperature,
      [opts.maxTokensParam ?? 'max_tokens']: req.maxTokens,
    };
    if (withSchema && req.jsonSchema) {
      body.response_format = { type: 'json_schema', json_schema: { name: req.jsonSchema.name, schema: req.jsonSchema.schema, strict: true } };
    }
    let res: unknown;
    try {
      res = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming, { signal: req.signal, maxRetries: 0 });
    } catch (err) {
      throw toLLMError(err, baseURL);
    }
    const r = res as { choices?: { message?: { content?: unknown; refusal?: unknown }; finish_reason?: string }[]; usage?: { prompt_tokens?: number; completion_tokens?: number } };
    const choice = Array.isArray(r?.choices) ? r.choices[0] : undefined;
    if (!choice || typeof choice !== 'object' || !choice.message) {
      throw new LLMError('the server answered without choices[0].message', { kind: 'bad_response', statusCode: 200 });
    }
    const content = choice.message.content;
    const text = typeof content === 'string' ? content : '';
    const promptChars = req.messages.reduce((n, m) => n + m.content.length, 0);
    const u = r.usage;
    const known = u && Number.isFinite(u.prompt_tokens) && Number.isFinite(u.completion_tokens);
    return {
      text,
      usage: known
        ? { promptTokens: u.prompt_tokens as number, completionTokens: u.completion_tokens as number }
        : { promptTokens: Math.ceil(promptChars / 4), completionTokens: Math.ceil(text.length / 4), estimated: true },
      constrained: withSchema && req.jsonSchema ? 'json_schema' : 'none',
      finishReason: typeof choice.message.refusal === 'string' && choice.message.refusal ? 'refusal' : choice.finish_reason,
      raw: res,
    };
  };

  return {
    id: 'openai',
    model: opts.model,
    cacheScope: baseURL,
    get structuredOutputSupported() {
      return structured;
    },
    get structuredOutputFallbacks() {
      return fallbacks;
    },
    async complete(req: CompletionRequest): Promise<CompletionResult> {
      const withSchema = Boolean(req.jsonSchema) && structured !== false;
      try {
        const out = await send(req, withSchema);
        if (withSchema) structured = true;
        return out;
      } catch (err) {
        if (withSchema && err instanceof LLMError && isSchemaRejection(err)) {
          structured = false;
          fallbacks++;
          return send(req, false);
        }
        throw err;
      }
    },
  };
}

/** A 400/422 that complains about response_format / json_schema: the server lacks structured output. */
function isSchemaRejection(err: LLMError): boolean {
  if (err.statusCode !== 400 && err.statusCode !== 422 && err.statusCode !== 404 && err.statusCode !== 501) return false;
  return /response_format|json_schema|structured|schema/i.test(err.message);
}

/** Connection failures that another try cannot fix: nothing listens there, the host does not exist, the URL is malformed. */
const PERMANENT_CONNECTION = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_FAIL', 'ERR_INVALID_URL', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED']);

/** The innermost `code` (and its message) along an error's cause chain: fetch hides ECONNREFUSED two levels down. */
function rootCause(err: unknown): { code?: string; message: string } {
  let e: unknown = err;
  let found: { code?: string; message: string } = { message: err instanceof Error ? err.message : String(err) };
  for (let depth = 0; e instanceof Error && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') found = { code, message: e.message };
    else if (!found.code) found = { message: e.message };
    e = (e as { cause?: unknown }).cause;
  }
  return found;
}

/** SDK errors → one LLMError with facts; `baseURL` is named where the failure is about reaching it. */
export function toLLMError(err: unknown, baseURL?: string): LLMError {
  if (err instanceof LLMError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return new LLMError('request aborted', { kind: 'aborted', cause: err });
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new LLMError('request timed out', { kind: 'timeout', cause: err });
  const at = baseURL ? ` (${baseURL})` : '';
  if (err instanceof OpenAI.APIConnectionError) {
    const root = rootCause(err);
    const permanent = root.code !== undefined && PERMANENT_CONNECTION.has(root.code);
    return new LLMError(`cannot reach the server${at}: ${root.code ? `${root.code} ` : ''}${root.message}`, { kind: 'connection', isRetryable: !permanent, cause: err });
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    const headers = err.headers;
    const kind: LLMErrorKind = status === 429 ? 'rate_limit' : status !== undefined && status >= 500 ? 'server' : status === 408 || status === 409 ? 'server' : 'rejected';
    return new LLMError(`HTTP ${status ?? '?'}: ${err.message}`, {
      kind, statusCode: status,
      retryAfterMs: headers ? parseRetryAfter((n) => headers.get(n)) : undefined,
      cause: err,
    });
  }
  if (err instanceof Error && (err.name === 'AbortError')) return new LLMError('request aborted', { kind: 'aborted', cause: err });
  // A URL the SDK cannot even build a request from: no retry helps.
  const root = rootCause(err);
  if (root.code === 'ERR_INVALID_URL' || (err instanceof TypeError && /invalid url/i.test(root.message))) {
    return new LLMError(`invalid base URL${at}: ${root.message}`, { kind: 'rejected', cause: err });
  }
  // A body that is not JSON, a truncated stream: the server's fault, worth another try.
  const msg = err instanceof Error ? err.message : String(err);
  return new LLMError(`unreadable response${at}: ${msg}`, { kind: 'bad_response', cause: err });
}
