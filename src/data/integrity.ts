import { statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { sha256File } from './build.js';
import type { Manifest } from './manifest.js';

/** Files up to this size are hashed on every load; bigger ones only by `data audit`. */
export const HASH_ON_LOAD_BYTES = 8 << 20;

const warned = new Set<string>();

/**
 * Check a dataset folder's files against its manifest before reading them:
 * sizes always, sha256 when small or `full`. A file copied in from another
 * dataset is refused by name instead of being evaluated as if it belonged.
 * Datasets written before checksums existed load with a one-time warning.
 */
export async function checkFiles(dir: string, manifest: Manifest, full = false): Promise<void> {
  const contents = manifest.contents;
  if (!contents) {
    if (!warned.has(dir)) {
      warned.add(dir);
      process.stderr.write(`p5rec: warning: ${dir}: manifest.json has no file checksums (an older p5rec wrote it); only row counts are checked. Re-import to add them.\n`);
    }
    return;
  }
  for (const [file, want] of Object.entries(contents)) {
    const path = join(dir, file);
    let bytes: number;
    try {
      bytes = statSync(path).size;
    } catch {
      throw new InputError('missing, but listed in manifest.json', { file: path });
    }
    if (bytes !== want.bytes) throw new InputError(`does not match manifest (${bytes} bytes, expected ${want.bytes}); replaced or damaged, re-import the dataset`, { file: path });
    if (full || bytes <= HASH_ON_LOAD_BYTES) {
      if ((await sha256File(path)) !== want.sha256) throw new InputError('does not match manifest (sha256 differs); replaced or damaged, re-import the dataset', { file: path });
    }
  }
}

/** Rows read from a table against what the manifest (or the other tables) say it must hold. */
export function checkRows(dir: string, file: string, rows: number, expected: number): void {
  if (rows !== expected) throw new InputError(`does not match manifest (rows ${rows}, expected ${expected})`, { file: join(dir, file) });
}
