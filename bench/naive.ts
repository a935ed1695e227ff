// The original service's way, in our own building blocks: each row alone — read and preprocess its image, embed its
// text (batch 1), embed its image (batch 1), run the head, pick tags — one after the other on one thread. The
// baseline `categorize run` must never be slower than. Run as a child of bench/index.ts, so its RSS is its own:
//
//   node dist/bench/naive.js --bundle DIR --csv FILE --image-root DIR [--device cpu] [--threads 2]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openCatalog } from '../src/io/catalog-reader.js';
import { isEncoderBlock, loadBundle } from '../src/models/bundle.js';
import { resolveImageModel, resolveTextModel } from '../src/models/model-dir.js';
import { TextEncoder } from '../src/embed/text-encoder.js';
import { ImageEncoder } from '../src/embed/image-encoder.js';
import { preprocessImage } from '../src/embed/image-preprocess.js';
import { Classifier, topClasses } from '../src/head/classifier.js';
import { topTags } from '../src/head/tfidf.js';
import { assembleFeatures, bundleLayout, rowText, tfidfDense } from '../src/pipeline/features.js';
import { loadImageBytes, resolveImageRef } from '../src/io/image-source.js';

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    csv: { type: 'string' },
    'image-root': { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '0' },
  },
});

const bundle = loadBundle(args.bundle!);
const session = { device: args.device as 'cpu', threads: Number(args.threads) };
const blocks = bundle.manifest.features.filter(isEncoderBlock);
const textBlock = blocks.find((b) => b.kind === 'text');
const imageBlock = blocks.find((b) => b.kind === 'image');
const started = performance.now();
const text = textBlock ? await TextEncoder.load(resolveTextModel(path.resolve(bundle.dir, textBlock.model.path!)), session) : undefined;
const image = imageBlock ? await ImageEncoder.load(resolveImageModel(path.resolve(bundle.dir, imageBlock.model.path!)), session) : undefined;
const classifier = await Classifier.load(bundle, session);
const layout = bundleLayout(bundle);
const startupSeconds = (performance.now() - started) / 1000;
const catalog = await openCatalog(args.csv!, {
  columns: { id: 'id', title: 'title', description: 'description', image: ['image'], require: { text: true, image: false }, extra: [] },
});
const fetch = { timeoutMs: 15000, retries: 0, maxBytes: 20 * 1024 * 1024 };
let rows = 0;
let errors = 0;
let firstError: unknown;
const t0 = performance.now();
for await (const row of catalog.rows) {
  const t = rowText(row);
  const vectors: Record<string, Float32Array> = {};
  try {
    if (image && row.image) {
      const bytes = await loadImageBytes(resolveImageRef(row.image, { baseDir: args['image-root']! }), fetch);
      vectors.image = await image.embed(await preprocessImage(bytes, imageBlock!.kind === 'image' ? imageBlock!.preprocess : (undefined as never)), 1);
    }
    if (text && t) vectors.text = await text.embed([t]);
    if (bundle.tfidfBlock && t && layout.blocks.some((b) => b.kind === 'tfidf')) vectors.tfidf = tfidfDense(bundle.tfidfBlock, t);
    const x = assembleFeatures({ vectors, ok: true, text: t, warnings: [], error: null }, layout);
    const probs = await classifier.predict(x, 1);
    topClasses(probs, classifier.classes, 3);
    if (bundle.tfidf) topTags(bundle.tfidf, t, 5);
  } catch (err) {
    errors++;
    firstError ??= err;
  }
  rows++;
}
const seconds = (performance.now() - t0) / 1000;
await text?.dispose();
await image?.dispose();
await classifier.dispose();
// Every synthetic row is valid: an error means this pipeline is broken, and its speed would mean nothing.
if (errors > 0) {
  process.stderr.write(`naive pipeline: ${errors}/${rows} rows failed, the first with: ${firstError instanceof Error ? firstError.message : String(firstError)}\n`);
  process.exit(1);
}
const result = { rows, errors, startupSeconds, seconds, rowsPerSecond: rows / seconds, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) };
fs.writeSync(1, JSON.stringify(result) + '\n');
