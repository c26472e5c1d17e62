import { describe, expect, it } from 'vitest';
import { cacheKey } from '../src/llm/cache.js';
import { LLMError, LLMRetryError, parseRetryAfter } from '../src/llm/errors.js';
import { loadPromptSet, render } from '../src/llm/prompts.js';
import { normalizeTitle, parseJsonLoose, parseList, parseRating, refineRanking, refineText, RepairLog, TitleIndex } from '../src/llm/refine.js';
import { backoffDelay, retryWithBackoff } from '../src/llm/retry.js';
import { Semaphore } from '../src/llm/semaphore.js';

const TITLES = [
  "L'Oréal Paris Voluminous Mascara, Black",
  'Maybelline New York Great Lash Washable Mascara, Blackest Black',
  'Neutrogena Hydro Boost Water Gel',
  'Neutrogena Hydro Boost Water Gel', // a duplicate title, as real catalogues have
  'CeraVe Moisturizing Cream 16 oz',
  null,
];

describe('title matching', () => {
  const idx = new TitleIndex(TITLES);
  it('normalises case, accents and punctuation', () => {
    expect(normalizeTitle("L'Oréal Paris  Voluminous—Mascara!")).toBe('l oreal paris voluminous mascara');
    expect(normalizeTitle('Salt & Pepper')).toBe('salt and pepper');
  });
  it('matches exactly after normalisation, fuzzily above the threshold, and not at all below it', () => {
    expect(idx.match('loreal paris voluminous mascara black', { threshold: 0.6 })).toMatchObject({ item: 0, exact: false });
    expect(idx.match("L'OREAL PARIS VOLUMINOUS MASCARA, BLACK", { threshold: 0.6 })).toEqual({ item: 0, score: 1, exact: true });
    const typo = idx.match('Cerave Moisturising Cream 16oz', { threshold: 0.6 });
    expect(typo?.item).toBe(4);
    expect(typo!.score).toBeLessThan(1);
    expect(idx.match('Mascara', { threshold: 0.6 })).toBeNull(); // too little in common: not guessed
    expect(idx.match('Quantum Flux Capacitor', { threshold: 0.6 })).toBeNull();
    expect(idx.match('', { threshold: 0.1 })).toBeNull();
  });
  it('restricts to accepted items and prefers unused ones among duplicate titles', () => {
    expect(idx.match('Neutrogena Hydro Boost Water Gel', { threshold: 0.6 })?.item).toBe(2);
    expect(idx.match('Neutrogena Hydro Boost Water Gel', { threshold: 0.6, prefer: (i) => i !== 2 })?.item).toBe(3);
    expect(idx.match('Neutrogena Hydro Boost Water Gel', { threshold: 0.6, accept: (i) => i === 4 })).toBeNull();
  });
});

describe('parsing model output', () => {
  it('reads JSON as is, in fences, embedded in prose, Python-style, truncated, or as a text list', () => {
    const ok = (t: string, key = 'ranking'): (string | number)[] => {
      const r = parseList(t, key);
      if (!r.ok) throw new Error(r.error);
      return r.value;
    };
    expect(ok('{"ranking": [3, 1, 2]}')).toEqual([3, 1, 2]);
    expect(ok('Here you go:\n```json\n{"ranking": [3, 1]}\n```')).toEqual([3, 1]);
    expect(ok('Sure. {"ranking": [5, 4]} Hope this helps!')).toEqual([5, 4]);
    expect(ok("['Great Lash', 'Hydro Boost']", 'titles')).toEqual(['Great Lash', 'Hydro Boost']);
    expect(ok('{"titles": ["Great Lash", "Hydro Bo', 'titles')).toEqual(['Great Lash']);
    expect(ok('1. Great Lash\n2. "Hydro Boost"\n', 'titles')).toEqual(['Great Lash', 'Hydro Boost']);
    expect(ok('{"items": [7, 8]}')).toEqual([7, 8]);
    expect(parseList('I cannot recommend anything.', 'ranking').ok).toBe(false);
    expect(parseList('{"ranking": []}', 'ranking').ok).toBe(false);
    expect(parseJsonLoose('nope')).toBeNull();
  });
  it('counts what it had to repair', () => {
    const log = new RepairLog();
    parseList('```\n[1, 2]\n```', 'ranking', log);
    expect(log.toJSON()).toEqual({ wrong_key: 1, json_salvaged: 1 });
  });
  it('ratings: JSON, a number in prose, clipped into the scale; no number is an error', () => {
    const log = new RepairLog();
    expect(parseRating('{"rating": 4.5}', { min: 1, max: 5 }, log)).toEqual({ ok: true, value: 4.5 });
    expect(parseRating('I think 4 stars', { min: 1, max: 5 }, log)).toEqual({ ok: true, value: 4 });
    expect(parseRating('{"rating": 11}', { min: 1, max: 5 }, log)).toEqual({ ok: true, value: 5 });
    expect(parseRating('{"rating": "3"}', { min: 1, max: 5 }, log)).toEqual({ ok: true, value: 3 });
    expect(parseRating('no idea', { min: 1, max: 5 }, log).ok).toBe(false);
    expect(log.toJSON()).toEqual({ json_salvaged: 1, rating_clipped: 1 });
  });
  it('text: first line, labels and quotes stripped; empty is an error', () => {
    expect(refineText('Summary: "Works great"\nMore text')).toEqual({ ok: true, value: 'Works great' });
    expect(refineText('  ...  ').ok).toBe(false);
  });
  it('rankings: numbers and titles to items; duplicates, history, out-of-range, non-candidates, unmatched dropped and counted', () => {
    const idx = new TitleIndex(TITLES);
    const shown = Int32Array.from([4, 0, 2]);
    const log = new RepairLog();
    const r = refineRanking(JSON.stringify({ ranking: [2, 2, 9, 'Neutrogena Hydro Boost Water Gel', 'Great Lash Washable Mascara Blackest', '[1] anything', 'Zzz'] }), { shown, exclude: new Set([4]), k: 10, index: idx, threshold: 0.6 }, log);
    expect(r).toEqual({ ok: true, value: [0, 2] });
    // 2 → item 0; 2 again → duplicate; 9 → out of range; the Neutrogena title → candidate 2 (item 2);
    // Maybelline is in the catalogue, not a candidate; "[1]" → item 4, the user's history; "Zzz" unmatched.
    expect(log.toJSON()).toEqual({ duplicate: 1, out_of_range: 1, not_candidate: 1, history_item: 1, unmatched_title: 1, short_list: 1 });
    const bad = refineRanking('{"ranking": [0, 99]}', { shown, exclude: new Set(), k: 2, index: idx, threshold: 0.6 }, new RepairLog());
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/none of the 2 entries was usable \(2 out of range\); give candidate numbers from 1 to 3/);
    const extra = new RepairLog();
    expect(refineRanking('{"ranking": [1, 2, 3]}', { shown, exclude: new Set(), k: 2, index: idx, threshold: 0.6 }, extra)).toEqual({ ok: true, value: [4, 0] });
    expect(extra.toJSON()).toEqual({ extra_items: 1 });
  });
});

describe('retries, backoff, concurrency', () => {
  it('parses retry-after as seconds, milliseconds or an HTTP date', () => {
    const h = (o: Record<string, string>) => (n: string): string | undefined => o[n];
    expect(parseRetryAfter(h({ 'retry-after': '2' }))).toBe(2000);
    expect(parseRetryAfter(h({ 'retry-after-ms': '150', 'retry-after': '2' }))).toBe(150);
    expect(parseRetryAfter(h({ 'retry-after': new Date(10_000).toUTCString() }), 4_000)).toBe(6000);
    expect(parseRetryAfter(h({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfter(h({}))).toBeUndefined();
  });
  it('honours a reasonable retry-after, else backs off exponentially with jitter', () => {
    const e = (retryAfterMs?: number): LLMError => new LLMError('x', { kind: 'rate_limit', retryAfterMs });
    expect(backoffDelay(0, e(1500))).toBe(1500);
    expect(backoffDelay(0, e(10 * 60_000), { random: () => 0 })).toBe(500); // too long: ignored
    expect(backoffDelay(3, e(), { random: () => 0.999 })).toBeCloseTo(8000, -1);
    expect(backoffDelay(3, e(), { random: () => 0 })).toBe(4000);
    expect(backoffDelay(20, e(), { random: () => 0 })).toBe(15_000); // capped at 30 s
  });
  it('retries retryable errors, throws non-retryable ones at once, keeps every attempt', async () => {
    let n = 0;
    const waits: number[] = [];
    const out = await retryWithBackoff(async () => {
      if (++n < 3) throw new LLMError('busy', { kind: 'server', statusCode: 503 });
      return 'ok';
    }, { retries: 3, sleep: async (ms) => void waits.push(ms), random: () => 0 });
    expect(out).toBe('ok');
    expect(waits).toEqual([500, 1000]);
    const rejected = new LLMError('bad', { kind: 'rejected', statusCode: 400 });
    await expect(retryWithBackoff(async () => {
      throw rejected;
    })).rejects.toBe(rejected);
    const err = await retryWithBackoff(async () => {
      throw new LLMError('down', { kind: 'connection' });
    }, { retries: 2, sleep: async () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LLMRetryError);
    expect((err as LLMRetryError).errors).toHaveLength(3);
  });
  it('a semaphore admits at most its limit', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    await Promise.all(Array.from({ length: 8 }, () => sem.run(async () => {
      peak = Math.max(peak, ++active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
    })));
    expect(peak).toBe(2);
  });
});

describe('prompt templates and cache keys', () => {
  it('the shipped templates load; unknown placeholders are errors', () => {
    const set = loadPromptSet();
    expect(Object.keys(set.tasks).sort()).toEqual(['direct', 'explanation', 'rating', 'review', 'sequential', 'sequentialCandidates']);
    expect(render('{a} and {"json": 1}', { a: 'x' })).toBe('x and {"json": 1}');
    expect(() => render('{missing}', {})).toThrow(/missing/);
  });
  it('the cache key covers provider, scope, model, messages and parameters', () => {
    const base = { provider: 'openai', cacheScope: 'http://a/v1', model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], maxTokens: 10, temperature: 0 };
    const k = cacheKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey({ ...base })).toBe(k);
    for (const change of [{ cacheScope: 'http://b/v1' }, { model: 'n' }, { maxTokens: 11 }, { temperature: 0.5 }, { messages: [{ role: 'user' as const, content: 'hi!' }] }, { jsonSchema: { name: 's', schema: {} } }]) {
      expect(cacheKey({ ...base, ...change })).not.toBe(k);
    }
  });
});
