// The loss/gradient kernel for long dense rows (a TF-IDF block in row space: thousands of basis coordinates a
// row), where float32 products leave the objective too noisy for the line search near the optimum and float64
// products cost twice as much. Logits are kept as Z(x) = Z(x_b) + X·(x − x_b): the base Z(x_b) in float64 (dgemm,
// refreshed every few evaluations), the difference in float32 (sgemm). Its rounding is float32's relative error
// of the difference, which shrinks with the steps, so near the optimum the objective is as good as float64's.
// Softmax, cross-entropy and the sums are float64 JS; the gradient Xᵀ·R is an sgemm per block of rows (its
// rounding is far below the gtol the fits stop at), summed in float64.
//
// Basis coordinates are a staircase: the basis comes from a pivoted Cholesky, so the row at pivot position j has
// zeros past coordinate j, and half of a design over a basis is zeros. The products skip them: rows are grouped,
// in order of where their trailing zeros begin, into blocks stored without those columns (`rowStaircase`), and
// each product is one GEMM per block over its own columns.
import ort from 'onnxruntime-node';
import { gemmSession } from './gemm-ort.js';
import { designWidth, type DesignMatrix } from './design-matrix.js';
import { guardedKernel, softmaxResidualInPlace, type LossKernel } from './loss.js';

/** Evaluations between float64 refreshes of the base logits (a refresh costs about two float32 products). */
export const MIXED_REFRESH_EVALUATIONS = 8;

/** Rows a block holds at least: below that a session call's overhead outweighs the zeros it skips. */
const STAIRCASE_MIN_ROWS = 256;
/** Blocks at most: with rows spread evenly over the staircase, b blocks store (b + 1) / 2b of the design. */
const STAIRCASE_MAX_BLOCKS = 12;
/** Blocks are used when they store at most this share of the design (else one block: the design as it is). */
const STAIRCASE_MAX_SHARE = 0.9;

/** Rows `start`..`start + rows` of the staircase order, stored over the design's first `width` columns. */
export interface RowBlock {
  start: number;
  rows: number;
  width: number;
}

/**
 * The design's rows (n × width, row-major) in the order of where their trailing zeros begin, cut into blocks of
 * about equal rows, each as wide as its widest row. `order[a]` is the design row at position a. One block over
 * every row in design order when the blocks would not store much less than the design.
 */
export function rowStaircase(X: Float32Array, n: number, width: number): { order: Int32Array; blocks: RowBlock[] } {
  const whole = { order: Int32Array.from({ length: n }, (_, i) => i), blocks: [{ start: 0, rows: n, width }] };
  const count = Math.min(STAIRCASE_MAX_BLOCKS, Math.floor(n / STAIRCASE_MIN_ROWS));
  if (count < 2 || width === 0) return whole;
  const end = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let j = width;
    while (j > 1 && X[i * width + j - 1] === 0) j--;
    end[i] = j;
  }
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => end[a]! - end[b]! || a - b);
  const blocks: RowBlock[] = [];
  for (let b = 0; b < count; b++) {
    const start = Math.floor((b * n) / count);
    const stop = Math.floor(((b + 1) * n) / count);
    blocks.push({ start, rows: stop - start, width: end[order[stop - 1]!]! });
  }
  const stored = blocks.reduce((s, b) => s + b.rows * b.width, 0);
  return stored <= STAIRCASE_MAX_SHARE * n * width ? { order, blocks } : whole;
}

/** Each block's rows over its columns, contiguous. */
function blockRows<T extends Float32Array | Float64Array>(X: Float32Array, width: number, order: Int32Array, blocks: RowBlock[], ctor: { new (length: number): T }): T[] {
  return blocks.map(({ start, rows, width: w }) => {
    const out = new ctor(rows * w);
    for (let a = 0; a < rows; a++) {
      const o = order[start + a]! * width;
      out.set(X.subarray(o, o + w), a * w);
    }
    return out;
  });
}

/** A design's staircase and its blocks' rows, float32 and (from the first refresh) float64. */
interface Staircase {
  order: Int32Array;
  blocks: RowBlock[];
  rows32: Float32Array[];
  rows64?: Float64Array[];
}

/**
 * Per design (its dense values), the staircase its kernels read: a path of C values fits one design many times, and
 * each fit's kernel reuses the blocks instead of copying the design again.
 */
const staircases = new WeakMap<Float32Array, Staircase>();

function staircaseOf(X32: Float32Array, n: number, width: number): Staircase {
  let s = staircases.get(X32);
  if (!s) {
    const { order, blocks } = rowStaircase(X32, n, width);
    s = { order, blocks, rows32: blocks.length === 1 ? [X32] : blockRows(X32, width, order, blocks, Float32Array) };
    staircases.set(X32, s);
  }
  return s;
}

/** The mixed-precision kernel over a dense-only design (rows × width, float32 as stored). */
export async function createMixedLossKernel(X: DesignMatrix, y: Int32Array, K: number, weight: Float64Array, l2: number, opts: { threads?: number } = {}): Promise<LossKernel> {
  if (X.sparse || X.dd !== designWidth(X)) throw new RangeError('createMixedLossKernel: dense designs only');
  const { n, dd } = X;
  const threads = opts.threads ?? 1;
  const X32 = X.dense instanceof Float32Array ? X.dense : Float32Array.from(X.dense!);
  const stairs = staircaseOf(X32, n, dd);
  const { order, blocks } = stairs;
  const single = blocks.length === 1;
  const B32 = stairs.rows32;
  const [forward32, backward32, forward64] = await Promise.all([gemmSession('float', false, false, threads), gemmSession('float', true, false, threads), gemmSession('double', false, false, threads)]);
  const base = new Float64Array(K * dd);
  const baseT = new Float64Array(dd * K);
  const Zbase = new Float64Array(n * K);
  const DT32 = new Float32Array(dd * K);
  const Zd = new Float32Array(n * K);
  const R32 = new Float32Array(n * K);
  const Rs = single ? R32 : new Float32Array(n * K);
  const G = new Float64Array(K * dd);
  // A block's logits, before they go to their design rows (one block in design order writes them there itself).
  const tallest = single ? 0 : Math.max(...blocks.map((b) => b.rows));
  const Z32 = new Float32Array(tallest * K);
  const Z64 = new Float64Array(tallest * K);
  const Gb = new Float32Array(K * dd);
  let evaluations = 0;

  async function refresh(params: Float64Array): Promise<void> {
    const B64 = (stairs.rows64 ??= blockRows(X32, dd, order, blocks, Float64Array));
    base.set(params.subarray(0, K * dd));
    transposeInto(base, K, dd, baseT);
    for (const [b, block] of blocks.entries()) {
      const out = single ? Zbase : Z64.subarray(0, block.rows * K);
      await forward64.run({ A: new ort.Tensor('float64', B64[b]!, [block.rows, block.width]), B: new ort.Tensor('float64', baseT.subarray(0, block.width * K), [block.width, K]) }, { Y: new ort.Tensor('float64', out, [block.rows, K]) });
      if (!single) scatterRows(out, order, block, K, Zbase);
    }
  }

  async function evaluateOnce(params: Float64Array, grad: Float64Array): Promise<number> {
    if (evaluations++ % MIXED_REFRESH_EVALUATIONS === 0) await refresh(params);
    differenceTransposed(params, base, K, dd, DT32);
    for (const [b, block] of blocks.entries()) {
      const out = single ? Zd : Z32.subarray(0, block.rows * K);
      await forward32.run({ A: new ort.Tensor('float32', B32[b]!, [block.rows, block.width]), B: new ort.Tensor('float32', DT32.subarray(0, block.width * K), [block.width, K]) }, { Y: new ort.Tensor('float32', out, [block.rows, K]) });
      if (!single) scatterRows(out, order, block, K, Zd);
    }
    const { loss, gb } = softmaxResiduals(Zbase, Zd, params, K * dd, y, weight, n, K, R32);
    if (!single) gatherRows(R32, order, K, Rs);
    G.fill(0);
    for (const [b, block] of blocks.entries()) {
      const w = block.width;
      const out = Gb.subarray(0, K * w);
      await backward32.run({ A: new ort.Tensor('float32', Rs.subarray(block.start * K, (block.start + block.rows) * K), [block.rows, K]), B: new ort.Tensor('float32', B32[b]!, [block.rows, w]) }, { Y: new ort.Tensor('float32', out, [K, w]) });
      addPrefixColumns(G, dd, out, w, K);
    }
    let sq = 0;
    for (let t = 0; t < K * dd; t++) {
      const w = params[t]!;
      sq += w * w;
      grad[t] = G[t]! + l2 * w;
    }
    grad.set(gb, K * dd);
    return loss + 0.5 * l2 * sq;
  }

  return guardedKernel(evaluateOnce, async () => void (await Promise.all([forward32.release(), backward32.release(), forward64.release()])));
}

// The loops below are module-level functions, as in loss-ort.ts: V8 optimises them as such several times better.

/** Rows of R (n × K) in `order`, into out. */
function gatherRows(R: Float32Array, order: Int32Array, K: number, out: Float32Array): void {
  for (let a = 0; a < order.length; a++) {
    const o = order[a]! * K;
    const p = a * K;
    for (let k = 0; k < K; k++) out[p + k] = R[o + k]!;
  }
}

/** A block's rows of a product (rows × K, in staircase order) into Z at their design rows: gatherRows undone. */
function scatterRows(part: Float32Array | Float64Array, order: Int32Array, { start, rows }: RowBlock, K: number, Z: Float32Array | Float64Array): void {
  for (let a = 0; a < rows; a++) {
    const o = order[start + a]! * K;
    const p = a * K;
    for (let k = 0; k < K; k++) Z[o + k] = part[p + k]!;
  }
}

/** G (K × width) += part (K × w) over G's first w columns. */
function addPrefixColumns(G: Float64Array, width: number, part: Float32Array, w: number, K: number): void {
  for (let k = 0; k < K; k++) {
    const go = k * width;
    const po = k * w;
    for (let j = 0; j < w; j++) G[go + j] += part[po + j]!;
  }
}

/** (params − base) over the first K × dd values, transposed into out (dd × K). */
function differenceTransposed(params: Float64Array, base: Float64Array, K: number, dd: number, out: Float32Array): void {
  for (let k = 0; k < K; k++) {
    const o = k * dd;
    for (let j = 0; j < dd; j++) out[j * K + k] = params[o + j]! - base[o + j]!;
  }
}

/** A (rows × cols, row-major) transposed into out (cols × rows). */
function transposeInto(A: Float64Array, rows: number, cols: number, out: Float64Array): void {
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = A[i * cols + j]!;
}

/**
 * Per row, logits z = Zbase + Zd + b (float64), the weighted cross-entropy, and R = w·(p − onehot) into R32; returns
 * the loss and the intercepts' gradient (Σ R over rows).
 */
function softmaxResiduals(Zbase: Float64Array, Zd: Float32Array, params: Float64Array, bOff: number, y: Int32Array, weight: Float64Array, n: number, K: number, R32: Float32Array): { loss: number; gb: Float64Array } {
  const gb = new Float64Array(K);
  const z = new Float64Array(K);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const o = i * K;
    for (let k = 0; k < K; k++) z[k] = Zbase[o + k]! + Zd[o + k]! + params[bOff + k]!;
    loss += softmaxResidualInPlace(z, K, y[i]!, weight[i]!);
    for (let k = 0; k < K; k++) {
      R32[o + k] = z[k]!;
      gb[k] += z[k]!;
    }
  }
  return { loss, gb };
}
