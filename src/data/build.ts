import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { InputError } from '../errors.js';
import { Rng, hashString } from '../util/rng.js';
import { withAtomicDir, writeFileAtomic } from '../util/atomic.js';
import { VERSION } from '../version.js';
import { kcoreMask } from './kcore.js';
import { dedupeHistories } from './dedupe.js';
import { itemTokens, userTokens, type ItemIndexing, type UserIndexing } from './indexing.js';
import { leaveOneOut, randomSplit, sampleNegatives, SPLIT_NAMES, TRAIN, VALID, TEST } from './splits.js';
import { extractExplanations } from './explanations.js';
import { DATASET_FORMAT, DATASET_FORMAT_VERSION, DATASET_OUTPUT, type Manifest } from './manifest.js';
import type { RawDataset } from './raw.js';
import { DEFAULT_SEED, NEGATIVES } from '../defaults.js';

export interface BuildOptions {
  out: string;
  name?: string;
  seed?: number;
  /** Keep only users and items with >= kcore interactions (repeatedly). 0 = off. */
  kcore?: number;
  itemIndex?: ItemIndexing;
  userIndex?: UserIndexing;
  /** Negatives per user stored for the 1-of-(n+1) direct protocol. */
  negatives?: number;
  force?: boolean;
  log?: (msg: string) => void;
}

export { DEFAULT_SEED } from '../defaults.js';

/**
 * Raw interactions → a dataset folder: k-core filter, time-ordered
 * sequences, indexing, leave-one-out and random splits, stored negatives,
 * explanation labels, Parquet tables and a manifest. Built in a temp folder
 * and renamed into place, so a failure leaves nothing behind.
 */
export async function buildDataset(raw: RawDataset, opts: BuildOptions): Promise<Manifest> {
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? DEFAULT_SEED;
  const kcore = opts.kcore ?? 0;
  const itemIndex = opts.itemIndex ?? 'random';
  const userIndex = opts.userIndex ?? 'random';
  const negPerUser = opts.negatives ?? NEGATIVES;
  const t0 = Date.now();
  const ri = raw.interactions;
  const nRaw = ri.user.length;
  if (nRaw === 0) throw new InputError('no interactions to import');

  // Temporary dense ids in order of first appearance in the input.
  const userIds = new Map<string, number>();
  const itemIds = new Map<string, number>();
  const tu = new Int32Array(nRaw);
  const ti = new Int32Array(nRaw);
  for (let i = 0; i < nRaw; i++) {
    let u = userIds.get(ri.user[i]);
    if (u === undefined) userIds.set(ri.user[i], (u = userIds.size));
    let it = itemIds.get(ri.item[i]);
    if (it === undefined) itemIds.set(ri.item[i], (it = itemIds.size));
    tu[i] = u;
    ti[i] = it;
  }
  // Histories in time order (stable on input order; P5 files are already ordered),
  // then one interaction per (user, item), then k-core on what is left.
  const histories: number[][] = Array.from({ length: userIds.size }, () => []);
  for (let i = 0; i < nRaw; i++) histories[tu[i]].push(i);
  const useTime = !raw.orderedByInput && ri.time.every((x) => x !== null);
  if (useTime) for (const rows of histories) rows.sort((a, b) => (ri.time[a] as number) - (ri.time[b] as number) || a - b);
  const dedup = dedupeHistories(histories, ti, ri);
  if (dedup.duplicates + dedup.repeats > 0) log(`dropped ${dedup.duplicates} exact duplicate interactions and ${dedup.repeats} repeats of a (user, item) pair (the earliest is kept)`);
  const left = histories.flat();
  const keepLeft = kcoreMask(left.map((i) => tu[i]), left.map((i) => ti[i]), userIds.size, itemIds.size, kcore);
  const keep = new Uint8Array(nRaw);
  left.forEach((i, k) => (keep[i] = keepLeft[k]));
  const users = histories.map((rows) => rows.filter((i) => keep[i])).filter((rows) => rows.length > 0);
  const kept = users.reduce((s, r) => s + r.length, 0);
  if (kept === 0) throw new InputError(`a ${kcore}-core removes every interaction`, { field: 'kcore' });

  // Final indices: users in first-appearance order, items in first appearance
  // along those histories (P5's own numbering).
  const numUsers = users.length;
  const itemIndexOf = new Map<number, number>();
  const itemRaw: string[] = [];
  const n = kept;
  const src = new Int32Array(n);
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  const pos = new Int32Array(n);
  const len = new Int32Array(numUsers);
  let r = 0;
  users.forEach((rows, u) => {
    len[u] = rows.length;
    rows.forEach((i, p) => {
      let it = itemIndexOf.get(ti[i]);
      if (it === undefined) {
        itemIndexOf.set(ti[i], (it = itemRaw.length));
        itemRaw.push(ri.item[i]);
      }
      src[r] = i;
      user[r] = u;
      item[r] = it;
      pos[r] = p;
      r++;
    });
  });
  const numItems = itemRaw.length;
  const userRaw = users.map((rows) => ri.user[rows[0]]);
  log(`${nRaw} interactions read; ${n} kept (${numUsers} users, ${numItems} items${kcore > 1 ? `, ${kcore}-core` : ''})`);

  const rngFor = (purpose: string): Rng => new Rng(hashString(`${seed}/${purpose}`));
  const seqSplit = leaveOneOut(user, pos, len);
  const rateSplit = randomSplit(user, item, numUsers, numItems, rngFor('rating-split'));
  const sequences: Int32Array[] = [];
  const trainSequences: Int32Array[] = [];
  {
    let start = 0;
    for (let u = 0; u < numUsers; u++) {
      const seq = item.subarray(start, start + len[u]);
      sequences.push(seq);
      let nTrain = 0;
      while (nTrain < seq.length && seqSplit[start + nTrain] === TRAIN) nTrain++;
      trainSequences.push(seq.subarray(0, nTrain));
      start += len[u];
    }
  }
  const iTok = itemTokens(itemIndex, numItems, trainSequences, rngFor('item-index'));
  const uTok = userTokens(userIndex, numUsers, rngFor('user-index'));
  const negatives = sampleNegatives(sequences, numItems, negPerUser, rngFor('negatives'));

  const col = <T>(values: T[]): T[] => Array.from(src, (i) => values[i]);
  const rating = col(ri.rating);
  const time = col(ri.time);
  const review = col(ri.review);
  const summary = col(ri.summary);
  const reviewerName = col(ri.reviewerName);
  const hasReview = review.some((x) => x !== null && x.trim() !== '');
  let expl: { lexicon: string[]; feature: (string | null)[]; explanation: (string | null)[] } | null = null;
  if (hasReview) {
    const mine = Uint8Array.from(rateSplit, (s) => (s === TRAIN ? 1 : 0));
    expl = extractExplanations(review, item, mine);
    log(`explanations: ${expl.lexicon.length} features mined, ${expl.explanation.filter(Boolean).length} reviews labelled`);
  }
  const userName: (string | null)[] = users.map((rows) => {
    for (let k = rows.length - 1; k >= 0; k--) if (ri.reviewerName[rows[k]]) return ri.reviewerName[rows[k]];
    return null;
  });
  const meta = itemRaw.map((a) => raw.items.get(a));
  const count = (arr: Uint8Array, v: number): number => arr.reduce((s, x) => s + (x === v ? 1 : 0), 0);

  const files = await Promise.all(raw.files.map(async (f) => ({ role: f.role, name: basename(f.path), bytes: statSync(f.path).size, sha256: await sha256File(f.path) })));
  const manifest: Manifest = {
    format: DATASET_FORMAT,
    formatVersion: DATASET_FORMAT_VERSION,
    // Named after the source (not the output path) so the folder's bytes depend only on input, options and seed.
    name: opts.name ?? defaultName(raw),
    source: { kind: raw.kind, files },
    options: { seed, kcore, itemIndex, userIndex, negatives: negPerUser, ratingSplit: [0.8, 0.1, 0.1] },
    counts: { users: numUsers, items: numItems, interactions: n, droppedByKcore: left.length - n, duplicates: dedup.duplicates, repeats: dedup.repeats },
    fields: {
      rating: rating.some((x) => x !== null),
      time: time.some((x) => x !== null),
      review: hasReview,
      summary: summary.some((x) => x !== null && x.trim() !== ''),
      reviewerName: reviewerName.some((x) => x !== null),
      title: meta.some((m) => m?.title),
      categories: meta.some((m) => m?.categories?.length),
      brand: meta.some((m) => m?.brand),
      price: meta.some((m) => m?.price !== undefined),
      explanation: Boolean(expl && expl.lexicon.length > 0),
    },
    splits: {
      sequential: { rule: 'leave-one-out per user over the time-ordered history: last = test, second-to-last = valid, rest = train (users with 2 interactions: train+test; 1: train); one interaction per (user, item), the earliest (exact duplicates and repeats dropped, see counts)', train: count(seqSplit, TRAIN), valid: count(seqSplit, VALID), test: count(seqSplit, TEST) },
      rating: { rule: 'seeded random 0.8/0.1/0.1 split of interactions, every user and item kept in train', train: count(rateSplit, TRAIN), valid: count(rateSplit, VALID), test: count(rateSplit, TEST) },
      negatives: { rule: 'per user, seeded uniform sample without replacement of items absent from the whole history', perUser: negPerUser },
      ...(expl ? { explanation: { rule: 'see docs/explanations.md: corpus-mined aspect lexicon (training reviews), first review sentence that mentions one', lexiconSize: expl.lexicon.length, labelled: expl.explanation.filter(Boolean).length } } : {}),
    },
    tables: {
      'users.parquet': 'user (0-based index), token (id used in prompts), raw_id, name',
      'items.parquet': 'item (0-based index), token, raw_id, title, brand, price, categories',
      'interactions.parquet': 'user, item, pos (0-based position in the user history), rating, time (unix s), review, summary, reviewer_name, feature, explanation, seq_split, rating_split',
      'negatives.parquet': 'user, items (stored negatives for the direct task)',
      'features.json': 'explanation feature lexicon, most frequent first',
    },
    createdBy: `p5rec ${VERSION}`,
  };

  await withAtomicDir(opts.out, async (tmp) => {
    // Bounded: big sorts spill to a folder inside the temp output (removed below) rather than grow RSS.
    const db = await DuckDBInstance.create(':memory:', { threads: '1', memory_limit: '1GB', temp_directory: join(tmp, '.spill'), preserve_insertion_order: 'false' });
    const con = await db.connect();
    try {
      await writeTable(con, tmp, 'users', { user: 'INTEGER', token: 'VARCHAR', raw_id: 'VARCHAR', name: 'VARCHAR' }, '"user"', numUsers,
        (u) => ({ user: u, token: uTok[u], raw_id: userRaw[u], name: userName[u] }));
      await writeTable(con, tmp, 'items', { item: 'INTEGER', token: 'VARCHAR', raw_id: 'VARCHAR', title: 'VARCHAR', brand: 'VARCHAR', price: 'DOUBLE', categories: 'VARCHAR[]' }, 'item', numItems,
        (i) => {
          const m = meta[i];
          return { item: i, token: iTok[i], raw_id: itemRaw[i], title: m?.title ?? null, brand: m?.brand ?? null, price: m?.price ?? null, categories: m?.categories?.length ? m.categories : null };
        });
      await writeTable(con, tmp, 'interactions', {
        user: 'INTEGER', item: 'INTEGER', pos: 'INTEGER', rating: 'DOUBLE', time: 'BIGINT', review: 'VARCHAR', summary: 'VARCHAR', reviewer_name: 'VARCHAR',
        feature: 'VARCHAR', explanation: 'VARCHAR', seq_split: 'VARCHAR', rating_split: 'VARCHAR',
      }, '"user", pos', n, (k) => ({
        user: user[k], item: item[k], pos: pos[k], rating: rating[k], time: time[k] === null ? null : Math.trunc(time[k] as number),
        review: review[k], summary: summary[k], reviewer_name: reviewerName[k], feature: expl ? expl.feature[k] : null, explanation: expl ? expl.explanation[k] : null,
        seq_split: SPLIT_NAMES[seqSplit[k]], rating_split: SPLIT_NAMES[rateSplit[k]],
      }));
      await writeTable(con, tmp, 'negatives', { user: 'INTEGER', items: 'INTEGER[]' }, '"user"', numUsers, (u) => ({ user: u, items: Array.from(negatives[u]) }));
    } finally {
      con.closeSync();
      db.closeSync();
      rmSync(join(tmp, '.spill'), { recursive: true, force: true });
    }
    writeFileAtomic(join(tmp, 'features.json'), `${JSON.stringify(expl?.lexicon ?? [], null, 1)}\n`);
    const rows: Record<string, number> = { 'users.parquet': numUsers, 'items.parquet': numItems, 'interactions.parquet': n, 'negatives.parquet': numUsers, 'features.json': expl?.lexicon.length ?? 0 };
    manifest.contents = {};
    for (const [file, count] of Object.entries(rows)) {
      const path = join(tmp, file);
      manifest.contents[file] = { bytes: statSync(path).size, rows: count, sha256: await sha256File(path) };
    }
    writeFileAtomic(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  }, { force: opts.force, kind: DATASET_OUTPUT });
  log(`wrote ${opts.out} in ${((Date.now() - t0) / 1000).toFixed(2)}s`);
  return manifest;
}

/**
 * Rows go to DuckDB as newline-delimited JSON with an explicit schema, then
 * out as Parquet: one bulk read is far faster than per-value appender calls
 * across N-API, and the explicit ORDER BY keeps the bytes deterministic.
 */
async function writeTable(con: DuckDBConnection, dir: string, name: string, schema: Record<string, string>, orderBy: string, count: number, row: (k: number) => Record<string, unknown>): Promise<void> {
  const jsonPath = join(dir, `.${name}.ndjson`);
  const fd = openSync(jsonPath, 'w');
  try {
    let buf: string[] = [];
    for (let k = 0; k < count; k++) {
      buf.push(JSON.stringify(row(k)));
      if (buf.length === 8192) {
        writeSync(fd, buf.join('\n') + '\n');
        buf = [];
      }
    }
    if (buf.length) writeSync(fd, buf.join('\n') + '\n');
  } finally {
    closeSync(fd);
  }
  const q = (p: string): string => p.replace(/'/g, "''");
  const columns = `{${Object.entries(schema).map(([c, t]) => `'${c}': '${t}'`).join(', ')}}`;
  const path = join(dir, `${name}.parquet`);
  await con.run(`COPY (SELECT * FROM read_json('${q(jsonPath)}', format = 'newline_delimited', columns = ${columns}, maximum_object_size = 67108864) ORDER BY ${orderBy}) TO '${q(path)}' (FORMAT parquet, COMPRESSION zstd)`);
  rmSync(jsonPath);
}

function defaultName(raw: RawDataset): string {
  const first = basename(raw.files[0].path).replace(/\.(json|jsonl|csv|tsv|txt|data|dat)(\.gz)?$/i, '').replace(/\.gz$/i, '');
  return `${raw.kind}:${first}`;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

