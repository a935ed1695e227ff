// Image -> normalised CHW float32 tensor: torchvision's PIL pipeline Resize(256) + CenterCrop(224) + ToTensor() +
// Normalize(mean, std) reproduced with sharp (libvips) ('exact'), or a cheaper resize of the same geometry ('fast').
import type { KernelEnum, OutputInfo, Sharp } from 'sharp';
import fs from 'node:fs/promises';
import { RowError } from '../errors.js';
import { sharpLib } from '../runtime/lazy-module.js';

/**
 * How the resize is computed. 'exact': PIL's antialiased bilinear, bit-identical to torchvision up to
 * EXACT_MAX_PIXELS and within ~0.5 grey levels above (what the original service and imported heads were fitted
 * on). 'fast': libvips for every downscale, with JPEG shrink-on-load as far as it goes (fastShrinkOnLoad), about
 * 1 grey level off on average; upscales stay exact (no cheaper); same size rule, centre crop and normalisation. Embeddings from the two differ slightly,
 * so a head is only fed the mode it was trained with (bundles record it; the embedding cache keys on it).
 */
export type ImagePreprocessing = 'exact' | 'fast';
export const IMAGE_PREPROCESSING: readonly ImagePreprocessing[] = ['exact', 'fast'];

export interface ImagePreprocessSpec {
  /** Shorter side after resizing (torchvision `Resize(int)`). */
  resize: number;
  /** Side of the square centre crop. */
  crop: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Absent: 'exact' (bundles before 'fast' existed, imported heads). Written to manifests only when 'fast'. */
  method?: ImagePreprocessing;
}

/** A spec's preprocessing, 'exact' when it names none. */
export function preprocessingOf(spec: Pick<ImagePreprocessSpec, 'method'>): ImagePreprocessing {
  return spec.method ?? 'exact';
}

/** `spec` set to `method`: 'exact' leaves the field out, so exact specs (and manifests) read as they always have. */
export function withPreprocessing<T extends ImagePreprocessSpec>(spec: T, method: ImagePreprocessing): T {
  const { method: _, ...rest } = spec;
  return (method === 'exact' ? rest : { ...rest, method }) as T;
}

export const imagenetPreprocess: Readonly<ImagePreprocessSpec> = Object.freeze({
  resize: 256,
  crop: 224,
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
});

/** Decompression-bomb guard: 100 MP is ~4.5x the largest real catalog photo seen (22 MP). */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * How the resize is done. PIL's antialiased bilinear is reimplemented exactly in JS (fixed-point, as
 * Pillow's Resample.c) on a full decode: bit-identical to torchvision on every golden image and on all 823
 * flipkart photos, originals included. A full decode of a big JPEG is what costs, so above EXACT_MAX_PIXELS
 * libvips resizes instead, with JPEG shrink-on-load. Measured against the PIL reference
 * (scripts/reference/image_reference.py) on the 22 flipkart originals above 1 MP (1.1-22 MP), 224x224 crop,
 * abs diff in grey levels (mean over images / 95th pct of per-image means / max), and ms per image
 * (1.6-5 MP / >= 5 MP, one at a time, 2 cores):
 *   libvips linear,   fastShrinkOnLoad false   0.51 / 1.5 / 40    13 / 28 ms
 *   libvips linear,   fastShrinkOnLoad true    0.92 / 2.3 / 82    10 / 23 ms
 *   libvips mitchell, fastShrinkOnLoad false   0.57 / 1.6 / 39
 *   libvips cubic, lanczos2 (lanczos3: 1.7)    1.2 / 2.7 / 48     (sharper than PIL's triangle)
 *   exact JS (PIL)                             0 / 0 / 0          38 / 135 ms
 * 'linear' is PIL's triangle filter; libvips only box-shrinks first. fastShrinkOnLoad false leaves a x2
 * margin after the DCT shrink: half the error for ~20% more time. 0.5 grey levels is ~0.009 normalised.
 */
export const DEFAULT_KERNEL: keyof KernelEnum = 'linear';
export const DEFAULT_FAST_SHRINK_ON_LOAD = false;

/** Formats we decode; anything else sharp recognises (SVG, PDF, raw vips...) is refused. */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

/**
 * Up to this many source pixels (1024 x 1024) the exact JS path is used: below ~0.8 MP it costs what
 * libvips' resize does (4-8 ms), at 0.8-1.6 MP twice as much (19 vs 9 ms), above that the full decode
 * dominates. Upscaled images (shorter side < resize) always take it.
 */
export const EXACT_MAX_PIXELS = 1024 * 1024;

/** Above this many resized pixels the crop is cut by libvips rather than from a full resized buffer. */
const MAX_RESIZED_PIXELS_IN_MEMORY = 4_000_000;

export interface PreprocessOptions {
  /** Name used in error messages (the file path is used for string inputs). */
  name?: string;
  /** Refuse images with more pixels than this (width x height as declared by the header). */
  maxPixels?: number;
  /**
   * 'auto': the spec's method ('exact': PIL resampling up to EXACT_MAX_PIXELS, libvips above; 'fast': libvips
   * always); the others force one (measurements).
   */
  strategy?: 'auto' | 'pil' | 'sharp';
  /** Override the resampling kernel (for measurements; the default matches PIL best). */
  kernel?: keyof KernelEnum;
  /** Override JPEG shrink-on-load aggressiveness (for measurements; default: true for 'fast', else false). */
  fastShrinkOnLoad?: boolean;
}

let defaultMaxPixels = DEFAULT_MAX_PIXELS;

/**
 * Process-wide sharp settings. `threads` is libvips' worker count per image; the caller also decides how
 * many images run at once, so threads x parallel images should stay near the core count.
 */
export function configureSharp(opts: { threads?: number; maxPixels?: number } = {}): void {
  if (opts.threads !== undefined) {
    if (!Number.isInteger(opts.threads) || opts.threads < 0) throw new RangeError(`threads must be an integer >= 0, got ${opts.threads}`);
    sharpLib().concurrency(opts.threads);
  }
  if (opts.maxPixels !== undefined) {
    if (!Number.isInteger(opts.maxPixels) || opts.maxPixels < 1) {
      throw new RangeError(`maxPixels must be a positive integer, got ${opts.maxPixels}`);
    }
    defaultMaxPixels = opts.maxPixels;
  }
}

/** torchvision's Resize(int) size rule: shorter side -> size, longer side -> int(size * long / short). */
export function resizedSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.floor((size * height) / width)];
  return [Math.floor((size * width) / height), size];
}

/** Python's round(): halves go to the even neighbour, as torchvision's CenterCrop offsets do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** CenterCrop geometry along one axis: where to read from, how much, and where to write (zero padding). */
interface CropAxis {
  src: number;
  len: number;
  dst: number;
}
function cropAxis(size: number, crop: number): CropAxis {
  if (size >= crop) return { src: roundHalfEven((size - crop) / 2), len: crop, dst: 0 };
  return { src: 0, len: size, dst: Math.floor((crop - size) / 2) };
}

/** Per-channel lookup u8 -> (v / 255 - mean) / std, each step rounded to float32 as torch does it. */
const lutCache = new WeakMap<object, Float32Array>();
function normLut(spec: ImagePreprocessSpec): Float32Array {
  let lut = lutCache.get(spec);
  if (!lut) {
    lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      const mean = Math.fround(spec.mean[c]!);
      const std = Math.fround(spec.std[c]!);
      for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
    }
    lutCache.set(spec, lut);
  }
  return lut;
}

function describe(input: Buffer | string, name: string | undefined): string {
  if (name) return name;
  return typeof input === 'string' ? input : `<${input.length}-byte buffer>`;
}

/** libvips repeats its messages per retry and per thread: one line, each sentence once, bounded. */
function libvipsMessage(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  const parts = text.split(/ (?=Vips\w*: )/);
  const unique = parts.filter((p, i) => parts.indexOf(p) === i).join(' ');
  return unique.length > 200 ? `${unique.slice(0, 197)}...` : unique;
}

/** Maps sharp/libvips failures to per-row errors. */
function toRowError(err: unknown, label: string, limit: number): RowError {
  if (err instanceof RowError) return err;
  const msg = libvipsMessage(err);
  if (/exceeds pixel limit/i.test(msg)) {
    return new RowError('image_too_large', `image too large: ${label} has more than ${limit} pixels`, { cause: err });
  }
  if (/unsupported image format|Unsupported (codec|feature)|no decoder|is not a known file format/i.test(msg)) {
    return new RowError('image_unsupported', `unsupported image format: ${label} (${msg})`, { cause: err });
  }
  return new RowError('image_corrupt', `corrupt image: ${label} (${msg})`, { cause: err });
}

/**
 * The container, from its first bytes. Only these reach libvips: its other loaders (SVG via librsvg, PDF,
 * FITS, Matlab, vips...) parse formats no product photo comes in, and are attack surface.
 */
export function sniffImageFormat(b: Uint8Array): 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'heif' | undefined {
  const ascii = (from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
  if (b.length < 12) return undefined;
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (ascii(0, 4) === 'GIF8') return 'gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
  if (ascii(4, 8) === 'ftyp') return 'heif'; // AVIF decodes; HEVC-coded HEIC fails in libvips (unsupported)
  return undefined;
}

/** Reads an image file, mapping the usual filesystem failures to row errors. */
async function readInput(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new RowError('image_not_found', `image not found: ${file}`, { cause: err });
    if (code === 'EISDIR') throw new RowError('image_not_found', `image not found: ${file} is a directory`, { cause: err });
    throw new RowError('image_not_found', `image not readable: ${file} (${code ?? libvipsMessage(err)})`, { cause: err });
  }
}

// ---------------------------------------------------------------- PIL's bilinear resampler, exactly

/** Pillow's fixed-point precision for 8-bit resampling (Resample.c: PRECISION_BITS = 32 - 8 - 2). */
const PRECISION_BITS = 22;
const PRECISION_ONE = 1 << PRECISION_BITS;
const PRECISION_HALF = 1 << (PRECISION_BITS - 1);

interface Coeffs {
  /** First input index per output index. */
  start: Int32Array;
  /** Tap count per output index. */
  count: Int32Array;
  /** ksize fixed-point weights per output index. */
  weights: Int32Array;
  ksize: number;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter, for output indices
 * [first, first + n) of a resize from inSize to outSize: antialiased (support grows with the downscale
 * factor), pixel centres at +0.5, weights renormalised where the window leaves the image.
 */
function bilinearCoeffs(inSize: number, outSize: number, first: number, n: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filterscale; // bilinear support 1.0 x filterscale
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let i = 0; i < n; i++) {
    const center = (first + i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * PRECISION_ONE) : Math.trunc(0.5 + w * PRECISION_ONE);
    }
    start[i] = xmin;
    count[i] = xmax;
  }
  return { start, count, weights, ksize };
}

/** Pillow's clip8: drop the fraction bits, clamp to a byte. Sums stay below 2^31, so int32 maths is exact. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Which output window of which resize, and the source rectangle [x0, x1) x [y0, y1) it reads. */
export interface BilinearPlan {
  h: Coeffs;
  v: Coeffs;
  cw: number;
  ch: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Coefficients for the `cw` x `ch` window at (left, top) of a resize from inW x inH to outW x outH. */
export function planBilinearWindow(
  inW: number, inH: number, outW: number, outH: number, left: number, top: number, cw: number, ch: number,
): BilinearPlan {
  const h = bilinearCoeffs(inW, outW, left, cw);
  const v = bilinearCoeffs(inH, outH, top, ch);
  return {
    h, v, cw, ch,
    x0: h.start[0]!, x1: h.start[cw - 1]! + h.count[cw - 1]!,
    y0: v.start[0]!, y1: v.start[ch - 1]! + v.count[ch - 1]!,
  };
}

/**
 * Runs a plan on `src`, RGB pixels `srcW` wide whose first pixel is the source image's (srcX, srcY) and which
 * cover the plan's source rectangle (the whole image, or just that rectangle): the window of Pillow's
 * `Image.resize((outW, outH), BILINEAR)`, bit for bit (horizontal pass first into 8-bit rows, then
 * vertical, each with Pillow's rounding), computing only what the window needs.
 */
export function runBilinearPlan(
  plan: BilinearPlan, src: Uint8Array, srcX = plan.x0, srcY = plan.y0, srcW = plan.x1 - plan.x0,
): Uint8Array {
  const { cw, ch, y0 } = plan;
  const x0 = srcX;
  const srcStride = srcW * 3;
  const stride = cw * 3;
  const rows = plan.y1 - y0;
  const need = (plan.y1 - srcY) * srcStride;
  if (plan.x0 < srcX || plan.y0 < srcY || plan.x1 > srcX + srcW || src.length < need) {
    throw new RangeError(`source does not cover the plan's rectangle`);
  }
  // Horizontal pass over the rows the vertical pass reads.
  const tmp = new Uint8Array(rows * stride);
  const hStart = plan.h.start, hCount = plan.h.count, hW = plan.h.weights, hK = plan.h.ksize;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + y0 - srcY) * srcStride;
    let o = y * stride;
    for (let i = 0; i < cw; i++, o += 3) {
      const n = hCount[i]!;
      const kOff = i * hK;
      let r = PRECISION_HALF, g = PRECISION_HALF, b = PRECISION_HALF;
      for (let x = 0, p = rowIn + (hStart[i]! - x0) * 3; x < n; x++, p += 3) {
        const w = hW[kOff + x]!;
        r = (r + Math.imul(src[p]!, w)) | 0;
        g = (g + Math.imul(src[p + 1]!, w)) | 0;
        b = (b + Math.imul(src[p + 2]!, w)) | 0;
      }
      tmp[o] = clip8(r);
      tmp[o + 1] = clip8(g);
      tmp[o + 2] = clip8(b);
    }
  }
  // Vertical pass, a whole output row at a time so reads stay sequential.
  const out = new Uint8Array(ch * stride);
  const acc = new Int32Array(stride);
  const vStart = plan.v.start, vCount = plan.v.count, vW = plan.v.weights, vK = plan.v.ksize;
  for (let j = 0; j < ch; j++) {
    acc.fill(PRECISION_HALF);
    const n = vCount[j]!;
    const kOff = j * vK;
    for (let t = 0, row = (vStart[j]! - y0) * stride; t < n; t++, row += stride) {
      const w = vW[kOff + t]!;
      for (let c = 0; c < stride; c++) acc[c] = (acc[c]! + Math.imul(tmp[row + c]!, w)) | 0;
    }
    const o = j * stride;
    for (let c = 0; c < stride; c++) out[o + c] = clip8(acc[c]!);
  }
  return out;
}

/** The window (left, top, cw x ch) of Pillow's BILINEAR resize of a whole inW x inH RGB image to outW x outH. */
export function pilBilinearWindow(
  src: Uint8Array, inW: number, inH: number, outW: number, outH: number,
  left: number, top: number, cw: number, ch: number,
): Uint8Array {
  return runBilinearPlan(planBilinearWindow(inW, inH, outW, outH, left, top, cw, ch), src, 0, 0, inW);
}

// ---------------------------------------------------------------- public entry point

/**
 * Decodes `input` (bytes or a file path) and writes the 3 x crop x crop normalised tensor (RGB, CHW) into
 * `out` at `offset` (a fresh array when `out` is omitted). Returns the view of `out` that was written.
 * Per-image failures throw RowError: image_not_found, image_too_large, image_unsupported, image_corrupt.
 */
export async function preprocessImage(
  input: Buffer | string,
  spec: ImagePreprocessSpec = imagenetPreprocess,
  out?: Float32Array,
  offset = 0,
  options: PreprocessOptions = {},
): Promise<Float32Array> {
  const { crop } = spec;
  const planeSize = crop * crop;
  const n = 3 * planeSize;
  const target = out ?? new Float32Array(n);
  if (!Number.isInteger(offset) || offset < 0 || offset + n > target.length) {
    throw new RangeError(`output buffer too small: need ${n} floats at offset ${offset}, have ${target.length}`);
  }
  const label = describe(input, options.name);
  const limit = options.maxPixels ?? defaultMaxPixels;
  // Reading the file ourselves gives plain not-found errors and lets the format be checked before libvips
  // sees a byte; JPEG shrink-on-load works from a buffer as from a file.
  const bytes = typeof input === 'string' ? await readInput(input) : input;
  if (bytes.length === 0) throw new RowError('image_corrupt', `corrupt image: ${label} (empty)`);
  const format = sniffImageFormat(bytes);
  if (!format) throw new RowError('image_unsupported', `unsupported image format: ${label} (not JPEG, PNG, WebP, GIF, TIFF or AVIF)`);

  let pixels: Uint8Array; // the crop window, RGB interleaved, x.len x y.len
  let x: CropAxis;
  let y: CropAxis;
  try {
    const sharpOptions = {
      // PIL refuses truncated files but shrugs off libjpeg warnings ("extraneous bytes"); so do we.
      failOn: 'error',
      autoOrient: true,
      // PIL ignores embedded ICC profiles, and the reference/training pipeline is PIL's.
      ignoreIcc: true,
      pages: 1,
    } as const;
    // The header alone, unguarded, so an oversized image is refused with its size in the message; the
    // decoding instance below carries libvips' own guard as well.
    const meta = await sharpLib()(bytes, { ...sharpOptions, limitInputPixels: false }).metadata();
    if (!meta.format || !ACCEPTED_FORMATS.has(meta.format)) {
      throw new RowError('image_unsupported', `unsupported image format: ${label} (${meta.format ?? 'unknown'})`);
    }
    const rawW = meta.width;
    const rawH = meta.pageHeight ?? meta.height;
    if (!rawW || !rawH) throw new RowError('image_corrupt', `corrupt image: ${label} (no dimensions)`);
    if (rawW * rawH > limit) {
      throw new RowError('image_too_large', `image too large: ${label} is ${rawW}x${rawH}, over the ${limit}-pixel limit`);
    }
    const image = sharpLib()(bytes, { ...sharpOptions, limitInputPixels: limit });
    const swap = (meta.orientation ?? 1) >= 5;
    const w = swap ? rawH : rawW;
    const h = swap ? rawW : rawH;
    const [rw, rh] = resizedSize(w, h, spec.resize);
    x = cropAxis(rw, crop);
    y = cropAxis(rh, crop);
    const cmyk = meta.space === 'cmyk';
    const fast = preprocessingOf(spec) === 'fast';
    const strategy = options.strategy ?? 'auto';
    // Upscaling always goes the exact way, 'fast' included: libvips upsamples with a different pixel-centre
    // convention (measured 3-4 grey levels mean, 100+ max off PIL on the golden images), and on images this small
    // it saves nothing (myntra's 224 px photos: 3.7 ms of CPU either way). 'fast' takes libvips for every downscale.
    const exact = strategy === 'pil' ||
      (strategy === 'auto' && (Math.min(w, h) < spec.resize || (!fast && w * h <= EXACT_MAX_PIXELS)));

    if (exact) {
      const plan = planBilinearWindow(w, h, rw, rh, x.src, y.src, x.len, y.len);
      const pw = plan.x1 - plan.x0;
      const ph = plan.y1 - plan.y0;
      // Decode only the rectangle the crop reads when that saves much (long thin images being upscaled).
      const region = pw * ph * 2 <= w * h ? { left: plan.x0, top: plan.y0, width: pw, height: ph } : undefined;
      const rgb = await decodeRgb(region ? image.extract(region) : image, cmyk, region ? pw : w, region ? ph : h, label);
      pixels = region ? runBilinearPlan(plan, rgb) : runBilinearPlan(plan, rgb, 0, 0, w);
    } else {
      // libvips flattens with its own rounding (<= 1 grey level from PIL's alpha_composite) and resizes in
      // CMYK before our conversion; both are negligible next to its resampler's differences.
      let pipeline = (cmyk ? image.pipelineColourspace('cmyk') : image)
        .flatten({ background: { r: 255, g: 255, b: 255 } })
        .resize(rw, rh, {
          fit: 'fill',
          kernel: options.kernel ?? DEFAULT_KERNEL,
          fastShrinkOnLoad: options.fastShrinkOnLoad ?? (fast || DEFAULT_FAST_SHRINK_ON_LOAD),
        });
      // Cropping in JS keeps JPEG shrink-on-load for EXIF-rotated photos (sharp's extract() turns it off
      // for them); only absurd aspect ratios, whose resized image would be huge, are cut by libvips.
      const cropInJs = rw * rh <= MAX_RESIZED_PIXELS_IN_MEMORY;
      if (!cropInJs) pipeline = pipeline.extract({ left: x.src, top: y.src, width: x.len, height: y.len });
      const bands = cmyk ? 4 : 3;
      const { data, info } = await (cmyk ? pipeline.toColourspace('cmyk') : pipeline.toColourspace('srgb').removeAlpha())
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      const [ow, oh] = cropInJs ? [rw, rh] : [x.len, y.len];
      checkDecoded(info, ow, oh, bands, label);
      const rgb = cmyk ? cmykToRgb(data) : data;
      pixels = cropInJs ? copyWindow(rgb, rw, x.src, y.src, x.len, y.len) : rgb;
    }
  } catch (err) {
    throw toRowError(err, label, limit);
  }

  const lut = normLut(spec);
  if (x.len < crop || y.len < crop) {
    // CenterCrop pads with black (pixel value 0) when the image is smaller than the crop.
    for (let c = 0; c < 3; c++) target.fill(lut[c * 256]!, offset + c * planeSize, offset + (c + 1) * planeSize);
  }
  for (let row = 0, s = 0; row < y.len; row++) {
    let d = offset + (y.dst + row) * crop + x.dst;
    for (let col = 0; col < x.len; col++, s += 3, d++) {
      target[d] = lut[pixels[s]!]!;
      target[d + planeSize] = lut[256 + pixels[s + 1]!]!;
      target[d + 2 * planeSize] = lut[512 + pixels[s + 2]!]!;
    }
  }
  return target.subarray(offset, offset + n);
}

function checkDecoded(info: OutputInfo, w: number, h: number, bands: number, label: string): void {
  if (info.channels !== bands || info.width !== w || info.height !== h) {
    throw new RowError('image_corrupt',
      `corrupt image: ${label} (decoded ${info.width}x${info.height}x${info.channels}, expected ${w}x${h}x${bands})`);
  }
}

/**
 * Full-size 8-bit RGB as PIL's `convert('RGB')` sees it after our loader: alpha composited onto white with
 * PIL's alpha_composite arithmetic, CMYK converted with PIL's formula (no ICC: that is what the reference
 * pipeline does, and an ICC conversion differed from it by 10 grey levels on average on the golden CMYK JPEG).
 */
async function decodeRgb(image: Sharp, cmyk: boolean, w: number, h: number, label: string): Promise<Uint8Array> {
  if (cmyk) {
    const { data, info } = await image.pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    checkDecoded(info, w, h, 4, label);
    return cmykToRgb(data);
  }
  const { data, info } = await image.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels === 4) {
    checkDecoded(info, w, h, 4, label);
    return compositeOnWhite(data);
  }
  checkDecoded(info, w, h, 3, label);
  return data;
}

/** PIL's cmyk2rgb (Convert.c): channel = (255 - k) - c * (255 - k) / 255, with its MULDIV255 rounding. */
function cmykToRgb(src: Uint8Array): Uint8Array {
  const n = src.length >> 2;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - src[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = src[i * 4 + c]! * nk + 128;
      out[i * 3 + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}

/** PIL's Image.alpha_composite(white, im) (AlphaComposite.c, 7 extra bits), then dropping alpha. */
function compositeOnWhite(src: Uint8Array): Uint8Array {
  const n = src.length >> 2;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = src[i * 4 + 3]!;
    if (a === 0) {
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = 255;
      continue;
    }
    // Onto opaque white: outa255 = 255 * 255, so coef1 = a * 255 * 128 / 255 exactly.
    const coef1 = Math.floor((a * 255 * 255 * 128) / (255 * 255));
    const coef2 = 255 * 128 - coef1;
    for (let c = 0; c < 3; c++) {
      const t = src[i * 4 + c]! * coef1 + 255 * coef2 + (0x80 << 7);
      out[i * 3 + c] = (((t >> 8) + t) >> 8) >> 7;
    }
  }
  return out;
}

function copyWindow(src: Uint8Array, srcW: number, left: number, top: number, cw: number, ch: number): Uint8Array {
  const out = new Uint8Array(cw * ch * 3);
  for (let row = 0; row < ch; row++) {
    const s = ((top + row) * srcW + left) * 3;
    out.set(src.subarray(s, s + cw * 3), row * cw * 3);
  }
  return out;
}
