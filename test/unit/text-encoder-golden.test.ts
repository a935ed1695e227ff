// Text path against an independent numpy reference (scripts/reference/text_encoder_reference.py): same model bytes,
// same token ids, onnxruntime forward pass + src/embed/pooling.ts within 1e-5, and padding invariance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { goldenDir } from '../helpers/paths.js';
import { meanPool, l2Normalize } from '../../src/embed/pooling.js';
import { REFERENCE_TEXTS, tokenizeWith, writeReferenceModel } from '../../fixtures/reference-text-model.js';

interface HiddenSummary { first: number[]; last: number[]; meanAbs: number }
interface Golden {
  texts: string[];
  modelSha256: string;
  tokenizerSha256: string;
  dim: number;
  single: { ids: number[]; mask: number[]; hidden: HiddenSummary; embedding: number[] }[];
  batch: { seq: number; ids: number[][]; mask: number[][]; hidden: HiddenSummary[]; embeddings: number[][] };
}

const golden = JSON.parse(fs.readFileSync(path.join(goldenDir, 'text-encoder.json'), 'utf8')) as Golden;
const TOL = 1e-5;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    assert.ok(diff <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (diff ${diff})`);
  }
}

const sha256 = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

async function encode(session: ort.InferenceSession, ids: number[][], mask: number[][]) {
  const [batch, seq] = [ids.length, ids[0]!.length];
  const dims = [batch, seq];
  const maskFlat = BigInt64Array.from(mask.flat().map(BigInt));
  const out = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), dims),
    attention_mask: new ort.Tensor('int64', maskFlat, dims),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(batch * seq), dims),
  });
  const hidden = out.last_hidden_state!.data as Float32Array;
  const dim = golden.dim;
  const embeddings = l2Normalize(meanPool(hidden, maskFlat, batch, seq, dim), dim);
  return { hidden, seq, embeddings };
}

function checkHidden(hidden: Float32Array, row: number, seq: number, n: number, want: HiddenSummary, what: string): void {
  const dim = golden.dim;
  const at = (pos: number): Float32Array => hidden.subarray((row * seq + pos) * dim, (row * seq + pos) * dim + 4);
  assertClose(at(0), want.first, TOL, `${what} first token`);
  assertClose(at(n - 1), want.last, TOL, `${what} last token`);
  let sum = 0;
  for (let i = row * seq * dim; i < (row * seq + n) * dim; i++) sum += Math.abs(hidden[i]!);
  assertClose([sum / (n * dim)], [want.meanAbs], TOL, `${what} mean |h|`);
}

test('text encoder matches the numpy reference', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'text-golden-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const modelDir = path.join(tmp, 'model');
  const { modelPath } = writeReferenceModel(modelDir);
  assert.deepEqual(REFERENCE_TEXTS, golden.texts);

  await t.test('the seed regenerates the exact model and tokenizer', () => {
    assert.equal(sha256(modelPath), golden.modelSha256);
    assert.equal(sha256(path.join(modelDir, 'tokenizer.json')), golden.tokenizerSha256);
  });

  await t.test('tokenization matches the recorded ids and masks', async () => {
    const batch = await tokenizeWith(modelDir, golden.texts);
    assert.deepEqual(batch.ids, golden.batch.ids);
    assert.deepEqual(batch.mask, golden.batch.mask);
    for (const [i, text] of golden.texts.entries()) {
      const one = await tokenizeWith(modelDir, [text]);
      assert.deepEqual(one.ids[0], golden.single[i]!.ids, text);
    }
  });

  const session = await ort.InferenceSession.create(modelPath);
  t.after(() => session.release());

  await t.test('padded batch: hidden states and pooled embeddings within 1e-5', async () => {
    const { hidden, seq, embeddings } = await encode(session, golden.batch.ids, golden.batch.mask);
    assert.equal(seq, golden.batch.seq);
    for (let r = 0; r < golden.texts.length; r++) {
      const n = golden.batch.mask[r]!.reduce((a, b) => a + b, 0);
      checkHidden(hidden, r, seq, n, golden.batch.hidden[r]!, `row ${r}`);
      assertClose(embeddings.subarray(r * golden.dim, (r + 1) * golden.dim), golden.batch.embeddings[r]!, TOL, `row ${r} embedding`);
    }
  });

  await t.test('each text alone matches the reference and its padded-batch row', async () => {
    const batched = (await encode(session, golden.batch.ids, golden.batch.mask)).embeddings;
    for (const [i, one] of golden.single.entries()) {
      const { hidden, embeddings } = await encode(session, [one.ids], [one.mask]);
      checkHidden(hidden, 0, one.ids.length, one.ids.length, one.hidden, `text ${i} alone`);
      assertClose(embeddings, one.embedding, TOL, `text ${i} alone`);
      assertClose(embeddings, batched.subarray(i * golden.dim, (i + 1) * golden.dim), 1e-6, `text ${i} padding invariance`);
    }
  });
});
