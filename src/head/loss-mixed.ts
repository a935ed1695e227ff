// The loss/gradient kernel for long dense rows (a TF-IDF block in row space: thousands of basis coordinates a
// row), where float32 products leave the objective too noisy for the line search near the optimum and float64
// products cost twice as much. Logits are kept as Z(x) = Z(x_b) + X·(x − x_b): the base Z(x_b) in float64 (dgemm,
// refreshed every few evaluations), the difference in float32 (sgemm). Its rounding is float32's relative error
// of the difference, which shrinks with the steps, so near the optimum the objective is as good as float64's.
// Softmax, cross-entropy and the sums are float64 JS; the gradient Xᵀ·R is an sgemm (its rounding is far below
// the gtol the fits stop at).
import ort from 'onnxruntime-node';
import { gemmSession } from './gemm-ort.js';
import { designWidth, type DesignMatrix } from './design-matrix.js';
import { guardedKernel, softmaxResidualInPlace, type LossKernel } from './loss.js';

/** Evaluations between float64 refreshes of the base logits (a refresh costs about two float32 products). */
export const MIXED_REFRESH_EVALUATIONS = 8;

/** The mixed-precision kernel over a dense-only design (rows × width, float32 as stored). */
export async function createMixedLossKernel(X: DesignMatrix, y: Int32Array, K: number, weight: Float64Array, l2: number, opts: { threads?: number } = {}): Promise<LossKernel> {
  if (X.sparse || X.dd !== designWidth(X)) throw new RangeError('createMixedLossKernel: dense designs only');
  const { n, dd } = X;
  const threads = opts.threads ?? 1;
  const X32 = X.dense instanceof Float32Array ? X.dense : Float32Array.from(X.dense!);
  let X64: Float64Array | null = null; // widened at the first refresh
  const [forward32, backward32, forward64] = await Promise.all([gemmSession('float', false, true, threads), gemmSession('float', true, false, threads), gemmSession('double', false, true, threads)]);
  const base = new Float64Array(K * dd);
  const Zbase = new Float64Array(n * K);
  const D32 = new Float32Array(K * dd);
  const R32 = new Float32Array(n * K);
  let evaluations = 0;

  async function refresh(params: Float64Array): Promise<void> {
    X64 ??= Float64Array.from(X32);
    base.set(params.subarray(0, K * dd));
    await forward64.run({ A: new ort.Tensor('float64', X64, [n, dd]), B: new ort.Tensor('float64', base, [K, dd]) }, { Y: new ort.Tensor('float64', Zbase, [n, K]) });
  }

  async function evaluateOnce(params: Float64Array, grad: Float64Array): Promise<number> {
    if (evaluations++ % MIXED_REFRESH_EVALUATIONS === 0) await refresh(params);
    for (let t = 0; t < K * dd; t++) D32[t] = params[t]! - base[t]!;
    const Zd = (await forward32.run({ A: new ort.Tensor('float32', X32, [n, dd]), B: new ort.Tensor('float32', D32, [K, dd]) })).Y!.data as Float32Array;
    const { loss, gb } = softmaxResiduals(Zbase, Zd, params, K * dd, y, weight, n, K, R32);
    const G = (await backward32.run({ A: new ort.Tensor('float32', R32, [n, K]), B: new ort.Tensor('float32', X32, [n, dd]) })).Y!.data as Float32Array;
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
