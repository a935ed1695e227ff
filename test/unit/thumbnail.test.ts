// Report thumbnails: small JPEG data URIs from an image's bytes or a catalog cell, and null (never a throw) for
// anything that is not a readable raster image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { thumbnailForCell, thumbnailFromBytes, THUMBNAIL_SIDE } from '../../src/report/thumbnail.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-thumb-'));

async function decode(src: string): Promise<Metadata> {
  const m = /^data:image\/jpeg;base64,([A-Za-z0-9+/]+={0,2})$/.exec(src);
  assert.ok(m, `a base64 JPEG data URI: ${src.slice(0, 40)}`);
  return sharp(Buffer.from(m[1], 'base64')).metadata();
}

test('bytes: a JPEG of at most 96 px on the longer side, aspect kept, alpha flattened', async () => {
  const png = await sharp({ create: { width: 400, height: 200, channels: 4, background: { r: 200, g: 30, b: 30, alpha: 0.5 } } }).png().toBuffer();
  const t = await thumbnailFromBytes(png);
  assert.ok(t);
  assert.deepEqual([t.width, t.height], [THUMBNAIL_SIDE, THUMBNAIL_SIDE / 2]);
  const meta = await decode(t.src);
  assert.equal(meta.format, 'jpeg');
  assert.deepEqual([meta.width, meta.height], [96, 48]);
  assert.ok(t.src.length < 6000, `small: ${t.src.length} characters`);
  // Small photos are not blown up.
  const small = await thumbnailFromBytes(await sharp({ create: { width: 40, height: 30, channels: 3, background: '#333' } }).jpeg().toBuffer());
  assert.deepEqual([small!.width, small!.height], [40, 30]);
});

test('bytes: not an image, an SVG, a truncated JPEG or an image over the pixel limit give null', async () => {
  assert.equal(await thumbnailFromBytes(Buffer.from('not an image at all')), null);
  assert.equal(await thumbnailFromBytes(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>')), null);
  const jpeg = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#888' } }).jpeg().toBuffer();
  const cut = await thumbnailFromBytes(jpeg.subarray(0, 40));
  assert.equal(cut, null);
  assert.equal(await thumbnailFromBytes(jpeg, { maxPixels: 1000 }), null);
});

test('cells: relative paths resolve against baseDir; empty, missing and unsupported references give null', async () => {
  fs.mkdirSync(path.join(tmp, 'images'), { recursive: true });
  await sharp({ create: { width: 120, height: 240, channels: 3, background: '#0a0' } }).jpeg().toFile(path.join(tmp, 'images', 'a.jpg'));
  fs.writeFileSync(path.join(tmp, 'images', 'broken.jpg'), 'this is text');
  const t = await thumbnailForCell('images/a.jpg', { baseDir: tmp });
  assert.deepEqual([t!.width, t!.height], [48, 96]);
  assert.equal(await thumbnailForCell('', { baseDir: tmp }), null);
  assert.equal(await thumbnailForCell('   ', { baseDir: tmp }), null);
  assert.equal(await thumbnailForCell('images/missing.jpg', { baseDir: tmp }), null);
  assert.equal(await thumbnailForCell('images/broken.jpg', { baseDir: tmp }), null);
  assert.equal(await thumbnailForCell('images', { baseDir: tmp }), null);
  assert.equal(await thumbnailForCell('ftp://example.com/a.jpg', { baseDir: tmp }), null);
  // Over --max-image-mb: refused before reading.
  assert.equal(await thumbnailForCell('images/a.jpg', { baseDir: tmp, fetch: { maxBytes: 10 } }), null);
});
