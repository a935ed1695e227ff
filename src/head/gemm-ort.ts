// Matrix products in ONNX Runtime (MLAS) where JS loops would take minutes: the blocked Cholesky's trailing update
// A − P·Pᵀ in float64 (at a taxonomy's 12k rows, 99% of the factorization's arithmetic), the block updates of the
// back substitution that maps row-space weights to the columns, and plain products for the mixed-precision loss kernel.
import ort from 'onnxruntime-node';
import { attr, GraphBuilder } from '../models/onnx-graph.js';
import type { SubstitutionUpdate, TrailingUpdate } from './rowspace.js';

/** A session computing Gemm(P, Pᵀ, A; alpha −1, beta 1) for any m and b; release it with dispose(). */
export async function ortTrailingUpdate(threads = 1): Promise<{ update: TrailingUpdate; dispose(): Promise<void> }> {
  const g = new GraphBuilder('cholesky_trailing_update');
  g.input('A', 'double', ['m', 'm']);
  g.input('P', 'double', ['m', 'b']);
  g.node('Gemm', ['P', 'P', 'A'], ['out'], { alpha: attr.float(-1), beta: attr.float(1), transB: 1 });
  g.output('out', 'double', ['m', 'm']);
  const session = await ort.InferenceSession.create(g.toBytes({ opset: 17 }), gemmSessionOptions(threads));
  return {
    update: async (A, P, m, b, out) => {
      await session.run({ A: new ort.Tensor('float64', A, [m, m]), P: new ort.Tensor('float64', P, [m, b]) }, { out: new ort.Tensor('float64', out, [m, m]) });
      return out;
    },
    dispose: () => session.release(),
  };
}

/** One graph's session on `threads` intra-op threads that sleep between runs (the JS thread needs the core then). */
function gemmSessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', extra: { session: { intra_op: { allow_spinning: '0' } } } };
}

/** A session computing Y = op(A)·op(B) (A, B, Y of `type`; op transposes where asked), for any shapes. */
export async function gemmSession(type: 'float' | 'double', transA: boolean, transB: boolean, threads: number): Promise<ort.InferenceSession> {
  const g = new GraphBuilder('gemm');
  g.input('A', type, ['a0', 'a1']);
  g.input('B', type, ['b0', 'b1']);
  g.node('Gemm', ['A', 'B'], ['Y'], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 });
  g.output('Y', type, ['y0', 'y1']);
  return ort.InferenceSession.create(g.toBytes({ opset: 17 }), gemmSessionOptions(threads));
}

/**
 * The block update of weightsFromBasisAsync's substitution, M[0:s] −= slabᵀ·block, as Gemm(slab, block, M[0:s];
 * alpha −1, beta 1, transA) in float64; release it with dispose().
 */
export async function ortSubstitutionUpdate(threads = 1): Promise<{ update: SubstitutionUpdate; dispose(): Promise<void> }> {
  const g = new GraphBuilder('substitution_update');
  g.input('C', 'double', ['s', 'k']);
  g.input('A', 'double', ['b', 's']);
  g.input('B', 'double', ['b', 'k']);
  g.node('Gemm', ['A', 'B', 'C'], ['out'], { alpha: attr.float(-1), beta: attr.float(1), transA: 1 });
  g.output('out', 'double', ['s', 'k']);
  const session = await ort.InferenceSession.create(g.toBytes({ opset: 17 }), gemmSessionOptions(threads));
  let out = new Float64Array(0);
  return {
    update: async (M, slab, block, s, b, rows) => {
      if (out.length < s * rows) out = new Float64Array(s * rows);
      const head = M.subarray(0, s * rows);
      const y = out.subarray(0, s * rows);
      await session.run(
        { C: new ort.Tensor('float64', head, [s, rows]), A: new ort.Tensor('float64', slab, [b, s]), B: new ort.Tensor('float64', block, [b, rows]) },
        { out: new ort.Tensor('float64', y, [s, rows]) },
      );
      head.set(y);
    },
    dispose: () => session.release(),
  };
}
