/**
 * `p5rec data download`: fetch public recommendation datasets from their
 * publishers (or a mirror) with resume, retries and integrity checks.
 *
 * Files land as `<dir>/<name>`; while in flight they live in `<name>.part`
 * (plus `<name>.part.json` holding the server's validator for safe resume)
 * and are renamed into place only after size and checksum pass, so a final
 * name on disk always means a complete, verified file.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { unzipSync } from 'fflate';
import { InputError, P5recError, type ErrorFacts } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { fmtCount, Progress } from '../util/progress.js';

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/** Expected integrity facts for one file; any of them may be unknown. */
export interface ExpectedFile {
  md5?: string;
  sha256?: string;
  size?: number;
}

/** One file a dataset consists of, as published. */
export interface RemoteFile extends ExpectedFile {
  /** File name on the server and on disk. */
  name: string;
  /** Unpack (zip) into the target folder after download. */
  unzip?: boolean;
}

export interface DatasetSpec {
  id: string;
  title: string;
  /** The publisher's folder; files are fetched as `<baseUrl>/<name>`. */
  baseUrl: string;
  /** Valid `--category` values, when the dataset is split by category. */
  categories?: readonly string[];
  files(category?: string): RemoteFile[];
  /** The `p5rec data import` line to run once the files are here. */
  importCommand(dir: string, category?: string): string;
}

/** McAuley et al. 2014 Amazon review data, the 5-core category files. */
export const AMAZON_2014_CATEGORIES: readonly string[] = [
  'Amazon_Instant_Video', 'Apps_for_Android', 'Automotive', 'Baby', 'Beauty', 'Books', 'CDs_and_Vinyl',
  'Cell_Phones_and_Accessories', 'Clothing_Shoes_and_Jewelry', 'Digital_Music', 'Electronics',
  'Grocery_and_Gourmet_Food', 'Health_and_Personal_Care', 'Home_and_Kitchen', 'Kindle_Store', 'Movies_and_TV',
  'Musical_Instruments', 'Office_Products', 'Patio_Lawn_and_Garden', 'Pet_Supplies', 'Sports_and_Outdoors',
  'Tools_and_Home_Improvement', 'Toys_and_Games', 'Video_Games',
];

export const DATASETS: Readonly<Record<string, DatasetSpec>> = {
  'amazon-2014': {
    id: 'amazon-2014',
    title: 'Amazon reviews 2014 (McAuley), 5-core reviews + item metadata of one category',
    baseUrl: 'http://snap.stanford.edu/data/amazon/productGraph/categoryFiles',
    categories: AMAZON_2014_CATEGORIES,
    // The publisher gives no checksums for these; size comes from Content-Length
    // and the sha256 we compute is recorded in a `.sha256` sidecar.
    files: (cat) => [{ name: `reviews_${cat}_5.json.gz` }, { name: `meta_${cat}.json.gz` }],
    importCommand: (dir, cat) =>
      `p5rec data import amazon --reviews ${shQuote(join(dir, `reviews_${cat}_5.json.gz`))} --meta ${shQuote(join(dir, `meta_${cat}.json.gz`))} --out ${shQuote(join(dir, String(cat).toLowerCase()))}`,
  },
  'movielens-100k': {
    id: 'movielens-100k',
    title: 'MovieLens 100K (GroupLens)',
    baseUrl: 'https://files.grouplens.org/datasets/movielens',
    // md5 as published by GroupLens in ml-100k.zip.md5.
    files: () => [{ name: 'ml-100k.zip', md5: '0e33842e24a9c977be4e0107933c0723', unzip: true }],
    importCommand: (dir) => `p5rec data import movielens --dir ${shQuote(join(dir, 'ml-100k'))} --out ${shQuote(join(dir, 'movielens-100k'))}`,
  },
  'movielens-1m': {
    id: 'movielens-1m',
    title: 'MovieLens 1M (GroupLens)',
    baseUrl: 'https://files.grouplens.org/datasets/movielens',
    // md5 as published by GroupLens in ml-1m.zip.md5.
    files: () => [{ name: 'ml-1m.zip', md5: 'c4d9eecfca2ab87c1945afe126590906', unzip: true }],
    importCommand: (dir) => `p5rec data import movielens --dir ${shQuote(join(dir, 'ml-1m'))} --out ${shQuote(join(dir, 'movielens-1m'))}`,
  },
};

/** Short names people type anyway. */
const ALIASES: Record<string, string> = { amazon: 'amazon-2014', 'ml-100k': 'movielens-100k', 'ml-1m': 'movielens-1m' };

export interface PlannedFile extends RemoteFile {
  url: string;
}

export interface DownloadPlan {
  spec: DatasetSpec;
  category?: string;
  files: PlannedFile[];
}

/**
 * Resolve a dataset name (+ category) to concrete URLs. `baseUrl` replaces
 * the publisher's folder (a mirror, or a test server).
 */
export function planDownload(dataset: string, opts: { category?: string; baseUrl?: string } = {}): DownloadPlan {
  const spec = DATASETS[dataset] ?? DATASETS[ALIASES[dataset] ?? ''];
  if (!spec) throw new InputError(`unknown dataset '${dataset}'; available: ${Object.keys(DATASETS).join(', ')}`, { field: 'dataset' });
  let category: string | undefined;
  if (spec.categories) {
    if (!opts.category) throw new InputError(`${spec.id} needs a category, one of: ${spec.categories.join(', ')}`, { field: 'category' });
    // Accept `beauty`, `musical-instruments`, `Toys and Games`: compare letters only.
    const key = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
    category = spec.categories.find((c) => key(c) === key(opts.category as string));
    if (!category) throw new InputError(`unknown ${spec.id} category '${opts.category}'; one of: ${spec.categories.join(', ')}`, { field: 'category' });
  } else if (opts.category) {
    throw new InputError(`only applies to datasets split by category (amazon-2014), not ${spec.id}`, { field: 'category' });
  }
  const base = (opts.baseUrl ?? spec.baseUrl).replace(/\/+$/, '');
  const files = spec.files(category).map((f) => ({ ...f, url: `${base}/${encodeURIComponent(f.name)}` }));
  return { spec, category, files };
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A download failed; `url` and the low-level `code` are kept for callers. */
export class DownloadError extends P5recError {
  constructor(
    message: string,
    facts: ErrorFacts,
    readonly url: string,
    readonly code?: string,
  ) {
    super(message, facts);
    this.name = 'DownloadError';
  }
}

/** Codes that mean "no network path at all": retrying will not help. */
const OFFLINE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN']);

/** Codes (and HTTP statuses) worth another attempt. */
const RETRY_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'EPROTO', 'ESOCKETTIMEDOUT', 'SHORT_BODY']);

function errCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errors?: unknown[] };
  if (typeof e?.code === 'string') return e.code;
  // Happy-eyeballs connects (IPv4 + IPv6) fail with an AggregateError.
  if (Array.isArray(e?.errors)) for (const inner of e.errors) { const c = errCode(inner); if (c) return c; }
  return undefined;
}

class HttpStatusError extends Error {
  constructor(readonly status: number, readonly statusText: string) {
    super(`server answered ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

function offlineError(url: string, code: string): DownloadError {
  const host = new URL(url).host;
  return new DownloadError(
    `cannot reach ${host} (${code}): this machine looks offline; download the files elsewhere and pass them to 'p5rec data import'`,
    { file: url, status: 503 },
    url,
    code,
  );
}

// ---------------------------------------------------------------------------
// Download engine
// ---------------------------------------------------------------------------

export interface DownloadFileOptions {
  /** Expected checksums/size; a mismatch fails and removes the `.part`. */
  expected?: ExpectedFile;
  /** Attempts per file, counting the first (default 5). */
  attempts?: number;
  /** First retry delay; doubles each retry, capped at 30 s (default 1000 ms). */
  retryDelayMs?: number;
  /** Give up on a silent connection after this long (default 60 s). */
  idleTimeoutMs?: number;
  quiet?: boolean;
  /** Human log lines (resume, retry, skip); default: stderr unless quiet. */
  log?: (msg: string) => void;
  /** Where progress goes (default stderr). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface DownloadedFile {
  name: string;
  path: string;
  url: string;
  bytes: number;
  sha256: string;
  md5: string;
  /** Already complete and verified on disk: nothing was fetched. */
  skipped: boolean;
  /** Continued a `.part` left by an earlier run or a dropped connection. */
  resumed: boolean;
  /** For archives: the files unpacked, relative to the target folder. */
  extracted?: string[];
}

/** Server validator saved next to a `.part` so a later resume can send If-Range. */
interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

interface Opened {
  res: http.IncomingMessage;
  finalUrl: string;
}

/** One GET, following redirects; resolves with a 2xx/416 response, rejects otherwise. */
function openGet(url: string, headers: Record<string, string>, idleTimeoutMs: number, hops = 0): Promise<Opened> {
  return new Promise((resolveP, rejectP) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      rejectP(new InputError(`not a valid URL: '${url}'`));
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      rejectP(new InputError(`only http(s) URLs can be downloaded, got '${url}'`));
      return;
    }
    const lib = u.protocol === 'https:' ? https : http;
    // agent:false: a fresh socket per attempt, never a half-dead pooled one.
    const req = lib.get(u, { headers: { 'user-agent': 'p5rec', ...headers }, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hops >= 5) { rejectP(new HttpStatusError(status, 'too many redirects')); return; }
        openGet(new URL(res.headers.location, u).toString(), headers, idleTimeoutMs, hops + 1).then(resolveP, rejectP);
        return;
      }
      if ((status >= 200 && status < 300) || status === 416) { resolveP({ res, finalUrl: u.toString() }); return; }
      res.resume();
      rejectP(new HttpStatusError(status, res.statusMessage ?? ''));
    });
    req.setTimeout(idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', rejectP);
  });
}

/** `bytes a-b/total` or `bytes * /total` → parts; undefined when absent or malformed. */
function parseContentRange(h: string | undefined): { start?: number; total?: number } | undefined {
  const m = h ? /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(h.trim()) : null;
  if (!m) return undefined;
  return { start: m[1] !== undefined ? Number(m[1]) : undefined, total: m[2] === '*' ? undefined : Number(m[2]) };
}

function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

function readMeta(path: string): PartMeta | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PartMeta;
  } catch {
    return undefined;
  }
}

/** md5 + sha256 of a file in one streaming pass, with progress for big files. */
export async function hashFile(path: string, opts: { quiet?: boolean; progressStream?: NodeJS.WritableStream & { isTTY?: boolean } } = {}): Promise<{ md5: string; sha256: string; bytes: number }> {
  const md5 = createHash('md5'), sha = createHash('sha256');
  const bytes = fileSize(path);
  const progress = new Progress({ label: `verify ${basename(path).replace(/\.part$/, '')}`, total: bytes, unit: 'B', quiet: opts.quiet || bytes < 64 << 20, stream: opts.progressStream });
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    md5.update(chunk as Buffer);
    sha.update(chunk as Buffer);
    progress.tick((chunk as Buffer).length);
  }
  progress.finish();
  return { md5: md5.digest('hex'), sha256: sha.digest('hex'), bytes };
}

/** Compare computed digests with what is expected; returns a problem or undefined. */
function checkDigests(got: { md5: string; sha256: string; bytes: number }, exp: ExpectedFile): string | undefined {
  if (exp.size !== undefined && got.bytes !== exp.size) return `size is ${got.bytes} bytes, expected ${exp.size}`;
  if (exp.sha256 && got.sha256 !== exp.sha256.toLowerCase()) return `sha256 is ${got.sha256}, expected ${exp.sha256}`;
  if (exp.md5 && got.md5 !== exp.md5.toLowerCase()) return `md5 is ${got.md5}, expected ${exp.md5}`;
  return undefined;
}

function sidecarSha(dest: string): string | undefined {
  try {
    return readFileSync(`${dest}.sha256`, 'utf8').trim().split(/\s+/)[0]?.toLowerCase() || undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Download `url` to `dest` (resumable, retried, verified). Returns what is on
 * disk; throws `DownloadError` (offline, HTTP error, checksum mismatch).
 */
export async function downloadFile(url: string, dest: string, opts: DownloadFileOptions = {}): Promise<DownloadedFile> {
  const log = opts.log ?? (opts.quiet ? () => {} : (m: string) => process.stderr.write(`${m}\n`));
  const expected = opts.expected ?? {};
  const attempts = Math.max(1, opts.attempts ?? 5);
  const baseDelay = opts.retryDelayMs ?? 1000;
  const idle = opts.idleTimeoutMs ?? 60_000;
  const name = basename(dest);
  mkdirSync(dirname(dest), { recursive: true });

  // 1. Already here? Verify against the registry checksum or our own sidecar.
  if (existsSync(dest)) {
    const got = await hashFile(dest, opts);
    const recorded = sidecarSha(dest);
    const problem = checkDigests(got, { ...expected, sha256: expected.sha256 ?? recorded });
    if (!problem) {
      if (!recorded) writeSidecar(dest, got.sha256);
      log(`${name}: already complete (${got.bytes} bytes${expected.md5 || expected.sha256 || recorded ? ', checksum ok' : ''}); skipped`);
      return { name, path: dest, url, bytes: got.bytes, sha256: got.sha256, md5: got.md5, skipped: true, resumed: false };
    }
    // Keep the old file until a good one replaces it (the rename below).
    log(`${name}: existing file does not verify (${problem}); downloading again`);
  }

  const part = `${dest}.part`;
  const metaPath = `${dest}.part.json`;
  const dropPart = () => { rmSync(part, { force: true }); rmSync(metaPath, { force: true }); };
  let resumed = false;
  let total: number | undefined;

  for (let attempt = 1; ; attempt++) {
    let offset = fileSize(part);
    let meta = offset > 0 ? readMeta(metaPath) : undefined;
    if (offset === 0) rmSync(metaPath, { force: true });
    // A .part we know is whole (crash right before verify): no request needed.
    if (meta?.total !== undefined && meta.url === url && offset === meta.total) { total = meta.total; break; }
    const headers: Record<string, string> = {};
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      // If-Range: should the file have changed on the server, it sends the whole new file instead of a mismatched tail.
      const validator = meta?.url === url ? (meta.etag && !meta.etag.startsWith('W/') ? meta.etag : meta.lastModified) : undefined;
      if (validator) headers['if-range'] = validator;
    }
    try {
      const { res } = await openGet(url, headers, idle);
      const status = res.statusCode ?? 0;
      const range = parseContentRange(res.headers['content-range']);
      if (status === 416) {
        res.resume();
        // Range starts at/after the end: the .part is whole if its size is the total.
        if (offset > 0 && range?.total === offset) { total = offset; break; }
        log(`${name}: server rejected the resume range; starting over`);
        dropPart();
        if (attempt >= attempts) throw new HttpStatusError(416, 'Range Not Satisfiable');
        continue;
      }
      let flags = 'w';
      if (status === 206 && offset > 0) {
        if (range?.start !== offset) {
          res.resume();
          log(`${name}: server sent an unexpected range (${res.headers['content-range'] ?? 'none'}); starting over`);
          dropPart();
          continue;
        }
        flags = 'a';
        total = range.total;
        if (!resumed) log(`${name}: resuming at ${offset} bytes`);
        resumed = true;
      } else {
        // 200 (or 206 for a range we did not ask for): the whole file follows.
        if (offset > 0) log(`${name}: server ignored the resume range; starting over from 0`);
        offset = 0;
        resumed = false;
        const len = Number(res.headers['content-length']);
        total = status === 200 && Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : range?.total;
      }
      if (expected.size !== undefined && total !== undefined && total !== expected.size) {
        res.resume();
        dropPart();
        throw new DownloadError(`server offers ${total} bytes, expected ${expected.size}: not the published file`, { file: dest }, url);
      }
      meta = { url, etag: res.headers.etag, lastModified: res.headers['last-modified'], total };
      writeFileAtomic(metaPath, JSON.stringify(meta));

      // Progress counts this connection's bytes only, so rate and ETA stay
      // true after a resume; the overall position goes in the extra column.
      const start = offset;
      const overall = (pending = 0) => (start > 0 ? `${fmtCount(start + progress.value + pending)}/${total !== undefined ? fmtCount(total) : '?'} B overall (resumed)` : undefined);
      const progress = new Progress({ label: name, total: total !== undefined ? total - start : undefined, unit: 'B', quiet: opts.quiet, stream: opts.progressStream });
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          progress.tick(chunk.length, overall(chunk.length));
          cb(null, chunk);
        },
      });
      try {
        await pipeline(res, counter, createWriteStream(part, { flags }));
      } finally {
        progress.finish(overall());
      }
      const size = fileSize(part);
      if (total !== undefined && size < total) throw Object.assign(new Error(`connection closed at ${size} of ${total} bytes`), { code: 'SHORT_BODY' });
      if (total !== undefined && size > total) {
        log(`${name}: .part is larger than the file (${size} > ${total}); starting over`);
        dropPart();
        continue;
      }
      break;
    } catch (err) {
      if (err instanceof P5recError) throw err;
      const code = errCode(err);
      if (code && OFFLINE_CODES.has(code)) throw offlineError(url, code);
      const status = err instanceof HttpStatusError ? err.status : undefined;
      const retryable = status !== undefined ? status >= 500 || status === 429 || status === 408 : RETRY_CODES.has(code ?? '') || /aborted|premature|socket hang up/i.test(String((err as Error)?.message));
      const why = status !== undefined ? (err as Error).message : `${code ?? 'error'}: ${(err as Error)?.message ?? String(err)}`;
      if (!retryable || attempt >= attempts) {
        // A .part is kept on purpose: the next run resumes from it.
        const tail = retryable ? ` after ${attempt} attempts (rerun to resume)` : '';
        throw new DownloadError(`download failed: ${why}${tail}`, { file: url, ...(status === 404 ? { status: 404 } : {}) }, url, code ?? (status !== undefined ? String(status) : undefined));
      }
      const delay = Math.min(30_000, baseDelay * 2 ** (attempt - 1));
      log(`${name}: ${why}; retrying in ${(delay / 1000).toFixed(1)}s (attempt ${attempt + 1}/${attempts})`);
      await sleep(delay);
    }
  }

  // 2. Verify before the final name exists; a bad file never gets it.
  const got = await hashFile(part, opts);
  const problem = checkDigests(got, { ...expected, size: expected.size ?? total });
  if (problem) {
    dropPart();
    throw new DownloadError(`checksum mismatch: ${problem}; the download is corrupt or the server's file changed (removed the partial file; rerun to retry)`, { file: dest }, url, 'CHECKSUM');
  }
  writeSidecar(dest, got.sha256);
  renameSync(part, dest);
  rmSync(metaPath, { force: true });
  return { name, path: dest, url, bytes: got.bytes, sha256: got.sha256, md5: got.md5, skipped: false, resumed };
}

/** `sha256sum`-compatible sidecar, so `sha256sum -c` works on it. */
function writeSidecar(dest: string, sha256: string): void {
  writeFileAtomic(`${dest}.sha256`, `${sha256}  ${basename(dest)}\n`);
}

// ---------------------------------------------------------------------------
// Zip extraction
// ---------------------------------------------------------------------------

/**
 * Unpack a zip into `dir` (entries keep their folders, e.g. `ml-100k/u.data`).
 * Skips the work when every entry is already there with its size. Rejects
 * entries that would escape `dir`.
 */
export function extractZip(zipPath: string, dir: string): { files: string[]; skipped: boolean } {
  const data = new Uint8Array(readFileSync(zipPath));
  const root = resolve(dir);
  const entries: { name: string; size: number }[] = [];
  // First pass reads only the directory (filter returns false): cheap.
  try {
    unzipSync(data, { filter: (f) => { if (!f.name.endsWith('/')) entries.push({ name: f.name, size: f.originalSize }); return false; } });
  } catch (err) {
    throw new InputError(`not a readable zip archive: ${(err as Error).message}`, { file: zipPath });
  }
  for (const e of entries) {
    const rel = normalize(e.name);
    if (isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) throw new InputError(`zip entry '${e.name}' points outside the target folder`, { file: zipPath });
  }
  const files = entries.map((e) => e.name);
  if (entries.every((e) => existsSync(join(root, e.name)) && fileSize(join(root, e.name)) === e.size)) return { files, skipped: true };
  const unzipped = unzipSync(data);
  for (const e of entries) writeFileAtomic(join(root, e.name), unzipped[e.name]);
  return { files, skipped: false };
}

// ---------------------------------------------------------------------------
// Whole datasets
// ---------------------------------------------------------------------------

export interface DownloadDatasetOptions extends Omit<DownloadFileOptions, 'expected'> {
  /** Target folder (created if missing). */
  dir: string;
  category?: string;
  /** Mirror / test server replacing the publisher's folder: `<baseUrl>/<file>`. */
  baseUrl?: string;
  /** Per file name: replaces the registry's checksum/size for that file. */
  expected?: Record<string, ExpectedFile>;
}

export interface DownloadResult {
  dataset: string;
  category?: string;
  dir: string;
  files: DownloadedFile[];
  /** The command to turn the downloaded files into a p5rec dataset. */
  importCommand: string;
}

/** Download (and unpack) every file of a dataset into `opts.dir`. */
export async function downloadDataset(dataset: string, opts: DownloadDatasetOptions): Promise<DownloadResult> {
  const plan = planDownload(dataset, { category: opts.category, baseUrl: opts.baseUrl });
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const files: DownloadedFile[] = [];
  for (const f of plan.files) {
    const expected = opts.expected?.[f.name] ?? { md5: f.md5, sha256: f.sha256, size: f.size };
    const got = await downloadFile(f.url, join(dir, f.name), { ...opts, expected });
    if (f.unzip) got.extracted = extractZip(got.path, dir).files;
    files.push(got);
  }
  return { dataset: plan.spec.id, category: plan.category, dir, files, importCommand: plan.spec.importCommand(dir, plan.category) };
}

/** Quote a path for a POSIX shell only when it needs it. */
function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
