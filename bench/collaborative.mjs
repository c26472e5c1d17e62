// Collaborative item indexing on a real dataset: wall time, tree shape, and how
// often a user's consecutive training items share a token prefix, versus the
// same tokens dealt to items at random.
//
//   npm run build && node bench/collaborative.mjs [sequential.txt] [seed]
//
// Input: one user per line, `user item item ...` in time order (P5's
// sequential.txt). The training part is every item but the last two.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { collaborativeTokens, Rng } from '../dist/index.js';

const file = process.argv[2] ?? '/work/shared/datasets/amazon-beauty/sequential.txt';
const seed = Number(process.argv[3] ?? 42);

const idOf = new Map();
const train = [];
let interactions = 0;
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) continue;
  const seq = parts.slice(1).map((raw) => {
    let id = idOf.get(raw);
    if (id === undefined) idOf.set(raw, (id = idOf.size));
    return id;
  });
  const t = Int32Array.from(seq.slice(0, Math.max(0, seq.length - 2)));
  interactions += t.length;
  train.push(t);
}
const numItems = idOf.size;
console.log(`${file}: ${train.length} users, ${numItems} items, ${interactions} training interactions`);

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const tokens = collaborativeTokens(numItems, train, new Rng(seed));
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
console.log(
  `collaborativeTokens: ${(ms / 1000).toFixed(2)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU (seed ${seed}, default options)`,
);

const lengths = new Map();
let maxLen = 0;
for (const t of tokens) {
  lengths.set(t.length, (lengths.get(t.length) ?? 0) + 1);
  maxLen = Math.max(maxLen, t.length);
}
console.log(`max depth (token length): ${maxLen}`);
console.log(
  `token length distribution: ${[...lengths.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([l, c]) => `${l}:${c}`)
    .join(' ')}`,
);
const firstDigit = new Map();
for (const t of tokens) firstDigit.set(t[0], (firstDigit.get(t[0]) ?? 0) + 1);
console.log(
  `items per first digit: ${[...firstDigit.entries()]
    .sort()
    .map(([d, c]) => `${d}:${c}`)
    .join(' ')}`,
);
const unique = new Set(tokens).size === tokens.length;
const sorted = [...tokens].sort();
let prefixFree = true;
for (let i = 1; i < sorted.length; i++) if (sorted[i].startsWith(sorted[i - 1])) prefixFree = false;
console.log(`unique: ${unique}, prefix-free: ${prefixFree}, leading '0': ${tokens.some((t) => t[0] === '0')}`);

/** Mean over users of the fraction of consecutive (distinct) training pairs whose tokens share the first `d` digits. */
function sharing(tok, d) {
  let sum = 0, users = 0;
  for (const s of train) {
    let pairs = 0, same = 0;
    for (let i = 1; i < s.length; i++) {
      if (s[i] === s[i - 1]) continue;
      pairs++;
      const a = tok[s[i - 1]], b = tok[s[i]];
      if (a.length >= d && b.length >= d && a.slice(0, d) === b.slice(0, d)) same++;
    }
    if (pairs > 0) {
      sum += same / pairs;
      users++;
    }
  }
  return sum / users;
}
const shuffled = new Rng(seed + 1).shuffle([...tokens]);
for (const d of [1, 2, 3]) {
  console.log(
    `consecutive pairs sharing first ${d} digit(s): collaborative ${sharing(tokens, d).toFixed(4)}, random ${sharing(shuffled, d).toFixed(4)}`,
  );
}
