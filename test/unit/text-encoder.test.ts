import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TextEncoder, loadTokenizer, tokenizeBatch, lengthRuns, SUB_BATCH_CPU } from '../../src/embed/text-encoder.js';
import { resolveTextModel } from '../../src/models/model-dir.js';
import { writeTextModelDir } from '../../fixtures/tiny-models.js';
import { sharedDir, hasShared } from '../helpers/paths.js';
import { ConfigError } from '../../src/errors.js';

const texts = ['red leather running shoes', 'a steel watch with a leather strap and a date window', 'kettle'];
const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-text-')), 'tiny-text');
writeTextModelDir(dir, { texts, seed: 3, hidden: 16, layers: 1, heads: 2, ffn: 32 });
const cpu = { device: 'cpu' as const, threads: 1 };

test('dynamic padding: the batch is as long as its longest text, never max_length', async () => {
  const enc = await TextEncoder.load(resolveTextModel(dir), cpu);
  const b = enc.tokenize(texts);
  const lengths = texts.map((t) => enc.tokenize([t]).seq);
  assert.equal(b.seq, Math.max(...lengths));
  assert.ok(b.seq < 20, `seq ${b.seq}`);
  assert.equal(b.batch, 3);
  // The shortest row is padded with the pad id and masked out.
  const k = 2;
  const row = Array.from(b.attentionMask.subarray(k * b.seq, (k + 1) * b.seq), Number);
  assert.deepEqual(row, [...Array(lengths[k]).fill(1), ...Array(b.seq - lengths[k]).fill(0)]);
  await enc.dispose();
});

test('embeddings are unit length, padding-invariant and distinct per text', async () => {
  const enc = await TextEncoder.load(resolveTextModel(dir), cpu);
  assert.equal(enc.dim, 16);
  const batch = await enc.embed(texts);
  for (let i = 0; i < texts.length; i++) {
    const alone = await enc.embed([texts[i]]);
    const row = batch.subarray(i * 16, (i + 1) * 16);
    let norm = 0;
    for (let k = 0; k < 16; k++) {
      assert.ok(Math.abs(row[k] - alone[k]) < 1e-5, `text ${i} dim ${k}: ${row[k]} vs ${alone[k]}`);
      norm += row[k] * row[k];
    }
    assert.ok(Math.abs(norm - 1) < 1e-5);
  }
  let diff = 0;
  for (let k = 0; k < 16; k++) diff += Math.abs(batch[k] - batch[16 + k]);
  assert.ok(diff > 0.1);
  await enc.dispose();
});

test('lengthRuns: sorted by length (ties in input order), cut into runs of at most cap', () => {
  assert.deepEqual(lengthRuns([5, 2, 9, 2, 7], 2), [[1, 3], [0, 4], [2]]);
  assert.deepEqual(lengthRuns([3, 1], 8), [[1, 0]]);
  assert.deepEqual(lengthRuns([], 8), []);
  assert.deepEqual(lengthRuns([4, 4, 4], 0), [[0], [1], [2]]);
});

test('a batch larger than one CPU run comes back in input order, each row as embedded alone', async () => {
  const enc = await TextEncoder.load(resolveTextModel(dir), cpu);
  // Mixed lengths, more texts than one run, so rows are reordered and split internally.
  const many = Array.from({ length: 2 * SUB_BATCH_CPU + 3 }, (_, i) => texts[i % 3]!.split(' ').slice(0, 1 + (i % 7)).join(' '));
  const batch = await enc.embed(many);
  for (let i = 0; i < many.length; i++) {
    const alone = await enc.embed([many[i]!]);
    for (let k = 0; k < 16; k++) assert.ok(Math.abs(batch[i * 16 + k]! - alone[k]!) < 1e-5, `text ${i} dim ${k}`);
  }
  await enc.dispose();
});

test('a declared dim that the model does not produce is a configuration error', async () => {
  await assert.rejects(TextEncoder.load({ ...resolveTextModel(dir), dim: 384 }, cpu), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /produces 16-d vectors but 384 were declared/);
    return true;
  });
  await assert.rejects(TextEncoder.load({ ...resolveTextModel(dir), output: 'pooler_output' }, cpu), /has no output 'pooler_output'/);
});

test('missing tokenizer files are named', () => {
  const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-bare-'));
  fs.copyFileSync(path.join(dir, 'model.onnx'), path.join(bare, 'model.onnx'));
  assert.throws(() => resolveTextModel(bare), /lacks tokenizer\.json/);
  assert.throws(() => resolveTextModel(path.join(bare, 'nope')), /text model not found/);
});

test('real all-MiniLM-L6-v2 tokenizer: known ids, truncation keeps [SEP], dynamic batch shape', { skip: !hasShared && 'needs ../shared' }, async () => {
  const tok = await loadTokenizer(path.join(sharedDir, 'models', 'all-MiniLM-L6-v2'));
  const one = tokenizeBatch(tok, ['Hello world'], 256);
  // bert-base-uncased: [CLS]=101 hello=7592 world=2088 [SEP]=102
  assert.deepEqual(Array.from(one.inputIds, Number), [101, 7592, 2088, 102]);
  const long = 'wireless headphones with noise cancelling '.repeat(100);
  const b = tokenizeBatch(tok, [long, 'usb cable'], 256);
  assert.equal(b.seq, 256);
  assert.equal(Number(b.inputIds[255]), 102, 'last kept token of a truncated text is [SEP]');
  assert.equal(Number(b.inputIds[0]), 101);
  assert.equal(Number(b.inputIds[256]), 101);
  assert.equal(Number(b.attentionMask[256 + 4]), 0, 'the short row is padded out to 256 in this batch');
  const short = tokenizeBatch(tok, ['usb cable', 'hdmi'], 256);
  assert.equal(short.seq, 4, 'padded to the longest text in the batch, not to 256');
});
