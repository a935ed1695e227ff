// Per-row feature extraction: text and image embeddings via micro-batched encoders (looked up in the embedding
// cache first, when one is given), missing modalities imputed.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import type { CatalogRow } from '../io/catalog-reader.js';
import type { FeatureBlock, ModelBundle } from '../models/bundle.js';
import { MicroBatcher } from './micro-batcher.js';
import { resolveImageRef, loadImageBytes, readImageFile, fetchImageWithValidator, probeImageUrl, DEFAULT_MAX_BYTES, type FetchOptions } from '../io/image-source.js';
import type { EmbedCache, EmbedCacheStats } from './embed-cache.js';
import { inThreadDecoder, type ImageDecoder } from '../runtime/image-decoder.js';
import { oneLine, RowError } from '../errors.js';
import { tfidfBlockDim, tfidfBlockRow, type SparseRow, type TfidfBlockModel } from '../head/tfidf.js';
import type { HeadRow } from '../head/scoring.js';

export interface TextEmbedder {
  readonly dim: number;
  /** Calls it runs at once (model copies); one more is kept queued so no copy waits between batches. */
  readonly size?: number;
  embedTexts(texts: string[]): Promise<Float32Array>;
}
export interface ImageEmbedder {
  readonly dim: number;
  /** Calls it runs at once (model copies); one more is kept queued so no copy waits between batches. */
  readonly size?: number;
  /** `pixels` may be transferred away; callers pass a buffer they no longer need. */
  embedPixels(pixels: Float32Array, count: number): Promise<Float32Array>;
  /**
   * One image per tensor, all the same size, batched where the model runs (a worker thread), so that this thread
   * copies no pixels; the tensors may be transferred away. Without it the batch is put together here.
   */
  embedTensors?(tensors: Float32Array[]): Promise<Float32Array>;
}

export interface FeatureOptions {
  batchSize: number;
  maxWaitMs: number;
  /** Image reads, fetches and decodes at once. */
  concurrency: number;
  /** Relative image paths resolve here (--image-root, else the CSV's folder). */
  imageRoot: string;
  fetch: FetchOptions;
  /** Largest decoded image, in pixels (decompression-bomb guard). */
  maxPixels: number;
  /** What a row whose image fails becomes when its text is present. */
  onImageError: 'impute' | 'error';
  /**
   * Embedding cache (--cache): vectors are looked up before any encoder call (and, for images, before decoding)
   * and stored after. A kind is cached only when its model identity is given (OpenEncoders.identity), since the
   * identity is what keeps one model's vectors from being served for another.
   */
  cache?: EmbedCache;
  identity?: { text?: string; image?: string };
  /** Where images are decoded (OpenEncoders.decoder: worker threads); default this thread. */
  decoder?: ImageDecoder;
}

export interface RowFeatures {
  /**
   * Embeddings per block kind; a missing modality has none. The extractor puts the TF-IDF block in `tfidf`, sparse;
   * a caller that builds the dense block itself (tfidfDense) may put it here under 'tfidf'.
   */
  vectors: Partial<Record<FeatureBlock['kind'], Float32Array>>;
  /** The TF-IDF block of the row's text, sparse (block-relative columns), when the layout has one and the text is not empty. */
  tfidf?: SparseRow;
  /** False when the row failed (see error). */
  ok: boolean;
  /** title + " " + description, for tags. */
  text: string;
  warnings: string[];
  error: string | null;
}

type Outcome = { ok: true; vector: Float32Array } | { ok: false; code: string; message: string } | { ok: false; missing: true };
/** An image ready for the encoder (and the cache key its vector goes under), or its vector from the cache. */
type ImageInput = { cached: Float32Array } | { pixels: Float32Array; key: string };

/** Joins title and description as the original service did. */
export function rowText(row: CatalogRow): string {
  return `${row.title} ${row.description}`.trim();
}

export class FeatureExtractor {
  private readonly textBlock: FeatureBlock | undefined;
  private readonly imageBlock: FeatureBlock | undefined;
  private readonly textBatcher: MicroBatcher<string, Float32Array> | undefined;
  private readonly imageBatcher: MicroBatcher<Float32Array, Float32Array> | undefined;
  private readonly io: LimitFunction;

  private readonly tfidfBlock: FeatureBlock | undefined;
  /** Cache namespaces (kind + model identity); undefined = that kind is not cached. */
  private readonly textNamespace: string | undefined;
  private readonly imageNamespace: string | undefined;
  private readonly textDim: number | undefined;
  private readonly imageDim: number | undefined;

  constructor(
    layout: readonly FeatureBlock[],
    text: TextEmbedder | undefined,
    image: ImageEmbedder | undefined,
    private readonly opts: FeatureOptions,
    /** Fills the tfidf block; without it (training, before the vectorizer is fitted) text only counts as present. */
    private readonly tfidf: TfidfBlockModel | null = null,
  ) {
    this.textBlock = layout.find((b) => b.kind === 'text');
    this.imageBlock = layout.find((b) => b.kind === 'image');
    this.tfidfBlock = layout.find((b) => b.kind === 'tfidf');
    if (this.textBlock && !text) throw new Error('bundle needs a text encoder');
    if (this.imageBlock && !image) throw new Error('bundle needs an image encoder');
    const batchOpts = (size = 1) => ({ maxBatch: opts.batchSize, maxWaitMs: opts.maxWaitMs, maxInFlight: size + 1 });
    if (text) {
      this.textBatcher = new MicroBatcher(async (texts: string[]) => split(await text.embedTexts(texts), texts.length, text.dim), batchOpts(text.size));
    }
    if (image) {
      this.imageBatcher = new MicroBatcher(async (tensors: Float32Array[]) => {
        if (image.embedTensors) {
          // Each tensor is transferred whole: one that is a view into a larger buffer goes as a copy.
          const own = tensors.map((t) => (t.byteOffset === 0 && t.byteLength === t.buffer.byteLength ? t : t.slice()));
          return split(await image.embedTensors(own), tensors.length, image.dim);
        }
        const per = tensors[0].length;
        const batch = new Float32Array(per * tensors.length);
        tensors.forEach((t, i) => batch.set(t, i * per));
        return split(await image.embedPixels(batch, tensors.length), tensors.length, image.dim);
      }, batchOpts(image.size));
    }
    this.io = pLimit(opts.concurrency);
    this.textDim = text?.dim;
    this.imageDim = image?.dim;
    if (opts.cache && opts.identity?.text) this.textNamespace = `text\n${opts.identity.text}`;
    if (opts.cache && opts.identity?.image) this.imageNamespace = `image\n${opts.identity.image}`;
  }

  /** The cache's counters (lookups, hits, writes...), or undefined without a cache. */
  get cacheStats(): EmbedCacheStats | undefined {
    return this.opts.cache?.stats;
  }

  /** Batch sizes sent to each encoder so far. */
  get batchSizes(): { text: number[]; image: number[] } {
    return { text: this.textBatcher?.batchSizes ?? [], image: this.imageBatcher?.batchSizes ?? [] };
  }

  /** Sends partial batches now (end of input). */
  flush(): void {
    this.textBatcher?.flush();
    this.imageBatcher?.flush();
  }

  async extract(row: CatalogRow): Promise<RowFeatures> {
    const text = rowText(row);
    if (row.error) return { vectors: {}, ok: false, text, warnings: [], error: row.error };
    const [t, i] = await Promise.all([this.embedText(text), this.embedImage(row.image, row.imageBytes)]);
    const warnings: string[] = [];
    const errors: string[] = [];
    const usesText = this.textBlock !== undefined || this.tfidfBlock !== undefined;
    if (usesText && text === '') warnings.push('text_missing');
    else if (this.textBlock && !t.ok && !('missing' in t)) errors.push(`${t.code}: ${t.message}`);
    if (this.imageBlock && !i.ok) {
      if ('missing' in i) warnings.push('image_missing');
      else if (this.opts.onImageError === 'error') errors.push(`${i.code}: ${i.message}`);
      else warnings.push(`${i.code}: ${i.message}`);
    }
    const present = [this.textBlock && t.ok, this.tfidfBlock && text !== '', this.imageBlock && i.ok].some(Boolean);
    if (errors.length > 0 || !present) {
      const why = errors.length > 0 ? errors.join('; ') : noInputReason(usesText, this.imageBlock !== undefined, i);
      return { vectors: {}, ok: false, text, warnings: [], error: why };
    }
    const vectors: RowFeatures['vectors'] = {};
    if (t.ok) vectors.text = t.vector;
    if (i.ok) vectors.image = i.vector;
    // Kept sparse: ~100 non-zeros of a 100k-wide block. Only an ONNX head densifies it (assembleFeatures).
    const tfidf = this.tfidfBlock && text !== '' && this.tfidf ? tfidfBlockRow(this.tfidf, text) : undefined;
    return { vectors, ...(tfidf ? { tfidf } : {}), ok: true, text, warnings, error: null };
  }

  private async embedText(text: string): Promise<Outcome> {
    if (!this.textBatcher) return { ok: false, missing: true };
    if (text === '') return { ok: false, missing: true };
    const cache = this.opts.cache;
    const ns = this.textNamespace;
    if (cache && ns) {
      const cached = cache.get(ns, text, this.textDim);
      if (cached) return { ok: true, vector: cached };
    }
    try {
      const vector = await this.textBatcher.submit(text);
      if (cache && ns) cache.put(ns, text, vector);
      return { ok: true, vector };
    } catch (err) {
      return { ok: false, code: 'text_embedding_failed', message: oneLine(err) };
    }
  }

  /** `given`: the image's bytes when they arrived as such (an upload); then `cell` is not read. */
  private async embedImage(cell: string, given?: Buffer): Promise<Outcome> {
    if (!this.imageBatcher || !this.imageBlock) return { ok: false, missing: true };
    if (cell === '' && !given) return { ok: false, missing: true };
    const spec = (this.imageBlock as Extract<FeatureBlock, { kind: 'image' }>).preprocess;
    // Errors name the image as the row gave it (path or URL), not the buffer it was read into.
    const name = given ? 'the uploaded file' : cell;
    const decoder = this.opts.decoder ?? inThreadDecoder;
    const decodeOpts = { maxPixels: this.opts.maxPixels, name };
    const decode = (bytes: Buffer): Promise<Float32Array> => decoder.decode(bytes, spec, decodeOpts);
    const cache = this.opts.cache;
    const ns = this.imageNamespace;
    if (!cache || !ns) {
      let pixels: Float32Array;
      try {
        pixels = await this.io(async () => {
          if (given) return decode(given);
          const ref = resolveImageRef(cell, { baseDir: this.opts.imageRoot });
          // A file is read where it is decoded; without a cache nothing here needs its bytes.
          if (ref.kind === 'file') return decoder.decodeFile(ref.path, this.opts.fetch.maxBytes ?? DEFAULT_MAX_BYTES, spec, decodeOpts);
          return decode(await loadImageBytes(ref, this.opts.fetch));
        });
      } catch (err) {
        return { ok: false, code: err instanceof RowError ? err.code : 'image_error', message: oneLine(err) };
      }
      try {
        return { ok: true, vector: await this.imageBatcher.submit(pixels) };
      } catch (err) {
        return { ok: false, code: 'image_embedding_failed', message: oneLine(err) };
      }
    }
    let input: ImageInput;
    try {
      input = await this.io(() => (given ? this.imageByContent(given, cache, ns, decode) : this.cachedImageInput(cell, cache, ns, decode)));
    } catch (err) {
      return { ok: false, code: err instanceof RowError ? err.code : 'image_error', message: oneLine(err) };
    }
    if ('cached' in input) return { ok: true, vector: input.cached };
    try {
      const vector = await this.imageBatcher.submit(input.pixels);
      cache.put(ns, input.key, vector);
      return { ok: true, vector };
    } catch (err) {
      return { ok: false, code: 'image_embedding_failed', message: oneLine(err) };
    }
  }

  /**
   * A cache lookup before any decoding. A file is keyed by its bytes' sha256 (read once, decoded from the same
   * buffer on a miss). A URL is keyed by url + its ETag or Last-Modified from a HEAD request, so that a hit costs
   * no download; a server that sends neither gets the file downloaded and keyed by its bytes.
   */
  private async cachedImageInput(cell: string, cache: EmbedCache, ns: string, decode: (bytes: Buffer) => Promise<Float32Array>): Promise<ImageInput> {
    const ref = resolveImageRef(cell, { baseDir: this.opts.imageRoot });
    let bytes: Buffer;
    if (ref.kind === 'url') {
      const probed = await probeImageUrl(ref.url, this.opts.fetch);
      if (probed) {
        const cached = cache.get(ns, urlKey(ref.url, probed), this.imageDim);
        if (cached) return { cached };
      }
      const got = await fetchImageWithValidator(ref.url, this.opts.fetch);
      // The download's own validator names the bytes actually embedded (the image may have changed since the HEAD).
      const validator = got.validator ?? probed;
      if (validator) return { pixels: await decode(got.bytes), key: urlKey(ref.url, validator) };
      bytes = got.bytes;
    } else {
      // A file unchanged since it was last hashed (same stat stamp) is looked up without reading it.
      const maxBytes = this.opts.fetch.maxBytes ?? DEFAULT_MAX_BYTES;
      const st = await statStamp(ref.path);
      // Over the size limit: read it anyway, so the row gets readImageFile's image_too_large like any other.
      const stamp = st && st.size <= maxBytes ? st.stamp : undefined;
      const known = stamp ? cache.fileDigest(ref.path, stamp) : undefined;
      if (known) {
        const cached = cache.get(ns, `sha256:${known}`, this.imageDim);
        if (cached) return { cached };
      }
      bytes = await readImageFile(ref.path, maxBytes);
      const digest = crypto.createHash('sha256').update(bytes).digest('hex');
      if (stamp && digest !== known) cache.rememberFileDigest(ref.path, stamp, digest);
      const key = `sha256:${digest}`;
      const cached = cache.get(ns, key, this.imageDim);
      if (cached) return { cached };
      return { pixels: await decode(bytes), key };
    }
    return this.imageByContent(bytes, cache, ns, decode);
  }

  /** Bytes in hand (an upload, or a download without a validator): keyed by their sha256, as a file's are. */
  private async imageByContent(bytes: Buffer, cache: EmbedCache, ns: string, decode: (bytes: Buffer) => Promise<Float32Array>): Promise<ImageInput> {
    const key = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
    const cached = cache.get(ns, key, this.imageDim);
    if (cached) return { cached };
    return { pixels: await decode(bytes), key };
  }
}

/** Device, inode, size, mtime and ctime in nanoseconds; undefined when the file cannot be stat'ed (then it is read). */
async function statStamp(file: string): Promise<{ stamp: string; size: number } | undefined> {
  try {
    const st = await fsp.stat(file, { bigint: true });
    return st.isFile() ? { stamp: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, size: Number(st.size) } : undefined;
  } catch {
    return undefined;
  }
}

function urlKey(url: string, validator: string): string {
  return `url:${url}\n${validator}`;
}

/**
 * The dense classifier input an ONNX head takes: blocks laid out as the bundle says, a missing modality replaced
 * by its training mean, the TF-IDF block scattered from its sparse row.
 */
export function assembleFeatures(f: RowFeatures, layout: FeatureLayout): Float32Array {
  const x = new Float32Array(layout.width);
  for (const block of layout.blocks) {
    if (block.kind === 'tfidf' && f.tfidf) {
      const { indices, values } = f.tfidf;
      for (let k = 0; k < indices.length; k++) x[block.offset + indices[k]!] = values[k]!;
      continue;
    }
    // No text means an empty document, whose TF-IDF vector is zero; encoder blocks get their training mean.
    const v = f.vectors[block.kind] ?? layout.means.get(block.kind);
    if (v) x.set(v, block.offset);
  }
  return x;
}

/**
 * What a linear head reads of a row: the vectors of its dense blocks in layout order (a missing modality: its
 * training mean) and the TF-IDF row, sparse (null without text: an all-zero block).
 */
export function linearHeadRow(f: RowFeatures, kinds: readonly FeatureBlock['kind'][], means: ReadonlyMap<FeatureBlock['kind'], Float32Array>): HeadRow {
  const dense: Float32Array[] = [];
  let sparse: SparseRow | null = null;
  for (const kind of kinds) {
    if (kind === 'tfidf') {
      sparse = f.tfidf ?? (f.vectors.tfidf ? sparseOf(f.vectors.tfidf) : null);
      continue;
    }
    const v = f.vectors[kind] ?? means.get(kind);
    if (!v) throw new Error(`no ${kind} vector and no training mean to impute it with`);
    dense.push(v);
  }
  return { dense, sparse };
}

function sparseOf(v: Float32Array): SparseRow {
  const at: number[] = [];
  for (let j = 0; j < v.length; j++) if (v[j] !== 0) at.push(j);
  return { indices: Int32Array.from(at), values: Float64Array.from(at, (j) => v[j]!) };
}

/** The tfidf block of a text, dense (what an ONNX head's input holds). */
export function tfidfDense(model: TfidfBlockModel, text: string): Float32Array {
  const v = new Float32Array(tfidfBlockDim(model));
  const row = tfidfBlockRow(model, text);
  for (let k = 0; k < row.indices.length; k++) v[row.indices[k]] = row.values[k];
  return v;
}

/** The classifier input's blocks, width and imputation means (a bundle's, or a training run's). */
export interface FeatureLayout {
  blocks: readonly FeatureBlock[];
  width: number;
  means: ReadonlyMap<FeatureBlock['kind'], Float32Array>;
}

export function bundleLayout(bundle: ModelBundle): FeatureLayout {
  return { blocks: bundle.manifest.features, width: bundle.width, means: bundle.means };
}

function noInputReason(usesText: boolean, usesImage: boolean, image: Outcome): string {
  if (usesText && usesImage) {
    return image.ok || 'missing' in image ? 'no_input: no text and no image' : `${image.code}: ${image.message} (and no text)`;
  }
  if (usesText) return 'text_missing: title and description are empty';
  return image.ok || 'missing' in image ? 'image_missing: no image' : `${image.code}: ${image.message}`;
}

function split(vectors: Float32Array, n: number, dim: number): Float32Array[] {
  if (vectors.length !== n * dim) throw new Error(`encoder returned ${vectors.length} values for ${n}×${dim}`);
  return Array.from({ length: n }, (_, i) => vectors.slice(i * dim, (i + 1) * dim));
}
