/** LLMs as recommenders: the provider seam, its wrappers, prompts, refinement and evaluation. */
export type { ChatMessage, ChatRole, CompletionRequest, CompletionResult, JsonSchemaSpec, LLMProvider, TokenUsage } from './provider.js';
export { LLMError, LLMRetryError, isAbortError, parseRetryAfter, type LLMErrorKind } from './errors.js';
export { retryWithBackoff, backoffDelay, type RetryOptions } from './retry.js';
export { Semaphore } from './semaphore.js';
export { cacheKey, DuckDBResponseCache, MemoryResponseCache, type ResponseCache, type CachedResponse } from './cache.js';
export { OPENAI_PRICES, priceFor, estimateCost, type Price } from './cost.js';
export { LLMClient, type LLMClientOptions, type UsageReport, type ClientAnswer } from './client.js';
export { createOpenAICompatible, type OpenAICompatibleOptions, type OpenAICompatibleProvider } from './providers/openai.js';
export { createLlamaProvider, type LlamaProviderOptions } from './providers/llama.js';
export { LLM_TASKS, loadPromptSet, PromptBuilder, answerSchema, DEFAULT_PROMPTS_PATH, type LlmTask, type PromptSet, type PromptOptions, type Prompt } from './prompts.js';
export { REPAIR_KINDS, RepairLog, TitleIndex, normalizeTitle, parseJsonLoose, parseList, parseRating, refineRanking, refineText, type RepairKind, type RankingContext } from './refine.js';
export { Asker, LlmRecommender, type LlmRecommenderOptions, type PositiveAt, type RefinementReport, type PlannedJob } from './recommender.js';
export { runLlmEval, planJobs, titleIndexFor, formatNotes, type LlmEvalOptions, type LlmRun, type LlmRunDetails, type PositionBiasReport } from './eval.js';
