import { isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { buildDataset, DEFAULT_SEED, type BuildOptions } from '../data/build.js';
import { ITEM_INDEXINGS, USER_INDEXINGS, parseIndexing } from '../data/indexing.js';
import { parseEncoding, readAmazon } from '../data/import-amazon.js';
import { readP5 } from '../data/import-p5.js';
import { readMovieLens } from '../data/import-movielens.js';
import { readTable } from '../data/import-table.js';
import { loadDataset } from '../data/dataset.js';
import { datasetStats } from '../data/stats.js';
import { auditLeak } from '../data/audit.js';
import type { RawDataset } from '../data/raw.js';
import { setReadProgress } from '../data/lines.js';
import { DATASET_OUTPUT, type Manifest } from '../data/manifest.js';
import { checkReplaceable } from '../util/atomic.js';
import { registerDownloadCommand } from './download.js';
import { logger, parseIntFlag, runCommand, type CommonFlags } from './output.js';
import { NEGATIVES } from '../defaults.js';

interface ImportFlags extends CommonFlags {
  out: string;
  name?: string;
  seed?: string;
  kcore?: string;
  itemIndex: string;
  userIndex: string;
  negatives?: string;
  force?: boolean;
}

/** Options every importer shares: where to write and how to index/split. */
function withImportOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--out <dir>', 'dataset folder to create')
    .option('--name <name>', 'dataset name (default: the folder name)')
    .option('--seed <n>', `seed for indexing, splits and negatives (default ${DEFAULT_SEED})`)
    .option('--kcore <n>', 'repeat filtering until every user and item has >= n interactions (0 = off)')
    .option('--item-index <scheme>', `item ids in prompts: ${ITEM_INDEXINGS.join('|')}`, 'random')
    .option('--user-index <scheme>', `user ids in prompts: ${USER_INDEXINGS.join('|')}`, 'random')
    .option('--negatives <n>', 'stored negatives per user for the direct task', String(NEGATIVES))
    .option('--force', 'replace the output folder if it exists')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr');
}

async function runImport(flags: ImportFlags, inputs: (string | undefined)[], read: () => Promise<RawDataset>): Promise<void> {
  const log = logger(flags);
  setReadProgress(!flags.quiet);
  await runCommand(flags, async () => {
    const opts: BuildOptions = {
      out: flags.out,
      name: flags.name,
      seed: parseIntFlag('seed', flags.seed, DEFAULT_SEED, 0),
      kcore: parseIntFlag('kcore', flags.kcore, 0, 0),
      itemIndex: parseIndexing(flags.itemIndex, ITEM_INDEXINGS, 'itemIndex'),
      userIndex: parseIndexing(flags.userIndex, USER_INDEXINGS, 'userIndex'),
      negatives: parseIntFlag('negatives', flags.negatives, NEGATIVES, 0),
      force: flags.force,
      log,
    };
    // Fail on an existing output (or one that --force may not replace) before reading gigabytes of input.
    checkReplaceable(opts.out, { force: opts.force, kind: DATASET_OUTPUT });
    for (const input of inputs) {
      if (!input) continue;
      const rel = relative(resolve(opts.out), resolve(input));
      if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) throw new InputError(`the input ${input} is inside the output folder; pick another --out`, { file: opts.out });
    }
    const t0 = Date.now();
    const raw = await read();
    log(`read ${raw.interactions.user.length} interactions from ${raw.files.map((f) => f.path).join(', ')} in ${((Date.now() - t0) / 1000).toFixed(2)}s`);
    const manifest = await buildDataset(raw, opts);
    return { out: opts.out, seconds: (Date.now() - t0) / 1000, read: raw.interactions.user.length, counts: manifest.counts, fields: manifest.fields, options: manifest.options };
  }, (r) => humanImport(r.out, r.read, r.counts, r.fields, r.seconds));
}

function humanImport(out: string, read: number, counts: Manifest['counts'], fields: Manifest['fields'], seconds: number): string {
  const present = Object.entries(fields).filter(([, v]) => v).map(([k]) => k).join(', ');
  const dropped = [
    counts.duplicates ? `${counts.duplicates} exact duplicates` : '',
    counts.repeats ? `${counts.repeats} repeated (user, item) pairs (earliest kept)` : '',
    counts.droppedByKcore ? `${counts.droppedByKcore} by k-core` : '',
  ].filter(Boolean);
  return `${out}: ${counts.users} users, ${counts.items} items, ${counts.interactions} interactions (${seconds.toFixed(2)}s)\n` +
    `read ${read} records${dropped.length ? `; dropped ${dropped.join(', ')}` : ''}\nfields: ${present}`;
}

/** `p5rec data ...`: import, download, stats, audit. */
export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('import, download and inspect datasets');
  const imp = data.command('import').description('import raw interaction data into a p5rec dataset folder (Parquet + manifest)');

  withImportOptions(imp.command('amazon').description('Amazon review dump (2014 5-core or 2018), optional metadata')
    .requiredOption('--reviews <file>', 'reviews_<Category>_5.json(.gz)')
    .option('--meta <file>', 'meta_<Category>.json(.gz), JSON or Python-literal lines'))
    .action((f: ImportFlags & { reviews: string; meta?: string }) => runImport(f, [f.reviews, f.meta], () => readAmazon(f.reviews, f.meta)));

  withImportOptions(imp.command('p5').description('P5 / S3-Rec sequence files')
    .requiredOption('--sequences <file>', 'sequential.txt: user then items in time order')
    .requiredOption('--datamaps <file>', 'datamaps.json with id2user / id2item')
    .option('--meta <file>', 'item metadata (meta.jsonl or Amazon meta)'))
    .action((f: ImportFlags & { sequences: string; datamaps: string; meta?: string }) => runImport(f, [f.sequences, f.datamaps, f.meta], () => readP5(f.sequences, f.datamaps, f.meta)));

  withImportOptions(imp.command('movielens').description('MovieLens 100K (u.data) or 1M (ratings.dat) folder')
    .requiredOption('--dir <dir>', 'the extracted ml-100k or ml-1m folder'))
    .action((f: ImportFlags & { dir: string }) => runImport(f, [f.dir], () => readMovieLens(f.dir)));

  for (const format of ['csv', 'jsonl'] as const) {
    withImportOptions(imp.command(format).description(`generic ${format.toUpperCase()} interactions`)
      .requiredOption('--file <file>', `the ${format} file (gzip allowed)`)
      .requiredOption('--user <col>', 'user id column')
      .requiredOption('--item <col>', 'item id column')
      .option('--rating <col>', 'rating column')
      .option('--time <col>', 'timestamp column (unix seconds or ISO date)')
      .option('--text <col>', 'review text column')
      .option('--summary <col>', 'review summary column')
      .option('--title <col>', 'item title column')
      .option('--rating-scale <min,max>', 'valid rating range', '1,5')
      .option('--delimiter <c>', 'CSV delimiter (default , or tab for .tsv)')
      .option('--encoding <enc>', 'text encoding: utf8 (checked: invalid bytes are refused) or latin1', 'utf8'))
      .action((f: ImportFlags & { file: string; user: string; item: string; rating?: string; time?: string; text?: string; summary?: string; title?: string; ratingScale: string; delimiter?: string; encoding: string }) =>
        runImport(f, [f.file], () => {
          const [min, max] = f.ratingScale.split(',').map((x) => (/^\s*-?\d+(\.\d+)?\s*$/.test(x) ? Number(x) : NaN));
          if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) throw new InputError(`--rating-scale must be 'min,max', got '${f.ratingScale}'`);
          const delim = f.delimiter === '\\t' ? '\t' : f.delimiter;
          return readTable(format, f.file, { user: f.user, item: f.item, rating: f.rating, time: f.time, text: f.text, summary: f.summary, title: f.title }, { min, max }, delim, parseEncoding(f.encoding));
        }));
  }

  data.command('stats').description('counts, density, rating histogram, sequence lengths, fields present')
    .argument('<dir>', 'dataset folder')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no notes on stderr (errors are still printed)')
    .action((dir: string, f: CommonFlags) => runCommand(f, async () => datasetStats(await loadDataset(dir)), (s) => [
      `${s.name}: ${s.users} users, ${s.items} items, ${s.interactions} interactions, density ${(s.density * 100).toFixed(4)}%`,
      `sequence length: mean ${s.sequenceLength.mean.toFixed(2)}, median ${s.sequenceLength.median}, min ${s.sequenceLength.min}, max ${s.sequenceLength.max}`,
      s.ratingHistogram ? `ratings: ${Object.entries(s.ratingHistogram).map(([k, v]) => `${k}★ ${v}`).join(', ')} (mean ${s.meanRating?.toFixed(3)})` : 'ratings: none',
      `fields: ${Object.entries(s.fields).filter(([, v]) => v).map(([k]) => k).join(', ')}`,
      `indexing: items ${s.indexing.items}, users ${s.indexing.users}, seed ${s.indexing.seed}`,
    ].join('\n')));

  data.command('audit').description('check whether item ids leak the next item (the P5 numbering leak)')
    .argument('<dir>', 'dataset folder')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no notes on stderr (errors are still printed)')
    .action((dir: string, f: CommonFlags) => runCommand(f, async () => auditLeak(await loadDataset(dir, { verify: 'full' })), (a) =>
      `item ids: ${a.itemIndex}; ${a.users} test users\nsuccessor-of-history-id predictor: HR@1 ${a.successorHR1.toFixed(4)}, HR@10 ${a.successorHR10.toFixed(4)}\ntest items whose id follows a history id: ${(a.successorShare * 100).toFixed(2)}%\n${a.verdict}`));

  registerDownloadCommand(data);
}
