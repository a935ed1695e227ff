// The multinomial objective's loss/gradient kernels: the problem they read, the float64 JS kernel, and the
// interface an ONNX Runtime kernel (loss-ort.ts) also implements, so logistic.ts can pick either.
import { designWidth, type CsrBlock, type DesignMatrix } from './design-matrix.js';

/** Everything the loss kernel reads besides the parameters. */
export interface LossProblem {
  /** n×dd row-major dense features (already standardised); dd = d when there is no sparse block. */
  X: Float64Array;
  n: number;
  /** Total feature count: dd + sparse.dim. */
  d: number;
  /** Dense width. Default d (no sparse block). */
  dd?: number;
  /** Columns dd .. d-1 as CSR rows, or none. */
  sparse?: CsrBlock | null;
  /** Class index per row, in [0, nClasses). */
  y: Int32Array;
  nClasses: number;
  /** Effective per-row weight (class weight × sample weight). */
  weight: Float64Array;
  /** Penalty strength 1/C on W (not on the intercepts). */
  l2: number;
}

/**
 * Objective and gradient at `params` = [W (K×d) | b (K)]; writes the gradient into `grad`, returns the loss.
 * One pass over the rows: logits = W·x_i + b, in-place softmax with log-sum-exp, then grad_k += r_k·x_i for
 * r = w_i(p - onehot). Classes go four at a time so each x_ij load feeds four products (about 2x faster in
 * V8 than one class at a time); each class still sums over j in order, so results match the plain loops.
 * A sparse block adds its stored entries after the dense sums (strided over W: meant for small problems).
 */
export function multinomialLossGrad(params: Float64Array, grad: Float64Array, p: LossProblem, scratch?: Float64Array): number {
  const { X, n, d, y, nClasses: K, weight, l2 } = p;
  const sp = p.sparse ?? null;
  const dd = p.dd ?? d;
  const bOff = K * d;
  const z = scratch ?? new Float64Array(K);
  const K4 = K - (K % 4);
  grad.fill(0);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const xo = i * dd;
    let k = 0;
    for (; k < K4; k += 4) {
      const w0 = k * d;
      const w1 = w0 + d;
      const w2 = w1 + d;
      const w3 = w2 + d;
      let s0 = params[bOff + k]!;
      let s1 = params[bOff + k + 1]!;
      let s2 = params[bOff + k + 2]!;
      let s3 = params[bOff + k + 3]!;
      for (let j = 0; j < dd; j++) {
        const x = X[xo + j]!;
        s0 += params[w0 + j]! * x;
        s1 += params[w1 + j]! * x;
        s2 += params[w2 + j]! * x;
        s3 += params[w3 + j]! * x;
      }
      z[k] = s0;
      z[k + 1] = s1;
      z[k + 2] = s2;
      z[k + 3] = s3;
    }
    for (; k < K; k++) {
      const wo = k * d;
      let s = params[bOff + k]!;
      for (let j = 0; j < dd; j++) s += params[wo + j]! * X[xo + j]!;
      z[k] = s;
    }
    if (sp) {
      for (let t = sp.indptr[i]!, end = sp.indptr[i + 1]!; t < end; t++) {
        const c = dd + sp.indices[t]!;
        const v = sp.values[t]!;
        for (k = 0; k < K; k++) z[k] += params[k * d + c]! * v;
      }
    }

    const wi = weight[i]!;
    loss += softmaxResidualInPlace(z, K, y[i]!, wi);
    if (wi === 0) continue;
    for (k = 0; k < K; k++) grad[bOff + k] += z[k]!;

    for (k = 0; k < K4; k += 4) {
      const g0 = k * d;
      const g1 = g0 + d;
      const g2 = g1 + d;
      const g3 = g2 + d;
      const r0 = z[k]!;
      const r1 = z[k + 1]!;
      const r2 = z[k + 2]!;
      const r3 = z[k + 3]!;
      for (let j = 0; j < dd; j++) {
        const x = X[xo + j]!;
        grad[g0 + j] += r0 * x;
        grad[g1 + j] += r1 * x;
        grad[g2 + j] += r2 * x;
        grad[g3 + j] += r3 * x;
      }
    }
    for (; k < K; k++) {
      const r = z[k]!;
      const go = k * d;
      for (let j = 0; j < dd; j++) grad[go + j] += r * X[xo + j]!;
    }
    if (sp) {
      for (let t = sp.indptr[i]!, end = sp.indptr[i + 1]!; t < end; t++) {
        const c = dd + sp.indices[t]!;
        const v = sp.values[t]!;
        for (k = 0; k < K; k++) grad[k * d + c] += z[k]! * v;
      }
    }
  }
  let sq = 0;
  for (let j = 0; j < bOff; j++) {
    const w = params[j]!;
    sq += w * w;
    grad[j] += l2 * w;
  }
  return loss + 0.5 * l2 * sq;
}

/**
 * One row's logits z (K values) → its weighted cross-entropy w·(log Σ exp z − z_y), returned, with z overwritten by
 * the residuals w·(p − onehot(y)). Log-sum-exp from the largest logit, so nothing overflows.
 */
export function softmaxResidualInPlace(z: Float64Array, K: number, yi: number, wi: number): number {
  let zmax = -Infinity;
  for (let k = 0; k < K; k++) if (z[k]! > zmax) zmax = z[k]!;
  const zy = z[yi]!;
  let sum = 0;
  for (let k = 0; k < K; k++) {
    const e = Math.exp(z[k]! - zmax);
    z[k] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let k = 0; k < K; k++) z[k] = wi * (z[k]! * inv - (k === yi ? 1 : 0));
  return wi * (zmax + Math.log(sum) - zy);
}

/** Loss/gradient over a fixed problem; `evaluate` writes ∇ into grad and resolves to the objective. */
export interface LossKernel {
  readonly name: 'js' | 'onnxruntime';
  evaluate(params: Float64Array, grad: Float64Array): Promise<number>;
  /** Releases native resources (ONNX Runtime sessions); the kernel is unusable afterwards. */
  dispose(): Promise<void>;
}

/**
 * A native kernel around its one evaluation: scratch buffers shared by every call make an overlapping call corrupt
 * both, and released sessions cannot run, so both are refused with an error instead.
 */
export function guardedKernel(evaluate: (params: Float64Array, grad: Float64Array) => Promise<number>, release: () => Promise<void>): LossKernel {
  let disposed = false;
  let busy = false;
  return {
    name: 'onnxruntime',
    async evaluate(params, grad) {
      if (disposed) throw new Error('loss kernel used after dispose()');
      if (busy) throw new Error('loss kernel: evaluate() called again before the previous call finished');
      busy = true;
      try {
        return await evaluate(params, grad);
      } finally {
        busy = false;
      }
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await release();
    },
  };
}

/**
 * Multiply-adds per pass, (n·dd + nnz)·K, from which 'auto' picks ONNX Runtime: about 1/20 s of JS float64
 * loops, where session set-up and float32 rounding stop mattering next to the time saved.
 */
export const AUTO_ORT_MIN_WORK = 2 ** 24;

/** The float64 JS kernel over a design matrix (a float32 dense block is widened once, here). */
export function createJsLossKernel(X: DesignMatrix, y: Int32Array, nClasses: number, weight: Float64Array, l2: number): LossKernel {
  const dense = X.dense === null ? new Float64Array(0) : X.dense instanceof Float64Array ? X.dense : Float64Array.from(X.dense);
  const problem: LossProblem = { X: dense, n: X.n, d: designWidth(X), dd: X.dd, sparse: X.sparse, y, nClasses, weight, l2 };
  const scratch = new Float64Array(nClasses);
  return {
    name: 'js',
    evaluate: (params, grad) => Promise.resolve(multinomialLossGrad(params, grad, problem, scratch)),
    dispose: () => Promise.resolve(),
  };
}
