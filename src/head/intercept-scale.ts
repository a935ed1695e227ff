// How far the solver moves an intercept per unit of its variable (logistic.ts, AsyncLogisticOptions.interceptScale).
//
// The intercepts are the weights of a constant feature of 1, unpenalised, while the design's largest direction has a
// mean square λ_max(XᵀWX)/Σw that on standardised embeddings is a hundred times that (one shared "brightness" or
// "length" direction). L-BFGS then creeps along the intercepts long after the weights have settled. Scaling each
// intercept's variable by s = sqrt(λ_max/Σw) gives that constant feature the same size as the largest direction:
// the same objective and optimum, reached in 3–4× fewer iterations on myntra's image heads. The scale is only ever
// raised: TF-IDF rows (and their row-space coordinates) are shorter than 1 in every direction, and s < 1 there
// saved 5–10% of myntra's text heads' iterations but cost a 436-path taxonomy head 8% more and its train 17%
// (docs/measurements.md, "Speed"), so such designs keep scikit-learn's coordinates.
import { mulberry32 } from './random.js';
import type { DesignMatrix } from './design-matrix.js';

/** Power-iteration steps: the scale only needs the largest eigenvalue's size, not its digits. */
const POWER_STEPS = 12;

/** Rows read at most (every k-th row above it): a mean square, which a few thousand rows measure well enough. */
const MAX_ROWS = 2000;

/**
 * sqrt(λ_max(Xᵀ·diag(w)·X) / Σw) for a design's rows (weights w, default 1), at least 1: the intercept scale that
 * matches the constant feature to the design's largest direction when that is the longer one. Above MAX_ROWS rows,
 * every k-th row stands for the rest. A deterministic start, so a fit is repeatable.
 */
export function interceptScale(X: DesignMatrix, weight?: Float64Array): number {
  const { n: rowsIn, dd, dense, sparse } = X;
  const width = dd + (sparse ? sparse.dim : 0);
  if (rowsIn === 0 || width === 0) return 1;
  const stride = Math.ceil(rowsIn / MAX_ROWS);
  const n = Math.ceil(rowsIn / stride);
  let total = 0;
  for (let a = 0; a < n; a++) total += weight ? weight[a * stride]! : 1;
  if (!(total > 0)) return 1;
  const rand = mulberry32(0x5eed);
  let v = Float64Array.from({ length: width }, () => rand() - 0.5);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  for (let j = 0; j < width; j++) v[j] = v[j]! / norm;
  const u = new Float64Array(n);
  let lambda = 0;
  for (let step = 0; step < POWER_STEPS; step++) {
    // u = X v
    for (let a = 0; a < n; a++) {
      const i = a * stride;
      let s = 0;
      if (dense) for (let j = 0, o = i * dd; j < dd; j++) s += dense[o + j]! * v[j]!;
      if (sparse) for (let p = sparse.indptr[i]!; p < sparse.indptr[i + 1]!; p++) s += sparse.values[p]! * v[dd + sparse.indices[p]!]!;
      u[a] = s * (weight ? weight[i]! : 1);
    }
    // v' = Xᵀ W u
    const next = new Float64Array(width);
    for (let a = 0; a < n; a++) {
      const i = a * stride;
      const ui = u[a]!;
      if (ui === 0) continue;
      if (dense) for (let j = 0, o = i * dd; j < dd; j++) next[j] += dense[o + j]! * ui;
      if (sparse) for (let p = sparse.indptr[i]!; p < sparse.indptr[i + 1]!; p++) next[dd + sparse.indices[p]!] += sparse.values[p]! * ui;
    }
    lambda = Math.sqrt(next.reduce((s, x) => s + x * x, 0));
    if (!(lambda > 0)) return 1;
    for (let j = 0; j < width; j++) next[j] = next[j]! / lambda;
    v = next;
  }
  return Math.max(1, Math.sqrt(lambda / total));
}
