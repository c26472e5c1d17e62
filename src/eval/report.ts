import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { withAtomicDir, writeFileAtomic } from '../util/atomic.js';
import { BEAUTY_PUBLISHED } from './published.js';

/** One evaluation as `p5rec eval` writes it (model/evals/<task>-<split>.json). */
export interface Run {
  model: string;
  kind: string;
  label?: string;
  dataset: string;
  itemIndex?: string;
  seed?: number;
  task: 'rating' | 'direct' | 'sequential' | 'explanation' | 'review';
  split: string;
  protocol: string;
  metrics: Record<string, number>;
  count: number;
  fit?: { seconds?: number; peakRssMB?: number };
  /** Set when the dataset is Amazon Beauty (published rows are added). */
  beauty?: boolean;
  /** Extra columns a model wants shown (refinement counts, cost...). */
  notes?: string;
}

const TASK_TITLES: Record<string, string> = { explanation: 'Explanation generation', review: 'Review summarization', rating: 'Rating prediction', sequential: 'Sequential recommendation (all-item ranking)', direct: 'Direct recommendation (1 positive among 100 candidates)' };
const METRIC_ORDER: Record<string, string[]> = {
  rating: ['RMSE', 'MAE'],
  sequential: ['HR@5', 'NDCG@5', 'HR@10', 'NDCG@10', 'HR@20', 'NDCG@20'],
  direct: ['HR@1', 'HR@5', 'NDCG@5', 'HR@10', 'NDCG@10'],
  explanation: ['BLEU-4', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L'],
  review: ['BLEU-2', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L'],
};

/** Gather runs from eval JSON files, or model folders (their evals/ folder). */
export function collectRuns(paths: string[]): Run[] {
  const runs: Run[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new InputError('run not found', { file: p });
    const files = statSync(p).isDirectory()
      ? existsSync(join(p, 'evals')) ? readdirSync(join(p, 'evals')).filter((f) => f.endsWith('.json')).map((f) => join(p, 'evals', f)) : readdirSync(p).filter((f) => f.endsWith('.json')).map((f) => join(p, f))
      : [p];
    for (const f of files.sort()) {
      let r: Run;
      try {
        r = JSON.parse(readFileSync(f, 'utf8'));
      } catch (e) {
        throw new InputError(`malformed JSON (${(e as Error).message})`, { file: f });
      }
      if (!r || typeof r !== 'object' || !r.task || !r.metrics) throw new InputError('not an evaluation result (needs task and metrics)', { file: f });
      runs.push(r);
    }
  }
  if (runs.length === 0) throw new InputError('no evaluation results found in the given runs');
  return runs;
}

interface Table {
  dataset: string;
  task: string;
  split: string;
  columns: string[];
  rows: { model: string; published: boolean; source?: string; values: (number | null)[]; count?: number; fitSeconds?: number; peakRssMB?: number; notes?: string }[];
}

export function buildTables(runs: Run[]): Table[] {
  const groups = new Map<string, Run[]>();
  for (const r of runs) {
    const key = `${r.dataset}\u0000${r.task}\u0000${r.split}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const tables: Table[] = [];
  for (const [key, rs] of groups) {
    const [dataset, task, split] = key.split('\u0000');
    const seen = new Set(rs.flatMap((r) => Object.keys(r.metrics)));
    const columns = [...(METRIC_ORDER[task] ?? []).filter((m) => seen.has(m)), ...[...seen].filter((m) => !(METRIC_ORDER[task] ?? []).includes(m)).sort()];
    const rows: Table['rows'] = rs.map((r) => ({
      model: r.label ?? `${r.kind}${r.itemIndex ? ` (${r.itemIndex} ids)` : ''}`,
      published: false,
      values: columns.map((c) => r.metrics[c] ?? null),
      count: r.count,
      fitSeconds: r.fit?.seconds,
      peakRssMB: r.fit?.peakRssMB,
      notes: r.notes,
    }));
    if (rs.some((r) => r.beauty) && split === 'test') {
      for (const p of BEAUTY_PUBLISHED.filter((x) => x.task === task)) {
        rows.push({ model: p.model, published: true, source: p.source, values: columns.map((c) => p.metrics[c] ?? null) });
      }
    }
    tables.push({ dataset, task, split, columns, rows });
  }
  const order = ['rating', 'sequential', 'explanation', 'review', 'direct'];
  return tables.sort((a, b) => a.dataset.localeCompare(b.dataset) || order.indexOf(a.task) - order.indexOf(b.task) || a.split.localeCompare(b.split));
}

const fmt = (v: number | null): string => (v === null ? '–' : v.toFixed(4));

export function renderMarkdown(tables: Table[]): string {
  const out: string[] = ['# p5rec report', ''];
  for (const t of tables) {
    out.push(`## ${t.dataset} — ${TASK_TITLES[t.task] ?? t.task} (${t.split})`, '');
    out.push(`| model | ${t.columns.join(' | ')} | fit (s) | peak RSS (MB) |`);
    out.push(`|---|${t.columns.map(() => '---').join('|')}|---|---|`);
    for (const r of t.rows) {
      const name = r.published ? `${r.model} *(published: ${r.source})*` : r.model;
      out.push(`| ${name} | ${r.values.map(fmt).join(' | ')} | ${r.fitSeconds !== undefined ? r.fitSeconds.toFixed(1) : '–'} | ${r.peakRssMB ?? '–'} |`);
    }
    const notes = t.rows.filter((r) => r.notes).map((r) => `- ${r.model}: ${r.notes}`);
    if (notes.length) out.push('', ...notes);
    out.push('');
  }
  if (tables.some((t) => t.rows.some((r) => r.published))) out.push('Published rows are copied from the cited papers, not rerun; P5-paper rows on sequential ids carry the item-numbering leak.', '');
  return out.join('\n');
}

export function renderHtml(tables: Table[]): string {
  const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
  const sections = tables.map((t) => {
    const head = `<tr><th>model</th>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}<th>fit (s)</th></tr>`;
    const body = t.rows.map((r) => `<tr class="${r.published ? 'pub' : ''}"><td>${esc(r.model)}${r.published ? ` <small>(published: ${esc(r.source ?? '')})</small>` : ''}</td>${r.values.map((v) => `<td>${fmt(v)}</td>`).join('')}<td>${r.fitSeconds !== undefined ? r.fitSeconds.toFixed(1) : '–'}</td></tr>`).join('');
    // One bar chart per table for its headline metric.
    const metric = t.task === 'rating' ? 'RMSE' : t.columns.includes('HR@10') ? 'HR@10' : t.columns[0];
    const ci = t.columns.indexOf(metric);
    const vals = t.rows.map((r) => ({ name: r.model, v: ci >= 0 ? r.values[ci] : null, pub: r.published })).filter((x) => x.v !== null) as { name: string; v: number; pub: boolean }[];
    const max = Math.max(...vals.map((x) => x.v), 1e-9);
    const bh = 22;
    const svg = `<svg role="img" aria-label="${esc(metric)} by model" width="640" height="${vals.length * bh + 10}" xmlns="http://www.w3.org/2000/svg">${vals.map((x, i) => `<g transform="translate(0,${i * bh + 5})"><text x="230" y="15" text-anchor="end" font-size="12">${esc(x.name.slice(0, 34))}</text><rect x="240" y="2" height="16" width="${((x.v / max) * 320).toFixed(1)}" fill="${x.pub ? '#bbb' : '#3b6fb6'}"/><text x="${(245 + (x.v / max) * 320).toFixed(1)}" y="15" font-size="12">${x.v.toFixed(4)}</text></g>`).join('')}</svg>`;
    return `<section><h2>${esc(t.dataset)} — ${esc(TASK_TITLES[t.task] ?? t.task)} (${esc(t.split)})</h2><table>${head}${body}</table><h3>${esc(metric)}</h3>${svg}</section>`;
  }).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>p5rec report</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:980px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}tr.pub{color:#666;font-style:italic}h2{margin-top:1.6em}</style></head><body><h1>p5rec report</h1>${sections}<p><small>Grey rows are published figures copied from the cited papers, not rerun.</small></p></body></html>\n`;
}

/** Write report.md, report.json and report.html into `out` (atomically). */
export async function writeReport(runs: Run[], out: string, force = false): Promise<{ tables: Table[]; files: string[] }> {
  const tables = buildTables(runs);
  await withAtomicDir(out, async (tmp) => {
    writeFileAtomic(join(tmp, 'report.md'), renderMarkdown(tables));
    writeFileAtomic(join(tmp, 'report.json'), `${JSON.stringify({ tables, runs }, null, 2)}\n`);
    writeFileAtomic(join(tmp, 'report.html'), renderHtml(tables));
  }, { overwrite: force });
  return { tables, files: ['report.md', 'report.json', 'report.html'].map((f) => join(out, f)) };
}
