// Pooled image features of every row of a catalog, in file order, through the project's own image pipeline (the
// `--preset embedded` model, train's default preprocessing, FeatureExtractor + collectFeatures, --cache honoured):
//   [CATEGORIZE_CACHE=DIR] node dist/scripts/export-image-features.js CATALOG.csv --out PREFIX [--cache DIR] [--image-preprocessing fast|exact] [train's pipeline flags]
// Writes PREFIX.f32 (rows × dim float32, little endian; a row whose photo failed is all zeros) and PREFIX.json
// ({ ids, dim, ok: [bool per row], model, ... }). For reference scripts (scripts/reference/attributes_reference.py).
import fs from 'node:fs';
import os from 'node:os';
import { Command, Option } from 'commander';
import { addPipelineOptions, pipelineOptions, type PipelineFlags } from '../src/cli/pipeline-options.js';
import { openCatalog } from '../src/io/catalog-reader.js';
import { chooseStack } from '../src/models/preset.js';
import { resolveModel } from '../src/models/resolve.js';
import { resolveImageModel } from '../src/models/model-dir.js';
import { IMAGE_PREPROCESSING, withPreprocessing, type ImagePreprocessing } from '../src/embed/image-preprocess.js';
import { openEncoders } from '../src/pipeline/encoders.js';
import { FeatureExtractor } from '../src/pipeline/features.js';
import { collectFeatures, type CollectedRow } from '../src/pipeline/collect.js';
import { cacheSummary, openEmbedCache } from '../src/pipeline/bundle-session.js';
import { DEFAULT_IMAGE_PREPROCESSING } from '../src/commands/train.js';
import { reasonCode } from '../src/errors.js';

type Flags = PipelineFlags & { out: string; imagePreprocessing: ImagePreprocessing };

async function main(input: string, f: Flags): Promise<void> {
  const started = performance.now();
  const opts = pipelineOptions(f, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }, process.env);
  const stack = chooseStack({ preset: 'embedded' }, opts.models);
  const image = await resolveModel('image', stack.imageModel, opts.models);
  // As train does: the model folder's preprocessing with the chosen resize method (the bundle's image block).
  const base = image.request.image ?? resolveImageModel(image.request.location, image.request.file).preprocess;
  image.request.image = withPreprocessing(base, f.imagePreprocessing);
  const catalog = await openCatalog(input, { columns: { ...opts.columns, require: { text: false, image: true }, extra: [] }, delimiter: opts.delimiter });
  const encoders = await openEncoders([image.request], opts);
  encoders.notices.forEach((n) => opts.log(n));
  const spec = encoders.specs.image!;
  const dim = encoders.image!.dim;
  const cache = openEmbedCache(opts.embedCache, opts.log);
  let rows: CollectedRow[];
  let cacheStats: ReturnType<typeof cacheSummary> = null;
  try {
    const extractor = new FeatureExtractor([{ kind: 'image', offset: 0, dim, model: {}, preprocess: spec.preprocess }], undefined, encoders.image, {
      ...opts,
      imageRoot: opts.imageRoot ?? catalog.baseDir,
      cache,
      identity: encoders.identity,
      decoder: encoders.decoder,
    });
    rows = await collectFeatures(catalog.rows, extractor, { window: opts.window });
    cacheStats = cacheSummary(cache);
  } finally {
    await cache?.close();
    await encoders.close();
  }
  const matrix = new Float32Array(rows.length * dim);
  const failures: Record<string, number> = {};
  const failed: { id: string; error: string }[] = [];
  rows.forEach((r, i) => {
    const v = r.vectors.image;
    if (v) {
      matrix.set(v, i * dim);
      return;
    }
    const why = r.error ?? (r.warnings.join('; ') || 'no image vector');
    failures[reasonCode(why)] = (failures[reasonCode(why)] ?? 0) + 1;
    failed.push({ id: r.row.id, error: why });
  });
  // Float32Array is host-endian: refuse to write anything but little endian.
  if (os.endianness() !== 'LE') throw new Error('big-endian host: .f32 must be little endian');
  fs.writeFileSync(`${f.out}.f32`, new Uint8Array(matrix.buffer, matrix.byteOffset, matrix.byteLength));
  const meta = {
    input,
    ids: rows.map((r) => r.row.id),
    dim,
    ok: rows.map((r) => r.vectors.image !== undefined),
    model: { ...image.ref, onnx: encoders.files.image, output: spec.output, preprocess: spec.preprocess, identity: encoders.identity.image, provider: encoders.providers.image },
    failures,
    failed,
    cache: cacheStats,
    seconds: (performance.now() - started) / 1000,
  };
  fs.writeFileSync(`${f.out}.json`, JSON.stringify(meta) + '\n');
  opts.log(`${rows.length} rows × ${dim} → ${f.out}.f32 (${failed.length} without an image vector${failed.length ? `: ${JSON.stringify(failures)}` : ''}); cache ${cacheStats ? `${cacheStats.hits} hits, ${cacheStats.misses} misses` : 'none'}; ${meta.seconds.toFixed(1)} s`);
}

const program = addPipelineOptions(new Command('export-image-features').argument('<input>', 'catalog CSV or TSV'), 'choose')
  .requiredOption('--out <prefix>', 'writes <prefix>.f32 and <prefix>.json')
  .addOption(new Option('--image-preprocessing <mode>', 'as train: exact or fast').choices([...IMAGE_PREPROCESSING]).default(DEFAULT_IMAGE_PREPROCESSING))
  .action(main);
program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
