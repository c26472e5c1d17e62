import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { basename } from 'node:path';
import { Progress } from '../util/progress.js';
import { InputError } from '../errors.js';

export interface Line {
  text: string;
  /** 1-based line number in the (decompressed) file. */
  no: number;
  /** The line's bytes are not valid UTF-8 (only yielded with `allowInvalid`; bad bytes read as U+FFFD). */
  invalid?: boolean;
}

/** Text encodings an importer may be told to read with. */
export const ENCODINGS = ['utf8', 'latin1'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Longest line accepted: bounds memory on a file with no newlines, well above any real record. */
export const MAX_LINE_BYTES = 256 << 20;

/** True when the file starts with the gzip magic bytes. */
export async function isGzip(path: string): Promise<boolean> {
  const fd = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fd.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fd.close();
  }
}

let showProgress = false;
let progressMinBytes = 16 << 20;
/** Big files report read progress on stderr when enabled (the CLI enables it unless --quiet). `minBytes` is for tests. */
export function setReadProgress(enabled: boolean, minBytes = 16 << 20): void {
  showProgress = enabled;
  progressMinBytes = minBytes;
}

/**
 * Open a file as a byte stream, gunzipping when it is gzip (by magic, not by
 * name). The gzip check runs before any stream exists, and progress counts
 * bytes in a pass-through stage of the pipe rather than by a 'data' listener:
 * a listener would switch the file stream to flowing mode and drop whatever it
 * read before the consumer attached (the lost first MiB of issue 15).
 */
export async function openMaybeGzip(path: string): Promise<Readable> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new InputError('file not found', { file: path });
  }
  if (size === 0) throw new InputError('file is empty', { file: path });
  const gzip = await isGzip(path);
  let stream: Readable = createReadStream(path, { highWaterMark: 1 << 20 });
  if (showProgress && size > progressMinBytes) {
    const bar = new Progress({ label: `reading ${basename(path)}`, total: size, unit: 'B' });
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bar.tick(chunk.length);
        done(null, chunk);
      },
      flush(done) {
        bar.finish();
        done();
      },
    });
    stream = forward(stream, counter);
  }
  return gzip ? forward(stream, createGunzip()) : stream;
}

/** `from.pipe(to)` that also carries `from`'s errors (pipe alone would leave the consumer waiting). */
function forward<T extends NodeJS.ReadWriteStream & Readable>(from: Readable, to: T): T {
  from.on('error', (e) => to.destroy(e));
  return from.pipe(to);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });
const latin1 = new TextDecoder('latin1');

/**
 * Stream the lines of a text file (plain or gzip) with their numbers, in
 * bounded memory: bytes are split at newlines before decoding (a newline byte
 * never sits inside a UTF-8 sequence), so one line is at most held twice.
 * UTF-8 is checked, not repaired: invalid bytes are an InputError naming the
 * line (a Latin-1 file read as UTF-8 would merge distinct ids), unless
 * `allowInvalid`, where the line comes back flagged so the caller can name
 * the field. A truncated or corrupt gzip stream names the line where the data
 * stopped.
 */
export async function* readLines(path: string, opts: { encoding?: Encoding; allowInvalid?: boolean } = {}): AsyncGenerator<Line> {
  const encoding = opts.encoding ?? 'utf8';
  const stream = await openMaybeGzip(path);
  let no = 0;
  let any = false;
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let first = true;
  const decode = function* (bytes: Buffer): Generator<Line> {
    if (first) {
      first = false;
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    }
    if (encoding === 'latin1') {
      for (const text of latin1.decode(bytes).split('\n')) yield { text: chomp(text), no: ++no };
      return;
    }
    let text: string | null;
    try {
      text = utf8.decode(bytes);
    } catch {
      text = null;
    }
    if (text !== null) {
      for (const t of text.split('\n')) yield { text: chomp(t), no: ++no };
      return;
    }
    // Slow path, only for a batch that holds bad bytes: find the line.
    let start = 0;
    while (start <= bytes.length) {
      let nl = bytes.indexOf(10, start);
      if (nl === -1) nl = bytes.length;
      const b = bytes.subarray(start, nl);
      no++;
      try {
        yield { text: chomp(utf8.decode(b)), no };
      } catch {
        if (!opts.allowInvalid) throw new InputError(`invalid UTF-8 at byte ${firstBadByte(b) + 1} of the line (not a UTF-8 file? set 'encoding' to latin1 for Latin-1)`, { file: path, line: no });
        yield { text: chomp(utf8Lossy.decode(b)), no, invalid: true };
      }
      start = nl + 1;
    }
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (chunk.length === 0) continue;
      any = true;
      const last = chunk.lastIndexOf(10);
      if (last === -1) {
        carry.push(chunk);
        carryBytes += chunk.length;
        if (carryBytes > MAX_LINE_BYTES) throw new InputError(`line longer than ${MAX_LINE_BYTES >> 20} MiB (not a line-oriented file?)`, { file: path, line: no + 1 });
        continue;
      }
      const head = carry.length ? Buffer.concat([...carry, chunk.subarray(0, last)]) : chunk.subarray(0, last);
      carry = last + 1 < chunk.length ? [chunk.subarray(last + 1)] : [];
      carryBytes = carry.length ? carry[0].length : 0;
      yield* decode(head);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'Z_BUF_ERROR' || /unexpected end/i.test(String((err as Error).message))
      ? 'truncated gzip stream (unexpected end of file)'
      : `corrupt gzip stream (${(err as Error).message})`;
    throw new InputError(what, { file: path, line: no + 1 });
  }
  if (carryBytes > 0) yield* decode(Buffer.concat(carry));
  if (!any) throw new InputError('file is empty', { file: path });
}

function chomp(s: string): string {
  return s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s;
}

/** Offset of the first byte that breaks UTF-8 (lead/continuation structure; overlong forms count as fine). */
export function firstBadByte(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const need = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) if (i + k >= b.length || (b[i + k] & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return Math.max(0, b.length - 1);
}
