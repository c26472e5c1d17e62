/**
 * The LLMProvider seam: a small, types-only interface every language-model
 * backend implements (an OpenAI-compatible HTTP server, an embedded GGUF
 * model). Retries, timeouts, concurrency, caching and cost live in
 * {@link ../llm/client.ts LLMClient}, which wraps any provider, so a provider
 * only turns one request into one answer or one {@link LLMError}.
 */

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** A JSON schema the answer should follow, with a name (OpenAI requires one). */
export interface JsonSchemaSpec {
  name: string;
  schema: Record<string, unknown>;
}

export interface CompletionRequest {
  messages: readonly ChatMessage[];
  /** Upper bound on generated tokens. */
  maxTokens: number;
  /** 0 = greedy / as deterministic as the backend allows. */
  temperature: number;
  /**
   * Ask for output that follows this schema. Providers enforce it where they
   * can (OpenAI `response_format: json_schema`, a llama.cpp grammar) and
   * otherwise send plain text; callers must still parse defensively.
   */
  jsonSchema?: JsonSchemaSpec;
  signal?: AbortSignal;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  /** True when the backend reported no usage and the counts are estimated (characters / 4). */
  estimated?: boolean;
}

export interface CompletionResult {
  text: string;
  usage: TokenUsage;
  /** How the answer was constrained: `json_schema` (server-side), `grammar` (local), `none`. */
  constrained?: 'json_schema' | 'grammar' | 'none';
  /** Why generation stopped, in the backend's words (`stop`, `length`, `maxTokens`, ...). */
  finishReason?: string;
  /** The backend's own response object, for debugging; never cached. */
  raw?: unknown;
}

export interface LLMProvider {
  /** Backend family: `openai`, `llama`. */
  readonly id: string;
  /** Model name as the backend knows it (used for prices and labels). */
  readonly model: string;
  /**
   * Distinguishes backends that serve the same model name differently (a
   * base URL, a model file); part of the response-cache key.
   */
  readonly cacheScope?: string;
  complete(req: CompletionRequest): Promise<CompletionResult>;
  /** Release what the provider holds (contexts, sockets). */
  close?(): Promise<void>;
}
