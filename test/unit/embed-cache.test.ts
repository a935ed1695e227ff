// The embedding cache (src/pipeline/embed-cache.ts) on its own — roundtrip, namespaces, corruption, persistence,
// two processes, SIGKILL mid-write, eviction — and through FeatureExtractor with fake encoders that count calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { open } from 'lmdb';
import { EmbedCache, cacheKey, decodeVector, encodeVector } from '../../src/pipeline/embed-cache.js';
import { FeatureExtractor, type FeatureOptions, type ImageEmbedder, type TextEmbedder, type RowFeatures } from '../../src/pipeline/features.js';
import { modelIdentity, openEncoders } from '../../src/pipeline/encoders.js';
import { sha256File } from '../../src/models/bundle.js';
import type { CatalogRow } from '../../src/io/catalog-reader.js';
import type { FeatureBlock } from '../../src/models/bundle.js';
import { ConfigError } from '../../src/errors.js';
import { preprocessImage, withPreprocessing } from '../../src/embed/image-preprocess.js';
import { repoRoot } from '../helpers/paths.js';

const moduleUrl = pathToFileURL(path.join(repoRoot, 'dist', 'src', 'pipeline', 'embed-cache.js')).href;

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embed-cache-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Deterministic pseudo-random vector per name; also sent to child processes as source, so keep it self-contained. */
function vecOf(name: string, dim: number): Float32Array {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) {
    h = (Math.imul(h, 1103515245) + 12345) >>> 0;
    v[i] = h / 2 ** 32 - 0.5;
  }
  return v;
}

function sameBits(a: Float32Array | undefined, b: Float32Array): boolean {
  if (!a || a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Runs an ES module snippet in a child node, with the cache module's URL and vecOf in scope. */
function child(code: string, env: Record<string, string>): { proc: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const script = `const { EmbedCache } = await import(${JSON.stringify(moduleUrl)});\n${vecOf.toString()}\n${code}`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { proc, done };
}

// ---------------------------------------------------------------------------------------------------------------
// The store

test('put/get: exact float32 bits, read-your-writes before commit, namespaces and lengths kept apart', async (t) => {
  const cache = EmbedCache.open({ dir: tempDir(t) });
  try {
    const odd = new Float32Array([0, -0, 1e-45, -3.4028234663852886e38, Infinity, -Infinity, NaN, 0.1]);
    new DataView(odd.buffer).setUint32(6 * 4, 0x7fc12345, true); // a NaN with a payload
    cache.put('text\nmodel-a', 'hello', odd);
    assert.ok(sameBits(cache.get('text\nmodel-a', 'hello'), odd), 'visible at once, before the write commits');
    await cache.flush();
    assert.ok(sameBits(cache.get('text\nmodel-a', 'hello'), odd), 'and after');
    assert.ok(sameBits(cache.get('text\nmodel-a', 'hello', 8), odd));
    assert.equal(cache.get('text\nmodel-a', 'hello', 384), undefined, 'another length is a miss');
    assert.equal(cache.get('text\nmodel-b', 'hello'), undefined, 'another model: miss');
    assert.equal(cache.get('image\nmodel-a', 'hello'), undefined, 'another kind: miss');
    assert.equal(cache.get('text\nmodel-a', 'hello '), undefined);
    // Length-prefixed namespace: moving bytes between namespace and input changes the key.
    assert.notDeepEqual(cacheKey('ab', 'c'), cacheKey('a', 'bc'));
    assert.equal(cacheKey('ns', 'x').length, 32);
    const other = vecOf('other', 8);
    cache.put('text\nmodel-b', 'hello', other);
    await cache.flush();
    assert.ok(sameBits(cache.get('text\nmodel-a', 'hello'), odd));
    assert.ok(sameBits(cache.get('text\nmodel-b', 'hello'), other));
    const returned = cache.get('text\nmodel-a', 'hello')!;
    returned[0] = 42; // a copy: the caller may keep or change it
    assert.ok(sameBits(cache.get('text\nmodel-a', 'hello'), odd));
    assert.deepEqual({ ...cache.stats }, { hits: 7, misses: 4, writes: 2, evicted: 0, corrupt: 0, failed: 0 });
  } finally {
    await cache.close();
  }
});

test('value format: header + little-endian floats; anything else decodes to nothing', () => {
  const v = vecOf('v', 5);
  const enc = encodeVector(v);
  assert.equal(enc.length, 8 + 20);
  assert.equal(enc.readUInt32LE(4), 5);
  assert.equal(enc.readFloatLE(8), v[0]);
  assert.ok(sameBits(decodeVector(enc), v));
  assert.equal(decodeVector(enc.subarray(0, enc.length - 1)), undefined, 'short');
  assert.equal(decodeVector(Buffer.concat([enc, Buffer.alloc(4)])), undefined, 'long');
  assert.equal(decodeVector(Buffer.from('garbage that is long enough')), undefined, 'no header');
  const zero = Buffer.from(enc.subarray(0, 8));
  zero.writeUInt32LE(0, 4);
  assert.equal(decodeVector(zero), undefined, 'zero-length');
  // Unaligned input (a slice of a larger buffer) still decodes.
  const shifted = Buffer.concat([Buffer.alloc(1), enc]).subarray(1);
  assert.ok(sameBits(decodeVector(shifted), v));
});

test('a corrupt value is a miss, counted, and overwritten by the next put', async (t) => {
  const dir = tempDir(t);
  let cache = EmbedCache.open({ dir });
  const names = ['short', 'magic', 'long', 'ok'];
  for (const n of names) cache.put('ns', n, vecOf(n, 16));
  await cache.close();
  // Damage three of them behind the cache's back.
  const env = open({ path: path.join(dir, 'embeddings.mdb'), noSubdir: true, maxDbs: 8 });
  const vectors = env.openDB<Buffer, Buffer>('vectors', { encoding: 'binary', keyEncoding: 'binary' });
  const good = encodeVector(vecOf('long', 16));
  await vectors.put(cacheKey('ns', 'short'), encodeVector(vecOf('short', 16)).subarray(0, 30));
  await vectors.put(cacheKey('ns', 'magic'), Buffer.concat([Buffer.from('XX'), encodeVector(vecOf('magic', 16)).subarray(2)]));
  await vectors.put(cacheKey('ns', 'long'), Buffer.concat([good, Buffer.alloc(4)]));
  await env.close();

  cache = EmbedCache.open({ dir });
  try {
    for (const n of ['short', 'magic', 'long']) assert.equal(cache.get('ns', n), undefined, n);
    assert.ok(sameBits(cache.get('ns', 'ok'), vecOf('ok', 16)));
    assert.equal(cache.stats.corrupt, 3);
    assert.equal(cache.stats.misses, 3);
    for (const n of ['short', 'magic', 'long']) cache.put('ns', n, vecOf(n, 16));
    await cache.flush();
    for (const n of ['short', 'magic', 'long']) assert.ok(sameBits(cache.get('ns', n), vecOf(n, 16)), n);
  } finally {
    await cache.close();
  }
});

test('persists across close and reopen; each open is a new generation; close is idempotent', async (t) => {
  const dir = path.join(tempDir(t), 'nested', 'cache');
  let cache = EmbedCache.open({ dir });
  const g1 = cache.generation;
  for (let i = 0; i < 50; i++) cache.put('ns', `k${i}`, vecOf(`k${i}`, 384));
  await cache.close();
  await cache.close();
  assert.equal(cache.get('ns', 'k1'), undefined, 'closed: no reads');
  cache.put('ns', 'late', vecOf('late', 384)); // ignored, no throw
  cache = EmbedCache.open({ dir });
  try {
    assert.equal(cache.generation, g1 + 1);
    for (let i = 0; i < 50; i++) assert.ok(sameBits(cache.get('ns', `k${i}`), vecOf(`k${i}`, 384)), `k${i}`);
    assert.equal(cache.get('ns', 'late'), undefined);
    assert.equal(cache.stats.hits, 50);
  } finally {
    await cache.close();
  }
});

test('a folder that cannot be created or used is a ConfigError naming it', (t) => {
  const file = path.join(tempDir(t), 'a-file');
  fs.writeFileSync(file, 'x');
  assert.throws(
    () => EmbedCache.open({ dir: path.join(file, 'cache') }),
    (e: unknown) => e instanceof ConfigError && e.exitCode === 2 && e.message.includes(path.join(file, 'cache')),
  );
  assert.throws(() => EmbedCache.open({ dir: file }), (e: unknown) => e instanceof ConfigError && e.message.includes(file));
  assert.throws(() => EmbedCache.open({ dir: path.join(path.dirname(file), 'c'), maxBytes: 0 }), ConfigError);
});

test('two processes writing and reading one folder at once see the same, complete values', async (t) => {
  const dir = tempDir(t);
  const code = `
    const c = EmbedCache.open({ dir: process.env.DIR });
    const id = process.env.ID, other = id === 'a' ? 'b' : 'a', N = 150, dim = 384;
    for (let i = 0; i < N; i++) {
      c.put('ns', 'own-' + id + '-' + i, vecOf('own-' + id + '-' + i, dim));
      c.put('ns', 'shared-' + i, vecOf('shared-' + i, dim));
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await c.flush();
    const until = Date.now() + 20000;
    let seen = 0;
    while (Date.now() < until) {
      seen = 0;
      for (let i = 0; i < N; i++) if (c.get('ns', 'own-' + other + '-' + i)) seen++;
      if (seen === N) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    let bad = 0;
    for (let i = 0; i < N; i++) for (const name of ['own-a-' + i, 'own-b-' + i, 'shared-' + i]) {
      const v = c.get('ns', name), want = vecOf(name, dim);
      if (!v || v.length !== dim || v.some((x, k) => x !== want[k])) bad++;
    }
    process.stdout.write(JSON.stringify({ generation: c.generation, seen, bad, corrupt: c.stats.corrupt, failed: c.stats.failed }));
    await c.close();`;
  const [a, b] = [child(code, { DIR: dir, ID: 'a' }), child(code, { DIR: dir, ID: 'b' })];
  const results = await Promise.all([a.done, b.done]);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const [ra, rb] = results.map((r) => JSON.parse(r.stdout) as { generation: number; seen: number; bad: number; corrupt: number; failed: number });
  assert.notEqual(ra.generation, rb.generation, 'each process has its own generation');
  for (const r of [ra, rb]) assert.deepEqual({ seen: r.seen, bad: r.bad, corrupt: r.corrupt, failed: r.failed }, { seen: 150, bad: 0, corrupt: 0, failed: 0 });
  const cache = EmbedCache.open({ dir });
  try {
    for (let i = 0; i < 150; i++) {
      for (const name of [`own-a-${i}`, `own-b-${i}`, `shared-${i}`]) assert.ok(sameBits(cache.get('ns', name), vecOf(name, 384)), name);
    }
  } finally {
    await cache.close();
  }
});

test('SIGKILL mid-write: the store reopens, and every value present is complete and exact', async (t) => {
  const dir = tempDir(t);
  const code = `
    const c = EmbedCache.open({ dir: process.env.DIR });
    const start = Number(process.env.START);
    for (let i = start; ; ) {
      for (let k = 0; k < 25; k++, i++) c.put('ns', 'k' + i, vecOf('k' + i, 2048));
      // The first 250 are committed for sure (flush) before the parent is told to start its kill timer.
      if (i - start === 250) {
        await c.flush();
        process.stdout.write('writing\\n');
      }
      await new Promise((r) => setImmediate(r));
    }`;
  let start = 0;
  for (let round = 0; round < 3; round++) {
    const { proc, done } = child(code, { DIR: dir, START: String(start) });
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => d.toString().includes('writing') && resolve());
      proc.on('close', () => reject(new Error('child ended before writing')));
    });
    await new Promise((r) => setTimeout(r, 40 + 60 * round));
    proc.kill('SIGKILL');
    const r = await done;
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    start += 1_000_000;
  }
  const cache = EmbedCache.open({ dir });
  try {
    let present = 0;
    for (let round = 0; round < 3; round++) {
      let gap = 0;
      for (let i = round * 1_000_000; gap < 500; i++) {
        const v = cache.get('ns', `k${i}`);
        if (!v) {
          gap++;
          continue;
        }
        gap = 0;
        present++;
        assert.ok(sameBits(v, vecOf(`k${i}`, 2048)), `k${i} is exact`);
      }
    }
    assert.ok(present >= 3 * 250, `the values flushed before each kill are there (${present})`);
    assert.equal(cache.stats.corrupt, 0);
    cache.put('ns', 'after', vecOf('after', 2048));
    await cache.flush();
    assert.ok(sameBits(cache.get('ns', 'after'), vecOf('after', 2048)), 'still writable');
  } finally {
    await cache.close();
  }
  // Every vector still has its stamp and index entry (written in the same transaction), so eviction can reach it.
  const env = open({ path: path.join(dir, 'embeddings.mdb'), noSubdir: true, maxDbs: 8 });
  try {
    const count = (name: string, dupSort = false) => env.openDB(name, { encoding: 'binary', keyEncoding: dupSort ? 'uint32' : 'binary', dupSort }).getCount();
    const vectors = count('vectors');
    assert.equal(count('stamps'), vectors);
    assert.equal(count('by-generation', true), vectors);
  } finally {
    await env.close();
  }
});

const IMAGE_DIM = 2048; // ~12 KB of pages each (8 KB of floats in 4 KB overflow pages)

async function session(dir: string, maxBytes: number, work: (c: EmbedCache) => void | Promise<void>): Promise<EmbedCache> {
  const cache = EmbedCache.open({ dir, maxBytes });
  try {
    await work(cache);
  } finally {
    await cache.close();
  }
  return cache;
}

function usedBytes(dir: string): Promise<number> {
  const cache = EmbedCache.open({ dir });
  const used = cache.usedBytes();
  return cache.close().then(() => used);
}

function present(dir: string, names: string[]): Promise<string[]> {
  const cache = EmbedCache.open({ dir });
  const found = names.filter((n) => sameBits(cache.get('ns', n, IMAGE_DIM), vecOf(n, IMAGE_DIM)));
  return cache.close().then(() => found);
}

const range = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

test('eviction: over the bound at close, the oldest generation goes first; what the last run used stays', async (t) => {
  const dir = tempDir(t);
  const maxBytes = 1_500_000;
  await session(dir, maxBytes, (c) => {
    for (const n of range('old-', 0, 80)) c.put('ns', n, vecOf(n, IMAGE_DIM));
  });
  assert.equal((await present(dir, range('old-', 0, 80))).length, 80, 'under the bound: nothing evicted');
  const second = await session(dir, maxBytes, async (c) => {
    for (const n of range('old-', 0, 20)) assert.ok(c.get('ns', n, IMAGE_DIM), n); // used again: re-stamped
    for (const n of range('new-', 0, 60)) {
      c.put('ns', n, vecOf(n, IMAGE_DIM));
      await new Promise((r) => setImmediate(r));
    }
  });
  assert.ok(second.stats.evicted > 0, 'something was evicted');
  const used = await usedBytes(dir);
  assert.ok(used <= maxBytes, `${used} ≤ ${maxBytes}`);
  assert.deepEqual(await present(dir, range('new-', 0, 60)), range('new-', 0, 60), 'the current generation is kept');
  assert.deepEqual(await present(dir, range('old-', 0, 20)), range('old-', 0, 20), 're-stamped hits are kept');
  const oldLeft = await present(dir, range('old-', 20, 80));
  assert.equal(60 - oldLeft.length, second.stats.evicted, 'only old, unused entries were evicted');
  assert.ok(oldLeft.length > 0, 'and only as many as needed (down to ~90%)');
});

test('eviction: over many generations the store stays bounded and keeps the recent ones', async (t) => {
  const dir = tempDir(t);
  const maxBytes = 1_500_000;
  for (let s = 0; s < 8; s++) {
    await session(dir, maxBytes, async (c) => {
      if (s > 0) for (const n of range(`s${s - 1}-`, 0, 40)) c.get('ns', n, IMAGE_DIM);
      for (const n of range(`s${s}-`, 0, 40)) {
        c.put('ns', n, vecOf(n, IMAGE_DIM));
        if (n.endsWith('0')) await new Promise((r) => setImmediate(r));
      }
    });
    const used = await usedBytes(dir);
    assert.ok(used <= maxBytes, `session ${s}: ${used} ≤ ${maxBytes}`);
    assert.equal((await present(dir, range(`s${s}-`, 0, 40))).length, 40, `session ${s} kept`);
    if (s > 0) assert.equal((await present(dir, range(`s${s - 1}-`, 0, 40))).length, 40, `session ${s - 1}, used again, kept`);
    if (s > 2) assert.equal((await present(dir, range(`s${s - 3}-`, 0, 40))).length, 0, `session ${s - 3}, unused since, evicted`);
  }
  const file = fs.statSync(path.join(dir, 'embeddings.mdb')).size;
  assert.ok(file <= 3 * maxBytes, `the file reuses freed pages: ${file} bytes after writing ~${8 * 40 * 12_300}`);
});

test('eviction during a run: a run writing 4× the bound stays near it, and so does the file', async (t) => {
  const dir = tempDir(t);
  const maxBytes = 1_000_000;
  const cache = EmbedCache.open({ dir, maxBytes });
  try {
    // Paced like a (very fast) run: ~2,000 images/s. Faster than the disk takes them, nothing is bounded.
    for (const [i, n] of range('k', 0, 330).entries()) {
      cache.put('ns', n, vecOf(n, IMAGE_DIM));
      if (i % 5 === 4) await new Promise((r) => setTimeout(r, 2));
    }
    await cache.flush();
    const used = cache.usedBytes();
    assert.ok(used <= maxBytes + 300_000, `${used} stays within a check interval of ${maxBytes}`);
    assert.ok(cache.stats.evicted > 200, `evicted ${cache.stats.evicted}`);
  } finally {
    await cache.close();
  }
  assert.ok((await usedBytes(dir)) <= maxBytes);
  // The file keeps freed pages for reuse; how far it overshoots depends on how far eviction lagged behind the
  // writes, i.e. on machine load. The guarantee is the used size above; this only catches unbounded growth.
  const file = fs.statSync(path.join(dir, 'embeddings.mdb')).size;
  assert.ok(file <= 6 * maxBytes, `file ${file}`);
});

// ---------------------------------------------------------------------------------------------------------------
// Through FeatureExtractor

const TEXT_DIM = 8;
const FAKE_IMAGE_DIM = 4;
const preprocess = { resize: 32, crop: 32, mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number] };
const layout: FeatureBlock[] = [
  { kind: 'text', offset: 0, dim: TEXT_DIM, model: {}, preprocess: { maxLength: 16, pooling: 'mean', normalize: true } },
  { kind: 'image', offset: TEXT_DIM, dim: FAKE_IMAGE_DIM, model: {}, preprocess },
];

class FakeText implements TextEmbedder {
  readonly dim = TEXT_DIM;
  calls = 0;
  texts: string[] = [];
  async embedTexts(texts: string[]): Promise<Float32Array> {
    this.calls++;
    this.texts.push(...texts);
    if (texts.includes('boom')) throw new Error('model failed');
    const out = new Float32Array(texts.length * TEXT_DIM);
    texts.forEach((t, i) => out.set(vecOf(t, TEXT_DIM), i * TEXT_DIM));
    return out;
  }
}

/** Its vector is a function of the pixels, so a wrong cache hit would show. */
class FakeImage implements ImageEmbedder {
  readonly dim = FAKE_IMAGE_DIM;
  calls = 0;
  images = 0;
  async embedPixels(pixels: Float32Array, count: number): Promise<Float32Array> {
    this.calls++;
    this.images += count;
    const per = pixels.length / count;
    const out = new Float32Array(count * FAKE_IMAGE_DIM);
    for (let i = 0; i < count; i++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < per / 3; k++) s += pixels[i * per + c * (per / 3) + k];
        out[i * FAKE_IMAGE_DIM + c] = s / (per / 3);
      }
      out[i * FAKE_IMAGE_DIM + 3] = pixels[i * per];
    }
    return out;
  }
}

function row(index: number, title: string, image = ''): CatalogRow {
  return { index, line: index + 2, id: String(index), title, description: '', image, extra: {} };
}

function options(imageRoot: string, cache?: EmbedCache, identity: FeatureOptions['identity'] = { text: 'fake-text', image: 'fake-image' }): FeatureOptions {
  return { batchSize: 8, maxWaitMs: 2, concurrency: 4, imageRoot, fetch: { timeoutMs: 2000, retries: 0, backoffMs: 5 }, maxPixels: 1e8, onImageError: 'impute', cache, identity };
}

async function extractAll(extractor: FeatureExtractor, rows: CatalogRow[]): Promise<RowFeatures[]> {
  const out = Promise.all(rows.map((r) => extractor.extract(r)));
  extractor.flush();
  return out;
}

async function png(r: number, g: number, b: number): Promise<Buffer> {
  return sharp({ create: { width: 40, height: 36, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

test('extractor, text: a second pass makes no encoder call and returns the same vectors; one changed row, one call', async (t) => {
  const dir = tempDir(t);
  const cache = EmbedCache.open({ dir: path.join(dir, 'cache') });
  const textOnly = layout.slice(0, 1);
  try {
    const rows = Array.from({ length: 30 }, (_, i) => row(i, `product ${i}`));
    const first = new FakeText();
    const a = await extractAll(new FeatureExtractor(textOnly, first, undefined, options(dir, cache)), rows);
    assert.equal(first.texts.length, 30);
    assert.ok(a.every((f) => f.ok));

    const second = new FakeText();
    const b = await extractAll(new FeatureExtractor(textOnly, second, undefined, options(dir, cache)), rows);
    assert.equal(second.calls, 0, 'no encoder call');
    b.forEach((f, i) => assert.ok(sameBits(f.vectors.text, a[i].vectors.text!), `row ${i}`));

    const changed = rows.map((r) => (r.index === 7 ? row(7, 'product 7, new title') : r));
    const third = new FakeText();
    const c = await extractAll(new FeatureExtractor(textOnly, third, undefined, options(dir, cache)), changed);
    assert.deepEqual(third.texts, ['product 7, new title'], 'exactly the changed row');
    assert.ok(sameBits(c[7].vectors.text, vecOf('product 7, new title', TEXT_DIM)));

    // Another model identity shares nothing; no identity means no caching at all.
    const other = new FakeText();
    await extractAll(new FeatureExtractor(textOnly, other, undefined, options(dir, cache, { text: 'another-model' })), rows);
    assert.equal(other.texts.length, 30);
    const before = { ...cache.stats };
    const none = new FakeText();
    const extractor = new FeatureExtractor(textOnly, none, undefined, options(dir, cache, {}));
    await extractAll(extractor, rows);
    assert.equal(none.texts.length, 30);
    assert.deepEqual({ ...cache.stats }, before, 'the cache was not consulted');
    assert.equal(extractor.cacheStats, cache.stats);
  } finally {
    await cache.close();
  }
});

test('extractor: failures are never cached', async (t) => {
  const dir = tempDir(t);
  const cache = EmbedCache.open({ dir: path.join(dir, 'cache') });
  try {
    fs.writeFileSync(path.join(dir, 'broken.jpg'), 'not an image at all');
    const rows = [row(0, 'boom'), row(1, 'fine', 'broken.jpg'), row(2, 'also fine', 'missing.jpg')];
    for (let pass = 0; pass < 2; pass++) {
      const text = new FakeText();
      const image = new FakeImage();
      const f = await extractAll(new FeatureExtractor(layout, text, image, options(dir, cache)), rows);
      assert.equal(f[0].ok, false);
      assert.match(f[0].error!, /text_embedding_failed/);
      assert.ok(f[1].warnings.some((w) => w.startsWith('image_unsupported')), f[1].warnings.join());
      assert.ok(f[2].warnings.some((w) => w.startsWith('image_not_found')), f[2].warnings.join());
      assert.ok(text.texts.includes('boom'), `pass ${pass}: the failed text is tried again`);
    }
    assert.equal(cache.get('text\nfake-text', 'boom'), undefined);
  } finally {
    await cache.close();
  }
});

test('extractor, image files: keyed by bytes (same bytes elsewhere: hit; changed bytes: miss), no decode on a hit', async (t) => {
  const dir = tempDir(t);
  const cache = EmbedCache.open({ dir: path.join(dir, 'cache') });
  try {
    const colours = [png(200, 10, 10), png(10, 200, 10), png(10, 10, 200)];
    const bytes = await Promise.all(colours);
    bytes.forEach((b, i) => fs.writeFileSync(path.join(dir, `p${i}.png`), b));
    const rows = bytes.map((_, i) => row(i, `item ${i}`, `p${i}.png`));
    const first = new FakeImage();
    const a = await extractAll(new FeatureExtractor(layout, new FakeText(), first, options(dir, cache)), rows);
    assert.equal(first.images, 3);

    fs.mkdirSync(path.join(dir, 'moved'));
    fs.writeFileSync(path.join(dir, 'moved', 'copy-of-p1.png'), bytes[1]);
    fs.writeFileSync(path.join(dir, 'p2.png'), await png(10, 10, 60)); // same path, new picture
    const again = [...rows.slice(0, 2), row(2, 'item 2', 'p2.png'), row(3, 'item 1 copy', 'moved/copy-of-p1.png')];
    const second = new FakeImage();
    const b = await extractAll(new FeatureExtractor(layout, new FakeText(), second, options(dir, cache)), again);
    assert.equal(second.images, 1, 'only the changed picture is embedded');
    assert.ok(sameBits(b[0].vectors.image, a[0].vectors.image!));
    assert.ok(sameBits(b[3].vectors.image, a[1].vectors.image!), 'same bytes, other path: hit');
    assert.ok(!sameBits(b[2].vectors.image, a[2].vectors.image!), 'changed bytes: recomputed');

    // A file that would now be refused is not served from the cache just because its bytes are known.
    const tooBig = new FakeImage();
    const c = await extractAll(new FeatureExtractor(layout, new FakeText(), tooBig, { ...options(dir, cache), fetch: { maxBytes: 10 } }), rows.slice(0, 1));
    assert.ok(c[0].warnings.some((w) => w.startsWith('image_too_large')), c[0].warnings.join());
    // A refusal names the image as the row gave it (not the buffer it was read into), with or without a cache.
    fs.writeFileSync(path.join(dir, 'moved', 'new.png'), await png(10, 10, 90));
    for (const withCache of [cache, undefined]) {
      const d = await extractAll(new FeatureExtractor(layout, new FakeText(), new FakeImage(), { ...options(dir, withCache), maxPixels: 10 }), [row(0, 'new', 'moved/new.png')]);
      assert.match(d[0].warnings.join(), /^image_too_large: image too large: moved\/new\.png is 40x36, over the 10-pixel limit$/);
    }
  } finally {
    await cache.close();
  }
});

test('extractor, image files: an unchanged file (same stat) is not read again; a rewrite with the old mtime is', async (t) => {
  const dir = tempDir(t);
  const cache = EmbedCache.open({ dir: path.join(dir, 'cache') });
  try {
    const file = path.join(dir, 'p.png');
    fs.writeFileSync(file, await png(200, 10, 10));
    const before = fs.statSync(file);
    const first = new FakeImage();
    await extractAll(new FeatureExtractor(layout, new FakeText(), first, options(dir, cache)), [row(0, 'a', 'p.png')]);
    await cache.flush();
    const st = fs.statSync(file, { bigint: true });
    const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    assert.match(cache.fileDigest(file, stamp) ?? '', /^[0-9a-f]{64}$/, 'the digest is remembered under the stat stamp');
    assert.equal(cache.fileDigest(file, stamp.replace(/:\d+$/, ':1')), undefined, 'another ctime: not trusted');

    // New bytes of the same size, mtime set back: ctime still moves, so the file is read, hashed and re-embedded.
    let other = await png(10, 200, 10);
    for (let c = 11; other.length !== before.size && c < 250; c++) other = await png(c, 200, 10);
    assert.equal(other.length, before.size, 'a picture of the same byte size');
    fs.writeFileSync(file, other);
    fs.utimesSync(file, before.atime, before.mtime);
    const second = new FakeImage();
    await extractAll(new FeatureExtractor(layout, new FakeText(), second, options(dir, cache)), [row(0, 'a', 'p.png')]);
    assert.equal(second.images, 1);
  } finally {
    await cache.close();
  }
});

test('extractor, image URLs: with an ETag or Last-Modified a warm pass only sends HEAD; without, GET + hash', async (t) => {
  const dir = tempDir(t);
  const cache = EmbedCache.open({ dir: path.join(dir, 'cache') });
  const images = { red: await png(220, 0, 0), green: await png(0, 220, 0), blue: await png(0, 0, 220) };
  const served: Record<string, { body: Buffer; headers: Record<string, string> }> = {
    '/etag.png': { body: images.red, headers: { etag: '"r1"' } },
    '/dated.png': { body: images.green, headers: { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' } },
    '/bare.png': { body: images.blue, headers: {} },
  };
  const log: string[] = [];
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    const s = served[req.url!];
    if (!s) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(s.body.length), ...s.headers }).end(req.method === 'HEAD' ? undefined : s.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const rows = Object.keys(served).map((p, i) => row(i, `url ${i}`, `${base}${p}`));
    const pass = async (): Promise<{ features: RowFeatures[]; embedded: number; requests: string[] }> => {
      log.length = 0;
      const image = new FakeImage();
      const features = await extractAll(new FeatureExtractor(layout, new FakeText(), image, options(dir, cache)), rows);
      return { features, embedded: image.images, requests: [...log].sort() };
    };
    const cold = await pass();
    assert.equal(cold.embedded, 3);
    assert.deepEqual(cold.requests, ['GET /bare.png', 'GET /dated.png', 'GET /etag.png', 'HEAD /bare.png', 'HEAD /dated.png', 'HEAD /etag.png']);

    const warm = await pass();
    assert.equal(warm.embedded, 0, 'all three from the cache');
    assert.deepEqual(warm.requests, ['GET /bare.png', 'HEAD /bare.png', 'HEAD /dated.png', 'HEAD /etag.png'], 'validated URLs: no download');
    warm.features.forEach((f, i) => assert.ok(sameBits(f.vectors.image, cold.features[i].vectors.image!), `row ${i}`));

    // A new ETag means new content: downloaded and embedded again.
    served['/etag.png'] = { body: images.blue, headers: { etag: '"r2"' } };
    const changed = await pass();
    assert.equal(changed.embedded, 1);
    assert.ok(changed.requests.includes('GET /etag.png'));
    assert.ok(sameBits(changed.features[0].vectors.image, cold.features[2].vectors.image!), 'the same picture, the same vector');

    // Errors are not cached: a 404 is a warning every time, with its download attempted.
    delete served['/dated.png'];
    const gone = await pass();
    assert.ok(gone.features[1].warnings.some((w) => w.startsWith('url_http_404')), gone.features[1].warnings.join());
    assert.ok(gone.requests.includes('GET /dated.png'), 'the 404 comes from the download, as without a cache');
  } finally {
    await cache.close();
  }
});

test("extractor: the image block's preprocessing is the one applied, and exact and fast vectors never meet in the cache", async (t) => {
  const dir = tempDir(t);
  const cache = EmbedCache.open({ dir: path.join(dir, 'cache') });
  try {
    // A downscaled photo with detail, so that the two resizes give different pixels.
    const raw = Buffer.alloc(600 * 400 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
    const jpeg = await sharp(raw, { raw: { width: 600, height: 400, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
    fs.writeFileSync(path.join(dir, 'photo.jpg'), jpeg);
    const rows = [row(0, 'a photo', 'photo.jpg')];
    const image = { kind: 'image' as const, modelPath: '/m/model.onnx' };
    const modes = {
      exact: { layout: layout.map((b) => (b.kind === 'image' ? { ...b, preprocess: withPreprocessing(preprocess, 'exact') } : b)), identity: modelIdentity({ ...image, preprocess }, 'aa') },
      fast: { layout: layout.map((b) => (b.kind === 'image' ? { ...b, preprocess: withPreprocessing(preprocess, 'fast') } : b)), identity: modelIdentity({ ...image, preprocess: withPreprocessing(preprocess, 'fast') }, 'aa') },
    };
    assert.notEqual(modes.exact.identity, modes.fast.identity);
    const pass = async (mode: keyof typeof modes) => {
      const pixels: Float32Array[] = [];
      const embedder = new (class extends FakeImage {
        override embedPixels(p: Float32Array, count: number): Promise<Float32Array> {
          pixels.push(p.slice());
          return super.embedPixels(p, count);
        }
      })();
      const [f] = await extractAll(new FeatureExtractor(modes[mode].layout, new FakeText(), embedder, options(dir, cache, { text: 'fake-text', image: modes[mode].identity })), rows);
      return { vector: f!.vectors.image!, pixels, calls: embedder.images };
    };
    const exact = await pass('exact');
    assert.deepEqual(exact.pixels, [await preprocessImage(jpeg, preprocess)]);
    const fast = await pass('fast');
    assert.equal(fast.calls, 1, 'the exact vector is not served to a fast bundle');
    const fastPixels = await preprocessImage(jpeg, withPreprocessing(preprocess, 'fast'));
    assert.deepEqual(fast.pixels, [fastPixels], 'the fast resize is the one fed to the model');
    assert.notDeepEqual(fastPixels, exact.pixels[0]);
    assert.ok(!sameBits(fast.vector, exact.vector));
    const [exactAgain, fastAgain] = [await pass('exact'), await pass('fast')];
    assert.equal(exactAgain.calls + fastAgain.calls, 0, 'each mode hits its own vectors');
    assert.ok(sameBits(exactAgain.vector, exact.vector));
    assert.ok(sameBits(fastAgain.vector, fast.vector));
  } finally {
    await cache.close();
  }
});

test('modelIdentity: file hash, output and every preprocessing setting (the resize method too) are part of it', () => {
  const text = { kind: 'text' as const, modelPath: '/m/model.onnx', tokenizerDir: '/m', output: 'last_hidden_state', pooling: 'mean' as const, normalize: true, maxLength: 256 };
  const base = modelIdentity(text, 'aa', 'tok');
  assert.match(base, /^text\/\d+ onnx=aa /);
  assert.equal(modelIdentity({ ...text, modelPath: '/elsewhere/model.onnx', tokenizerDir: '/elsewhere' }, 'aa', 'tok'), base, 'where the file lies does not matter');
  for (const other of [
    modelIdentity(text, 'bb', 'tok'),
    modelIdentity(text, 'aa', 'tok2'),
    modelIdentity({ ...text, output: 'other' }, 'aa', 'tok'),
    modelIdentity({ ...text, maxLength: 128 }, 'aa', 'tok'),
    modelIdentity({ ...text, normalize: false }, 'aa', 'tok'),
  ]) {
    assert.notEqual(other, base);
  }
  const image = { kind: 'image' as const, modelPath: '/m/model.onnx', preprocess: { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] } };
  const ib = modelIdentity(image, 'aa');
  assert.match(ib, /^image\/\d+ onnx=aa output=\(first\) resize=256 crop=224 mean=0.485,0.456,0.406 std=0.229,0.224,0.225$/);
  for (const other of [
    modelIdentity({ ...image, output: 'pooled' }, 'aa'),
    modelIdentity({ ...image, preprocess: { ...image.preprocess, resize: 224 } }, 'aa'),
    modelIdentity({ ...image, preprocess: { ...image.preprocess, crop: 192 } }, 'aa'),
    modelIdentity({ ...image, preprocess: { ...image.preprocess, mean: [0.5, 0.5, 0.5] } }, 'aa'),
    modelIdentity({ ...image, preprocess: { ...image.preprocess, std: [0.5, 0.5, 0.5] } }, 'aa'),
    modelIdentity({ ...image, preprocess: { ...image.preprocess, method: 'fast' as const } }, 'aa'),
  ]) {
    assert.notEqual(other, ib);
  }
  // The resize method: 'fast' vectors live under their own identity; 'exact', spelt out or not, is the identity
  // caches were filled under before the method existed (the regex above), so they keep serving.
  assert.equal(modelIdentity({ ...image, preprocess: { ...image.preprocess, method: 'exact' as const } }, 'aa'), ib);
  assert.match(modelIdentity({ ...image, preprocess: { ...image.preprocess, method: 'fast' as const } }, 'aa'), / preprocessing=fast$/);
});

test('openEncoders: identity names the ONNX file actually run (hashed once, with or without an expected sha256)', { skip: !fs.existsSync(path.join(repoRoot, 'models/demo/encoders/text/model.onnx')) }, async () => {
  const textDir = path.join(repoRoot, 'models/demo/encoders/text');
  const imageDir = path.join(repoRoot, 'models/demo/encoders/image');
  const textSha = sha256File(path.join(textDir, 'model.onnx'));
  const imageSha = sha256File(path.join(imageDir, 'model.onnx'));
  const plain = await openEncoders([{ kind: 'text', location: textDir }, { kind: 'image', location: imageDir }], { device: 'cpu', threads: 1 });
  try {
    assert.ok(plain.identity.text?.includes(`onnx=${textSha}`), plain.identity.text);
    assert.ok(plain.identity.image?.includes(`onnx=${imageSha}`), plain.identity.image);
    assert.equal(plain.identity.text, modelIdentity(plain.specs.text!, textSha, plain.identity.text!.match(/tokenizer=(\S+)/)![1]));
    assert.equal(plain.identity.image, modelIdentity(plain.specs.image!, imageSha));
  } finally {
    await plain.close();
  }
  const checked = await openEncoders([{ kind: 'text', location: textDir, sha256: textSha }], { device: 'cpu', threads: 1 });
  try {
    assert.equal(checked.identity.text, plain.identity.text);
    assert.equal(checked.identity.image, undefined);
  } finally {
    await checked.close();
  }
  const shorter = await openEncoders([{ kind: 'text', location: textDir, text: { maxLength: 8, normalize: true } }], { device: 'cpu', threads: 1 });
  try {
    assert.notEqual(shorter.identity.text, plain.identity.text, 'another truncation, another identity');
  } finally {
    await shorter.close();
  }
});
