// Bundles imported from scikit-learn joblib files (scripts/import-sklearn.py) reproduce scikit-learn: predict_proba
// through our Classifier, top-5 tags through our TF-IDF, against fixtures/sklearn-import/golden.json
// (scripts/make-sklearn-golden.py). No Python needed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { loadBundle, type EncoderBlock } from '../../src/models/bundle.js';
import { preprocessingOf } from '../../src/embed/image-preprocess.js';
import { Classifier } from '../../src/head/classifier.js';
import { topTags } from '../../src/head/tfidf.js';
import { ENGLISH_STOP_WORDS } from '../../src/head/stop-words-en.js';
import { defaultModel, loadRegistry } from '../../src/models/registry.js';

interface GoldenCase {
  name: string;
  bundle: string;
  classes: string[];
  features: number[][];
  probabilities: number[][];
  texts: string[];
  tags: string[][];
}

interface Golden {
  textDim: number;
  imageDim: number;
  topK: number;
  cases: GoldenCase[];
}

const fixtureDir = path.join(repoRoot, 'fixtures', 'sklearn-import');
const golden = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'golden.json'), 'utf8')) as Golden;

test('the golden covers multinomial, binary and one-vs-rest heads', () => {
  assert.deepEqual(golden.cases.map((c) => c.name), ['bundle', 'binary', 'ovr']);
  for (const c of golden.cases) {
    assert.equal(c.features.length, c.probabilities.length);
    assert.equal(c.texts.length, c.tags.length);
    assert.ok(c.features.length >= 20, `${c.name}: ${c.features.length} rows`);
  }
});

for (const c of golden.cases) {
  test(`${c.name}: classifier.onnx through our Classifier matches scikit-learn's predict_proba within 1e-5`, async () => {
    const bundle = loadBundle(path.join(fixtureDir, c.bundle));
    assert.deepEqual(bundle.manifest.classes, c.classes);
    assert.equal(bundle.width, golden.textDim + golden.imageDim);
    const clf = await Classifier.load(bundle, { device: 'cpu', threads: 1 });
    try {
      const n = c.features.length;
      const x = Float32Array.from(c.features.flat());
      assert.equal(x.length, n * bundle.width);
      const probs = await clf.predict(x, n);
      const k = c.classes.length;
      assert.equal(probs.length, n * k);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < k; j++) worst = Math.max(worst, Math.abs(probs[i * k + j]! - c.probabilities[i]![j]!));
      }
      assert.ok(worst <= 1e-5, `${c.name}: max |Δp| = ${worst}`);
    } finally {
      await clf.dispose();
    }
  });

  test(`${c.name}: topTags on the imported tfidf.json gives scikit-learn's top-${golden.topK} terms`, () => {
    const bundle = loadBundle(path.join(fixtureDir, c.bundle));
    assert.ok(bundle.tfidf, 'the bundle has a tfidf.json');
    c.texts.forEach((text, i) => {
      assert.deepEqual(topTags(bundle.tfidf!, text, golden.topK), c.tags[i], `tags of ${JSON.stringify(text)}`);
    });
  });
}

test('imported bundles name the registry default text and image models, with the golden dims', () => {
  const registry = loadRegistry({});
  const text = defaultModel(registry, 'text');
  const image = defaultModel(registry, 'image');
  for (const c of golden.cases) {
    const bundle = loadBundle(path.join(fixtureDir, c.bundle));
    const [t, im] = bundle.manifest.features as EncoderBlock[];
    assert.equal(bundle.manifest.features.length, 2);
    assert.deepEqual([t!.kind, t!.offset, t!.dim], ['text', 0, golden.textDim]);
    assert.deepEqual([im!.kind, im!.offset, im!.dim], ['image', golden.textDim, golden.imageDim]);
    for (const [block, sel] of [[t!, text], [im!, image]] as const) {
      assert.equal(block.model.id, sel.entry.id);
      assert.equal(block.model.repository, sel.entry.repository);
      assert.equal(block.model.variant, sel.variant);
      assert.equal(block.model.file, sel.entry.variants[sel.variant]!.file);
      assert.equal(block.model.path, undefined, 'resolved from the model cache, not a path');
    }
    // The text model runs untapped, so the registry's pinned hash is the file's; the image model's tapped file
    // only exists after `models pull`, so no hash is recorded for it.
    assert.equal(t!.model.sha256, text.entry.variants[text.variant]!.sha256);
    assert.equal(im!.model.sha256, undefined);
    assert.deepEqual(t!.preprocess, { maxLength: text.entry.preprocess.maxLength, pooling: 'mean', normalize: text.entry.normalize });
    const p = image.entry.preprocess;
    assert.deepEqual(im!.preprocess, { resize: p.resize, crop: p.crop, mean: p.mean, std: p.std });
    assert.equal(preprocessingOf(im!.preprocess), 'exact', "the service's heads were fitted on torchvision's resize");
    assert.equal(bundle.means.get('text')!.length, golden.textDim);
    assert.equal(bundle.means.get('image')!.length, golden.imageDim);
    assert.equal(bundle.manifest.training?.importedFrom, 'scikit-learn');
  }
  // The real import's widths are the registry's.
  assert.deepEqual([text.entry.dim, image.entry.dim], [384, 2048]);
});

test("import-sklearn.py's stop-word fingerprint is our copy of scikit-learn's ENGLISH_STOP_WORDS", () => {
  const script = fs.readFileSync(path.join(repoRoot, 'scripts', 'import-sklearn.py'), 'utf8');
  const m = /^CATEGORIZE_STOP_WORDS_SHA256 = "([0-9a-f]{64})"$/m.exec(script);
  assert.ok(m, 'the script pins a sha256 of the list');
  // Python's sorted() is code-point order; the words are ASCII, so JS's default sort agrees.
  const ours = crypto.createHash('sha256').update([...ENGLISH_STOP_WORDS].sort().join('\n')).digest('hex');
  assert.equal(ours, m[1]);
});
