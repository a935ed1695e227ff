// Late fusion: the log-linear combination of per-modality heads, the weight chosen on held-out rows, and
// trainModel's per-modality heads predicting rows that lack one modality.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseFusionWeight, fuseHeads, headInput } from '../../src/head/fusion.js';
import { trainModel, type HeadSettings } from '../../src/head/target.js';
import { temperatureScale } from '../../src/head/calibration.js';
import { shippedPredictions } from '../../src/head/linear-head.js';
import { twoModalityRows as synthetic } from '../helpers/two-modality-rows.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test('fuseHeads: one present head gives its own probabilities; none gives null', () => {
  const classes = ['a', 'b', 'c'];
  const p = [0.2, 0.5, 0.3];
  close(fuseHeads([{ classes, weight: 0.3, probs: p }, { classes, weight: 0.7, probs: null }], classes)!, p);
  assert.equal(fuseHeads([{ classes, weight: 1, probs: null }], classes), null);
});

test('fuseHeads: softmax of the weighted log-probabilities, weights renormalised', () => {
  const classes = ['a', 'b'];
  const a = [0.9, 0.1];
  const b = [0.4, 0.6];
  const got = fuseHeads([{ classes, weight: 3, probs: a }, { classes, weight: 1, probs: b }], classes)!;
  const s = [0.75 * Math.log(0.9) + 0.25 * Math.log(0.4), 0.75 * Math.log(0.1) + 0.25 * Math.log(0.6)];
  const z = Math.exp(s[0]) + Math.exp(s[1]);
  close(got, [Math.exp(s[0]) / z, Math.exp(s[1]) / z]);
  // All-zero weights: equal weights, not a division by zero.
  const eq = fuseHeads([{ classes, weight: 0, probs: a }, { classes, weight: 0, probs: b }], classes)!;
  close(eq, fuseHeads([{ classes, weight: 1, probs: a }, { classes, weight: 1, probs: b }], classes)!);
});

test('fuseHeads: a head over fewer classes maps by name; its missing classes get ~0', () => {
  const classes = ['a', 'b', 'c'];
  const got = fuseHeads([{ classes: ['c', 'a'], weight: 1, probs: [0.25, 0.75] }], classes)!;
  close(got, [0.75, 0, 0.25], 1e-8);
});

test('headInput gathers a head’s blocks in order', () => {
  const x = Float32Array.from([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(headInput(x, [[0, 2], [4, 2]], 4)), [0, 1, 4, 5]);
  assert.equal(headInput(x, [[0, 6]], 6), x);
});

test('chooseFusionWeight: grid includes each head alone, so it is never worse on these rows than the better one', () => {
  const classes = ['a', 'b'];
  const y = [0, 1, 0, 1, 0, 1];
  // Head A is right every time, head B is confidently wrong: the weight goes all to A.
  const A = Float64Array.from(y.flatMap((k) => (k === 0 ? [0.8, 0.2] : [0.2, 0.8])));
  const B = Float64Array.from(y.flatMap((k) => (k === 0 ? [0.1, 0.9] : [0.9, 0.1])));
  const { best, candidates } = chooseFusionWeight({ classes, probs: A }, { classes, probs: B }, y, classes);
  assert.equal(candidates.length, 21);
  assert.equal(best.macroF1, 1);
  assert.ok(best.w >= 0.8, `w = ${best.w}`);
  const onlyA = candidates.find((c) => c.w === 1)!;
  assert.ok(best.macroF1 >= onlyA.macroF1 && best.macroF1 >= candidates.find((c) => c.w === 0)!.macroF1);
});

const settings = (fusion: 'late' | 'joint'): HeadSettings => ({
  features: ['image', 'tfidf'],
  dims: { image: 8 },
  tfidf: {},
  charTfidf: null,
  lr: { C: 1, maxIter: 500, tol: 1e-6 },
  fusion,
  fusionShare: 0.25,
  seed: 1,
  cGrid: [0.1, 1, 10],
  selectionFolds: 0,
});

test('trainModel late: per-modality heads, weights from held-out rows, rows without text predicted by the image head', async () => {
  const train = synthetic(400, 1);
  const test = synthetic(200, 2);
  const model = await trainModel(train.rows, train.labels, settings('late'));
  assert.deepEqual(model.heads.map((h) => [h.name, h.kinds]), [['text', ['tfidf']], ['image', ['image']]]);
  assert.ok(model.selection && model.selection.fused, 'selection recorded');
  assert.ok(Math.abs(model.heads[0].weight + model.heads[1].weight - 1) < 1e-9);
  assert.equal(model.selection.cTrials.length, 6, 'three Cs per head');
  assert.ok(model.selection.fused.macroF1 >= Math.max(...model.selection.heads.map((h) => h.macroF1)));
  const p = shippedPredictions(model, test.rows, model.classes);
  const K = model.classes.length;
  const argmax = (i: number) => {
    let a = 0;
    for (let k = 1; k < K; k++) if (p.fused[i * K + k] > p.fused[i * K + a]) a = k;
    return model.classes[a];
  };
  const noText = test.rows.flatMap((r, i) => (r.text === '' ? [i] : []));
  const withText = test.rows.flatMap((r, i) => (r.text !== '' ? [i] : []));
  for (const i of noText) assert.equal(p.heads.text[i], null, 'no text: the text head does not run');
  const acc = (idx: number[]) => idx.filter((i) => argmax(i) === test.labels[i]).length / idx.length;
  // Both modalities: both halves of the class are known. Text missing: only the image half, so about 1/2.
  assert.ok(acc(withText) > 0.95, `with text ${acc(withText)}`);
  assert.ok(acc(noText) > 0.4, `without text ${acc(noText)}`);
  // Each text-less row's fused prediction is the image head's own, at the model's calibration temperature.
  const T = model.calibration!.fit.temperature;
  for (const i of noText) close(p.fused.subarray(i * K, (i + 1) * K), temperatureScale(p.heads.image[i]!, T, new Float64Array(K)), 1e-6);
});

test('trainModel with k-fold selection: every row held out once', async () => {
  const train = synthetic(200, 4);
  const model = await trainModel(train.rows, train.labels, { ...settings('late'), selectionFolds: 4 });
  assert.equal(model.selection!.folds, 4);
  // Rows with both modalities (text present) among all 200, each held out once.
  assert.equal(model.selection!.rows, train.rows.filter((r) => r.text !== '').length);
  assert.ok(model.selection!.cTrials.every((t) => t.rows === (t.head === 'image' ? 200 : model.selection!.rows)));
});

test('trainModel joint: one head over every block; deterministic for a seed', async () => {
  const train = synthetic(200, 3);
  const a = await trainModel(train.rows, train.labels, settings('joint'));
  const b = await trainModel(train.rows, train.labels, settings('joint'));
  assert.deepEqual(a.heads.map((h) => h.name), ['joint']);
  assert.equal(a.heads[0].C, b.heads[0].C);
  close(a.heads[0].head.model.coef, b.heads[0].head.model.coef, 0);
});
