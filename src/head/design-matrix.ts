// The classifier's training matrix: a dense row-major block (embeddings) beside an optional CSR block (TF-IDF),
// so the loss kernels never densify a 50k-term vocabulary. Builders, validation and row slicing.
import type { StandardScalerParams } from './scaler.js';

/** Compressed sparse rows, scipy's csr_matrix layout: row i holds indices/values[indptr[i] .. indptr[i+1]). */
export interface CsrBlock {
  /** Width of the block (vocabulary size); every index is in [0, dim). */
  dim: number;
  /** Length n + 1, non-decreasing, indptr[0] = 0, indptr[n] = nnz. */
  indptr: Int32Array;
  /** Column of each stored value. Need not be sorted within a row; duplicates add up. */
  indices: Int32Array;
  values: Float32Array | Float64Array;
  /**
   * First column of each separately L2-normalised part (TF-IDF's word and character n-grams: [0, words]); absent:
   * one part. Held-out rows are renormalised part by part once the columns their fit never saw are dropped.
   */
  parts?: Int32Array;
}

/** n rows of features [dense (dd columns) | sparse (sparse.dim columns)]. */
export interface DesignMatrix {
  n: number;
  /** n×dd row-major, or null when there is no dense block (dd = 0). */
  dense: Float32Array | Float64Array | null;
  dd: number;
  sparse: CsrBlock | null;
}

/** Total feature count: dense width plus sparse width. */
export function designWidth(X: DesignMatrix): number {
  return X.dd + (X.sparse ? X.sparse.dim : 0);
}

/** Stored sparse values (0 without a sparse block). */
export function designNnz(X: DesignMatrix): number {
  return X.sparse ? X.sparse.indptr[X.n]! : 0;
}

/**
 * Throws a RangeError naming the first inconsistency (shape, indptr order, an index out of range, a
 * non-finite value); returns X so builders can end with it. O(n·dd + nnz).
 */
export function checkDesignMatrix(X: DesignMatrix, what = 'design matrix'): DesignMatrix {
  const { n, dense, dd, sparse } = X;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what}: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(dd) || dd < 0) throw new RangeError(`${what}: dd must be a non-negative integer, got ${dd}`);
  if (dense === null) {
    if (dd !== 0) throw new RangeError(`${what}: dd = ${dd} but there is no dense block`);
  } else {
    if (dense.length !== n * dd) throw new RangeError(`${what}: dense block has ${dense.length} values, expected n·dd = ${n}·${dd}`);
    for (let i = 0; i < dense.length; i++) {
      if (!Number.isFinite(dense[i]!)) throw new RangeError(`${what}: dense value at row ${Math.floor(i / dd)}, column ${i % dd} is ${dense[i]}`);
    }
  }
  if (sparse) {
    const { dim, indptr, indices, values } = sparse;
    if (!Number.isInteger(dim) || dim < 0) throw new RangeError(`${what}: sparse dim must be a non-negative integer, got ${dim}`);
    if (indptr.length !== n + 1) throw new RangeError(`${what}: indptr has ${indptr.length} entries, expected n + 1 = ${n + 1}`);
    if (indptr[0] !== 0) throw new RangeError(`${what}: indptr[0] = ${indptr[0]}, expected 0`);
    for (let i = 0; i < n; i++) {
      if (indptr[i + 1]! < indptr[i]!) throw new RangeError(`${what}: indptr decreases at row ${i}`);
    }
    const nnz = indptr[n]!;
    if (indices.length < nnz || values.length < nnz) {
      throw new RangeError(`${what}: indptr[n] = ${nnz} but there are ${indices.length} indices and ${values.length} values`);
    }
    for (let t = 0; t < nnz; t++) {
      const c = indices[t]!;
      if (!(c >= 0 && c < dim)) throw new RangeError(`${what}: sparse index ${c} (entry ${t}) is outside [0, ${dim})`);
      if (!Number.isFinite(values[t]!)) throw new RangeError(`${what}: sparse value ${values[t]} (entry ${t}) is not finite`);
    }
  }
  if (dd + (sparse ? sparse.dim : 0) === 0) throw new RangeError(`${what}: no features (dd = 0 and no sparse block)`);
  return X;
}

/** A dense-only design over an existing n×d row-major matrix (not copied). */
export function denseDesign(dense: Float32Array | Float64Array, n: number, d: number): DesignMatrix {
  return checkDesignMatrix({ n, dense, dd: d, sparse: null });
}

/** A design from its parts; `dense` may be null for a sparse-only problem. Arrays are not copied. */
export function makeDesign(n: number, dense: Float32Array | Float64Array | null, dd: number, sparse: CsrBlock | null): DesignMatrix {
  return checkDesignMatrix({ n, dense, dd, sparse });
}

/** CSR from per-row (column, value) lists; entries keep their order within a row. */
export function csrFromRows(rows: ReadonlyArray<{ indices: ArrayLike<number>; values: ArrayLike<number> }>, dim: number): CsrBlock {
  const indptr = new Int32Array(rows.length + 1);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.indices.length !== r.values.length) throw new RangeError(`csrFromRows: row ${i} has ${r.indices.length} indices and ${r.values.length} values`);
    indptr[i + 1] = indptr[i]! + r.indices.length;
  }
  const indices = new Int32Array(indptr[rows.length]!);
  const values = new Float64Array(indices.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    indices.set(r.indices, indptr[i]!);
    values.set(r.values, indptr[i]!);
  }
  return { dim, indptr, indices, values };
}

/** CSR of the non-zeros of an n×dim row-major dense matrix (tests and small inputs). */
export function csrFromDense(M: ArrayLike<number>, n: number, dim: number): CsrBlock {
  if (M.length !== n * dim) throw new RangeError(`csrFromDense: ${M.length} values for ${n}×${dim}`);
  const indptr = new Int32Array(n + 1);
  let nnz = 0;
  for (let t = 0; t < M.length; t++) if (M[t] !== 0) nnz++;
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const v = M[i * dim + j]!;
      if (v !== 0) {
        indices[p] = j;
        values[p++] = v;
      }
    }
    indptr[i + 1] = p;
  }
  return { dim, indptr, indices, values };
}

/**
 * Rows [start, end) as a design sharing X's storage: dense and CSR arrays are subarray views, and the
 * slice's indptr is rebased to 0 (the one array that is copied, end - start + 1 entries).
 */
export function sliceRows(X: DesignMatrix, start: number, end: number): DesignMatrix {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= X.n)) {
    throw new RangeError(`sliceRows: [${start}, ${end}) is not a row range of ${X.n} rows`);
  }
  const dense = X.dense ? X.dense.subarray(start * X.dd, end * X.dd) : null;
  let sparse: CsrBlock | null = null;
  if (X.sparse) {
    const s = X.sparse;
    const p0 = s.indptr[start]!;
    const p1 = s.indptr[end]!;
    const indptr = new Int32Array(end - start + 1);
    for (let i = 0; i <= end - start; i++) indptr[i] = s.indptr[start + i]! - p0;
    sparse = { dim: s.dim, indptr, indices: s.indices.subarray(p0, p1), values: s.values.subarray(p0, p1) };
  }
  return { n: end - start, dense, dd: X.dd, sparse };
}

/**
 * (X - mean) / scale of an n×d raw matrix, computed in float64 and stored in `out` (a new Float32Array by
 * default; pass X itself to standardise in place and save a copy of a multi-GB matrix).
 */
export function standardizeDense<T extends Float32Array | Float64Array = Float32Array>(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  scaler: StandardScalerParams,
  out?: T,
): T {
  if (X.length !== n * d) throw new RangeError(`standardizeDense: X has ${X.length} values, expected n·d = ${n}·${d}`);
  if (scaler.mean.length !== d || scaler.scale.length !== d) {
    throw new RangeError(`standardizeDense: scaler has ${scaler.mean.length} means and ${scaler.scale.length} scales, data has d=${d}`);
  }
  const dst = (out ?? new Float32Array(n * d)) as T;
  if (dst.length !== n * d) throw new RangeError(`standardizeDense: out has ${dst.length} values, expected ${n * d}`);
  const { mean, scale } = scaler;
  const inv = new Float64Array(d);
  for (let j = 0; j < d; j++) inv[j] = 1 / scale[j]!;
  if (dst instanceof Float64Array) {
    // Division, as sklearn computes it, where float64 keeps the difference; float32 rounding hides it.
    for (let i = 0; i < n; i++) {
      const o = i * d;
      for (let j = 0; j < d; j++) dst[o + j] = (X[o + j]! - mean[j]!) / scale[j]!;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const o = i * d;
      for (let j = 0; j < d; j++) dst[o + j] = (X[o + j]! - mean[j]!) * inv[j]!;
    }
  }
  return dst;
}

/** The full n×(dd + dim) matrix in float64, row-major: for reference kernels and tests on small problems. */
export function toDenseFloat64(X: DesignMatrix): Float64Array {
  const d = designWidth(X);
  const out = new Float64Array(X.n * d);
  for (let i = 0; i < X.n; i++) {
    const o = i * d;
    if (X.dense) for (let j = 0; j < X.dd; j++) out[o + j] = X.dense[i * X.dd + j]!;
    if (X.sparse) {
      const s = X.sparse;
      for (let t = s.indptr[i]!; t < s.indptr[i + 1]!; t++) out[o + X.dd + s.indices[t]!] += s.values[t]!;
    }
  }
  return out;
}

/** The part (CsrBlock.parts) column `c` belongs to: the last one starting at or before it. */
export function partOf(parts: Int32Array, c: number): number {
  let part = parts.length - 1;
  while (part > 0 && c < parts[part]!) part--;
  return part;
}

/**
 * Held-out rows as a model fitted on `train` sees a new row: TF-IDF columns no training row has are dropped (a
 * vocabulary fitted on the training rows alone would not have them) and each part is L2-normalised again, as the
 * vectorizer does. Without this, a held-out row keeps the norm of n-grams only it has (on amazon-electronics about a
 * quarter of a word block's), its scores come out damped, and C and the calibration are chosen for rows that are
 * less sure than new ones. Returns per held-out row and part the factor its kept values are scaled by (0: dropped),
 * row-major (rows × parts), and which columns the training rows have.
 */
export function heldOutScaling(S: CsrBlock, train: Int32Array, test: Int32Array): { seen: Uint8Array; factor: Float64Array; parts: Int32Array } {
  const seen = new Uint8Array(S.dim);
  for (const i of train) for (let p = S.indptr[i]!; p < S.indptr[i + 1]!; p++) seen[S.indices[p]!] = 1;
  const parts = S.parts ?? Int32Array.of(0);
  const P = parts.length;
  const factor = new Float64Array(test.length * P);
  const kept = new Float64Array(P);
  test.forEach((i, a) => {
    kept.fill(0);
    for (let p = S.indptr[i]!; p < S.indptr[i + 1]!; p++) {
      const c = S.indices[p]!;
      if (!seen[c]) continue;
      const part = partOf(parts, c);
      kept[part] += S.values[p]! * S.values[p]!;
    }
    for (let part = 0; part < P; part++) factor[a * P + part] = kept[part]! > 0 ? 1 / Math.sqrt(kept[part]!) : 0;
  });
  return { seen, factor, parts };
}

/** The held-out rows' TF-IDF block as heldOutScaling says a new row's would be. */
export function heldOutCsr(S: CsrBlock, train: Int32Array, test: Int32Array): CsrBlock {
  const { seen, factor, parts } = heldOutScaling(S, train, test);
  const P = parts.length;
  const indptr = new Int32Array(test.length + 1);
  const indices: number[] = [];
  const values: number[] = [];
  test.forEach((i, a) => {
    for (let p = S.indptr[i]!; p < S.indptr[i + 1]!; p++) {
      const c = S.indices[p]!;
      if (!seen[c]) continue;
      const part = partOf(parts, c);
      indices.push(c);
      values.push(S.values[p]! * factor[a * P + part]!);
    }
    indptr[a + 1] = indices.length;
  });
  return { dim: S.dim, indptr, indices: Int32Array.from(indices), values: Float64Array.from(values), parts };
}
