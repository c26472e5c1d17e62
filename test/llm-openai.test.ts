import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildDataset } from '../src/data/build.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { emptyInteractions, pushInteraction, type ItemMeta, type RawDataset } from '../src/data/raw.js';
import { TEST } from '../src/data/splits.js';
import { buildTables, collectRuns } from '../src/eval/report.js';
import { registerLlmCommands } from '../src/cli/llm.js';
import { DuckDBResponseCache, MemoryResponseCache } from '../src/llm/cache.js';
import { LLMClient, type LLMClientOptions } from '../src/llm/client.js';
import { LLMError } from '../src/llm/errors.js';
import { runLlmEval, type LlmEvalOptions } from '../src/llm/eval.js';
import { createOpenAICompatible } from '../src/llm/providers/openai.js';
import { estimateCost, priceFor } from '../src/llm/cost.js';
import { tempDir } from './helpers/cli.js';

// ---------------------------------------------------------------------------
// A scripted chat-completions server
// ---------------------------------------------------------------------------

interface ChatBody {
  model: string;
  messages: { role: string; content: string }[];
  response_format?: { type: string; json_schema?: { name: string } };
  max_tokens?: number;
}

/** What the server does with one request: a JSON reply (content), or raw status/headers/body, optionally late. */
type Reply = { content: string } | { status: number; headers?: Record<string, string>; body: string; delayMs?: number } | { hang: true };
type Script = (body: ChatBody, n: number) => Reply;

class MockServer {
  calls = 0;
  bodies: ChatBody[] = [];
  script: Script = () => ({ content: '{}' });
  /** Called when a request arrives, before it is answered. */
  onRequest?: (n: number) => void;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  reset(script: Script): void {
    this.calls = 0;
    this.bodies = [];
    this.script = script;
    this.onRequest = undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      const body = JSON.parse(data) as ChatBody;
      const n = ++this.calls;
      this.bodies.push(body);
      this.onRequest?.(n);
      const r = this.script(body, n);
      if ('hang' in r) return; // never answered; the client aborts
      if ('content' in r) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          id: `c${n}`, object: 'chat.completion', created: 0, model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: r.content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 },
        }));
        return;
      }
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers }).end(r.body);
      };
      if (r.delayMs) setTimeout(send, r.delayMs).unref();
      else send();
    });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The last user message (the prompt being answered, re-asks included). */
const lastUser = (b: ChatBody): string => [...b.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
/** The first user message: the prompt itself in a zero-shot conversation (re-asks come after it). */
const firstPrompt = (b: ChatBody): string => b.messages.find((m) => m.role === 'user')?.content ?? '';
/** Titles in the behaviour-injection block: lines `n. "Title"`. */
const historyTitles = (prompt: string): string[] => [...prompt.matchAll(/^\d+\. "(.+?)"/gm)].map((m) => m[1]);
const isDirect = (b: ChatBody): boolean => /Candidates:/.test(b.messages.at(-1)?.content ?? '') || b.messages.some((m) => /Candidates:/.test(m.content));

// ---------------------------------------------------------------------------
// A small synthetic catalogue (150 distinct titles) with ratings and reviews
// ---------------------------------------------------------------------------

const BRANDS = ['Aurora', 'Borealis', 'Cascade', 'Dahlia', 'Ember', 'Fjord', 'Glacier', 'Harbor', 'Iris', 'Juniper'];
const ADJ = ['Velvet', 'Matte', 'Radiant', 'Silken', 'Hydrating'];
const TYPES = ['Lipstick', 'Face Cream', 'Shampoo'];
const TITLES = BRANDS.flatMap((b) => ADJ.flatMap((a) => TYPES.map((t) => `${b} ${a} ${t}`)));
const FEATURES = ['scent', 'color', 'texture', 'bottle', 'formula'];

function syntheticRaw(): RawDataset {
  const t = emptyInteractions();
  const items = new Map<string, ItemMeta>();
  TITLES.forEach((title, i) => items.set(`I${i}`, { title, categories: ['Beauty > Makeup'] }));
  const users = 25;
  const per = 8;
  for (let u = 0; u < users; u++) {
    for (let k = 0; k < per; k++) {
      const i = (u * 7 + k * 19) % TITLES.length;
      const f = FEATURES[(u + k) % FEATURES.length];
      pushInteraction(t, {
        user: `U${u}`, item: `I${i}`, rating: 1 + ((u + k) % 5), time: 1_000_000 + u * 1000 + k,
        review: `I bought this ${TITLES[i]}. The ${f} is great and I love it. Shipping was fast.`,
        summary: `Great ${f}`,
      });
    }
  }
  return { kind: 'jsonl', files: [], interactions: t, items, orderedByInput: false };
}

// ---------------------------------------------------------------------------

describe('LLM recommender over an OpenAI-compatible server (scripted)', () => {
  const server = new MockServer();
  let ds: Dataset;
  let tmp: string;
  const sleeps: number[] = [];

  /** A client on the mock server; sleeps are recorded, not waited, so the test does not depend on time. */
  const client = (o: Partial<LLMClientOptions> & { model?: string } = {}): LLMClient =>
    new LLMClient({
      provider: createOpenAICompatible({ model: o.model ?? 'gpt-4o-mini', baseURL: server.url, apiKey: 'test-key' }),
      cache: new MemoryResponseCache(),
      concurrency: 1,
      timeoutMs: 5000,
      ...o,
      retry: { retries: 5, sleep: async (ms) => void sleeps.push(ms), ...o.retry },
    });
  /** One user at a time, so the scripted replies meet the requests in a known order. */
  const evalOpts = (o: Partial<LlmEvalOptions>): LlmEvalOptions => ({ task: 'direct', users: 4, quiet: true, concurrency: 1, ...o });

  /** Answers every request sensibly for its task: candidate numbers 1..10, or 3 catalogue titles. */
  const normal: Script = (b) => {
    if (isDirect(b)) return { content: JSON.stringify({ ranking: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }) };
    if (/rate the product/.test(lastUser(b))) return { content: '{"rating": 4}' };
    if (/titles/.test(lastUser(b))) return { content: JSON.stringify({ titles: [TITLES[3], TITLES[40], TITLES[77]] }) };
    return { content: 'The scent is great and I love it.' };
  };

  beforeAll(async () => {
    tmp = tempDir('p5rec-llm-openai-');
    await buildDataset(syntheticRaw(), { out: join(tmp, 'ds'), name: 'synthetic-beauty', negatives: 99 });
    ds = await loadDataset(join(tmp, 'ds'));
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('retries a 429 (honouring retry-after), a 500, a malformed body and a timeout, then scores', async () => {
    sleeps.length = 0;
    server.reset((b, n) => {
      if (n === 1) return { status: 429, headers: { 'retry-after': '1' }, body: '{"error":{"message":"rate limited"}}' };
      if (n === 2) return { status: 500, body: '{"error":{"message":"boom"}}' };
      if (n === 3) return { status: 200, body: '{"choices": [{"message": {"content": "trunc' };
      if (n === 4) return { status: 200, body: '{}', delayMs: 30_000 }; // far past the client's timeout
      return normal(b, n);
    });
    const c = client({ timeoutMs: 2000 });
    const run = await runLlmEval(ds, c, evalOpts({ users: 2 }));
    const u = c.usage();
    expect(u.retries).toEqual({ rate_limit: 1, server: 1, bad_response: 1, timeout: 1 });
    expect(sleeps[0]).toBe(1000); // retry-after: 1 honoured
    expect(sleeps.slice(1).every((ms) => ms > 0)).toBe(true); // exponential backoff with jitter
    expect(server.calls).toBe(6); // 4 failures + 2 users
    expect(u.providerCalls).toBe(6);
    expect(u.failures).toBe(0);
    expect(run.count).toBe(2);
    expect(Object.keys(run.metrics).sort()).toEqual(['HR@1', 'HR@10', 'HR@5', 'NDCG@10', 'NDCG@5']);
    // The scripted server reports 100 + 10 tokens per answer; gpt-4o-mini is in the price table.
    expect(u.promptTokens).toBe(200);
    expect(u.cost).toBeCloseTo(estimateCost(priceFor('openai', 'gpt-4o-mini'), 200, 20) as number, 12);
    await c.close();
  });

  it('gives up after the retries with one error that keeps every attempt', async () => {
    server.reset(() => ({ status: 503, body: '{"error":{"message":"overloaded"}}' }));
    const c = client({ retry: { retries: 2 } });
    const err = await runLlmEval(ds, c, evalOpts({ users: 1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LLMError);
    expect((err as { errors: LLMError[] }).errors.map((e) => e.statusCode)).toEqual([503, 503, 503]);
    // With --on-provider-error miss the user is a counted miss instead.
    server.reset(() => ({ status: 503, body: '{"error":{"message":"overloaded"}}' }));
    const run = await runLlmEval(ds, client({ retry: { retries: 0 } }), evalOpts({ users: 2, onProviderError: 'miss' }));
    expect(run.metrics['HR@10']).toBe(0);
    expect(run.llm.refinement.repairs.provider_failed).toBe(2);
    // A 401 is not retried.
    server.reset(() => ({ status: 401, body: '{"error":{"message":"bad key"}}' }));
    const e401 = await runLlmEval(ds, client(), evalOpts({ users: 1 })).catch((e: unknown) => e);
    expect(e401).toMatchObject({ kind: 'rejected', statusCode: 401 });
    expect(server.calls).toBe(1);
  });

  it('re-asks an unusable answer with the error stated, then scores the user as a counted miss; no output crashes the run', async () => {
    const junk = ['I am sorry, I cannot help with that.', '', '{"ranking": "first"}', '<html>oops</html>', '{"ranking": [null, {}, [], true]}', '\u0000\uffff'];
    server.reset((_b, n) => ({ content: junk[(n - 1) % junk.length] }));
    const run = await runLlmEval(ds, client(), evalOpts({ users: 2, refineRetries: 2 }));
    expect(run.count).toBe(2);
    expect(run.metrics['HR@10']).toBe(0);
    const r = run.llm.refinement;
    expect(r).toMatchObject({ asked: 2, firstTry: 0, gaveUp: 2 });
    expect(r.repairs.reasked).toBe(4);
    expect(r.repairs.gave_up).toBe(2);
    // The re-ask carries the model's answer and the stated error.
    const second = server.bodies[1];
    expect(second.messages.at(-2)).toMatchObject({ role: 'assistant', content: junk[0] });
    expect(lastUser(second)).toMatch(/could not be used: .*no list found/);
    expect(run.notes).toMatch(/0\/2 usable first try, 0 after re-ask, 2 gave up/);
  });

  it('direct: out-of-range numbers, duplicates and salvaged JSON are refined and counted; a re-ask can succeed', async () => {
    server.reset((b, n) => {
      if (n === 1) return { content: 'Sure! ```json\n{"ranking": [3, 3, 250, 0, 4]}\n```' };
      if (n === 2) return { content: '{"ranking": [999]}' };
      return { content: '[5, 6, "[7] whatever"]' };
    });
    const run = await runLlmEval(ds, client(), evalOpts({ users: 2, topK: 10 }));
    const r = run.llm.refinement;
    expect(r).toMatchObject({ asked: 2, firstTry: 1, afterReask: 1, gaveUp: 0 });
    expect(r.repairs).toMatchObject({ duplicate: 1, out_of_range: 3, json_salvaged: 1, wrong_key: 1, reasked: 1, short_list: 2 });
  });

  it('sequential: titles outside the catalogue are counted as unmatched, duplicates and history items dropped', async () => {
    const held = (u: number): number => ds.sequenceSplit(u, TEST)[0];
    server.reset((b) => {
      const hist = historyTitles(firstPrompt(b));
      return { content: JSON.stringify({ titles: ['Quantum Flux Capacitor', hist[0], TITLES[10], TITLES[10].toUpperCase(), 'Zebra Helicopter Deluxe', `${TITLES[20]}!!`] }) };
    });
    const run = await runLlmEval(ds, client(), evalOpts({ task: 'sequential', users: 3 }));
    const r = run.llm.refinement;
    expect(r.asked).toBe(3);
    expect(r.firstTry).toBe(3);
    expect(r.repairs.unmatched_title).toBe(6); // two invented titles per user, never guessed
    expect(r.repairs.history_item).toBe(3);
    expect(r.repairs.duplicate).toBe(3); // the upper-cased copy normalises to the same title
    expect(r.repairs.fuzzy_title ?? 0).toBe(0); // "Title!!" normalises to an exact match
    // Whether the listed items hit depends only on the held-out items: check the metric against them.
    let hits = 0;
    for (let u = 0; u < 3; u++) {
      const t = ds.items.title[held(u)];
      if (t === TITLES[10] || t === TITLES[20]) hits++;
    }
    expect(run.metrics['HR@5']).toBeCloseTo(hits / 3, 10);
  });

  it('position bias: the positive pinned first / last against the seeded shuffle, with the ratio', async () => {
    server.reset(normal); // always ranks candidates 1..10 as shown
    const first = await runLlmEval(ds, client(), evalOpts({ users: 6, positiveAt: 'first' }));
    expect(first.metrics['HR@1']).toBe(1);
    const bias = first.llm.positionBias!;
    expect(bias.positiveAt).toBe('first');
    const base = bias.baseline['HR@10'];
    expect(bias.ratio['HR@10']).toBe(base ? 1 / base : null);
    expect(first.label).toBe('llm:gpt-4o-mini 0-shot positive-first');
    expect(first.notes).toMatch(/position bias first\/random HR@10/);
    const last = await runLlmEval(ds, client(), evalOpts({ users: 6, positiveAt: 'last' }));
    expect(last.metrics['HR@10']).toBe(0);
    expect(last.llm.positionBias!.baseline).toEqual(bias.baseline); // same users, same shuffle
    // Sequential with candidates: 1 held-out + the stored negatives, ranked among all items (unlisted → -Infinity).
    const seqc = await runLlmEval(ds, client(), evalOpts({ task: 'sequential', sequentialMode: 'candidates', users: 4, positiveAt: 'first' }));
    expect(seqc.metrics['HR@5']).toBe(1);
    expect(seqc.label).toBe('llm:gpt-4o-mini 0-shot candidates positive-first');
    expect(seqc.protocol).toMatch(/shown to the model as candidates/);
    // Candidates are shown in a seeded order: the same seed gives the same prompts.
    server.reset(normal);
    await runLlmEval(ds, client(), evalOpts({ users: 2 }));
    const p1 = server.bodies.map(lastUser);
    server.reset(normal);
    await runLlmEval(ds, client(), evalOpts({ users: 2 }));
    expect(server.bodies.map(lastUser)).toEqual(p1);
    server.reset(normal);
    await runLlmEval(ds, client(), evalOpts({ users: 2, seed: 7 }));
    expect(server.bodies.map(lastUser)).not.toEqual(p1);
  });

  it('few-shot prompts carry k demonstrations from other users, as user/assistant turns', async () => {
    server.reset(normal);
    await runLlmEval(ds, client(), evalOpts({ users: 1, shots: 2 }));
    const msgs = server.bodies[0].messages;
    expect(msgs.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(JSON.parse(msgs[2].content).ranking.length).toBeGreaterThan(1);
    // Demonstration users' histories differ from user 0's.
    expect(historyTitles(msgs[1].content)).not.toEqual(historyTitles(msgs[5].content));
  });

  it('uses json_schema structured output, and falls back to plain text when the server rejects it', async () => {
    server.reset((b, n) => (b.response_format ? { status: 400, body: '{"error":{"message":"response_format json_schema is not supported by this model"}}' } : normal(b, n)));
    const provider = createOpenAICompatible({ model: 'local-model', baseURL: server.url });
    const c = new LLMClient({ provider, concurrency: 1 });
    const run = await runLlmEval(ds, c, evalOpts({ users: 3 }));
    expect(run.count).toBe(3);
    expect(provider.structuredOutputSupported).toBe(false);
    expect(provider.structuredOutputFallbacks).toBe(1);
    expect(server.bodies.filter((b) => b.response_format).length).toBe(1); // asked once, then remembered
    expect(server.bodies[0].response_format).toMatchObject({ type: 'json_schema', json_schema: { name: 'candidate_ranking' } });
    expect(c.usage().constrained).toEqual({ none: 3 });
    expect(c.usage().cost).toBeNull(); // unknown model: unknown cost, not 0
    // A server that accepts it.
    server.reset(normal);
    const p2 = createOpenAICompatible({ model: 'gpt-4o-mini', baseURL: server.url });
    const c2 = new LLMClient({ provider: p2 });
    await runLlmEval(ds, c2, evalOpts({ users: 2 }));
    expect(p2.structuredOutputSupported).toBe(true);
    expect(c2.usage().constrained).toEqual({ json_schema: 2 });
  });

  it('a rerun is served entirely from the DuckDB cache (0 HTTP calls); an interrupted run resumes from it', async () => {
    const dir = join(tmp, 'cache-a');
    server.reset(normal);
    const c1 = client({ cache: await DuckDBResponseCache.open(dir) });
    const r1 = await runLlmEval(ds, c1, evalOpts({ users: 5 }));
    await c1.close();
    expect(server.calls).toBe(5);
    expect(existsSync(join(dir, 'llm-cache.duckdb'))).toBe(true);

    server.reset(() => ({ status: 500, body: 'should not be called' }));
    const c2 = client({ cache: await DuckDBResponseCache.open(dir) });
    const r2 = await runLlmEval(ds, c2, evalOpts({ users: 5 }));
    await c2.close();
    expect(server.calls).toBe(0);
    expect(r2.metrics).toEqual(r1.metrics);
    expect(r2.llm.usage).toMatchObject({ requests: 5, cacheHits: 5, providerCalls: 0, promptTokens: 0, cost: 0, cachedPromptTokens: 500 });

    // Interrupted: abort when the third request arrives (two answers are already cached).
    const dir2 = join(tmp, 'cache-b');
    const ctl = new AbortController();
    server.reset((b, n) => (n === 3 ? { hang: true } : normal(b, n)));
    server.onRequest = (n) => {
      if (n === 3) setTimeout(() => ctl.abort(new Error('interrupted by test')), 20);
    };
    const c3 = client({ cache: await DuckDBResponseCache.open(dir2), signal: ctl.signal, concurrency: 1 });
    const err = await runLlmEval(ds, c3, evalOpts({ users: 5, signal: ctl.signal })).catch((e: unknown) => e);
    await c3.close();
    expect(err).toMatchObject({ kind: 'aborted' });
    expect(server.calls).toBe(3);

    server.reset(normal);
    const cache4 = await DuckDBResponseCache.open(dir2);
    expect(await cache4.size()).toBe(2);
    const c4 = client({ cache: cache4 });
    const r4 = await runLlmEval(ds, c4, evalOpts({ users: 5 }));
    await c4.close();
    expect(server.calls).toBe(3); // only the three users not answered before
    expect(r4.llm.usage.cacheHits).toBe(2);
    expect(r4.metrics).toEqual(r1.metrics);
  });

  it('rating prediction goes through evaluate() (clipping counted); explanation and review score BLEU/ROUGE', async () => {
    server.reset((b, n) => (n % 3 === 0 ? { content: 'I would say 9 stars' } : { content: '{"rating": 4}' }));
    const rating = await runLlmEval(ds, client(), evalOpts({ task: 'rating', users: 25 }));
    expect(rating.count).toBeGreaterThan(0);
    expect(Object.keys(rating.metrics)).toEqual(['RMSE', 'MAE']);
    expect(rating.llm.refinement.repairs.rating_clipped).toBeGreaterThan(0);
    expect(rating.llm.refinement.repairs.json_salvaged).toBeGreaterThan(0);

    server.reset((b) => ({ content: /summarise/.test(lastUser(b)) ? '"Great scent"' : 'Explanation: The scent is great and I love it.' }));
    const review = await runLlmEval(ds, client(), evalOpts({ task: 'review', users: 25 }));
    expect(Object.keys(review.metrics)).toEqual(['BLEU-4', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L']);
    expect(review.metrics['ROUGE-1']).toBeGreaterThan(0);
    expect(review.llm.samples?.[0].prediction).toBe('Great scent');
    expect(review.llm.refinement.repairs.text_cleaned).toBe(review.count);
    expect(ds.manifest.fields.explanation).toBe(true); // the synthetic reviews yield (feature, explanation) labels
    const expl = await runLlmEval(ds, client(), evalOpts({ task: 'explanation', users: 25 }));
    expect(expl.count).toBeGreaterThan(0);
    expect(expl.metrics['ROUGE-1']).toBeGreaterThan(0);
    expect(expl.llm.samples?.[0].prediction).toBe('The scent is great and I love it.');
    // The explanation prompt names the item, the star rating and the feature word.
    expect(lastUser(server.bodies.at(-1)!)).toMatch(/-star explanation about the product ".+", mentioning its (scent|color|texture|bottle|formula)/);
  });

  it('`p5rec llm eval` writes a Run that `p5rec report` reads', async () => {
    server.reset(normal);
    const out = join(tmp, 'runs', 'llm-direct.json');
    const program = new Command('p5rec').exitOverride();
    registerLlmCommands(program);
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const errw = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const stdout: string[] = [];
    const stderr: string[] = [];
    try {
      await program.parseAsync(['llm', 'eval', join(tmp, 'ds'), '--provider', 'openai', '--base-url', server.url, '--model', 'gpt-4o-mini',
        '--task', 'direct', '--users', '3', '--concurrency', '2', '--cache', join(tmp, 'cli-cache'), '--out', out, '--json', '--quiet'], { from: 'user' });
    } finally {
      stdout.push(...write.mock.calls.map((c) => String(c[0])));
      stderr.push(...errw.mock.calls.map((c) => String(c[0])));
      write.mockRestore();
      errw.mockRestore();
    }
    expect(stderr.join('')).toBe(''); // --quiet
    const printed = JSON.parse(stdout.at(-1) ?? '');
    expect(printed).toMatchObject({ ok: true, task: 'direct', count: 3, kind: 'llm', label: 'llm:gpt-4o-mini 0-shot' });
    const run = JSON.parse(readFileSync(out, 'utf8'));
    expect(run.llm.usage.requests).toBe(3);
    const tables = buildTables(collectRuns([out]));
    expect(tables[0].rows[0]).toMatchObject({ model: 'llm:gpt-4o-mini 0-shot', count: 3 });
    expect(tables[0].rows[0].notes).toMatch(/refinement: 3\/3 usable first try/);
    expect(process.exitCode ?? 0).toBe(0);
  });

  it('prices: known models and dated snapshots priced, overrides applied, unknown models null', () => {
    expect(priceFor('openai', 'gpt-4o-mini-2024-07-18')).toEqual({ input: 0.15, output: 0.6 });
    expect(priceFor('openai', 'my-finetune')).toBeNull();
    expect(priceFor('openai', 'my-finetune', { input: 1, output: 2 })).toEqual({ input: 1, output: 2 });
    expect(priceFor('openai', 'my-finetune', { input: 1 })).toBeNull();
    expect(priceFor('llama', 'stories260K')).toEqual({ input: 0, output: 0 });
    expect(estimateCost(null, 10, 10)).toBeNull();
    expect(estimateCost({ input: 2, output: 8 }, 1_000_000, 500_000)).toBe(6);
  });
});
