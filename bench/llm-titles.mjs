// Title matching for LLM output refinement on the real Beauty catalogue: index build time,
// lookup time, and how often perturbed titles map back to the right item / unrelated text
// maps to any item, at several Dice thresholds. One JSON object on stdout.
//   npx tsc -p tsconfig.build.json && node bench/llm-titles.mjs [meta.jsonl] [--n 2000]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { TitleIndex } from '../dist/llm/index.js';
import { Rng } from '../dist/index.js';

const args = process.argv.slice(2);
const nAt = args.indexOf('--n');
const n = nAt >= 0 ? Number(args.splice(nAt, 2)[1]) : 2000;
const file = args[0] ?? '../shared/datasets/amazon-beauty/meta.jsonl';
const titles = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).title ?? null);

let t = performance.now();
const index = new TitleIndex(titles);
const buildMs = performance.now() - t;

const rng = new Rng('llm-titles-bench');
const words = titles.filter(Boolean).flatMap((s) => s.split(/\s+/));
const titled = titles.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
// What an LLM does to a title it half-remembers: drops a word, changes case, misspells a word, shortens it.
const perturb = (s) => {
  const w = s.split(/\s+/);
  switch (rng.int(4)) {
    case 0: if (w.length > 3) w.splice(rng.int(w.length), 1); return w.join(' ');
    case 1: return s.toUpperCase();
    case 2: { const j = rng.int(w.length); const x = w[j]; if (x.length > 3) { const k = 1 + rng.int(x.length - 2); w[j] = x.slice(0, k) + x[k + 1] + x[k] + x.slice(k + 2); } return w.join(' '); }
    default: return w.slice(0, Math.max(3, Math.ceil(w.length * 0.7))).join(' ');
  }
};
const cases = Array.from({ length: n }, () => { const i = titled[rng.int(titled.length)]; return { item: i, text: perturb(titles[i]) }; });
const random = Array.from({ length: n }, () => Array.from({ length: 3 + rng.int(5) }, () => words[rng.int(words.length)]).join(' '));

const out = { catalogue: titles.length, titled: titled.length, buildMs: +buildMs.toFixed(1), lookups: n, thresholds: {} };
for (const threshold of [0.5, 0.6, 0.7, 0.8]) {
  let right = 0, wrong = 0, none = 0, falseMatch = 0;
  t = performance.now();
  for (const c of cases) {
    const m = index.match(c.text, { threshold });
    if (!m) none++;
    else if (m.item === c.item || titles[m.item] === titles[c.item]) right++;
    else wrong++;
  }
  for (const r of random) if (index.match(r, { threshold })) falseMatch++;
  const ms = (performance.now() - t) / (2 * n);
  out.thresholds[threshold] = { perturbedRight: right / n, perturbedWrong: wrong / n, perturbedUnmatched: none / n, randomWordsMatched: falseMatch / n, msPerLookup: +ms.toFixed(3) };
}
process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
