// The nightly re-run, measured: a cold `categorize run` (empty embedding cache) against a re-run with --cache over
// the same catalog with a share of rows changed (new photo bytes and new title), side by side, in one process tree.
//
//   node dist/bench/rerun.js                  # myntra-fashion (../shared) with the real int8 MobileNetV2, 2% changed
//   node dist/bench/rerun.js --changed 0.05 --rows 3000
//
// Models: the real MobileNetV2 (its pooled 1280-d features, tapped) for images, TF-IDF for text — the heavy work
// is real photo decoding and a real CNN. Without ../shared it falls back to the demo catalog and tiny models
// (then the figures say little). Writes bench/results/<date>-<host>-rerun.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { mulberry32 } from '../src/head/random.js';
import { repoRoot, bin, shared, machine } from './common.js';


const { values: args } = parseArgs({
  options: {
    changed: { type: 'string', default: '0.02' },
    rows: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'results-dir': { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 9).join('\n'));
  process.exit(0);
}

const work = path.join(repoRoot, 'bench', '.data', 'rerun');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
const env = { ...process.env, CATEGORIZE_CACHE: path.join(work, 'model-cache'), HF_HUB_OFFLINE: '1' };

function cli(argv: string[]): { seconds: number; summary?: Record<string, unknown> } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`categorize ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { seconds };
}

const useShared = fs.existsSync(path.join(shared, 'data', 'myntra-fashion', 'train.csv'));
let train: string;
let source: string;
let imageRoot: string;
let trainArgs: string[];
if (useShared) {
  const data = path.join(shared, 'data', 'myntra-fashion');
  train = path.join(data, 'train.csv');
  source = path.join(data, 'dev.csv');
  imageRoot = data;
  cli(['models', 'add', path.join(shared, 'models', 'mobilenetv2-12-int8', 'model.onnx'), '--kind', 'image', '--id', 'mobilenetv2-int8', '-q']);
  trainArgs = ['--features', 'image,tfidf', '--image-model', 'mobilenetv2-int8'];
} else {
  train = path.join(repoRoot, 'fixtures', 'demo', 'train.csv');
  source = path.join(repoRoot, 'fixtures', 'demo', 'catalog.csv');
  imageRoot = path.dirname(source);
  trainArgs = ['--text-model', path.join(repoRoot, 'models', 'demo', 'encoders', 'text'), '--image-model', path.join(repoRoot, 'models', 'demo', 'encoders', 'image')];
}
const bundle = path.join(work, 'bundle');
console.log(`training a bundle on ${path.relative(repoRoot, train)} …`);
cli(['train', train, '--label-column', 'category', ...trainArgs, '--image-root', path.dirname(train), '-o', bundle, '-q', '--validation', '0']);

// The catalog: train + dev rows (or the demo), image paths absolute so the changed copy can point elsewhere.
const lines = [...fs.readFileSync(train, 'utf8').trim().split('\n').slice(0, 1), ...[train, source].flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n').slice(1))];
const rows = lines.slice(1, args.rows ? 1 + Number(args.rows) : undefined);
const catalog = path.join(work, 'catalog.csv');
fs.writeFileSync(catalog, [lines[0], ...rows].join('\n') + '\n');

// The changed copy: a share of rows get a re-encoded photo (other bytes, same picture) and an edited title.
const rand = mulberry32(Number(args.seed));
const share = Number(args.changed);
const changedDir = path.join(work, 'changed-images');
fs.mkdirSync(changedDir);
let changed = 0;
const changedRows: string[] = [];
for (const line of rows) {
  if (rand() >= share || !line.includes('images/')) {
    changedRows.push(line);
    continue;
  }
  const m = /(images\/[^,]+)/.exec(line)!;
  const src = path.join(imageRoot, m[1]!);
  const dest = path.join(changedDir, path.basename(m[1]!).replace(/\.\w+$/, '.png'));
  await sharp(src).png().toFile(dest);
  changedRows.push(line.replace(m[1]!, path.relative(imageRoot, dest)).replace(/^([^,]*),/, '$1,Updated: '));
  changed++;
}
const catalogChanged = path.join(work, 'catalog-changed.csv');
fs.writeFileSync(catalogChanged, [lines[0], ...changedRows].join('\n') + '\n');

const run = (input: string, out: string, cache?: string) => {
  const summaryFile = path.join(work, `${path.basename(out)}.summary.json`);
  const r = cli(['run', input, '--model', bundle, '--image-root', imageRoot, '-o', path.join(work, out), '-q', '--json-summary', summaryFile, ...(cache ? ['--cache', cache] : [])]);
  return { ...r, summary: JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Record<string, unknown> };
};
const cache = path.join(work, 'embeddings');
console.log(`${rows.length} rows, ${changed} changed (${((100 * changed) / rows.length).toFixed(1)}%)`);
const noCache = run(catalog, 'no-cache.jsonl');
console.log(`no cache:           ${noCache.seconds.toFixed(2)} s`);
const cold = run(catalog, 'cold.jsonl', cache);
console.log(`cold (empty cache): ${cold.seconds.toFixed(2)} s   cache ${JSON.stringify(cold.summary.cache)}`);
const warm = run(catalogChanged, 'warm.jsonl', cache);
console.log(`warm (${changed} rows changed): ${warm.seconds.toFixed(2)} s   cache ${JSON.stringify(warm.summary.cache)}`);
const speedup = cold.seconds / warm.seconds;
console.log(`re-run speedup: cold ÷ warm = ${speedup.toFixed(2)}×; cache overhead on a cold run: ${(cold.seconds / noCache.seconds).toFixed(2)}× the no-cache time`);

const result = {
  ...machine(),
  data: useShared ? 'myntra-fashion train+dev (../shared), MobileNetV2 int8 pooled features + TF-IDF' : 'demo catalog, tiny models',
  rows: rows.length,
  changedRows: changed,
  seconds: { noCache: noCache.seconds, cold: cold.seconds, warm: warm.seconds },
  cache: { cold: cold.summary.cache, warm: warm.summary.cache },
  ratios: { warmSpeedup: speedup, coldCacheOverhead: cold.seconds / noCache.seconds },
  note: 'wall time of the whole CLI process, model loading included; same machine, one after the other',
};
fs.mkdirSync(args['results-dir']!, { recursive: true });
const outFile = path.join(args['results-dir']!, `${result.date.slice(0, 10)}-${os.hostname()}-rerun.json`);
fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(`written ${path.relative(repoRoot, outFile)}`);
