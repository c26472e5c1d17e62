import { createReadStream, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { basename } from 'node:path';
import { Progress } from '../util/progress.js';
import { InputError } from '../errors.js';

export interface Line {
  text: string;
  /** 1-based line number in the (decompressed) file. */
  no: number;
}

/** True when the file starts with the gzip magic bytes. */
export async function isGzip(path: string): Promise<boolean> {
  const fd = await import('node:fs/promises').then((fs) => fs.open(path, 'r'));
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fd.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fd.close();
  }
}

let showProgress = false;
/** Big files (> 16 MB) report read progress on stderr when enabled (the CLI enables it unless --quiet). */
export function setReadProgress(enabled: boolean): void {
  showProgress = enabled;
}

/** Open a file as a byte stream, gunzipping when it is gzip (by magic, not by name). */
export async function openMaybeGzip(path: string): Promise<Readable> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new InputError('file not found', { file: path });
  }
  if (size === 0) throw new InputError('file is empty', { file: path });
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  if (showProgress && size > 16 << 20) {
    const bar = new Progress({ label: `reading ${basename(path)}`, total: size, unit: 'B' });
    raw.on('data', (chunk) => bar.tick(chunk.length));
    raw.on('end', () => bar.finish());
  }
  if (!(await isGzip(path))) return raw;
  const gunzip = createGunzip();
  raw.on('error', (e) => gunzip.destroy(e));
  return raw.pipe(gunzip);
}

/**
 * Stream the lines of a text file (plain or gzip) with their numbers. A
 * truncated or corrupt gzip stream becomes an InputError naming the line where
 * the data stopped. `encoding` 'latin1' is for MovieLens' u.item.
 */
export async function* readLines(path: string, encoding: BufferEncoding = 'utf8'): AsyncGenerator<Line> {
  const stream = await openMaybeGzip(path);
  const decoder = new TextDecoder(encoding === 'latin1' ? 'latin1' : 'utf-8');
  let pending = '';
  let no = 0;
  let any = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      any = true;
      pending += decoder.decode(chunk, { stream: true });
      let start = 0;
      let nl: number;
      while ((nl = pending.indexOf('\n', start)) !== -1) {
        let end = nl;
        if (end > start && pending.charCodeAt(end - 1) === 13) end--;
        no++;
        yield { text: pending.slice(start, end), no };
        start = nl + 1;
      }
      pending = pending.slice(start);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'Z_BUF_ERROR' || /unexpected end/i.test(String((err as Error).message))
      ? 'truncated gzip stream (unexpected end of file)'
      : `corrupt gzip stream (${(err as Error).message})`;
    throw new InputError(what, { file: path, line: no + 1 });
  }
  pending += decoder.decode();
  if (pending.length > 0) {
    no++;
    yield { text: pending.endsWith('\r') ? pending.slice(0, -1) : pending, no };
  }
  if (!any) throw new InputError('file is empty', { file: path });
}
