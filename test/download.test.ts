import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { zipSync } from 'fflate';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerDownloadCommand } from '../src/cli/download.js';
import { DownloadError, downloadDataset, downloadFile, planDownload } from '../src/data/download.js';
import { MI_REVIEWS, MOVIELENS } from './helpers/cli.js';

const AMAZON_PATH = '/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz';
const AMAZON = readFileSync(MI_REVIEWS);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

// ---------------------------------------------------------------------------
// A small file server with Range support and switchable misbehaviour.
// ---------------------------------------------------------------------------

interface Behaviour {
  /** Paths whose first GET sends half the body, then drops the socket. */
  dropFirst: Set<string>;
  /** Answer every request with the whole file (200), ignoring Range. */
  ignoreRange: boolean;
  /** Paths whose first GET sends half the body, then goes silent. */
  stallFirst: Set<string>;
  /** Paths whose first GET gets a 503. */
  fail503First: Set<string>;
}

const routes = new Map<string, Buffer>();
const requests: { path: string; range?: string }[] = [];
const behaviour: Behaviour = { dropFirst: new Set(), ignoreRange: false, stallFirst: new Set(), fail503First: new Set() };
let server: http.Server;
let base = '';

function body(urlPath: string): Buffer | undefined {
  const p = decodeURIComponent(urlPath);
  const mem = routes.get(p);
  if (mem) return mem;
  return p === AMAZON_PATH ? AMAZON : undefined;
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const urlPath = new URL(req.url ?? '/', 'http://x').pathname;
  requests.push({ path: urlPath, range: req.headers.range });
  if (urlPath.startsWith('/redirect/')) {
    res.writeHead(302, { location: urlPath.slice('/redirect'.length) }).end();
    return;
  }
  const data = body(urlPath);
  if (!data) {
    res.writeHead(404).end('not found');
    return;
  }
  if (behaviour.dropFirst.delete(urlPath)) {
    // Promise the whole file, deliver half, hang up.
    res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
    res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
    return;
  }
  if (behaviour.fail503First.delete(urlPath)) {
    res.writeHead(503).end('busy');
    return;
  }
  if (behaviour.stallFirst.delete(urlPath)) {
    res.writeHead(200, { 'content-length': data.length });
    res.write(data.subarray(0, data.length >> 1));
    return; // never ends: the client's idle timeout must fire
  }
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (m && !behaviour.ignoreRange) {
    const start = Number(m[1]);
    const end = m[2] ? Number(m[2]) : data.length - 1;
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${data.length}` });
    res.end(data.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
  res.end(data);
}

let tmp: string;
const logs: string[] = [];
const quietOpts = { quiet: true, retryDelayMs: 10, log: (m: string) => logs.push(m) };

beforeAll(async () => {
  server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tmp = mkdtempSync(path.join(tmpdir(), 'p5rec-download-'));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

afterEach(() => {
  requests.length = 0;
  logs.length = 0;
  behaviour.dropFirst.clear();
  behaviour.ignoreRange = false;
  behaviour.stallFirst.clear();
  behaviour.fail503First.clear();
});

let n = 0;
const freshDir = () => path.join(tmp, `case-${++n}`);

describe('downloadFile', () => {
  it('downloads a file byte-identical, records its sha256 and leaves no .part', async () => {
    const dest = path.join(freshDir(), 'reviews_Musical_Instruments_5.json.gz');
    const r = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(readFileSync(dest).equals(AMAZON)).toBe(true);
    expect(r).toMatchObject({ bytes: AMAZON.length, sha256: sha256(AMAZON), md5: md5(AMAZON), skipped: false, resumed: false });
    expect(readFileSync(`${dest}.sha256`, 'utf8')).toBe(`${sha256(AMAZON)}  reviews_Musical_Instruments_5.json.gz\n`);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(existsSync(`${dest}.part.json`)).toBe(false);
  });

  it('resumes with Range after the connection drops half-way', async () => {
    behaviour.dropFirst.add(AMAZON_PATH);
    const dest = path.join(freshDir(), 'r.json.gz');
    const r = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(readFileSync(dest).equals(AMAZON)).toBe(true);
    expect(r.resumed).toBe(true);
    expect(requests).toHaveLength(2);
    expect(requests[0].range).toBeUndefined();
    expect(requests[1].range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(logs.join('\n')).toMatch(/retrying/);
    expect(logs.join('\n')).toMatch(/resuming at/);
  });

  it('retries a 503 and a stalled connection, then follows a redirect', async () => {
    behaviour.fail503First.add(AMAZON_PATH);
    const d1 = path.join(freshDir(), 'a.json.gz');
    await downloadFile(base + AMAZON_PATH, d1, quietOpts);
    expect(readFileSync(d1).equals(AMAZON)).toBe(true);
    expect(logs.join('\n')).toMatch(/503.*retrying/);

    behaviour.stallFirst.add(AMAZON_PATH);
    const d2 = path.join(freshDir(), 'b.json.gz');
    const r = await downloadFile(base + AMAZON_PATH, d2, { ...quietOpts, idleTimeoutMs: 300 });
    expect(r.resumed).toBe(true);
    expect(readFileSync(d2).equals(AMAZON)).toBe(true);

    const d3 = path.join(freshDir(), 'c.json.gz');
    await downloadFile(`${base}/redirect${AMAZON_PATH}`, d3, quietOpts);
    expect(readFileSync(d3).equals(AMAZON)).toBe(true);
  });

  it('starts over when the server ignores Range', async () => {
    behaviour.dropFirst.add(AMAZON_PATH);
    behaviour.ignoreRange = true;
    const dest = path.join(freshDir(), 'r.json.gz');
    const r = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(readFileSync(dest).equals(AMAZON)).toBe(true);
    expect(r.resumed).toBe(false);
    expect(logs.join('\n')).toMatch(/ignored the resume range/);
  });

  it('continues a .part left by an earlier run', async () => {
    const dest = path.join(freshDir(), 'r.json.gz');
    mkdirSync(path.dirname(dest), { recursive: true });
    writeFileSync(`${dest}.part`, AMAZON.subarray(0, 1_000_000));
    const r = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(r.resumed).toBe(true);
    expect(requests.at(-1)?.range).toBe('bytes=1000000-');
    expect(readFileSync(dest).equals(AMAZON)).toBe(true);
  });

  it('treats a whole .part as done when the server answers 416', async () => {
    const dest = path.join(freshDir(), 'r.json.gz');
    mkdirSync(path.dirname(dest), { recursive: true });
    writeFileSync(`${dest}.part`, AMAZON);
    const r = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(r.sha256).toBe(sha256(AMAZON));
    expect(readFileSync(dest).equals(AMAZON)).toBe(true);
  });

  it('fails clearly on a wrong checksum, leaving neither the file nor a .part', async () => {
    const dir = freshDir();
    const dest = path.join(dir, 'r.json.gz');
    const err = await downloadFile(base + AMAZON_PATH, dest, { ...quietOpts, expected: { sha256: '0'.repeat(64) } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).oneLine()).toMatch(/r\.json\.gz: checksum mismatch: sha256 is [0-9a-f]{64}, expected 0{64}/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fails clearly on a wrong expected size before downloading', async () => {
    const dest = path.join(freshDir(), 'r.json.gz');
    await expect(downloadFile(base + AMAZON_PATH, dest, { ...quietOpts, expected: { size: 5 } })).rejects.toThrow(/offers \d+ bytes, expected 5/);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('reports a 404 without retrying', async () => {
    const dest = path.join(freshDir(), 'x');
    await expect(downloadFile(`${base}/missing.gz`, dest, quietOpts)).rejects.toThrow(/server answered 404/);
    expect(requests).toHaveLength(1);
  });

  it('says the machine looks offline on a refused connection or an unknown host', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const dest = path.join(freshDir(), 'x.gz');
    const e1 = (await downloadFile(`http://127.0.0.1:${port}/x.gz`, dest, quietOpts).catch((e: unknown) => e)) as DownloadError;
    expect(e1).toBeInstanceOf(DownloadError);
    expect(e1.message).toBe(`cannot reach 127.0.0.1:${port} (ECONNREFUSED): this machine looks offline; download the files elsewhere and pass them to 'p5rec data import'`);
    expect(e1.facts.file).toBe(`http://127.0.0.1:${port}/x.gz`);
    // `.invalid` never resolves (RFC 2606).
    const e2 = (await downloadFile('http://files.p5rec-test.invalid/x.gz', dest, quietOpts).catch((e: unknown) => e)) as DownloadError;
    expect(e2.message).toMatch(/^cannot reach files\.p5rec-test\.invalid \((ENOTFOUND|EAI_AGAIN)\): this machine looks offline/);
    expect(logs).toEqual([]); // no retries for an unreachable host
  });

  it('skips a complete file without any request, and replaces one that fails its sidecar', async () => {
    const dest = path.join(freshDir(), 'r.json.gz');
    await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    requests.length = 0;
    const again = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(again).toMatchObject({ skipped: true, bytes: AMAZON.length, sha256: sha256(AMAZON) });
    expect(requests).toHaveLength(0);

    writeFileSync(dest, 'corrupted');
    const fixed = await downloadFile(base + AMAZON_PATH, dest, quietOpts);
    expect(fixed.skipped).toBe(false);
    expect(readFileSync(dest).equals(AMAZON)).toBe(true);
  });
});

describe('downloadDataset', () => {
  const mlFiles = readdirSync(MOVIELENS);
  const zip = Buffer.from(zipSync(Object.fromEntries(mlFiles.map((f) => [`ml-100k/${f}`, new Uint8Array(readFileSync(path.join(MOVIELENS, f)))]))));
  beforeAll(() => {
    routes.set('/ml/ml-100k.zip', zip);
    routes.set('/amazon-musical-instruments/meta_Musical_Instruments.json.gz', gzipSync('{"asin": "B0001", "title": "a guitar"}\n'));
  });

  it('plans the publisher URLs and validates dataset/category', () => {
    expect(planDownload('amazon-2014', { category: 'beauty' }).files.map((f) => f.url)).toEqual([
      'http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Beauty_5.json.gz',
      'http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_Beauty.json.gz',
    ]);
    expect(planDownload('movielens-1m', { baseUrl: 'http://mirror/x/' }).files[0]).toMatchObject({ url: 'http://mirror/x/ml-1m.zip', md5: 'c4d9eecfca2ab87c1945afe126590906' });
    expect(() => planDownload('amazon-2014')).toThrow(/needs a category/);
    expect(() => planDownload('amazon-2014', { category: 'Shoes' })).toThrow(/unknown amazon-2014 category 'Shoes'/);
    expect(() => planDownload('movielens-100k', { category: 'Beauty' })).toThrow(/only applies/);
    expect(() => planDownload('netflix')).toThrow(/unknown dataset 'netflix'/);
  });

  it('downloads an Amazon category (reviews + meta) from a mirror', async () => {
    const dir = freshDir();
    const r = await downloadDataset('amazon-2014', { ...quietOpts, dir, category: 'Musical_Instruments', baseUrl: `${base}/amazon-musical-instruments` });
    expect(r.files.map((f) => f.name)).toEqual(['reviews_Musical_Instruments_5.json.gz', 'meta_Musical_Instruments.json.gz']);
    expect(readFileSync(path.join(dir, 'reviews_Musical_Instruments_5.json.gz')).equals(AMAZON)).toBe(true);
    expect(existsSync(path.join(dir, 'meta_Musical_Instruments.json.gz.sha256'))).toBe(true);
    expect(r.importCommand).toContain('p5rec data import amazon --reviews');
  });

  it('downloads and unpacks a MovieLens zip, verifying its md5', async () => {
    const dir = freshDir();
    const r = await downloadDataset('movielens-100k', { ...quietOpts, dir, baseUrl: `${base}/ml`, expected: { 'ml-100k.zip': { md5: md5(zip) } } });
    for (const f of mlFiles) expect(readFileSync(path.join(dir, 'ml-100k', f)).equals(readFileSync(path.join(MOVIELENS, f)))).toBe(true);
    expect(r.files[0]).toMatchObject({ md5: md5(zip), skipped: false });
    expect(r.files[0].extracted).toContain('ml-100k/u.data');
    expect(r.importCommand).toBe(`p5rec data import movielens --dir ${path.join(dir, 'ml-100k')} --out ${path.join(dir, 'movielens-100k')}`);

    // Second run: nothing fetched, nothing rewritten.
    requests.length = 0;
    const again = await downloadDataset('movielens-100k', { ...quietOpts, dir, baseUrl: `${base}/ml`, expected: { 'ml-100k.zip': { md5: md5(zip) } } });
    expect(again.files[0].skipped).toBe(true);
    expect(requests).toHaveLength(0);
  });

  it("uses the registry's published md5 when none is given", async () => {
    const dir = freshDir();
    // Our test zip is not GroupLens's file, so the published md5 must reject it.
    await expect(downloadDataset('movielens-100k', { ...quietOpts, dir, baseUrl: `${base}/ml` })).rejects.toThrow(/md5 is [0-9a-f]{32}, expected 0e33842e24a9c977be4e0107933c0723/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('registerDownloadCommand', () => {
  async function run(args: string[]): Promise<{ stdout: string; exitCode: number | undefined }> {
    const program = new Command('p5rec').exitOverride();
    const data = program.command('data').exitOverride();
    registerDownloadCommand(data);
    let stdout = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const before = process.exitCode;
    process.exitCode = undefined;
    try {
      await program.parseAsync(['node', 'p5rec', 'data', 'download', ...args]);
      return { stdout, exitCode: process.exitCode as number | undefined };
    } finally {
      out.mockRestore();
      err.mockRestore();
      process.exitCode = before;
    }
  }

  it('downloads via --mirror and prints one JSON object', async () => {
    const dir = freshDir();
    const r = await run(['amazon-2014', '--category', 'musical-instruments', '--dir', dir, '--mirror', `${base}/amazon-musical-instruments`, '--json', '--quiet']);
    expect(r.exitCode).toBeUndefined();
    const obj = JSON.parse(r.stdout);
    expect(obj).toMatchObject({ ok: true, dataset: 'amazon-2014', category: 'Musical_Instruments' });
    expect(obj.files[0]).toMatchObject({ bytes: AMAZON.length, sha256: sha256(AMAZON), skipped: false, resumed: false });
    expect(obj.importCommand).toMatch(/^p5rec data import /);
  });

  it('reports a failure as {ok:false} with exit code 2', async () => {
    const r = await run(['movielens-100k', '--dir', freshDir(), '--mirror', `${base}/ml`, '--json', '--quiet']);
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: expect.stringMatching(/checksum mismatch/) });
  });

  it('requires --dir', async () => {
    await expect(run(['movielens-100k'])).rejects.toThrow(/--dir/);
  });
});
