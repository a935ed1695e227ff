// The multinomial loss/gradient kernel for large problems: ONNX Runtime (MLAS sgemm on intra-op threads) does
// the dense products and the softmax per row chunk; JS does the CSR products; sums across rows are float64.
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx-graph.js';
import { designWidth, type DesignMatrix } from './design-matrix.js';
import type { LossKernel } from './logistic.js';

export interface OrtKernelOptions {
  /** Intra-op threads (MLAS splits each product across them). Default 1. */
  threads?: number;
  /** Rows per session call. Default: about 32 MB of float32 dense rows, within [256, 65536]. */
  chunkRows?: number;
}

/**
 * One chunk of rows → per-row cross-entropy, the intercept gradient and, with a dense block, the dense
 * gradient; with a sparse block the chunk's sparse logits come in as `zs` and R = w·(P - Y) goes out so JS
 * can form the sparse gradient. LogSoftmax gives both -log p_y (no cancellation: a sum of non-negative
 * terms) and P = exp(LS); the one-hot comes from the labels, so no n×K matrix is stored.
 */
export function buildLossGradGraph(dd: number, K: number, hasSparse: boolean): Uint8Array {
  const g = new GraphBuilder('multinomial_loss_grad');
  g.input('labels', 'int64', ['m']);
  g.input('w', 'float', ['m', 1]);
  g.input('b', 'float', [K]);
  const hasDense = dd > 0;
  if (hasDense) {
    g.input('X', 'float', ['m', dd]);
    g.input('W', 'float', [K, dd]);
  }
  if (hasSparse) g.input('zs', 'float', ['m', K]);
  if (!hasDense && !hasSparse) throw new RangeError('buildLossGradGraph: no features');

  let Z: string;
  if (hasDense) {
    Z = g.op('Gemm', ['X', 'W', 'b'], { transB: 1 });
    if (hasSparse) Z = g.op('Add', [Z, 'zs']);
  } else {
    Z = g.op('Add', ['zs', 'b']);
  }
  const LS = g.op('LogSoftmax', [Z], { axis: 1 });
  const depth = g.constant(BigInt64Array.of(BigInt(K)), [1], 'depth');
  const onOff = g.constant(Float32Array.of(0, 1), [2], 'onehot_values');
  const Y = g.op('OneHot', ['labels', depth, onOff], { axis: -1 });
  const axis1 = g.constant(BigInt64Array.of(1n), [1], 'axis1');
  const axis0 = g.constant(BigInt64Array.of(0n), [1], 'axis0');
  const logPy = g.op('ReduceSum', [g.op('Mul', [Y, LS]), axis1], { keepdims: 0 });
  g.node('Neg', [logPy], ['nll']);
  const R = g.node('Mul', [g.op('Sub', [g.op('Exp', [LS]), Y]), 'w'], [hasSparse ? 'R' : 'r'])[0]!;
  g.node('ReduceSum', [R, axis0], ['gb'], { keepdims: 0 });
  g.output('nll', 'float', ['m']);
  g.output('gb', 'float', [K]);
  if (hasDense) {
    g.node('Gemm', [R, 'X'], ['G'], { transA: 1 });
    g.output('G', 'float', [K, dd]);
  }
  if (hasSparse) g.output('R', 'float', ['m', K]);
  return g.toBytes({ opset: 17 });
}

/** ~32 MB of float32 dense rows per call: big enough for MLAS to reach full speed, small enough to stay in cache. */
function defaultChunkRows(dd: number, K: number): number {
  return Math.max(256, Math.min(65536, Math.floor(2 ** 23 / Math.max(dd, K, 1))));
}

/**
 * The ONNX Runtime kernel over X. Copies made once, here: the dense block as float32 when it is float64, the
 * labels as int64 and the weights as float32 (for R; the loss itself is weighted in float64). Each
 * evaluation feeds subarray views of X, so X is never copied per call.
 */
export async function createOrtLossKernel(
  X: DesignMatrix,
  y: Int32Array,
  K: number,
  weight: Float64Array,
  l2: number,
  opts: OrtKernelOptions = {},
): Promise<LossKernel> {
  const { n, dd } = X;
  const d = designWidth(X);
  const sp = X.sparse && X.sparse.dim > 0 ? X.sparse : null;
  const dim = sp ? sp.dim : 0;
  const threads = opts.threads ?? 1;
  const chunk = opts.chunkRows ?? defaultChunkRows(dd, K);
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new RangeError(`createOrtLossKernel: chunkRows must be a positive integer, got ${chunk}`);
  if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`createOrtLossKernel: threads must be a positive integer, got ${threads}`);

  const dense = dd === 0 ? null : X.dense instanceof Float32Array ? X.dense : Float32Array.from(X.dense!);
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) labels[i] = BigInt(y[i]!);
  const w32 = Float32Array.from(weight);

  const session = await ort.InferenceSession.create(buildLossGradGraph(dd, K, sp !== null), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });

  const W32 = new Float32Array(K * dd);
  const b32 = new Float32Array(K);
  const G32 = new Float32Array(K * dd); // each chunk's dense gradient, written in place by ORT
  const G64 = new Float64Array(K * dd);
  const gb64 = new Float64Array(K);
  const rows = Math.min(chunk, n);
  // Sparse scratch: W's sparse columns transposed to dim×K so each stored value touches K contiguous numbers.
  const WsT = new Float64Array(dim * K);
  const GsT = new Float64Array(dim * K);
  const zs32 = sp ? new Float32Array(rows * K) : null;
  const R32 = sp ? new Float32Array(rows * K) : null;
  const zrow = new Float64Array(K);
  let disposed = false;

  async function evaluate(params: Float64Array, grad: Float64Array): Promise<number> {
    if (disposed) throw new Error('loss kernel used after dispose()');
    for (let k = 0; k < K; k++) {
      const o = k * d;
      for (let j = 0; j < dd; j++) W32[k * dd + j] = params[o + j]!;
      for (let c = 0; c < dim; c++) WsT[c * K + k] = params[o + dd + c]!;
      b32[k] = params[K * d + k]!;
    }
    G64.fill(0);
    gb64.fill(0);
    GsT.fill(0);
    let loss = 0;
    const Wt = dense ? new ort.Tensor('float32', W32, [K, dd]) : null;
    const bt = new ort.Tensor('float32', b32, [K]);
    for (let r0 = 0; r0 < n; r0 += chunk) {
      const m = Math.min(chunk, n - r0);
      const feeds: Record<string, ort.Tensor> = {
        labels: new ort.Tensor('int64', labels.subarray(r0, r0 + m), [m]),
        w: new ort.Tensor('float32', w32.subarray(r0, r0 + m), [m, 1]),
        b: bt,
      };
      const fetches: Record<string, ort.Tensor | null> = { nll: null, gb: null };
      if (dense) {
        feeds.X = new ort.Tensor('float32', dense.subarray(r0 * dd, (r0 + m) * dd), [m, dd]);
        feeds.W = Wt!;
        fetches.G = new ort.Tensor('float32', G32, [K, dd]);
      }
      if (sp) {
        const zs = zs32!;
        const { indptr, indices, values } = sp;
        for (let i = 0; i < m; i++) {
          zrow.fill(0);
          for (let t = indptr[r0 + i]!, end = indptr[r0 + i + 1]!; t < end; t++) {
            const v = values[t]!;
            const base = indices[t]! * K;
            for (let k = 0; k < K; k++) zrow[k] += v * WsT[base + k]!;
          }
          const o = i * K;
          for (let k = 0; k < K; k++) zs[o + k] = zrow[k]!;
        }
        feeds.zs = new ort.Tensor('float32', zs.subarray(0, m * K), [m, K]);
        fetches.R = new ort.Tensor('float32', R32!.subarray(0, m * K), [m, K]);
      }
      const out = await session.run(feeds, fetches);
      const nll = out.nll!.data as Float32Array;
      for (let i = 0; i < m; i++) loss += weight[r0 + i]! * nll[i]!;
      const gb = out.gb!.data as Float32Array;
      for (let k = 0; k < K; k++) gb64[k] += gb[k]!;
      if (dense) for (let t = 0; t < G64.length; t++) G64[t] += G32[t]!;
      if (sp) {
        const R = R32!;
        const { indptr, indices, values } = sp;
        for (let i = 0; i < m; i++) {
          const o = i * K;
          for (let t = indptr[r0 + i]!, end = indptr[r0 + i + 1]!; t < end; t++) {
            const v = values[t]!;
            const base = indices[t]! * K;
            for (let k = 0; k < K; k++) GsT[base + k] += v * R[o + k]!;
          }
        }
      }
    }
    let sq = 0;
    for (let k = 0; k < K; k++) {
      const o = k * d;
      for (let j = 0; j < dd; j++) {
        const v = params[o + j]!;
        sq += v * v;
        grad[o + j] = G64[k * dd + j]! + l2 * v;
      }
      for (let c = 0; c < dim; c++) {
        const v = params[o + dd + c]!;
        sq += v * v;
        grad[o + dd + c] = GsT[c * K + k]! + l2 * v;
      }
      grad[K * d + k] = gb64[k]!;
    }
    return loss + 0.5 * l2 * sq;
  }

  return {
    name: 'onnxruntime',
    evaluate,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
}
