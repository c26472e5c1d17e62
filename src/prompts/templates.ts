/**
 * P5's prompts as data: a collection of templates (data/prompts/p5-amazon.json
 * plus any files a user adds), validated on load, rendered from a record of
 * named fields. Which templates a dataset can feed follows from the fields its
 * manifest says exist; the rest are skipped with a reason.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import type { Manifest } from '../data/manifest.js';

export const PROMPTS_FORMAT = 'p5rec-p5-prompts';
export const PROMPTS_FORMAT_VERSION = 1;

/** data/prompts/p5-amazon.json, found relative to this module (src/prompts or dist/prompts). */
export const DEFAULT_P5_PROMPTS_PATH = fileURLToPath(new URL('../../data/prompts/p5-amazon.json', import.meta.url));

/** Task families: P5's five plus the zero-shot (cold-start) family Z. P5 calls 'direct' 'traditional'. */
export const PROMPT_TASKS = ['rating', 'sequential', 'explanation', 'review', 'direct', 'zeroshot'] as const;
export type PromptTask = (typeof PROMPT_TASKS)[number];

/**
 * What a template's answer is:
 * star_rating (`4`, or `4.3` with P5's training noise), yes_no, like_dislike
 * (like = 4-5 stars), item_id (the bare item token; the positive among the
 * candidates for candidate prompts), explanation, rating_and_explanation
 * (`4 , explanation`), summary (the review headline).
 */
export const TARGET_FORMS = ['star_rating', 'yes_no', 'like_dislike', 'item_id', 'explanation', 'rating_and_explanation', 'summary'] as const;
export type TargetForm = (typeof TARGET_FORMS)[number];

export const TEMPLATE_SELECTIONS = ['seen', 'unseen', 'all'] as const;
export type TemplateSelection = (typeof TEMPLATE_SELECTIONS)[number];

type DatasetField = keyof Manifest['fields'];

interface PlaceholderSpec {
  /** The manifest field the dataset must have (none: every dataset has it). */
  needs?: DatasetField;
  /** What a reader of a skip reason is told is missing. */
  what: string;
  /** Families that can fill it (none: all). */
  tasks?: readonly PromptTask[];
}

const ROW_TASKS = ['rating', 'explanation', 'review', 'zeroshot'] as const;

/** Every placeholder a template may use, what fills it, and what the dataset needs for it. */
export const PLACEHOLDERS: Record<string, PlaceholderSpec> = {
  user_id: { what: 'user ids' },
  user_desc: { needs: 'reviewerName', what: 'reviewer names' },
  item_id: { what: 'item ids' },
  item_title: { needs: 'title', what: 'item titles' },
  brand: { needs: 'brand', what: 'item brands' },
  price: { needs: 'price', what: 'item prices' },
  purchase_history: { what: 'purchase histories', tasks: ['sequential'] },
  candidates: { what: 'candidate lists', tasks: ['sequential', 'direct'] },
  star_rating: { needs: 'rating', what: 'star ratings', tasks: ROW_TASKS },
  review_body: { needs: 'review', what: 'review texts', tasks: ROW_TASKS },
  review_headline: { needs: 'summary', what: 'review summaries', tasks: ROW_TASKS },
  feature_word: { needs: 'explanation', what: 'explanation feature words', tasks: ROW_TASKS },
};

/** Dataset fields each answer form needs. */
const TARGET_NEEDS: Record<TargetForm, { field: DatasetField; what: string }[]> = {
  star_rating: [{ field: 'rating', what: 'star ratings' }],
  yes_no: [],
  like_dislike: [{ field: 'rating', what: 'star ratings' }],
  item_id: [],
  explanation: [{ field: 'explanation', what: 'explanations' }],
  rating_and_explanation: [{ field: 'rating', what: 'star ratings' }, { field: 'explanation', what: 'explanations' }],
  summary: [{ field: 'summary', what: 'review summaries' }],
};

/** Answer forms each family can produce. */
const TASK_TARGETS: Record<PromptTask, readonly TargetForm[]> = {
  rating: ['star_rating', 'yes_no', 'like_dislike'],
  sequential: ['item_id', 'yes_no'],
  explanation: ['explanation', 'rating_and_explanation'],
  review: ['summary', 'star_rating'],
  direct: ['yes_no', 'item_id'],
  zeroshot: ['star_rating', 'like_dislike', 'explanation', 'rating_and_explanation'],
};

export interface PromptTemplate {
  /** P5's id ('1-1' … '5-8', 'Z-1' …) or the user's own. */
  id: string;
  task: PromptTask;
  /** The prompt text with {placeholder}s, in P5's tokenised spacing. */
  source: string;
  target: TargetForm;
  /** false: held out of training (P5's unseen prompts). */
  seen: boolean;
  description?: string;
  /** Placeholders `source` uses, in order of first use. */
  placeholders: string[];
  /** The file it came from. */
  file: string;
}

export interface PromptCollection {
  name: string;
  templates: PromptTemplate[];
  /** Files read, in order (the base collection first). */
  files: string[];
  /** Ids a later file redefined. */
  replaced: { id: string; file: string }[];
}

export interface SkippedTemplate {
  id: string;
  task: PromptTask;
  reason: string;
  /** Manifest fields the dataset lacks. */
  missing: string[];
}

const PLACEHOLDER_RE = /\{([^{}]*)\}/g;

/** Placeholder names in a template source, in order of first use (no validation). */
export function placeholdersOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(PLACEHOLDER_RE)) if (!out.includes(m[1])) out.push(m[1]);
  return out;
}

/**
 * Check one parsed collection file and return its templates. Every error
 * names the file, the field (`templates[3].source`) and the template id.
 */
export function parseCollection(json: unknown, file: string): { name: string; templates: PromptTemplate[] } {
  const o = json as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new InputError('a prompt collection must be a JSON object', { file });
  if (o.format !== PROMPTS_FORMAT) throw new InputError(`not a P5 prompt collection (format must be '${PROMPTS_FORMAT}', got ${JSON.stringify(o.format)})`, { file, field: 'format' });
  if (o.version !== undefined && (typeof o.version !== 'number' || o.version > PROMPTS_FORMAT_VERSION)) {
    throw new InputError(`unsupported version ${JSON.stringify(o.version)} (this p5rec reads version ${PROMPTS_FORMAT_VERSION})`, { file, field: 'version' });
  }
  if (o.name !== undefined && typeof o.name !== 'string') throw new InputError('must be a string', { file, field: 'name' });
  if (!Array.isArray(o.templates)) throw new InputError('missing or not an array of templates', { file, field: 'templates' });
  const seen = new Set<string>();
  const templates = o.templates.map((raw, i): PromptTemplate => {
    const at = `templates[${i}]`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError('each template must be an object', { file, field: at });
    const t = raw as Record<string, unknown>;
    if (typeof t.id !== 'string' || !t.id.trim()) throw new InputError('template id missing or not a non-empty string', { file, field: `${at}.id` });
    const id = t.id;
    const fail = (field: string, msg: string): InputError => new InputError(`template '${id}': ${msg}`, { file, field: `${at}.${field}` });
    if (seen.has(id)) throw fail('id', 'duplicate id in this file');
    seen.add(id);
    if (!PROMPT_TASKS.includes(t.task as PromptTask)) throw fail('task', `must be one of ${PROMPT_TASKS.join(', ')}, got ${JSON.stringify(t.task)}`);
    const task = t.task as PromptTask;
    if (typeof t.source !== 'string' || !t.source.trim()) throw fail('source', 'missing or not a non-empty string');
    const source = t.source as string;
    if (!TARGET_FORMS.includes(t.target as TargetForm)) throw fail('target', `must be one of ${TARGET_FORMS.join(', ')}, got ${JSON.stringify(t.target)}`);
    const target = t.target as TargetForm;
    if (typeof t.seen !== 'boolean') throw fail('seen', 'missing or not true/false');
    if (t.description !== undefined && typeof t.description !== 'string') throw fail('description', 'must be a string');
    // Braces: every { closes before the next {, and no stray }.
    const stripped = source.replace(PLACEHOLDER_RE, '');
    if (/[{}]/.test(stripped)) throw fail('source', 'unbalanced { or } (placeholders are {name}; literal braces are not supported)');
    const names = placeholdersOf(source);
    for (const n of names) {
      const spec = PLACEHOLDERS[n];
      if (!spec) throw fail('source', `unknown placeholder {${n}} (known: ${Object.keys(PLACEHOLDERS).map((k) => `{${k}}`).join(', ')})`);
      if (spec.tasks && !spec.tasks.includes(task)) throw fail('source', `placeholder {${n}} is not available to task '${task}' (only ${spec.tasks.join(', ')})`);
    }
    if (!TASK_TARGETS[task].includes(target)) throw fail('target', `task '${task}' answers with ${TASK_TARGETS[task].join(', ')}, not '${target}'`);
    const has = (n: string): boolean => names.includes(n);
    if (task === 'sequential' && !has('purchase_history')) throw fail('source', "a sequential template must show {purchase_history}");
    if (task === 'review' && !has('review_body')) throw fail('source', 'a review template must show {review_body}');
    if (has('candidates') && target !== 'item_id') throw fail('target', "a template with {candidates} answers with 'item_id'");
    if (task === 'direct' && target === 'item_id' && !has('candidates')) throw fail('source', "a direct template answering 'item_id' must show {candidates}");
    if ((task === 'sequential' || task === 'direct') && target === 'yes_no' && !has('item_id') && !has('item_title')) {
      throw fail('source', 'a yes/no recommendation template must name the asked item ({item_id} or {item_title})');
    }
    if (task === 'rating' && target === 'yes_no' && !has('star_rating')) throw fail('source', 'a yes/no rating template must ask about a {star_rating}');
    return { id, task, source, target, seen: t.seen as boolean, ...(t.description !== undefined ? { description: t.description as string } : {}), placeholders: names, file };
  });
  return { name: typeof o.name === 'string' ? o.name : '', templates };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read prompt collection (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`malformed JSON (${(e as Error).message})`, { file });
  }
}

/**
 * Load P5's collection and extend it with the user's files, in order. A
 * template whose id is already defined replaces the earlier one (reported in
 * `replaced`); new ids are appended.
 */
export function loadPromptCollection(extra: string[] = [], base: string = DEFAULT_P5_PROMPTS_PATH): PromptCollection {
  const files = [base, ...extra];
  const byId = new Map<string, PromptTemplate>();
  const replaced: { id: string; file: string }[] = [];
  let name = '';
  for (const file of files) {
    const parsed = parseCollection(readJson(file), file);
    if (!name) name = parsed.name;
    for (const t of parsed.templates) {
      if (byId.has(t.id)) replaced.push({ id: t.id, file });
      byId.set(t.id, t);
    }
  }
  return { name: name || 'p5', templates: [...byId.values()], files, replaced };
}

/** Fields a template needs from the dataset, with the words used in skip reasons. */
export function templateNeeds(t: PromptTemplate): { field: DatasetField; what: string }[] {
  const out: { field: DatasetField; what: string }[] = [];
  const add = (field: DatasetField, what: string): void => {
    if (!out.some((x) => x.field === field)) out.push({ field, what });
  };
  for (const n of t.placeholders) {
    const spec = PLACEHOLDERS[n];
    if (spec?.needs) add(spec.needs, `${spec.what} (for {${n}})`);
  }
  for (const x of TARGET_NEEDS[t.target]) add(x.field, `${x.what} (for the '${t.target}' answer)`);
  return out;
}

/** Keep templates of the selection and tasks; split them into usable and skipped (dataset lacks a field). */
export function selectTemplates(
  templates: readonly PromptTemplate[],
  fields: Manifest['fields'],
  opts: { selection?: TemplateSelection; tasks?: readonly PromptTask[] } = {},
): { use: PromptTemplate[]; skipped: SkippedTemplate[] } {
  const selection = opts.selection ?? 'all';
  const use: PromptTemplate[] = [];
  const skipped: SkippedTemplate[] = [];
  for (const t of templates) {
    if (opts.tasks && !opts.tasks.includes(t.task)) continue;
    if (selection === 'seen' && !t.seen) continue;
    if (selection === 'unseen' && t.seen) continue;
    const lacking = templateNeeds(t).filter((x) => !fields[x.field]);
    if (lacking.length) skipped.push({ id: t.id, task: t.task, missing: lacking.map((x) => x.field), reason: `dataset has no ${lacking.map((x) => x.what).join(', no ')}` });
    else use.push(t);
  }
  return { use, skipped };
}

/** Values a template is rendered from. */
export type TemplateFields = Partial<Record<string, string | number>>;

/** Fill a template's placeholders; a placeholder without a value is an error, never left in a prompt. */
export function renderTemplate(t: Pick<PromptTemplate, 'id' | 'source'>, fields: TemplateFields): string {
  return t.source.replace(PLACEHOLDER_RE, (_m, name: string) => {
    const v = fields[name];
    if (v === undefined || v === null) throw new InputError(`template '${t.id}': no value for {${name}}`, { field: name });
    return String(v);
  });
}

/**
 * `sequential=2,review=0.5` → instances per unit of data per family
 * (`traditional` is P5's name for direct). Weights are finite and >= 0.
 */
export function parseTaskWeights(value: string | undefined, field = 'weights'): Partial<Record<PromptTask, number>> | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const out: Partial<Record<PromptTask, number>> = {};
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, w] = part.split('=');
    const task = k === 'traditional' ? 'direct' : k;
    if (!PROMPT_TASKS.includes(task as PromptTask)) throw new InputError(`unknown task '${k}' (tasks: ${PROMPT_TASKS.join(', ')})`, { field });
    const n = Number(w);
    if (w === undefined || w.trim() === '' || !Number.isFinite(n) || n < 0) throw new InputError(`'${part}' must be task=number with number >= 0`, { field });
    out[task as PromptTask] = n;
  }
  return out;
}

/** `sequential,review` → tasks (`traditional` is P5's name for direct), deduplicated; errors name `field`. */
export function parseTaskList(value: string | undefined, field = 'tasks'): PromptTask[] | undefined {
  if (value === undefined) return undefined;
  const out: PromptTask[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const t = raw === 'traditional' ? 'direct' : raw;
    if (!PROMPT_TASKS.includes(t as PromptTask)) throw new InputError(`unknown task '${raw}' (tasks: ${PROMPT_TASKS.join(', ')})`, { field });
    if (!out.includes(t as PromptTask)) out.push(t as PromptTask);
  }
  if (!out.length) throw new InputError('no task given', { field });
  return out;
}
