// Hub downloads against a loopback hub: verification, cache hits, retries, resume after cuts and leftovers,
// timeouts, the cross-process lock, tokens, proxies and offline mode.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  downloadFile,
  DownloadError,
  fetchFileInfo,
  hubFileUrl,
  type DownloadRequest,
  type DownloadResult,
  type HubOptions,
} from '../../src/models/download.js';
import { ExitCode } from '../../src/errors.js';
import { startForwardProxy, startHubServer, type HubServer } from '../helpers/hub-server.js';

const REPO = 'acme/tiny-encoder';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const MODEL = 'onnx/model.onnx'; // LFS: redirected to the CDN origin
const CONFIG = 'config.json'; // kept in git: served by the resolve URL itself
const model = randomBytes(1 << 20);
const config = JSON.stringify({ hidden_size: 8 });
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const modelSha = sha256(model);

interface Setup {
  hub: HubServer;
  dir: string;
  url: (file?: string, revision?: string) => string;
  opts: (extra?: Partial<HubOptions>) => HubOptions;
}

async function setup(t: TestContext): Promise<Setup> {
  const hub = await startHubServer();
  hub.addRepo(REPO, COMMIT, { [MODEL]: model, [CONFIG]: config });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-download-'));
  t.after(async () => {
    await hub.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    hub,
    dir,
    url: (file = MODEL, revision = 'main') => hubFileUrl(hub.endpoint, REPO, revision, file),
    // Empty proxy settings: loopback must not go through a proxy the test environment happens to set.
    opts: (extra = {}) => ({ endpoint: hub.endpoint, timeoutMs: 2_000, retries: 2, backoffMs: 5, proxy: { httpProxy: '', httpsProxy: '' }, ...extra }),
  };
}

/** The responses that carried the file's bytes (the CDN's for LFS files). */
const bodyGets = (hub: HubServer, server: 'hub' | 'cdn' = 'cdn') =>
  hub.requests.filter((r) => r.method === 'GET' && r.server === server && (r.status === 200 || r.status === 206));

const leftovers = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.part') || f.endsWith('.lock'));

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<DownloadError> {
  const err = await promise.then(
    () => assert.fail(`expected DownloadError ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DownloadError, String(err));
  assert.equal(err.code, code, err.message);
  assert.equal(err.exitCode, ExitCode.runtime);
  assert.doesNotMatch(err.message, /\n/);
  return err;
}

test('hubFileUrl encodes the revision as one segment and each path segment on its own', () => {
  assert.equal(
    hubFileUrl('https://huggingface.co/', 'org/model', 'refs/pr/1', 'onnx/model file.onnx'),
    'https://huggingface.co/org/model/resolve/refs%2Fpr%2F1/onnx/model%20file.onnx',
  );
  assert.equal(hubFileUrl('http://mirror:8080/hf', 'gpt2', 'main', 'config.json'), 'http://mirror:8080/hf/gpt2/resolve/main/config.json');
});

test('pulls an LFS file through the redirect into a new folder, checks its sha256 and reports progress', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const dest = path.join(dir, 'a', 'b', 'model.onnx');
  const seen: Array<[number, number | undefined]> = [];
  const res = await downloadFile({ url: url(), dest, sha256: modelSha, onProgress: (r, total) => seen.push([r, total]) }, opts());
  assert.deepEqual(res, { dest, sha256: modelSha, size: model.length, cached: false, verifiedAgainst: 'expected', resumedFrom: 0, attempts: 1 });
  assert.ok(fs.readFileSync(dest).equals(model));
  assert.deepEqual(fs.readdirSync(path.dirname(dest)), ['model.onnx']);
  assert.deepEqual(seen.at(-1), [model.length, model.length]);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]![0] >= seen[i - 1]![0], 'progress never goes back');
  assert.deepEqual(
    hub.requests.map((r) => [r.server, r.method, r.status]),
    [['hub', 'GET', 302], ['cdn', 'GET', 200]],
  );
  // Without a hash from the caller, the hub's own LFS sha256 (X-Linked-Etag) is what the file is checked against.
  const unpinned = await downloadFile({ url: url(), dest: path.join(dir, 'unpinned.onnx') }, opts());
  assert.deepEqual([unpinned.sha256, unpinned.verifiedAgainst], [modelSha, 'hub']);
});

test('pulls a file kept in git, checked by size alone', async (t) => {
  const { dir, url, opts } = await setup(t);
  const dest = path.join(dir, CONFIG);
  const res = await downloadFile({ url: url(CONFIG), dest, size: config.length }, opts());
  assert.equal(res.sha256, sha256(config));
  assert.equal(fs.readFileSync(dest, 'utf8'), config);
});

test('a complete file is a cache hit without any request; a wrong one is downloaded again', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const dest = path.join(dir, 'model.onnx');
  await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  const before = hub.requests.length;
  const again = await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  assert.deepEqual(again, { dest, sha256: modelSha, size: model.length, cached: true, verifiedAgainst: 'expected', resumedFrom: 0, attempts: 0 });
  assert.equal(hub.requests.length, before, 'no request for a cached file');

  fs.writeFileSync(dest, 'truncated');
  const fixed = await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  assert.equal(fixed.cached, false);
  assert.ok(fs.readFileSync(dest).equals(model));
});

test('404 fails at once with not_found naming the file, the repo and HF_ENDPOINT', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const err = await rejectsWith(downloadFile({ url: url('onnx/missing.onnx'), dest: path.join(dir, 'm') }, opts({ retries: 3 })), 'not_found');
  assert.match(err.message, /onnx\/missing\.onnx not found in acme\/tiny-encoder at revision main/);
  assert.match(err.message, /HF_ENDPOINT/);
  assert.equal(hub.requests.length, 1, 'no retry on 404');

  const noRepo = hubFileUrl(hub.endpoint, 'nobody/nothing', 'main', MODEL);
  const err2 = await rejectsWith(downloadFile({ url: noRepo, dest: path.join(dir, 'm') }, opts()), 'not_found');
  assert.match(err2.message, /repository nobody\/nothing not found/);
  const err3 = await rejectsWith(fetchFileInfo(url(MODEL, 'v9'), opts()), 'not_found');
  assert.match(err3.message, /revision v9 not found/);
  assert.deepEqual(leftovers(dir), []);
});

test('5xx and 429 are retried; a server that keeps failing gives up after retries + 1 attempts', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  hub.failNext(REPO, MODEL, { status: 500 });
  const a = await downloadFile({ url: url(), dest: path.join(dir, 'a.onnx'), sha256: modelSha }, opts());
  assert.equal(a.attempts, 2);

  hub.failNext(REPO, MODEL, { status: 429, retryAfter: 0 });
  const b = await downloadFile({ url: url(), dest: path.join(dir, 'b.onnx'), sha256: modelSha }, opts());
  assert.equal(b.attempts, 2);

  hub.failNext(REPO, MODEL, { status: 503, times: 3 });
  const err = await rejectsWith(downloadFile({ url: url(), dest: path.join(dir, 'c.onnx') }, opts({ retries: 2 })), 'http_error');
  assert.equal(err.status, 503);
  assert.equal(err.attempts, 3);
  assert.match(err.message, /HTTP 503 .*gave up after 3 attempts/);
});

test('a connection cut mid-file is resumed with a Range request, not restarted', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const cut = 300_000;
  hub.failNext(REPO, MODEL, { cutAfterBytes: cut });
  const dest = path.join(dir, 'model.onnx');
  const res = await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  assert.equal(res.attempts, 2);
  assert.equal(res.resumedFrom, 0, 'resumedFrom counts leftovers of earlier runs only');
  const gets = hub.requests.filter((r) => r.server === 'cdn');
  assert.equal(gets.length, 2);
  const from = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
  assert.ok(from > 0 && from <= cut, `resumed from ${from}`);
  const sent = gets.reduce((n, r) => n + r.bytesSent, 0);
  assert.ok(sent <= model.length + cut && sent >= model.length, `server sent ${sent} bytes for a ${model.length}-byte file`);
  assert.equal(gets[1]!.bytesSent, model.length - from);
  assert.ok(fs.readFileSync(dest).equals(model));

  // Out of retries: the bytes received stay in the .part, and the next run resumes from them.
  const dest2 = path.join(dir, 'again.onnx');
  hub.failNext(REPO, MODEL, { cutAfterBytes: cut });
  const err = await rejectsWith(downloadFile({ url: url(), dest: dest2, sha256: modelSha }, opts({ retries: 0 })), 'network');
  assert.match(err.message, /onnx\/model\.onnx/);
  const kept = fs.statSync(`${dest2}.part`).size;
  assert.ok(kept > 0 && kept <= cut);
  assert.equal(fs.existsSync(`${dest2}.lock`), false);
  const res2 = await downloadFile({ url: url(), dest: dest2, sha256: modelSha }, opts());
  assert.equal(res2.resumedFrom, kept);
  assert.ok(fs.readFileSync(dest2).equals(model));
});

test('a .part left by an earlier process is resumed; one holding other bytes is replaced', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const dest = path.join(dir, 'model.onnx');
  fs.writeFileSync(`${dest}.part`, model.subarray(0, 400_000));
  const res = await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  assert.equal(res.resumedFrom, 400_000);
  assert.equal(res.attempts, 1);
  assert.deepEqual(bodyGets(hub).map((r) => [r.range, r.status, r.bytesSent]), [['bytes=400000-', 206, model.length - 400_000]]);
  assert.ok(fs.readFileSync(dest).equals(model));

  // Leftovers of another revision of the file: only the hash shows it; one fresh download fixes it.
  const dest2 = path.join(dir, 'other.onnx');
  fs.writeFileSync(`${dest2}.part`, randomBytes(400_000));
  const res2 = await downloadFile({ url: url(), dest: dest2, sha256: modelSha }, opts());
  assert.equal(res2.resumedFrom, 0);
  assert.ok(fs.readFileSync(dest2).equals(model));
  assert.deepEqual(leftovers(dir), []);
});

test('a server that ignores Range sends everything again and the download restarts from zero', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const dest = path.join(dir, 'model.onnx');
  fs.writeFileSync(`${dest}.part`, model.subarray(0, 100_000));
  hub.failNext(REPO, MODEL, { ignoreRange: true });
  await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  assert.deepEqual(bodyGets(hub).map((r) => [r.range, r.status]), [['bytes=100000-', 200]]);
  assert.ok(fs.readFileSync(dest).equals(model));
});

test('a complete .part that was never renamed is finished on the 416 answer, without body bytes', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const dest = path.join(dir, 'model.onnx');
  fs.writeFileSync(`${dest}.part`, model);
  const res = await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  assert.equal(res.resumedFrom, model.length);
  assert.deepEqual(hub.requests.filter((r) => r.server === 'cdn').map((r) => [r.status, r.bytesSent]), [[416, 0]]);
  assert.ok(fs.readFileSync(dest).equals(model));
});

test('corrupted bytes fail with hash_mismatch naming both hashes, without retry, leaving nothing behind', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  hub.failNext(REPO, MODEL, { corrupt: true });
  const dest = path.join(dir, 'model.onnx');
  const err = await rejectsWith(downloadFile({ url: url(), dest, sha256: modelSha }, opts()), 'hash_mismatch');
  const bad = Buffer.from(model);
  bad[bad.length >> 1]! ^= 0xff;
  assert.equal(err.message, `sha256 mismatch for ${MODEL}: got ${sha256(bad)}, expected ${modelSha}; the partial file was deleted`);
  assert.equal(bodyGets(hub).length, 1);
  assert.deepEqual(fs.readdirSync(dir), []);

  // Without an expected hash the hub's own (X-Linked-Etag) is checked.
  hub.failNext(REPO, MODEL, { corrupt: true });
  const err2 = await rejectsWith(downloadFile({ url: url(), dest }, opts()), 'hash_mismatch');
  assert.match(err2.message, new RegExp(`expected ${modelSha}`));
  assert.deepEqual(fs.readdirSync(dir), []);
});

// undici checks headersTimeout/bodyTimeout on a coarse clock (about 0.5–1 s), so each timeout here costs ~1 s.
test('a server that stalls longer than timeoutMs on every attempt fails with timeout after retries + 1 attempts', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  hub.failNext(REPO, MODEL, { stallMs: 10_000, phase: 'headers' });
  hub.failNext(REPO, MODEL, { stallMs: 10_000 });
  const dest = path.join(dir, 'model.onnx');
  const err = await rejectsWith(downloadFile({ url: url(), dest }, opts({ timeoutMs: 150, retries: 1 })), 'timeout');
  assert.equal(err.attempts, 2);
  assert.match(err.message, /no data for 150 ms from .*onnx\/model\.onnx.*gave up after 2 attempts/);
  assert.equal(hub.requests.filter((r) => r.server === 'cdn').length, 2);
  assert.deepEqual(fs.readdirSync(dir), [], 'no lock, and no .part since no byte arrived');
});

test('a stall once, then the retry succeeds', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  hub.failNext(REPO, MODEL, { stallMs: 10_000 });
  const dest = path.join(dir, 'model.onnx');
  const res = await downloadFile({ url: url(), dest, sha256: modelSha }, opts({ timeoutMs: 150 }));
  assert.equal(res.attempts, 2);
  assert.ok(fs.readFileSync(dest).equals(model));
});

/** downloadFile in another node process (the compiled module), so the lock is taken across processes. */
function downloadInChild(req: DownloadRequest, opts: HubOptions): { started: Promise<void>; result: Promise<DownloadResult> } {
  const script = [
    `const { downloadFile } = await import(process.env.DOWNLOAD_MODULE);`,
    `const { req, opts } = JSON.parse(process.env.DOWNLOAD_ARGS);`,
    `process.stdout.write('locking\\n');`,
    `process.stdout.write(JSON.stringify(await downloadFile(req, opts)) + '\\n');`,
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      ...process.env,
      DOWNLOAD_MODULE: new URL('../../src/models/download.js', import.meta.url).href,
      DOWNLOAD_ARGS: JSON.stringify({ req, opts }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('locking\n')) onStart();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<DownloadResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${stderr}`));
      resolve(JSON.parse(stdout.split('\n')[1]!) as DownloadResult);
    });
  });
  return { started, result };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 5_000; !cond(); await sleep(10)) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
  }
}

test('two processes pulling the same file: the second waits for the lock and finds the file complete', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  // Hold the first download mid-transfer (lock taken) until the second process is waiting for the lock.
  hub.failNext(REPO, MODEL, { stallMs: 20_000 });
  const dest = path.join(dir, 'model.onnx');
  const req = { url: url(), dest, sha256: modelSha };
  const o = opts({ timeoutMs: 30_000, retries: 0 });
  const first = downloadFile(req, o);
  await until(() => hub.requests.some((r) => r.server === 'cdn'), 'the first download to reach the CDN');
  const second = downloadInChild(req, o);
  await second.started;
  await sleep(300); // let the child try the lock at least once
  assert.ok(fs.existsSync(`${dest}.lock`), 'the first download holds the lock');
  hub.releaseStalls();
  const [a, b] = await Promise.all([first, second.result]);
  assert.equal(a.cached, false);
  assert.equal(b.cached, true, 'the second found the file complete');
  assert.equal(b.sha256, modelSha);
  assert.equal(bodyGets(hub).length, 1, 'the file went over the wire once');
  assert.ok(fs.readFileSync(dest).equals(model));
  assert.deepEqual(fs.readdirSync(dir), ['model.onnx']);
});

test('HF_TOKEN goes to the hub as a bearer token but not to the CDN; without it 401 says to set HF_TOKEN', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  hub.requireToken('hf_secret');
  const err = await rejectsWith(downloadFile({ url: url(), dest: path.join(dir, 'a.onnx') }, opts()), 'unauthorized');
  assert.match(err.message, /^401 from .*: .*private or gated.*set HF_TOKEN/);
  assert.equal(hub.requests.length, 1, 'no retry on 401');

  await rejectsWith(downloadFile({ url: url(), dest: path.join(dir, 'b.onnx') }, opts({ token: 'wrong' })), 'unauthorized');
  hub.requests.length = 0;
  await downloadFile({ url: url(), dest: path.join(dir, 'c.onnx'), sha256: modelSha }, opts({ token: 'hf_secret' }));
  assert.deepEqual(
    hub.requests.map((r) => [r.server, r.authorization]),
    [['hub', 'Bearer hf_secret'], ['cdn', undefined]],
  );
});

test('fetchFileInfo reads commit, sha256 and size from the LFS redirect, and the git etag of other files', async (t) => {
  const { hub, url, opts } = await setup(t);
  assert.deepEqual(await fetchFileInfo(url(), opts()), { url: url(), commit: COMMIT, sha256: modelSha, size: model.length, etag: modelSha });
  assert.deepEqual(
    hub.requests.map((r) => [r.server, r.method, r.status]),
    [['hub', 'HEAD', 302]],
    'the redirect already says everything',
  );
  const gitSha1 = createHash('sha1').update(`blob ${config.length}\0${config}`).digest('hex');
  assert.deepEqual(await fetchFileInfo(url(CONFIG, COMMIT), opts()), { url: url(CONFIG, COMMIT), commit: COMMIT, size: config.length, etag: gitSha1 });
});

test('with a proxy configured, requests go through it', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const proxy = await startForwardProxy();
  t.after(() => proxy.close());
  const dest = path.join(dir, 'model.onnx');
  await downloadFile({ url: url(), dest, sha256: modelSha }, opts({ proxy: { httpProxy: proxy.url, noProxy: '' } }));
  assert.ok(fs.readFileSync(dest).equals(model));
  // undici tunnels with CONNECT even to http:// targets.
  assert.ok(proxy.requests.includes(`CONNECT ${new URL(hub.endpoint).host}`), proxy.requests.join(', '));
  assert.ok(proxy.requests.includes(`CONNECT ${new URL(hub.cdnOrigin).host}`), proxy.requests.join(', '));
});

test('offline mode serves complete files and refuses everything else without a request', async (t) => {
  const { hub, dir, url, opts } = await setup(t);
  const dest = path.join(dir, 'model.onnx');
  const err = await rejectsWith(downloadFile({ url: url(), dest, sha256: modelSha }, opts({ offline: true })), 'offline');
  assert.match(err.message, /HF_HUB_OFFLINE/);
  await rejectsWith(fetchFileInfo(url(), opts({ offline: true })), 'offline');
  assert.equal(hub.requests.length, 0);
  assert.deepEqual(fs.readdirSync(dir), []);

  await downloadFile({ url: url(), dest, sha256: modelSha }, opts());
  const res = await downloadFile({ url: url(), dest, sha256: modelSha }, opts({ offline: true }));
  assert.equal(res.cached, true);
});
