/**
 * T5-style SentencePiece (Unigram) tokenizer on top of the HF `tokenizers`
 * Node binding.
 *
 *   const tok = await T5Tokenizer.train(texts);        // or T5Tokenizer.load('t5-small/tokenizer.json')
 *   const { ids, pieces, wholeWordIds } = await tok.encode('user_23 bought item_7391');
 *   await tok.decode(ids);                             // 'user_23 bought item_7391'
 *   tok.save('out/tokenizer.json');
 *
 * Ids: `<pad>` = 0, `</s>` = 1, `<unk>` = 2 (as T5), then the trained pieces.
 * `encode` appends `</s>` and clips to `maxLength` (512) tokens.
 *
 * What the binding (tokenizers 0.23, Node) can and cannot do, and what is
 * done here instead:
 *  - `Tokenizer.train(files)` trains with the model's *default* trainer only
 *    (Unigram: up to 8000 pieces, no special tokens, no unk piece). We train
 *    the bare pieces, then add the special tokens ourselves (vocab rows 0..2,
 *    `unk_id` 2, a `$A </s>` post-processor) and, when a smaller `vocabSize`
 *    is asked for, prune the lowest-scoring multi-character pieces (single
 *    characters are always kept so that every trained character stays
 *    encodable). More than 8000 pieces cannot be trained through it.
 *  - There is no "to string": the tokenizer's JSON is kept here (what was
 *    loaded or built) and is what `save` writes.
 *  - Whole-word indices are computed from the pieces (./whole-word.ts).
 * Training is synchronous inside the binding (seconds for a review corpus:
 * ~6-10 s for the Musical Instruments reviews); `trainStoppable` runs it in a
 * child process so that a long command can still react to Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, P5recError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { wholeWordIds, WORD_MARKER } from './whole-word.js';

/** Structural view of the parts of the `tokenizers` binding used here. */
interface NativeEncoding {
  getIds(): number[];
  getTokens(): string[];
}
interface NativeTokenizer {
  encode(text: string, pair: null, opts: { addSpecialTokens?: boolean }): Promise<NativeEncoding>;
  encodeBatch(texts: string[], opts: { addSpecialTokens?: boolean }): Promise<NativeEncoding[]>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
  getVocabSize(withAddedTokens?: boolean): number;
  idToToken(id: number): string | null;
  tokenToId(token: string): number | null;
  train(files: string[]): void;
  save(path: string, pretty?: boolean): void;
}
interface TokenizersModule {
  Tokenizer: { fromString(s: string): NativeTokenizer };
}

const require = createRequire(import.meta.url);
let native: TokenizersModule | null = null;
function binding(): TokenizersModule {
  if (!native) {
    try {
      native = require('tokenizers') as TokenizersModule;
    } catch (err) {
      throw new P5recError(`the 'tokenizers' package (HF tokenizers Node binding) failed to load: ${(err as Error).message}`);
    }
  }
  return native;
}

export const PAD = '<pad>';
export const EOS = '</s>';
export const UNK = '<unk>';
/** T5's input length; also the default clip for `encode`. */
export const MAX_LENGTH = 512;

export interface TrainTokenizerOptions {
  /**
   * Total vocabulary size including the 3 special tokens. Default: all the
   * pieces the binding's trainer keeps (at most 8000 + 3). Smaller values
   * prune the lowest-scoring multi-character pieces.
   */
  vocabSize?: number;
  /**
   * Cut digit runs into groups of this many digits before training and
   * encoding (`7391` → `73 91`), so item and user ids share a small set of
   * number pieces as they do with T5's own vocabulary. 0 = leave digit runs
   * to the trainer. Default 2.
   */
  digitGroup?: number;
  /** Isolate punctuation (`item_7391` → `▁item _ 73 91`). Default true. */
  splitPunctuation?: boolean;
  /**
   * Pieces that must be whole vocabulary entries (e.g. every item id, with
   * and without the `▁` word marker), scored as the most likely trained
   * piece so segmentation keeps them whole. They count toward `vocabSize`
   * only in that pruning never drops them.
   */
  requiredPieces?: readonly string[];
  /**
   * Id tokens (`item_548`, `user_23`, `c_31`): each one vocabulary entry,
   * matched in the text before any normalisation or splitting (HF "added
   * tokens", whole words only), so an id is always exactly one token and
   * never shares a piece with a word or another id. They are left out of the
   * text the Unigram model is trained on, and each starts a whole word.
   */
  idTokens?: readonly string[];
}

export interface EncodeOptions {
  /** Clip to this many tokens including `</s>`; default 512. */
  maxLength?: number;
  /** Append `</s>`; default true. */
  eos?: boolean;
  /** Rows of the whole-word table (indices are clipped to rows - 1); default 512. */
  wholeWordRows?: number;
}

export interface Encoded {
  ids: number[];
  pieces: string[];
  /** P5 whole-word index per token (0 for `</s>`). */
  wholeWordIds: number[];
}

export class T5Tokenizer {
  readonly padId: number;
  readonly eosId: number;
  /** -1 when the vocabulary has no `<unk>`. */
  readonly unkId: number;
  readonly vocabSize: number;
  /** Ids of the id tokens (added, non-special tokens). */
  private readonly idTokenIds: Set<number>;

  private constructor(
    private readonly tk: NativeTokenizer,
    private readonly json: string,
  ) {
    const id = (t: string): number => tk.tokenToId(t) ?? -1;
    this.padId = id(PAD);
    this.eosId = id(EOS);
    this.unkId = id(UNK);
    this.vocabSize = tk.getVocabSize(true);
    const added = (JSON.parse(json) as { added_tokens?: { id: number; special?: boolean }[] }).added_tokens ?? [];
    this.idTokenIds = new Set(added.filter((a) => a.special === false).map((a) => a.id));
  }

  /** Number of id tokens (see TrainTokenizerOptions.idTokens). */
  get idTokenCount(): number {
    return this.idTokenIds.size;
  }

  /** Whether `id` is an id token (an item or user written as one whole token). */
  isIdToken(id: number): boolean {
    return this.idTokenIds.has(id);
  }

  /**
   * An answer that is one id token, without its `</s>`: such answers are
   * atomic (nothing can follow an item token), so `</s>` after one carries no
   * information, yet training and scoring it costs a full softmax row.
   * Any other encoding is returned as it is.
   */
  bareIdAnswer(ids: readonly number[]): readonly number[] {
    return ids.length === 2 && ids[1] === this.eosId && this.idTokenIds.has(ids[0]) ? ids.slice(0, 1) : ids;
  }

  /** Parse a `tokenizer.json` text (ours or T5's own). */
  static fromJSON(text: string, source?: string): T5Tokenizer {
    const fail = (msg: string): never => {
      throw new InputError(`tokenizer file does not parse: ${msg}`, source ? { file: source } : {});
    };
    let spec: unknown;
    try {
      spec = JSON.parse(text);
    } catch (e) {
      fail(`not JSON (${(e as Error).message})`);
    }
    if (!spec || typeof spec !== 'object' || !('model' in spec)) fail('no "model" section (not a HF tokenizer.json)');
    let tk: NativeTokenizer;
    try {
      tk = binding().Tokenizer.fromString(text);
    } catch (e) {
      return fail(String((e as Error).message ?? e).split('\n')[0]);
    }
    const tok = new T5Tokenizer(tk, text);
    if (tok.eosId < 0) fail(`no '${EOS}' token in the vocabulary`);
    if (tok.padId < 0) fail(`no '${PAD}' token in the vocabulary`);
    return tok;
  }

  /** Load a `tokenizer.json` file (ours, or T5's from a HF model folder). */
  static load(path: string): T5Tokenizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new InputError('tokenizer file not found', { file: path });
    }
    return T5Tokenizer.fromJSON(text, path);
  }

  /** Train a Unigram tokenizer on `corpus` (one document per string). */
  static train(corpus: Iterable<string>, opts: TrainTokenizerOptions = {}): T5Tokenizer {
    const job = prepareTraining(corpus, opts);
    try {
      const trainer = binding().Tokenizer.fromString(job.trainerJson);
      trainer.train([job.corpusFile]);
      trainer.save(job.trainedFile);
      return finishTraining(job, opts);
    } finally {
      rmSync(job.dir, { recursive: true, force: true });
    }
  }

  /**
   * {@link T5Tokenizer.train} with the native training (one blocking call,
   * seconds to minutes) in a child process, so the caller's event loop keeps
   * running and `signal` can stop it at once: the child is killed and its
   * temp folder removed, and the promise rejects with the signal's reason.
   */
  static async trainStoppable(corpus: Iterable<string>, opts: TrainTokenizerOptions = {}, signal?: AbortSignal): Promise<T5Tokenizer> {
    const job = prepareTraining(corpus, opts);
    try {
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', CHILD_TRAINER, tokenizersPath(), job.trainerJson, job.corpusFile, job.trainedFile], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
        const onAbort = (): void => {
          child.kill('SIGKILL');
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        child.on('error', (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(new P5recError(`tokenizer training could not start: ${e.message}`));
        });
        child.on('exit', (code, sig) => {
          signal?.removeEventListener('abort', onAbort);
          if (signal?.aborted) reject(signal.reason);
          else if (code === 0) resolve();
          else reject(new P5recError(`tokenizer training failed (${sig ?? `exit ${code}`}): ${err.trim().split('\n').at(-1) ?? ''}`));
        });
      });
      return finishTraining(job, opts);
    } finally {
      rmSync(job.dir, { recursive: true, force: true });
    }
  }

  /** The `tokenizer.json` text. */
  toJSON(): string {
    return this.json;
  }

  /** Write `tokenizer.json` (temp file + rename). */
  save(path: string): void {
    writeFileAtomic(path, this.json);
  }

  idToPiece(id: number): string | null {
    return this.tk.idToToken(id);
  }

  pieceToId(piece: string): number | null {
    return this.tk.tokenToId(piece);
  }

  async encode(text: string, opts: EncodeOptions = {}): Promise<Encoded> {
    const enc = await this.tk.encode(text, null, { addSpecialTokens: false });
    return this.finish(enc, opts);
  }

  async encodeBatch(texts: readonly string[], opts: EncodeOptions = {}): Promise<Encoded[]> {
    if (texts.length === 0) return [];
    const encs = await this.tk.encodeBatch([...texts], { addSpecialTokens: false });
    return encs.map((e) => this.finish(e, opts));
  }

  /** Text of `ids`; special tokens (pad, `</s>`) are dropped unless `skipSpecialTokens` is false. */
  async decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new InputError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    if (!this.idTokenIds.size) return this.tk.decode([...ids], opts.skipSpecialTokens ?? true);
    // Id tokens carry no word marker: the native decoder would glue them to their neighbours.
    const words: string[] = [];
    let run: number[] = [];
    const flush = async (): Promise<void> => {
      if (run.length) words.push(await this.tk.decode(run, opts.skipSpecialTokens ?? true));
      run = [];
    };
    for (const id of ids) {
      if (!this.idTokenIds.has(id)) run.push(id);
      else {
        await flush();
        words.push(this.tk.idToToken(id) ?? '');
      }
    }
    await flush();
    return words.map((w) => w.trim()).filter(Boolean).join(' ');
  }

  private finish(enc: NativeEncoding, opts: EncodeOptions): Encoded {
    const maxLength = opts.maxLength ?? MAX_LENGTH;
    const eos = opts.eos ?? true;
    if (!Number.isInteger(maxLength) || maxLength < (eos ? 1 : 0)) throw new InputError(`maxLength must be a positive integer, got ${maxLength}`);
    const keep = eos ? maxLength - 1 : maxLength;
    let ids = enc.getIds();
    let pieces = enc.getTokens();
    if (ids.length > keep) {
      ids = ids.slice(0, keep);
      pieces = pieces.slice(0, keep);
    }
    const special = ids.map((id) => (id === this.eosId || id === this.padId ? 1 : 0));
    if (eos) {
      ids.push(this.eosId);
      pieces.push(EOS);
      special.push(1);
    }
    const rows = opts.wholeWordRows ?? MAX_LENGTH;
    const starts = this.idTokenIds.size ? ids.map((id) => (this.idTokenIds.has(id) ? 1 : 0)) : undefined;
    return { ids, pieces, wholeWordIds: wholeWordIds(pieces, { maxIndex: rows - 1, specialMask: special, startMask: starts }) };
  }
}

/** The child side of trainStoppable: argv = binding path, trainer JSON, corpus file, output file. */
const CHILD_TRAINER = `const [mod, spec, corpus, out] = process.argv.slice(1);
const t = require(mod).Tokenizer.fromString(spec);
t.train([corpus]);
t.save(out);`;

function tokenizersPath(): string {
  binding(); // the same load error as in-process training when the package is missing
  return require.resolve('tokenizers');
}

interface TrainingJob {
  dir: string;
  corpusFile: string;
  trainedFile: string;
  trainerJson: string;
  base: Record<string, unknown>;
}

/** Validate the options and write the training text into a temp folder (removed by the caller). */
function prepareTraining(corpus: Iterable<string>, opts: TrainTokenizerOptions): TrainingJob {
  const digitGroup = opts.digitGroup ?? 2;
  if (!Number.isInteger(digitGroup) || digitGroup < 0) throw new InputError(`digitGroup must be a non-negative integer, got ${digitGroup}`);
  if (opts.vocabSize !== undefined && !(Number.isInteger(opts.vocabSize) && opts.vocabSize > 3)) {
    throw new InputError(`vocabSize must be an integer > 3, got ${opts.vocabSize}`);
  }
  const base = tokenizerSpec(digitGroup, opts.splitPunctuation ?? true);
  const dir = mkdtempSync(join(tmpdir(), 'p5rec-tok-'));
  try {
    const corpusFile = join(dir, 'corpus.txt');
    const lines: string[] = [];
    let chars = 0;
    const idSet = new Set(opts.idTokens ?? []);
    for (const doc of corpus) {
      let line = String(doc).replace(/[\r\n]+/g, ' ').trim();
      if (idSet.size) line = line.split(/\s+/).filter((w) => !idSet.has(w)).join(' ');
      if (line) {
        lines.push(line);
        chars += line.length;
      }
    }
    if (chars === 0) throw new InputError('cannot train a tokenizer on an empty corpus');
    writeFileSync(corpusFile, lines.join('\n') + '\n');
    const trainerJson = JSON.stringify({ ...base, model: { type: 'Unigram', unk_id: null, vocab: [] } });
    return { dir, corpusFile, trainedFile: join(dir, 'trained.json'), trainerJson, base };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** The trained pieces (`job.trainedFile`) plus the special and id tokens, as a T5Tokenizer. */
function finishTraining(job: TrainingJob, opts: TrainTokenizerOptions): T5Tokenizer {
  const { base } = job;
  const trained = JSON.parse(readFileSync(job.trainedFile, 'utf8')) as { model: { vocab: [string, number][] } };
  const specials = new Set([PAD, EOS, UNK]);
  let pieces = canonicalPieces(trained.model.vocab.filter(([p]) => !specials.has(p) && p !== '\n'));
  if (opts.vocabSize !== undefined && pieces.length > opts.vocabSize - 3) pieces = prune(pieces, opts.vocabSize - 3);
  if (opts.requiredPieces?.length) {
    const required = new Set(opts.requiredPieces.map((p) => p.normalize('NFKC')).filter((p) => p && !specials.has(p)));
    const top = pieces.reduce((m, [, sc]) => Math.max(m, sc), -1);
    pieces = [...pieces.filter(([p]) => !required.has(p)), ...[...required].map((p): [string, number] => [p, top])];
  }
  const taken = new Set(pieces.map(([p]) => p));
  const ids = [...new Set(opts.idTokens ?? [])].filter((t) => t && !specials.has(t));
  for (const t of ids) {
    if (/\s/.test(t)) throw new InputError(`id token '${t}' contains whitespace`);
    if (taken.has(t)) throw new InputError(`id token '${t}' is also a trained piece`);
  }
  const vocab: [string, number][] = [[PAD, 0], [EOS, 0], [UNK, 0], ...pieces, ...ids.map((t): [string, number] => [t, 0])];
  const firstId = 3 + pieces.length;
  const spec = {
    ...base,
    added_tokens: [
      ...[PAD, EOS, UNK].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      ...ids.map((content, i) => ({ id: firstId + i, content, single_word: true, lstrip: false, rstrip: false, normalized: false, special: false })),
    ],
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: EOS, type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: EOS, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: EOS, type_id: 0 } },
      ],
      special_tokens: { [EOS]: { id: EOS, ids: [1], tokens: [EOS] } },
    },
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
  return T5Tokenizer.fromJSON(JSON.stringify(spec, null, 1));
}

/** Scores are rounded to 1/SCORE_SCALE (log-probabilities; the trainer's run-to-run noise is ~1e-14). */
const SCORE_SCALE = 1e6;

/**
 * The trained pieces in a canonical form: ordered by the piece itself (so
 * ids depend on the piece set only), scores rounded to 1/SCORE_SCALE. Why:
 * the Unigram trainer works in hash-map order, which changes from run to
 * run. Its scores differed in the last bits, and the rarest characters got
 * their small score steps in a different order, so pieces came out in a
 * different order, i.e. with different ids, and the same `p5rec train`
 * command built a different model whatever its seed (a piece's embedding
 * row and random init moved). The piece set itself was the same in every
 * run seen (31 trainings on the Musical Instruments prompts gave 4 orders).
 * Those rare characters' scores may still trade places (1e-4 apart); no
 * encoding was seen to change with them, and the ids no longer do.
 */
export function canonicalPieces(pieces: readonly (readonly [string, number])[]): [string, number][] {
  return pieces
    .map(([p, sc]): [string, number] => [p, Math.round(sc * SCORE_SCALE) / SCORE_SCALE])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Keep every single-character piece and the best-scoring others, in the given order. */
function prune(pieces: [string, number][], keep: number): [string, number][] {
  const single = pieces.filter(([p]) => [...p].length === 1);
  if (single.length > keep) {
    throw new InputError(`vocabSize ${keep + 3} is too small: the corpus has ${single.length} distinct characters (+3 special tokens)`);
  }
  const multi = pieces
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => [...p[0]].length > 1)
    .sort((a, b) => b.p[1] - a.p[1] || a.i - b.i)
    .slice(0, keep - single.length);
  const chosen = new Set<number>(multi.map((m) => m.i));
  return pieces.filter((p, i) => [...p[0]].length === 1 || chosen.has(i));
}

/** Normalizer, pre-tokenizer and decoder of a trained tokenizer (T5-like). */
function tokenizerSpec(digitGroup: number, splitPunctuation: boolean): Record<string, unknown> {
  const pre: Record<string, unknown>[] = [
    { type: 'WhitespaceSplit' },
    { type: 'Metaspace', replacement: WORD_MARKER, prepend_scheme: 'always', split: true },
  ];
  if (splitPunctuation) pre.push({ type: 'Punctuation', behavior: 'Isolated' });
  if (digitGroup > 0) pre.push({ type: 'Split', pattern: { Regex: `\\d{1,${digitGroup}}` }, behavior: 'Isolated', invert: false });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: { type: 'NFKC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: pre },
    post_processor: null,
    decoder: { type: 'Metaspace', replacement: WORD_MARKER, prepend_scheme: 'always', split: true },
  };
}
