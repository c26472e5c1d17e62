import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readLines } from './lines.js';
import { parseRating, parseTime, refuseInvalidUtf8 } from './fields.js';

const ML_FIELDS = ['user', 'item', 'rating', 'timestamp'];
import { emptyInteractions, pushInteraction, STAR_SCALE, type ItemMeta, type RawDataset, type SourceFile } from './raw.js';

/**
 * MovieLens (Harper & Konstan 2015): the 100K layout (u.data tab-separated,
 * u.item `|`-separated Latin-1) or the 1M layout (ratings.dat / movies.dat
 * with `::` separators). Titles and genres become item metadata.
 */
export async function readMovieLens(dir: string): Promise<RawDataset> {
  if (existsSync(join(dir, 'u.data'))) return read100k(dir);
  if (existsSync(join(dir, 'ratings.dat'))) return read1m(dir);
  throw new InputError('not a MovieLens folder: expected u.data (100K) or ratings.dat (1M)', { file: dir });
}

async function read100k(dir: string): Promise<RawDataset> {
  const dataPath = join(dir, 'u.data');
  const t = emptyInteractions();
  for await (const { text, no, invalid } of readLines(dataPath, { allowInvalid: true })) {
    if (text.trim() === '') continue;
    const at = { file: dataPath, line: no };
    const parts = text.split('\t');
    if (invalid) refuseInvalidUtf8(Object.fromEntries(ML_FIELDS.map((f, k) => [f, parts[k]])), at);
    const [user, item, rating, time] = parts;
    if (item === undefined) throw new InputError('expected 4 tab-separated fields: user item rating timestamp', { ...at, field: 'item' });
    pushInteraction(t, {
      user: user.trim(),
      item: item.trim(),
      rating: parseRating(rating, 'rating', at, STAR_SCALE, true),
      time: parseTime(time, 'timestamp', at, false),
    });
  }
  const files: SourceFile[] = [{ role: 'ratings', path: dataPath }];
  const items = new Map<string, ItemMeta>();
  const itemPath = join(dir, 'u.item');
  if (existsSync(itemPath)) {
    const genres = await readGenres(join(dir, 'u.genre'));
    for await (const { text } of readLines(itemPath, { encoding: 'latin1' })) {
      const f = text.split('|');
      if (f.length < 2) continue;
      const flags = f.slice(5);
      const cats = genres.length ? flags.map((x, i) => (x === '1' ? genres[i] : '')).filter(Boolean) : [];
      items.set(f[0], { title: f[1], ...(cats.length ? { categories: cats } : {}) });
    }
    files.push({ role: 'items', path: itemPath });
  }
  return { kind: 'movielens', files, interactions: t, items, orderedByInput: false };
}

async function readGenres(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  const out: string[] = [];
  for await (const { text } of readLines(path)) {
    const [name, idx] = text.split('|');
    if (name && idx !== undefined) out[Number(idx)] = name;
  }
  return out;
}

async function read1m(dir: string): Promise<RawDataset> {
  const dataPath = join(dir, 'ratings.dat');
  const t = emptyInteractions();
  for await (const { text, no, invalid } of readLines(dataPath, { allowInvalid: true })) {
    if (text.trim() === '') continue;
    const at = { file: dataPath, line: no };
    const parts = text.split('::');
    if (invalid) refuseInvalidUtf8(Object.fromEntries(ML_FIELDS.map((f, k) => [f, parts[k]])), at);
    const [user, item, rating, time] = parts;
    if (item === undefined) throw new InputError("expected 'user::movie::rating::timestamp'", { ...at, field: 'item' });
    pushInteraction(t, {
      user,
      item,
      rating: parseRating(rating, 'rating', at, STAR_SCALE, true),
      time: parseTime(time, 'timestamp', at, false),
    });
  }
  const files: SourceFile[] = [{ role: 'ratings', path: dataPath }];
  const items = new Map<string, ItemMeta>();
  const moviesPath = join(dir, 'movies.dat');
  if (existsSync(moviesPath)) {
    for await (const { text } of readLines(moviesPath, { encoding: 'latin1' })) {
      const [id, title, genres] = text.split('::');
      if (title === undefined) continue;
      items.set(id, { title, ...(genres ? { categories: genres.split('|') } : {}) });
    }
    files.push({ role: 'items', path: moviesPath });
  }
  return { kind: 'movielens', files, interactions: t, items, orderedByInput: false };
}
