import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../src/data/build.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { readP5 } from '../src/data/import-p5.js';
import { TEST } from '../src/data/splits.js';
import { DuckDBResponseCache } from '../src/llm/cache.js';
import { LLMClient } from '../src/llm/client.js';
import { runLlmEval, titleIndexFor, type LlmEvalOptions } from '../src/llm/eval.js';
import { loadPromptSet, PromptBuilder } from '../src/llm/prompts.js';
import type { CompletionResult, LLMProvider } from '../src/llm/provider.js';
import { createLlamaProvider } from '../src/llm/providers/llama.js';
import { LlmRecommender } from '../src/llm/recommender.js';
import { BEAUTY, STORIES_GGUF, tempDir } from './helpers/cli.js';

const MODEL = STORIES_GGUF;

/**
 * The real embedded path: a 1 MB Llama-architecture GGUF that writes
 * children's stories, prompted as a Beauty recommender. Its answers are
 * nonsense for the task; the point is that the path is real — the model
 * loads, generates under a JSON-schema grammar, refinement turns the output
 * into valid items or counted failures, and metrics come out.
 */
describe.skipIf(!existsSync(MODEL) || !existsSync(join(BEAUTY, 'sequential.txt')))('embedded GGUF (stories260K) on an Amazon Beauty slice', () => {
  let ds: Dataset;
  let tmp: string;
  let provider: LLMProvider;
  const answers: CompletionResult[] = [];
  /** The llama provider, with every answer recorded. */
  let recorded: LLMProvider;
  // Short prompts and answers: prompt evaluation dominates on a busy CPU.
  const opts = (o: Partial<LlmEvalOptions>): LlmEvalOptions => ({ task: 'direct', users: 5, maxTokens: 40, refineRetries: 1, historyLength: 5, titleMaxChars: 20, quiet: true, ...o });

  beforeAll(async () => {
    tmp = tempDir('p5rec-llm-llama-');
    const raw = await readP5(join(BEAUTY, 'sequential.txt'), join(BEAUTY, 'datamaps.json'), join(BEAUTY, 'meta.jsonl'));
    await buildDataset(raw, { out: join(tmp, 'beauty'), name: 'beauty' });
    ds = await loadDataset(join(tmp, 'beauty'));
    provider = createLlamaProvider({ modelPath: MODEL, contextSize: 4096, threads: 1 });
    recorded = {
      id: provider.id, model: provider.model, cacheScope: provider.cacheScope,
      complete: async (req) => {
        const r = await provider.complete(req);
        answers.push(r);
        return r;
      },
      close: () => provider.close!(),
    };
  }, 300_000);

  afterAll(async () => {
    await provider?.close?.();
  });

  it('direct (1 of 100 candidates) and sequential (generated titles) run end to end; a rerun comes from the cache', async () => {
    const cacheDir = join(tmp, 'cache');
    const client = new LLMClient({ provider: recorded, cache: await DuckDBResponseCache.open(cacheDir), concurrency: 1, timeoutMs: 600_000 });
    const direct = await runLlmEval(ds, client, opts({ task: 'direct' }));
    const sequential = await runLlmEval(ds, client, opts({ task: 'sequential', topK: 5 }));
    const usage = client.usage();
    await client.close();
    console.log(JSON.stringify({ direct: { metrics: direct.metrics, refinement: direct.llm.refinement }, sequential: { metrics: sequential.metrics, refinement: sequential.llm.refinement }, usage, samples: { direct: answers.slice(0, 2).map((a) => a.text), sequential: answers.slice(5, 8).map((a) => a.text) } }, null, 1));

    // It generated, under a grammar: every answer is constrained and starts as the schema's JSON object.
    expect(answers.length).toBe(usage.providerCalls);
    expect(answers.length).toBeGreaterThanOrEqual(10);
    expect(usage.constrained).toEqual({ grammar: answers.length });
    for (const a of answers) expect(a.text.trimStart().startsWith('{')).toBe(true);
    expect(usage.completionTokens).toBeGreaterThan(0);
    expect(usage.promptTokens).toBeGreaterThan(0);
    expect(usage.cost).toBe(0); // local model: no bill

    // Metrics come out on the shared protocols (near zero: it writes stories).
    for (const [run, keys] of [[direct, ['HR@1', 'HR@5', 'NDCG@5', 'HR@10', 'NDCG@10']], [sequential, ['HR@5', 'NDCG@5', 'HR@10', 'NDCG@10', 'HR@20', 'NDCG@20']]] as const) {
      expect(run.count).toBe(5);
      expect(Object.keys(run.metrics).sort()).toEqual([...keys].sort());
      for (const v of Object.values(run.metrics)) expect(v).toBeGreaterThanOrEqual(0);
      // Every user ends as a usable answer or a counted failure.
      const r = run.llm.refinement;
      expect(r.asked).toBe(5);
      expect(r.firstTry + r.afterReask + r.gaveUp).toBe(5);
      expect(r.gaveUp).toBe(r.repairs.gave_up ?? 0);
      for (const v of Object.values(r.repairs)) expect(Number.isInteger(v) && v > 0).toBe(true);
    }

    // A rerun is served from the DuckDB cache: no generation at all.
    const before = answers.length;
    const c2 = new LLMClient({ provider: recorded, cache: await DuckDBResponseCache.open(cacheDir), concurrency: 1 });
    const again = await runLlmEval(ds, c2, opts({ task: 'direct' }));
    await c2.close();
    expect(answers.length).toBe(before);
    expect(again.metrics).toEqual(direct.metrics);
    expect(again.llm.refinement).toEqual(direct.llm.refinement);
  }, 600_000);

  it('refined rankings are valid items: distinct candidates (direct), catalogue items outside the history (sequential)', async () => {
    // Served from the cache written above for users 0..: the same prompts, so no generation is needed.
    const client = new LLMClient({ provider: recorded, cache: await DuckDBResponseCache.open(join(tmp, 'cache')), concurrency: 1 });
    const builder = new PromptBuilder(ds, loadPromptSet(), { shots: 0, historyLength: 5, topK: 10, seed: 2022, titleMaxChars: 20, reviewMaxChars: 2000 });
    const common = { refineRetries: 1, maxTokens: 40, temperature: 0, onProviderError: 'fail' as const, split: 'test' as const, positiveAt: 'random' as const, sequentialMode: 'generate' as const, matchThreshold: 0.6, ratingScale: { min: 1, max: 5 } };
    const u = 0;
    const history = ds.historyBefore(u, TEST);
    const target = ds.sequenceSplit(u, TEST)[0];
    const cands = Int32Array.from([target, ...ds.negatives[u]]);
    const direct = new LlmRecommender(ds, client, builder, titleIndexFor(ds), { ...common, task: 'direct', topK: 10 });
    const s = await direct.score(u, history, cands);
    const listed = Array.from(s).filter(Number.isFinite).sort((a, b) => b - a);
    expect(listed.length).toBeLessThanOrEqual(10);
    expect(listed).toEqual(listed.map((_, r) => -r)); // ranks 0, -1, -2, ... once each
    const seqBuilder = new PromptBuilder(ds, loadPromptSet(), { shots: 0, historyLength: 5, topK: 5, seed: 2022, titleMaxChars: 20, reviewMaxChars: 2000 });
    const seq = new LlmRecommender(ds, client, seqBuilder, titleIndexFor(ds), { ...common, task: 'sequential', topK: 5 });
    const all = await seq.score(u, history);
    expect(all.length).toBe(ds.numItems);
    for (const h of history) expect(all[h]).toBe(-Infinity);
    const cached = client.usage();
    await client.close();
    expect(cached.providerCalls).toBe(0);
  }, 600_000);
});
