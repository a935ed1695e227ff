import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultModel, filesToFetch, findModel, loadRegistry, looksLikeModelId, saveUserEntry, shippedFolder, type RegistryEntry } from '../../src/models/registry.js';
import { sha256File } from '../../src/models/bundle.js';
import { cacheRootFromEnv, ModelCache } from '../../src/models/cache.js';
import { CategorizeError } from '../../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-registry-'));

test('the shipped registry loads: MiniLM pinned by sha256 in three variants, ResNet-50 tapped, defaults set', () => {
  const reg = loadRegistry({});
  const text = defaultModel(reg, 'text');
  assert.equal(text.entry.id, 'text:all-MiniLM-L6-v2');
  assert.equal(text.variant, 'fp32');
  assert.deepEqual(Object.keys(text.entry.variants).sort(), ['fp16', 'fp32', 'quantized']);
  for (const v of Object.values(text.entry.variants)) assert.match(v.sha256!, /^[0-9a-f]{64}$/);
  assert.equal(text.entry.dim, 384);
  const image = defaultModel(reg, 'image');
  assert.equal(image.entry.id, 'image:resnet-50');
  assert.equal(image.entry.tap, 'auto');
  assert.equal(image.entry.dim, 2048);
  assert.deepEqual(filesToFetch(text.entry, 'quantized').map((f) => f.file), ['onnx/model_quantized.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json']);
});

test('model references: kind prefix, bare name, variant suffix, and precise errors', () => {
  const reg = loadRegistry({});
  assert.equal(findModel(reg, 'all-MiniLM-L6-v2').entry.id, 'text:all-MiniLM-L6-v2');
  assert.equal(findModel(reg, 'text:all-MiniLM-L6-v2:quantized').variant, 'quantized');
  assert.equal(findModel(reg, 'all-MiniLM-L6-v2:fp16').variant, 'fp16');
  assert.equal(findModel(reg, 'all-MiniLM-L6-v2', { variant: 'quantized' }).variant, 'quantized');
  const err = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof CategorizeError && e.exitCode === 2 && re.test(e.message));
  err(() => findModel(reg, 'resnet-50', { kind: 'text' }), /unknown model 'resnet-50' \(text\).*known: text:all-MiniLM-L6-v2/);
  err(() => findModel(reg, 'image:resnet-50', { kind: 'text' }), /is image model, but a text model is needed/);
  err(() => findModel(reg, 'all-MiniLM-L6-v2:int4'), /has no variant 'int4' \(variants: fp32, quantized, fp16\)/);
  err(() => findModel(reg, 'a:b:c:d'), /invalid model reference/);
  assert.equal(looksLikeModelId('text:all-MiniLM-L6-v2'), true);
  assert.equal(looksLikeModelId('./model.onnx'), false);
  assert.equal(looksLikeModelId('model.onnx'), false);
});

test('registry files are validated: a branch as revision, a bad hash, a newer format version', () => {
  const write = (name: string, models: unknown[], extra: object = {}) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, JSON.stringify({ format: 'categorize-registry', version: 1, models, ...extra }));
    return f;
  };
  const base = { id: 'text:x', kind: 'text', repository: 'o/x', revision: null, output: 'last_hidden_state', dim: 8, preprocess: {}, variants: { fp32: { file: 'm.onnx', size: 1, sha256: null } }, files: [] };
  assert.doesNotThrow(() => loadRegistry({ registryFile: write('ok.json', [base]) }));
  assert.throws(() => loadRegistry({ registryFile: write('branch.json', [{ ...base, revision: 'main' }]) }), /pins revision 'main', which is not a commit/);
  assert.throws(() => loadRegistry({ registryFile: write('hash.json', [{ ...base, variants: { fp32: { file: 'm.onnx', size: 1, sha256: 'abc' } } }]) }), /invalid sha256/);
  assert.throws(() => loadRegistry({ registryFile: write('kind.json', [{ ...base, id: 'image:x' }]) }), /does not start with its kind/);
  assert.throws(() => loadRegistry({ registryFile: write('v.json', [], { version: 9 }) }), /version 9 is newer/);
  assert.throws(() => loadRegistry({ registryFile: path.join(tmp, 'none.json') }), /model registry not found/);
});

test('user entries (models add) extend and override the shipped registry', () => {
  const user = path.join(tmp, 'user', 'registry.json');
  const entry: RegistryEntry = { id: 'image:my-vit', kind: 'image', repository: null, revision: 'sha256-0123456789ab', output: 'pooled', dim: null, preprocess: {}, variants: { fp32: { file: 'model.onnx', size: 10, sha256: 'a'.repeat(64) } }, files: [] };
  saveUserEntry(user, entry);
  saveUserEntry(user, { ...entry, output: 'features' });
  const reg = loadRegistry({ userFile: user });
  assert.equal(findModel(reg, 'my-vit').entry.output, 'features');
  assert.equal(reg.entries.filter((e) => e.id === 'image:my-vit').length, 1);
  assert.ok(findModel(reg, 'all-MiniLM-L6-v2'));
});

test('cache root follows CATEGORIZE_CACHE, then XDG_CACHE_HOME, then ~/.cache; folders are repository@revision', () => {
  assert.equal(cacheRootFromEnv({ CATEGORIZE_CACHE: '/c', XDG_CACHE_HOME: '/x', HOME: '/h' }), path.resolve('/c'));
  assert.equal(cacheRootFromEnv({ XDG_CACHE_HOME: '/x', HOME: '/h' }), path.join('/x', 'categorize'));
  assert.equal(cacheRootFromEnv({ HOME: '/h' }), path.join('/h', '.cache', 'categorize'));
  const cache = new ModelCache(path.join(tmp, 'cache'));
  assert.equal(cache.folder('Xenova/all-MiniLM-L6-v2', 'abc'), path.join(tmp, 'cache', 'models', 'Xenova--all-MiniLM-L6-v2@abc'));
  cache.writeRef('Xenova/all-MiniLM-L6-v2', 'main', 'f'.repeat(40));
  assert.equal(cache.readRef('Xenova/all-MiniLM-L6-v2', 'main'), 'f'.repeat(40));
  assert.equal(cache.readRef('Xenova/other', 'main'), undefined);
});

test('concurrent record updates into one cache folder all land', async () => {
  const cache = new ModelCache(path.join(tmp, 'cache-records'));
  const folder = cache.folder('o/m', 'r');
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      cache.updateRecord(folder, { repository: 'o/m', revision: 'r' }, (rec) => {
        rec.files[`f${i}`] = { size: i, sha256: String(i), verified: 'registry', at: '' };
      }),
    ),
  );
  assert.equal(Object.keys(cache.readRecord(folder)!.files).length, 8);
  assert.deepEqual(cache.listFolders().map((f) => path.basename(f.folder)), ['o--m@r']);
});

test('the shipped image model: the package holds the pinned bytes, tapped, never downloaded, kept when a registry replaces the list', () => {
  const reg = loadRegistry({});
  const sel = findModel(reg, 'mobilenetv2-int8', { kind: 'image' });
  assert.equal(sel.entry.id, 'image:mobilenetv2-int8');
  assert.equal(sel.variant, 'int8');
  assert.equal(sel.entry.shipped, 'mobilenetv2-12-int8');
  assert.equal(sel.entry.repository, null, 'no repository: nothing to download from');
  assert.equal(sel.entry.tap, 'auto');
  assert.equal(sel.entry.dim, 1280);
  const pin = sel.entry.variants.int8!;
  assert.deepEqual(pin, { file: 'model.onnx', size: 3_655_640, sha256: '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f' });
  const file = path.join(shippedFolder(sel.entry), pin.file);
  assert.equal(fs.statSync(file).size, pin.size);
  assert.equal(sha256File(file), pin.sha256, 'the shipped file is the one SOURCE.md describes');
  assert.ok(fs.existsSync(path.join(shippedFolder(sel.entry), 'LICENSE')) && fs.existsSync(path.join(shippedFolder(sel.entry), 'NOTICE.md')), 'licence and provenance ship beside it');
  assert.equal(findModel(reg, 'image:mobilenetv2-int8').entry.id, 'image:mobilenetv2-int8', 'the full id resolves too');

  // An organisation's registry (CATEGORIZE_REGISTRY) replaces the list, not the files in the package.
  const own = path.join(tmp, 'own-registry.json');
  fs.writeFileSync(own, JSON.stringify({ format: 'categorize-registry', version: 1, models: [] }));
  assert.equal(findModel(loadRegistry({ registryFile: own }), 'mobilenetv2-int8').entry.shipped, 'mobilenetv2-12-int8');
});

test('shipped entries are validated: a folder inside the package, pinned by size and sha256', () => {
  const write = (name: string, entry: object) => {
    const f = path.join(tmp, name);
    const base = { id: 'image:s', kind: 'image', repository: null, revision: 'sha256-0123456789ab', output: 'out', dim: 8, preprocess: {}, variants: { fp32: { file: 'm.onnx', size: 1, sha256: 'a'.repeat(64) } }, files: [], shipped: 's' };
    fs.writeFileSync(f, JSON.stringify({ format: 'categorize-registry', version: 1, models: [{ ...base, ...entry }] }));
    return f;
  };
  assert.doesNotThrow(() => loadRegistry({ registryFile: write('s-ok.json', {}) }));
  assert.throws(() => loadRegistry({ registryFile: write('s-up.json', { shipped: '../elsewhere' }) }), /invalid shipped folder/);
  assert.throws(() => loadRegistry({ registryFile: write('s-abs.json', { shipped: '/abs' }) }), /invalid shipped folder/);
  assert.throws(() => loadRegistry({ registryFile: write('s-hash.json', { variants: { fp32: { file: 'm.onnx', size: 1, sha256: null } } }) }), /not pinned by size and sha256/);
  assert.throws(() => loadRegistry({ registryFile: write('s-repo.json', { repository: 'o/s', revision: 'a'.repeat(40) }) }), /needs repository null/);
});
