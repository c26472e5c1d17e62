import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { InputError } from '../errors.js';
import { readManifest, type Manifest } from './manifest.js';
import { checkFiles, checkRows } from './integrity.js';
import { TRAIN, VALID, TEST } from './splits.js';

const SPLIT_CODE: Record<string, number> = { train: TRAIN, valid: VALID, test: TEST };

/**
 * A dataset folder loaded into memory as parallel typed arrays: the one
 * object every recommender, prompt generator and evaluator reads. Rows of
 * `interactions` are sorted by (user, pos), so a user's history is a
 * contiguous slice starting at `userStart[u]`.
 */
export class Dataset {
  readonly numUsers: number;
  readonly numItems: number;
  readonly userStart: Int32Array;
  readonly userLength: Int32Array;
  private tokenToItem?: Map<string, number>;
  private tokenToUser?: Map<string, number>;

  constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly users: { token: string[]; rawId: string[]; name: (string | null)[] },
    readonly items: { token: string[]; rawId: string[]; title: (string | null)[]; brand: (string | null)[]; price: (number | null)[]; categories: (string[] | null)[] },
    readonly interactions: {
      user: Int32Array;
      item: Int32Array;
      pos: Int32Array;
      /** NaN where the source has no rating. */
      rating: Float32Array;
      /** Unix seconds; NaN where absent. */
      time: Float64Array;
      review: (string | null)[];
      summary: (string | null)[];
      reviewerName: (string | null)[];
      feature: (string | null)[];
      explanation: (string | null)[];
      seqSplit: Uint8Array;
      ratingSplit: Uint8Array;
    },
    readonly negatives: Int32Array[],
    readonly features: string[],
  ) {
    this.numUsers = users.token.length;
    this.numItems = items.token.length;
    this.userStart = new Int32Array(this.numUsers);
    this.userLength = new Int32Array(this.numUsers);
    const u = interactions.user;
    for (let k = 0; k < u.length; k++) {
      if (k === 0 || u[k] !== u[k - 1]) this.userStart[u[k]] = k;
      this.userLength[u[k]]++;
    }
  }

  get numInteractions(): number {
    return this.interactions.user.length;
  }

  /** A user's full history (item indices, time order). */
  sequence(u: number): Int32Array {
    return this.interactions.item.subarray(this.userStart[u], this.userStart[u] + this.userLength[u]);
  }

  /** The part of a user's history in a leave-one-out split (train = prefix; valid/test = one item). */
  sequenceSplit(u: number, split: number): Int32Array {
    const s = this.userStart[u];
    const seq = this.sequence(u);
    const out: number[] = [];
    for (let k = 0; k < seq.length; k++) if (this.interactions.seqSplit[s + k] === split) out.push(seq[k]);
    return Int32Array.from(out);
  }

  /** History visible when predicting the given split: train for valid, train+valid for test. */
  historyBefore(u: number, split: number): Int32Array {
    const s = this.userStart[u];
    const seq = this.sequence(u);
    const out: number[] = [];
    for (let k = 0; k < seq.length; k++) {
      const sp = this.interactions.seqSplit[s + k];
      if (sp === TRAIN || (split === TEST && sp === VALID)) out.push(seq[k]);
    }
    return Int32Array.from(out);
  }

  itemByToken(token: string): number | undefined {
    this.tokenToItem ??= new Map(this.items.token.map((t, i) => [t, i]));
    return this.tokenToItem.get(token);
  }

  userByToken(token: string): number | undefined {
    this.tokenToUser ??= new Map(this.users.token.map((t, i) => [t, i]));
    return this.tokenToUser.get(token);
  }

  /** Row indices of interactions in a rating split. */
  ratingRows(split: number): Int32Array {
    const out: number[] = [];
    const s = this.interactions.ratingSplit;
    for (let k = 0; k < s.length; k++) if (s[k] === split) out.push(k);
    return Int32Array.from(out);
  }
}

/**
 * Load a dataset folder written by `p5rec data import`, refusing files that
 * do not match its manifest (`verify: 'full'` hashes every file, as `data audit` does).
 */
export async function loadDataset(dir: string, opts: { verify?: 'full' } = {}): Promise<Dataset> {
  const manifest = readManifest(dir);
  for (const t of ['users', 'items', 'interactions', 'negatives']) {
    if (!existsSync(join(dir, `${t}.parquet`))) throw new InputError(`dataset is missing ${t}.parquet`, { file: dir });
  }
  await checkFiles(dir, manifest, opts.verify === 'full');
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const read = async (table: string, order: string): Promise<Record<string, unknown[]>> => {
    const path = join(dir, `${table}.parquet`).replace(/'/g, "''");
    try {
      const r = await con.runAndReadAll(`SELECT * FROM read_parquet('${path}') ORDER BY ${order}`);
      return r.getColumnsObjectJS() as Record<string, unknown[]>;
    } catch (e) {
      throw new InputError(`cannot read Parquet table (${(e as Error).message.split('\n')[0]})`, { file: join(dir, `${table}.parquet`) });
    }
  };
  try {
    const u = await read('users', '"user"');
    const it = await read('items', 'item');
    const x = await read('interactions', '"user", pos');
    const ng = await read('negatives', '"user"');
    // Row counts hold even for datasets without checksums; then index ranges, so a
    // mismatched table is named here rather than failing later as an undefined read.
    const c = manifest.counts;
    checkRows(dir, 'users.parquet', u.token.length, c.users);
    checkRows(dir, 'items.parquet', it.token.length, c.items);
    checkRows(dir, 'interactions.parquet', x.user.length, c.interactions);
    checkRows(dir, 'negatives.parquet', ng.user.length, c.users);
    checkRange(dir, 'interactions.parquet', 'user', x.user as number[], c.users);
    checkRange(dir, 'interactions.parquet', 'item', x.item as number[], c.items);
    checkRange(dir, 'negatives.parquet', 'user', ng.user as number[], c.users);
    for (const list of ng.items as (number[] | null)[]) checkRange(dir, 'negatives.parquet', 'items', list ?? [], c.items);
    for (const col of ['seq_split', 'rating_split']) {
      const bad = (x[col] as unknown[]).findIndex((v) => SPLIT_CODE[v as string] === undefined);
      if (bad >= 0) throw new InputError(`row ${bad + 1} has split ${JSON.stringify(x[col][bad])}, expected train/valid/test`, { file: join(dir, 'interactions.parquet'), field: col });
    }
    const str = (a: unknown[]): (string | null)[] => a as (string | null)[];
    const i32 = (a: unknown[]): Int32Array => Int32Array.from(a as number[]);
    const f32 = (a: unknown[]): Float32Array => Float32Array.from(a as (number | null)[], (v) => (v === null ? NaN : v));
    const f64 = (a: unknown[]): Float64Array => Float64Array.from(a as (number | bigint | null)[], (v) => (v === null ? NaN : Number(v)));
    const split = (a: unknown[]): Uint8Array => Uint8Array.from(a as string[], (s) => SPLIT_CODE[s]);
    let features: string[] = [];
    try {
      features = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'features.json'), 'utf8'));
    } catch {
      features = [];
    }
    if (manifest.contents?.['features.json']) checkRows(dir, 'features.json', features.length, manifest.contents['features.json'].rows);
    return new Dataset(
      dir,
      manifest,
      { token: u.token as string[], rawId: u.raw_id as string[], name: str(u.name) },
      {
        token: it.token as string[],
        rawId: it.raw_id as string[],
        title: str(it.title),
        brand: str(it.brand),
        price: it.price as (number | null)[],
        categories: it.categories as (string[] | null)[],
      },
      {
        user: i32(x.user),
        item: i32(x.item),
        pos: i32(x.pos),
        rating: f32(x.rating),
        time: f64(x.time),
        review: str(x.review),
        summary: str(x.summary),
        reviewerName: str(x.reviewer_name),
        feature: str(x.feature),
        explanation: str(x.explanation),
        seqSplit: split(x.seq_split),
        ratingSplit: split(x.rating_split),
      },
      (ng.items as number[][]).map((a) => Int32Array.from(a)),
      features,
    );
  } finally {
    con.closeSync();
    db.closeSync();
  }
}

function checkRange(dir: string, file: string, field: string, values: number[], limit: number): void {
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (!(Number.isInteger(v) && v >= 0 && v < limit)) throw new InputError(`row ${k + 1} holds ${v}, outside 0..${limit - 1}`, { file: join(dir, file), field });
  }
}
