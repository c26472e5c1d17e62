#!/usr/bin/env node
/**
 * What P5's co-occurrence item init knows on its own: score every item by the
 * dot product of its init vector (src/p5/item-init.ts) with the last three
 * history items' (weights 0.5, 0.5, 1), rank with the shared sequential
 * protocol (all items, history excluded). A reference row for a P5 trained
 * with `--item-init cooccurrence`: what the trained model adds is its margin
 * over this. Needs `npm run build`.
 *
 *   node scripts/cooccurrence-knn.mjs DATASET [--task sequential|direct] [--split test|valid] [--users N] [--dim 128]
 *                                     [--seed 0] [--iterations 4] [--window 3] [--json]
 *
 * --seed and --iterations are the range finder's (a P5 run passes its --seed; 4 power iterations);
 * --window is the init's co-occurrence window (P5's --item-init-window).
 *
 * --task direct ranks the held-out item among the user's 99 stored negatives (1 of 100).
 */
import { loadDataset } from '../dist/data/dataset.js';
import { TEST, VALID } from '../dist/data/splits.js';
import { RankingAccumulator, rankOfTarget, sampledRank } from '../dist/eval/metrics.js';
import { cooccurrenceEmbeddings } from '../dist/p5/item-init.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const dir = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--')));
if (!dir) {
  process.stderr.write('usage: node scripts/cooccurrence-knn.mjs DATASET [--split test|valid] [--users N] [--dim 128] [--json]\n');
  process.exit(2);
}
const split = opt('--split', 'test');
if (split !== 'test' && split !== 'valid') {
  process.stderr.write(`--split must be test or valid, got '${split}'\n`);
  process.exit(2);
}
const code = split === 'test' ? TEST : VALID;
const task = opt('--task', 'sequential');
if (task !== 'sequential' && task !== 'direct') {
  process.stderr.write(`--task must be sequential or direct, got '${task}'\n`);
  process.exit(2);
}
const dim = Number(opt('--dim', '128'));
const seed = Number(opt('--seed', '0'));
const iterations = Number(opt('--iterations', '4'));
if (!Number.isInteger(seed) || !Number.isInteger(iterations) || iterations < 0) {
  process.stderr.write(`--seed and --iterations must be integers (iterations >= 0), got '${opt('--seed', '0')}', '${opt('--iterations', '4')}'\n`);
  process.exit(2);
}
const window = Number(opt('--window', '3'));
if (!Number.isInteger(window) || window < 1) {
  process.stderr.write(`--window must be an integer >= 1, got '${opt('--window', '3')}'\n`);
  process.exit(2);
}
const maxUsers = opt('--users', undefined) ? Number(opt('--users')) : Infinity;
const ds = await loadDataset(dir);
const t0 = Date.now();
const e = cooccurrenceEmbeddings(ds, dim, { seed, iterations, window });
const n = ds.numItems;
const acc = new RankingAccumulator(task === 'direct' ? [1, 5, 10] : [5, 10, 20]);
const q = new Float64Array(dim);
const scores = new Float32Array(n);
for (let u = 0; u < ds.numUsers && acc.count < maxUsers; u++) {
  const target = ds.sequenceSplit(u, code);
  if (!target.length) continue;
  const h = ds.historyBefore(u, code);
  q.fill(0);
  for (let a = Math.max(0, h.length - 3); a < h.length; a++) {
    const w = a === h.length - 1 ? 1 : 0.5;
    for (let k = 0; k < dim; k++) q[k] += w * e[h[a] * dim + k];
  }
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += q[k] * e[j * dim + k];
    scores[j] = s;
  }
  if (task === 'direct') acc.add(sampledRank(scores[target[0]], Float32Array.from(ds.negatives[u], (j) => scores[j])));
  else acc.add(rankOfTarget(scores, target[0], h));
}
const { count, ...metrics } = acc.result();
const stderr = acc.standardErrors();
if (task === 'direct') {
  delete metrics['NDCG@1'];
  delete stderr['NDCG@1'];
}
const out = { ok: true, dataset: dir, task, split, dim, seed, iterations, count, metrics, stderr, seconds: (Date.now() - t0) / 1000 };
if (args.includes('--json')) process.stdout.write(`${JSON.stringify(out)}\n`);
else console.log(`co-occurrence init, last-3 dot product, ${task}/${split} (${count} users): ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)} ± ${stderr[k].toFixed(4)}`).join('  ')}`);
