// End to end: `categorize models …`, then train/run/eval on the pulled models, all against a loopback hub that
// serves the project's tiny models in the hub's layout. No test here touches the internet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, demo, ensureDemo, readJsonl, type CliResult } from '../helpers/cli.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';
import { buildImageClassifier, buildTextEncoder } from '../../fixtures/tiny-models.js';
import { repoRoot } from '../helpers/paths.js';

const TEXT_REPO = 'tiny-org/tiny-minilm';
const IMAGE_REPO = 'tiny-org/tiny-resnet';
const TEXT_COMMIT = 'a'.repeat(40);
const IMAGE_COMMIT = 'b'.repeat(40);
const sha = (b: Uint8Array | string) => crypto.createHash('sha256').update(b).digest('hex');

let hub: HubServer;
let tmp: string;
let registryFile: string;
const textDir = path.join(repoRoot, 'models', 'demo', 'encoders', 'text');
let textOnnx: Buffer;
let imageOnnx: Buffer;
let textQuantized: Buffer;

function envFor(cache: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CATEGORIZE_CACHE: cache,
    CATEGORIZE_REGISTRY: registryFile,
    HF_ENDPOINT: hub.endpoint,
    HF_HUB_OFFLINE: '',
    HF_TOKEN: '',
    CATEGORIZE_DOWNLOAD_BACKOFF_MS: '5',
    CATEGORIZE_DOWNLOAD_TIMEOUT_MS: '3000',
    NO_COLOR: '1',
    ...extra,
  };
}

const ok = (r: CliResult) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
const fileGets = () => hub.requests.filter((r) => r.method === 'GET').length;

before(async () => {
  await ensureDemo();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-models-e2e-'));
  hub = await startHubServer();
  textOnnx = fs.readFileSync(path.join(textDir, 'model.onnx'));
  textQuantized = Buffer.from(buildTextEncoder({ vocabSize: JSON.parse(fs.readFileSync(path.join(textDir, 'config.json'), 'utf8')).vocab_size, hidden: 32, seed: 99 }));
  imageOnnx = Buffer.from(buildImageClassifier({ seed: 7, dim: 24, classes: 10 }));
  const small = (f: string) => fs.readFileSync(path.join(textDir, f));
  hub.addRepo(TEXT_REPO, TEXT_COMMIT, {
    'onnx/model.onnx': textOnnx,
    'onnx/model_quantized.onnx': textQuantized,
    'tokenizer.json': small('tokenizer.json'),
    'tokenizer_config.json': small('tokenizer_config.json'),
    'config.json': small('config.json'),
  });
  hub.addRepo(IMAGE_REPO, IMAGE_COMMIT, { 'onnx/model.onnx': imageOnnx, 'config.json': '{"model_type":"resnet"}' });
  registryFile = path.join(tmp, 'registry.json');
  fs.writeFileSync(
    registryFile,
    JSON.stringify({
      format: 'categorize-registry',
      version: 1,
      defaults: { text: 'text:tiny-minilm', image: 'image:tiny-resnet' },
      models: [
        {
          id: 'text:tiny-minilm', kind: 'text', repository: TEXT_REPO, revision: null, license: 'apache-2.0',
          output: 'last_hidden_state', pooling: 'mean', normalize: true, dim: 32,
          preprocess: { tokenizer: ['tokenizer.json', 'tokenizer_config.json'], maxLength: 128 },
          variants: {
            fp32: { file: 'onnx/model.onnx', size: textOnnx.length, sha256: sha(textOnnx) },
            quantized: { file: 'onnx/model_quantized.onnx', size: textQuantized.length, sha256: sha(textQuantized) },
          },
          files: ['tokenizer.json', 'tokenizer_config.json', 'config.json'],
        },
        {
          // Like the real ResNet-50 export: only logits, hash unknown to the registry (the hub's LFS hash is used).
          id: 'image:tiny-resnet', kind: 'image', repository: IMAGE_REPO, revision: null, license: 'apache-2.0',
          output: 'logits', dim: 24, tap: 'auto',
          preprocess: { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
          variants: { fp32: { file: 'onnx/model.onnx', size: null, sha256: null } },
          files: ['config.json'],
        },
      ],
    }),
  );
});

after(async () => {
  await hub?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('pull fetches and verifies the defaults, taps the classifier; a second pull downloads nothing', async () => {
  const cache = path.join(tmp, 'cache-pull');
  let r = await runCli(['models', 'list'], { env: envFor(cache) });
  ok(r);
  assert.match(r.stdout, /text:tiny-minilm \*\s+fp32/);
  assert.match(r.stdout, /image:tiny-resnet \*\s+fp32\s+\?\s+unpinned\s+no/);

  const headsBefore = hub.requests.filter((q) => q.method === 'HEAD').length;
  r = await runCli(['models', 'pull'], { env: envFor(cache) });
  ok(r);
  // One HEAD per repository (which commit is 'main'); the files themselves are checked from their downloads.
  assert.equal(hub.requests.filter((q) => q.method === 'HEAD').length - headsBefore, 2);
  assert.match(r.stdout, /text:tiny-minilm \(fp32\) @ aaaaaaaaaaaa: 4 files, 4 downloaded; sha256: 1 pinned by the registry, 3 recorded on arrival/);
  assert.match(r.stdout, /image:tiny-resnet \(fp32\) @ bbbbbbbbbbbb: 2 files, 2 downloaded; sha256: 1 the hub's LFS sha256, 1 recorded on arrival; embedding output '\w+' tapped from /);
  const textFolder = path.join(cache, 'models', `tiny-org--tiny-minilm@${TEXT_COMMIT}`);
  assert.deepEqual(fs.readFileSync(path.join(textFolder, 'onnx', 'model.onnx')), textOnnx);
  const record = JSON.parse(fs.readFileSync(path.join(cache, 'models', `tiny-org--tiny-resnet@${IMAGE_COMMIT}`, '.categorize-pull.json'), 'utf8'));
  assert.equal(record.files['onnx/model.onnx'].verified, 'hub', 'the image file is checked against the hub’s LFS sha256');
  assert.equal(record.files['onnx/model.onnx'].sha256, sha(imageOnnx));
  assert.equal(record.taps['onnx/model.onnx'].file, 'onnx/model.pooled.onnx');
  assert.equal(fs.readFileSync(path.join(cache, 'refs', 'tiny-org--tiny-minilm', 'main'), 'utf8').trim(), TEXT_COMMIT);

  const gets = fileGets();
  r = await runCli(['models', 'pull'], { env: envFor(cache) });
  ok(r);
  assert.match(r.stdout, /all cached; sha256: /);
  assert.equal(fileGets(), gets, 'a cache hit downloads nothing');

  r = await runCli(['models', 'list'], { env: envFor(cache) });
  assert.match(r.stdout, /text:tiny-minilm \*\s+fp32\s+[\d.]+ kB\s+aaaaaaaaaaaa \(resolved\)\s+yes/);
  assert.match(r.stdout, /text:tiny-minilm\s+quantized\s+[\d.]+ kB\s+aaaaaaaaaaaa \(resolved\)\s+partial/);

  r = await runCli(['models', 'list', '--json'], { env: envFor(cache) });
  const rows = JSON.parse(r.stdout) as { id: string; variant: string; cached: string }[];
  assert.equal(rows.find((x) => x.id === 'image:tiny-resnet')?.cached, 'complete');
});

test('pull of a variant; verify passes, then catches a corrupted file with exit 1', async () => {
  const cache = path.join(tmp, 'cache-verify');
  ok(await runCli(['models', 'pull', 'tiny-minilm', '--variant', 'quantized', '-q'], { env: envFor(cache) }));
  let r = await runCli(['models', 'verify'], { env: envFor(cache) });
  ok(r);
  // The cache's 4 files, and the image model shipped in the package (whatever the registry: CATEGORIZE_REGISTRY here).
  assert.match(r.stdout, /5 files in 2 folders .*1 shipped with categorize\) checked: all verified/);
  const file = path.join(cache, 'models', `tiny-org--tiny-minilm@${TEXT_COMMIT}`, 'onnx', 'model_quantized.onnx');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(file, bytes);
  r = await runCli(['models', 'verify'], { env: envFor(cache) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /MISMATCH .*model_quantized\.onnx: sha256 [0-9a-f]{64}, recorded [0-9a-f]{64}/);
  // Pulling again repairs it: the file no longer matches its pinned hash, so it is fetched anew.
  ok(await runCli(['models', 'pull', 'text:tiny-minilm:quantized', '-q'], { env: envFor(cache) }));
  ok(await runCli(['models', 'verify', '-q'], { env: envFor(cache) }));
});

test('offline: a missing model is a clear error naming the file and the command; a cached one needs no network', async () => {
  const cache = path.join(tmp, 'cache-offline');
  const before = hub.requests.length;
  let r = await runCli(['models', 'pull', 'text:tiny-minilm'], { env: envFor(cache, { HF_HUB_OFFLINE: '1' }) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^categorize: error: text model text:tiny-minilm \(fp32\) is not in the model cache .* \(never pulled\); offline/m);
  assert.equal(hub.requests.length, before, 'offline never touches the network');
  ok(await runCli(['models', 'pull', 'text:tiny-minilm', '-q'], { env: envFor(cache) }));
  fs.rmSync(path.join(cache, 'models', `tiny-org--tiny-minilm@${TEXT_COMMIT}`, 'tokenizer.json'));
  const n = hub.requests.length;
  r = await runCli(['models', 'pull', 'text:tiny-minilm', '--offline'], { env: envFor(cache) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is not in the model cache .*\(missing tokenizer\.json\)/);
  assert.equal(hub.requests.length, n);
  ok(await runCli(['models', 'pull', 'text:tiny-minilm', '-q'], { env: envFor(cache) }));
  const m = hub.requests.length;
  r = await runCli(['models', 'pull', 'text:tiny-minilm', '--offline'], { env: envFor(cache) });
  ok(r);
  assert.match(r.stdout, /all cached; sha256: /);
  assert.equal(hub.requests.length, m, 'no request made offline');
});

test('a connection cut mid-file during pull resumes with a range request instead of starting over', async () => {
  const cache = path.join(tmp, 'cache-cut');
  hub.failNext(TEXT_REPO, 'onnx/model.onnx', { cutAfterBytes: Math.floor(textOnnx.length / 2) });
  const n = hub.requests.length;
  const r = await runCli(['models', 'pull', 'text:tiny-minilm', '-q'], { env: envFor(cache) });
  ok(r);
  const ranged = hub.requests.slice(n).filter((q) => q.range);
  assert.ok(ranged.some((q) => /^bytes=[1-9]\d*-$/.test(q.range!)), `expected a resumed range request, saw ${JSON.stringify(hub.requests.slice(n))}`);
  assert.deepEqual(fs.readFileSync(path.join(cache, 'models', `tiny-org--tiny-minilm@${TEXT_COMMIT}`, 'onnx', 'model.onnx')), textOnnx);
});

test('a 404 from the hub is one clear line with exit 1', async () => {
  const cache = path.join(tmp, 'cache-404');
  hub.failNext(TEXT_REPO, 'config.json', { status: 404 });
  const r = await runCli(['models', 'pull', 'text:tiny-minilm', '-q'], { env: envFor(cache) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^categorize: error: .*config\.json.*/m);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('two concurrent pulls into one cache both succeed and leave one verified copy', async () => {
  const cache = path.join(tmp, 'cache-concurrent');
  const [a, b] = await Promise.all([runCli(['models', 'pull', '-q'], { env: envFor(cache) }), runCli(['models', 'pull', '-q'], { env: envFor(cache) })]);
  ok(a);
  ok(b);
  ok(await runCli(['models', 'verify', '-q'], { env: envFor(cache) }));
  const leftovers = fs.readdirSync(cache, { recursive: true }).map(String).filter((f) => /\.(part|lock|tmp)$/.test(f));
  assert.deepEqual(leftovers, []);
});

test('train on registry models records id, revision and hash; run resolves them from the cache; never downloads unless allowed', async () => {
  const cache = path.join(tmp, 'cache-train');
  const bundle = path.join(tmp, 'bundle-registry');
  const out = path.join(tmp, 'registry-run.jsonl');
  const out2 = path.join(tmp, 'registry-run-2.jsonl');
  const out3 = path.join(tmp, 'registry-run-3.jsonl');
  // Not cached and downloads not allowed: fails before reading the catalog, naming the pull command.
  let r = await runCli(['train', demo.train, '--label-column', 'category', '--features', 'text,image,tfidf', '--C', '1', '-o', bundle, '-q'], { env: envFor(cache) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /text model text:tiny-minilm \(fp32\) is not in the model cache .*categorize models pull text:tiny-minilm.*--allow-download/);
  assert.equal(fs.existsSync(bundle), false);

  r = await runCli(['train', demo.train, '--label-column', 'category', '--features', 'text,image,tfidf', '--C', '1', '-o', bundle, '-q', '--allow-download'], { env: envFor(cache) });
  ok(r);
  const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
  const [text, image] = manifest.features;
  assert.equal(text.model.id, 'text:tiny-minilm');
  assert.equal(text.model.revision, TEXT_COMMIT);
  assert.equal(text.model.sha256, sha(textOnnx));
  assert.equal(text.model.path, undefined, 'a registry model is found through the cache, not a path');
  assert.equal(image.model.id, 'image:tiny-resnet');
  assert.equal(image.dim, 24);
  assert.ok(image.model.tap?.output, 'the tap is recorded in the bundle');

  const gets = fileGets();
  r = await runCli(['run', demo.catalog, '--model', bundle, '-o', out, '-q'], { env: envFor(cache, { HF_HUB_OFFLINE: '1' }) });
  ok(r);
  assert.equal(fileGets(), gets);
  const rows = readJsonl(out);
  assert.equal(rows.length, fs.readFileSync(demo.catalog, 'utf8').trim().split('\n').length - 1);
  assert.ok(rows.every((x) => x.status === 'ok' || x.status === 'error'));

  // Another machine with an empty cache: refused before any row is read, unless --allow-download.
  const fresh = path.join(tmp, 'cache-train-fresh');
  r = await runCli(['run', demo.catalog, '--model', bundle, '-o', out2, '-q'], { env: envFor(fresh) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`categorize models pull text:tiny-minilm --revision ${TEXT_COMMIT}|categorize models pull text:tiny-minilm`));
  assert.equal(fs.existsSync(out2), false);
  ok(await runCli(['run', demo.catalog, '--model', bundle, '-o', out2, '-q', '--allow-download'], { env: envFor(fresh) }));
  assert.deepEqual(readJsonl(out2), rows);

  // The cached model changed under the bundle: refused, or used with a warning when asked.
  const cached = path.join(cache, 'models', `tiny-org--tiny-minilm@${TEXT_COMMIT}`, 'onnx', 'model.onnx');
  fs.writeFileSync(cached, textQuantized); // a valid model of the same shape, other weights
  r = await runCli(['run', demo.catalog, '--model', bundle, '-o', out3, '-q'], { env: envFor(cache) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is not the expected one .*sha256 [0-9a-f]{64}, expected [0-9a-f]{64}.*--ignore-model-mismatch/);
  r = await runCli(['run', demo.catalog, '--model', bundle, '-o', out3, '--ignore-model-mismatch'], { env: envFor(cache) });
  ok(r);
  assert.match(r.stderr, /warning: .*used anyway \(--ignore-model-mismatch\)/);
});

test('models info describes an ONNX file; models add registers a local model that train can name', async () => {
  const cache = path.join(tmp, 'cache-add');
  const file = path.join(tmp, 'my-classifier.onnx');
  fs.writeFileSync(file, imageOnnx);
  let r = await runCli(['models', 'info', file], { env: envFor(cache) });
  ok(r);
  assert.match(r.stdout, /pixel_values/);
  assert.match(r.stdout, /logits/);
  assert.ok(r.stdout.includes(sha(imageOnnx)));
  r = await runCli(['models', 'info', file, '--json'], { env: envFor(cache) });
  assert.equal(JSON.parse(r.stdout).sha256, sha(imageOnnx));

  r = await runCli(['models', 'add', file, '--kind', 'image', '--id', 'my-cnn'], { env: envFor(cache) });
  ok(r);
  assert.match(r.stdout, /image:my-cnn added .* tapped from /);
  r = await runCli(['models', 'list'], { env: envFor(cache) });
  assert.match(r.stdout, /image:my-cnn\s+fp32\s+[\d.]+ kB\s+sha256-[0-9a-f]{5}/);
  const bundle = path.join(tmp, 'bundle-added');
  ok(await runCli(['train', demo.train, '--label-column', 'category', '--features', 'image', '--image-model', 'my-cnn', '-o', bundle, '-q', '--offline'], { env: envFor(cache) }));
  const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
  assert.equal(manifest.features[0].model.id, 'image:my-cnn');
  ok(await runCli(['models', 'verify', '-q'], { env: envFor(cache) }));

  r = await runCli(['models', 'add', path.join(tmp, 'nope.onnx'), '--kind', 'image', '--id', 'x'], { env: envFor(cache) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /does not exist/);
});

test('an unknown model reference names the known ones', async () => {
  const r = await runCli(['train', demo.train, '--label-column', 'category', '--features', 'text', '--text-model', 'no-such-model', '-o', path.join(tmp, 'x'), '-q'], { env: envFor(path.join(tmp, 'cache-unknown')) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown model 'no-such-model' \(text\).*known: text:tiny-minilm/);
});
