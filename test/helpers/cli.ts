import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * Data the tests read, all committed in the repository (test/fixtures/README.md):
 * Amazon Beauty as P5 ships it, the bundled Musical Instruments reviews and
 * titled Beauty slice, and the 1 MB stories260K GGUF model (bundled in
 * data/models, which the quickstart uses too).
 */
export const FIXTURES = join(ROOT, 'test/fixtures');
export const BEAUTY = join(FIXTURES, 'amazon-beauty');
export const MI_REVIEWS = join(ROOT, 'data/musical-instruments/reviews_Musical_Instruments_5.json.gz');
export const BEAUTY_SLICE = join(ROOT, 'data/amazon-beauty-slice');
export const STORIES_GGUF = join(ROOT, 'data/models/stories260K.gguf');
/**
 * MovieLens 100K's licence (GroupLens) forbids redistributing it, so the tests
 * read a synthetic dataset in its exact file format instead
 * (test/fixtures/movielens-format, written by scripts/make-movielens-fixture.mjs:
 * 300 users, 400 movies, 9,375 ratings). P5REC_MOVIELENS_DIR points the same
 * tests at another folder in that format (for instance the real ml-100k); the
 * assertions on counts then follow its u.info.
 */
export const MOVIELENS = process.env.P5REC_MOVIELENS_DIR ?? join(FIXTURES, 'movielens-format');
/** Users, movies and ratings in MOVIELENS, as its u.info states them ("943 users\n1682 items\n100000 ratings"). */
export function movieLensCounts(): { users: number; items: number; ratings: number } {
  const info = readFileSync(join(MOVIELENS, 'u.info'), 'utf8');
  const count = (what: string): number => Number(new RegExp(`(\\d+) ${what}`).exec(info)?.[1] ?? NaN);
  return { users: count('users'), items: count('items'), ratings: count('ratings') };
}
export const BIN = join(ROOT, 'bin/p5rec.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | null;
}

/** Run the built CLI as a user would (npm test builds dist first). */
export function cli(args: string[], opts: { cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: opts.cwd ?? ROOT, maxBuffer: 64 << 20 });
  let json: Record<string, unknown> | null = null;
  if (args.includes('--json')) {
    const lines = r.stdout.trim().split('\n');
    try {
      json = JSON.parse(lines[lines.length - 1]);
    } catch {
      json = null;
    }
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

export function tempDir(prefix = 'p5rec-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
