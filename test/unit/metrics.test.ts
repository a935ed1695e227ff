// computeMetrics against scikit-learn's figures on the golden problems (scripts/reference/metrics_reference.py),
// and the cases sklearn has no opinion on: failed predictions, unseen labels, tiny label sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { computeMetrics, mostConfusedPairs, numpySum, type EvalMetrics } from '../../src/report/metrics.js';

interface GoldenCase {
  name: string;
  n: number;
  model_classes: string[];
  y_true: string[];
  y_pred: string[];
  ranked: string[][];
  labels: string[];
  accuracy: number;
  f1_macro: number;
  f1_weighted: number;
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
  confusion_matrix: number[][];
  top3_accuracy: number;
}

const golden = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-metrics.json'), 'utf8')) as { cases: GoldenCase[] };

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-12, `${what}: ${actual} vs sklearn ${expected}`);
}

for (const g of golden.cases) {
  test(`golden ${g.name}: matches scikit-learn`, () => {
    const m = computeMetrics({ yTrue: g.y_true, yPred: g.y_pred, ranked: g.ranked, modelClasses: g.model_classes });
    assert.equal(m.n, g.n);
    assert.equal(m.failed, 0);
    assert.deepEqual(m.confusion.labels, g.labels);
    assert.deepEqual(m.confusion.matrix, g.confusion_matrix);
    close(m.accuracy, g.accuracy, 'accuracy');
    close(m.macroF1, g.f1_macro, 'macro F1');
    close(m.weightedF1, g.f1_weighted, 'weighted F1');
    close(m.top3Accuracy, g.top3_accuracy, 'top-3 accuracy');
    assert.equal(m.perClass.length, g.labels.length);
    m.perClass.forEach((c, k) => {
      assert.equal(c.label, g.labels[k]);
      assert.equal(c.support, g.support[k]);
      close(c.precision, g.precision[k]!, `precision ${c.label}`);
      close(c.recall, g.recall[k]!, `recall ${c.label}`);
      close(c.f1, g.f1[k]!, `f1 ${c.label}`);
    });
    // Same operations in the same order as numpy: not merely close, identical.
    assert.equal(m.macroF1, g.f1_macro);
    assert.equal(m.weightedF1, g.f1_weighted);
    assert.deepEqual(m.perClass.map((c) => c.f1), g.f1);
  });
}

test('golden main: exercises the traps it was built for', () => {
  const g = golden.cases.find((c) => c.name === 'main')!;
  const m = computeMetrics({ yTrue: g.y_true, yPred: g.y_pred, ranked: g.ranked, modelClasses: g.model_classes });
  const byLabel = new Map(m.perClass.map((c) => [c.label, c]));
  // Never predicted: precision 0/0 → 0 (zero_division=0).
  assert.equal(byLabel.get('Bücher')!.precision, 0);
  assert.ok(byLabel.get('Bücher')!.support > 0);
  // Predicted only: support 0, recall 0/0 → 0, yet part of the macro average.
  assert.equal(byLabel.get('Électroménager')!.support, 0);
  assert.equal(byLabel.get('Électroménager')!.recall, 0);
  // Unseen by the model: listed, all wrong.
  const unseenCount = g.y_true.filter((t) => t === 'Épicerie fine').length;
  assert.deepEqual(m.unseenLabels, [{ label: 'Épicerie fine', count: unseenCount }]);
  assert.equal(byLabel.get('Épicerie fine')!.recall, 0);
  // Code-point order: U+FF46 (fullwidth f) sorts before U+1D49C (script A), unlike UTF-16 code units.
  assert.deepEqual(m.confusion.labels.slice(-2), ['ｆｕｌｌ-width', '𝒜ccessoires']);
});

test('numpySum reproduces pairwise summation, not a left-to-right sum', () => {
  // 1e16 + 1 + 1 ... loses every 1 left to right; pairwise blocks keep some of them.
  const a = [1e16, ...new Array<number>(300).fill(1)];
  let naive = 0;
  for (const x of a) naive += x;
  assert.notEqual(numpySum(a), naive);
  assert.equal(numpySum([1, 2, 3]), 6);
  assert.equal(numpySum([]), 0);
});

function metrics(yTrue: string[], yPred: (string | null)[], modelClasses: string[], ranked?: string[][]): EvalMetrics {
  return computeMetrics({ yTrue, yPred, ranked: ranked ?? yPred.map((p) => (p === null ? [] : [p])), modelClasses });
}

test('all correct: every figure is 1, the matrix is diagonal', () => {
  const y = ['b', 'a', 'c', 'a', 'b', 'a'];
  const m = metrics(y, y, ['a', 'b', 'c']);
  assert.equal(m.accuracy, 1);
  assert.equal(m.macroF1, 1);
  assert.equal(m.weightedF1, 1);
  assert.equal(m.top3Accuracy, 1);
  assert.deepEqual(m.confusion, { labels: ['a', 'b', 'c'], matrix: [[3, 0, 0], [0, 2, 0], [0, 0, 1]] });
  assert.deepEqual(m.perClass.map((c) => c.support), [3, 2, 1]);
  assert.deepEqual(mostConfusedPairs(m, 5), []);
});

test('null predictions: wrong in accuracy and top-3, absent from the confusion matrix and per-class figures', () => {
  const yTrue = ['a', 'a', 'b', 'b', 'c'];
  const yPred = ['a', null, 'b', 'a', null];
  const ranked = [['a', 'b', 'c'], ['a', 'b', 'c'], ['b', 'a', 'c'], ['a', 'b', 'c'], []];
  const m = computeMetrics({ yTrue, yPred, ranked, modelClasses: ['a', 'b', 'c'] });
  assert.equal(m.n, 5);
  assert.equal(m.failed, 2);
  assert.equal(m.correct, 2);
  assert.equal(m.accuracy, 2 / 5);
  // Row 1's ranking would hit, but a failed row is wrong whatever it carries; row 3 hits at rank 2.
  assert.equal(m.top3Accuracy, 3 / 5);
  // 'c' only occurs on a failed row: it is not in the label set.
  assert.deepEqual(m.confusion, { labels: ['a', 'b'], matrix: [[1, 0], [1, 1]] });
  // Per-class and F1 figures equal those of the scored rows alone.
  const scored = metrics(['a', 'b', 'b'], ['a', 'b', 'a'], ['a', 'b', 'c']);
  assert.deepEqual(m.perClass, scored.perClass);
  assert.equal(m.macroF1, scored.macroF1);
  assert.equal(m.weightedF1, scored.weightedF1);
});

test('every prediction failed: zeros, no crash', () => {
  const m = metrics(['a', 'b'], [null, null], ['a', 'b']);
  assert.equal(m.failed, 2);
  assert.equal(m.accuracy, 0);
  assert.equal(m.macroF1, 0);
  assert.equal(m.weightedF1, 0);
  assert.equal(m.top3Accuracy, 0);
  assert.deepEqual(m.confusion, { labels: [], matrix: [] });
});

test('no rows at all: zeros, no NaN', () => {
  const m = metrics([], [], ['a']);
  assert.deepEqual([m.n, m.accuracy, m.macroF1, m.weightedF1, m.top3Accuracy], [0, 0, 0, 0, 0]);
});

test('unseen labels: counted, always wrong, even in top-3', () => {
  const yTrue = ['a', 'zz', 'zz', 'b', 'new', 'a'];
  const yPred = ['a', 'a', 'b', 'b', 'a', 'c'];
  const ranked = [['a', 'b', 'c'], ['a', 'b', 'c'], ['b', 'a', 'c'], ['b', 'c', 'a'], ['a', 'c', 'b'], ['c', 'a', 'b']];
  const m = computeMetrics({ yTrue, yPred, ranked, modelClasses: ['a', 'b', 'c', 'd'] });
  assert.deepEqual(m.unseenLabels, [{ label: 'zz', count: 2 }, { label: 'new', count: 1 }]);
  assert.equal(m.accuracy, 2 / 6);
  assert.equal(m.top3Accuracy, 3 / 6);
  assert.deepEqual(m.confusion.labels, ['a', 'b', 'c', 'new', 'zz']);
  const zz = m.perClass.find((c) => c.label === 'zz')!;
  assert.deepEqual(zz, { label: 'zz', precision: 0, recall: 0, f1: 0, support: 2 });
});

test('an empty-string label is an ordinary label (the caller drops unlabelled rows before)', () => {
  const m = metrics(['', 'a', 'a'], ['a', 'a', 'a'], ['a']);
  assert.deepEqual(m.confusion, { labels: ['', 'a'], matrix: [[0, 1], [0, 2]] });
  assert.deepEqual(m.unseenLabels, [{ label: '', count: 1 }]);
  // What the eval command does: drop rows whose label is blank, then compute.
  const keep = [1, 2];
  const dropped = metrics(keep.map((i) => ['', 'a', 'a'][i]!), keep.map(() => 'a'), ['a']);
  assert.equal(dropped.accuracy, 1);
  assert.deepEqual(dropped.unseenLabels, []);
});

test('two classes: top-3 looks at both, and matches the hand-computed F1', () => {
  const yTrue = ['pos', 'pos', 'neg', 'neg', 'neg'];
  const yPred = ['pos', 'neg', 'neg', 'neg', 'pos'];
  const ranked = yPred.map((p) => (p === 'pos' ? ['pos', 'neg'] : ['neg', 'pos']));
  const m = computeMetrics({ yTrue, yPred, ranked, modelClasses: ['neg', 'pos'] });
  assert.equal(m.topK, 2);
  assert.equal(m.top3Accuracy, 1);
  assert.equal(m.accuracy, 3 / 5);
  // neg: P = 2/3, R = 2/3; pos: P = 1/2, R = 1/2.
  const fNeg = (2 * (2 / 3) * (2 / 3)) / (2 / 3 + 2 / 3);
  const fPos = (2 * 0.5 * 0.5) / (0.5 + 0.5);
  assert.equal(m.macroF1, (fNeg + fPos) / 2);
  assert.equal(m.weightedF1, (fNeg * 3 + fPos * 2) / 5);
});

test('one model class: top-1 is all there is', () => {
  const m = metrics(['a', 'b'], ['a', 'a'], ['a'], [['a'], ['a']]);
  assert.equal(m.topK, 1);
  assert.equal(m.top3Accuracy, 0.5);
});

test('mostConfusedPairs: off-diagonal only, count desc, ties by true then predicted label', () => {
  const yTrue = ['a', 'a', 'a', 'b', 'b', 'c', 'c', 'c', 'c'];
  const yPred = ['b', 'b', 'a', 'a', 'c', 'a', 'a', 'b', 'c'];
  const m = metrics(yTrue, yPred, ['a', 'b', 'c']);
  assert.deepEqual(mostConfusedPairs(m, 10), [
    { trueLabel: 'a', predLabel: 'b', count: 2 },
    { trueLabel: 'c', predLabel: 'a', count: 2 },
    { trueLabel: 'b', predLabel: 'a', count: 1 },
    { trueLabel: 'b', predLabel: 'c', count: 1 },
    { trueLabel: 'c', predLabel: 'b', count: 1 },
  ]);
  assert.equal(mostConfusedPairs(m, 2).length, 2);
  assert.deepEqual(mostConfusedPairs(m, 0), []);
});

test('mismatched lengths are a caller bug', () => {
  assert.throws(() => computeMetrics({ yTrue: ['a'], yPred: [], ranked: [], modelClasses: ['a'] }), RangeError);
});
