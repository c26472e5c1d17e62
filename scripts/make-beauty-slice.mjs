#!/usr/bin/env node
/**
 * Writes data/amazon-beauty-slice/: a small, titled slice of Amazon Beauty
 * (as the P5 paper ships it) for `p5rec quickstart`, so the demo page, the
 * report and the LLM recommender show product names. Read from
 * test/fixtures/amazon-beauty/ (sequential.txt, datamaps.json, meta.jsonl);
 * written in the same three formats plus a README with provenance and counts.
 *
 * How the slice is chosen (deterministic: the same inputs give the same bytes):
 *   1. the FREQUENT_ITEMS most-interacted items that have a title;
 *   2. every user's sequence restricted to those items (order kept); users
 *      with at least MIN_LENGTH of them left are the candidates;
 *   3. a seeded sample of USERS candidates (mulberry32, SEED);
 *   4. a KCORE-core of the sample: items with fewer than KCORE interactions
 *      are dropped from the sequences and users left with fewer than KCORE
 *      items are dropped, repeated until nothing changes.
 * User and item ids stay P5's (the datamaps are the subset of P5's), so every
 * line can be traced back to the original release.
 *
 *   node scripts/make-beauty-slice.mjs                 # rewrites data/amazon-beauty-slice
 *   node scripts/make-beauty-slice.mjs --out DIR       # writes DIR instead
 *   node scripts/make-beauty-slice.mjs --check         # exit 1 unless the committed files are this script's output
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'test/fixtures/amazon-beauty');
const DEFAULT_OUT = path.join(ROOT, 'data/amazon-beauty-slice');
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const CHECK = process.argv.includes('--check');

const SEED = 2022;
const FREQUENT_ITEMS = 1000;
const MIN_LENGTH = 5;
const USERS = 2000;
const KCORE = 5;
const FILES = ['sequential.txt', 'datamaps.json', 'meta.jsonl', 'README.md'];

// ---- seeded randomness (mulberry32) ----
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function build() {
  const seqs = readFileSync(path.join(SRC, 'sequential.txt'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/));
  const maps = JSON.parse(readFileSync(path.join(SRC, 'datamaps.json'), 'utf8'));
  const metaLines = readFileSync(path.join(SRC, 'meta.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
  const metaByAsin = new Map(metaLines.map((l) => [JSON.parse(l).asin, l]));
  const titled = (id) => {
    const line = metaByAsin.get(maps.id2item[id]);
    return line !== undefined && typeof JSON.parse(line).title === 'string' && JSON.parse(line).title.trim() !== '';
  };
  const source = { users: seqs.length, items: Object.keys(maps.id2item).length, interactions: seqs.reduce((n, s) => n + s.length - 1, 0) };

  // 1. frequent titled items (ties broken by P5 id, so the order is total)
  const freq = new Map();
  for (const s of seqs) for (const i of s.slice(1)) freq.set(i, (freq.get(i) ?? 0) + 1);
  const frequent = new Set([...freq].filter(([i]) => titled(i)).sort((a, b) => b[1] - a[1] || Number(a[0]) - Number(b[0])).slice(0, FREQUENT_ITEMS).map(([i]) => i));

  // 2. candidates: users with >= MIN_LENGTH frequent items
  const candidates = seqs.map((s) => [s[0], s.slice(1).filter((i) => frequent.has(i))]).filter(([, items]) => items.length >= MIN_LENGTH);

  // 3. seeded sample (partial Fisher-Yates)
  const rand = mulberry32(SEED);
  const pool = candidates.slice();
  const n = Math.min(USERS, pool.length);
  for (let k = 0; k < n; k++) {
    const j = k + Math.floor(rand() * (pool.length - k));
    [pool[k], pool[j]] = [pool[j], pool[k]];
  }
  let users = new Map(pool.slice(0, n));

  // 4. k-core
  for (;;) {
    const count = new Map();
    for (const items of users.values()) for (const i of items) count.set(i, (count.get(i) ?? 0) + 1);
    let changed = false;
    const next = new Map();
    for (const [u, items] of users) {
      const kept = items.filter((i) => count.get(i) >= KCORE);
      if (kept.length !== items.length) changed = true;
      if (kept.length >= KCORE) next.set(u, kept);
      else changed = true;
    }
    users = next;
    if (!changed) break;
  }

  const userIds = [...users.keys()].sort((a, b) => Number(a) - Number(b));
  const itemCount = new Map();
  for (const items of users.values()) for (const i of items) itemCount.set(i, (itemCount.get(i) ?? 0) + 1);
  const itemIds = [...itemCount.keys()].sort((a, b) => Number(a) - Number(b));
  const lengths = userIds.map((u) => users.get(u).length).sort((a, b) => a - b);
  const pops = [...itemCount.values()].sort((a, b) => a - b);
  const interactions = lengths.reduce((a, b) => a + b, 0);
  const median = (xs) => (xs.length % 2 ? xs[(xs.length - 1) / 2] : (xs[xs.length / 2 - 1] + xs[xs.length / 2]) / 2);
  const categories = new Map();
  for (const i of itemIds) {
    const c = JSON.parse(metaByAsin.get(maps.id2item[i])).categories?.[0]?.[1] ?? '(none)';
    categories.set(c, (categories.get(c) ?? 0) + 1);
  }
  const top10 = [...itemCount].sort((a, b) => b[1] - a[1] || Number(a[0]) - Number(b[0])).slice(0, 10);
  const top10Share = top10.reduce((s, [, c]) => s + c, 0) / interactions;

  const files = {};
  files['sequential.txt'] = userIds.map((u) => `${u} ${users.get(u).join(' ')}\n`).join('');
  const datamaps = { id2user: Object.fromEntries(userIds.map((u) => [u, maps.id2user[u]])), id2item: Object.fromEntries(itemIds.map((i) => [i, maps.id2item[i]])) };
  files['datamaps.json'] = `${JSON.stringify(datamaps)}\n`;
  // The meta lines as the fixture has them, in item id order.
  files['meta.jsonl'] = itemIds.map((i) => `${metaByAsin.get(maps.id2item[i])}\n`).join('');
  const fmt = (x) => x.toLocaleString('en-US');
  const size = (s) => Buffer.byteLength(s);
  const dataBytes = size(files['sequential.txt']) + size(files['datamaps.json']) + size(files['meta.jsonl']);
  const title = (i) => JSON.parse(metaByAsin.get(maps.id2item[i])).title;
  files['README.md'] = `# Amazon Beauty slice (titled)

A small slice of Amazon Beauty for \`p5rec quickstart\`: the bundled Musical
Instruments reviews have no item metadata, so their items are only ids; these
items have **titles and categories**, so the demo page, the report and the LLM
recommender (which prompts with titles) show what they recommend. The slice
has **no ratings, review text or timestamps** (P5's Beauty sequences carry
none): it serves the sequential and direct tasks; Musical Instruments stays
the quickstart dataset for rating, explanation and review.

| file | what |
|---|---|
| \`sequential.txt\` | one user per line: P5 user id, then P5 item ids in time order |
| \`datamaps.json\` | \`id2user\` / \`id2item\`: P5 ids to Amazon reviewer ids and ASINs (the subset of P5's maps for this slice) |
| \`meta.jsonl\` | \`{"asin", "title", "categories"}\` of every item in the slice |

Import: \`p5rec data import p5 --sequences sequential.txt --datamaps datamaps.json --meta meta.jsonl --out DIR\`.

## Counts

- ${fmt(userIds.length)} users, ${fmt(itemIds.length)} items, ${fmt(interactions)} interactions (density ${(100 * interactions / (userIds.length * itemIds.length)).toFixed(2)}%)
- items per user: min ${lengths[0]}, median ${median(lengths)}, mean ${(interactions / userIds.length).toFixed(1)}, max ${lengths[lengths.length - 1]}
- users per item: min ${pops[0]}, median ${median(pops)}, mean ${(interactions / itemIds.length).toFixed(1)}, max ${pops[pops.length - 1]}; the 10 most frequent items hold ${(100 * top10Share).toFixed(1)}% of the interactions
- every item has a title; top-level categories: ${[...categories].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([c, k]) => `${c} ${k}`).join(', ')}
- most frequent item: ${title(top10[0][0])} (${top10[0][1]} users)
- ${fmt(dataBytes)} bytes of data (sequential.txt ${fmt(size(files['sequential.txt']))}, datamaps.json ${fmt(size(files['datamaps.json']))}, meta.jsonl ${fmt(size(files['meta.jsonl']))})

## How it was made

\`node scripts/make-beauty-slice.mjs\` (deterministic; \`--check\` verifies these
files are its output) from P5's Beauty release (${fmt(source.users)} users,
${fmt(source.items)} items, ${fmt(source.interactions)} interactions; \`test/fixtures/amazon-beauty/\`):

1. the ${fmt(FREQUENT_ITEMS)} most-interacted items that have a title;
2. each user's sequence restricted to those items, order kept; ${fmt(candidates.length)} users keep at least ${MIN_LENGTH};
3. a seeded sample (mulberry32, seed ${SEED}) of ${fmt(n)} of them;
4. a ${KCORE}-core: items with fewer than ${KCORE} users and users with fewer than ${KCORE} items dropped, repeated until stable.

Frequent items and a k-core keep the slice useful at this size: every item has
enough users for collaborative models to learn it, and every user has a
history to show and a held-out item to find (leave-one-out needs at least 3).
Restricting sequences to frequent items drops some of each user's purchases,
so numbers on the slice are not comparable with the full Beauty dataset or
the P5 paper.

## Provenance and licence

- Interactions and ids: the Beauty data of P5's release (Geng et al.,
  "Recommendation as Language Processing (RLP): A Unified Pretrain,
  Personalized Prompt & Predict Paradigm (P5)", RecSys 2022), built from the
  Amazon review data of McAuley et al. ("Image-based recommendations on styles
  and substitutes", SIGIR 2015; the 2014 crawl, 5-core).
- Titles and categories: the \`title\` and \`categories\` fields of Amazon's 2014
  \`meta_Beauty.json\` (McAuley et al.), unmodified.
- The Amazon review data is distributed by its authors as public research data
  for academic use; this slice is a small subset redistributed on the same
  terms, as P5's release redistributes it. It is not covered by the repository's
  Apache-2.0 licence; product titles are Amazon's and their sellers'.
`;
  return { files, summary: { source, frequent: frequent.size, candidates: candidates.length, sampled: n, users: userIds.length, items: itemIds.length, interactions, bytes: dataBytes } };
}

const { files, summary } = build();
if (CHECK) {
  const dir = path.resolve(arg('--out') ?? DEFAULT_OUT);
  const bad = FILES.filter((f) => !existsSync(path.join(dir, f)) || readFileSync(path.join(dir, f), 'utf8') !== files[f]);
  if (bad.length) {
    process.stderr.write(`make-beauty-slice: ${bad.join(', ')} in ${dir} differ from the script's output; run node scripts/make-beauty-slice.mjs\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ ok: true, ...summary })}\n`);
} else {
  const out = path.resolve(arg('--out') ?? DEFAULT_OUT);
  mkdirSync(out, { recursive: true });
  for (const f of FILES) writeFileSync(path.join(out, f), files[f]);
  process.stdout.write(`${JSON.stringify({ ok: true, out, ...summary })}\n`);
}
