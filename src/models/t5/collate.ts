/**
 * Seq2seq batches for the T5 model: the padded, row-major layout that the
 * forward pass, the loss and decoding read, and the collation that builds it.
 */
import { InputError } from '../../errors.js';
import type { T5Config } from './config.js';

/** A padded seq2seq batch, row-major typed arrays (see `collateSeq2Seq`). */
export interface Seq2SeqBatch {
  batchSize: number;
  srcLen: number;
  tgtLen: number;
  /** [batchSize, srcLen] */
  inputIds: Int32Array;
  /** [batchSize, srcLen], 1 = token, 0 = padding */
  attentionMask: Int32Array;
  /** [batchSize, srcLen] P5 whole-word indices (0 for `</s>`/padding) */
  wholeWordIds?: Int32Array;
  /** [batchSize, tgtLen] target ids; -100 = ignored */
  labels: Int32Array;
  /** [batchSize, tgtLen] labels shifted right behind decoder_start_token_id */
  decoderInputIds: Int32Array;
}

/** The encoder side of a batch (decoding). */
export type EncoderBatch = Pick<Seq2SeqBatch, 'batchSize' | 'srcLen' | 'inputIds' | 'attentionMask' | 'wholeWordIds'>;

export interface Seq2SeqExample {
  inputIds: readonly number[];
  wholeWordIds?: readonly number[];
  labels: readonly number[];
}

/**
 * Pad examples into a batch: inputs with `pad_token_id` (mask 0), labels with
 * -100, decoder inputs = [decoder_start, labels[:-1]] (-100 → pad). Lengths
 * default to the longest example; longer examples are clipped.
 */
export function collateSeq2Seq(
  examples: readonly Seq2SeqExample[],
  config: Pick<T5Config, 'pad_token_id' | 'decoder_start_token_id'>,
  opts: { srcLen?: number; tgtLen?: number } = {},
): Seq2SeqBatch {
  const B = examples.length;
  if (B === 0) throw new InputError('cannot collate an empty batch');
  const srcLen = opts.srcLen ?? Math.max(1, ...examples.map((e) => e.inputIds.length));
  const tgtLen = opts.tgtLen ?? Math.max(1, ...examples.map((e) => e.labels.length));
  const pad = config.pad_token_id;
  const inputIds = new Int32Array(B * srcLen).fill(pad);
  const attentionMask = new Int32Array(B * srcLen);
  const withWW = examples.some((e) => e.wholeWordIds);
  const wholeWordIds = withWW ? new Int32Array(B * srcLen) : undefined;
  const labels = new Int32Array(B * tgtLen).fill(-100);
  const decoderInputIds = new Int32Array(B * tgtLen).fill(pad);
  for (let b = 0; b < B; b++) {
    const e = examples[b];
    const n = Math.min(srcLen, e.inputIds.length);
    for (let i = 0; i < n; i++) {
      inputIds[b * srcLen + i] = e.inputIds[i];
      attentionMask[b * srcLen + i] = 1;
      if (wholeWordIds && e.wholeWordIds) wholeWordIds[b * srcLen + i] = e.wholeWordIds[i];
    }
    const m = Math.min(tgtLen, e.labels.length);
    for (let i = 0; i < m; i++) labels[b * tgtLen + i] = e.labels[i];
    decoderInputIds[b * tgtLen] = config.decoder_start_token_id;
    for (let i = 1; i < tgtLen; i++) {
      const l = labels[b * tgtLen + i - 1];
      decoderInputIds[b * tgtLen + i] = l === -100 ? pad : l;
    }
  }
  return { batchSize: B, srcLen, tgtLen, inputIds, attentionMask, wholeWordIds, labels, decoderInputIds };
}
