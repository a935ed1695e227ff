// GraphBuilder writes models onnxruntime accepts; readModel/writeModel round-trip and allow edits such as
// exposing an intermediate value as an extra output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import {
  GraphBuilder, attr, initializerToFloat32, initializerToInts, makeAttribute, makeValueInfo, onnx, readModel,
  tensorDims, writeModel,
} from '../../src/models/onnx-graph.js';

function affine(): GraphBuilder {
  const g = new GraphBuilder('affine');
  const x = g.input('x', 'float', ['batch', 3]);
  const w = g.initializer('w', Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]);
  const b = g.initializer('b', Float32Array.from([0.5, -0.5]), [2]);
  const [mm] = g.node('MatMul', [x, w], ['mm']);
  g.node('Add', [mm!, b], ['y']);
  g.output('y', 'float', ['batch', 2]);
  return g;
}

test('a built graph runs in onnxruntime with a symbolic batch dimension', async () => {
  const session = await ort.InferenceSession.create(affine().toBytes());
  for (const batch of [1, 3]) {
    const x = Float32Array.from({ length: batch * 3 }, (_, i) => i);
    const out = await session.run({ x: new ort.Tensor('float32', x, [batch, 3]) });
    assert.deepEqual(out.y!.dims, [batch, 2]);
    const y = out.y!.data as Float32Array;
    for (let r = 0; r < batch; r++) {
      const [a, b, c] = [x[r * 3]!, x[r * 3 + 1]!, x[r * 3 + 2]!];
      assert.deepEqual([y[r * 2], y[r * 2 + 1]], [a * 1 + b * 3 + c * 5 + 0.5, a * 2 + b * 4 + c * 6 - 0.5]);
    }
  }
});

test('toBytes writes ir_version 8, the opset, producer and shapes; readModel decodes them', () => {
  const m = readModel(affine().toBytes({ opset: 17, producer: 'unit' }));
  assert.equal(Number(m.irVersion), 8);
  assert.equal(m.producerName, 'unit');
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17]]);
  const g = m.graph!;
  assert.deepEqual(g.input!.map((i) => i.name), ['x']);
  const dims = g.input![0]!.type!.tensorType!.shape!.dim!;
  assert.equal(dims[0]!.dimParam, 'batch');
  assert.equal(Number(dims[1]!.dimValue), 3);
  assert.deepEqual(g.node!.map((n) => n.opType), ['MatMul', 'Add']);
  const w = g.initializer!.find((t) => t.name === 'w')!;
  assert.deepEqual(tensorDims(w), [3, 2]);
  assert.deepEqual([...initializerToFloat32(w)], [1, 2, 3, 4, 5, 6]);
});

test('non-default domains get an opset import', () => {
  const g = new GraphBuilder();
  g.input('x', 'float', [2]);
  g.node('Identity', ['x'], ['y']);
  g.node('Gelu', ['y'], ['z'], {}, 'com.microsoft');
  g.output('z', 'float', [2]);
  const m = g.toModel({ domains: { 'ai.onnx.ml': 3 } });
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, o.version]), [['', 17], ['ai.onnx.ml', 3], ['com.microsoft', 1]]);
});

test('initializerToFloat32 reads float_data, double_data and misaligned raw_data', () => {
  assert.deepEqual([...initializerToFloat32(onnx.TensorProto.create({ dims: [2], dataType: 1, floatData: [1.5, -2] }))], [1.5, -2]);
  assert.deepEqual([...initializerToFloat32(onnx.TensorProto.create({ dims: [2], dataType: 11, doubleData: [0.25, 3] }))], [0.25, 3]);
  const bytes = new Uint8Array(9);
  new DataView(bytes.buffer).setFloat32(1, 7.5, true);
  new DataView(bytes.buffer).setFloat32(5, -1, true);
  const t = onnx.TensorProto.create({ dims: [2], dataType: 1, rawData: bytes.subarray(1) });
  assert.deepEqual([...initializerToFloat32(t)], [7.5, -1]);
  assert.throws(() => initializerToFloat32(onnx.TensorProto.create({ name: 'i', dataType: 7 })), /not a float type/);
});

test('initializerToInts reads int64 constants from raw_data and int64_data', () => {
  const g = new GraphBuilder();
  g.initializer('shape', BigInt64Array.from([0n, -1n, 4n]), [3]);
  const t = g.toModel().graph!.initializer![0]!;
  assert.deepEqual(initializerToInts(readModel(writeModel(g.toModel())).graph!.initializer![0]!), [0, -1, 4]);
  assert.deepEqual(initializerToInts(t), [0, -1, 4]);
  assert.deepEqual(initializerToInts(onnx.TensorProto.create({ dims: [2], dataType: 7, int64Data: [3, 9] })), [3, 9]);
});

test('attributes: integral numbers are INT unless wrapped with attr.float', () => {
  const A = onnx.AttributeProto.AttributeType;
  assert.equal(makeAttribute('axis', -1).type, A.INT);
  assert.equal(makeAttribute('epsilon', 1e-12).type, A.FLOAT);
  assert.equal(makeAttribute('alpha', attr.float(1)).type, A.FLOAT);
  assert.equal(makeAttribute('perm', [0, 2, 1]).type, A.INTS);
  assert.equal(makeAttribute('scales', [1, 1.5]).type, A.FLOATS);
  assert.equal(makeAttribute('mode', 'constant').type, A.STRING);
  assert.equal(makeAttribute('names', ['a', 'b']).type, A.STRINGS);
});

test('uniqueName never repeats and duplicate explicit names are rejected', () => {
  const g = new GraphBuilder();
  g.input('t_0', 'float', [1]);
  const names = new Set([g.uniqueName('t'), g.uniqueName('t'), g.uniqueName('t')]);
  assert.equal(names.size, 3);
  assert.ok(!names.has('t_0'));
  assert.throws(() => g.initializer('t_0', Float32Array.of(1), [1]), /duplicate/);
  const [a, b] = g.node('Split', ['t_0'], 2, { axis: 0, num_outputs: 2 });
  assert.notEqual(a, b);
});

test('a decoded model can be edited to expose an intermediate value and re-encoded', async () => {
  const m = readModel(affine().toBytes());
  m.graph!.output!.push(makeValueInfo('mm', 'float', ['batch', 2]));
  const session = await ort.InferenceSession.create(writeModel(m));
  assert.deepEqual([...session.outputNames].sort(), ['mm', 'y']);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 0, 0]), [1, 3]) });
  assert.deepEqual([...(out.mm!.data as Float32Array)], [1, 2]);
});

test('parameterCount sums initializer sizes', () => {
  assert.equal(affine().parameterCount(), 8);
});
