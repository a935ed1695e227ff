// The ONNX classifier head computes softmax(((x - mean) / scale) · coefᵀ + intercept) like a float64 reference,
// with skl2onnx's output names and types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildClassifierOnnx, type ClassifierParams } from '../../src/head/classifier-onnx.js';
import { mulberry32 } from '../../fixtures/tiny-models.js';
import { ConfigError } from '../../src/errors.js';

function randomParams(c: number, d: number, seed: number): ClassifierParams {
  const r = mulberry32(seed);
  const u = (n: number, lo: number, hi: number): Float64Array => Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
  const scale = u(d, 0.2, 3);
  scale[0] = 1; // what the caller passes for a zero-variance feature
  return { mean: u(d, -1, 1), scale, coef: u(c * d, -2, 2), intercept: u(c, -1, 1), nClasses: c, nFeatures: d };
}

function reference(p: ClassifierParams, x: Float32Array, n: number): { probs: Float64Array; labels: number[] } {
  const { nClasses: c, nFeatures: d } = p;
  const probs = new Float64Array(n * c);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = Array.from({ length: c }, (_, k) => {
      let z = p.intercept[k]!;
      for (let j = 0; j < d; j++) z += ((x[i * d + j]! - p.mean[j]!) / p.scale[j]!) * p.coef[k * d + j]!;
      return z;
    });
    const max = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - max));
    const sum = e.reduce((a, b) => a + b, 0);
    e.forEach((v, k) => { probs[i * c + k] = v / sum; });
    labels.push(logits.indexOf(max));
  }
  return { probs, labels };
}

async function run(bytes: Uint8Array, x: Float32Array, n: number, d: number) {
  const session = await ort.InferenceSession.create(bytes);
  try {
    assert.deepEqual([...session.inputNames], ['features']);
    assert.deepEqual([...session.outputNames], ['label', 'probabilities']);
    const out = await session.run({ features: new ort.Tensor('float32', x, [n, d]) });
    return { probs: out.probabilities!, label: out.label! };
  } finally {
    await session.release();
  }
}

for (const [c, d, n] of [[5, 12, 7], [3, 384, 4], [2, 4, 1]] as const) {
  test(`matches a float64 reference (C=${c}, D=${d}, N=${n})`, async () => {
    const p = randomParams(c, d, c * 1000 + d);
    const r = mulberry32(99);
    const x = Float32Array.from({ length: n * d }, () => 2 * r() - 1);
    const { probs, label } = await run(buildClassifierOnnx(p), x, n, d);
    const want = reference(p, x, n);
    assert.equal(probs.type, 'float32');
    assert.deepEqual(probs.dims, [n, c]);
    assert.equal(label.type, 'int64');
    assert.deepEqual(label.dims, [n]);
    const got = probs.data as Float32Array;
    for (let i = 0; i < n * c; i++) assert.ok(Math.abs(got[i]! - want.probs[i]!) < 1e-5, `prob ${i}: ${got[i]} vs ${want.probs[i]}`);
    assert.deepEqual([...(label.data as BigInt64Array)].map(Number), want.labels);
  });
}

test("binary heads accept sklearn's single coefficient row", async () => {
  const d = 6;
  const r = mulberry32(5);
  const w = Float64Array.from({ length: d }, () => 2 * r() - 1);
  const b = 0.3;
  const x = Float32Array.from({ length: 3 * d }, () => 2 * r() - 1);
  const bytes = buildClassifierOnnx({ mean: new Float64Array(d), scale: new Float64Array(d).fill(1), coef: w, intercept: [b], nClasses: 2, nFeatures: d });
  const { probs } = await run(bytes, x, 3, d);
  for (let i = 0; i < 3; i++) {
    let z = b;
    for (let j = 0; j < d; j++) z += w[j]! * x[i * d + j]!;
    const p1 = 1 / (1 + Math.exp(-z));
    const got = probs.data as Float32Array;
    assert.ok(Math.abs(got[i * 2 + 1]! - p1) < 1e-5 && Math.abs(got[i * 2]! - (1 - p1)) < 1e-5);
  }
});

test('mismatched parameter sizes are a ConfigError', () => {
  const p = randomParams(3, 4, 1);
  assert.throws(() => buildClassifierOnnx({ ...p, coef: p.coef.slice(1) }), ConfigError);
  assert.throws(() => buildClassifierOnnx({ ...p, scale: [1, 2] }), /scale has 2 values, expected 4/);
  assert.throws(() => buildClassifierOnnx({ ...p, nClasses: 1, intercept: [0], coef: p.coef.slice(0, 4) }), /nClasses/);
});
