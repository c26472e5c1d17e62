import { InputError } from '../errors.js';
import { readLines, type Encoding } from './lines.js';
import { parseLine } from './import-amazon.js';
import { optionalText, parseRating, parseTime, refuseInvalidUtf8, requireId, type Where } from './fields.js';
import { emptyInteractions, pushInteraction, type RatingScale, type RawDataset } from './raw.js';

/** Column mapping for generic CSV/JSONL interaction files. */
export interface TableColumns {
  user: string;
  item: string;
  rating?: string;
  time?: string;
  text?: string;
  summary?: string;
  title?: string;
}

/**
 * Generic interaction tables: CSV/TSV with a header row (RFC 4180 quoting,
 * fields may span lines) or JSONL. Columns are named by the caller.
 */
export async function readTable(format: 'csv' | 'jsonl', path: string, cols: TableColumns, scale: RatingScale, delimiter?: string, encoding: Encoding = 'utf8'): Promise<RawDataset> {
  const t = emptyInteractions();
  const titles = new Map<string, string>();
  const required = [cols.user, cols.item, cols.rating, cols.time].filter((c): c is string => Boolean(c));
  const rows = format === 'csv' ? csvRecords(path, delimiter ?? (/\.tsv(\.gz)?$/i.test(path) ? '\t' : ','), required, encoding) : jsonlRecords(path, encoding);
  for await (const { rec, at } of rows) {
    const item = requireId(rec, cols.item, at);
    pushInteraction(t, {
      user: requireId(rec, cols.user, at),
      item,
      rating: cols.rating ? parseRating(rec[cols.rating], cols.rating, at, scale, true) : null,
      time: cols.time ? parseTime(rec[cols.time], cols.time, at, true) : null,
      review: cols.text ? optionalText(rec, cols.text, at) : null,
      summary: cols.summary ? optionalText(rec, cols.summary, at) : null,
    });
    if (cols.title) {
      const title = optionalText(rec, cols.title, at);
      if (title) titles.set(item, title);
    }
  }
  if (t.user.length === 0) throw new InputError('no records in file', { file: path });
  const items = new Map([...titles].map(([k, title]) => [k, { title }]));
  return { kind: format, files: [{ role: 'interactions', path }], interactions: t, items, orderedByInput: false };
}

async function* jsonlRecords(path: string, encoding: Encoding): AsyncGenerator<{ rec: Record<string, unknown>; at: Where }> {
  for await (const line of readLines(path, { encoding, allowInvalid: true })) {
    if (line.text.trim() === '') continue;
    const at = { file: path, line: line.no };
    yield { rec: parseLine(line, at), at };
  }
}

/** CSV records keyed by header names; `at.line` is the line where the record starts. */
export async function* csvRecords(path: string, delimiter: string, required: string[] = [], encoding: Encoding = 'utf8'): AsyncGenerator<{ rec: Record<string, unknown>; at: Where }> {
  let header: string[] | null = null;
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let startLine = 0;
  let invalid = false;
  for await (const { text, no, invalid: bad } of readLines(path, { encoding, allowInvalid: true })) {
    if (!inQuotes) {
      if (text.trim() === '') continue;
      fields = [];
      field = '';
      startLine = no;
      invalid = false;
    } else field += '\n';
    invalid ||= Boolean(bad);
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inQuotes) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i++;
          } else inQuotes = false;
        } else field += c;
      } else if (c === '"' && field === '') inQuotes = true;
      else if (c === delimiter) {
        fields.push(field);
        field = '';
      }
      else field += c;
    }
    if (inQuotes) continue;
    fields.push(field);
    const at = { file: path, line: startLine };
    if (!header) {
      if (invalid) refuseInvalidUtf8({}, at);
      header = fields.map((h) => h.trim());
      for (const c of required) if (!header.includes(c)) throw new InputError(`column not in header (${header.join(', ')})`, { ...at, field: c });
      continue;
    }
    if (fields.length !== header.length) throw new InputError(`expected ${header.length} fields, found ${fields.length}`, at);
    const rec: Record<string, unknown> = {};
    header.forEach((h, k) => (rec[h] = fields[k]));
    if (invalid) refuseInvalidUtf8(rec, at);
    yield { rec, at };
  }
  if (inQuotes) throw new InputError('unterminated quoted field', { file: path, line: startLine });
  if (!header) throw new InputError('file is empty', { file: path });
}
