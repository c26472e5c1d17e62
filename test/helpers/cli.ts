import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED = resolve(ROOT, '../shared/datasets');
export const BIN = join(ROOT, 'bin/p5rec.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | null;
}

/** Run the built CLI as a user would (npm test builds dist first). */
export function cli(args: string[], opts: { cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: opts.cwd ?? ROOT, maxBuffer: 64 << 20 });
  let json: Record<string, unknown> | null = null;
  if (args.includes('--json')) {
    const lines = r.stdout.trim().split('\n');
    try {
      json = JSON.parse(lines[lines.length - 1]);
    } catch {
      json = null;
    }
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

export function tempDir(prefix = 'p5rec-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
