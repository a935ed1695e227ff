import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { createSession } from '../../src/runtime/session.js';
import { buildImageEncoder } from '../../fixtures/tiny-models.js';

test('optimizedDir: the first load writes the optimized graph, later loads read it, with the same outputs', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-session-'));
  const model = path.join(dir, 'model.onnx');
  fs.writeFileSync(model, buildImageEncoder({ seed: 3, dim: 8 }));
  const optimizedDir = path.join(dir, 'optimized');
  const input = { pixel_values: new ort.Tensor('float32', Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]) };
  const run = async () => {
    const { session } = await createSession(model, { device: 'cpu', threads: 1, optimizedDir });
    const out = (await session.run(input)).pooler_output!.data as Float32Array;
    await session.release();
    return Array.from(out);
  };
  const plain = await (async () => {
    const { session } = await createSession(model, { device: 'cpu', threads: 1 });
    const out = (await session.run(input)).pooler_output!.data as Float32Array;
    await session.release();
    return Array.from(out);
  })();
  const first = await run();
  const copies = fs.readdirSync(optimizedDir);
  assert.equal(copies.length, 1, 'one optimized copy, no temporary file left');
  assert.match(copies[0]!, /^[0-9a-f]{32}\.onnx$/);
  const second = await run();
  assert.deepEqual(first, plain);
  assert.deepEqual(second, plain);
  // A damaged copy is rebuilt, not fatal.
  fs.writeFileSync(path.join(optimizedDir, copies[0]!), 'not a model');
  assert.deepEqual(await run(), plain);
  assert.ok(fs.statSync(path.join(optimizedDir, copies[0]!)).size > 100);
  // Another model file (other stat stamp) gets its own copy.
  fs.writeFileSync(model, buildImageEncoder({ seed: 4, dim: 8 }));
  await run();
  assert.equal(fs.readdirSync(optimizedDir).length, 2);
  fs.rmSync(dir, { recursive: true, force: true });
});
