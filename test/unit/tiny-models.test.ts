// The tiny fixture models: deterministic bytes, the real models' interfaces with symbolic dims, content-dependent
// image features, a MiniLM-sized build from the same builder, and a tokenizer transformers.js loads offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@xenova/transformers';
import {
  bertPreTokenize, buildImageEncoder, buildTextEncoder, buildTextEncoderGraph, buildWordPieceTokenizer,
  writeImageModelDir, writeTextModelDir,
} from '../../fixtures/tiny-models.js';

const tmp = (t: { after(fn: () => void): void }): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-models-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
};

function textFeeds(ids: number[][], mask: number[][]): Record<string, ort.Tensor> {
  const dims = [ids.length, ids[0]!.length];
  const i64 = (rows: number[][]): BigInt64Array => BigInt64Array.from(rows.flat().map(BigInt));
  return {
    input_ids: new ort.Tensor('int64', i64(ids), dims),
    attention_mask: new ort.Tensor('int64', i64(mask), dims),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(dims[0]! * dims[1]!), dims),
  };
}

test('same seed gives identical bytes; another seed does not', () => {
  const a = buildTextEncoder({ vocabSize: 50, seed: 7 });
  assert.deepEqual(a, buildTextEncoder({ vocabSize: 50, seed: 7 }));
  assert.notDeepEqual(a, buildTextEncoder({ vocabSize: 50, seed: 8 }));
  const im = buildImageEncoder({ seed: 3 });
  assert.deepEqual(im, buildImageEncoder({ seed: 3 }));
  assert.notDeepEqual(im, buildImageEncoder({ seed: 4 }));
});

test('text encoder runs for any batch and sequence length and distinguishes tokens', async () => {
  const session = await ort.InferenceSession.create(buildTextEncoder({ vocabSize: 60, hidden: 32, layers: 2, heads: 4, seed: 1 }));
  assert.deepEqual([...session.inputNames], ['input_ids', 'attention_mask', 'token_type_ids']);
  assert.deepEqual([...session.outputNames], ['last_hidden_state']);
  for (const [batch, seq] of [[1, 1], [2, 5], [3, 17]] as const) {
    const ids = Array.from({ length: batch }, (_, b) => Array.from({ length: seq }, (_, s) => (b * 7 + s * 3) % 60));
    const mask = ids.map((row) => row.map(() => 1));
    const out = (await session.run(textFeeds(ids, mask))).last_hidden_state!;
    assert.deepEqual(out.dims, [batch, seq, 32]);
    assert.ok((out.data as Float32Array).every(Number.isFinite));
  }
  const out = (await session.run(textFeeds([[2, 10, 3], [2, 11, 3]], [[1, 1, 1], [1, 1, 1]]))).last_hidden_state!;
  const h = out.data as Float32Array;
  let diff = 0;
  for (let k = 0; k < 32; k++) diff += Math.abs(h[32 + k]! - h[96 + 32 + k]!);
  assert.ok(diff / 32 > 0.1, `token 10 vs 11 at the same position differ by only ${diff / 32} on average`);
  await session.release();
});

test('an all-MiniLM-L6-v2-shaped build has its 22.7M parameters', () => {
  const g = buildTextEncoderGraph({ vocabSize: 30522, hidden: 384, layers: 6, heads: 12, ffn: 1536, seed: 1, pooler: true });
  const weights = g.toModel().graph!.initializer!.filter((t) => !t.name!.startsWith('const_'));
  const count = weights.reduce((sum, t) => sum + t.dims!.reduce<number>((a, d) => a * Number(d), 1), 0);
  // BertModel: embeddings 11,918,592 + 6 layers x 1,774,464 + pooler 147,840.
  assert.equal(count, 22_713_216);
  assert.ok(g.parameterCount() - count < 32, 'only a few scalar constants besides weights');
});

function solid(r: number, g: number, b: number): Float32Array {
  return paint(() => [r, g, b]);
}

/** A 224x224 image, normalised with ImageNet mean/std like the real preprocessing. */
function paint(f: (x: number, y: number) => [number, number, number]): Float32Array {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const px = new Float32Array(3 * 224 * 224);
  for (let y = 0; y < 224; y++) {
    for (let x = 0; x < 224; x++) {
      const rgb = f(x, y);
      for (let c = 0; c < 3; c++) px[c * 224 * 224 + y * 224 + x] = (rgb[c]! / 255 - mean[c]!) / std[c]!;
    }
  }
  return px;
}

/** |a - b| relative to the vectors' RMS norm; cosine says little here, pooled ReLU features all share one orthant. */
const relativeDistance = (a: Float32Array, b: Float32Array): number => {
  let d = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i]! - b[i]!) ** 2; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
  return Math.sqrt(d / ((aa + bb) / 2));
};

test('image encoder: both output layouts, batches of any size, features that follow image content', async () => {
  const red = solid(220, 30, 30);
  const images = {
    red,
    blue: solid(30, 40, 210),
    redSquare: paint((x, y) => (x > 62 && x < 162 && y > 62 && y < 162 ? [220, 30, 30] : [255, 255, 255])),
    redDisc: paint((x, y) => ((x - 112) ** 2 + (y - 112) ** 2 < 56 ** 2 ? [220, 30, 30] : [255, 255, 255])),
    blueSquare: paint((x, y) => (x > 62 && x < 162 && y > 62 && y < 162 ? [30, 40, 210] : [255, 255, 255])),
    stripes: paint((x) => (Math.floor(x / 8) % 2 ? [0, 0, 0] : [255, 255, 255])),
  };
  const names = Object.keys(images) as (keyof typeof images)[];
  const batch = new Float32Array(names.length * red.length);
  names.forEach((n, i) => batch.set(images[n], i * red.length));

  const dim = 16;
  const s4 = await ort.InferenceSession.create(buildImageEncoder({ seed: 11, dim, pooled: '4d' }));
  const s2 = await ort.InferenceSession.create(buildImageEncoder({ seed: 11, dim, pooled: '2d' }));
  const out4 = (await s4.run({ pixel_values: new ort.Tensor('float32', batch, [names.length, 3, 224, 224]) })).pooler_output!;
  const out2 = (await s2.run({ pixel_values: new ort.Tensor('float32', red, [1, 3, 224, 224]) })).pooler_output!;
  assert.deepEqual(out4.dims, [names.length, dim, 1, 1]);
  assert.deepEqual(out2.dims, [1, dim]);
  const v = (i: number): Float32Array => (out4.data as Float32Array).subarray(i * dim, (i + 1) * dim);
  assert.deepEqual([...(out2.data as Float32Array)], [...v(0)], 'same weights whatever the layout');
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const r = relativeDistance(v(i), v(j));
      assert.ok(r > 0.1, `${names[i]} vs ${names[j]}: only ${(100 * r).toFixed(1)}% apart`);
    }
  }
  await s4.release();
  await s2.release();
});

const TEXTS = ['Red Cotton T-Shirt, size M', 'Café crème — 250ml', 'red shoes', 'Kids’ boots (waterproof)', '中文 text'];

async function loadTok(dir: string) {
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(dir);
  return AutoTokenizer.from_pretrained(path.basename(dir));
}

/** The word pieces transformers.js makes of a text (2.17 has no tokenize(); encode + vocabulary lookup). */
async function pieces(dir: string, vocab: string[], text: string): Promise<string[]> {
  const tok = await loadTok(dir);
  return tok.encode(text, null, { add_special_tokens: false }).map((id) => vocab[id]!);
}

test('tokenizer.json loads in transformers.js offline and splits text as the vocabulary builder did', async (t) => {
  const dir = path.join(tmp(t), 'tok');
  fs.mkdirSync(dir);
  const files = buildWordPieceTokenizer(TEXTS);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfigJson));
  assert.deepEqual(files.vocab.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  const tok = await loadTok(dir);
  for (const text of TEXTS) {
    assert.deepEqual(await pieces(dir, files.vocab, text), bertPreTokenize(text), text);
  }
  const id = (w: string): number => files.vocab.indexOf(w);
  // transformers.js tensors built on onnxruntime-common 1.30 keep their values in cpuData, so ask for arrays.
  const enc = tok(['Red shoes', 'cotton'], { padding: true, truncation: true, return_tensor: false }) as unknown as
    { input_ids: number[][]; attention_mask: number[][] };
  assert.deepEqual(enc.input_ids, [[2, id('red'), id('shoes'), 3], [2, id('cotton'), 3, 0]]);
  assert.deepEqual(enc.attention_mask, [[1, 1, 1, 1], [1, 1, 1, 0]]);
  const asTensor = tok(['a b', 'c'], { padding: true, truncation: true });
  assert.deepEqual(asTensor.input_ids.dims, [2, 4]);
});

test('a small maxVocab falls back to ##-pieces, never [UNK], for seen characters', async (t) => {
  const dir = path.join(tmp(t), 'tok');
  fs.mkdirSync(dir);
  const files = buildWordPieceTokenizer(TEXTS, { maxVocab: 10 });
  assert.ok(!files.vocab.includes('cotton'));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfigJson));
  assert.deepEqual(await pieces(dir, files.vocab, 'Cotton'), ['c', '##o', '##t', '##t', '##o', '##n']);
  assert.deepEqual(await pieces(dir, files.vocab, 'cotton ☃'), ['c', '##o', '##t', '##t', '##o', '##n', '[UNK]']);
});

test('model folders hold what categorize reads', async (t) => {
  const root = tmp(t);
  const text = path.join(root, 'text');
  const { vocabSize } = writeTextModelDir(text, { texts: TEXTS, seed: 3, hidden: 16, heads: 2 });
  assert.deepEqual(fs.readdirSync(text).sort(), ['categorize-model.json', 'config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json']);
  const spec = JSON.parse(fs.readFileSync(path.join(text, 'categorize-model.json'), 'utf8'));
  assert.deepEqual(spec, { kind: 'text', output: 'last_hidden_state', pooling: 'mean', normalize: true, dim: 16, maxLength: 256 });
  const config = JSON.parse(fs.readFileSync(path.join(text, 'config.json'), 'utf8'));
  assert.equal(config.hidden_size, 16);
  assert.equal(config.vocab_size, vocabSize);

  const image = path.join(root, 'image');
  writeImageModelDir(image, { seed: 3, dim: 8 });
  const ispec = JSON.parse(fs.readFileSync(path.join(image, 'categorize-model.json'), 'utf8'));
  assert.equal(ispec.kind, 'image');
  assert.equal(ispec.dim, 8);
  assert.equal(ispec.preprocess.crop, 224);
  const session = await ort.InferenceSession.create(path.join(image, 'model.onnx'));
  const out = await session.run({ pixel_values: new ort.Tensor('float32', solid(0, 128, 0), [1, 3, 224, 224]) });
  assert.deepEqual(out.pooler_output!.dims, [1, 8, 1, 1]);
  await session.release();
});
