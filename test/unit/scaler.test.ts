// StandardScaler against scikit-learn's fit/transform goldens, float64 and float32 input, plus the
// near-constant-feature and shape rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { fitStandardScaler, standardize } from '../../src/head/scaler.js';

interface Golden {
  n: number;
  d: number;
  X: number[];
  mean: number[];
  scale: number[];
  transformed: number[];
  float32: { X: number[]; mean: number[]; scale: number[] };
}
const g = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-scaler.json'), 'utf8')) as Golden;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('matches sklearn StandardScaler on float64 input', () => {
  const X = Float64Array.from(g.X);
  const s = fitStandardScaler(X, g.n, g.d);
  assert.ok(maxAbsDiff(s.mean, g.mean) <= 1e-6, 'mean');
  assert.ok(maxAbsDiff(s.scale, g.scale) <= 1e-6, 'scale');
  assert.ok(maxAbsDiff(standardize(X, g.n, g.d, s), g.transformed) <= 1e-6, 'transformed');
  // The golden data has one constant column (index 7): sklearn gives it scale 1 and zeros after transform.
  assert.equal(s.scale[7], 1);
  assert.equal(g.scale[7], 1);
});

test('matches sklearn StandardScaler on float32 input (statistics in float64)', () => {
  const X = Float32Array.from(g.float32.X);
  const s = fitStandardScaler(X, g.n, g.d);
  assert.ok(maxAbsDiff(s.mean, g.float32.mean) <= 1e-6, 'mean');
  assert.ok(maxAbsDiff(s.scale, g.float32.scale) <= 1e-6, 'scale');
});

test('large offsets do not destroy small variances', () => {
  const n = 1000;
  const X = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    X[2 * i] = 1e9 + (i % 2 === 0 ? 1 : -1); // population std exactly 1
    X[2 * i + 1] = 123456.789; // constant, with rounding noise in the mean
  }
  const s = fitStandardScaler(X, n, 2);
  assert.ok(Math.abs(s.scale[0]! - 1) < 1e-6, `scale ${s.scale[0]}`);
  assert.equal(s.scale[1], 1);
  const Z = standardize(X, n, 2, s);
  assert.ok(Math.abs(Z[0]! - 1) < 1e-6 && Math.abs(Z[1]!) < 1e-9);
});

test('single row: zero variance everywhere, scale 1', () => {
  const s = fitStandardScaler(Float64Array.of(3, -2), 1, 2);
  assert.deepEqual(Array.from(s.mean), [3, -2]);
  assert.deepEqual(Array.from(s.scale), [1, 1]);
});

test('shape and value errors', () => {
  assert.throws(() => fitStandardScaler(new Float64Array(5), 2, 3), /expected n\*d = 6/);
  assert.throws(() => fitStandardScaler(new Float64Array(0), 0, 3), /n >= 1/);
  assert.throws(() => fitStandardScaler(Float64Array.of(1, NaN), 2, 1), /feature 0 has a NaN/);
  const s = fitStandardScaler(Float64Array.of(1, 2, 3, 4), 2, 2);
  assert.throws(() => standardize(Float64Array.of(1, 2, 3), 1, 3, s), /scaler has 2 means/);
});
