/**
 * Where and with what an evaluation ran, recorded in every eval result so a
 * report can say which code, machine and time produced each number.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../version.js';

export interface RunEnv {
  p5rec: string;
  /** The git commit of the p5rec checkout, when it runs from one (absent from an installed package). */
  commit?: string;
  host: string;
  platform: string;
  node: string;
  cpus: number;
  time: string;
}

/** Read HEAD without spawning git: a ref file, a packed ref, or a detached hash. */
function gitCommit(): string | undefined {
  try {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
    const git = join(root, '.git');
    if (!existsSync(join(git, 'HEAD'))) return undefined;
    const head = readFileSync(join(git, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    const ref = head.slice(5);
    if (existsSync(join(git, ref))) return readFileSync(join(git, ref), 'utf8').trim().slice(0, 12);
    const packed = existsSync(join(git, 'packed-refs')) ? readFileSync(join(git, 'packed-refs'), 'utf8') : '';
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
    return line ? line.slice(0, 12) : undefined;
  } catch {
    return undefined; // a missing or odd .git never stops an evaluation
  }
}

export function runEnv(): RunEnv {
  const commit = gitCommit();
  return { p5rec: VERSION, ...(commit ? { commit } : {}), host: hostname(), platform: `${process.platform}-${process.arch}`, node: process.version, cpus: cpus().length, time: new Date().toISOString() };
}
