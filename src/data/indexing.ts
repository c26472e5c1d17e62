import { InputError } from '../errors.js';
import type { Rng } from '../util/rng.js';
import { collaborativeTokens } from './collaborative.js';

export const ITEM_INDEXINGS = ['random', 'sequential', 'collaborative'] as const;
export type ItemIndexing = (typeof ITEM_INDEXINGS)[number];
export const USER_INDEXINGS = ['random', 'sequential'] as const;
export type UserIndexing = (typeof USER_INDEXINGS)[number];

/** `value` if it is one of `allowed`, else an InputError naming `field` (the option it came from). */
export function parseIndexing<T extends string>(value: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new InputError(`must be one of ${allowed.join(', ')}, got '${value}'`, { field });
  return value as T;
}

/**
 * The ids prompts will say (`item_<token>`). Internal indices are assigned in
 * first-appearance order along users' histories, which is exactly P5's
 * numbering, so 'sequential' reproduces the paper's (leaky) ids; 'random' is
 * a seeded permutation of 1..N (leak-free); 'collaborative' gives co-occurring
 * items shared digit prefixes, learned from training sequences only.
 */
export function itemTokens(scheme: ItemIndexing, numItems: number, trainSequences: ArrayLike<number>[], rng: Rng): string[] {
  if (scheme === 'sequential') return Array.from({ length: numItems }, (_, i) => String(i + 1));
  if (scheme === 'random') return randomTokens(numItems, rng);
  return collaborativeTokens(numItems, trainSequences, rng);
}

export function userTokens(scheme: UserIndexing, numUsers: number, rng: Rng): string[] {
  if (scheme === 'sequential') return Array.from({ length: numUsers }, (_, i) => String(i + 1));
  return randomTokens(numUsers, rng);
}

function randomTokens(n: number, rng: Rng): string[] {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i + 1;
  rng.shuffle(perm);
  return Array.from(perm, String);
}
