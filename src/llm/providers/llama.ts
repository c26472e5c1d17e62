import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import type { ChatHistoryItem, Llama, LlamaChat, LlamaContext, LlamaContextSequence, LlamaGrammar, LlamaModel } from 'node-llama-cpp';
import { InputError } from '../../errors.js';
import { LLMError, isAbortError } from '../errors.js';
import type { CompletionRequest, CompletionResult, LLMProvider } from '../provider.js';

export interface LlamaProviderOptions {
  /** A GGUF file. */
  modelPath: string;
  /** Name used in labels and the price table; default the file name. */
  model?: string;
  /** Tokens of context; prompts that do not fit are refused, never silently cut. Default 4096. */
  contextSize?: number;
  /**
   * CPU threads. Default half the logical cores (at least 1): llama.cpp's
   * worker threads spin, and on a busy machine using every core was ten
   * times slower than one thread (measured: 2 cores, load 4–8).
   */
  threads?: number;
  /** Sampling seed (only matters with temperature > 0). Default 0. */
  seed?: number;
}

type Lib = typeof import('node-llama-cpp');
let libPromise: Promise<{ lib: Lib; llama: Llama }> | undefined;
const models = new Map<string, Promise<LlamaModel>>();

/** node-llama-cpp's CPU backend from the prebuilt binary in the package; never compiles, never probes GPUs. */
function loadLlama(): Promise<{ lib: Lib; llama: Llama }> {
  libPromise ??= (async () => {
    const lib = await import('node-llama-cpp');
    const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.error });
    return { lib, llama };
  })();
  return libPromise;
}

/** A model file is loaded once per process and shared by every provider that names it. */
function loadModelOnce(path: string): Promise<LlamaModel> {
  let p = models.get(path);
  if (!p) {
    p = loadLlama().then(({ llama }) => llama.loadModel({ modelPath: path }));
    p.catch(() => models.delete(path));
    models.set(path, p);
  }
  return p;
}

interface Session {
  lib: Lib;
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
  chat: LlamaChat;
}

/**
 * An embedded GGUF model through node-llama-cpp. One context and one
 * sequence are created on first use and reused for every prompt, so a
 * prompt that shares a prefix with the previous one (the system prompt,
 * the task description) only evaluates the new tokens. Requests are served
 * one at a time. A request's JSON schema becomes a grammar
 * (`createGrammarForJsonSchema`, cached per schema), so output is
 * constrained token by token; text that hits maxTokens can still be cut off
 * mid-JSON, which refinement handles.
 */
export function createLlamaProvider(opts: LlamaProviderOptions): LLMProvider {
  const path = resolve(opts.modelPath);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new InputError('GGUF model file not found', { file: opts.modelPath });
  }
  const contextSize = opts.contextSize ?? 4096;
  let session: Promise<Session> | undefined;
  const grammars = new Map<string, Promise<LlamaGrammar>>();
  let queue: Promise<unknown> = Promise.resolve();

  const open = (): Promise<Session> => {
    session ??= (async () => {
      const { lib, llama } = await loadLlama();
      let model: LlamaModel;
      try {
        model = await loadModelOnce(path);
      } catch (e) {
        throw new InputError(`cannot load GGUF model (${(e as Error).message})`, { file: path });
      }
      const context = await model.createContext({ contextSize, threads: opts.threads ?? Math.max(1, Math.floor(availableParallelism() / 2)) });
      const sequence = context.getSequence();
      const chat = new lib.LlamaChat({ contextSequence: sequence });
      return { lib, llama, model, context, sequence, chat };
    })();
    session.catch(() => (session = undefined));
    return session;
  };

  const grammarFor = (s: Session, schema: Record<string, unknown>): Promise<LlamaGrammar> => {
    const key = JSON.stringify(schema);
    let g = grammars.get(key);
    if (!g) {
      g = s.llama.createGrammarForJsonSchema(schema as never) as Promise<LlamaGrammar>;
      grammars.set(key, g);
    }
    return g;
  };

  const run = async (req: CompletionRequest): Promise<CompletionResult> => {
    const s = await open();
    if (req.signal?.aborted) throw new LLMError('request aborted', { kind: 'aborted' });
    const history: ChatHistoryItem[] = req.messages.map((m): ChatHistoryItem =>
      m.role === 'system' ? { type: 'system', text: m.content } : m.role === 'user' ? { type: 'user', text: m.content } : { type: 'model', response: [m.content] });
    history.push({ type: 'model', response: [] });
    // Refuse prompts that do not fit rather than let a context shift drop their start.
    const { contextText } = s.chat.chatWrapper.generateContextState({ chatHistory: history });
    const promptTokens = contextText.tokenize(s.model.tokenizer).length;
    if (promptTokens + req.maxTokens > s.context.contextSize) {
      throw new LLMError(`prompt of ${promptTokens} tokens + ${req.maxTokens} to generate exceeds the context size ${s.context.contextSize} (raise contextSize, or shorten the prompt: historyLength, titleMaxChars)`, { kind: 'context_overflow' });
    }
    const grammar = req.jsonSchema ? await grammarFor(s, req.jsonSchema.schema) : undefined;
    const before = s.sequence.tokenMeter.getState();
    try {
      const r = await s.chat.generateResponse(history, {
        maxTokens: req.maxTokens,
        temperature: req.temperature,
        seed: opts.seed ?? 0,
        grammar,
        signal: req.signal,
      });
      const used = s.sequence.tokenMeter.diff(before);
      return {
        text: r.response,
        usage: { promptTokens: used.usedInputTokens, completionTokens: used.usedOutputTokens },
        constrained: grammar ? 'grammar' : 'none',
        finishReason: r.metadata.stopReason,
        raw: { stopReason: r.metadata.stopReason, promptTokens },
      };
    } catch (err) {
      if (req.signal?.aborted || isAbortError(err)) throw new LLMError('request aborted', { kind: 'aborted', cause: err });
      throw new LLMError(`llama.cpp generation failed: ${(err as Error).message}`, { kind: 'server', cause: err });
    }
  };

  return {
    id: 'llama',
    model: opts.model ?? basename(path).replace(/\.gguf$/i, ''),
    cacheScope: `${path}:${size}`,
    complete(req: CompletionRequest): Promise<CompletionResult> {
      // One sequence: serve requests one after another.
      const next = queue.then(() => run(req), () => run(req));
      queue = next.catch(() => undefined);
      return next;
    },
    async close(): Promise<void> {
      const s = session;
      session = undefined;
      if (!s) return;
      try {
        const sess = await s;
        await queue;
        sess.chat.dispose();
        await sess.context.dispose();
      } catch {
        // never opened, nothing to release
      }
    },
  };
}
