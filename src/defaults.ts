/**
 * Defaults several components share, each defined once. They are the P5
 * paper's conventions (Geng et al., RecSys 2022) unless noted.
 */

/** The seed of indexing, splits, negatives, prompt sampling and LLM demonstrations. */
export const DEFAULT_SEED = 2022;
/** Negatives beside the one positive: the direct task ranks 1 of 100, and training candidate lists sample as many. */
export const NEGATIVES = 99;
/** Most recent items a prompt shows of a purchase history. */
export const MAX_HISTORY = 20;
