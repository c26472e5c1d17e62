/**
 * P5's whole-word indices (`calculate_whole_word_ids` in P5's data code).
 *
 * Every piece of one word shares an index; a new word starts at each piece
 * that begins with the SentencePiece word marker "▁", so `item_7391`, which
 * T5's tokenizer cuts into `▁item _ 73 91`, gets one index for all four
 * pieces. Words are counted from 1 (pieces before the first "▁" get 0), the
 * end-of-sequence token and padding get 0, and indices are clipped to
 * `maxIndex` (the whole-word embedding table has 512 rows: 0..511).
 */
export const WORD_MARKER = '\u2581';

export interface WholeWordOptions {
  /** Largest index (table rows - 1); default 511. */
  maxIndex?: number;
  /** Per-piece flags: 1 for special tokens (`</s>`, `<pad>`), which get 0. */
  specialMask?: ArrayLike<number>;
  /** Per-piece flags: 1 where a word starts although the piece has no `▁` (id tokens such as `item_548`). */
  startMask?: ArrayLike<number>;
}

export function wholeWordIds(pieces: readonly string[], opts: WholeWordOptions = {}): number[] {
  const maxIndex = opts.maxIndex ?? 511;
  const special = opts.specialMask;
  const out = new Array<number>(pieces.length);
  let word = 0;
  for (let i = 0; i < pieces.length; i++) {
    if (special && special[i]) {
      out[i] = 0;
      continue;
    }
    if (pieces[i].startsWith(WORD_MARKER) || (opts.startMask && opts.startMask[i])) word++;
    out[i] = Math.min(word, maxIndex);
  }
  return out;
}
