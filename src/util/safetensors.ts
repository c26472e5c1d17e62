import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { InputError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

/**
 * safetensors (https://github.com/huggingface/safetensors): 8-byte LE header
 * length, a JSON header {name: {dtype, shape, data_offsets}}, then raw
 * little-endian data. Parsing is defensive: header size cap, offsets inside
 * the file and non-overlapping, shape × dtype size = byte length.
 */
export type DType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'F64';
export const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, F64: 8 };
const MAX_HEADER = 100 << 20;

export interface Tensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: shape ${JSON.stringify(t.shape)} does not match ${t.data.length} values`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json);
  const out = Buffer.alloc(8 + hbytes.length + offset);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(out, pos);
    pos += d.byteLength;
  }
  writeFileAtomic(path, out);
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  names: string[];
  info(name: string): { dtype: DType; shape: number[] };
  /** Read a tensor as float32 (F16/BF16/F64 converted). */
  float32(name: string): Float32Array;
  int32(name: string): Int32Array;
}

export function readSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new InputError('file not found', { file: path });
  }
  try {
    const size = fstatSync(fd).size;
    const fail = (msg: string, field?: string): never => {
      throw new InputError(`invalid safetensors: ${msg}`, { file: path, field });
    };
    if (size < 8) fail(`file is ${size} bytes, too short for a header`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const hlen = Number(lenBuf.readBigUInt64LE(0));
    if (hlen > MAX_HEADER) fail(`header length ${hlen} exceeds the ${MAX_HEADER}-byte limit`);
    if (8 + hlen > size) fail(`header length ${hlen} runs past the end of the ${size}-byte file (truncated?)`);
    const hbuf = Buffer.alloc(hlen);
    readSync(fd, hbuf, 0, hlen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(hbuf.toString('utf8'));
    } catch (e) {
      return fail(`header is not JSON (${(e as Error).message})`);
    }
    const dataStart = 8 + hlen;
    const dataLen = size - dataStart;
    const entries = new Map<string, { dtype: DType; shape: number[]; begin: number; end: number }>();
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const e = v as { dtype?: string; shape?: unknown; data_offsets?: unknown };
      if (!e || typeof e !== 'object' || !(e.dtype && e.dtype in DTYPE_BYTES)) fail(`unsupported or missing dtype ${JSON.stringify(e?.dtype)}`, name);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) fail('bad shape', name);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1]) fail('bad data_offsets', name);
      const [begin, end] = off as [number, number];
      if (end > dataLen) fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes; truncated?)`, name);
      const dtype = e.dtype as DType;
      const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
      if (count * DTYPE_BYTES[dtype] !== end - begin) fail(`shape ${JSON.stringify(e.shape)} × ${dtype} needs ${count * DTYPE_BYTES[dtype]} bytes, offsets give ${end - begin}`, name);
      entries.set(name, { dtype, shape: e.shape as number[], begin, end });
    }
    const spans = [...entries.values()].sort((a, b) => a.begin - b.begin);
    for (let k = 1; k < spans.length; k++) if (spans[k].begin < spans[k - 1].end) fail('tensor data regions overlap');
    const buf = Buffer.alloc(dataLen);
    readSync(fd, buf, 0, dataLen, dataStart);
    const get = (name: string) => {
      const e = entries.get(name);
      if (!e) throw new InputError(`tensor '${name}' not in file`, { file: path, field: name });
      return e;
    };
    const view = (e: { begin: number; end: number }): DataView => new DataView(buf.buffer, buf.byteOffset + e.begin, e.end - e.begin);
    return {
      metadata: ((header.__metadata__ ?? {}) as Record<string, string>),
      names: [...entries.keys()],
      info: (name) => ({ dtype: get(name).dtype, shape: get(name).shape }),
      float32(name) {
        const e = get(name);
        const v = view(e);
        const n = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          switch (e.dtype) {
            case 'F32': out[i] = v.getFloat32(i * 4, true); break;
            case 'F64': out[i] = v.getFloat64(i * 8, true); break;
            case 'BF16': out[i] = bf16(v.getUint16(i * 2, true)); break;
            case 'F16': out[i] = f16(v.getUint16(i * 2, true)); break;
            case 'I32': out[i] = v.getInt32(i * 4, true); break;
            case 'I64': out[i] = Number(v.getBigInt64(i * 8, true)); break;
          }
        }
        return out;
      },
      int32(name) {
        const e = get(name);
        const v = view(e);
        if (e.dtype !== 'I32' && e.dtype !== 'I64') throw new InputError(`tensor is ${e.dtype}, expected an integer dtype`, { file: path, field: name });
        const w = DTYPE_BYTES[e.dtype];
        const n = (e.end - e.begin) / w;
        return Int32Array.from({ length: n }, (_, i) => (w === 4 ? v.getInt32(i * 4, true) : Number(v.getBigInt64(i * 8, true))));
      },
    };
  } finally {
    closeSync(fd);
  }
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
function bf16(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0];
}
function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}
