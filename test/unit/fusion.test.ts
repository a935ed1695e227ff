// Late fusion: the log-linear combination of per-modality heads, the weight chosen on held-out rows, and
// trainModel's per-modality heads predicting rows that lack one modality.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseFusionWeight, fuseHeads, headInput } from '../../src/head/fusion.js';
import { chooseTextAlone, EARLY_BLOCK_SCALES, earlyBlockWeight, reweighedImage, trainModel, type FusionMode, type HeadSettings } from '../../src/head/target.js';
import { weightScaler, type HeadDesign } from '../../src/head/modality-head.js';
import { temperatureScale } from '../../src/head/calibration.js';
import { shippedPredictions } from '../../src/head/linear-head.js';
import { twoModalityRows as synthetic } from '../helpers/two-modality-rows.js';
import { mulberry32 } from '../../src/head/random.js';
import type { FitProgressEvent, PlannedFit } from '../../src/head/selection.js';

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

const settings = (fusion: FusionMode): HeadSettings => ({
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
  const T = model.calibration!.temperature;
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

test('early fusion block weight: the image block is scaled to `scale` times the text part\'s length, folded into the scaler', () => {
  // A 1,280-d standardised block (~35.8 long) beside word + character TF-IDF parts (sqrt(2) long).
  assert.ok(Math.abs(earlyBlockWeight(1, { imageDim: 1280, textDim: 0, tfidfParts: 2 }) - Math.SQRT2 / Math.sqrt(1280)) < 1e-15);
  assert.ok(Math.abs(earlyBlockWeight(2, { imageDim: 16, textDim: 32, tfidfParts: 1 }) - (2 * Math.sqrt(33)) / 4) < 1e-15);
  const scaler = { mean: new Float64Array(5), scale: Float64Array.from([1, 2, 3, 4, 5]) };
  weightScaler(scaler, [{ kind: 'text', dim: 2 }, { kind: 'image', dim: 3, weight: 0.25 }]);
  assert.deepEqual(Array.from(scaler.scale), [1, 2, 12, 16, 20], '(x − mean) / (scale / w) = w × z on the image columns only');
  assert.throws(() => weightScaler(scaler, [{ kind: 'image', dim: 5, weight: 0 }]), /positive/);
});

test('early selection warm starts: the image weights divided by the block weights\' ratio, the same logits at the next weight', () => {
  // A joint layout [text 2 | image 3 | 4 TF-IDF columns], two classes.
  const design = { denseBlocks: [{ kind: 'text' as const, dim: 2 }, { kind: 'image' as const, dim: 3, weight: 0.5 }], sparse: { dim: 4 }, basis: null } as unknown as HeadDesign;
  const solution = { classIndex: Int32Array.from([0, 2]), coef: Float64Array.from({ length: 18 }, (_, i) => i + 1), intercept: Float64Array.from([0.5, -0.5]) };
  const next = reweighedImage(solution, design, 0.5 / 2);
  // Columns 2–4 of each class's row of 9 are the image block's.
  assert.deepEqual(Array.from(next.coef), Array.from({ length: 18 }, (_, i) => (i % 9 >= 2 && i % 9 < 5 ? (i + 1) * 0.25 : i + 1)));
  assert.deepEqual(Array.from(solution.coef), Array.from({ length: 18 }, (_, i) => i + 1), 'the earlier solution is left as it was');
  assert.deepEqual(next.intercept, solution.intercept);
  // Logits of a row: the image part read at weight 2 with the new weights is the old weights' at weight 0.5.
  const z = [0.3, -1, 2, 0.5, -0.25, 0, 1, 0, 0];
  const logit = (coef: Float64Array, k: number, w: number) => z.reduce((s, v, j) => s + coef[k * 9 + j]! * (j >= 2 && j < 5 ? w * v : v), 0);
  for (const k of [0, 1]) assert.ok(Math.abs(logit(next.coef, k, 2) - logit(solution.coef, k, 0.5)) < 1e-12);
});

test('trainModel early: a joint head for rows with both modalities, the late heads for the rest', async () => {
  const train = synthetic(400, 5);
  const test = synthetic(200, 6);
  const model = await trainModel(train.rows, train.labels, settings('early'));
  assert.deepEqual(model.heads.map((h) => [h.name, h.route]), [['text', 'incomplete'], ['image', 'incomplete'], ['joint', 'complete']]);
  const joint = model.heads[2]!;
  assert.deepEqual(joint.kinds, ['image', 'tfidf']);
  const early = model.selection!.early!;
  assert.equal(early.chosen, true);
  const grid = EARLY_BLOCK_SCALES.map((c) => earlyBlockWeight(c, { imageDim: 8, textDim: 0, tfidfParts: 1 }));
  assert.ok(grid.includes(joint.blockWeight!) && early.blockWeight === joint.blockWeight);
  // The weights in ascending order at the text head's C (stopping as a C path does), then the best weight at the
  // grid's other values within a factor of 10 of it.
  const textC = model.heads[0]!.C;
  const others = [0.1, 1, 10].filter((C) => C !== textC && C >= textC / 10 && C <= textC * 10);
  const tried = early.weights.length;
  assert.ok(tried >= 1 && tried <= grid.length);
  assert.deepEqual(early.trials.map((t) => t.C), [...grid.slice(0, tried).map(() => textC), ...others]);
  assert.deepEqual(early.trials.map((t) => t.blockWeight).slice(0, tried), grid.slice(0, tried));
  const atTextC = early.trials.slice(0, tried);
  assert.equal(early.blockWeight, atTextC.reduce((a, b) => (b.logLoss < a.logLoss ? b : a)).blockWeight, 'the weight with the least log-loss at the text C');
  assert.ok(early.trials.slice(tried).every((t) => t.blockWeight === early.blockWeight));
  assert.deepEqual(early.weights.map((w) => w.blockWeight), grid.slice(0, tried));
  // Every weight tried: the same choice, and the same figures for the weights both tried.
  const whole = (await trainModel(train.rows, train.labels, { ...settings('early'), stopPaths: false })).selection!.early!;
  assert.equal(whole.weights.length, grid.length);
  assert.deepEqual([whole.blockWeight, whole.C], [early.blockWeight, early.C]);
  assert.deepEqual(whole.trials.slice(0, tried), atTextC);
  // The chosen (weight, C) has the least held-out log-loss of any tried.
  assert.equal(Math.min(...early.trials.map((t) => t.logLoss)), early.trials.find((t) => t.blockWeight === early.blockWeight && t.C === early.C)!.logLoss);
  // Both kinds were judged on the same held-out rows: those that have text and an image.
  assert.equal(early.rows, model.selection!.rows);
  const p = shippedPredictions(model, test.rows, model.classes);
  const K = model.classes.length;
  const T = model.calibration!.temperature;
  test.rows.forEach((r, i) => {
    const own = r.text === '' ? p.heads.image[i]! : p.heads.joint[i]!;
    close(p.fused.subarray(i * K, (i + 1) * K), temperatureScale(own, T, new Float64Array(K)), 1e-6);
  });
});

test('trainModel auto: late or early by the held-out log-loss of the rows with both, the same for a seed', async () => {
  const train = synthetic(300, 7);
  const a = await trainModel(train.rows, train.labels, settings('auto'));
  const b = await trainModel(train.rows, train.labels, settings('auto'));
  const e = a.selection!.early!;
  const better = e.early.logLoss < e.late.logLoss || (e.early.logLoss === e.late.logLoss && e.early.macroF1 > e.late.macroF1);
  assert.equal(e.chosen, better);
  // Neither modality names the class alone here, so the text head alone cannot match the fusion.
  const t = a.selection!.textAlone!;
  assert.equal(t.chosen, false);
  assert.ok(t.text.macroF1 < t.fused.macroF1 - 0.2, `text alone ${t.text.macroF1}, fused ${t.fused.macroF1}`);
  assert.equal(t.rows, a.calibration!.heldOut.rows.length, 'every held-out row');
  assert.deepEqual(a.heads.map((h) => h.name), better ? ['text', 'image', 'joint'] : ['text', 'image']);
  assert.deepEqual(b.selection!.early, e);
  assert.deepEqual(b.heads.map((h) => [h.name, h.C, h.weight, h.blockWeight]), a.heads.map((h) => [h.name, h.C, h.weight, h.blockWeight]));
  // Late fusion asks for no early candidate at all.
  assert.equal((await trainModel(train.rows, train.labels, settings('late'))).selection!.early, undefined);
});

/** The text names the class and the image is noise; a tenth of the labels are another class (log-loss is not ~0). */
function textNamesClass(): { rows: ReturnType<typeof synthetic>['rows']; labels: string[] } {
  const rnd = mulberry32(21);
  const words = ['cotton shirt', 'leather shoe', 'steel watch', 'wool scarf'];
  const rows = synthetic(400, 22).rows.map((r, i) => {
    const text = `${words[i % 4]} item ${Math.floor(rnd() * 50)}`;
    return { ...r, text, row: { ...r.row, title: text }, vectors: { image: Float32Array.from({ length: 8 }, () => rnd() - 0.5) } };
  });
  return { rows, labels: rows.map((_, i) => `class-${rnd() < 0.1 ? Math.floor(rnd() * 4) : i % 4}`) };
}

test('chooseTextAlone: the text head alone against the fusion on every held-out row by macro-F1, a tie to the text head', () => {
  const classes = ['a', 'b', 'c'];
  const y = [0, 0, 1, 1, 2];
  const p = (...v: number[]) => Float64Array.from(v);
  // Text right on every row; the image head sure of 'a' on the rare 'c' row, which outweighs text there when fused.
  const text = new Map([[0, p(0.8, 0.1, 0.1)], [1, p(0.7, 0.2, 0.1)], [2, p(0.1, 0.8, 0.1)], [3, p(0.2, 0.7, 0.1)], [4, p(0.3, 0.1, 0.6)]]);
  const image = new Map([[0, p(0.6, 0.2, 0.2)], [1, p(0.6, 0.2, 0.2)], [2, p(0.2, 0.6, 0.2)], [3, p(0.2, 0.6, 0.2)], [4, p(0.98, 0.01, 0.01)]]);
  const t = chooseTextAlone([text, image], [0.5, 0.5], classes, null, y);
  assert.equal(t.rows, 5);
  assert.equal(t.text.macroF1, 1);
  assert.ok(t.fused.macroF1 < 1 && t.chosen);
  assert.ok(Math.abs(t.text.logLoss - -[0.8, 0.7, 0.8, 0.7, 0.6].reduce((s, q) => s + Math.log(q), 0) / 5) < 1e-6, "fused in float32");
  // A tie goes to the text head; a row only the image head predicted is the image head's in both.
  const imageOnly = new Map([...image, [5, p(0.1, 0.1, 0.8)]]);
  const tie = chooseTextAlone([text, imageOnly], [1, 0], classes, null, [...y, 2]);
  assert.deepEqual([tie.rows, tie.chosen, tie.text.macroF1, tie.fused.macroF1], [6, true, 1, 1]);
  // The fusion wins where the text head's answers are worse: early fusion's joint head scores the rows it predicted.
  const complete = new Map([...text].map(([r, q]) => [r, r === 4 ? p(0.1, 0.1, 0.8) : q]));
  const wrongText = new Map([...text, [4, p(0.6, 0.1, 0.3)]]);
  const lost = chooseTextAlone([wrongText, image], [0.5, 0.5], classes, complete, y);
  assert.ok(!lost.chosen && lost.fused.macroF1 === 1 && lost.text.macroF1 < 1);
});

test('trainModel auto: the text head alone where its held-out macro-F1 matches the fusion chosen; the joint refit skipped', async () => {
  const { rows, labels } = textNamesClass();
  const events: FitProgressEvent[] = [];
  const planned: PlannedFit[] = [];
  const model = await trainModel(rows, labels, { ...settings('auto'), progress: { plan: (f) => planned.push(...f), report: (e) => events.push(e) } });
  const t = model.selection!.textAlone!;
  assert.ok(t.chosen && t.text.macroF1 >= t.fused.macroF1, `text ${t.text.macroF1}, fused ${t.fused.macroF1}`);
  assert.ok(model.selection!.early!.weights.length > 0, 'early fusion was still tried');
  assert.deepEqual(model.heads.map((h) => [h.name, h.weight, h.route]), [['text', 1, undefined], ['image', 0, undefined]]);
  // The selection keeps late fusion's own choice of weights, which the text head alone then replaced.
  const lateWeights = model.selection!.heads.map((h) => h.weight);
  assert.ok(Math.abs(lateWeights[0]! + lateWeights[1]! - 1) < 1e-9);
  // Calibrated on the text head's own held-out predictions.
  const late = await trainModel(rows, labels, settings('late'));
  const textHead = model.heads[0]!;
  assert.equal(textHead.C, late.heads[0]!.C);
  const K = model.classes.length;
  const test = textNamesClass().rows.slice(0, 50);
  const p = shippedPredictions(model, test, model.classes);
  const T = model.calibration!.temperature;
  test.forEach((_, i) => close(p.fused.subarray(i * K, (i + 1) * K), temperatureScale(p.heads.text[i]!, T, new Float64Array(K)), 1e-6));
  // Every planned fit is reported once: the joint head's refit on every row as skipped.
  assert.equal(events.filter((x) => x.event.type === 'fit' || x.event.type === 'skipped').length, planned.length);
  assert.ok(events.some((x) => x.head === 'joint' && x.final && x.event.type === 'skipped'));
  // Asked for by name, early fusion is kept: no text-alone choice.
  const early = await trainModel(rows, labels, settings('early'));
  assert.equal(early.selection!.textAlone, undefined);
  assert.deepEqual(early.heads.map((h) => h.name), ['text', 'image', 'joint']);
});

test('early fusion: the image block weights stop once held-out log-loss rises, with the choice of every weight', async () => {
  // The text names the class; the image is noise, so each larger image weight only adds it.
  const { rows, labels } = textNamesClass();
  const events: FitProgressEvent[] = [];
  const planned: PlannedFit[] = [];
  const stopped = await trainModel(rows, labels, { ...settings('early'), progress: { plan: (f) => planned.push(...f), report: (e) => events.push(e) } });
  const whole = await trainModel(rows, labels, { ...settings('early'), stopPaths: false });
  const [e, w] = [stopped.selection!.early!, whole.selection!.early!];
  assert.equal(w.weights.length, EARLY_BLOCK_SCALES.length);
  assert.ok(e.weights.length < w.weights.length, `stopped after ${e.weights.length} of ${w.weights.length} weights`);
  const atTextC = w.trials.slice(0, w.weights.length).map((t) => t.logLoss);
  const least = atTextC.indexOf(Math.min(...atTextC.slice(0, e.weights.length)));
  assert.ok(atTextC.slice(e.weights.length).every((l) => l > atTextC[least]!), 'no weight left out had a lower log-loss');
  assert.deepEqual([e.blockWeight, e.C, e.chosen], [w.blockWeight, w.C, w.chosen]);
  assert.deepEqual(stopped.heads.map((h) => Array.from(h.head.model.coef)), whole.heads.map((h) => Array.from(h.head.model.coef)));
  // The weights not fitted leave the plan as skipped fits: every planned fit is reported once.
  assert.equal(events.filter((x) => x.event.type === 'fit' || x.event.type === 'skipped').length, planned.length);
});
