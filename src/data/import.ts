/**
 * One library call from raw files to a dataset folder: read the source with
 * its importer, then index, split and write it (./build.ts). `p5rec data
 * import` is this behind flags.
 */
import { buildDataset, type BuildOptions } from './build.js';
import { loadDataset, type Dataset } from './dataset.js';
import { readAmazon } from './import-amazon.js';
import { readMovieLens } from './import-movielens.js';
import { readP5 } from './import-p5.js';
import { readTable, type TableColumns } from './import-table.js';
import type { Manifest } from './manifest.js';
import { STAR_SCALE, type RatingScale, type RawDataset } from './raw.js';

/** Where the raw data comes from, one shape per importer. */
export type ImportSource =
  | { kind: 'amazon'; reviews: string; meta?: string }
  | { kind: 'p5'; sequences: string; datamaps: string; meta?: string }
  | { kind: 'movielens'; dir: string }
  | { kind: 'csv' | 'jsonl'; file: string; columns: TableColumns; scale?: RatingScale; delimiter?: string };

export function readSource(source: ImportSource): Promise<RawDataset> {
  switch (source.kind) {
    case 'amazon': return readAmazon(source.reviews, source.meta);
    case 'p5': return readP5(source.sequences, source.datamaps, source.meta);
    case 'movielens': return readMovieLens(source.dir);
    case 'csv':
    case 'jsonl': return readTable(source.kind, source.file, source.columns, source.scale ?? STAR_SCALE, source.delimiter);
  }
}

/** Import `source` into the folder `opts.out` (written atomically) and open it. */
export async function importDataset(source: ImportSource, opts: BuildOptions): Promise<{ manifest: Manifest; dataset: Dataset }> {
  const manifest = await buildDataset(await readSource(source), opts);
  return { manifest, dataset: await loadDataset(opts.out) };
}
