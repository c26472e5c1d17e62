/**
 * P5 as a recommender (the seam every model implements): a trained T5 plus
 * its tokenizer, the prompt collection and the dataset, answering each task
 * through a prompt template:
 * - sequential / direct with a generative template (2-1, 2-13, 5-5, 5-8):
 *   beam search constrained to the catalogue (or to the candidate list), the
 *   top-k list is the k best beams, scored by their log-probability;
 * - yes/no templates (2-11, 5-1, ...): every candidate ranked by log P("yes");
 * - rating (1-1, 1-6, 1-10): the decoded star (or the expected star over the
 *   first token's star probabilities).
 * Items outside the beams score NaN ("not retrieved"), which the harness ranks last.
 */
import type { Dataset } from '../data/dataset.js';
import { InputError } from '../errors.js';
import type { T5Model } from '../models/t5/model.js';
import { renderPairPrompt, renderUserPrompt } from '../prompts/render.js';
import type { PromptCollection, PromptTemplate } from '../prompts/templates.js';
import { PLACEHOLDERS, renderTemplate } from '../prompts/templates.js';
import { plainIds, templateFor, type IdView } from '../prompts/ids.js';
import type { ModelState, PromptedRecommender, Recommender, Task, TrainSplit } from '../recommend/recommender.js';
import type { T5Tokenizer } from '../tokenizer/tokenizer.js';
import { beamSearch, encodePrompts, sequenceLogProbs, type BeamOptions } from './decode.js';
import { TokenTrie } from './trie.js';
import { MAX_HISTORY } from '../defaults.js';

export interface P5Settings {
  /** Template used per task (default: 2-1 sequential, 5-1 direct, 1-1 rating). */
  prompts: { sequential: string; direct: string; rating: string };
  /** Beams for item generation; the top-k list has at most this many items (default 20). */
  beams: number;
  /**
   * Rating: the decoded star ('greedy'), the expectation over the first
   * token's star probabilities ('expected'), or that expectation through the
   * linear map fitted on the validation ratings ('calibrated', see
   * calibrate.ts; needs `ratingCalibration` for the prompt).
   */
  ratingMode: 'greedy' | 'expected' | 'calibrated';
  /** Per rating template id: star ≈ a + b·expected, fitted on validation ratings. */
  ratingCalibration?: Record<string, RatingCalibration>;
  /** Most recent history items shown (default 20). */
  maxHistory: number;
  /** Prompts per forward pass (default 32). */
  batchSize: number;
  /** Explanations / summaries: beams and minimum length. */
  textBeams: number;
  textMinLength: number;
  textMaxLength: number;
  /** Text: never repeat an n-gram of this size (0 = off). */
  textNoRepeatNgram: number;
  /** Placeholders of the templates the model was trained on (absent: not recorded, no check). */
  trainedPlaceholders?: string[];
  /**
   * false: answers that are one id token were trained without `</s>` and are
   * scored without it (see T5Tokenizer.bareIdAnswer). Absent (models from
   * before this setting) or true: every answer ends with `</s>`.
   */
  answerEos?: boolean;
}

export interface RatingCalibration {
  a: number;
  b: number;
  /** Validation ratings it was fitted on. */
  n: number;
}

/** Frozen: every model gets its own copy (the constructor's), so asking one model with another prompt never changes another's. */
export const DEFAULT_P5_SETTINGS: Readonly<P5Settings> = Object.freeze({
  prompts: Object.freeze({ sequential: '2-1', direct: '5-1', rating: '1-1' }),
  beams: 20,
  ratingMode: 'greedy',
  maxHistory: MAX_HISTORY,
  batchSize: 32,
  textBeams: 4,
  textMinLength: 5,
  textMaxLength: 40,
  textNoRepeatNgram: 2,
}) as P5Settings;

export interface ScoreRequest {
  user: number;
  history: Int32Array;
  candidates?: Int32Array;
}

export class P5Recommender implements Recommender {
  readonly kind = 'p5';
  /** This model's own settings (a copy of what it was built with): decoding flags change these only. */
  readonly settings: P5Settings;
  readonly tasks: readonly Task[];
  private itemIds: number[][] | null = null;
  private catalogue: TokenTrie | null = null;

  constructor(
    readonly ds: Dataset,
    readonly model: T5Model,
    readonly tokenizer: T5Tokenizer,
    readonly collection: PromptCollection,
    readonly trainSplit: TrainSplit,
    settings: P5Settings = DEFAULT_P5_SETTINGS,
    readonly ids: IdView = plainIds(ds),
  ) {
    this.settings = { ...settings, prompts: { ...settings.prompts } };
    this.tasks = ds.manifest.fields.rating ? ['rating', 'direct', 'sequential'] : ['direct', 'sequential'];
    for (const task of ['sequential', 'direct', 'rating'] as const) this.template(settings.prompts[task], task);
  }

  /**
   * A template by id, checked to suit the task and to be answerable: every
   * placeholder must be fillable from this dataset and, with `trained`, must
   * have been filled in the model's training prompts (a field the model never
   * read is not an unseen prompt but an unseen input).
   */
  template(id: string, task?: Task, trained = false): PromptTemplate {
    const t = this.collection.templates.find((x) => x.id === id);
    if (!t) throw new InputError(`unknown prompt '${id}' (known: ${this.collection.templates.map((x) => x.id).join(', ')})`, { field: 'prompt' });
    if (task === 'rating' && !(t.target === 'star_rating' && (t.task === 'rating' || t.task === 'zeroshot'))) {
      throw new InputError(`prompt ${id} does not ask for a star rating (use 1-1, 1-2, 1-5, 1-6, 1-7 or 1-10)`, { field: 'prompt' });
    }
    if ((task === 'sequential' || task === 'direct') && !((t.task === 'sequential' || t.task === 'direct') && (t.target === 'item_id' || t.target === 'yes_no'))) {
      throw new InputError(`prompt ${id} is a ${t.task} prompt; a ${task} evaluation needs a sequential or direct prompt (2-x, 5-x)`, { field: 'prompt' });
    }
    for (const p of t.placeholders) {
      const need = PLACEHOLDERS[p]?.needs;
      if (need && !this.ds.manifest.fields[need]) throw new InputError(`prompt ${id} needs {${p}} (${PLACEHOLDERS[p].what}), which this dataset lacks (manifest field '${need}')`, { field: 'prompt' });
    }
    const seen = this.settings.trainedPlaceholders;
    if (trained && seen) {
      const never = t.placeholders.filter((p) => !seen.includes(p));
      if (never.length) throw new InputError(`prompt ${id} fills ${never.map((p) => `{${p}}`).join(', ')}, which no training prompt of this model had (trained fields: ${seen.join(', ')})`, { field: 'prompt' });
    }
    return t;
  }

  /** The prompted capability of the Recommender seam: this model is asked through templates. */
  get prompted(): PromptedRecommender {
    return this;
  }

  get promptTemplates(): readonly PromptTemplate[] {
    return this.collection.templates;
  }

  /** Use another template for a task (e.g. the unseen 2-13 for sequential). */
  usePrompt(task: Task, id: string): void {
    this.template(id, task, true);
    this.settings.prompts = { ...this.settings.prompts, [task]: id };
  }

  promptFor(task: Task): string {
    return this.settings.prompts[task];
  }

  /** Token ids of every item's answer as trained (with `</s>`, unless bare id answers), and the catalogue trie. */
  private async items(): Promise<{ ids: number[][]; trie: TokenTrie }> {
    if (!this.itemIds || !this.catalogue) {
      const enc = await this.tokenizer.encodeBatch(this.ids.items);
      const bare = this.settings.answerEos === false;
      this.itemIds = enc.map((e) => (bare ? [...this.tokenizer.bareIdAnswer(e.ids)] : e.ids));
      const trie = new TokenTrie();
      this.itemIds.forEach((ids, j) => trie.insert(ids, j));
      this.catalogue = trie;
    }
    return { ids: this.itemIds, trie: this.catalogue };
  }

  async score(user: number, history: Int32Array, candidates?: Int32Array): Promise<Float32Array> {
    return (await this.scoreMany([{ user, history, candidates }]))[0];
  }

  /** Scores for several users at once (batched prompts). */
  async scoreMany(reqs: readonly ScoreRequest[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const byTemplate = (r: ScoreRequest): PromptTemplate => this.template(this.settings.prompts[r.candidates ? 'direct' : 'sequential'], undefined, true);
    const { ids: itemIds, trie: catalogue } = await this.items();
    const N = this.ds.numItems;
    // Generative requests are batched together; yes/no ones are expanded per candidate.
    const gen: { i: number; prompt: string; trie: TokenTrie; cands?: Int32Array }[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i];
      const t = byTemplate(r);
      out.push(new Float32Array(r.candidates ? r.candidates.length : N).fill(NaN));
      if (t.target === 'yes_no') {
        const asked = r.candidates ?? Int32Array.from({ length: N }, (_, j) => j);
        const prompts = Array.from(asked, (item) => renderUserPrompt(this.ds, t, { user: r.user, history: r.history, asked: item }, { maxHistory: this.settings.maxHistory, ids: this.ids }));
        const s = await this.yesScores(prompts);
        out[i].set(s);
      } else {
        if (t.placeholders.includes('candidates') && !r.candidates) {
          throw new InputError(`prompt ${t.id} lists candidates; all-item ranking needs a prompt without them (e.g. 2-1, 2-13)`, { field: 'prompt' });
        }
        let trie = catalogue;
        if (r.candidates) {
          trie = new TokenTrie();
          for (let j = 0; j < r.candidates.length; j++) trie.insert(itemIds[r.candidates[j]], j);
        }
        gen.push({ i, prompt: renderUserPrompt(this.ds, t, { user: r.user, history: r.history, candidates: r.candidates }, { maxHistory: this.settings.maxHistory, ids: this.ids }), trie, cands: r.candidates });
      }
    }
    const B = Math.max(1, Math.floor(this.settings.batchSize / Math.max(1, this.settings.beams / 4)));
    for (let s = 0; s < gen.length; s += B) {
      const chunk = gen.slice(s, s + B);
      const batch = await encodePrompts(this.tokenizer, chunk.map((g) => g.prompt));
      const hyps = beamSearch(this.model, batch, { beams: this.settings.beams, maxLength: 16, trie: chunk.map((g) => g.trie) });
      chunk.forEach((g, j) => {
        for (const h of hyps[j]) if (h.value >= 0 && Number.isNaN(out[g.i][h.value])) out[g.i][h.value] = h.logProb;
      });
    }
    return out;
  }

  /** log P("yes") as the answer's start, per prompt. */
  async yesScores(prompts: readonly string[]): Promise<Float32Array> {
    const yes = (await this.tokenizer.encode('yes', { eos: false })).ids;
    const out = new Float32Array(prompts.length);
    const B = this.settings.batchSize * 2;
    for (let s = 0; s < prompts.length; s += B) {
      const chunk = prompts.slice(s, s + B);
      const lp = sequenceLogProbs(this.model, await encodePrompts(this.tokenizer, chunk), chunk.map(() => yes));
      out.set(lp, s);
    }
    return out;
  }

  async predictRating(user: number, item: number): Promise<number> {
    return (await this.predictRatings([[user, item]]))[0];
  }

  /** Star predictions for (user, item) pairs with the rating prompt. */
  async predictRatings(pairs: readonly (readonly [number, number])[]): Promise<number[]> {
    const t = this.template(this.settings.prompts.rating, 'rating');
    const mode = this.settings.ratingMode;
    const cal = this.settings.ratingCalibration?.[t.id];
    if (mode === 'calibrated' && !cal) throw new InputError(`this model has no rating calibration for prompt ${t.id}; use ratingMode 'expected' or 'greedy'`, { field: 'ratingMode' });
    const expected = await this.expectedStars(pairs, t.id);
    if (mode === 'expected') return expected;
    if (mode === 'calibrated') return expected.map((e) => cal!.a + cal!.b * e);
    const prompts = pairs.map(([u, i]) => renderPairPrompt(this.ds, t, u, i, this.ids));
    const out: number[] = [];
    const B = this.settings.batchSize;
    for (let s = 0; s < prompts.length; s += B) {
      const batch = await encodePrompts(this.tokenizer, prompts.slice(s, s + B));
      const texts = await Promise.all(this.model.generateGreedy(batch, { maxNewTokens: 6 }).map((ids) => this.tokenizer.decode(ids, { skipSpecialTokens: true })));
      texts.forEach((text, j) => out.push(parseStar(text) ?? expected[s + j]));
    }
    return out;
  }

  /** The expected star over the first token's probabilities of "1".."5", per pair, with a rating template. */
  async expectedStars(pairs: readonly (readonly [number, number])[], templateId: string): Promise<number[]> {
    const t = this.template(templateId, 'rating');
    const prompts = pairs.map(([u, i]) => renderPairPrompt(this.ds, t, u, i, this.ids));
    const out: number[] = [];
    const stars = await Promise.all([1, 2, 3, 4, 5].map(async (s) => (await this.tokenizer.encode(String(s), { eos: false })).ids));
    const B = this.settings.batchSize;
    for (let s = 0; s < prompts.length; s += B) {
      const chunk = prompts.slice(s, s + B);
      const lp = sequenceLogProbs(this.model, await encodePrompts(this.tokenizer, chunk), chunk.flatMap(() => stars), stars.length);
      for (let j = 0; j < chunk.length; j++) {
        let z = 0;
        let m = 0;
        for (let k = 0; k < 5; k++) {
          const p = Math.exp(lp[j * 5 + k]);
          z += p;
          m += p * (k + 1);
        }
        out.push(z > 0 ? m / z : 3);
      }
    }
    return out;
  }

  /** Raw generation for any prompt text (beam search, unconstrained). */
  async generate(prompts: readonly string[], opts: BeamOptions = {}): Promise<string[]> {
    const out: string[] = [];
    const B = this.settings.batchSize;
    for (let s = 0; s < prompts.length; s += B) {
      const chunk = prompts.slice(s, s + B);
      const batch = await encodePrompts(this.tokenizer, chunk);
      const hyps = beamSearch(this.model, batch, {
        beams: opts.beams ?? this.settings.textBeams,
        minLength: opts.minLength ?? 0,
        maxLength: opts.maxLength ?? this.settings.textMaxLength,
        lengthPenalty: opts.lengthPenalty,
        noRepeatNgram: opts.noRepeatNgram ?? this.settings.textNoRepeatNgram,
        returnBeams: 1,
      });
      for (const h of hyps) out.push(await this.tokenizer.decode(h[0]?.ids ?? [], { skipSpecialTokens: true }));
    }
    return out;
  }

  /** An explanation of why `user` would like `item`, around a feature word when given (3-11, else 3-6 / 3-2 style). */
  async explain(user: number, item: number, feature?: string): Promise<{ text: string; prompt: string; template: string }> {
    const usable = (id: string): PromptTemplate | undefined => {
      const t = this.collection.templates.find((x) => x.id === id);
      return t && (!t.placeholders.includes('item_title') || this.ds.manifest.fields.title) ? t : undefined;
    };
    const star = Math.min(5, Math.max(1, Math.round(this.tasks.includes('rating') ? await this.predictRating(user, item) : 5)));
    const t = feature ? usable('3-11') ?? usable('3-9') : usable('3-6') ?? usable('3-4');
    if (!t) throw new InputError('no explanation template is usable on this dataset', { field: 'prompt' });
    const it = this.ds.items;
    const prompt = renderTemplate(templateFor(t, this.ids), {
      user_id: this.ids.users[user],
      user_desc: this.ds.users.name[user] || this.ds.users.rawId[user],
      item_id: this.ids.items[item],
      item_title: it.title[item] ?? 'unknown title',
      star_rating: star,
      feature_word: feature ?? '',
    });
    const [text] = await this.generate([prompt], { minLength: this.settings.textMinLength });
    return { text, prompt, template: t.id };
  }

  /** A one-line summary of a review (4-1). */
  async summarize(review: string, user = 0): Promise<{ text: string; prompt: string; template: string }> {
    const t = this.collection.templates.find((x) => x.id === '4-1');
    if (!t) throw new InputError('the prompt collection has no 4-1 template', { field: 'prompt' });
    const prompt = renderTemplate(templateFor(t, this.ids), { user_id: this.ids.users[user], review_body: review });
    const [text] = await this.generate([prompt]);
    return { text, prompt, template: t.id };
  }

  state(): ModelState {
    throw new InputError('a P5 model is saved as a T5 folder by `p5rec train`, not through state()');
  }
}

/** The star in a decoded rating answer ("4", "4.3", "4.3 , great sound"), clipped to 1..5; null if none. */
export function parseStar(text: string): number | null {
  const m = /-?\d+(?:\.\d+)?/.exec(text);
  if (!m) return null;
  const v = Number(m[0]);
  return Number.isFinite(v) ? Math.min(5, Math.max(1, v)) : null;
}
