import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/cli.js';

/**
 * The package a user installs: `npm pack` the repository (the dist/ that
 * `npm test` has just built), install the tarball into an empty folder as a
 * user would, and run the installed `p5rec` there: its version, then the main
 * pipeline on the data the package ships (import the bundled Musical
 * Instruments reviews, fit popularity, evaluate it). The install builds the
 * native kernels as a user's would (scripts/build-native.mjs).
 *
 * The install is offline: the empty project carries the repository's
 * lockfile, whose packages `npm ci` has put in npm's cache; where that cache
 * lacks one it falls back to the registry.
 */
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const haveDist = existsSync(join(ROOT, 'dist/index.js'));

function run(cmd: string, args: string[], cwd: string, timeoutMs = 600_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMs, env: { ...process.env, NO_UPDATE_NOTIFIER: '1' } });
}
const show = (r: SpawnSyncReturns<string>): string => `exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${r.stdout}\n${r.stderr}`.slice(-4000);

describe.skipIf(!haveDist)('npm pack → install the tarball into an empty folder → run p5rec there', () => {
  let tmp: string;
  let tarball: string;
  let files: string[];
  let app: string;
  let installed: SpawnSyncReturns<string>;

  beforeAll(() => {
    tmp = tempDir('p5rec-pack-');
    // --ignore-scripts: `prepare` would rebuild dist, which `npm test` has just done.
    const p = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT);
    expect(p.status, show(p)).toBe(0);
    const info = (JSON.parse(p.stdout) as { filename: string; size: number; entryCount: number; files: { path: string }[] }[])[0];
    tarball = join(tmp, info.filename);
    files = info.files.map((f) => f.path);

    // An empty project, pinned to the repository's lockfile so that the install needs no registry:
    // every version it resolves is one that `npm ci` has put in npm's cache.
    app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'p5rec-install-check', version: '1.0.0', private: true }));
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { name: string; packages: Record<string, unknown> };
    lock.name = 'p5rec-install-check';
    lock.packages[''] = { name: 'p5rec-install-check', version: '1.0.0' };
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lock));
    // --foreground-scripts: show the native build's one line, as a user sees it.
    const args = ['install', '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel', 'error', tarball];
    installed = run('npm', [...args, '--offline'], app);
    if (installed.status !== 0 && /ENOTCACHED/.test(installed.stderr)) installed = run('npm', [...args, '--prefer-offline'], app);
  }, 900_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball carries what p5rec needs at install and run time, and nothing else', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/p5rec.js', 'dist/index.js', 'dist/cli/main.js', 'binding.gyp', 'native/gemm.cc',
      'scripts/build-native.mjs', 'data/musical-instruments/reviews_Musical_Instruments_5.json.gz', 'data/prompts/p5-amazon.json', 'web/index.html']) {
      expect(files, f).toContain(f);
    }
    const unwanted = files.filter((f) => /(^|\/)(__pycache__|node_modules|test|bench|build|runs|python|examples|p5rec-quickstart)\/|\.pyc$|\.test\.|\.tsbuildinfo$|^src\//.test(f));
    expect(unwanted).toEqual([]);
    // Of scripts/, only the install script: the others are tools for a clone (fixture generators, README tables, checks).
    expect(files.filter((f) => f.startsWith('scripts/'))).toEqual(['scripts/build-native.mjs']);
    expect(files.filter((f) => f.startsWith('dist/')).every((f) => /\.(js|d\.ts|js\.map|d\.ts\.map)$/.test(f))).toBe(true);
  });

  it('installs offline into an empty folder, building (or cleanly skipping) the native kernels', () => {
    expect(installed.status, show(installed)).toBe(0);
    const here = join(app, 'node_modules', pkg.name);
    expect(existsSync(join(here, 'dist/index.js'))).toBe(true);
    // The install script's one line: built, or the one warning and the wasm fallback.
    expect(`${installed.stdout}${installed.stderr}`).toMatch(/p5rec: (built native kernels|native kernels not built .*using wasm kernels)/);
  });

  it('`npx p5rec --version` and import → fit → eval on the shipped reviews run from the installed package', () => {
    expect(installed.status, show(installed)).toBe(0);
    const v = run('npx', ['--no-install', 'p5rec', '--version'], app);
    expect(v.status, show(v)).toBe(0);
    expect(v.stdout.trim()).toBe(pkg.version);

    const reviews = join(app, 'node_modules', pkg.name, 'data/musical-instruments/reviews_Musical_Instruments_5.json.gz');
    const imp = run('npx', ['--no-install', 'p5rec', 'data', 'import', 'amazon', '--reviews', reviews, '--out', 'mi', '--quiet', '--json'], app);
    expect(imp.status, show(imp)).toBe(0);
    expect(JSON.parse(imp.stdout.trim().split('\n').at(-1)!)).toMatchObject({ ok: true, counts: { users: 1429, items: 900, interactions: 10261 } });
    const fit = run('npx', ['--no-install', 'p5rec', 'fit', 'mi', '--model', 'pop', '--out', 'pop', '--quiet', '--json'], app);
    expect(fit.status, show(fit)).toBe(0);
    const ev = run('npx', ['--no-install', 'p5rec', 'eval', 'mi', '--model', 'pop', '--task', 'sequential', '--quiet', '--json'], app);
    expect(ev.status, show(ev)).toBe(0);
    const metrics = JSON.parse(ev.stdout.trim().split('\n').at(-1)!).metrics as Record<string, number>;
    expect(metrics['HR@10']).toBeGreaterThan(0.05);
  });

  it('examples/library.ts, importing only p5rec, type-checks against the installed package and runs', () => {
    expect(installed.status, show(installed)).toBe(0);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'p5rec-install-check', version: '1.0.0', private: true, type: 'module' }));
    // Copied into the app, so that 'p5rec' resolves (types and code) to the installed tarball, not the repository.
    copyFileSync(join(ROOT, 'examples/library.ts'), join(app, 'library.ts'));
    const tsc = join(ROOT, 'node_modules/.bin/tsc');
    const c = run(tsc, ['library.ts', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--skipLibCheck',
      '--types', 'node', '--typeRoots', join(ROOT, 'node_modules/@types'), '--outDir', 'out'], app);
    expect(c.status, show(c)).toBe(0);
    const r = run(process.execPath, [join(app, 'out/library.js')], app);
    expect(r.status, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^dataset: 1429 users, 900 items$/m);
    expect(r.stdout).toMatch(/^bpr-mf: HR@10 [\d.]+ ± [\d.]+ over 30 users$/m);
    expect(r.stdout).toMatch(/^p5: HR@10 [\d.]+ ± [\d.]+ over 30 users$/m);
    expect(r.stdout).toMatch(/^served bpr-mf, p5 at http:\/\/127\.0\.0\.1:\d+; top-5 for user \S+: (\S+ ){4}\S+$/m);
    expect(r.stdout).toMatch(/^progress events received: [1-9]\d*$/m);
    expect(r.stderr).toBe(''); // progress went to the listener, nothing to stderr
  }, 300_000);
});
