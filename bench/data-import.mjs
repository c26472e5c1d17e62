#!/usr/bin/env node
// Import benchmark: wall time and peak RSS of each import, each in its own
// process (so peak RSS is that import's). Needs a built dist/.
//   npm run bench:data                          real datasets from ../shared/datasets
//   npm run bench:data -- --synthetic 1.5G      a generated Amazon-style gzip JSONL of that
//                                               many uncompressed bytes (K/M/G suffixes), imported once;
//                                               the count (and the duplicates planted in it) are checked
// Prints a table, or JSON with --json.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(root, '../shared/datasets');
const runs = Number(process.env.BENCH_RUNS ?? 3);

const cases = {
  beauty: { target: 5, args: ['p5', '--sequences', `${shared}/amazon-beauty/sequential.txt`, '--datamaps', `${shared}/amazon-beauty/datamaps.json`, '--meta', `${shared}/amazon-beauty/meta.jsonl`] },
  'musical-instruments': { target: 2, args: ['amazon', '--reviews', `${shared}/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz`] },
  'movielens-100k': { target: 2, args: ['movielens', '--dir', `${shared}/movielens-100k`] },
};

if (process.argv[2] === '--one') {
  // Child mode: run one import in-process through the CLI entry and report.
  const { main } = await import(join(root, 'dist/cli/main.js'));
  const t0 = performance.now();
  const args = process.argv[3] === '--args' ? JSON.parse(process.argv[4]) : cases[process.argv[3]].args;
  await main(['node', 'p5rec', 'data', 'import', ...args, '--out', process.argv[5] ?? process.argv[4], '--quiet', '--json']);
  const seconds = (performance.now() - t0) / 1000;
  process.stderr.write(`${JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
  process.exit(process.exitCode ?? 0);
}

const synth = process.argv.indexOf('--synthetic');
if (synth !== -1) {
  await synthetic(parseSize(process.argv[synth + 1] ?? '1G'));
  process.exit(0);
}

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)B?$/i.exec(s);
  if (!m) throw new Error(`--synthetic takes a size like 500M or 1.5G, got '${s}'`);
  return Math.round(Number(m[1]) * { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[m[2].toUpperCase()]);
}

/**
 * Amazon 2018-style review lines (ids, rating, time, summary, plus fields the
 * importer skips), every (user, item) pair distinct: user k % U holds items
 * (j + 13u) % I for its j-th review. Every 1000th line is written twice, so
 * the import must report exactly that many duplicates.
 */
async function synthetic(bytes) {
  const tmp = mkdtempSync(join(tmpdir(), 'p5rec-bench-synth-'));
  const input = join(tmp, 'reviews.json.gz');
  const words = ['great', 'sound', 'cheap', 'sturdy', 'works', 'broke', 'love', 'tone', 'cable', 'strap', 'tuner', 'nice', 'meh', 'solid', 'buy'];
  // Scrambled ids and a seeded word salad, so the gzip ratio is near a real dump's (~4x), not 20x.
  const mix = (x) => {
    x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
    x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
    return (x ^ (x >>> 16)) >>> 0;
  };
  const id = (prefix, x, len) => `${prefix}${(mix(x) * 4096 + (x % 4096)).toString(36).toUpperCase().padStart(len, '0')}`;
  const salad = (k, n) => Array.from({ length: n }, (_, w) => words[mix(k * 31 + w) % 15]).join(' ');
  const lineAt = (k, U, I) => {
    const u = k % U;
    const j = Math.floor(k / U);
    return `{"overall": ${1 + (mix(k) % 5)}.0, "verified": ${k % 3 !== 0}, "reviewTime": "01 1, 2015", "reviewerID": "${id('A', u, 13)}", "asin": "${id('B', (j + 13 * u) % I, 9)}", "reviewText": "${salad(k, 12)}", "summary": "${salad(k + 7, 3)}", "unixReviewTime": ${1400000000 + k}}\n`;
  };
  const approx = lineAt(123456, 1000, 1000).length;
  const rows = Math.max(1000, Math.floor(bytes / approx));
  const U = Math.max(10, Math.floor(rows / 12));
  const I = Math.max(1000, Math.floor(rows / 25));
  const t0 = performance.now();
  const gz = createGzip({ level: 1 });
  const file = createWriteStream(input);
  gz.pipe(file);
  let raw = 0;
  let dups = 0;
  let buf = '';
  for (let k = 0; k < rows; k++) {
    const line = lineAt(k, U, I);
    buf += line;
    if (k % 1000 === 999) {
      buf += line;
      dups++;
    }
    if (buf.length > 1 << 20) {
      raw += Buffer.byteLength(buf);
      if (!gz.write(buf)) await once(gz, 'drain');
      buf = '';
    }
  }
  raw += Buffer.byteLength(buf);
  gz.end(buf);
  await once(file, 'finish');
  const genSeconds = (performance.now() - t0) / 1000;
  const gzBytes = statSync(input).size;
  process.stderr.write(`generated ${input}: ${(raw / 2 ** 30).toFixed(2)} GiB JSONL, ${(gzBytes / 2 ** 30).toFixed(2)} GiB gzip, ${rows + dups} lines (${dups} duplicates) in ${genSeconds.toFixed(1)}s\n`);
  const out = join(tmp, 'ds');
  const t1 = performance.now();
  const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--one', '--args', JSON.stringify(['amazon', '--reviews', input, '--negatives', '99']), out], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = (performance.now() - t1) / 1000;
  rmSync(tmp, { recursive: true, force: true });
  if (p.status !== 0) throw new Error(`synthetic import failed (${p.status}): ${p.stderr}`);
  const m = JSON.parse(p.stderr.trim().split('\n').pop());
  const result = JSON.parse(p.stdout.trim().split('\n').pop());
  const c = result.counts;
  const ok = c.interactions === rows && c.duplicates === dups && c.repeats === 0 && c.users === U;
  const summary = {
    inputJsonlBytes: raw, inputGzipBytes: gzBytes, lines: rows + dups, expectedInteractions: rows, interactions: c.interactions,
    duplicates: c.duplicates, users: c.users, items: c.items, importSeconds: Number(m.seconds.toFixed(1)), processSeconds: Number(wall.toFixed(1)),
    peakRssMB: Math.round(m.peakRssMB), countOk: ok,
  };
  if (process.argv.includes('--json')) console.log(JSON.stringify(summary));
  else {
    console.log('| input (JSONL / gzip) | lines | interactions (expected) | duplicates | users | items | import (s) | peak RSS (MB) | count |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(`| ${(raw / 2 ** 30).toFixed(2)} GiB / ${(gzBytes / 2 ** 30).toFixed(2)} GiB | ${rows + dups} | ${c.interactions} (${rows}) | ${c.duplicates} | ${c.users} | ${c.items} | ${summary.importSeconds} | ${summary.peakRssMB} | ${ok ? 'right' : 'WRONG'} |`);
  }
  if (!ok) process.exitCode = 1;
}

const results = [];
for (const [name, c] of Object.entries(cases)) {
  const times = [];
  let rss = 0;
  for (let r = 0; r < runs; r++) {
    const tmp = mkdtempSync(join(tmpdir(), 'p5rec-bench-'));
    const t0 = performance.now();
    const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--one', name, join(tmp, 'ds')], { encoding: 'utf8' });
    const wall = (performance.now() - t0) / 1000;
    rmSync(tmp, { recursive: true, force: true });
    if (p.status !== 0) throw new Error(`${name} failed: ${p.stderr}`);
    const m = JSON.parse(p.stderr.trim().split('\n').pop());
    times.push({ import: m.seconds, process: wall });
    rss = Math.max(rss, m.peakRssMB);
  }
  const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  results.push({ dataset: name, runs, importSeconds: med(times.map((t) => t.import)), processSeconds: med(times.map((t) => t.process)), peakRssMB: Math.round(rss), targetSeconds: c.target });
}
if (process.argv.includes('--json')) console.log(JSON.stringify({ results }));
else {
  console.log('| dataset | import (s, median) | whole process (s) | peak RSS (MB) | target (s) |');
  console.log('|---|---|---|---|---|');
  for (const r of results) console.log(`| ${r.dataset} | ${r.importSeconds.toFixed(2)} | ${r.processSeconds.toFixed(2)} | ${r.peakRssMB} | ≤ ${r.targetSeconds} |`);
}
