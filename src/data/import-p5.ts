import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { readLines } from './lines.js';
import { readAmazonMeta } from './import-amazon.js';
import { emptyInteractions, pushInteraction, type ItemMeta, type RawDataset } from './raw.js';

/**
 * P5 / S3-Rec sequence files: `user item item ...` a line, items in time
 * order, integer ids mapped back to Amazon ids by datamaps.json
 * (`id2user`, `id2item`). The ids in the file are P5's leaky numbering; they
 * are only used to look up the raw ids, and p5rec re-indexes.
 */
export async function readP5(sequencesPath: string, datamapsPath: string, metaPath?: string): Promise<RawDataset> {
  const maps = readDatamaps(datamapsPath);
  const t = emptyInteractions();
  // A user on two lines would be silently concatenated (its test item landing in train): refuse.
  const userLine = new Map<string, number>();
  for await (const { text, no } of readLines(sequencesPath)) {
    const parts = text.trim().split(/\s+/);
    if (parts.length === 1 && parts[0] === '') continue;
    const at = { file: sequencesPath, line: no };
    const userId = parts[0];
    const user = maps.id2user[userId];
    if (user === undefined) throw new InputError(`user id ${userId} is not in ${datamapsPath} id2user`, { ...at, field: 'user' });
    if (parts.length < 2) throw new InputError('sequence has no items', { ...at, field: 'items' });
    const before = userLine.get(user);
    if (before !== undefined) throw new InputError(`user id ${userId} (${user}) already has a sequence on line ${before}; one line per user`, { ...at, field: 'user' });
    userLine.set(user, no);
    for (let k = 1; k < parts.length; k++) {
      const item = maps.id2item[parts[k]];
      if (item === undefined) throw new InputError(`item id ${parts[k]} (position ${k}) is not in ${datamapsPath} id2item`, { ...at, field: 'item' });
      pushInteraction(t, { user, item });
    }
  }
  if (t.user.length === 0) throw new InputError('no sequences in file', { file: sequencesPath });
  const files = [{ role: 'sequences', path: sequencesPath }, { role: 'datamaps', path: datamapsPath }];
  let items = new Map<string, ItemMeta>();
  if (metaPath) {
    items = await readAmazonMeta(metaPath, new Set(t.item));
    files.push({ role: 'meta', path: metaPath });
  }
  return { kind: 'p5', files, interactions: t, items, orderedByInput: true };
}

interface Datamaps {
  id2user: Record<string, string>;
  id2item: Record<string, string>;
}

function readDatamaps(path: string): Datamaps {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new InputError('file not found', { file: path });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InputError('invalid UTF-8 (datamaps must be UTF-8 JSON)', { file: path });
  }
  if (text.trim() === '') throw new InputError('file is empty', { file: path });
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`malformed JSON (${(e as Error).message})`, { file: path });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError('expected a JSON object with id2user and id2item', { file: path });
  const pick = (name: 'id2user' | 'id2item', inverse: string): Record<string, string> => {
    const direct = v[name];
    if (direct && typeof direct === 'object' && !Array.isArray(direct)) {
      // Two ids naming one raw id would merge two users/items into one: refuse.
      const seen = new Map<string, string>();
      for (const [id, raw] of Object.entries(direct as Record<string, unknown>)) {
        if (typeof raw !== 'string' || raw === '') throw new InputError(`id ${id} maps to ${JSON.stringify(raw)}, expected a non-empty string`, { file: path, field: name });
        const other = seen.get(raw);
        if (other !== undefined) throw new InputError(`ids ${other} and ${id} both map to '${raw}'`, { file: path, field: name });
        seen.set(raw, id);
      }
      return direct as Record<string, string>;
    }
    // Some releases ship only user2id/item2id: invert them.
    const inv = v[inverse];
    if (inv && typeof inv === 'object' && !Array.isArray(inv)) {
      const out: Record<string, string> = {};
      for (const [raw, id] of Object.entries(inv as Record<string, unknown>)) {
        const key = String(id);
        if (out[key] !== undefined) throw new InputError(`'${out[key]}' and '${raw}' both map to id ${key}`, { file: path, field: inverse });
        out[key] = raw;
      }
      return out;
    }
    throw new InputError(`missing '${name}' (or '${inverse}')`, { file: path, field: name });
  };
  return { id2user: pick('id2user', 'user2id'), id2item: pick('id2item', 'item2id') };
}
