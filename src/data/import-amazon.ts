import { InputError } from '../errors.js';
import { readLines, type Encoding, type Line } from './lines.js';
import { parsePythonLiteral } from './pyliteral.js';
import { optionalText, parsePrice, parseRating, parseTime, refuseInvalidUtf8, requireId, type Where } from './fields.js';
import { emptyInteractions, pushInteraction, STAR_SCALE, type ItemMeta, type RawDataset } from './raw.js';

/**
 * Amazon review dumps (McAuley et al. 2014 "5-core" files and the 2018
 * variants): one JSON object a line with reviewerID, asin, overall, and
 * optionally reviewerName, reviewText, summary, unixReviewTime. Extra 2018
 * fields (vote, style, image, verified) are ignored.
 */
export async function readAmazon(reviewsPath: string, metaPath?: string): Promise<RawDataset> {
  const t = emptyInteractions();
  for await (const line of readLines(reviewsPath, { allowInvalid: true })) {
    if (line.text.trim() === '') continue;
    const at: Where = { file: reviewsPath, line: line.no };
    const rec = parseLine(line, at);
    pushInteraction(t, {
      user: requireId(rec, 'reviewerID', at),
      item: requireId(rec, 'asin', at),
      rating: parseRating(rec.overall, 'overall', at, STAR_SCALE, true),
      time: parseTime(rec.unixReviewTime, 'unixReviewTime', at, false),
      review: optionalText(rec, 'reviewText', at),
      summary: optionalText(rec, 'summary', at),
      reviewerName: optionalText(rec, 'reviewerName', at),
    });
  }
  if (t.user.length === 0) throw new InputError('no reviews in file', { file: reviewsPath });
  const files = [{ role: 'reviews', path: reviewsPath }];
  let items = new Map<string, ItemMeta>();
  if (metaPath) {
    items = await readAmazonMeta(metaPath, new Set(t.item));
    files.push({ role: 'meta', path: metaPath });
  }
  return { kind: 'amazon', files, interactions: t, items, orderedByInput: false };
}

/**
 * Amazon metadata: 2014 files are Python-literal dicts (`{'asin': ...}`),
 * 2018 files and P5's meta.jsonl are JSON; both are accepted line by line.
 * Only items in `keep` are retained (meta files cover the whole category).
 */
export async function readAmazonMeta(path: string, keep?: Set<string>): Promise<Map<string, ItemMeta>> {
  const out = new Map<string, ItemMeta>();
  for await (const line of readLines(path, { allowInvalid: true })) {
    if (line.text.trim() === '') continue;
    const at: Where = { file: path, line: line.no };
    const rec = parseLine(line, at);
    const asin = requireId(rec, 'asin', at);
    if (keep && !keep.has(asin)) continue;
    out.set(asin, metaFromRecord(rec, at));
  }
  return out;
}

function metaFromRecord(rec: Record<string, unknown>, at: Where): ItemMeta {
  const meta: ItemMeta = {};
  const title = optionalText(rec, 'title', at);
  if (title) meta.title = title.trim();
  const brand = optionalText(rec, 'brand', at);
  if (brand) meta.brand = brand.trim();
  const price = parsePrice(rec.price);
  if (price !== undefined) meta.price = price;
  // 2014: categories = [[path...], ...]; 2018: category = [path...].
  const cats = rec.categories ?? rec.category;
  if (Array.isArray(cats) && cats.length > 0) {
    const paths = (Array.isArray(cats[0]) ? cats : [cats]) as unknown[][];
    meta.categories = paths.filter(Array.isArray).map((p) => p.map(String).join(' > '));
  }
  return meta;
}

/** A record from a line read with `allowInvalid`: bad UTF-8 is refused naming the field it sits in. */
export function parseLine(line: Line, at: Where): Record<string, unknown> {
  let rec: Record<string, unknown>;
  try {
    rec = parseRecord(line.text, at);
  } catch (err) {
    if (line.invalid) refuseInvalidUtf8({}, at);
    throw err;
  }
  if (line.invalid) refuseInvalidUtf8(rec, at);
  return rec;
}

/** An `encoding` option value → a known encoding, or a one-line error naming the field. */
export function parseEncoding(v: string | undefined): Encoding {
  const e = (v ?? 'utf8').toLowerCase().replace(/^utf-8$/, 'utf8').replace(/^(iso-8859-1|latin-1)$/, 'latin1');
  if (e !== 'utf8' && e !== 'latin1') throw new InputError(`must be utf8 or latin1, got '${v}'`, { field: 'encoding' });
  return e;
}

/** JSON first; Python literal for `{'...` lines; otherwise a clear error. */
export function parseRecord(text: string, at: Where): Record<string, unknown> {
  const s = text.trim();
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch (jsonErr) {
    if (s.startsWith("{'") || s.startsWith('{u\'') || /^\{\s*'/.test(s)) {
      try {
        v = parsePythonLiteral(s);
      } catch (pyErr) {
        throw new InputError(`malformed record (${(pyErr as Error).message})`, at);
      }
    } else {
      throw new InputError(`malformed JSON (${(jsonErr as Error).message.replace(/\s+/g, ' ')})`, at);
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError('expected a JSON object', at);
  return v as Record<string, unknown>;
}
