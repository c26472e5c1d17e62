#!/usr/bin/env node
/**
 * The npm "install" script: builds build/Release/p5rec_native.node (native/,
 * binding.gyp) with node-gyp and checks that it loads.
 *
 * It never fails the install. When the build fails (no compiler, no Python,
 * no Node headers, an unsupported platform) it prints ONE warning line and
 * exits 0; p5rec then runs its wasm kernels (src/engine/native.ts says so
 * once at run time too). node-gyp's full output goes to
 * build/native-build.log. P5REC_NATIVE=0 skips the build.
 *
 *   node scripts/build-native.mjs          # what `npm install` / `npm ci` run
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = path.join(root, 'build', 'Release', 'p5rec_native.node');
const logFile = path.join(root, 'build', 'native-build.log');
const rel = (p) => path.relative(process.cwd(), p) || '.';

function done(line) {
  console.log(line);
  process.exit(0);
}

function fail(why) {
  console.warn(`p5rec: native kernels not built (${why}); using wasm kernels`);
  process.exit(0);
}

const flag = (process.env.P5REC_NATIVE ?? '').trim().toLowerCase();
if (['0', 'false', 'off', 'no'].includes(flag)) done('p5rec: native kernels skipped (P5REC_NATIVE=0)');

/** npm's own node-gyp: npm exports its path to lifecycle scripts; else next to this node, else a local one. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(path.join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found');

const args = [gyp, 'rebuild'];
// Offline builds: without a configured nodedir node-gyp downloads the headers;
// use this Node's own headers when they are installed.
if (!process.env.npm_config_nodedir) {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
}

const res = spawnSync(process.execPath, args, {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
  timeout: 10 * 60 * 1000,
});
const output = `$ ${[process.execPath, ...args].join(' ')}\n${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? `\n${res.error.message}\n` : ''}`;
try {
  mkdirSync(path.dirname(logFile), { recursive: true });
  writeFileSync(logFile, output);
} catch {
  // the log is a convenience
}

if (res.error || res.status !== 0 || !existsSync(addon)) {
  const firstError =
    output
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /(^|\s)(fatal )?error[:\s]/i.test(l) && !l.startsWith('gyp ERR! stack') && !l.startsWith('gyp ERR! not ok')) ??
    (res.error ? res.error.message : `node-gyp exited with ${res.status ?? res.signal}`);
  const short = firstError.length > 160 ? `${firstError.slice(0, 157)}...` : firstError;
  fail(`${short}; log: ${rel(logFile)}`);
}

try {
  const info = createRequire(import.meta.url)(addon).info();
  done(`p5rec: built native kernels (${rel(addon)}: ${info.isa}, ${info.threads} threads)`);
} catch (err) {
  const msg = String(err instanceof Error ? err.message : err).split('\n')[0];
  fail(`built ${rel(addon)} but it does not load: ${msg}`);
}
