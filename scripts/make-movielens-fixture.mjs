#!/usr/bin/env node
/**
 * Writes test/fixtures/movielens-format/: a SYNTHETIC dataset in the exact file
 * format of MovieLens 100K (u.data, u.item, u.user, u.genre, u.occupation,
 * u.info), so that the tests of the MovieLens importer and everything built on
 * it run from the repository alone. GroupLens' licence forbids redistributing
 * MovieLens itself; nothing here is MovieLens data: users, titles, dates,
 * ratings and timestamps are all drawn from a seeded generator below.
 *
 * The structure imitates ML-100K on a smaller scale: 300 users (every one with
 * at least 20 ratings, a long tail of heavy raters), 400 movies with Zipf-like
 * popularity (every movie rated at least once), 19 genre flags, taste for
 * genres per user, 1-5 stars skewed towards 4, timestamps in ML-100K's window
 * (Sept 1997 - April 1998) in a few rating sessions per user, u.data in no
 * particular order, u.item in Latin-1 with a few accented foreign titles,
 * "Title, The (Year)" inversions and one "unknown" movie like ML's item 267.
 *
 * Deterministic: the same script writes the same bytes (test/data-import.test.ts
 * checks that the committed files are this script's output).
 *
 *   node scripts/make-movielens-fixture.mjs                 # rewrites test/fixtures/movielens-format
 *   node scripts/make-movielens-fixture.mjs --out DIR       # writes DIR instead
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outArg = process.argv.indexOf('--out');
const OUT = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(ROOT, 'test/fixtures/movielens-format');

const SEED = 20260514;
const USERS = 300;
const ITEMS = 400;
const MIN_PER_USER = 20;
const UNKNOWN_ITEM = 237; // one movie with no title, date or genre, like ML-100K's item 267
const T_FIRST = 874724710; // ML-100K's first and last timestamps
const T_LAST = 893286638;

// ---- seeded randomness (mulberry32) ----
let state = SEED >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];
function normal() {
  const u = 1 - rand(), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
function weighted(weights) {
  let total = 0;
  for (const w of weights) total += w;
  let x = rand() * total;
  for (let i = 0; i < weights.length; i++) if ((x -= weights[i]) < 0) return i;
  return weights.length - 1;
}
function shuffle(xs) {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

// ---- vocabularies (invented titles; the genre and occupation lists are ML-100K's categories) ----
const GENRES = ['unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy',
  'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western'];
// roughly ML-100K's share of movies per genre (index 0, unknown, only for the unknown movie)
const GENRE_SHARE = [0, 0.15, 0.08, 0.025, 0.07, 0.3, 0.065, 0.03, 0.43, 0.013, 0.014, 0.054, 0.033, 0.036, 0.146, 0.06, 0.15, 0.042, 0.016];
const OCCUPATIONS = ['administrator', 'artist', 'doctor', 'educator', 'engineer', 'entertainment', 'executive', 'healthcare', 'homemaker',
  'lawyer', 'librarian', 'marketing', 'none', 'other', 'programmer', 'retired', 'salesman', 'scientist', 'student', 'technician', 'writer'];
const OCC_WEIGHT = [79, 28, 7, 95, 67, 18, 32, 16, 7, 12, 51, 26, 9, 105, 66, 14, 12, 31, 196, 27, 45];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const ADJ = ['Silent', 'Crimson', 'Broken', 'Last', 'Lonely', 'Electric', 'Hidden', 'Burning', 'Golden', 'Midnight', 'Wild', 'Frozen',
  'Distant', 'Restless', 'Hollow', 'Sweet', 'Dangerous', 'Invisible', 'Savage', 'Quiet', 'Blue', 'Little', 'Secret', 'Endless', 'Falling'];
const NOUN = ['Harbor', 'Highway', 'Summer', 'Witness', 'Garden', 'Frontier', 'Ticket', 'Promise', 'Orchard', 'Circus', 'Verdict', 'Signal',
  'Canyon', 'Lantern', 'Storm', 'Carousel', 'Passenger', 'Shadow', 'Kingdom', 'Season', 'Bridge', 'Engine', 'River', 'Alibi', 'Horizon'];
const PLACE = ['Marlow Bay', 'Red Creek', 'Saint Ives', 'Dover Street', 'the North', 'Cobalt City', 'Pine Hollow', 'Avalon', 'Eastwick Row', 'Tin Mesa'];
const NAME = ['Annie', 'Walter', 'Lucy', 'Harvey', 'Maggie', 'Otis', 'Iris', 'Frankie', 'Dolores', 'Gus', 'Rosalind', 'Jasper'];
const ROLE = ['Keeper', 'Ghost', 'Daughter', 'Thief', 'Doctor', 'Captain', 'Widow', 'Prince', 'Stranger', 'Professor'];
// Latin-1 titles, as ML-100K has a few (Misérables, Les; Nénette et Boni; ...)
const FOREIGN = [
  ['Rêve de lune, Le', 'Moon Dream, The'], ['Café Séraphine', null], ['Niña del mar, La', 'Girl of the Sea, The'],
  ['Fräulein im Regen, Das', 'Miss in the Rain'], ['Été à Marseille, Un', 'Summer in Marseille, A'], ['São Jorge Blues', null],
  ['Crépuscule', 'Twilight Hour'], ['Kärlek och sill', 'Love and Herring'], ['Ça commence ici', 'It Starts Here'], ['Mañana será otro día', null],
];

function year() {
  // mostly the 1990s, a tail of classics back to 1930
  return rand() < 0.8 ? Math.max(1989, Math.min(1998, Math.round(1995.8 + 1.6 * normal()))) : 1930 + int(59);
}
const pad2 = (n) => String(n).padStart(2, '0');

function titleBase() {
  switch (int(8)) {
    case 0:
    case 1:
      return `${pick(ADJ)} ${pick(NOUN)}`;
    case 2:
      return `${pick(NOUN)} of ${pick(PLACE)}, The`;
    case 3:
      return `${pick(NAME)}'s ${pick(NOUN)}`;
    case 4:
      return `${pick(ROLE)} of ${pick(PLACE)}, The`;
    case 5:
      return `${pick(ADJ)} ${pick(ROLE)}, The`;
    case 6:
      return `${pick(NOUN)} ${pick(['II', '2', 'Returns', 'Forever'])}`;
    default:
      return `${pick(NAME)} and the ${pick(ADJ)} ${pick(NOUN)}`;
  }
}

// ---- movies ----
const items = []; // { title, date, genres: Set<number>, pop, quality }
const usedTitles = new Set();
const foreign = shuffle(FOREIGN.slice());
for (let i = 1; i <= ITEMS; i++) {
  if (i === UNKNOWN_ITEM) {
    items.push({ title: 'unknown', date: '', genres: new Set([0]) });
    continue;
  }
  let title;
  do {
    const y = year();
    if (foreign.length && rand() < 0.03) {
      const [orig, en] = foreign.pop();
      title = `${orig}${en ? ` (${en})` : ''} (${y})`;
    } else title = `${titleBase()} (${y})`;
  } while (usedTitles.has(title));
  usedTitles.add(title);
  const y = Number(title.slice(-5, -1));
  const date = y >= 1996 && rand() < 0.5 ? `${pad2(1 + int(28))}-${MONTHS[int(12)]}-${y}` : `01-Jan-${y}`;
  const genres = new Set([weighted(GENRE_SHARE)]);
  while (genres.size < 3 && rand() < 0.45) genres.add(weighted(GENRE_SHARE));
  items.push({ title, date, genres });
}

// Popularity: Zipf over a rank that loosely follows the id (ML's early ids are its popular movies).
const rankKey = items.map((_, i) => i / ITEMS + rand() * 0.6);
const byRank = items.map((_, i) => i).sort((a, b) => rankKey[a] - rankKey[b]);
byRank.forEach((i, r) => (items[i].pop = 1 / (r + 8) ** 1.05));
const logPop = items.map((x) => Math.log(x.pop));
const meanLog = logPop.reduce((a, b) => a + b, 0) / ITEMS;
items.forEach((x, i) => (x.quality = 0.45 * normal() + 0.25 * (logPop[i] - meanLog)));

// ---- users ----
const users = [];
for (let u = 1; u <= USERS; u++) {
  const age = Math.max(7, Math.min(73, Math.round(31 + 11 * normal() + (rand() < 0.15 ? 12 : 0))));
  const gender = rand() < 0.71 ? 'M' : 'F';
  const occupation = OCCUPATIONS[weighted(OCC_WEIGHT)];
  const zip = String(int(100000)).padStart(5, '0');
  const taste = GENRES.map(() => normal()); // liking per genre
  const extra = Math.round(Math.exp(1.6 + 1.35 * normal()));
  const n = Math.min(ITEMS - 100, MIN_PER_USER + extra);
  users.push({ age, gender, occupation, zip, taste, n, bias: 0.4 * normal(), items: [] });
}

const affinity = (user, item) => {
  let s = 0;
  for (const g of item.genres) s += user.taste[g];
  return s / item.genres.size;
};

// Each user's movies: weighted sampling without replacement (Efraimidis-Spirakis), weight = popularity x genre taste.
for (const user of users) {
  const keys = items.map((item, i) => ({ i, k: Math.log(rand()) / (item.pop * Math.exp(0.6 * affinity(user, item))) }));
  keys.sort((a, b) => b.k - a.k);
  user.items = keys.slice(0, user.n).map((x) => x.i);
}
// Every movie rated at least once.
const rated = new Set(users.flatMap((x) => x.items));
for (let i = 0; i < ITEMS; i++) {
  if (rated.has(i)) continue;
  let user;
  do user = pick(users);
  while (user.items.includes(i));
  user.items.push(i);
}

// ---- ratings and timestamps ----
const lines = [];
users.forEach((user, u) => {
  // a few rating sessions; most ratings in the first one, seconds apart
  const sessions = 1 + Math.floor(Math.abs(normal()) * 2);
  const start = T_FIRST + int(T_LAST - T_FIRST - 86400 * 40);
  const sessionStart = Array.from({ length: sessions }, (_, s) => (s === 0 ? start : start + int(86400 * 40)));
  const clock = sessionStart.slice();
  for (const i of shuffle(user.items.slice())) {
    const s = rand() < 0.7 ? 0 : int(sessions);
    clock[s] += 5 + int(90);
    const item = items[i];
    const stars = Math.round(3.12 + item.quality + user.bias + 0.35 * affinity(user, item) + 1.0 * normal());
    lines.push(`${u + 1}\t${i + 1}\t${Math.max(1, Math.min(5, stars))}\t${Math.min(T_LAST, clock[s])}`);
  }
});
shuffle(lines);

// ---- files ----
mkdirSync(OUT, { recursive: true });
writeFileSync(path.join(OUT, 'u.data'), lines.join('\n') + '\n');
const itemLines = items.map((x, i) => {
  const flags = GENRES.map((_, g) => (x.genres.has(g) ? '1' : '0')).join('|');
  const url = x.date ? `http://us.imdb.com/M/title-exact?${encodeURIComponent(x.title).replace(/%20/g, '+')}` : '';
  return `${i + 1}|${x.title}|${x.date}||${url}|${flags}`;
});
writeFileSync(path.join(OUT, 'u.item'), Buffer.from(itemLines.join('\n') + '\n', 'latin1'));
writeFileSync(path.join(OUT, 'u.user'), users.map((x, u) => `${u + 1}|${x.age}|${x.gender}|${x.occupation}|${x.zip}`).join('\n') + '\n');
writeFileSync(path.join(OUT, 'u.genre'), GENRES.map((g, i) => `${g}|${i}`).join('\n') + '\n\n');
writeFileSync(path.join(OUT, 'u.occupation'), OCCUPATIONS.join('\n') + '\n');
writeFileSync(path.join(OUT, 'u.info'), `${USERS} users\n${ITEMS} items\n${lines.length} ratings\n`);
console.log(`${path.relative(process.cwd(), OUT) || '.'}: ${USERS} users, ${ITEMS} items, ${lines.length} ratings`);
