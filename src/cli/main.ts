// The CLI edge: parse argv into typed options, call a command, print its summary, map errors to exit codes.
import fs from 'node:fs';
import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { runCommand, type RunSummary } from '../commands/run.js';
import { AUTO_FOLDS_MAX_ROWS, DEFAULT_IMAGE_PREPROCESSING, trainCommand, type TrainSummary } from '../commands/train.js';
import { IMAGE_PREPROCESSING, type ImagePreprocessing } from '../embed/image-preprocess.js';
import { evalCommand } from '../commands/eval.js';
import { mergeCommand } from '../commands/merge.js';
import { formatFor } from '../io/prediction-writer.js';
import { CategorizeError, ExitCode, UsageError, oneLine } from '../errors.js';
import { makeFitProgress, makeProgress } from './progress.js';
import { MIN_PATH_SCORE_HELP, TARGET_PRECISION_HELP, floatOption, intOption, levelShares, listOption, oneTargetPrecision, targetPrecisionMinimums, targetPrecisions, targetShares, type TargetShares } from './options.js';
import { addPipelineOptions, cliLog, pipelineOptions, type Io, type PipelineFlags } from './pipeline-options.js';
import { CliLog } from './log.js';
import { parseShard, type Shard } from '../pipeline/shard.js';
import { addModelsCommand } from './models-cli.js';
import { addCheckCommand } from './check-cli.js';
import { addServeCommand } from './serve-cli.js';
import { onStopSignals } from './stop-signals.js';
import { PRIOR_SHIFT_ALPHAS } from '../head/selection.js';
import { calibrationSteps } from '../head/calibration.js';
import { EARLY_BLOCK_SCALES, type FeatureKind, type FusionMode } from '../head/target.js';
import { PRESET_NAMES, type PresetName } from '../models/preset.js';
import type { DfBound } from '../head/tfidf.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

interface TrainFlags extends PipelineFlags {
  labelColumn: string;
  attribute: string[];
  minAttributeCount: number;
  targetPrecision: number[];
  pathSeparator: string;
  minPathScore: number;
  output: string;
  features?: FeatureKind[];
  preset?: PresetName;
  imagePreprocessing: ImagePreprocessing;
  C: number | 'auto';
  classWeight?: 'balanced';
  priorShift: boolean;
  nameMatch: boolean;
  maxIter: number;
  tol: number;
  minDf: string;
  maxDf: string;
  maxFeatures?: number;
  ngramRange: string;
  charNgramRange: string;
  sublinearTf: boolean;
  charMaxFeatures: number;
  fusion: FusionMode;
  attributeFusion?: FusionMode;
  fusionShare: number;
  fusionFolds: number | 'auto';
  stopWords: string;
  validation: number;
  cv: number;
  refit: boolean;
  seed: number;
  jobs: number;
  head: 'auto' | 'full' | 'support';
  jsonSummary?: string;
}

function formatRunSummary(s: RunSummary): string {
  const reasons = Object.entries(s.reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `categorize: ${s.rows} rows${s.resumed ? ` (${s.resumed} kept from the interrupted run)` : ''}${s.shard ? ` in shard ${s.shard}` : ''} · ${s.ok} ok · ${s.errors} errors · ${s.warned} with warnings · ` +
    `${s.elapsedSeconds.toFixed(2)} s · ${s.rowsPerSecond.toFixed(1)} rows/s` +
    (reasons ? `\n  reasons: ${reasons}` : '') +
    (s.decision
      ? `\n  decision at target precision ${s.decision.target} (score ≥ ${s.decision.threshold.toFixed(4)}): ${s.decision.accepted} accept · ${s.decision.review} review` +
        (s.decision.reviewOutput ? ` (written to ${s.decision.reviewOutput})` : '')
      : '') +
    (s.cache ? `\n  embedding cache: ${s.cache.hits} hits, ${s.cache.misses} misses (${s.cache.hits + s.cache.misses ? ((100 * s.cache.hits) / (s.cache.hits + s.cache.misses)).toFixed(1) : '0.0'}% hits), ${(s.cache.usedBytes / 1e6).toFixed(1)} MB in ${s.cache.dir}` : '') +
    `\n  output: ${s.output === '-' ? 'stdout' : s.output}`
  );
}

function formatTrainSummary(s: TrainSummary): string {
  const f = (x: number) => x.toFixed(4);
  const lines = [
    `categorize: bundle written to ${s.output}`,
    `  rows: ${s.rows.read} read, ${s.rows.used} used for the final fit, ${s.rows.emptyLabel} without a label, ${s.rows.failed} failed to embed` +
      (s.rows.failed ? ` (${Object.entries(s.rows.failedReasons).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''),
    `  features: ${s.features.map((b) => `${b.kind} ${b.dim}`).join(' + ')}; ${s.classes} classes${s.preset ? ` (preset ${s.preset})` : ''}`,
    s.fit.heads.every((h) => h.kind === 'support')
      ? `  fit: support head, ${s.fit.iterations} epochs, training log-loss ${s.fit.loss.toFixed(4)}${s.fit.refit ? ' (refit on all rows)' : ''}`
      : `  fit: L-BFGS ${s.fit.converged ? 'converged' : 'did NOT converge'} in ${s.fit.iterations} iterations, loss ${s.fit.loss.toFixed(4)}${s.fit.refit ? ' (refit on all rows)' : ''}`,
  ];
  if (s.validation) lines.push(`  validation: accuracy ${f(s.validation.accuracy)} · macro-F1 ${f(s.validation.macroF1)} · weighted-F1 ${f(s.validation.weightedF1)} · top-3 ${f(s.validation.top3Accuracy)} (${s.validation.n} rows)`);
  if (s.cv) lines.push(`  ${s.cv.folds.length}-fold cv: accuracy ${f(s.cv.mean.accuracy)} · macro-F1 ${f(s.cv.mean.macroF1)} · weighted-F1 ${f(s.cv.mean.weightedF1)} · top-3 ${f(s.cv.mean.top3Accuracy)}`);
  if ('none' in s.calibration) lines.push(`  calibration: ${s.calibration.none}`);
  else {
    const c = s.calibration;
    const steps = calibrationSteps(c);
    lines.push(`  calibration: ${steps.text} on ${c.rows} held-out rows${steps.note ? ` (${steps.note})` : ''} · ECE ${c.before.ece.toFixed(4)} → ${c.after.ece.toFixed(4)} · log-loss ${c.before.logLoss.toFixed(4)} → ${c.after.logLoss.toFixed(4)}`);
    for (const t of c.targets) {
      lines.push(t.threshold === null ? `  target precision ${t.target}: none stored (${t.reason})` : `  target precision ${t.target}: score ≥ ${t.threshold.toFixed(4)}, held-out coverage ${(100 * t.coverage).toFixed(1)}%, precision ${t.precision.toFixed(4)} (lower bound ${t.lower.toFixed(4)})`);
    }
  }
  for (const a of s.attributes) {
    const cal = 'none' in a.calibration ? '' : ` · ECE ${a.calibration.after.ece.toFixed(4)} after calibration: ${calibrationSteps(a.calibration).text}`;
    const fused = a.fusion?.fused ? ` · held-out fused macro-F1 ${f(a.fusion.fused.macroF1)}` : '';
    const kind = a.fusion?.textAlone?.chosen ? ' (text head alone)' : a.fusion?.early?.chosen ? ' (early fusion)' : '';
    lines.push(`  attribute ${a.name}: ${a.classes} values, ${a.rows} rows · heads ${a.heads.map((h) => `${h.name} C ${h.C}${a.heads.length > 1 ? ` weight ${h.weight.toFixed(2)}` : ''}`).join(', ')}${kind}${fused}${cal}`);
  }
  if (s.cache) lines.push(`  embedding cache: ${s.cache.hits} hits, ${s.cache.misses} misses, ${(s.cache.usedBytes / 1e6).toFixed(1)} MB in ${s.cache.dir}`);
  lines.push(`  elapsed: ${s.elapsedSeconds.toFixed(1)} s`);
  return lines.join('\n');
}

function dfBound(value: string): DfBound {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`expected a count (e.g. 2) or a share (e.g. 0.5), got '${value}'`);
  // As in scikit-learn: an integer is a document count, a number with a decimal point a share.
  return /^\d+$/.test(value.trim()) ? { count: n } : { proportion: n };
}

function ngramRange(value: string, flag = '--ngram-range'): [number, number] {
  const m = /^(\d+),(\d+)$/.exec(value.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < Number(m[1])) throw new UsageError(`${flag} expects MIN,MAX such as 1,2, got '${value}'`);
  return [Number(m[1]), Number(m[2])];
}

const C_GRID = [0.01, 0.1, 1, 10, 100, 1000];

function cOption(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  return floatOption(1e-12, 1e12)(value);
}

function foldsOption(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const k = intOption(0, 20)(value);
  if (k === 1) throw new UsageError('--fusion-folds takes 0 (none), 2 to 20, or auto');
  return k;
}

function featureList(value: string): FeatureKind[] {
  const kinds = listOption(value);
  for (const k of kinds) if (!['text', 'image', 'tfidf'].includes(k)) throw new UsageError(`--features takes text, image and tfidf, got '${k}'`);
  if (kinds.length === 0) throw new UsageError('--features needs at least one of text, image, tfidf');
  return [...new Set(kinds)] as FeatureKind[];
}

export function buildProgram(io: Io, env: NodeJS.ProcessEnv, setCode: (c: number) => void): Command {
  const program = new Command('categorize')
    .description('Batch categorizer for e-commerce catalogs: text + image embeddings, a trained classifier head, TF-IDF tags.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => io.stderr.write(s), writeOut: (s) => io.stdout.write(s) });

  addPipelineOptions(
    program
      .command('run')
      .description('Categorize every row of a catalog (CSV/TSV) with a model bundle; writes one JSONL or CSV record per input row.')
      .argument('<input>', "catalog CSV or TSV file, or '-' for stdin")
      .requiredOption('-m, --model <dir>', 'model bundle folder (manifest.json, classifier.onnx, tfidf.json)')
      .option('-o, --output <file>', "predictions file (.jsonl, .ndjson or .csv), or '-' for stdout", '-')
      .addOption(new Option('--format <format>', 'output format (default: from the file extension; JSONL on stdout)').choices(['jsonl', 'csv']))
      .option('--keep-columns <a,b>', 'input columns to copy into each output record (one named like an output field, e.g. category, is written as input_<name>)', listOption, [])
      .option('--top-n <n>', 'categories listed per row in top_categories', intOption(1, 1000), 3)
      .option('--top-k-tags <k>', 'tags per row', intOption(0, 1000), 5)
      .option('--min-path-score <p>', MIN_PATH_SCORE_HELP, floatOption(0, 1))
      .option('--target-precision <p>', TARGET_PRECISION_HELP, oneTargetPrecision)
      .option('--attributes <a,b>', 'predict only these of the bundle\'s attributes (train --attribute); default all', listOption)
      .option('--review-output <file>', 'also write the rows decided review to this file (same format), for a labelling queue')
      .option('--max-error-rate <r>', 'exit 3 when the share of error rows exceeds r (after writing everything)', floatOption(0, 1), 1)
      .option('--resume', 'continue an output a killed or interrupted run left: keep its complete records, do the rest')
      .option('--force', 'overwrite an existing output (otherwise an existing output is an error)')
      .option('--shard <i/n>', 'process only the rows whose id hashes into shard i of n (0-based), e.g. 2/8', parseShard)
      .option('--json-summary <file>', 'write the run summary as JSON'),
    'override',
  ).action(async (input: string, flags: PipelineFlags & { output: string; format?: string; model: string; keepColumns: string[]; topN: number; topKTags: number; minPathScore?: number; targetPrecision?: number; attributes?: string[]; reviewOutput?: string; maxErrorRate: number; resume?: boolean; force?: boolean; shard?: Shard; jsonSummary?: string }) => {
    const log = cliLog(flags, io);
    log.event('start', { command: 'run', version: pkg.version, input, output: flags.output, model: flags.model, shard: flags.shard ? `${flags.shard.index}/${flags.shard.count}` : null, resume: Boolean(flags.resume) });
    // The output stays resumable either way: records are written whole, in order.
    const stop = onStopSignals(log, 'finishing the rows in flight, then stopping');
    let summary: RunSummary;
    try {
      summary = await runCommand({
        ...pipelineOptions(flags, io, env),
        input,
        output: flags.output,
        format: formatFor(flags.output, flags.format),
        model: flags.model,
        keepColumns: flags.keepColumns,
        topN: flags.topN,
        topKTags: flags.topKTags,
        minPathScore: flags.minPathScore,
        targetPrecision: flags.targetPrecision,
        attributes: flags.attributes,
        reviewOutput: flags.reviewOutput,
        maxErrorRate: flags.maxErrorRate,
        resume: Boolean(flags.resume),
        force: Boolean(flags.force),
        shard: flags.shard,
        signal: stop.signal,
        progress: makeProgress(io.stderr, { quiet: flags.quiet, label: 'categorize', json: flags.logFormat === 'json' }),
        stdout: io.stdout,
      });
    } finally {
      stop.dispose();
    }
    if (flags.logFormat === 'json') log.event('summary', { ...summary });
    else if (!flags.quiet) io.stderr.write(formatRunSummary(summary) + '\n');
    if (flags.jsonSummary) fs.writeFileSync(flags.jsonSummary, JSON.stringify(summary, null, 2) + '\n');
    if (summary.interrupted) {
      log.line(`stopped by ${summary.interrupted}: ${summary.rows} records written; run again with --resume to finish`, true);
      setCode(summary.interrupted === 'SIGINT' ? ExitCode.interrupted : ExitCode.terminated);
    } else if (summary.thresholdExceeded) {
      log.line(`error rate ${(summary.errorRate * 100).toFixed(2)}% exceeds --max-error-rate ${(summary.maxErrorRate * 100).toFixed(2)}%`, true);
      setCode(ExitCode.threshold);
    }
  });

  addPipelineOptions(
    program
      .command('train')
      .description('Fit a classifier head on a labelled catalog (same embedding pipeline as run), validate it, write a model bundle.')
      .argument('<input>', "labelled catalog CSV or TSV, or '-' for stdin")
      .requiredOption('--label-column <name>', 'column holding each row’s category, or its category path (levels split on --path-separator)')
      .option('--attribute <a,b>', 'also predict these columns (e.g. gender,colour,usage,season; repeatable) from the same embeddings: each gets its own heads, fusion, C and calibration, chosen as the category\'s; a row without a value is left out of that attribute only', (v: string, prev: string[]) => [...prev, ...listOption(v)], [] as string[])
      .option('--min-attribute-count <n>', 'attribute values seen fewer times are reported and left out of that attribute', intOption(1, 1_000_000), 2)
      .option('--path-separator <sep>', 'a label column whose labels hold this is a column of category paths (e.g. "Home > Kitchen > Cups"; also /, >>, |); spaces around levels are trimmed', '>')
      .option('--min-path-score <p>', 'path bundles: the default answer threshold of run, eval, check and serve (a node is answered when its probability reaches p)', floatOption(0, 1), 0.5)
      .option('--target-precision <p,...>', 'store the score threshold for each target precision (e.g. 0.95,0.98; repeatable): the lowest whose held-out precision has a 95% lower bound ≥ p; run decides accept/review at the first', targetPrecisions, [] as number[])
      .requiredOption('-o, --output <dir>', 'bundle folder to write')
      .addOption(
        new Option('--preset <name>', 'features and models by name: original = all-MiniLM-L6-v2 + ResNet-50 from the model cache (--features text,image); embedded = the shipped MobileNetV2 int8 + TF-IDF (--features image,tfidf --image-model mobilenetv2-int8), nothing to download. Default, when neither --features nor a model flag is given: original if both its models are cached, else embedded. --features and model flags given with --preset must repeat it (another variant of its model is fine)')
          .choices(PRESET_NAMES),
      )
      .option('--features <list>', "classifier input: any of text, image, tfidf (default: the preset's; with a model flag and no --preset: text,image)", featureList)
      .addOption(
        new Option('--image-preprocessing <mode>', 'how photos are resized for the image model, recorded in the bundle (run, eval, check and serve follow it): exact = torchvision/PIL bilinear, as the original service; fast = libvips with JPEG shrink-on-load (see README: Performance)')
          .choices([...IMAGE_PREPROCESSING])
          .default(DEFAULT_IMAGE_PREPROCESSING),
      )
      .option('--C <c|auto>', `inverse L2 regularisation strength (scikit-learn’s C); auto: chosen per head from ${C_GRID.join(', ')} by held-out log-loss (macro-F1 among the values within noise of the least) on the --fusion-folds or --fusion-share`, cOption, 'auto')
      .addOption(new Option('--class-weight <mode>', 'weight classes inversely to their frequency').choices(['balanced']))
      .option('--no-name-match', `leave class names in the text out of the scores; by default, where held-out predictions are made, each class the row's title or description names (names that mostly mean their class in the training rows) gets its fused log-probability raised by a weight fitted on them, kept where its likelihood-ratio test does (flat classes)`)
      .option('--no-prior-shift', `answer the most probable class; by default, where held-out predictions are made, the answer is the most probable after dividing the probabilities by the class prior to the power (${PRIOR_SHIFT_ALPHAS.join(', ')}) with the best held-out macro-F1 (flat classes; probabilities and scores are not shifted)`)
      .option('--max-iter <n>', 'L-BFGS iterations at most', intOption(1, 1_000_000), 1000)
      .option('--tol <t>', 'stop when the largest gradient entry is below t', floatOption(0, 1), 1e-6)
      .option('--min-df <n|share>', 'ignore terms in fewer documents (integer) or a smaller share (decimal)', '1')
      .option('--max-df <n|share>', 'ignore terms in more documents (integer) or a larger share (decimal)', '1.0')
      .option('--max-features <n>', 'keep the n most frequent terms', intOption(1))
      .option('--ngram-range <min,max>', 'word n-gram sizes for TF-IDF', '1,2')
      .addOption(new Option('--stop-words <list>', 'stop words removed before TF-IDF').choices(['english', 'none']).default('english'))
      .option('--no-sublinear-tf', 'TF-IDF term frequency tf instead of 1 + log(tf) (scikit-learn’s default)')
      .option('--char-ngram-range <min,max|none>', 'character n-grams inside words (char_wb) added to the TF-IDF block; none: words only', '2,5')
      .option('--char-max-features <n>', 'keep the n most frequent character n-grams', intOption(1), 100_000)
      .addOption(new Option('--fusion <mode>', `text + image: late = a head per modality, weights learned on held-out rows (a row missing one is predicted from the other); early = those heads for rows missing one, and for rows with both one head over [TF-IDF | w × standardised image] (w: ${EARLY_BLOCK_SCALES.join(', ')} × the weight that makes the image block as long as the text's, and C, chosen on held-out rows); auto = late or early, whichever predicts the held-out rows with both better (log-loss), then the text head alone (the image head for rows without text) where its held-out macro-F1 is at least that; joint = one head over all features for every row`).choices(['auto', 'late', 'early', 'joint']).default('auto'))
      .addOption(new Option('--attribute-fusion <mode>', "how each --attribute combines text and image, as --fusion does for the category (default: the category's --fusion)").choices(['auto', 'late', 'early', 'joint']))
      .addOption(
        new Option('--head <kind>', 'full: logistic regression over every class × feature (L-BFGS, C chosen); support: weights only where a TF-IDF term is over-represented in a class, epochs chosen on held-out log-loss (--features tfidf; for thousands of classes); auto: full unless its weights would not fit in memory')
          .choices(['auto', 'full', 'support'])
          .default('auto'),
      )
      .option('--fusion-share <share>', 'stratified share of rows held out to learn the fusion weights and C (without --fusion-folds)', floatOption(0.05, 0.5), 0.2)
      .option('--fusion-folds <k|auto>', `learn the fusion weights and C on k-fold held-out predictions instead (auto: 5 folds up to ${AUTO_FOLDS_MAX_ROWS} rows, else --fusion-share; 0: never)`, foldsOption, 'auto')
      .option('--validation <share>', 'stratified share held out to report accuracy, macro-F1, weighted-F1, top-3 (0: none)', floatOption(0, 0.9), 0.1)
      .option('--cv <k>', 'stratified k-fold cross-validation (0: none)', intOption(0, 100), 0)
      .option('--no-refit', 'keep the model fitted without the validation rows instead of refitting on all rows')
      .option('--seed <n>', 'seed for the validation split and folds', intOption(0, 2 ** 31 - 1), 0)
      .option('--jobs <n>', `head fits at once, each on its own core (default: one per core, here ${os.availableParallelism()}; 1: one after another)`, intOption(1, 256), os.availableParallelism())
      .option('--json-summary <file>', 'write the training summary as JSON'),
    'choose',
  ).action(async (input: string, f: TrainFlags) => {
    const epoch = env.SOURCE_DATE_EPOCH;
    if (epoch !== undefined && !/^\d+$/.test(epoch)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds, got '${epoch}'`);
    const summary = await trainCommand({
      ...pipelineOptions(f, io, env),
      input,
      labelColumn: f.labelColumn,
      attributes: f.attribute,
      minAttributeCount: f.minAttributeCount,
      pathSeparator: f.pathSeparator,
      minPathScore: f.minPathScore,
      targetPrecision: f.targetPrecision,
      output: f.output,
      features: f.features,
      preset: f.preset,
      imagePreprocessing: f.imagePreprocessing,
      tfidf: {
        minDf: dfBound(f.minDf),
        maxDf: dfBound(f.maxDf),
        maxFeatures: f.maxFeatures ?? null,
        ngramRange: ngramRange(f.ngramRange),
        stopWords: f.stopWords === 'none' ? null : 'english',
        sublinearTf: f.sublinearTf,
      },
      charNgramRange: f.charNgramRange === 'none' ? null : ngramRange(f.charNgramRange, '--char-ngram-range'),
      charMaxFeatures: f.charMaxFeatures,
      fusion: f.fusion,
      attributeFusion: f.attributeFusion,
      fusionShare: f.fusionShare,
      selectionFolds: f.fusionFolds,
      cGrid: f.C === 'auto' ? C_GRID : null,
      lr: { C: f.C === 'auto' ? 1 : f.C, classWeight: f.classWeight ?? null, maxIter: f.maxIter, tol: f.tol },
      priorShift: f.priorShift,
      nameMatch: f.nameMatch,
      validation: f.validation,
      cv: f.cv,
      refit: f.refit,
      seed: f.seed,
      createdAt: epoch !== undefined ? new Date(Number(epoch) * 1000).toISOString() : new Date().toISOString(),
      toolVersion: pkg.version,
      progress: makeProgress(io.stderr, { quiet: f.quiet, label: 'embedding' }),
      jobs: f.jobs,
      head: f.head,
      fitProgress: makeFitProgress(io.stderr, { quiet: f.quiet, label: 'fitting heads', json: f.logFormat === 'json' }),
    });
    if (!f.quiet) io.stderr.write(formatTrainSummary(summary) + '\n');
    if (f.jsonSummary) fs.writeFileSync(f.jsonSummary, JSON.stringify(summary, null, 2) + '\n');
  });

  addPipelineOptions(
    program
      .command('eval')
      .description("Judge a bundle on a labelled catalog (run's pipeline): accuracy, F1, top-3, per-class figures, confusion matrix, calibration (ECE, Brier, log-loss) and precision at its target thresholds.")
      .argument('<input>', "labelled catalog CSV or TSV, or '-' for stdin")
      .requiredOption('--label-column <name>', 'column holding each row’s true category')
      .requiredOption('-m, --model <dir>', 'model bundle folder')
      .option('--json <file>', 'write every figure (metrics, per-class, confusion matrix) as JSON')
      .option('--report <file>', 'write a self-contained HTML report')
      .option('--min-accuracy <x|attribute:x>', "exit 3 when accuracy is below x; attribute:x judges a bundle attribute's column (repeatable, e.g. 0.9,colour:0.7)", targetShares('a minimum accuracy'))
      .option('--min-macro-f1 <x|attribute:x>', "exit 3 when macro-F1 is below x; attribute:x judges a bundle attribute's column (repeatable, e.g. 0.85,colour:0.6)", targetShares('a minimum macro-F1'))
      .option('--attributes <a,b>', "judge only these of the bundle's attributes (each against its own column, when the catalog has it); default all", listOption)
      .option('--min-path-score <p>', MIN_PATH_SCORE_HELP, floatOption(0, 1))
      .option('--min-hf <x>', 'path bundles: exit 3 when hierarchical F1 (at the answer threshold) is below x', floatOption(0, 1))
      .option('--min-level-accuracy <level:x,...>', 'path bundles: exit 3 when accuracy at a level (1 = top) is below its minimum, e.g. 1:0.97,2:0.9', levelShares)
      .option(
        '--min-precision-at <target:precision,...>',
        "calibrated bundles: exit 3 when the rows accepted at a target precision's threshold (the one run --target-precision uses) are right less often than the precision given, e.g. 0.98:0.975 (repeatable)",
        targetPrecisionMinimums,
      )
      .option('--ablation', 'also score each modality head alone (text only, image only) next to the fused bundle, on the same embeddings')
      .option('--blank-titles <share>', 'blank this share of titles (rows picked from id and --seed) to measure how missing titles are handled', floatOption(0, 1), 0)
      .option('--seed <n>', 'seed for --blank-titles', intOption(0, 2 ** 31 - 1), 0),
    'override',
  ).action(async (input: string, flags: PipelineFlags & { labelColumn: string; model: string; json?: string; report?: string; minAccuracy?: TargetShares; minMacroF1?: TargetShares; attributes?: string[]; minPathScore?: number; minHf?: number; minLevelAccuracy?: { level: number; share: number }[]; minPrecisionAt?: { target: number; precision: number }[]; ablation?: boolean; blankTitles: number; seed: number }) => {
    const result = await evalCommand({
      ...pipelineOptions(flags, io, env),
      input,
      labelColumn: flags.labelColumn,
      model: flags.model,
      json: flags.json,
      report: flags.report,
      minAccuracy: flags.minAccuracy?.category,
      minMacroF1: flags.minMacroF1?.category,
      attributes: flags.attributes,
      attributeGates: [
        ...(flags.minAccuracy?.attributes ?? []).map((g) => ({ attribute: g.attribute, min: g.share, metric: 'accuracy' as const })),
        ...(flags.minMacroF1?.attributes ?? []).map((g) => ({ attribute: g.attribute, min: g.share, metric: 'macroF1' as const })),
      ],
      minPathScore: flags.minPathScore,
      minHf: flags.minHf,
      minLevelAccuracy: flags.minLevelAccuracy,
      minPrecisionAt: flags.minPrecisionAt,
      ablation: Boolean(flags.ablation),
      blankTitles: flags.blankTitles,
      seed: flags.seed,
      toolVersion: pkg.version,
      progress: makeProgress(io.stderr, { quiet: flags.quiet, label: 'evaluating' }),
      color: Boolean(io.stderr.isTTY) && env.NO_COLOR === undefined,
    });
    // The table is the command's result: stdout, so it can be piped; logs stay on stderr.
    io.stdout.write(result.table + '\n');
    for (const failure of result.gateFailures) io.stderr.write(`categorize: ${failure}\n`);
    if (result.gateFailures.length > 0) setCode(ExitCode.threshold);
  });
  program
    .command('merge')
    .description('Join the outputs of run --shard i/n into one file: input order (with --input) or id order; fails, writing nothing, if a row is missing or duplicated.')
    .argument('<parts...>', 'shard outputs (all .jsonl or all .csv)')
    .requiredOption('-o, --output <file>', 'merged file (.jsonl or .csv, like the parts)')
    .option('--input <catalog>', 'the catalog the shards came from: restores its order and checks every row has exactly one record')
    .option('--id-column <name>', 'id column of --input', 'id')
    .option('--delimiter <char>', 'field delimiter of --input (default: detected)')
    .option('--force', 'overwrite an existing output')
    .option('-q, --quiet', 'no summary on stderr')
    .action(async (parts: string[], flags: { output: string; input?: string; idColumn: string; delimiter?: string; force?: boolean; quiet?: boolean }) => {
      const s = await mergeCommand({
        parts,
        output: flags.output,
        input: flags.input,
        columns: { id: flags.idColumn },
        delimiter: flags.delimiter === '\\t' ? '\t' : flags.delimiter,
        force: Boolean(flags.force),
        stdin: io.stdin,
      });
      if (!flags.quiet) io.stderr.write(`categorize: merged ${s.records} records from ${s.parts} parts in ${s.order} order into ${s.output}; none missing, none duplicated\n`);
    });

  addModelsCommand(program, io, env, setCode);
  addCheckCommand(program, io, env, setCode);
  addServeCommand(program, io, env);
  return program;
}

/** Runs the CLI; resolves to the exit code (the caller sets process.exitCode). */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.ok;
  const io: Io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  const program = buildProgram(io, process.env, (c) => (code = c));
  // Errors follow the command's --log-format, once commander has parsed it.
  let log = new CliLog(io.stderr, 'text', false);
  program.hook('preAction', (_program, action) => {
    const o = action.opts() as { logFormat?: 'text' | 'json' };
    if (o.logFormat === 'json') log = new CliLog(io.stderr, 'json', false);
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; everything else commander rejects is a usage error (message already printed).
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CategorizeError) {
      if (log.format === 'json') log.event('error', { code: err.code, message: oneLine(err), exitCode: err.exitCode }, 'error');
      else io.stderr.write(`categorize: error: ${oneLine(err)}\n`);
      return err.exitCode;
    }
    if (log.format === 'json') log.event('error', { code: 'internal', message: oneLine(err), exitCode: ExitCode.runtime }, 'error');
    else io.stderr.write(`categorize: internal error: ${oneLine(err)}\n`);
    if (process.env.CATEGORIZE_DEBUG) io.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
    return ExitCode.runtime;
  }
}
