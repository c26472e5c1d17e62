/**
 * The two runs a pipeline writes that are not a model folder's evaluation:
 * the trivial text baseline (most frequent training answer) and an LLM
 * recommender's evaluation (`p5rec llm eval --out FILE`, in-process).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { P5recError } from '../errors.js';
import { runEnv } from '../eval/run-env.js';
import { isBeauty } from '../eval/published.js';
import type { EvalSplit } from '../eval/evaluate.js';
import { mostFrequentAnswer, textMetrics, textStandardErrors, type TextTask } from '../p5/evaluate-text.js';
import { evaluationInstances } from '../prompts/eval-instances.js';
import { loadPromptCollection } from '../prompts/templates.js';
import { DuckDBResponseCache, type ResponseCache } from '../llm/cache.js';
import { LLMClient } from '../llm/client.js';
import { runLlmEval, type LlmEvalOptions, type LlmRun } from '../llm/eval.js';
import type { LLMProvider } from '../llm/provider.js';
import { writeFileAtomic } from '../util/atomic.js';
import { DEFAULT_SEED } from '../defaults.js';

/** The trivial text baseline on the rows P5 is scored on with `prompt`, as an eval run. */
export function mostFrequentRun(ds: Dataset, datasetDir: string, task: TextTask, prompt: string, split: EvalSplit, maxRows?: number): Record<string, unknown> {
  const t = loadPromptCollection().templates.find((x) => x.id === prompt);
  if (!t) throw new P5recError(`unknown prompt '${prompt}'`, { field: 'prompt' });
  const rows = [...evaluationInstances(ds, [t], split, { tasks: [task], templates: 'all' })].slice(0, maxRows ?? Infinity);
  const refs = rows.map((r) => r.target);
  const answer = mostFrequentAnswer(ds, task);
  const outputs = refs.map(() => answer);
  return {
    model: 'most-frequent', kind: 'most-frequent', label: `most frequent training answer (${prompt} rows)`,
    dataset: ds.manifest.name, beauty: isBeauty(ds.numUsers, ds.numItems), datasetDir, itemIndex: ds.manifest.options.itemIndex, seed: ds.manifest.options.seed,
    task, split, prompt, answer,
    protocol: `${split} rows of the random split that prompt ${prompt} is scored on; every row answered with the most frequent training ${task === 'explanation' ? 'explanation' : 'summary'}`,
    metrics: textMetrics(task, outputs, refs), stderr: textStandardErrors(task, outputs, refs), count: refs.length,
    env: runEnv(),
    notes: `always answers "${answer.length > 60 ? `${answer.slice(0, 57)}...` : answer}"`,
  };
}

/** Which LLM answers: the embedded llama.cpp runtime on a GGUF file, or any OpenAI-compatible server. */
export type PipelineLlmProvider =
  | { kind: 'llama'; gguf: string; model?: string; contextSize?: number; threads?: number; seed?: number }
  | { kind: 'openai'; model: string; baseURL?: string; apiKey?: string };

async function makeProvider(p: PipelineLlmProvider): Promise<LLMProvider> {
  // Imported on use: node-llama-cpp and the HTTP client load only for the provider asked for.
  if (p.kind === 'openai') {
    const { createOpenAICompatible } = await import('../llm/providers/openai.js');
    return createOpenAICompatible({ model: p.model, baseURL: p.baseURL, apiKey: p.apiKey });
  }
  const { createLlamaProvider } = await import('../llm/providers/llama.js');
  return createLlamaProvider({ modelPath: p.gguf, model: p.model, contextSize: p.contextSize, threads: p.threads, seed: p.seed ?? DEFAULT_SEED });
}

/**
 * `p5rec llm eval … --out FILE` as a call: the same client settings (one
 * request at a time for llama, the response cache in `cacheDir`), the same
 * refusal when no answer was usable, the run written to `file`.
 */
export async function llmRunToFile(ds: Dataset, o: {
  provider: PipelineLlmProvider;
  eval: Omit<LlmEvalOptions, 'signal' | 'quiet'>;
  file: string;
  cacheDir?: string;
  quiet?: boolean;
  log: (msg: string) => void;
  signal?: AbortSignal;
  /** Changes the run before it is written (a label, notes). */
  relabel?: (run: LlmRun) => LlmRun;
}): Promise<LlmRun> {
  const isLlama = o.provider.kind === 'llama';
  const provider = await makeProvider(o.provider);
  let cache: ResponseCache | undefined;
  if (o.cacheDir) cache = await DuckDBResponseCache.open(o.cacheDir);
  const concurrency = isLlama ? 1 : (o.eval.concurrency ?? 4);
  const client = new LLMClient({
    provider, cache, concurrency,
    timeoutMs: isLlama ? 600_000 : 60_000,
    retry: { retries: 3, onRetry: ({ error, delayMs }) => o.log(`retrying after ${error.kind}${error.statusCode ? ` ${error.statusCode}` : ''} in ${Math.round(delayMs)} ms: ${error.message}`) },
    signal: o.signal,
  });
  let run: LlmRun;
  try {
    run = await runLlmEval(ds, client, { ...o.eval, concurrency, quiet: o.quiet, signal: o.signal });
  } finally {
    await client.close();
  }
  const ref = run.llm.refinement;
  // Metrics over answers that were all unusable measure the parser, not the model: no run to report.
  if (ref.asked > 0 && ref.firstTry + ref.afterReask === 0) {
    throw new P5recError(`no usable answer: ${ref.gaveUp} of ${ref.asked} answers (100%) were unusable after ${o.eval.refineRetries ?? 2} re-asks; ${o.file} was not written`, { field: 'answers' });
  }
  const out = o.relabel ? o.relabel(run) : run;
  mkdirSync(dirname(o.file), { recursive: true });
  writeFileAtomic(o.file, `${JSON.stringify(out, null, 2)}\n`);
  return out;
}
