import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * Data the tests read, all committed in the repository (test/fixtures/README.md):
 * Amazon Beauty as P5 ships it, the bundled Musical Instruments reviews, and the
 * 1 MB stories260K GGUF model.
 */
export const FIXTURES = join(ROOT, 'test/fixtures');
export const BEAUTY = join(FIXTURES, 'amazon-beauty');
export const MI_REVIEWS = join(ROOT, 'data/musical-instruments/reviews_Musical_Instruments_5.json.gz');
export const STORIES_GGUF = join(FIXTURES, 'models/stories260K.gguf');
/**
 * MovieLens 100K is the one dataset the tests cannot carry: its licence
 * (GroupLens) forbids redistribution. It is read from P5REC_MOVIELENS_DIR or
 * ../shared/datasets/movielens-100k.
 */
export const MOVIELENS = process.env.P5REC_MOVIELENS_DIR ?? resolve(ROOT, '../shared/datasets/movielens-100k');
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
