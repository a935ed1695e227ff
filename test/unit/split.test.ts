import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stratifiedHoldout, stratifiedKFold } from '../../src/head/split.js';

// 3 classes: 50, 30 and 1 rows, interleaved.
const y = Int32Array.from([...Array(50).fill(0), ...Array(30).fill(1), 2].map((v, i, a) => a[(i * 37) % a.length]));
const count = (idx: number[], cls: number) => idx.filter((i) => y[i] === cls).length;

test('holdout: each class in proportion, the singleton class kept for training, seeded and disjoint', () => {
  const a = stratifiedHoldout(y, 0.2, 7);
  const total = (c: number) => y.filter((v) => v === c).length;
  assert.equal(count(a.test, 0), Math.round(0.2 * total(0)));
  assert.equal(count(a.test, 1), Math.round(0.2 * total(1)));
  assert.equal(count(a.test, 2), 0);
  assert.equal(a.train.length + a.test.length, y.length);
  assert.equal(new Set([...a.train, ...a.test]).size, y.length);
  assert.deepEqual(stratifiedHoldout(y, 0.2, 7), a);
  assert.notDeepEqual(stratifiedHoldout(y, 0.2, 8).test, a.test);
});

test('k-fold: every row tested exactly once, folds balanced per class', () => {
  const folds = stratifiedKFold(y, 5, 1);
  const tested = folds.flatMap((f) => f.test).sort((p, q) => p - q);
  assert.deepEqual(tested, Array.from({ length: y.length }, (_, i) => i));
  for (const f of folds) {
    assert.ok(Math.abs(count(f.test, 0) - 10) <= 1);
    assert.ok(Math.abs(count(f.test, 1) - 6) <= 1);
    assert.equal(f.train.length + f.test.length, y.length);
  }
});
