/**
 * The LLMProvider seam's conformance suite: every provider p5rec ships (an
 * OpenAI-compatible HTTP server, here a local one speaking the protocol; the
 * embedded GGUF model, here the bundled stories260K) answers the same
 * contract: plain text with token usage, schema-constrained JSON where it
 * says it constrained, aborts as aborts, and a close that can be repeated.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAbortError } from '../src/llm/errors.js';
import type { LLMProvider } from '../src/llm/provider.js';
import { createOpenAICompatible } from '../src/llm/providers/openai.js';
import { createLlamaProvider } from '../src/llm/providers/llama.js';
import { STORIES_GGUF } from './helpers/cli.js';

/** The smallest server that speaks POST /chat/completions: JSON when a schema is asked for, prose otherwise. */
function protocolServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data) as { model: string; response_format?: { type: string } };
      const content = body.response_format?.type === 'json_schema' ? '{"answer":"yes"}' : 'A story about a small dog.';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'c1', object: 'chat.completion', created: 0, model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
      }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` })));
}

let local: { server: Server; url: string };
const providers: Record<string, () => LLMProvider> = {
  'openai-compatible (local protocol server)': () => createOpenAICompatible({ model: 'local-model', baseURL: local.url }),
  ...(existsSync(STORIES_GGUF) ? { 'llama (embedded stories260K GGUF)': () => createLlamaProvider({ modelPath: STORIES_GGUF, contextSize: 512, threads: 1 }) } : {}),
};

beforeAll(async () => {
  local = await protocolServer();
});
afterAll(async () => {
  await new Promise((r) => local?.server.close(r));
});

const SCHEMA = { name: 'verdict', schema: { type: 'object', properties: { answer: { type: 'string', enum: ['yes', 'no'] } }, required: ['answer'], additionalProperties: false } };

describe.each(Object.keys(providers))('%s conforms to the LLMProvider seam', (name) => {
  let p: LLMProvider;
  beforeAll(() => {
    p = providers[name]();
  });
  afterAll(async () => {
    await p?.close?.();
  });

  it('names itself', () => {
    expect(p.id).toMatch(/^[a-z]+$/);
    expect(p.model.length).toBeGreaterThan(0);
  });

  it('answers plain text with whole, non-negative token counts', async () => {
    const r = await p.complete({ messages: [{ role: 'user', content: 'Once upon a time' }], maxTokens: 12, temperature: 0 });
    expect(typeof r.text).toBe('string');
    for (const n of [r.usage.promptTokens, r.usage.completionTokens]) {
      expect(Number.isInteger(n)).toBe(true);
      expect(n).toBeGreaterThanOrEqual(0);
    }
    expect(r.usage.promptTokens).toBeGreaterThan(0);
  }, 60_000);

  it('follows a JSON schema whenever it says it constrained the answer', async () => {
    const r = await p.complete({ messages: [{ role: 'user', content: 'Is a dog an animal? Answer yes or no as JSON.' }], maxTokens: 32, temperature: 0, jsonSchema: SCHEMA });
    expect(['json_schema', 'grammar', 'none']).toContain(r.constrained ?? 'none');
    if ((r.constrained ?? 'none') !== 'none') expect(['yes', 'no']).toContain((JSON.parse(r.text) as { answer: string }).answer);
  }, 60_000);

  it('stops on an aborted signal with an abort error', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await p.complete({ messages: [{ role: 'user', content: 'hello' }], maxTokens: 8, temperature: 0, signal: ac.signal }).then(() => null, (e: unknown) => e);
    expect(err).not.toBeNull();
    expect(isAbortError(err), String(err)).toBe(true);
  }, 60_000);

  it('closes, twice', async () => {
    const q = providers[name]();
    await q.complete({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 4, temperature: 0 });
    await q.close?.();
    await q.close?.();
  }, 60_000);
});
