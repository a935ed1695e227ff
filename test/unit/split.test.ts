import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duplicateGroups, duplicateSummary, stratifiedHoldout, stratifiedKFold, type Split } from '../../src/head/split.js';
import { mulberry32 } from '../../src/head/random.js';

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

test('duplicate groups: the same text after normalisation shares a code; none when every text differs', () => {
  const codes = duplicateGroups(['USB Cable, 1m', 'usb  cable 1m', 'USB cable 2m', '', '', 'Ｕｓｂ cable 1M'])!;
  assert.equal(codes[0], codes[1]);
  assert.equal(codes[0], codes[5]);
  assert.notEqual(codes[0], codes[2]);
  assert.notEqual(codes[3], codes[4]); // empty texts are not duplicates of each other
  assert.equal(duplicateGroups(['a', 'b', 'c']), null);
  assert.match(duplicateSummary(codes), /^3 rows that share their text with another \(1 texts\)$/);
});

// 60 rows of 3 classes in groups of 1–4 rows (a group's rows share the class, as duplicate listings do).
const grouped = (() => {
  const rand = mulberry32(3);
  const labels: number[] = [];
  const groups: number[] = [];
  for (let g = 0; labels.length < 60; g++) {
    const size = 1 + Math.floor(rand() * 4);
    const cls = g % 3;
    for (let r = 0; r < size; r++) {
      labels.push(cls);
      groups.push(g);
    }
  }
  return { y: Int32Array.from(labels), groups: Int32Array.from(groups) };
})();
const sides = (s: Split, groups: Int32Array) => {
  const test = new Set(s.test.map((i) => groups[i]));
  return s.train.every((i) => !test.has(groups[i]!));
};

test('grouped holdout: whole groups held out, about the share of each class, seeded', () => {
  const { y: gy, groups } = grouped;
  const a = stratifiedHoldout(gy, 0.25, 5, groups);
  assert.ok(sides(a, groups), 'a group on both sides');
  assert.equal(a.train.length + a.test.length, gy.length);
  for (const c of [0, 1, 2]) {
    const n = gy.filter((v) => v === c).length;
    const held = a.test.filter((i) => gy[i] === c).length;
    assert.ok(held >= Math.round(0.25 * n) && held <= Math.round(0.25 * n) + 3, `class ${c}: ${held} of ${n}`);
    assert.ok(a.train.some((i) => gy[i] === c), `class ${c} left training`);
  }
  assert.deepEqual(stratifiedHoldout(gy, 0.25, 5, groups), a);
  // A class whose rows are one group stays in training.
  assert.deepEqual(stratifiedHoldout(Int32Array.from([0, 0, 1, 1, 1]), 0.5, 1, Int32Array.from([0, 0, 1, 2, 3])).test.filter((i) => i < 2), []);
});

test('grouped k-fold: every row tested once, groups never split, folds balanced per class', () => {
  const { y: gy, groups } = grouped;
  const folds = stratifiedKFold(gy, 5, 2, groups);
  assert.deepEqual(folds.flatMap((f) => f.test).sort((p, q) => p - q), Array.from({ length: gy.length }, (_, i) => i));
  for (const f of folds) {
    assert.ok(sides(f, groups));
    for (const c of [0, 1, 2]) {
      const n = gy.filter((v) => v === c).length;
      assert.ok(Math.abs(f.test.filter((i) => gy[i] === c).length - n / 5) <= 4);
    }
  }
  assert.deepEqual(stratifiedKFold(gy, 5, 2, groups), folds);
});
