import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { InputError } from '../errors.js';

/** What may be replaced with `force`: the kind of output, and how to recognise one. */
export interface OutputKind {
  /** e.g. 'p5rec dataset folder' */
  what: string;
  /** The file that marks it, for the error message, e.g. 'manifest.json'. */
  marker: string;
  /** True when `dir` is such an output (checked on the marker's content, not just its name). */
  owns: (dir: string) => boolean;
}

/**
 * Build an output folder in a sibling temp folder and rename it into place
 * only when `build` succeeds, so a failure never leaves a half-written output.
 * With `force`, only an empty folder or one that `kind` recognises as
 * p5rec's own output is replaced, and by renames (old aside, new in, then
 * old removed), so no moment exists where neither is on disk. Temp folders
 * are removed on failure, on SIGINT/SIGTERM, and (if a killed run left one)
 * by the next run into the same parent.
 */
export async function withAtomicDir<T>(out: string, build: (tmpDir: string) => Promise<T>, opts: { force?: boolean; kind?: OutputKind } = {}): Promise<T> {
  checkReplaceable(out, opts);
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  removeStaleTemps(out);
  const tmp = join(parent, `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  track(tmp);
  try {
    const result = await build(tmp);
    checkReplaceable(out, opts); // again: the target may have appeared while building
    if (existsSync(out)) {
      const old = join(parent, `.${basename(out)}.old-${process.pid}-${Date.now()}`);
      track(old);
      renameSync(out, old);
      try {
        renameSync(tmp, out);
      } catch (err) {
        renameSync(old, out);
        throw err;
      }
      rmSync(old, { recursive: true, force: true });
      untrack(old);
    } else renameSync(tmp, out);
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    untrack(tmp);
  }
}

/** Refuse an existing target unless `force` is set and it is empty or p5rec's own output. Messages name the option `force`, as every caller (data build, report, the CLI's --force) calls it. */
export function checkReplaceable(out: string, opts: { force?: boolean; kind?: OutputKind }): void {
  if (!existsSync(out)) return;
  if (!opts.force) throw new InputError("output folder already exists (set 'force' to replace it)", { file: out });
  if (!statSync(out).isDirectory()) throw new InputError("is a file, not an output folder; 'force' only replaces p5rec output (remove it yourself)", { file: out });
  if (readdirSync(out).length === 0) return;
  if (!opts.kind?.owns(out)) {
    const what = opts.kind ? `not a ${opts.kind.what} (no valid ${opts.kind.marker})` : 'not a folder p5rec wrote';
    throw new InputError(`${what}; 'force' only replaces p5rec output (remove it yourself or pick another folder)`, { file: out });
  }
}

/** `.NAME.tmp-PID-TIME` / `.NAME.old-PID-TIME` siblings whose process is gone: leftovers of a killed run. */
function removeStaleTemps(out: string): void {
  const parent = dirname(out);
  const prefix = `.${basename(out)}.`;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(?:tmp|old)-(\d+)-\d+$/.exec(name.slice(prefix.length));
    if (m && !alive(Number(m[1]))) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Temp folders of builds in flight, removed if the process is interrupted.
const active = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const installed: NodeJS.Signals[] = [];

function cleanup(): void {
  for (const dir of active) rmSync(dir, { recursive: true, force: true });
  active.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  cleanup();
  uninstall();
  // Re-raise with the default action, so the exit status still says "killed by SIGINT/SIGTERM".
  process.kill(process.pid, sig);
}

function track(dir: string): void {
  if (active.size === 0) {
    // Only where nobody else handles the signal: a command with its own graceful
    // stop (training) unwinds through withAtomicDir's finally instead.
    for (const sig of SIGNALS) {
      if (process.listenerCount(sig) > 0) continue;
      process.on(sig, onSignal);
      installed.push(sig);
    }
    process.on('exit', cleanup);
  }
  active.add(dir);
}

function untrack(dir: string): void {
  active.delete(dir);
  if (active.size === 0) uninstall();
}

function uninstall(): void {
  for (const sig of installed.splice(0)) process.off(sig, onSignal);
  process.off('exit', cleanup);
}

/** Write a file via temp + rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
