import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { withAtomicDir, writeFileAtomic, type OutputKind } from '../util/atomic.js';
import { readLearningCurve, type LearningCurve } from './curves.js';
import { renderHtml } from './report-html.js';
import { buildHeader, buildTables, fmt, marginText, TASK_TITLES, TEST_NOTE, withSe, type ReportHeader, type Run, type Table } from './report-tables.js';

export { buildHeader, buildTables, margin, pairRuns, type Margin, type ReportHeader, type Run, type Table, type TableRow } from './report-tables.js';

/** Gather runs from eval JSON files, or model folders (their evals/); returns what was skipped and why. */
export function collectRuns(paths: string[]): Run[] {
  return collectRunsWithSkips(paths).runs;
}

export function collectRunsWithSkips(paths: string[]): { runs: Run[]; skipped: { file: string; reason: string }[] } {
  const runs: Run[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new InputError('run not found', { file: p });
    let files: string[];
    let dir: string | undefined;
    if (statSync(p).isDirectory()) {
      if (existsSync(join(p, 'evals'))) {
        dir = p;
        files = readdirSync(join(p, 'evals')).filter((f) => f.endsWith('.json')).map((f) => join(p, 'evals', f));
      } else if (existsSync(join(p, 'model.json'))) {
        // A model folder that was never evaluated (a shell glob such as models/* brings these in).
        skipped.push({ file: p, reason: 'model folder without evals/' });
        continue;
      } else {
        files = readdirSync(p).filter((f) => f.endsWith('.json')).map((f) => join(p, f));
      }
    } else if (p.endsWith('.recipe.json')) {
      // The quickstart's record of how a model was fitted, beside the model folder: not an evaluation.
      skipped.push({ file: p, reason: 'a quickstart recipe, not an evaluation' });
      continue;
    } else {
      files = [p];
      if (basename(dirname(p)) === 'evals' && existsSync(join(dirname(dirname(p)), 'model.json'))) dir = dirname(dirname(p));
    }
    for (const f of files.sort()) {
      let r: Run;
      try {
        r = JSON.parse(readFileSync(f, 'utf8'));
      } catch (e) {
        throw new InputError(`malformed JSON (${(e as Error).message})`, { file: f });
      }
      if (!r || typeof r !== 'object' || !r.task || !r.metrics) throw new InputError('not an evaluation result (needs task and metrics)', { file: f });
      if (typeof r.count !== 'number') throw new InputError('not an evaluation result (needs count, the number of users or rows scored)', { file: f, field: 'count' });
      runs.push(dir ? { ...r, dir } : r);
    }
  }
  if (runs.length === 0) throw new InputError('no evaluation results found in the given runs');
  return { runs, skipped };
}

/** Learning curves of every evaluated model folder that recorded one, once per folder. */
export function collectCurves(runs: Run[]): LearningCurve[] {
  const dirs = [...new Set(runs.map((r) => r.dir).filter((d): d is string => d !== undefined))];
  return dirs.map((d) => readLearningCurve(d)).filter((c): c is LearningCurve => c !== undefined);
}

export function renderMarkdown(tables: Table[], header?: ReportHeader, curves: LearningCurve[] = []): string {
  const out: string[] = ['# p5rec report', ''];
  if (header) {
    out.push(`Generated ${header.generated} by p5rec ${header.p5rec}; commit ${header.commits.join(', ') || 'unrecorded'}; host ${header.hosts.join(', ') || 'unrecorded'}.`, '');
    out.push('| dataset | fingerprint | split seed |', '|---|---|---|', ...header.datasets.map((d) => `| ${d.name} | ${d.fingerprint ?? '–'} | ${d.seed ?? '–'} |`), '');
  }
  out.push(`Every value is the mean over the n users (ranking) or rows (rating, text) scored, ± its standard error (text: bootstrap). ${TEST_NOTE}`, '');
  for (const t of tables) {
    out.push(`## ${t.dataset} — ${TASK_TITLES[t.task] ?? t.task} (${t.split})`, '');
    const base = t.rows.find((r) => r.vs)?.vs?.baseline;
    out.push(`| model | n | ${t.columns.join(' | ')} | ${base ? `${t.headline} vs ${base}` : 'vs baseline'} | fit (s) | peak RSS (MB) |`);
    out.push(`|---|---|${t.columns.map(() => '---').join('|')}|---|---|---|`);
    for (const r of t.rows) {
      const name = r.published ? `${r.model} *(published: ${r.source})*` : r.model;
      out.push(`| ${name} | ${r.count ?? '–'} | ${r.values.map((v, i) => withSe(v, r.se[i])).join(' | ')} | ${marginText(r.vs)} | ${r.fitSeconds !== undefined ? r.fitSeconds.toFixed(1) : '–'} | ${r.peakRssMB ?? '–'} |`);
    }
    const notes = t.rows.filter((r) => r.notes).map((r) => `- ${r.model}: ${r.notes}`);
    if (notes.length) out.push('', ...notes);
    out.push('');
  }
  if (tables.some((t) => t.rows.some((r) => r.published))) out.push('Published rows are copied from the cited papers, not rerun; P5-paper rows on sequential ids carry the item-numbering leak.', '');
  if (curves.length) {
    out.push('## Learning curves', '');
    for (const c of curves) {
      const first = c.loss[0], last = c.loss[c.loss.length - 1];
      out.push(`### ${basename(c.model)} (${c.kind})`, '');
      if (first) out.push(`Training loss ${fmt(first.y)} at ${c.xLabel} ${first.x} → ${fmt(last.y)} at ${c.xLabel} ${last.x}.`, '');
      if (c.valid) {
        out.push(`| ${c.xLabel} | valid ${c.valid.metric} |`, '|---|---|');
        for (const p of c.valid.points) out.push(`| ${p.x}${p === c.valid.best ? ' (best)' : ''} | ${withSe(p.y, p.se ?? null)} |`);
        out.push('');
      }
    }
  }
  return out.join('\n');
}

/** Write report.md, report.json and report.html into `out` (atomically). */
/** A report folder is one whose report.json holds tables and runs (what `report --force` may replace). */
export const REPORT_OUTPUT: OutputKind = {
  what: 'p5rec report folder',
  marker: 'report.json',
  owns: (dir) => {
    try {
      const r = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
      return Array.isArray(r.tables) && Array.isArray(r.runs);
    } catch {
      return false;
    }
  },
};

export async function writeReport(runs: Run[], out: string, force = false): Promise<{ tables: Table[]; files: string[] }> {
  const tables = buildTables(runs);
  const header = buildHeader(runs);
  const curves = collectCurves(runs);
  await withAtomicDir(out, async (tmp) => {
    writeFileAtomic(join(tmp, 'report.md'), renderMarkdown(tables, header, curves));
    // Per-user ranks stay in the run files: the tables carry the paired margins they gave.
    writeFileAtomic(join(tmp, 'report.json'), `${JSON.stringify({ header, tables, curves, runs: runs.map(({ perUser: _, ...r }) => r) }, null, 2)}\n`);
    writeFileAtomic(join(tmp, 'report.html'), renderHtml(tables, header, curves));
  }, { force, kind: REPORT_OUTPUT });
  return { tables, files: ['report.md', 'report.json', 'report.html'].map((f) => join(out, f)) };
}
