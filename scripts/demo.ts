// `npm run demo`: the real CLI, end to end, on the small real catalog in fixtures/real-demo. It drives
// bin/categorize.js as a user would (train, eval --report, run) and prints what a newcomer needs to see.
//   node dist/scripts/demo.js [--train-rows 200] [--eval-rows 100] [--seed 7] [--out demo-output] [--report demo-report.html]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { mulberry32, shuffleInPlace } from '../src/head/random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'categorize.js');

/** The bundle's models and features: the shipped int8 MobileNetV2 image encoder + TF-IDF of title and description. */
const MODEL_FLAGS = ['--preset', 'embedded'];

/**
 * The demo's own eval step judges the bundle on held-out rows, so train's validation share would only cost time
 * (it repeats the whole fitting procedure); C and the fusion weights are still chosen on 5-fold held-out rows.
 */
const TRAIN_FLAGS = ['--validation', '0'];

export interface DemoOptions {
  catalog: string;
  trainRows: number;
  evalRows: number;
  seed: number;
  /** Folder for the split, the bundle and the predictions (emptied of the demo's own files first). */
  out: string;
  report: string;
  /** Example predictions to print. */
  examples: number;
}

export const DEMO_DEFAULTS: DemoOptions = {
  catalog: path.join(root, 'fixtures', 'real-demo', 'catalog.csv'),
  trainRows: 200,
  evalRows: 100,
  seed: 7,
  out: path.join(root, 'demo-output'),
  report: path.join(root, 'demo-report.html'),
  examples: 5,
};

type Row = Record<string, string>;

/**
 * A stratified order: each category's rows shuffled (seeded), then dealt out one category at a time, so any
 * prefix holds the categories in their proportions, and a split at any size is stratified.
 */
export function stratifiedOrder(rows: Row[], labelColumn: string, seed: number): Row[] {
  const rand = mulberry32(seed);
  const groups = new Map<string, Row[]>();
  for (const r of rows) groups.set(r[labelColumn], [...(groups.get(r[labelColumn]) ?? []), r]);
  const queues = [...groups.keys()].sort().map((k) => shuffleInPlace([...groups.get(k)!], rand));
  // Deal by position along each queue: the i-th row of a category of n comes at (i + 0.5) / n, so categories of
  // different sizes stay in proportion along the whole order; ties go to the category that sorts first.
  const dealt = queues.flatMap((q, g) => q.map((row, i) => ({ row, at: (i + 0.5) / q.length, g })));
  return dealt.sort((a, b) => a.at - b.at || a.g - b.g).map((d) => d.row);
}

interface Step {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function categorize(args: string[], env: NodeJS.ProcessEnv): Promise<Step> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

class DemoError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export async function runDemo(opts: DemoOptions, print: (line: string) => void): Promise<void> {
  const t0 = performance.now();
  // Paths under the working directory are shown relative to it, others in full.
  const rel = (p: string) => {
    const r = path.relative(process.cwd(), p);
    return r === '' ? '.' : r.startsWith('..') || path.isAbsolute(r) ? p : r;
  };
  const shown = (args: string[]) => args.map((a) => (path.isAbsolute(a) ? rel(a) : a)).map((a) => (/[\s"'&|<>]/.test(a) ? `'${a}'` : a)).join(' ');
  const env: NodeJS.ProcessEnv = { ...process.env };
  const step = async (what: string, args: string[]): Promise<Step> => {
    print(`   $ categorize ${shown(args)}`);
    const r = await categorize(args, env);
    if (r.code !== 0) throw new DemoError(`${what} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trimEnd()}`, r.code ?? 1);
    return r;
  };

  const catalogRows = parse(fs.readFileSync(opts.catalog), { columns: true, bom: true }) as Row[];
  if (opts.trainRows + opts.evalRows > catalogRows.length) {
    throw new DemoError(`--train-rows ${opts.trainRows} + --eval-rows ${opts.evalRows} exceed the catalog's ${catalogRows.length} rows`, 2);
  }
  const categories = new Set(catalogRows.map((r) => r.category));
  const ordered = stratifiedOrder(catalogRows, 'category', opts.seed);
  const trainRows = ordered.slice(0, opts.trainRows);
  const evalRows = ordered.slice(opts.trainRows, opts.trainRows + opts.evalRows);

  // The demo's own files only: a model cache kept between runs (the temporary model import) stays.
  const files = {
    train: path.join(opts.out, 'train.csv'),
    eval: path.join(opts.out, 'eval.csv'),
    bundle: path.join(opts.out, 'bundle'),
    evalJson: path.join(opts.out, 'eval.json'),
    predictions: path.join(opts.out, 'predictions.jsonl'),
    runSummary: path.join(opts.out, 'run-summary.json'),
  };
  fs.mkdirSync(opts.out, { recursive: true });
  for (const f of Object.values(files)) fs.rmSync(f, { recursive: true, force: true });
  fs.rmSync(opts.report, { force: true });
  // Image paths stay relative, now to the split files' folder, so the files work from anywhere as the catalog does.
  const catalogDir = path.dirname(opts.catalog);
  const relink = (r: Row): Row => ({ ...r, image: r.image ? path.relative(opts.out, path.resolve(catalogDir, r.image)) : r.image });
  const columns = Object.keys(catalogRows[0]);
  fs.writeFileSync(files.train, stringify(trainRows.map(relink), { header: true, columns }));
  fs.writeFileSync(files.eval, stringify(evalRows.map(relink), { header: true, columns }));

  print('categorize demo: a real catalog, end to end');
  print(`  data   ${rel(opts.catalog)}: ${catalogRows.length} Flipkart products with a photo each, ${categories.size} categories`);
  print(`         (CC BY-SA 4.0; see ${rel(path.join(catalogDir, 'SOURCE.md'))})`);
  print(`  split  ${trainRows.length} rows to train on, ${evalRows.length} held out to judge the model (stratified by category, seed ${opts.seed})`);
  print('');

  // A model cache of the demo's own (the shipped model's pooled-feature tap is made there at first use): the
  // user's cache is left alone.
  env.CATEGORIZE_CACHE = path.join(opts.out, 'model-cache');

  print('1. train (--preset embedded): photos through the shipped int8 MobileNetV2, titles and descriptions through TF-IDF; one classifier per');
  print('   modality, and one over both where that predicts held-out rows better (early fusion); weights and regularisation chosen on');
  print('   held-out folds of the training rows');
  const train = await step('train', ['train', files.train, '--label-column', 'category', ...MODEL_FLAGS, ...TRAIN_FLAGS, '--seed', String(opts.seed), '-o', files.bundle, '--quiet']);
  const manifest = JSON.parse(fs.readFileSync(path.join(files.bundle, 'manifest.json'), 'utf8')) as { fusion?: { heads?: { name: string; weight: number; route?: string; blockWeight?: number }[] } };
  const heads = manifest.fusion?.heads ?? [];
  const late = heads.filter((h) => h.name !== 'joint').map((h) => `${h.name === 'text' ? 'text (TF-IDF)' : h.name} ${h.weight.toFixed(2)}`).join(', ');
  const joint = heads.find((h) => h.name === 'joint');
  const fusion = joint
    ? ` · early fusion (image block weight ${joint.blockWeight?.toFixed(3)}) for rows with text and a photo; late fusion ${late} for the rest`
    : late ? ` · late fusion, learned weights: ${late}` : '';
  print(`   ${train.seconds.toFixed(1)} s · bundle in ${rel(files.bundle)}${fusion}`);

  print(`2. eval: the bundle on the ${evalRows.length} held-out rows, with an HTML report`);
  const ev = await step('eval', ['eval', files.eval, '--label-column', 'category', '--model', files.bundle, '--json', files.evalJson, '--report', opts.report, '--quiet']);
  const metrics = (JSON.parse(fs.readFileSync(files.evalJson, 'utf8')) as { metrics: { accuracy: number; macroF1: number; correct: number; n: number } }).metrics;
  print(`   ${ev.seconds.toFixed(1)} s · accuracy ${(100 * metrics.accuracy).toFixed(1)}% (${metrics.correct} of ${metrics.n} right) · macro-F1 ${metrics.macroF1.toFixed(3)}`);

  print(`3. run: the whole catalog (${catalogRows.length} rows) → ${rel(files.predictions)}, one JSON record per row`);
  const run = await step('run', ['run', opts.catalog, '--model', files.bundle, '-o', files.predictions, '--json-summary', files.runSummary]);
  print('');
  print('Run summary');
  // run's own summary, as a nightly job would log it (progress lines, if any, left out).
  for (const line of run.stderr.trimEnd().split('\n').filter((l) => !/^categorize: \d+ rows( \(|,)/.test(l))) print(`  ${line}`);

  const records = new Map(
    fs.readFileSync(files.predictions, 'utf8').split('\n').filter(Boolean).map((l) => {
      const r = JSON.parse(l) as { id: string; category: string | null; score: number | null };
      return [r.id, r] as const;
    }),
  );
  print('');
  print(`Predictions for a few held-out rows (title → predicted category, score; ✓ when it matches the catalog's own label)`);
  for (const row of evalRows.slice(0, opts.examples)) {
    const p = records.get(row.id);
    const title = row.title.length > 64 ? `${row.title.slice(0, 63)}…` : row.title;
    if (!p || p.category === null) {
      print(`  ? ${title} → no prediction`);
      continue;
    }
    const right = p.category === row.category;
    print(`  ${right ? '✓' : '✗'} ${title} → ${p.category}, ${p.score?.toFixed(3)}${right ? '' : ` (labelled ${row.category})`}`);
  }
  print('');
  print(`Report: ${opts.report}`);
  print('  (open it in a browser: figures per class, the confusion matrix, the most confused and least sure rows with their photos)');
  print(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s. Your own catalog: categorize train my.csv --label-column category ${MODEL_FLAGS.join(' ')} -o models/mine`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const int = (s: string | undefined, name: string, fallback: number): number => {
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new DemoError(`--${name} must be a whole number, got '${s}'`, 2);
    return n;
  };
  try {
    const { values } = parseArgs({
      options: {
        catalog: { type: 'string' },
        'train-rows': { type: 'string' },
        'eval-rows': { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        report: { type: 'string' },
      },
    });
    const opts: DemoOptions = {
      ...DEMO_DEFAULTS,
      catalog: values.catalog ? path.resolve(values.catalog) : DEMO_DEFAULTS.catalog,
      trainRows: int(values['train-rows'], 'train-rows', DEMO_DEFAULTS.trainRows),
      evalRows: int(values['eval-rows'], 'eval-rows', DEMO_DEFAULTS.evalRows),
      seed: int(values.seed, 'seed', DEMO_DEFAULTS.seed),
      out: values.out ? path.resolve(values.out) : DEMO_DEFAULTS.out,
      report: values.report ? path.resolve(values.report) : DEMO_DEFAULTS.report,
    };
    await runDemo(opts, (line) => process.stdout.write(`${line}\n`));
  } catch (err) {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    const usage = (err as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS');
    process.exitCode = err instanceof DemoError ? err.exitCode : usage ? 2 : 1;
  }
}
