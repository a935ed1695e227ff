// Our text path against sentence-transformers' own encode(normalize_embeddings=True), computed on another
// machine from the same ONNX weights loaded into a transformers BertModel (scripts/reference/sentence_transformers_reference.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { goldenDir, sharedDir, hasShared } from '../helpers/paths.js';
import { writeStReferenceModel, ST_TEXTS, ST_MAX_LENGTH } from '../../fixtures/st-reference.js';
import { TextEncoder, loadTokenizer, tokenizeBatch } from '../../src/embed/text-encoder.js';
import { resolveTextModel } from '../../src/models/model-dir.js';
import { sha256File } from '../../src/models/bundle.js';

const gold = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sentence-transformers.json'), 'utf8'));
const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-st-')), 'model');
writeStReferenceModel(dir);

function rowsOf(batch: { inputIds: BigInt64Array; attentionMask: BigInt64Array; batch: number; seq: number }): number[][] {
  return Array.from({ length: batch.batch }, (_, b) => {
    const ids: number[] = [];
    for (let s = 0; s < batch.seq; s++) if (batch.attentionMask[b * batch.seq + s] === 1n) ids.push(Number(batch.inputIds[b * batch.seq + s]));
    return ids;
  });
}

test('the regenerated model is byte-identical to the one the reference ran on', () => {
  assert.deepEqual(gold.texts, ST_TEXTS);
  assert.equal(gold.max_length, ST_MAX_LENGTH);
  assert.equal(sha256File(path.join(dir, 'model.onnx')), gold.model_sha256);
});

test("token ids equal HF's Rust tokenizer with truncation (the long text ends in [SEP] at 256)", async () => {
  const tok = await loadTokenizer(dir);
  assert.deepEqual(rowsOf(tokenizeBatch(tok, ST_TEXTS, ST_MAX_LENGTH)), gold.input_ids);
  assert.equal(gold.input_ids[5].length, 256);
});

test('embeddings equal sentence-transformers encode(normalize_embeddings=True) within 1e-5, in one padded batch', async () => {
  const enc = await TextEncoder.load(resolveTextModel(dir), { device: 'cpu', threads: 1 });
  const got = await enc.embed(ST_TEXTS);
  const dim = enc.dim;
  let maxDiff = 0;
  gold.embeddings.forEach((row: number[], i: number) => row.forEach((v, k) => (maxDiff = Math.max(maxDiff, Math.abs(v - got[i * dim + k])))));
  assert.ok(maxDiff < 1e-5, `max |Δ| ${maxDiff}`);
  await enc.dispose();
});

test('the real all-MiniLM-L6-v2 tokenizer gives the same ids as HF transformers', { skip: !hasShared && 'needs ../shared' }, async () => {
  const tok = await loadTokenizer(path.join(sharedDir, 'models', 'all-MiniLM-L6-v2'));
  assert.deepEqual(rowsOf(tokenizeBatch(tok, ST_TEXTS, 256)), gold.minilm_tokenizer_ids);
});
