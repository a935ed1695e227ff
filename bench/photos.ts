// Real photos in the pipeline: `categorize run` on full-size product photos (flipkart originals, up to 22 MP) with the
// real int8 MobileNetV2, for each image preprocessing (train --image-preprocessing exact|fast: a bundle each), against
// the bounds that can set its pace — the model alone, the decoding alone, and both on the same cores — measured side
// by side in one run on the same rows, plus peak RSS and the --max-image-pixels guard.
//
//   node dist/bench/photos.js                 # the 40 originals of ../shared flipkart-products, repeated to ~1,000 rows
//   node dist/bench/photos.js --rows 200 --run-repeats 1 --max-pixels-check 10000000
//
// Needs ../shared (the int8 MobileNetV2 and flipkart-products/originals); without it, says so and exits 0.
// Writes bench/results/<date>-<host>-photos.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Command } from 'commander';
import ort from 'onnxruntime-node';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { addPipelineOptions, defaultBatchSize } from '../src/cli/pipeline-options.js';
import { IMAGE_PREPROCESSING, imagenetPreprocess, preprocessImage, preprocessingOf, type ImagePreprocessing, type ImagePreprocessSpec } from '../src/embed/image-preprocess.js';
import { ImageDecoderPool, inThreadDecoder } from '../src/runtime/image-decoder.js';
import { imageDecoders } from '../src/pipeline/encoders.js';
import { readImageFile } from '../src/io/image-source.js';
import { createSession, type Device } from '../src/runtime/session.js';
import { sha256File } from '../src/models/bundle.js';
import { buildUnlessStamped } from './stamp.js';
import { repoRoot, bin, shared, machine, gnuTime } from './common.js';


const { values: args } = parseArgs({
  options: {
    repeat: { type: 'string' },
    rows: { type: 'string', default: '1000' },
    device: { type: 'string', default: 'cpu' },
    'max-pixels-check': { type: 'string', default: '10000000' },
    'run-repeats': { type: 'string', default: '3' },
    'results-dir': { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 10).join('\n'));
  process.exit(0);
}

const log = (line: string) => console.log(line);
const data = path.join(shared, 'data', 'flipkart-products');
const originalsDir = path.join(data, 'originals');
const sourceModel = path.join(shared, 'models', 'mobilenetv2-12-int8', 'model.onnx');
const missing = [path.join(data, 'train.csv'), path.join(originalsDir, 'index.csv'), sourceModel].filter((f) => !fs.existsSync(f));
if (missing.length > 0) {
  log(`bench:photos skipped: needs ../shared (the int8 MobileNetV2 and flipkart-products with originals/); missing ${missing.map((f) => path.relative(repoRoot, f)).join(', ')}`);
  process.exit(0);
}

const t0 = performance.now();
const device = args.device as Device;
const work = path.join(repoRoot, 'bench', '.data', 'photos');
const modelHome = path.join(repoRoot, 'bench', '.models', 'photos');
fs.mkdirSync(work, { recursive: true });
fs.mkdirSync(modelHome, { recursive: true });
// The model cache is the benchmark's own; no embedding cache (CATEGORIZE_EMBED_CACHE would turn one on).
const env: NodeJS.ProcessEnv = { ...process.env, CATEGORIZE_CACHE: path.join(modelHome, 'model-cache'), HF_HUB_OFFLINE: '1' };
delete env.CATEGORIZE_EMBED_CACHE;

// `run`'s defaults, read from its own option definitions so they cannot drift from what the CLI does.
const defaults = { ...addPipelineOptions(new Command('run'), 'override').opts(), batchSize: defaultBatchSize(device) } as { concurrency: number; batchSize: number; maxImagePixels: number; maxImageMb: number };

// Through GNU time where there is one: Linux carries a process's peak RSS across fork and exec, so a child forked
// from this process (which holds the photos' tensors and a model session) would report at least this process's RSS
// as its own — every line read 570 MB that way before 2026-12-04, the 40-row runs as much as the 1,000-row ones.
// Forked from `time` instead, `run`'s summary reports its own peak; time's %M says the same, kept as a check.
const viaTime = fs.existsSync(gnuTime);
function cli(argv: string[]): { seconds: number; stdout: string; stderr: string; status: number | null; maxRssMB: number | null } {
  const start = performance.now();
  const r = viaTime
    ? spawnSync(gnuTime, ['-f', 'maxrss-kb %M', process.execPath, bin, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 })
    : spawnSync(process.execPath, [bin, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const kb = /maxrss-kb (\d+)\s*$/.exec(r.stderr ?? '');
  const stderr = kb ? r.stderr.slice(0, kb.index) : r.stderr;
  return { seconds: (performance.now() - start) / 1000, stdout: r.stdout, stderr, status: r.status, maxRssMB: kb ? Math.round(Number(kb[1]) / 1024) : null };
}
function cliOk(argv: string[]): ReturnType<typeof cli> {
  const r = cli(argv);
  if (r.status !== 0) throw new Error(`categorize ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

// ---- inputs: the photos and the catalog ----------------------------------------------------------------------------
interface Photo { file: string; path: string; width: number; height: number; mp: number; bytes: number }
const index = parse(fs.readFileSync(path.join(originalsDir, 'index.csv'), 'utf8'), { columns: true }) as { file: string }[];
const photos: Photo[] = [];
for (const { file } of index) {
  const p = path.join(originalsDir, file);
  // Sizes as the decoder sees them (header only), EXIF orientation applied; the index is only the list of files.
  const meta = await sharp(p, { limitInputPixels: false }).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const width = swap ? meta.height! : meta.width!;
  const height = swap ? meta.width! : meta.height!;
  photos.push({ file, path: p, width, height, mp: (width * height) / 1e6, bytes: fs.statSync(p).size });
}
const sizeClass = (mp: number) => (mp < 1 ? 'small' : mp < 5 ? 'medium' : 'large');
const classes = ['small', 'medium', 'large'] as const;
const mps = photos.map((p) => p.mp);
log(`photos: ${photos.length} originals, median ${median(mps).toFixed(2)} MP, max ${Math.max(...mps).toFixed(1)} MP ` +
  `(${classes.map((c) => `${photos.filter((p) => sizeClass(p.mp) === c).length} ${c}`).join(', ')}: < 1 MP, 1–5 MP, ≥ 5 MP); ` +
  `${(photos.reduce((a, p) => a + p.bytes, 0) / 1e6).toFixed(1)} MB of JPEG`);

const trainCsv = path.join(data, 'train.csv');
const train = parse(fs.readFileSync(trainCsv, 'utf8'), { columns: true }) as Record<string, string>[];
const byFile = new Map(photos.map((p) => [p.file, p]));
const matched = train.filter((r) => byFile.has(path.basename(r.image ?? '')));
if (matched.length !== photos.length) {
  const unmatched = photos.filter((p) => !matched.some((r) => path.basename(r.image!) === p.file)).map((p) => p.file);
  throw new Error(`${photos.length} originals but ${matched.length} train rows name them${unmatched.length ? `; unmatched: ${unmatched.join(', ')}` : ''}`);
}
const repeat = args.repeat ? Number(args.repeat) : Math.max(1, Math.round(Number(args.rows) / matched.length));
if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${args.repeat}`);
const columns = ['id', 'title', 'description', 'image', 'category'];
function writeCatalog(file: string, times: number, image: (r: Record<string, string>) => string): number {
  const records: string[][] = [columns];
  for (let k = 0; k < times; k++) {
    for (const r of matched) records.push([times > 1 ? `${r.id}#${k + 1}` : r.id!, r.title ?? '', r.description ?? '', image(r), r.category ?? '']);
  }
  fs.writeFileSync(file, stringify(records));
  return records.length - 1;
}
const original = (r: Record<string, string>) => byFile.get(path.basename(r.image!))!.path;
const catalogCsv = path.join(work, `originals-x${repeat}.csv`);
const rows = writeCatalog(catalogCsv, repeat, original);
// The same rows with the dataset's ≤ 512 px copies: what the full-size decode costs, by difference.
const smallCsv = path.join(work, `small-x${repeat}.csv`);
writeCatalog(smallCsv, repeat, (r) => path.resolve(data, r.image!));
const onceCsv = path.join(work, 'originals-x1.csv');
writeCatalog(onceCsv, 1, original);
log(`catalog: ${rows} rows (${matched.length} train rows whose photo is in originals/ × ${repeat}) in ${path.relative(repoRoot, catalogCsv)}`);

// ---- the model and the bundle (cached in bench/.models/photos/) ---------------------------------------------------
// Imported once: a re-import would rewrite the tapped file (same bytes, new mtime) and with it ONNX Runtime's
// optimized copy, which is keyed on the file's stat.
const importFile = path.join(modelHome, 'import.json');
const sourceSha = sha256File(sourceModel);
let modelDir: string | undefined;
try {
  const prev = JSON.parse(fs.readFileSync(importFile, 'utf8')) as { source: string; dir: string; pooledSha: string };
  if (prev.source === sourceSha && fs.existsSync(path.join(prev.dir, 'model.pooled.onnx')) && sha256File(path.join(prev.dir, 'model.pooled.onnx')) === prev.pooledSha &&
    fs.readFileSync(path.join(env.CATEGORIZE_CACHE!, 'registry.json'), 'utf8').includes('mobilenetv2-int8')) modelDir = prev.dir;
} catch {
  modelDir = undefined;
}
if (modelDir) log(`model: cached ${path.relative(repoRoot, modelDir)}`);
else {
  const imported = cliOk(['models', 'import', sourceModel, '--name', 'mobilenetv2-int8', '-q']);
  modelDir = imported.stdout.split('\n').map((l) => l.trim()).find((l) => l.startsWith('/') && fs.existsSync(path.join(l, 'model.onnx')));
  if (!modelDir) throw new Error(`cannot find the imported model's folder in:\n${imported.stdout}`);
  if (!fs.existsSync(path.join(modelDir, 'model.pooled.onnx'))) throw new Error(`models import left no tapped model.pooled.onnx in ${modelDir}`);
  fs.writeFileSync(importFile, JSON.stringify({ source: sourceSha, dir: modelDir, pooledSha: sha256File(path.join(modelDir, 'model.pooled.onnx')) }) + '\n');
  log(`model: imported ${path.relative(repoRoot, sourceModel)} as mobilenetv2-int8 (pooled features tapped) → ${path.relative(repoRoot, modelDir)}`);
}
const pooledModel = path.join(modelDir, 'model.pooled.onnx');

// Default training but for the held-out selections (--validation 0, --fusion-folds 0: C and the fusion weights from
// one 20% hold-out instead of 5 folds): the bundle `run` loads has the default shape (image + word and char TF-IDF,
// a head per modality, late fusion), and training takes about a minute instead of several. One bundle per image
// preprocessing (train --image-preprocessing), the same otherwise.
const modes: readonly ImagePreprocessing[] = IMAGE_PREPROCESSING;
const bundles = {} as Record<ImagePreprocessing, string>;
const specs = {} as Record<ImagePreprocessing, ImagePreprocessSpec>;
const trainSeconds = {} as Record<ImagePreprocessing, number | null>;
for (const mode of modes) {
  const bundle = path.join(modelHome, mode === 'exact' ? 'bundle' : `bundle-${mode}`);
  bundles[mode] = bundle;
  trainSeconds[mode] = null;
  const trainArgs = ['train', trainCsv, '--label-column', 'category', '--image-model', 'mobilenetv2-int8', '--features', 'image,tfidf', '-o', bundle, '-q', '--device', device, '--validation', '0', '--fusion-folds', '0', '--image-preprocessing', mode];
  // A bundle is reused while the training data, the model, the training command and the tool's bundle format are the same.
  const built = buildUnlessStamped(bundle, { train: sha256File(trainCsv), model: sha256File(pooledModel), args: trainArgs.slice(2) }, () => {
    log(`training a bundle on ${path.relative(repoRoot, trainCsv)} (${train.length} rows; image,tfidf; --image-preprocessing ${mode}) …`);
    const r = cliOk(trainArgs);
    trainSeconds[mode] = r.seconds;
    log(`   trained in ${r.seconds.toFixed(1)} s → ${path.relative(repoRoot, bundle)}`);
  });
  if (!built) log(`bundle (${mode}): cached ${path.relative(repoRoot, bundle)}`);
  const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as {
    features: { kind: string; preprocess?: ImagePreprocessSpec; model?: { sha256?: string } }[];
  };
  const imageBlock = manifest.features.find((f) => f.kind === 'image');
  if (!imageBlock) throw new Error(`${bundle} has no image block`);
  specs[mode] = { ...imagenetPreprocess, ...(imageBlock.preprocess ?? {}) };
  if (preprocessingOf(specs[mode]) !== mode) throw new Error(`${bundle} records image preprocessing '${preprocessingOf(specs[mode])}', not '${mode}'`);
  if (imageBlock.model?.sha256 && imageBlock.model.sha256 !== sha256File(pooledModel)) {
    throw new Error(`the bundle's image model (sha256 ${imageBlock.model.sha256}) is not ${pooledModel}`);
  }
}
const crop = specs.exact.crop;

// ---- 1. decode-only bound, per preprocessing --------------------------------------------------------------------------
// What `run` does per image before the model: read the file (readImageFile, its size cap) and decode it with the
// bundle's spec and `run`'s pixel limit, both in the same pool of decoder threads `run` opens (openEncoders:
// imageDecoders; ImageDecoder.decodeFile), at most --concurrency at once (p-limit, as FeatureExtractor does), libuv's
// thread pool and libvips' threads as the CLI leaves them.
const maxBytes = Math.round(defaults.maxImageMb * 1024 * 1024);
const decoderCount = imageDecoders(undefined);
const decoder = decoderCount > 0 ? ImageDecoderPool.start(decoderCount) : inThreadDecoder;
const threadpool = process.env.UV_THREADPOOL_SIZE ?? '4 (libuv default)';
const catalogPhotos = Array.from({ length: repeat }, () => photos).flat();
type ClassFigures = { photos: number; meanMP: number | null; meanMs: number | null; medianMs: number | null; maxMs: number | null };
interface DecodeFigures { imagesPerSecond: number; images: number; seconds: number; cpuMsPerImage: number; oneAtATimeImagesPerSecond: number; perClass: Record<(typeof classes)[number], ClassFigures>; largestMs: number }
const decodeBounds = {} as Record<ImagePreprocessing, DecodeFigures>;
const tensors: Float32Array[] = [];
const largest = photos.reduce((a, b) => (b.mp > a.mp ? b : a));
log(`1. decode-only bound: ${rows} photos, --concurrency ${defaults.concurrency}, ${decoder.workers || 'no'} decoder threads, UV_THREADPOOL_SIZE ${threadpool}, libvips threads ${sharp.concurrency()} …`);
for (const mode of modes) {
  const spec = specs[mode];
  const decode = (p: Photo) => decoder.decodeFile(p.path, maxBytes, spec, { maxPixels: defaults.maxImagePixels, name: p.file });
  for (const p of photos) {
    const t = await decode(p); // warm-up (page cache, JIT); the exact tensors feed the model bound
    if (mode === 'exact') tensors.push(t);
  }
  const limit = pLimit(defaults.concurrency);
  let start = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(catalogPhotos.map((p) => limit(() => decode(p))));
  const seconds = (performance.now() - start) / 1000;
  const cpuMsPerImage = cpuMs(process.cpuUsage(cpu0)) / catalogPhotos.length;
  // One at a time on this thread, per size class: median of 3 decodes per photo, then the mean and median over the class.
  const perPhotoMs = new Map<string, number>();
  for (const p of photos) {
    const bytes = await readImageFile(p.path, maxBytes);
    const times: number[] = [];
    for (let k = 0; k < 3; k++) {
      start = performance.now();
      await preprocessImage(bytes, spec, undefined, 0, { maxPixels: defaults.maxImagePixels, name: p.file });
      times.push(performance.now() - start);
    }
    perPhotoMs.set(p.file, median(times));
  }
  const perClass = Object.fromEntries(classes.map((c) => {
    const members = photos.filter((p) => sizeClass(p.mp) === c);
    const ms = members.map((p) => perPhotoMs.get(p.file)!);
    return [c, { photos: members.length, meanMP: members.length ? mean(members.map((p) => p.mp)) : null, meanMs: ms.length ? mean(ms) : null, medianMs: ms.length ? median(ms) : null, maxMs: ms.length ? Math.max(...ms) : null }];
  })) as DecodeFigures['perClass'];
  const serial = photos.length / (photos.reduce((a, p) => a + perPhotoMs.get(p.file)!, 0) / 1000);
  decodeBounds[mode] = { imagesPerSecond: catalogPhotos.length / seconds, images: catalogPhotos.length, seconds, cpuMsPerImage, oneAtATimeImagesPerSecond: serial, perClass, largestMs: perPhotoMs.get(largest.file)! };
  log(`   ${mode}: ${decodeBounds[mode].imagesPerSecond.toFixed(1)} images/s (${catalogPhotos.length} images in ${seconds.toFixed(2)} s, ${cpuMsPerImage.toFixed(1)} ms of CPU each); one at a time ${serial.toFixed(1)} images/s, ` +
    classes.map((c) => `${c} ${perClass[c].meanMs?.toFixed(1) ?? '—'} ms`).join(', ') + `, largest (${largest.mp.toFixed(1)} MP) ${decodeBounds[mode].largestMs.toFixed(1)} ms`);
}
await decoder.close();

// ---- 2. model-only bound ---------------------------------------------------------------------------------------------
// The tapped MobileNetV2 the bundles name, opened with the project's own session code and the threads `run` gives a
// single model (openEncoders: the cores shared between the models, here one), fed pre-made tensors of these photos.
// The same for both preprocessings: the model's cost does not depend on the pixels.
const threads = os.availableParallelism();
log(`2. model-only bound: ONNX Runtime alone on pre-made 1×3×${crop}×${crop} tensors, ${threads} intra-op threads …`);
const loaded = await createSession(pooledModel, { device, threads });
if (loaded.notice) log(`   ${loaded.notice}`);
const session = loaded.session;
const inputName = session.inputNames[0]!;
const per = 3 * crop * crop;
const modelBatches: Record<number, number> = {};
const modelCpuMs: Record<number, number> = {};
for (const b of [1, 8, 32]) {
  const feeds = Array.from({ length: Math.ceil(tensors.length / b) + 1 }, (_, j) => {
    const buf = new Float32Array(b * per);
    for (let i = 0; i < b; i++) buf.set(tensors[(j * b + i) % tensors.length]!, i * per);
    return { [inputName]: new ort.Tensor('float32', buf, [b, 3, crop, crop]) };
  });
  await session.run(feeds[0]!); // one warm-up call per shape
  let images = 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  // At least 1.5 s and 64 images per batch size, so the figure is stable.
  for (let j = 0; images < 64 || performance.now() - start < 1500; j++) {
    await session.run(feeds[j % feeds.length]!);
    images += b;
  }
  modelBatches[b] = images / ((performance.now() - start) / 1000);
  modelCpuMs[b] = cpuMs(process.cpuUsage(cpu0)) / images;
  log(`   batch ${String(b).padStart(2)}: ${modelBatches[b]!.toFixed(1)} images/s, ${modelCpuMs[b]!.toFixed(2)} ms of CPU each`);
}
await session.release();
const modelBound = Math.max(...Object.values(modelBatches));
const bestBatch = Number(Object.entries(modelBatches).find(([, v]) => v === modelBound)![0]);

// ---- 3. categorize run, default settings, each bundle ------------------------------------------------------------------
interface Summary { rows: number; ok: number; errors: number; warned: number; reasons: Record<string, number>; elapsedSeconds: number; startupSeconds: number; peakRssMB: number; rowsCpuSeconds: number; meanBatch: { image: number | null } }
interface RunResult { rows: number; ok: number; errors: number; warned: number; reasons: Record<string, number>; rowsPerSecond: number; seconds: number; startupSeconds: number; wallSeconds: number; peakRssMB: number; timeMaxRssMB: number | null; cpuMsPerRow: number; meanImageBatch: number | null; records: { status: string; error: string | null; warnings: string[] }[] }
function runCli(input: string, name: string, bundle = bundles.exact, extra: string[] = []): RunResult {
  const out = path.join(work, `${name}.jsonl`);
  const summaryFile = path.join(work, `${name}.summary.json`);
  fs.rmSync(out, { force: true });
  fs.rmSync(summaryFile, { force: true });
  const r = cliOk(['run', input, '--model', bundle, '-o', out, '-q', '--device', device, '--json-summary', summaryFile, ...extra]);
  const s = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Summary;
  const records = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RunResult['records'][number]);
  // Rows over the time spent on rows: model loading is reported apart, as in bench/index.ts.
  const seconds = s.elapsedSeconds - s.startupSeconds;
  return {
    rows: s.rows, ok: s.ok, errors: s.errors, warned: s.warned, reasons: s.reasons, rowsPerSecond: s.rows / seconds, seconds,
    startupSeconds: s.startupSeconds, wallSeconds: r.seconds, peakRssMB: s.peakRssMB, timeMaxRssMB: r.maxRssMB, cpuMsPerRow: (1000 * s.rowsCpuSeconds) / s.rows, meanImageBatch: s.meanBatch?.image ?? null, records,
  };
}

// Alternating exact and fast, --run-repeats times each, so that a change in the machine's load hits both alike; the
// median run of each is reported (and every one kept in the JSON).
const runRepeats = Number(args['run-repeats']);
if (!Number.isInteger(runRepeats) || runRepeats < 1) throw new Error(`--run-repeats must be a positive integer, got ${args['run-repeats']}`);
log(`3. categorize run, default settings, no embedding cache, on the ${rows} rows, each bundle ${runRepeats}× alternately …`);
const runsOf = Object.fromEntries(modes.map((m) => [m, [] as RunResult[]])) as Record<ImagePreprocessing, RunResult[]>;
for (let k = 0; k < runRepeats; k++) {
  for (const mode of modes) {
    const r = runCli(catalogCsv, `run-${mode}`, bundles[mode]);
    const notOk = r.records.filter((x) => x.status !== 'ok');
    const warnedRecords = r.records.filter((x) => x.warnings.length > 0);
    log(`   ${mode}: ${r.rowsPerSecond.toFixed(1)} rows/s (${r.rows} rows in ${r.seconds.toFixed(2)} s after ${r.startupSeconds.toFixed(2)} s start-up), ` +
      `${r.cpuMsPerRow.toFixed(1)} ms of CPU a row, peak RSS ${r.peakRssMB} MB, mean image batch ${r.meanImageBatch?.toFixed(1) ?? '—'}; ${r.records.length - notOk.length}/${r.records.length} rows ok, ${warnedRecords.length} with warnings`);
    if (r.records.length !== rows) throw new Error(`run wrote ${r.records.length} records for ${rows} rows`);
    if (notOk.length > 0 || warnedRecords.length > 0) {
      const first = notOk[0] ?? warnedRecords[0]!;
      throw new Error(`run on the originals (${mode}): ${notOk.length} rows not ok, ${warnedRecords.length} with warnings; first: ${first.error ?? first.warnings.join('; ')}`);
    }
    runsOf[mode].push({ ...r, records: [] });
  }
}
const medianRun = (rs: RunResult[]) => [...rs].sort((a, b) => a.rowsPerSecond - b.rowsPerSecond)[(rs.length - 1) >> 1]!;
const runs = Object.fromEntries(modes.map((m) => [m, medianRun(runsOf[m])])) as Record<ImagePreprocessing, RunResult>;
const run = runs.exact;

log(`   for reference, the same rows with the dataset's ≤ 512 px copies (exact bundle) …`);
const small = runCli(smallCsv, 'run-512px');
log(`   ${small.rowsPerSecond.toFixed(1)} rows/s, peak RSS ${small.peakRssMB} MB (${small.ok}/${small.rows} ok)`);

// ---- 4. the pixel limit: oversized photos are per-row failures, not a crash ------------------------------------------
const pixelLimit = Number(args['max-pixels-check']);
const over = photos.filter((p) => p.width * p.height > pixelLimit);
log(`4. --max-image-pixels ${pixelLimit.toLocaleString('en-US')} on the ${photos.length} photos once (${over.length} above it) …`);
const limitError = runCli(onceCsv, 'limit-error', bundles.exact, ['--max-image-pixels', String(pixelLimit), '--on-image-error', 'error']);
const limitImpute = runCli(onceCsv, 'limit-impute', bundles.exact, ['--max-image-pixels', String(pixelLimit)]);
const tooLarge = (r: RunResult) => r.records.filter((x) => /image_too_large/.test(x.error ?? '') || x.warnings.some((w) => /image_too_large/.test(w))).length;
const limitCheck = {
  maxImagePixels: pixelLimit,
  photosAbove: over.length,
  onImageErrorError: { rows: limitError.rows, ok: limitError.ok, errors: limitError.errors, imageTooLarge: tooLarge(limitError), reasons: limitError.reasons, peakRssMB: limitError.peakRssMB },
  onImageErrorImpute: { rows: limitImpute.rows, ok: limitImpute.ok, errors: limitImpute.errors, warned: limitImpute.warned, imageTooLarge: tooLarge(limitImpute), reasons: limitImpute.reasons, peakRssMB: limitImpute.peakRssMB },
};
log(`   --on-image-error error:   ${limitError.errors} rows error (${tooLarge(limitError)} image_too_large), ${limitError.ok} ok, exit 0, peak RSS ${limitError.peakRssMB} MB`);
log(`   --on-image-error impute (default): ${limitImpute.ok} rows ok, ${limitImpute.warned} of them with an image_too_large warning (text-only prediction), ${limitImpute.errors} errors`);
const sample = limitError.records.find((r) => r.status === 'error');
if (sample) log(`   e.g. ${sample.error}`);
if (limitError.errors !== over.length || tooLarge(limitError) !== over.length || limitError.ok !== photos.length - over.length) {
  throw new Error(`expected exactly ${over.length} image_too_large errors and ${photos.length - over.length} ok rows, got ${limitError.errors} errors (${JSON.stringify(limitError.reasons)}), ${limitError.ok} ok`);
}
if (limitImpute.ok !== photos.length || tooLarge(limitImpute) !== over.length) {
  throw new Error(`expected ${photos.length} ok rows with ${over.length} image_too_large warnings under impute, got ${limitImpute.ok} ok, ${tooLarge(limitImpute)} warnings`);
}

// ---- table -----------------------------------------------------------------------------------------------------------
// Decoding and the model each use every core, so on a CPU they cannot overlap for free: their times add up, and
// 1 / (1/decode + 1/model) is what `run` could reach with nothing else to do (its TF-IDF, heads and output are extra).
const serialBounds = Object.fromEntries(modes.map((m) => [m, 1 / (1 / decodeBounds[m].imagesPerSecond + 1 / modelBound)])) as Record<ImagePreprocessing, number>;
const ratios = {
  ...Object.fromEntries(modes.map((m) => [`${m}RunOverSerialBound`, runs[m].rowsPerSecond / serialBounds[m]])),
  ...Object.fromEntries(modes.map((m) => [`${m}RunOverDecodeBound`, runs[m].rowsPerSecond / decodeBounds[m].imagesPerSecond])),
  // The same comparison in CPU time (every thread), which other work on the machine disturbs far less than
  // wall time: the bound's CPU per image (decoding + the model at its best batch) over run's CPU per row.
  ...Object.fromEntries(modes.map((m) => [`${m}BoundCpuOverRunCpu`, (decodeBounds[m].cpuMsPerImage + modelCpuMs[bestBatch]!) / runs[m].cpuMsPerRow])),
  fastRunOverExactRun: runs.fast.rowsPerSecond / runs.exact.rowsPerSecond,
  exactRunCpuOverFastRunCpu: runs.exact.cpuMsPerRow / runs.fast.cpuMsPerRow,
  fastDecodeOverExactDecode: decodeBounds.fast.imagesPerSecond / decodeBounds.exact.imagesPerSecond,
  // The most fast ÷ exact could be if both runs reached their bounds: the model's share is the same in both.
  fastBoundOverExactBound: serialBounds.fast / serialBounds.exact,
} as Record<string, number>;
const table: [string, string, string][] = [[`model-only bound (ONNX Runtime alone, pre-made tensors, best batch ${bestBatch})`, modelBound.toFixed(1), '']];
for (const m of modes) {
  table.push(
    [`${m}: decode-only bound (concurrency ${defaults.concurrency}, ${decoder.workers} decoder threads, ${rows} photos)`, decodeBounds[m].imagesPerSecond.toFixed(1), ''],
    [`${m}: decode + model bound (times added)`, serialBounds[m].toFixed(1), ''],
    [`${m}: categorize run, default settings (${rows} rows, median of ${runRepeats})`, runs[m].rowsPerSecond.toFixed(1), `${runs[m].peakRssMB} MB`],
  );
}
table.push([`categorize run, exact bundle, same rows with ≤ 512 px copies (reference)`, small.rowsPerSecond.toFixed(1), `${small.peakRssMB} MB`]);
const w = Math.max(...table.map((r) => r[0].length));
console.log(`\n${'pipeline'.padEnd(w)}  ${'img|rows/s'.padStart(10)}  peak RSS`);
for (const [name, rps, rss] of table) console.log(`${name.padEnd(w)}  ${rps.padStart(10)}  ${rss}`);
console.log('');
for (const m of modes) console.log(`${m} run ÷ its decode + model bound  ${ratios[`${m}RunOverSerialBound`]!.toFixed(2)}   (÷ its decode-only bound ${ratios[`${m}RunOverDecodeBound`]!.toFixed(2)})`);
console.log(`fast run ÷ exact run               ${ratios.fastRunOverExactRun!.toFixed(2)}   (decode-only: ${ratios.fastDecodeOverExactDecode!.toFixed(2)}, decode + model bounds: ${ratios.fastBoundOverExactBound!.toFixed(2)})`);
for (const m of modes) {
  console.log(`${m} CPU a row: run ${runs[m].cpuMsPerRow.toFixed(1)} ms, decode ${decodeBounds[m].cpuMsPerImage.toFixed(1)} + model ${modelCpuMs[bestBatch]!.toFixed(1)} ms (bound ÷ run ${ratios[`${m}BoundCpuOverRunCpu`]!.toFixed(2)})`);
}
console.log(`exact run CPU ÷ fast run CPU       ${ratios.exactRunCpuOverFastRunCpu!.toFixed(2)}`);
console.log(`peak RSS of run                    ${modes.map((m) => `${m} ${Math.max(...runsOf[m].map((r) => r.peakRssMB))} MB`).join(', ')} (the most of any repeat)`);
console.log(`pixel limit                        ${limitError.errors}/${limitError.rows} rows image_too_large at --max-image-pixels ${pixelLimit.toLocaleString('en-US')} (--on-image-error error), the other ${limitError.ok} ok; no crash`);
const load = os.loadavg();
console.log(`load average at the end            ${load.map((l) => l.toFixed(2)).join(' ')} (other work on the machine slows every line)`);

const result = {
  ...machine(),
  device,
  loadAverageAtEnd: load,
  sharp: sharp.versions,
  data: 'flipkart-products originals (../shared): train rows whose photo is in originals/, image = the full-size file; MobileNetV2-12 int8 pooled 1280-d (tapped) + TF-IDF',
  photos: {
    count: photos.length,
    medianMP: median(mps),
    maxMP: Math.max(...mps),
    bytes: photos.reduce((a, p) => a + p.bytes, 0),
    largest: { file: largest.file, width: largest.width, height: largest.height },
  },
  catalog: { rows, repeat, file: path.relative(repoRoot, catalogCsv) },
  runDefaults: { concurrency: defaults.concurrency, batchSize: defaults.batchSize, maxImagePixels: defaults.maxImagePixels, uvThreadpoolSize: threadpool, libvipsThreads: sharp.concurrency(), imageDecoders: decoder.workers },
  trainSeconds,
  modelBound: { imagesPerSecond: modelBound, bestBatch, byBatch: modelBatches, cpuMsPerImageByBatch: modelCpuMs, threads, provider: loaded.provider },
  decodeBound: Object.fromEntries(modes.map((m) => [m, { ...decodeBounds[m], concurrency: defaults.concurrency }])),
  serialBound: { ...serialBounds, note: '1 / (1/decode + 1/model): both use every core, so on CPU their times add up' },
  run: runs,
  runRepeats: runsOf,
  run512px: { ...small, records: undefined },
  limitCheck,
  ratios,
  totalSeconds: (performance.now() - t0) / 1000,
};
fs.mkdirSync(args['results-dir']!, { recursive: true });
const outFile = path.join(args['results-dir']!, `${result.date.slice(0, 10)}-${os.hostname()}${device === 'cpu' ? '' : `-${device}`}-photos.json`);
fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(`\nwritten ${path.relative(repoRoot, outFile)} (${result.totalSeconds.toFixed(0)} s in all)`);
