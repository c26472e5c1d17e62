// Explanation extraction on real Amazon reviews: coverage, lexicon, examples, timing.
//   npx tsc -p tsconfig.build.json && node bench/explanations.mjs [file.json.gz] [--scale N] [--mine-share F]
// --scale N repeats the corpus N times (each copy with its own item ids) to time large inputs.
// --mine-share F mines the lexicon from the first F of each item's reviews (default 1 = all).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { EXPLANATION_WORD_LISTS, extractExplanations } from '../dist/index.js';

const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const scale = Number(flag('--scale', '1'));
const mineShare = Number(flag('--mine-share', '1'));
const file = args[0] ?? '/work/shared/datasets/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz';

let t = performance.now();
const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter((l) => l.length > 0);
const texts = [], asins = [];
for (const l of lines) {
  const o = JSON.parse(l);
  texts.push(typeof o.reviewText === 'string' ? o.reviewText : null);
  asins.push(o.asin);
}
const itemIds = new Map();
const baseItem = asins.map((a) => {
  let id = itemIds.get(a);
  if (id === undefined) itemIds.set(a, (id = itemIds.size));
  return id;
});
// Mining mask: per item, the first ceil(share * count) reviews in file order.
const perItem = new Map(), baseMask = new Uint8Array(texts.length);
const counts = new Map();
for (const it of baseItem) counts.set(it, (counts.get(it) ?? 0) + 1);
baseItem.forEach((it, r) => {
  const seen = perItem.get(it) ?? 0;
  perItem.set(it, seen + 1);
  baseMask[r] = seen < Math.ceil(mineShare * counts.get(it)) ? 1 : 0;
});
const reviews = [], itemOf = new Int32Array(texts.length * scale), mask = new Uint8Array(texts.length * scale);
for (let s = 0; s < scale; s++) {
  for (let r = 0; r < texts.length; r++) {
    const i = s * texts.length + r;
    reviews.push(texts[r]);
    itemOf[i] = s * itemIds.size + baseItem[r];
    mask[i] = baseMask[r];
  }
}
const tLoad = performance.now() - t;

t = performance.now();
const res = extractExplanations(reviews, itemOf, mask);
const tExtract = performance.now() - t;

const n = reviews.length;
const labelled = res.explanation.filter((e) => e !== null).length;
const labelledHeld = res.explanation.filter((e, i) => e !== null && mask[i] === 0).length;
const held = n - mask.reduce((a, b) => a + b, 0);
console.log(`file: ${file}`);
console.log(`reviews: ${n} (x${scale}), items: ${itemIds.size * scale}, mining reviews: ${n - held}`);
console.log(`lexicon size: ${res.lexicon.length}`);
console.log(`coverage: ${labelled}/${n} = ${(100 * labelled / n).toFixed(1)}%` +
  (held > 0 ? `; not-mined reviews: ${labelledHeld}/${held} = ${(100 * labelledHeld / held).toFixed(1)}%` : ''));
const fc = new Map();
for (const f of res.feature) if (f !== null) fc.set(f, (fc.get(f) ?? 0) + 1);
console.log(`distinct features used: ${fc.size}`);
const opinion = new Set(EXPLANATION_WORD_LISTS.opinion);
const withOpinion = res.explanation.filter((e) => e !== null && (e.toLowerCase().match(/[a-z]+(?:['-][a-z]+)*/g) ?? []).some((w) => opinion.has(w))).length;
console.log(`explanations containing an opinion word: ${withOpinion}/${labelled} = ${(100 * withOpinion / labelled).toFixed(1)}%`);
const words = res.explanation.filter((e) => e !== null).map((e) => e.split(' ').length);
console.log(`explanation length (space-separated words): mean ${(words.reduce((a, b) => a + b, 0) / words.length).toFixed(1)}`);
console.log(`top 40 lexicon: ${res.lexicon.slice(0, 40).join(', ')}`);
console.log(`most used features: ${[...fc].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([f, c]) => `${f}(${c})`).join(', ')}`);
console.log('examples:');
const step = Math.floor(texts.length / 10);
for (let k = 0, shown = 0; shown < 10 && k < texts.length; k += step) {
  let r = k;
  while (r < texts.length && res.feature[r] === null) r++;
  if (r >= texts.length) break;
  console.log(`  [${res.feature[r]}] ${res.explanation[r]}`);
  shown++;
}
console.log(`timing: load ${tLoad.toFixed(0)} ms, extract ${tExtract.toFixed(0)} ms (${(tExtract / n * 1000).toFixed(1)} us/review)`);
