#!/usr/bin/env node
// Rewrite the results section of README.md from a report the quickstart wrote,
// so the numbers in the README are always the ones a run produced, never typed:
//
//   node scripts/readme-results.mjs p5rec-quickstart/report/report.json [--readme README.md] [--check]
//   node scripts/readme-results.mjs runs/bench-report/report.json --section benchmarks   (bench/ runs)
//
// Replaces everything between `<!-- results:start -->` and `<!-- results:end -->`
// (`--section NAME`: `<!-- NAME:start -->` … `<!-- NAME:end -->`). Outside the
// quickstart section tables also show the dataset, each fit's wall time and peak
// RSS, and the paper's published rows (marked).
// When the report's folder sits in a quickstart folder, its quickstart.json
// (stage timings, P5 recipe) is summarised too. --check exits 1 if the README
// would change (for CI), without writing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { readme: { type: 'string', default: join(root, 'README.md') }, check: { type: 'boolean', default: false }, section: { type: 'string', default: 'results' } },
});
const die = (msg) => {
  process.stderr.write(`readme-results: error: ${msg}\n`);
  process.exit(2);
};
if (positionals.length !== 1) die('usage: node scripts/readme-results.mjs REPORT_JSON [--readme README.md] [--check]');
const reportPath = resolve(positionals[0]);
if (!existsSync(reportPath)) die(`${reportPath}: not found (run \`p5rec quickstart\` first)`);
let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (e) {
  die(`${reportPath}: malformed JSON (${e.message})`);
}
if (!Array.isArray(report.tables)) die(`${reportPath}: not a p5rec report (no tables)`);

const SECTION = flags.section;
if (!/^[a-z][a-z0-9-]*$/.test(SECTION)) die(`--section must be a lowercase name, got '${SECTION}'`);
const BENCH = SECTION !== 'results';
const START = `<!-- ${SECTION}:start -->`;
const END = `<!-- ${SECTION}:end -->`;
const TITLES = {
  rating: 'Rating prediction (lower is better)',
  sequential: 'Sequential recommendation, all-item ranking',
  direct: 'Direct recommendation, 1 positive among 100 candidates',
  explanation: 'Explanation generation (×100)',
  review: 'Review summarization (×100)',
};
const fmt = (v) => (v === null || v === undefined ? '–' : v.toFixed(4));
/** `value ± se` where the run measured a standard error (older report.json files have none). */
const withSe = (v, se) => (se === null || se === undefined || v === null || v === undefined ? fmt(v) : `${fmt(v)} ± ${fmt(se)}`);

const lines = [START, ''];
const qsPath = join(dirname(dirname(reportPath)), 'quickstart.json');
if (!BENCH && existsSync(qsPath)) {
  const qs = JSON.parse(readFileSync(qsPath, 'utf8'));
  const byKind = (pred) => qs.stages.filter(pred).reduce((a, s) => a + s.seconds, 0);
  const p5 = qs.p5 ? byKind((s) => s.stage === 'fit p5') : 0;
  const p5Eval = byKind((s) => s.stage.startsWith('eval p5'));
  const rest = byKind((s) => s.stage !== 'fit p5' && !s.stage.startsWith('eval p5'));
  const reused = qs.stages.some((s) => s.reused);
  lines.push(`Produced by \`p5rec quickstart${qs.fast ? ' --fast' : ''}\` on ${qs.stats.users} users, ${qs.stats.items} items, ${qs.stats.interactions} interactions`
    + ` (${qs.host ?? 'this machine'}): ${Math.round(qs.seconds)} s in all${reused ? ' (some stages reused from an earlier run)' : ''} — `
    + `P5 training ${Math.round(p5)} s, P5 evaluation ${Math.round(p5Eval)} s, everything else ${Math.round(rest)} s.`);
  if (qs.p5) lines.push('', `P5 recipe: \`${JSON.stringify(qs.p5.recipe)}\`.`);
  if (qs.slice) {
    const sl = qs.slice;
    lines.push('', `Then the titled Beauty slice (${sl.stats.users} users, ${sl.stats.items} items, ${sl.stats.interactions} interactions; product names for the page and the LLM recommender): `
      + `${sl.models.join(', ')}${sl.llm?.file ? `, and the bundled stories260K GGUF on ${sl.llm.count} users as a smoke row (a 260K-parameter toy model: it shows the LLM path runs, not a recommender)` : ''}.`);
  }
  if (qs.fast) lines.push('', '**A `--fast` smoke run: few epochs, a few P5 steps, the first 40 users/rows evaluated. Not results.**');
  lines.push('');
}
const MANY = new Set(report.tables.map((t) => t.dataset)).size > 1;
for (const t of report.tables) {
  const ours = t.rows.filter((r) => !r.published);
  if (!ours.length || (BENCH && t.split !== 'test')) continue;
  const rows = BENCH ? t.rows : ours;
  const counts = [...new Set(ours.map((r) => r.count).filter((c) => c !== undefined))];
  const unit = t.task === 'rating' ? 'ratings' : ['explanation', 'review'].includes(t.task) ? 'rows' : 'users';
  lines.push(`**${BENCH || MANY ? `${t.dataset} — ` : ''}${TITLES[t.task] ?? t.task}** (${t.split}, ${counts.join('/')} ${unit})`, '');
  const extra = BENCH ? ['fit (s)', 'peak RSS (MB)'] : [];
  lines.push(`| model | ${[...t.columns, ...extra].join(' | ')} |`, `|---|${[...t.columns, ...extra].map(() => '---:').join('|')}|`);
  for (const r of rows) {
    const more = BENCH ? [r.fitSeconds === undefined ? '–' : r.fitSeconds.toFixed(1), r.peakRssMB ?? '–'] : [];
    lines.push(`| ${r.published ? `*${r.model} (published)*` : r.model} | ${[...r.values.map((v, i) => withSe(v, r.se?.[i])), ...more].join(' | ')} |`);
  }
  lines.push('');
}
lines.push(`<sub>Written by \`scripts/readme-results.mjs\` from the run's \`report.json\`${BENCH ? '' : ' and `quickstart.json`'}; do not edit by hand.</sub>`, '', END);

const readme = readFileSync(flags.readme, 'utf8');
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < a) die(`${flags.readme}: no '${START}' … '${END}' section to replace`);
const next = readme.slice(0, a) + lines.join('\n') + readme.slice(b + END.length);
if (flags.check) {
  if (next !== readme) {
    process.stderr.write(`readme-results: ${flags.readme} is out of date with ${positionals[0]}\n`);
    process.exit(1);
  }
  process.exit(0);
}
writeFileSync(flags.readme, next);
process.stderr.write(`readme-results: wrote ${report.tables.length} tables into ${flags.readme}\n`);
