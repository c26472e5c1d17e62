/**
 * The HTML face of a report: the same tables as report.md, a bar chart of each
 * table's headline metric with ±1 SE whiskers (drawn only when the rows
 * differ), and a line chart per learning curve. Plain inline SVG, no scripts.
 */
import { basename } from 'node:path';
import type { CurvePoint, LearningCurve } from './curves.js';
import { fmt, marginText, TASK_TITLES, TEST_NOTE, withSe, type ReportHeader, type Table } from './report-tables.js';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
/** Approximate width of 12 px system-ui text, so full labels fit beside their bars. */
const textWidth = (s: string): number => Math.ceil(s.length * 6.6) + 12;

/** Bars of the headline metric, or '' when fewer than two rows have it or all are equal (nothing to compare). */
export function barChart(t: Table): string {
  const ci = t.columns.indexOf(t.headline);
  if (ci < 0) return '';
  const vals = t.rows.filter((r) => r.values[ci] !== null).map((r) => ({ name: r.model, v: r.values[ci] as number, se: r.se[ci], pub: r.published }));
  if (vals.length < 2 || vals.every((x) => x.v === vals[0].v)) return '';
  const labelW = Math.min(520, Math.max(...vals.map((x) => textWidth(x.name))));
  const barW = 320;
  const max = Math.max(...vals.map((x) => x.v + (x.se ?? 0)), 1e-9);
  const bh = 22;
  const scale = (v: number): number => (Math.max(0, v) / max) * barW;
  const bars = vals.map((x, i) => {
    const w = scale(x.v);
    const whisker = x.se !== null ? `<line class="se" x1="${(labelW + scale(x.v - x.se)).toFixed(1)}" x2="${(labelW + scale(x.v + x.se)).toFixed(1)}" y1="10" y2="10" stroke="#222"/>` : '';
    return `<g transform="translate(0,${i * bh + 5})"><text x="${labelW - 8}" y="15" text-anchor="end" font-size="12">${esc(x.name)}</text><rect x="${labelW}" y="2" height="16" width="${w.toFixed(1)}" fill="${x.pub ? '#bbb' : '#3b6fb6'}"/>${whisker}<text x="${(labelW + Math.max(w, x.se !== null ? scale(x.v + x.se) : 0) + 5).toFixed(1)}" y="15" font-size="12">${fmt(x.v)}</text></g>`;
  }).join('');
  return `<svg role="img" aria-label="${esc(t.headline)} by model" width="${labelW + barW + 70}" height="${vals.length * bh + 10}" xmlns="http://www.w3.org/2000/svg">${bars}</svg>`;
}

/** A line chart of (x, y) points with optional ±SE bars and a marked best point. */
export function lineChart(points: CurvePoint[], opts: { title: string; xLabel: string; yLabel: string; best?: CurvePoint; color?: string }): string {
  if (points.length < 2) return '';
  const W = 420, H = 200, L = 56, B = 34, T = 10, R = 12;
  const xs = points.map((p) => p.x);
  const ys = points.flatMap((p) => (p.se !== undefined ? [p.y - p.se, p.y + p.se] : [p.y]));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 === y0) [y0, y1] = [y0 - 1e-6, y1 + 1e-6];
  const px = (x: number): number => L + ((x - x0) / Math.max(x1 - x0, 1e-9)) * (W - L - R);
  const py = (y: number): number => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join('');
  const errs = points.filter((p) => p.se !== undefined).map((p) => `<line x1="${px(p.x).toFixed(1)}" x2="${px(p.x).toFixed(1)}" y1="${py(p.y - (p.se as number)).toFixed(1)}" y2="${py(p.y + (p.se as number)).toFixed(1)}" stroke="#999"/>`).join('');
  const best = opts.best ? `<circle class="best" cx="${px(opts.best.x).toFixed(1)}" cy="${py(opts.best.y).toFixed(1)}" r="4" fill="#c0392b"><title>best: ${fmt(opts.best.y)} at ${opts.xLabel} ${opts.best.x}</title></circle>` : '';
  const digits = Math.abs(y1) < 1 ? 4 : 2;
  const axes = `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#444"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/>`
    + `<text x="${L - 4}" y="${T + 10}" font-size="10" text-anchor="end">${fmt(y1, digits)}</text><text x="${L - 4}" y="${H - B}" font-size="10" text-anchor="end">${fmt(y0, digits)}</text>`
    + `<text x="${L}" y="${H - B + 14}" font-size="10">${x0}</text><text x="${W - R}" y="${H - B + 14}" font-size="10" text-anchor="end">${x1}</text>`
    + `<text x="${(L + W - R) / 2}" y="${H - 4}" font-size="11" text-anchor="middle">${esc(opts.xLabel)}</text><text x="12" y="${(T + H - B) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 12 ${(T + H - B) / 2})">${esc(opts.yLabel)}</text>`;
  return `<figure><svg role="img" aria-label="${esc(opts.title)}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">${axes}${errs}<path d="${path}" fill="none" stroke="${opts.color ?? '#3b6fb6'}" stroke-width="1.5"/>${best}</svg><figcaption>${esc(opts.title)}</figcaption></figure>`;
}

function headerHtml(h: ReportHeader): string {
  const datasets = h.datasets.map((d) => `<tr><td>${esc(d.name)}</td><td>${esc(d.fingerprint ?? '–')}</td><td>${d.seed ?? '–'}</td></tr>`).join('');
  const models = h.models.map((m) => `<tr><td>${esc(m.model)}</td><td>${esc(m.kind)}</td><td>${m.fitSeconds !== undefined ? m.fitSeconds.toFixed(1) : '–'}</td><td>${m.trainSeed ?? '–'}</td><td>${esc(m.commit ?? '–')}</td><td>${esc(m.host ?? '–')}</td><td>${esc(m.evaluated ?? '–')}</td></tr>`).join('');
  return `<section class="header"><p>Generated ${esc(h.generated)} by p5rec ${esc(h.p5rec)}; commit ${esc(h.commits.join(', ') || 'unrecorded')}; host ${esc(h.hosts.join(', ') || 'unrecorded')}.</p>`
    + `<table><tr><th>dataset</th><th>fingerprint</th><th>split seed</th></tr>${datasets}</table>`
    + `<details><summary>${h.models.length} models</summary><table><tr><th>model</th><th>kind</th><th>fit (s)</th><th>train seed</th><th>commit</th><th>host</th><th>evaluated</th></tr>${models}</table></details></section>`;
}

function tableHtml(t: Table): string {
  const base = t.rows.find((r) => r.vs)?.vs?.baseline;
  const head = `<tr><th>model</th><th>n</th>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}<th>${esc(base ? `${t.headline} vs ${base}` : 'vs baseline')}</th><th>fit (s)</th></tr>`;
  const body = t.rows.map((r) => {
    const cls = [r.published ? 'pub' : '', r.vs?.significant ? (r.vs.margin > 0 ? 'win' : 'loss') : ''].filter(Boolean).join(' ');
    return `<tr class="${cls}"><td>${esc(r.model)}${r.published ? ` <small>(published: ${esc(r.source ?? '')})</small>` : ''}</td><td>${r.count ?? '–'}</td>${r.values.map((v, i) => `<td>${withSe(v, r.se[i])}</td>`).join('')}<td class="margin">${esc(marginText(r.vs))}</td><td>${r.fitSeconds !== undefined ? r.fitSeconds.toFixed(1) : '–'}</td></tr>`;
  }).join('');
  const chart = barChart(t);
  return `<section><h2>${esc(t.dataset)} — ${esc(TASK_TITLES[t.task] ?? t.task)} (${esc(t.split)})</h2><table>${head}${body}</table>${chart ? `<h3>${esc(t.headline)} (± 1 SE)</h3>${chart}` : ''}</section>`;
}

function curvesHtml(curves: LearningCurve[]): string {
  if (!curves.length) return '';
  const items = curves.map((c) => {
    const loss = lineChart(c.loss, { title: `${basename(c.model)}: training loss`, xLabel: c.xLabel, yLabel: 'loss' });
    const valid = c.valid ? lineChart(c.valid.points, { title: `${basename(c.model)}: validation ${c.valid.metric}${c.valid.best ? ` (best ${fmt(c.valid.best.y)} at ${c.xLabel} ${c.valid.best.x})` : ''}`, xLabel: c.xLabel, yLabel: c.valid.metric, best: c.valid.best, color: '#2d8a4e' }) : '';
    return loss || valid ? `<div class="curve"><h3>${esc(basename(c.model))} <small>(${esc(c.kind)})</small></h3>${loss}${valid}</div>` : '';
  }).join('');
  return items ? `<section><h2>Learning curves</h2>${items}</section>` : '';
}

export function renderHtml(tables: Table[], header?: ReportHeader, curves: LearningCurve[] = []): string {
  const css = 'body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}tr.pub{color:#666;font-style:italic}tr.win td.margin{color:#1a7f37;font-weight:600}tr.loss td.margin{color:#b42318;font-weight:600}h2{margin-top:1.6em}.curve{display:inline-block;vertical-align:top;margin:0 1em 1em 0}figure{display:inline-block;margin:0 .5em}figcaption{font-size:12px;color:#444;max-width:420px}';
  const note = `<p>Each value is the mean over the n users (ranking) or rows (rating, text) scored, ± its standard error (text: bootstrap over rows). ${esc(TEST_NOTE)}</p>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>p5rec report</title><style>${css}</style></head><body><h1>p5rec report</h1>${header ? headerHtml(header) : ''}${note}${tables.map(tableHtml).join('\n')}${curvesHtml(curves)}<p><small>Grey rows are published figures copied from the cited papers, not rerun.</small></p></body></html>\n`;
}
