// `serve` in process on the demo bundle (port 0): /predict's exact response shape and every error status, the queue
// bound, readiness, timeouts, metrics, /predict/batch with JSON lines and CSV, and a graceful close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { ensureDemo, demo } from '../helpers/cli.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { serveOptions } from '../helpers/serve-options.js';
import { openServeSession } from '../../src/serve/session.js';

const MB = 1024 * 1024;
const RESPONSE_KEYS = ['category', 'score', 'top_categories', 'tags'];
const RECORD_KEYS = ['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings'];
const jpg = () => fs.readFileSync(path.join(demo.images, 'P0001.jpg'));
const png = () => fs.readFileSync(path.join(demo.images, 'P0002.png'));

function form(fields: Record<string, string | Blob>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof Blob) f.append(k, v, `${k}.bin`);
    else f.append(k, v);
  }
  return f;
}

const image = (bytes: Buffer, type = 'image/jpeg') => new Blob([new Uint8Array(bytes)], { type });

async function predict(s: RunningServer, fields: Record<string, string | Blob>): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${s.url}/predict`, { method: 'POST', body: form(fields) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function batch(s: RunningServer, body: string, type: string, query = ''): Promise<{ status: number; type: string | null; lines: any[]; text: string }> {
  const res = await fetch(`${s.url}/predict/batch${query}`, { method: 'POST', body, headers: { 'content-type': type } });
  const text = await res.text();
  const lines = res.ok ? text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) : [];
  return { status: res.status, type: res.headers.get('content-type'), lines, text };
}

let server: RunningServer;
let classes: string[];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-serve-'));

before(async () => {
  await ensureDemo();
  classes = JSON.parse(fs.readFileSync(path.join(demo.bundle, 'manifest.json'), 'utf8')).classes;
  server = await startServer(serveOptions({ imageRoot: path.dirname(demo.catalog) }));
  await server.ready;
});

after(async () => {
  await server.close();
});

test('/predict: the original response, exactly those keys, 3 top categories, tags bounded by top_k_tags', async () => {
  const r = await predict(server, { image: image(jpg()), title: 'Acme running shoes mesh', description: 'Lightweight trainers for daily runs' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(r.body), RESPONSE_KEYS);
  assert.ok(classes.includes(r.body.category));
  assert.equal(typeof r.body.score, 'number');
  assert.equal(r.body.top_categories.length, 3);
  for (const t of r.body.top_categories) assert.deepEqual(Object.keys(t), ['category', 'prob']);
  assert.equal(r.body.top_categories[0].category, r.body.category);
  assert.equal(r.body.top_categories[0].prob, r.body.score);
  assert.ok(r.body.tags.length > 0 && r.body.tags.length <= 5);
  assert.equal(r.headers.get('x-categorize-warnings'), null);

  const two = await predict(server, { image: image(jpg()), title: 'Acme running shoes mesh', description: 'Lightweight trainers for daily runs', top_k_tags: '2' });
  assert.deepEqual(two.body.tags, r.body.tags.slice(0, 2));
  assert.equal(two.body.category, r.body.category);
  const none = await predict(server, { image: image(jpg()), title: 'Acme running shoes', top_k_tags: '0' });
  assert.deepEqual(none.body.tags, []);
});

test('/predict: fields in any order, no text at all (image only: a warning header, the shape unchanged)', async () => {
  const f = new FormData();
  f.append('top_k_tags', '3');
  f.append('image', image(png(), 'image/png'), 'x.png');
  f.append('title', 'Oak dining table');
  const res = await fetch(`${server.url}/predict`, { method: 'POST', body: f });
  const body = (await res.json()) as { tags: string[] };
  assert.equal(res.status, 200);
  assert.ok(body.tags.length <= 3 && body.tags.includes('oak'));
  const bare = await predict(server, { image: image(png(), 'image/png') });
  assert.equal(bare.status, 200);
  assert.deepEqual(Object.keys(bare.body), RESPONSE_KEYS);
  assert.deepEqual(bare.body.tags, []);
  assert.equal(bare.headers.get('x-categorize-warnings'), 'text_missing');
});

test('/predict: the same prediction as the batch endpoint (run\'s pipeline) for the same row', async () => {
  const title = 'Nordia powerful gaming laptop 14 inch display';
  const single = await predict(server, { image: image(png(), 'image/png'), title });
  const b = await batch(server, JSON.stringify({ title, image_base64: png().toString('base64') }) + '\n', 'application/x-ndjson');
  assert.equal(b.lines[0].category, single.body.category);
  assert.ok(Math.abs(b.lines[0].score - single.body.score) < 1e-6);
  assert.deepEqual(b.lines[0].tags, single.body.tags);
});

test('/predict: a missing image is 422 naming the field, FastAPI-style; so is a text field called image, and a non-form body', async () => {
  const r = await predict(server, { title: 'no image here' });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body, { detail: [{ type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null }] });
  const asText = await predict(server, { image: 'not a file' });
  assert.equal(asText.status, 422);
  assert.deepEqual(asText.body.detail[0].loc, ['body', 'image']);
  const json = await fetch(`${server.url}/predict`, { method: 'POST', body: '{"title":"x"}', headers: { 'content-type': 'application/json' } });
  assert.equal(json.status, 422);
  assert.deepEqual(((await json.json()) as { detail: { loc: string[] }[] }).detail[0].loc, ['body', 'image']);
  const urlencoded = await fetch(`${server.url}/predict`, { method: 'POST', body: 'title=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(urlencoded.status, 422);
});

test('/predict: a non-image upload is 415; corrupt or empty image bytes are 422', async () => {
  const text = await predict(server, { image: new Blob(['hello, I am a text file'], { type: 'image/jpeg' }), title: 'x' });
  assert.equal(text.status, 415);
  assert.match(text.body.detail, /not an image/);
  const corrupt = await predict(server, { image: image(jpg().subarray(0, 400)), title: 'Acme running shoes' });
  assert.equal(corrupt.status, 422);
  assert.match(corrupt.body.detail, /^image: corrupt image: the uploaded file/);
  const empty = await predict(server, { image: new Blob([]), title: 'x' });
  assert.equal(empty.status, 422);
  assert.deepEqual(empty.body.detail[0].loc, ['body', 'image']);
});

test('/predict: top_k_tags not an integer or out of 0..50 is 422, gathered with a missing image', async () => {
  for (const bad of ['abc', '2.5', '-1', '51', '']) {
    const r = await predict(server, { image: image(jpg()), top_k_tags: bad });
    assert.equal(r.status, 422, bad);
    assert.deepEqual(r.body.detail.map((d: { loc: string[] }) => d.loc), [['body', 'top_k_tags']], bad);
  }
  const both = await predict(server, { top_k_tags: 'x' });
  assert.deepEqual(both.body.detail.map((d: { loc: string[] }) => d.loc.join('.')), ['body.image', 'body.top_k_tags']);
});

/** A raw request: the headers (and `body`, if any) are sent; resolves on the response, whatever the upload's fate. */
function rawPost(url: string, headers: Record<string, string | number>, body?: (req: http.ClientRequest) => void): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    // The server may close while we are still sending: that is the point, not a failure.
    req.on('error', (err) => (req.headersSent ? undefined : reject(err)));
    if (body) body(req);
    else req.flushHeaders();
  });
}

test('/predict: an upload over --max-upload-mb is 413, refused from its Content-Length before any byte of it is read', async () => {
  const small = await startServer(serveOptions({ maxUploadBytes: 10 * 1024 }));
  try {
    await small.ready;
    // Only headers go out: the answer cannot have waited for a body.
    const r = await rawPost(`${small.url}/predict`, { 'content-type': 'multipart/form-data; boundary=xyz', 'content-length': 50 * MB });
    assert.equal(r.status, 413);
    assert.equal(r.headers.connection, 'close');
    assert.match(JSON.parse(r.body).detail, /over the upload limit/);

    // Chunked (no Content-Length): the multipart limit cuts the file off.
    const boundary = 'b0undary';
    const big = Buffer.concat([jpg(), Buffer.alloc(64 * 1024)]);
    const payload = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      big,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const chunked = await rawPost(`${small.url}/predict`, { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' }, (req) => {
      req.write(payload);
      req.end();
    });
    assert.equal(chunked.status, 413);
    assert.match(JSON.parse(chunked.body).detail, /over the 10240-byte upload limit/);
    // Small enough still goes through.
    const ok = await predict(small, { image: image(jpg()), title: 'shoes' });
    assert.equal(ok.status, jpg().length <= 10 * 1024 ? 200 : 413);
  } finally {
    await small.close();
  }
});

test('queue full: 503 with Retry-After, the admitted request still answered', async () => {
  // A long batch wait keeps the first request in flight while the second arrives.
  const s = await startServer(serveOptions({ maxQueue: 1, maxWaitMs: 1500 }));
  try {
    await s.ready;
    const first = predict(s, { image: image(jpg()), title: 'shoes' });
    while (s.metrics.queueDepth.value() < 1) await new Promise((r) => setTimeout(r, 5));
    const second = await predict(s, { image: image(jpg()), title: 'shoes' });
    assert.equal(second.status, 503);
    assert.equal(second.headers.get('retry-after'), '1');
    assert.match(second.body.detail, /busy/);
    const batchBusy = await batch(s, '{"title":"x"}\n', 'application/x-ndjson');
    assert.equal(batchBusy.status, 503);
    assert.equal((await first).status, 200);
    assert.equal(s.metrics.queueDepth.value(), 0);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /^categorize_errors_total\{route="\/predict",code="queue_full"\} 1$/m);
    assert.match(metrics, /^categorize_http_requests_total\{route="\/predict",method="POST",status="503"\} 1$/m);
  } finally {
    await s.close();
  }
});

test('request timeout: 504, and the slot stays held until the work is really over', async () => {
  const s = await startServer(serveOptions({ requestTimeoutMs: 100, maxWaitMs: 600 }));
  try {
    await s.ready;
    const r = await predict(s, { image: image(jpg()), title: 'shoes' });
    assert.equal(r.status, 504);
    assert.match(r.body.detail, /timed out after 100 ms/);
    assert.equal(s.metrics.queueDepth.value(), 1);
    while (s.metrics.queueDepth.value() > 0) await new Promise((res) => setTimeout(res, 10));
  } finally {
    await s.close();
  }
});

test('--cache: an uploaded image is cached by its bytes (sha256): the same upload again is a hit', async () => {
  const s = await startServer(serveOptions({ embedCache: { dir: path.join(tmp, 'cache') } }));
  try {
    await s.ready;
    const first = await predict(s, { image: image(jpg()), title: 'Acme running shoes' });
    const again = await predict(s, { image: image(jpg()), title: 'Acme running shoes' });
    assert.deepEqual(again.body, first.body);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    // Text and image of the first request missed, both hit the second time.
    assert.match(text, /^categorize_embed_cache_lookups_total\{result="hit"\} 2$/m);
    assert.match(text, /^categorize_embed_cache_lookups_total\{result="miss"\} 2$/m);
  } finally {
    await s.close();
  }
});

test('/healthz at once, /readyz and /predict 503 until the models are loaded', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const s = await startServer(serveOptions(), { openSession: async (o) => (await gate, openServeSession(o)) });
  try {
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    const notReady = await fetch(`${s.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), { status: 'loading' });
    const early = await predict(s, { image: image(jpg()), title: 'shoes' });
    assert.equal(early.status, 503);
    assert.ok(early.headers.get('retry-after'));
    assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^categorize_ready 0$/m);
    open();
    await s.ready;
    const ready = await fetch(`${s.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
    assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^categorize_ready 1$/m);
  } finally {
    await s.close();
  }
});

test('a bundle that cannot be opened rejects ready (the CLI exits 2)', async () => {
  const s = await startServer(serveOptions({ model: path.join(tmp, 'no-such-bundle') }));
  try {
    await assert.rejects(s.ready, /bundle|manifest|not found|no such/i);
    assert.equal((await fetch(`${s.url}/readyz`)).status, 503);
  } finally {
    await s.close();
  }
});

test('/metrics: Prometheus text with requests by route and status, latency, micro-batch sizes, queue depth', async () => {
  await predict(server, { image: image(jpg()), title: 'shoes' });
  await fetch(`${server.url}/no-such-route`);
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.match(text, /^# TYPE categorize_http_requests_total counter$/m);
  assert.match(text, /^categorize_http_requests_total\{route="\/predict",method="POST",status="200"\} [1-9]\d*$/m);
  assert.match(text, /^categorize_http_requests_total\{route="unmatched",method="GET",status="404"\} 1$/m);
  assert.match(text, /^# TYPE categorize_http_request_duration_seconds histogram$/m);
  assert.match(text, /^categorize_http_request_duration_seconds_bucket\{route="\/predict",le="\+Inf"\} [1-9]\d*$/m);
  assert.match(text, /^categorize_model_batch_size_count\{model="image"\} [1-9]\d*$/m);
  assert.match(text, /^categorize_model_batch_size_count\{model="text"\} [1-9]\d*$/m);
  assert.match(text, /^categorize_queue_depth 0$/m);
  assert.match(text, /^categorize_queue_limit 64$/m);
  assert.match(text, /^categorize_errors_total\{route="\/predict",code="image_unsupported"\} \d+$/m);
  // The predictor's own lists were moved into the histogram, not left to grow with the server's uptime.
  assert.equal(server.metrics.modelBatch.totals({ model: 'image' }).count > 0, true);
});

test('/predict/batch, JSON lines: one record per line in order, bad lines reported in place, run\'s record shape', async () => {
  const rows = [
    JSON.stringify({ id: 'a', title: 'Acme running shoes', image: 'images/P0001.jpg' }),
    'this is not json',
    JSON.stringify({ title: 'Oak dining table', image_base64: png().toString('base64') }),
    '',
    JSON.stringify({ id: 'd', title: 'Steel watch', image: '../../etc/passwd' }),
    JSON.stringify({ id: 'e', title: 'Kids puzzle', image: 'images/no-such-file.jpg' }),
    JSON.stringify({ id: 'f', title: 'x', image: 'https://example.com/a.jpg' }),
    JSON.stringify({ id: 'g', title: 3 }),
  ];
  const r = await batch(server, rows.join('\n') + '\n', 'application/x-ndjson', '?top_k_tags=2');
  assert.equal(r.status, 200);
  assert.match(r.type ?? '', /^application\/x-ndjson/);
  assert.deepEqual(r.lines.map((l) => l.id), ['a', '2', '3', 'd', 'e', 'f', 'g']);
  for (const l of r.lines) assert.deepEqual(Object.keys(l), RECORD_KEYS);
  assert.equal(r.lines[0].status, 'ok');
  assert.ok(r.lines[0].tags.length <= 2);
  assert.match(r.lines[1].error, /^bad_json: /);
  assert.equal(r.lines[2].status, 'ok');
  assert.match(r.lines[3].error, /^image_ref_refused: .* outside the server's --image-root$/);
  // A missing file is the pipeline's usual warning: predicted from the text.
  assert.equal(r.lines[4].status, 'ok');
  assert.match(r.lines[4].warnings[0], /^image_not_found: /);
  assert.match(r.lines[5].error, /^image_ref_refused: this server does not fetch image URLs/);
  assert.equal(r.lines[6].error, 'bad_row: title must be a string');
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^categorize_batch_request_rows_count [1-9]\d*$/m);
  assert.match(metrics, /^categorize_errors_total\{route="\/predict\/batch",code="bad_json"\} [1-9]\d*$/m);
});

test('/predict/batch, CSV: run\'s reader and columns, one record per row in order, a ragged row reported without losing the others', async () => {
  const lines = fs.readFileSync(demo.catalog, 'utf8').trim().split('\n');
  const header = lines[0];
  const data = lines.slice(1, 21);
  const csv = [header, ...data.slice(0, 10), 'BAD1,only two', ...data.slice(10)].join('\n') + '\n';
  const r = await batch(server, csv, 'text/csv');
  assert.equal(r.status, 200);
  const ids = [...data.slice(0, 10), 'BAD1', ...data.slice(10)].map((l) => l.split(',')[0]);
  assert.deepEqual(r.lines.map((l) => l.id), ids);
  assert.match(r.lines[10].error, /^ragged_row: 2 fields where the header has 5$/);
  const others = r.lines.filter((_, i) => i !== 10);
  assert.ok(others.every((l) => l.status === 'ok'), JSON.stringify(others.filter((l) => l.status !== 'ok')));
  // Same records as `run` writes for those rows (images under --image-root = the catalog's folder).
  assert.ok(others.filter((l) => l.warnings.length === 0).length >= 15);

  const asCsv = await fetch(`${server.url}/predict/batch`, { method: 'POST', body: [header, ...data.slice(0, 3)].join('\n'), headers: { 'content-type': 'text/csv', accept: 'text/csv' } });
  assert.match(asCsv.headers.get('content-type') ?? '', /^text\/csv/);
  const out = (await asCsv.text()).trim().split('\n');
  assert.equal(out[0], RECORD_KEYS.join(','));
  assert.equal(out.length, 4);
});

test('/predict/batch: a CSV without the needed columns is 422; other bodies are 415; a bad top_k_tags is 422', async () => {
  const noText = await batch(server, 'sku,photo\n1,a.jpg\n', 'text/csv');
  assert.equal(noText.status, 422);
  assert.match(JSON.parse(noText.text).detail, /column .* not found \(columns found: 'sku', 'photo'\)/);
  // Unparseable before any record went out: the whole request is refused (after that, the stream is cut short).
  const unclosed = await batch(server, 'id,title,description,image\n1,"shoes,,\n', 'text/csv');
  assert.equal(unclosed.status, 422);
  assert.match(unclosed.type ?? '', /^application\/json/);
  assert.match(JSON.parse(unclosed.text).detail, /Quote Not Closed/);
  const json = await batch(server, '[{"title":"x"}]', 'application/json');
  assert.equal(json.status, 415);
  const bin = await batch(server, 'xx', 'application/octet-stream');
  assert.equal(bin.status, 415);
  const k = await batch(server, '{"title":"x"}\n', 'application/x-ndjson', '?top_k_tags=99');
  assert.equal(k.status, 422);
  assert.deepEqual(JSON.parse(k.text).detail[0].loc, ['query', 'top_k_tags']);
});

test('/predict/batch streams: the first records arrive before the body is complete', async () => {
  const url = new URL(`${server.url}/predict/batch`);
  const got = await new Promise<string>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (d: string) => {
        // A record came back while the request is still open: now finish it.
        req.end(JSON.stringify({ id: 'last', title: 'Steel watch' }) + '\n');
        let rest = d;
        res.on('data', (x: string) => (rest += x));
        res.on('end', () => resolve(rest));
      });
    });
    req.on('error', reject);
    req.write(JSON.stringify({ id: 'first', title: 'Acme running shoes' }) + '\n');
  });
  assert.deepEqual(got.trim().split('\n').map((l) => JSON.parse(l).id), ['first', 'last']);
});

test('close: stops taking requests, finishes the one in flight, closes the session', async () => {
  const s = await startServer(serveOptions({ maxWaitMs: 2000 }));
  await s.ready;
  const inFlight = predict(s, { image: image(jpg()), title: 'shoes' });
  while (s.metrics.queueDepth.value() < 1) await new Promise((r) => setTimeout(r, 5));
  const closed = s.close();
  const r = await inFlight;
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.body), RESPONSE_KEYS);
  await closed;
  await assert.rejects(fetch(`${s.url}/healthz`));
});
