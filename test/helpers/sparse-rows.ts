// Seeded sparse rows whose class shows in a few columns of its own, for the row-space tests.
import { mulberry32 } from '../../src/head/random.js';

/** n rows over dim columns, class i % K: six random columns and three in the class's hundred columns. */
export function classedSparseRows(n: number, dim: number, K: number, seed: number): { dense: Float64Array; y: Int32Array } {
  const rand = mulberry32(seed);
  const dense = new Float64Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let t = 0; t < 6; t++) dense[i * dim + Math.floor(rand() * dim)] = rand();
    for (let t = 0; t < 3; t++) dense[i * dim + y[i]! * 100 + Math.floor(rand() * 100)] = 1 + rand();
  }
  return { dense, y };
}
