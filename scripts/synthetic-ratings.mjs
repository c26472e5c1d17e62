#!/usr/bin/env node
// A synthetic rating file whose answer depends on the item alone: rating 5 for
// items with an even index, 2 for odd ones. A recommender that learns its item
// ids reaches RMSE 0; one that learns only the answer marginals stays at the
// spread of the two stars (~1.5). docs/p5.md uses it to test whether P5 learns
// per-id rows at all:
//   node scripts/synthetic-ratings.mjs --out syn.csv
//   p5rec data import csv --file syn.csv --user user --item item --rating rating --time time --out syn
//   p5rec train syn --tasks rating --config tiny --item-pieces --no-rating-noise ... && p5rec eval syn --task rating ...
import { writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: f } = parseArgs({
  options: {
    out: { type: 'string' },
    users: { type: 'string', default: '1400' },
    items: { type: 'string', default: '900' },
    'per-user': { type: 'string', default: '7' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean' },
  },
});
const int = (name) => {
  const n = Number(f[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got '${f[name]}'`);
    process.exit(2);
  }
  return n;
};
if (!f.out) {
  console.error('usage: node scripts/synthetic-ratings.mjs --out FILE.csv [--users 1400] [--items 900] [--per-user 7] [--seed 1]');
  process.exit(2);
}
const [users, items, perUser, seed] = [int('users'), int('items'), int('per-user'), int('seed')];
if (perUser > items) {
  console.error(`--per-user (${perUser}) must not exceed --items (${items})`);
  process.exit(2);
}
// mulberry32: a small seeded generator, so the same flags give the same file.
let s = seed >>> 0;
const rand = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const lines = ['user,item,rating,time'];
let time = 1_000_000;
for (let u = 0; u < users; u++) {
  const seen = new Set();
  while (seen.size < perUser) seen.add(Math.floor(rand() * items));
  for (const i of seen) lines.push(`u${u},i${i},${i % 2 === 0 ? 5 : 2},${++time}`);
}
writeFileSync(`${f.out}.tmp`, lines.join('\n') + '\n');
renameSync(`${f.out}.tmp`, f.out);
const result = { ok: true, out: f.out, users, items, interactions: users * perUser, seed };
if (f.json) console.log(JSON.stringify(result));
else console.error(`wrote ${result.interactions} ratings (${users} users × ${perUser}) to ${f.out}`);
