#!/usr/bin/env node
// Bias-only rating models on a prepared dataset: how much of the rating signal is
// the user's and how much the item's. Fits r ≈ μ + b_u + b_i by alternating ridge
// updates on the random split's train rows, and prints valid/test RMSE beside the
// train mean. `--leak-free` fits on the rows P5 trains on (train rows whose
// interaction is also in the user's sequential train prefix).
//   node scripts/rating-bias.mjs DATASET_DIR [--leak-free] [--json]
import { parseArgs } from 'node:util';
import { loadDataset } from '../dist/data/dataset.js';

const { values: f, positionals } = parseArgs({ allowPositionals: true, options: { 'leak-free': { type: 'boolean' }, json: { type: 'boolean' } } });
if (positionals.length !== 1) {
  console.error('usage: node scripts/rating-bias.mjs DATASET_DIR [--leak-free] [--json]');
  process.exit(2);
}
const ds = await loadDataset(positionals[0]);
const x = ds.interactions;
const TRAIN = 0;
const rows = (split) => Array.from(ds.ratingRows(split)).filter((k) => split !== TRAIN || !f['leak-free'] || x.seqSplit[k] === TRAIN);
const train = rows(0);
const mu = train.reduce((a, k) => a + x.rating[k], 0) / train.length;

function fit(lamU, lamI, iters = 10) {
  const bu = new Float64Array(ds.numUsers);
  const bi = new Float64Array(ds.numItems);
  for (let it = 0; it < iters; it++) {
    for (const [b, key, other, lam] of [[bi, x.item, (k) => bu[x.user[k]], lamI], [bu, x.user, (k) => bi[x.item[k]], lamU]]) {
      const sum = new Float64Array(b.length);
      const n = new Float64Array(b.length);
      for (const k of train) {
        sum[key[k]] += x.rating[k] - mu - other(k);
        n[key[k]]++;
      }
      for (let j = 0; j < b.length; j++) b[j] = Number.isFinite(lam) ? sum[j] / (lam + n[j]) : 0;
    }
  }
  return (k) => mu + bu[x.user[k]] + bi[x.item[k]];
}
const rmse = (split, pred) => {
  const r = rows(split);
  return Math.sqrt(r.reduce((a, k) => a + (pred(k) - x.rating[k]) ** 2, 0) / r.length);
};
const settings = [
  ['train mean', Infinity, Infinity],
  ['user biases (λ 5)', 5, Infinity],
  ['item biases (λ 5)', Infinity, 5],
  ['both (λ 5)', 5, 5],
  ['both (λ 10)', 10, 10],
  ['both (λ 20)', 20, 20],
];
const out = { dataset: positionals[0], leakFree: !!f['leak-free'], trainRows: train.length, mean: mu, models: [] };
for (const [name, lu, li] of settings) {
  const p = fit(lu, li);
  out.models.push({ name, lambdaUser: lu, lambdaItem: li, valid: rmse(1, p), test: rmse(2, p) });
}
if (f.json) console.log(JSON.stringify(out));
else {
  console.log(`${out.trainRows} train rows, mean ${mu.toFixed(4)}${out.leakFree ? ' (leak-free rows)' : ''}`);
  for (const m of out.models) console.log(`${m.name.padEnd(20)} valid ${m.valid.toFixed(4)}  test ${m.test.toFixed(4)}`);
}
