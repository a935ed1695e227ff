// The row-space form of a sparse block: S (n × dim) = L·Qᵀ with Q's r columns orthonormal (pivoted Cholesky of S·Sᵀ).
// Weights that start in the span of the rows stay there, so L-BFGS over L (K·r parameters, dense products) takes
// the same steps as over S (K·dim parameters, sparse products); the solution is mapped back once, at the end.
import type { CsrBlock } from './design-matrix.js';

/** S's rows in an orthonormal basis of their span, and what maps weights in that basis back to S's columns. */
export interface RowSpaceBasis {
  /** Rows the basis was built from (L's rows). */
  n: number;
  /** Rank kept: the basis size. */
  r: number;
  /** n × r row-major: each of those rows in the basis (float32, as the loss kernel reads it). */
  L: Float32Array;
  /** The rows the basis was built from, in the order chosen; basis vector k combines pivot rows 0..k. */
  pivots: Int32Array;
  /** r × r lower-triangular, row-major: the pivot rows in the basis (float64, for mapping weights back). */
  T: Float64Array;
  /**
   * The pivot rows themselves (r rows, CSR over S's columns), when the basis serves designs other than the one it was
   * built from (shared-basis.ts): `pivots` then index rows of no design's S. Absent: pivots are rows of the S given.
   */
  pivotRows?: CsrBlock;
}

/** Where pivot a's stored values are: in `pivotRows` when the basis has its own, else row pivots[a] of S. */
function pivotSource(basis: RowSpaceBasis, S: CsrBlock): { P: CsrBlock; row: (a: number) => number } {
  return basis.pivotRows ? { P: basis.pivotRows, row: (a) => a } : { P: S, row: (a) => basis.pivots[a]! };
}

/**
 * Pivots whose remaining squared norm falls below this share of the largest row's are dependent on the rows
 * already chosen (duplicates, mostly): rounding in a Cholesky of n rows is about n·eps of the diagonal, so a
 * dropped row is represented to within sqrt(RANK_TOL·n)·‖x‖ (≈ 1e-5 of a unit row at 10,000 rows).
 */
const RANK_TOL_PER_ROW = 64 * Number.EPSILON;

/** The Gram matrix of some rows of S (n × n for n = rows.length, float64): each row scattered into a dense
 * scratch, then dotted with every later row. */
export function sparseGram(S: CsrBlock, rows: Int32Array): Float64Array {
  const { indptr, indices, values } = S;
  const n = rows.length;
  const G = new Float64Array(n * n);
  const scratch = new Float64Array(S.dim);
  for (let a = 0; a < n; a++) {
    const i = rows[a]!;
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) scratch[indices[p]!] += values[p]!;
    for (let b = a; b < n; b++) {
      const j = rows[b]!;
      let s = 0;
      for (let p = indptr[j]!, end = indptr[j + 1]!; p < end; p++) s += scratch[indices[p]!]! * values[p]!;
      G[a * n + b] = s;
      G[b * n + a] = s;
    }
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) scratch[indices[p]!] = 0;
  }
  return G;
}

/**
 * A − P·Pᵀ for A (m × m) and P (m × b), row-major float64: the trailing update of a blocked Cholesky. It returns
 * the result in A itself or in `out` (m × m, free to overwrite), whichever suits it.
 */
export type TrailingUpdate = (A: Float64Array, P: Float64Array, m: number, b: number, out: Float64Array) => Float64Array | Promise<Float64Array>;

/** The trailing update in JS, in place (small matrices; ONNX Runtime's dgemm does the large ones). */
export function jsTrailingUpdate(A: Float64Array, P: Float64Array, m: number, b: number): Float64Array {
  for (let i = 0; i < m; i++) {
    const po = i * b;
    for (let j = 0; j <= i; j++) {
      const qo = j * b;
      let s = 0;
      for (let k = 0; k < b; k++) s += P[po + k]! * P[qo + k]!;
      A[i * m + j] -= s;
      if (j !== i) A[j * m + i] -= s;
    }
  }
  return A;
}

/** Columns per block: the panel's dot products are this long at most; the rest is one GEMM per block. */
const CHOLESKY_BLOCK = 96;

/**
 * Pivoted Cholesky of a symmetric positive semi-definite G (n × n, row-major; consumed): P·G·Pᵀ ≈ C·Cᵀ with C
 * lower-triangular, stopping when the largest remaining diagonal is below `relTol` of G's largest. Blocked and
 * right-looking, as LAPACK's dpstrf: each block of columns is factored with pivoting (short dot products inside
 * the block), then the trailing matrix takes the block's update in one GEMM (`update`). C is n × n in pivot
 * order (row j: the row at position j); perm[j] is that row's index in G.
 */
export async function pivotedCholesky(
  G: Float64Array,
  n: number,
  opts: { relTol?: number; block?: number; update?: TrailingUpdate } = {},
): Promise<{ C: Float64Array; r: number; perm: Int32Array }> {
  if (G.length !== n * n) throw new RangeError(`pivotedCholesky: G has ${G.length} values for ${n}×${n}`);
  const relTol = opts.relTol ?? RANK_TOL_PER_ROW * Math.max(n, 1);
  const block = opts.block ?? CHOLESKY_BLOCK;
  const update = opts.update ?? jsTrailingUpdate;
  const C = new Float64Array(n * n);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const work = new Float64Array(n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) {
    const d = G[i * n + i]!;
    if (!(d >= 0)) throw new RangeError(`pivotedCholesky: diagonal entry ${i} is ${d}, not a Gram matrix`);
    maxDiag = Math.max(maxDiag, d);
  }
  const stop = relTol * maxDiag;
  // Two n² buffers take turns holding the trailing matrix (G's own is the first), so the O(n³/b) numbers the
  // updates produce are never allocated afresh.
  const spare = new Float64Array(G.length);
  const P = new Float64Array(n * Math.min(block, n));
  let A = G; // the trailing matrix: positions j0..n-1, m × m
  for (let j0 = 0; j0 < n; j0 += block) {
    const m = n - j0;
    for (let i = j0; i < n; i++) work[i] = A[(i - j0) * m + (i - j0)]!;
    const end = Math.min(n, j0 + block);
    for (let j = j0; j < end; j++) {
      let p = j;
      for (let i = j + 1; i < n; i++) if (work[i]! > work[p]!) p = i;
      if (!(work[p]! > stop)) return { C, r: j, perm };
      if (p !== j) swapPositions(A, m, j - j0, p - j0, C, n, j, p, work, perm);
      const cjj = Math.sqrt(work[j]!);
      const jo = j * n;
      C[jo + j] = cjj;
      const inv = 1 / cjj;
      const col = j - j0;
      for (let i = j + 1; i < n; i++) {
        const io = i * n;
        let s = A[(i - j0) * m + col]!;
        for (let k = j0; k < j; k++) s -= C[io + k]! * C[jo + k]!;
        const v = s * inv;
        C[io + j] = v;
        work[i] -= v * v;
      }
    }
    const mt = n - end;
    if (mt === 0) break;
    const b = end - j0;
    const [from, to] = A.buffer === G.buffer ? [G, spare] : [spare, G];
    const A22 = to.subarray(0, mt * mt);
    for (let i = 0; i < mt; i++) A22.set(A.subarray((i + b) * m + b, (i + b) * m + m), i * mt);
    const Pm = P.subarray(0, mt * b);
    for (let i = 0; i < mt; i++) Pm.set(C.subarray((end + i) * n + j0, (end + i) * n + end), i * b);
    A = await update(A22, Pm, mt, b, from.subarray(0, mt * mt));
  }
  return { C, r: n, perm };
}

/** Swaps positions a < b: rows and columns of the trailing matrix (local la, lb), C's rows so far, work, perm. */
function swapPositions(A: Float64Array, m: number, la: number, lb: number, C: Float64Array, n: number, a: number, b: number, work: Float64Array, perm: Int32Array): void {
  for (let k = 0; k < m; k++) {
    const t = A[la * m + k]!;
    A[la * m + k] = A[lb * m + k]!;
    A[lb * m + k] = t;
  }
  for (let k = 0; k < m; k++) {
    const t = A[k * m + la]!;
    A[k * m + la] = A[k * m + lb]!;
    A[k * m + lb] = t;
  }
  for (let k = 0; k < a; k++) {
    const t = C[a * n + k]!;
    C[a * n + k] = C[b * n + k]!;
    C[b * n + k] = t;
  }
  [work[a], work[b]] = [work[b]!, work[a]!];
  [perm[a], perm[b]] = [perm[b]!, perm[a]!];
}

/**
 * The basis of the span of some rows of S (those of a head, each distinct row once: every subset of them, held-out
 * ones included, shares it). L's row a holds rows[a]; pivots are rows of S. `alloc` makes L (e.g. in a
 * SharedArrayBuffer, for workers); `update` is the Cholesky's trailing GEMM.
 */
export async function rowSpaceBasis(
  S: CsrBlock,
  rows: Int32Array,
  opts: { alloc?: (length: number) => Float32Array; update?: TrailingUpdate } = {},
): Promise<RowSpaceBasis> {
  const n = rows.length;
  const { C, r, perm } = await pivotedCholesky(sparseGram(S, rows), n, { update: opts.update });
  const L = opts.alloc ? opts.alloc(n * r) : new Float32Array(n * r);
  for (let j = 0; j < n; j++) {
    const a = perm[j]!;
    for (let k = 0; k < Math.min(r, j + 1); k++) L[a * r + k] = C[j * n + k]!;
  }
  const T = new Float64Array(r * r);
  for (let a = 0; a < r; a++) T.set(C.subarray(a * n, a * n + a + 1), a * r);
  return { n, r, L, pivots: Int32Array.from(perm.subarray(0, r), (a) => rows[a]!), T };
}

/**
 * Weights over the basis (rows of `V`, `rows` × r with row stride `stride` starting at `offset`) as weights
 * over S's columns (rows × dim): W = V·T⁻¹·S_pivots. Every row solves m·T = v by back substitution, all rows
 * together (m transposed, r × rows, so each of T's rows is read once rather than once per row), then scatters its
 * m over the pivot rows' stored values. In JS here, for the convergence test inside a fit; `weightsFromBasisAsync`
 * does the substitution's bulk as GEMMs.
 */
export function weightsFromBasis(basis: RowSpaceBasis, S: CsrBlock, V: Float64Array, rows: number, stride: number, offset: number): Float64Array {
  const M = transposedBasisWeights(basis.r, V, rows, stride, offset);
  substituteBlock(M, basis.T, basis.r, rows, 0, basis.r);
  return scatterOverPivots(basis, S, M, rows);
}

/**
 * The product that the back substitution's block updates take: M[0:s] −= Tslabᵀ·M[J] for Tslab (b × s, T's rows
 * J over columns 0:s) and M[J] (b × rows), all row-major float64.
 */
export type SubstitutionUpdate = (M: Float64Array, slab: Float64Array, block: Float64Array, s: number, b: number, rows: number) => Promise<void>;

/** Columns of T per block of the GEMM substitution: each block's own triangle stays in JS. */
const SUBSTITUTION_BLOCK = 128;

/**
 * `weightsFromBasis` with the back substitution blocked, as LAPACK's trsm: each block of T's rows (last first) is
 * solved in JS, then every earlier column takes its update in one GEMM (`update`). At a taxonomy's sizes (r 10k,
 * hundreds of classes) that is most of the mapping's arithmetic: 5–8× faster than the JS substitution, measured at
 * r 4,000–5,200.
 */
export async function weightsFromBasisAsync(basis: RowSpaceBasis, S: CsrBlock, V: Float64Array, rows: number, stride: number, offset: number, update: SubstitutionUpdate): Promise<Float64Array> {
  const { r, T } = basis;
  const M = transposedBasisWeights(r, V, rows, stride, offset);
  const slab = new Float64Array(SUBSTITUTION_BLOCK * r);
  for (let e = r; e > 0; e -= SUBSTITUTION_BLOCK) {
    const s = Math.max(0, e - SUBSTITUTION_BLOCK);
    const b = e - s;
    substituteBlock(M, T, r, rows, s, e);
    if (s === 0) break;
    for (let i = 0; i < b; i++) slab.set(T.subarray((s + i) * r, (s + i) * r + s), i * s);
    await update(M, slab.subarray(0, b * s), M.subarray(s * rows, e * rows), s, b, rows);
  }
  return scatterOverPivots(basis, S, M, rows);
}

/** V's rows (offset, stride) as columns: r × rows. */
function transposedBasisWeights(r: number, V: Float64Array, rows: number, stride: number, offset: number): Float64Array {
  const M = new Float64Array(r * rows);
  for (let k = 0; k < rows; k++) {
    const vo = k * stride + offset;
    for (let a = 0; a < r; a++) M[a * rows + k] = V[vo + a]!;
  }
  return M;
}

/**
 * Back substitution over T's rows [s, e), last first: m[a] /= T[a][a], then m[b] −= m[a]·T[a][b] for s ≤ b < a
 * (the columns below s are the caller's GEMM). A zero m[a] updates nothing.
 */
function substituteBlock(M: Float64Array, T: Float64Array, r: number, rows: number, s: number, e: number): void {
  for (let a = e - 1; a >= s; a--) {
    const ao = a * r;
    const mo = a * rows;
    const diag = T[ao + a]!;
    let zeros = false;
    for (let k = 0; k < rows; k++) {
      const ma = M[mo + k]! / diag;
      M[mo + k] = ma;
      if (ma === 0) zeros = true;
    }
    for (let b = s; b < a; b++) {
      const t = T[ao + b]!;
      const bo = b * rows;
      if (zeros) {
        for (let k = 0; k < rows; k++) {
          const ma = M[mo + k]!;
          if (ma !== 0) M[bo + k] -= ma * t;
        }
      } else {
        for (let k = 0; k < rows; k++) M[bo + k] -= M[mo + k]! * t;
      }
    }
  }
}

/** W (rows × dim): each row's m (a column of M) over the pivot rows' stored values. */
function scatterOverPivots(basis: RowSpaceBasis, S: CsrBlock, M: Float64Array, rows: number): Float64Array {
  const { P, row: pivotRow } = pivotSource(basis, S);
  const { indptr, indices, values } = P;
  const dim = S.dim;
  const W = new Float64Array(rows * dim);
  for (let k = 0; k < rows; k++) {
    const wo = k * dim;
    for (let a = 0; a < basis.r; a++) {
      const ma = M[a * rows + k]!;
      if (ma === 0) continue;
      const row = pivotRow(a);
      for (let p = indptr[row]!, end = indptr[row + 1]!; p < end; p++) W[wo + indices[p]!] += ma * values[p]!;
    }
  }
  return W;
}

// Rough rates on one core (this project's 2-core machine, 2026-12): ONNX Runtime's float32 GEMM in the loss
// kernel (multiply-adds/s), the JS CSR loops, L-BFGS's vector passes over the parameters (numbers/s), the Gram
// and the Cholesky above. Only their ratios matter: they decide which form a fit is cheaper in.
const GEMM_RATE = 2e10;
const SPARSE_RATE = 3e8;
const VECTOR_RATE = 3.5e8;
const GRAM_RATE = 5e8;
const CHOLESKY_RATE = 6e8;
/** L-BFGS touches the parameters about this many times per evaluation (two-loop recursion, m = 10). */
const VECTOR_PASSES = 44;
/** Evaluations one basis serves (a procedure's paths over the C grid), to spread its cost over. */
const EVALUATIONS_PER_BASIS = 300;
/** Above this many rows the Gram and its factor (2·n² float64) stop fitting comfortably in memory. */
export const ROW_SPACE_MAX_ROWS = 16_000;

/**
 * Whether fits of a head with n rows, dd dense columns and a sparse block of `dim` columns and `nnz` stored values
 * are cheaper in row space: per evaluation, products over n·(dd + width) dense numbers against CSR products and
 * L-BFGS passes over K·(dd + dim) parameters, plus the basis spread over the evaluations it serves. Its own basis is
 * n wide and costs its Gram and factor; a shared one (shared-basis.ts, `sharedWidth` wide) is built once for every
 * head that takes it, so a head pays only for its width.
 */
export function rowSpaceIsCheaper(n: number, dd: number, dim: number, nnz: number, K: number, sharedWidth: number | null = null): boolean {
  if (dim === 0 || n > ROW_SPACE_MAX_ROWS) return false;
  const columns = (2 * n * dd * K) / GEMM_RATE + (2 * nnz * K) / SPARSE_RATE + (VECTOR_PASSES * (dd + dim) * K) / VECTOR_RATE;
  const width = sharedWidth ?? n;
  const basis = sharedWidth === null ? (n * nnz) / 2 / GRAM_RATE + n ** 3 / 6 / CHOLESKY_RATE : 0;
  const rows = (2 * n * (dd + width) * K) / GEMM_RATE + (VECTOR_PASSES * (dd + width) * K) / VECTOR_RATE + basis / EVALUATIONS_PER_BASIS;
  return rows < columns;
}

