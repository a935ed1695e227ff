// ImageDecoderPool: preprocessImage in worker threads gives the same tensors and the same per-row errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { ImageDecoderPool, inThreadDecoder } from '../../src/runtime/image-decoder.js';
import { imagenetPreprocess, withPreprocessing } from '../../src/embed/image-preprocess.js';
import { RowError } from '../../src/errors.js';

const imagesDir = path.join(goldenDir, 'images');
const opts = { maxPixels: 100_000_000, name: 'the photo' };

test('the pool decodes exactly what this thread does, both preprocessings, many at once', async () => {
  const pool = ImageDecoderPool.start(2);
  try {
    assert.equal(pool.workers, 2);
    const files = fs.readdirSync(imagesDir).filter((f) => /\.(jpg|png|webp|gif|tif)$/.test(f));
    for (const spec of [imagenetPreprocess, withPreprocessing(imagenetPreprocess, 'fast')]) {
      const bytes = files.map((f) => fs.readFileSync(path.join(imagesDir, f)));
      const [ours, theirs] = await Promise.all([
        Promise.all(bytes.map((b) => pool.decode(b, spec, opts))),
        Promise.all(bytes.map((b) => inThreadDecoder.decode(b, spec, opts))),
      ]);
      ours.forEach((t, i) => assert.deepEqual(t, theirs[i], files[i]));
      assert.ok(bytes.every((b) => b.length > 0), "the caller's bytes are left alone");
    }
  } finally {
    await pool.close();
  }
});

test("decodeFile reads the file in the worker: the same tensor, and readImageFile's errors", async () => {
  const pool = ImageDecoderPool.start(1);
  const file = path.join(imagesDir, 'photo-640x480.jpg');
  const rejects = (p: Promise<unknown>, code: string) => assert.rejects(p, (err: unknown) => err instanceof RowError && err.code === code);
  try {
    for (const decoder of [pool, inThreadDecoder]) {
      assert.deepEqual(await decoder.decodeFile(file, 1 << 30, imagenetPreprocess, opts), await inThreadDecoder.decode(fs.readFileSync(file), imagenetPreprocess, opts));
      await rejects(decoder.decodeFile(path.join(imagesDir, 'no-such.jpg'), 1 << 30, imagenetPreprocess, opts), 'image_not_found');
      await rejects(decoder.decodeFile(imagesDir, 1 << 30, imagenetPreprocess, opts), 'image_not_found');
      await rejects(decoder.decodeFile(file, 1000, imagenetPreprocess, opts), 'image_too_large');
    }
  } finally {
    await pool.close();
  }
});

test('per-image failures come back as RowErrors with their codes; a closed pool refuses', async () => {
  const pool = ImageDecoderPool.start(1);
  const photo = fs.readFileSync(path.join(imagesDir, 'photo-640x480.jpg'));
  const rejects = (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (err: unknown) => err instanceof RowError && err.code === code && err.message.includes('the photo'));
  try {
    await rejects(pool.decode(photo.subarray(0, 400), imagenetPreprocess, opts), 'image_corrupt');
    await rejects(pool.decode(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), imagenetPreprocess, opts), 'image_unsupported');
    await rejects(pool.decode(photo, imagenetPreprocess, { ...opts, maxPixels: 1000 }), 'image_too_large');
    assert.equal((await pool.decode(photo, imagenetPreprocess, opts)).length, 3 * 224 * 224, 'still working after errors');
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.decode(photo, imagenetPreprocess, opts), /closed/);
});
