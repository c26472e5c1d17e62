/** What the Beauty benches share: repository paths, a flag reader, the import command. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BEAUTY = resolve(ROOT, '../shared/datasets/amazon-beauty');
export const BIN = join(ROOT, 'bin/p5rec.js');
export const args = process.argv.slice(2);

/** The value after `--name`, or `dflt`. */
export function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}

/** `p5rec` arguments that import ../shared Beauty with random item numbers (leak-free) into `out`. */
export function importBeautyArgs(out) {
  return ['data', 'import', 'p5', '--sequences', join(BEAUTY, 'sequential.txt'), '--datamaps', join(BEAUTY, 'datamaps.json'), '--meta', join(BEAUTY, 'meta.jsonl'), '--item-index', 'random', '--out', out];
}
