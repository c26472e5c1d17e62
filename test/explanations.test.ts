import { describe, expect, it } from 'vitest';
import {
  EXPLANATION_WORD_LISTS,
  extractExplanations,
  splitSentences,
} from '../src/data/explanations.js';
import { InputError } from '../src/errors.js';

/** One review per item per template, items 0..nItems-1. */
function corpus(templates: string[], nItems: number): { reviews: string[]; itemOf: number[] } {
  const reviews: string[] = [];
  const itemOf: number[] = [];
  for (let it = 0; it < nItems; it++) {
    for (const t of templates) {
      reviews.push(t);
      itemOf.push(it);
    }
  }
  return { reviews, itemOf };
}

const ones = (n: number): number[] => new Array(n).fill(1);

const TEMPLATES = [
  'The sound is great and the strings are very good. Really great value.',
  'I love the tone. The cable is long enough for my setup.',
  'Nice sound. The price was right, and the strings are bright.',
];

describe('splitSentences', () => {
  it('splits run-together Amazon text on [.!?] + uppercase', () => {
    expect(splitSentences('It is quite affordable.I did not realize it.As a bonus, it works!Buy it')).toEqual([
      'It is quite affordable.',
      'I did not realize it.',
      'As a bonus, it works!',
      'Buy it',
    ]);
  });
  it('splits on [.!?] + whitespace and on newlines, collapsing whitespace', () => {
    expect(splitSentences('good one. works   fine?  yes\nnext\r\n\r\n  line  here ')).toEqual([
      'good one.',
      'works fine?',
      'yes',
      'next',
      'line here',
    ]);
  });
  it('keeps decimals, domains, abbreviations, initials and ellipsis pauses together', () => {
    expect(splitSentences('It costs 3.5 dollars on amazon.com today. Made in the U.S.A. by Mr. Smith.')).toEqual([
      'It costs 3.5 dollars on amazon.com today.',
      'Made in the U.S.A. by Mr. Smith.',
    ]);
    expect(splitSentences('it works... but not great... Then it broke.')).toEqual([
      'it works... but not great...',
      'Then it broke.',
    ]);
    expect(splitSentences('Better than I. Then more')).toEqual(['Better than I.', 'Then more']);
  });
  it('handles empty and punctuation-only input', () => {
    expect(splitSentences('')).toEqual([]);
    expect(splitSentences('   \n\n ')).toEqual([]);
    expect(splitSentences('!!! ...')).toEqual(['!!!', '...']);
  });
});

describe('extractExplanations: lexicon', () => {
  it('mines aspect words and excludes stopwords, opinion and generic words', () => {
    const { reviews, itemOf } = corpus(
      [...TEMPLATES, 'This product is a great thing. Amazon shipped the item fast.'],
      6,
    );
    const res = extractExplanations(reviews, itemOf, ones(reviews.length));
    expect(res.lexicon).toEqual(expect.arrayContaining(['sound', 'strings', 'value', 'tone', 'cable', 'price']));
    const banned = new Set([
      ...EXPLANATION_WORD_LISTS.stopwords,
      ...EXPLANATION_WORD_LISTS.opinion,
      ...EXPLANATION_WORD_LISTS.generic,
    ]);
    for (const w of res.lexicon) expect(banned.has(w), w).toBe(false);
    for (const w of ['the', 'great', 'good', 'very', 'really', 'nice', 'love', 'product', 'thing', 'amazon', 'item']) {
      expect(res.lexicon).not.toContain(w);
    }
  });

  it('ranks by distinct items, then document frequency, then alphabetically', () => {
    const reviews = [
      // "tuner" in 3 items, "strap" in 2 items but 4 reviews, "cable"/"bag" tie.
      'The tuner is fine.', 'The tuner is fine.', 'The tuner is fine.',
      'The strap is fine. The bag is fine, the bag is fine. The cable is fine, the cable is fine.',
      'The strap is fine.', 'The strap is fine. The cable is fine. The bag is fine.', 'The strap is fine.',
    ];
    const itemOf = [0, 1, 2, 0, 0, 1, 1];
    const res = extractExplanations(reviews, itemOf, ones(reviews.length), { minItems: 2 });
    expect(res.lexicon).toEqual(['tuner', 'strap', 'bag', 'cable']);
    expect(extractExplanations(reviews, itemOf, ones(reviews.length), { minItems: 3 }).lexicon).toEqual(['tuner']);
    expect(extractExplanations(reviews, itemOf, ones(reviews.length), { minItems: 2, maxFeatures: 2 }).lexicon)
      .toEqual(['tuner', 'strap']);
  });

  it('needs aspect evidence, not just frequency', () => {
    // "quickly"-like modifiers and verbs are frequent but never head a phrase.
    const { reviews, itemOf } = corpus(['I played it and played it. The neck is smooth.'], 6);
    const res = extractExplanations(reviews, itemOf, ones(reviews.length));
    expect(res.lexicon).toContain('neck');
    expect(res.lexicon).not.toContain('played');
  });

  it('mines only reviews with mineMask = 1 but labels every review', () => {
    const train = corpus(TEMPLATES, 6);
    const held = corpus(['The tuner is accurate and the tuner is small. My tuner was cheap.'], 6);
    const reviews = [...train.reviews, ...held.reviews];
    const itemOf = [...train.itemOf, ...held.itemOf];
    const mask = [...ones(train.reviews.length), ...new Array(held.reviews.length).fill(0)];
    const res = extractExplanations(reviews, itemOf, mask);
    expect(res.lexicon).not.toContain('tuner');
    expect(res.lexicon).toContain('sound');
    // Held-out reviews are still labelled with the mined lexicon (none here).
    expect(res.feature.slice(train.reviews.length).every((f) => f === null)).toBe(true);
    const all = extractExplanations(reviews, itemOf, ones(reviews.length));
    expect(all.lexicon).toContain('tuner');
    expect(all.feature[train.reviews.length]).toBe('tuner');
  });

  it('is deterministic and independent of review order', () => {
    const { reviews, itemOf } = corpus(TEMPLATES, 7);
    const a = extractExplanations(reviews, itemOf, ones(reviews.length));
    const b = extractExplanations(reviews, itemOf, ones(reviews.length));
    expect(b).toEqual(a);
    const perm = reviews.map((_, i) => (i * 5) % reviews.length);
    expect(new Set(perm).size).toBe(reviews.length);
    const c = extractExplanations(perm.map((i) => reviews[i]), perm.map((i) => itemOf[i]), ones(reviews.length));
    expect(c.lexicon).toEqual(a.lexicon);
    expect(c.feature).toEqual(perm.map((i) => a.feature[i]));
    expect(c.explanation).toEqual(perm.map((i) => a.explanation[i]));
  });
});

describe('extractExplanations: labelling', () => {
  const base = corpus(TEMPLATES, 6);

  function label(review: string | null, opts = {}): [string | null, string | null, string[]] {
    const reviews = [...base.reviews, review];
    const itemOf = [...base.itemOf, 0];
    const mask = [...ones(base.reviews.length), 0];
    const res = extractExplanations(reviews, itemOf, mask, opts);
    const last = reviews.length - 1;
    return [res.feature[last], res.explanation[last], res.lexicon];
  }

  it('picks the first sentence of the right length that has a lexicon word', () => {
    const [f, e] = label('Wow.I really love it so much! Sound ok.The  cable\tis solid and the SOUND is clear. The price is fair.');
    // "Sound ok." has only 2 words; the next sentence qualifies.
    expect(e).toBe('The cable is solid and the SOUND is clear.');
    // Highest-ranked lexicon word in it (sound occurs in more reviews than cable).
    expect(f).toBe('sound');
  });

  it('respects maxSentenceWords and matches possessives case-insensitively', () => {
    const long = `The sound ${'and more '.repeat(20)}here.`;
    const [f, e] = label(`${long} My Cable's jacket is thick.`, { maxSentenceWords: 10 });
    expect(e).toBe("My Cable's jacket is thick.");
    expect(f).toBe('cable');
  });

  it('returns null/null when nothing matches', () => {
    expect(label('Wow!!! I am so happy with it.').slice(0, 2)).toEqual([null, null]);
    expect(label('').slice(0, 2)).toEqual([null, null]);
    expect(label(null).slice(0, 2)).toEqual([null, null]);
    expect(label('Sound!').slice(0, 2)).toEqual([null, null]);
    // Nothing to mine: empty lexicon, nothing labelled.
    const res = extractExplanations(['The sound is great.'], [0], [0]);
    expect(res).toEqual({ lexicon: [], feature: [null], explanation: [null] });
  });

  it('rejects mismatched inputs and bad options', () => {
    expect(() => extractExplanations(['a'], [0, 1], [1])).toThrow(InputError);
    expect(() => extractExplanations(['a'], [0], [])).toThrow(InputError);
    expect(() => extractExplanations(['a'], [0], [1], { minItems: 0 })).toThrow(InputError);
    expect(() => extractExplanations(['a'], [0], [1], { minSentenceWords: 5, maxSentenceWords: 4 })).toThrow(InputError);
  });
});
