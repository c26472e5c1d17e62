#!/usr/bin/env node
// Import benchmark: wall time and peak RSS of each real-data import, each in
// its own process (so peak RSS is that import's). Run: npm run bench:data
// (needs ../shared/datasets and a built dist/). Prints a table, or JSON with --json.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
  await main(['node', 'p5rec', 'data', 'import', ...cases[process.argv[3]].args, '--out', process.argv[4], '--quiet', '--json']);
  const seconds = (performance.now() - t0) / 1000;
  process.stderr.write(`${JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
  process.exit(process.exitCode ?? 0);
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
