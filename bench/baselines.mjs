// The P5 baselines on the full datasets: import (once), fit each model in its
// own process (so peak RSS is the fit's own), evaluate on valid and test, and
// print one table with fit wall time, peak RSS and the metrics.
//
//   npm run build && node bench/baselines.mjs [--work /tmp/p5rec-bench] [--only bpr-mf,simplex]
//        [--datasets beauty,ml100k,mi] [--sequential] [--verbose]
//
// --sequential also runs the full-ranking task on Beauty (every item for every
// user: minutes per model). Datasets come from ../shared/datasets (override
// with --shared DIR); Beauty is imported with random item ids, seed 2022.
// Hyper-parameters are each model's defaults unless RUNS below says otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/p5rec.js');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(`--${name}`);
const WORK = resolve(opt('work', '/tmp/p5rec-bench'));
const SHARED = resolve(opt('shared', join(ROOT, '../shared/datasets')));
const ONLY = opt('only', '') ? opt('only').split(',') : null;
const DATASETS = opt('datasets', 'beauty,ml100k,mi').split(',');
const SEQUENTIAL = flag('sequential');
const VERBOSE = flag('verbose');

const IMPORTS = {
  beauty: ['p5', '--sequences', join(SHARED, 'amazon-beauty/sequential.txt'), '--datamaps', join(SHARED, 'amazon-beauty/datamaps.json'), '--meta', join(SHARED, 'amazon-beauty/meta.jsonl')],
  ml100k: ['movielens', '--dir', join(SHARED, 'movielens-100k')],
  mi: ['amazon', '--reviews', join(SHARED, 'amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz')],
};

// What each dataset is benchmarked on; `hyper` overrides a model's defaults.
const RUNS = [
  { data: 'beauty', model: 'pop', tasks: ['direct', 'sequential'] },
  { data: 'beauty', model: 'bpr-mf', tasks: ['direct', 'sequential'] },
  { data: 'beauty', model: 'bpr-mlp', tasks: ['direct', 'sequential'] },
  { data: 'beauty', model: 'simplex', tasks: ['direct', 'sequential'] },
  { data: 'ml100k', model: 'pop', split: 'rating', tasks: ['rating'] },
  { data: 'ml100k', model: 'mf', tasks: ['rating'] },
  { data: 'ml100k', model: 'mlp', tasks: ['rating'] },
  { data: 'mi', model: 'pop', split: 'rating', tasks: ['rating'] },
  { data: 'mi', model: 'mf', tasks: ['rating'] },
  { data: 'mi', model: 'mlp', tasks: ['rating'] },
];

function p5rec(argv) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', VERBOSE ? 'inherit' : 'pipe'], maxBuffer: 64 << 20 });
  const seconds = (Date.now() - t0) / 1000;
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json;
  try {
    json = JSON.parse(last);
  } catch {
    json = null;
  }
  if (r.status !== 0 || !json?.ok) throw new Error(`p5rec ${argv.slice(0, 2).join(' ')} failed (${r.status}): ${r.stderr ?? ''}${last}`);
  return { json, seconds };
}

mkdirSync(WORK, { recursive: true });
for (const name of DATASETS) {
  const dir = join(WORK, name);
  if (existsSync(join(dir, 'manifest.json'))) continue;
  console.error(`importing ${name} → ${dir}`);
  p5rec(['data', 'import', ...IMPORTS[name], '--out', dir, '--json', '--quiet']);
}

const rows = [];
for (const run of RUNS) {
  if (!DATASETS.includes(run.data) || (ONLY && !ONLY.includes(run.model))) continue;
  const dsDir = join(WORK, run.data);
  const out = join(WORK, 'models', `${run.data}-${run.model}`);
  const hyper = Object.entries(run.hyper ?? {}).flatMap(([k, v]) => [`--${k}`, String(v)]);
  console.error(`fit ${run.model} on ${run.data}...`);
  const fit = p5rec(['fit', dsDir, '--model', run.model, '--out', out, '--force', '--json', '--quiet', ...(run.split ? ['--split', run.split] : []), ...hyper]);
  const training = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).extra?.training;
  const epochs = training ? `${training.bestEpoch}/${training.epochs}` : '-';
  const row = { data: run.data, model: run.model, fitSeconds: fit.seconds, peakRssMB: fit.json.fit.peakRssMB, epochs, evals: {} };
  for (const task of run.tasks) {
    if (task === 'sequential' && !SEQUENTIAL) continue;
    for (const split of ['valid', 'test']) {
      const ev = p5rec(['eval', dsDir, '--model', out, '--task', task, '--split', split, '--json', '--quiet']);
      row.evals[`${task}/${split}`] = { ...ev.json.metrics, seconds: ev.seconds };
    }
  }
  rows.push(row);
  console.error(`  ${fit.seconds.toFixed(1)} s, peak RSS ${row.peakRssMB} MB`);
}

const pick = { rating: ['RMSE', 'MAE'], direct: ['HR@1', 'HR@5', 'NDCG@5', 'HR@10', 'NDCG@10'], sequential: ['HR@5', 'NDCG@5', 'HR@10', 'NDCG@10'] };
const lines = ['| data | model | fit s | peak RSS MB | best/ran epochs | task/split | metrics | eval s |', '|---|---|---:|---:|---:|---|---|---:|'];
for (const r of rows) {
  const evs = Object.entries(r.evals);
  if (!evs.length) lines.push(`| ${r.data} | ${r.model} | ${r.fitSeconds.toFixed(1)} | ${r.peakRssMB} | ${r.epochs} | - | - | - |`);
  evs.forEach(([key, m], n) => {
    const task = key.split('/')[0];
    const metrics = pick[task].map((k) => `${k} ${m[k].toFixed(4)}`).join(' ');
    lines.push(`| ${n ? '' : r.data} | ${n ? '' : r.model} | ${n ? '' : r.fitSeconds.toFixed(1)} | ${n ? '' : r.peakRssMB} | ${n ? '' : r.epochs} | ${key} | ${metrics} | ${m.seconds.toFixed(1)} |`);
  });
}
console.log(lines.join('\n'));
writeFileSync(join(WORK, 'baselines.json'), `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
console.error(`results → ${join(WORK, 'baselines.json')}`);
