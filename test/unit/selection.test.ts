// Selection over the C grid and the fusion weight: the same choices and weights whether the fits run one after
// another or side by side in workers, in row space or over the TF-IDF columns; progress for every planned fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plannedFits, trainModel, type HeadSettings, type TrainedModel } from '../../src/head/target.js';
import { FitPool } from '../../src/head/fit-pool.js';
import { chooseC, choosePriorShift, classPrior, PRIOR_SHIFT_ALPHAS, shiftedArgmax, type FitProgressEvent, type PlannedFit } from '../../src/head/selection.js';
import { twoModalityRows } from '../helpers/two-modality-rows.js';
import { AUTO_FOLDS_MAX_ROWS, selectionFoldsFor } from '../../src/commands/train.js';

const settings = (extra: Partial<HeadSettings> = {}): HeadSettings => ({
  features: ['image', 'tfidf'],
  dims: { image: 8 },
  tfidf: {},
  charTfidf: { analyzer: 'char_wb', ngramRange: [2, 4], stopWords: null },
  lr: { C: 1, maxIter: 500, tol: 1e-6 },
  fusion: 'late',
  fusionShare: 0.25,
  seed: 3,
  cGrid: [0.1, 1, 10, 100],
  selectionFolds: 4,
  ...extra,
});

function choices(m: TrainedModel) {
  return { C: m.heads.map((h) => [h.name, h.C]), weights: m.heads.map((h) => h.weight), trials: m.selection!.cTrials, fused: m.selection!.fused };
}

test('parallel selection (two workers) gives the same choices, held-out figures and weights as sequential', async () => {
  const { rows, labels } = twoModalityRows(240, 11);
  const sequential = await trainModel(rows, labels, settings());
  const pool = new FitPool(2);
  try {
    const parallel = await trainModel(rows, labels, settings({ pool }));
    assert.deepEqual(choices(parallel), choices(sequential));
    parallel.heads.forEach((h, k) => {
      assert.deepEqual(Array.from(h.head.model.coef), Array.from(sequential.heads[k]!.head.model.coef), `${h.name} head weights`);
      assert.deepEqual(Array.from(h.head.model.intercept), Array.from(sequential.heads[k]!.head.model.intercept));
    });
  } finally {
    await pool.close();
  }
});

test('row space and the TF-IDF columns choose the same C and weights and land on the same heads', async () => {
  const { rows, labels } = twoModalityRows(240, 12);
  const columns = await trainModel(rows, labels, settings({ solver: 'columns' }));
  const rowSpace = await trainModel(rows, labels, settings({ solver: 'rowspace' }));
  assert.deepEqual(rowSpace.heads.map((h) => h.rowSpace), [true, false]);
  assert.deepEqual(rowSpace.heads.map((h) => [h.name, h.C, h.weight]), columns.heads.map((h) => [h.name, h.C, h.weight]));
  // Selection fits stop at tol 1e-4: the two forms stop a few iterations apart, their held-out losses agree to ~1e-5.
  rowSpace.selection!.cTrials.forEach((t, i) => assert.ok(Math.abs(t.logLoss - columns.selection!.cTrials[i]!.logLoss) < 1e-4 * t.logLoss, `${t.head} C ${t.C}`));
  const a = rowSpace.heads[0]!.head.model.coef;
  const b = columns.heads[0]!.head.model.coef;
  let max = 0;
  for (let t = 0; t < a.length; t++) max = Math.max(max, Math.abs(a[t]! - b[t]!));
  assert.ok(max < 1e-4, `text head weights differ by ${max}`);
});

test('progress: the plan counts every fit, each is reported as it finishes, iterations in between', async () => {
  const { rows, labels } = twoModalityRows(160, 13);
  const planned: PlannedFit[] = [];
  const events: FitProgressEvent[] = [];
  const pool = new FitPool(2);
  try {
    await trainModel(rows, labels, settings({ pool, procedure: 'final', progress: { plan: (fits) => planned.push(...fits), report: (e) => events.push(e) } }));
  } finally {
    await pool.close();
  }
  const fits = events.filter((e) => e.event.type === 'fit');
  assert.deepEqual(planned, plannedFits(settings()));
  assert.equal(planned.length, 2 * (4 * 4 + 1), 'two heads: 4 folds × 4 Cs, then the final fit');
  assert.equal(fits.length, planned.length);
  assert.equal(fits.filter((e) => e.final).length, 2);
  // Every fit that ran was planned, head by head and C by C (final fits: C chosen later).
  const key = (head: string, C: number | null, final: boolean) => `${head} ${final ? 'final' : C}`;
  assert.deepEqual(fits.map((e) => key(e.head, e.C, e.final)).sort(), planned.map((p) => key(p.head, p.C, p.final)).sort());
  assert.ok(fits.every((e) => e.event.type === 'fit' && e.event.stats.seconds >= 0), 'each fit says how long it took');
  assert.ok(events.some((e) => e.event.type === 'iteration'), 'iterations of fits under way');
  assert.ok(events.every((e) => e.procedure === 'final' && (e.head === 'text' || e.head === 'image')));
});

test('a head whose fits cannot fit in memory fails before fitting, with what to change', async () => {
  const { rows, labels } = twoModalityRows(120, 14);
  await assert.rejects(
    trainModel(rows, labels, settings({ memoryBytes: 1e5, solver: 'columns' })),
    (err: Error & { code?: string }) => err.code === 'head_too_large' && /the text head would fit 4 classes × [\d,]+ columns .* more than the 0\.0 GB available: shrink the TF-IDF vocabulary \(--max-features/.test(err.message),
  );
  // Enough for one fit at a time, not for two: the message says how many jobs fit.
  const one = 30 * 8 * 4 * (8 + 1);
  await assert.rejects(
    trainModel(rows, labels, settings({ features: ['image'], memoryBytes: 1.5 * one, jobs: 2 })),
    (err: Error & { code?: string }) => err.code === 'head_too_large' && /2 at once need more than .*; use --jobs 1$/.test(err.message),
  );
});

test('one held-out share: each path stops once its C cannot win, with the same choices and weights as the whole grid', async () => {
  const { rows, labels } = twoModalityRows(300, 16);
  const grid = { selectionFolds: 0, cGrid: [0.0001, 0.001, 0.01, 0.1, 1, 10, 100, 1000] };
  const events: FitProgressEvent[] = [];
  const stopped = await trainModel(rows, labels, settings({ ...grid, progress: { plan() {}, report: (e) => events.push(e) } }));
  const whole = await trainModel(rows, labels, settings({ ...grid, stopPaths: false }));
  assert.deepEqual(stopped.heads.map((h) => [h.name, h.C, h.weight]), whole.heads.map((h) => [h.name, h.C, h.weight]));
  stopped.heads.forEach((h, k) => assert.deepEqual(Array.from(h.head.model.coef), Array.from(whole.heads[k]!.head.model.coef), `${h.name} head weights`));
  const skipped = events.filter((e) => e.event.type === 'skipped');
  assert.ok(skipped.length > 0, 'some C values were not fitted');
  // Every C fitted has the whole grid's held-out loss; the skipped ones are NaN and lie past two rises, or past a
  // rise beyond noise of the least (a value chooseC would not count as near the best).
  let pastOneRise = 0;
  for (const t of stopped.selection!.cTrials) {
    const full = whole.selection!.cTrials.find((w) => w.head === t.head && w.C === t.C)!;
    if (skipped.some((e) => e.head === t.head && e.C === t.C)) {
      assert.ok(Number.isNaN(t.logLoss) && t.rows === 0);
      const before = whole.selection!.cTrials.filter((w) => w.head === t.head && w.C < t.C);
      const losses = before.map((w) => w.logLoss);
      const least = losses.indexOf(Math.min(...losses));
      const beyond = before.slice(least + 1).some((w) => !w.nearBest);
      assert.ok(before.length - 1 - least >= 2 || beyond, `${t.head} C ${t.C}: stopped after two rises or one beyond noise`);
      if (before.length - 1 - least < 2) pastOneRise++;
    } else assert.equal(t.logLoss, full.logLoss);
  }
  assert.ok(pastOneRise > 0, 'some path stopped at its first rise, beyond noise of the least');
});

test('chooseC: the least log-loss, unless a value within one paired standard error of it answers more classes right', () => {
  // 20 + 20 rows of two common classes, 4 of a rare one. C0 has the least log-loss but never answers the rare class;
  // C1 is a hair worse on log-loss (well within noise) and answers it; C2 answers it too but is clearly worse.
  const y = Int32Array.from([...Array(20).fill(0), ...Array(20).fill(1), ...Array(4).fill(2)]);
  const probs = (common: (i: number) => number, rare: number[]) =>
    new Map(Array.from(y, (k, i) => [i, Float64Array.from(k === 2 ? rare : [0, 1, 2].map((j) => (j === k ? common(i) : (1 - common(i)) / 2)))] as [number, Float64Array]));
  const c0 = probs(() => 0.8, [0.45, 0.15, 0.4]);
  const c1 = probs((i) => (i % 2 ? 0.9 : 0.7), [0.4, 0.19, 0.41]);
  const c2 = probs(() => 0.5, [0.3, 0.2, 0.5]);
  const picked = chooseC([c0, c1, c2, null], y, 3);
  const [f0, f1, f2, f3] = picked.figures;
  assert.ok(f0!.logLoss < f1!.logLoss && f1!.logLoss < f2!.logLoss, 'C0 has the least log-loss');
  assert.ok(f1!.macroF1 === 1 && f2!.macroF1 === 1 && f0!.macroF1 < 0.7, 'C0 never answers the rare class');
  assert.deepEqual(picked.figures.map((f) => f.nearBest), [true, true, false, false]);
  assert.equal(picked.best, 1, 'within noise, macro-F1 decides');
  assert.ok(Number.isNaN(f3!.logLoss) && f3!.rows === 0, 'a value not fitted has no figures');
  // Without the close runner-up, the clearly worse value does not win on macro-F1 alone.
  assert.equal(chooseC([c0, null, c2], y, 3).best, 0);
  // The order of the grid does not matter; with equal macro-F1 within noise, the least log-loss stays.
  assert.equal(chooseC([c1, c0], y, 3).best, 0);
  const c0b = probs((i) => (i % 2 ? 0.84 : 0.76), [0.45, 0.15, 0.4]);
  assert.deepEqual(chooseC([c0b, c0], y, 3).figures.map((f) => f.nearBest), [true, true]);
  assert.equal(chooseC([c0b, c0], y, 3).best, 1);
});

test('choosePriorShift: the smallest prior exponent within one bootstrap standard error of the best held-out macro-F1', () => {
  // 30 + 30 rows of two common classes, 6 of a rare one that the model ranks second on its own rows: no shift
  // never answers it; dividing by the prior does, without costing the common rows (each is sure of its class).
  const y = Int32Array.from([...Array(30).fill(0), ...Array(30).fill(1), ...Array(6).fill(2)]);
  const raw = new Float64Array(y.length * 3);
  y.forEach((k, i) => raw.set(k === 2 ? [0.5, 0.1, 0.4] : k === 0 ? [0.9, 0.05, 0.05] : [0.05, 0.9, 0.05], i * 3));
  const prior = classPrior(y, 3);
  assert.deepEqual(Array.from(prior, (p) => Math.round(p * 66)), [30, 30, 6]);
  const shift = choosePriorShift(raw, y, 3, prior, 1);
  assert.deepEqual(shift.trials.map((t) => t.alpha), [...PRIOR_SHIFT_ALPHAS]);
  assert.ok(shift.trials[0]!.macroF1 < 0.7, 'unshifted, the rare class is never answered');
  // log(30/6) = 1.61: the rare class overtakes at 0.4 · 5^alpha > 0.5, from alpha 0.25 on (5^0.25 = 1.50).
  assert.equal(shift.alpha, 0.25, 'the smallest alpha that reaches the best macro-F1');
  assert.equal(shift.trials[1]!.macroF1, 1);
  assert.ok(Math.abs(shift.bias.reduce((s, v) => s + v, 0)) < 1e-12, 'centred');
  assert.ok(Math.abs(shift.bias[2]! - shift.bias[0]! - 0.25 * Math.log(5)) < 1e-12, 'minus alpha log prior, up to a constant');
  // The answer is argmax of log p + bias: the rare row's third class at alpha 0.25, its first unshifted.
  assert.equal(shiftedArgmax(raw.subarray(60 * 3, 61 * 3), shift.bias), 2);
  assert.equal(shiftedArgmax(raw.subarray(60 * 3, 61 * 3), new Float64Array(3)), 0);
  assert.equal(shiftedArgmax(raw.subarray(0, 3), shift.bias), 0, 'a sure common row keeps its class');
  // A balanced prior shifts nothing: every alpha scores alike and the first (0) stays.
  const balanced = choosePriorShift(raw, y, 3, Float64Array.from([1 / 3, 1 / 3, 1 / 3]), 1);
  assert.equal(balanced.alpha, 0);
  assert.ok(balanced.bias.every((b) => b === 0 || Object.is(b, -0)));
  // A shift that would cost more common rows than it wins rare ones is not taken.
  const costly = new Float64Array(raw);
  y.forEach((k, i) => k === 0 && costly.set([0.55, 0.05, 0.4], i * 3));
  assert.equal(choosePriorShift(costly, y, 3, prior, 1).alpha, 0);
  // A gain these rows cannot vouch for is not taken: shifting wins one rare row and loses one common row, the best
  // held-out macro-F1 (alpha 0.25), but not by one bootstrap standard error of the shortfall, so alpha stays 0.
  const yn = Int32Array.from([...Array(40).fill(0), ...Array(40).fill(1), ...Array(3).fill(2)]);
  const rn = new Float64Array(yn.length * 3);
  yn.forEach((k, i) => rn.set(k === 2 ? (i === 80 ? [0.5, 0.1, 0.4] : [0.85, 0.1, 0.05]) : i === 0 ? [0.5, 0.1, 0.4] : k === 0 ? [0.9, 0.05, 0.05] : [0.05, 0.9, 0.05], i * 3));
  const noisy = choosePriorShift(rn, yn, 3, classPrior(yn, 3), 1);
  const best = noisy.trials.reduce((b, t) => (t.macroF1 > b.macroF1 ? t : b));
  assert.equal(best.alpha, 0.25, JSON.stringify(noisy.trials));
  assert.ok(best.macroF1 > noisy.trials[0]!.macroF1 && best.macroF1 - noisy.trials[0]!.macroF1 <= noisy.trials[0]!.se, JSON.stringify(noisy.trials));
  assert.equal(noisy.alpha, 0);
  // Where the gain is clear (the first case: six rare rows won, none lost), the best alpha is beyond one standard error.
  assert.ok(shift.trials[1]!.macroF1 - shift.trials[0]!.macroF1 > shift.trials[0]!.se, JSON.stringify(shift.trials));
  // The same seed draws the same rows: the same standard errors.
  assert.deepEqual(choosePriorShift(rn, yn, 3, classPrior(yn, 3), 1).trials, noisy.trials);
});

test('a prior shift moves only the decision: heads, probabilities and temperature stay the model\'s', async () => {
  // Class 3 rare (1 row in 6 of the balanced catalog's): the held-out rows of the rare class are the ones in doubt.
  const all = twoModalityRows(480, 21);
  const keep = all.labels.map((l, i) => l !== 'class-3' || i % 24 === 3);
  const rows = all.rows.filter((_, i) => keep[i]);
  const labels = all.labels.filter((_, i) => keep[i]);
  const plain = await trainModel(rows, labels, settings({ priorShift: false }));
  const shifted = await trainModel(rows, labels, settings());
  assert.equal(plain.selection!.prior, undefined);
  assert.equal(plain.calibration!.prior, undefined);
  const prior = shifted.calibration!.prior!;
  assert.deepEqual(shifted.selection!.prior, { alpha: prior.alpha, trials: prior.trials });
  assert.deepEqual(prior.trials.map((t) => t.alpha), [...PRIOR_SHIFT_ALPHAS]);
  assert.ok(prior.alpha > 0, `a shift is chosen (trials ${JSON.stringify(prior.trials)})`);
  assert.ok(prior.trials.find((t) => t.alpha === prior.alpha)!.macroF1 > prior.trials[0]!.macroF1, 'it wins held-out macro-F1');
  shifted.heads.forEach((h, k) => {
    assert.deepEqual(Array.from(h.head.model.coef), Array.from(plain.heads[k]!.head.model.coef), `${h.name}: the same weights`);
    assert.deepEqual(Array.from(h.head.model.intercept), Array.from(plain.heads[k]!.head.model.intercept), `${h.name}: the same intercepts`);
  });
  assert.equal(shifted.calibration!.fit.temperature, plain.calibration!.fit.temperature);
  assert.deepEqual(Array.from(shifted.calibration!.heldOut.raw), Array.from(plain.calibration!.heldOut.raw));
  // The choice is choosePriorShift on the raw held-out predictions with the training rows' prior.
  const K = shifted.classes.length;
  const y = Int32Array.from(labels, (l) => shifted.classes.indexOf(l));
  const again = choosePriorShift(shifted.calibration!.heldOut.raw, Int32Array.from(shifted.calibration!.heldOut.rows, (r) => y[r]!), K, classPrior(y, K), 3);
  assert.equal(again.alpha, prior.alpha);
  // At a temperature T, bias ÷ T on the scaled probabilities answers as the bias on the raw ones.
  const { raw, probs } = shifted.calibration!.heldOut;
  let moved = 0;
  for (let i = 0; i < raw.length / K; i++) {
    const at = shiftedArgmax(raw.subarray(i * K, (i + 1) * K), prior.bias);
    assert.equal(shiftedArgmax(probs.subarray(i * K, (i + 1) * K), prior.bias, 1 / shifted.calibration!.temperature), at);
    if (at !== shiftedArgmax(raw.subarray(i * K, (i + 1) * K), new Float64Array(K))) moved++;
  }
  assert.ok(moved > 0, 'some held-out rows are answered otherwise');
});

test('folds at every size: --fusion-folds K holds every row out once above the auto limit too; auto takes 5 folds up to it, the share above', async () => {
  assert.equal(selectionFoldsFor('auto', AUTO_FOLDS_MAX_ROWS), 5);
  assert.equal(selectionFoldsFor('auto', AUTO_FOLDS_MAX_ROWS + 1), 0);
  assert.equal(selectionFoldsFor(5, 1_000_000), 5);
  assert.equal(selectionFoldsFor(0, 100), 0);
  const n = AUTO_FOLDS_MAX_ROWS + 200;
  const { rows, labels } = twoModalityRows(n, 17);
  const quick = { cGrid: [0.1, 1], lr: { C: 1, maxIter: 200, tol: 1e-4 } };
  // The fusion weight is chosen on the held-out rows with both modalities (the image head's trials count them all).
  const both = rows.filter((r) => r.text !== '').length;
  const heldOut = (m: TrainedModel, head: string) => new Set(m.selection!.cTrials.filter((t) => t.head === head).map((t) => t.rows));
  const folds = await trainModel(rows, labels, settings({ ...quick, selectionFolds: selectionFoldsFor(5, n) }));
  assert.equal(folds.selection!.folds, 5);
  assert.deepEqual(heldOut(folds, 'image'), new Set([n]), 'five folds: every row held out once');
  assert.equal(folds.selection!.rows, both);
  const share = await trainModel(rows, labels, settings({ ...quick, selectionFolds: selectionFoldsFor('auto', n) }));
  assert.equal(share.selection!.folds, 0);
  const [shareRows] = heldOut(share, 'image');
  assert.ok(Math.abs(shareRows! - 0.25 * n) <= 2, `the 25% share: ${shareRows} rows`);
});
