import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { encoderPlan, imageDecoders, openEncoders, MAX_CPU_REPLICAS } from '../../src/pipeline/encoders.js';
import { repoRoot } from '../helpers/paths.js';
import { allOrNone } from '../../src/runtime/encoder-client.js';

test('encoderPlan on CPU: copies of the image model, one text model, cores shared between the copies', () => {
  assert.deepEqual(encoderPlan(['text', 'image'], { threads: 0, gpu: false }, 2), { text: { replicas: 1, threads: 1 }, image: { replicas: 2, threads: 1 } });
  assert.deepEqual(encoderPlan(['text', 'image'], { threads: 0, gpu: false }, 16), { text: { replicas: 1, threads: 3 }, image: { replicas: MAX_CPU_REPLICAS, threads: 3 } });
  // Alone, the text model is the heaviest and gets the copies.
  assert.deepEqual(encoderPlan(['text'], { threads: 0, gpu: false }, 2), { text: { replicas: 2, threads: 1 } });
  assert.deepEqual(encoderPlan(['image'], { threads: 0, gpu: false }, 1), { image: { replicas: 1, threads: 1 } });
});

test('encoderPlan: explicit --replicas / --threads win; a GPU runs one copy per model', () => {
  assert.deepEqual(encoderPlan(['text', 'image'], { threads: 2, replicas: 1, gpu: false }, 2), { text: { replicas: 1, threads: 2 }, image: { replicas: 1, threads: 2 } });
  assert.deepEqual(encoderPlan(['text', 'image'], { threads: 0, replicas: 3, gpu: false }, 12), { text: { replicas: 3, threads: 2 }, image: { replicas: 3, threads: 2 } });
  assert.deepEqual(encoderPlan(['text', 'image'], { threads: 0, gpu: true }, 8), { text: { replicas: 1, threads: 4 }, image: { replicas: 1, threads: 4 } });
});

test('imageDecoders: one decoding thread per 4 cores, 1 to 4; an explicit count wins (0: the main thread)', () => {
  assert.deepEqual([1, 2, 4, 5, 8, 16, 64].map((cores) => imageDecoders(undefined, cores)), [1, 1, 1, 2, 2, 4, 4]);
  assert.equal(imageDecoders(0, 8), 0);
  assert.equal(imageDecoders(3, 2), 3);
});

const demo = path.join(repoRoot, 'models/demo/encoders');
test('openEncoders: copies of a model split the calls and give the same vectors', { skip: !fs.existsSync(path.join(demo, 'image/model.onnx')) }, async () => {
  const one = await openEncoders([{ kind: 'image', location: path.join(demo, 'image') }], { device: 'cpu', threads: 1, replicas: 1 });
  const three = await openEncoders([{ kind: 'image', location: path.join(demo, 'image') }], { device: 'cpu', threads: 1, replicas: 3 });
  try {
    assert.deepEqual(three.plan, { image: { replicas: 3, threads: 1 } });
    assert.ok(three.decoder && three.decoder.workers >= 1, 'an image model comes with its decoding threads');
    assert.equal(three.image!.size, 3);
    const crop = 224 * 224 * 3;
    const inputs = Array.from({ length: 6 }, (_, i) => new Float32Array(crop).map((_, k) => Math.sin(k * (i + 1) * 1e-3)));
    // Six calls at once: the pool spreads them over its copies; each answer is its own input's vector.
    const pooled = await Promise.all(inputs.map((x) => three.image!.embedPixels(x.slice(), 1)));
    assert.deepEqual(three.image!.calls, [2, 2, 2]);
    for (let i = 0; i < inputs.length; i++) {
      const alone = await one.image!.embedPixels(inputs[i]!.slice(), 1);
      assert.equal(pooled[i]!.length, one.image!.dim);
      for (let k = 0; k < alone.length; k++) assert.ok(Math.abs(pooled[i]![k]! - alone[k]!) < 1e-5, `input ${i} dim ${k}`);
    }
  } finally {
    await one.close();
    await three.close();
  }
});

test('allOrNone: one failed start closes the others and throws its error; all started: all returned', async () => {
  const closed: number[] = [];
  await assert.rejects(allOrNone([Promise.resolve(1), Promise.reject(new Error('no model')), Promise.resolve(3)], async (n) => void closed.push(n)), /no model/);
  assert.deepEqual(closed, [1, 3]);
  assert.deepEqual(await allOrNone([Promise.resolve(1), Promise.resolve(2)], async () => assert.fail('nothing to close')), [1, 2]);
});
