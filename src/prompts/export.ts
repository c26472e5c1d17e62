/**
 * Instances → JSONL, one `{source, target, task, template, user, item}` per
 * line, written to a temp file beside the output and renamed into place, so a
 * reader never sees a half-written file and a failure leaves nothing behind.
 * An output named `*.gz` is gzip-compressed (what its name promises).
 */
import { createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import type { PromptInstance } from './stream.js';
import type { PromptTask } from './templates.js';

export interface WriteResult {
  out: string;
  written: number;
  bytes: number;
  perTask: Partial<Record<PromptTask, number>>;
  perTemplate: Record<string, number>;
}

/** The exported line of an instance: the six fields, in this order. */
export function instanceLine(i: PromptInstance): string {
  return JSON.stringify({ source: i.source, target: i.target, task: i.task, template: i.template, user: i.user, item: i.item });
}

/** Stream instances (at most `limit`) into `out` atomically. */
export async function writeInstancesJsonl(
  instances: Iterable<PromptInstance>,
  out: string,
  opts: { limit?: number; onProgress?: (written: number) => void } = {},
): Promise<WriteResult> {
  const dir = dirname(out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError('output folder does not exist', { file: dir });
  if (existsSync(out) && statSync(out).isDirectory()) throw new InputError('output is a folder; give a file name such as pairs.jsonl', { file: out });
  const tmp = join(dir, `.${basename(out)}.tmp-${process.pid}-${Date.now().toString(36)}`);
  const file = createWriteStream(tmp);
  const gzip = out.endsWith('.gz') ? createGzip() : null;
  if (gzip) gzip.pipe(file);
  // `stream` takes the text; `file` is what must be flushed before the rename.
  const stream = gzip ?? file;
  let failed: Error | null = null;
  for (const s of [file, gzip]) s?.on('error', (e: Error) => {
    failed = e;
  });
  const limit = opts.limit ?? Infinity;
  const perTask: Partial<Record<PromptTask, number>> = {};
  const perTemplate: Record<string, number> = {};
  let written = 0;
  let bytes = 0;
  let chunk: string[] = [];
  let chunkChars = 0;
  const flush = async (): Promise<void> => {
    if (!chunk.length) return;
    const text = chunk.join('');
    chunk = [];
    chunkChars = 0;
    bytes += Buffer.byteLength(text);
    if (!stream.write(text)) await new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        stream.off('error', onError);
        resolve();
      };
      const onError = (e: Error): void => {
        stream.off('drain', onDrain);
        reject(e);
      };
      stream.once('drain', onDrain);
      stream.once('error', onError);
    });
  };
  try {
    if (limit > 0) {
      for (const inst of instances) {
        const line = `${instanceLine(inst)}\n`;
        chunk.push(line);
        chunkChars += line.length;
        written++;
        perTask[inst.task] = (perTask[inst.task] ?? 0) + 1;
        perTemplate[inst.template] = (perTemplate[inst.template] ?? 0) + 1;
        if (chunkChars >= 1 << 20) {
          await flush();
          opts.onProgress?.(written);
        }
        if (failed) throw failed;
        if (written >= limit) break;
      }
    }
    await flush();
    await new Promise<void>((resolve, reject) => {
      file.once('finish', resolve);
      file.once('error', reject);
      stream.end();
    });
    if (failed) throw failed;
    renameSync(tmp, out);
  } catch (e) {
    stream.destroy();
    file.destroy();
    rmSync(tmp, { force: true });
    // File-system failures (disk full, permissions) are the user's to fix; anything else is re-thrown as is.
    if ((e as NodeJS.ErrnoException).code && !(e instanceof InputError)) throw new InputError(`cannot write instances (${(e as Error).message})`, { file: out });
    throw e;
  }
  opts.onProgress?.(written);
  return { out, written, bytes, perTask, perTemplate };
}
