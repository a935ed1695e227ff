// `npm run bench:train`: how long `categorize train` takes against references, side by side in one run, with wall
// time and peak RSS of every process (GNU time). Each case prints its result when it finishes and is written at
// once to bench/results/<date>-<host>-train-catalogs.json, so a stopped run keeps what it measured.
//
//   amazon     train --features tfidf on ../shared amazon-electronics against scikit-learn's peer
//              (../shared/tools/train_time_peer.py, LogisticRegressionCV): ours ÷ peer wall time (target ≤ 0.25)
//   taxonomy   the same on flipkart-taxonomy (category_path as flat classes; the peer under --peer-mem-gb and
//              --peer-timeout), plus the bundle's size and `run` rows/s on its dev.csv (target ≥ 1,000)
//   photos     train --features image,tfidf (int8 MobileNetV2, warm embedding cache) against the project at
//              --baseline: baseline ÷ ours wall time (target ≥ 4), chosen C, fusion weights, validation, and
//              the share of dev rows both bundles predict alike (target ≥ 99.5%); each side registers the model in
//              its own model cache and fills its own embedding cache, untimed, with its own CLI (the summaries'
//              `cache` shows the hits)
//   synthetic  a seeded 5,000-class, 100,000-row text catalog (bench/synthetic-catalog.ts): train time and peak
//              RSS, bundle size (target ≤ 250 MB), `run` rows/s on 5,000 held-out rows (target ≥ 200)
//   fit        the synthetic single-fit comparison against scikit-learn (bench/train-vs-sklearn.ts)
//
//   node dist/bench/train-catalogs.js                       # amazon,taxonomy,photos,synthetic
//   node dist/bench/train-catalogs.js --case synthetic --synthetic-rows 3000 --synthetic-classes 100
//   node dist/bench/train-catalogs.js --case photos --catalogs flipkart-products --baseline 4b631c0
//   node dist/bench/train-catalogs.js --case fit --fit-args='--rows 20000 --features 256 --classes 20'
//
// Options:
//   --case LIST            cases to run, in this order (default amazon,taxonomy,photos,synthetic)
//   --timeout T            limit per process of ours and of the baseline (default 2h; 90m, 600s, 600 also work)
//   --peer-timeout T       limit per scikit-learn peer process (default 3h)
//   --peer-mem-gb N        address-space cap of the taxonomy peer, GiB (default 20; it needs more than 24)
//   --catalogs LIST        photos: catalogs of ../shared/data (default flipkart-products,myntra-fashion)
//   --baseline REF         photos: the git commit to compare with (default 4b631c0), built in bench/.baseline/
//   --synthetic-rows N     synthetic: training rows (default 100000)
//   --synthetic-classes N  synthetic: classes (default 5000)
//   --synthetic-heldout N  synthetic: held-out rows for `run` (default 5000)
//   --seed N               synthetic: generator seed (default 1)
//   --fit-args='ARGS'      fit: arguments for train-vs-sklearn.js (default: its own defaults; note the =)
//   --python PATH          Python with scikit-learn (default /usr/bin/python3, Debian's python3-sklearn)
//   --openblas-coretype T  OPENBLAS_CORETYPE for the peers (default Haswell)
//   --verbose              copy every process's output to stderr (otherwise only to its log file)
//   --keep                 keep the temporary folder (bundles, predictions, logs)
//   --results-dir DIR      where the JSON goes (default bench/results)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSyntheticCatalog } from './synthetic-catalog.js';
import { repoRoot, bin, shared, machine, gnuTime, timedProcess, stopTimedProcesses, folderSize, firstMissing, printHeaderHelp, usageExit, type TimedOptions, type TimedRun } from './common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CASES = ['amazon', 'taxonomy', 'photos', 'synthetic', 'fit'] as const;
type CaseName = (typeof CASES)[number];

const { values: args } = parseArgs({
  options: {
    case: { type: 'string', default: 'amazon,taxonomy,photos,synthetic' },
    timeout: { type: 'string', default: '2h' },
    'peer-timeout': { type: 'string', default: '3h' },
    'peer-mem-gb': { type: 'string', default: '20' },
    catalogs: { type: 'string', default: 'flipkart-products,myntra-fashion' },
    baseline: { type: 'string', default: '4b631c0' },
    'synthetic-rows': { type: 'string', default: '100000' },
    'synthetic-classes': { type: 'string', default: '5000' },
    'synthetic-heldout': { type: 'string', default: '5000' },
    seed: { type: 'string', default: '1' },
    'fit-args': { type: 'string', default: '' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'openblas-coretype': { type: 'string', default: 'Haswell' },
    verbose: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'results-dir': { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) printHeaderHelp(import.meta.url);

/** A usage error: said in one line, exit 2. */
function usage(message: string): never {
  return usageExit('train-catalogs', message);
}
/** Seconds from '2h', '90m', '600s' or '600'. */
function seconds(name: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([hms]?)$/.exec(v.trim());
  if (!m) usage(`--${name}: expected seconds or a duration such as 2h, 90m, 600s: ${v}`);
  return Number(m[1]) * { h: 3600, m: 60, s: 1, '': 1 }[m[2] as 'h' | 'm' | 's' | ''];
}
function count(name: keyof typeof args): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < 0) usage(`--${name}: expected a whole number: ${String(args[name])}`);
  return v;
}

const cases = String(args.case).split(',').map((c) => c.trim()).filter(Boolean) as CaseName[];
const unknown = cases.filter((c) => !CASES.includes(c));
if (unknown.length > 0) usage(`--case: unknown ${unknown.join(', ')} (cases: ${CASES.join(', ')})`);
const timeout = seconds('timeout', args.timeout!);
const peerTimeout = seconds('peer-timeout', args['peer-timeout']!);
const peerMemBytes = Number(args['peer-mem-gb']) * 2 ** 30;
const python = args.python!;
const log = (line: string) => console.log(line);

// ---- the run's folder, results file and clean-up -----------------------------------------------------------------
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-bench-train-'));
const cleanUp = () => {
  if (!args.keep) fs.rmSync(tmpRoot, { recursive: true, force: true });
};

interface CaseResult {
  case: CaseName;
  date: string;
  status: 'running' | 'measured' | 'skipped' | 'failed';
  skipped?: string;
  [key: string]: unknown;
}
/** One line of the ratio table: what was measured against its target. */
interface Verdict {
  case: string;
  measure: string;
  value: string;
  target: string;
  met: boolean | null;
}

const startedAt = machine();
const resultsFile = path.join(args['results-dir']!, `${startedAt.date.slice(0, 10)}-${os.hostname()}-train-catalogs.json`);
// One file per day and host: a case measured again replaces its entry, the others stay.
const stored: Record<string, unknown> = (() => {
  try {
    return (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as { cases?: Record<string, unknown> }).cases ?? {};
  } catch {
    return {};
  }
})();
const verdicts: Verdict[] = [];
// Stopped: stop the timed processes too (each runs in its own process group), keep the results written so far.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopTimedProcesses();
    cleanUp();
    console.error(`\nstopped (${signal}); results so far in ${path.relative(repoRoot, resultsFile)}`);
    process.exit(130);
  });
}

function save(result: CaseResult): void {
  stored[result.case] = result;
  fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
  fs.writeFileSync(resultsFile, JSON.stringify({ ...machine(), command: process.argv.slice(2), cases: stored }, null, 2) + '\n');
}

function verdict(result: CaseResult, v: Omit<Verdict, 'case'>): void {
  const line = { case: result.case, ...v };
  verdicts.push(line);
  ((result.verdicts ??= []) as Verdict[]).push(line);
  log(`  ⇒ ${v.measure}: ${v.value} (target ${v.target}${v.met === null ? '' : v.met ? ', met' : ', NOT met'})`);
}

function skip(result: CaseResult, reason: string): CaseResult {
  log(`${result.case}: skipped: ${reason}`);
  result.status = 'skipped';
  result.skipped = reason;
  save(result);
  return result;
}

// ---- processes ---------------------------------------------------------------------------------------------------
const fmt = (s: number) => (s >= 100 ? s.toFixed(0) : s.toFixed(1));

/** Runs and logs one timed process; its output goes to <dir>/<name>.log. */
async function timed(dir: string, name: string, label: string, argv: string[], opts: Partial<TimedOptions> = {}): Promise<TimedRun> {
  const logFile = path.join(dir, `${name}.log`);
  log(`  ${label} …`);
  const r = await timedProcess(argv, { logFile, echo: args.verbose, timeoutSeconds: timeout, ...opts });
  log(`  ${label}: ${r.ended}, ${fmt(r.wallSeconds)} s, peak RSS ${r.peakRssMB} MB`);
  if (!r.finished) log(`    (last output: ${r.stderrTail.trim().split('\n').slice(-3).join(' | ')})`);
  return r;
}

/** What the JSON keeps of a process. */
function proc(r: TimedRun): Record<string, unknown> {
  return {
    command: r.command,
    ended: r.ended,
    wallSeconds: r.wallSeconds,
    peakRssMB: r.peakRssMB,
    exitCode: r.exitCode,
    ...(r.finished ? {} : { stderrTail: r.stderrTail.trim().split('\n').slice(-20).join('\n') }),
  };
}

const readJson = <T = Record<string, unknown>>(file: string): T | null => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
};

interface HeadFacts {
  name: string;
  C: number;
  weight?: number;
  converged?: boolean;
  iterations?: number;
}
interface Manifest {
  classes?: string[];
  fusion?: { heads: { name: string; weight: number }[] };
  training?: { logisticRegression?: { heads?: HeadFacts[] } };
}

/** What a finished `train` chose and reported: heads (C, weight), fusion weights, validation, rows, classes. */
function trainFacts(bundle: string, summaryFile: string): Record<string, unknown> {
  const manifest = readJson<Manifest>(path.join(bundle, 'manifest.json'));
  const summary = readJson<{ validation?: unknown; rows?: unknown; classes?: number; fit?: { converged?: boolean; heads?: HeadFacts[] }; elapsedSeconds?: number }>(summaryFile);
  const heads = manifest?.training?.logisticRegression?.heads ?? summary?.fit?.heads ?? [];
  return {
    classes: summary?.classes ?? manifest?.classes?.length ?? null,
    rows: summary?.rows ?? null,
    heads: heads.map((h) => ({ name: h.name, C: h.C, weight: h.weight, converged: h.converged, iterations: h.iterations })),
    fusionWeights: manifest?.fusion ? Object.fromEntries(manifest.fusion.heads.map((h) => [h.name, h.weight])) : null,
    converged: summary?.fit?.converged ?? null,
    validation: summary?.validation ?? null,
    elapsedSeconds: summary?.elapsedSeconds ?? null,
  };
}
const chosenC = (facts: Record<string, unknown>) => (facts.heads as HeadFacts[]).map((h) => `${h.name} ${h.C}`).join(', ');

/** `categorize run` (a given CLI) with its summary: the rows/s it reports itself. */
async function timedRun(dir: string, name: string, label: string, cli: string, input: string, bundle: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<{ process: TimedRun; summary: { rows?: number; rowsPerSecond?: number; startupSeconds?: number; elapsedSeconds?: number; errors?: number } | null; output: string }> {
  const output = path.join(dir, `${name}.jsonl`);
  const summaryFile = path.join(dir, `${name}.summary.json`);
  const r = await timed(dir, name, label, [process.execPath, cli, 'run', input, '--model', bundle, '-o', output, '--json-summary', summaryFile, ...extra], { env });
  return { process: r, summary: r.finished ? readJson(summaryFile) : null, output };
}

function bundleSize(bundle: string): { bytes: number; diskBytes: number; diskMB: number } {
  const s = folderSize(bundle);
  return { ...s, diskMB: s.diskBytes / 1e6 };
}

// ---- tools -------------------------------------------------------------------------------------------------------
const hasCommand = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
let sklearnVersion: string | null | undefined;
/** Why the scikit-learn side cannot run, or undefined when it can. */
function sklearnMissing(): string | undefined {
  if (sklearnVersion === undefined) {
    const r = spawnSync(python, ['-c', 'import sklearn; print(sklearn.__version__)'], { encoding: 'utf8' });
    sklearnVersion = r.status === 0 ? r.stdout.trim() : null;
  }
  return sklearnVersion ? undefined : `${python} with scikit-learn is missing (apt-get install python3-sklearn)`;
}
const toolsMissing = !fs.existsSync(gnuTime) ? `GNU time (${gnuTime}) is missing (apt-get install time)` : !hasCommand('timeout') ? 'coreutils timeout is missing' : undefined;

// ---- amazon, taxonomy: ours against scikit-learn's LogisticRegressionCV peer -------------------------------------
const peerScript = path.join(shared, 'tools', 'train_time_peer.py');

async function textCatalogCase(result: CaseResult, folder: string, labelColumn: string, taxonomy: boolean): Promise<void> {
  const data = path.join(shared, 'data', folder);
  const train = path.join(data, 'train.csv');
  const dev = path.join(data, 'dev.csv');
  const missing = firstMissing(taxonomy ? [train, dev] : [train]);
  if (missing) return void skip(result, `needs ../shared: ${missing} is missing`);
  const dir = fs.mkdtempSync(path.join(tmpRoot, `${result.case}-`));
  result.catalog = path.relative(repoRoot, train);
  log(`${result.case}: categorize train --features tfidf on ${result.catalog} (label ${labelColumn}), then scikit-learn's peer`);

  const bundle = path.join(dir, 'bundle');
  const summaryFile = path.join(dir, 'train-summary.json');
  const ours = await timed(dir, 'train', 'ours: categorize train', [process.execPath, bin, 'train', train, '--label-column', labelColumn, '--features', 'tfidf', '-o', bundle, '--json-summary', summaryFile]);
  result.ours = { ...proc(ours), ...(ours.finished ? trainFacts(bundle, summaryFile) : {}) };
  if (ours.finished) log(`  ours chose C: ${chosenC(result.ours as Record<string, unknown>)}`);
  save(result);

  if (taxonomy && ours.finished) {
    const size = bundleSize(bundle);
    const run = await timedRun(dir, 'run-dev', 'ours: categorize run on dev.csv', bin, dev, bundle);
    result.bundle = size;
    result.run = { ...proc(run.process), rows: run.summary?.rows ?? null, rowsPerSecond: run.summary?.rowsPerSecond ?? null, startupSeconds: run.summary?.startupSeconds ?? null };
    log(`  bundle ${size.diskMB.toFixed(1)} MB on disk; run: ${run.summary?.rowsPerSecond?.toFixed(0) ?? '?'} rows/s (its summary) over ${run.summary?.rows ?? '?'} rows`);
    verdict(result, { measure: 'bundle size on disk', value: `${size.diskMB.toFixed(1)} MB`, target: 'reported', met: null });
    if (run.summary?.rowsPerSecond !== undefined) verdict(result, { measure: 'run rows/s on dev.csv', value: run.summary.rowsPerSecond.toFixed(0), target: '≥ 1000', met: run.summary.rowsPerSecond >= 1000 });
    save(result);
  }

  const peerMissing = firstMissing([peerScript]);
  const peerSkip = peerMissing ? `needs ../shared: ${peerMissing} is missing` : sklearnMissing() ?? (taxonomy && !hasCommand('prlimit') ? 'prlimit (util-linux) is missing for the memory cap' : undefined);
  if (peerSkip) {
    log(`  peer: skipped: ${peerSkip}`);
    result.peer = { skipped: peerSkip };
  } else {
    const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_CORETYPE: args['openblas-coretype'] };
    // The taxonomy peer needs more than 24 GB: one BLAS thread and a cap, so that it ends in a MemoryError, not the OOM killer.
    if (taxonomy) env.OPENBLAS_NUM_THREADS = '1';
    const label = `peer: ${path.basename(peerScript)}${taxonomy ? ` (cap ${args['peer-mem-gb']} GiB, ${fmt(peerTimeout)} s)` : ''}`;
    const peer = await timed(dir, 'peer', label, [python, peerScript, train, labelColumn], { env, timeoutSeconds: peerTimeout, memoryLimitBytes: taxonomy ? peerMemBytes : undefined });
    // Its line: "sklearn LogisticRegressionCV: N rows, F features, K classes, chose C=c, wall S s, peak RSS M MB"
    const m = /(\d+) rows, (\d+) features, (\d+) classes, chose C=([^,]+), wall ([\d.]+) s, peak RSS (\d+) MB/.exec(peer.stdout);
    result.peer = {
      ...proc(peer),
      sklearn: sklearnVersion,
      env: { OPENBLAS_CORETYPE: env.OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS: env.OPENBLAS_NUM_THREADS ?? null },
      memoryCapGiB: taxonomy ? Number(args['peer-mem-gb']) : null,
      ...(m ? { rows: Number(m[1]), features: Number(m[2]), classes: Number(m[3]), chosenC: Number(m[4]), reportedWallSeconds: Number(m[5]), reportedPeakRssMB: Number(m[6]) } : {}),
    };
    if (m) log(`  peer chose C=${m[4]} (${m[2]} features); its own timer: ${m[5]} s`);
    if (ours.finished && peer.finished) {
      const ratio = ours.wallSeconds / peer.wallSeconds;
      result.ratio = { oursOverPeerWall: ratio, oursOverPeerReportedWall: m ? ours.wallSeconds / Number(m[5]) : null };
      verdict(result, { measure: 'train wall time, ours ÷ scikit-learn peer', value: `${ratio.toFixed(3)} (${fmt(ours.wallSeconds)} s ÷ ${fmt(peer.wallSeconds)} s)`, target: '≤ 0.25', met: ratio <= 0.25 });
    } else {
      verdict(result, { measure: 'train wall time, ours ÷ scikit-learn peer', value: `ours ${ours.ended} (${fmt(ours.wallSeconds)} s, ${ours.peakRssMB} MB); peer ${peer.ended} (${fmt(peer.wallSeconds)} s, ${peer.peakRssMB} MB)`, target: '≤ 0.25', met: null });
    }
  }
  result.status = 'measured';
  save(result);
}

// ---- photos: ours against the project at --baseline, both from a warm embedding cache ----------------------------
const benchCache = path.join(repoRoot, 'bench', '.cache');

/** The project at `ref`, extracted with git archive into bench/.baseline/<ref> and built with the repo's tsc. */
function ensureBaseline(ref: string): { dir: string; commit: string; cli: string } {
  const rev = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--verify', `${ref}^{commit}`], { encoding: 'utf8' });
  if (rev.status !== 0) throw new Error(`--baseline ${ref}: not a commit of this repository (${rev.stderr.trim()})`);
  const commit = rev.stdout.trim();
  const dir = path.join(repoRoot, 'bench', '.baseline', ref.replace(/[^\w.-]/g, '_'));
  const cli = path.join(dir, 'bin', 'categorize.js');
  const stamp = path.join(dir, '.built-from');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === commit) return { dir, commit, cli };
  log(`  building the baseline ${ref} (${commit.slice(0, 12)}) in ${path.relative(repoRoot, dir)} …`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const extract = spawnSync('sh', ['-c', 'git -C "$0" archive "$1" | tar -x -C "$2"', repoRoot, commit, dir], { encoding: 'utf8' });
  if (extract.status !== 0) throw new Error(`git archive ${commit} failed: ${extract.stderr}`);
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  if (tsc.status !== 0) throw new Error(`building the baseline failed:\n${tsc.stdout}${tsc.stderr}`);
  fs.writeFileSync(stamp, commit);
  return { dir, commit, cli };
}

/** Share of rows whose predicted category agrees between two prediction files, matched by id. */
function agreement(a: string, b: string): { rows: number; agree: number; share: number; missing: number } {
  const read = (file: string) => new Map(fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const r = JSON.parse(l) as { id: string; category: string | null };
    return [String(r.id), r.category] as const;
  }));
  const pa = read(a);
  const pb = read(b);
  let agree = 0;
  let missing = 0;
  for (const [id, cat] of pa) {
    if (!pb.has(id)) missing++;
    else if (pb.get(id) === cat) agree++;
  }
  const rows = Math.max(pa.size, pb.size);
  return { rows, agree, share: agree / rows, missing };
}

async function photosCase(result: CaseResult): Promise<void> {
  const catalogs = String(args.catalogs).split(',').map((c) => c.trim()).filter(Boolean);
  const model = path.join(shared, 'models', 'mobilenetv2-12-int8', 'model.onnx');
  const missing = firstMissing([model, ...catalogs.flatMap((c) => [path.join(shared, 'data', c, 'train.csv'), path.join(shared, 'data', c, 'dev.csv')])]);
  if (missing) return void skip(result, `needs ../shared: ${missing} is missing`);
  if (!hasCommand('git') || !fs.existsSync(path.join(repoRoot, '.git'))) return void skip(result, 'needs git and the repository to extract the baseline');
  const baseline = ensureBaseline(args.baseline!);
  result.baseline = { ref: args.baseline, commit: baseline.commit, dir: path.relative(repoRoot, baseline.dir) };
  const env: NodeJS.ProcessEnv = { ...process.env, HF_HUB_OFFLINE: '1' };
  delete env.CATEGORIZE_EMBED_CACHE;
  // Each side has its own model cache, where it registers the model with its own CLI, and its own embedding cache,
  // filled by its own CLI before it is timed: the registry's format and the cache's keys have changed since the
  // baseline, which reads neither of ours (a shared cache left it embedding every photo in its timed train).
  const sides = { baseline: baseline.cli, ours: bin };
  const own = (side: string) => (side === 'ours' ? '' : `-baseline-${path.basename(baseline.dir)}`);
  const envs: Record<string, NodeJS.ProcessEnv> = Object.fromEntries(Object.keys(sides).map((side) => [side, { ...env, CATEGORIZE_CACHE: path.join(benchCache, `models${own(side)}`) }]));
  const embedCaches: Record<string, string> = Object.fromEntries(Object.keys(sides).map((side) => [side, path.join(benchCache, `embeddings${own(side)}`)]));
  for (const [side, cli] of Object.entries(sides)) {
    const list = spawnSync(process.execPath, [cli, 'models', 'list'], { env: envs[side], encoding: 'utf8' });
    if (/mobilenetv2-int8/.test(list.stdout)) continue;
    const add = spawnSync(process.execPath, [cli, 'models', 'import', model, '--kind', 'image', '--id', 'mobilenetv2-int8', '-q'], { env: envs[side], encoding: 'utf8' });
    if (add.status !== 0) throw new Error(`${side}: categorize models import failed:\n${add.stderr}`);
  }
  const perCatalog: Record<string, unknown> = {};
  result.catalogs = perCatalog;
  for (const catalog of catalogs) {
    const data = path.join(shared, 'data', catalog);
    const train = path.join(data, 'train.csv');
    const dev = path.join(data, 'dev.csv');
    const dir = fs.mkdtempSync(path.join(tmpRoot, `photos-${catalog}-`));
    log(`photos/${catalog}: train --features image,tfidf --image-model mobilenetv2-int8 --cache, baseline ${args.baseline} then ours`);
    const trainArgs = (side: string, bundle: string, summary: string) => ['train', train, '--label-column', 'category', '--features', 'image,tfidf', '--image-model', 'mobilenetv2-int8', '--cache', embedCaches[side]!, '-o', bundle, '--json-summary', summary];
    // Untimed, each side with its own CLI: fills its embedding cache for train.csv (a cheap train: one C, no
    // validation) and dev.csv, so that the timed trains fit heads instead of running the image model, and the dev
    // runs start alike.
    const entry: Record<string, unknown> = {};
    perCatalog[catalog] = entry;
    let filled = true;
    for (const [side, cli] of Object.entries(sides)) {
      const fillBundle = path.join(dir, `fill-${side}-bundle`);
      const fill = await timed(dir, `fill-${side}`, `${side}: fill its embedding cache (untimed)`, [process.execPath, cli, ...trainArgs(side, fillBundle, path.join(dir, `fill-${side}.json`)), '--C', '1', '--validation', '0'], { env: envs[side] });
      const fillDev = fill.finished ? (await timedRun(dir, `fill-${side}-dev`, `${side}: fill its embedding cache for dev.csv (untimed)`, cli, dev, fillBundle, ['--cache', embedCaches[side]!], envs[side])).process : fill;
      entry[`fill-${side}`] = { train: proc(fill), dev: proc(fillDev) };
      if (!fillDev.finished) {
        verdict(result, { measure: `${catalog}: train wall time, baseline ÷ ours`, value: `not measured: filling the ${side} embedding cache ${fillDev.ended}`, target: '≥ 4', met: null });
        filled = false;
        break;
      }
    }
    if (!filled) {
      save(result);
      continue;
    }
    const trained: Record<string, { run: TimedRun; bundle: string; facts: Record<string, unknown> }> = {};
    for (const [side, cli] of Object.entries(sides)) {
      const bundle = path.join(dir, `${side}-bundle`);
      const summary = path.join(dir, `${side}-train.json`);
      const r = await timed(dir, `${side}-train`, `${side}: categorize train`, [process.execPath, cli, ...trainArgs(side, bundle, summary)], { env: envs[side] });
      const facts = r.finished ? trainFacts(bundle, summary) : {};
      trained[side] = { run: r, bundle, facts };
      entry[side] = { ...proc(r), ...facts, cache: readJson<{ cache?: unknown }>(summary)?.cache ?? null };
      if (r.finished) log(`  ${side}: C ${chosenC(facts)}; weights ${JSON.stringify(facts.fusionWeights)}; validation ${JSON.stringify(facts.validation)}`);
      save(result);
    }
    const [b, o] = [trained.baseline!, trained.ours!];
    if (b.run.finished && o.run.finished) {
      const ratio = b.run.wallSeconds / o.run.wallSeconds;
      entry.ratio = { baselineOverOurs: ratio };
      verdict(result, { measure: `${catalog}: train wall time, baseline ÷ ours`, value: `${ratio.toFixed(2)}× (${fmt(b.run.wallSeconds)} s ÷ ${fmt(o.run.wallSeconds)} s)`, target: '≥ 4', met: ratio >= 4 });
      const preds: Record<string, string> = {};
      for (const [side, cli] of Object.entries(sides)) {
        const run = await timedRun(dir, `${side}-dev`, `${side}: categorize run on dev.csv`, cli, dev, trained[side]!.bundle, ['--cache', embedCaches[side]!], envs[side]);
        (entry[side] as Record<string, unknown>).devRun = { ...proc(run.process), rowsPerSecond: run.summary?.rowsPerSecond ?? null };
        if (run.process.finished) preds[side] = run.output;
      }
      if (preds.baseline && preds.ours) {
        const agree = agreement(preds.baseline, preds.ours);
        entry.devAgreement = agree;
        verdict(result, { measure: `${catalog}: dev rows predicted alike`, value: `${(100 * agree.share).toFixed(2)}% (${agree.agree} of ${agree.rows})`, target: '≥ 99.5%', met: agree.share >= 0.995 });
      }
    } else {
      verdict(result, { measure: `${catalog}: train wall time, baseline ÷ ours`, value: `baseline ${b.run.ended}, ours ${o.run.ended}`, target: '≥ 4', met: null });
    }
    save(result);
  }
  result.status = 'measured';
  save(result);
}

// ---- synthetic: a 5,000-class catalog ------------------------------------------------------------------------------
async function syntheticCase(result: CaseResult): Promise<void> {
  const classes = count('synthetic-classes');
  const rows = count('synthetic-rows');
  const heldOut = count('synthetic-heldout');
  const seed = count('seed');
  const data = path.join(repoRoot, 'bench', '.data', 'synthetic', `c${classes}-r${rows}-s${seed}`);
  const train = path.join(data, 'train.csv');
  const held = path.join(data, `heldout-${heldOut}.csv`);
  const t0 = performance.now();
  writeSyntheticCatalog(train, { classes, rows, seed });
  writeSyntheticCatalog(held, { classes, rows, seed, sample: 1, sampleRows: heldOut });
  result.catalog = { classes, rows, heldOut, seed, train: path.relative(repoRoot, train), heldOutCsv: path.relative(repoRoot, held) };
  log(`synthetic: ${rows} rows, ${classes} classes (seed ${seed}) written to ${path.relative(repoRoot, data)} in ${((performance.now() - t0) / 1000).toFixed(1)} s; train --features tfidf, then run on ${heldOut} held-out rows`);

  const dir = fs.mkdtempSync(path.join(tmpRoot, 'synthetic-'));
  const bundle = path.join(dir, 'bundle');
  const summaryFile = path.join(dir, 'train-summary.json');
  const ours = await timed(dir, 'train', 'ours: categorize train', [process.execPath, bin, 'train', train, '--label-column', 'category', '--features', 'tfidf', '-o', bundle, '--json-summary', summaryFile]);
  result.ours = { ...proc(ours), ...(ours.finished ? trainFacts(bundle, summaryFile) : {}) };
  verdict(result, { measure: 'train', value: `${ours.ended}, ${fmt(ours.wallSeconds)} s, peak RSS ${ours.peakRssMB} MB`, target: `within --timeout ${fmt(timeout)} s`, met: ours.finished });
  save(result);
  if (ours.finished) {
    const size = bundleSize(bundle);
    result.bundle = size;
    verdict(result, { measure: 'bundle size on disk', value: `${size.diskMB.toFixed(1)} MB`, target: '≤ 250 MB', met: size.diskMB <= 250 });
    const run = await timedRun(dir, 'run-heldout', 'ours: categorize run on the held-out rows', bin, held, bundle);
    result.run = { ...proc(run.process), rows: run.summary?.rows ?? null, rowsPerSecond: run.summary?.rowsPerSecond ?? null, startupSeconds: run.summary?.startupSeconds ?? null };
    if (run.summary?.rowsPerSecond !== undefined) verdict(result, { measure: 'run rows/s on held-out rows', value: run.summary.rowsPerSecond.toFixed(0), target: '≥ 200', met: run.summary.rowsPerSecond >= 200 });
    // What the head is worth: the bundle's figures on rows drawn independently from the same classes.
    const evalJson = path.join(dir, 'eval-heldout.json');
    const judged = await timed(dir, 'eval-heldout', 'ours: categorize eval on the held-out rows', [process.execPath, bin, 'eval', held, '--label-column', 'category', '--model', bundle, '--json', evalJson]);
    const metrics = judged.finished ? readJson<{ metrics?: { accuracy: number; macroF1: number; top3Accuracy: number } }>(evalJson)?.metrics : undefined;
    if (metrics) {
      result.heldOut = { accuracy: metrics.accuracy, macroF1: metrics.macroF1, top3Accuracy: metrics.top3Accuracy };
      verdict(result, { measure: 'held-out accuracy / macro-F1', value: `${metrics.accuracy.toFixed(4)} / ${metrics.macroF1.toFixed(4)}`, target: 'reported', met: null });
    }
  }
  result.status = 'measured';
  save(result);
}

// ---- fit: bench/train-vs-sklearn.ts as it is ------------------------------------------------------------------------
async function fitCase(result: CaseResult): Promise<void> {
  const why = sklearnMissing();
  if (why) return void skip(result, why);
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'fit-'));
  const extra = String(args['fit-args']).split(/\s+/).filter(Boolean);
  log(`fit: train-vs-sklearn.js ${extra.join(' ')}`.trimEnd());
  const r = await timed(dir, 'fit', 'train-vs-sklearn.js (ours, then scikit-learn)', [process.execPath, path.join(here, 'train-vs-sklearn.js'), '--python', python, '--results-dir', args['results-dir']!, ...extra]);
  result.process = proc(r);
  if (r.finished) {
    log(r.stdout.trim().split('\n').map((l) => `    ${l}`).join('\n'));
    // It writes its own <date>-<host>-train.json; its run is the last entry.
    const written = /wrote (\S+)/.exec(r.stdout)?.[1];
    const run = written ? readJson<{ runs: Array<Record<string, unknown>> }>(path.join(repoRoot, written))?.runs.at(-1) : undefined;
    if (run) {
      result.fit = { case: run.case, problem: run.problem, ours: run.ours, sklearn: run.sklearn, ratio: run.ratio, file: written };
      const ratio = (run.ratio as { fitTime?: number } | null)?.fitTime;
      if (ratio !== undefined) verdict(result, { measure: `fit time, ours ÷ scikit-learn (${String(run.case)})`, value: ratio.toFixed(3), target: 'reported', met: null });
    }
  }
  result.status = 'measured';
  save(result);
}

// ---- main ----------------------------------------------------------------------------------------------------------
log(`bench:train: ${cases.join(', ')}; ${startedAt.cpu}; temporary folder ${tmpRoot}${args.keep ? ' (kept)' : ''}`);
for (const name of cases) {
  const result: CaseResult = { case: name, date: new Date().toISOString(), status: 'running', timeoutSeconds: timeout };
  const t0 = performance.now();
  save(result);
  try {
    if (toolsMissing) skip(result, toolsMissing);
    else if (name === 'amazon') await textCatalogCase(result, 'amazon-electronics', 'category', false);
    else if (name === 'taxonomy') await textCatalogCase(result, 'flipkart-taxonomy', 'category_path', true);
    else if (name === 'photos') await photosCase(result);
    else if (name === 'synthetic') await syntheticCase(result);
    else await fitCase(result);
  } catch (err) {
    // A broken set-up (the baseline's build, a model import) ends this case, not the others.
    result.status = 'failed';
    result.error = err instanceof Error ? err.message : String(err);
    log(`${name}: failed: ${result.error}`);
  }
  if (result.status !== 'skipped') {
    result.caseSeconds = (performance.now() - t0) / 1000;
    save(result);
    if (result.status === 'measured') log(`${name}: done in ${fmt(result.caseSeconds as number)} s`);
  }
}
cleanUp();

if (verdicts.length > 0) {
  const rows = verdicts.map((v) => [v.case, v.measure, v.value, v.target, v.met === null ? '' : v.met ? 'met' : 'NOT met']);
  const head = ['case', 'measure', 'measured', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  log('');
  for (const r of [head, ...rows]) log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}
log(`\nwritten ${path.relative(repoRoot, resultsFile)}`);
