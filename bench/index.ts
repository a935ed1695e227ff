// `npm run bench`: how close `categorize run` gets to what the hardware allows, measured side by side in one run on
// the same rows — model-only bound, the original service's naive per-row path, `categorize run`, a warm re-run with
// the embedding cache, the original Python stack when installed — plus a scaling run (1k/10k/100k rows).
//
//   node dist/bench/index.js                      # 2,000-row synthetic catalog, realistic-size models
//   node dist/bench/index.js --rows 500 --compare-rows 200 --scaling 1000,10000
//   node dist/bench/index.js --levers             # also: run with one setting changed at a time (+2 min)
//
// Models are MiniLM-L6- and ResNet-50-shaped with seeded random weights (bench/models.ts; the real weights cannot be
// downloaded here), so speed is real and predictions are meaningless. Writes bench/results/<date>-<host>.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { ensureBenchModels } from './models.js';
import { ensureBenchCatalog, changeRows } from './catalog.js';
import { encodeTexts, lengthRuns, loadTokenizer, tokenizeBatch } from '../src/embed/text-encoder.js';
import { sha256File } from '../src/models/bundle.js';
import { buildUnlessStamped } from './stamp.js';
import { repoRoot, bin, machine } from './common.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000' },
    'compare-rows': { type: 'string', default: '300' },
    scaling: { type: 'string', default: '1000,10000,100000' },
    changed: { type: 'string', default: '0.02' },
    levers: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    device: { type: 'string', default: 'cpu' },
    python: { type: 'string' },
    'results-dir': { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 10).join('\n'));
  process.exit(0);
}
const rows = Number(args.rows);
const compareRows = Math.min(rows, Number(args['compare-rows']));
const device = args.device as 'cpu' | 'cuda' | 'auto';
const work = path.join(repoRoot, 'bench', '.data', 'bench');
fs.mkdirSync(work, { recursive: true });
const log = (line: string) => console.log(line);
const env = { ...process.env, CATEGORIZE_CACHE: path.join(work, 'model-cache'), HF_HUB_OFFLINE: '1' };

function cli(argv: string[], extraEnv: Record<string, string> = {}): { seconds: number; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, ...argv], { env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`categorize ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { seconds, stderr: r.stderr };
}

/** A run of the real CLI; rows/s from its own summary, model loading excluded (as for every other line). */
function runCli(input: string, out: string, extra: string[] = [], extraEnv: Record<string, string> = {}): { rowsPerSecond: number; seconds: number; wallSeconds: number; peakRssMB: number; summary: Record<string, unknown> } {
  const summaryFile = path.join(work, `${path.basename(out)}.summary.json`);
  fs.rmSync(out, { force: true });
  const r = cli(['run', input, '--model', bundle, '-o', out, '-q', '--device', device, '--json-summary', summaryFile, ...extra], extraEnv);
  const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { rows: number; elapsedSeconds: number; startupSeconds: number; peakRssMB: number };
  // Rows over the time spent on rows: start-up (model loading) is reported apart, as for the naive pipeline.
  const seconds = summary.elapsedSeconds - summary.startupSeconds;
  return { rowsPerSecond: summary.rows / seconds, seconds, wallSeconds: r.seconds, peakRssMB: summary.peakRssMB, summary };
}

/** The header and the first n records of a CSV (parsed, so quoted fields are safe), written next to it. */
function firstRows(csv: string, n: number, out: string): string {
  const records = parse(fs.readFileSync(csv, 'utf8')) as string[][];
  fs.writeFileSync(out, stringify(records.slice(0, n + 1)));
  return out;
}

// ---- inputs ------------------------------------------------------------------------------------------------------
const t0 = performance.now();
const models = await ensureBenchModels({ log });
log(`models: text ${models.textShape}, ${(models.textParams / 1e6).toFixed(2)}M parameters (all-MiniLM-L6-v2: 22.7M); image ${models.imageShape}, ${(models.imageParams / 1e6).toFixed(2)}M (torchvision ResNet-50 without fc: 23.51M)`);
const catalog = await ensureBenchCatalog({ rows, seed: Number(args.seed), log });
const compareCsv = firstRows(catalog.csv, compareRows, path.join(catalog.dir, `first-${compareRows}.csv`));
log(`catalog: ${catalog.rows} rows in ${path.relative(repoRoot, catalog.csv)} (${((performance.now() - t0) / 1000).toFixed(1)} s to prepare)`);

// The original service's head: one scaler + logistic regression over the concatenated text and image embeddings
// (--fusion joint), so that the naive pipeline and the original stack do exactly the same work per row.
const bundle = path.join(work, 'bundle');
const trainCsv = firstRows(catalog.csv, 200, path.join(catalog.dir, 'train-200.csv'));
const trainArgs = ['train', trainCsv, '--label-column', 'category', '--text-model', models.textDir, '--image-model', models.imageDir, '-o', bundle, '-q', '--validation', '0', '--fusion', 'joint', '--C', '1', '--device', device];
buildUnlessStamped(bundle, { train: sha256File(trainCsv), args: trainArgs.slice(2) }, () => {
  log('training a head on 200 rows …');
  cli(trainArgs);
});

// ---- 1. model-only bound -----------------------------------------------------------------------------------------
async function modelBound(): Promise<{ text: Record<number, number>; image: Record<number, number>; textBest: number; imageBest: number; rowsPerSecond: number }> {
  const threads = os.availableParallelism();
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'] };
  const textSession = await ort.InferenceSession.create(path.join(models.textDir, 'model.onnx'), opts);
  const imageSession = await ort.InferenceSession.create(path.join(models.imageDir, 'model.onnx'), opts);
  const tokenizer = await loadTokenizer(models.textDir);
  const records = parse(fs.readFileSync(compareCsv, 'utf8'), { columns: true }) as { title: string; description: string }[];
  const texts = records.slice(0, 128).map((r) => `${r.title} ${r.description}`.trim());
  const text: Record<number, number> = {};
  const image: Record<number, number> = {};
  // Sorted by token count, as the pipeline's text encoder runs them (TextEncoder.embed): the least padding.
  const lengths = encodeTexts(tokenizer, texts, 256).map((ids) => ids.length);
  const sorted = lengthRuns(lengths, texts.length)[0]!.map((i) => texts[i]!);
  // Batch sizes the compared rows can fill (a small --compare-rows has fewer than 32 texts).
  for (const b of [1, 4, 8, 32].filter((n) => n <= texts.length)) {
    // Pre-made tensors: tokenization outside the timed loop; one warm-up call per shape.
    const batches = [];
    for (let i = 0; i + b <= sorted.length; i += b) batches.push(tokenizeBatch(tokenizer, sorted.slice(i, i + b), 256));
    const feeds = batches.map((t) => ({
      input_ids: new ort.Tensor('int64', t.inputIds, [t.batch, t.seq]),
      attention_mask: new ort.Tensor('int64', t.attentionMask, [t.batch, t.seq]),
      token_type_ids: new ort.Tensor('int64', t.tokenTypeIds, [t.batch, t.seq]),
    }));
    await textSession.run(feeds[0]!);
    let start = performance.now();
    for (const f of feeds) await textSession.run(f);
    text[b] = (feeds.length * b) / ((performance.now() - start) / 1000);
    const n = Math.max(b, 32);
    const pixels = new ort.Tensor('float32', new Float32Array(b * 3 * 224 * 224).map(() => Math.random() * 2 - 1), [b, 3, 224, 224]);
    await imageSession.run({ pixel_values: pixels });
    start = performance.now();
    for (let i = 0; i < n / b; i++) await imageSession.run({ pixel_values: pixels });
    image[b] = n / ((performance.now() - start) / 1000);
    log(`  bound, batch ${String(b).padStart(2)}: text ${text[b]!.toFixed(1)} rows/s, image ${image[b]!.toFixed(1)} rows/s`);
  }
  await textSession.release();
  await imageSession.release();
  const textBest = Math.max(...Object.values(text));
  const imageBest = Math.max(...Object.values(image));
  // A row needs one text and one image pass; both models share the same cores, so their times add up.
  return { text, image, textBest, imageBest, rowsPerSecond: 1 / (1 / textBest + 1 / imageBest) };
}

log('1. model-only bound (ONNX Runtime alone, pre-made tensors, all cores) …');
const bound = await modelBound();
log(`   bound: ${bound.rowsPerSecond.toFixed(1)} rows/s (text best ${bound.textBest.toFixed(1)}, image best ${bound.imageBest.toFixed(1)})`);

// ---- 2. naive per-row pipeline (the original service's way) --------------------------------------------------------
log(`2. naive per-row pipeline on ${compareRows} rows …`);
const naiveRun = spawnSync(process.execPath, [path.join(here, 'naive.js'), '--bundle', bundle, '--csv', compareCsv, '--image-root', path.dirname(catalog.csv), '--device', device, '--threads', String(os.availableParallelism())], { encoding: 'utf8' });
if (naiveRun.status !== 0) throw new Error(`naive pipeline failed:\n${naiveRun.stderr}`);
const naive = JSON.parse(naiveRun.stdout.trim()) as { rows: number; seconds: number; rowsPerSecond: number; peakRssMB: number };
log(`   naive: ${naive.rowsPerSecond.toFixed(1)} rows/s`);

// ---- 3. categorize run, default settings ---------------------------------------------------------------------------
log(`3. categorize run (default settings) on the same ${compareRows} rows …`);
const runSame = runCli(compareCsv, path.join(work, 'run-compare.jsonl'));
log(`   run: ${runSame.rowsPerSecond.toFixed(1)} rows/s, peak RSS ${runSame.peakRssMB} MB`);

// ---- 3b. levers (--levers): `categorize run` on the same rows with one setting changed at a time -------------------
const levers: { setting: string; rowsPerSecond: number; peakRssMB: number; encoders: unknown }[] = [];
if (args.levers) {
  log(`3b. levers: categorize run on the same ${compareRows} rows, one setting changed at a time …`);
  const variants: [string, string[], Record<string, string>][] = [
    ['default', [], {}],
    ['--replicas 1 (one copy per model, cores shared: 1 thread each on 2 cores)', ['--replicas', '1'], {}],
    ['--replicas 1 --threads <cores> (one copy per model, all cores each)', ['--replicas', '1', '--threads', String(os.availableParallelism())], {}],
    ['CATEGORIZE_ORT_SPINNING=1 (ONNX Runtime threads spin when idle)', [], { CATEGORIZE_ORT_SPINNING: '1' }],
    ['--batch-size 1', ['--batch-size', '1'], {}],
    ['--batch-size 32 (the default on a GPU)', ['--batch-size', '32'], {}],
    ['--concurrency 2 (image decodes at once)', ['--concurrency', '2'], {}],
  ];
  for (const [setting, extra, extraEnv] of variants) {
    const r = runCli(compareCsv, path.join(work, 'run-lever.jsonl'), extra, extraEnv);
    levers.push({ setting, rowsPerSecond: r.rowsPerSecond, peakRssMB: r.peakRssMB, encoders: r.summary.encoders });
    log(`   ${r.rowsPerSecond.toFixed(1).padStart(6)} rows/s  ${String(r.peakRssMB).padStart(5)} MB  ${setting}`);
  }
}

// ---- 4. all rows with the embedding cache: cold, then a re-run with a share of rows changed ------------------------
log(`4. categorize run --cache on all ${rows} rows (cold), then again with ${(Number(args.changed) * 100).toFixed(0)}% of rows changed …`);
const cacheDir = path.join(work, 'embed-cache');
fs.rmSync(cacheDir, { recursive: true, force: true });
const cold = runCli(catalog.csv, path.join(work, 'cold.jsonl'), ['--cache', cacheDir]);
log(`   cold: ${cold.rowsPerSecond.toFixed(1)} rows/s, ${cold.wallSeconds.toFixed(1)} s, peak RSS ${cold.peakRssMB} MB`);
const changedCsv = path.join(work, 'catalog-changed.csv');
const { changed } = await changeRows(catalog.csv, Number(args.changed), Number(args.seed), changedCsv);
const warm = runCli(changedCsv, path.join(work, 'warm.jsonl'), ['--cache', cacheDir]);
log(`   warm: ${warm.wallSeconds.toFixed(1)} s (${changed} rows changed): ${(cold.wallSeconds / warm.wallSeconds).toFixed(1)}× faster (wall time, model loading included)`);

// ---- 5. the original Python stack ----------------------------------------------------------------------------------
function findPython(): string | undefined {
  for (const py of [args.python, 'python3', '/usr/bin/python3'].filter((p): p is string => Boolean(p))) {
    const r = spawnSync(py, ['-c', 'import torch, torchvision, sklearn'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}
const python = findPython();
const original: Record<string, unknown> = {};
if (!python) {
  log('5. original stack: skipped (needs python3 with torch, torchvision, scikit-learn: apt-get install python3-torch python3-torchvision python3-sklearn)');
  original.skipped = 'torch, torchvision or scikit-learn not installed';
} else {
  for (const mode of ['per-request', 'batched'] as const) {
    log(`5. original stack (${python}), ${mode}, ${compareRows} rows …`);
    const r = spawnSync(python, [path.join(repoRoot, 'bench', 'original_stack.py'), '--catalog', compareCsv, '--image-root', path.dirname(catalog.csv), '--tokenizer', path.join(models.textDir, 'tokenizer.json'), '--mode', mode, '--threads', String(os.availableParallelism())], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`original_stack.py failed:\n${r.stderr}`);
    original[mode] = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    log(`   ${mode}: ${(original[mode] as { rowsPerSecond: number }).rowsPerSecond.toFixed(1)} rows/s`);
  }
}

// ---- 6. scaling (text-only, tiny model: pipeline overhead and memory, not model speed) -----------------------------
const scaling: { rows: number; rowsPerSecond: number; peakRssMB: number }[] = [];
const sizes = String(args.scaling).split(',').filter(Boolean).map(Number);
if (sizes.length > 0) {
  log(`6. scaling, text-only bundle on the demo's tiny text model: ${sizes.join(', ')} rows …`);
  const tinyBundle = path.join(work, 'tiny-text-bundle');
  if (!fs.existsSync(path.join(tinyBundle, 'manifest.json'))) {
    cli(['train', path.join(repoRoot, 'fixtures', 'demo', 'train.csv'), '--label-column', 'category', '--features', 'text,tfidf', '--text-model', path.join(repoRoot, 'models', 'demo', 'encoders', 'text'), '-o', tinyBundle, '-q', '--validation', '0']);
  }
  const demoLines = fs.readFileSync(path.join(repoRoot, 'fixtures', 'demo', 'catalog.csv'), 'utf8').trim().split('\n');
  for (const n of sizes) {
    const csv = path.join(work, `scaling-${n}.csv`);
    const out = [demoLines[0]!];
    for (let i = 0; i < n; i++) out.push(demoLines[1 + (i % (demoLines.length - 1))]!.replace(/^[^,]*,/, `S${i},`));
    fs.writeFileSync(csv, out.join('\n') + '\n');
    const summaryFile = path.join(work, `scaling-${n}.summary.json`);
    cli(['run', csv, '--model', tinyBundle, '-o', path.join(work, `scaling-${n}.jsonl`), '-q', '--force', '--json-summary', summaryFile]);
    const s = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { rowsPerSecond: number; peakRssMB: number };
    scaling.push({ rows: n, rowsPerSecond: s.rowsPerSecond, peakRssMB: s.peakRssMB });
    log(`   ${String(n).padStart(7)} rows: ${s.rowsPerSecond.toFixed(0)} rows/s, peak RSS ${s.peakRssMB} MB`);
  }
}

// ---- table ---------------------------------------------------------------------------------------------------------
const batched = original.batched as { rowsPerSecond: number; peakRssMB: number } | undefined;
const perRequest = original['per-request'] as { rowsPerSecond: number; peakRssMB: number } | undefined;
const table: [string, string, string][] = [
  ['model-only bound (ONNX Runtime, best batch)', bound.rowsPerSecond.toFixed(1), ''],
  [`naive per-row pipeline (${compareRows} rows)`, naive.rowsPerSecond.toFixed(1), `${naive.peakRssMB} MB`],
  [`categorize run, default settings (${compareRows} rows)`, runSame.rowsPerSecond.toFixed(1), `${runSame.peakRssMB} MB`],
  [`categorize run --cache, cold (${rows} rows)`, cold.rowsPerSecond.toFixed(1), `${cold.peakRssMB} MB`],
  [`categorize run --cache, warm, ${changed} rows changed`, warm.rowsPerSecond.toFixed(1), `${warm.peakRssMB} MB`],
  ...(perRequest ? [[`original stack, per request (${compareRows} rows)`, perRequest.rowsPerSecond.toFixed(1), `${perRequest.peakRssMB} MB`] as [string, string, string]] : []),
  ...(batched ? [[`original stack, batched 32 (${compareRows} rows)`, batched.rowsPerSecond.toFixed(1), `${batched.peakRssMB} MB`] as [string, string, string]] : []),
];
const ratios: Record<string, number> = {
  runOverBound: runSame.rowsPerSecond / bound.rowsPerSecond,
  runOverNaive: runSame.rowsPerSecond / naive.rowsPerSecond,
  warmOverCold: cold.wallSeconds / warm.wallSeconds,
  ...(batched ? { runOverOriginalBatched: runSame.rowsPerSecond / batched.rowsPerSecond } : {}),
  ...(perRequest ? { runOverOriginalPerRequest: runSame.rowsPerSecond / perRequest.rowsPerSecond } : {}),
};
const w = Math.max(...table.map((r) => r[0].length));
console.log(`\n${'pipeline'.padEnd(w)}  ${'rows/s'.padStart(8)}  peak RSS`);
for (const [name, rps, rss] of table) console.log(`${name.padEnd(w)}  ${rps.padStart(8)}  ${rss}`);
console.log('');
console.log(`run ÷ bound            ${ratios.runOverBound!.toFixed(2)}   (target ≥ 0.90)`);
console.log(`run ÷ naive            ${ratios.runOverNaive!.toFixed(2)}   (target ≥ 1.0 on CPU)`);
if (batched) console.log(`run ÷ original batched ${ratios.runOverOriginalBatched!.toFixed(2)}   (target ≥ 2.5)`);
console.log(`warm ÷ cold (speed-up) ${ratios.warmOverCold!.toFixed(1)}    (target ≥ 20)`);
if (scaling.length > 1) {
  const rss = scaling.map((s) => s.peakRssMB);
  console.log(`scaling RSS            ${scaling.map((s) => `${s.rows}: ${s.peakRssMB} MB`).join(', ')}`);
  console.log(`                       largest/smallest ${(Math.max(...rss) / Math.min(...rss)).toFixed(2)} (target: within 1.15 from 10k to 100k, < 1.5 GB)`);
}

const result = {
  ...machine(),
  device,
  models: { textParams: models.textParams, imageParams: models.imageParams, textShape: models.textShape, imageShape: models.imageShape },
  catalog: { rows, compareRows, changedRows: changed },
  bound,
  naive,
  run: { ...runSame, summary: undefined, encoders: runSame.summary.encoders },
  levers,
  cache: { cold: { ...cold, summary: cold.summary.cache }, warm: { ...warm, summary: warm.summary.cache } },
  original,
  scaling,
  ratios,
  totalSeconds: (performance.now() - t0) / 1000,
};
fs.mkdirSync(args['results-dir']!, { recursive: true });
const outFile = path.join(args['results-dir']!, `${result.date.slice(0, 10)}-${os.hostname()}${device === 'cpu' ? '' : `-${device}`}.json`);
fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(`\nwritten ${path.relative(repoRoot, outFile)} (${result.totalSeconds.toFixed(0)} s in all)`);
