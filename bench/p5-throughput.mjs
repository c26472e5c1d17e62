#!/usr/bin/env node
/**
 * P5 training throughput on the Beauty workload: training examples (prompts)
 * per second of step time, for the recipe before issue 12 (plain ids with
 * item and user pieces, the sequential and direct families: the old
 * `bench:p5-beauty` default) and the current one (independent item ids, the
 * all-item next-item prompts 2-1..2-3), on the same tiny d-64 T5 and on the
 * d-128 model the current recipe trains. Corpus building and the tokenizer
 * are excluded (they are reported apart); each run trains `--steps` steps.
 * With `--rounds N` the recipes run in turn N times (old, new, new128, old,
 * …), so a drift in the machine's speed hits every recipe alike; the table
 * gives each recipe's median and the median of the per-round ratios to the
 * old recipe.
 *
 * With `--vs-bin OTHER/bin/p5rec.js` every recipe also runs, in the same
 * round, with another checkout's CLI, and the table adds its examples/s and
 * the per-round ratio this/other (a code change measured on the same recipe).
 *
 * With `--old-bin OLD/bin/p5rec.js` the old recipe runs with that checkout's
 * CLI instead (the code of the day issue 12 was filed, commit 70c3729), so
 * "× before" compares today's code and recipe with that day's code and
 * recipe. Its examples/s is computed as p5rec's own figure is: steps × the
 * corpus's mean prompts per batch over the summed step times of its train
 * log (that CLI printed no examples/s).
 *
 *   npm run bench:p5-throughput -- [--steps 300] [--rounds 1] [--workdir DIR] [--only old,new,new128] [--vs-bin PATH] [--old-bin PATH] [--json]
 *
 * Not run in CI (needs ../shared/datasets/amazon-beauty). For a timing of the
 * whole command over several runs: farm-bench.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, BIN, importBeautyArgs, opt, ROOT } from './beauty-common.mjs';
const WORK = resolve(opt('--workdir', join(ROOT, 'runs/p5-throughput')));
const STEPS = opt('--steps', '300');
const ONLY = opt('--only', undefined)?.split(',');
const ROUNDS = Number(opt('--rounds', '1'));
// Another checkout's CLI (e.g. an older commit's bin/p5rec.js), run alternately with this one's in every round.
const VS_BIN = opt('--vs-bin', undefined);
// The checkout the old recipe runs with (default: this one).
const OLD_BIN = opt('--old-bin', undefined);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds must be a positive integer, got '${opt('--rounds')}'`);
const TINY = '{"preset":"tiny"}';
const D128 = '{"preset":"tiny","d_model":128,"d_kv":32,"d_ff":512}';
const COMMON = ['--epochs', '1', '--steps', STEPS, '--batch-tokens', '8192', '--max-batch', '128', '--lr', '2e-3', '--negatives', '19', '--checkpoint-every', '0'];
const RECIPES = {
  old: { about: 'before: plain ids, --item-pieces --user-pieces, sequential+direct (tiny d64)', flags: ['--config', TINY, '--tasks', 'sequential,direct', '--item-pieces', '--user-pieces'] },
  new: { about: 'now: independent ids, 2-1..2-3 (tiny d64)', flags: ['--config', TINY, '--tasks', 'sequential', '--train-prompts', '2-1,2-2,2-3', '--item-ids', 'independent'] },
  new128: { about: 'now, the recipe model: independent ids, 2-1..2-3 (d128)', flags: ['--config', D128, '--tasks', 'sequential', '--train-prompts', '2-1,2-2,2-3', '--item-ids', 'independent'] },
};
const log = (m) => process.stderr.write(`[bench:p5-throughput] ${m}\n`);

function p5rec(cliArgs, bin = BIN) {
  const r = spawnSync(process.execPath, [bin, ...cliArgs, '--json', '--quiet'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  const last = (r.stdout ?? '').trim().split('\n').at(-1);
  let json = null;
  try {
    json = JSON.parse(last);
  } catch {
    /* reported below */
  }
  if (r.status !== 0 || !json?.ok) throw new Error(`p5rec ${cliArgs.slice(0, 2).join(' ')} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').at(-1)}`);
  return json;
}

/** Older CLIs print no examples/s: derive it from the train log as src/p5/train.ts does (one batch per step). */
function withExamplesPerSec(j, out) {
  if (typeof j.examplesPerSec === 'number') return j;
  const records = readFileSync(join(out, 'train', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => typeof r.stepMs === 'number');
  const ms = records.reduce((a, r) => a + r.stepMs, 0);
  return { ...j, examplesPerSec: ms ? (records.length * (j.examples / j.batches)) / (ms / 1000) : 0 };
}

mkdirSync(WORK, { recursive: true });
const ds = join(WORK, 'dataset');
if (!existsSync(join(ds, 'manifest.json'))) {
  log('importing Beauty (random ids)');
  p5rec(importBeautyArgs(ds));
}
const runs = Object.fromEntries(Object.keys(RECIPES).map((k) => [k, []]));
const vs = {};
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, r] of Object.entries(RECIPES)) {
    if (ONLY && !ONLY.includes(name)) continue;
    const out = join(WORK, name);
    rmSync(out, { recursive: true, force: true });
    log(`${name}: ${r.about}, ${STEPS} steps${ROUNDS > 1 ? ` (round ${round}/${ROUNDS})` : ''}`);
    const t0 = Date.now();
    const bin = name === 'old' && OLD_BIN ? OLD_BIN : BIN;
    const j = withExamplesPerSec(p5rec(['train', ds, '--out', out, ...r.flags, ...COMMON], bin), out);
    runs[name].push({ j, wall: (Date.now() - t0) / 1000 });
    rmSync(out, { recursive: true, force: true });
    if (VS_BIN) {
      log(`${name}: the same with ${VS_BIN}`);
      (vs[name] ??= []).push(p5rec(['train', ds, '--out', out, ...r.flags, ...COMMON], VS_BIN));
      rmSync(out, { recursive: true, force: true });
    }
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round2 = (x) => Math.round(x * 100) / 100;
const rows = [];
for (const [name, r] of Object.entries(RECIPES)) {
  const rs = runs[name];
  if (!rs.length) continue;
  const j = rs[0].j;
  // Per round, this recipe's examples/s over the old recipe's in the same round.
  const ratios = runs.old.length === rs.length ? rs.map((x, i) => x.j.examplesPerSec / runs.old[i].j.examplesPerSec) : [];
  rows.push({
    recipe: name, about: r.about, steps: j.steps, vocab: j.vocab, parameters: j.parameters,
    promptsPerBatch: Math.round(j.examples / j.batches),
    examplesPerSec: Math.round(median(rs.map((x) => x.j.examplesPerSec))), tokensPerSec: Math.round(median(rs.map((x) => x.j.tokensPerSec))),
    wallSeconds: Math.round(median(rs.map((x) => x.wall))), peakRssMB: Math.max(...rs.map((x) => x.j.peakRssMB)),
    rounds: rs.length, perRound: rs.map((x) => Math.round(x.j.examplesPerSec)),
    speedup: ratios.length ? round2(median(ratios)) : null, speedupPerRound: ratios.map(round2),
    ...(vs[name] ? {
      vsExamplesPerSec: Math.round(median(vs[name].map((x) => x.examplesPerSec))),
      vsRatio: round2(median(rs.map((x, i) => x.j.examplesPerSec / vs[name][i].examplesPerSec))),
      vsRatioPerRound: rs.map((x, i) => Math.round((x.j.examplesPerSec / vs[name][i].examplesPerSec) * 1000) / 1000),
    } : {}),
  });
}
if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ steps: Number(STEPS), rounds: ROUNDS, ...(OLD_BIN ? { oldBin: OLD_BIN } : {}), rows })}\n`);
else {
  console.log(`P5 training throughput on Beauty, ${STEPS} steps each, ${ROUNDS} round(s) (examples/s of step time, median over rounds; corpus build excluded)${OLD_BIN ? `; the old recipe ran with ${OLD_BIN}` : ''}`);
  console.log('| recipe | vocab | parameters | prompts/batch | examples/s (per round) | tok/s | × before (per round) | peak RSS MB |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.about} | ${r.vocab} | ${r.parameters} | ${r.promptsPerBatch} | ${r.examplesPerSec} (${r.perRound.join(', ')}) | ${r.tokensPerSec} | ${r.speedup ?? '—'} (${r.speedupPerRound.join(', ')}) | ${r.peakRssMB} |`);
  if (VS_BIN) {
    console.log(`\nThe same recipes with ${VS_BIN}, alternately in each round:`);
    console.log('| recipe | examples/s here | examples/s there | here/there (per round) |\n|---|---|---|---|');
    for (const r of rows) if (r.vsRatio) console.log(`| ${r.recipe} | ${r.examplesPerSec} | ${r.vsExamplesPerSec} | ${r.vsRatio} (${r.vsRatioPerRound.join(', ')}) |`);
  }
}
