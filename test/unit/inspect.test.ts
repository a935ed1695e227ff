// describeOnnx / formatOnnxDescription on the tiny fixtures: interface, opsets, parameter count and hash as the
// builder and sha256File know them, old-IR initializer inputs hidden, unreadable files reported as ConfigError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildImageClassifier, buildTextEncoder, buildTextEncoderGraph } from '../../fixtures/tiny-models.js';
import { describeOnnx, formatOnnxDescription } from '../../src/models/inspect.js';
import { makeValueInfo, readModel, tensorDims, writeModel } from '../../src/models/onnx-graph.js';
import { sha256File } from '../../src/models/bundle.js';
import { ConfigError } from '../../src/errors.js';
import { hasShared, sharedDir } from '../helpers/paths.js';

const tmp = (t: { after(fn: () => void): void }): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inspect-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
};

/** The parameter count computed independently: every initializer's element count. */
function initializerElements(bytes: Uint8Array): number {
  return readModel(bytes).graph!.initializer!.reduce((sum, t) => sum + tensorDims(t).reduce((a, b) => a * b, 1), 0);
}

test('text encoder: inputs, outputs, symbolic dims, opset, parameters, sha256', (t) => {
  const opts = { vocabSize: 50, hidden: 32, layers: 1, seed: 4, pooler: true };
  const bytes = buildTextEncoder(opts);
  const file = path.join(tmp(t), 'text.onnx');
  fs.writeFileSync(file, bytes);
  const d = describeOnnx(file);
  assert.equal(d.file, file);
  assert.equal(d.size, bytes.length);
  assert.equal(d.sha256, sha256File(file));
  assert.equal(d.irVersion, 8);
  assert.equal(d.producer, 'categorize-fixtures');
  assert.deepEqual(d.opsets, [{ domain: 'ai.onnx', version: 17 }]);
  assert.deepEqual(d.inputs, ['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({ name, type: 'int64', shape: ['batch', 'sequence'] })));
  assert.deepEqual(d.outputs, [
    { name: 'last_hidden_state', type: 'float32', shape: ['batch', 'sequence', 32] },
    { name: 'pooler_output', type: 'float32', shape: ['batch', 32] },
  ]);
  assert.equal(d.nodes, readModel(bytes).graph!.node!.length);
  assert.equal(d.parameters, initializerElements(bytes));
  assert.equal(d.parameters, buildTextEncoderGraph(opts).parameterCount());
  assert.equal(d.pooledTap, null);

  const text = formatOnnxDescription(d);
  for (const s of ['text.onnx', 'input_ids', 'attention_mask', 'token_type_ids', 'last_hidden_state', 'pooler_output',
    '[batch, sequence]', '[batch, sequence, 32]', 'int64', 'float32', 'ai.onnx 17', d.sha256, ' MB', 'no global average pool']) {
    assert.ok(text.includes(s), `format lacks ${s}:\n${text}`);
  }
});

test('int8 image classifier: com.microsoft opset, logits output, the pooled tap it would use', (t) => {
  const bytes = buildImageClassifier({ seed: 2, dim: 16, classes: 7, quantized: true });
  const file = path.join(tmp(t), 'classifier.onnx');
  fs.writeFileSync(file, bytes);
  const d = describeOnnx(file);
  assert.deepEqual(d.opsets, [{ domain: 'ai.onnx', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
  assert.deepEqual(d.inputs, [{ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 224, 224] }]);
  assert.deepEqual(d.outputs, [{ name: 'logits', type: 'float32', shape: ['batch', 7] }]);
  assert.equal(d.parameters, initializerElements(bytes));
  assert.deepEqual(d.pooledTap, { source: 'pooled_q', op: 'QLinearGlobalAveragePool', dim: 16 });
  const text = formatOnnxDescription(d);
  for (const s of ['pixel_values', '[batch, 3, 224, 224]', 'logits', '[batch, 7]', 'com.microsoft 1', 'pooled_q', 'QLinearGlobalAveragePool', '16-d']) {
    assert.ok(text.includes(s), `format lacks ${s}:\n${text}`);
  }
});

test('graph inputs that are initializers (old IR) are not listed as inputs', (t) => {
  const model = readModel(buildImageClassifier({ seed: 2 }));
  model.irVersion = 3;
  model.graph!.input!.push(makeValueInfo('fc.weight', 'float', [5, 16]), makeValueInfo('fc.bias', 'float', [5]));
  const file = path.join(tmp(t), 'old.onnx');
  fs.writeFileSync(file, writeModel(model));
  const d = describeOnnx(file);
  assert.deepEqual(d.inputs.map((i) => i.name), ['pixel_values']);
  assert.equal(d.irVersion, 3);
});

test('missing or non-ONNX files are ConfigErrors', (t) => {
  const dir = tmp(t);
  assert.throws(() => describeOnnx(path.join(dir, 'absent.onnx')), (err: unknown) => err instanceof ConfigError && /absent\.onnx/.test(err.message));
  const junk = path.join(dir, 'junk.onnx');
  fs.writeFileSync(junk, 'this is not a protobuf at all\n');
  assert.throws(() => describeOnnx(junk), (err: unknown) => err instanceof ConfigError && /junk\.onnx/.test(err.message));
});

const mobilenet = path.join(sharedDir, 'models', 'mobilenetv2-12-int8', 'model.onnx');

test('real int8 MobileNetV2 as SOURCE.md describes it', { skip: !(hasShared && fs.existsSync(mobilenet)) && 'needs ../shared/models/mobilenetv2-12-int8' }, () => {
  const d = describeOnnx(mobilenet);
  assert.equal(d.size, 3_655_640);
  assert.equal(d.sha256, '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f');
  assert.deepEqual(d.opsets.slice(0, 2), [{ domain: 'ai.onnx', version: 12 }, { domain: 'com.microsoft', version: 1 }]);
  assert.deepEqual(d.inputs, [{ name: 'input', type: 'float32', shape: ['batch_size', 3, 224, 224] }]);
  assert.deepEqual(d.outputs, [{ name: 'output', type: 'float32', shape: ['batch_size', 1000] }]);
  assert.deepEqual(d.pooledTap, { source: '464_quantized', op: 'QLinearGlobalAveragePool', dim: 1280 });
  assert.ok(formatOnnxDescription(d).includes('3.7 MB'));
});
