// src/io/image-source.ts against a loopback HTTP server: status handling, retries, timeouts, size caps,
// and how CSV cells resolve to files or URLs.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { contentValidator, fetchImage, fetchImageWithValidator, loadImageBytes, probeImageUrl, readImageFile, resolveImageRef } from '../../src/io/image-source.js';
import { RowError } from '../../src/errors.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
const routes = new Map<string, Handler>();
const hits = new Map<string, number>();
/** Per route, whether the response was cut off before the handler finished writing. */
const cutShort = new Map<string, boolean>();
let server: http.Server;
let base: string;

const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) & 0xff));
const fast = { backoffMs: 5, timeoutMs: 2000 };

function route(name: string, handler: Handler): string {
  routes.set(`/${name}`, handler);
  return `${base}/${name}`;
}

before(async () => {
  server = http.createServer((req, res) => {
    const n = (hits.get(req.url!) ?? 0) + 1;
    hits.set(req.url!, n);
    const handler = routes.get(req.url!);
    if (!handler) {
      res.writeHead(404).end();
      return;
    }
    handler(req, res, n);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function rowError(promise: Promise<unknown>, code: string, mentions?: string): Promise<RowError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof RowError, `expected RowError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(!caught.message.includes('\n'));
  if (mentions) assert.ok(caught.message.includes(mentions), caught.message);
  return caught;
}

test('200: returns the body', async () => {
  const url = route('ok.jpg', (_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(payload));
  assert.deepEqual(await fetchImage(url, fast), payload);
});

test('404 and 410 fail at once, without retrying', async () => {
  const url404 = route('gone404.jpg', (_req, res) => res.writeHead(404).end('not here'));
  const err = await rowError(fetchImage(url404, fast), 'url_http_404', url404);
  assert.match(err.message, /HTTP 404/);
  assert.equal(hits.get('/gone404.jpg'), 1);
  const url410 = route('gone410.jpg', (_req, res) => res.writeHead(410).end());
  await rowError(fetchImage(url410, fast), 'url_http_410');
  assert.equal(hits.get('/gone410.jpg'), 1);
  const url403 = route('forbidden.jpg', (_req, res) => res.writeHead(403).end());
  await rowError(fetchImage(url403, fast), 'url_http_403');
  assert.equal(hits.get('/forbidden.jpg'), 1);
});

test('503 then 200: retried', async () => {
  const url = route('flaky.jpg', (_req, res, n) => (n === 1 ? res.writeHead(503).end() : res.writeHead(200).end(payload)));
  assert.deepEqual(await fetchImage(url, fast), payload);
  assert.equal(hits.get('/flaky.jpg'), 2);
});

test('429 then 200: retried, honouring a short Retry-After', async () => {
  const url = route('busy.jpg', (_req, res, n) => (n === 1 ? res.writeHead(429, { 'retry-after': '0' }).end() : res.writeHead(200).end(payload)));
  assert.deepEqual(await fetchImage(url, fast), payload);
  assert.equal(hits.get('/busy.jpg'), 2);
});

test('503 every time: gives up after 1 + retries attempts', async () => {
  const url = route('down.jpg', (_req, res) => res.writeHead(503).end());
  await rowError(fetchImage(url, { ...fast, retries: 2 }), 'url_http_503');
  assert.equal(hits.get('/down.jpg'), 3);
  const url0 = route('down0.jpg', (_req, res) => res.writeHead(500).end());
  await rowError(fetchImage(url0, { ...fast, retries: 0 }), 'url_http_500');
  assert.equal(hits.get('/down0.jpg'), 1);
});

test('slow headers and a stalled body time out per attempt', async () => {
  const slow = route('slow.jpg', (_req, res) => {
    const t = setTimeout(() => res.writeHead(200).end(payload), 3000);
    res.on('close', () => clearTimeout(t));
  });
  const t0 = Date.now();
  await rowError(fetchImage(slow, { timeoutMs: 150, retries: 1, backoffMs: 5 }), 'url_timeout', 'timed out after 150 ms');
  assert.ok(Date.now() - t0 < 2000, 'did not wait for the server');
  assert.equal(hits.get('/slow.jpg'), 2, 'a timeout is retried');

  const stalled = route('stalled.jpg', (_req, res) => {
    res.writeHead(200, { 'content-length': String(payload.length) });
    res.write(payload.subarray(0, 100)); // ...and never the rest
  });
  await rowError(fetchImage(stalled, { timeoutMs: 150, retries: 0 }), 'url_timeout');
});

test('oversize by Content-Length: refused before reading the body', async () => {
  const url = route('huge.jpg', (_req, res) => {
    res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) });
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024);
    const pump = (): void => {
      while (sent < 50 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
      cutShort.set('huge', false);
    };
    res.on('close', () => cutShort.set('huge', !res.writableFinished));
    pump();
  });
  const t0 = Date.now();
  await rowError(fetchImage(url, { ...fast, maxBytes: 1024 * 1024 }), 'image_too_large', '52428800 bytes declared');
  assert.ok(Date.now() - t0 < 1500);
  assert.equal(hits.get('/huge.jpg'), 1, 'too large is not retried');
  await waitFor(() => cutShort.has('huge'));
  assert.equal(cutShort.get('huge'), true, 'the download was aborted');
});

test('oversize while streaming without Content-Length: aborted once past the cap', async () => {
  const url = route('endless.jpg', (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg' }); // chunked: no length known up front
    let sent = 0;
    const chunk = Buffer.alloc(16 * 1024, 7);
    const pump = (): void => {
      while (sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => cutShort.set('endless', sent < 64 * 1024 * 1024));
    pump();
  });
  await rowError(fetchImage(url, { ...fast, maxBytes: 100_000 }), 'image_too_large', 'more than 100000 bytes');
  await waitFor(() => cutShort.has('endless'));
  assert.equal(cutShort.get('endless'), true, 'the server was cut off long before 64 MiB');
  // Exactly at the cap is fine.
  const exact = route('exact.jpg', (_req, res) => {
    res.writeHead(200);
    res.write(payload.subarray(0, 2500));
    res.end(payload.subarray(2500));
  });
  assert.equal((await fetchImage(exact, { ...fast, maxBytes: payload.length })).length, payload.length);
});

test('connection refused: url_error after retries', async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await rowError(fetchImage(`http://127.0.0.1:${port}/x.jpg`, { ...fast, retries: 1 }), 'url_error', 'ECONNREFUSED');
});

test("the caller's abort signal stops at once and is not a row error", async () => {
  const url = route('hang.jpg', (_req, res) => {
    const t = setTimeout(() => res.writeHead(200).end(payload), 3000);
    res.on('close', () => clearTimeout(t));
  });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(fetchImage(url, { ...fast, signal: ac.signal }), (err: unknown) => !(err instanceof RowError));
  assert.equal(hits.get('/hang.jpg'), 1);
});

test('resolveImageRef: relative, absolute, file:// and http(s)', () => {
  const baseDir = path.join(os.tmpdir(), 'catalog');
  assert.deepEqual(resolveImageRef('images/a.jpg', { baseDir }), { kind: 'file', path: path.join(baseDir, 'images', 'a.jpg') });
  assert.deepEqual(resolveImageRef('  ./b.png ', { baseDir }), { kind: 'file', path: path.join(baseDir, 'b.png') });
  assert.deepEqual(resolveImageRef('../c.png', { baseDir }), { kind: 'file', path: path.join(os.tmpdir(), 'c.png') });
  const abs = path.join(os.tmpdir(), 'elsewhere', 'd.jpg');
  assert.deepEqual(resolveImageRef(abs, { baseDir }), { kind: 'file', path: abs });
  assert.deepEqual(resolveImageRef(pathToFileURL(abs).href, { baseDir }), { kind: 'file', path: abs });
  assert.deepEqual(resolveImageRef('file:///tmp/with%20space.jpg', { baseDir }), { kind: 'file', path: '/tmp/with space.jpg' });
  assert.deepEqual(resolveImageRef('https://cdn.example.com/p/1.jpg?w=500', { baseDir }), { kind: 'url', url: 'https://cdn.example.com/p/1.jpg?w=500' });
  assert.deepEqual(resolveImageRef('HTTP://Example.com/x.jpg', { baseDir }), { kind: 'url', url: 'http://example.com/x.jpg' });
  assert.throws(() => resolveImageRef('ftp://example.com/x.jpg', { baseDir }), (e: unknown) => e instanceof RowError && e.code === 'image_ref_unsupported');
  assert.throws(() => resolveImageRef('data:image/png;base64,AAAA', { baseDir }), (e: unknown) => e instanceof RowError && e.code === 'image_ref_unsupported');
  assert.throws(() => resolveImageRef('http://', { baseDir }), (e: unknown) => e instanceof RowError && e.code === 'image_ref_invalid');
  assert.throws(() => resolveImageRef('   ', { baseDir }), (e: unknown) => e instanceof RowError && e.code === 'image_ref_empty');
});

test('readImageFile and loadImageBytes: files, missing files, directories, size cap', async () => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'image-source-'));
  try {
    await fs.promises.writeFile(path.join(dir, 'a.jpg'), payload);
    const ref = resolveImageRef('a.jpg', { baseDir: dir });
    assert.deepEqual(await loadImageBytes(ref), payload);
    assert.deepEqual(await readImageFile(path.join(dir, 'a.jpg'), payload.length), payload);
    await rowError(readImageFile(path.join(dir, 'a.jpg'), payload.length - 1), 'image_too_large', 'a.jpg');
    await rowError(loadImageBytes(ref, { maxBytes: 10 }), 'image_too_large');
    await rowError(loadImageBytes(resolveImageRef('missing.jpg', { baseDir: dir })), 'image_not_found', path.join(dir, 'missing.jpg'));
    await rowError(readImageFile(dir), 'image_not_found', 'directory');
    const url = route('via-load.jpg', (_req, res) => res.writeHead(200).end(payload));
    assert.deepEqual(await loadImageBytes(resolveImageRef(url, { baseDir: dir }), fast), payload);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
});

test('contentValidator: ETag first, then Last-Modified, else null', () => {
  assert.equal(contentValidator(new Headers({ etag: '"abc"', 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' })), 'etag:"abc"');
  assert.equal(contentValidator(new Headers({ etag: 'W/"weak"' })), 'etag:W/"weak"');
  assert.equal(contentValidator(new Headers({ 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' })), 'last-modified:Wed, 21 Oct 2015 07:28:00 GMT');
  assert.equal(contentValidator(new Headers({ 'content-type': 'image/jpeg' })), null);
});

test('probeImageUrl: one HEAD, the validator or null (no validator, 404, too large, refused, timeout)', async () => {
  const methods: string[] = [];
  const tagged = route('tagged.jpg', (req, res) => {
    methods.push(req.method!);
    res.writeHead(200, { etag: '"v1"', 'content-length': String(payload.length) }).end(req.method === 'HEAD' ? undefined : payload);
  });
  assert.equal(await probeImageUrl(tagged, fast), 'etag:"v1"');
  assert.deepEqual(methods, ['HEAD']);
  const dated = route('dated.jpg', (_req, res) => res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end());
  assert.equal(await probeImageUrl(dated, fast), 'last-modified:Wed, 21 Oct 2015 07:28:00 GMT');
  const bare = route('bare.jpg', (_req, res) => res.writeHead(200).end());
  assert.equal(await probeImageUrl(bare, fast), null);
  const gone = route('gone-head.jpg', (_req, res) => res.writeHead(404, { etag: '"x"' }).end());
  assert.equal(await probeImageUrl(gone, fast), null);
  assert.equal(hits.get('/gone-head.jpg'), 1, 'no retries: the download that follows retries');
  const big = route('big-head.jpg', (_req, res) => res.writeHead(200, { etag: '"big"', 'content-length': '1000' }).end());
  assert.equal(await probeImageUrl(big, { ...fast, maxBytes: 999 }), null);
  assert.equal(await probeImageUrl(big, { ...fast, maxBytes: 1000 }), 'etag:"big"');
  const slow = route('slow-head.jpg', (_req, res) => {
    const t = setTimeout(() => res.writeHead(200, { etag: '"late"' }).end(), 3000);
    res.on('close', () => clearTimeout(t));
  });
  const t0 = Date.now();
  assert.equal(await probeImageUrl(slow, { timeoutMs: 100 }), null);
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(await probeImageUrl('http://127.0.0.1:1/refused.jpg', fast), null);
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  await assert.rejects(probeImageUrl(tagged, { ...fast, signal: controller.signal }), /stop/);
});

test("fetchImageWithValidator: the body and the download's own validator", async () => {
  const url = route('validated.jpg', (_req, res) => res.writeHead(200, { etag: '"v2"' }).end(payload));
  assert.deepEqual(await fetchImageWithValidator(url, fast), { bytes: payload, validator: 'etag:"v2"' });
  const bare = route('unvalidated.jpg', (_req, res) => res.writeHead(200).end(payload));
  assert.deepEqual(await fetchImageWithValidator(bare, fast), { bytes: payload, validator: null });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
