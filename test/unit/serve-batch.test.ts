// /predict/batch's pure parts: JSON lines into rows (bad lines become bad rows), bounded lines, and the image
// reference policy (--image-root, --allow-image-urls) that keeps clients from reading any file on the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { boundedLines, jsonlRow } from '../../src/serve/batch.js';
import { imagePolicy, screenImageRef } from '../../src/serve/image-policy.js';
import type { CatalogRow } from '../../src/io/catalog-reader.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

test('boundedLines: lines across chunks, CRLF left to the JSON parser, no trailing newline, an overlong line skipped to its end', async () => {
  assert.deepEqual(await collect(boundedLines(chunks('{"a"', ':1}\n{"b":2}\r\n', '\n{"c"', ':3}'), 100)), [{ text: '{"a":1}' }, { text: '{"b":2}\r' }, { text: '' }, { text: '{"c":3}' }]);
  assert.deepEqual(await collect(boundedLines(chunks('short\n', 'x'.repeat(30), 'y'.repeat(30), '\nafter\n'), 40)), [{ text: 'short' }, { tooLong: 60 }, { text: 'after' }]);
  assert.deepEqual(await collect(boundedLines(chunks('é'.repeat(3) + '\n'), 100)), [{ text: 'ééé' }]);
});

test('jsonlRow: fields, default id, base64 and data: URLs, and every problem as the row error', () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6, 7, 0xff]);
  const b64 = png.toString('base64');
  const ok = jsonlRow(JSON.stringify({ id: 7, title: 'T', description: 'D', image: ' a.jpg ' }), 0, 1, 1000);
  assert.deepEqual({ id: ok.id, title: ok.title, description: ok.description, image: ok.image, error: ok.error }, { id: '7', title: 'T', description: 'D', image: 'a.jpg', error: undefined });
  assert.equal(jsonlRow('{}', 4, 5, 1000).id, '5');
  assert.deepEqual(jsonlRow(JSON.stringify({ image_base64: b64 }), 0, 1, 1000).imageBytes, png);
  assert.deepEqual(jsonlRow(JSON.stringify({ image_base64: `data:image/png;base64,${b64}` }), 0, 1, 1000).imageBytes, png);
  const err = (line: string, max = 1000) => jsonlRow(line, 0, 1, max).error;
  assert.match(err('nope')!, /^bad_json: /);
  assert.equal(err('[1]'), 'bad_row: expected a JSON object');
  assert.equal(err('{"title":3}'), 'bad_row: title must be a string');
  assert.equal(err('{"image":"a","image_base64":"AAAA"}'), 'bad_row: give image or image_base64, not both');
  assert.equal(err('{"image_base64":"**"}'), 'bad_row: image_base64 is not base64');
  assert.match(err(JSON.stringify({ image_base64: b64 }), 8)!, /^image_too_large: image_base64 holds 16 bytes, over the 8-byte limit$/);
});

test('screenImageRef: paths only under --image-root (symlinks followed), URLs only when allowed', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-serve-policy-'));
  const root = path.join(base, 'root');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'sub', 'a.jpg'), 'x');
  fs.writeFileSync(path.join(base, 'secret.jpg'), 'x');
  fs.symlinkSync(path.join(base, 'secret.jpg'), path.join(root, 'link.jpg'));
  fs.symlinkSync(base, path.join(root, 'up'));
  const row = (image: string): CatalogRow => ({ index: 0, line: 1, id: '1', title: 't', description: '', image, extra: {} });
  const realRoot = fs.realpathSync(root);

  const none = await imagePolicy(undefined, false);
  assert.match((await screenImageRef(row('sub/a.jpg'), none)).error!, /^image_ref_refused: this server reads no image files/);
  assert.match((await screenImageRef(row('http://example.com/a.jpg'), none)).error!, /^image_ref_refused: this server does not fetch image URLs/);
  assert.equal((await screenImageRef(row(''), none)).error, undefined);
  // Schemes the pipeline refuses anyway pass through to get its usual warning.
  assert.equal((await screenImageRef(row('ftp://x/a.jpg'), none)).error, undefined);

  const p = await imagePolicy(root, true);
  assert.equal((await screenImageRef(row('sub/a.jpg'), p)).image, path.join(realRoot, 'sub', 'a.jpg'));
  assert.equal((await screenImageRef(row(path.join(root, 'sub', 'a.jpg')), p)).image, path.join(realRoot, 'sub', 'a.jpg'));
  assert.equal((await screenImageRef(row('sub/missing.jpg'), p)).image, path.join(realRoot, 'sub', 'missing.jpg'));
  assert.equal((await screenImageRef(row('https://example.com/a.jpg'), p)).image, 'https://example.com/a.jpg');
  for (const bad of ['../secret.jpg', 'sub/../../secret.jpg', path.join(base, 'secret.jpg'), 'link.jpg', 'up/secret.jpg', `file://${path.join(base, 'secret.jpg')}`, '/etc/passwd']) {
    assert.match((await screenImageRef(row(bad), p)).error ?? '', /^image_ref_refused: .* is outside the server's --image-root$/, bad);
  }
  // Rows already failed or carrying bytes are left alone.
  assert.equal((await screenImageRef({ ...row('../x'), error: 'ragged_row: 1' }, p)).error, 'ragged_row: 1');
  assert.equal((await screenImageRef({ ...row('../x'), imageBytes: Buffer.from('x') }, p)).error, undefined);

  await assert.rejects(imagePolicy(path.join(base, 'nope'), false), /--image-root .* does not exist/);
  await assert.rejects(imagePolicy(path.join(base, 'secret.jpg'), false), /is not a folder/);
});
