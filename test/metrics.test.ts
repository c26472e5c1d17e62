import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import {
  bleu,
  bleu2,
  bleu4,
  hitAt,
  mae,
  ndcgAt,
  RankingAccumulator,
  rankOfTarget,
  rmse,
  rouge,
  sampledRank,
  tokenize,
} from '../src/eval/metrics.js';

const EPS = 1e-6;
const near = (got: number, want: number, eps = EPS) => expect(Math.abs(got - want)).toBeLessThan(eps);

describe('rmse / mae', () => {
  it('match hand-computed values', () => {
    // pred = [3, 4, 5, 1], truth = [2, 4, 3, 2] -> errors [1, 0, 2, -1]
    // MSE = (1 + 0 + 4 + 1) / 4 = 1.5, RMSE = sqrt(1.5) = 1.224744871...
    // MAE = (1 + 0 + 2 + 1) / 4 = 1
    near(rmse([3, 4, 5, 1], [2, 4, 3, 2]), Math.sqrt(1.5));
    near(rmse([3, 4, 5, 1], [2, 4, 3, 2]), 1.224744871391589);
    expect(mae([3, 4, 5, 1], [2, 4, 3, 2])).toBe(1);
    expect(rmse([2.5], [2.5])).toBe(0);
    expect(mae(new Float32Array([1, 2]), new Float64Array([2, 4]))).toBe(1.5); // (1 + 2) / 2
  });
  it('clip predictions into a rating range when asked', () => {
    // pred [6, 0] clipped to [5, 1]; truth [5, 2] -> errors [0, -1]
    // RMSE = sqrt((0 + 1) / 2) = 0.70710678, MAE = 0.5
    const range = { min: 1, max: 5 };
    near(rmse([6, 0], [5, 2], range), Math.SQRT1_2);
    expect(mae([6, 0], [5, 2], range)).toBe(0.5);
    // without clipping: errors [1, -2] -> MAE 1.5
    expect(mae([6, 0], [5, 2])).toBe(1.5);
  });
  it('throw InputError on length mismatch, empty input, non-finite values', () => {
    expect(() => rmse([1, 2], [1])).toThrow(InputError);
    expect(() => mae([1], [1, 2])).toThrow(/lengths differ/);
    expect(() => rmse([], [])).toThrow(InputError);
    expect(() => mae([], [])).toThrow(InputError);
    expect(() => rmse([NaN], [1])).toThrow(InputError);
    expect(() => mae([1], [Infinity])).toThrow(InputError);
    expect(() => rmse([1], [1], { min: 5, max: 1 })).toThrow(InputError);
  });
});

describe('hitAt / ndcgAt', () => {
  it('score a single relevant item at several ranks', () => {
    // rank 0: NDCG = 1/log2(2) = 1
    expect(hitAt(0, 1)).toBe(1);
    expect(ndcgAt(0, 1)).toBe(1);
    // rank 1: 1/log2(3) = 0.630929753...
    near(ndcgAt(1, 5), 0.6309297535714575);
    expect(hitAt(1, 5)).toBe(1);
    // rank 2: 1/log2(4) = 0.5
    expect(ndcgAt(2, 5)).toBe(0.5);
    // rank 6: 1/log2(8) = 1/3
    near(ndcgAt(6, 10), 1 / 3);
  });
  it('count rank k-1 and not rank k', () => {
    // k = 5: rank 4 is the 5th position -> hit, NDCG = 1/log2(6) = 0.386852807...
    expect(hitAt(4, 5)).toBe(1);
    near(ndcgAt(4, 5), 0.38685280723454163);
    // rank 5 is the 6th position -> outside the top 5
    expect(hitAt(5, 5)).toBe(0);
    expect(ndcgAt(5, 5)).toBe(0);
    // k = 1: rank 0 in, rank 1 out
    expect(hitAt(1, 1)).toBe(0);
    expect(ndcgAt(1, 1)).toBe(0);
    // not retrieved at all
    expect(hitAt(Infinity, 20)).toBe(0);
    expect(ndcgAt(Infinity, 20)).toBe(0);
  });
  it('reject bad ranks and cutoffs', () => {
    expect(() => hitAt(-1, 5)).toThrow(InputError);
    expect(() => ndcgAt(NaN, 5)).toThrow(InputError);
    expect(() => hitAt(0, 0)).toThrow(InputError);
    expect(() => ndcgAt(0, 2.5)).toThrow(InputError);
  });
});

describe('rankOfTarget', () => {
  //            0    1    2    3    4    5
  const s = [0.9, 0.5, 0.7, 0.5, NaN, 0.1];
  it('counts strictly better items plus ties (pessimistic), ignoring NaN', () => {
    // target 1 (0.5): better = {0 (0.9), 2 (0.7)}, tie = {3}, NaN 4 ignored -> 3
    expect(rankOfTarget(s, 1)).toBe(3);
    // target 3 is symmetric with 1 -> also 3 (ties never favour the target)
    expect(rankOfTarget(s, 3)).toBe(3);
    // target 0 is the unique best -> 0
    expect(rankOfTarget(s, 0)).toBe(0);
    // target 5 (0.1): 0, 1, 2, 3 above -> 4
    expect(rankOfTarget(s, 5)).toBe(4);
  });
  it('drops excluded (history) items', () => {
    // exclude 0 -> above = {2, 3} -> 2
    expect(rankOfTarget(s, 1, [0])).toBe(2);
    // exclude 0 and the tie 3 -> above = {2} -> 1
    expect(rankOfTarget(s, 1, [0, 3])).toBe(1);
    // duplicates and NaN / worse indices in the exclusion list change nothing more
    expect(rankOfTarget(s, 1, [0, 0, 3, 4, 5])).toBe(1);
    // typed arrays work for both
    expect(rankOfTarget(Float32Array.from([0.9, 0.5, 0.7, 0.5]), 1, Int32Array.from([2]))).toBe(2);
  });
  it('a constant scorer gets the worst rank, not the best', () => {
    // 5 items all 0: the 4 others tie with the target and go above it -> 4
    expect(rankOfTarget([0, 0, 0, 0, 0], 2)).toBe(4);
    // with 1 item excluded -> 3
    expect(rankOfTarget([0, 0, 0, 0, 0], 2, [4])).toBe(3);
  });
  it('treats -Infinity as a low score and a NaN target as last', () => {
    // history masked with -Infinity: target 0.2 beats them -> only 0.8 above -> 1
    expect(rankOfTarget([-Infinity, 0.8, 0.2, -Infinity], 2)).toBe(1);
    // target itself -Infinity: ties with item 0 and sits below 0.8 and 0.2 -> 3
    expect(rankOfTarget([-Infinity, 0.8, 0.2, -Infinity], 3)).toBe(3);
    // NaN target: not retrieved, a miss at every cutoff (not a hit because few items were scored)
    expect(rankOfTarget([1, 2, 3, NaN, NaN], 3)).toBe(Infinity);
    expect(rankOfTarget([1, 2, 3, NaN, NaN], 3, [0])).toBe(Infinity);
    expect(() => rankOfTarget([1, 2, 3, NaN, NaN], 3, [3])).toThrow(InputError);
  });
  it('validates indices', () => {
    expect(() => rankOfTarget(s, 6)).toThrow(InputError);
    expect(() => rankOfTarget(s, -1)).toThrow(InputError);
    expect(() => rankOfTarget(s, 1.5)).toThrow(InputError);
    expect(() => rankOfTarget(s, 1, [1])).toThrow(/excluded/);
    expect(() => rankOfTarget(s, 1, [9])).toThrow(InputError);
  });
});

describe('sampledRank', () => {
  it('ranks the positive among sampled negatives with the same tie rule', () => {
    // pos 0.6 vs negatives [0.1, 0.7, 0.6, NaN, 0.9]: above = 0.7, 0.9, tie 0.6 -> 3
    expect(sampledRank(0.6, [0.1, 0.7, 0.6, NaN, 0.9])).toBe(3);
    expect(sampledRank(1, [0.1, 0.7])).toBe(0);
    // 1 positive + 99 negatives, all the same score -> rank 99 (last)
    expect(sampledRank(0.5, new Array(99).fill(0.5))).toBe(99);
    // NaN positive: not retrieved
    expect(sampledRank(NaN, [0.1, NaN, 0.2])).toBe(Infinity);
  });
});

describe('RankingAccumulator', () => {
  it('averages HR and NDCG over users', () => {
    const acc = new RankingAccumulator([1, 5, 10]);
    for (const r of [0, 2, 7, 30]) acc.add(r);
    const res = acc.result();
    // ranks 0, 2, 7, 30 over 4 users
    // HR@1  = (1 + 0 + 0 + 0) / 4 = 0.25
    // HR@5  = (1 + 1 + 0 + 0) / 4 = 0.5
    // HR@10 = (1 + 1 + 1 + 0) / 4 = 0.75
    // NDCG@1  = 1 / 4 = 0.25
    // NDCG@5  = (1 + 1/log2(4)) / 4 = 1.5 / 4 = 0.375
    // NDCG@10 = (1 + 0.5 + 1/log2(9)) / 4 = (1.5 + 0.315464877) / 4 = 0.453866219...
    expect(res.count).toBe(4);
    near(res['HR@1'], 0.25);
    near(res['HR@5'], 0.5);
    near(res['HR@10'], 0.75);
    near(res['NDCG@1'], 0.25);
    near(res['NDCG@5'], 0.375);
    near(res['NDCG@10'], (1.5 + 1 / Math.log2(9)) / 4);
    near(res['NDCG@10'], 0.45386621955); // 1/log2(9) = 0.31546487678...
    expect(Object.keys(res)).toEqual(['HR@1', 'HR@5', 'HR@10', 'NDCG@1', 'NDCG@5', 'NDCG@10', 'count']);
  });
  it('defaults to k = 1, 5, 10, 20 and reports zeros when empty', () => {
    const res = new RankingAccumulator().result();
    expect(res).toEqual({ 'HR@1': 0, 'HR@5': 0, 'HR@10': 0, 'HR@20': 0, 'NDCG@1': 0, 'NDCG@5': 0, 'NDCG@10': 0, 'NDCG@20': 0, count: 0 });
  });
  it('merges shards and matches per-user functions', () => {
    const ranks = [0, 1, 4, 5, 9, 19, 20, Infinity];
    const all = new RankingAccumulator();
    const a = new RankingAccumulator(), b = new RankingAccumulator();
    ranks.forEach((r, i) => {
      all.add(r);
      (i % 2 ? a : b).add(r);
    });
    const merged = a.merge(b).result(), whole = all.result();
    for (const k of [1, 5, 10, 20]) {
      const hr = ranks.reduce((s, r) => s + hitAt(r, k), 0) / ranks.length;
      const nd = ranks.reduce((s, r) => s + ndcgAt(r, k), 0) / ranks.length;
      near(whole[`HR@${k}`], hr);
      near(whole[`NDCG@${k}`], nd);
      near(merged[`HR@${k}`], hr);
      near(merged[`NDCG@${k}`], nd);
    }
    expect(merged.count).toBe(8);
    expect(() => new RankingAccumulator([5]).merge(new RankingAccumulator([10]))).toThrow(InputError);
  });
  it('rejects bad input', () => {
    expect(() => new RankingAccumulator([])).toThrow(InputError);
    expect(() => new RankingAccumulator([0])).toThrow(InputError);
    expect(() => new RankingAccumulator().add(-2)).toThrow(InputError);
  });
});

describe('tokenize', () => {
  it('lowercases and splits punctuation off words', () => {
    expect(tokenize('Great product!  Works, really.')).toEqual(['great', 'product', '!', 'works', ',', 'really', '.']);
    expect(tokenize("Don’t buy it (it's 4.5/5, 1,000 sold)")).toEqual([
      "don't", 'buy', 'it', '(', "it's", '4.5', '/', '5', ',', '1,000', 'sold', ')',
    ]);
    expect(tokenize('   ')).toEqual([]);
    expect(tokenize('ＦＵＬＬ width')).toEqual(['full', 'width']); // NFKC
  });
});

describe('bleu', () => {
  it('is 100 on a perfect match and 0 with no overlap (no smoothing)', () => {
    expect(bleu4(['the cat sat on the mat'], ['the cat sat on the mat'])).toBeCloseTo(100, 10);
    expect(bleu2(['The cat, sat.'], ['the cat , sat .'])).toBeCloseTo(100, 10); // same tokens after tokenize
    expect(bleu4(['a b c d'], ['e f g h'])).toBe(0);
  });
  it('BLEU-2 and BLEU-4 on a small pair', () => {
    // cand: the cat sat on the mat (6)   ref: the cat is on the mat (6) -> BP = 1
    // 1-grams: the x2 (ref has 2) + cat + on + mat = 5 of 6; "sat" unmatched
    // 2-grams: {the cat, cat sat, sat on, on the, the mat} vs ref
    //          {the cat, cat is, is on, on the, the mat} -> 3 of 5
    // BLEU-2 = sqrt(5/6 * 3/5) = sqrt(1/2) = 0.70710678 -> 70.710678
    near(bleu2(['the cat sat on the mat'], ['the cat is on the mat']), 70.71067811865476);
    // 3-grams: only "on the mat" matches -> 1 of 4; 4-grams: 0 of 3 -> BLEU-4 = 0
    expect(bleu4(['the cat sat on the mat'], ['the cat is on the mat'])).toBe(0);
    // add-one smoothing: (6/7 * 4/6 * 2/5 * 1/4)^(1/4) = (48/840)^(1/4) = 0.488923022...
    near(bleu4(['the cat sat on the mat'], ['the cat is on the mat'], { smoothing: 'add-one' }), 100 * Math.pow(48 / 840, 0.25));
    near(bleu4(['the cat sat on the mat'], ['the cat is on the mat'], { smoothing: 'add-one' }), 48.89230224349);
  });
  it('reproduces the NLTK sentence_bleu docs example (Papineni et al. style, 3 references)', () => {
    const hyp = 'It is a guide to action which ensures that the military always obeys the commands of the party';
    const refs = [
      'It is a guide to action that ensures that the military will forever heed Party commands',
      'It is the guiding principle which guarantees the military forces always being under the command of the Party',
      'It is the practical guide for the army always to heed the directions of the party',
    ];
    // |hyp| = 18, |refs| = 16, 18, 16 -> closest r = 18 = c -> BP = 1
    // clipped matches: 1-gram 17/18 (only "obeys" misses),
    //   2-gram 10/17, 3-gram 7/16, 4-gram 4/15
    // BLEU-4 = (17/18 * 10/17 * 7/16 * 4/15)^(1/4) = (7/108)^(1/4) = 0.504566684...
    // (NLTK docs: sentence_bleu(...) = 0.5045666840058485; a one-sentence corpus is the same)
    near(bleu4([hyp], [refs]), 50.45666840058485);
    near(bleu4([hyp], [refs]), 100 * Math.pow(7 / 108, 0.25));
    // BLEU-2 = sqrt(17/18 * 10/17) = sqrt(5/9) = 0.745355992...
    near(bleu2([hyp], [refs]), 100 * Math.sqrt(5 / 9));
  });
  it('clips counts and uses the closest reference length (Papineni "the the the" example)', () => {
    // cand: 7 x "the"; refs "the cat is on the mat" (6), "there is a cat on the mat" (7)
    // "the" appears at most 2 times in one reference -> p1 = 2/7; closest r = 7 = c -> BP = 1
    // BLEU-1 = 2/7 = 0.285714285...
    near(bleu(['the the the the the the the'], [['the cat is on the mat', 'there is a cat on the mat']], 1), (100 * 2) / 7);
  });
  it('applies the brevity penalty', () => {
    // cand "the cat" (c = 2), ref of 6 tokens (r = 6): p1 = 1, BP = exp(1 - 6/2) = e^-2
    near(bleu(['the cat'], ['the cat sat on the mat'], 1), 100 * Math.exp(-2));
    near(bleu(['the cat'], ['the cat sat on the mat'], 1), 13.53352832366127);
    // longer candidate: no penalty; p1 = 2/4 -> 50
    near(bleu(['the cat x y'], ['the cat'], 1), 50);
  });
  it('pools counts over the corpus (not a mean of sentence BLEU)', () => {
    // pair A perfect (4 of 4 unigrams), pair B none (0 of 2): p1 = 4/6, c = r = 6
    // corpus BLEU-1 = 66.666...; the mean of sentence BLEU would be (100 + 0)/2 = 50
    near(bleu(['a b c d', 'x y'], ['a b c d', 'z w'], 1), 200 / 3);
  });
  it('throws on length mismatch / empty input', () => {
    expect(() => bleu(['a'], ['a', 'b'])).toThrow(InputError);
    expect(() => bleu([], [])).toThrow(InputError);
    expect(() => bleu(['a'], [[]])).toThrow(InputError);
    expect(() => bleu(['a'], ['a'], 0)).toThrow(InputError);
  });
  it('returns 0 for an empty candidate corpus', () => {
    expect(bleu4([''], ['some words here'])).toBe(0);
  });
});

describe('rouge', () => {
  it('ROUGE-1/2/L F1 on small pairs', () => {
    // cand: the cat was found under the bed (7)   ref: the cat was under the bed (6)
    // R1: overlap the x2, cat, was, under, bed = 6 -> P 6/7, R 6/6 -> F = 12/13 = 92.3077
    // R2: cand bigrams {the cat, cat was, was found, found under, under the, the bed} (6),
    //     ref {the cat, cat was, was under, under the, the bed} (5), overlap 4
    //     -> P 4/6, R 4/5 -> F = 2*(2/3)(4/5)/(2/3 + 4/5) = 8/11 = 72.7273
    // RL: LCS = the cat was under the bed = 6 -> F = 12/13
    const r = rouge(['the cat was found under the bed'], ['the cat was under the bed']);
    near(r['ROUGE-1'], 1200 / 13);
    near(r['ROUGE-2'], 800 / 11);
    near(r['ROUGE-L'], 1200 / 13);
  });
  it('uses clipped counts and a non-contiguous LCS; averages over pairs', () => {
    // pair A: cand "the the the", ref "the cat": R1 overlap min(3,1) = 1, P 1/3, R 1/2
    //   -> F = 2*(1/6)/(5/6) = 0.4; R2 overlap 0 -> 0; LCS = 1 -> 0.4
    // pair B: cand "a b c d e", ref "a x c y e": R1 overlap 3 -> P = R = 3/5 -> 0.6
    //   R2: no bigram in common -> 0; LCS = a c e = 3 -> 0.6
    // means: R1 = (40 + 60)/2 = 50, R2 = 0, RL = 50
    const r = rouge(['the the the', 'a b c d e'], ['the cat', 'a x c y e']);
    near(r['ROUGE-1'], 50);
    expect(r['ROUGE-2']).toBe(0);
    near(r['ROUGE-L'], 50);
  });
  it('is 100 on a perfect match, 0 with no overlap, best-of on multiple references', () => {
    expect(rouge(['Great product!'], ['great product !'])).toEqual({ 'ROUGE-1': 100, 'ROUGE-2': 100, 'ROUGE-L': 100 });
    expect(rouge(['a b'], ['c d'])).toEqual({ 'ROUGE-1': 0, 'ROUGE-2': 0, 'ROUGE-L': 0 });
    expect(rouge(['a b'], [['c d', 'a b']])).toEqual({ 'ROUGE-1': 100, 'ROUGE-2': 100, 'ROUGE-L': 100 });
    // single-token candidate has no bigram -> ROUGE-2 = 0; R1 P = 1, R = 1/2 -> 2/3
    const r = rouge(['good'], ['good price']);
    near(r['ROUGE-1'], 200 / 3);
    expect(r['ROUGE-2']).toBe(0);
    expect(rouge([''], ['x'])['ROUGE-L']).toBe(0);
  });
  it('throws on length mismatch / empty input', () => {
    expect(() => rouge(['a', 'b'], ['a'])).toThrow(InputError);
    expect(() => rouge([], [])).toThrow(InputError);
  });
});
