// Image references from CSV cells: resolve a cell to a local file or an http(s) URL, and load its bytes
// with size caps, timeouts and retries, failing per row with RowError codes.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RowError } from '../errors.js';

export type ImageRef = { kind: 'file'; path: string } | { kind: 'url'; url: string };

export interface FetchOptions {
  /** Per attempt, headers and body together. */
  timeoutMs?: number;
  /** Largest accepted image, for files and downloads alike. */
  maxBytes?: number;
  /** Extra attempts after the first, for timeouts, network errors, 408, 429 and 5xx. */
  retries?: number;
  /** First retry delay; doubles per retry, with +-50% jitter. */
  backoffMs?: number;
  /** Cancels everything; the rejection is the signal's reason, not a RowError. */
  signal?: AbortSignal;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
export const DEFAULT_RETRIES = 2;
export const DEFAULT_BACKOFF_MS = 250;
/** A server's Retry-After is honoured up to this; beyond it the row is better failed than stalled. */
const MAX_RETRY_AFTER_MS = 5_000;

/** Turns a CSV cell into a file path (relative ones against baseDir) or an http(s) URL. */
export function resolveImageRef(cell: string, opts: { baseDir: string }): ImageRef {
  const ref = cell.trim();
  if (ref === '') throw new RowError('image_ref_empty', 'empty image reference');
  // A scheme is 2+ letters, so Windows drive letters ("C:\...") stay paths.
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]+):/.exec(ref)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    try {
      return { kind: 'url', url: new URL(ref).href };
    } catch {
      throw new RowError('image_ref_invalid', `invalid image URL: ${clip(ref)}`);
    }
  }
  if (scheme === 'file') {
    try {
      return { kind: 'file', path: fileURLToPath(ref) };
    } catch {
      throw new RowError('image_ref_invalid', `invalid file URL: ${clip(ref)}`);
    }
  }
  if (scheme !== undefined) throw new RowError('image_ref_unsupported', `unsupported image reference scheme '${scheme}:' in ${clip(ref)}`);
  return { kind: 'file', path: path.resolve(opts.baseDir, ref) };
}

/** Reads a local image, refusing files over maxBytes before reading them. */
export async function readImageFile(file: string, maxBytes: number = DEFAULT_MAX_BYTES): Promise<Buffer> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw fileError(err, file);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new RowError('image_not_found', `image not found: ${file} is a directory`);
    if (stat.size > maxBytes) {
      throw new RowError('image_too_large', `image too large: ${file} is ${stat.size} bytes, over the ${maxBytes}-byte limit`);
    }
    const bytes = await handle.readFile();
    // The file may have grown since stat.
    if (bytes.length > maxBytes) {
      throw new RowError('image_too_large', `image too large: ${file} is ${bytes.length} bytes, over the ${maxBytes}-byte limit`);
    }
    return bytes;
  } catch (err) {
    throw err instanceof RowError ? err : fileError(err, file);
  } finally {
    await handle.close();
  }
}

function fileError(err: unknown, file: string): RowError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new RowError('image_not_found', `image not found: ${file}`, { cause: err });
  if (code === 'EISDIR') return new RowError('image_not_found', `image not found: ${file} is a directory`, { cause: err });
  return new RowError('image_not_found', `image not readable: ${file} (${code ?? String(err)})`, { cause: err });
}

/** Why one attempt failed, and whether another may succeed. */
class AttemptError extends Error {
  constructor(readonly rowError: RowError, readonly retryable: boolean, readonly retryAfterMs = 0) {
    super(rowError.message);
  }
}

/**
 * Downloads an image with Node's fetch: a timeout per attempt, the size cap enforced from Content-Length
 * and again while streaming, 4xx failing at once (except 408 and 429), 5xx / timeouts / network errors
 * retried with exponential backoff and jitter. Failures are RowErrors: image_too_large, url_http_<status>,
 * url_timeout, url_error.
 */
export async function fetchImage(url: string, opts: FetchOptions = {}): Promise<Buffer> {
  return (await fetchImageWithValidator(url, opts)).bytes;
}

/** fetchImage, plus the response's validator (see contentValidator): what the embedding cache keys a download by. */
export async function fetchImageWithValidator(url: string, opts: FetchOptions = {}): Promise<{ bytes: Buffer; validator: string | null }> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const backoffMs = opts.backoffMs ?? DEFAULT_BACKOFF_MS;
  const shown = clip(redact(url));
  for (let attempt = 0; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await fetchOnce(url, shown, timeoutMs, maxBytes, opts.signal);
    } catch (err) {
      if (!(err instanceof AttemptError)) throw err;
      if (!err.retryable || attempt >= retries) throw err.rowError;
      const backoff = backoffMs * 2 ** attempt * (0.5 + Math.random());
      await sleep(Math.max(backoff, Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS)), opts.signal);
    }
  }
}

async function fetchOnce(url: string, shown: string, timeoutMs: number, maxBytes: number, outer?: AbortSignal): Promise<{ bytes: Buffer; validator: string | null }> {
  // Our own controller: one signal covers headers and body, and we can tell a timeout from the caller's abort.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('timeout'));
  }, timeoutMs);
  const onOuterAbort = (): void => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  const failure = (err: unknown): unknown => {
    if (outer?.aborted) return outer.reason;
    if (timedOut) return new AttemptError(new RowError('url_timeout', `image URL timed out after ${timeoutMs} ms: ${shown}`), true);
    if (err instanceof AttemptError) return err;
    const code = networkCode(err);
    // A name that does not resolve will not resolve 250 ms later either.
    return new AttemptError(new RowError('url_error', `image URL failed: ${shown} (${code})`, { cause: err }), code !== 'ENOTFOUND');
  };
  try {
    const res = await fetch(url, { signal: controller.signal, redirect: 'follow', headers: { accept: 'image/*,*/*;q=0.5' } });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const status = res.status;
      const retryable = status === 408 || status === 429 || status >= 500;
      throw new AttemptError(
        new RowError(`url_http_${status}`, `image URL returned HTTP ${status}: ${shown}`),
        retryable,
        retryAfterMs(res.headers.get('retry-after')),
      );
    }
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      controller.abort(new Error('too large'));
      throw new AttemptError(tooLarge(shown, `${declared} bytes declared`, maxBytes), false);
    }
    return { bytes: await readCapped(res, maxBytes, controller, shown), validator: contentValidator(res.headers) };
  } catch (err) {
    throw failure(err);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * What names a URL's current bytes without downloading them: its ETag (weak ones included: the server vouches
 * that the image is the same), else its Last-Modified date; null when the server sends neither.
 */
export function contentValidator(headers: Headers): string | null {
  const etag = headers.get('etag');
  if (etag) return `etag:${etag}`;
  const modified = headers.get('last-modified');
  return modified ? `last-modified:${modified}` : null;
}

/**
 * One HEAD request for the URL's validator, so that a cached embedding can be used without downloading the image.
 * Null when the server gives none, answers anything but 2xx, fails or times out (no retries: the caller then
 * downloads, and the download retries), or declares more than maxBytes (the download then fails as it should).
 */
export async function probeImageUrl(url: string, opts: FetchOptions = {}): Promise<string | null> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const outer = opts.signal;
  outer?.throwIfAborted();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
  const onOuterAbort = (): void => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    const res = await fetch(url, { method: 'HEAD', signal: controller.signal, redirect: 'follow', headers: { accept: 'image/*,*/*;q=0.5' } });
    await res.body?.cancel().catch(() => undefined);
    if (!res.ok) return null;
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) return null;
    return contentValidator(res.headers);
  } catch {
    if (outer?.aborted) throw outer.reason;
    return null;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

async function readCapped(res: Response, maxBytes: number, controller: AbortController, shown: string): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      // Stop the download now rather than after it ends.
      controller.abort(new Error('too large'));
      await reader.cancel().catch(() => undefined);
      throw new AttemptError(tooLarge(shown, `more than ${maxBytes} bytes received`, maxBytes), false);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(shown: string, what: string, maxBytes: number): RowError {
  return new RowError('image_too_large', `image too large: ${shown} (${what}, limit ${maxBytes})`);
}

/** Loads the bytes behind a resolved reference; maxBytes applies to files and downloads alike. */
export async function loadImageBytes(ref: ImageRef, opts: FetchOptions = {}): Promise<Buffer> {
  if (ref.kind === 'file') return readImageFile(ref.path, opts.maxBytes ?? DEFAULT_MAX_BYTES);
  return fetchImage(ref.url, opts);
}

function networkCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    e = e.cause;
  }
  return err instanceof Error ? err.message.replace(/\s+/g, ' ') : String(err);
}

function retryAfterMs(header: string | null): number {
  if (!header) return 0;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const when = Date.parse(header);
  return Number.isNaN(when) ? 0 : Math.max(0, when - Date.now());
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** URLs end up in per-row warnings: never print credentials. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.href;
  } catch {
    return url;
  }
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
}
