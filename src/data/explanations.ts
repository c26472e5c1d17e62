/**
 * Deterministic (feature word, explanation sentence) extraction for P5's
 * explanation-generation task.
 *
 * P5 (Geng et al., RecSys 2022) took one (feature, explanation) pair per
 * review from the Sentires phrase-level sentiment toolkit (Zhang et al.
 * 2014), as in the PETER/NRT data (Li et al. 2020/2021): the explanation is
 * a review sentence that mentions a product feature. Sentires cannot be run
 * here, so this is a small, dependency-free replacement. The rule:
 *
 * 1. Sentence splitting ({@link splitSentences}). Split on newlines, and
 *    after a run of `.`, `!` or `?` (plus closing quotes/brackets) when
 *    - the next character is an uppercase letter, with or without a space in
 *      between (Amazon text is often run together: "affordable.I did"); or
 *    - whitespace follows and then anything, except an ellipsis (`..`/`...`)
 *      followed by a lowercase letter, which reads as a pause.
 *    No split after a single `.` that ends a known abbreviation (mr, dr, vs,
 *    approx, ...), dotted letters ("U.S.A", "e.g") or a single capital other
 *    than "I" ("J. Doe"); none inside "3.5" or "amazon.com". Sentences are
 *    trimmed, their whitespace collapsed, empty ones dropped.
 *
 * 2. Lexicon mining, over the reviews with `mineMask[r] === 1` only. Tokens:
 *    ASCII letters/digits with internal hyphens/apostrophes, case-folded, a
 *    possessive `'s` dropped. A token can be an aspect only if it has no
 *    digit, at least 3 characters, and is in none of the built-in lists: English
 *    stopwords (plus common verbs/adverbs), opinion/sentiment/intensity words
 *    (good, great, cheap, love, really, very, ...), and generic review words
 *    (product, item, thing, amazon, money, job, problem, time, ...; "price",
 *    "value" and "quality" are kept: Sentires reports them as aspects).
 *    Evidence that a token is an aspect is counted per occurrence when
 *    - it ends a short noun phrase opened by a determiner/possessive or an
 *      opinion adjective: `TRIGGER w` or `TRIGGER x w` (x, w candidate
 *      words), closed by punctuation, the end of the text, or a stopword
 *      other than a determiner/pronoun ("the sound is", "great tone.",
 *      "the sound quality is" credits "quality"; "this allows you" credits
 *      nothing); or
 *    - it is directly followed by is/are/was/were (or their n't forms):
 *      "strings are".
 *    A token is a candidate when its evidence count is >= 3 and >= 20% of
 *    its occurrences in the mining text (this drops verbs and modifiers
 *    such as "playing", "metal", "sounds"). Candidates are ranked by the
 *    number of distinct items whose mining reviews contain them, then by
 *    document frequency, then alphabetically (code-unit order); those in
 *    fewer than `minItems` items are dropped and the list is cut at
 *    `maxFeatures`.
 *
 * 3. Labelling, for every review (mined or not): the first sentence with
 *    `minSentenceWords..maxSentenceWords` word tokens that contains a lexicon
 *    word and an opinion word (Sentires emits feature-opinion pairs), else
 *    the first such sentence with a lexicon word alone. `feature` = the highest-ranked lexicon word in that sentence,
 *    `explanation` = the sentence (original casing, whitespace collapsed).
 *    Both are null when no sentence qualifies (or the review is null/empty).
 *    Words are matched as whole tokens, case-insensitively; no stemming
 *    ("string" and "strings" are separate aspects, as in Sentires output).
 *
 * Everything is deterministic: no randomness, fixed tie-breaks, and the
 * lexicon does not depend on the order of the reviews. Linear time: about
 * 15-25 us per review (200K Amazon reviews in ~3-4 s on one core). See
 * docs/explanations.md.
 */
import { InputError } from '../errors.js';

export interface ExplanationOptions {
  /** Lexicon size cap (default 500). */
  maxFeatures?: number;
  /** A feature must occur in mining reviews of >= this many distinct items (default 5). */
  minItems?: number;
  /** Shortest explanation sentence, in word tokens (default 4). */
  minSentenceWords?: number;
  /** Longest explanation sentence, in word tokens (default 40). */
  maxSentenceWords?: number;
}

export interface ExplanationResult {
  /** The mined aspect words, most frequent (by distinct items) first. */
  lexicon: string[];
  /** One per input review: the feature word, or null. */
  feature: (string | null)[];
  /** One per input review: the explanation sentence, or null. */
  explanation: (string | null)[];
}

/** Minimum aspect-evidence count for a candidate. */
const MIN_EVIDENCE = 3;
/** Minimum share of a word's occurrences that must be aspect evidence. */
const MIN_EVIDENCE_RATIO = 0.2;
/** Longest content-word run after a determiner/opinion word that still counts as a phrase. */
const MAX_PHRASE = 2;

const words = (s: string): string[] => s.trim().split(/\s+/);

/** Determiners and possessives that open a noun phrase. */
const DETERMINERS = words(`
  the a an this that these those my your his her its our their
  each every any some no another either neither both all such
`);

/** Forms of "to be" that follow a subject noun. */
const BE_VERBS = words(`
  is are was were isn't aren't wasn't weren't
`);

/**
 * Words that usually start a verb's object rather than follow a noun: they do
 * not close a noun phrase ("this allows you" is no evidence for "allows").
 */
const OBJECT_STARTERS = new Set([
  ...DETERMINERS,
  ...words(`i me you him he she it we us they them someone something anything everything nothing`),
]);

/** Function words and very common verbs/adverbs; never aspects. */
const STOPWORDS = words(`
  i me my myself we us our ours ourselves you your yours yourself yourselves
  he him his himself she her hers herself it its itself they them their
  theirs themselves what which who whom whose this that these those am is are
  was were be been being have has had having do does did doing done a an the
  and but if or because as until while of at by for with about against
  between into through during before after above below to from up down in out
  on off over under again further then once here there when where why how all
  any both each few more most other some such no nor not only own same than
  can will just should now also even still yet ever never always often
  sometimes usually already almost rather would could might must shall may
  ought need needs needed cannot can't don't doesn't didn't won't wouldn't
  couldn't shouldn't isn't aren't wasn't weren't hasn't haven't hadn't i'm
  i've i'd i'll you're you've you'd you'll he's she's it's we're we've we'd
  we'll they're they've they'd they'll that's there's here's what's who's
  let's ain't get gets got getting gotten go goes went going gone make makes
  made making take takes took taking taken come comes came coming give gives
  gave given put puts keep keeps kept say says said see sees saw seen seem
  seems seemed know knows knew known think thinks thought want wants wanted
  try tries tried trying use uses used using look looks looked looking find
  found work works worked working buy buys bought buying order ordered likes
  one ones two three four five six seven eight nine ten first second third
  last next another either neither every much many lot lots bit little enough
  several something anything nothing everything someone anyone everyone
  somebody anybody nobody somewhere anywhere everywhere way ways though
  although however since unless whether within without upon onto toward
  towards across along around behind beside besides beyond near via per among
  amongst plus etc yes okay ok oh well back away else instead maybe perhaps
  probably actually basically literally mostly mainly kind sort able unable
  sure lol far due compared similar except anyway recently soon received
  arrived available owned together straight mine means allows allow allowed
  helps help helped lets let built securely primarily whatsoever alone aside
  doubt heck left happens sounding
`);

/**
 * Opinion/sentiment/evaluative adjectives. They open a noun phrase
 * ("great tone", "cheap plastic") and are never aspects.
 */
const OPINION_ADJECTIVES = words(`
  good great nice fine excellent awesome amazing fantastic wonderful superb
  outstanding terrific fabulous perfect ideal decent solid stellar best
  better worse worst bad poor terrible horrible awful crappy cheap cheaper
  cheapest expensive pricey inexpensive affordable reasonable happy unhappy
  pleased satisfied disappointed disappointing impressed impressive cool
  sweet neat beautiful gorgeous lovely ugly fun useful useless handy helpful
  worth worthy worthwhile favorite favourite glad sturdy flimsy durable
  reliable well-made high-quality strong weak light lightweight heavy big
  bigger small smaller large larger huge tiny long longer short shorter new
  newer old older original different whole entire full main right wrong true
  false exact overall real quick easy easier hard harder difficult simple
  clear clean bright warm warmer dark loud louder quiet quieter soft softer
  smooth rich deep crisp tight loose thick thin fat low lower high higher
  fast faster slow slower serious major minor superior inferior top premium
  standard basic typical normal regular usual average cheapo junky extra
  additional nasty weird strange odd annoying awkward comfortable
  uncomfortable incredible unbelievable favorable pleasant unpleasant safe
  secure sharp rough gentle natural smart clever versatile portable compact
  convenient inconvenient accurate inaccurate precise consistent stable
  unstable noisy silent effective efficient responsive sensitive dead broken
  defective faulty excessive adequate sufficient acceptable unacceptable
  proper fancy plain classic vintage modern professional pro amateur
  beginner's
`);

/**
 * Opinion/intensity adverbs and sentiment verbs. Never aspects; unlike the
 * adjectives they do not open a noun phrase ("really helps" is not evidence
 * for "helps").
 */
const OPINION_OTHER = words(`
  love loved loves loving hate hated hates dislike disliked like liked
  recommend recommended recommending highly really very extremely super so
  too quite totally absolutely completely truly incredibly especially
  particularly pretty fairly somewhat slightly quickly easily simply
  perfectly nicely greatly badly poorly properly correctly cheaply clearly
  beautifully wonderfully amazingly horribly terribly seriously exactly
  solidly pleasantly surprisingly definitely certainly surprised enjoy
  enjoyed enjoying enjoys wish hope hoped junk garbage waste crap trash
`);

/** Words that are about the review/purchase rather than the product. */
const GENERIC_WORDS = words(`
  product products item items thing things stuff amazon review reviews
  reviewer reviewers star stars rating purchase purchased purchasing money
  job trick problem problems issue issues time times day days week weeks
  month months year years hour hours minute minutes end rest fact part deal
  reason reasons point side case cases person people guy guys man woman
  friend friends wife husband son daughter kid kids store stores seller
  sellers company brand model version market world life music songs song idea
  experience option options choice choices purpose purposes orders shipping
  package packaging delivery gift present couple pair set sets type types
  kinds sorts number amount level levels range area place front bottom inside
  outside middle half start beginning difference example question questions
  answer answers mind sense matter result results others bunch opinion
  opinions bucks dollars dollar cents past future update edit
`);

const KIND_CONTENT = 0;
const KIND_STOP = 1;
const KIND_DET = 2;
const KIND_OPINION = 3;
const KIND_BE = 4;
/** Contains a digit, too short, or generic: not a candidate, not a trigger. */
const KIND_OTHER = 5;
/** A stopword that cannot close a noun phrase (see OBJECT_STARTERS). */
const KIND_OBJ = 6;

/**
 * Word -> kind. Later lists win where they overlap (determiners and be-verbs
 * are also stopwords). Opinion adverbs/verbs behave like stopwords: they close
 * a noun phrase but do not open one.
 */
const KIND_OF = new Map<string, number>();
for (const w of STOPWORDS) KIND_OF.set(w, KIND_STOP);
for (const w of GENERIC_WORDS) KIND_OF.set(w, KIND_OTHER);
for (const w of OPINION_OTHER) KIND_OF.set(w, KIND_STOP);
for (const w of OPINION_ADJECTIVES) KIND_OF.set(w, KIND_OPINION);
for (const w of OBJECT_STARTERS) KIND_OF.set(w, KIND_OBJ);
for (const w of DETERMINERS) KIND_OF.set(w, KIND_DET);
for (const w of BE_VERBS) KIND_OF.set(w, KIND_BE);

const OPINION_SET = new Set([...OPINION_ADJECTIVES, ...OPINION_OTHER]);

function kindOf(tok: string): number {
  const k = KIND_OF.get(tok);
  if (k !== undefined) return k;
  if (tok.length < 3 || /[0-9]/.test(tok)) return KIND_OTHER;
  return KIND_CONTENT;
}

/** The built-in word lists, for documentation and tests. */
export const EXPLANATION_WORD_LISTS = {
  stopwords: STOPWORDS,
  opinion: [...OPINION_ADJECTIVES, ...OPINION_OTHER],
  generic: GENERIC_WORDS,
  determiners: DETERMINERS,
  beVerbs: BE_VERBS,
} as const;

// ---------------------------------------------------------------------------
// Sentence splitting

const ABBREVIATIONS = new Set(
  words(`mr mrs ms dr st jr sr vs e.g i.e eg ie approx appx no cf fig ft inc ltd co est min max`),
);

function isUpper(c: number): boolean {
  return (c >= 65 && c <= 90) || (c > 127 && String.fromCharCode(c) !== String.fromCharCode(c).toLowerCase());
}
function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}
function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 0xa0 || c === 12 || c === 11;
}
function isTerminator(c: number): boolean {
  return c === 46 || c === 33 || c === 63; // . ! ?
}
function isCloser(c: number): boolean {
  return c === 34 || c === 41 || c === 93 || c === 0x201d || c === 0x2019; // " ) ] ” ’
}
function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46;
}

/** True when the `.` at `dot` ends an abbreviation or an initial. */
function endsAbbreviation(text: string, dot: number): boolean {
  let s = dot;
  while (s > 0 && isWordChar(text.charCodeAt(s - 1))) s--;
  const raw = text.slice(s, dot);
  if (raw.length === 0) return false;
  // A single capital ("J. Doe"; not "I") or dotted letters ("U.S.A", "e.g").
  if (raw.length === 1) return raw !== 'I' && raw >= 'A' && raw <= 'Z';
  const w = raw.toLowerCase();
  return ABBREVIATIONS.has(w) || /^(?:[a-z]\.)+[a-z]$/.test(w);
}

function cleanSentence(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * Raw sentence spans of `text` as [start0, end0, start1, end1, ...] (not yet
 * trimmed; possibly blank).
 */
function sentenceSpans(text: string, out: number[]): void {
  out.length = 0;
  const n = text.length;
  let start = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) {
      if (i > start) out.push(start, i);
      i++;
      start = i;
      continue;
    }
    if (!isTerminator(c)) {
      i++;
      continue;
    }
    let j = i + 1;
    let dotsOnly = c === 46;
    while (j < n && isTerminator(text.charCodeAt(j))) {
      if (text.charCodeAt(j) !== 46) dotsOnly = false;
      j++;
    }
    const run = j - i;
    while (j < n && isCloser(text.charCodeAt(j))) j++;
    let k = j;
    while (k < n && isSpace(text.charCodeAt(k))) k++;
    if (k >= n) break; // end of text: the tail is pushed below
    const next = text.charCodeAt(k);
    let split: boolean;
    if (next === 10 || next === 13 || next === 0x2028 || next === 0x2029) {
      split = false; // the newline splits on its own
    } else if (run === 1 && c === 46 && endsAbbreviation(text, i)) {
      split = false;
    } else if (isUpper(next)) {
      split = true;
    } else if (k > j) {
      split = !(dotsOnly && run >= 2 && isLower(next));
    } else {
      split = false; // "3.5", "amazon.com", "?!x"
    }
    if (split) {
      out.push(start, j);
      start = k;
      i = k;
    } else {
      i = j;
    }
  }
  if (n > start) out.push(start, n);
}

/**
 * Split review text into sentences (see the module comment for the rule).
 * Returns trimmed sentences with whitespace collapsed; empty ones dropped.
 */
export function splitSentences(text: string): string[] {
  const spans: number[] = [];
  sentenceSpans(text, spans);
  const out: string[] = [];
  for (let i = 0; i < spans.length; i += 2) {
    const s = cleanSentence(text.slice(spans[i], spans[i + 1]));
    if (s.length > 0) out.push(s);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Tokenisation: a hand-rolled scanner with an open-addressing word table, so
// that known words are found without allocating a string per token.
// Tokens: ASCII letters/digits with internal ' ’ or - (case-folded, ’ read as
// '), a trailing possessive 's removed.

function isAlnum(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
}
function isJoiner(c: number): boolean {
  return c === 39 || c === 45 || c === 0x2019;
}
function fold(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c === 0x2019 ? 39 : c;
}
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 16777619;

/** Output of {@link nextToken}: start, end (possessive stripped), hash, punctuation-before flag. */
const TOK = new Int32Array(4);

/**
 * Scan the next token in text[pos, end). Returns the position after the whole
 * token, or -1 when there is none; fills {@link TOK}. TOK[3] is 1 when
 * something other than spaces/tabs separates it from `pos`.
 */
function nextToken(text: string, pos: number, end: number): number {
  let gap = 0;
  while (pos < end) {
    const c = text.charCodeAt(pos);
    if (isAlnum(c)) break;
    if (c !== 32 && c !== 9) gap = 1;
    pos++;
  }
  if (pos >= end) return -1;
  const s = pos;
  let h = FNV_OFFSET;
  let hJoin = 0;
  let joinAt = -1;
  for (;;) {
    let c: number;
    while (pos < end && isAlnum((c = text.charCodeAt(pos)))) {
      h = Math.imul(h ^ fold(c), FNV_PRIME);
      pos++;
    }
    if (pos + 1 < end && isJoiner((c = text.charCodeAt(pos))) && isAlnum(text.charCodeAt(pos + 1))) {
      hJoin = h;
      joinAt = pos;
      h = Math.imul(h ^ fold(c), FNV_PRIME);
      pos++;
      continue;
    }
    break;
  }
  let e = pos;
  if (joinAt === pos - 2 && (text.charCodeAt(pos - 1) | 32) === 115 && text.charCodeAt(joinAt) !== 45) {
    e = joinAt; // possessive 's
    h = hJoin;
  }
  TOK[0] = s;
  TOK[1] = e;
  TOK[2] = h;
  TOK[3] = gap;
  return pos;
}

function tokenString(text: string, s: number, e: number): string {
  return text.slice(s, e).toLowerCase().replace(/\u2019/g, "'");
}

/** Words keyed by the scanner's hash; ids are dense from 0. */
class WordTable {
  readonly words: string[] = [];
  private hashes: number[] = [];
  private slots = new Int32Array(1 << 12); // id + 1; 0 = empty
  private mask = (1 << 12) - 1;

  /** Id of text[s, e) (case-folded), or -1. */
  find(text: string, s: number, e: number, h: number): number {
    const len = e - s;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const v = this.slots[i];
      if (v === 0) return -1;
      const id = v - 1;
      if (this.hashes[id] !== h) continue;
      const w = this.words[id];
      if (w.length !== len) continue;
      let k = 0;
      while (k < len && w.charCodeAt(k) === fold(text.charCodeAt(s + k))) k++;
      if (k === len) return id;
    }
  }

  /** Add a word known to be absent; returns its id. */
  add(word: string, h: number): number {
    const id = this.words.length;
    this.words.push(word);
    this.hashes.push(h);
    if ((id + 1) * 2 > this.slots.length) this.rehash();
    this.place(id, h);
    return id;
  }

  /** Hash of a plain lowercase word, as the scanner computes it. */
  static hashOf(word: string): number {
    let h = FNV_OFFSET;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), FNV_PRIME);
    return h;
  }

  private place(id: number, h: number): void {
    let i = h & this.mask;
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = id + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let id = 0; id < this.words.length - 1; id++) this.place(id, this.hashes[id]);
  }
}

// ---------------------------------------------------------------------------
// Mining

function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) {
    throw new InputError(`${name} must be an integer >= ${min}, got ${v}`, { field: name });
  }
  return v;
}

class GrowArray {
  a: Int32Array = new Int32Array(1 << 12);
  ensure(n: number): void {
    if (n <= this.a.length) return;
    let len = this.a.length;
    while (len < n) len *= 2;
    const b = new Int32Array(len);
    b.set(this.a);
    this.a = b;
  }
}

function mineLexicon(
  reviews: (string | null)[],
  itemOf: ArrayLike<number>,
  mineMask: ArrayLike<number>,
  minItems: number,
  maxFeatures: number,
): string[] {
  // Visit mining reviews grouped by item (stable) so distinct-item counts need
  // only a "last item seen" per word.
  const order: number[] = [];
  for (let r = 0; r < reviews.length; r++) if (mineMask[r] === 1 && reviews[r]) order.push(r);
  order.sort((x, y) => itemOf[x] - itemOf[y] || x - y);

  const table = new WordTable();
  const kinds: number[] = [];
  const occ = new GrowArray();
  const evid = new GrowArray();
  const df = new GrowArray();
  const items = new GrowArray();
  const lastDoc = new GrowArray();
  const lastItem = new GrowArray();

  // Per-review token buffers, reused.
  let ids = new Int32Array(256);
  let gapBefore = new Uint8Array(256); // 1 = punctuation between token t-1 and t

  let occA = occ.a, evidA = evid.a, dfA = df.a, itemsA = items.a, lastDocA = lastDoc.a, lastItemA = lastItem.a;
  for (let oi = 0; oi < order.length; oi++) {
    const r = order[oi];
    const item = itemOf[r];
    const text = reviews[r] as string;
    const end = text.length;
    let nt = 0;
    for (let pos = nextToken(text, 0, end); pos >= 0; pos = nextToken(text, pos, end)) {
      const s = TOK[0], e = TOK[1], h = TOK[2];
      let id = table.find(text, s, e, h);
      if (id < 0) {
        const w = tokenString(text, s, e);
        id = table.add(w, h);
        kinds.push(kindOf(w));
        if (id >= occA.length) {
          for (const g of [occ, evid, df, items, lastDoc, lastItem]) g.ensure(id + 1);
          occA = occ.a; evidA = evid.a; dfA = df.a; itemsA = items.a; lastDocA = lastDoc.a; lastItemA = lastItem.a;
        }
        lastDocA[id] = -1;
        lastItemA[id] = -1;
      }
      if (nt === ids.length) {
        const ni = new Int32Array(nt * 2);
        ni.set(ids);
        ids = ni;
        const ng = new Uint8Array(nt * 2);
        ng.set(gapBefore);
        gapBefore = ng;
      }
      ids[nt] = id;
      gapBefore[nt] = nt === 0 ? 1 : TOK[3];
      nt++;
      occA[id]++;
      if (lastDocA[id] !== oi) {
        lastDocA[id] = oi;
        dfA[id]++;
        if (lastItemA[id] !== item) {
          lastItemA[id] = item;
          itemsA[id]++;
        }
      }
    }
    // Evidence patterns.
    for (let t = 0; t < nt; t++) {
      const k = kinds[ids[t]];
      if (k === KIND_BE && t > 0 && !gapBefore[t] && kinds[ids[t - 1]] === KIND_CONTENT) {
        evidA[ids[t - 1]]++;
      }
      if (k !== KIND_DET && k !== KIND_OPINION) continue;
      // Content-word run right after the trigger.
      let e = t + 1;
      while (e < nt && e - t <= MAX_PHRASE && !gapBefore[e] && kinds[ids[e]] === KIND_CONTENT) e++;
      const len = e - t - 1;
      if (len === 0 || len > MAX_PHRASE) continue;
      // Ended by punctuation, the end of the text or a stopword that does not
      // start an object; a be-verb end is already credited by the rule above.
      if (e < nt && !gapBefore[e] && kinds[ids[e]] !== KIND_STOP) continue;
      evidA[ids[e - 1]]++;
    }
  }

  const words = table.words;
  const cands: number[] = [];
  for (let id = 0; id < words.length; id++) {
    if (kinds[id] !== KIND_CONTENT) continue;
    const ev = evidA[id];
    if (ev < MIN_EVIDENCE || ev < MIN_EVIDENCE_RATIO * occA[id]) continue;
    if (itemsA[id] < minItems) continue;
    cands.push(id);
  }
  cands.sort((x, y) => {
    const d = itemsA[y] - itemsA[x] || dfA[y] - dfA[x];
    if (d !== 0) return d;
    const wx = words[x], wy = words[y];
    return wx < wy ? -1 : wx > wy ? 1 : 0;
  });
  return cands.slice(0, maxFeatures).map((id) => words[id]);
}

// ---------------------------------------------------------------------------
// Labelling

/** Index of the sentence span chosen and the best lexicon rank in it, or null. */
function labelReview(
  text: string,
  lex: WordTable,
  spans: number[],
  minWords: number,
  maxWords: number,
): [string, number] | null {
  sentenceSpans(text, spans);
  // Prefer a sentence that also carries an opinion (Sentires only emits
  // feature-opinion pairs); fall back to the first sentence with a feature.
  let fallback: [string, number] | null = null;
  for (let i = 0; i < spans.length; i += 2) {
    const end = spans[i + 1];
    let nWords = 0;
    let best = -1;
    let opinion = false;
    for (let pos = nextToken(text, spans[i], end); pos >= 0; pos = nextToken(text, pos, end)) {
      if (++nWords > maxWords) break;
      const rk = lex.find(text, TOK[0], TOK[1], TOK[2]);
      if (rk >= 0 && (best < 0 || rk < best)) best = rk;
      else if (!opinion && rk < 0 && OPINION_SET.has(tokenString(text, TOK[0], TOK[1]))) opinion = true;
    }
    if (best >= 0 && nWords >= minWords && nWords <= maxWords) {
      if (opinion) return [cleanSentence(text.slice(spans[i], end)), best];
      fallback ??= [cleanSentence(text.slice(spans[i], end)), best];
    }
  }
  return fallback;
}

/**
 * Mine an aspect lexicon from the reviews with `mineMask[r] === 1` and label
 * every review with a (feature, explanation) pair (see the module comment).
 */
export function extractExplanations(
  reviews: (string | null)[],
  itemOf: ArrayLike<number>,
  mineMask: ArrayLike<number>,
  opts: ExplanationOptions = {},
): ExplanationResult {
  const n = reviews.length;
  if (itemOf.length !== n) {
    throw new InputError(`itemOf has ${itemOf.length} entries, expected one per review (${n})`, { field: 'itemOf' });
  }
  if (mineMask.length !== n) {
    throw new InputError(`mineMask has ${mineMask.length} entries, expected one per review (${n})`, { field: 'mineMask' });
  }
  const maxFeatures = checkInt('maxFeatures', opts.maxFeatures ?? 500, 0);
  const minItems = checkInt('minItems', opts.minItems ?? 5, 1);
  const minWords = checkInt('minSentenceWords', opts.minSentenceWords ?? 4, 1);
  const maxWords = checkInt('maxSentenceWords', opts.maxSentenceWords ?? 40, minWords);

  const lexicon = mineLexicon(reviews, itemOf, mineMask, minItems, maxFeatures);
  // Ids in this table are the lexicon ranks.
  const lex = new WordTable();
  for (const w of lexicon) lex.add(w, WordTable.hashOf(w));

  const feature: (string | null)[] = new Array(n).fill(null);
  const explanation: (string | null)[] = new Array(n).fill(null);
  if (lexicon.length > 0) {
    const spans: number[] = [];
    for (let r = 0; r < n; r++) {
      const text = reviews[r];
      if (!text) continue;
      const hit = labelReview(text, lex, spans, minWords, maxWords);
      if (hit) {
        explanation[r] = hit[0];
        feature[r] = lexicon[hit[1]];
      }
    }
  }
  return { lexicon, feature, explanation };
}
