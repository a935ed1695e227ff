// Times our regression fit (fitLogisticRegressionAsync) against scikit-learn's lbfgs on the same seeded synthetic
// matrix, side by side on this machine, and writes the ratio to bench/results/<date>-<host>-train.json.
//
//   node dist/bench/train-vs-sklearn.js                      # 200,000 × 2,432, 100 classes
//   node dist/bench/train-vs-sklearn.js --rows 20000 --features 256 --classes 20
//   node dist/bench/train-vs-sklearn.js --rows 100000 --features 400 --tfidf-vocab 50000 --tfidf-nnz 40
//
// The data is generated once into bench/.data/<tag>/ (raw float32 rows, int32 labels, CSR block) and read by
// both sides. Python (Debian's /usr/bin/python3 with python3-sklearn) fits sklearn and then evaluates both
// solutions' objective, max |gradient| and train accuracy with the same float64 numpy code.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fitStandardScaler } from '../src/head/scaler.js';
import { standardizeDense, type CsrBlock, type DesignMatrix } from '../src/head/design-matrix.js';
import { fitLogisticRegressionAsync, type LossKernelChoice } from '../src/head/logistic.js';
import { SCIPY_DEFAULT_FTOL } from '../src/head/lbfgs.js';
import { repoRoot, machine } from './common.js';

const benchDir = path.join(repoRoot, 'bench');

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    features: { type: 'string', default: '2432' },
    classes: { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    separation: { type: 'string', default: '4' },
    'tfidf-vocab': { type: 'string', default: '0' },
    'tfidf-nnz': { type: 'string', default: '40' },
    C: { type: 'string', default: '1' },
    'max-iter': { type: 'string', default: '100' },
    tol: { type: 'string', default: '1e-4' },
    kernel: { type: 'string', default: 'auto' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    'chunk-rows': { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'skip-sklearn': { type: 'boolean', default: false },
    'openblas-coretype': { type: 'string' },
    label: { type: 'string' },
    'results-dir': { type: 'string', default: path.join(benchDir, 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 10).join('\n'));
  process.exit(0);
}

function num(name: keyof typeof args): number {
  const v = Number(args[name]);
  if (!Number.isFinite(v)) throw new Error(`--${name}: not a number: ${String(args[name])}`);
  return v;
}

const n = num('rows');
const d = num('features');
const K = num('classes');
const seed = num('seed');
const vocab = num('tfidf-vocab');
const nnzPerRow = vocab > 0 ? num('tfidf-nnz') : 0;
const C = num('C');
const maxIter = num('max-iter');
const tol = num('tol');
const threads = num('threads');
if (!(n >= K && K >= 2 && d >= 0 && (d > 0 || vocab > 0))) throw new Error('need rows >= classes >= 2 and some features');
if (nnzPerRow > vocab) throw new Error('--tfidf-nnz exceeds --tfidf-vocab');

// ---------------------------------------------------------------------------------------------- data

/** xoshiro128** seeded through splitmix32: fast, and the same stream on every machine. */
function makeRng(s: number): () => number {
  let x = s >>> 0;
  const next32 = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  const st = new Uint32Array([next32(), next32(), next32(), next32()]);
  return () => {
    const r = Math.imul(((Math.imul(st[1]!, 5) << 7) | (Math.imul(st[1]!, 5) >>> 25)), 9) >>> 0;
    const t = st[1]! << 9;
    st[2] ^= st[0]!;
    st[3] ^= st[1]!;
    st[1] ^= st[2]!;
    st[0] ^= st[3]!;
    st[2] ^= t;
    st[3] = (st[3]! << 11) | (st[3]! >>> 21);
    return (r + 0.5) / 4294967296;
  };
}

/** Fills `out` with standard normals (Box–Muller, both outputs used). */
function fillGauss(rand: () => number, out: Float64Array | Float32Array): void {
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(rand()));
    const a = 2 * Math.PI * rand();
    out[i] = r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(a);
  }
}

interface Meta {
  rows: number;
  features: number;
  classes: number;
  seed: number;
  separation: number;
  tfidfVocab: number;
  tfidfNnz: number;
  generator: string;
}

const tag = `r${n}-f${d}-c${K}-s${seed}-sep${args.separation}` + (vocab > 0 ? `-v${vocab}-z${nnzPerRow}` : '');
const dataDir = path.join(benchDir, '.data', tag);

function writeBig(file: string, a: ArrayBufferView): void {
  const fd = fs.openSync(file, 'w');
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (let o = 0; o < bytes.length; o += 1 << 28) fs.writeSync(fd, bytes, o, Math.min(1 << 28, bytes.length - o));
  fs.closeSync(fd);
}

function readBig<T extends Float32Array | Int32Array>(file: string, make: (len: number) => T): T {
  const size = fs.statSync(file).size;
  const out = make(size / make(0).BYTES_PER_ELEMENT);
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const fd = fs.openSync(file, 'r');
  for (let o = 0; o < bytes.length; ) o += fs.readSync(fd, bytes, o, Math.min(1 << 28, bytes.length - o), o);
  fs.closeSync(fd);
  return out;
}

/**
 * Gaussian class means (pairwise distance `separation` noise-sds apart, so the classes overlap: learnable,
 * not separable) plus unit noise, then a per-feature offset and scale so standardising matters. The TF-IDF
 * block draws each row's distinct terms from a Zipf vocabulary, a third of them from its class's own topic
 * terms, weights them tf·idf and L2-normalises the row, like TfidfVectorizer's output.
 */
function generate(): void {
  const t0 = performance.now();
  fs.mkdirSync(dataDir, { recursive: true });
  const rand = makeRng(seed);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = i < K ? i : Math.floor(rand() * K);
  if (d > 0) {
    const sMu = Number(args.separation) / Math.sqrt(2 * d);
    const mu = new Float64Array(K * d);
    fillGauss(rand, mu);
    for (let t = 0; t < mu.length; t++) mu[t] *= sMu;
    const offset = new Float64Array(d);
    const scale = new Float64Array(d);
    fillGauss(rand, offset);
    fillGauss(rand, scale);
    for (let j = 0; j < d; j++) scale[j] = Math.exp(0.5 * scale[j]!);
    const X = new Float32Array(n * d);
    const noise = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      fillGauss(rand, noise);
      const o = i * d;
      const mo = y[i]! * d;
      for (let j = 0; j < d; j++) X[o + j] = offset[j]! + scale[j]! * (mu[mo + j]! + noise[j]!);
    }
    writeBig(path.join(dataDir, 'X.f32'), X);
  }
  if (vocab > 0) {
    const zipf = new Float64Array(vocab);
    let acc = 0;
    for (let j = 0; j < vocab; j++) zipf[j] = acc += 1 / (j + 2);
    for (let j = 0; j < vocab; j++) zipf[j]! /= acc;
    const drawZipf = (): number => {
      const u = rand();
      let lo = 0;
      let hi = vocab - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (zipf[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const topicSize = 200;
    const topics = new Int32Array(K * topicSize);
    for (let t = 0; t < topics.length; t++) topics[t] = Math.floor(rand() * vocab);
    const indptr = new Int32Array(n + 1);
    const indices = new Int32Array(n * nnzPerRow);
    const values = new Float32Array(n * nnzPerRow);
    const seen = new Set<number>();
    const rowVals = new Float64Array(nnzPerRow);
    for (let i = 0; i < n; i++) {
      seen.clear();
      while (seen.size < nnzPerRow) {
        seen.add(rand() < 1 / 3 ? topics[y[i]! * topicSize + Math.floor(rand() * topicSize)]! : drawZipf());
      }
      const cols = Int32Array.from(seen).sort();
      let sq = 0;
      for (let t = 0; t < nnzPerRow; t++) {
        const tf = 1 + Math.floor(-Math.log(rand()));
        const idf = 1 + Math.log((vocab + 1) / (2 + cols[t]! * 0.05));
        rowVals[t] = tf * idf;
        sq += rowVals[t]! * rowVals[t]!;
      }
      const inv = 1 / Math.sqrt(sq);
      const o = i * nnzPerRow;
      for (let t = 0; t < nnzPerRow; t++) {
        indices[o + t] = cols[t]!;
        values[o + t] = rowVals[t]! * inv;
      }
      indptr[i + 1] = o + nnzPerRow;
    }
    writeBig(path.join(dataDir, 'indptr.i32'), indptr);
    writeBig(path.join(dataDir, 'indices.i32'), indices);
    writeBig(path.join(dataDir, 'values.f32'), values);
  }
  writeBig(path.join(dataDir, 'y.i32'), y);
  const meta: Meta = {
    rows: n, features: d, classes: K, seed, separation: Number(args.separation),
    tfidfVocab: vocab, tfidfNnz: nnzPerRow, generator: 'bench/train-vs-sklearn.ts v1',
  };
  // Written last: its presence marks a complete data set.
  fs.writeFileSync(path.join(dataDir, 'meta.json'), JSON.stringify(meta, null, 2));
  console.error(`generated ${dataDir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (!fs.existsSync(path.join(dataDir, 'meta.json'))) generate();
else console.error(`using ${dataDir}`);

// ---------------------------------------------------------------------------------------------- sklearn version

function python(pyArgs: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(args.python!, pyArgs, { encoding: 'utf8', env, maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${args.python} ${pyArgs.join(' ')} exited with ${r.status ?? r.signal}`);
  return r.stdout;
}

let sklearnVersion = 'not run';
if (!args['skip-sklearn']) sklearnVersion = python(['-c', 'import sklearn; print(sklearn.__version__)']).trim();
// Match the installed sklearn's stopping rule: before 1.3 it leaves scipy's ftol and maxls in place.
const [maj, min] = sklearnVersion.split('.').map(Number);
const legacy = sklearnVersion !== 'not run' && (maj! < 1 || (maj === 1 && min! < 3));
const ftol = legacy ? SCIPY_DEFAULT_FTOL : 64 * Number.EPSILON;
const maxLineSearch = legacy ? 20 : 50;

// ---------------------------------------------------------------------------------------------- ours

const y = readBig(path.join(dataDir, 'y.i32'), (len) => new Int32Array(len));
let sparse: CsrBlock | null = null;
if (vocab > 0) {
  sparse = {
    dim: vocab,
    indptr: readBig(path.join(dataDir, 'indptr.i32'), (len) => new Int32Array(len)),
    indices: readBig(path.join(dataDir, 'indices.i32'), (len) => new Int32Array(len)),
    values: readBig(path.join(dataDir, 'values.f32'), (len) => new Float32Array(len)),
  };
}
let dense: Float32Array | null = d > 0 ? readBig(path.join(dataDir, 'X.f32'), (len) => new Float32Array(len)) : null;

const tPrep = performance.now();
if (dense) {
  // Our pipeline: float64 StandardScaler statistics, the float32 matrix standardised in place.
  const scaler = fitStandardScaler(dense, n, d);
  standardizeDense(dense, n, d, scaler, dense);
}
const prepSeconds = (performance.now() - tPrep) / 1000;
const X: DesignMatrix = { n, dense, dd: d, sparse };

const iterLog: Array<{ iter: number; loss: number; seconds: number }> = [];
console.error(`ours: fitLogisticRegressionAsync(kernel=${args.kernel}, threads=${threads}, C=${C}, maxIter=${maxIter}, tol=${tol}, ftol=${ftol.toExponential(3)}, maxls=${maxLineSearch})`);
const loadBefore = os.loadavg()[0]!;
const cpuFit = process.cpuUsage();
const tFit = performance.now();
const fit = await fitLogisticRegressionAsync(X, y, K, {
  C,
  maxIter,
  tol,
  ftol,
  maxLineSearch,
  kernel: args.kernel as LossKernelChoice,
  threads,
  chunkRows: args['chunk-rows'] ? Number(args['chunk-rows']) : undefined,
  onIteration: (iter, loss) => {
    const seconds = (performance.now() - tFit) / 1000;
    iterLog.push({ iter, loss, seconds });
    if (iter % 10 === 0) console.error(`  iter ${iter}  loss ${loss.toFixed(4)}  ${seconds.toFixed(1)} s`);
  },
});
const oursSeconds = (performance.now() - tFit) / 1000;
const cpu = process.cpuUsage(cpuFit);
const oursCpuSeconds = (cpu.user + cpu.system) / 1e6;
const loadAfter = os.loadavg()[0]!;
console.error(`ours: ${fit.iterations} iterations, ${fit.evaluations} evaluations, ${oursSeconds.toFixed(2)} s (${fit.message})`);
dense = null;
X.dense = null;

const oursParams = new Float64Array(fit.coef.length + fit.intercept.length);
oursParams.set(fit.coef);
oursParams.set(fit.intercept, fit.coef.length);
const oursFile = path.join(dataDir, `ours-${process.pid}.f64`);
writeBig(oursFile, oursParams);

// ---------------------------------------------------------------------------------------------- sklearn + evaluation

interface PyResult {
  versions: Record<string, string>;
  blas: unknown;
  standardize_seconds: number;
  sklearn: null | {
    fit_seconds: number;
    fit_cpu_seconds: number;
    minimize_seconds: number;
    n_iter: number;
    nfev: number;
    message: string;
    solver_loss: number;
    loadavg_before: number;
    loadavg_after: number;
  };
  eval: Record<string, { loss: number; grad_max_abs: number; train_accuracy: number }>;
}
const pyEnv = { ...process.env };
if (args['openblas-coretype']) pyEnv.OPENBLAS_CORETYPE = args['openblas-coretype'];
let py: PyResult;
try {
  const out = python([
    path.join(benchDir, 'train_sklearn.py'),
    '--data', dataDir,
    '--C', String(C),
    '--max-iter', String(maxIter),
    '--tol', String(tol),
    '--ours', oursFile,
    ...(args['skip-sklearn'] ? ['--no-fit'] : []),
  ], pyEnv);
  py = JSON.parse(out.trim().split('\n').pop()!) as PyResult;
} finally {
  fs.rmSync(oursFile, { force: true });
}

// ---------------------------------------------------------------------------------------------- report

const sk = py.sklearn;
const nnzTotal = sparse ? sparse.indptr[n]! : 0;
const perIterOurs = oursSeconds / Math.max(fit.iterations, 1);
const perEvalOurs = oursSeconds / Math.max(fit.evaluations, 1);
const result = {
  case: args.label ?? (vocab > 0 ? `tfidf-${n}x${d}+${vocab}` : `dense-${n}x${d}`),
  ...machine(),
  problem: { rows: n, denseFeatures: d, sparseFeatures: vocab, sparseNnz: nnzTotal, classes: K, seed, separation: Number(args.separation), data: path.relative(repoRoot, dataDir) },
  settings: { C, maxIter, tol, ftol, maxLineSearch, threads, kernel: fit.kernel, sklearnVersion },
  python: { versions: py.versions, blas: py.blas, openblasCoretype: args['openblas-coretype'] ?? null },
  ours: {
    fitSeconds: oursSeconds,
    fitCpuSeconds: oursCpuSeconds,
    loadavg1: [loadBefore, loadAfter],
    standardizeSeconds: prepSeconds,
    iterations: fit.iterations,
    evaluations: fit.evaluations,
    secondsPerIteration: perIterOurs,
    secondsPerEvaluation: perEvalOurs,
    rowPassesPerSecond: (n * fit.evaluations) / oursSeconds,
    message: fit.message,
    solverLoss: fit.loss,
    ...py.eval.ours,
  },
  sklearn: sk && {
    fitSeconds: sk.fit_seconds,
    fitCpuSeconds: sk.fit_cpu_seconds,
    loadavg1: [sk.loadavg_before, sk.loadavg_after],
    minimizeSeconds: sk.minimize_seconds,
    standardizeSeconds: py.standardize_seconds,
    iterations: sk.n_iter,
    evaluations: sk.nfev,
    secondsPerIteration: sk.fit_seconds / Math.max(sk.n_iter, 1),
    secondsPerEvaluation: sk.fit_seconds / Math.max(sk.nfev, 1),
    rowPassesPerSecond: (n * sk.nfev) / sk.fit_seconds,
    message: sk.message,
    solverLoss: sk.solver_loss,
    ...py.eval.sklearn,
  },
  ratio: sk && {
    fitTime: oursSeconds / sk.fit_seconds,
    timePerIteration: perIterOurs / (sk.fit_seconds / Math.max(sk.n_iter, 1)),
    timePerEvaluation: perEvalOurs / (sk.fit_seconds / Math.max(sk.nfev, 1)),
    cpuTime: oursCpuSeconds / sk.fit_cpu_seconds,
  },
  iterationLog: iterLog,
};

const f = (v: number, p = 2): string => v.toFixed(p);
console.log(`\n${result.case}: ${n} rows × ${d} dense${vocab > 0 ? ` + ${vocab} sparse (${nnzTotal} nnz)` : ''} features, ${K} classes; C=${C} max_iter=${maxIter} tol=${tol}`);
console.log(`machine: ${result.cpu}; ours: ${fit.kernel} kernel, ${threads} threads; sklearn ${sklearnVersion}`);
const rowsOf = (label: string, s: number, it: number, ev: number, e: { loss: number; grad_max_abs: number; train_accuracy: number } | undefined): string =>
  `${label.padEnd(8)} ${f(s).padStart(9)} s  ${String(it).padStart(5)} it  ${String(ev).padStart(5)} ev  ${f(s / Math.max(it, 1), 3).padStart(8)} s/it  ` +
  `${((n * ev) / s / 1e3).toFixed(0).padStart(7)}k rows/s  loss ${e ? e.loss.toFixed(4) : '?'}  max|g| ${e ? e.grad_max_abs.toExponential(2) : '?'}  acc ${e ? f(100 * e.train_accuracy, 2) + '%' : '?'}`;
console.log(rowsOf('ours', oursSeconds, fit.iterations, fit.evaluations, py.eval.ours));
if (sk) {
  console.log(rowsOf('sklearn', sk.fit_seconds, sk.n_iter, sk.nfev, py.eval.sklearn));
  console.log(`ratio ours ÷ sklearn: fit time ${f(result.ratio!.fitTime, 3)}, per iteration ${f(result.ratio!.timePerIteration, 3)}, per evaluation ${f(result.ratio!.timePerEvaluation, 3)}, CPU time ${f(result.ratio!.cpuTime, 3)}`);
  console.log(`1-min load average during the fits: ours ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}, sklearn ${sk.loadavg_before.toFixed(2)} → ${sk.loadavg_after.toFixed(2)} (other work on the machine skews wall times)`);
  console.log(`(sklearn: ${f(sk.minimize_seconds)} s of its fit inside scipy's L-BFGS-B; ${sk.message})`);
}
console.log(`ours: ${fit.message}`);

const resultsDir = args['results-dir']!;
fs.mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `${result.date.slice(0, 10)}-${os.hostname()}-train.json`);
// One file per day and host; a rerun of the same case replaces its entry.
let runs: Array<{ case: string }> = [];
if (fs.existsSync(file)) {
  try {
    runs = (JSON.parse(fs.readFileSync(file, 'utf8')) as { runs: Array<{ case: string }> }).runs ?? [];
  } catch {
    runs = [];
  }
}
runs = runs.filter((r) => r.case !== result.case).concat(result);
fs.writeFileSync(file, JSON.stringify({ runs }, null, 2) + '\n');
console.log(`wrote ${path.relative(repoRoot, file)}`);
