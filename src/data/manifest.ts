import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { OutputKind } from '../util/atomic.js';
import type { ItemIndexing, UserIndexing } from './indexing.js';

export const DATASET_FORMAT = 'p5rec-dataset';
export const DATASET_FORMAT_VERSION = 1;

/** manifest.json of a dataset folder: provenance, options and counts. No timestamps, so same input + seed → same bytes. */
export interface Manifest {
  format: typeof DATASET_FORMAT;
  formatVersion: number;
  name: string;
  source: { kind: string; files: { role: string; name: string; bytes: number; sha256: string }[] };
  options: {
    seed: number;
    kcore: number;
    itemIndex: ItemIndexing;
    userIndex: UserIndexing;
    negatives: number;
    ratingSplit: [number, number, number];
  };
  counts: {
    users: number;
    items: number;
    interactions: number;
    droppedByKcore: number;
    /** Exact duplicate records dropped (same user, item, rating, time and text). Absent in datasets before 0.2. */
    duplicates?: number;
    /** Further records of a (user, item) pair already seen, with other content: the earliest is kept. */
    repeats?: number;
  };
  fields: { rating: boolean; time: boolean; review: boolean; summary: boolean; reviewerName: boolean; title: boolean; categories: boolean; brand: boolean; price: boolean; explanation: boolean };
  splits: {
    sequential: { rule: string; train: number; valid: number; test: number };
    rating: { rule: string; train: number; valid: number; test: number };
    negatives: { rule: string; perUser: number };
    explanation?: { rule: string; lexiconSize: number; labelled: number };
  };
  tables: Record<string, string>;
  /** Every file written, as written: checked on load (size and rows; sha256 when small or on `data audit`). Absent in older datasets. */
  contents?: Record<string, FileCheck>;
  createdBy: string;
}

export interface FileCheck {
  bytes: number;
  /** Rows for a table, entries for features.json. */
  rows: number;
  sha256: string;
}

/** A folder is p5rec's dataset when its manifest.json says so (what --force may replace). */
export const DATASET_OUTPUT: OutputKind = {
  what: 'p5rec dataset folder',
  marker: 'manifest.json',
  owns: (dir) => {
    const path = join(dir, 'manifest.json');
    if (!existsSync(path)) return false;
    try {
      return JSON.parse(readFileSync(path, 'utf8')).format === DATASET_FORMAT;
    } catch {
      return false;
    }
  },
};

export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new InputError('not a p5rec dataset folder (manifest.json missing); create one with `p5rec data import`', { file: dir });
  }
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new InputError(`malformed JSON (${(e as Error).message})`, { file: path });
  }
  if (m.format !== DATASET_FORMAT) throw new InputError(`not a p5rec dataset manifest (format '${String(m.format)}')`, { file: path, field: 'format' });
  if (m.formatVersion > DATASET_FORMAT_VERSION) throw new InputError(`dataset format version ${m.formatVersion} is newer than this p5rec supports (${DATASET_FORMAT_VERSION})`, { file: path, field: 'formatVersion' });
  return m;
}
