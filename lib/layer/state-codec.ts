/**
 * State dicts to and from JSON and a compact binary form, both bit-exact: every float32
 * comes back with the same bits.
 *
 * JSON: `{"format": "batchnorm.state_dict", "version": 1, "state": {key: [numbers] | number}}`.
 * A float32 is written as the shortest decimal that reads back as the same float32; the values
 * JSON numbers cannot carry (NaN, +-Infinity, -0) are written as the string of their bits,
 * e.g. "0x7fc00000". So Python can read the file with `json.load`.
 *
 * Binary, little-endian: the magic "BNSD", u32 version 1, u32 entry count, then per entry a
 * u16 key length, the UTF-8 key, a u8 kind (1: float32 tensor, 2: float64 scalar), a u32
 * element count and the raw values.
 */
import { endianness } from 'os';

import { BatchNormRangeError, BatchNormTypeError, describe, expected } from '../errors';
import { float32Array, uint8Array } from '../validate';
import type { StateDict } from './state-dict';

const FORMAT = 'batchnorm.state_dict';
const VERSION = 1;
const MAGIC = [0x42, 0x4e, 0x53, 0x44]; // "BNSD"
const KIND_TENSOR = 1;
const KIND_SCALAR = 2;
const BIG_ENDIAN_HOST = endianness() === 'BE';

function invalid(what: string, name: string, received: string): BatchNormRangeError {
  return new BatchNormRangeError('ERR_BATCHNORM_INVALID_STATE_DICT', expected(what, name, received));
}

/** The entries of a state dict, each checked to be an attached Float32Array or a finite number. */
function entriesOf(state: StateDict): [string, Float32Array | number][] {
  if (state === null || typeof state !== 'object') {
    throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected('a state dict object', 'state', describe(state)));
  }
  return Object.entries(state).map(([key, value]) => [key, entryValue(value, `state.${key}`)]);
}

/** One state dict value: a finite number, or a Float32Array on an attached buffer. */
function entryValue(value: unknown, name: string): Float32Array | number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  // The package's check, so a detached tensor is ERR_BATCHNORM_DETACHED, not a built-in error from reading it.
  if (value instanceof Float32Array) return float32Array(value, name);
  throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected('a Float32Array or a finite number', name, describe(value)));
}

/**
 * A copy of a state dict's tensor, bit for bit. Not `a.slice()`: a subclass's Symbol.species
 * may make it another type, and the copy's bytes then another encoding.
 */
function copyOf(a: Float32Array): Float32Array {
  return new Float32Array(a);
}

/** The bits of each float32, as unsigned 32-bit integers. */
function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(copyOf(a).buffer);
}

/** Serialises a state dict to JSON text. */
export function stateDictToJSON(state: StateDict): string {
  const out: Record<string, number | (number | string)[]> = {};
  for (const [key, value] of entriesOf(state)) {
    if (typeof value === 'number') {
      out[key] = value;
      continue;
    }
    const bits = bitsOf(value);
    out[key] = Array.from(value, (v, i) => (Number.isFinite(v) && !Object.is(v, -0) ? v : `0x${bits[i].toString(16).padStart(8, '0')}`));
  }
  return JSON.stringify({ format: FORMAT, version: VERSION, state: out });
}

/** Reads JSON written by {@link stateDictToJSON}. */
export function stateDictFromJSON(text: string): StateDict {
  if (typeof text !== 'string') throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected('a string', 'text', describe(text)));
  let doc: { format?: unknown; version?: unknown; state?: unknown };
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw invalid('JSON', 'text', `text that does not parse (${(cause as Error).message})`);
  }
  if (doc?.format !== FORMAT || doc.version !== VERSION || typeof doc.state !== 'object' || doc.state === null) {
    throw invalid(`a ${FORMAT} document of version ${VERSION}`, 'text', describe(doc?.format ?? doc));
  }
  const state: StateDict = {};
  for (const [key, value] of Object.entries(doc.state as Record<string, unknown>)) {
    if (typeof value === 'number') state[key] = value;
    else if (Array.isArray(value)) state[key] = floatsFromJSON(value, `state.${key}`);
    else throw invalid('an array of numbers or a number', `state.${key}`, describe(value));
  }
  return state;
}

function floatsFromJSON(values: unknown[], name: string): Float32Array {
  const a = new Float32Array(values.length);
  const bits = new Uint32Array(a.buffer);
  values.forEach((v, i) => {
    if (typeof v === 'number') a[i] = v;
    else if (typeof v === 'string' && /^0x[0-9a-f]{8}$/.test(v)) bits[i] = Number.parseInt(v.slice(2), 16);
    else throw invalid('a number or a "0x" + 8 hex digits bit pattern', `${name}[${i}]`, describe(v));
  });
  return a;
}

/** The little-endian bytes of a float32 array. */
function littleEndianBytes(a: Float32Array): Uint8Array {
  const bytes = new Uint8Array(copyOf(a).buffer);
  if (BIG_ENDIAN_HOST) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  return bytes;
}

/** Serialises a state dict to the compact binary form. */
export function encodeStateDict(state: StateDict): Uint8Array {
  const entries = entriesOf(state).map(([key, value]) => {
    const keyBytes = new TextEncoder().encode(key);
    if (keyBytes.length > 0xffff) throw invalid('a key of at most 65535 bytes', 'state', `a key of ${keyBytes.length} bytes`);
    if (typeof value !== 'number') return { keyBytes, kind: KIND_TENSOR, count: value.length, data: littleEndianBytes(value) };
    const data = new Uint8Array(8);
    new DataView(data.buffer).setFloat64(0, value, true);
    return { keyBytes, kind: KIND_SCALAR, count: 1, data };
  });
  const size = entries.reduce((n, e) => n + 2 + e.keyBytes.length + 1 + 4 + e.data.length, 12);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, entries.length, true);
  let at = 12;
  for (const e of entries) {
    view.setUint16(at, e.keyBytes.length, true);
    bytes.set(e.keyBytes, at + 2);
    at += 2 + e.keyBytes.length;
    view.setUint8(at, e.kind);
    view.setUint32(at + 1, e.count, true);
    bytes.set(e.data, at + 5);
    at += 5 + e.data.length;
  }
  return bytes;
}

/** Reads bytes written by {@link encodeStateDict}: a Uint8Array or a Node.js Buffer (e.g. from fs.readFileSync). */
export function decodeStateDict(bytes: Uint8Array): StateDict {
  uint8Array(bytes, 'bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  /** The next n bytes, or a clear error when the data ends before them. */
  const take = (n: number, what: string) => {
    if (at + n > bytes.length) throw invalid(`${what} at byte ${at}`, 'bytes', `data that ends at byte ${bytes.length}`);
    at += n;
    return at - n;
  };
  take(12, 'a 12-byte header');
  if (MAGIC.some((m, i) => bytes[i] !== m) || view.getUint32(4, true) !== VERSION) {
    throw invalid(`the magic "BNSD" and version ${VERSION}`, 'bytes', 'another header');
  }
  const state: StateDict = {};
  for (let n = view.getUint32(8, true); n > 0; n--) {
    const keyLength = view.getUint16(take(2, 'a key length'), true);
    const key = new TextDecoder().decode(bytes.subarray(take(keyLength, 'a key'), at));
    const kind = view.getUint8(take(1, 'a kind'));
    const count = view.getUint32(take(4, 'an element count'), true);
    if (kind === KIND_SCALAR && count === 1) {
      state[key] = view.getFloat64(take(8, 'a float64'), true);
    } else if (kind === KIND_TENSOR) {
      // A copy of exactly these bytes: a Buffer's slice() is a view on its (pooled, larger) ArrayBuffer.
      const data = new Uint8Array(bytes.subarray(take(4 * count, `${count} float32 values`), at));
      if (BIG_ENDIAN_HOST) for (let i = 0; i < data.length; i += 4) data.subarray(i, i + 4).reverse();
      state[key] = new Float32Array(data.buffer);
    } else {
      throw invalid('kind 1 (tensor) or kind 2 with count 1 (scalar)', `bytes (entry "${key}")`, `kind ${kind} with count ${count}`);
    }
  }
  if (at !== bytes.length) throw invalid(`${at} bytes`, 'bytes', `${bytes.length} bytes (trailing data)`);
  return state;
}
