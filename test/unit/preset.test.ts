// Training presets: which stack a train run gets from --preset, --features and the model flags, and what the
// cache holds when none is given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseStack, presetStack, SHIPPED_IMAGE_MODEL } from '../../src/models/preset.js';
import { loadRegistry } from '../../src/models/registry.js';
import { ModelCache } from '../../src/models/cache.js';
import { CategorizeError } from '../../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-preset-'));

// Stand-ins for the original stack's models: local entries (no hub) named as the defaults, so the cache can hold them.
const registryFile = path.join(tmp, 'registry.json');
const local = (id: string, kind: string) => ({
  id, kind, repository: null, revision: 'sha256-0123456789ab', output: 'out', dim: 8, preprocess: {},
  variants: { fp32: { file: 'model.onnx', size: 4, sha256: 'a'.repeat(64) }, small: { file: 'small.onnx', size: 4, sha256: 'b'.repeat(64) } }, files: [],
});
fs.writeFileSync(registryFile, JSON.stringify({
  format: 'categorize-registry', version: 1,
  defaults: { text: 'text:all-MiniLM-L6-v2', image: 'image:resnet-50' },
  models: [local('text:all-MiniLM-L6-v2', 'text'), local('image:resnet-50', 'image')],
}));

async function cacheWith(name: string, ids: string[]): Promise<ModelCache> {
  const cache = new ModelCache(path.join(tmp, name));
  for (const id of ids) {
    const folder = cache.folder(`local/${id.split(':')[1]}`, 'sha256-0123456789ab');
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'model.onnx'), 'onnx');
    await cache.updateRecord(folder, { repository: null, revision: 'sha256-0123456789ab' }, (r) => {
      r.files['model.onnx'] = { size: 4, sha256: 'a'.repeat(64), verified: 'local', at: '' };
    });
  }
  return cache;
}

const usage = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof CategorizeError && e.exitCode === 2 && e.code === 'preset_conflict' && re.test(e.message) && !e.message.includes('\n'));

test('no --preset, --features or model flag: original when both its models are cached, else embedded, said on one line', async () => {
  const registry = loadRegistry({ registryFile });
  const both = chooseStack({}, { registry, cache: await cacheWith('both', ['text:all-MiniLM-L6-v2', 'image:resnet-50']) });
  assert.equal(both.preset, 'original');
  assert.deepEqual(both.features, ['text', 'image']);
  assert.equal(both.textModel, 'text:all-MiniLM-L6-v2');
  assert.equal(both.imageModel, 'image:resnet-50');
  assert.match(both.note!, /^preset original: all-MiniLM-L6-v2 \+ resnet-50 from the model cache .*--preset embedded/);

  const one = chooseStack({}, { registry, cache: await cacheWith('one', ['text:all-MiniLM-L6-v2']) });
  assert.equal(one.preset, 'embedded');
  assert.deepEqual(one.features, ['image', 'tfidf']);
  assert.equal(one.imageModel, SHIPPED_IMAGE_MODEL);
  assert.equal(one.textModel, undefined);
  assert.match(one.note!, /^preset embedded: .*--features image,tfidf --image-model mobilenetv2-int8.*image:resnet-50 is not in the model cache.*--preset original$/);
  assert.ok(!one.note!.includes('\n'));

  const none = chooseStack({}, { registry, cache: await cacheWith('none', []) });
  assert.equal(none.preset, 'embedded');
  assert.match(none.note!, /text:all-MiniLM-L6-v2 and image:resnet-50 are not in the model cache/);
});

test('--preset fixes the stack whatever the cache; flags may only repeat it', async () => {
  const registry = loadRegistry({ registryFile });
  const ctx = { registry, cache: await cacheWith('flags', []) };
  assert.deepEqual(chooseStack({ preset: 'embedded' }, ctx), { features: ['image', 'tfidf'], textModel: undefined, imageModel: SHIPPED_IMAGE_MODEL, preset: 'embedded' });
  assert.equal(chooseStack({ preset: 'original' }, ctx).preset, 'original', 'no cache check: a missing model is the pull error, later');
  // Repeating the preset, in another order or another variant of the same model, is fine.
  assert.equal(chooseStack({ preset: 'embedded', features: ['tfidf', 'image'], imageModel: 'mobilenetv2-int8' }, ctx).imageModel, 'mobilenetv2-int8');
  assert.equal(chooseStack({ preset: 'original', textModel: 'all-MiniLM-L6-v2:small' }, ctx).textModel, 'all-MiniLM-L6-v2:small');
  usage(() => chooseStack({ preset: 'embedded', features: ['text', 'image'] }, ctx), /^--preset embedded trains on --features image,tfidf --image-model mobilenetv2-int8; --features text,image contradicts it \(leave out --preset/);
  usage(() => chooseStack({ preset: 'embedded', textModel: 'all-MiniLM-L6-v2' }, ctx), /--text-model all-MiniLM-L6-v2 \(it has no text model\) contradicts it/);
  usage(() => chooseStack({ preset: 'original', imageModel: 'mobilenetv2-int8' }, ctx), /--preset original trains on --features text,image; --image-model mobilenetv2-int8 contradicts it/);
  usage(() => chooseStack({ preset: 'original', imageModel: './resnet.onnx' }, ctx), /--image-model \.\/resnet\.onnx contradicts it/);
  usage(() => chooseStack({ preset: 'original', features: ['text'] }, ctx), /--features text contradicts it/);
});

test('features or a model flag without --preset: a stack of ones own, no preset recorded', async () => {
  const registry = loadRegistry({ registryFile });
  const ctx = { registry, cache: await cacheWith('own', ['text:all-MiniLM-L6-v2', 'image:resnet-50']) };
  assert.deepEqual(chooseStack({ features: ['image', 'tfidf'] }, ctx), { features: ['image', 'tfidf'], textModel: undefined, imageModel: undefined, preset: null });
  assert.deepEqual(chooseStack({ imageModel: 'mobilenetv2-int8' }, ctx), { features: ['text', 'image'], textModel: undefined, imageModel: 'mobilenetv2-int8', preset: null });
  assert.deepEqual(presetStack('original', ctx), { features: ['text', 'image'], textModel: 'text:all-MiniLM-L6-v2', imageModel: 'image:resnet-50' });
});
