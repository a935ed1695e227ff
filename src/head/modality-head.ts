// One modality head: a StandardScaler and a multinomial logistic regression over some of a target's blocks
// (text and image embeddings, the TF-IDF block). A path of C values fitted on some rows and scored on others
// (selection), or the final fit. Pure functions of a HeadDesign, so the main thread and fit-pool workers give
// the same numbers.
import { interceptScale } from './intercept-scale.js';
import { maxAbs } from './lbfgs.js';
import { fitStandardScaler, type StandardScalerParams } from './scaler.js';
import { heldOutCsr, makeDesign, standardizeDense, type CsrBlock, type DesignMatrix } from './design-matrix.js';
import { decisionFunctionDesign, fitLogisticRegressionAsync, softmaxRowsInPlace, type AsyncLogisticOptions, type LogisticFit } from './logistic.js';
import { weightsFromBasis, weightsFromBasisAsync, type RowSpaceBasis, type SubstitutionUpdate } from './rowspace.js';
import { ortSubstitutionUpdate } from './gemm-ort.js';
import { RiseStop, rowLogLoss } from './scoring.js';

/** A dense block of a head: an embedding, in layout order. */
export interface DenseBlock {
  kind: 'text' | 'image';
  dim: number;
  /**
   * Its standardised values are multiplied by this (default 1): early fusion's block weight, which sets how far a
   * 1,280-d image block may outweigh an L2-normalised TF-IDF row under one penalty. Folded into the scaler (scale ÷
   * weight), so the fitted head, its held-out scores and the bundle all read w × the standardised block.
   */
  weight?: number;
}

/** StandardScaler's scale divided by each dense block's weight (in place), so standardising gives w × z. */
export function weightScaler(scaler: StandardScalerParams, blocks: readonly DenseBlock[]): StandardScalerParams {
  let j = 0;
  for (const b of blocks) {
    const w = b.weight ?? 1;
    if (!(w > 0 && Number.isFinite(w))) throw new RangeError(`block weight must be a positive number, got ${w}`);
    if (w !== 1) for (let t = 0; t < b.dim; t++) scaler.scale[j + t] /= w;
    j += b.dim;
  }
  return scaler;
}

/**
 * What every fit of one head in one training procedure reads: its rows' labels, raw embeddings and TF-IDF
 * rows. Arrays live in SharedArrayBuffers so workers read them without a copy.
 */
export interface HeadDesign {
  n: number;
  /** Class index (into the target's classes) per row. */
  y: Int32Array;
  nClasses: number;
  denseBlocks: DenseBlock[];
  /** n × dd raw embeddings (unscaled), row-major; zeros where a row lacks a block. Null without dense blocks. */
  dense: Float32Array | null;
  /** n × denseBlocks.length: 1 where the row has that block. */
  present: Uint8Array | null;
  /** The TF-IDF block, when the head has one. */
  sparse: CsrBlock | null;
  /**
   * Per row, which distinct content it has (rows with equal embeddings and TF-IDF share an id: listings of one
   * product in several colours, say); `distinct` holds the first row of each id.
   */
  content: Int32Array;
  distinct: Int32Array;
  /** The TF-IDF block in row space (rowspace.ts), over the distinct rows (L's row = a row's content id); null: over its columns. */
  basis: RowSpaceBasis | null;
  /** With a shared basis (shared-basis.ts): per content id, its row of the basis's L; absent: L's row is the content id. */
  basisRows?: Int32Array;
}

/** A SharedArrayBuffer-backed typed array (shared with workers, not copied). */
export function sharedArray<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(
  ctor: { new (buffer: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number },
  length: number,
): T {
  return new ctor(new SharedArrayBuffer(Math.max(1, length) * ctor.BYTES_PER_ELEMENT)).subarray(0, length) as T;
}

export type FitOptions = Omit<AsyncLogisticOptions, 'C' | 'init' | 'onIteration' | 'gradMaxAbs'>;

/** A path of fits on `train` rows, each C started from the previous one's solution, scored on `test` rows. */
export interface PathTask {
  train: Int32Array;
  test: Int32Array;
  /** Fitted in this order (ascending for warm starts to help). */
  Cs: number[];
  lr: FitOptions;
  /** Return the last fit as a head (weights over the original columns). */
  keep: boolean;
  /** Return each fit's solution (solver coordinates), for warm-starting a later fit of the same design. */
  solutions?: boolean;
  /** Start the first fit here instead of at zero. */
  init?: Solution;
  /**
   * Stop the path once the held-out log-loss has risen at this many consecutive C values past the least so far, or
   * once it has risen beyond noise of the least (withinNoise: a value selection could not choose): on the U-shaped
   * curve of held-out loss against C the larger C values cannot win, and they are the slowest fits. Only for a path
   * whose test rows are all the held-out rows the choice is made on (one held-out share).
   */
  stopAfterRises?: number;
}

/** A fit's weights in the solver's coordinates (the design's dense columns, then its basis or TF-IDF columns). */
export interface Solution {
  /** Target class index of each row of coef (ascending). */
  classIndex: Int32Array;
  /** classIndex.length × solver width. */
  coef: Float64Array;
  intercept: Float64Array;
}

export interface FitStats {
  C: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  loss: number;
  message: string;
  /** Wall seconds the fit took (its worker's clock), for progress estimates. */
  seconds: number;
}

/** A fitted head in the original coordinates: what a bundle stores and what predicts held-out rows. */
export interface HeadParams {
  /** Indices (into the target's classes) of the classes this head was fitted on, ascending. */
  classIndex: Int32Array;
  /** Per dense block, the mean imputed when a row lacks it (training rows' mean). */
  means: Float64Array[];
  /** Dense part's scaler (length dd). */
  scaler: StandardScalerParams;
  /** classIndex.length × (dd + sparse dim), row-major. */
  coef: Float64Array;
  intercept: Float64Array;
  fit: FitStats;
}

export interface PathResult {
  /** Per C (task order): test.length × nClasses probabilities over the target's classes (0 for unseen ones). */
  probs: Float64Array[];
  fits: FitStats[];
  head: HeadParams | null;
  /** Per C, the solution (when task.solutions). */
  solutions: Solution[] | null;
}

/** The solver's width for a design: its dense columns, then the basis or the TF-IDF columns. */
export function solverWidth(design: HeadDesign): number {
  return denseWidth(design) + (design.basis ? design.basis.r : (design.sparse?.dim ?? 0));
}

/**
 * The mean of some solutions (scikit-learn's refit starts from the folds' mean), over the classes `classIndex`:
 * a class a solution lacks counts as zeros there.
 */
export function meanSolution(solutions: Solution[], classIndex: Int32Array, width: number): Solution {
  const K = classIndex.length;
  const coef = new Float64Array(K * width);
  const intercept = new Float64Array(K);
  const row = new Map(Array.from(classIndex, (c, k) => [c, k]));
  for (const s of solutions) {
    s.classIndex.forEach((c, a) => {
      const k = row.get(c);
      if (k === undefined) return;
      for (let j = 0; j < width; j++) coef[k * width + j] += s.coef[a * width + j]! / solutions.length;
      intercept[k] += s.intercept[a]! / solutions.length;
    });
  }
  return { classIndex, coef, intercept };
}

/** `init` over the fit's classes (rows for classes it lacks dropped, missing ones zero). */
function initFor(init: Solution, classIndex: Int32Array, width: number): { coef: Float64Array; intercept: Float64Array } {
  const m = meanSolution([init], classIndex, width);
  return { coef: m.coef, intercept: m.intercept };
}

/** Per-fit events: an iteration of the current fit, or a fit finished. */
export type PathEvent = { type: 'iteration'; C: number; iteration: number } | { type: 'fit'; stats: FitStats } | { type: 'skipped'; C: number };

function denseWidth(design: HeadDesign): number {
  return design.denseBlocks.reduce((s, b) => s + b.dim, 0);
}

/** Per dense block, the mean over `rows` that have it (float64, summed in row order). */
function blockMeansOf(design: HeadDesign, rows: Int32Array): Float64Array[] {
  const dd = denseWidth(design);
  let offset = 0;
  return design.denseBlocks.map((b, k) => {
    const acc = new Float64Array(b.dim);
    let count = 0;
    for (const i of rows) {
      if (!design.present![i * design.denseBlocks.length + k]) continue;
      const o = i * dd + offset;
      for (let j = 0; j < b.dim; j++) acc[j] += design.dense![o + j]!;
      count++;
    }
    if (count > 0) for (let j = 0; j < b.dim; j++) acc[j] /= count;
    offset += b.dim;
    return acc;
  });
}

/** The rows' dense blocks, missing ones imputed with `means` (as float32, as run assembles them). */
function gatherDense(design: HeadDesign, rows: Int32Array, means: Float64Array[], width: number): Float32Array {
  const dd = denseWidth(design);
  const nb = design.denseBlocks.length;
  const out = new Float32Array(rows.length * width);
  const means32 = means.map((m) => Float32Array.from(m));
  rows.forEach((i, a) => {
    let offset = 0;
    design.denseBlocks.forEach((b, k) => {
      const dst = a * width + offset;
      if (design.present![i * nb + k]) out.set(design.dense!.subarray(i * dd + offset, i * dd + offset + b.dim), dst);
      else out.set(means32[k]!, dst);
      offset += b.dim;
    });
  });
  return out;
}

/** CSR of some rows of `S`, in the given order. */
export function csrRows(S: CsrBlock, rows: Int32Array): CsrBlock {
  const indptr = new Int32Array(rows.length + 1);
  rows.forEach((i, a) => (indptr[a + 1] = indptr[a]! + S.indptr[i + 1]! - S.indptr[i]!));
  const indices = new Int32Array(indptr[rows.length]!);
  const values = new Float64Array(indices.length);
  rows.forEach((i, a) => {
    indices.set(S.indices.subarray(S.indptr[i]!, S.indptr[i + 1]!), indptr[a]!);
    values.set(S.values.subarray(S.indptr[i]!, S.indptr[i + 1]!), indptr[a]!);
  });
  return { dim: S.dim, indptr, indices, values };
}

/**
 * The matrix the solver sees for `rows`: the dense blocks (imputed with `means`, standardised with the training
 * rows' `scaler`; null without dense blocks), then the TF-IDF block as CSR or, in row space, the rows' basis
 * coordinates. Held-out rows (`heldOutFrom`: the rows fitted on) are always over the TF-IDF columns, scored as new
 * rows (heldOutCsr): a row-space fit is mapped back to the columns to score them (originalCoef), which costs
 * K·r²/2 per fit where their basis coordinates would cost r²/2 per held-out row.
 */
function solverDesign(design: HeadDesign, rows: Int32Array, means: Float64Array[], scaler: StandardScalerParams | null, heldOutFrom?: Int32Array): DesignMatrix {
  const dd = denseWidth(design);
  const dense = dd > 0 ? gatherDense(design, rows, means, dd) : null;
  if (dense) standardizeDense(dense, rows.length, dd, scaler!, dense);
  const held = design.sparse && heldOutFrom ? heldOutCsr(design.sparse, heldOutFrom, rows) : null;
  const basis = design.basis;
  if (basis && !heldOutFrom) {
    const width = dd + basis.r;
    const out = new Float32Array(rows.length * width);
    rows.forEach((i, a) => {
      if (dense) out.set(dense!.subarray(a * dd, (a + 1) * dd), a * width);
      // A shared basis holds more rows than the design's: basisRows says which of its L rows each content id is.
      const c = design.basisRows ? design.basisRows[design.content[i]!]! : design.content[i]!;
      out.set(basis.L.subarray(c * basis.r, (c + 1) * basis.r), a * width + dd);
    });
    return makeDesign(rows.length, out, width, null);
  }
  const sparse = held ?? (design.sparse ? csrRows(design.sparse, rows) : null);
  return makeDesign(rows.length, dense, dd, sparse);
}

/**
 * The training rows as distinct (content, class) pairs, each weighted by how many rows it stands for (times the
 * balanced class weight of the original rows, when asked): the objective Σ w·CE is the same sum, over fewer
 * rows. Null weights when every row is distinct and no class weight applies (then rows are the training rows).
 */
function distinctPairs(design: HeadDesign, train: Int32Array, y: Int32Array, K: number, balanced: boolean): { rows: Int32Array; y: Int32Array; weight: { perPair: Float64Array } | null } {
  const at = new Map<number, number>();
  const rows: number[] = [];
  const ys: number[] = [];
  const count: number[] = [];
  train.forEach((i, t) => {
    const key = design.content[i]! * K + y[t]!;
    const p = at.get(key);
    if (p !== undefined) count[p]!++;
    else {
      at.set(key, rows.length);
      rows.push(i);
      ys.push(y[t]!);
      count.push(1);
    }
  });
  if (rows.length === train.length && !balanced) return { rows: train, y, weight: null };
  const perPair = Float64Array.from(count);
  if (balanced) {
    // scikit-learn's 'balanced': n / (K · rows of the class), from the rows, not the pairs.
    const perClass = new Float64Array(K);
    for (let t = 0; t < y.length; t++) perClass[y[t]!]++;
    for (let p = 0; p < perPair.length; p++) perPair[p] *= y.length / (K * perClass[ys[p]!]!);
  }
  return { rows: Int32Array.from(rows), y: Int32Array.from(ys), weight: { perPair } };
}

/** The classes present among `rows` (ascending target indices) and each row's index among them. */
function localClasses(design: HeadDesign, rows: Int32Array): { classIndex: Int32Array; y: Int32Array } {
  const seen = new Uint8Array(design.nClasses);
  for (const i of rows) seen[design.y[i]!] = 1;
  const classIndex = Int32Array.from([...seen.keys()].filter((k) => seen[k]));
  const local = new Int32Array(design.nClasses).fill(-1);
  classIndex.forEach((k, a) => (local[k] = a));
  return { classIndex, y: Int32Array.from(rows, (i) => local[design.y[i]!]!) };
}

/** Below this basis size the mapping's back substitution stays in JS (no ONNX Runtime session to set up). */
const ORT_SUBSTITUTION_MIN_RANK = 1000;

/**
 * A fit's weights (K × solver width, row stride) over the original columns: the dense part as is, the row-space
 * part mapped back to the TF-IDF columns (its substitution's bulk in `update`'s GEMMs, when given).
 */
async function originalCoef(design: HeadDesign, coef: Float64Array, K: number, update: SubstitutionUpdate | null): Promise<Float64Array> {
  const basis = design.basis;
  if (!basis) return coef;
  const dd = denseWidth(design);
  const dim = design.sparse!.dim;
  const stride = dd + basis.r;
  const sparse = update ? await weightsFromBasisAsync(basis, design.sparse!, coef, K, stride, dd, update) : weightsFromBasis(basis, design.sparse!, coef, K, stride, dd);
  const out = new Float64Array(K * (dd + dim));
  for (let k = 0; k < K; k++) {
    out.set(coef.subarray(k * stride, k * stride + dd), k * (dd + dim));
    out.set(sparse.subarray(k * dim, (k + 1) * dim), k * (dd + dim) + dd);
  }
  return out;
}

/**
 * Fits task.Cs in order on task.train (each from the previous solution: the path of solutions costs far fewer
 * iterations than fits from zero) and returns each one's probabilities for task.test.
 */
export async function fitPath(design: HeadDesign, task: PathTask, onEvent?: (e: PathEvent) => void): Promise<PathResult> {
  const dd = denseWidth(design);
  const means = design.dense ? blockMeansOf(design, task.train) : [];
  const { classIndex, y: yAll } = localClasses(design, task.train);
  const K = classIndex.length;
  const { rows, y, weight } = distinctPairs(design, task.train, yAll, K, task.lr.classWeight === 'balanced');
  // The scaler sees every training row (duplicates included), as StandardScaler would.
  const scaler = dd > 0 ? weightScaler(fitStandardScaler(gatherDense(design, task.train, means, dd), task.train.length, dd), design.denseBlocks) : null;
  const X = solverDesign(design, rows, means, scaler);
  const Xtest = task.test.length > 0 ? solverDesign(design, task.test, means, scaler, task.train) : null;
  const fittedScaler = scaler ?? { mean: new Float64Array(0), scale: new Float64Array(0) };
  // In row space the gtol test reads the gradient over the original columns (mapped back), so a fit stops no
  // earlier than it would over the TF-IDF columns; the cheap test over the basis comes first.
  const tol = task.lr.tol ?? 1e-6;
  const gradMaxAbs = design.basis
    ? (g: Float64Array, own: number) => (own > tol ? own : Math.max(maxAbs(g, K * X.dd), denseGradMax(g, K, X.dd, dd), mappedMax(design, g, K)))
    : undefined;
  const probs: Float64Array[] = [];
  const fits: FitStats[] = [];
  let previous: LogisticFit | undefined;
  const solutions: Solution[] = [];
  const first = task.init ? initFor(task.init, classIndex, solverWidth(design)) : undefined;
  const stop = task.stopAfterRises !== undefined ? new RiseStop(task.stopAfterRises) : null;
  // The intercepts' variables scaled to the design's largest direction (intercept-scale.ts): the same fits, fewer iterations.
  const scale = interceptScale(X, weight?.perPair);
  const substitution = design.basis && design.basis.r >= ORT_SUBSTITUTION_MIN_RANK ? await ortSubstitutionUpdate() : null;
  try {
    for (const [c, C] of task.Cs.entries()) {
      if (stop?.done) {
        for (const skipped of task.Cs.slice(c)) onEvent?.({ type: 'skipped', C: skipped });
        break;
      }
      const options = {
        ...task.lr,
        ...(weight ? { sampleWeight: weight.perPair, classWeight: null } : {}),
        C,
        gradMaxAbs,
        interceptScale: scale,
        // Basis coordinates are long dense rows: float32 products leave the objective too noisy for the line search
        // near the optimum, float64 ones cost twice as much; 'mixed' keeps float64 logits from float32 products.
        precision: design.basis ? ('mixed' as const) : task.lr.precision,
        onIteration: onEvent ? (iteration: number) => onEvent({ type: 'iteration', C, iteration }) : undefined,
      };
      const startedAt = performance.now();
      const start = previous ? { coef: previous.coef, intercept: previous.intercept } : first;
      const fit = await fitLogisticRegressionAsync(X, y, K, { ...options, init: start });
      previous = fit;
      if (task.solutions) solutions.push({ classIndex, coef: fit.coef, intercept: fit.intercept });
      const stats: FitStats = { C, iterations: fit.iterations, evaluations: fit.evaluations, converged: fit.converged, loss: fit.loss, message: fit.message, seconds: (performance.now() - startedAt) / 1000 };
      fits.push(stats);
      if (Xtest) {
        // Held-out rows are over the TF-IDF columns: a row-space fit is scored there through its mapped-back weights.
        const scorer = design.basis ? { ...fit, coef: await originalCoef(design, fit.coef, K, substitution?.update ?? null), nFeatures: dd + design.sparse!.dim } : fit;
        const p = expand(softmaxRowsInPlace(decisionFunctionDesign(Xtest, scorer), Xtest.n, K), classIndex, design.nClasses);
        probs.push(p);
        stop?.add(testRowLosses(p, design.y, task.test, design.nClasses));
      } else probs.push(new Float64Array(0));
      onEvent?.({ type: 'fit', stats });
    }
    let head: HeadParams | null = null;
    if (task.keep && previous) {
      head = { classIndex, means, scaler: fittedScaler, coef: await originalCoef(design, previous.coef, K, substitution?.update ?? null), intercept: previous.intercept, fit: fits[fits.length - 1]! };
    }
    return { probs, fits, head, solutions: task.solutions ? solutions : null };
  } finally {
    await substitution?.dispose();
  }
}

/** Each test row's log-loss from its probabilities (n × nClasses), as selection's heldOutFigures. */
function testRowLosses(p: Float64Array, y: Int32Array, test: Int32Array, nClasses: number): Float64Array {
  return Float64Array.from(test, (row, i) => rowLogLoss(p[i * nClasses + y[row]!]!));
}

/** Max |g| over the dense columns of a K × width gradient. */
function denseGradMax(g: Float64Array, K: number, width: number, dd: number): number {
  let m = 0;
  for (let k = 0; k < K; k++) m = Math.max(m, maxAbs(g, k * width, k * width + dd));
  return m;
}

/** Max |g| of the row-space part of a gradient, mapped back to the TF-IDF columns. */
function mappedMax(design: HeadDesign, g: Float64Array, K: number): number {
  const dd = denseWidth(design);
  return maxAbs(weightsFromBasis(design.basis!, design.sparse!, g, K, dd + design.basis!.r, dd));
}

/** n × K local probabilities spread over the target's classes (zeros for classes the fit never saw). */
function expand(p: Float64Array, classIndex: Int32Array, nClasses: number): Float64Array {
  const K = classIndex.length;
  const n = p.length / K;
  const out = new Float64Array(n * nClasses);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) out[i * nClasses + classIndex[k]!] = p[i * K + k]!;
  return out;
}
