import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { InputError } from '../errors.js';
import type { ChatMessage, JsonSchemaSpec } from './provider.js';

/** What a cache keeps of one answer: the text and what it cost. */
export interface CachedResponse {
  text: string;
  promptTokens: number;
  completionTokens: number;
}

/** A persistent map from request key to answer. Writes happen as each answer arrives. */
export interface ResponseCache {
  readonly location: string;
  get(key: string): Promise<CachedResponse | undefined>;
  put(key: string, meta: { provider: string; model: string }, value: CachedResponse): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface CacheKeyParts {
  provider: string;
  cacheScope?: string;
  model: string;
  messages: readonly ChatMessage[];
  maxTokens: number;
  temperature: number;
  jsonSchema?: JsonSchemaSpec;
}

/**
 * sha256 (hex) of the canonical JSON of everything that determines an
 * answer: provider (and its scope, e.g. base URL), model, messages and
 * generation parameters. Any change to a prompt template changes the key.
 */
export function cacheKey(p: CacheKeyParts): string {
  const canon = JSON.stringify([
    'p5rec-llm-cache/1', p.provider, p.cacheScope ?? '', p.model,
    p.messages.map((m) => [m.role, m.content]), p.maxTokens, p.temperature, p.jsonSchema ? sortKeys(p.jsonSchema) : null,
  ]);
  return createHash('sha256').update(canon).digest('hex');
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/** In-process cache (tests, `--no-cache` runs that still dedupe repeats). */
export class MemoryResponseCache implements ResponseCache {
  readonly location = ':memory:';
  private readonly map = new Map<string, CachedResponse>();
  async get(key: string): Promise<CachedResponse | undefined> {
    return this.map.get(key);
  }
  async put(key: string, _meta: { provider: string; model: string }, value: CachedResponse): Promise<void> {
    this.map.set(key, value);
  }
  async size(): Promise<number> {
    return this.map.size;
  }
  async close(): Promise<void> {}
}

/**
 * The response cache in an embedded DuckDB file, `<dir>/llm-cache.duckdb`.
 * Each answer is committed as it arrives (one autocommit INSERT), so a run
 * that is interrupted resumes from what it already paid for, and a rerun
 * costs nothing. Calls are serialised over one connection. DuckDB locks the
 * file, so two processes cannot share one cache at the same time.
 */
export class DuckDBResponseCache implements ResponseCache {
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private constructor(readonly location: string, private readonly db: DuckDBInstance, private readonly con: DuckDBConnection) {}

  static async open(dir: string): Promise<DuckDBResponseCache> {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'llm-cache.duckdb');
    let db: DuckDBInstance;
    try {
      db = await DuckDBInstance.create(path, { threads: '1' });
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      const busy = /lock/i.test(msg);
      throw new InputError(busy ? `response cache is in use by another process (${msg})` : `cannot open the response cache (${msg})`, { file: path });
    }
    const con = await db.connect();
    await con.run(`CREATE TABLE IF NOT EXISTS responses (
      key VARCHAR PRIMARY KEY, provider VARCHAR, model VARCHAR, text VARCHAR,
      prompt_tokens INTEGER, completion_tokens INTEGER, created_ms DOUBLE)`);
    return new DuckDBResponseCache(path, db, con);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  get(key: string): Promise<CachedResponse | undefined> {
    return this.serial(async () => {
      if (this.closed) return undefined;
      const r = await this.con.runAndReadAll('SELECT text, prompt_tokens, completion_tokens FROM responses WHERE key = $1', [key]);
      const row = r.getRowsJS()[0];
      if (!row) return undefined;
      return { text: String(row[0]), promptTokens: Number(row[1]), completionTokens: Number(row[2]) };
    });
  }

  put(key: string, meta: { provider: string; model: string }, value: CachedResponse): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      await this.con.run('INSERT OR REPLACE INTO responses VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        key, meta.provider, meta.model, value.text, value.promptTokens, value.completionTokens, Date.now(),
      ]);
    });
  }

  size(): Promise<number> {
    return this.serial(async () => {
      const r = await this.con.runAndReadAll('SELECT count(*) FROM responses');
      return Number(r.getRowsJS()[0][0]);
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.con.run('CHECKPOINT');
      this.con.closeSync();
      this.db.closeSync();
    });
  }
}
