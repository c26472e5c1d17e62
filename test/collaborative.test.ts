import { describe, expect, it } from 'vitest';
import { collaborativeTokens } from '../src/data/collaborative.js';
import { InputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';

/** Unique, prefix-free, decimal digits only, never a leading '0'. */
function expectValid(tokens: string[], numItems: number): void {
  expect(tokens).toHaveLength(numItems);
  for (const t of tokens) expect(t).toMatch(/^[1-9][0-9]*$/);
  expect(new Set(tokens).size).toBe(numItems);
  const sorted = [...tokens].sort();
  // In lexicographic order a token that is a prefix of another sorts right before one of its extensions.
  for (let i = 1; i < sorted.length; i++) expect(sorted[i].startsWith(sorted[i - 1])).toBe(false);
}

/** Users who each buy `perUser` distinct items from one of `groups` blocks of `groupSize` consecutive items. */
function planted(groups: number, groupSize: number, users: number, perUser: number, seed: number): Int32Array[] {
  const rng = new Rng(seed);
  const out: Int32Array[] = [];
  for (let u = 0; u < users; u++) {
    const g = u % groups;
    const pool = Array.from({ length: groupSize }, (_, i) => g * groupSize + i);
    rng.shuffle(pool);
    out.push(Int32Array.from(pool.slice(0, perUser)));
  }
  return out;
}

/** Random sequences with popularity skew and repeats. */
function randomSequences(numItems: number, users: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: users }, () =>
    Array.from({ length: 1 + rng.int(15) }, () => Math.floor(numItems * rng.next() * rng.next())),
  );
}

describe('collaborativeTokens', () => {
  it('gives unique, prefix-free tokens without a leading 0 for several option sets', () => {
    const seqs = randomSequences(600, 400, 3);
    for (const opts of [{}, { branching: 3, leafSize: 4 }, { window: 2 }, { branching: 10, leafSize: 1 }, { maxIter: 3 }]) {
      expectValid(collaborativeTokens(600, seqs, new Rng(1), opts), 600);
    }
  });

  it('is deterministic for a given seed', () => {
    const seqs = randomSequences(500, 300, 5);
    const a = collaborativeTokens(500, seqs, new Rng(42));
    const b = collaborativeTokens(500, seqs, new Rng(42));
    expect(b).toEqual(a);
    expectValid(collaborativeTokens(500, seqs, new Rng(43)), 500);
  });

  it('gives the items of each planted group one shared first digit', () => {
    const seqs = planted(5, 40, 400, 8, 11);
    const tokens = collaborativeTokens(200, seqs, new Rng(7), { branching: 5 });
    expectValid(tokens, 200);
    const firstOfGroup = new Set<string>();
    for (let g = 0; g < 5; g++) {
      const firsts = new Set(tokens.slice(g * 40, g * 40 + 40).map((t) => t[0]));
      expect(firsts.size).toBe(1);
      firstOfGroup.add([...firsts][0]);
    }
    expect(firstOfGroup.size).toBe(5);
  });

  it('never mixes planted groups under one first digit with the default branching', () => {
    const seqs = planted(5, 40, 400, 8, 12);
    const tokens = collaborativeTokens(200, seqs, new Rng(8));
    expectValid(tokens, 200);
    const groupOfDigit = new Map<string, number>();
    tokens.forEach((t, i) => {
      const g = Math.floor(i / 40);
      expect(groupOfDigit.get(t[0]) ?? g).toBe(g);
      groupOfDigit.set(t[0], g);
    });
    // And items of a group sit together: no group is spread over more than two first digits.
    for (let g = 0; g < 5; g++) expect(new Set(tokens.slice(g * 40, g * 40 + 40).map((t) => t[0])).size).toBeLessThanOrEqual(2);
  });

  it('gives ids to isolated items (never bought, or bought alone)', () => {
    // Items 200..259 never occur; 260..269 only ever occur alone in a sequence.
    const seqs: number[][] = planted(5, 40, 300, 6, 13).map((s) => Array.from(s));
    for (let i = 260; i < 270; i++) seqs.push([i], [i, i]);
    const tokens = collaborativeTokens(270, seqs, new Rng(9));
    expectValid(tokens, 270);
    // Planted groups still do not share first digits with each other.
    const groupOfDigit = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const g = Math.floor(i / 40);
      expect(groupOfDigit.get(tokens[i][0]) ?? g).toBe(g);
      groupOfDigit.set(tokens[i][0], g);
    }
  });

  it('handles a graph with no edges at all', () => {
    expectValid(collaborativeTokens(137, [], new Rng(1)), 137);
    expectValid(collaborativeTokens(137, [[1], [2, 2], []], new Rng(1), { branching: 2, leafSize: 1 }), 137);
  });

  it('gives single digits 1..n when the items fit in the root leaf', () => {
    expect(collaborativeTokens(0, [], new Rng(1))).toEqual([]);
    expect(collaborativeTokens(1, [[0]], new Rng(1))).toEqual(['1']);
    const tokens = collaborativeTokens(9, [[0, 1, 2], [3, 4], [5, 6, 7, 8, 0]], new Rng(1));
    expect([...tokens].sort()).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // Most co-occurring item first.
    expect(tokens[0]).toBe('1');
    const small = collaborativeTokens(5, [[0, 1], [2, 3, 4]], new Rng(1), { leafSize: 5 });
    for (const t of small) expect(t).toHaveLength(1);
    // Ten items with leafSize 10 cannot all be single digits without a '0': the root splits.
    expectValid(collaborativeTokens(10, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], new Rng(1)), 10);
  });

  it('counts co-occurrence only within the window when one is given', () => {
    // Every user buys all 60 items, so whole-sequence co-occurrence is uniform; but the
    // pairs (0,1), (2,3), ... are always adjacent, so with window 1 they stand out.
    const rng = new Rng(21);
    const seqs: number[][] = [];
    for (let u = 0; u < 100; u++) {
      const pairs = rng.shuffle(Array.from({ length: 30 }, (_, i) => i)) as number[];
      seqs.push(pairs.flatMap((p) => (rng.int(2) ? [2 * p, 2 * p + 1] : [2 * p + 1, 2 * p])));
    }
    const together = (tokens: string[]): number => {
      let n = 0;
      for (let p = 0; p < 30; p++) {
        const a = tokens[2 * p], b = tokens[2 * p + 1];
        if (a.length === b.length && a.slice(0, -1) === b.slice(0, -1)) n++;
      }
      return n;
    };
    const windowed = collaborativeTokens(60, seqs, new Rng(2), { window: 1, leafSize: 2 });
    const whole = collaborativeTokens(60, seqs, new Rng(2), { leafSize: 2 });
    expectValid(windowed, 60);
    expectValid(whole, 60);
    expect(together(windowed)).toBeGreaterThanOrEqual(27);
    expect(together(whole)).toBeLessThan(15);
  });

  it('rejects bad input', () => {
    expect(() => collaborativeTokens(3, [[0, 3]], new Rng(1))).toThrow(InputError);
    expect(() => collaborativeTokens(3, [[0, 1.5]], new Rng(1))).toThrow(InputError);
    expect(() => collaborativeTokens(3, [], new Rng(1), { branching: 11 })).toThrow(InputError);
    expect(() => collaborativeTokens(3, [], new Rng(1), { leafSize: 0 })).toThrow(InputError);
    expect(() => collaborativeTokens(3, [], new Rng(1), { window: 0 })).toThrow(InputError);
    expect(() => collaborativeTokens(-1, [], new Rng(1))).toThrow(InputError);
  });

  it('scales to thousands of items quickly', () => {
    const seqs = randomSequences(5000, 8000, 17);
    const t0 = Date.now();
    expectValid(collaborativeTokens(5000, seqs, new Rng(3)), 5000);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
