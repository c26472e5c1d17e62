// SASRec on Beauty, end to end through the CLI: import (once, random item ids,
// seed 2022), `p5rec fit --model sasrec` in its own process (so peak RSS is
// the fit's own), `p5rec eval --task sequential` (every item ranked for every
// user, history excluded), then one summary with the fit's wall time, peak RSS,
// epochs and the test metrics next to the P5 paper's SASRec row.
//
//   npm run build && node bench/sasrec.mjs [--work /tmp/p5rec-sasrec] [--shared DIR]
//        [--valid] [--quiet] [-- --lr 0.002 --epochs 30 ...]
//
// Everything after `--` goes to `p5rec fit` as hyper-parameters (default:
// the model's defaults). Progress (per-epoch loss, sequences/s, ETA,
// validation) streams to stderr unless --quiet. --valid also evaluates on
// the validation split. Prints one JSON object on stdout at the end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/p5rec.js');

const sep = process.argv.indexOf('--');
const args = sep >= 0 ? process.argv.slice(2, sep) : process.argv.slice(2);
const hyper = sep >= 0 ? process.argv.slice(sep + 1) : [];
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const WORK = resolve(opt('work', '/tmp/p5rec-sasrec'));
const SHARED = resolve(opt('shared', join(ROOT, '../shared/datasets')));
const QUIET = args.includes('--quiet');

/** P5 paper (RecSys 2022), Beauty sequential, all-item ranking; the CE bar the task aims at. */
const REFERENCE = {
  'SASRec (P5 paper)': { 'HR@5': 0.0387, 'NDCG@5': 0.0249, 'HR@10': 0.0605, 'NDCG@10': 0.0318 },
  'SASRec, CE loss (bar)': { 'HR@10': 0.0821, 'NDCG@10': 0.0405 },
};

function p5rec(argv) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', QUIET ? 'pipe' : 'inherit'], maxBuffer: 64 << 20 });
  const seconds = (Date.now() - t0) / 1000;
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0) throw new Error(`p5rec ${argv.slice(0, 2).join(' ')} failed (${r.status}): ${r.stderr ?? ''}${last}`);
  return { json: JSON.parse(last), seconds };
}

mkdirSync(WORK, { recursive: true });
const data = join(WORK, 'beauty');
if (!existsSync(join(data, 'manifest.json'))) {
  const b = join(SHARED, 'amazon-beauty');
  const { seconds } = p5rec(['data', 'import', 'p5', '--sequences', join(b, 'sequential.txt'), '--datamaps', join(b, 'datamaps.json'), '--meta', join(b, 'meta.jsonl'), '--out', data, '--quiet', '--json']);
  process.stderr.write(`imported Beauty in ${seconds.toFixed(1)}s → ${data}\n`);
}

const model = join(WORK, 'sasrec');
const fit = p5rec(['fit', data, '--model', 'sasrec', '--out', model, '--force', '--json', ...(QUIET ? ['--quiet'] : []), ...hyper]);
const card = fit.json;
const evalRun = (split) => p5rec(['eval', data, '--model', model, '--task', 'sequential', '--split', split, '--json', '--quiet']);
const test = evalRun('test');
const valid = args.includes('--valid') ? evalRun('valid') : null;

const training = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')).extra?.training;
const fmt = (m) => Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ');
const lines = [
  `SASRec on Beauty, sequential task (${test.json.count} users, all items ranked), hyper-parameters: ${JSON.stringify(card.config)}`,
  ...(training ? [`epochs: ${training.epochs} run, best (kept) ${training.bestEpoch}`] : []),
  `fit: ${card.fit.seconds.toFixed(1)}s wall (process ${fit.seconds.toFixed(1)}s), peak RSS ${card.fit.peakRssMB} MB`,
  `eval test: ${fmt(test.json.metrics)}  (${test.seconds.toFixed(1)}s, process)`,
  ...(valid ? [`eval valid: ${fmt(valid.json.metrics)}`] : []),
  ...Object.entries(REFERENCE).map(([k, m]) => `reference ${k}: ${fmt(m)}`),
];
process.stderr.write(`${lines.join('\n')}\n`);
console.log(JSON.stringify({
  config: card.config,
  fit: { ...card.fit, processSeconds: fit.seconds },
  training: training ? { epochs: training.epochs, bestEpoch: training.bestEpoch } : undefined,
  test: test.json.metrics,
  ...(valid ? { valid: valid.json.metrics } : {}),
  evalSeconds: test.seconds,
  reference: REFERENCE,
}));
