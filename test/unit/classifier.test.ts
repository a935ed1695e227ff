// The classifier head loader: our exported graph and a skl2onnx-shaped graph (ai.onnx.ml Scaler +
// LinearClassifier, zipmap=False) both reproduce scikit-learn's predict_proba from the golden fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { Classifier, topClasses } from '../../src/head/classifier.js';
import { buildClassifierOnnx } from '../../src/head/classifier-onnx.js';
import { GraphBuilder, attr } from '../../src/models/onnx-graph.js';
import { loadBundle, saveBundle, type FeatureBlock } from '../../src/models/bundle.js';
import { ConfigError } from '../../src/errors.js';

const scalerGold = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-scaler.json'), 'utf8'));
const lrGold = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-logistic.json'), 'utf8'));
const fit = lrGold.cases.find((c: { C: number; class_weight: unknown; sample_weight: unknown }) => c.C === 1 && c.class_weight === null && c.sample_weight === null) ?? lrGold.cases[0];
const n: number = scalerGold.n;
const d: number = scalerGold.d;
const K: number = lrGold.n_classes;
const classes = Array.from({ length: K }, (_, i) => `class-${i}`);
const flat = (m: number[] | number[][]) => (Array.isArray(m[0]) ? (m as number[][]).flat() : (m as number[]));

/** A bundle whose single 'text' block is the 20 golden features (the loader only cares about widths). */
function writeBundle(dir: string, onnx: Uint8Array): void {
  const block: FeatureBlock = { kind: 'text', offset: 0, dim: d, model: { path: 'unused' }, preprocess: { maxLength: 8, pooling: 'mean', normalize: true } };
  saveBundle(dir, {
    manifest: { toolVersion: 'test', createdAt: '2026-01-01T00:00:00Z', classes, features: [block], tfidf: false },
    heads: [{ onnx }],
    means: { text: new Float64Array(d) },
    tfidfJson: null,
  });
}

function skl2onnxShaped(): Uint8Array {
  const g = new GraphBuilder('sklearn_pipeline');
  g.input('float_input', 'float', [null, d]);
  g.node('Scaler', ['float_input'], ['variable'], { offset: attr.floats(scalerGold.mean), scale: attr.floats(scalerGold.scale.map((s: number) => 1 / s)) }, 'ai.onnx.ml');
  g.node(
    'LinearClassifier',
    ['variable'],
    ['label', 'probability_tensor'],
    {
      classlabels_ints: attr.ints(classes.map((_, i) => i)),
      coefficients: attr.floats(flat(fit.coef)),
      intercepts: attr.floats(fit.intercept),
      multi_class: attr.int(1),
      post_transform: 'SOFTMAX',
    },
    'ai.onnx.ml',
  );
  g.node('Normalizer', ['probability_tensor'], ['probabilities'], { norm: 'L1' }, 'ai.onnx.ml');
  g.output('label', 'int64', [null]);
  g.output('probabilities', 'float', [null, K]);
  return g.toBytes({ producer: 'skl2onnx-shaped test graph' });
}

async function checkAgainstSklearn(onnx: Uint8Array): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-head-'));
  writeBundle(dir, onnx);
  const clf = await Classifier.load(loadBundle(dir), { device: 'cpu', threads: 1 });
  const probs = await clf.predict(Float32Array.from(scalerGold.X), n);
  const want = flat(fit.predict_proba);
  let maxDiff = 0;
  for (let i = 0; i < n * K; i++) maxDiff = Math.max(maxDiff, Math.abs(probs[i] - want[i]));
  assert.ok(maxDiff < 1e-5, `max |Δp| ${maxDiff}`);
  const agree = Array.from({ length: n }, (_, i) => topClasses(probs.subarray(i * K, (i + 1) * K), classes, 1)[0].category === classes[fit.predict[i]]);
  assert.ok(agree.filter(Boolean).length >= n - 1);
  await clf.dispose();
}

test("our exported head reproduces scikit-learn's predict_proba", async () => {
  await checkAgainstSklearn(
    buildClassifierOnnx({ mean: scalerGold.mean, scale: scalerGold.scale, coef: flat(fit.coef), intercept: fit.intercept, nClasses: K, nFeatures: d }),
  );
});

test('a skl2onnx-shaped head (ai.onnx.ml Scaler + LinearClassifier, zipmap=False) loads and agrees', async () => {
  await checkAgainstSklearn(skl2onnxShaped());
});

test('a head whose class count or width disagrees with the bundle is refused before any row', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-head-'));
  writeBundle(dir, buildClassifierOnnx({ mean: new Float64Array(d + 1), scale: new Float64Array(d + 1).fill(1), coef: new Float64Array(K * (d + 1)), intercept: new Float64Array(K), nClasses: K, nFeatures: d + 1 }));
  await assert.rejects(Classifier.load(loadBundle(dir), { device: 'cpu', threads: 1 }), (err: unknown) => err instanceof ConfigError && /rejects the bundle's 20-wide feature layout/.test(err.message));
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-head-'));
  writeBundle(dir2, buildClassifierOnnx({ mean: new Float64Array(d), scale: new Float64Array(d).fill(1), coef: new Float64Array(3 * d), intercept: new Float64Array(3), nClasses: 3, nFeatures: d }));
  await assert.rejects(Classifier.load(loadBundle(dir2), { device: 'cpu', threads: 1 }), /outputs shape \[1, 3\] but the bundle lists 5 classes/);
});

test('topClasses orders by probability, then by class name', () => {
  assert.deepEqual(topClasses([0.2, 0.5, 0.2, 0.1], ['d', 'a', 'b', 'c'], 3), [
    { category: 'a', prob: 0.5 },
    { category: 'b', prob: 0.2 },
    { category: 'd', prob: 0.2 },
  ]);
});
