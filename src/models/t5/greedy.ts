/**
 * Greedy decoding on a model's incremental decoder (`T5Model`: the encoder
 * cache and the growing self-attention cache).
 */
import type { Tensor2D } from '@tensorflow/tfjs-core';
import { tf as getTf } from '../../engine/backend.js';
import type { EncoderBatch } from './collate.js';
import type { T5Config } from './config.js';

/**
 * What greedy decoding needs of a model. Structural, so that this module does
 * not import model.ts (which imports it for `T5Model.generateGreedy`).
 */
export interface StepDecoder<E extends { dispose(): void }, D extends { dispose(): void }> {
  readonly config: Pick<T5Config, 'decoder_start_token_id' | 'pad_token_id' | 'eos_token_id'>;
  encodeCache(batch: EncoderBatch): E;
  newDecoderCache(): D;
  decodeStep(enc: E, cache: D, tokens: Int32Array): Tensor2D;
}

/**
 * Greedy decoding with the encoder cache and the incremental self-attention
 * cache. Returns, per input, the generated ids up to (not including) `</s>`.
 */
export function generateGreedy<E extends { dispose(): void }, D extends { dispose(): void }>(
  model: StepDecoder<E, D>,
  batch: EncoderBatch,
  opts: { maxNewTokens?: number } = {},
): number[][] {
  const c = model.config;
  const max = opts.maxNewTokens ?? 20;
  const B = batch.batchSize;
  const enc = model.encodeCache(batch);
  const cache = model.newDecoderCache();
  const outs: number[][] = Array.from({ length: B }, () => []);
  const done = new Uint8Array(B);
  let tokens = new Int32Array(B).fill(c.decoder_start_token_id);
  try {
    for (let s = 0; s < max; s++) {
      const logits = model.decodeStep(enc, cache, tokens);
      const next = getTf().tidy(() => getTf().argMax(logits, -1)).dataSync() as Int32Array;
      logits.dispose();
      tokens = Int32Array.from(next);
      let all = true;
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          tokens[b] = c.pad_token_id;
          continue;
        }
        if (tokens[b] === c.eos_token_id) done[b] = 1;
        else outs[b].push(tokens[b]);
        all = all && done[b] === 1;
      }
      if (all) break;
    }
  } finally {
    cache.dispose();
    enc.dispose();
  }
  return outs;
}
