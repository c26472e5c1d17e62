#!/usr/bin/env node
/**
 * P5 on Amazon Beauty, leak-free (random item numbers), next to popularity
 * and the published leak-free P5-family rows. Not run in CI.
 *
 *   npm run bench:p5-beauty -- [--config JSON|tiny|small] [--item-ids independent|collaborative|cid+iid|plain]
 *                              [--item-init cooccurrence|cooccurrence+popularity|random] [--item-init-dims K] [--item-init-window 3] [--train-prompts 2-1,2-2,2-3] [--tasks sequential]
 *                              [--epochs 8] [--steps 10000] [--lr 2e-3] [--embedding-lr-scale 0.05] [--dropout 0.1]
 *                              [--adam-eps 1e-6] [--validate-every 1000] [--validate-users 1000]
 *                              [--workdir DIR] [--users N] [--direct-users N] [--beams N] [--json]
 *                              [--model DIR]   (evaluate a model trained elsewhere; skips training)
 *
 * The default recipe (docs/p5.md, "Beauty"): one token per item (independent
 * ids, in their own namespace), the three all-item next-item prompts 2-1..2-3
 * (P5's other sequential prompts need reviewer names, which this dataset
 * lacks, or are yes/no and candidate-copy prompts), item rows that start from
 * the items' co-occurrence in the training prefixes (--item-init) and train
 * at 1/20 of the base rate (the T5 learns to read them instead of
 * overwriting them), a d-128 T5 with 2+2 layers, 10,000 steps of ~120
 * prompts, validation on 1,000 validation users every 1,000 steps keeping the
 * best model: about 45 minutes on 2 CPU cores.
 *
 * Stages (each skipped when its output exists, so an interrupted run resumes;
 * training itself resumes from its checkpoint): import ../shared Beauty with
 * --item-index random → `p5rec train` → eval on all test users: sequential
 * (2-1, all items) and direct (1 of 100: the same history prompt, decoding
 * constrained to the user's 100 candidates) → popularity on the same users →
 * one table, each metric ± its standard error over users. Wall time and peak
 * RSS per stage (from /usr/bin/time when available).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, BIN, importBeautyArgs, opt, ROOT } from './beauty-common.mjs';
const JSON_OUT = args.includes('--json');
const WORK = resolve(opt('--workdir', join(ROOT, 'runs/p5-beauty')));
const CONFIG = opt('--config', '{"preset":"tiny","d_model":128,"d_kv":32,"d_ff":512}');
const USERS = opt('--users', undefined);
// Direct prompts rank 100 candidates per user; a yes/no prompt costs 100 forward passes each.
const DIRECT_USERS = opt('--direct-users', USERS);
const BEAMS = opt('--beams', '20');
const SEQ_PROMPT = opt('--seq-prompt', '2-1');
const DIRECT_PROMPT = opt('--direct-prompt', '2-1');
const TRAIN = [
  '--config', CONFIG,
  '--tasks', opt('--tasks', 'sequential'),
  ...(opt('--train-prompts', '2-1,2-2,2-3') === 'all' ? [] : ['--train-prompts', opt('--train-prompts', '2-1,2-2,2-3')]),
  '--item-ids', opt('--item-ids', 'independent'),
  '--item-init', opt('--item-init', 'cooccurrence'),
  ...(opt('--item-init-dims', undefined) ? ['--item-init-dims', opt('--item-init-dims')] : []),
  ...(opt('--item-init-window', undefined) ? ['--item-init-window', opt('--item-init-window')] : []),
  '--epochs', opt('--epochs', '8'),
  '--steps', opt('--steps', '10000'),
  '--lr', opt('--lr', '2e-3'),
  '--embedding-lr-scale', opt('--embedding-lr-scale', '0.05'),
  '--dropout', opt('--dropout', '0.1'),
  '--adam-eps', opt('--adam-eps', '1e-6'),
  '--negatives', opt('--negatives', '19'),
  '--batch-tokens', '8192', '--max-batch', '128',
  '--validate-every', opt('--validate-every', '1000'), '--validate-users', opt('--validate-users', '1000'),
  '--checkpoint-every', '1000',
];
const log = (m) => process.stderr.write(`[bench:p5-beauty] ${m}\n`);

function run(name, cliArgs) {
  const t0 = Date.now();
  log(`${name}: p5rec ${cliArgs.join(' ')}`);
  const hasTime = existsSync('/usr/bin/time');
  const cmd = hasTime ? '/usr/bin/time' : process.execPath;
  const full = hasTime ? ['-f', 'MAXRSS_KB=%M', process.execPath, BIN, ...cliArgs, '--json'] : [BIN, ...cliArgs, '--json'];
  const r = spawnSync(cmd, full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 });
  const rss = /MAXRSS_KB=(\d+)/.exec(r.stderr ?? '');
  const lines = (r.stdout ?? '').trim().split('\n');
  let json = null;
  try {
    json = JSON.parse(lines[lines.length - 1]);
  } catch {
    /* reported below */
  }
  if (r.status !== 0 || !json?.ok) {
    process.stderr.write(r.stderr ?? '');
    throw new Error(`${name} failed (exit ${r.status})`);
  }
  const seconds = (Date.now() - t0) / 1000;
  log(`${name}: ${seconds.toFixed(0)}s${rss ? `, peak RSS ${Math.round(Number(rss[1]) / 1024)} MB` : ''}`);
  return { json, seconds, peakRssMB: rss ? Math.round(Number(rss[1]) / 1024) : json.peakRssMB ?? null };
}

mkdirSync(WORK, { recursive: true });
const ds = join(WORK, 'dataset');
const model = opt('--model', undefined) ? resolve(opt('--model')) : join(WORK, 'p5');
const stages = [];
if (!existsSync(join(ds, 'manifest.json'))) {
  stages.push({ stage: 'import', ...run('import', [...importBeautyArgs(ds), '--quiet']) });
}
if (opt('--model', undefined) && !existsSync(join(model, 'model.json'))) throw new Error(`--model ${model}: no model.json`);
if (!existsSync(join(model, 'model.json'))) {
  const resume = existsSync(join(model, 'train', 'checkpoint'));
  stages.push({ stage: 'train', ...run('train', ['train', ds, '--out', model, ...TRAIN, ...(resume ? ['--resume'] : [])]) });
}
const evals = [];
const pop = join(WORK, 'pop');
if (!existsSync(join(pop, 'model.json'))) stages.push({ stage: 'fit pop', ...run('fit pop', ['fit', ds, '--model', 'pop', '--split', 'sequential', '--out', pop]) });
for (const [who, dir, task, prompt] of [['p5', model, 'sequential', SEQ_PROMPT], ['p5', model, 'direct', DIRECT_PROMPT], ['pop', pop, 'sequential'], ['pop', pop, 'direct']]) {
  const users = task === 'direct' ? DIRECT_USERS : USERS;
  const file = join(dir, 'evals', `${task}-test${prompt ? `-p${prompt}` : ''}${users ? `-u${users}` : ''}.json`);
  if (existsSync(file)) {
    evals.push({ who, ...JSON.parse(readFileSync(file, 'utf8')) });
    continue;
  }
  const r = run(`eval ${who} ${task}${prompt ? ` ${prompt}` : ''}`, ['eval', ds, '--model', dir, '--task', task, ...(prompt ? ['--prompt', prompt, '--beams', BEAMS] : []), ...(users ? ['--users', users] : []), '--quiet']);
  stages.push({ stage: `eval ${who} ${task}`, seconds: r.seconds, peakRssMB: r.peakRssMB });
  evals.push({ who, ...r.json });
}

// Published rows (test split). P5-S: Geng et al. 2022, Table 3 (sequential item ids, which leak the answer).
// OpenP5-R: Xu et al. 2024 (random ids); TIGER: Rajput et al. 2023 (semantic ids). HR@5, NDCG@5, HR@10, NDCG@10.
const published = [
  { model: 'P5-S (paper, sequential ids: leaky)', 'HR@5': 0.0490, 'NDCG@5': 0.0358, 'HR@10': 0.0646, 'NDCG@10': 0.0409 },
  { model: 'OpenP5-R (random ids)', 'HR@5': 0.0318, 'NDCG@5': 0.0226, 'HR@10': 0.0464, 'NDCG@10': 0.0273 },
  { model: 'TIGER (semantic ids)', 'HR@5': 0.0454, 'NDCG@5': 0.0321, 'HR@10': 0.0648, 'NDCG@10': 0.0384 },
  // Hua et al. 2023 (How to Index Item IDs for Recommendation Foundation Models), Beauty, t5-small.
  { model: 'LLM-RecSys-ID IID', 'HR@5': 0.0394, 'NDCG@5': 0.0268, 'HR@10': 0.0615, 'NDCG@10': 0.0341 },
  { model: 'LLM-RecSys-ID CID', 'HR@5': 0.0489, 'NDCG@5': 0.0318, 'HR@10': 0.0680, 'NDCG@10': 0.0357 },
  { model: 'LLM-RecSys-ID CID+IID', 'HR@5': 0.0512, 'NDCG@5': 0.0356, 'HR@10': 0.0732, 'NDCG@10': 0.0427 },
];
const card = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8'));
const rows = evals.map((e) => ({ model: e.who === 'pop' ? 'popularity' : `p5rec ${e.label ?? 'P5'}`, task: e.task, count: e.count, ...e.metrics, stderr: e.stderr ?? {}, seconds: e.seconds }));
const result = { dataset: 'amazon-beauty (random ids)', config: card.config.t5, training: card.config.training, p5: { itemIds: card.config.itemIds, trainedTemplates: card.config.trainedTemplates }, train: card.fit, stages, rows, published };
if (JSON_OUT) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  const cols = ['HR@5', 'NDCG@5', 'HR@10', 'NDCG@10'];
  const f = (r, c) => (typeof r[c] === 'number' ? `${r[c].toFixed(4)}${Number.isFinite(r.stderr?.[c]) ? ` ± ${r.stderr[c].toFixed(4)}` : ''}` : '—');
  const where = card.fit.trainer ? `${card.fit.trainer} on ${card.fit.device}, ${card.fit.epochs} epochs, peak GPU memory ${card.fit.peakGpuMB} MB` : `peak RSS ${card.fit.peakRssMB} MB`;
  console.log(`P5 on Beauty — ${card.fit.steps} steps, ${Math.round(card.fit.seconds)} s training (${where}), ${card.fit.tokensPerSec} tok/s, ${card.fit.examplesPerSec ?? '?'} examples/s${card.fit.validation?.best ? `, best validation at step ${card.fit.validation.best.step}` : ''}`);
  console.log(`| model | task (users) | ${cols.join(' | ')} |\n|---|---|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.model} | ${r.task} (${r.count}) | ${cols.map((c) => f(r, c)).join(' | ')} |`);
  for (const p of published) console.log(`| ${p.model} | sequential | ${cols.map((c) => f(p, c)).join(' | ')} |`);
  console.log(`stages: ${stages.map((s) => `${s.stage} ${Math.round(s.seconds)}s${s.peakRssMB ? ` (${s.peakRssMB} MB)` : ''}`).join(', ')}`);
}
