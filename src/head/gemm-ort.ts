// The blocked Cholesky's trailing update, A − P·Pᵀ, in ONNX Runtime's float64 GEMM: at a taxonomy's 12k rows
// the update is 99% of the factorization's arithmetic, which JS loops would take minutes over.
import ort from 'onnxruntime-node';
import { attr, GraphBuilder } from '../models/onnx-graph.js';
import type { TrailingUpdate } from './rowspace.js';

/** A session computing Gemm(P, Pᵀ, A; alpha −1, beta 1) for any m and b; release it with dispose(). */
export async function ortTrailingUpdate(threads = 1): Promise<{ update: TrailingUpdate; dispose(): Promise<void> }> {
  const g = new GraphBuilder('cholesky_trailing_update');
  g.input('A', 'double', ['m', 'm']);
  g.input('P', 'double', ['m', 'b']);
  g.node('Gemm', ['P', 'P', 'A'], ['out'], { alpha: attr.float(-1), beta: attr.float(1), transB: 1 });
  g.output('out', 'double', ['m', 'm']);
  const session = await ort.InferenceSession.create(g.toBytes({ opset: 17 }), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  return {
    update: async (A, P, m, b, out) => {
      await session.run({ A: new ort.Tensor('float64', A, [m, m]), P: new ort.Tensor('float64', P, [m, b]) }, { out: new ort.Tensor('float64', out, [m, m]) });
      return out;
    },
    dispose: () => session.release(),
  };
}
