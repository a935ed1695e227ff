// Tapping a classifier's pooled features: the tapped output must be exactly what the model's own classifier reads,
// checked by re-applying that classifier to it (tiny float and int8 fixtures, and the real int8 MobileNetV2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { buildImageClassifier, buildImageEncoder, mulberry32 } from '../../fixtures/tiny-models.js';
import { GraphBuilder, initializerToFloat32, onnx, readModel, tensorDims, toNumber } from '../../src/models/onnx-graph.js';
import { classifierFeature, findPooledTensor, tapModel } from '../../src/models/tap.js';
import { ConfigError } from '../../src/errors.js';
import { preprocessImage } from '../../src/embed/image-preprocess.js';
import { hasShared, sharedDir } from '../helpers/paths.js';

function randomPixels(batch: number, seed: number): ort.Tensor {
  const rand = mulberry32(seed);
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = rand() * 4 - 2;
  return new ort.Tensor('float32', data, [batch, 3, 224, 224]);
}

function initializer(bytes: Uint8Array, name: string): onnx.ITensorProto {
  const t = readModel(bytes).graph!.initializer!.find((x) => x.name === name);
  assert.ok(t, `initializer ${name}`);
  return t;
}

/** y = x W^T + b for W [out, in] (Gemm with transB=1), in float64. */
function gemmTransB(x: Float32Array, batch: number, w: Float32Array, b: Float32Array): Float64Array {
  const out = b.length;
  const inDim = w.length / out;
  const y = new Float64Array(batch * out);
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < out; o++) {
      let s = b[o]!;
      for (let i = 0; i < inDim; i++) s += x[n * inDim + i]! * w[o * inDim + i]!;
      y[n * out + o] = s;
    }
  }
  return y;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function runTapped(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<{ names: string[]; out: ort.InferenceSession.OnnxValueMapType }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return { names: [...session.outputNames], out: await session.run(feeds) };
  } finally {
    await session.release();
  }
}

for (const quantized of [false, true]) {
  test(`${quantized ? 'int8' : 'float'} classifier: tap auto exposes the pooled features its Gemm reads`, async () => {
    const bytes = buildImageClassifier({ seed: 11, dim: 16, classes: 5, quantized });
    const { bytes: tapped, tap } = tapModel(bytes, 'auto', 'tiny-classifier');
    assert.deepEqual(tap, {
      output: 'pooled',
      source: quantized ? 'pooled_q' : 'pooled_4d',
      op: quantized ? 'QLinearGlobalAveragePool' : 'GlobalAveragePool',
      dequantized: quantized,
      dim: 16,
    });
    const batch = 3;
    const { names, out } = await runTapped(tapped, { pixel_values: randomPixels(batch, 5) });
    assert.deepEqual(names, ['logits', 'pooled'], 'existing outputs are kept, the tap comes after them');
    const pooled = out.pooled!;
    assert.deepEqual(pooled.dims, [batch, 16]);
    assert.equal(pooled.type, 'float32');
    const features = pooled.data as Float32Array;
    assert.ok(features.some((v) => v > 0), 'features are not all zero');
    if (quantized) {
      // Dequantised uint8 with scale 1/64: every value sits on that grid.
      assert.ok(features.every((v) => Math.abs(v * 64 - Math.round(v * 64)) < 1e-4), 'tap values are dequantised uint8');
    }
    const w = initializerToFloat32(initializer(bytes, 'fc.weight'));
    const b = initializerToFloat32(initializer(bytes, 'fc.bias'));
    const expected = gemmTransB(features, batch, w, b);
    const diff = maxAbsDiff(out.logits!.data as Float32Array, expected);
    assert.ok(diff < 1e-5, `logits differ from Gemm(tapped features) by ${diff}`);
  });
}

test('findPooledTensor: the pool nearest the outputs, its quantisation and channel count', () => {
  const float = findPooledTensor(readModel(buildImageClassifier({ seed: 1, dim: 12 })));
  assert.deepEqual(float, { source: 'pooled_4d', op: 'GlobalAveragePool', dim: 12 });
  const quant = findPooledTensor(readModel(buildImageClassifier({ seed: 1, dim: 12, quantized: true })));
  assert.deepEqual(quant, { source: 'pooled_q', op: 'QLinearGlobalAveragePool', dim: 12, quant: { scale: 'pooled_scale', zeroPoint: 'features_zero_point' } });

  // A pool whose result does not reach an output is not "on the path".
  const g = new GraphBuilder('dead_pool');
  const x = g.input('x', 'float', ['batch', 4, 5, 5]);
  g.node('GlobalAveragePool', [x], ['dead']);
  g.node('ReduceMean', [x], ['live'], { axes: [-2, -1], keepdims: 0 });
  g.output('live', 'float', ['batch', 4]);
  assert.deepEqual(findPooledTensor(g.toModel({ opset: 13 })), { source: 'live', op: 'ReduceMean', dim: 4 });
});

test('ReduceMean over H,W (attribute axes and, from opset 18, an axes input) is found and tapped', async () => {
  for (const opset of [13, 18]) {
    const g = new GraphBuilder('reduce_mean');
    const x = g.input('x', 'float', ['batch', 4, 5, 5]);
    const relu = g.op('Relu', [x]);
    const pooled = opset >= 18
      ? g.op('ReduceMean', [relu, g.constant(BigInt64Array.from([2n, 3n]), [2])], { keepdims: 1 })
      : g.op('ReduceMean', [relu], { axes: [2, 3], keepdims: 1 });
    const flat = g.op('Flatten', [pooled], { axis: 1 });
    g.node('MatMul', [flat, g.initializer('w', new Float32Array(4 * 3).fill(0.5), [4, 3])], ['scores']);
    g.output('scores', 'float', ['batch', 3]);
    const { bytes, tap } = tapModel(g.toBytes({ opset }), 'auto');
    assert.equal(tap?.op, 'ReduceMean', `opset ${opset}`);
    assert.equal(tap?.dim, 4, 'dim read from the classifier weight [4, 3]');
    const data = Float32Array.from({ length: 2 * 4 * 25 }, (_, i) => (i % 7) - 3);
    const { out } = await runTapped(bytes, { x: new ort.Tensor('float32', data, [2, 4, 5, 5]) });
    assert.deepEqual(out.pooled!.dims, [2, 4]);
    const expected = new Float32Array(8);
    for (let i = 0; i < 8; i++) for (let k = 0; k < 25; k++) expected[i]! += Math.max(0, data[i * 25 + k]!) / 25;
    assert.ok(maxAbsDiff(out.pooled!.data as Float32Array, expected) < 1e-6);
  }
});

test('named tensor: float exposed (flattened when 4-d), quantised dequantised with its producer\'s scale', async () => {
  const feeds = { pixel_values: randomPixels(2, 9) };
  const float = buildImageClassifier({ seed: 3, dim: 8 });
  const auto = (await runTapped(tapModel(float, 'auto').bytes, feeds)).out.pooled!.data as Float32Array;

  // The last conv's activations [2, 8, 14, 14]: their spatial mean is the pooled feature.
  const named = tapModel(float, { tensor: 'features' });
  assert.equal(named.tap?.op, 'named');
  assert.equal(named.tap?.dequantized, false);
  const map = (await runTapped(named.bytes, feeds)).out[named.tap!.output]!;
  assert.deepEqual(map.dims, [2, 8 * 14 * 14]);
  const means = new Float32Array(16);
  const fm = map.data as Float32Array;
  for (let i = 0; i < 16; i++) for (let k = 0; k < 196; k++) means[i]! += fm[i * 196 + k]! / 196;
  assert.ok(maxAbsDiff(means, auto) < 1e-5);

  // A 2-d float tensor comes out as it is.
  const flat = tapModel(float, { tensor: 'flat' });
  const flatOut = (await runTapped(flat.bytes, feeds)).out[flat.tap!.output]!;
  assert.deepEqual(flatOut.dims, [2, 8]);
  assert.ok(maxAbsDiff(flatOut.data as Float32Array, auto) < 1e-7);

  const quant = buildImageClassifier({ seed: 3, dim: 8, quantized: true });
  const qAuto = (await runTapped(tapModel(quant, 'auto').bytes, feeds)).out.pooled!.data as Float32Array;
  const qNamed = tapModel(quant, { tensor: 'pooled_q' });
  assert.deepEqual(qNamed.tap, { output: 'pooled', source: 'pooled_q', op: 'named', dequantized: true, dim: 8 });
  assert.deepEqual((await runTapped(qNamed.bytes, feeds)).out.pooled!.data, qAuto);

  // QuantizeLinear's output (uint8 [2, 8, 14, 14]) dequantises with QuantizeLinear's own scale.
  const qFeatures = tapModel(quant, { tensor: 'features_q' });
  assert.equal(qFeatures.tap?.dequantized, true);
  const qf = (await runTapped(qFeatures.bytes, feeds)).out[qFeatures.tap!.output]!;
  assert.deepEqual(qf.dims, [2, 8 * 14 * 14]);
  assert.ok((qf.data as Float32Array).every((v) => Math.abs(v * 24 - Math.round(v * 24)) < 1e-4));
});

test('named tensor that is not an activation is a ConfigError naming it', () => {
  const bytes = buildImageClassifier({ seed: 3 });
  assert.throws(() => tapModel(bytes, { tensor: 'nope' }, 'my-model'), (err: unknown) =>
    err instanceof ConfigError && /my-model/.test(err.message) && /'nope'/.test(err.message) && /pooled_4d/.test(err.message));
  assert.throws(() => tapModel(bytes, { tensor: 'fc.weight' }), (err: unknown) =>
    err instanceof ConfigError && /initializer/.test(err.message));
});

test("'logits' leaves the bytes alone", () => {
  const bytes = buildImageClassifier({ seed: 3 });
  const r = tapModel(bytes, 'logits');
  assert.equal(r.bytes, bytes);
  assert.equal(r.tap, null);
});

test('auto with no pool: ConfigError naming the model and suggesting --tap', () => {
  const g = new GraphBuilder('mlp');
  const x = g.input('x', 'float', ['batch', 6]);
  const h = g.node('Relu', [g.op('Gemm', [x, g.initializer('w1', new Float32Array(24), [6, 4])])], ['hidden'])[0]!;
  g.node('Gemm', [h, g.initializer('w2', new Float32Array(8), [4, 2])], ['logits']);
  g.output('logits', 'float', ['batch', 2]);
  assert.throws(() => tapModel(g.toBytes(), 'auto', 'tiny-mlp (model.onnx)'), (err: unknown) =>
    err instanceof ConfigError && err.exitCode === 2 && /tiny-mlp \(model\.onnx\)/.test(err.message)
    && /--tap <tensor>/.test(err.message) && /'hidden'/.test(err.message));
  assert.equal(findPooledTensor(g.toModel()), null);
});

test('classifierFeature: a pool counts only where it feeds the classifier (what --image-model file.onnx taps)', () => {
  for (const quantized of [false, true]) {
    const c = classifierFeature(readModel(buildImageClassifier({ seed: 1, dim: 12, classes: 4, quantized })));
    assert.equal(c.pooled?.source, quantized ? 'pooled_q' : 'pooled_4d');
    assert.equal(c.classifier, true);
    assert.deepEqual(c.outputs, ['logits']);
  }
  // A feature extractor ending in its pool: no classifier, nothing to tap (it is used as it is, silently).
  const encoder = classifierFeature(readModel(buildImageEncoder({ seed: 2, dim: 8 })));
  assert.deepEqual([encoder.pooled, encoder.classifier], [null, false]);
  // Conv -> Flatten -> Gemm: a classifier with no pool before it (the caller says which output it uses).
  const g = new GraphBuilder('no_pool');
  const x = g.input('pixel_values', 'float', ['batch', 3, 224, 224]);
  const conv = g.op('Conv', [x, g.initializer('conv.weight', new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32])], { kernel_shape: [32, 32], strides: [32, 32] });
  const flat = g.node('Flatten', [conv], ['flat'], { axis: 1 })[0]!;
  g.node('Gemm', [flat, g.initializer('fc.weight', new Float32Array(3 * 98), [3, 98])], ['logits'], { transB: 1 });
  g.output('logits', 'float', ['batch', 3]);
  const bare = classifierFeature(g.toModel());
  assert.deepEqual([bare.pooled, bare.classifier, bare.outputs], [null, true, ['logits']]);
});

test('a model that already outputs the pooled tensor comes back unchanged', () => {
  for (const pooled of ['4d', '2d'] as const) {
    const bytes = buildImageEncoder({ seed: 2, dim: 8, pooled });
    const r = tapModel(bytes, 'auto');
    assert.equal(r.bytes, bytes, pooled);
    assert.equal(r.tap?.output, 'pooler_output');
    assert.equal(r.tap?.op, 'GlobalAveragePool');
    assert.equal(r.tap?.dequantized, false);
    assert.equal(r.tap?.dim, 8, 'dim from the last conv weight');
  }
});

test('new names avoid existing ones', async () => {
  const g = new GraphBuilder('clash');
  const x = g.input('x', 'float', ['batch', 2, 3, 3]);
  const pooledName = g.node('Relu', [x], ['pooled'])[0]!; // the name the tap would like
  g.node('GlobalAveragePool', [pooledName], ['gap']);
  g.node('Flatten', [g.op('Identity', ['gap'])], ['pooled_1'], { axis: 1 });
  g.node('MatMul', ['pooled_1', g.initializer('w', Float32Array.from([1, 2, 3, 4]), [2, 2])], ['y']);
  g.output('y', 'float', ['batch', 2]);
  const { bytes, tap } = tapModel(g.toBytes(), 'auto');
  assert.equal(tap?.output, 'pooled_2');
  const { out } = await runTapped(bytes, { x: new ort.Tensor('float32', Float32Array.from({ length: 18 }, (_, i) => i - 4), [1, 2, 3, 3]) });
  assert.ok(maxAbsDiff(out.pooled_2!.data as Float32Array, [10 / 9, 9]) < 1e-6);
});

// ---------------------------------------------------------------- the real int8 MobileNetV2

/** Values of an int8/uint8/int32 tensor, from raw_data or int32_data (the quantiser writes scalars the latter way). */
function intValues(t: onnx.ITensorProto): number[] {
  const DT = onnx.TensorProto.DataType;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  if (t.dataType === DT.INT8) return raw ? Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength)) : [...(t.int32Data ?? [])];
  if (t.dataType === DT.UINT8) return raw ? Array.from(raw) : [...(t.int32Data ?? [])];
  if (t.dataType === DT.INT32) {
    if (!raw) return [...(t.int32Data ?? [])];
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Array.from({ length: raw.byteLength / 4 }, (_, i) => v.getInt32(i * 4, true));
  }
  throw new Error(`${t.name}: not an integer tensor`);
}

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]! / n; mb += b[i]! / n; }
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma, db = b[i]! - mb;
    sab += da * db; saa += da * da; sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

const argmax = (v: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
};

const mobilenet = path.join(sharedDir, 'models', 'mobilenetv2-12-int8', 'model.onnx');

test('real int8 MobileNetV2: the tapped 1280-d feature reproduces the model\'s own classifier', { skip: !(hasShared && fs.existsSync(mobilenet)) && 'needs ../shared/models/mobilenetv2-12-int8' }, async (t) => {
  const original = fs.readFileSync(mobilenet);
  const { bytes, tap } = tapModel(original, 'auto', 'mobilenetv2-12-int8');
  assert.deepEqual(tap, { output: 'pooled', source: '464_quantized', op: 'QLinearGlobalAveragePool', dequantized: true, dim: 1280 });

  // The classifier after the pool, as the graph has it: Reshape(464_quantized) -> QLinearMatMul (int8 weight
  // [1280, 1000] with per-class scale/zero point) -> com.microsoft QLinearAdd (uint8 bias) -> DequantizeLinear -> output.
  const model = readModel(original);
  const nodes = model.graph!.node!;
  const inits = new Map(model.graph!.initializer!.map((i) => [i.name!, i]));
  const reshape = nodes.find((n) => n.input?.[0] === '464_quantized' && n.opType === 'Reshape')!;
  const matmul = nodes.find((n) => n.opType === 'QLinearMatMul' && n.input?.[0] === reshape.output![0])!;
  assert.ok(matmul, 'QLinearMatMul reads the reshaped pool');
  const add = nodes.find((n) => n.opType === 'QLinearAdd' && n.input?.[0] === matmul.output![0])!;
  assert.equal(add.domain, 'com.microsoft');
  const deq = nodes.find((n) => n.opType === 'DequantizeLinear' && n.input?.[0] === add.output![0])!;
  assert.equal(deq.output![0], 'output');
  assert.equal(matmul.input![1], '464_scale', 'the matmul reads the pool with the scale the tap dequantises with');

  const scalar = (name: string): number => {
    const tp = inits.get(name)!;
    return tp.dataType === onnx.TensorProto.DataType.FLOAT ? initializerToFloat32(tp)[0]! : intValues(tp)[0]!;
  };
  const wT = inits.get(matmul.input![3]!)!;
  const [inDim, classes] = tensorDims(wT) as [number, number];
  assert.deepEqual([inDim, classes], [1280, 1000]);
  const wq = intValues(wT);
  const wScale = initializerToFloat32(inits.get(matmul.input![4]!)!);
  const wZero = intValues(inits.get(matmul.input![5]!)!);
  const perClass = (v: ArrayLike<number>, c: number): number => (v.length === 1 ? v[0]! : v[c]!);
  const weight = new Float64Array(inDim * classes);
  for (let i = 0; i < inDim; i++) {
    for (let c = 0; c < classes; c++) weight[i * classes + c] = (wq[i * classes + c]! - perClass(wZero, c)) * perClass(wScale, c);
  }
  // QLinearAdd's B is the bias, its own (scale, zero point): inputs 3, 4, 5.
  const bq = intValues(inits.get(add.input![3]!)!);
  const bScale = scalar(add.input![4]!);
  const bZero = scalar(add.input![5]!);
  const bias = bq.map((q) => (q - bZero) * bScale);
  assert.equal(bias.length, classes);

  // Real photos, preprocessed as the model expects (torchvision Resize 256, CenterCrop 224, ImageNet norm).
  const photos = [
    ...fs.readdirSync(path.join(sharedDir, 'data', 'myntra-fashion', 'images')).sort().slice(0, 4)
      .map((f) => path.join(sharedDir, 'data', 'myntra-fashion', 'images', f)),
    ...fs.readdirSync(path.join(sharedDir, 'data', 'flipkart-products', 'images')).sort().slice(0, 4)
      .map((f) => path.join(sharedDir, 'data', 'flipkart-products', 'images', f)),
  ];
  const batch = photos.length;
  const pixels = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < batch; i++) await preprocessImage(photos[i]!, undefined, pixels, i * 3 * 224 * 224);
  const feeds = { input: new ort.Tensor('float32', pixels, [batch, 3, 224, 224]) };

  const before = (await runTapped(original, feeds)).out.output!.data as Float32Array;
  const { names, out } = await runTapped(bytes, feeds);
  assert.deepEqual(names, ['output', 'pooled']);
  const logits = out.output!.data as Float32Array;
  assert.ok(maxAbsDiff(before, logits) === 0, 'the tap leaves the logits unchanged');
  assert.deepEqual(out.pooled!.dims, [batch, 1280]);
  const features = out.pooled!.data as Float32Array;
  const step = scalar('464_scale');
  assert.ok(features.every((v) => Math.abs(v / step - Math.round(v / step)) < 1e-3), 'features lie on the pool\'s uint8 grid');

  // The int8 graph saturates: QLinearMatMul and QLinearAdd write uint8, so their results are clipped to
  // [(0 - zp) * scale, (255 - zp) * scale] (the output to about [-12.0, 28.8]). The float classifier below
  // clips the same way; without that, strongly negative logits (below -12) look like disagreements.
  const range = (scaleName: string, zpName: string): [number, number] => {
    const sc = scalar(scaleName), zp = scalar(zpName);
    return [(0 - zp) * sc, (255 - zp) * sc];
  };
  const [mmLo, mmHi] = range(matmul.input![6]!, matmul.input![7]!);
  const [outLo, outHi] = range(add.input![6]!, add.input![7]!);
  const clip = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  const outStep = scalar(add.input![6]!);
  const rs: number[] = [];
  const rawRs: number[] = [];
  const diffs: number[] = [];
  let top1Same = 0;
  for (let n = 0; n < batch; n++) {
    const f = features.subarray(n * inDim, (n + 1) * inDim);
    const mm = new Float64Array(classes);
    for (let i = 0; i < inDim; i++) {
      const v = f[i]!;
      if (v === 0) continue;
      for (let c = 0; c < classes; c++) mm[c]! += v * weight[i * classes + c]!;
    }
    const raw = mm.map((v, c) => v + bias[c]!);
    const mine = mm.map((v, c) => clip(clip(v, mmLo, mmHi) + bias[c]!, outLo, outHi));
    const theirs = logits.subarray(n * classes, (n + 1) * classes);
    const r = pearson(mine, theirs);
    const rawR = pearson(raw, theirs);
    const maxAbs = maxAbsDiff(mine, theirs);
    rs.push(r);
    rawRs.push(rawR);
    diffs.push(maxAbs);
    const top = argmax(mine);
    // Each of the two requantisations rounds by up to half a step (~0.08): the float logits must be within a
    // step or so everywhere, and our top-1 among the model's best classes (rounding can tie the top).
    assert.ok(r > 0.999, `photo ${n}: Pearson r ${r}`);
    assert.ok(maxAbs < 1.5 * outStep, `photo ${n}: max |float - int8 logits| ${maxAbs} (output step ${outStep})`);
    assert.equal(theirs[top], theirs[argmax(theirs)], `photo ${n}: float top-1 ${top} is not among the model's top classes`);
    if (top === argmax(theirs)) top1Same++;
    t.diagnostic(`${path.basename(photos[n]!)}: r=${r.toFixed(6)} (unclipped ${rawR.toFixed(6)}) max|diff|=${maxAbs.toFixed(4)} `
      + `top1 float=${top} model=${argmax(theirs)} (logit ${theirs[argmax(theirs)]!.toFixed(2)})`);
  }
  t.diagnostic(`min r ${Math.min(...rs).toFixed(6)} (unclipped ${Math.min(...rawRs).toFixed(6)}); max |diff| ${Math.max(...diffs).toFixed(4)}; `
    + `strict top-1 equal ${top1Same}/${batch}; output step ${outStep.toFixed(4)}`);
});

test('opset < 10: the dequantise comes from com.microsoft', async () => {
  // A model fed uint8 activations directly, default opset 9 (no DequantizeLinear there).
  const g = new GraphBuilder('old_opset');
  const x = g.input('x', 'uint8', ['batch', 2, 2, 2]);
  const s = g.initializer('s', Float32Array.from([0.5]), []);
  const z = g.initializer('z', new Uint8Array([10]), []);
  g.node('QLinearGlobalAveragePool', [x, s, z, s, z], ['pool_q'], { channels_last: 0 }, 'com.microsoft');
  g.node('DequantizeLinear', ['pool_q', s, z], ['pool'], {}, 'com.microsoft');
  g.node('Flatten', ['pool'], ['flat'], { axis: 1 });
  g.node('MatMul', ['flat', g.initializer('w', Float32Array.from([1, 0, 0, 1, 1, 1]), [2, 3])], ['y']);
  g.output('y', 'float', ['batch', 3]);
  const { bytes, tap } = tapModel(g.toBytes({ opset: 9 }), 'auto');
  assert.equal(tap?.output, 'pooled');
  assert.equal(tap?.dequantized, true);
  const added = readModel(bytes).graph!.node!.find((n) => n.name?.startsWith('tap_DequantizeLinear'))!;
  assert.equal(added.domain, 'com.microsoft');
  const data = Uint8Array.from([10, 12, 14, 16, 20, 20, 20, 20]);
  const { out } = await runTapped(bytes, { x: new ort.Tensor('uint8', data, [1, 2, 2, 2]) });
  assert.deepEqual(Array.from(out.pooled!.data as Float32Array), [1.5, 5]);
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [6.5, 5, 5]);

  // Had the graph already exposed the dequantised pool (DequantizeLinear + Flatten as an output): unchanged.
  const exposed = readModel(g.toBytes({ opset: 9 }));
  exposed.graph!.output!.push(onnx.ValueInfoProto.create({ name: 'flat', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }));
  const again = onnx.ModelProto.encode(exposed).finish();
  assert.equal(tapModel(again, 'auto').tap?.output, 'flat');
  assert.equal(tapModel(again, 'auto').bytes, again);
  assert.equal(toNumber(readModel(bytes).opsetImport![0]!.version), 9);
});
