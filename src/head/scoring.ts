// A trained linear head in the layout it is scored in (dense weights feature-major, the TF-IDF block's weights
// compressed by column), and the kernels that score a row at a cost of dd×K + the stored entries of its non-zeros.

/** Class index of each stored sparse entry: 16 bits while K ≤ 65,535, else 32. */
export type ClassIndexArray = Uint16Array | Uint32Array;

/** The weights over the head's dense blocks (text and image embeddings), standardised before use. */
export interface DenseWeights {
  /** dd: the dense blocks' total width, in layout order. */
  width: number;
  /** StandardScaler's mean and scale (a constant feature's scale is 1), length dd. */
  mean: Float64Array;
  scale: Float64Array;
  /**
   * dd × K, feature-major: feature j's K class weights are weights[j·K, j·K + K), so one non-zero feature reads
   * K contiguous numbers instead of K numbers a row's width apart.
   */
  weights: Float32Array;
}

/**
 * Largest |multiple| of 2·tolerance a pruned head's value is stored as in a head file (int16); a head with a
 * larger value keeps float32 values.
 */
export const QUANTISED_MAX = 0x7fff;

/**
 * The weights over the TF-IDF block, compressed by column (CSC): column j's entries are
 * classIndex/values[colptr[j], colptr[j+1]), classes ascending. A column's weights are stored shifted by a
 * per-column constant (softmax cannot see it) and entries that the shift makes (nearly) zero are left out.
 */
export interface SparseWeights {
  /** dim: the TF-IDF block's width. */
  width: number;
  /** dim + 1 entry offsets; colptr[0] = 0, colptr[dim] = stored entries. */
  colptr: Uint32Array;
  classIndex: ClassIndexArray;
  values: Float32Array;
}

/** Standardisation + multinomial logistic regression over [dense blocks | TF-IDF block], either part optional. */
export interface LinearHead {
  /** K class names, the output order. */
  classes: string[];
  /** K intercepts. */
  intercept: Float64Array;
  dense: DenseWeights | null;
  sparse: SparseWeights | null;
}

/** A TF-IDF row as tfidfBlockRow gives it: column indices within the block, with their values. */
export interface SparseRowLike {
  indices: ArrayLike<number>;
  values: ArrayLike<number>;
}

/**
 * One row as a linear head reads it: the raw (unscaled) vectors of its dense blocks in layout order (a missing
 * modality's training mean in its place), and the TF-IDF row (null: no text, an all-zero block).
 */
export interface HeadRow {
  dense: readonly ArrayLike<number>[];
  sparse: SparseRowLike | null;
}

/** Entries kept in the sparse part (0 without one). */
export function sparseEntries(head: LinearHead): number {
  return head.sparse ? head.sparse.values.length : 0;
}

/** The smallest class-index array that holds indices below K. */
export function classIndexArray(K: number, length: number): ClassIndexArray {
  return K <= 0xffff ? new Uint16Array(length) : new Uint32Array(length);
}

/**
 * Logits of one row into `out` (length K), up to a constant shared by every class (the sparse columns' shifts),
 * which softmax cancels. Accumulates in float64.
 */
export function linearLogits(head: LinearHead, row: HeadRow, out: Float64Array): Float64Array {
  const K = head.intercept.length;
  if (out.length !== K) throw new RangeError(`linearLogits: out has ${out.length} slots for ${K} classes`);
  out.set(head.intercept);
  const dense = head.dense;
  if (dense) {
    const { mean, scale, weights } = dense;
    let j = 0;
    for (const part of row.dense) {
      const m = part.length;
      if (j + m > dense.width) throw new RangeError(`linearLogits: dense input is wider than the head's ${dense.width} columns`);
      for (let t = 0; t < m; t++, j++) {
        const z = (part[t]! - mean[j]!) / scale[j]!;
        if (z === 0) continue;
        const o = j * K;
        for (let k = 0; k < K; k++) out[k] += z * weights[o + k]!;
      }
    }
    if (j !== dense.width) throw new RangeError(`linearLogits: dense input has ${j} values, the head reads ${dense.width}`);
  } else if (row.dense.some((p) => p.length > 0)) {
    throw new RangeError('linearLogits: dense input given to a head without dense blocks');
  }
  const sparse = head.sparse;
  const x = row.sparse;
  if (sparse && x) {
    const { colptr, classIndex, values, width } = sparse;
    const nnz = x.indices.length;
    if (x.values.length !== nnz) throw new RangeError(`linearLogits: sparse row has ${nnz} indices and ${x.values.length} values`);
    for (let t = 0; t < nnz; t++) {
      const c = x.indices[t]!;
      if (!(c >= 0 && c < width)) throw new RangeError(`linearLogits: sparse index ${c} is outside the head's [0, ${width})`);
      const v = x.values[t]!;
      if (v === 0) continue;
      for (let p = colptr[c]!, end = colptr[c + 1]!; p < end; p++) out[classIndex[p]!] += v * values[p]!;
    }
  } else if (x && x.indices.length > 0) {
    throw new RangeError('linearLogits: a sparse row given to a head without a TF-IDF block');
  }
  return out;
}

/** A row's log-loss: −log of its true class's probability, clipped at 1e-15 as scikit-learn's log_loss. */
export function rowLogLoss(p: number): number {
  return -Math.log(Math.max(p, 1e-15));
}

/**
 * Whether held-out per-row log-losses `l` are within noise of `base` (the least's, on the same rows in the same
 * order): their paired excess, row by row, has a mean below one standard error of itself. Selection's rule: a value
 * within noise of the least may still win on macro-F1 (selection.ts chooseC), one beyond it cannot.
 */
export function withinNoise(l: ArrayLike<number>, base: ArrayLike<number>): boolean {
  const n = l.length;
  if (n !== base.length || n < 2) return false;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += l[i]! - base[i]!;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (l[i]! - base[i]! - mean) ** 2;
  return mean < Math.sqrt(ss / (n - 1)) / Math.sqrt(n);
}

/**
 * The stop rule of a search along an ascending grid whose held-out log-loss is U-shaped (a head's C path, early
 * fusion's block weights): stop after `maxRises` rises in a row past the least so far, or after one beyond noise of
 * it (withinNoise), since the values after it cannot win.
 */
export class RiseStop {
  #least = Infinity;
  #leastRows: Float64Array | null = null;
  #rises = 0;
  #beyondNoise = false;
  constructor(readonly maxRises: number) {}

  /** Whether the search stops before its next value. */
  get done(): boolean {
    return this.#rises >= this.maxRises || this.#beyondNoise;
  }

  /** The next value's held-out log-loss per row (the same rows in the same order each time). */
  add(rowLosses: Float64Array): void {
    const mean = rowLosses.reduce((s, v) => s + v, 0) / rowLosses.length;
    if (mean < this.#least) [this.#least, this.#leastRows, this.#rises] = [mean, rowLosses, 0];
    else [this.#rises, this.#beyondNoise] = [this.#rises + 1, this.#leastRows !== null && !withinNoise(rowLosses, this.#leastRows)];
  }
}

/** Max-shifted softmax of `logits` into `out` (float64 sums; `logits` is overwritten with the exponentials). */
export function softmaxInto(logits: Float64Array, out: Float32Array | Float64Array): Float32Array | Float64Array {
  const K = logits.length;
  let max = -Infinity;
  for (let k = 0; k < K; k++) if (logits[k]! > max) max = logits[k]!;
  let sum = 0;
  for (let k = 0; k < K; k++) sum += logits[k] = Math.exp(logits[k]! - max);
  const inv = 1 / sum;
  for (let k = 0; k < K; k++) out[k] = logits[k]! * inv;
  return out;
}

/** Class probabilities of one row (K, the head's class order). `scratch` (length K) saves an allocation. */
export function scoreRow(head: LinearHead, row: HeadRow, scratch?: Float64Array): Float32Array {
  const K = head.intercept.length;
  const logits = linearLogits(head, row, scratch ?? new Float64Array(K));
  return softmaxInto(logits, new Float32Array(K)) as Float32Array;
}

/** Class probabilities of n rows, n × K row-major. */
export function scoreRows(head: LinearHead, rows: readonly HeadRow[]): Float32Array {
  const K = head.intercept.length;
  const out = new Float32Array(rows.length * K);
  const logits = new Float64Array(K);
  rows.forEach((row, i) => softmaxInto(linearLogits(head, row, logits), out.subarray(i * K, (i + 1) * K)));
  return out;
}

/**
 * One row of the head's full dense input ([dense blocks | TF-IDF block], as an ONNX head takes it) split into
 * what the kernels read; the TF-IDF block's non-zeros are found by a scan.
 */
export function headRowFromDense(head: LinearHead, x: Float32Array | Float64Array): HeadRow {
  const dd = head.dense?.width ?? 0;
  const dim = head.sparse?.width ?? 0;
  if (x.length !== dd + dim) throw new RangeError(`headRowFromDense: row has ${x.length} values, the head reads ${dd + dim}`);
  const dense = dd > 0 ? [x.subarray(0, dd)] : [];
  if (dim === 0) return { dense, sparse: null };
  const indices: number[] = [];
  const values: number[] = [];
  for (let j = 0; j < dim; j++) {
    const v = x[dd + j]!;
    if (v !== 0) {
      indices.push(j);
      values.push(v);
    }
  }
  return { dense, sparse: { indices, values } };
}
