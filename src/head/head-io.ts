// A LinearHead as one binary file in the bundle (head-<name>.bin, classifier.bin), written byte-for-byte
// deterministically and checked in full when read.
//
// Layout (version 3), little-endian. The 64-byte header is always stored as is; what follows it (the body) is
// stored as is or zlib-deflated (RFC 1950, whose Adler-32 check catches a damaged body), as the header says. The
// decoded file is the layout below: every section starts at a multiple of 8 bytes (zero padding), so the arrays
// are read as typed-array views. Version 2 is version 3 with the body always stored; version 1 is version 2 with
// float32 values only.
//
//   offset  size  field
//   0       8     magic "CTGZHEAD"
//   8       4     u32 format version (2)
//   12      4     u32 header size (64)
//   16      4     u32 K, classes
//   20      4     u32 dd, dense width (0: no dense part)
//   24      4     u32 dim, TF-IDF width (0: no sparse part)
//   28      4     u32 nnz, stored sparse entries
//   32      4     u32 bytes per class index: 2 when K ≤ 65,535, else 4 (0 without a sparse part)
//   36      4     u32 bytes of the class-name JSON
//   40      8     f64 pruning tolerance the sparse part was built with
//   48      8     f64 decoded file size in bytes (a truncated or padded file is refused)
//   56      4     u32 bytes per stored value: 4 (float32) or 2 (int16 multiples of 2 × the pruning tolerance);
//                 0 in version 1 files, read as 4
//   60      4     u32 body encoding: 0 stored, 1 zlib-deflated (version 3; zero before)
//   then the sections:
//   classes       UTF-8 JSON array of the K class names, in output order
//   intercept     f64 × K
//   mean, scale   f64 × dd each (StandardScaler of the dense part)
//   weights       f32 × dd·K, feature-major (feature j's K weights together)
//   colptr        u32 × (dim + 1), column j's entries are [colptr[j], colptr[j+1])
//   classIndex    u16 or u32 × nnz, ascending within a column
//   values        f32 or i16 × nnz (the column's weights minus its shift; i16 q stands for q × 2 × tolerance)
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import { ConfigError } from '../errors.js';
import { QUANTISED_MAX, type LinearHead } from './scoring.js';

export const HEAD_FILE_MAGIC = 'CTGZHEAD';
export const HEAD_FILE_VERSION = 3;
/** Versions this categorize reads. */
const READABLE_VERSIONS = [1, 2, 3];
/** Body encodings (header offset 60). */
const STORED = 0;
const DEFLATED = 1;
/**
 * zlib level for the body. A head's sparse part (sorted 16-bit class indices, small 16-bit multiples) deflates to
 * about a quarter: flipkart-taxonomy's 718-path head, 33.4 MB laid out, is 7.6 MB at level 6 (1.1 s to write, 85 ms
 * to read on this 2-core VM); level 9 saves 2% for 8× the time, brotli 20% but without a checksum.
 */
const DEFLATE_LEVEL = 6;
const HEADER_BYTES = 64;
const ALIGN = 8;

const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

interface Sections {
  classes: number;
  intercept: number;
  mean: number;
  scale: number;
  weights: number;
  colptr: number;
  classIndex: number;
  values: number;
  end: number;
}

/** Where each section starts, from the header's counts. */
function sectionOffsets(K: number, dd: number, dim: number, nnz: number, indexBytes: number, classesBytes: number, valueBytes: number): Sections {
  let at = HEADER_BYTES;
  const next = (bytes: number): number => {
    const start = at;
    at = align(at + bytes);
    return start;
  };
  const classes = next(classesBytes);
  const intercept = next(8 * K);
  const mean = next(8 * dd);
  const scale = next(8 * dd);
  const weights = next(4 * dd * K);
  const colptr = next(dim > 0 ? 4 * (dim + 1) : 0);
  const classIndex = next(indexBytes * nnz);
  const values = next(valueBytes * nnz);
  return { classes, intercept, mean, scale, weights, colptr, classIndex, values, end: at };
}

/** How a head file is written. */
export interface HeadEncodeOptions {
  /** Deflate the body (default true); false stores the layout as is, as version 2 did. */
  compress?: boolean;
}

/** The file's bytes; equal heads give equal bytes. */
export function encodeLinearHead(head: LinearHead, tolerance = 0, opts: HeadEncodeOptions = {}): Uint8Array {
  const K = head.intercept.length;
  const dd = head.dense?.width ?? 0;
  const dim = head.sparse?.width ?? 0;
  const nnz = head.sparse?.values.length ?? 0;
  const indexBytes = head.sparse ? head.sparse.classIndex.BYTES_PER_ELEMENT : 0;
  if (head.classes.length !== K) throw new RangeError(`linear head: ${head.classes.length} class names for ${K} intercepts`);
  if (head.sparse && head.sparse.classIndex.length !== nnz) throw new RangeError('linear head: class indices and values differ in length');
  const classesJson = Buffer.from(JSON.stringify(head.classes), 'utf8');
  const multiples = head.sparse ? quantisedValues(head.sparse.values, tolerance) : null;
  const valueBytes = multiples ? 2 : 4;
  const at = sectionOffsets(K, dd, dim, nnz, indexBytes, classesJson.length, valueBytes);
  const buf = Buffer.alloc(at.end);
  buf.write(HEAD_FILE_MAGIC, 0, 'latin1');
  const u32 = [HEAD_FILE_VERSION, HEADER_BYTES, K, dd, dim, nnz, indexBytes, classesJson.length];
  u32.forEach((v, i) => buf.writeUInt32LE(v, 8 + 4 * i));
  buf.writeDoubleLE(tolerance, 40);
  buf.writeDoubleLE(at.end, 48);
  buf.writeUInt32LE(valueBytes, 56);
  classesJson.copy(buf, at.classes);
  const littleEndian = os.endianness() === 'LE';
  const put = (offset: number, values: ArrayLike<number>, type: 'f64' | 'f32' | 'u32' | 'u16' | 'i16'): void => {
    const Type = { f64: Float64Array, f32: Float32Array, u32: Uint32Array, u16: Uint16Array, i16: Int16Array }[type];
    const typed = values instanceof Type ? values : Type.from(values);
    if (littleEndian) {
      Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).copy(buf, offset);
      return;
    }
    const n = typed.length;
    for (let i = 0; i < n; i++) {
      if (type === 'f64') buf.writeDoubleLE(typed[i]!, offset + 8 * i);
      else if (type === 'f32') buf.writeFloatLE(typed[i]!, offset + 4 * i);
      else if (type === 'u32') buf.writeUInt32LE(typed[i]!, offset + 4 * i);
      else if (type === 'i16') buf.writeInt16LE(typed[i]!, offset + 2 * i);
      else buf.writeUInt16LE(typed[i]!, offset + 2 * i);
    }
  };
  put(at.intercept, head.intercept, 'f64');
  if (head.dense) {
    put(at.mean, head.dense.mean, 'f64');
    put(at.scale, head.dense.scale, 'f64');
    put(at.weights, head.dense.weights, 'f32');
  }
  if (head.sparse) {
    put(at.colptr, head.sparse.colptr, 'u32');
    put(at.classIndex, head.sparse.classIndex, indexBytes === 2 ? 'u16' : 'u32');
    if (multiples) put(at.values, multiples, 'i16');
    else put(at.values, head.sparse.values, 'f32');
  }
  if (opts.compress === false) return buf;
  buf.writeUInt32LE(DEFLATED, 60);
  return Buffer.concat([buf.subarray(0, HEADER_BYTES), zlib.deflateSync(buf.subarray(HEADER_BYTES), { level: DEFLATE_LEVEL })]);
}

/**
 * The values as int16 multiples of 2·tolerance when each is exactly one (buildLinearHead's rounding) within int16's
 * range, else null (stored as float32).
 */
function quantisedValues(values: Float32Array, tolerance: number): Int16Array | null {
  if (!(tolerance > 0)) return null;
  const step = 2 * tolerance;
  const q = new Int16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const m = Math.round(values[i]! / step);
    if (Math.abs(m) > QUANTISED_MAX || Math.fround(m * step) !== values[i]) return null;
    q[i] = m;
  }
  return q;
}

/** Writes the head to `file` (see the layout above). */
export function writeLinearHead(file: string, head: LinearHead, tolerance = 0, opts: HeadEncodeOptions = {}): void {
  fs.writeFileSync(file, encodeLinearHead(head, tolerance, opts));
}

/** A head read back, with the tolerance its sparse part was pruned at. */
export interface LinearHeadFile {
  head: LinearHead;
  tolerance: number;
}

/**
 * Parses and checks a head file's bytes: sizes against the header, every number finite, scales non-zero,
 * colptr non-decreasing from 0 to nnz, class indices below K and ascending within a column. Any problem is
 * a one-line ConfigError naming `name`.
 */
export function decodeLinearHead(bytes: Uint8Array, name: string): LinearHeadFile {
  const fail = (what: string): never => {
    throw new ConfigError(`head ${name}: ${what}`, 'head_invalid');
  };
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (raw.length < HEADER_BYTES || raw.toString('latin1', 0, 8) !== HEAD_FILE_MAGIC) fail(`not a categorize head file (no ${HEAD_FILE_MAGIC} header)`);
  const version = raw.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version)) fail(`format version ${version} is not supported (this categorize reads ${READABLE_VERSIONS.join(', ')}); upgrade categorize`);
  const encoding = version >= 3 ? raw.readUInt32LE(60) : STORED;
  if (encoding !== STORED && encoding !== DEFLATED) fail(`body encoding ${encoding} (0 stored, 1 deflated)`);
  let decoded: Uint8Array = raw;
  if (encoding === DEFLATED) {
    const body = raw.subarray(HEADER_BYTES);
    let inflated: { buffer: Buffer; engine: { bytesWritten: number } } | undefined;
    try {
      // With `info`, the engine tells how much of the body the stream used: bytes after its end are damage too.
      inflated = zlib.inflateSync(body, { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    } catch (err) {
      fail(`the deflated body does not inflate (${err instanceof Error ? err.message : String(err)}): truncated or corrupt`);
    }
    if (inflated!.engine.bytesWritten !== body.length) fail(`${body.length - inflated!.engine.bytesWritten} bytes after the deflated body: corrupt`);
    decoded = Buffer.concat([raw.subarray(0, HEADER_BYTES), inflated!.buffer]);
  }
  // Typed-array views need their element alignment; a Buffer from a pool may start anywhere.
  const data = decoded.byteOffset % ALIGN === 0 ? decoded : Uint8Array.from(decoded);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const [headerBytes, K, dd, dim, nnz, indexBytes, classesBytes] = Array.from({ length: 7 }, (_, i) => buf.readUInt32LE(12 + 4 * i)) as [number, number, number, number, number, number, number];
  const valueBytes = version === 1 ? 4 : buf.readUInt32LE(56);
  if (valueBytes !== 4 && valueBytes !== 2) fail(`${valueBytes} bytes per stored value (2 or 4)`);
  if (headerBytes !== HEADER_BYTES) fail(`header size ${headerBytes}, expected ${HEADER_BYTES}`);
  const tolerance = buf.readDoubleLE(40);
  const declared = buf.readDoubleLE(48);
  if (K < 1) fail('no classes');
  if (dd + dim === 0) fail('no features (dense and sparse widths are both 0)');
  if (dim === 0 && (nnz !== 0 || indexBytes !== 0)) fail(`${nnz} sparse entries without a sparse part`);
  if (dim > 0 && indexBytes !== (K <= 0xffff ? 2 : 4)) fail(`class indices of ${indexBytes} bytes for ${K} classes`);
  if (!(tolerance >= 0 && Number.isFinite(tolerance))) fail(`pruning tolerance ${tolerance}`);
  if (valueBytes === 2 && !(tolerance > 0)) fail('16-bit values without a pruning tolerance');
  const at = sectionOffsets(K, dd, dim, nnz, indexBytes, classesBytes, valueBytes);
  if (declared !== at.end || buf.length !== at.end) fail(`${buf.length} bytes${encoding === DEFLATED ? ' inflated' : ''}, but its header describes ${at.end} (${K} classes, dense ${dd}, sparse ${dim} with ${nnz} entries): truncated or corrupt`);

  let classes: unknown;
  try {
    classes = JSON.parse(buf.toString('utf8', at.classes, at.classes + classesBytes));
  } catch {
    fail('class names are not valid JSON');
  }
  if (!Array.isArray(classes) || classes.length !== K || classes.some((c) => typeof c !== 'string')) fail(`class names must be ${K} strings`);
  if (new Set(classes as string[]).size !== K) fail('class names have duplicates');

  const littleEndian = os.endianness() === 'LE';
  const f64 = (offset: number, n: number): Float64Array =>
    littleEndian ? new Float64Array(data.buffer, data.byteOffset + offset, n) : Float64Array.from({ length: n }, (_, i) => buf.readDoubleLE(offset + 8 * i));
  const f32 = (offset: number, n: number): Float32Array =>
    littleEndian ? new Float32Array(data.buffer, data.byteOffset + offset, n) : Float32Array.from({ length: n }, (_, i) => buf.readFloatLE(offset + 4 * i));
  const u32 = (offset: number, n: number): Uint32Array =>
    littleEndian ? new Uint32Array(data.buffer, data.byteOffset + offset, n) : Uint32Array.from({ length: n }, (_, i) => buf.readUInt32LE(offset + 4 * i));
  const u16 = (offset: number, n: number): Uint16Array =>
    littleEndian ? new Uint16Array(data.buffer, data.byteOffset + offset, n) : Uint16Array.from({ length: n }, (_, i) => buf.readUInt16LE(offset + 2 * i));
  const i16 = (offset: number, n: number): Int16Array =>
    littleEndian ? new Int16Array(data.buffer, data.byteOffset + offset, n) : Int16Array.from({ length: n }, (_, i) => buf.readInt16LE(offset + 2 * i));
  const finite = (what: string, v: Float64Array | Float32Array): void => {
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) fail(`${what}[${i}] is ${v[i]}`);
  };

  const intercept = f64(at.intercept, K);
  finite('intercept', intercept);
  let dense: LinearHead['dense'] = null;
  if (dd > 0) {
    const mean = f64(at.mean, dd);
    const scale = f64(at.scale, dd);
    const weights = f32(at.weights, dd * K);
    finite('mean', mean);
    finite('scale', scale);
    for (let j = 0; j < dd; j++) if (scale[j] === 0) fail(`scale[${j}] is 0`);
    finite('dense weights', weights);
    dense = { width: dd, mean, scale, weights };
  }
  let sparse: LinearHead['sparse'] = null;
  if (dim > 0) {
    const colptr = u32(at.colptr, dim + 1);
    const classIndex = indexBytes === 2 ? u16(at.classIndex, nnz) : u32(at.classIndex, nnz);
    const values = valueBytes === 4 ? f32(at.values, nnz) : dequantise(i16(at.values, nnz), 2 * tolerance);
    if (colptr[0] !== 0) fail(`colptr[0] is ${colptr[0]}, expected 0`);
    if (colptr[dim] !== nnz) fail(`colptr[${dim}] is ${colptr[dim]}, expected the ${nnz} stored entries`);
    for (let j = 0; j < dim; j++) if (colptr[j + 1]! < colptr[j]!) fail(`colptr decreases at column ${j}`);
    for (let j = 0; j < dim; j++) {
      const start = colptr[j]!;
      const end = colptr[j + 1]!;
      for (let p = start; p < end; p++) {
        const k = classIndex[p]!;
        if (k >= K) fail(`class index ${k} (entry ${p}) is not below ${K}`);
        if (p > start && k <= classIndex[p - 1]!) fail(`class indices of column ${j} are not ascending at entry ${p}`);
      }
    }
    finite('sparse values', values);
    sparse = { width: dim, colptr, classIndex, values };
  }
  return { head: { classes: classes as string[], intercept, dense, sparse }, tolerance };
}

/** q × step for each stored multiple, as buildLinearHead computed the value (a plain loop: millions of entries). */
function dequantise(q: Int16Array, step: number): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * step;
  return out;
}

/** Reads and checks a head file; a missing or broken one is a ConfigError naming it. */
export function readLinearHead(file: string): LinearHeadFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`head ${file}: cannot be read (${err instanceof Error ? err.message : String(err)})`, 'head_invalid');
  }
  return decodeLinearHead(bytes, file);
}
