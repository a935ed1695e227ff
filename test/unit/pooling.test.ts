import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meanPool, l2Normalize, spatialMeanPool } from '../../src/embed/pooling.js';

test('meanPool averages only unmasked tokens', () => {
  // batch 2, seq 3, dim 2; row 1 has one padding token.
  const h = Float32Array.from([1, 2, 3, 4, 5, 6, /* row 1 */ 10, 20, 30, 40, 999, 999]);
  const mask = [1, 1, 1, 1, 1, 0];
  assert.deepEqual(Array.from(meanPool(h, mask, 2, 3, 2)), [3, 4, 20, 30]);
  const big = [1n, 1n, 1n, 1n, 1n, 0n];
  assert.deepEqual(Array.from(meanPool(h, big, 2, 3, 2)), [3, 4, 20, 30]);
});

test('meanPool of a fully masked row is zeros, not NaN (clamp 1e-9 as sentence-transformers)', () => {
  const out = meanPool(Float32Array.from([5, 5]), [0], 1, 1, 2);
  assert.deepEqual(Array.from(out), [0, 0]);
});

test('l2Normalize gives unit rows and leaves zero rows at zero', () => {
  const v = l2Normalize(Float32Array.from([3, 4, 0, 0]), 2);
  assert.deepEqual(Array.from(v), [Math.fround(0.6), Math.fround(0.8), 0, 0]);
});

test('spatialMeanPool averages H×W per channel and passes [N, D, 1, 1] through', () => {
  const x = Float32Array.from([1, 2, 3, 4, /* ch1 */ 10, 10, 10, 10]);
  assert.deepEqual(Array.from(spatialMeanPool(x, 1, 2, 4)), [2.5, 10]);
  const y = Float32Array.from([1, 2]);
  assert.equal(spatialMeanPool(y, 1, 2, 1), y);
});
