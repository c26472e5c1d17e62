import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { loadDataset } from '../data/dataset.js';
import { Progress } from '../util/progress.js';
import { evaluationInstances } from '../prompts/eval-instances.js';
import { trainingInstances } from '../prompts/training-instances.js';
import { DEFAULT_PROMPT_SEED, type InstanceStream } from '../prompts/stream.js';
import { writeInstancesJsonl } from '../prompts/export.js';
import { buildIdView, ITEM_INDEXINGS, parseItemIndexing, type IdView } from '../prompts/ids.js';
import { readIdView } from '../p5/train.js';
import type { Dataset } from '../data/dataset.js';
import {
  loadPromptCollection,
  parseTaskList,
  parseTaskWeights,
  PROMPT_TASKS,
  selectTemplates,
  TEMPLATE_SELECTIONS,
  type TemplateSelection,
} from '../prompts/templates.js';
import { logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';
import { MAX_HISTORY, NEGATIVES } from '../defaults.js';

interface ExportFlags extends CommonFlags {
  out: string;
  tasks?: string;
  split: string;
  seed?: string;
  epoch?: string;
  limit?: string;
  templates?: string;
  prompts: string[];
  weights?: string;
  negatives?: string;
  history?: string;
  ratingNoise: boolean;
  leakyRows?: boolean;
  itemIds?: string;
  idsFrom?: string;
  only?: string;
}

interface ListFlags extends CommonFlags {
  templates: string;
  prompts: string[];
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

function parseSelection(v: string | undefined, def: TemplateSelection): TemplateSelection {
  if (v === undefined) return def;
  if (!TEMPLATE_SELECTIONS.includes(v as TemplateSelection)) throw new InputError(`--templates must be one of ${TEMPLATE_SELECTIONS.join(', ')}, got '${v}'`);
  return v as TemplateSelection;
}

/** The id view pairs are written with: a model's own (so a GPU run's pairs match its tokenizer), a fresh one, or P5's plain ids. */
function exportIds(ds: Dataset, f: ExportFlags): IdView | undefined {
  if (f.idsFrom && f.itemIds) throw new InputError('give --item-ids or --ids-from, not both', { field: 'item-ids' });
  if (f.idsFrom) return readIdView(f.idsFrom, ds);
  return f.itemIds ? buildIdView(ds, parseItemIndexing(f.itemIds)) : undefined;
}

function summary(s: InstanceStream): { templates: string[]; skipped: { id: string; task: string; reason: string }[] } {
  return { templates: s.templates.map((t) => t.id), skipped: s.skipped.map(({ id, task, reason }) => ({ id, task, reason })) };
}

/** `p5rec prompts ...`: list P5's templates, export instances as JSONL. */
export function registerPromptsCommands(program: Command): void {
  const prompts = program.command('prompts').description("P5's prompt collection: list templates, export prompt/answer pairs");

  prompts.command('export').description('write prompt → answer pairs (JSONL) for training or evaluation, streamed')
    .argument('<dir>', 'dataset folder')
    .requiredOption('--out <file>', 'JSONL file to write ({source, target, task, template, user, item} per line)')
    .option('--tasks <list>', `comma-separated families: ${PROMPT_TASKS.join(',')} (default: all)`)
    .option('--split <split>', 'train (one epoch of training instances) | valid | test (evaluation instances)', 'train')
    .option('--seed <n>', `seed for shuffles, templates and negatives (default ${DEFAULT_PROMPT_SEED})`)
    .option('--epoch <n>', 'training epoch: another shuffle and other samples (default 0)')
    .option('--limit <n>', 'stop after n pairs')
    .option('--templates <which>', 'seen | unseen | all (default: seen for train, all for valid/test)')
    .option('--prompts <file>', 'extra template collection JSON (repeatable; same ids replace P5\'s)', collect, [])
    .option('--weights <list>', 'instances per unit of data per family, e.g. sequential=2,review=0.5 (default 1)')
    .option('--negatives <n>', `sampled negatives in training candidate lists (default ${NEGATIVES})`)
    .option('--history <n>', 'most recent items shown in a purchase history (default 20)')
    .option('--no-rating-noise', "no P5 Gaussian noise on training star targets")
    .option('--leaky-rows', "train rating/explanation/review rows on the whole random-split train part, as P5 (names held-out next items)")
    .option('--item-ids <indexing>', `how items are written: ${ITEM_INDEXINGS.join(' | ')} (default plain; the id tokens must be in the model's tokenizer)`)
    .option('--ids-from <model>', 'write ids exactly as this P5 model folder does (its ids.json), e.g. the base a GPU run starts from')
    .option('--only <ids>', 'train split: only these template ids, e.g. 2-1,2-2,2-3 (as `p5rec train --train-prompts`)')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((dir: string, f: ExportFlags) => runCommand(f, async () => {
      const t0 = Date.now();
      const log = logger(f);
      if (!['train', 'valid', 'test'].includes(f.split)) throw new InputError(`--split must be train, valid or test, got '${f.split}'`);
      const split = f.split as 'train' | 'valid' | 'test';
      const seed = parseIntFlag('seed', f.seed, DEFAULT_PROMPT_SEED, 0);
      const epoch = parseIntFlag('epoch', f.epoch, 0, 0);
      const limit = f.limit === undefined ? undefined : parseIntFlag('limit', f.limit, 0, 1);
      const tasks = parseTaskList(f.tasks);
      const selection = parseSelection(f.templates, split === 'train' ? 'seen' : 'all');
      const weights = parseTaskWeights(f.weights);
      const negatives = parseIntFlag('negatives', f.negatives, NEGATIVES, 0);
      const maxHistory = parseIntFlag('history', f.history, MAX_HISTORY, 1);
      const collection = loadPromptCollection(f.prompts);
      const ds = await loadDataset(dir);
      const ids = exportIds(ds, f);
      const only = f.only?.split(',').map((x) => x.trim()).filter(Boolean);
      if (only && split !== 'train') throw new InputError('--only selects training templates; for valid/test use --templates and --tasks', { field: 'only' });
      for (const id of only ?? []) if (!collection.templates.some((t) => t.id === id)) throw new InputError(`--only: unknown template '${id}'`, { field: 'only' });
      const stream = split === 'train'
        ? trainingInstances(ds, collection, { seed, epoch, tasks, templates: selection, weights, negatives, maxHistory, ratingNoise: f.ratingNoise, leakFree: !f.leakyRows, ids, only })
        : evaluationInstances(ds, collection, split, { seed, tasks, templates: selection, maxHistory, ids });
      for (const s of stream.skipped) log(`skipping template ${s.id} (${s.task}): ${s.reason}`);
      if (stream.total === 0) throw new InputError(`no instances: none of the selected templates (${selection}${tasks ? `, tasks ${tasks.join(',')}` : ''}) can be filled from this dataset`, { file: dir });
      const planned = Math.min(stream.total, limit ?? Infinity);
      const progress = new Progress({ label: `prompts ${split}`, total: planned, unit: 'pairs', quiet: f.quiet });
      const res = await writeInstancesJsonl(stream, f.out, { limit, onProgress: (n) => progress.set(n) });
      progress.finish();
      return {
        out: res.out,
        dataset: ds.manifest.name,
        split,
        seed,
        ...(split === 'train' ? { epoch } : {}),
        templateSelection: selection,
        itemIds: ids?.indexing ?? 'plain',
        instances: res.written,
        total: stream.total,
        bytes: res.bytes,
        perTask: Object.fromEntries(PROMPT_TASKS.filter((t) => t in res.perTask).map((t) => [t, res.perTask[t] as number])),
        perTemplate: Object.fromEntries(collection.templates.filter((t) => t.id in res.perTemplate).map((t) => [t.id, res.perTemplate[t.id]])),
        ...summary(stream),
        ...(collection.replaced.length ? { replaced: collection.replaced } : {}),
        seconds: (Date.now() - t0) / 1000,
      };
    }, (r) => [
      `${r.out}: ${r.instances} pairs (${r.split}${r.instances < r.total ? `, first ${r.instances} of ${r.total}` : ''}) in ${r.seconds.toFixed(2)}s`,
      `per task: ${Object.entries(r.perTask).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `templates: ${r.templates.join(' ')}`,
      ...(r.skipped.length ? [`skipped: ${r.skipped.map((s) => `${s.id} (${s.reason})`).join('; ')}`] : []),
    ].join('\n')));

  prompts.command('list').description('list the templates; with a dataset, which it can feed and why others are skipped')
    .argument('[dir]', 'dataset folder')
    .option('--templates <which>', 'seen | unseen | all', 'all')
    .option('--prompts <file>', 'extra template collection JSON (repeatable)', collect, [])
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no notes on stderr')
    .action((dir: string | undefined, f: ListFlags) => runCommand(f, async () => {
      const collection = loadPromptCollection(f.prompts);
      const selection = parseSelection(f.templates, 'all');
      const chosen = collection.templates.filter((t) => selection === 'all' || (selection === 'seen') === t.seen);
      let skipped: { id: string; task: string; reason: string }[] = [];
      if (dir) {
        const ds = await loadDataset(dir);
        skipped = selectTemplates(chosen, ds.manifest.fields).skipped.map(({ id, task, reason }) => ({ id, task, reason }));
      }
      const off = new Map(skipped.map((s) => [s.id, s.reason]));
      return {
        files: collection.files,
        templates: chosen.map((t) => ({ id: t.id, task: t.task, target: t.target, seen: t.seen, source: t.source, ...(dir ? { usable: !off.has(t.id) } : {}) })),
        ...(dir ? { skipped } : {}),
      };
    }, (r) => [
      ...r.templates.map((t) => `${t.id.padEnd(5)} ${t.task.padEnd(11)} ${t.target.padEnd(22)} ${t.seen ? 'seen  ' : 'unseen'} ${'usable' in t ? (t.usable ? 'ok     ' : 'skipped') : ''} ${t.source.replace(/\n/g, '\\n')}`),
      ...(r.skipped ?? []).map((s) => `skipped ${s.id}: ${s.reason}`),
    ].join('\n')));
}
