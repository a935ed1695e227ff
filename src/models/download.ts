// Downloads single files from a Hugging Face-style hub (HF_ENDPOINT): resumable, verified by size and sha256,
// renamed into place atomically, and safe when several processes pull the same file at the same time.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import type { EnvHttpProxyAgent, Response } from 'undici';
import { lazyModule } from '../runtime/lazy-module.js';
import { CategorizeError, ExitCode } from '../errors.js';

const undici = lazyModule<typeof import('undici')>('undici');

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Proxy settings; each one left undefined falls back to the usual variable (HTTP_PROXY, HTTPS_PROXY, NO_PROXY). */
export interface ProxyOptions {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

export interface HubOptions {
  /** Hub base URL, e.g. DEFAULT_ENDPOINT or HF_ENDPOINT (the caller reads the environment, not this module). */
  endpoint: string;
  /** HF_TOKEN: sent as `Authorization: Bearer …` to the endpoint's own origin only, never to a CDN it redirects to. */
  token?: string;
  /** Idle timeout: waiting for response headers, and silence between two body chunks. */
  timeoutMs: number;
  /** Extra attempts after the first on 5xx, 429, network errors, timeouts and cut connections. */
  retries: number;
  /** Base of the exponential backoff between attempts (default 500 ms). */
  backoffMs?: number;
  userAgent?: string;
  /** HF_HUB_OFFLINE: serve complete local files only and never touch the network. */
  offline?: boolean;
  /** Explicit proxy settings; by default undici's EnvHttpProxyAgent reads the proxy variables itself. */
  proxy?: ProxyOptions;
}

export type DownloadErrorCode =
  | 'not_found'
  | 'unauthorized'
  | 'http_error'
  | 'network'
  | 'timeout'
  | 'hash_mismatch'
  | 'size_mismatch'
  | 'offline'
  | 'locked';

/** A failed hub request or download; exit code 1. `retryable` is what the retry loop looks at. */
export class DownloadError extends CategorizeError {
  declare readonly code: DownloadErrorCode;
  readonly url: string | undefined;
  readonly status: number | undefined;
  readonly retryable: boolean;
  /** Delay the server asked for (Retry-After), when it is short enough to honour. */
  readonly retryAfterMs: number | undefined;
  /** Attempts made before giving up (set on the error that leaves the retry loop). */
  attempts = 1;

  constructor(
    code: DownloadErrorCode,
    message: string,
    details: { url?: string; status?: number; retryable?: boolean; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(code, message, ExitCode.runtime, details.cause === undefined ? undefined : { cause: details.cause });
    this.url = details.url;
    this.status = details.status;
    this.retryable = details.retryable ?? false;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** `${endpoint}/${repo}/resolve/${revision}/${file}`, the hub's download URL for one file at one revision. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, filePath: string): string {
  const base = endpoint.replace(/\/+$/, '');
  const encodePath = (p: string): string => p.split('/').filter(Boolean).map(encodeURIComponent).join('/');
  // The revision is one segment even when it is a branch like "refs/pr/1", as the hub expects.
  return `${base}/${encodePath(repo)}/resolve/${encodeURIComponent(revision)}/${encodePath(filePath)}`;
}

export interface RemoteFileInfo {
  /** The URL asked about (the resolve URL; a CDN URL it redirects to is signed and short-lived, so not kept). */
  url: string;
  /** X-Repo-Commit: the commit the revision resolved to. */
  commit?: string;
  /** sha256 of the content, known for LFS files (their etag is the sha256). */
  sha256?: string;
  size?: number;
  /** X-Linked-Etag for LFS files, else ETag, without quotes. */
  etag?: string;
}

export interface DownloadRequest {
  url: string;
  dest: string;
  /** Expected sha256 (hex). Without it, the hub's X-Linked-Etag is checked when the hub sends one. */
  sha256?: string;
  size?: number;
  /** Throttled; `received` counts bytes resumed from an earlier partial download too. */
  onProgress?: (received: number, total: number | undefined) => void;
}

export interface DownloadResult {
  dest: string;
  sha256: string;
  size: number;
  /** The file was already complete; no request was made. */
  cached: boolean;
  /** What the sha256 was checked against: the caller's, the hub's LFS hash (X-Linked-Etag), or nothing. */
  verifiedAgainst: 'expected' | 'hub' | 'none';
  /** Bytes reused from a `.part` file left by an earlier, interrupted run (0 for a fresh download). */
  resumedFrom: number;
  /** GET attempts made (0 when cached). */
  attempts: number;
}

const MAX_REDIRECTS = 5;
const MAX_RETRY_AFTER_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;
const PROGRESS_INTERVAL_MS = 100;
const HEX64 = /^[0-9a-f]{64}$/;

// The lock is refreshed every stale/2 while held, so a lock older than `stale` belongs to a dead process.
const LOCK_STALE_MS = 30_000;
// About 10 minutes of waiting for another process: long enough for it to pull a large model on a slow line.
const LOCK_RETRIES = { retries: 600, factor: 1.5, minTimeout: 100, maxTimeout: 1_000 };

/** What the hub says about a file (commit, sha256, size), from a HEAD request, without downloading it. */
export async function fetchFileInfo(url: string, opts: HubOptions): Promise<RemoteFileInfo> {
  if (opts.offline) throw offlineError(`cannot look up ${url}: offline mode (HF_HUB_OFFLINE) is on`, url);
  const client = new HubClient(url, opts);
  try {
    return await withRetries(opts, async () => {
      // LFS files answer the resolve URL with a 302 that already carries commit, sha256 and size;
      // follow it (without the token) only when the size is still unknown.
      const { res, hub } = await client.request(url, 'HEAD', {}, (_r, h) => h.size === undefined);
      await discard(res);
      if (res.status !== 200 && !isRedirect(res.status)) throw client.statusError(res);
      const etag = hub.linkedEtag ?? unquote(res.headers.get('etag'));
      const size = hub.size ?? toSize(res.headers.get('content-length'));
      const info: RemoteFileInfo = { url };
      if (hub.commit !== undefined) info.commit = hub.commit;
      if (etag !== undefined) info.etag = etag;
      if (etag !== undefined && HEX64.test(etag)) info.sha256 = etag;
      if (size !== undefined) info.size = size;
      return info;
    });
  } finally {
    await client.close();
  }
}

/** Download `req.url` to `req.dest`, or return at once when `req.dest` is already complete. */
export async function downloadFile(req: DownloadRequest, opts: HubOptions): Promise<DownloadResult> {
  const expectedSha = req.sha256?.toLowerCase();
  if (opts.offline) {
    // Complete files are only ever renamed into place, so no lock is needed to read one.
    const cached = await verifiedLocal(req.dest, expectedSha, req.size);
    if (cached) return cached;
    throw offlineError(
      `${req.dest} is missing or incomplete and offline mode (HF_HUB_OFFLINE) is on; pull it once with network access`,
      req.url,
    );
  }
  await fsp.mkdir(path.dirname(req.dest), { recursive: true });
  const lock = await acquireLock(req.dest);
  try {
    const cached = await verifiedLocal(req.dest, expectedSha, req.size);
    if (cached) return cached;
    await fsp.rm(req.dest, { force: true });
    return await fetchToDest(req, expectedSha, opts, lock);
  } finally {
    await lock.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The transfer

interface Transfer {
  /** Bytes in the .part file, all of them already fed to `hash`. */
  offset: number;
  hash: Hash;
  attempts: number;
  /** The size the server announced for the whole file (Content-Range total, or Content-Length + offset). */
  serverTotal: number | undefined;
  /** X-Linked-Etag when it is a sha256: the hub's own statement of the content's hash. */
  hubSha: string | undefined;
  lastProgress: number;
}

async function fetchToDest(req: DownloadRequest, expectedSha: string | undefined, opts: HubOptions, lock: Lock): Promise<DownloadResult> {
  const part = `${req.dest}.part`;
  const client = new HubClient(req.url, opts);
  const t: Transfer = { offset: 0, hash: createHash('sha256'), attempts: 0, serverTotal: undefined, hubSha: undefined, lastProgress: 0 };
  try {
    const resumedFrom = await resumePart(part, req.size, t);
    try {
      await transferWithRetries(req, part, client, opts, t);
      return await finish(req, part, expectedSha, t, resumedFrom, lock);
    } catch (err) {
      // A leftover .part may come from another revision of the file: its bytes are then garbage that only the
      // hash check reveals. Pay for one fresh download rather than failing on someone else's leftovers.
      if (resumedFrom === 0 || !(err instanceof DownloadError) || err.code !== 'hash_mismatch') throw err;
      resetTransfer(t);
      await transferWithRetries(req, part, client, opts, t);
      return await finish(req, part, expectedSha, t, 0, lock);
    }
  } finally {
    await client.close();
  }
}

/** Reuse the bytes of an interrupted download: hash them once so the hash can continue where they end. */
async function resumePart(part: string, size: number | undefined, t: Transfer): Promise<number> {
  const have = await fileSize(part);
  if (have === undefined || have === 0) return 0;
  if (size !== undefined && have > size) {
    await fsp.rm(part, { force: true });
    return 0;
  }
  await hashInto(part, t.hash);
  t.offset = have;
  return have;
}

function resetTransfer(t: Transfer): void {
  t.offset = 0;
  t.hash = createHash('sha256');
  t.serverTotal = undefined;
}

async function transferWithRetries(req: DownloadRequest, part: string, client: HubClient, opts: HubOptions, t: Transfer): Promise<void> {
  await withRetries(opts, async () => {
    t.attempts += 1;
    await transferOnce(req, part, client, t);
  });
}

/** One GET from `t.offset` to the end; on a cut connection the bytes received so far stay written and hashed. */
async function transferOnce(req: DownloadRequest, part: string, client: HubClient, t: Transfer): Promise<void> {
  for (;;) {
    const headers: Record<string, string> = t.offset > 0 ? { range: `bytes=${t.offset}-` } : {};
    const { res, hub, hopUrl } = await client.request(req.url, 'GET', headers);
    if (hub.linkedEtag !== undefined && HEX64.test(hub.linkedEtag)) t.hubSha = hub.linkedEtag;
    const range = parseContentRange(res.headers.get('content-range'));

    if (res.status === 416 && t.offset > 0) {
      await discard(res);
      const total = req.size ?? range?.total ?? hub.size;
      if (total === t.offset) {
        // The previous run had received everything but died before the rename.
        t.serverTotal = total;
        return;
      }
      await restartPart(part, t);
      continue;
    }
    if (res.status === 206 && (range?.start ?? 0) !== t.offset) {
      // Not the range asked for: start over rather than splice mismatched bytes.
      await discard(res);
      await restartPart(part, t);
      continue;
    }
    if (res.status === 200 && t.offset > 0) {
      // The server ignored the Range header and sends everything: start over.
      await restartPart(part, t);
    } else if (res.status !== 200 && res.status !== 206) {
      await discard(res);
      throw client.statusError(res);
    }

    const length = toSize(res.headers.get('content-length'));
    t.serverTotal = range?.total ?? (length === undefined ? hub.size : t.offset + length);
    await writeBody(res, hopUrl, part, client, req, t);
    if (t.serverTotal !== undefined && t.offset < t.serverTotal) {
      // A body that ends cleanly but short (a proxy closing early): resume like any cut connection.
      throw new DownloadError('network', `connection closed after ${t.offset} of ${t.serverTotal} bytes of ${req.url}`, {
        url: req.url,
        retryable: true,
      });
    }
    return;
  }
}

async function restartPart(part: string, t: Transfer): Promise<void> {
  await fsp.rm(part, { force: true });
  resetTransfer(t);
}

/** Append the body to the .part file, hashing as it goes. */
async function writeBody(res: Response, hopUrl: string, part: string, client: HubClient, req: DownloadRequest, t: Transfer): Promise<void> {
  const reader = res.body?.getReader();
  if (!reader) return;
  // Opened at the first byte, so a request that times out before any data leaves no empty .part behind.
  let fh: fsp.FileHandle | undefined;
  let done = false;
  try {
    progress(req, t, true);
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        done = true; // the stream is already errored; nothing to cancel
        throw client.transportError(err, hopUrl);
      }
      if (chunk.done) {
        done = true;
        break;
      }
      fh ??= await fsp.open(part, t.offset > 0 ? 'a' : 'w');
      await writeAll(fh, chunk.value);
      // Only bytes that reached the file count, so a retry resumes exactly after them.
      t.hash.update(chunk.value);
      t.offset += chunk.value.length;
      progress(req, t, false);
    }
    progress(req, t, true);
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    await fh?.close();
  }
}

async function finish(
  req: DownloadRequest,
  part: string,
  expectedSha: string | undefined,
  t: Transfer,
  resumedFrom: number,
  lock: Lock,
): Promise<DownloadResult> {
  const size = t.offset;
  const expectedSize = req.size ?? t.serverTotal;
  if (expectedSize !== undefined && size !== expectedSize) {
    await fsp.rm(part, { force: true });
    throw new DownloadError(
      'size_mismatch',
      `size mismatch for ${displayName(req)}: got ${size} bytes, expected ${expectedSize}; the partial file was deleted`,
      { url: req.url },
    );
  }
  const sha256 = t.hash.digest('hex');
  const wanted = expectedSha ?? t.hubSha;
  if (wanted !== undefined && sha256 !== wanted) {
    await fsp.rm(part, { force: true });
    throw new DownloadError(
      'hash_mismatch',
      `sha256 mismatch for ${displayName(req)}: got ${sha256}, expected ${wanted}; the partial file was deleted`,
      { url: req.url },
    );
  }
  // Data on disk before the name points at it, so a crash never leaves a complete-looking but truncated file.
  // ('a' also creates the .part of an empty file, which no chunk ever opened.)
  const fh = await fsp.open(part, 'a');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  lock.assertHeld();
  await fsp.rename(part, req.dest);
  const verifiedAgainst = expectedSha !== undefined ? 'expected' : t.hubSha !== undefined ? 'hub' : 'none';
  return { dest: req.dest, sha256, size, cached: false, verifiedAgainst, resumedFrom, attempts: t.attempts };
}

function progress(req: DownloadRequest, t: Transfer, force: boolean): void {
  if (!req.onProgress) return;
  const now = Date.now();
  if (!force && now - t.lastProgress < PROGRESS_INTERVAL_MS) return;
  t.lastProgress = now;
  req.onProgress(t.offset, req.size ?? t.serverTotal);
}

/** The complete local file as a cached result, or undefined when it is missing or fails the checks. */
async function verifiedLocal(dest: string, sha256: string | undefined, size: number | undefined): Promise<DownloadResult | undefined> {
  const have = await fileSize(dest);
  if (have === undefined) return undefined;
  if (size !== undefined && have !== size) return undefined;
  const hash = createHash('sha256');
  await hashInto(dest, hash);
  const digest = hash.digest('hex');
  if (sha256 !== undefined && digest !== sha256) return undefined;
  return { dest, sha256: digest, size: have, cached: true, verifiedAgainst: sha256 !== undefined ? 'expected' : 'none', resumedFrom: 0, attempts: 0 };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

interface HubHeaders {
  commit?: string;
  linkedEtag?: string;
  size?: number;
}

/** One agent per call; knows which origin may see the token and how to turn failures into DownloadErrors. */
class HubClient {
  private readonly agent: EnvHttpProxyAgent;
  private readonly origin: string;

  constructor(
    private readonly url: string,
    private readonly opts: HubOptions,
  ) {
    this.origin = new URL(opts.endpoint).origin;
    this.agent = new (undici().EnvHttpProxyAgent)({
      ...opts.proxy,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: opts.timeoutMs },
    });
  }

  /**
   * `method url`, following redirects by hand so the token goes to the hub's origin only (huggingface_hub does
   * the same). `follow` may stop at a redirect whose headers already say enough. Hub headers (commit, linked
   * etag and size) are taken from the first response that carries them: the resolve response, not the CDN's.
   */
  async request(
    url: string,
    method: 'GET' | 'HEAD',
    extra: Record<string, string>,
    follow: (res: Response, hub: HubHeaders) => boolean = () => true,
  ): Promise<{ res: Response; hub: HubHeaders; hopUrl: string }> {
    const hub: HubHeaders = {};
    let current = url;
    for (let hop = 0; ; hop++) {
      // identity: fetch would otherwise ask for gzip and decode it, and then neither Content-Length nor a Range
      // offset would count the bytes we write (huggingface_hub does the same).
      const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'categorize', 'accept-encoding': 'identity', ...extra };
      if (this.opts.token && new URL(current).origin === this.origin) headers.authorization = `Bearer ${this.opts.token}`;
      let res: Response;
      try {
        res = await undici().fetch(current, { method, headers, redirect: 'manual', dispatcher: this.agent });
      } catch (err) {
        throw this.transportError(err, current);
      }
      hub.commit ??= res.headers.get('x-repo-commit') ?? undefined;
      hub.linkedEtag ??= unquote(res.headers.get('x-linked-etag'));
      hub.size ??= toSize(res.headers.get('x-linked-size'));
      const location = res.headers.get('location');
      if (!isRedirect(res.status) || !location || !follow(res, hub)) return { res, hub, hopUrl: current };
      await discard(res);
      if (hop === MAX_REDIRECTS) {
        throw new DownloadError('http_error', `too many redirects (more than ${MAX_REDIRECTS}) for ${this.url}`, { url: this.url });
      }
      current = new URL(location, current).href;
    }
  }

  statusError(res: Response): DownloadError {
    const { status } = res;
    const url = this.url;
    if (status === 404) {
      return new DownloadError('not_found', `${this.describeMissing(res.headers.get('x-error-code'))} (404 from ${url}); check the model id and revision, or HF_ENDPOINT`, {
        url,
        status,
      });
    }
    if (status === 401 || status === 403) {
      const hint = this.opts.token
        ? 'the token in HF_TOKEN was refused or has no access to this repository'
        : 'the repository may be private or gated (or may not exist): set HF_TOKEN to a token with access';
      return new DownloadError('unauthorized', `${status} from ${url}: ${hint}`, { url, status });
    }
    const retryable = status >= 500 || status === 429 || status === 408;
    const text = res.statusText ? ` ${res.statusText}` : '';
    return new DownloadError('http_error', `HTTP ${status}${text} from ${url}`, {
      url,
      status,
      retryable,
      retryAfterMs: retryable ? retryAfter(res.headers.get('retry-after')) : undefined,
    });
  }

  /** Any failure of the connection or of reading a body: a timeout or a network error, both worth retrying. */
  transportError(err: unknown, hopUrl: string): DownloadError {
    if (err instanceof DownloadError) return err;
    const via = new URL(hopUrl).origin === new URL(this.url).origin ? '' : ` (via ${new URL(hopUrl).host})`;
    const chain: unknown[] = [];
    for (let e: unknown = err; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e);
    const codes = chain.map((e) => (e as { code?: unknown }).code).filter((c): c is string => typeof c === 'string');
    const timeout = codes.some((c) => c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT' || c === 'UND_ERR_CONNECT_TIMEOUT' || c === 'ETIMEDOUT');
    if (timeout) {
      return new DownloadError('timeout', `no data for ${this.opts.timeoutMs} ms from ${this.url}${via}`, {
        url: this.url,
        retryable: true,
        cause: err,
      });
    }
    // undici's own message ("fetch failed", "terminated") says little; the innermost cause says why.
    const inner = chain[chain.length - 1] as Error | undefined;
    const why = inner ? [inner.message, (inner as { code?: unknown }).code].filter(Boolean).join(' ') : String(err);
    return new DownloadError('network', `network error on ${this.url}${via}: ${why}`, { url: this.url, retryable: true, cause: err });
  }

  async close(): Promise<void> {
    // destroy, not close: close would wait for a stalled response we have already given up on.
    await this.agent.destroy();
  }

  /** Names the missing thing the way the hub's X-Error-Code does, with the repo/revision/file from the URL. */
  private describeMissing(errorCode: string | null): string {
    const base = this.opts.endpoint.replace(/\/+$/, '');
    const m = this.url.startsWith(`${base}/`) ? /^(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(this.url.slice(base.length + 1)) : null;
    if (!m) return 'not found';
    const [repo, revision, file] = [m[1]!, decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)];
    if (errorCode === 'RepoNotFound') return `repository ${repo} not found`;
    if (errorCode === 'RevisionNotFound') return `revision ${revision} not found in ${repo}`;
    return `${file} not found in ${repo} at revision ${revision}`;
  }
}

/** Run `attempt` until it succeeds, fails for good, or has been tried `retries + 1` times. */
async function withRetries<T>(opts: HubOptions, attempt: () => Promise<T>): Promise<T> {
  const base = opts.backoffMs ?? 500;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof DownloadError)) throw err;
      err.attempts = n;
      if (!err.retryable || n > opts.retries) {
        if (n > 1) err.message += ` (gave up after ${n} attempts)`;
        throw err;
      }
      // Full exponential growth, then a random half of it, so processes that failed together spread out.
      const backoff = Math.min(MAX_BACKOFF_MS, base * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
      await sleep(err.retryAfterMs ?? backoff);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Locking

interface Lock {
  release(): Promise<void>;
  /** Throws when another process took the lock over (ours looked stale), so we must not rename into place. */
  assertHeld(): void;
}

async function acquireLock(dest: string): Promise<Lock> {
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dest, {
      realpath: false, // dest does not exist yet
      lockfilePath: `${dest}.lock`,
      stale: LOCK_STALE_MS,
      retries: LOCK_RETRIES,
      // The default throws from a timer and kills the process; remember it and fail this download instead.
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ELOCKED') throw err;
    throw new DownloadError(
      'locked',
      `${dest} is still being downloaded by another process after waiting 10 minutes; if none is running, delete ${dest}.lock`,
      { cause: err },
    );
  }
  return {
    async release() {
      // After a compromise the lock is someone else's now: leave it alone.
      if (compromised === undefined) await release().catch(() => undefined);
    },
    assertHeld() {
      if (compromised !== undefined) {
        throw new DownloadError('locked', `lost the lock on ${dest} during the download: ${compromised.message}`, { cause: compromised });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function offlineError(message: string, url: string): DownloadError {
  return new DownloadError('offline', message, { url });
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** `"abc"` or `W/"abc"` → `abc`. */
function unquote(etag: string | null): string | undefined {
  if (etag === null || etag === '') return undefined;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

function toSize(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

// `bytes 100-199/1000` → {start: 100, total: 1000}; `bytes */1000` (a 416's) → {total: 1000}.
function parseContentRange(value: string | null): { start?: number; total?: number } | undefined {
  const m = value === null ? null : /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(value.trim());
  if (!m) return undefined;
  const out: { start?: number; total?: number } = {};
  if (m[1] !== undefined) out.start = Number(m[1]);
  if (m[2] !== '*') out.total = Number(m[2]);
  return out;
}

/** Retry-After in seconds, when short enough to wait for; an HTTP date or a long delay falls back to backoff. */
function retryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  const ms = Number(value) * 1000;
  return ms <= MAX_RETRY_AFTER_MS ? ms : undefined;
}

/** The file's path in the repo, for messages; the dest's base name when the URL is not a resolve URL. */
function displayName(req: DownloadRequest): string {
  const m = /\/resolve\/[^/]+\/(.+)$/.exec(new URL(req.url).pathname);
  return m ? decodeURIComponent(m[1]!) : path.basename(req.dest);
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    const st = await fsp.stat(file);
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function hashInto(file: string, hash: Hash): Promise<void> {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

async function writeAll(fh: fsp.FileHandle, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}
