// End-to-end: the real `categorize serve` binary, spoken to the way the replaced FastAPI service's clients do (a
// multipart body built by hand over node:http), then stopped with SIGTERM while a request is in flight.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { bin, demo, ensureDemo } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

before(async () => {
  await ensureDemo();
});

/** The multipart/form-data body a requests/curl client sends: text fields, then the file. */
function multipart(fields: Record<string, string>, file: { name: string; filename: string; type: string; bytes: Buffer }): { boundary: string; body: Buffer } {
  const boundary = `----categorize${Date.now().toString(16)}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; filename="${file.filename}"\r\nContent-Type: ${file.type}\r\n\r\n`));
  parts.push(file.bytes, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { boundary, body: Buffer.concat(parts) };
}

function request(url: string, opts: { method?: string; headers?: Record<string, string | number>; body?: Buffer } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Resolves with the base URL the server prints on stdout ("listening on http://…"). */
async function listeningUrl(child: ChildProcess): Promise<string> {
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    const m = /^listening on (http:\/\/\S+)$/m.exec(out);
    if (m) return m[1];
  }
  throw new Error(`server exited before listening: ${out}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serve: the original client contract over plain HTTP, then SIGTERM: the request in flight completes, exit 0', async () => {
  // A long micro-batch wait keeps the request in flight until the signal (shutdown sends partial batches at once).
  const child = spawn(process.execPath, [bin, 'serve', '--model', demo.bundle, '--port', '0', '--max-wait-ms', '5000'], {
    cwd: repoRoot,
    env: { ...process.env, HF_HUB_OFFLINE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    const url = await listeningUrl(child);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await request(`${url}/healthz`)).status, 200);
    for (let i = 0; (await request(`${url}/readyz`)).status !== 200; i++) {
      assert.ok(i < 300, `not ready after 30 s: ${stderr}`);
      await sleep(100);
    }

    const { boundary, body } = multipart(
      { title: 'Acme running shoes', description: 'Breathable mesh upper', top_k_tags: '3' },
      { name: 'image', filename: 'P0001.jpg', type: 'image/jpeg', bytes: fs.readFileSync(path.join(demo.images, 'P0001.jpg')) },
    );
    const response = request(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
      body,
    });
    // In flight (admitted, waiting for its micro-batch) before the signal goes.
    for (let i = 0; !/^categorize_queue_depth 1$/m.test((await request(`${url}/metrics`)).body); i++) {
      assert.ok(i < 200, 'the request never showed up as in flight');
      await sleep(10);
    }
    child.kill('SIGTERM');
    const r = await response;
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const json = JSON.parse(r.body) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json), ['category', 'score', 'top_categories', 'tags']);
    const classes = JSON.parse(fs.readFileSync(path.join(demo.bundle, 'manifest.json'), 'utf8')).classes as string[];
    assert.ok(classes.includes(json.category as string));
    assert.equal(typeof json.score, 'number');
    const top = json.top_categories as { category: string; prob: number }[];
    assert.equal(top.length, 3);
    for (const t of top) assert.deepEqual(Object.keys(t), ['category', 'prob']);
    assert.equal(top[0].category, json.category);
    const tags = json.tags as string[];
    assert.ok(tags.length > 0 && tags.length <= 3 && tags.every((t) => typeof t === 'string'));

    const [code, signal] = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SIGTERM: no new requests; finishing the ones in flight/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('serve: a bundle that does not exist fails with exit 2 and one line, after printing where it listened', async () => {
  const child = spawn(process.execPath, [bin, 'serve', '--model', path.join(repoRoot, 'no-such-bundle'), '--port', '0'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2, stderr);
  assert.match(stdout, /^listening on http:\/\/127\.0\.0\.1:\d+$/m);
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.match(stderr, /^categorize: error: /);
});

test('serve: a bad flag is a usage error (exit 2)', async () => {
  const child = spawn(process.execPath, [bin, 'serve', '--model', demo.bundle, '--port', '70000'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2);
  assert.match(stderr, /--port/);
});
