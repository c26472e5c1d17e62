import { describeError, P5recError } from '../errors.js';

/** Flags every command shares. */
export interface CommonFlags {
  json?: boolean;
  quiet?: boolean;
}

/** Logs go to stderr so stdout stays one JSON object under --json. */
export function logger(flags: CommonFlags): (msg: string) => void {
  return flags.quiet ? () => {} : (msg: string) => process.stderr.write(`${msg}\n`);
}

/**
 * Run a command body: under --json print its result as one object on stdout;
 * otherwise let `human` render it. Any failure prints one line to stderr
 * (and `{ok:false,error}` on stdout under --json) and sets a non-zero exit.
 */
export async function runCommand<T extends object>(
  flags: CommonFlags,
  body: () => Promise<T>,
  human?: (result: T) => string,
): Promise<void> {
  try {
    const result = await body();
    if (flags.json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
    else if (human) process.stdout.write(`${human(result)}\n`);
    else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } catch (err) {
    const line = describeError(err);
    process.stderr.write(`p5rec: error: ${line}\n`);
    if (process.env.P5REC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    if (flags.json) {
      const facts = err instanceof P5recError ? err.facts : {};
      process.stdout.write(`${JSON.stringify({ ok: false, error: line, ...facts })}\n`);
    }
    // An interrupted run exits 130 / 143 (as if killed by the signal), so `train && eval` stops.
    const interrupted = (err as { exitCode?: unknown }).exitCode;
    process.exitCode = typeof interrupted === 'number' ? interrupted : err instanceof P5recError ? 2 : 1;
  }
}

export function parseIntFlag(name: string, value: string | undefined, def: number, min = -Infinity): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new P5recError(`--${name} must be an integer${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`);
  return n;
}

/** An integer flag in [min, max]: the limit is named in the error, never met as a crash deep inside. */
export function boundedInt(name: string, value: string | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new P5recError(`--${name} must be an integer in [${min}, ${max}], got '${value}'`);
  return n;
}
