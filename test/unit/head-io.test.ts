// Head files: write → read gives the same head (and bytes are deterministic); every kind of damage is a one-line
// ConfigError naming the file; bundles of format 3 (linear heads) and of format 2 (ONNX heads) load and predict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeLinearHead, encodeLinearHead, readLinearHead, writeLinearHead } from '../../src/head/head-io.js';
import { buildLinearHead, linearHeadParams, type LinearModelParams } from '../../src/head/linear-head.js';
import { scoreRows, type LinearHead } from '../../src/head/scoring.js';
import { buildClassifierOnnx } from '../../src/head/classifier-onnx.js';
import { Classifier, LinearClassifier, OnnxClassifier } from '../../src/head/classifier.js';
import { loadBundle, saveBundle, type BundleHeadPart, type FeatureBlock } from '../../src/models/bundle.js';
import { ConfigError } from '../../src/errors.js';
import { denseInput, randomParams, randomRows } from '../helpers/random-heads.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-head-io-'));

function assertSameHead(a: LinearHead, b: LinearHead): void {
  assert.deepEqual(b.classes, a.classes);
  assert.deepEqual(Array.from(b.intercept), Array.from(a.intercept));
  assert.equal(b.dense === null, a.dense === null);
  if (a.dense && b.dense) {
    assert.equal(b.dense.width, a.dense.width);
    for (const k of ['mean', 'scale', 'weights'] as const) assert.deepEqual(Array.from(b.dense[k]), Array.from(a.dense[k]), k);
  }
  assert.equal(b.sparse === null, a.sparse === null);
  if (a.sparse && b.sparse) {
    assert.equal(b.sparse.width, a.sparse.width);
    assert.equal(b.sparse.classIndex.constructor, a.sparse.classIndex.constructor);
    for (const k of ['colptr', 'classIndex', 'values'] as const) assert.deepEqual(Array.from(b.sparse[k]), Array.from(a.sparse[k]), k);
  }
}

const shapes = [
  { K: 6, dd: 10, dim: 50 },
  { K: 4, dd: 0, dim: 80 },
  { K: 3, dd: 7, dim: 0 },
];

test('write → read gives the same head, tolerance included; equal heads give equal bytes', () => {
  for (const [i, shape] of shapes.entries()) {
    const { head } = buildLinearHead(randomParams(i, shape), { tolerance: 0.002 });
    const file = path.join(tmp, `head-${i}.bin`);
    writeLinearHead(file, head, 0.002);
    const back = readLinearHead(file);
    assert.equal(back.tolerance, 0.002);
    assertSameHead(head, back.head);
    assert.ok(Buffer.from(encodeLinearHead(head, 0.002)).equals(fs.readFileSync(file)));
    // Stored as is (as version 2 wrote), the same head: sections 8-byte aligned, read as views on the bytes.
    const stored = encodeLinearHead(head, 0.002, { compress: false });
    assert.equal(stored.length % 8, 0);
    assert.equal(Buffer.from(stored).readUInt32LE(60), 0);
    assertSameHead(head, decodeLinearHead(stored, 'stored').head);
  }
});

test('the body is deflated: a large pruned head shrinks several-fold and reads back exactly; a version-2 file (stored body) still reads', () => {
  const { head } = buildLinearHead(randomParams(3, { K: 40, dd: 0, dim: 3000 }), { tolerance: 0.002 });
  const deflated = Buffer.from(encodeLinearHead(head, 0.002));
  const stored = Buffer.from(encodeLinearHead(head, 0.002, { compress: false }));
  assert.equal(deflated.readUInt32LE(8), 3);
  assert.equal(deflated.readUInt32LE(60), 1);
  assert.ok(deflated.subarray(0, 60).equals(stored.subarray(0, 60)), 'the header is the same but for the body encoding');
  assert.ok(deflated.length < stored.length / 2, `${deflated.length} vs ${stored.length}`);
  assertSameHead(head, decodeLinearHead(deflated, 'deflated').head);
  const v2 = Buffer.from(stored);
  v2.writeUInt32LE(2, 8);
  assertSameHead(head, decodeLinearHead(v2, 'version 2').head);
});

test('a pruned head stores its values as 16-bit multiples of 2·tolerance, read back exactly; tolerance 0 and values off that grid stay float32; version-1 files still read', () => {
  const shape = { K: 30, dd: 0, dim: 400 };
  const params = randomParams(7, shape);
  const { head, pruning } = buildLinearHead(params, { tolerance: 0.002 });
  assert.equal(pruning!.valueBits, 16);
  const nnz = head.sparse!.values.length;
  const small = encodeLinearHead(head, 0.002, { compress: false });
  const back = decodeLinearHead(small, 'quantised');
  assertSameHead(head, back.head);
  // The same head with float32 values, bodies stored as is: the only difference is 2 bytes per stored value
  // (give or take alignment).
  const offGrid: LinearHead = { ...head, sparse: { ...head.sparse!, values: head.sparse!.values.map((v) => v + 1e-4) } };
  const large = encodeLinearHead(offGrid, 0.002, { compress: false });
  assert.ok(Math.abs(large.length - small.length - 2 * nnz) <= 8, `${large.length} - ${small.length} vs 2 × ${nnz}`);
  assertSameHead(offGrid, decodeLinearHead(large, 'float32').head);
  const exact = buildLinearHead(params, { tolerance: 0 });
  assert.equal(exact.pruning!.valueBits, 32);
  assertSameHead(exact.head, decodeLinearHead(encodeLinearHead(exact.head, 0), 'exact').head);
  // A weight further from its shift than int16 multiples reach (100 at tolerance 1e-3: 50,000 steps) keeps the
  // whole head in float32, unrounded.
  const wide = { ...params, coef: Float64Array.from(params.coef, (w, i) => (i === 3 ? 100 : w)) };
  const unrounded = buildLinearHead(wide, { tolerance: 1e-3 });
  assert.equal(unrounded.pruning!.valueBits, 32);
  assert.ok(unrounded.head.sparse!.values.some((v) => Math.abs(v / 0.002 - Math.round(v / 0.002)) > 1e-3));
  const wideBytes = encodeLinearHead(unrounded.head, 1e-3, { compress: false });
  assert.equal(Buffer.from(wideBytes).readUInt32LE(56), 4);
  assertSameHead(unrounded.head, decodeLinearHead(wideBytes, 'wide').head);
  // A version-1 file (before 16-bit values): version 1, zero where the value width now is; float32 values.
  const v1 = Buffer.from(large);
  v1.writeUInt32LE(1, 8);
  v1.writeUInt32LE(0, 56);
  assertSameHead(offGrid, decodeLinearHead(v1, 'version 1').head);
  // A value width other than 2 or 4 is refused.
  const bad = Buffer.from(small);
  bad.writeUInt32LE(3, 56);
  assert.throws(() => decodeLinearHead(bad, 'bad.bin'), (e: Error) => e instanceof ConfigError && /bad\.bin: 3 bytes per stored value/.test(e.message));
});

test('more than 65,535 classes: 32-bit class indices, read back as such', () => {
  const K = 70000;
  const params: LinearModelParams = {
    classes: Array.from({ length: K }, (_, k) => `c${k}`),
    denseWidth: 0,
    sparseWidth: 2,
    mean: new Float64Array(0),
    scale: new Float64Array(0),
    coef: new Float64Array(K * 2),
    intercept: new Float64Array(K),
  };
  params.coef[69999 * 2 + 1] = 3;
  const { head } = buildLinearHead(params, { tolerance: 0 });
  assert.ok(head.sparse!.classIndex instanceof Uint32Array);
  const back = decodeLinearHead(encodeLinearHead(head), 'big.bin').head;
  assert.ok(back.sparse!.classIndex instanceof Uint32Array);
  assert.deepEqual(Array.from(back.sparse!.classIndex), [69999]);
});

/** A valid file's bytes with one change. */
function damaged(change: (buf: Buffer, at: { values: number; colptr: number; classIndex: number; classes: number }) => Buffer | void): Buffer {
  const { head } = buildLinearHead(randomParams(9, { K: 5, dd: 4, dim: 30 }), { tolerance: 0 });
  const buf = Buffer.from(encodeLinearHead(head, 0, { compress: false }));
  // Offsets for this shape, from the layout in head-io.ts: header 64, classes JSON, then the 8-aligned sections.
  const classesBytes = buf.readUInt32LE(36);
  const nnz = buf.readUInt32LE(28);
  const a8 = (n: number) => Math.ceil(n / 8) * 8;
  const classes = 64;
  const intercept = a8(classes + classesBytes);
  const mean = a8(intercept + 8 * 5);
  const scale = a8(mean + 8 * 4);
  const weights = a8(scale + 8 * 4);
  const colptr = a8(weights + 4 * 4 * 5);
  const classIndex = a8(colptr + 4 * 31);
  const values = a8(classIndex + 2 * nnz);
  return change(buf, { values, colptr, classIndex, classes }) ?? buf;
}

/** A deflated head file's bytes. */
function deflatedHead(): Buffer {
  return Buffer.from(encodeLinearHead(buildLinearHead(randomParams(9, { K: 5, dd: 4, dim: 30 }), { tolerance: 0 }).head));
}

/** `buf` with the byte at `at` inverted. */
function flipped(buf: Buffer, at: number): Buffer {
  buf[at] = buf[at]! ^ 0xff;
  return buf;
}

test('a damaged head file is a one-line ConfigError naming the file and what is wrong', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['truncated', damaged((b) => b.subarray(0, b.length - 8)), /bytes, but its header describes .*truncated or corrupt/],
    ['padded', damaged((b) => Buffer.concat([b, Buffer.alloc(8)])), /truncated or corrupt/],
    ['not a head', Buffer.from('{"format": "categorize-bundle"}'), /not a categorize head file/],
    ['newer version', damaged((b) => void b.writeUInt32LE(4, 8)), /format version 4 is not supported/],
    ['unknown body encoding', damaged((b) => void b.writeUInt32LE(2, 60)), /body encoding 2/],
    ['deflated, truncated', deflatedHead().subarray(0, -5), /deflated body does not inflate .*truncated or corrupt/],
    ['deflated, padded', Buffer.concat([deflatedHead(), Buffer.alloc(8)]), /8 bytes after the deflated body/],
    ['deflated, a flipped byte', flipped(deflatedHead(), 100), /deflated body does not inflate/],
    ['deflated, wrong size in the header', (() => { const b = deflatedHead(); b.writeDoubleLE(b.readDoubleLE(48) + 8, 48); return b; })(), /inflated, but its header describes/],
    ['NaN weight', damaged((b, at) => void b.writeFloatLE(NaN, at.values)), /sparse values\[0\] is NaN/],
    ['infinite weight', damaged((b, at) => void b.writeFloatLE(Infinity, at.values + 4)), /sparse values\[1\] is Infinity/],
    ['class index ≥ K', damaged((b, at) => void b.writeUInt16LE(5, at.classIndex)), /class index 5 \(entry 0\) is not below 5/],
    ['colptr decreasing', damaged((b, at) => void b.writeUInt32LE(0xffff, at.colptr + 4)), /colptr decreases at column 1/],
    ['colptr[0] ≠ 0', damaged((b, at) => void b.writeUInt32LE(1, at.colptr)), /colptr\[0\] is 1/],
    ['class names', damaged((b, at) => void b.write('[', at.classes + 1)), /class names/],
  ];
  for (const [what, bytes, message] of cases) {
    const file = path.join(tmp, `broken-${what.replace(/\W+/g, '-')}.bin`);
    fs.writeFileSync(file, bytes);
    assert.throws(
      () => readLinearHead(file),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`head ${file}: `) && message.test(err.message) && !err.message.includes('\n'),
      what,
    );
  }
  assert.throws(() => readLinearHead(path.join(tmp, 'nope.bin')), (err: unknown) => err instanceof ConfigError && /nope\.bin: cannot be read/.test(err.message));
});

// A bundle with a text (16) and an image (8) block and a tfidf block (40): heads over [text, tfidf] and [image].
const textBlock: FeatureBlock = { kind: 'text', offset: 0, dim: 16, model: { path: 'unused' }, preprocess: { maxLength: 8, pooling: 'mean', normalize: true } };
const imageBlock: FeatureBlock = { kind: 'image', offset: 16, dim: 8, model: { path: 'unused' }, preprocess: { resize: 8, crop: 8, mean: [0, 0, 0], std: [1, 1, 1] } };
const tfidfBlock: FeatureBlock = { kind: 'tfidf', offset: 24, dim: 40 };
const classes = ['a', 'b', 'c', 'd'];
const textParams = { ...randomParams(21, { K: 4, dd: 16, dim: 40 }), classes };
const imageParams = { ...randomParams(22, { K: 3, dd: 8, dim: 0 }), classes: ['a', 'b', 'd'] };
const tfidfJson = {
  format: 'categorize-tfidf',
  version: 1,
  config: { analyzer: 'word', lowercase: true, tokenPattern: '(?u)\\b\\w\\w+\\b', ngramRange: [1, 1], stopWords: null, minDf: { count: 1 }, maxDf: { proportion: 1 }, maxFeatures: null, smoothIdf: true, sublinearTf: false, norm: 'l2' },
  terms: Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(2, '0')}`),
  idf: Array.from({ length: 40 }, () => 1.5),
};

function writeFused(dir: string, heads: [BundleHeadPart['spec'], BundleHeadPart][]): void {
  saveBundle(dir, {
    manifest: { toolVersion: 'test', createdAt: '2026-01-01T00:00:00Z', classes, features: [textBlock, imageBlock, tfidfBlock], tfidf: true },
    heads: heads.map(([spec, part]) => ({ ...part, spec })),
    means: { text: new Float64Array(16).fill(0.1), image: new Float64Array(8).fill(0.2) },
    tfidfJson,
  });
}

const specs = {
  text: { name: 'text', kinds: ['text', 'tfidf'] as FeatureBlock['kind'][], classes, weight: 0.6 },
  image: { name: 'image', kinds: ['image'] as FeatureBlock['kind'][], classes: ['a', 'b', 'd'], weight: 0.4 },
};

function onnxOf(p: LinearModelParams): Uint8Array {
  const W = p.denseWidth + p.sparseWidth;
  const mean = new Float64Array(W);
  const scale = new Float64Array(W).fill(1);
  mean.set(p.mean.subarray(0, p.denseWidth));
  scale.set(p.scale.subarray(0, p.denseWidth));
  return buildClassifierOnnx({ mean, scale, coef: p.coef, intercept: p.intercept, nClasses: p.classes.length, nFeatures: W });
}

test('a format-3 bundle records linear heads with their pruning; a format-2 one (ONNX heads) still loads; both predict the same', async () => {
  const text = buildLinearHead(textParams, { tolerance: 0 });
  const image = buildLinearHead(imageParams, { tolerance: 0 });
  const pruning = { ...text.pruning!, agreement: { rows: 10, top1Agreement: 1, maxAbsDiff: 0, meanAbsDiff: 0 } };
  const linearDir = path.join(tmp, 'linear-bundle');
  writeFused(linearDir, [[specs.text, { linear: text.head, pruning }], [specs.image, { linear: image.head }]]);
  const m = JSON.parse(fs.readFileSync(path.join(linearDir, 'manifest.json'), 'utf8'));
  assert.equal(m.formatVersion, 3);
  assert.deepEqual(m.fusion.heads.map((h: { file: string; type: string }) => [h.file, h.type]), [['head-text.bin', 'linear'], ['head-image.bin', 'linear']]);
  assert.deepEqual(m.fusion.heads[0].pruning, pruning);

  const onnxDir = path.join(tmp, 'onnx-bundle');
  writeFused(onnxDir, [[specs.text, { onnx: onnxOf(textParams) }], [specs.image, { onnx: onnxOf(imageParams) }]]);
  const mo = JSON.parse(fs.readFileSync(path.join(onnxDir, 'manifest.json'), 'utf8'));
  assert.equal(mo.formatVersion, 2);
  assert.equal(mo.fusion.heads[0].type, undefined, 'format 2 manifests carry no head type');
  assert.equal(mo.fusion.heads[0].input, 'features');

  const linear = loadBundle(linearDir);
  const onnx = loadBundle(onnxDir);
  assert.deepEqual(linear.heads.map((h) => h.type), ['linear', 'linear']);
  assert.deepEqual(onnx.heads.map((h) => h.type), ['onnx', 'onnx']);
  for (const h of [0, 1]) {
    const a = await Classifier.load(linear, { device: 'cpu', threads: 1 }, linear.heads[h]);
    const b = await Classifier.load(onnx, { device: 'cpu', threads: 1 }, onnx.heads[h]);
    assert.ok(a instanceof LinearClassifier && b instanceof OnnxClassifier);
    const p = h === 0 ? textParams : imageParams;
    const rows = randomRows(30 + h, 40, [p.denseWidth], p.sparseWidth, 6);
    const x = new Float32Array(rows.length * a.width);
    rows.forEach((r, i) => x.set(denseInput(r, p.denseWidth, p.sparseWidth), i * a.width));
    const pa = await a.predict(x, rows.length);
    const pb = await b.predict(x, rows.length);
    const ps = scoreRows(a.head, rows);
    for (let i = 0; i < pa.length; i++) {
      assert.ok(Math.abs(pa[i]! - pb[i]!) < 1e-5, `head ${h}: linear ${pa[i]} vs onnx ${pb[i]}`);
      assert.ok(Math.abs(ps[i]! - pa[i]!) < 1e-6);
    }
    await a.dispose();
    await b.dispose();
  }
});

test("a linear head that does not fit the bundle (widths, classes) is refused when loaded", async () => {
  const dir = path.join(tmp, 'mismatch');
  // The text head written over [text, tfidf] but with 41 tfidf columns.
  const wide = buildLinearHead({ ...randomParams(5, { K: 4, dd: 16, dim: 41 }), classes }, { tolerance: 0 });
  writeFused(dir, [[specs.text, { linear: wide.head }], [specs.image, { linear: buildLinearHead(imageParams).head }]]);
  const bundle = loadBundle(dir);
  await assert.rejects(Classifier.load(bundle, { device: 'cpu', threads: 1 }, bundle.heads[0]), (err: unknown) => err instanceof ConfigError && /reads dense 16 \+ sparse 41 columns but the bundle's layout gives it text 16 \+ tfidf 40/.test(err.message));
  const dir2 = path.join(tmp, 'mismatch-classes');
  const otherClasses = buildLinearHead({ ...imageParams, classes: ['a', 'c', 'd'] }).head;
  writeFused(dir2, [[specs.text, { linear: buildLinearHead(textParams).head }], [specs.image, { linear: otherClasses }]]);
  const b2 = loadBundle(dir2);
  await assert.rejects(Classifier.load(b2, { device: 'cpu', threads: 1 }, b2.heads[1]), /has classes 3 \[a, c, d\] but the bundle lists 3 \[a, b, d\] for it/);
  // A manifest whose linear head reads tfidf before a dense block is refused by the loader.
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  m.fusion.heads[0].kinds = ['tfidf', 'text'];
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
  assert.throws(() => loadBundle(dir), /linear head 'text' must read the tfidf block last/);
});

test('a single linear head is classifier.bin; linearHeadParams round-trips through an ONNX graph', async () => {
  const dir = path.join(tmp, 'single');
  const params = { ...randomParams(71, { K: 4, dd: 16, dim: 0 }), classes };
  const { head } = buildLinearHead(params);
  saveBundle(dir, {
    manifest: { toolVersion: 'test', createdAt: '2026-01-01T00:00:00Z', classes, features: [{ ...textBlock }], tfidf: false },
    heads: [{ linear: head }],
    means: { text: new Float64Array(16) },
    tfidfJson: null,
  });
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  assert.deepEqual(m.classifier, { file: 'classifier.bin', type: 'linear' });
  assert.equal(m.formatVersion, 3);
  const bundle = loadBundle(dir);
  const clf = await Classifier.load(bundle, { device: 'cpu', threads: 1 });
  const rows = randomRows(72, 10, [16], 0, 0);
  const x = Float32Array.from(rows.flatMap((r) => Array.from(r.dense[0]!)));
  const viaOnnx = await ort(onnxOf(linearHeadParams(head)), x, rows.length, 16);
  const got = await clf.predict(x, rows.length);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - viaOnnx[i]!) < 1e-5);
});

async function ort(bytes: Uint8Array, x: Float32Array, n: number, width: number): Promise<Float32Array> {
  const { default: onnx } = await import('onnxruntime-node');
  const s = await onnx.InferenceSession.create(bytes);
  const out = await s.run({ features: new onnx.Tensor('float32', x, [n, width]) }, ['probabilities']);
  await s.release();
  return out.probabilities!.data as Float32Array;
}
