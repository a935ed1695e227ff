// `npm run bench:attributes`: what `train --attribute` and `run` with an attribute bundle cost beside the category
// alone, measured side by side in one run on ../shared myntra-fashion with the embedded preset (the real int8
// MobileNetV2 image encoder + TF-IDF), with wall time and peak RSS of every process (GNU time). The issue's targets:
// `train` with four attributes takes ≤ 1.5× the time of the category alone, and `run` ≤ 1.1× (one embedding pass).
//
//   train  (a) --label-column category, (b) the same + --attribute gender,colour,usage,season, on train.csv,
//          alternating a/b then b/a per --repeats to cancel drift; both with a warm embedding cache (filled by one
//          untimed train first), so the ratio b ÷ a is of the head work alone (the strict case; --cold: no cache,
//          embedding included). Reported: wall and each's own elapsedSeconds, peak RSS, and per attribute its
//          classes, rows, heads' C and weights and the fusion chosen (late, early or the text head alone) (target: wall b ÷ a ≤ 1.5)
//   run    both bundles over dev.csv WITHOUT the embedding cache (the per-row work of a nightly run), alternating:
//          rows/s, wall b ÷ a (target ≤ 1.1), CPU b ÷ a, and the images embedded (must be equal: one pass)
//   eval   bundle b on dev.csv: each attribute's macro-F1 and accuracy, and the category's from both bundles
//          (must be identical: the category heads do not change with attributes)
//
//   node dist/bench/attributes.js                         # the whole catalog, one repeat
//   node dist/bench/attributes.js --repeats 3
//   node dist/bench/attributes.js --rows 400 --results-dir /tmp/attr-bench   # a quick check on the first 400 rows
//
// Options:
//   --rows N             use only the first N rows of train.csv and of dev.csv (written to a temporary folder)
//   --repeats N          a/b pairs of train and of run, alternating the order (default 1)
//   --attributes LIST    bundle b's attributes (default gender,colour,usage,season)
//   --cold               time both trains without the embedding cache (image embedding included)
//   --train-args='ARGS'  more arguments for both timed trains (note the =), e.g. --train-args='--C 1 --fusion late'
//                        for a cheap check of the bench itself; default none (train's defaults). With --rows up to
//                        3,000 rows, --fusion-folds 0 is added unless given: C and fusion chosen on one held-out
//                        share, as train's default does on the whole catalog (5 folds only below 3,000 rows)
//   --verbose            copy every process's output to stderr (otherwise only to its log file)
//   --keep               keep the temporary folder (bundles, predictions, summaries, logs)
//   --results-dir DIR    where the JSON goes (default bench/results)
//
// Needs ../shared/data/myntra-fashion; without it, says so and exits 0. The model cache (the shipped MobileNetV2's
// tapped copy) and the embedding cache live in bench/.data/attributes/. Writes <date>-<host>-attributes.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { repoRoot, bin, shared, machine, gnuTime, timedProcess, stopTimedProcesses, firstMissing, printHeaderHelp, usageExit, type TimedRun } from './common.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string' },
    repeats: { type: 'string', default: '1' },
    attributes: { type: 'string', default: 'gender,colour,usage,season' },
    cold: { type: 'boolean', default: false },
    'train-args': { type: 'string', default: '' },
    verbose: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'results-dir': { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) printHeaderHelp(import.meta.url);

/** A usage error: said in one line, exit 2. */
function usage(message: string): never {
  return usageExit('attributes', message);
}
function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`--${name}: expected a positive whole number: ${v}`);
  return n;
}
const rowLimit = positive('rows', args.rows);
const repeats = positive('repeats', args.repeats)!;
const attributeNames = args.attributes!.split(',').map((a) => a.trim()).filter(Boolean);
if (attributeNames.length === 0) usage('--attributes: expected a comma-separated list of columns');
const log = (line: string) => console.log(line);

const data = path.join(shared, 'data', 'myntra-fashion');
const missing = firstMissing([path.join(data, 'train.csv'), path.join(data, 'dev.csv')]);
if (missing) {
  log(`bench:attributes skipped: needs ../shared/data/myntra-fashion (${missing} is missing)`);
  process.exit(0);
}
if (!fs.existsSync(gnuTime)) {
  log(`bench:attributes skipped: GNU time (${gnuTime}) is missing (apt-get install time)`);
  process.exit(0);
}

// ---- folders, caches, clean-up --------------------------------------------------------------------------------------
const work = path.join(repoRoot, 'bench', '.data', 'attributes');
const embedCache = path.join(work, 'embeddings');
fs.mkdirSync(work, { recursive: true });
// The model cache is the benchmark's own (the embedded preset taps the shipped model into it at first use); no
// embedding cache unless --cache says so (CATEGORIZE_EMBED_CACHE would turn one on everywhere).
const env: NodeJS.ProcessEnv = { ...process.env, CATEGORIZE_CACHE: path.join(work, 'model-cache'), HF_HUB_OFFLINE: '1' };
delete env.CATEGORIZE_EMBED_CACHE;
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-bench-attributes-'));
const cleanUp = () => {
  if (!args.keep) fs.rmSync(tmpRoot, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopTimedProcesses();
    cleanUp();
    console.error(`\nstopped (${signal})`);
    process.exit(130);
  });
}

// ---- the catalog: all of it, or its first --rows rows -----------------------------------------------------------------
function firstRows(src: string, dest: string, n: number): number {
  const records = parse(fs.readFileSync(src, 'utf8'), { columns: false, skip_empty_lines: true }) as string[][];
  const kept = records.slice(0, n + 1);
  fs.writeFileSync(dest, stringify(kept));
  return kept.length - 1;
}
const countRows = (file: string) => (parse(fs.readFileSync(file, 'utf8'), { columns: false, skip_empty_lines: true }) as string[][]).length - 1;
let trainCsv = path.join(data, 'train.csv');
let devCsv = path.join(data, 'dev.csv');
let trainRows: number;
let devRows: number;
if (rowLimit !== undefined) {
  const sub = path.join(tmpRoot, 'data');
  fs.mkdirSync(sub);
  trainRows = firstRows(trainCsv, path.join(sub, 'train.csv'), rowLimit);
  devRows = firstRows(devCsv, path.join(sub, 'dev.csv'), rowLimit);
  trainCsv = path.join(sub, 'train.csv');
  devCsv = path.join(sub, 'dev.csv');
} else {
  trainRows = countRows(trainCsv);
  devRows = countRows(devCsv);
}
// Image paths are relative to the dataset's folder, wherever the CSV is.
const imageRoot = ['--image-root', data];
// train's --fusion-folds auto picks 5 folds up to AUTO_FOLDS_MAX_ROWS (3,000) rows and one held-out share above: a
// subset that small would be timed on another procedure than the whole catalog's (5,531 rows), and 5 times the fits.
const extraTrainArgs = args['train-args']!.split(/\s+/).filter(Boolean);
const pinnedFolds = rowLimit !== undefined && trainRows <= 3000 && !extraTrainArgs.some((a) => a.startsWith('--fusion-folds'));
if (pinnedFolds) extraTrainArgs.push('--fusion-folds', '0');

// ---- processes ------------------------------------------------------------------------------------------------------
const fmt = (s: number) => (s >= 100 ? s.toFixed(0) : s.toFixed(1));
const readJson = <T>(file: string): T | null => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
};

/** Runs and logs one timed `categorize` process; its output goes to <tmp>/<name>.log. Throws when it fails. */
async function timed(name: string, label: string, argv: string[]): Promise<TimedRun> {
  log(`  ${label} …`);
  const r = await timedProcess([process.execPath, bin, ...argv], { logFile: path.join(tmpRoot, `${name}.log`), env, echo: args.verbose });
  log(`  ${label}: ${r.ended}, ${fmt(r.wallSeconds)} s, peak RSS ${r.peakRssMB} MB`);
  if (!r.finished) throw new Error(`${label} ${r.ended}\n  ${r.command}\n  ${r.stderrTail.trim().split('\n').slice(-5).join('\n  ')}`);
  return r;
}
const proc = (r: TimedRun) => ({ command: r.command, wallSeconds: r.wallSeconds, peakRssMB: r.peakRssMB });

interface HeadFit { name: string; C: number; weight: number; converged: boolean; iterations: number }
interface Fusion { heads: { name: string; weight: number; C: number }[]; early?: { chosen: boolean; blockWeight: number; C: number }; textAlone?: { chosen: boolean } }
interface TrainSummary {
  classes: number;
  rows: { used: number };
  fit: { heads: HeadFit[] };
  fusion: Fusion | null;
  validation: { accuracy: number; macroF1: number } | null;
  cache: unknown;
  attributes: { name: string; classes: number; rows: number; withoutValue: number; dropped: { value: string; count: number }[]; heads: HeadFit[]; fusion: Fusion | null }[];
  embedded: { text: number; image: number };
  elapsedSeconds: number;
}
interface RunSummary { rows: number; rowsPerSecond: number; elapsedSeconds: number; startupSeconds: number; rowsCpuSeconds: number; peakRssMB: number; embedded: { text: number; image: number } }
interface Metrics { n: number; correct: number; accuracy: number; macroF1: number; weightedF1: number; top3Accuracy: number }
interface EvalJson { metrics: Metrics; attributes: { name: string; emptyLabel: number; metrics: Metrics }[] }

const heads = (hs: HeadFit[]) => hs.map((h) => ({ name: h.name, C: h.C, weight: h.weight, converged: h.converged }));
const early = (f: Fusion | null) => (f?.early ? { chosen: f.early.chosen, blockWeight: f.early.blockWeight, C: f.early.C } : null);
const textAlone = (f: Fusion | null) => f?.textAlone?.chosen ?? false;
/** The fusion a target ended with: the text head alone, early (its block weight and C) or late. */
const fusionKind = (f: Fusion | null) => {
  const e = early(f);
  if (textAlone(f)) return 'text head alone';
  return e ? (e.chosen ? `early (w ${e.blockWeight.toFixed(2)}, C ${e.C})` : 'late') : '-';
};

const sides = ['a', 'b'] as const;
type Side = (typeof sides)[number];
const what: Record<Side, string> = { a: 'category alone', b: `category + ${attributeNames.join(',')}` };
const trainArgs = (side: Side, bundle: string, summary: string, extra: string[] = []) => [
  'train', trainCsv, '--label-column', 'category', ...(side === 'b' ? ['--attribute', attributeNames.join(',')] : []),
  '--preset', 'embedded', ...imageRoot, '-o', bundle, '--json-summary', summary, ...extra,
];
/** Pair k in the order a, b for even k and b, a for odd k: a drift in the machine's speed cancels over pairs. */
const order = (k: number): Side[] => (k % 2 === 0 ? ['a', 'b'] : ['b', 'a']);
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  // ---- 0: the model cache and the embedding cache, untimed ------------------------------------------------------------------
  const startedAt = machine();
  log(`bench:attributes: myntra-fashion ${rowLimit ? `first ${rowLimit} rows: ` : ''}${trainRows} train rows, ${devRows} dev rows; ` +
    `--preset embedded; (a) ${what.a}, (b) ${what.b}; ${repeats} repeat${repeats > 1 ? 's' : ''}; trains ${args.cold ? 'cold (no embedding cache)' : 'with a warm embedding cache'}; ${startedAt.cpu}; ` +
    `temporary folder ${tmpRoot}${args.keep ? ' (kept)' : ''}`);
  if (extraTrainArgs.length > 0) log(`  both trains add: ${extraTrainArgs.join(' ')}${pinnedFolds ? ' (--fusion-folds 0: see --help, --train-args)' : ''}`);
  // A cheap train (one C, no validation, late fusion) that embeds every train row into the cache, and taps the shipped
  // model into the model cache, so that no timed process pays either (with --cold, the trains still embed every row).
  const fill = await timed('fill', 'fill the embedding cache over train.csv (untimed)', trainArgs('a', path.join(tmpRoot, 'fill-bundle'), path.join(tmpRoot, 'fill.json'), ['--cache', embedCache, '--C', '1', '--validation', '0', '--fusion', 'late', '--fusion-folds', '0', '-q']));

  // ---- 1: train a and b, alternating ----------------------------------------------------------------------------------------
  log(`train: ${repeats} pair${repeats > 1 ? 's' : ''}, ${args.cold ? 'without the embedding cache' : 'with the warm embedding cache'}`);
  const trains: Record<Side, { run: TimedRun; summary: TrainSummary; bundle: string }[]> = { a: [], b: [] };
  for (let k = 0; k < repeats; k++) {
    for (const side of order(k)) {
      const bundle = path.join(tmpRoot, `bundle-${side}-${k + 1}`);
      const summaryFile = path.join(tmpRoot, `train-${side}-${k + 1}.json`);
      const r = await timed(`train-${side}-${k + 1}`, `train (${side}) ${what[side]}, pair ${k + 1}`, trainArgs(side, bundle, summaryFile, [...extraTrainArgs, ...(args.cold ? [] : ['--cache', embedCache])]));
      const summary = readJson<TrainSummary>(summaryFile);
      if (!summary) throw new Error(`train (${side}) wrote no summary ${summaryFile}`);
      log(`    its elapsedSeconds ${fmt(summary.elapsedSeconds)}; embedded ${summary.embedded.image} images, ${summary.embedded.text} texts`);
      trains[side].push({ run: r, summary, bundle });
    }
  }

  // ---- 2: run both bundles over dev.csv without the embedding cache, alternating -----------------------------------------------
  log(`run: ${repeats} pair${repeats > 1 ? 's' : ''} over dev.csv, no embedding cache`);
  const bundles: Record<Side, string> = { a: trains.a[0]!.bundle, b: trains.b[0]!.bundle };
  const runs: Record<Side, { run: TimedRun; summary: RunSummary; output: string }[]> = { a: [], b: [] };
  for (let k = 0; k < repeats; k++) {
    for (const side of order(k)) {
      const output = path.join(tmpRoot, `run-${side}-${k + 1}.jsonl`);
      const summaryFile = path.join(tmpRoot, `run-${side}-${k + 1}.json`);
      const r = await timed(`run-${side}-${k + 1}`, `run (${side}) over dev.csv, pair ${k + 1}`, ['run', devCsv, '--model', bundles[side], ...imageRoot, '-o', output, '--json-summary', summaryFile]);
      const summary = readJson<RunSummary>(summaryFile);
      if (!summary) throw new Error(`run (${side}) wrote no summary ${summaryFile}`);
      log(`    ${summary.rowsPerSecond.toFixed(1)} rows/s (its summary), ${fmt(summary.rowsCpuSeconds)} CPU s after start-up; embedded ${summary.embedded.image} images, ${summary.embedded.text} texts`);
      runs[side].push({ run: r, summary, output });
    }
  }
  const embeddedEqual = runs.a.every((x, k) => JSON.stringify(x.summary.embedded) === JSON.stringify(runs.b[k]!.summary.embedded));
  if (!embeddedEqual) log(`  WARNING: the runs embedded different counts: a ${JSON.stringify(runs.a.map((x) => x.summary.embedded))}, b ${JSON.stringify(runs.b.map((x) => x.summary.embedded))}`);
  // The category of every dev row, as each bundle answered it in its first run.
  const predictions = (file: string) => new Map(fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const r = JSON.parse(l) as { id: string; category: string | null; score: number | null };
    return [String(r.id), `${r.category}\t${r.score}`] as const;
  }));
  const [pa, pb] = [predictions(runs.a[0]!.output), predictions(runs.b[0]!.output)];
  const sameRows = [...pa].filter(([id, p]) => pb.get(id) === p).length;
  const runCategoryAlike = { rows: Math.max(pa.size, pb.size), sameCategoryAndScore: sameRows };

  // ---- 3: eval on dev.csv (untimed; the embedding cache fills with dev's rows on the first) ------------------------------------
  log('eval: both bundles on dev.csv (untimed)');
  const evals = {} as Record<Side, EvalJson>;
  for (const side of sides) {
    const file = path.join(tmpRoot, `eval-${side}.json`);
    await timed(`eval-${side}`, `eval (${side}) on dev.csv`, ['eval', devCsv, '--label-column', 'category', '--model', bundles[side], ...imageRoot, '--cache', embedCache, '--json', file]);
    const e = readJson<EvalJson>(file);
    if (!e) throw new Error(`eval (${side}) wrote no JSON ${file}`);
    evals[side] = e;
  }
  const pickMetrics = (m: Metrics) => ({ n: m.n, correct: m.correct, accuracy: m.accuracy, macroF1: m.macroF1, weightedF1: m.weightedF1, top3Accuracy: m.top3Accuracy });
  const categoryIdentical = JSON.stringify(pickMetrics(evals.a.metrics)) === JSON.stringify(pickMetrics(evals.b.metrics));
  log(`  category on dev: a accuracy ${evals.a.metrics.accuracy.toFixed(4)} macro-F1 ${evals.a.metrics.macroF1.toFixed(4)}; b accuracy ${evals.b.metrics.accuracy.toFixed(4)} macro-F1 ${evals.b.metrics.macroF1.toFixed(4)}: ${categoryIdentical ? 'identical' : 'NOT identical'}`);
  if (!categoryIdentical) log('  WARNING: the category\'s dev figures differ between the bundles');
  log(`  category per dev row (run outputs): ${sameRows} of ${runCategoryAlike.rows} alike in category and score`);

  // ---- 4: ratios, table, JSON ----------------------------------------------------------------------------------------------
  const med = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
  const ratio = (b: number, a: number) => b / a;
  const trainWall = { a: med(trains.a, (x) => x.run.wallSeconds), b: med(trains.b, (x) => x.run.wallSeconds) };
  const trainOwn = { a: med(trains.a, (x) => x.summary.elapsedSeconds), b: med(trains.b, (x) => x.summary.elapsedSeconds) };
  const trainRss = { a: Math.max(...trains.a.map((x) => x.run.peakRssMB)), b: Math.max(...trains.b.map((x) => x.run.peakRssMB)) };
  const runWall = { a: med(runs.a, (x) => x.run.wallSeconds), b: med(runs.b, (x) => x.run.wallSeconds) };
  const runOwn = { a: med(runs.a, (x) => x.summary.elapsedSeconds), b: med(runs.b, (x) => x.summary.elapsedSeconds) };
  const runCpu = { a: med(runs.a, (x) => x.summary.rowsCpuSeconds), b: med(runs.b, (x) => x.summary.rowsCpuSeconds) };
  const runRate = { a: med(runs.a, (x) => x.summary.rowsPerSecond), b: med(runs.b, (x) => x.summary.rowsPerSecond) };
  const runRss = { a: Math.max(...runs.a.map((x) => x.run.peakRssMB)), b: Math.max(...runs.b.map((x) => x.run.peakRssMB)) };
  const TRAIN_TARGET = 1.5;
  const RUN_TARGET = 1.1;

  const bSummary = trains.b[0]!.summary;
  const bEval = new Map(evals.b.attributes.map((a) => [a.name, a]));
  const attributes = bSummary.attributes.map((a) => ({
    name: a.name,
    classes: a.classes,
    rows: a.rows,
    withoutValue: a.withoutValue,
    dropped: a.dropped,
    heads: heads(a.heads),
    earlyFusion: early(a.fusion),
    textAlone: textAlone(a.fusion),
    fusion: fusionKind(a.fusion),
    dev: bEval.has(a.name) ? { rows: bEval.get(a.name)!.metrics.n, emptyLabel: bEval.get(a.name)!.emptyLabel, accuracy: bEval.get(a.name)!.metrics.accuracy, macroF1: bEval.get(a.name)!.metrics.macroF1 } : null,
  }));

  const table: string[][] = [];
  const row = (measure: string, a: string, b: string, r: string, target: string, met: boolean | null) => table.push([measure, a, b, r, target, met === null ? '' : met ? 'met' : 'NOT met']);
  const x = (v: number) => `${v.toFixed(3)}×`;
  const trainKind = args.cold ? 'cold' : 'warm cache';
  row(`train wall s (${trainKind})`, fmt(trainWall.a), fmt(trainWall.b), x(ratio(trainWall.b, trainWall.a)), `≤ ${TRAIN_TARGET}`, ratio(trainWall.b, trainWall.a) <= TRAIN_TARGET);
  row('train elapsedSeconds', fmt(trainOwn.a), fmt(trainOwn.b), x(ratio(trainOwn.b, trainOwn.a)), `≤ ${TRAIN_TARGET}`, ratio(trainOwn.b, trainOwn.a) <= TRAIN_TARGET);
  row('train peak RSS MB', String(trainRss.a), String(trainRss.b), x(ratio(trainRss.b, trainRss.a)), '', null);
  row('run wall s (dev, no cache)', fmt(runWall.a), fmt(runWall.b), x(ratio(runWall.b, runWall.a)), `≤ ${RUN_TARGET}`, ratio(runWall.b, runWall.a) <= RUN_TARGET);
  row('run elapsedSeconds', fmt(runOwn.a), fmt(runOwn.b), x(ratio(runOwn.b, runOwn.a)), `≤ ${RUN_TARGET}`, ratio(runOwn.b, runOwn.a) <= RUN_TARGET);
  row('run rows CPU s', fmt(runCpu.a), fmt(runCpu.b), x(ratio(runCpu.b, runCpu.a)), '', null);
  row('run rows/s', runRate.a.toFixed(1), runRate.b.toFixed(1), x(ratio(runRate.b, runRate.a)), '', null);
  row('run peak RSS MB', String(runRss.a), String(runRss.b), x(ratio(runRss.b, runRss.a)), '', null);
  row('run images embedded', runs.a.map((r) => r.summary.embedded.image).join('/'), runs.b.map((r) => r.summary.embedded.image).join('/'), '', 'equal', embeddedEqual);
  row('category dev acc / macro-F1', `${evals.a.metrics.accuracy.toFixed(4)} / ${evals.a.metrics.macroF1.toFixed(4)}`, `${evals.b.metrics.accuracy.toFixed(4)} / ${evals.b.metrics.macroF1.toFixed(4)}`, '', 'identical', categoryIdentical);
  const head = ['measure', '(a) category', '(b) + attributes', 'b ÷ a', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  log('');
  for (const r of [head, ...table]) log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  log('');
  const attrRows = attributes.map((a) => [
    a.name, String(a.classes), String(a.rows), a.heads.map((h) => `${h.name} C ${h.C} w ${h.weight.toFixed(2)}`).join(', '),
    a.fusion,
    a.dev ? `${a.dev.accuracy.toFixed(4)} / ${a.dev.macroF1.toFixed(4)}` : '-',
  ]);
  attrRows.unshift(['category', String(bSummary.classes), String(bSummary.rows.used), heads(bSummary.fit.heads).map((h) => `${h.name} C ${h.C} w ${h.weight.toFixed(2)}`).join(', '),
    fusionKind(bSummary.fusion), `${evals.b.metrics.accuracy.toFixed(4)} / ${evals.b.metrics.macroF1.toFixed(4)}`]);
  const attrHead = ['(b) predicts', 'classes', 'rows', 'heads', 'fusion', 'dev acc / macro-F1'];
  const attrWidths = attrHead.map((h, i) => Math.max(h.length, ...attrRows.map((r) => r[i]!.length)));
  for (const r of [attrHead, ...attrRows]) log(r.map((c, i) => c.padEnd(attrWidths[i]!)).join('  ').trimEnd());

  const result = {
    ...startedAt,
    finishedAt: new Date().toISOString(),
    command: process.argv.slice(2),
    catalog: 'myntra-fashion (../shared)',
    rows: { limit: rowLimit ?? null, train: trainRows, dev: devRows },
    preset: 'embedded',
    attributes: attributeNames,
    repeats,
    trainCache: args.cold ? 'none (--cold)' : 'warm embedding cache',
  trainArgs: extraTrainArgs,
    fill: proc(fill),
    targets: { trainWallRatio: TRAIN_TARGET, runWallRatio: RUN_TARGET },
    ratios: {
      trainWall: ratio(trainWall.b, trainWall.a),
      trainElapsed: ratio(trainOwn.b, trainOwn.a),
      trainPeakRss: ratio(trainRss.b, trainRss.a),
      runWall: ratio(runWall.b, runWall.a),
      runElapsed: ratio(runOwn.b, runOwn.a),
      runCpu: ratio(runCpu.b, runCpu.a),
      runRowsPerSecond: ratio(runRate.b, runRate.a),
      perPair: {
        trainWall: trains.a.map((t, k) => ratio(trains.b[k]!.run.wallSeconds, t.run.wallSeconds)),
        runWall: runs.a.map((t, k) => ratio(runs.b[k]!.run.wallSeconds, t.run.wallSeconds)),
      },
    },
    met: { train: ratio(trainWall.b, trainWall.a) <= TRAIN_TARGET, run: ratio(runWall.b, runWall.a) <= RUN_TARGET, embeddedEqual, categoryIdentical },
    train: Object.fromEntries(sides.map((s) => [s, {
      what: what[s],
      medianWallSeconds: trainWall[s],
      medianElapsedSeconds: trainOwn[s],
      peakRssMB: trainRss[s],
      runs: trains[s].map((t) => ({ ...proc(t.run), elapsedSeconds: t.summary.elapsedSeconds, embedded: t.summary.embedded, cache: t.summary.cache })),
      classes: trains[s][0]!.summary.classes,
      heads: heads(trains[s][0]!.summary.fit.heads),
      earlyFusion: early(trains[s][0]!.summary.fusion),
      textAlone: textAlone(trains[s][0]!.summary.fusion),
      validation: trains[s][0]!.summary.validation,
    }])),
    run: Object.fromEntries(sides.map((s) => [s, {
      medianWallSeconds: runWall[s],
      medianElapsedSeconds: runOwn[s],
      medianRowsCpuSeconds: runCpu[s],
      medianRowsPerSecond: runRate[s],
      peakRssMB: runRss[s],
      runs: runs[s].map((r) => ({ ...proc(r.run), rows: r.summary.rows, rowsPerSecond: r.summary.rowsPerSecond, elapsedSeconds: r.summary.elapsedSeconds, startupSeconds: r.summary.startupSeconds, rowsCpuSeconds: r.summary.rowsCpuSeconds, ownPeakRssMB: r.summary.peakRssMB, embedded: r.summary.embedded })),
    }])),
    runCategoryAlike,
    eval: {
      category: { a: pickMetrics(evals.a.metrics), b: pickMetrics(evals.b.metrics), identical: categoryIdentical },
      attributes: attributes.map((a) => ({ name: a.name, ...a.dev })),
    },
    attributesTrained: attributes,
    note: 'wall seconds and peak RSS from GNU time (the whole CLI process, model loading included); a and b alternate per pair; ratios are of the medians over pairs',
  };
  fs.mkdirSync(args['results-dir']!, { recursive: true });
  const outFile = path.join(args['results-dir']!, `${startedAt.date.slice(0, 10)}-${os.hostname()}-attributes.json`);
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  cleanUp();
  log(`\nwritten ${outFile.startsWith(repoRoot + path.sep) ? path.relative(repoRoot, outFile) : outFile}`);
}

try {
  await main();
} catch (err) {
  // A failed process (or a missing summary) ends the bench; its logs stay in the temporary folder.
  console.error(`bench:attributes: failed: ${err instanceof Error ? err.message : String(err)}\n  logs kept in ${tmpRoot}`);
  process.exit(1);
}
