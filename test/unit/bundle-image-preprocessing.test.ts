// The image preprocessing a bundle records (manifest `features[].preprocess.method`): written by train, checked on
// load, and carried to the encoder request that run, eval, check and serve open; 'exact' for every older bundle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBundle, saveBundle, type BundleManifest, type FeatureBlock } from '../../src/models/bundle.js';
import { resolveBundleModels, type ModelContext } from '../../src/models/resolve.js';
import { imagenetPreprocess, preprocessingOf, withPreprocessing, type ImagePreprocessing } from '../../src/embed/image-preprocess.js';
import { ConfigError } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';
import { GraphBuilder, attr } from '../../src/models/onnx-graph.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-bundle-pre-'));
const DIM = 4;

/** A joint head over a 4-d image block: an ONNX graph (what formats 1 and 2 hold). */
function onnxHead(): Uint8Array {
  const g = new GraphBuilder('head');
  g.input('features', 'float', [null, DIM]);
  g.initializer('w', Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1]), [DIM, 2]);
  g.node('MatMul', ['features', 'w'], ['logits']);
  g.node('Softmax', ['logits'], ['probabilities'], { axis: attr.int(1) });
  g.output('probabilities', 'float', [null, 2]);
  return g.toBytes({ producer: 'test' });
}

function writeBundle(name: string, method: ImagePreprocessing): string {
  const dir = path.join(tmp, name);
  const block: FeatureBlock = { kind: 'image', offset: 0, dim: DIM, model: { path: 'encoders/image' }, preprocess: withPreprocessing(imagenetPreprocess, method) };
  saveBundle(dir, {
    manifest: { toolVersion: 'test', createdAt: '2026-01-01T00:00:00Z', classes: ['a', 'b'], features: [block], tfidf: false },
    heads: [{ onnx: onnxHead() }],
    means: { image: new Float32Array(DIM) },
    tfidfJson: null,
  });
  return dir;
}

const readManifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as BundleManifest & { features: { preprocess?: Record<string, unknown> }[] };
const editManifest = (dir: string, edit: (m: ReturnType<typeof readManifest>) => void) => {
  const m = readManifest(dir);
  edit(m);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
};
const rejectsBundle = (dir: string, pattern: RegExp) =>
  assert.throws(() => loadBundle(dir), (err: unknown) => err instanceof ConfigError && pattern.test(err.message));

test("a fast bundle records preprocess.method 'fast' and format 6; an exact one records no method and keeps its format", () => {
  const fast = readManifest(writeBundle('fast', 'fast'));
  assert.equal(fast.formatVersion, 6);
  assert.equal(fast.features[0]!.preprocess!.method, 'fast');
  const exact = readManifest(writeBundle('exact', 'exact'));
  assert.equal(exact.formatVersion, 1, 'exact bundles are written as before, readable by older tools');
  assert.ok(!('method' in exact.features[0]!.preprocess!));
  const image = (dir: string) => loadBundle(dir).manifest.features.find((b) => b.kind === 'image') as Extract<FeatureBlock, { kind: 'image' }>;
  assert.equal(preprocessingOf(image(path.join(tmp, 'fast')).preprocess), 'fast');
  assert.equal(preprocessingOf(image(path.join(tmp, 'exact')).preprocess), 'exact');
});

test('the recorded method reaches the encoder request run, eval, check and serve open (and with it the cache identity)', async () => {
  const ctx = { ignoreMismatch: false } as ModelContext; // a bundle's local model path needs no registry
  for (const method of ['fast', 'exact'] as const) {
    const bundle = loadBundle(path.join(tmp, method));
    const [request] = await resolveBundleModels(bundle, bundle.manifest.features as never, {}, ctx);
    assert.equal(preprocessingOf(request!.image!), method);
    assert.deepEqual(request!.image, withPreprocessing(imagenetPreprocess, method));
  }
});

test('version 1 and 2 bundles, and imported scikit-learn heads, preprocess the exact way', () => {
  for (const version of [1, 2]) {
    const dir = writeBundle(`v${version}`, 'exact');
    editManifest(dir, (m) => (m.formatVersion = version));
    const image = loadBundle(dir).manifest.features[0] as Extract<FeatureBlock, { kind: 'image' }>;
    assert.equal(preprocessingOf(image.preprocess), 'exact', `format ${version}`);
  }
  for (const name of ['bundle', 'binary', 'ovr']) {
    const bundle = loadBundle(path.join(repoRoot, 'fixtures', 'sklearn-import', name));
    const image = bundle.manifest.features.find((b) => b.kind === 'image') as Extract<FeatureBlock, { kind: 'image' }>;
    assert.equal(bundle.manifest.formatVersion, 1);
    assert.equal(preprocessingOf(image.preprocess), 'exact', name);
  }
});

test("'fast' in a manifest older than format 6, or an unknown method, is refused rather than preprocessed some other way", () => {
  const early = writeBundle('fast-v2', 'fast');
  editManifest(early, (m) => (m.formatVersion = 2));
  rejectsBundle(early, /preprocess\.method 'fast' needs format version 6, the manifest says 2/);
  const unknown = writeBundle('bicubic', 'fast');
  editManifest(unknown, (m) => (m.features[0]!.preprocess!.method = 'bicubic'));
  rejectsBundle(unknown, /preprocess\.method is 'bicubic', expected one of exact, fast/);
  const explicit = writeBundle('explicit-exact', 'exact');
  editManifest(explicit, (m) => (m.features[0]!.preprocess!.method = 'exact'));
  assert.equal(preprocessingOf((loadBundle(explicit).manifest.features[0] as Extract<FeatureBlock, { kind: 'image' }>).preprocess), 'exact');
});
