// Measures the linear head against the dense ONNX head it replaces: bundle size and agreement per pruning
// tolerance on a fitted TF-IDF model (a real catalog, or a synthetic Zipf one), and rows/s of both scorers.
//
//   node dist/bench/linear-head.js --catalog ../shared/data/amazon-electronics          # train.csv → fit, dev.csv → rows
//   node dist/bench/linear-head.js --catalog ../shared/data/flipkart-taxonomy --label category_path --speed
//   node dist/bench/linear-head.js --catalog ../shared/data/flipkart-taxonomy --label category_path --words-only --min-df 2
//   node dist/bench/linear-head.js --synthetic --rows 8000 --features 30000 --classes 200
//   node dist/bench/linear-head.js --speed-only --features 115600 --classes 657 --nnz 160 # random weights, speed only
//
// A catalog is featurised as `train --features tfidf` does by default (word 1–2 grams with English stop words and
// char_wb 2–5 grams, 100,000 most frequent, sublinear tf), fitted at one --C. JSON on stdout, --out FILE too.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { fitTfidf, tfidfBlockDim, tfidfBlockRow, type TfidfBlockModel } from '../src/head/tfidf.js';
import { csrFromRows, makeDesign } from '../src/head/design-matrix.js';
import { fitLogisticRegressionAsync } from '../src/head/logistic.js';
import { fitLabelEncoder, encodeLabels } from '../src/head/labels.js';
import { mulberry32 } from '../src/head/random.js';
import { buildClassifierOnnx } from '../src/head/classifier-onnx.js';
import { createSession } from '../src/runtime/session.js';
import { encodeLinearHead } from '../src/head/head-io.js';
import { buildLinearHead, linearScorer, measureAgreement, paramsScorer, DEFAULT_PRUNE_TOLERANCE, type LinearModelParams } from '../src/head/linear-head.js';
import { scoreRow, classIndexArray, type HeadRow, type LinearHead } from '../src/head/scoring.js';
import ort from 'onnxruntime-node';

const { values: args } = parseArgs({
  options: {
    catalog: { type: 'string' },
    label: { type: 'string', default: 'category' },
    /** Leave out the character n-grams, and drop rarer words: a smaller model of the same catalog. */
    'words-only': { type: 'boolean', default: false },
    'min-df': { type: 'string', default: '1' },
    'char-max-features': { type: 'string', default: '100000' },
    synthetic: { type: 'boolean', default: false },
    'speed-only': { type: 'boolean', default: false },
    rows: { type: 'string', default: '8000' },
    features: { type: 'string', default: '30000' },
    classes: { type: 'string', default: '200' },
    nnz: { type: 'string', default: '80' },
    C: { type: 'string', default: '10' },
    'max-iter': { type: 'string', default: '300' },
    tol: { type: 'string', default: '1e-4' },
    tolerances: { type: 'string', default: '0,1e-5,3e-5,1e-4,3e-4,1e-3,3e-3,1e-2' },
    speed: { type: 'boolean', default: false },
    'speed-rows': { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
const num = (k: keyof typeof args): number => Number(args[k]);
const log = (line: string) => process.stderr.write(line + '\n');

interface Problem {
  name: string;
  train: { rows: HeadRow[]; y: Int32Array };
  test: { rows: HeadRow[]; y: Int32Array };
  classes: string[];
  dim: number;
}

/** A catalog's train.csv and dev.csv as TF-IDF rows, featurised as `train --features tfidf` does by default. */
function catalogProblem(dir: string): Problem {
  const read = (file: string) => parse(fs.readFileSync(path.join(dir, file)), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const train = read('train.csv');
  const dev = read('dev.csv');
  const text = (r: Record<string, string>) => `${r.title ?? ''} ${r.description ?? ''}`.trim();
  const texts = train.map(text);
  const word = fitTfidf(texts, { ngramRange: [1, 2], stopWords: 'english', sublinearTf: true, minDf: { count: num('min-df') } });
  const char = args['words-only'] ? null : fitTfidf(texts, { analyzer: 'char_wb', ngramRange: [2, 5], sublinearTf: true, maxFeatures: num('char-max-features') });
  const model: TfidfBlockModel = { word, char };
  const label = args.label!;
  const classes = fitLabelEncoder(train.map((r) => r[label]!));
  const known = new Set(classes);
  const devKnown = dev.filter((r) => known.has(r[label]!));
  const rows = (rs: Record<string, string>[]) => rs.map((r): HeadRow => ({ dense: [], sparse: tfidfBlockRow(model, text(r)) }));
  return {
    name: `${path.basename(dir)}${char ? `, ${char.terms.length} character n-grams` : ', words only'}${num('min-df') > 1 ? `, min-df ${num('min-df')}` : ''}`,
    train: { rows: rows(train), y: Int32Array.from(encodeLabels(classes, train.map((r) => r[label]!))) },
    test: { rows: rows(devKnown), y: Int32Array.from(encodeLabels(classes, devKnown.map((r) => r[label]!))) },
    classes,
    dim: tfidfBlockDim(model),
  };
}

/** Zipf(s) sampler over [0, n). */
function zipf(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) cdf[i] = acc += 1 / Math.pow(i + 1, s);
  return () => {
    const u = rand() * acc;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * Titles as bags of terms: classes Zipf-distributed (long tail); each class has 100 topic terms drawn from a
 * Zipf vocabulary (common terms shared by many classes); a row takes about --nnz terms, 60% from its class's
 * topic (Zipf within it), the rest from the whole vocabulary; sublinear tf × idf, L2-normalised.
 */
function syntheticProblem(n: number, dim: number, K: number, nnz: number, seed: number): Problem {
  const rand = mulberry32(seed);
  const term = zipf(dim, 1.05, rand);
  const cls = zipf(K, 1.0, rand);
  const within = zipf(100, 1.0, rand);
  const topics = Array.from({ length: K }, () => Int32Array.from({ length: 100 }, () => term()));
  const docs = (count: number) =>
    Array.from({ length: count }, () => {
      const c = cls();
      const counts = new Map<number, number>();
      const len = Math.max(2, Math.round(nnz * (0.5 + rand())));
      for (let t = 0; t < len; t++) {
        const j = rand() < 0.6 ? topics[c]![within()]! : term();
        counts.set(j, (counts.get(j) ?? 0) + 1);
      }
      return { c, counts };
    });
  const trainDocs = docs(n);
  const testDocs = docs(Math.round(n / 4));
  const df = new Float64Array(dim);
  for (const d of trainDocs) for (const j of d.counts.keys()) df[j]++;
  const idf = Float64Array.from(df, (f) => Math.log((n + 1) / (f + 1)) + 1);
  const rows = (ds: typeof trainDocs) =>
    ds.map((d): HeadRow => {
      const indices = Int32Array.from([...d.counts.keys()].sort((a, b) => a - b));
      const values = Float64Array.from(indices, (j) => (1 + Math.log(d.counts.get(j)!)) * idf[j]!);
      const norm = Math.hypot(...values);
      for (let t = 0; t < values.length; t++) values[t] /= norm;
      return { dense: [], sparse: { indices, values } };
    });
  const classes = Array.from({ length: K }, (_, k) => `c${String(k).padStart(4, '0')}`);
  return {
    name: `synthetic ${n} rows × ${dim} terms × ${K} classes`,
    train: { rows: rows(trainDocs), y: Int32Array.from(trainDocs, (d) => d.c) },
    test: { rows: rows(testDocs), y: Int32Array.from(testDocs, (d) => d.c) },
    classes,
    dim,
  };
}

async function fit(p: Problem): Promise<LinearModelParams> {
  const csr = csrFromRows(p.train.rows.map((r) => r.sparse!), p.dim);
  const K = p.classes.length;
  const started = performance.now();
  // Classes never seen in a training split would have no rows; a synthetic Zipf tail can leave some empty.
  const res = await fitLogisticRegressionAsync(makeDesign(p.train.rows.length, null, 0, csr), p.train.y, K, {
    C: num('C'),
    maxIter: num('max-iter'),
    tol: num('tol'),
    threads: os.availableParallelism(),
    onIteration: (i, loss) => {
      if (i % 25 === 0) log(`  iteration ${i}: loss ${loss.toFixed(4)}`);
    },
  });
  log(`fitted ${K} classes × ${p.dim} features on ${p.train.rows.length} rows in ${((performance.now() - started) / 1000).toFixed(1)} s (${res.iterations} iterations, converged ${res.converged})`);
  return { classes: p.classes, denseWidth: 0, sparseWidth: p.dim, mean: new Float64Array(0), scale: new Float64Array(0), coef: res.coef, intercept: res.intercept };
}

function accuracy(scorer: (r: HeadRow) => ArrayLike<number>, rows: HeadRow[], y: Int32Array): number {
  let ok = 0;
  rows.forEach((r, i) => {
    const p = scorer(r);
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k]! > p[best]!) best = k;
    if (best === y[i]) ok++;
  });
  return ok / Math.max(1, rows.length);
}

function sizeTable(params: LinearModelParams, p: Problem) {
  const K = params.classes.length;
  const reference = paramsScorer(params);
  const denseOnnxBytes = 4 * K * p.dim + 8 * p.dim + 4 * K;
  const out = [];
  for (const tolerance of args.tolerances!.split(',').map(Number)) {
    const started = performance.now();
    const { head, pruning } = buildLinearHead(params, { tolerance });
    const buildSeconds = (performance.now() - started) / 1000;
    const bytes = encodeLinearHead(head, tolerance).length;
    const agreement = measureAgreement(reference, linearScorer(head), p.test.rows, K);
    const row = {
      tolerance,
      keptEntries: pruning!.keptEntries,
      keptShare: pruning!.keptEntries / pruning!.totalEntries,
      fileBytes: bytes,
      vsDenseOnnx: bytes / denseOnnxBytes,
      buildSeconds,
      ...agreement,
      accuracy: accuracy(linearScorer(head), p.test.rows, p.test.y),
    };
    log(
      `tolerance ${tolerance}: kept ${row.keptEntries} (${(100 * row.keptShare).toFixed(2)}%), ${(bytes / 1e6).toFixed(1)} MB, top-1 agreement ${agreement.top1Agreement.toFixed(4)}, max |Δp| ${agreement.maxAbsDiff.toExponential(2)}, mean |Δp| ${agreement.meanAbsDiff.toExponential(2)}, accuracy ${row.accuracy.toFixed(4)}`,
    );
    out.push(row);
  }
  // The bound a tolerance gives: a row's logits move by at most tolerance × ‖x‖₁.
  const l1 = p.test.rows.map((r) => Array.from(r.sparse!.values).reduce((s, v) => s + Math.abs(v), 0));
  const rowL1 = { mean: l1.reduce((s, v) => s + v, 0) / Math.max(1, l1.length), max: Math.max(0, ...l1) };
  log(`‖x‖₁ of the test rows: mean ${rowL1.mean.toFixed(2)}, max ${rowL1.max.toFixed(2)}`);
  return { denseOnnxBytes, referenceAccuracy: accuracy(reference, p.test.rows, p.test.y), rows: p.test.rows.length, rowL1, tolerances: out };
}

/** Rows/s of a scorer over `rows`, repeated until at least `seconds` have passed. */
function rate(score: (r: HeadRow) => unknown, rows: HeadRow[], seconds = 2): number {
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) for (const r of rows) (score(r), done++);
  return done / ((performance.now() - started) / 1000);
}

/** Rows/s of the dense ONNX head as run runs it: each row densified, batches of `batch`, one intra-op thread. */
async function onnxRate(params: LinearModelParams, rows: HeadRow[], batch: number): Promise<{ rowsPerSecond: number; loadSeconds: number; modelBytes: number }> {
  const W = params.denseWidth + params.sparseWidth;
  const mean = new Float64Array(W);
  const scale = new Float64Array(W).fill(1);
  const file = path.join(os.tmpdir(), `categorize-bench-head-${process.pid}.onnx`);
  const bytes = buildClassifierOnnx({ mean, scale, coef: params.coef, intercept: params.intercept, nClasses: params.classes.length, nFeatures: W });
  fs.writeFileSync(file, bytes);
  const t0 = performance.now();
  const { session } = await createSession(file, { device: 'cpu', threads: 1 });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    let done = 0;
    const started = performance.now();
    while (done < rows.length) {
      const n = Math.min(batch, rows.length - done);
      const x = new Float32Array(n * W);
      for (let i = 0; i < n; i++) {
        const s = rows[done + i]!.sparse!;
        for (let t = 0; t < s.indices.length; t++) x[i * W + s.indices[t]!] = s.values[t]!;
      }
      await session.run({ features: new ort.Tensor('float32', x, [n, W]) }, ['probabilities']);
      done += n;
    }
    return { rowsPerSecond: done / ((performance.now() - started) / 1000), loadSeconds, modelBytes: bytes.length };
  } finally {
    await session.release();
    fs.rmSync(file, { force: true });
  }
}

/** A head of random weights with `density` of each column's K entries kept (speed only). */
function randomLinearHead(dim: number, K: number, density: number, seed: number): LinearHead {
  const rand = mulberry32(seed);
  const perColumn = Math.max(1, Math.round(K * density));
  const colptr = new Uint32Array(dim + 1);
  for (let j = 0; j < dim; j++) colptr[j + 1] = colptr[j]! + perColumn;
  const nnz = colptr[dim]!;
  const classIndex = classIndexArray(K, nnz);
  const values = Float32Array.from({ length: nnz }, () => rand() - 0.5);
  const stride = K / perColumn;
  for (let j = 0; j < dim; j++) {
    const off = Math.floor(rand() * stride);
    for (let t = 0; t < perColumn; t++) classIndex[colptr[j]! + t] = Math.min(K - 1, Math.floor(off + t * stride));
  }
  return { classes: Array.from({ length: K }, (_, k) => `c${k}`), intercept: new Float64Array(K), dense: null, sparse: { width: dim, colptr, classIndex, values } };
}

function randomRowsOf(dim: number, nnz: number, count: number, seed: number): HeadRow[] {
  const rand = mulberry32(seed);
  const term = zipf(dim, 1.05, rand);
  return Array.from({ length: count }, () => {
    const cols = new Set<number>();
    while (cols.size < nnz) cols.add(rand() < 0.5 ? term() : Math.floor(rand() * dim));
    const indices = Int32Array.from([...cols].sort((a, b) => a - b));
    const values = Float64Array.from(indices, () => rand());
    const norm = Math.hypot(...values);
    return { dense: [], sparse: { indices, values: values.map((v) => v / norm) } };
  });
}

async function speed(params: LinearModelParams | null, rows: HeadRow[]) {
  const result: Record<string, unknown> = {};
  if (params) {
    const K = params.classes.length;
    for (const tolerance of [0, DEFAULT_PRUNE_TOLERANCE]) {
      const { head } = buildLinearHead(params, { tolerance });
      const scratch = new Float64Array(K);
      result[`linear tolerance ${tolerance}`] = rate((r) => scoreRow(head, r, scratch), rows);
      log(`linear head, tolerance ${tolerance}: ${(result[`linear tolerance ${tolerance}`] as number).toFixed(0)} rows/s`);
    }
    for (const batch of [1, 8, 32]) {
      const r = await onnxRate(params, rows.slice(0, Math.max(num('speed-rows'), batch)), batch);
      result[`onnx batch ${batch}`] = r;
      log(`onnx head, batch ${batch}: ${r.rowsPerSecond.toFixed(1)} rows/s (session load ${r.loadSeconds.toFixed(1)} s, model ${(r.modelBytes / 1e6).toFixed(0)} MB)`);
    }
  }
  return result;
}

const report: Record<string, unknown> = { date: new Date().toISOString(), host: os.hostname(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version };
if (args['speed-only']) {
  const dim = num('features');
  const K = num('classes');
  const rows = randomRowsOf(dim, num('nnz'), 500, num('seed'));
  const scratch = new Float64Array(K);
  const speedReport: Record<string, unknown> = { shape: { dim, K, nnz: num('nnz') } };
  report.speed = speedReport;
  // ONNX keeps initializers in one protobuf (2 GB at most): past that, a dense head cannot be written at all.
  const denseBytes = 4 * K * dim;
  if (denseBytes < 2 ** 31 - 2 ** 26) {
    // A dense model of random weights for the ONNX side; the linear head built from it keeps every entry.
    const rand = mulberry32(num('seed') + 1);
    log(`random ${K} × ${dim} model (${((K * dim * 8) / 1e9).toFixed(2)} GB of float64 coefficients)`);
    const coef = Float64Array.from({ length: K * dim }, () => rand() - 0.5);
    const params: LinearModelParams = { classes: Array.from({ length: K }, (_, k) => `c${k}`), denseWidth: 0, sparseWidth: dim, mean: new Float64Array(0), scale: new Float64Array(0), coef, intercept: new Float64Array(K) };
    const { head } = buildLinearHead(params, { tolerance: 0 });
    speedReport['linear, every entry kept'] = rate((r) => scoreRow(head, r, scratch), rows);
    log(`linear head, every entry kept: ${(speedReport['linear, every entry kept'] as number).toFixed(0)} rows/s`);
    for (const batch of [1, 8, 32]) {
      const r = await onnxRate(params, rows.slice(0, Math.max(num('speed-rows'), batch)), batch);
      speedReport[`onnx batch ${batch}`] = r;
      log(`onnx head, batch ${batch}: ${r.rowsPerSecond.toFixed(1)} rows/s (session load ${r.loadSeconds.toFixed(1)} s, model ${(r.modelBytes / 1e6).toFixed(0)} MB)`);
    }
  } else {
    speedReport.onnx = `not measured: ${(denseBytes / 1e9).toFixed(1)} GB of float32 weights exceed ONNX's 2 GB protobuf`;
    log(speedReport.onnx as string);
  }
  for (const density of [0.2, 0.05, 0.01]) {
    const h = randomLinearHead(dim, K, density, num('seed'));
    const v = rate((r) => scoreRow(h, r, scratch), rows);
    speedReport[`linear, ${density * 100}% kept`] = { rowsPerSecond: v, fileBytes: encodeLinearHead(h).length };
    log(`linear head, ${density * 100}% of entries kept: ${v.toFixed(0)} rows/s, ${(encodeLinearHead(h).length / 1e6).toFixed(0)} MB`);
  }
} else {
  const p = args.catalog ? catalogProblem(args.catalog) : syntheticProblem(num('rows'), num('features'), num('classes'), num('nnz'), num('seed'));
  const nnz = p.train.rows.reduce((s, r) => s + r.sparse!.indices.length, 0) / p.train.rows.length;
  log(`${p.name}: ${p.train.rows.length} training rows, ${p.test.rows.length} test rows, ${p.classes.length} classes, ${p.dim} features, ${nnz.toFixed(1)} non-zeros a row`);
  const params = await fit(p);
  report.problem = { name: p.name, trainRows: p.train.rows.length, testRows: p.test.rows.length, classes: p.classes.length, features: p.dim, meanNnz: nnz, C: num('C') };
  report.size = sizeTable(params, p);
  if (args.speed) report.speed = await speed(params, p.test.rows);
}
const json = JSON.stringify(report, null, 2);
process.stdout.write(json + '\n');
if (args.out) fs.writeFileSync(args.out, json + '\n');
