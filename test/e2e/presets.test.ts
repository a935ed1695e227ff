// End to end, through the real binary: the shipped image model and the training presets. Every command here runs
// with HF_HUB_OFFLINE=1 and HF_ENDPOINT at a closed port: nothing may need the network.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runCli, demo, ensureDemo, readJsonl, type CliResult } from '../helpers/cli.js';
import { buildImageClassifier } from '../../fixtures/tiny-models.js';
import { GraphBuilder } from '../../src/models/onnx-graph.js';
import { repoRoot } from '../helpers/paths.js';

let tmp: string;
let endpoint: string;
let trainCsv: string;
let catalogCsv: string;
const demoDir = path.dirname(demo.train);
const textDir = path.join(repoRoot, 'models', 'demo', 'encoders', 'text');
// Small and quick: a fixed C, no selection folds, no validation share, one fit at a time.
const fit = ['--image-root', demoDir, '--C', '1', '--fusion-folds', '0', '--validation', '0', '--jobs', '1'];

/** A cache of its own (through XDG_CACHE_HOME unless `categorizeCache`), offline, no registry replacement. */
function envFor(opts: { xdg?: string; categorizeCache?: string }): Record<string, string> {
  return {
    CATEGORIZE_CACHE: opts.categorizeCache ?? '',
    XDG_CACHE_HOME: opts.xdg ?? path.join(tmp, 'xdg-unused'),
    CATEGORIZE_REGISTRY: '',
    CATEGORIZE_EMBED_CACHE: '',
    HF_HUB_OFFLINE: '1',
    HF_ENDPOINT: endpoint,
    HF_TOKEN: '',
    NO_COLOR: '1',
  };
}

const ok = (r: CliResult) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
const manifestOf = (bundle: string) => JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
const categorizeLines = (stderr: string, re: RegExp) => stderr.split('\n').filter((l) => re.test(l));

/** The first `rows` data lines of a demo CSV (the records hold no line breaks). */
function head(src: string, dest: string, rows: number): string {
  fs.writeFileSync(dest, fs.readFileSync(src, 'utf8').split('\n').slice(0, rows + 1).join('\n') + '\n');
  return dest;
}

before(async () => {
  await ensureDemo();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-presets-e2e-'));
  // A port nothing listens on: any request fails at once.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  endpoint = `http://127.0.0.1:${port}`;
  trainCsv = head(demo.train, path.join(tmp, 'train.csv'), 64);
  catalogCsv = head(demo.catalog, path.join(tmp, 'catalog.csv'), 24);
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('an empty cache, no network: train picks the embedded preset, the shipped model runs with no download', async () => {
  const xdg = path.join(tmp, 'xdg-empty');
  const bundle = path.join(tmp, 'bundle-embedded');
  const r = await runCli(['train', trainCsv, '--label-column', 'category', '-o', bundle, ...fit], { env: envFor({ xdg }) });
  ok(r);
  const notes = categorizeLines(r.stderr, /^categorize: preset /);
  assert.equal(notes.length, 1, r.stderr);
  assert.match(notes[0]!, /^categorize: preset embedded: the shipped mobilenetv2-int8 image model \+ TF-IDF \(--features image,tfidf --image-model mobilenetv2-int8\), as text:all-MiniLM-L6-v2 and image:resnet-50 are not in the model cache; .*categorize models pull`, then --preset original$/);
  const m = manifestOf(bundle);
  assert.equal(m.preset, 'embedded');
  assert.deepEqual(m.features.map((b: { kind: string }) => b.kind), ['image', 'tfidf']);
  const image = m.features[0];
  assert.equal(image.dim, 1280);
  assert.equal(image.model.id, 'image:mobilenetv2-int8');
  assert.equal(image.model.revision, 'sha256-83530ad811bc');
  assert.equal(image.model.tap.source, '464_quantized');
  assert.equal(image.model.tap.dequantized, true);
  // The package's file is never written: the tapped graph is derived into the cache (here through XDG_CACHE_HOME).
  assert.ok(fs.existsSync(path.join(xdg, 'categorize', 'models', 'shipped--mobilenetv2-int8@sha256-83530ad811bc', 'model.pooled.onnx')));
  assert.match(r.stderr, /features: image 1280 \+ tfidf \d+; \d+ classes \(preset embedded\)/);
});

test('the shipped model in models list, pull (a no-op) and verify; run uses the bundle\'s model from another empty cache', async () => {
  const cache = path.join(tmp, 'cache-models');
  let r = await runCli(['models', 'list'], { env: envFor({ categorizeCache: cache }) });
  ok(r);
  assert.match(r.stdout, /^image:mobilenetv2-int8\s+int8\s+3\.7 MB\s+sha256-83530\s+shipped\s+apache-2\.0$/m);
  r = await runCli(['models', 'pull', 'image:mobilenetv2-int8'], { env: envFor({ categorizeCache: cache }) });
  ok(r);
  assert.match(r.stdout, /^image:mobilenetv2-int8 \(int8\): shipped with categorize, nothing to download; sha256 83530ad811bc/m);
  assert.equal(fs.existsSync(path.join(cache, 'models')), false, 'pull of a shipped model writes nothing');
  r = await runCli(['models', 'verify'], { env: envFor({ categorizeCache: cache }) });
  ok(r);
  assert.match(r.stdout, /^1 files in 1 folders \(3\.7 MB; 1 shipped with categorize\) checked: all verified$/m);

  const out = path.join(tmp, 'embedded.jsonl');
  ok(await runCli(['run', catalogCsv, '--image-root', demoDir, '--model', path.join(tmp, 'bundle-embedded'), '-o', out, '-q'], { env: envFor({ categorizeCache: cache }) }));
  const rows = readJsonl(out);
  assert.equal(rows.length, 24);
  assert.ok(rows.every((x) => x.status === 'ok'), JSON.stringify(rows.find((x) => x.status !== 'ok')));
  // The run made the tap in its own cache; verify now re-hashes it too.
  r = await runCli(['models', 'verify', '-q'], { env: envFor({ categorizeCache: cache }) });
  ok(r);
  assert.match(r.stdout, /^2 files in 2 folders .* all verified$/m);
});

test('a cache holding both original models: train picks original; --preset embedded still uses the shipped model; conflicts are usage errors', async () => {
  const xdg = path.join(tmp, 'xdg-original');
  const env = envFor({ xdg });
  // The suite's tiny stand-ins, registered under the original models' ids (a user entry replaces the shipped one).
  const classifier = path.join(tmp, 'tiny-resnet.onnx');
  fs.writeFileSync(classifier, buildImageClassifier({ seed: 7, dim: 24, classes: 10 }));
  ok(await runCli(['models', 'add', textDir, '--kind', 'text', '--id', 'all-MiniLM-L6-v2', '-q'], { env }));
  ok(await runCli(['models', 'add', classifier, '--kind', 'image', '--id', 'resnet-50', '-q'], { env }));

  const original = path.join(tmp, 'bundle-original');
  let r = await runCli(['train', trainCsv, '--label-column', 'category', '-o', original, ...fit], { env });
  ok(r);
  const notes = categorizeLines(r.stderr, /^categorize: preset /);
  assert.deepEqual(notes, ['categorize: preset original: all-MiniLM-L6-v2 + resnet-50 from the model cache (--features text,image); --preset embedded trains on the shipped mobilenetv2-int8 + TF-IDF instead']);
  let m = manifestOf(original);
  assert.equal(m.preset, 'original');
  assert.deepEqual(m.features.map((b: { kind: string; model: { id: string } }) => `${b.kind} ${b.model.id}`), ['text text:all-MiniLM-L6-v2', 'image image:resnet-50']);

  const embedded = path.join(tmp, 'bundle-embedded-2');
  r = await runCli(['train', trainCsv, '--label-column', 'category', '--preset', 'embedded', '-o', embedded, ...fit], { env });
  ok(r);
  assert.deepEqual(categorizeLines(r.stderr, /^categorize: preset /), [], 'an explicit preset needs no note');
  m = manifestOf(embedded);
  assert.equal(m.preset, 'embedded');
  assert.equal(m.features[0].model.id, 'image:mobilenetv2-int8');

  // run never chooses: in this cache too, the embedded bundle runs on the shipped model it names.
  const out = path.join(tmp, 'embedded-in-original-cache.jsonl');
  ok(await runCli(['run', catalogCsv, '--image-root', demoDir, '--model', path.join(tmp, 'bundle-embedded'), '-o', out, '-q'], { env }));
  assert.deepEqual(readJsonl(out), readJsonl(path.join(tmp, 'embedded.jsonl')));

  r = await runCli(['train', trainCsv, '--label-column', 'category', '--preset', 'original', '--features', 'image,tfidf', '-o', path.join(tmp, 'x')], { env });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'categorize: error: --preset original trains on --features text,image; --features image,tfidf contradicts it (leave out --preset to choose features and models yourself)\n');
  r = await runCli(['train', trainCsv, '--label-column', 'category', '--preset', 'fast', '-o', path.join(tmp, 'x')], { env });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /argument 'fast' is invalid\. Allowed choices are original, embedded/);
});

test('--image-model file.onnx: a classifier export is tapped as models import does, or the output used is named', async () => {
  const xdg = path.join(tmp, 'xdg-files');
  const clf = path.join(tmp, 'classifier.onnx');
  fs.writeFileSync(clf, buildImageClassifier({ seed: 5, dim: 24, classes: 10 }));
  const bundle = path.join(tmp, 'bundle-file');
  let r = await runCli(['train', trainCsv, '--label-column', 'category', '--features', 'image', '--image-model', clf, '-o', bundle, ...fit], { env: envFor({ xdg }) });
  ok(r);
  assert.deepEqual(categorizeLines(r.stderr, /^categorize: image model /), [
    `categorize: image model ${clf}: a classifier export; its embedding is the pooled feature pooled_4d (GlobalAveragePool, 24-d) exposed as output 'pooled', as \`categorize models import\` does`,
  ]);
  const m = manifestOf(bundle);
  assert.equal(m.preset, undefined, 'features chosen by flags: no preset');
  assert.equal(m.features[0].dim, 24, 'the pooled feature, not the 10 logits');
  assert.equal(m.features[0].model.path, '../classifier.onnx');
  assert.equal(m.features[0].model.tap.source, 'pooled_4d');
  // Another machine's empty cache: run derives the same tapped graph again (same sha256) and runs.
  const out = path.join(tmp, 'file.jsonl');
  ok(await runCli(['run', catalogCsv, '--image-root', demoDir, '--model', bundle, '-o', out, '-q'], { env: envFor({ xdg: path.join(tmp, 'xdg-files-2') }) }));
  assert.ok(readJsonl(out).every((x) => x.status === 'ok'));

  // A classifier with no pool before it: used through its output, and said so.
  const g = new GraphBuilder('no_pool');
  const x = g.input('pixel_values', 'float', ['batch', 3, 224, 224]);
  const w = new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i) / 100);
  const conv = g.op('Conv', [x, g.initializer('conv.weight', w, [2, 3, 32, 32])], { kernel_shape: [32, 32], strides: [32, 32] });
  const flat = g.node('Flatten', [conv], ['flat'], { axis: 1 })[0]!;
  g.node('Gemm', [flat, g.initializer('fc.weight', new Float32Array(3 * 98).map((_, i) => Math.cos(i)), [3, 98])], ['logits'], { transB: 1 });
  g.output('logits', 'float', ['batch', 3]);
  const bare = path.join(tmp, 'bare.onnx');
  fs.writeFileSync(bare, g.toBytes({ opset: 17 }));
  r = await runCli(['train', trainCsv, '--label-column', 'category', '--features', 'image', '--image-model', bare, '-o', path.join(tmp, 'bundle-bare'), ...fit], { env: envFor({ xdg }) });
  ok(r);
  assert.deepEqual(categorizeLines(r.stderr, /^categorize: image model /), [
    `categorize: image model ${bare}: no global average pool found before its last matrix product, so its output 'logits' (3-d) is the embedding; if those are class scores, name the feature tensor with \`categorize models import ${bare} --tap <tensor>\``,
  ]);
  assert.equal(manifestOf(path.join(tmp, 'bundle-bare')).features[0].model.tap, undefined);
});
