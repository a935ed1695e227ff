// `categorize train`: embed a labelled catalog (the same pipeline as run), fit and validate the head, write a bundle.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import pLimit from 'p-limit';
import { openCatalog, labelledRows, type ColumnOptions } from '../io/catalog-reader.js';
import { openEncoders, type EncoderOptions } from '../pipeline/encoders.js';
import { localImageNotice, resolveModel, type ModelContext, type ResolvedModel } from '../models/resolve.js';
import { chooseStack, type PresetName } from '../models/preset.js';
import { resolveImageModel } from '../models/model-dir.js';
import { withPreprocessing, type ImagePreprocessing } from '../embed/image-preprocess.js';
import { FeatureExtractor, type FeatureOptions } from '../pipeline/features.js';
import { collectFeatures, type CollectedRow } from '../pipeline/collect.js';
import { cacheSummary, openEmbedCache, type EmbedCacheSetting } from '../pipeline/bundle-session.js';
import type { EmbedCache } from '../pipeline/embed-cache.js';
import { silentFitProgressReporter, silentProgress, type FitProgressReporter, type ProgressReporter } from '../pipeline/progress.js';
import { saveBundle, sha256File, type BundleHeadPart, type FeatureBlock, type ModelRef } from '../models/bundle.js';
import { fitTfidfBlock, trainModel, type FeatureKind, type FittedHead, type FusionMode, type FusionSelection, type HeadSettings, type ModelCalibration, type TrainedModel } from '../head/target.js';
import { FitPool } from '../head/fit-pool.js';
import { SharedBasis } from '../head/shared-basis.js';
import { shiftedArgmax, type FitProgress } from '../head/selection.js';
import { FitEta } from './fit-eta.js';
import { tfidfBlockDim, tfidfToJSON, type TfidfConfig } from '../head/tfidf.js';
import { linearBundleHead, shippedPredictions } from '../head/linear-head.js';
import { fitLabelEncoder, encodeLabels } from '../head/labels.js';
import { duplicateGroups, duplicateSummary, stratifiedHoldout, stratifiedKFold } from '../head/split.js';
import type { LogisticOptions } from '../head/logistic.js';
import { computeMetrics, type EvalMetrics } from '../report/metrics.js';
import { CategorizeError, ConfigError, UsageError, reasonCode } from '../errors.js';
import { PathMetricsAccumulator } from '../report/path-metrics.js';
import { labelTail } from '../head/label-flags.js';
import { applyTopLabel, calibrateTemperature, calibrateTopLabel, calibrationFigures, thresholdForTarget, topOneCurve, topOneCurveRows, type CalibrationFigures } from '../head/calibration.js';
import type { BundleCalibration } from '../models/bundle.js';
import { DEFAULT_MIN_PATH_SCORE, DEFAULT_PATH_SEPARATOR, Taxonomy, canonicalPath, holdsPaths, pathLevels } from '../head/taxonomy.js';

export interface TrainOptions extends EncoderOptions, Omit<FeatureOptions, 'imageRoot' | 'cache' | 'identity'> {
  /** Embedding cache (--cache): train, eval and run share it, so tuning the head does not re-embed. */
  embedCache?: EmbedCacheSetting;
  input: string;
  labelColumn: string;
  /** Attribute columns (--attribute) predicted beside the label column from the same embeddings, each with its own heads. */
  attributes?: string[];
  /** An attribute value seen fewer times is reported and left out of that attribute's fit (default 2). */
  minAttributeCount?: number;
  /** How each attribute combines text and image (--attribute-fusion); default: the category's --fusion. */
  attributeFusion?: FusionMode;
  /** Labels holding this separator are category paths (stored with levels joined by " > "); default '>'. */
  pathSeparator?: string;
  /** A path bundle's default --min-path-score for run, eval, check and serve; default 0.5. */
  minPathScore?: number;
  /** Target precisions (--target-precision): each one's threshold, chosen on the held-out curve, stored in the bundle. */
  targetPrecision?: number[];
  output: string;
  columns: Omit<ColumnOptions, 'require' | 'extra'>;
  delimiter?: string;
  imageRoot?: string;
  /** Classifier input; undefined: the preset's (see chooseStack: --preset, else chosen from what the cache holds). */
  features?: FeatureKind[];
  /** A named stack of features and models (models/preset.ts); --features and model flags may only repeat it. */
  preset?: PresetName;
  /** How photos are resized for the image model (recorded in the bundle's image block); default DEFAULT_IMAGE_PREPROCESSING. */
  imagePreprocessing?: ImagePreprocessing;
  /** Registry, cache and download policy; a missing --text-model/--image-model means the preset's (or registry default). */
  models: ModelContext;
  textModel?: string;
  imageModel?: string;
  tfidf: Partial<TfidfConfig>;
  /** Character n-grams (char_wb) appended to the tfidf block, e.g. [2, 5]; null: words only. */
  charNgramRange: [number, number] | null;
  /** Most frequent character n-grams kept (bounds the bundle and the head on large catalogs). */
  charMaxFeatures: number | null;
  /** How text and image are combined (target.ts FusionMode): late, early, auto (whichever held-out rows prefer) or joint. */
  fusion: FusionMode;
  /** Share of the rows held out to choose the fusion weights (and C, with cGrid). */
  fusionShare: number;
  /** --C auto: each head's C chosen from these on the held-out share; null: lr.C. */
  cGrid: number[] | null;
  /** Choose C and fusion weights on k-fold held-out predictions (k > 1), else on the --fusion-share; auto: 5 folds up to AUTO_FOLDS_MAX_ROWS rows. */
  selectionFolds: number | 'auto';
  lr: Omit<LogisticOptions, 'onIteration'>;
  /** Share held out for validation (0 = none). */
  validation: number;
  /** Stratified K-fold cross-validation (0 = none). */
  cv: number;
  refit: boolean;
  seed: number;
  /** Written into the manifest; the CLI passes SOURCE_DATE_EPOCH when set, so equal inputs give equal bytes. */
  createdAt: string;
  toolVersion: string;
  window: number;
  progress?: ProgressReporter;
  /** Head fitting: fits done of those planned, the fit under way, an ETA. */
  fitProgress?: FitProgressReporter;
  /** Head fits at once (worker threads); 1: one after another on this thread. */
  jobs: number;
  /** Shift flat classes' answers against the class prior where held-out macro-F1 gains (HeadSettings.priorShift); default true. */
  priorShift?: boolean;
  /** Raise flat classes the row's text names by a weight fitted on held-out predictions (HeadSettings.nameMatch); default true. */
  nameMatch?: boolean;
  /** How the TF-IDF block is solved (see HeadSettings.solver); default auto. */
  solver?: HeadSettings['solver'];
  /** Full or support heads (see HeadSettings.headKind); default auto. */
  head?: HeadSettings['headKind'];
  log?: (line: string) => void;
  stdin?: NodeJS.ReadableStream;
}

/**
 * Pruning tolerance of a path bundle's top-level head. Its few classes and large C keep half its TF-IDF weights at
 * the default 1e-3 (6.8 MB on flipkart-taxonomy, beside 29 MB for the 657 paths); at 3e-3 it is 4.9 MB with dev
 * top-1 agreement 100%, max |Δp| 1.8e-3 and accuracy unchanged (bench/linear-head.ts, 24 top levels, C 1000).
 */
const TOP_LEVEL_PRUNE_TOLERANCE = 3e-3;

/**
 * New bundles' image preprocessing: 'fast', whose dev macro-F1 equalled 'exact''s on both real catalogs with photos
 * (flipkart-products 0.9486 both, myntra-fashion 0.9830 both; the bar was a cost of at most 0.003) while it decodes
 * big photos with less CPU (README: Performance, "Full-size photos"). Imported heads and older bundles stay exact.
 */
export const DEFAULT_IMAGE_PREPROCESSING: ImagePreprocessing = 'fast';

/** Up to this many rows, C and the fusion weights are chosen on 5-fold held-out predictions (small catalogs: one 20% share is too noisy); above, on one held-out share. */
export const AUTO_FOLDS_MAX_ROWS = 3000;

/**
 * The selection's folds for a fit on `rows` rows: `--fusion-folds K` at every size (0: the held-out share); auto, 5
 * folds up to AUTO_FOLDS_MAX_ROWS rows, the share above (5 folds at every size measured +0.001 macro-F1 on myntra's
 * repeated splits for 4.7× the training time: docs/measurements.md, "Repeated splits").
 */
export function selectionFoldsFor(option: number | 'auto', rows: number): number {
  return option === 'auto' ? (rows <= AUTO_FOLDS_MAX_ROWS ? 5 : 0) : option;
}

export interface SplitMetrics {
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  top3Accuracy: number;
  n: number;
  /** Path bundles: hierarchical F1, precision and recall at the bundle's threshold, and accuracy per level. */
  paths?: { hF: number; hP: number; hR: number; answered: number; complete: number; levelAccuracy: number[] };
}

export interface TrainSummary {
  output: string;
  rows: { read: number; used: number; emptyLabel: number; failed: number; failedReasons: Record<string, number> };
  classes: number;
  /** The classes are category paths: the separator their labels were split on, the tree's size, the bundle's --min-path-score. */
  paths: { separator: string; nodes: number; maxDepth: number; minPathScore: number; topLevelHeads: { name: string; C: number; weight: number }[] | null } | null;
  features: { kind: string; dim: number }[];
  /** The preset the bundle was trained on (recorded in its manifest), or null for features and models of one's own. */
  preset: PresetName | null;
  validation: SplitMetrics | null;
  cv: { folds: SplitMetrics[]; mean: SplitMetrics } | null;
  /** Over all heads (each head's own under `heads`). */
  fit: { converged: boolean; iterations: number; loss: number; refit: boolean; heads: { name: string; kind: 'full' | 'support'; support: FittedHead['support']; weight: number; C: number; converged: boolean; iterations: number; loss: number }[] };
  /** How the fusion weights were chosen (text and image features), else null. */
  fusion: FusionSelection | null;
  /** The bundle's calibration (temperature, held-out figures, target thresholds), or why there is none. */
  calibration: BundleCalibration | { none: string };
  /** Embedding cache counters (--cache), or null. */
  cache: ReturnType<typeof cacheSummary>;
  /** Each attribute (--attribute): its rows, values left out, heads, fusion and calibration. */
  attributes: AttributeSummary[];
  /** Texts and images the encoders embedded (cache hits excluded): once per row for the category and every attribute. */
  embedded: { text: number; image: number };
  elapsedSeconds: number;
}

export interface AttributeSummary {
  name: string;
  classes: number;
  /** Rows fitted on; rows without a value; values left out for being rarer than --min-attribute-count (and their rows). */
  rows: number;
  withoutValue: number;
  dropped: { value: string; count: number }[];
  heads: HeadFit[];
  fusion: FusionSelection | null;
  calibration: BundleCalibration | { none: string };
}

type HeadFit = TrainSummary['fit']['heads'][number];

/** The default of --min-attribute-count. */
export const DEFAULT_MIN_ATTRIBUTE_COUNT = 2;

/** Output fields an attribute may not be named like (its CSV columns `<name>` and `<name>_score` would clash). */
const RESERVED_ATTRIBUTE_NAMES = new Set(['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings', 'decision', 'target_precision', 'attributes', 'path_depth', 'path_complete', 'path_scores', 'full_path', 'full_path_score']);

/**
 * --attribute names: each a column other than the label column and the columns the model reads (`inputs`: title,
 * description, image; matched ignoring case, as columns are), named once, not like an output field.
 */
export function checkAttributeNames(names: string[], labelColumn: string, inputs: readonly string[] = []): void {
  const seen = new Set<string>();
  const read = new Set(inputs.map((c) => c.toLowerCase()));
  for (const name of names) {
    if (name.trim() === '') throw new UsageError('--attribute needs column names, got an empty one', 'attribute');
    if (name === labelColumn) throw new UsageError(`--attribute ${name} is the --label-column; name other columns`, 'attribute');
    if (read.has(name.toLowerCase())) throw new UsageError(`--attribute ${name} is a column the model reads (title, description, image); name a label column`, 'attribute');
    if (seen.has(name)) throw new UsageError(`--attribute ${name} is named twice`, 'attribute');
    if (RESERVED_ATTRIBUTE_NAMES.has(name) || RESERVED_ATTRIBUTE_NAMES.has(name.replace(/_score$/, ''))) {
      throw new UsageError(`--attribute ${name}: an output field has that name (${[...RESERVED_ATTRIBUTE_NAMES].join(', ')}); rename the column`, 'attribute');
    }
    seen.add(name);
  }
}

/** One attribute's training rows (indices into the rows given) and values; empty values and rare values left out. */
export function attributeRows(values: string[], minCount: number): { idx: number[]; labels: string[]; withoutValue: number; dropped: { value: string; count: number }[] } {
  const counts = new Map<string, number>();
  for (const v of values) if (v !== '') counts.set(v, (counts.get(v) ?? 0) + 1);
  const dropped = [...counts].filter(([, n]) => n < minCount).map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
  const rare = new Set(dropped.map((d) => d.value));
  const idx = values.flatMap((v, i) => (v !== '' && !rare.has(v) ? [i] : []));
  return { idx, labels: idx.map((i) => values[i]!), withoutValue: values.filter((v) => v === '').length, dropped };
}

const figures = (f: CalibrationFigures) => ({ logLoss: f.logLoss, brier: f.brier, ece: f.ece });

/**
 * Without a selection's held-out rows (a fixed --C and one head), the validation share's predictions: the validation
 * model's, fitted without those rows. Its rows are numbered 0… here; the final model's labels index its classes.
 */
function validationCalibration(classes: string[], v: { labels: string[]; probs: Float64Array }): (ModelCalibration & { labels: string[] }) | null {
  const K = classes.length;
  const index = new Map(classes.map((k, i) => [k, i]));
  const keep = v.labels.flatMap((l, i) => (index.has(l) ? [i] : []));
  if (keep.length === 0) return null;
  const raw = new Float64Array(keep.length * K);
  keep.forEach((i, r) => raw.set(v.probs.subarray(i * K, (i + 1) * K), r * K));
  const y = keep.map((i) => index.get(v.labels[i]!)!);
  const { probs, ...calibration } = calibrateTemperature(raw, y, K);
  return { ...calibration, heldOut: { rows: Int32Array.from(keep, (_, r) => r), raw, named: raw, probs }, labels: keep.map((i) => v.labels[i]!) };
}

/**
 * What the bundle stores about calibration: the temperature fitted on the selection's held-out predictions (a path
 * bundle's two head sets each their own, fitted on the same held-out rows), the held-out figures of the probabilities
 * run gives (for paths: combined by Taxonomy.withTopLevel), their precision–coverage curve and each target's threshold.
 */
function bundleCalibration(
  model: TrainedModel,
  topModel: TrainedModel | null,
  finalLabels: string[],
  targets: number[],
  validation: { labels: string[]; probs: Float64Array } | null,
): BundleCalibration | { none: string } {
  const fallback = !model.calibration && validation && !topModel ? validationCalibration(model.classes, validation) : null;
  const c = model.calibration ?? fallback;
  if (!c) {
    const why = model.heads.some((h) => h.support)
      ? 'a support head keeps no held-out probabilities'
      : topModel
        ? 'a path bundle calibrates on the selection of C (--C auto), not on the validation share'
        : 'no held-out predictions were made (a fixed --C with one head, and --validation 0)';
    return { none: `not calibrated: ${why}` };
  }
  const source = model.calibration ? 'selection' : 'validation';
  const K = model.classes.length;
  const index = new Map(model.classes.map((k, i) => [k, i]));
  let rows = Array.from(c.heldOut.rows);
  let raw = c.heldOut.raw;
  let named = c.heldOut.named;
  let probs = c.heldOut.probs;
  let topTemperature: number | undefined;
  const t = topModel?.calibration;
  if (topModel && t) {
    // The same held-out rows (the top-level model's splits are stratified on the full paths): combine row by row.
    const tree = new Taxonomy(model.classes);
    const T = topModel.classes.length;
    const at = new Map(Array.from(t.heldOut.rows, (r, i) => [r, i]));
    const own = new Map(rows.map((r, i) => [r, i]));
    rows = rows.filter((r) => at.has(r));
    const combine = (flat: Float64Array, top: Float64Array) => {
      const out = new Float64Array(rows.length * K);
      rows.forEach((r, i) => tree.withTopLevel(flat.subarray(own.get(r)! * K, (own.get(r)! + 1) * K), top.subarray(at.get(r)! * T, (at.get(r)! + 1) * T), topModel.classes, out.subarray(i * K, (i + 1) * K)));
      return out;
    };
    raw = combine(c.heldOut.raw, t.heldOut.raw);
    named = raw;
    probs = combine(c.heldOut.probs, t.heldOut.probs);
    topTemperature = t.temperature;
  }
  const rowLabels = fallback ? fallback.labels : finalLabels;
  const y = rows.map((r) => index.get(rowLabels[r]!)!);
  // Then the top-1 probability, scaled on the same rows (top-label scaling: what one temperature cannot mend), where
  // its test keeps it.
  const before = topOneCurveRows(probs, y, K);
  const topTest = calibrateTopLabel(before.scores, before.correct);
  const topLabel = topTest?.test.kept ? topTest.fitted : null;
  if (topLabel) {
    const scaled = new Float64Array(probs.length);
    for (let i = 0; i < y.length; i++) applyTopLabel(probs.subarray(i * K, (i + 1) * K), topLabel, scaled.subarray(i * K, (i + 1) * K));
    probs = scaled;
  }
  // A shifted decision (flat classes only): the class answered, from the fused probabilities after the name match
  // (the raw ones without it), as run decides it.
  const shift = !topModel && c.prior && c.prior.alpha !== 0 ? c.prior : null;
  const answers = shift ? rows.map((_, i) => shiftedArgmax(named.subarray(i * K, (i + 1) * K), shift.bias)) : undefined;
  const names = c.nameMatch;
  const curve = topOneCurve(probs, y, K, answers);
  return {
    method: 'temperature',
    temperature: c.temperature,
    ...(topTemperature !== undefined ? { topTemperature } : {}),
    ...(topLabel ? { topLabel } : {}),
    tests: {
      temperature: { fitted: c.fit.temperature, ...c.test },
      ...(t ? { topTemperature: { fitted: t.fit.temperature, ...t.test } } : {}),
      ...(topTest ? { topLabel: { fitted: topTest.fitted, ...topTest.test } } : {}),
      ...(names ? { nameMatch: { fitted: names.fitted, ...names.test } } : {}),
    },
    ...(names && names.beta > 0 ? { nameMatch: { beta: names.beta, classes: names.classes } } : {}),
    source,
    rows: rows.length,
    before: figures(calibrationFigures(raw, y, K)),
    after: figures(calibrationFigures(probs, y, K)),
    curve,
    targets: targets.map((target) => thresholdForTarget(curve, target)),
    // How improbable right labels look on held-out rows: check's disagreement flags at a stated precision from it
    // (flat classes; a path bundle's check compares paths level by level instead).
    ...(topModel ? {} : { labelTail: labelTail(probs, y, K, answers) }),
    ...(shift ? { prior: { alpha: shift.alpha, bias: Array.from(shift.bias) } } : {}),
  };
}

/** What `train` says about a model's selection: C and fusion weights, and early fusion against late. */
function selectionLines(model: TrainedModel, opts: Pick<TrainOptions, 'fusion' | 'cGrid'>, prefix = ''): string[] {
  const lines: string[] = [];
  if (!model.selection || model.heads.some((h) => h.support)) return lines;
  const sel = model.selection;
  if (sel.fused) {
    lines.push(`${prefix}fusion weights chosen on ${sel.rows} held-out rows: ${sel.heads.map((h) => `${h.name} ${h.weight.toFixed(2)} (C ${h.C}; alone: macro-F1 ${h.macroF1.toFixed(4)})`).join(', ')}; fused macro-F1 ${sel.fused.macroF1.toFixed(4)}`);
  } else if (opts.cGrid) {
    lines.push(`${prefix}C chosen on ${sel.rows} held-out rows: ${sel.heads.map((h) => `${h.name} ${h.C}`).join(', ')}`);
  }
  const e = sel.early;
  if (e) {
    const figures = (f: { macroF1: number; logLoss: number }) => `macro-F1 ${f.macroF1.toFixed(4)}, log-loss ${f.logLoss.toFixed(4)}`;
    const kind = e.chosen ? `early fusion${opts.fusion === 'early' ? ' (--fusion early)' : ''}` : 'late fusion';
    lines.push(`${prefix}fusion: ${kind} for rows with text and image — on ${e.rows} held-out rows early (image block weight ${e.blockWeight}, C ${e.C}) ${figures(e.early)}, late ${figures(e.late)}${e.chosen ? '; rows missing one use its late head' : ''}`);
  }
  const t = sel.textAlone;
  if (t) {
    const fusedKind = e?.chosen ? 'early fusion' : 'late fusion';
    lines.push(
      t.chosen
        ? `${prefix}fusion: the text head alone (the image head only for rows without text) — on ${t.rows} held-out rows macro-F1 ${t.text.macroF1.toFixed(4)}, ${fusedKind} ${t.fused.macroF1.toFixed(4)}`
        : `${prefix}fusion: ${fusedKind} kept over the text head alone — on ${t.rows} held-out rows macro-F1 ${t.fused.macroF1.toFixed(4)} against ${t.text.macroF1.toFixed(4)}`,
    );
  }
  const names = model.calibration?.nameMatch;
  if (names) {
    const counted = `${names.classes.length} of ${model.classes.length} classes' names count`;
    lines.push(
      names.beta > 0
        ? `${prefix}name match: classes the text names raised by β ${names.beta.toFixed(2)} (χ² ${names.test.statistic.toFixed(1)} ≥ ${names.test.critical.toFixed(2)}; ${counted})`
        : `${prefix}name match: left out — χ² ${names.test.statistic.toFixed(1)} < ${names.test.critical.toFixed(2)} (β ${names.fitted.toFixed(2)} as fitted; ${counted})`,
    );
  }
  const p = sel.prior;
  if (p) {
    const chosen = p.trials.find((t) => t.alpha === p.alpha)!;
    const best = p.trials.reduce((b, t) => (t.macroF1 > b.macroF1 ? t : b));
    const unshifted = p.trials[0]!;
    const how =
      p.alpha !== 0
        ? `the answer is the most probable class after ÷ prior^${p.alpha} — held-out macro-F1 ${chosen.macroF1.toFixed(4)} (unshifted ${unshifted.macroF1.toFixed(4)}, standard error ${unshifted.se.toFixed(4)})`
        : best === unshifted
          ? `none — held-out macro-F1 ${unshifted.macroF1.toFixed(4)}, no exponent does better`
          : `none — held-out macro-F1 ${unshifted.macroF1.toFixed(4)}; ÷ prior^${best.alpha} gives ${best.macroF1.toFixed(4)}, within one standard error (${unshifted.se.toFixed(4)})`;
    lines.push(`${prefix}prior shift: ${how}`);
  }
  return lines;
}

/** Each head's fit, as the summary and the manifest report it. */
function headFits(model: TrainedModel): HeadFit[] {
  return model.heads.map((h) => ({
    name: h.name,
    kind: h.support ? ('support' as const) : ('full' as const),
    /** A support head's epochs and the held-out log-loss per epoch they were chosen by. */
    support: h.support,
    weight: h.weight,
    C: h.C,
    converged: h.head.model.converged,
    iterations: h.head.model.iterations,
    loss: h.head.model.loss,
  }));
}

function pick(m: EvalMetrics): SplitMetrics {
  return { accuracy: m.accuracy, macroF1: m.macroF1, weightedF1: m.weightedF1, top3Accuracy: m.top3Accuracy, n: m.n };
}

/** Gathers the fits every procedure of a training run plans, for one progress display with an ETA (fit-eta.ts). */
function fitTracker(view: FitProgressReporter): FitProgress & { stop(): void } {
  const t0 = performance.now();
  const eta = new FitEta();
  return {
    plan(fits) {
      eta.plan(fits);
    },
    report(e) {
      if (e.event.type === 'fit') eta.finished({ head: e.head, C: e.C, final: e.final, seconds: e.event.stats.seconds });
      if (e.event.type === 'skipped') return void eta.skipped({ head: e.head, C: e.C, final: e.final });
      const elapsedSeconds = (performance.now() - t0) / 1000;
      view.update({
        done: eta.done,
        total: eta.total,
        procedure: e.procedure,
        head: e.head,
        C: e.C,
        iteration: e.event.type === 'iteration' ? e.event.iteration : null,
        elapsedSeconds,
        etaSeconds: eta.secondsLeft(elapsedSeconds),
      });
    },
    stop: () => view.stop(),
  };
}

/**
 * Fits on `train`, scores `test` with the heads as a bundle would ship them (pruned, scored as run scores them):
 * the split's figures.
 */
async function scoreSplit(
  rows: CollectedRow[],
  labels: string[],
  classes: string[],
  train: number[],
  test: number[],
  settings: (what: string) => HeadSettings,
  paths: { tree: Taxonomy; minPathScore: number; topLevels: string[] | null } | null,
): Promise<SplitMetrics & { probs: Float64Array }> {
  const topLevels = paths?.topLevels ?? null;
  const trainTop = topLevels !== null && new Set(train.map((i) => topLevels[i])).size > 1;
  const [model, topModel] = await Promise.all([
    trainModel(train.map((i) => rows[i]), train.map((i) => labels[i]), settings('')),
    trainTop ? trainModel(train.map((i) => rows[i]), train.map((i) => topLevels[i]), { ...settings(', top level'), strata: train.map((i) => labels[i]) }) : null,
  ]);
  const testRows = test.map((i) => rows[i]);
  const probs = shippedPredictions(model, testRows, classes).fused;
  const K = classes.length;
  if (topModel && paths) {
    const tops = paths.tree.topLevels;
    const topProbs = shippedPredictions(topModel, testRows, tops, TOP_LEVEL_PRUNE_TOLERANCE).fused;
    const T = tops.length;
    for (let i = 0; i < test.length; i++) paths.tree.withTopLevel(probs.subarray(i * K, (i + 1) * K), topProbs.subarray(i * T, (i + 1) * T), tops, probs.subarray(i * K, (i + 1) * K));
  }
  let pathFigures: SplitMetrics['paths'];
  if (paths) {
    const acc = new PathMetricsAccumulator(paths.tree, paths.minPathScore);
    test.forEach((row, i) => acc.add(labels[row], probs.subarray(i * K, (i + 1) * K)));
    const m = acc.result();
    pathFigures = { hF: m.at.f1, hP: m.at.precision, hR: m.at.recall, answered: m.at.answered, complete: m.at.complete, levelAccuracy: m.levels.map((l) => l.accuracy) };
  }
  const ranked = testRows.map((_, i) =>
    Array.from({ length: K }, (_, k) => k)
      .sort((a, b) => probs[i * K + b] - probs[i * K + a] || a - b)
      .slice(0, 3)
      .map((k) => classes[k]),
  );
  // A shifted decision answers as run does: from the probabilities at the model's temperature, bias ÷ temperature.
  const shift = model.calibration?.prior?.alpha ? model.calibration.prior : null;
  const bias = shift ? classes.map((c) => shift.bias[model.classes.indexOf(c)] ?? 0) : null;
  const scale = 1 / (model.calibration?.temperature ?? 1);
  const yPred = bias ? test.map((_, i) => classes[shiftedArgmax(probs.subarray(i * K, (i + 1) * K), bias, scale)]) : ranked.map((r) => r[0]);
  const metrics = pick(computeMetrics({ yTrue: test.map((i) => labels[i]), yPred, ranked, modelClasses: classes }));
  return { ...metrics, ...(pathFigures ? { paths: pathFigures } : {}), probs };
}

/**
 * What the bundle records about a model: a registry model by id, revision and hash (run finds it in the cache);
 * a local one by its path relative to the bundle, so bundle + models can move together.
 */
function bundleRef(bundleDir: string, model: ResolvedModel, modelPath: string): ModelRef {
  if (model.ref.id) return model.ref;
  // A tapped classifier export runs a derived model from the cache: the bundle names the user's file and the tap
  // (run derives it again), and the sha256 of what ran, as for a registry model's tap.
  return {
    path: path.relative(bundleDir, model.request.location) || '.',
    file: path.basename(model.ref.tap && model.local ? model.local.onnx : modelPath),
    sha256: sha256File(modelPath),
    ...(model.ref.tap ? { tap: model.ref.tap } : {}),
  };
}

/** A fitted head's bundle entry: none for a lone joint head (the bundle's classifier), else its name, blocks, weight and route. */
function headSpec(h: FittedHead): BundleHeadPart['spec'] {
  if (h.name === 'joint' && !h.route) return undefined;
  return { name: h.name, kinds: h.kinds, classes: h.head.classes, weight: h.weight, ...(h.route ? { route: h.route } : {}), ...(h.blockWeight !== undefined ? { blockWeight: h.blockWeight } : {}) };
}

export async function trainCommand(opts: TrainOptions): Promise<TrainSummary> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? silentProgress;
  const stack = chooseStack({ preset: opts.preset, features: opts.features, textModel: opts.textModel, imageModel: opts.imageModel }, opts.models);
  if (stack.note) log(stack.note);
  const kinds = new Set(stack.features);
  if (kinds.size === 0) throw new UsageError('--features needs at least one of text, image, tfidf');
  const attributeNames = opts.attributes ?? [];
  checkAttributeNames(attributeNames, opts.labelColumn, [opts.columns.title, opts.columns.description, ...opts.columns.image]);
  // Models first: a missing model fails before the catalog is read.
  const models: Partial<Record<'text' | 'image', ResolvedModel>> = {};
  const resolve = async (kind: 'text' | 'image', arg: string | undefined) => {
    try {
      return await resolveModel(kind, arg, opts.models);
    } catch (err) {
      // The one stack that needs no download is worth naming when a model is missing.
      if (!(err instanceof CategorizeError) || err.code !== 'model_missing' || stack.preset === 'embedded') throw err;
      throw new ConfigError(`${err.message}; or train with --preset embedded (the shipped image model + TF-IDF, nothing to download)`, err.code, { cause: err });
    }
  };
  if (kinds.has('text')) models.text = await resolve('text', stack.textModel);
  if (kinds.has('image')) {
    const image = await resolve('image', stack.imageModel);
    // The bundle records the preprocessing its image head is trained on; this run embeds with it too.
    const base = image.request.image ?? resolveImageModel(image.request.location, image.request.file).preprocess;
    image.request.image = withPreprocessing(base, opts.imagePreprocessing ?? DEFAULT_IMAGE_PREPROCESSING);
    models.image = image;
  }
  const catalog = await openCatalog(opts.input, {
    columns: {
      ...opts.columns,
      require: { text: kinds.has('text') || kinds.has('tfidf'), image: kinds.has('image') },
      imageColumnHint: `train on the text alone (--features ${[...kinds].filter((k) => k !== 'image').join(',') || 'tfidf'})`,
      extra: [opts.labelColumn, ...attributeNames],
      extraFlags: { ...Object.fromEntries(attributeNames.map((a) => [a, '--attribute'])), [opts.labelColumn]: '--label-column' },
    },
    delimiter: opts.delimiter,
    stdin: opts.stdin,
  });
  const encoders = await openEncoders([models.text, models.image].flatMap((m) => (m ? [m.request] : [])), opts);
  encoders.notices.forEach((n) => log(n));
  const imageNotice = models.image && stack.imageModel !== undefined ? localImageNotice(stack.imageModel, models.image, encoders.image!.dim) : undefined;
  if (imageNotice) log(imageNotice);
  const counts = { emptyLabel: 0 };
  let collected: CollectedRow[];
  const { text: textSpec, image: imageSpec } = encoders.specs;
  const encoderBlocks: FeatureBlock[] = [];
  if (textSpec) encoderBlocks.push({ kind: 'text', offset: 0, dim: encoders.text!.dim, model: {}, preprocess: { maxLength: textSpec.maxLength, pooling: 'mean', normalize: textSpec.normalize } });
  if (imageSpec) encoderBlocks.push({ kind: 'image', offset: 0, dim: encoders.image!.dim, model: {}, preprocess: imageSpec.preprocess });
  // The vectorizer is fitted after embedding; the block tells the extractor that text alone makes a row usable.
  if (kinds.has('tfidf')) encoderBlocks.push({ kind: 'tfidf', offset: 0, dim: 0 });
  let cache: EmbedCache | undefined;
  let cacheStats: ReturnType<typeof cacheSummary> = null;
  const embedded = { text: 0, image: 0 };
  try {
    cache = openEmbedCache(opts.embedCache, log);
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    let failedSoFar = 0;
    const extractor = new FeatureExtractor(encoderBlocks, encoders.text, encoders.image, { ...opts, imageRoot: opts.imageRoot ?? catalog.baseDir, cache, identity: encoders.identity, decoder: encoders.decoder });
    collected = await collectFeatures(labelledRows(catalog.rows, opts.labelColumn, () => counts.emptyLabel++), extractor, {
      window: opts.window,
      onRow: (r, done) => {
        if (!r.ok) failedSoFar++;
        progress.update({ rows: done, errors: failedSoFar, warnings: 0, bytesRead: catalog.bytesRead(), totalBytes });
      },
    });
    progress.stop();
    cacheStats = cacheSummary(cache);
    const batches = extractor.batchSizes;
    embedded.text = batches.text.reduce((a, b) => a + b, 0);
    embedded.image = batches.image.reduce((a, b) => a + b, 0);
  } finally {
    await cache?.close();
    await encoders.close();
  }
  const failedReasons: Record<string, number> = {};
  for (const r of collected.filter((r) => !r.ok)) {
    const code = reasonCode(r.error ?? '');
    failedReasons[code] = (failedReasons[code] ?? 0) + 1;
  }
  // A column whose labels hold the separator is a column of category paths: each label in its stored form.
  const separator = opts.pathSeparator ?? DEFAULT_PATH_SEPARATOR;
  const okRows = collected.filter((r) => r.ok);
  const paths = holdsPaths(okRows.map((r) => r.row.extra[opts.labelColumn]), separator);
  const labelOf = (r: CollectedRow) => (paths ? canonicalPath(r.row.extra[opts.labelColumn], separator) : r.row.extra[opts.labelColumn].trim());
  // A label of separators only ("> >") names no node: counted with the rows without a label.
  const rows = okRows.filter((r) => labelOf(r) !== '');
  const labels = rows.map(labelOf);
  const noLabel = counts.emptyLabel + okRows.length - rows.length;
  const failed = collected.length - okRows.length;
  if (rows.length === 0) throw new UsageError(`no usable training rows in ${opts.input} (${noLabel} without a label, ${failed} failed)`, 'no_rows');
  const classes = fitLabelEncoder(labels);
  if (classes.length < 2) throw new UsageError(`training needs at least two classes in column '${opts.labelColumn}', found ${classes.length}`, 'one_class');
  const tree = paths ? new Taxonomy(classes) : null;
  const shape = tree ? ` (category paths split on '${separator}': ${tree.size} nodes, up to ${tree.maxDepth} levels)` : '';
  log(`embedded ${collected.length} labelled rows (${rows.length} usable, ${failed} failed, ${noLabel} without a label); ${classes.length} classes${shape}`);

  const settings: HeadSettings = {
    features: stack.features,
    dims: { text: encoders.text?.dim, image: encoders.image?.dim },
    tfidf: opts.tfidf,
    charTfidf: opts.charNgramRange ? { ...opts.tfidf, analyzer: 'char_wb', ngramRange: opts.charNgramRange, stopWords: null, maxFeatures: opts.charMaxFeatures } : null,
    lr: opts.lr,
    fusion: opts.fusion,
    fusionShare: opts.fusionShare,
    seed: opts.seed,
    cGrid: opts.cGrid,
    selectionFolds: selectionFoldsFor(opts.selectionFolds, rows.length),
    solver: opts.solver,
    headKind: opts.head,
    priorShift: !paths && (opts.priorShift ?? true),
    nameMatch: !paths && (opts.nameMatch ?? true),
  };
  const y = encodeLabels(classes, labels);
  // Duplicate listings (the same normalised text) never sit on both sides of the validation share or a fold.
  const dupes = duplicateGroups(rows.map((r) => r.text));
  if (dupes) log(`held-out splits keep ${duplicateSummary(dupes)} together`);
  const holdout = opts.validation > 0 ? stratifiedHoldout(y, opts.validation, opts.seed, dupes) : null;
  if (holdout && holdout.test.length === 0) throw new UsageError(`--validation ${opts.validation} holds out no rows of ${rows.length}; use a larger share or --cv`, 'validation');
  const cvSplits = opts.cv > 1 ? stratifiedKFold(y, opts.cv, opts.seed, dupes) : [];
  const finalIdx = opts.refit || !holdout ? rows.map((_, i) => i) : holdout.train;
  const rowCounts = { read: collected.length + counts.emptyLabel, used: finalIdx.length, emptyLabel: noLabel, failed, failedReasons };
  // Validation, cross-validation and the final fit are independent training runs: they share one pool of
  // workers, so their fits fill every core, and at most `jobs` of them hold their data in memory at once.
  const pool = new FitPool(opts.jobs > 1 ? opts.jobs : 0);
  const tracker = fitTracker(opts.fitProgress ?? silentFitProgressReporter);
  const runs = pLimit(Math.max(2, opts.jobs));
  // Fits of different runs share the machine: each run's memory check counts the pool's jobs against 80% of it.
  const procedure = (name: string): HeadSettings => ({ ...settings, pool, progress: tracker, procedure: name, jobs: Math.max(1, opts.jobs), memoryBytes: 0.8 * os.totalmem() });
  // A path catalog with several top levels gets a second head set over them (Taxonomy.withTopLevel): the flat head's
  // sums favour departments with many leaves.
  const topLevels = tree && tree.topLevels.length > 1 && tree.maxDepth > 1 ? labels.map((l) => pathLevels(l)[0]) : null;
  const splitPaths = tree ? { tree, minPathScore: opts.minPathScore ?? DEFAULT_MIN_PATH_SCORE, topLevels } : null;
  // Attributes: each fitted on the final rows that have a value for it (rare values left out), like the category.
  const finalRows = finalIdx.map((i) => rows[i]!);
  const minAttributeCount = opts.minAttributeCount ?? DEFAULT_MIN_ATTRIBUTE_COUNT;
  const attributeSets = attributeNames.map((name) => {
    const a = attributeRows(finalRows.map((r) => r.row.extra[name]!.trim()), minAttributeCount);
    const classCount = new Set(a.labels).size;
    const dropped = a.dropped.length > 0 ? `; left out, seen fewer than ${minAttributeCount} times: ${a.dropped.map((d) => `${JSON.stringify(d.value)} (${d.count})`).join(', ')}` : '';
    if (classCount < 2) throw new UsageError(`--attribute ${name}: needs at least two values seen ${minAttributeCount}+ times, found ${classCount} (${a.withoutValue} rows without a value${dropped})`, 'one_class');
    log(`attribute ${name}: ${classCount} values on ${a.idx.length} rows (${a.withoutValue} without a value)${dropped}`);
    return { name, ...a };
  });
  // One TF-IDF for the final model and every attribute (fitted on the final rows, as trainModel would): one tfidf.json.
  const finalTfidf = fitTfidfBlock(finalRows, settings);
  let topModel: TrainedModel | null = null;
  let attributeModels: TrainedModel[] = [];
  let validation: SplitMetrics | null = null;
  let validationProbs: Float64Array | null = null;
  let cv: TrainSummary['cv'] = null;
  let model: TrainedModel;
  try {
    const validating = holdout ? runs(() => scoreSplit(rows, labels, classes, holdout.train, holdout.test, (w) => procedure(`validation${w}`), splitPaths)) : null;
    const folds = cvSplits.map((split, f) => runs(() => scoreSplit(rows, labels, classes, split.train, split.test, (w) => procedure(`cv ${f + 1}/${opts.cv}${w}`), splitPaths)));
    // Every head of the final model, its top-level set and the attributes solves its TF-IDF block over some of the
    // final rows: one row-space basis serves them all (shared-basis.ts).
    const sharedBasis = new SharedBasis(finalRows, finalTfidf, pool);
    const final = runs(() => trainModel(finalRows, finalIdx.map((i) => labels[i]), { ...procedure('final'), tfidfModel: finalTfidf, sharedBasis }));
    const attributesFitted = attributeSets.map((a) =>
      runs(() =>
        trainModel(a.idx.map((i) => finalRows[i]!), a.labels, {
          ...procedure(`attribute ${a.name}`),
          fusion: opts.attributeFusion ?? opts.fusion,
          // An attribute's values are flat classes, beside a path category too.
          priorShift: opts.priorShift ?? true,
          nameMatch: opts.nameMatch ?? true,
          tfidfModel: finalTfidf,
          sharedBasis,
          selectionFolds: selectionFoldsFor(opts.selectionFolds, a.idx.length),
        }),
      ),
    );
    // Stratified on the full paths, the top-level model's held-out rows are the main model's: they calibrate together.
    const finalTop = topLevels ? runs(() => trainModel(finalRows, finalIdx.map((i) => topLevels[i]), { ...procedure('final, top level'), strata: finalIdx.map((i) => labels[i]), tfidfModel: finalTfidf, sharedBasis })) : null;
    let scored: (SplitMetrics & { probs: Float64Array }) | null;
    [scored, model, topModel, attributeModels] = await Promise.all([validating ?? Promise.resolve(null), final, finalTop, Promise.all(attributesFitted)]);
    if (scored) {
      const { probs, ...figures } = scored;
      validation = figures;
      validationProbs = probs;
    }
    const foldMetrics = (await Promise.all(folds)).map(({ probs: _, ...figures }) => figures);
    if (foldMetrics.length > 0) {
      const avg = (k: Exclude<keyof SplitMetrics, 'paths'>) => foldMetrics.reduce((s, m) => s + m[k], 0) / foldMetrics.length;
      cv = { folds: foldMetrics, mean: { accuracy: avg('accuracy'), macroF1: avg('macroF1'), weightedF1: avg('weightedF1'), top3Accuracy: avg('top3Accuracy'), n: rows.length } };
    }
  } finally {
    tracker.stop();
    await pool.close();
  }
  if (validation) log(`validation (${holdout!.test.length} rows): ${tree ? 'exact path' : 'accuracy'} ${validation.accuracy.toFixed(4)}, macro-F1 ${validation.macroF1.toFixed(4)}, weighted-F1 ${validation.weightedF1.toFixed(4)}, top-3 ${validation.top3Accuracy.toFixed(4)}`);
  const p = validation?.paths;
  if (p) {
    log(
      `validation paths at --min-path-score ${splitPaths!.minPathScore}: hierarchical F1 ${p.hF.toFixed(4)} (precision ${p.hP.toFixed(4)}, recall ${p.hR.toFixed(4)}); ` +
        `accuracy by level ${p.levelAccuracy.map((a) => a.toFixed(4)).join(' / ')}; answered ${(100 * p.answered).toFixed(1)}% at some level, ${(100 * p.complete).toFixed(1)}% to full depth`,
    );
  }
  if (cv) {
    cv.folds.forEach((m, f) => log(`cv fold ${f + 1}/${opts.cv}: accuracy ${m.accuracy.toFixed(4)}, macro-F1 ${m.macroF1.toFixed(4)}`));
    log(`cv mean: accuracy ${cv.mean.accuracy.toFixed(4)}, macro-F1 ${cv.mean.macroF1.toFixed(4)}`);
  }
  for (const h of model.heads.filter((h) => h.support)) {
    const s = h.support!;
    const curves = s.heldOut.map((c) => `${c.logLoss.map((l) => l.toFixed(3)).join(' ')} on ${c.rows} rows`).join('; ');
    log(`${h.name} head: support head (${h.head.support!.values.length.toLocaleString('en')} term–class weights), ${s.epochs} epochs chosen by held-out log-loss per epoch (${curves})`);
  }
  for (const line of selectionLines(model, opts)) log(line);
  if (topModel) {
    // Both models vectorised the same rows with the same settings: the bundle's one TF-IDF serves both.
    if (tfidfBlockDim(topModel.tfidf) !== tfidfBlockDim(model.tfidf)) throw new Error('internal: the top-level model saw another TF-IDF vocabulary than the main one');
    log(`top-level head: ${topModel.classes.length} top levels, ${topModel.heads.map((h) => `${h.name} C ${h.C}${topModel!.heads.length > 1 ? ` weight ${h.weight.toFixed(2)}` : ''}`).join(', ')}; its probabilities decide the top level, the main head's the paths below it`);
  }
  const validationRows = validationProbs && holdout ? { labels: holdout.test.map((i) => labels[i]), probs: validationProbs } : null;
  const calibration = bundleCalibration(model, topModel, finalIdx.map((i) => labels[i]), opts.targetPrecision ?? [], validationRows);
  const attributes = attributeSets.map((a, k) => {
    const m = attributeModels[k]!;
    const rowsOf = a.idx.map((i) => finalRows[i]!);
    for (const line of selectionLines(m, opts, `attribute ${a.name}: `)) log(line);
    const summary: AttributeSummary = {
      name: a.name,
      classes: m.classes.length,
      rows: a.idx.length,
      withoutValue: a.withoutValue,
      dropped: a.dropped,
      heads: headFits(m),
      fusion: m.selection,
      calibration: bundleCalibration(m, null, a.labels, opts.targetPrecision ?? [], null),
    };
    const part = {
      name: a.name,
      classes: m.classes,
      // Every attribute head names itself (a lone head too): the bundle's layout, TF-IDF and imputation are shared.
      heads: m.heads.map((h) => ({ ...linearBundleHead(h.head, rowsOf), spec: headSpec(h) ?? { name: h.name, kinds: h.kinds, classes: h.head.classes, weight: 1 } })),
      ...(m.selection ? { selection: { ...m.selection } } : {}),
      ...('none' in summary.calibration ? {} : { calibration: summary.calibration }),
      training: {
        rows: a.idx.length,
        withoutValue: a.withoutValue,
        dropped: a.dropped,
        minCount: minAttributeCount,
        classCounts: Object.fromEntries(m.classes.map((c) => [c, a.labels.filter((l) => l === c).length])),
        heads: summary.heads,
      },
    };
    return { summary, part };
  });
  const bundleDir = path.resolve(opts.output);
  const blocks: FeatureBlock[] = model.blocks.map((b) => {
    if (b.kind === 'text') return { ...b, model: bundleRef(bundleDir, models.text!, textSpec!.modelPath), preprocess: { maxLength: textSpec!.maxLength, pooling: 'mean', normalize: textSpec!.normalize } };
    if (b.kind === 'image') return { ...b, model: bundleRef(bundleDir, models.image!, imageSpec!.modelPath), preprocess: imageSpec!.preprocess };
    return b;
  });
  const fits = headFits(model);
  saveBundle(bundleDir, {
    manifest: {
      toolVersion: opts.toolVersion,
      createdAt: opts.createdAt,
      classes: model.classes,
      ...(stack.preset ? { preset: stack.preset } : {}),
      ...(paths ? { paths: { separator, minPathScore: opts.minPathScore ?? DEFAULT_MIN_PATH_SCORE } } : {}),
      ...('none' in calibration ? {} : { calibration }),
      features: blocks,
      tfidf: true,
      training: {
        input: path.basename(opts.input),
        labelColumn: opts.labelColumn,
        rows: rowCounts,
        classCounts: Object.fromEntries(model.classes.map((c) => [c, finalIdx.filter((i) => labels[i] === c).length])),
        seed: opts.seed,
        validation: validation ? { share: opts.validation, ...validation } : null,
        cv: cv ? { k: opts.cv, ...cv } : null,
        refit: opts.refit,
        tfidf: model.tfidf.word.config,
        charTfidf: model.tfidf.char?.config ?? null,
        logisticRegression: { C: opts.cGrid ? 'auto' : (opts.lr.C ?? 1), cGrid: opts.cGrid, classWeight: opts.lr.classWeight ?? null, maxIter: opts.lr.maxIter, tol: opts.lr.tol, heads: fits },
      },
    },
    heads: model.heads.map((h) => ({
      // Pruned for sparse scoring; its agreement with the fitted model measured on the rows it was fitted on.
      ...linearBundleHead(h.head, finalIdx.map((i) => rows[i])),
      spec: headSpec(h),
    })),
    fusionSelection: model.selection ? { ...model.selection } : undefined,
    topLevel: topModel
      ? {
          classes: topModel.classes,
          heads: topModel.heads.map((h) => ({
            ...linearBundleHead(h.head, finalIdx.map((i) => rows[i]), TOP_LEVEL_PRUNE_TOLERANCE),
            spec: headSpec(h),
          })),
        }
      : undefined,
    attributes: attributes.map((a) => a.part),
    means: model.means,
    tfidfJson: tfidfToJSON(model.tfidf.word),
    charTfidfJson: model.tfidf.char ? tfidfToJSON(model.tfidf.char) : null,
  });
  for (const h of [...model.heads, ...attributeModels.flatMap((m) => m.heads)]) {
    if (!h.head.model.converged) log(`warning: L-BFGS stopped after ${h.head.model.iterations} iterations without converging on the ${h.name} head (${h.head.model.message}); raise --max-iter`);
  }
  return {
    output: bundleDir,
    rows: rowCounts,
    classes: model.classes.length,
    paths: tree
      ? {
          separator,
          nodes: tree.size,
          maxDepth: tree.maxDepth,
          minPathScore: opts.minPathScore ?? DEFAULT_MIN_PATH_SCORE,
          topLevelHeads: topModel ? topModel.heads.map((h) => ({ name: h.name, C: h.C, weight: h.weight })) : null,
        }
      : null,
    features: blocks.map((b) => ({ kind: b.kind, dim: b.dim })),
    preset: stack.preset,
    validation,
    cv,
    fit: {
      converged: fits.every((f) => f.converged),
      iterations: Math.max(...fits.map((f) => f.iterations)),
      loss: fits.reduce((s, f) => s + f.loss, 0),
      refit: opts.refit,
      heads: fits,
    },
    fusion: model.selection,
    calibration,
    cache: cacheStats,
    attributes: attributes.map((a) => a.summary),
    embedded,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}
