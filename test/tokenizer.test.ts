import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { canonicalPieces, T5Tokenizer } from '../src/tokenizer/tokenizer.js';
import { wholeWordIds } from '../src/tokenizer/whole-word.js';

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'p5rec-tok-test-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A tokenizer.json in the shape of T5's own (Unigram, WhitespaceSplit + Metaspace, `$A </s>`). */
function t5StyleJSON(): string {
  const pieces = ['▁', '▁item', '_', '73', '91', '▁user', '▁bought', '▁is', '▁the', '5', '7', '3', '9', '1', 'i', 't', 'e', 'm', 's', 'u', 'r', 'b', 'o', 'g', 'h', 'a'];
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['<pad>', '</s>', '<unk>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: {
      type: 'Unigram',
      unk_id: 2,
      vocab: [['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...pieces.map((p, i) => [p, p.length > 1 ? -1 - i * 0.01 : -8 - i * 0.01])],
      byte_fallback: false,
    },
  });
}

/** Review-like text: the first reviews of the bundled Musical Instruments file, with user/item ids. */
function corpus(n = 300): string[] {
  const raw = gunzipSync(readFileSync(new URL('../data/musical-instruments/reviews_Musical_Instruments_5.json.gz', import.meta.url)))
    .toString('utf8')
    .split('\n', n);
  return raw.map((line, i) => {
    const r = JSON.parse(line) as { summary: string; reviewText: string };
    return `user_${(i * 37) % 1500} bought item_${(i * 7919) % 9973} , ${r.summary} ${r.reviewText}`;
  });
}

describe('wholeWordIds', () => {
  it('gives every piece of a word one index, counting at "▁" pieces; </s> and pad get 0', () => {
    const pieces = ['▁user', '_', '23', '▁bought', '▁item', '_', '73', '91', '</s>', '<pad>'];
    expect(wholeWordIds(pieces, { specialMask: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1] })).toEqual([1, 1, 1, 2, 3, 3, 3, 3, 0, 0]);
  });
  it('starts at 0 before the first word and clips to maxIndex', () => {
    expect(wholeWordIds(['x', '▁a', '▁b', '▁c', 'd'], { maxIndex: 2 })).toEqual([0, 1, 2, 2, 2]);
  });
});

describe('T5Tokenizer', () => {
  it('reads a T5-style tokenizer.json: item_7391 → ▁item _ 73 91, one whole-word index', async () => {
    const tok = T5Tokenizer.fromJSON(t5StyleJSON());
    expect([tok.padId, tok.eosId, tok.unkId]).toEqual([0, 1, 2]);
    const enc = await tok.encode('user_5 bought item_7391');
    expect(enc.pieces).toEqual(['▁user', '_', '5', '▁bought', '▁item', '_', '73', '91', '</s>']);
    expect(enc.wholeWordIds).toEqual([1, 1, 1, 2, 3, 3, 3, 3, 0]);
    expect(enc.ids[enc.ids.length - 1]).toBe(1);
    expect(await tok.decode(enc.ids)).toBe('user_5 bought item_7391');
  });

  it('trains a Unigram with <pad>=0 </s>=1 <unk>=2, saves and loads it identically', async () => {
    const tok = T5Tokenizer.train(corpus());
    expect(tok.idToPiece(0)).toBe('<pad>');
    expect(tok.idToPiece(1)).toBe('</s>');
    expect(tok.idToPiece(2)).toBe('<unk>');
    expect(tok.vocabSize).toBeGreaterThan(1000);
    const text = 'user_23 bought item_7391, the guitar is great!';
    const a = await tok.encode(text);
    // item_7391: ▁item, _, then digit pairs; all share one whole-word index.
    const at = a.pieces.indexOf('▁item');
    expect(a.pieces.slice(at, at + 2)).toEqual(['▁item', '_']);
    const itemPieces = a.pieces.slice(at, a.pieces.indexOf(',', at));
    expect(itemPieces.join('')).toBe('▁item_7391');
    expect(new Set(a.wholeWordIds.slice(at, at + itemPieces.length)).size).toBe(1);
    expect(a.wholeWordIds[at]).toBe(3);
    expect(a.wholeWordIds[a.wholeWordIds.length - 1]).toBe(0);
    expect(await tok.decode(a.ids)).toBe(text);

    const dir = tmp();
    tok.save(join(dir, 'tokenizer.json'));
    const back = T5Tokenizer.load(join(dir, 'tokenizer.json'));
    expect(back.vocabSize).toBe(tok.vocabSize);
    expect(await back.encode(text)).toEqual(a);
    const batch = await back.encodeBatch([text, 'the pedal']);
    expect(batch[0]).toEqual(a);
    // Unknown characters map to <unk>.
    expect((await tok.encode('ß')).ids).toContain(2);
  });

  it('trains the same pieces with the same ids, and encodes alike, every time', async () => {
    const texts = [...corpus()];
    const toks = Array.from({ length: 6 }, () => T5Tokenizer.train(texts));
    const pieces = (t: T5Tokenizer): string[] => Array.from({ length: t.vocabSize }, (_, i) => t.idToPiece(i)!);
    const sample = texts.slice(0, 50);
    const first = await toks[0].encodeBatch(sample);
    for (const t of toks.slice(1)) {
      expect(pieces(t)).toEqual(pieces(toks[0]));
      expect(await t.encodeBatch(sample)).toEqual(first);
    }
  });

  it('canonicalPieces: ordered by piece, scores rounded, whatever the input order and noise', () => {
    const noisy: [string, number][] = [['b', -3.0000000000001], ['d', -4.25], ['a', -2.9999999999999], ['c', -1.5]];
    const want = [['a', -3], ['b', -3], ['c', -1.5], ['d', -4.25]];
    expect(canonicalPieces(noisy)).toEqual(want);
    expect(canonicalPieces([...noisy].reverse())).toEqual(want);
    expect(canonicalPieces([['x', -2.0000004], ['y', -2.0000006]]).map(([, s]) => s)).toEqual([-2, -2.000001]); // to the quantum
  });

  it('prunes to a requested vocabulary size, keeping every character', async () => {
    const full = T5Tokenizer.train(corpus(200));
    const small = T5Tokenizer.train(corpus(200), { vocabSize: 300 });
    expect(small.vocabSize).toBe(300);
    expect(small.vocabSize).toBeLessThan(full.vocabSize);
    const text = 'the amazing tuner';
    expect(await small.decode((await small.encode(text)).ids)).toBe(text);
    expect(() => T5Tokenizer.train(corpus(50), { vocabSize: 10 })).toThrow(/too small/);
    expect(() => T5Tokenizer.train(['', '  '])).toThrow(/empty corpus/);
  });

  it('clips to 512 tokens with </s> last', async () => {
    const tok = T5Tokenizer.fromJSON(t5StyleJSON());
    const enc = await tok.encode(Array.from({ length: 600 }, () => 'the').join(' '));
    expect(enc.ids.length).toBe(512);
    expect(enc.ids[511]).toBe(tok.eosId);
    expect(enc.wholeWordIds[510]).toBe(511);
    expect((await tok.encode('the item', { maxLength: 2 })).pieces).toEqual(['▁the', '</s>']);
  });

  it('reports a bad tokenizer file in one line', () => {
    const dir = tmp();
    const bad = (content: string): string => {
      const p = join(dir, `t${Math.random()}.json`);
      writeFileSync(p, content);
      return p;
    };
    const msg = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as InputError).oneLine();
      }
      throw new Error('expected an error');
    };
    expect(msg(() => T5Tokenizer.load(bad('{"model": ')))).toMatch(/t.*\.json: tokenizer file does not parse: not JSON/);
    expect(msg(() => T5Tokenizer.load(bad('{"version": "1.0"}')))).toMatch(/no "model" section/);
    expect(msg(() => T5Tokenizer.load(bad('{"model": {"type": "Unigram", "vocab": 7}}')))).toMatch(/tokenizer file does not parse/);
    const noEos = JSON.parse(t5StyleJSON());
    noEos.added_tokens = [];
    noEos.model.vocab = noEos.model.vocab.filter((v: [string, number]) => v[0] !== '</s>');
    noEos.post_processor = null;
    noEos.model.unk_id = 1;
    expect(msg(() => T5Tokenizer.load(bad(JSON.stringify(noEos))))).toMatch(/no '<\/s>' token/);
    expect(msg(() => T5Tokenizer.load(join(dir, 'missing.json')))).toMatch(/not found/);
    expect(readFileSync(bad('x'), 'utf8')).toBe('x');
  });

  it('rejects ids outside the vocabulary when decoding', async () => {
    const tok = T5Tokenizer.fromJSON(t5StyleJSON());
    await expect(tok.decode([5, 9999])).rejects.toThrow(/outside the vocabulary/);
  });
});
