// The support head: multinomial logistic regression for catalogs with thousands of classes, whose full weight
// matrix (classes × a TF-IDF vocabulary of 10⁵–10⁶ terms) cannot be held, let alone fitted by L-BFGS. Its TF-IDF
// weights exist only where a term is over-represented in a class's training rows (the term–class support), so
// the model, a fit's memory and a row's cost all follow the (term, class) pairs the data has, not K × vocabulary.
// It is fitted by stochastic gradient descent (AdaGrad, one step size per term) over shuffled rows, regularised
// by early stopping: the number of epochs is chosen on held-out log-loss, as L-BFGS heads choose C.
import { heldOutScaling, partOf, type CsrBlock } from './design-matrix.js';
import { mulberry32, shuffleInPlace } from './random.js';
import { softmaxResidualInPlace } from './loss.js';
import { classIndexArray, rowLogLoss, softmaxInto, QUANTISED_MAX, type ClassIndexArray, type LinearHead } from './scoring.js';

/**
 * A (term, class) pair is in the support when the term is this many times more frequent in the class's rows than
 * overall. The support and the step were chosen by held-out accuracy: on train + dev of flipkart-taxonomy and
 * amazon-electronics (4 seeded 80/20 splits each, rows with the same title kept on one side, as the catalogs' own
 * splits keep near-duplicates; lift 2 or 4, from 1 or 2 rows, step 0.25–1) the support rule mattered less than the
 * splits' spread (~0.5 point), so lift 4 from 1 row, which keeps the fewest weights a row reads on the 5,000-class
 * catalog. Step 0.5 was up to a point better there, but on a 1,000-class synthetic catalog (the kind of catalog a
 * support head is for: too large for a full head) it crept for 30 epochs to a worse held-out loss and accuracy
 * (1.109 and 0.829 against step 1's 1.055 and 0.836 after 2 epochs), so step 1.
 */
export const SUPPORT_MIN_LIFT = 4;
/** … and in at least this many of the class's rows (a class with fewer rows: all of them). */
export const SUPPORT_MIN_ROWS = 1;
/** AdaGrad's base step (see SUPPORT_MIN_LIFT for how it was chosen). */
export const SUPPORT_STEP = 1;
/** Epochs at most while the held-out log-loss keeps falling. */
export const SUPPORT_MAX_EPOCHS = 30;

/** Term → classes, compressed by column (classes ascending), the layout SparseWeights stores. */
export interface TermClassSupport {
  colptr: Uint32Array;
  classIndex: ClassIndexArray;
}

/**
 * The (term, class) pairs of `rows` of X with labels y: term j is kept for class k when it occurs in at least
 * min(SUPPORT_MIN_ROWS, n_k) of the class's n_k rows and its share of them is at least SUPPORT_MIN_LIFT times its
 * share of all rows. Terms spread evenly over the classes (shared words, common character n-grams) get no weights:
 * softmax cannot see a weight every class has alike, and theirs would be nearly alike.
 */
export function termClassSupport(X: CsrBlock, y: ArrayLike<number>, K: number, rows: Int32Array, lift = SUPPORT_MIN_LIFT, minRows = SUPPORT_MIN_ROWS): TermClassSupport {
  const D = X.dim;
  const n = rows.length;
  const df = new Int32Array(D);
  const size = new Int32Array(K);
  // Rows bucketed by class (a counting sort), so each class's terms are counted in one sorted run.
  const start = new Int32Array(K + 1);
  for (const i of rows) {
    size[y[i]!]!++;
    for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) df[X.indices[p]!]!++;
  }
  for (let k = 0; k < K; k++) start[k + 1] = start[k]! + size[k]!;
  const byClass = new Int32Array(n);
  const fill = start.slice(0, K);
  for (const i of rows) byClass[fill[y[i]!]!++] = i;
  const pairs: number[][] = Array.from({ length: K }, () => []);
  const colCount = new Uint32Array(D + 1);
  let terms = new Int32Array(1024);
  for (let k = 0; k < K; k++) {
    let m = 0;
    for (let r = start[k]!; r < start[k + 1]!; r++) {
      const i = byClass[r]!;
      const len = X.indptr[i + 1]! - X.indptr[i]!;
      if (m + len > terms.length) {
        const grown = new Int32Array(Math.max(2 * terms.length, m + len));
        grown.set(terms.subarray(0, m));
        terms = grown;
      }
      terms.set(X.indices.subarray(X.indptr[i]!, X.indptr[i + 1]!), m);
      m += len;
    }
    const run = terms.subarray(0, m).sort();
    const need = Math.min(minRows, size[k]!);
    for (let a = 0; a < m; ) {
      let b = a + 1;
      while (b < m && run[b] === run[a]) b++;
      const j = run[a]!;
      const c = b - a;
      if (c >= need && c * n >= lift * df[j]! * size[k]!) {
        pairs[k]!.push(j);
        colCount[j + 1]!++;
      }
      a = b;
    }
  }
  const colptr = new Uint32Array(D + 1);
  for (let j = 0; j < D; j++) colptr[j + 1] = colptr[j]! + colCount[j + 1]!;
  const classIndex = classIndexArray(K, colptr[D]!);
  const at = colptr.slice(0, D);
  // Classes in ascending order, so each column's classes come out sorted.
  for (let k = 0; k < K; k++) for (const j of pairs[k]!) classIndex[at[j]!++] = k;
  return { colptr, classIndex };
}

export interface SupportTask {
  /** Design rows fitted on. */
  train: Int32Array;
  /** Held-out design rows: the epochs stop when their log-loss stops falling (empty: run `epochs` epochs). */
  test: Int32Array;
  /** With test rows, the most epochs; without, exactly this many. */
  epochs: number;
  seed: number;
}

export interface SupportEpoch {
  epoch: number;
  /** Mean training log-loss over the epoch's steps (each row's loss before its step). */
  trainLoss: number;
  /** Mean held-out log-loss after the epoch (NaN without test rows). */
  heldOutLoss: number;
  seconds: number;
}

export interface SupportFit {
  /** The weights: over the TF-IDF block, compressed by column, and K intercepts (classes as the design's). */
  colptr: Uint32Array;
  classIndex: ClassIndexArray;
  values: Float32Array;
  intercept: Float64Array;
  /** Epochs of the returned weights: the held-out log-loss's best, or task.epochs. */
  epochs: number;
  /** Every epoch run (with test rows, one past the best unless task.epochs came first). */
  curve: SupportEpoch[];
  seconds: number;
}

/** Held-out log-loss must fall by at least this share to count as better. */
const MIN_IMPROVEMENT = 1e-4;
/** Epochs without a better held-out log-loss before stopping. */
const PATIENCE = 1;
const EPS = 1e-10;

/**
 * Fits the support head on a design's TF-IDF block (X: all design rows; y: their class indices below K). Each
 * epoch visits the training rows in a seeded shuffled order; a row's step moves its terms' supported weights and
 * every intercept along the cross-entropy gradient, with AdaGrad step sizes (one accumulator per term, the mean
 * of its entries' squared gradients; one per intercept). Deterministic for a seed.
 */
export function fitSupportHead(X: CsrBlock, y: ArrayLike<number>, K: number, task: SupportTask, onEpoch?: (e: SupportEpoch) => void): SupportFit {
  const t0 = performance.now();
  if (!(Number.isInteger(task.epochs) && task.epochs >= 1)) throw new RangeError(`fitSupportHead: epochs must be a positive integer, got ${task.epochs}`);
  const { colptr, classIndex } = termClassSupport(X, y, K, task.train);
  const D = X.dim;
  const W = new Float64Array(classIndex.length);
  const b = new Float64Array(K);
  const G = new Float64Array(D);
  const Gb = new Float64Array(K);
  const z = new Float64Array(K);
  const { indptr, indices, values } = X;
  const logitsOf = (i: number): Float64Array => {
    z.set(b);
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
      const j = indices[p]!;
      const v = values[p]!;
      for (let q = colptr[j]!, e = colptr[j + 1]!; q < e; q++) z[classIndex[q]!]! += v * W[q]!;
    }
    return z;
  };
  // Held-out rows are scored as new rows would be (design-matrix.ts, heldOutScaling): unseen terms have no
  // support anyway; each part's kept values are renormalised.
  const held = task.test.length > 0 ? heldOutScaling(X, task.train, task.test) : null;
  const heldOutProbs = (i: number, a: number): Float64Array => {
    const { factor, parts } = held!;
    const P = parts.length;
    z.set(b);
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
      const j = indices[p]!;
      const v = values[p]! * factor[a * P + partOf(parts, j)]!;
      for (let q = colptr[j]!, e = colptr[j + 1]!; q < e; q++) z[classIndex[q]!]! += v * W[q]!;
    }
    return softmaxInto(z, z) as Float64Array;
  };
  const heldOutLoss = (): number => {
    let s = 0;
    task.test.forEach((i, a) => (s += rowLogLoss(heldOutProbs(i, a)[y[i]!]!)));
    return s / task.test.length;
  };
  const early = task.test.length > 0;
  let best = { loss: Infinity, epoch: 0, W: null as Float64Array | null, b: null as Float64Array | null };
  const curve: SupportEpoch[] = [];
  const order = Int32Array.from(task.train);
  const rand = mulberry32(task.seed);
  for (let epoch = 1; epoch <= task.epochs; epoch++) {
    const te = performance.now();
    shuffleInPlace(order, rand);
    let trainLoss = 0;
    for (const i of order) {
      // The row's cross-entropy, and p its gradient with respect to the logits (softmax − one-hot), as the full heads' loss computes them.
      const p = logitsOf(i);
      trainLoss += softmaxResidualInPlace(p, K, y[i]!, 1);
      for (let k = 0; k < K; k++) {
        const g = p[k]!;
        if (g < 1e-9 && g > -1e-9) continue;
        Gb[k]! += g * g;
        b[k]! -= (SUPPORT_STEP * g) / Math.sqrt(Gb[k]! + EPS);
      }
      for (let t = indptr[i]!; t < indptr[i + 1]!; t++) {
        const j = indices[t]!;
        const a = colptr[j]!;
        const e = colptr[j + 1]!;
        if (a === e) continue;
        const v = values[t]!;
        let ss = 0;
        for (let q = a; q < e; q++) {
          const g = p[classIndex[q]!]!;
          ss += g * g;
        }
        G[j]! += (v * v * ss) / (e - a);
        const step = (SUPPORT_STEP * v) / Math.sqrt(G[j]! + EPS);
        for (let q = a; q < e; q++) W[q]! -= step * p[classIndex[q]!]!;
      }
    }
    const e: SupportEpoch = { epoch, trainLoss: trainLoss / order.length, heldOutLoss: early ? heldOutLoss() : NaN, seconds: (performance.now() - te) / 1000 };
    curve.push(e);
    onEpoch?.(e);
    if (!early) continue;
    if (e.heldOutLoss < best.loss * (1 - MIN_IMPROVEMENT)) best = { loss: e.heldOutLoss, epoch, W: W.slice(), b: b.slice() };
    else if (epoch - best.epoch >= PATIENCE) break;
  }
  const final = early ? best : { epoch: task.epochs, W, b };
  return { colptr, classIndex, values: Float32Array.from(final.W!), intercept: Float64Array.from(final.b!), epochs: final.epoch, curve, seconds: (performance.now() - t0) / 1000 };
}

/** The epochs a final fit runs: the mean over the splits of each one's best (at least 1). */
export function chosenEpochs(fits: readonly Pick<SupportFit, 'epochs'>[]): number {
  return Math.max(1, Math.round(fits.reduce((s, f) => s + f.epochs, 0) / fits.length));
}

/**
 * A support fit as a bundle stores it: entries within `tolerance` of zero dropped, kept ones rounded to multiples
 * of 2·tolerance (16-bit in the file when every multiple fits, as buildLinearHead does). No shift: a support
 * column's absent classes are zeros, so zero is the value pruning measures from.
 */
export function supportLinearHead(
  fit: Pick<SupportFit, 'colptr' | 'classIndex' | 'values' | 'intercept'>,
  classes: string[],
  tolerance: number,
): { head: LinearHead; keptEntries: number; valueBits: 16 | 32 } {
  const dim = fit.colptr.length - 1;
  const K = classes.length;
  const kept = (v: number) => Math.abs(v) > tolerance;
  const colptr = new Uint32Array(dim + 1);
  let nnz = 0;
  let largest = 0;
  for (let j = 0; j < dim; j++) {
    for (let q = fit.colptr[j]!; q < fit.colptr[j + 1]!; q++) {
      const v = fit.values[q]!;
      if (!kept(v)) continue;
      nnz++;
      largest = Math.max(largest, Math.abs(v));
    }
    colptr[j + 1] = nnz;
  }
  const step = 2 * tolerance;
  const quantised = tolerance > 0 && Math.round(largest / step) <= QUANTISED_MAX;
  const classIndex = classIndexArray(K, nnz);
  const values = new Float32Array(nnz);
  for (let j = 0, p = 0; j < dim; j++) {
    for (let q = fit.colptr[j]!; q < fit.colptr[j + 1]!; q++) {
      const v = fit.values[q]!;
      if (!kept(v)) continue;
      classIndex[p] = fit.classIndex[q]!;
      values[p++] = quantised ? Math.round(v / step) * step : v;
    }
  }
  return {
    head: { classes: [...classes], intercept: Float64Array.from(fit.intercept), dense: null, sparse: { width: dim, colptr, classIndex, values } },
    keptEntries: nnz,
    valueBits: quantised ? 16 : 32,
  };
}
