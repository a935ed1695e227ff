// A loopback stand-in for the Hugging Face hub (resolve URLs, LFS files redirected to a CDN on another origin,
// Range requests) with failure injection, plus a tiny forward proxy; for download unit and end-to-end tests.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export interface HubRequestLog {
  method: string;
  /** Path and query, as requested. */
  path: string;
  range?: string;
  authorization?: string;
  /** The request came through startForwardProxy() in absolute form (a CONNECT tunnel cannot be told apart). */
  viaProxy?: boolean;
  /** 'hub' for resolve URLs, 'cdn' for the origin LFS files are redirected to. */
  server: 'hub' | 'cdn';
  status?: number;
  /** Body bytes written to the socket (cut responses count what was written before the cut). */
  bytesSent: number;
}

/**
 * Injected on GETs of one file, `times` times (default 1), in the order queued. A status failure answers the
 * resolve URL; the others apply to whichever response carries the bytes (the CDN's, for LFS files).
 */
export type Failure =
  | { status: number; retryAfter?: number; times?: number }
  /** Write this many body bytes, then destroy the socket. */
  | { cutAfterBytes: number; times?: number }
  /** Wait before the body (default) or before the headers; releaseStalls() ends every wait early. */
  | { stallMs: number; phase?: 'headers' | 'body'; times?: number }
  /** Flip one byte of the body. */
  | { corrupt: true; times?: number }
  /** Answer a Range request with 200 and the whole file, as servers without range support do. */
  | { ignoreRange: true; times?: number };

export interface HubServer {
  /** http://127.0.0.1:<port>, for HF_ENDPOINT. */
  endpoint: string;
  /** Where LFS files are redirected to: another port, hence another origin (tokens must not follow). */
  cdnOrigin: string;
  requests: HubRequestLog[];
  /**
   * A new commit of `repo`, which `main` then points to; earlier commits stay reachable by hash. `lfs` says
   * whether the files are stored in LFS (default: .onnx, .bin, .safetensors and .onnx_data files are).
   */
  addRepo(repo: string, commit: string, files: Record<string, Buffer | string>, opts?: { lfs?: boolean }): void;
  failNext(repo: string, filePath: string, failure: Failure): void;
  /** Resolve URLs answer 401 without `Authorization: Bearer <token>`; null makes the hub public again. */
  requireToken(token: string | null): void;
  /** End every stall now (to release a download a test holds back on purpose). */
  releaseStalls(): void;
  close(): Promise<void>;
}

interface StoredFile {
  content: Buffer;
  lfs: boolean;
  sha256: string;
  /** What the hub sends as ETag for files kept in git: the git blob sha1. */
  gitSha1: string;
}

interface Repo {
  main: string;
  commits: Map<string, Map<string, StoredFile>>;
}

interface QueuedFailure {
  failure: Failure;
  left: number;
}

const LFS_EXTENSIONS = new Set(['.onnx', '.bin', '.safetensors', '.onnx_data']);

export async function startHubServer(): Promise<HubServer> {
  const repos = new Map<string, Repo>();
  const failures = new Map<string, QueuedFailure[]>();
  const requests: HubRequestLog[] = [];
  const stalls = new Set<() => void>();
  let token: string | null = null;

  const key = (repo: string, file: string): string => `${repo}\0${file}`;

  /** Take the next queued failure of the file if `accepts` it (status failures and body failures apply at different hops). */
  function takeFailure(k: string | undefined, accepts: (f: Failure) => boolean): Failure | undefined {
    const queue = k === undefined ? undefined : failures.get(k);
    const head = queue?.[0];
    if (!queue || !head || !accepts(head.failure)) return undefined;
    head.left -= 1;
    if (head.left <= 0) queue.shift();
    return head.failure;
  }

  function wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        stalls.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stalls.add(done);
    });
  }

  function json(res: http.ServerResponse, log: HubRequestLog, status: number, body: object, headers: http.OutgoingHttpHeaders = {}): void {
    const text = JSON.stringify(body);
    log.status = status;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  }

  /** Bytes with Range support and the body failures. */
  async function serveBytes(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    log: HubRequestLog,
    content: Buffer,
    failureKey: string | undefined,
    headers: http.OutgoingHttpHeaders,
  ): Promise<void> {
    const failure = req.method === 'GET' ? takeFailure(failureKey, (f) => !('status' in f)) : undefined;
    const size = content.length;
    let status = 200;
    let start = 0;
    let end = size; // exclusive
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const out: http.OutgoingHttpHeaders = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (range && !(failure && 'ignoreRange' in failure)) {
      start = Number(range[1]);
      if (start >= size) {
        log.status = 416;
        res.writeHead(416, { ...out, 'content-range': `bytes */${size}`, 'content-length': 0 });
        res.end();
        return;
      }
      end = range[2] ? Math.min(size, Number(range[2]) + 1) : size;
      status = 206;
      out['content-range'] = `bytes ${start}-${end - 1}/${size}`;
    }
    out['content-length'] = end - start;
    let body = content.subarray(start, end);
    if (failure && 'corrupt' in failure && body.length > 0) {
      body = Buffer.from(body);
      body[body.length >> 1]! ^= 0xff;
    }
    log.status = status;

    if (failure && 'stallMs' in failure && failure.phase === 'headers') await wait(failure.stallMs);
    if (res.destroyed) return;
    res.writeHead(status, out);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (failure && 'stallMs' in failure && failure.phase !== 'headers') {
      res.flushHeaders();
      await wait(failure.stallMs);
      if (res.destroyed) return;
    }
    if (failure && 'cutAfterBytes' in failure) {
      const part = body.subarray(0, failure.cutAfterBytes);
      log.bytesSent += part.length;
      // Destroy once the bytes are handed to the kernel, so the client sees exactly them and then a reset stream.
      res.write(part, () => res.socket?.destroy());
      return;
    }
    log.bytesSent += body.length;
    res.end(body);
  }

  async function handleHub(req: http.IncomingMessage, res: http.ServerResponse, log: HubRequestLog): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://hub');
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return json(res, log, 404, { error: 'Not Found' });
    if (token !== null && req.headers.authorization !== `Bearer ${token}`) {
      // What the hub says to an anonymous request for a private or gated repository.
      return json(res, log, 401, { error: 'Invalid credentials in Authorization header' }, { 'x-error-code': 'RepoNotFound' });
    }
    const [repoId, revision, file] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)];
    const repo = repos.get(repoId);
    if (!repo) return json(res, log, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    const commit = revision === 'main' ? repo.main : revision;
    const files = repo.commits.get(commit);
    if (!files) return json(res, log, 404, { error: `Invalid rev id: ${revision}` }, { 'x-error-code': 'RevisionNotFound' });
    const stored = files.get(file);
    if (!stored) {
      return json(res, log, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit });
    }
    const fk = key(repoId, file);
    const failure = req.method === 'GET' ? takeFailure(fk, (f) => 'status' in f) : undefined;
    if (failure && 'status' in failure) {
      const extra: http.OutgoingHttpHeaders = failure.retryAfter === undefined ? {} : { 'retry-after': String(failure.retryAfter) };
      return json(res, log, failure.status, { error: `injected ${failure.status}` }, extra);
    }
    if (stored.lfs) {
      const location = `${cdnOrigin}/cdn/${stored.sha256}?${new URLSearchParams({ repo: repoId, file })}`;
      log.status = 302;
      res.writeHead(302, {
        location,
        'x-repo-commit': commit,
        'x-linked-etag': `"${stored.sha256}"`,
        'x-linked-size': String(stored.content.length),
        etag: `"${stored.sha256}"`,
        'content-length': 0,
      });
      res.end();
      return;
    }
    await serveBytes(req, res, log, stored.content, fk, { 'x-repo-commit': commit, etag: `"${stored.gitSha1}"` });
  }

  async function handleCdn(req: http.IncomingMessage, res: http.ServerResponse, log: HubRequestLog): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://cdn');
    const sha = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const content = sha === undefined ? undefined : findBySha(sha);
    if (!content) return json(res, log, 404, { error: 'NoSuchKey' });
    const repo = url.searchParams.get('repo');
    const file = url.searchParams.get('file');
    const fk = repo !== null && file !== null ? key(repo, file) : undefined;
    await serveBytes(req, res, log, content, fk, { etag: `"${sha}"` });
  }

  function findBySha(sha: string): Buffer | undefined {
    for (const repo of repos.values()) {
      for (const files of repo.commits.values()) {
        for (const f of files.values()) if (f.sha256 === sha) return f.content;
      }
    }
    return undefined;
  }

  function listener(server: 'hub' | 'cdn'): http.RequestListener {
    return (req, res) => {
      const log: HubRequestLog = { method: req.method ?? 'GET', path: req.url ?? '/', server, bytesSent: 0 };
      if (req.headers.range !== undefined) log.range = req.headers.range;
      if (req.headers.authorization !== undefined) log.authorization = req.headers.authorization;
      if (req.headers.via !== undefined) log.viaProxy = true;
      requests.push(log);
      const handle = server === 'hub' ? handleHub : handleCdn;
      handle(req, res, log).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    };
  }

  const hub = http.createServer(listener('hub'));
  const cdn = http.createServer(listener('cdn'));
  const endpoint = await listen(hub);
  const cdnOrigin = await listen(cdn);

  return {
    endpoint,
    cdnOrigin,
    requests,
    addRepo(repoId, commit, files, opts = {}) {
      const repo = repos.get(repoId) ?? { main: commit, commits: new Map() };
      const stored = new Map<string, StoredFile>();
      for (const [name, value] of Object.entries(files)) {
        const content = Buffer.isBuffer(value) ? value : Buffer.from(value);
        stored.set(name, {
          content,
          lfs: opts.lfs ?? LFS_EXTENSIONS.has(path.extname(name)),
          sha256: createHash('sha256').update(content).digest('hex'),
          gitSha1: createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex'),
        });
      }
      repo.commits.set(commit, stored);
      repo.main = commit;
      repos.set(repoId, repo);
    },
    failNext(repoId, filePath, failure) {
      const k = key(repoId, filePath);
      const queue = failures.get(k) ?? [];
      queue.push({ failure, left: failure.times ?? 1 });
      failures.set(k, queue);
    },
    requireToken(t) {
      token = t;
    },
    releaseStalls() {
      for (const done of [...stalls]) done();
    },
    async close() {
      for (const done of [...stalls]) done();
      await Promise.all([hub, cdn].map(closeServer));
    },
  };
}

export interface ForwardProxy {
  /** http://127.0.0.1:<port>, for HTTP_PROXY. */
  url: string;
  /** `CONNECT host:port` for tunnels (undici's default, even for http targets), `GET http://…` for absolute-form requests. */
  requests: string[];
  close(): Promise<void>;
}

/** An HTTP proxy that only forwards to loopback addresses, so a test can never reach the network through it. */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const requests: string[] = [];
  const tunnels = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (target.protocol !== 'http:' || !isLoopback(target.hostname)) {
      res.writeHead(403).end();
      return;
    }
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: target.pathname + target.search,
        headers: { ...req.headers, via: '1.1 test-proxy' },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    requests.push(`CONNECT ${req.url}`);
    const m = /^(.+):(\d+)$/.exec(req.url ?? '');
    const host = m?.[1]?.replace(/^\[(.*)\]$/, '$1');
    if (!m || host === undefined || !isLoopback(host)) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(Number(m[2]), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    tunnels.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      tunnels.delete(client);
      tunnels.delete(upstream);
    };
    upstream.on('error', drop).on('close', drop);
    client.on('error', drop).on('close', drop);
  });

  const url = await listen(server);
  return {
    url,
    requests,
    async close() {
      for (const s of tunnels) s.destroy();
      await closeServer(server);
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return `http://127.0.0.1:${port}`;
}

async function closeServer(server: http.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
