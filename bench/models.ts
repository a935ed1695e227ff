// The benchmark's encoders: all-MiniLM-L6-v2's and torchvision ResNet-50's exact shapes with seeded random
// weights, so timings measure real-size inference without downloading real weights (there is no network here).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { GraphBuilder, attr, tensorDims, writeModel } from '../src/models/onnx-graph.js';
import { bertConfigJson, buildTextEncoderGraph, buildWordPieceTokenizer, mulberry32, normalSource, writeTextModelFiles } from '../fixtures/tiny-models.js';
import { CATALOG_PUNCTUATION, catalogVocabulary } from './catalog.js';

/** Bump when a model's graph, weights or files change: cached models of another version are rebuilt. */
export const BENCH_MODELS_VERSION = 1;

export interface BenchModels {
  textDir: string;
  imageDir: string;
  textParams: number;
  imageParams: number;
  textShape: string;
  imageShape: string;
}

/** sentence-transformers/all-MiniLM-L6-v2 (its config.json). */
export const MINILM_SHAPE = { layers: 6, hidden: 384, heads: 12, ffn: 1536, vocab: 30522, maxPositions: 512, typeVocab: 2 } as const;

/** What PyTorch's sum(p.numel() for p in model.parameters()) gives for the real models. */
export const REAL_PARAMS = {
  /** BertModel of all-MiniLM-L6-v2, pooler included (its ONNX export drops the 147,840 pooler weights). */
  text: 22_713_216,
  /** torchvision.models.resnet50() without fc (2048 x 1000 + 1000). */
  image: 23_508_032,
} as const;

const TEXT_SHAPE = `BERT: ${MINILM_SHAPE.layers} layers, hidden ${MINILM_SHAPE.hidden}, ${MINILM_SHAPE.heads} heads, FFN ${MINILM_SHAPE.ffn}, ` +
  `vocab ${MINILM_SHAPE.vocab}, ${MINILM_SHAPE.maxPositions} positions, pooler (all-MiniLM-L6-v2's shape)`;
const IMAGE_SHAPE = 'ResNet-50 v1.5 (torchvision): conv 7x7/2 + BN + max pool, bottlenecks [3, 4, 6, 3] x 64/128/256/512 (x4), ' +
  'global average pool -> pooler_output [N, 2048, 1, 1] from 224x224';

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultRoot = path.resolve(here, '..', '..');

interface Manifest {
  version: number;
  seed: number;
  textParams: number;
  imageParams: number;
  vocabSize: number;
}

/** Builds once, cached under bench/.models/<version>/ (git-ignored; rebuild when a version constant changes). */
export async function ensureBenchModels(opts: { root?: string; log?: (line: string) => void; seed?: number } = {}): Promise<BenchModels> {
  const seed = opts.seed ?? 1;
  const log = opts.log ?? (() => {});
  const dir = path.join(opts.root ?? defaultRoot, 'bench', '.models', `v${BENCH_MODELS_VERSION}-seed${seed}`);
  const result = (m: Manifest): BenchModels => ({
    textDir: path.join(dir, 'text'),
    imageDir: path.join(dir, 'image'),
    textParams: m.textParams,
    imageParams: m.imageParams,
    textShape: TEXT_SHAPE,
    imageShape: IMAGE_SHAPE,
  });

  const cached = readManifest(dir);
  if (cached?.version === BENCH_MODELS_VERSION && cached.seed === seed) {
    checkVocab(path.join(dir, 'text'), cached.vocabSize);
    logParams(log, cached);
    return result(cached);
  }

  // Written to a temporary sibling and renamed when complete, so an interrupted build is never reused.
  const t0 = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  let manifest: Manifest;
  try {
    const text = writeBenchTextModel(path.join(tmp, 'text'), seed);
    log(`models: text encoder built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const t1 = performance.now();
    const imageParams = writeBenchImageModel(path.join(tmp, 'image'), seed);
    log(`models: image encoder built in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    manifest = { version: BENCH_MODELS_VERSION, seed, textParams: text.params, imageParams, vocabSize: text.vocabSize };
    logParams(log, manifest);
    await smokeTest(path.join(tmp, 'text', 'model.onnx'), path.join(tmp, 'image', 'model.onnx'));
    fs.writeFileSync(path.join(tmp, 'bench-models.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  log(`models: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${dir}`);
  return result(manifest);
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'bench-models.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

function logParams(log: (line: string) => void, m: Manifest): void {
  const f = (n: number): string => n.toLocaleString('en-US');
  const line = (what: string, ours: number, real: number, name: string): string =>
    `models: ${what} ${f(ours)} parameters (${name}: ${f(real)}, ${(((ours - real) / real) * 100).toFixed(3)}%)`;
  log(line('text ', m.textParams, REAL_PARAMS.text, 'all-MiniLM-L6-v2 incl. pooler'));
  log(line('image', m.imageParams, REAL_PARAMS.image, 'torchvision ResNet-50 without fc'));
  checkParams(m.textParams, REAL_PARAMS.text, 'text');
  checkParams(m.imageParams, REAL_PARAMS.image, 'image');
}

function checkParams(ours: number, real: number, what: string): void {
  if (Math.abs(ours - real) > 0.01 * real) {
    throw new Error(`bench ${what} model has ${ours} parameters, more than 1% off the real model's ${real}: its shape is wrong`);
  }
}

/** Tokenizer and embedding matrix must agree, or ids past the matrix would fail (or silently alias) at run time. */
function checkVocab(textDir: string, expected: number): void {
  const tok = JSON.parse(fs.readFileSync(path.join(textDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
  const ids = Object.values(tok.model.vocab);
  if (ids.length !== expected || Math.max(...ids) !== expected - 1) {
    throw new Error(`${textDir}: tokenizer has ${ids.length} tokens (max id ${Math.max(...ids)}), the model's embedding has ${expected} rows`);
  }
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The text model folder: the catalog's words as WordPiece vocabulary (so catalog text becomes one token per word,
 * about what the real uncased vocabulary gives for English), padded with BERT's `[unusedN]` filler tokens to
 * exactly 30,522 entries so the embedding matrix, and with it the model size, is the real one.
 */
function writeBenchTextModel(dir: string, seed: number): { params: number; vocabSize: number } {
  const target = MINILM_SHAPE.vocab;
  const tok = buildWordPieceTokenizer([...catalogVocabulary(seed), CATALOG_PUNCTUATION, '0123456789'], { maxVocab: target });
  if (tok.vocab.length > target) throw new Error(`catalog vocabulary needs ${tok.vocab.length} tokens, more than ${target}`);
  const vocab = (tok.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
  // "[unusedN]" can never come out of the pre-tokenizer (brackets are split off), so the fillers change no tokenization.
  for (let n = 0; tok.vocab.length < target; n++) {
    const filler = `[unused${n}]`;
    vocab[filler] = tok.vocab.length;
    tok.vocab.push(filler);
  }

  const graph = buildTextEncoderGraph({
    vocabSize: target,
    hidden: MINILM_SHAPE.hidden,
    layers: MINILM_SHAPE.layers,
    heads: MINILM_SHAPE.heads,
    ffn: MINILM_SHAPE.ffn,
    maxPositions: MINILM_SHAPE.maxPositions,
    typeVocab: MINILM_SHAPE.typeVocab,
    seed,
    pooler: true,
  });
  const params = graph.parameterCount(); // every initializer: BERT's weights plus a few shape constants
  const model = graph.toModel({ opset: 17, producer: 'categorize-bench' });
  const rows = tensorDims(model.graph!.initializer!.find((t) => t.name === 'embeddings.word_embeddings.weight')!)[0];
  if (rows !== tok.vocab.length || Object.keys(vocab).length !== tok.vocab.length) {
    throw new Error(`tokenizer has ${tok.vocab.length} tokens but the word embedding has ${rows} rows`);
  }

  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.onnx'), writeModel(model));
  writeJson(path.join(dir, 'tokenizer.json'), tok.tokenizerJson);
  writeJson(path.join(dir, 'tokenizer_config.json'), tok.tokenizerConfigJson);
  // The same files fixtures' writeTextModelDir writes, at MiniLM's shape.
  writeTextModelFiles(dir, { config: bertConfigJson({ ...MINILM_SHAPE, vocabSize: target }), dim: MINILM_SHAPE.hidden, maxLength: 256 });
  return { params, vocabSize: tok.vocab.length };
}

function writeBenchImageModel(dir: string, seed: number): number {
  const { graph, params } = buildResNet50(seed);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.onnx'), graph.toBytes({ opset: 17, producer: 'categorize-bench' }));
  writeJson(path.join(dir, 'categorize-model.json'), {
    kind: 'image',
    output: 'pooler_output',
    dim: 2048,
    preprocess: { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  });
  return params;
}

/**
 * torchvision's resnet50 up to the pooled features, initializers named as in its state_dict. Weights: He-normal
 * convs (fan_out, as torchvision initialises them); BatchNormalization nodes kept as such, as an export has them
 * before ONNX Runtime folds them into the convs. Their statistics are near identity (gamma ~1, beta ~0, mean ~0,
 * var ~1) because, untrained, nothing would normalise activations: with these, the 16 residual blocks grow the
 * activations by a bounded factor and the output stays finite. Returns the PyTorch-style parameter count
 * (conv weights, BN weight and bias; running statistics are buffers, not parameters).
 */
export function buildResNet50(seed: number): { graph: GraphBuilder; params: number } {
  const normal = normalSource(mulberry32(seed ^ 0x7e5e7));
  const g = new GraphBuilder('resnet50');
  let params = 0;
  const randn = (n: number, std: number, mean = 0): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * normal();
    return out;
  };
  const conv = (x: string, name: string, cin: number, cout: number, k: number, stride: number): string => {
    const n = cout * cin * k * k;
    params += n;
    const w = g.initializer(`${name}.weight`, randn(n, Math.sqrt(2 / (cout * k * k))), [cout, cin, k, k]);
    const pad = (k - 1) / 2;
    return g.op('Conv', [x, w], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] });
  };
  const bn = (x: string, name: string, c: number): string => {
    params += 2 * c;
    const scale = g.initializer(`${name}.weight`, randn(c, 0.05, 1), [c]);
    const bias = g.initializer(`${name}.bias`, randn(c, 0.02), [c]);
    const mean = g.initializer(`${name}.running_mean`, randn(c, 0.02), [c]);
    const variance = randn(c, 0.05).map((v) => Math.exp(v)); // positive, ~1
    const v = g.initializer(`${name}.running_var`, variance, [c]);
    return g.op('BatchNormalization', [x, scale, bias, mean, v], { epsilon: attr.float(1e-5), momentum: attr.float(0.9) });
  };
  const relu = (x: string): string => g.op('Relu', [x]);

  let x = g.input('pixel_values', 'float', ['batch', 3, 224, 224]);
  x = relu(bn(conv(x, 'conv1', 3, 64, 7, 2), 'bn1', 64));
  x = g.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  let cin = 64;
  const blocks = [3, 4, 6, 3];
  const widths = [64, 128, 256, 512];
  for (let l = 0; l < 4; l++) {
    const width = widths[l]!;
    const cout = width * 4;
    for (let b = 0; b < blocks[l]!; b++) {
      const p = `layer${l + 1}.${b}`;
      const stride = b === 0 && l > 0 ? 2 : 1; // v1.5: the stride sits on the 3x3 conv, not the first 1x1
      let y = relu(bn(conv(x, `${p}.conv1`, cin, width, 1, 1), `${p}.bn1`, width));
      y = relu(bn(conv(y, `${p}.conv2`, width, width, 3, stride), `${p}.bn2`, width));
      y = bn(conv(y, `${p}.conv3`, width, cout, 1, 1), `${p}.bn3`, cout);
      const identity = b === 0 ? bn(conv(x, `${p}.downsample.0`, cin, cout, 1, stride), `${p}.downsample.1`, cout) : x;
      x = relu(g.op('Add', [y, identity]));
      cin = cout;
    }
  }
  g.node('GlobalAveragePool', [x], ['pooler_output']);
  g.output('pooler_output', 'float', ['batch', 2048, 1, 1]);
  return { graph: g, params };
}

/** One forward pass of each fresh model: they must load in ONNX Runtime and give finite, non-zero outputs. */
async function smokeTest(textModel: string, imageModel: string): Promise<void> {
  const rand = mulberry32(7);
  const check = (what: string, data: Float32Array): void => {
    if (!data.every(Number.isFinite)) throw new Error(`bench ${what} model gives non-finite outputs`);
    if (data.every((v) => v === 0)) throw new Error(`bench ${what} model gives all-zero outputs`);
  };
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', executionProviders: ['cpu'] };

  const text = await ort.InferenceSession.create(textModel, opts);
  const seq = 16;
  const ids = BigInt64Array.from({ length: seq }, (_, i) => BigInt(i === 0 ? 2 : i === seq - 1 ? 3 : 5 + Math.floor(rand() * 4000)));
  const ones = new BigInt64Array(seq).fill(1n);
  const out = await text.run({
    input_ids: new ort.Tensor('int64', ids, [1, seq]),
    attention_mask: new ort.Tensor('int64', ones, [1, seq]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(seq), [1, seq]),
  });
  check('text', out.last_hidden_state!.data as Float32Array);
  await text.release();

  const image = await ort.InferenceSession.create(imageModel, opts);
  const pixels = Float32Array.from({ length: 3 * 224 * 224 }, () => 2 * rand() - 1);
  const pooled = (await image.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 224, 224]) })).pooler_output!;
  if (pooled.dims.join(',') !== '1,2048,1,1') throw new Error(`bench image model output has shape [${pooled.dims.join(', ')}]`);
  check('image', pooled.data as Float32Array);
  await image.release();
}
