import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InputError, P5recError } from '../errors.js';
import { loadDataset } from '../data/dataset.js';
import { writeFileAtomic } from '../util/atomic.js';
import { DuckDBResponseCache, type ResponseCache } from '../llm/cache.js';
import { LLMClient } from '../llm/client.js';
import { runLlmEval, type LlmRun } from '../llm/eval.js';
import { LLM_TASKS, loadPromptSet, type LlmTask } from '../llm/prompts.js';
import type { LLMProvider } from '../llm/provider.js';
import { boundedInt, logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';
import { DEFAULT_SEED } from '../defaults.js';

/** Demonstrations per prompt at most: each is a whole user's history, and twenty already fill most context windows. */
export const MAX_SHOTS = 20;

/** An OpenAI-compatible base URL must be an absolute http(s) URL; said now, not after four retries. */
function checkBaseUrl(v: string): void {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InputError(`--base-url must be an absolute http(s) URL such as http://127.0.0.1:8000/v1, got '${v}'`, { field: 'base-url' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InputError(`--base-url must use http or https, got '${u.protocol}' in '${v}'`, { field: 'base-url' });
}

interface LlmEvalFlags extends CommonFlags {
  provider: string;
  model?: string;
  baseUrl?: string;
  gguf?: string;
  task: string;
  split: string;
  shots: string;
  users?: string;
  history?: string;
  topK?: string;
  positiveAt: string;
  sequentialMode: string;
  concurrency?: string;
  timeoutMs?: string;
  retries: string;
  refineRetries: string;
  matchThreshold: string;
  maxTokens?: string;
  temperature: string;
  titleMaxChars: string;
  seed: string;
  /** A folder, true (default folder) or false (--no-cache). */
  cache?: string | boolean;
  priceIn?: string;
  priceOut?: string;
  contextSize?: string;
  threads?: string;
  prompts?: string;
  domain?: string;
  onProviderError: string;
  structuredOutput: string;
  maxTokensParam: string;
  out?: string;
}

function parseNumberFlag(name: string, value: string | undefined, min = -Infinity, max = Infinity): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new InputError(`--${name} must be a number${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` <= ${max}` : ''}, got '${value}'`);
  return n;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new InputError(`--${name} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

/** Default cache folder: $XDG_CACHE_HOME/p5rec or ~/.cache/p5rec (read here, at the CLI edge). */
function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'p5rec');
}

async function makeProvider(f: LlmEvalFlags): Promise<LLMProvider> {
  const kind = oneOf('provider', f.provider, ['openai', 'llama'] as const);
  if (kind === 'openai') {
    if (!f.model) throw new InputError('--model is required with --provider openai', { field: 'model' });
    const { createOpenAICompatible } = await import('../llm/providers/openai.js');
    return createOpenAICompatible({
      model: f.model,
      baseURL: f.baseUrl,
      apiKey: process.env.OPENAI_API_KEY,
      structuredOutput: oneOf('structured-output', f.structuredOutput, ['auto', 'off'] as const),
      maxTokensParam: oneOf('max-tokens-param', f.maxTokensParam, ['max_tokens', 'max_completion_tokens'] as const),
    });
  }
  if (!f.gguf) throw new InputError('--gguf FILE is required with --provider llama', { field: 'gguf' });
  const { createLlamaProvider } = await import('../llm/providers/llama.js');
  return createLlamaProvider({
    modelPath: f.gguf,
    model: f.model,
    contextSize: f.contextSize ? parseIntFlag('context-size', f.contextSize, 4096, 256) : undefined,
    threads: f.threads ? parseIntFlag('threads', f.threads, 0, 1) : undefined,
    seed: parseIntFlag('seed', f.seed, DEFAULT_SEED, 0),
  });
}

/** `p5rec llm eval`: an LLM as a recommender, scored with the shared protocols. */
export function registerLlmCommands(program: Command): void {
  const llm = program.command('llm').description('LLMs as recommenders (Liu et al. 2023): zero/few-shot prompts, output refinement, position bias, cached and costed');
  llm.command('eval').description('evaluate an LLM on a task with the shared protocol (rating/direct/sequential via evaluate; BLEU/ROUGE for explanation/review)')
    .argument('<dataset>', 'dataset folder')
    .requiredOption('--provider <kind>', 'openai (any OpenAI-compatible server) | llama (embedded GGUF)')
    .option('--model <name>', 'model name (openai: required; llama: label, default the file name)')
    .option('--base-url <url>', 'OpenAI-compatible base URL (default https://api.openai.com/v1); API key from OPENAI_API_KEY')
    .option('--gguf <file>', 'GGUF model file (llama)')
    .requiredOption('--task <task>', LLM_TASKS.join('|'))
    .option('--split <split>', 'test|valid', 'test')
    .option('--shots <k>', 'few-shot demonstrations from other users\' training data (0 = zero-shot)', '0')
    .option('--users <n>', 'evaluate only the first n users')
    .option('--history <n>', 'items of behaviour injection (most recent)', '10')
    .option('--top-k <k>', 'ranked-list length asked for (default 10 direct, 20 sequential)')
    .option('--positive-at <where>', 'first|last|random: where the held-out item sits among the candidates; first/last also run random and report the ratio', 'random')
    .option('--sequential-mode <mode>', 'generate (name the next titles) | candidates (rank 1 held-out + stored negatives)', 'generate')
    .option('--concurrency <c>', 'requests in flight (default 4; llama serves one at a time)')
    .option('--timeout-ms <ms>', 'per attempt (default 60000; llama 600000)')
    .option('--retries <r>', 'retries on 429/5xx/connection/timeout/bad body', '3')
    .option('--refine-retries <n>', 're-asks after an unusable answer', '2')
    .option('--match-threshold <x>', 'title similarity (trigram Dice) needed to map a generated title to an item', '0.6')
    .option('--max-tokens <n>', 'tokens per answer (default per task)')
    .option('--temperature <t>', 'sampling temperature', '0')
    .option('--title-max-chars <n>', 'cut longer titles in prompts (0 = never)', '100')
    .option('--seed <n>', 'seeds candidate shuffles and demonstration draws', String(DEFAULT_SEED))
    .option('--cache <dir>', 'response cache folder (llm-cache.duckdb inside); default $XDG_CACHE_HOME/p5rec')
    .option('--no-cache', 'do not read or write the response cache')
    .option('--price-in <usd>', 'USD per 1M prompt tokens (overrides the price table)')
    .option('--price-out <usd>', 'USD per 1M completion tokens (overrides the price table)')
    .option('--context-size <n>', 'llama: context tokens (default 4096)')
    .option('--threads <n>', 'llama: CPU threads')
    .option('--prompts <file>', 'prompt templates JSON (default data/prompts/llm.json)')
    .option('--domain <text>', 'what the catalogue is, for the prompts (default from item categories)')
    .option('--on-provider-error <mode>', 'fail | miss: what a request that fails after retries does', 'fail')
    .option('--structured-output <mode>', 'openai: auto (json_schema, text fallback) | off', 'auto')
    .option('--max-tokens-param <name>', 'openai: max_tokens (most servers) | max_completion_tokens (newer OpenAI models)', 'max_tokens')
    .option('--out <file>', 'write the run JSON here (for `p5rec report`)')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((dir: string, f: LlmEvalFlags) => runCommand(f, async () => {
      const task = oneOf('task', f.task, LLM_TASKS) as LlmTask;
      const split = oneOf('split', f.split, ['test', 'valid'] as const);
      const positiveAt = oneOf('positive-at', f.positiveAt, ['first', 'last', 'random'] as const);
      const sequentialMode = oneOf('sequential-mode', f.sequentialMode, ['generate', 'candidates'] as const);
      const onProviderError = oneOf('on-provider-error', f.onProviderError, ['fail', 'miss'] as const);
      const isLlama = f.provider === 'llama';
      const log = logger(f);
      // Flags that need no data are checked before anything is opened or sent.
      const shots = boundedInt('shots', f.shots, 0, 0, MAX_SHOTS);
      if (f.baseUrl !== undefined) checkBaseUrl(f.baseUrl);
      const ds = await loadDataset(dir);
      const prompts = loadPromptSet(f.prompts);
      const provider = await makeProvider(f);
      let cache: ResponseCache | undefined;
      if (f.cache !== false) cache = await DuckDBResponseCache.open(typeof f.cache === 'string' ? f.cache : defaultCacheDir());
      const controller = new AbortController();
      const onSigint = (): void => {
        log('interrupted: stopping; answers received so far are in the cache, rerun to resume');
        controller.abort(new Error('interrupted'));
      };
      process.once('SIGINT', onSigint);
      const client = new LLMClient({
        provider, cache,
        concurrency: isLlama ? 1 : parseIntFlag('concurrency', f.concurrency, 4, 1),
        timeoutMs: parseIntFlag('timeout-ms', f.timeoutMs, isLlama ? 600_000 : 60_000, 1),
        retry: { retries: parseIntFlag('retries', f.retries, 3, 0), onRetry: ({ error, delayMs }) => log(`retrying after ${error.kind}${error.statusCode ? ` ${error.statusCode}` : ''} in ${Math.round(delayMs)} ms: ${error.message}`) },
        price: { input: parseNumberFlag('price-in', f.priceIn, 0), output: parseNumberFlag('price-out', f.priceOut, 0) },
        signal: controller.signal,
      });
      let run: LlmRun;
      try {
        run = await runLlmEval(ds, client, {
          task, split, positiveAt, sequentialMode, onProviderError, prompts,
          users: f.users ? parseIntFlag('users', f.users, 0, 1) : undefined,
          shots,
          historyLength: parseIntFlag('history', f.history, 10, 0),
          topK: f.topK ? parseIntFlag('top-k', f.topK, 10, 1) : undefined,
          concurrency: isLlama ? 1 : parseIntFlag('concurrency', f.concurrency, 4, 1),
          refineRetries: parseIntFlag('refine-retries', f.refineRetries, 2, 0),
          matchThreshold: parseNumberFlag('match-threshold', f.matchThreshold, 0, 1),
          maxTokens: f.maxTokens ? parseIntFlag('max-tokens', f.maxTokens, 0, 1) : undefined,
          temperature: parseNumberFlag('temperature', f.temperature, 0, 2),
          titleMaxChars: parseIntFlag('title-max-chars', f.titleMaxChars, 100, 0),
          seed: parseIntFlag('seed', f.seed, DEFAULT_SEED, 0),
          domain: f.domain,
          quiet: f.quiet,
          signal: controller.signal,
        });
      } catch (err) {
        if (!controller.signal.aborted) throw err;
        const u = client.usage();
        const kept = cache ? `${await cache.size()} answers are in ${cache.location}; rerun the same command to resume` : 'no cache was in use (--no-cache)';
        throw new P5recError(`interrupted (${u.providerCalls} requests sent, ${u.cacheHits} answers from the cache, cost ${u.cost === null ? 'unknown' : `$${u.cost.toFixed(4)}`}); ${kept}`);
      } finally {
        process.removeListener('SIGINT', onSigint);
        await client.close();
      }
      const u = run.llm.usage;
      log(`${run.label}: ${u.requests} requests (${u.cacheHits} cached, ${u.providerCalls} sent), ${u.promptTokens}+${u.completionTokens} tokens, cost ${u.cost === null ? 'unknown' : `$${u.cost.toFixed(4)}`}`);
      const ref = run.llm.refinement;
      if (ref.asked > 0) log(`unusable answers: ${ref.gaveUp} of ${ref.asked} (${((100 * ref.gaveUp) / ref.asked).toFixed(1)}%)`);
      // Metrics over answers that were all unusable measure the parser, not the model: no run to report.
      if (ref.asked > 0 && ref.firstTry + ref.afterReask === 0) {
        throw new P5recError(`no usable answer: ${ref.gaveUp} of ${ref.asked} answers (100%) were unusable after ${parseIntFlag('refine-retries', f.refineRetries, 2, 0)} re-asks (${Object.entries(ref.repairs).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'no repairs'}); check --model, --prompts and --max-tokens${f.out ? `; ${f.out} was not written` : ''}`, { field: 'answers' });
      }
      if (f.out) {
        mkdirSync(dirname(f.out), { recursive: true });
        writeFileAtomic(f.out, `${JSON.stringify(run, null, 2)}\n`);
      }
      return { ...run, ...(f.out ? { out: f.out } : {}) };
    }, (r) => `${r.label} ${r.task}/${r.split} (${r.count}): ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ')}\n${r.notes}`));
}
