// Design matrices: builders, validation messages, row slices that share storage, in-place standardising.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkDesignMatrix,
  csrFromDense,
  csrFromRows,
  denseDesign,
  designNnz,
  designWidth,
  makeDesign,
  sliceRows,
  standardizeDense,
  toDenseFloat64,
  type DesignMatrix,
} from '../../src/head/design-matrix.js';
import { fitStandardScaler, standardize } from '../../src/head/scaler.js';

const M = [
  0, 2, 0, 0,
  1, 0, 0, 3,
  0, 0, 0, 0,
  0, 0, 5, 0,
];

test('csrFromDense and csrFromRows build the same CSR; toDenseFloat64 inverts it', () => {
  const a = csrFromDense(M, 4, 4);
  assert.deepEqual(Array.from(a.indptr), [0, 1, 3, 3, 4]);
  assert.deepEqual(Array.from(a.indices), [1, 0, 3, 2]);
  assert.deepEqual(Array.from(a.values), [2, 1, 3, 5]);
  const b = csrFromRows([{ indices: [1], values: [2] }, { indices: [0, 3], values: [1, 3] }, { indices: [], values: [] }, { indices: [2], values: [5] }], 4);
  assert.deepEqual(b, a);
  const X = makeDesign(4, null, 0, a);
  assert.equal(designWidth(X), 4);
  assert.equal(designNnz(X), 4);
  assert.deepEqual(Array.from(toDenseFloat64(X)), M);
});

test('mixed design: dense columns first, then the sparse block; duplicates add up', () => {
  const dense = Float32Array.of(1, 2, 3, 4);
  const sparse = csrFromRows([{ indices: [2, 2], values: [1, 0.5] }, { indices: [0], values: [7] }], 3);
  const X = makeDesign(2, dense, 2, sparse);
  assert.equal(designWidth(X), 5);
  assert.deepEqual(Array.from(toDenseFloat64(X)), [1, 2, 0, 0, 1.5, 3, 4, 7, 0, 0]);
});

test('sliceRows shares storage and rebases indptr', () => {
  const dense = new Float64Array(8).map((_, i) => i);
  const X = makeDesign(4, dense, 2, csrFromDense(M, 4, 4));
  const s = sliceRows(X, 1, 4);
  assert.equal(s.n, 3);
  assert.deepEqual(Array.from(s.sparse!.indptr), [0, 2, 2, 3]);
  assert.deepEqual(Array.from(toDenseFloat64(s)), Array.from(toDenseFloat64(X)).slice(6));
  dense[2] = 42;
  assert.equal(s.dense![0], 42, 'the slice is a view');
  assert.equal(sliceRows(X, 2, 2).n, 0);
  assert.throws(() => sliceRows(X, 3, 5), /not a row range/);
});

test('checkDesignMatrix names what is wrong', () => {
  const ok = csrFromDense(M, 4, 4);
  const bad = (X: DesignMatrix, re: RegExp): void => assert.throws(() => checkDesignMatrix(X), (e: unknown) => e instanceof RangeError && re.test(e.message));
  bad({ n: 2, dense: new Float32Array(5), dd: 2, sparse: null }, /5 values, expected n·dd/);
  bad({ n: 1, dense: Float32Array.of(1, NaN), dd: 2, sparse: null }, /row 0, column 1 is NaN/);
  bad({ n: 1, dense: null, dd: 3, sparse: null }, /no dense block/);
  bad({ n: 3, dense: null, dd: 0, sparse: ok }, /indptr has 5 entries, expected n \+ 1 = 4/);
  bad({ n: 4, dense: null, dd: 0, sparse: { ...ok, indptr: Int32Array.of(0, 2, 1, 3, 4) } }, /indptr decreases at row 1/);
  bad({ n: 4, dense: null, dd: 0, sparse: { ...ok, indices: Int32Array.of(1, 0, 4, 2) } }, /index 4 \(entry 2\) is outside \[0, 4\)/);
  bad({ n: 4, dense: null, dd: 0, sparse: { ...ok, values: Float64Array.of(1, Infinity, 1, 1) } }, /not finite/);
  bad({ n: 4, dense: null, dd: 0, sparse: null }, /no features/);
  assert.doesNotThrow(() => denseDesign(new Float32Array(6), 3, 2));
});

test('standardizeDense matches the float64 standardize, in place or into float32', () => {
  const n = 50;
  const d = 3;
  const X = new Float32Array(n * d).map((_, i) => Math.sin(i * 1.7) * (1 + (i % d)) + 10 * (i % d));
  const sc = fitStandardScaler(X, n, d);
  const ref = standardize(X, n, d, sc);
  const f64 = standardizeDense(X, n, d, sc, new Float64Array(n * d));
  assert.deepEqual(Array.from(f64), Array.from(ref));
  const f32 = standardizeDense(X, n, d, sc);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(f32[i]! - ref[i]!) <= 1e-6 * Math.max(1, Math.abs(ref[i]!)));
  const inPlace = standardizeDense(X, n, d, sc, X);
  assert.equal(inPlace, X);
  assert.deepEqual(Array.from(inPlace), Array.from(f32));
});
