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
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'bigint') return String(v);
  throw new InputError(`expected a string or number id, got ${typeof v}`, { ...at, field });
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
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new InputError(`rating is not a number: ${JSON.stringify(v)}`, { ...at, field });
  if (n < scale.min || n > scale.max) throw new InputError(`rating ${n} is outside ${scale.min}..${scale.max}`, { ...at, field });
  return n;
}

/** A timestamp: unix seconds (number or numeric string) or an ISO date. */
export function parseTime(v: unknown, field: string, at: Where, required: boolean): number | null {
  if (v === undefined || v === null || v === '') {
    if (required) throw new InputError('missing required field', { ...at, field });
    return null;
  }
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const s = v.trim();
    if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
    const ms = Date.parse(s);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new InputError(`not a timestamp: ${JSON.stringify(v)}`, { ...at, field });
}

export function parsePrice(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const m = /\d+(\.\d+)?/.exec(v.replace(/,/g, ''));
    if (m) return Number(m[0]);
  }
  return undefined;
}
