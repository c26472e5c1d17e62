#!/usr/bin/env node
/**
 * P5 on Amazon Beauty (sequential + direct, random item ids: leak-free), next
 * to the paper's P5-S rows (sequential ids, leaky) and leak-free anchors.
 * About an hour of training on a 2-core CPU at the default budget; not run in CI.
 *
 *   npm run bench:p5-beauty -- [--config tiny|small|JSON] [--epochs 6] [--steps N] [--lr 3e-3]
 *                              [--no-item-pieces] [--no-user-pieces] [--dropout 0]
 *                              [--embedding-lr-scale 10] [--adam-eps 1e-8]
 *                              [--workdir DIR] [--users N] [--direct-users N] [--beams N] [--json]
 *                              [--model DIR]   (evaluate a model trained elsewhere, e.g. on a GPU
 *                                               with scripts/hf_train_p5.py; skips training)
 *
 * Stages (each skipped when its output exists, so an interrupted run resumes;
 * training itself resumes from its checkpoint): import ../shared Beauty with
 * --item-index random → `p5rec train --tasks sequential,direct` → eval
 * sequential with 2-1 (seen) and 2-13 (unseen), direct with 5-1 (seen, yes/no)
 * and 5-8 (unseen, candidates) → one table. Reports wall time per stage and
 * the peak RSS of each child (from /usr/bin/time when available, else the
 * train command's own report).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = resolve(ROOT, '../shared/datasets/amazon-beauty');
const BIN = join(ROOT, 'bin/p5rec.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const JSON_OUT = args.includes('--json');
const WORK = resolve(opt('--workdir', join(ROOT, 'runs/p5-beauty')));
// Defaults: the quickstart's id-learning recipe (docs/p5.md) on a tiny T5, 6 epochs:
// about an hour of training on 2 CPU cores. --config small (P5-S: t5-small) and
// --lr 1e-3 are the paper's; that needs a GPU (scripts/hf_train_p5.py) or days here.
const CONFIG = opt('--config', 'tiny');
const EPOCHS = opt('--epochs', '6');
const STEPS = opt('--steps', undefined);
const USERS = opt('--users', undefined);
// Ranking 100 candidates by P("yes") costs 100 prompts per user: a bigger model may
// evaluate direct prompts on fewer users than sequential ones.
const DIRECT_USERS = opt('--direct-users', USERS);
const BEAMS = opt('--beams', '20');
const LR = opt('--lr', '3e-3');
const ITEM_PIECES = !args.includes('--no-item-pieces');
const EXTRA = [
  ...(args.includes('--no-user-pieces') ? [] : ['--user-pieces']),
  '--dropout', opt('--dropout', '0'),
  '--embedding-lr-scale', opt('--embedding-lr-scale', '10'),
  '--adam-eps', opt('--adam-eps', '1e-8'),
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
  stages.push({ stage: 'import', ...run('import', ['data', 'import', 'p5', '--sequences', join(SHARED, 'sequential.txt'), '--datamaps', join(SHARED, 'datamaps.json'), '--meta', join(SHARED, 'meta.jsonl'), '--item-index', 'random', '--out', ds, '--quiet']) });
}
if (opt('--model', undefined) && !existsSync(join(model, 'model.json'))) throw new Error(`--model ${model}: no model.json`);
if (!existsSync(join(model, 'model.json'))) {
  const resume = existsSync(join(model, 'train', 'checkpoint'));
  stages.push({
    stage: 'train',
    ...run('train', ['train', ds, '--out', model, '--config', CONFIG, '--tasks', 'sequential,direct', '--epochs', EPOCHS, ...(STEPS ? ['--steps', STEPS] : []),
      '--negatives', '19', '--batch-tokens', '8192', '--max-batch', '128', '--lr', LR, ...(ITEM_PIECES ? ['--item-pieces'] : []), ...EXTRA, ...(resume ? ['--resume'] : [])]),
  });
}
const evals = [];
for (const [task, prompt] of [['sequential', '2-1'], ['sequential', '2-13'], ['direct', '5-1'], ['direct', '5-8']]) {
  const users = task === 'direct' ? DIRECT_USERS : USERS;
  const file = join(model, 'evals', `${task}-test-p${prompt}${users ? `-u${users}` : ''}.json`);
  if (existsSync(file)) {
    evals.push(JSON.parse(readFileSync(file, 'utf8')));
    continue;
  }
  const r = run(`eval ${task} ${prompt}`, ['eval', ds, '--model', model, '--task', task, '--prompt', prompt, '--beams', BEAMS, ...(users ? ['--users', users] : []), '--quiet']);
  stages.push({ stage: `eval ${task} ${prompt}`, seconds: r.seconds, peakRssMB: r.peakRssMB });
  evals.push(r.json);
}

// Published rows (test split). P5-S: Geng et al. 2022, Table 3 (sequential item ids, which leak the answer).
// OpenP5-R: Xu et al. 2024 (random ids); TIGER: Rajput et al. 2023 (semantic ids). HR@5, NDCG@5, HR@10, NDCG@10.
const published = [
  { model: 'P5-S (paper, sequential ids: leaky)', 'HR@5': 0.0490, 'NDCG@5': 0.0358, 'HR@10': 0.0646, 'NDCG@10': 0.0409 },
  { model: 'OpenP5-R (random ids)', 'HR@5': 0.0318, 'NDCG@5': 0.0226, 'HR@10': 0.0464, 'NDCG@10': 0.0273 },
  { model: 'TIGER (semantic ids)', 'HR@5': 0.0454, 'NDCG@5': 0.0321, 'HR@10': 0.0648, 'NDCG@10': 0.0384 },
];
const card = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8'));
const rows = evals.map((e) => ({ model: `p5rec ${e.label ?? e.kind}`, task: e.task, count: e.count, ...e.metrics, seconds: e.seconds }));
const result = { dataset: 'amazon-beauty (random ids)', config: card.config.t5, train: card.fit, stages, rows, published };
if (JSON_OUT) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  const cols = ['HR@5', 'NDCG@5', 'HR@10', 'NDCG@10'];
  const f = (v) => (typeof v === 'number' ? v.toFixed(4) : '—');
  const where = card.fit.trainer ? `${card.fit.trainer} on ${card.fit.device}, ${card.fit.epochs} epochs, peak GPU memory ${card.fit.peakGpuMB} MB` : `peak RSS ${card.fit.peakRssMB} MB`;
  console.log(`P5 on Beauty — ${card.fit.steps} steps, ${Math.round(card.fit.seconds)} s training (${where}), ${card.fit.tokensPerSec} tok/s`);
  console.log(`| model | task | ${cols.join(' | ')} |\n|---|---|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.model} | ${r.task} (${r.count} users) | ${cols.map((c) => f(r[c])).join(' | ')} |`);
  for (const p of published) console.log(`| ${p.model} | sequential | ${cols.map((c) => f(p[c])).join(' | ')} |`);
  console.log(`stages: ${stages.map((s) => `${s.stage} ${Math.round(s.seconds)}s${s.peakRssMB ? ` (${s.peakRssMB} MB)` : ''}`).join(', ')}`);
}
