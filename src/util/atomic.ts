import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { InputError } from '../errors.js';

/**
 * Build an output folder in a sibling temp folder and rename it into place
 * only when `build` succeeds, so a failure never leaves a half-written output.
 */
export async function withAtomicDir<T>(out: string, build: (tmpDir: string) => Promise<T>, opts: { overwrite?: boolean } = {}): Promise<T> {
  if (existsSync(out) && !opts.overwrite) throw new InputError('output folder already exists (pass --force to replace it)', { file: out });
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const result = await build(tmp);
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return result;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Write a file via temp + rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
