/**
 * P5 evaluation instances for the valid or test split as a stream, template
 * by template, with the dataset's stored negatives.
 */
import type { Dataset } from '../data/dataset.js';
import { TEST, VALID } from '../data/splits.js';
import { InputError } from '../errors.js';
import { hashString } from '../util/rng.js';
import { PROMPT_TASKS, selectTemplates, type PromptCollection, type PromptTask, type PromptTemplate } from './templates.js';
import { plainIds } from './ids.js';
import { keyedRng, mix32 } from './permutation.js';
import { promptData } from './prompt-data.js';
import { ROW_FAMILIES, rowChecks, rowInstance, userInstance, type UserContext } from './fill-instance.js';
import { checkOptions, DEFAULT_PROMPT_SEED, type EvalSplit, type InstanceOptions, type InstanceStream, type PromptInstance } from './stream.js';
import { MAX_HISTORY } from '../defaults.js';

/**
 * Instances for the valid or test split, template by template (every usable
 * template of the selection asks every eligible user / row):
 * - sequential: history = train (+ valid for test), last `maxHistory`; target
 *   = the split's item; candidate prompts show the stored negatives + target;
 *   yes/no prompts ask about the target (yes) and each stored negative (no),
 *   so ranking by P(yes) gives the 1-of-100 protocol;
 * - direct: the same target, candidates and yes/no expansion, no history;
 * - rating / explanation / review / zeroshot: the random split's rows.
 */
export function evaluationInstances(ds: Dataset, collection: PromptCollection | readonly PromptTemplate[], split: EvalSplit, opts: InstanceOptions = {}): InstanceStream {
  checkOptions(opts);
  if (split !== 'valid' && split !== 'test') throw new InputError(`evaluation split must be 'valid' or 'test', got '${String(split)}'`, { field: 'split' });
  const code = split === 'valid' ? VALID : TEST;
  const seed = opts.seed ?? DEFAULT_PROMPT_SEED;
  const maxHistory = opts.maxHistory ?? MAX_HISTORY;
  const sep = opts.historySeparator ?? 'random';
  const ids = opts.ids ?? plainIds(ds);
  const templates = 'templates' in collection ? collection.templates : collection;
  const tasks = opts.tasks ?? PROMPT_TASKS;
  const { use, skipped } = selectTemplates(templates, ds.manifest.fields, { selection: opts.templates ?? 'all', tasks });
  const pd = promptData(ds);
  const x = ds.interactions;
  const base = mix32((seed ^ 0x3c6ef372) >>> 0);

  // Users with an item in the split, and the row holding it.
  const evalRow: number[] = [];
  const evalUsers: number[] = [];
  for (let u = 0; u < ds.numUsers; u++) {
    const s = ds.userStart[u];
    for (let k = s; k < s + ds.userLength[u]; k++) {
      if (x.seqSplit[k] === code) {
        evalUsers.push(u);
        evalRow.push(k);
        break;
      }
    }
  }
  const splitRows = ds.ratingRows(code);

  interface Plan {
    t: PromptTemplate;
    count: number;
    run: () => Generator<PromptInstance>;
  }
  const plans: Plan[] = [];
  for (const t of use) {
    const tag = hashString(t.id);
    if (t.task === 'sequential' || t.task === 'direct') {
      const seqTask = t.task === 'sequential';
      const yesNo = t.target === 'yes_no';
      let count = 0;
      for (const u of evalUsers) count += yesNo ? 1 + ds.negatives[u].length : 1;
      plans.push({
        t,
        count,
        run: function* () {
          for (let i = 0; i < evalUsers.length; i++) {
            const u = evalUsers[i];
            const k = evalRow[i];
            const c: UserContext = { u, target: x.item[k], history: seqTask ? ds.historyBefore(u, code) : undefined };
            const negs = Array.from(ds.negatives[u]);
            if (yesNo) {
              const asks = [c.target, ...negs];
              for (let a = 0; a < asks.length; a++) {
                yield userInstance(pd, t, c, keyedRng(base, tag, u, a), { separator: sep, maxHistory, ids, asked: asks[a] });
              }
            } else {
              // Candidate order depends on the user only, so every template shows the same list.
              yield userInstance(pd, t, c, keyedRng(base, tag, u), {
                separator: sep, maxHistory, ids, negatives: () => negs, candidateRng: keyedRng(base, hashString('candidates'), u),
              });
            }
          }
        },
      });
    } else if (ROW_FAMILIES.includes(t.task)) {
      const checks = rowChecks(t, ds);
      const rows: number[] = [];
      for (const k of splitRows) if (checks.every((c) => c(k))) rows.push(k);
      plans.push({
        t,
        count: rows.length,
        run: function* () {
          for (const k of rows) yield rowInstance(pd, t, k, keyedRng(base, tag, k), false, ids);
        },
      });
    }
  }

  const perTask: Partial<Record<PromptTask, number>> = {};
  const perTemplate: Record<string, number> = {};
  for (const p of plans) {
    perTask[p.t.task] = (perTask[p.t.task] ?? 0) + p.count;
    perTemplate[p.t.id] = p.count;
  }
  const total = plans.reduce((a, p) => a + p.count, 0);
  function* generate(): Generator<PromptInstance> {
    for (const p of plans) yield* p.run();
  }
  return { split, total, perTask, perTemplate, templates: use, skipped, [Symbol.iterator]: generate };
}
