import { InputError } from '../errors.js';
import type { RatingScale } from './raw.js';

/** Where a record came from, for error messages. */
export interface Where {
  file: string;
  line: number;
}

type Rec = Record<string, unknown>;

export function requireId(rec: Rec, field: string, at: Where): string {
  const v = rec[field];
  if (v === undefined || v === null || v === '') throw new InputError('missing required field', { ...at, field });
  if (typeof v === 'string') return v;
  // JSON numbers are doubles: ids past 2^53 (or with decimals) have already lost digits and would merge.
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'number') throw new InputError(`numeric id ${v} is not an integer below 2^53, so JSON has rounded it; write ids as strings`, { ...at, field });
  if (typeof v === 'bigint') return String(v);
  throw new InputError(`expected a string or number id, got ${typeof v}`, { ...at, field });
}

/**
 * For a record read from a line holding invalid UTF-8: name the field whose
 * text carries the replacement character, and refuse.
 */
export function refuseInvalidUtf8(rec: Rec, at: Where): never {
  const hit = Object.entries(rec).find(([, v]) => JSON.stringify(v ?? null).includes('\uFFFD'));
  throw new InputError("invalid UTF-8 (not a UTF-8 file? set 'encoding' to latin1 for Latin-1)", { ...at, ...(hit ? { field: hit[0] } : {}) });
}

/** Decimal notation only: Number() would also read '0x5', '0b1', ' ' and 'Infinity'. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && DECIMAL.test(v.trim())) return Number(v.trim());
  return NaN;
}

export function optionalText(rec: Rec, field: string, at: Where): string | null {
  const v = rec[field];
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw new InputError(`expected text, got ${Array.isArray(v) ? 'a list' : typeof v}`, { ...at, field });
}

/** A rating: numeric (numbers or numeric strings), finite, inside the scale. */
export function parseRating(v: unknown, field: string, at: Where, scale: RatingScale, required: boolean): number | null {
  if (v === undefined || v === null || v === '') {
    if (required) throw new InputError('missing required field', { ...at, field });
    return null;
  }
  const n = toNumber(v);
  if (!Number.isFinite(n)) throw new InputError(`rating is not a number: ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)} (decimal notation expected)`, { ...at, field });
  if (n < scale.min || n > scale.max) throw new InputError(`rating ${n} is outside ${scale.min}..${scale.max}`, { ...at, field });
  return n;
}

/**
 * Unix time by magnitude: values up to 1e11 are seconds (to year 5138);
 * larger ones are milliseconds, microseconds or nanoseconds of a sane date
 * (1e11 s would be year 5138, 1e11 ms is 1973). Anything past that is refused.
 */
const UNITS: [number, number][] = [[1e11, 1], [1e14, 1e3], [1e17, 1e6], [1e20, 1e9]];

/** A timestamp: unix seconds/ms/us/ns (number or decimal string, unit by magnitude) or an ISO 8601 date. Returns unix seconds. */
export function parseTime(v: unknown, field: string, at: Where, required: boolean): number | null {
  if (v === undefined || v === null || v === '') {
    if (required) throw new InputError('missing required field', { ...at, field });
    return null;
  }
  const shown = JSON.stringify(typeof v === 'bigint' ? String(v) : v);
  const n = toNumber(v);
  if (Number.isFinite(n)) {
    const unit = UNITS.find(([limit]) => Math.abs(n) < limit);
    if (!unit) throw new InputError(`timestamp ${shown} is out of range (expected unix seconds, ms, us or ns)`, { ...at, field });
    return unit[1] === 1 ? n : Math.trunc(n / unit[1]);
  }
  if (typeof v === 'string') {
    const s = parseIsoDate(v.trim());
    if (s === 'invalid') throw new InputError(`not a calendar date: ${shown}`, { ...at, field });
    if (s !== null) return s;
  }
  throw new InputError(`not a timestamp: ${shown} (expected unix time or an ISO date YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM])`, { ...at, field });
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * ISO 8601 date (time, zone optional; UTC when absent) → unix seconds;
 * 'invalid' for a well-formed but impossible date (2014-02-30, 25:00), which
 * Date.parse would roll over into March; null when not ISO at all.
 */
export function parseIsoDate(s: string): number | 'invalid' | null {
  const m = ISO.exec(s);
  if (!m) return null;
  const [y, mo, d, h = 0, mi = 0, sec = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => (x === undefined ? undefined : Number(x)));
  const ms = Date.UTC(y as number, (mo as number) - 1, d as number, h, mi, sec);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== (mo as number) - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== sec) return 'invalid';
  let offset = 0;
  const z = m[8];
  if (z && z !== 'Z') {
    const zh = Number(z.slice(1, 3));
    const zm = Number(z.slice(-2));
    if (zh > 23 || zm > 59) return 'invalid';
    offset = (z[0] === '-' ? -1 : 1) * (zh * 60 + zm) * 60;
  }
  return Math.floor(ms / 1000) - offset;
}

export function parsePrice(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const m = /\d+(\.\d+)?/.exec(v.replace(/,/g, ''));
    if (m) return Number(m[0]);
  }
  return undefined;
}
