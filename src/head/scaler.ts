// StandardScaler with scikit-learn's semantics: population variance, near-constant features get scale 1,
// statistics in float64 whatever the input precision. Row-major n×d matrices throughout.
import { CategorizeError } from '../errors.js';

export interface StandardScalerParams {
  /** Per-feature mean (length d). */
  mean: Float64Array;
  /** Per-feature divisor: population std, or 1 where the feature is (numerically) constant. */
  scale: Float64Array;
}

function checkShape(X: ArrayLike<number>, n: number, d: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(d) || d < 1) {
    throw new RangeError(`${what}: need n >= 1 and d >= 1 integers, got n=${n}, d=${d}`);
  }
  if (X.length !== n * d) throw new RangeError(`${what}: X has ${X.length} values, expected n*d = ${n * d}`);
}

/**
 * Fits mean and scale like `StandardScaler().fit(X)`: two passes with the rounding correction term
 * sklearn's `_incremental_mean_and_var` uses, so large offsets do not eat the variance.
 */
export function fitStandardScaler(X: Float32Array | Float64Array, n: number, d: number): StandardScalerParams {
  checkShape(X, n, d, 'fitStandardScaler');
  const sum = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) sum[j] += X[o + j]!;
  }
  const mean = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    if (!Number.isFinite(sum[j]!)) {
      throw new CategorizeError('non_finite_feature', `fitStandardScaler: feature ${j} has a NaN or infinite value`);
    }
    mean[j] = sum[j]! / n;
  }
  const corr = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) {
      const t = X[o + j]! - mean[j]!;
      corr[j] += t;
      sq[j] += t * t;
    }
  }
  const scale = new Float64Array(d);
  const eps = Number.EPSILON;
  for (let j = 0; j < d; j++) {
    const v = (sq[j]! - (corr[j]! * corr[j]!) / n) / n;
    // sklearn's _is_constant_feature: a variance within rounding noise of the mean counts as zero.
    const bound = n * eps * v + (n * mean[j]! * eps) ** 2;
    scale[j] = v <= bound ? 1 : Math.sqrt(v);
    // Second-pass refinement of the mean: naive summation drifts ~n·eps relative, numpy's pairwise sum does not.
    mean[j] = mean[j]! + corr[j]! / n;
  }
  return { mean, scale };
}

/** (X - mean) / scale into a new float64 matrix. */
export function standardize(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  scaler: StandardScalerParams,
): Float64Array {
  checkShape(X, n, d, 'standardize');
  const { mean, scale } = scaler;
  if (mean.length !== d || scale.length !== d) {
    throw new RangeError(`standardize: scaler has ${mean.length} means and ${scale.length} scales, data has d=${d}`);
  }
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) out[o + j] = (X[o + j]! - mean[j]!) / scale[j]!;
  }
  return out;
}
