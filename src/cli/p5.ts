/**
 * P5 commands: `train` (multitask prompts → T5), `predict` (one user, one
 * task, through the recommender), `generate` (any prompt text).
 */
import { ITEM_INITS } from '../p5/item-init.js';
import { ITEM_INDEXINGS, parseItemIndexing } from '../prompts/ids.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadDataset } from '../data/dataset.js';
import { TEST } from '../data/splits.js';
import { initEngine, type BackendName } from '../engine/backend.js';
import { InputError } from '../errors.js';
import { loadT5 } from '../models/t5/checkpoint.js';
import { beamSearch, encodePrompts } from '../p5/decode.js';
import type { P5Recommender } from '../p5/recommender.js';
import { fitRatingCalibration } from '../p5/calibrate.js';
import { trainP5, type P5TrainOptions } from '../p5/train.js';
import { stopOnSignals } from '../train/stop.js';
import { writeFileAtomic } from '../util/atomic.js';
import { loadPromptCollection, parseTaskList, parseTaskWeights, PROMPT_TASKS } from '../prompts/templates.js';
import { loadModel, readModelCard } from '../recommend/store.js';
import { getFactory } from '../recommend/registry.js';
import { boundedInt, logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';
import { MAX_LENGTH } from '../tokenizer/tokenizer.js';
import { P5_DEFAULTS, P5_VALIDATE_DEFAULTS } from '../p5/config.js';
import { MAX_BEAMS } from '../eval/run-file.js';

// The train command's defaults are the recipe's (src/p5/config.ts), never repeated here.
const { model: DM, optimizer: DO, data: DD, loop: DL } = P5_DEFAULTS;

export { MAX_BEAMS };

interface TrainFlags extends CommonFlags {
  config: string;
  tasks?: string;
  out: string;
  init?: string;
  epochs?: string;
  steps?: string;
  batchTokens?: string;
  maxBatch?: string;
  batchesPerStep?: string;
  negatives?: string;
  history?: string;
  weights?: string;
  lr?: string;
  dropout?: string;
  vocab?: string;
  seed?: string;
  digitGroup?: string;
  itemPieces?: boolean;
  userPieces?: boolean;
  itemIds?: string;
  trainPrompts?: string;
  validateEvery?: string;
  validateUsers?: string;
  patience?: string;
  itemInit?: string;
  itemInitDims?: string;
  itemInitWindow?: string;
  calibrateRatings?: boolean;
  embeddingLrScale?: string;
  itemLrScale?: string;
  emaDecay?: string;
  adamEps?: string;
  ratingNoise: boolean;
  workers?: string;
  checkpointEvery?: string;
  backend?: string;
  maxSource?: string;
  leakyRows?: boolean;
  resume?: boolean;
  force?: boolean;
  prompts: string[];
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

function parseNumber(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InputError(`--${name} must be a number >= 0, got '${v}'`, { field: name });
  return n;
}

function positiveNumber(name: string, v: string | undefined, def: number): number {
  const n = parseNumber(name, v, def);
  if (n <= 0) throw new InputError(`--${name} must be a number > 0, got '${v}'`, { field: name });
  return n;
}

function parseConfig(v: string): string | Record<string, unknown> {
  // `tiny`, `small`, `base`, a config.json path, or inline JSON fields over a preset.
  if (v.trim().startsWith('{')) {
    try {
      return JSON.parse(v);
    } catch (e) {
      throw new InputError(`--config: inline JSON does not parse (${(e as Error).message})`, { field: 'config' });
    }
  }
  return v;
}

export function registerP5Commands(program: Command): void {
  program.command('train').description('train P5: multitask prompts on a T5 (tokenizer, corpus, AdamW, checkpoints, resume)')
    .argument('<dataset>', 'dataset folder')
    .requiredOption('--out <dir>', 'model folder to write (a HF T5 folder plus model.json)')
    .option('--config <c>', 'tiny | small | base | config.json | inline JSON fields, e.g. \'{"preset":"tiny","d_model":128}\'', String(DM.config))
    .option('--tasks <list>', `comma list of ${PROMPT_TASKS.join(',')} (default: all the dataset can feed)`)
    .option('--init <dir>', 'start from a T5 folder (e.g. HF t5-small, with its tokenizer.json)')
    .option('--epochs <n>', 'data epochs (each with fresh templates and negatives)', String(DL.epochs))
    .option('--steps <n>', 'stop after n optimizer steps (default: all the epochs)')
    .option('--batch-tokens <n>', 'padded source tokens per batch (length-bucketed)', String(DD.tokensPerBatch))
    .option('--max-batch <n>', 'examples per batch at most', String(DD.maxBatch))
    .option('--batches-per-step <n>', 'batches accumulated per optimizer step', String(DL.batchesPerStep))
    .option('--negatives <n>', 'sampled negatives in training candidate lists (P5: 99)', String(DD.negatives))
    .option('--history <n>', 'most recent items in a purchase history', String(DD.maxHistory))
    .option('--max-source <n>', 'clip prompts to n tokens', String(DD.maxSourceLength))
    .option('--weights <list>', 'instances per unit of data per family, e.g. sequential=2,review=0.5')
    .option('--lr <x>', 'peak learning rate (AdamW, P5: 1e-3)', String(DO.lr))
    .option('--embedding-lr-scale <x>', 'learning-rate multiplier for the token embeddings (rare id rows learn slowly at the base rate)', String(DO.embeddingLrScale))
    .option('--ema-decay <d>', 'end with an exponential moving average of the weights, e.g. 0.998 (about the last 500 steps); validation scores the average')
    .option('--item-lr-scale <x>', "learning-rate multiplier for the items' own token rows, in place of --embedding-lr-scale there (independent or cid+iid ids; e.g. small, to keep co-occurrence-initialised rows near their start)")
    .option('--adam-eps <x>', "AdamW epsilon (P5: 1e-6; the quickstart: 1e-8, PyTorch's default)", String(DO.adamEps))
    .option('--dropout <x>', 'dropout rate (default: the config\'s)')
    .option('--vocab <n>', 'tokenizer size (default: what the trainer keeps, at most 8003)')
    .option('--digit-group <n>', 'tokenizer: cut digit runs into groups of n (2 = like T5); 0 = let the trainer keep whole ids', String(DM.digitGroup))
    .option('--no-rating-noise', "integer star answers instead of P5's noisy ones (rating predictions then default to the expected star)")
    .option('--item-pieces', 'tokenizer: every item id is one vocabulary piece (one token per item; P5 splits ids into pieces)')
    .option('--no-calibrate-ratings', 'integer-star models: skip fitting star = a + b·expected on the validation ratings')
    .option('--user-pieces', 'tokenizer: every user id is one vocabulary piece too (a row to hold the user\'s taste)')
    .option('--item-ids <kind>', `how ids are written: ${ITEM_INDEXINGS.join(' | ')} (independent: one token per item; collaborative: co-occurrence cluster tokens; cid+iid: both)`, DM.itemIds)
    .option('--train-prompts <ids>', 'train only these templates, e.g. 2-1,2-2,2-3 (default: every usable one of the tasks)')
    .option('--validate-every <n>', 'validate (sequential HR@10 / NDCG@10 on validation users) every n steps; keeps the best model')
    .option('--validate-users <n>', 'validation users (the first n)', String(P5_VALIDATE_DEFAULTS.users))
    .option('--patience <n>', 'stop after n validations without a new best (0 = never)', String(P5_VALIDATE_DEFAULTS.patience))
    .option('--item-init <how>', "item token rows start as: random (T5's init) | cooccurrence (vectors of the items' co-occurrence in the training prefixes) | cooccurrence+popularity (the same, the last coordinate carrying the items' log popularity)", DM.itemInit)
    .option('--item-init-dims <k>', 'co-occurrence coordinates in each item row (their rank; the rest start at 0); default: all d_model. Fewer smooth more: a small catalogue wants few (docs/p5.md)')
    .option('--item-init-window <n>', `count items at most n positions apart as co-occurring (default ${DM.itemInitWindow}; docs/p5.md)`)
    .option('--seed <n>', 'seed', String(DL.seed))
    .option('--workers <n>', 'data-parallel worker threads', String(DL.workers))
    .option('--checkpoint-every <n>', 'steps between checkpoints', String(DL.checkpointEvery))
    .option('--backend <b>', 'wasm | cpu | tensorflow | cuda', 'wasm')
    .option('--prompts <file>', 'extra template collection JSON (repeatable)', collect, [])
    .option('--leaky-rows', 'train rating/explanation/review on the whole random-split train part, as P5 (names held-out next items)')
    .option('--resume', 'continue the interrupted run in --out (or a partial --force run beside it)')
    .option('--force', 'replace the model in --out, or start an interrupted run over (the new model is built beside the old one and swapped in when complete)')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((dir: string, f: TrainFlags) => runCommand(f, async () => {
      // Every flag is parsed before anything is loaded or written: a typo must cost nothing.
      const options = trainOptions(f);
      await initEngine({ backend: f.backend as BackendName });
      const ds = await loadDataset(dir);
      const collection = loadPromptCollection(f.prompts);
      // SIGINT/SIGTERM stop every stage (tokenizer, corpus, steps); the run ends with exit 130/143.
      const stop = stopOnSignals('stopping (the last completed step is kept; run again with --resume to continue)');
      try {
        return await trainP5(ds, collection, { ...options, signal: stop.signal });
      } finally {
        stop.dispose();
      }
    }, (r) => `P5 trained: ${r.steps} steps, ${r.examples} prompts, final loss ${r.finalLoss.toFixed(3)}, ${Math.round(r.tokensPerSec)} tok/s (${Math.round(r.examplesPerSec)} examples/s), ${r.seconds.toFixed(0)}s, peak RSS ${r.peakRssMB} MB${r.validation?.best ? `, best validation at step ${r.validation.best.step}` : ''} → ${r.out}`));

  program.command('calibrate').description("fit a P5 model's rating calibration (star = a + b·expected star) on a dataset's validation ratings")
    .argument('<model>', 'P5 model folder (updates its p5.json)')
    .requiredOption('--dataset <dir>', 'dataset folder the model was trained on')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((modelDir: string, f: CommonFlags & { dataset: string }) => runCommand(f, async () => {
      const card = readModelCard(modelDir);
      if (card.kind !== 'p5') throw new InputError(`calibrate needs a P5 model; '${modelDir}' is ${card.kind}`, { file: modelDir });
      await initEngine();
      const ds = await loadDataset(f.dataset);
      const p5 = loadModel(modelDir, ds).rec as P5Recommender;
      const ids = p5.collection.templates.filter((t) => t.task === 'rating').map((t) => t.id);
      const cal = await fitRatingCalibration(p5, ds, ids);
      if (!Object.keys(cal).length) throw new InputError('the dataset has no validation ratings to calibrate on', { file: f.dataset });
      const path = join(modelDir, 'p5.json');
      const j = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
      j.settings = { ...(j.settings ?? {}), ratingCalibration: cal, ratingMode: 'calibrated' };
      writeFileAtomic(path, `${JSON.stringify(j, null, 2)}\n`);
      return { model: modelDir, ratingCalibration: cal };
    }, (r) => Object.entries(r.ratingCalibration).map(([id, c]) => `${id}: star = ${c.a.toFixed(3)} + ${c.b.toFixed(3)} × expected (${c.n} validation ratings)`).join('\n')));

  program.command('predict').description('ask a trained model (P5 or a baseline) about one user')
    .argument('<model>', 'model folder')
    .requiredOption('--dataset <dir>', 'dataset folder the model was trained on')
    .requiredOption('--task <task>', 'sequential | direct | rating (any model that has the task) | explanation (P5)')
    .requiredOption('--user <id>', 'user (raw id, token, or index as #N)')
    .option('--item <id>', 'item (rating, explanation)')
    .option('--feature <word>', 'feature word for the explanation (P5)')
    .option('--prompt <id>', 'template id (P5, e.g. 2-13)')
    .option('--k <n>', 'top-k (at most the catalogue, or the candidates for direct)', '10')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((modelDir: string, f: CommonFlags & { dataset: string; task: string; user: string; item?: string; feature?: string; prompt?: string; k: string }) => runCommand(f, async () => {
      const tasks = ['sequential', 'direct', 'rating', 'explanation'];
      if (!tasks.includes(f.task)) throw new InputError(`--task must be sequential, direct, rating or explanation, got '${f.task}'`, { field: 'task' });
      let k = parseIntFlag('k', f.k, 10, 1);
      const card = readModelCard(modelDir);
      const factory = getFactory(card.kind);
      const isP5 = Boolean(factory.prompted);
      if (!isP5 && (f.prompt || f.feature || f.task === 'explanation')) throw new InputError(`--prompt, --feature and the explanation task are for P5 models; '${modelDir}' is ${card.kind}`, { field: f.task === 'explanation' ? 'task' : f.prompt ? 'prompt' : 'feature' });
      if (factory.engine) await initEngine();
      const ds = await loadDataset(f.dataset);
      const { rec } = loadModel(modelDir, ds);
      const p5 = isP5 ? (rec as P5Recommender) : null;
      if (!p5 && !(rec.tasks as readonly string[]).includes(f.task)) throw new InputError(`a ${card.kind} model has no ${f.task} task (it has: ${rec.tasks.join(', ')})`, { field: 'task' });
      const u = resolveId(f.user, ds.users.rawId, ds.users.token, 'user');
      const history = ds.historyBefore(u, TEST); // as at test time: train + valid; the test item is the one to find
      if (f.task === 'sequential' || f.task === 'direct') {
        if (p5 && f.prompt) p5.usePrompt(f.task, f.prompt);
        const cands = f.task === 'direct' ? Int32Array.from(ds.negatives[u]) : undefined;
        // More than the list holds is asked for as "all of it", and said so.
        const size = cands ? cands.length : ds.numItems;
        const asked = k;
        if (k > size) {
          // A warning, not progress: shown under --quiet too, and kept in the JSON.
          process.stderr.write(`p5rec: warning: --k ${k} is more than the ${size} ${cands ? 'candidates' : 'items in the catalogue'}; returning all ${size}\n`);
          k = size;
        }
        const s = await rec.score(u, history, cands);
        const ids = cands ? Array.from(cands) : Array.from({ length: ds.numItems }, (_, j) => j);
        const ranked = ids.map((item, j) => ({ item, score: s[j] })).filter((x) => !Number.isNaN(x.score)).sort((a, b) => b.score - a.score).slice(0, k);
        const held = ds.sequenceSplit(u, TEST)[0];
        return { task: f.task, ...(p5 ? { prompt: p5.promptFor(f.task) } : { kind: card.kind }), user: ds.users.rawId[u], ...(asked > k ? { kCapped: { asked, returned: k } } : {}), heldOut: held === undefined ? null : ds.items.rawId[held], items: ranked.map((x) => ({ item: ds.items.rawId[x.item], token: ds.items.token[x.item], title: ds.items.title[x.item] ?? null, score: x.score })) };
      }
      if (!f.item) throw new InputError(`--task ${f.task} needs --item`, { field: 'item' });
      const i = resolveId(f.item, ds.items.rawId, ds.items.token, 'item');
      if (f.task === 'rating') {
        if (p5 && f.prompt) p5.usePrompt('rating', f.prompt);
        if (!rec.predictRating) throw new InputError(`a ${card.kind} model does not predict ratings`, { field: 'task' });
        return { task: f.task, ...(p5 ? { prompt: p5.promptFor('rating') } : { kind: card.kind }), user: ds.users.rawId[u], item: ds.items.rawId[i], rating: await rec.predictRating(u, i) };
      }
      const e = await p5!.explain(u, i, f.feature);
      return { task: f.task, user: ds.users.rawId[u], item: ds.items.rawId[i], explanation: e.text, prompt: e.prompt, template: e.template };
    }, (r) => JSON.stringify(r, null, 2)));

  program.command('generate').description('run a P5 / T5 model on any prompt text (beam search)')
    .argument('<model>', 'model folder (P5 or any T5 folder with tokenizer.json)')
    .requiredOption('--prompt <text>', 'the prompt (repeatable)', collect, [])
    .option('--beams <n>', 'beam size', '4')
    .option('--n <n>', 'outputs per prompt', '1')
    .option('--max-length <n>', 'maximum output tokens', '40')
    .option('--min-length <n>', 'minimum output tokens', '0')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((modelDir: string, f: CommonFlags & { prompt: string[]; beams: string; n: string; maxLength: string; minLength: string }) => runCommand(f, async () => {
      if (!f.prompt.length) throw new InputError('give at least one --prompt', { field: 'prompt' });
      boundedInt('beams', f.beams, 4, 1, MAX_BEAMS);
      await initEngine();
      const { model, tokenizer } = loadT5(modelDir, { tokenizer: true });
      if (!tokenizer) throw new InputError('the model folder has no tokenizer.json', { file: modelDir });
      const beams = boundedInt('beams', f.beams, 4, 1, MAX_BEAMS);
      const n = Math.min(beams, boundedInt('n', f.n, 1, 1, MAX_BEAMS));
      const hyps = beamSearch(model, await encodePrompts(tokenizer, f.prompt), {
        beams, returnBeams: n, maxLength: boundedInt('max-length', f.maxLength, 40, 1, MAX_LENGTH), minLength: boundedInt('min-length', f.minLength, 0, 0, MAX_LENGTH),
      });
      const outputs = await Promise.all(hyps.map(async (hs, j) => ({
        prompt: f.prompt[j],
        outputs: await Promise.all(hs.map(async (h) => ({ text: await tokenizer.decode(h.ids, { skipSpecialTokens: true }), logProb: h.logProb }))),
      })));
      model.dispose();
      return { model: modelDir, results: outputs };
    }, (r) => r.results.map((x) => x.outputs.map((o) => o.text).join('\n')).join('\n')));
}

/** The train command's flags as trainP5 options (every value checked here). */
function trainOptions(f: TrainFlags): P5TrainOptions {
  return {
    out: f.out,
    config: parseConfig(f.config) as never,
    init: f.init,
    tasks: parseTaskList(f.tasks),
    weights: parseTaskWeights(f.weights),
    epochs: parseIntFlag('epochs', f.epochs, DL.epochs, 1),
    steps: f.steps === undefined ? undefined : parseIntFlag('steps', f.steps, 1, 1),
    tokensPerBatch: parseIntFlag('batch-tokens', f.batchTokens, DD.tokensPerBatch, 16),
    maxBatch: parseIntFlag('max-batch', f.maxBatch, DD.maxBatch, 1),
    batchesPerStep: parseIntFlag('batches-per-step', f.batchesPerStep, DL.batchesPerStep, 1),
    negatives: parseIntFlag('negatives', f.negatives, DD.negatives, 0),
    maxHistory: parseIntFlag('history', f.history, DD.maxHistory, 1),
    maxSourceLength: parseIntFlag('max-source', f.maxSource, DD.maxSourceLength, 8),
    lr: parseNumber('lr', f.lr, DO.lr),
    embeddingLrScale: parseNumber('embedding-lr-scale', f.embeddingLrScale, DO.embeddingLrScale),
    ...(f.itemLrScale === undefined ? {} : { itemLrScale: parseNumber('item-lr-scale', f.itemLrScale, 1) }),
    ...(f.emaDecay === undefined ? {} : { emaDecay: parseNumber('ema-decay', f.emaDecay, 0.998) }),
    adamEps: positiveNumber('adam-eps', f.adamEps, DO.adamEps),
    dropout: f.dropout === undefined ? undefined : parseNumber('dropout', f.dropout, 0.1),
    vocabSize: f.vocab === undefined ? undefined : parseIntFlag('vocab', f.vocab, 8003, 16),
    digitGroup: parseIntFlag('digit-group', f.digitGroup, DM.digitGroup, 0),
    itemPieces: f.itemPieces,
    userPieces: f.userPieces,
    itemIds: parseItemIndexing(f.itemIds ?? DM.itemIds),
    itemInit: parseChoice('item-init', f.itemInit ?? DM.itemInit, ITEM_INITS),
    ...(f.itemInitDims === undefined ? {} : { itemInitDims: parseIntFlag('item-init-dims', f.itemInitDims, 64, 1) }),
    ...(f.itemInitWindow === undefined ? {} : { itemInitWindow: parseIntFlag('item-init-window', f.itemInitWindow, 3, 1) }),
    prompts: f.trainPrompts ? f.trainPrompts.split(',').map((x) => x.trim()).filter(Boolean) : undefined,
    validate: f.validateEvery === undefined ? undefined : {
      every: parseIntFlag('validate-every', f.validateEvery, 1000, 1),
      users: parseIntFlag('validate-users', f.validateUsers, P5_VALIDATE_DEFAULTS.users, 1),
      patience: parseIntFlag('patience', f.patience, P5_VALIDATE_DEFAULTS.patience, 0),
    },
    calibrateRatings: f.calibrateRatings,
    ratingNoise: f.ratingNoise,
    seed: parseIntFlag('seed', f.seed, DL.seed, 0),
    workers: parseIntFlag('workers', f.workers, DL.workers, 1),
    checkpointEvery: parseIntFlag('checkpoint-every', f.checkpointEvery, DL.checkpointEvery, 0),
    leakFree: !f.leakyRows,
    resume: f.resume,
    force: f.force,
    quiet: f.quiet,
    log: logger(f),
  };
}

/** A user/item given as raw id, prompt token, or `#index`. */
function resolveId(v: string, raw: readonly string[], token: readonly string[], what: string): number {
  if (/^#\d+$/.test(v)) {
    const n = Number(v.slice(1));
    if (n < raw.length) return n;
  }
  let j = raw.indexOf(v);
  if (j < 0) j = token.indexOf(v);
  if (j < 0) throw new InputError(`unknown ${what} '${v}'`, { field: what });
  return j;
}

function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new InputError(`--${flag} must be one of ${choices.join(', ')}, got '${value}'`, { field: flag });
  return value as T;
}
