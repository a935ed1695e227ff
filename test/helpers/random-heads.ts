// Seeded random linear-head parameters and rows for the scoring and head-file tests: columns shaped like a fitted
// TF-IDF model's (most classes near one value, a few far from it), L2-normalised sparse rows.
import { mulberry32 } from '../../src/head/random.js';
import type { LinearModelParams } from '../../src/head/linear-head.js';
import type { HeadRow } from '../../src/head/scoring.js';

export function randomParams(seed: number, shape: { K: number; dd: number; dim: number; meanLength?: 'dense' | 'full' }): LinearModelParams {
  const rand = mulberry32(seed);
  const { K, dd, dim } = shape;
  const W = dd + dim;
  const coef = new Float64Array(K * W);
  for (let k = 0; k < K; k++) for (let j = 0; j < dd; j++) coef[k * W + j] = (rand() - 0.5) * 2;
  for (let j = 0; j < dim; j++) {
    // Every third column has exact ties (a term no class uses); the rest have small jitter around a base value.
    const base = (rand() - 0.5) * 0.2;
    for (let k = 0; k < K; k++) {
      const far = rand() < 0.15;
      const v = j % 3 === 0 ? 0 : base + (far ? (rand() - 0.3) * 4 : (rand() - 0.5) * 0.01);
      coef[k * W + dd + j] = v;
    }
  }
  const full = shape.meanLength === 'full';
  const mean = new Float64Array(full ? W : dd);
  const scale = new Float64Array(full ? W : dd).fill(1);
  for (let j = 0; j < dd; j++) {
    mean[j] = (rand() - 0.5) * 0.5;
    scale[j] = 0.2 + rand();
  }
  const intercept = Float64Array.from({ length: K }, () => (rand() - 0.5) * 2);
  return { classes: Array.from({ length: K }, (_, k) => `class-${String(k).padStart(3, '0')}`), denseWidth: dd, sparseWidth: dim, mean, scale, coef, intercept };
}

/** n rows: dense parts of the given widths (summing to dd), ~nnz sorted unique sparse columns, L2-normalised. */
export function randomRows(seed: number, n: number, denseParts: number[], dim: number, nnz: number): HeadRow[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const dense = denseParts.map((w) => Float32Array.from({ length: w }, () => (rand() - 0.5) * 2));
    if (dim === 0) return { dense, sparse: null };
    const cols = new Set<number>();
    const want = Math.min(dim, 1 + Math.floor(rand() * nnz * 2));
    while (cols.size < want) cols.add(Math.floor(rand() * dim));
    const indices = Int32Array.from([...cols].sort((a, b) => a - b));
    const values = Float64Array.from(indices, () => 0.1 + rand());
    const norm = Math.hypot(...values);
    for (let t = 0; t < values.length; t++) values[t] /= norm;
    return { dense, sparse: { indices, values } };
  });
}

/** The row as the dense [dense blocks | TF-IDF block] input an ONNX head takes. */
export function denseInput(row: HeadRow, dd: number, dim: number): Float32Array {
  const x = new Float32Array(dd + dim);
  let at = 0;
  for (const p of row.dense) {
    x.set(p, at);
    at += p.length;
  }
  if (row.sparse) for (let t = 0; t < row.sparse.indices.length; t++) x[dd + row.sparse.indices[t]!] = row.sparse.values[t]!;
  return x;
}
