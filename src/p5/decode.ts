/**
 * Decoding for P5, by task: beam search (optionally constrained by a token
 * trie so every output is a catalogue item, optionally with a minimum length
 * for explanations), first-token distributions (P("yes") to rank candidates,
 * the expected star), and greedy decoding (the model's own). All batched:
 * B prompts × K beams decode as one batch of B·K rows over one encoder pass.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import { tf as getTf } from '../engine/backend.js';
import type { EncoderBatch } from '../models/t5/collate.js';
import type { EncoderCache, T5Model } from '../models/t5/model.js';
import type { T5Tokenizer } from '../tokenizer/tokenizer.js';
import { TokenTrie } from './trie.js';

/** Tokenize prompts into a padded encoder batch (with P5's whole-word ids). */
export async function encodePrompts(tok: T5Tokenizer, prompts: readonly string[], maxLength = 512): Promise<EncoderBatch> {
  const enc = await tok.encodeBatch(prompts, { maxLength });
  const B = prompts.length;
  const L = Math.max(1, ...enc.map((e) => e.ids.length));
  const inputIds = new Int32Array(B * L).fill(tok.padId);
  const attentionMask = new Int32Array(B * L);
  const wholeWordIds = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    const e = enc[b];
    for (let i = 0; i < e.ids.length; i++) {
      inputIds[b * L + i] = e.ids[i];
      attentionMask[b * L + i] = 1;
      wholeWordIds[b * L + i] = e.wholeWordIds[i];
    }
  }
  return { batchSize: B, srcLen: L, inputIds, attentionMask, wholeWordIds };
}

/** An encoder cache with each row repeated `k` times (rows b·k .. b·k+k-1 = input b). */
function repeatRows(enc: EncoderCache, k: number): EncoderCache {
  if (k === 1) return { ...enc, dispose: () => {} };
  const t = getTf();
  const rows = new Int32Array(enc.batchSize * k);
  for (let i = 0; i < rows.length; i++) rows[i] = Math.floor(i / k);
  const idx = t.tensor1d(rows, 'int32');
  const g = (x: Tensor): Tensor => t.gather(x, idx);
  const out: EncoderCache = {
    batchSize: enc.batchSize * k,
    srcLen: enc.srcLen,
    maskAdd: g(enc.maskAdd),
    sharedT: enc.sharedT,
    crossK: enc.crossK.map(g),
    crossV: enc.crossV.map(g),
    dispose: () => t.dispose([out.maskAdd, ...out.crossK, ...out.crossV]),
  };
  idx.dispose();
  return out;
}

/** log-softmax of logits [N, V] as one flat array (disposes the logits). */
function logSoftmaxData(logits: Tensor): Float32Array {
  const t = getTf();
  const lp = t.tidy(() => t.logSoftmax(logits));
  logits.dispose();
  const data = lp.dataSync() as Float32Array;
  lp.dispose();
  return data;
}

/**
 * Log-probability of fixed target sequences, teacher-forced: with `repeat` =
 * R, prompt b is scored against targets[b·R .. b·R+R-1] (one encoder pass per
 * prompt). Used to score known answers exactly ("yes", each star) instead of
 * searching for them; targets may omit `</s>` to score a prefix.
 */
export function sequenceLogProbs(model: T5Model, batch: EncoderBatch, targets: readonly (readonly number[])[], repeat = 1): Float64Array {
  const N = batch.batchSize * repeat;
  if (targets.length !== N) throw new RangeError(`sequenceLogProbs: ${targets.length} targets for ${batch.batchSize} prompts x ${repeat}`);
  const T = Math.max(...targets.map((x) => x.length));
  const V = model.config.vocab_size;
  const enc0 = model.encodeCache(batch);
  const enc = repeatRows(enc0, repeat);
  const cache = model.newDecoderCache();
  const total = new Float64Array(N);
  try {
    let tokens = new Int32Array(N).fill(model.config.decoder_start_token_id);
    for (let s = 0; s < T; s++) {
      const lp = logSoftmaxData(model.decodeStep(enc, cache, tokens));
      const next = new Int32Array(N).fill(model.config.pad_token_id);
      for (let b = 0; b < N; b++) {
        if (s < targets[b].length) {
          total[b] += lp[b * V + targets[b][s]];
          next[b] = targets[b][s];
        }
      }
      tokens = next;
    }
  } finally {
    cache.dispose();
    enc.dispose();
    enc0.dispose();
  }
  return total;
}

export interface BeamOptions {
  /** Beams per prompt (default 4). */
  beams?: number;
  /** Hypotheses returned per prompt (default: beams). */
  returnBeams?: number;
  /** Tokens generated at most, `</s>` included (default 32). */
  maxLength?: number;
  /** `</s>` is blocked before this many tokens (default 0). */
  minLength?: number;
  /** Per prompt (or one for all): only sequences of the trie may be produced. */
  trie?: TokenTrie | (TokenTrie | null)[] | null;
  /**
   * Ranking of finished hypotheses: score / length^penalty (default 0: the
   * sum of log-probabilities, which is the sequence probability).
   */
  lengthPenalty?: number;
  /** Free decoding only: never repeat an n-gram of this size within a hypothesis (HF's no_repeat_ngram_size; 0 = off). */
  noRepeatNgram?: number;
}

export interface Hypothesis {
  /** Generated ids without `</s>`. */
  ids: number[];
  /** Sum of token log-probabilities (with `</s>`). */
  logProb: number;
  /** The trie value (item index) for constrained beams, else -1. */
  value: number;
}

interface Beam {
  ids: number[];
  logProb: number;
  node: number;
}

/**
 * Batched beam search. Each prompt keeps `beams` live hypotheses; a
 * hypothesis that emits `</s>` (or reaches a trie leaf) is finished. A prompt stops when it has
 * `beams` finished ones and no live beam can beat the worst of them (log
 * probabilities only fall), or at `maxLength`. Under a trie, only the trie's
 * continuations are considered, so with beams ≥ its size every sequence is
 * found exactly.
 */
export function beamSearch(model: T5Model, batch: EncoderBatch, opts: BeamOptions = {}): Hypothesis[][] {
  const c = model.config;
  const K = Math.max(1, opts.beams ?? 4);
  const R = Math.min(K, opts.returnBeams ?? K);
  const maxLen = opts.maxLength ?? 32;
  const minLen = opts.minLength ?? 0;
  const penalty = opts.lengthPenalty ?? 0;
  const noRepeat = opts.noRepeatNgram ?? 0;
  const B = batch.batchSize;
  const V = c.vocab_size;
  const eos = c.eos_token_id;
  const one = opts.trie;
  const tries: (TokenTrie | null)[] = Array.isArray(one) ? one : Array.from({ length: B }, () => (one as TokenTrie | null | undefined) ?? null);
  const rank = (h: { logProb: number; ids: number[] }): number => (penalty ? h.logProb / Math.pow(h.ids.length + 1, penalty) : h.logProb);

  // The first step runs on one row per prompt (every beam starts the same);
  // the caches are widened to prompts × beams after it.
  const enc0 = model.encodeCache(batch);
  let enc: EncoderCache | null = null;
  const cache = model.newDecoderCache();
  const live: Beam[][] = Array.from({ length: B }, () => [{ ids: [], logProb: 0, node: TokenTrie.ROOT }]);
  const finished: Hypothesis[][] = Array.from({ length: B }, () => []);
  const done = new Uint8Array(B);
  let tokens = new Int32Array(B).fill(c.decoder_start_token_id);
  try {
    for (let step = 0; step < maxLen; step++) {
      const lp = logSoftmaxData(model.decodeStep(step === 0 ? enc0 : enc!, cache, tokens));
      const parents = new Int32Array(B * K);
      const nextTokens = new Int32Array(B * K).fill(c.pad_token_id);
      const rowOf = (b: number, j: number): number => (step === 0 ? b : b * K + j);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < K; k++) parents[b * K + k] = rowOf(b, 0); // idle rows follow the prompt's first row
        if (done[b]) continue;
        const trie = tries[b];
        // Candidate extensions of every live beam: (score, beam, token, node).
        const cand: { s: number; beam: number; tok: number; node: number }[] = [];
        const beams = live[b];
        for (let j = 0; j < beams.length; j++) {
          const row = rowOf(b, j) * V;
          const base = beams[j].logProb;
          if (trie) {
            for (const [tok, node] of trie.allowed(beams[j].node)) {
              if (tok === eos && step < minLen) continue;
              cand.push({ s: base + lp[row + tok], beam: j, tok, node });
            }
          } else {
            const banned = bannedTokens(beams[j].ids, noRepeat);
            if (step < minLen) banned.add(eos);
            for (const tok of topTokens(lp, row, V, 2 * K, banned)) cand.push({ s: base + lp[row + tok], beam: j, tok, node: -1 });
          }
        }
        cand.sort((x, y) => y.s - x.s);
        const nextLive: Beam[] = [];
        for (const x of cand) {
          if (nextLive.length >= K) break;
          const prev = beams[x.beam];
          if (x.tok === eos) {
            finished[b].push({ ids: prev.ids, logProb: x.s, value: trie ? trie.value(x.node) : -1 });
            continue;
          }
          // A trie sequence that ends without `</s>` (a bare id answer) is finished on reaching its leaf.
          if (trie && trie.isLeaf(x.node)) {
            finished[b].push({ ids: [...prev.ids, x.tok], logProb: x.s, value: trie.value(x.node) });
            continue;
          }
          const rowIdx = b * K + nextLive.length;
          parents[rowIdx] = rowOf(b, x.beam);
          nextTokens[rowIdx] = x.tok;
          nextLive.push({ ids: [...prev.ids, x.tok], logProb: x.s, node: x.node });
        }
        live[b] = nextLive;
        finished[b].sort((x, y) => rank(y) - rank(x));
        if (finished[b].length > K) finished[b].length = K;
        const bestLive = nextLive.length ? Math.max(...nextLive.map((h) => h.logProb)) : -Infinity;
        if (!nextLive.length || (finished[b].length >= K && penalty === 0 && bestLive <= finished[b][K - 1].logProb)) done[b] = 1;
      }
      if (done.every((d) => d === 1)) break;
      model.reorderCache(cache, parents);
      enc ??= repeatRows(enc0, K);
      tokens = nextTokens;
    }
  } finally {
    cache.dispose();
    enc?.dispose();
    enc0.dispose();
  }
  // Prompts cut off at maxLength: unconstrained live beams count as outputs (without </s>).
  return finished.map((f, b) => {
    const all = [...f];
    if (!tries[b] && all.length < R) for (const h of live[b]) all.push({ ids: h.ids, logProb: h.logProb, value: -1 });
    return all.sort((x, y) => rank(y) - rank(x)).slice(0, R);
  });
}

/** Tokens that would repeat an n-gram already in `ids` (n-gram blocking). */
function bannedTokens(ids: readonly number[], n: number): Set<number> {
  const out = new Set<number>();
  if (n <= 0 || ids.length < n - 1) return out;
  const tail = ids.slice(ids.length - (n - 1));
  for (let i = 0; i + n <= ids.length; i++) {
    let same = true;
    for (let k = 0; k < n - 1 && same; k++) same = ids[i + k] === tail[k];
    if (same) out.add(ids[i + n - 1]);
  }
  return out;
}

/** The `n` best token ids of one row, skipping `banned`. */
function topTokens(lp: Float32Array, row: number, V: number, n: number, banned: Set<number>): number[] {
  const best: number[] = [];
  for (let v = 0; v < V; v++) {
    if (banned.has(v)) continue;
    const s = lp[row + v];
    if (best.length === n && s <= lp[row + best[n - 1]]) continue;
    let i = best.length < n ? best.length : n - 1;
    if (best.length < n) best.push(v);
    while (i > 0 && lp[row + best[i - 1]] < s) {
      best[i] = best[i - 1];
      i--;
    }
    best[i] = v;
  }
  return best;
}

/** Greedy decoding to text (ratings, yes/no, quick generation). */
export async function generateText(model: T5Model, tok: T5Tokenizer, prompts: readonly string[], opts: BeamOptions & { greedy?: boolean } = {}): Promise<string[]> {
  const batch = await encodePrompts(tok, prompts);
  const outs = opts.greedy
    ? model.generateGreedy(batch, { maxNewTokens: opts.maxLength ?? 32 })
    : beamSearch(model, batch, { ...opts, returnBeams: 1 }).map((h) => h[0]?.ids ?? []);
  return Promise.all(outs.map((ids) => tok.decode(ids, { skipSpecialTokens: true })));
}
