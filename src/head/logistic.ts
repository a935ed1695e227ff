// Multinomial logistic regression with scikit-learn's lbfgs objective, sum_i w_i·CE_i + ||W||²/(2C) over a full
// K×d softmax with unpenalised intercepts; the loss/gradient kernel is separate so a faster one can replace it.
import os from 'node:os';
import { UsageError } from '../errors.js';
import { maxAbs, minimize, minimizeAsync, SCIPY_DEFAULT_FTOL, type LbfgsOptions, type LbfgsResult } from './lbfgs.js';
import { softmaxInto } from './scoring.js';
import { checkDesignMatrix, designNnz, designWidth, type DesignMatrix } from './design-matrix.js';
import { AUTO_ORT_MIN_WORK, createJsLossKernel, multinomialLossGrad, type LossKernel, type LossProblem } from './loss.js';

export interface LogisticOptions {
  /** Inverse regularisation strength, as sklearn's C. Default 1. */
  C?: number;
  /** L-BFGS iterations. Default 1000. */
  maxIter?: number;
  /** Stop when max |gradient| <= tol (sklearn passes tol as scipy's gtol). Default 1e-6. */
  tol?: number;
  /** 'balanced' multiplies each row's weight by n / (K · count(class)), like sklearn. */
  classWeight?: 'balanced' | null;
  /** Per-row weights (length n), multiplied with the class weights. */
  sampleWeight?: Float64Array;
  /**
   * Also stop when an iteration lowers the objective by <= ftol relative (scipy's factr test). Default
   * 64·eps as scikit-learn >= 1.3 passes; 0 leaves only tol, maxIter and line-search failure.
   */
  ftol?: number;
  /** Evaluations allowed per line search. Default 50 as scikit-learn >= 1.3 passes (1.2 leaves scipy's 20). */
  maxLineSearch?: number;
  /** Progress hook: iteration (1-based) and objective after it. */
  onIteration?: (iter: number, loss: number) => void;
  /** What the gtol test reads as max |gradient| (see LbfgsOptions.gradMaxAbs); default the gradient's own. */
  gradMaxAbs?: (g: Float64Array, own: number) => number;
}

/** Which loss/gradient kernel fitLogisticRegressionAsync uses. */
export type LossKernelChoice = 'auto' | 'js' | 'onnxruntime';

export interface AsyncLogisticOptions extends LogisticOptions {
  /** Start from this solution (e.g. the fit at a neighbouring C) instead of zeros: same optimum, fewer iterations. */
  init?: { coef: Float64Array; intercept: Float64Array };
  /**
   * 'js': the float64 loops of multinomialLossGrad. 'onnxruntime': float32 matrix products in ONNX Runtime
   * (MLAS, `threads` intra-op threads) with float64 reductions across rows. 'auto' (default): onnxruntime
   * once a pass costs more than AUTO_ORT_MIN_WORK multiply-adds, JS below that. The onnxruntime kernel's
   * objective is good to ~1e-8 relative (gradient ~1e-6), so with it `ftol` defaults to scipy's 2.2e-9.
   */
  kernel?: LossKernelChoice;
  /** ONNX Runtime intra-op threads. Default: os.availableParallelism(). */
  threads?: number;
  /** Rows per ONNX Runtime call. Default: about 32 MB of float32 dense rows, at least 256. */
  chunkRows?: number;
  /**
   * The onnxruntime kernel's arithmetic (see OrtKernelOptions.precision). Default float32. 'mixed' (dense designs
   * only): float64 logits kept as a float64 base plus float32 differences, loss-mixed.ts.
   */
  precision?: 'float32' | 'float64' | 'mixed';
  /**
   * The solver moves each intercept as this many times a unit of its own variable (b = s·t): the same objective and
   * optimum in other coordinates, so only the iterates and their count change. Default 1 (scikit-learn's).
   * interceptScale() gives the one that puts the intercepts' curvature beside the design's largest.
   */
  interceptScale?: number;
}

export interface LogisticModel {
  nClasses: number;
  nFeatures: number;
  /** nClasses×nFeatures, row-major. */
  coef: Float64Array;
  intercept: Float64Array;
}

export interface LogisticFit extends LogisticModel {
  converged: boolean;
  iterations: number;
  /** Objective evaluations, line searches included. */
  evaluations: number;
  /** Final objective value (weighted cross-entropy sum + penalty). */
  loss: number;
  /** Max |gradient| at the returned parameters. */
  gradMaxAbs: number;
  message: string;
}

export interface LogisticFitAsync extends LogisticFit {
  kernel: 'js' | 'onnxruntime';
}


/** sklearn's compute_class_weight('balanced'): n / (K · bincount(y)). */
export function balancedClassWeights(y: Int32Array, nClasses: number): Float64Array {
  const count = new Float64Array(nClasses);
  for (let i = 0; i < y.length; i++) count[y[i]!]++;
  const out = new Float64Array(nClasses);
  for (let k = 0; k < nClasses; k++) out[k] = y.length / (nClasses * count[k]!);
  return out;
}

/** Validated inputs shared by the sync and async fits. */
interface PreparedFit {
  n: number;
  K: number;
  /** Effective per-row weight (class weight × sample weight). */
  weight: Float64Array;
  l2: number;
  lbfgs: LbfgsOptions;
}

function prepareFit(what: string, n: number, d: number, y: Int32Array, nClasses: number, opts: LogisticOptions): PreparedFit {
  const C = opts.C ?? 1;
  const maxIter = opts.maxIter ?? 1000;
  const tol = opts.tol ?? 1e-6;
  if (!Number.isInteger(nClasses) || nClasses < 2) throw new UsageError(`logistic regression needs at least 2 classes, got ${nClasses}`, 'too_few_classes');
  if (n === 0) throw new UsageError('logistic regression: no training rows', 'no_training_rows');
  if (!(C > 0) || !Number.isFinite(C)) throw new RangeError(`${what}: C must be a positive number, got ${C}`);
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new RangeError(`${what}: maxIter must be a non-negative integer, got ${maxIter}`);
  if (!(tol >= 0)) throw new RangeError(`${what}: tol must be >= 0, got ${tol}`);
  if (!(d >= 1)) throw new RangeError(`${what}: no features`);

  const count = new Int32Array(nClasses);
  for (let i = 0; i < n; i++) {
    const k = y[i]!;
    if (!(k >= 0 && k < nClasses)) throw new RangeError(`${what}: y[${i}] = ${k} is outside [0, ${nClasses})`);
    count[k]++;
  }
  // An absent class would drive its free intercept to -infinity and the solver would never converge.
  const missing = [...count.keys()].filter((k) => count[k] === 0);
  if (missing.length > 0) {
    throw new UsageError(`logistic regression: class index ${missing.join(', ')} has no training rows`, 'empty_class');
  }

  const weight = new Float64Array(n).fill(1);
  if (opts.sampleWeight) {
    const sw = opts.sampleWeight;
    if (sw.length !== n) throw new RangeError(`${what}: sampleWeight has ${sw.length} values for ${n} rows`);
    for (let i = 0; i < n; i++) {
      if (!(sw[i]! >= 0) || !Number.isFinite(sw[i]!)) throw new RangeError(`${what}: sampleWeight[${i}] = ${sw[i]} is not a finite weight >= 0`);
      weight[i] = sw[i]!;
    }
  }
  if (opts.classWeight === 'balanced') {
    const cw = balancedClassWeights(y, nClasses);
    for (let i = 0; i < n; i++) weight[i] *= cw[y[i]!]!;
  }
  return {
    n,
    K: nClasses,
    weight,
    l2: 1 / C,
    lbfgs: {
      maxIter,
      gtol: tol,
      // scikit-learn >= 1.3 settings (1.2 keeps scipy's looser ftol=2.2e-9 and maxls=20).
      ftol: opts.ftol ?? 64 * Number.EPSILON,
      maxLineSearch: opts.maxLineSearch ?? 50,
      onIteration: opts.onIteration ? (iter, f) => opts.onIteration!(iter, f) : undefined,
      gradMaxAbs: opts.gradMaxAbs,
    },
  };
}

function toFit(res: LbfgsResult, K: number, d: number): LogisticFit {
  return {
    nClasses: K,
    nFeatures: d,
    coef: res.x.slice(0, K * d),
    intercept: res.x.slice(K * d),
    converged: res.converged,
    iterations: res.iterations,
    evaluations: res.evaluations,
    loss: res.f,
    gradMaxAbs: res.gradMaxAbs,
    message: res.message,
  };
}

/**
 * Fits on standardised X (n×d, n = y.length). Starts from zeros like sklearn; because every gradient's
 * intercept part sums to zero, the intercepts keep summing to zero, which pins the one direction the
 * unpenalised intercepts leave free.
 */
export function fitLogisticRegression(X: Float64Array, y: Int32Array, nClasses: number, opts: LogisticOptions = {}): LogisticFit {
  const n = y.length;
  if (n > 0 && (X.length % n !== 0 || X.length === 0)) {
    throw new RangeError(`fitLogisticRegression: X has ${X.length} values, not a multiple of n = ${n} rows`);
  }
  const d = n > 0 ? X.length / n : 0;
  const f = prepareFit('fitLogisticRegression', n, d, y, nClasses, opts);
  const problem: LossProblem = { X, n, d, y, nClasses, weight: f.weight, l2: f.l2 };
  const scratch = new Float64Array(nClasses);
  const res = minimize((w, g) => multinomialLossGrad(w, g, problem, scratch), new Float64Array(f.K * d + f.K), f.lbfgs);
  return toFit(res, f.K, d);
}

/**
 * fitLogisticRegression over a DesignMatrix (dense block, CSR block or both) with an async kernel, so ONNX
 * Runtime can do the matrix products. Same objective, options and L-BFGS iterates as the sync fit; with
 * kernel 'js' and a float64 dense-only X it is the sync fit, bit for bit.
 */
export async function fitLogisticRegressionAsync(
  X: DesignMatrix,
  y: Int32Array,
  nClasses: number,
  opts: AsyncLogisticOptions = {},
): Promise<LogisticFitAsync> {
  const what = 'fitLogisticRegressionAsync';
  if (X.n !== y.length) throw new RangeError(`${what}: X has ${X.n} rows, y has ${y.length} labels`);
  const n = y.length;
  if (n > 0) checkDesignMatrix(X, what);
  const d = n > 0 ? designWidth(X) : 0;
  const f = prepareFit(what, n, d, y, nClasses, opts);
  const choice = opts.kernel ?? 'auto';
  if (choice !== 'auto' && choice !== 'js' && choice !== 'onnxruntime') throw new RangeError(`${what}: unknown kernel '${String(choice)}'`);
  const useOrt = choice === 'onnxruntime' || (choice === 'auto' && (n * X.dd + designNnz(X)) * f.K >= AUTO_ORT_MIN_WORK);
  let kernel: LossKernel;
  if (useOrt && opts.precision === 'mixed' && !X.sparse) {
    const { createMixedLossKernel } = await import('./loss-mixed.js');
    kernel = await createMixedLossKernel(X, y, f.K, f.weight, f.l2, { threads: opts.threads ?? os.availableParallelism() });
    if (opts.ftol === undefined) f.lbfgs.ftol = SCIPY_DEFAULT_FTOL;
  } else if (useOrt) {
    // Loaded on demand: the sync fit and small problems never load the native binding.
    const { createOrtLossKernel } = await import('./loss-ort.js');
    kernel = await createOrtLossKernel(X, y, f.K, f.weight, f.l2, {
      threads: opts.threads ?? os.availableParallelism(),
      chunkRows: opts.chunkRows,
      precision: opts.precision === 'mixed' ? 'float64' : opts.precision,
    });
    // A float32 objective carries ~1e-9 relative rounding noise: below that, decreases are invisible and
    // each line search would spend its whole budget before giving up. scipy's own default sits at that floor.
    if (opts.ftol === undefined) f.lbfgs.ftol = SCIPY_DEFAULT_FTOL;
  } else {
    kernel = createJsLossKernel(X, y, f.K, f.weight, f.l2);
  }
  try {
    const x0 = new Float64Array(f.K * d + f.K);
    if (opts.init) {
      if (opts.init.coef.length !== f.K * d || opts.init.intercept.length !== f.K) throw new RangeError(`${what}: init has the wrong shape for ${f.K} classes × ${d} features`);
      x0.set(opts.init.coef);
      x0.set(opts.init.intercept, f.K * d);
    }
    const s = opts.interceptScale ?? 1;
    if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`${what}: interceptScale must be a positive number, got ${s}`);
    if (s === 1) {
      const res = await minimizeAsync((w, g) => kernel.evaluate(w, g), x0, f.lbfgs);
      return { ...toFit(res, f.K, d), kernel: kernel.name };
    }
    // The solver's variables are [W, b / s]: the kernel sees [W, b], its intercept gradient is scaled back by s, and
    // the gtol test reads the gradient in the original coordinates, as an unscaled fit's would.
    const at = f.K * d;
    const original = (x: Float64Array, out: Float64Array) => {
      out.set(x);
      for (let k = at; k < x.length; k++) out[k] = x[k]! * s;
      return out;
    };
    const point = new Float64Array(x0.length);
    for (let k = at; k < x0.length; k++) x0[k] = x0[k]! / s;
    const own = f.lbfgs.gradMaxAbs;
    const grad = new Float64Array(x0.length);
    const lbfgs: LbfgsOptions = {
      ...f.lbfgs,
      gradMaxAbs: (g) => {
        grad.set(g);
        for (let k = at; k < g.length; k++) grad[k] = g[k]! / s;
        const m = maxAbs(grad);
        return own ? own(grad, m) : m;
      },
    };
    const res = await minimizeAsync(async (x, g) => {
      const v = await kernel.evaluate(original(x, point), g);
      for (let k = at; k < g.length; k++) g[k] = g[k]! * s;
      return v;
    }, x0, lbfgs);
    const gradMaxAbs = lbfgs.gradMaxAbs!(res.grad, 0);
    return { ...toFit({ ...res, x: original(res.x, new Float64Array(res.x.length)), gradMaxAbs }, f.K, d), kernel: kernel.name };
  } finally {
    await kernel.dispose();
  }
}

function checkModel(X: ArrayLike<number>, n: number, d: number, model: LogisticModel, what: string): void {
  if (d !== model.nFeatures) throw new RangeError(`${what}: data has d=${d} features, model expects ${model.nFeatures}`);
  if (X.length !== n * d) throw new RangeError(`${what}: X has ${X.length} values, expected n*d = ${n * d}`);
  if (model.coef.length !== model.nClasses * d || model.intercept.length !== model.nClasses) {
    throw new RangeError(`${what}: model has ${model.coef.length} coefficients and ${model.intercept.length} intercepts for ${model.nClasses} classes × ${d} features`);
  }
}

/** Raw scores X·Wᵀ + b (n×K row-major). */
export function decisionFunction(X: Float64Array | Float32Array, n: number, d: number, model: LogisticModel): Float64Array {
  checkModel(X, n, d, model, 'decisionFunction');
  const K = model.nClasses;
  const { coef, intercept } = model;
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    const oo = i * K;
    for (let k = 0; k < K; k++) {
      const wo = k * d;
      let s = intercept[k]!;
      for (let j = 0; j < d; j++) s += coef[wo + j]! * X[xo + j]!;
      out[oo + k] = s;
    }
  }
  return out;
}

/** Softmax of the scores: n×K row-major probabilities, like sklearn's multinomial predict_proba. */
export function predictProba(X: Float64Array | Float32Array, n: number, d: number, model: LogisticModel): Float64Array {
  return softmaxRowsInPlace(decisionFunction(X, n, d, model), n, model.nClasses);
}

/** Raw scores of a design matrix ([dense | CSR] blocks, dense already standardised): n×K row-major. */
export function decisionFunctionDesign(X: DesignMatrix, model: LogisticModel): Float64Array {
  const { n, dd, dense, sparse } = X;
  const d = designWidth(X);
  if (d !== model.nFeatures) throw new RangeError(`decisionFunctionDesign: data has d=${d} features, model expects ${model.nFeatures}`);
  const K = model.nClasses;
  const { coef, intercept } = model;
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < K; k++) {
      const wo = k * d;
      let s = intercept[k]!;
      if (dense) for (let j = 0, xo = i * dd; j < dd; j++) s += coef[wo + j]! * dense[xo + j]!;
      if (sparse) for (let p = sparse.indptr[i]!; p < sparse.indptr[i + 1]!; p++) s += coef[wo + dd + sparse.indices[p]!]! * sparse.values[p]!;
      out[i * K + k] = s;
    }
  }
  return out;
}

/** Row-wise softmax of n×K scores, in place (max-shifted). */
export function softmaxRowsInPlace(P: Float64Array, n: number, K: number): Float64Array {
  for (let i = 0; i < n; i++) {
    const row = P.subarray(i * K, (i + 1) * K);
    softmaxInto(row, row);
  }
  return P;
}

/** Arg-max class per row of an n×K matrix; the first maximum wins, as numpy's argmax. */
export function argmaxRows(P: Float64Array, n: number, K: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let best = 0;
    for (let k = 1; k < K; k++) if (P[o + k]! > P[o + best]!) best = k;
    out[i] = best;
  }
  return out;
}

/** Predicted class indices (arg-max of the scores, as sklearn's predict). */
export function predict(X: Float64Array | Float32Array, n: number, d: number, model: LogisticModel): Int32Array {
  return argmaxRows(decisionFunction(X, n, d, model), n, model.nClasses);
}
