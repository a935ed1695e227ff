// Small JPEG thumbnails as data: URIs, so the HTML report shows each example row's photo and stays one file.
// A photo that cannot be read or decoded gives no thumbnail; it never fails the report.
import { loadImageBytes, resolveImageRef, type FetchOptions } from '../io/image-source.js';
import { DEFAULT_MAX_PIXELS, sniffImageFormat } from '../embed/image-preprocess.js';
import { sharpLib } from '../runtime/lazy-module.js';

export interface Thumbnail {
  /** `data:image/jpeg;base64,…`, built from the encoded bytes only. */
  src: string;
  width: number;
  height: number;
}

export interface ThumbnailOptions {
  /** Longer side, in pixels. */
  maxSide?: number;
  quality?: number;
  /** Decompression-bomb guard, as for embedding (--max-image-pixels). */
  maxPixels?: number;
}

export const THUMBNAIL_SIDE = 96;

/** The thumbnail of an image's bytes; null when they are not a raster image sharp can decode. */
export async function thumbnailFromBytes(bytes: Buffer, opts: ThumbnailOptions = {}): Promise<Thumbnail | null> {
  const side = opts.maxSide ?? THUMBNAIL_SIDE;
  // Only the raster formats run accepts: libvips would also render SVG or PDF, which have no place in a report.
  if (!sniffImageFormat(bytes)) return null;
  try {
    // Resizing straight from the buffer lets libvips shrink JPEGs on load: a 22 MP photo is never decoded in full.
    const { data, info } = await sharpLib()(bytes, { autoOrient: true, pages: 1, failOn: 'none', limitInputPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS })
      .resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: opts.quality ?? 70 })
      .toBuffer({ resolveWithObject: true });
    return { src: `data:image/jpeg;base64,${data.toString('base64')}`, width: info.width, height: info.height };
  } catch {
    return null;
  }
}

/**
 * The thumbnail of a catalog row's image cell, resolved as the catalog reader resolves it (relative paths against
 * `baseDir`, http(s) URLs fetched with `fetch`'s limits); null for an empty cell or any failure.
 */
export async function thumbnailForCell(cell: string, opts: ThumbnailOptions & { baseDir: string; fetch?: FetchOptions }): Promise<Thumbnail | null> {
  if (cell.trim() === '') return null;
  try {
    const bytes = await loadImageBytes(resolveImageRef(cell, { baseDir: opts.baseDir }), opts.fetch);
    return await thumbnailFromBytes(bytes, opts);
  } catch (err) {
    // A caller's abort is not a row's problem to swallow.
    if (opts.fetch?.signal?.aborted) throw err;
    return null;
  }
}
