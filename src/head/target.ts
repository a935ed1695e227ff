// A target: what one label column is predicted with. Its classes, the TF-IDF vectorizer, a head per modality
// (or one joint head), C per head and the fusion weights chosen on held-out rows (selection.ts), then each head
// refitted on every row. Used for the final bundle and for each validation / cross-validation split alike.
import crypto from 'node:crypto';
import type { CollectedRow } from '../pipeline/collect.js';
import { blockMeans } from '../pipeline/collect.js';
import type { FeatureLayout } from '../pipeline/features.js';
import type { FeatureBlock } from '../models/bundle.js';
import { fitTfidf, tfidfBlockDim, tfidfBlockRow, type TfidfBlockModel, type TfidfConfig } from './tfidf.js';
import { fuseHeads, type WeightCandidate } from './fusion.js';
import { calibrateTemperature, calibrationFigures, likelihoodRatioTest, type CalibrationFigures, type CalibrationTest, type TemperatureFit } from './calibration.js';
import { applyNameMatch, ClassNames, countedNames, fitNameMatch } from './name-match.js';
import { duplicateGroups, stratifiedHoldout, stratifiedKFold, type Split } from './split.js';
import { fitLabelEncoder, encodeLabels } from './labels.js';
import type { StandardScalerParams } from './scaler.js';
import type { CsrBlock } from './design-matrix.js';
import type { AsyncLogisticOptions, LogisticFit } from './logistic.js';
import type { SharedBasis } from './shared-basis.js';
import { sharedArray, solverWidth, type DenseBlock, type FitOptions, type HeadDesign, type HeadParams, type PathEvent, type Solution } from './modality-head.js';
import { FitPool } from './fit-pool.js';
import { checkTwoClasses, chooseC, designRows, classPrior, choosePriorShift, heldOutFigures, heldOutRowLosses, PATH_STOP_RISES, positions, selectFusionWeight, selectHeadC, silentFitProgress, type CSelection, type CTrial, type FitProgress, type PlannedFit, type PriorShift } from './selection.js';
import { chosenEpochs, SUPPORT_MAX_EPOCHS, type SupportFit } from './support-head.js';
import { rowSpaceIsCheaper } from './rowspace.js';
import { RiseStop } from './scoring.js';
import { SCIPY_DEFAULT_FTOL } from './lbfgs.js';
import { UsageError } from '../errors.js';

export type FeatureKind = FeatureBlock['kind'];

export interface HeadSettings {
  features: FeatureKind[];
  /** Embedding sizes of the encoders in use. */
  dims: { text?: number; image?: number };
  tfidf: Partial<TfidfConfig>;
  /** Character n-gram TF-IDF appended to the tfidf block (e.g. char_wb 2–5), or null for words only. */
  charTfidf: Partial<TfidfConfig> | null;
  lr: Omit<AsyncLogisticOptions, 'init' | 'onIteration' | 'gradMaxAbs'>;
  /** How text and image are combined (FusionMode); selection runs on `fusionShare` or `selectionFolds`, split with `seed`. */
  fusion: FusionMode;
  fusionShare: number;
  seed: number;
  /** --C auto: each head's C is chosen from these by log-loss on the held-out share; null: lr.C for all. */
  cGrid: number[] | null;
  /** Choose C and the fusion weights on k-fold held-out predictions (k > 1) instead of one held-out share. */
  selectionFolds: number;
  /** Where the fits run (workers, one per core); default: the calling thread. */
  pool?: FitPool;
  /** Fits planned and done, for progress displays; `procedure` names this training run among several. */
  progress?: FitProgress;
  procedure?: string;
  /** 'auto' (default): the TF-IDF block is solved in row space when that is cheaper (rowspace.ts). */
  solver?: 'auto' | 'rowspace' | 'columns';
  /**
   * 'full' (L-BFGS over every class × column), 'support' (support-head.ts: weights only where a term and a class
   * go together, epochs chosen on held-out log-loss; a TF-IDF-only head), or 'auto' (default): full, unless a
   * TF-IDF-only head's full weights would not fit in `memoryBytes`.
   */
  headKind?: 'auto' | 'full' | 'support';
  /** With one held-out share, stop each head's C path once its C values cannot win (default true; selection.ts). */
  stopPaths?: boolean;
  /** Memory the fits may use, in bytes (default: unbounded); a head whose fits need more fails before fitting. */
  memoryBytes?: number;
  /** Fits that may run at once (the pool's size), for the memory check. */
  jobs?: number;
  /**
   * Labels the held-out splits are stratified on, one per row (default: the labels trained on). A path bundle's
   * top-level head set passes the full paths, so its held-out rows are the main head's and the two calibrate together.
   */
  strata?: string[];
  /**
   * The TF-IDF block's vectorizers, already fitted (default: fitted here on the rows trained on). A bundle's
   * attributes use the category model's, fitted on the same rows, so one tfidf.json serves every target.
   */
  tfidfModel?: TfidfBlockModel;
  /**
   * One row-space basis for the heads of every target trained on the same rows and TF-IDF (shared-basis.ts): a
   * design it covers takes its basis from there instead of building its own.
   */
  sharedBasis?: SharedBasis;
  /**
   * Choose the class to answer from the fused probabilities divided by the class prior to a power chosen for held-out
   * macro-F1 (choosePriorShift), where held-out predictions are made; the probabilities themselves stay as they are
   * (default true; a path bundle passes false: its answer is a path, not a class).
   */
  priorShift?: boolean;
  /**
   * Raise the classes a row's text names by a weight fitted on the held-out predictions (name-match.ts), where they
   * are made and its test keeps it (default true; a path bundle passes false).
   */
  nameMatch?: boolean;
}

/**
 * Puts a design's TF-IDF block in row space where that is cheaper (useRowSpace): in the shared basis when it covers
 * the design's rows (weighed at the basis's width, already paid for), else in a basis of its own.
 */
async function placeInRowSpace(design: HeadDesign, designRows: CollectedRow[], tfidf: TfidfBlockModel, settings: Pick<HeadSettings, 'sharedBasis' | 'solver'>, pool: FitPool): Promise<void> {
  if (!design.sparse) return;
  const shared = settings.sharedBasis?.covers(designRows, tfidf) ? settings.sharedBasis : null;
  if (!useRowSpace(design, settings.solver ?? 'auto', shared ? shared.width : null)) return;
  if (shared && (await shared.attach(design))) return;
  design.basis = await pool.basis(design.sparse, design.distinct);
}

export interface TrainedHead {
  /** Classes this head knows (sorted), a subset of the run's classes on a split missing some. */
  classes: string[];
  /** Layout without model references (the caller adds them). */
  blocks: FeatureBlock[];
  layout: FeatureLayout;
  means: Record<string, Float64Array>;
  tfidf: TfidfBlockModel;
  /** Over the head's whole input: the dense part's statistics, then mean 0 and scale 1 for the TF-IDF block. */
  scaler: StandardScalerParams;
  /** The fit (a support head's coef is empty: its weights are in `support`). */
  model: LogisticFit;
  /** A support head's weights over the TF-IDF block (support-head.ts), or absent. */
  support?: Pick<SupportFit, 'colptr' | 'classIndex' | 'values' | 'intercept'>;
}

function layoutBlocks(kinds: readonly FeatureKind[], dims: HeadSettings['dims'], tfidf: TfidfBlockModel): FeatureBlock[] {
  const blocks: FeatureBlock[] = [];
  let offset = 0;
  for (const kind of canonicalKinds(kinds)) {
    const dim = kind === 'tfidf' ? tfidfBlockDim(tfidf) : dims[kind];
    if (!dim) throw new UsageError(`feature '${kind}' has no ${kind} model`, 'features');
    // Model references and preprocessing are filled in by the caller, who knows the models.
    blocks.push({ kind, offset, dim } as FeatureBlock);
    offset += dim;
  }
  return blocks;
}

/** The rows' TF-IDF block as CSR (an empty text is an empty row), in arrays from the given allocators. */
export function tfidfCsr(rows: CollectedRow[], tfidf: TfidfBlockModel, ints: (len: number) => Int32Array, floats: (len: number) => Float64Array): CsrBlock {
  const parts = rows.map((r) => (r.text === '' ? null : tfidfBlockRow(tfidf, r.text)));
  const indptr = ints(rows.length + 1);
  parts.forEach((p, i) => (indptr[i + 1] = indptr[i]! + (p?.indices.length ?? 0)));
  const indices = ints(indptr[rows.length]!);
  const values = floats(indices.length);
  parts.forEach((p, i) => {
    if (!p) return;
    indices.set(p.indices, indptr[i]!);
    values.set(p.values, indptr[i]!);
  });
  return { dim: tfidfBlockDim(tfidf), indptr, indices, values, parts: Int32Array.from(tfidf.char ? [0, tfidf.word.terms.length] : [0]) };
}

/** Fits the TF-IDF block's vectorizers (word, and character n-grams when asked) on the rows' texts. */
export function fitTfidfBlock(rows: CollectedRow[], settings: Pick<HeadSettings, 'tfidf' | 'charTfidf'>): TfidfBlockModel {
  const texts = rows.map((r) => r.text);
  return { word: fitTfidf(texts, settings.tfidf), char: settings.charTfidf ? fitTfidf(texts, settings.charTfidf) : null };
}

/** Block kinds in layout order (text, image, tfidf): a head's input is its blocks in this order. */
export function canonicalKinds(features: readonly FeatureKind[]): FeatureKind[] {
  return (['text', 'image', 'tfidf'] as const).filter((k) => features.includes(k));
}

/** The modality groups a feature set splits into for late fusion: text (dense text and TF-IDF) and image. */
export function modalityGroups(features: readonly FeatureKind[]): { name: 'text' | 'image'; kinds: FeatureKind[] }[] {
  const text = canonicalKinds(features).filter((k) => k === 'text' || k === 'tfidf');
  const image = canonicalKinds(features).filter((k) => k === 'image');
  return [
    ...(text.length ? [{ name: 'text' as const, kinds: text }] : []),
    ...(image.length ? [{ name: 'image' as const, kinds: image }] : []),
  ];
}

/**
 * How text and image are combined. 'late': a head per modality, log-linear fusion with a learned weight. 'early':
 * those heads for rows missing a modality, and one head over [TF-IDF | w × standardised image] (w and C chosen on
 * held-out rows) for rows that have both. 'auto': late or early, whichever predicts the held-out rows that have both
 * better (log-loss, then macro-F1); then the text head alone instead where it predicts every held-out row at least as
 * well (macro-F1, chooseTextAlone). 'joint': one head over every block for every row.
 */
export type FusionMode = 'late' | 'early' | 'auto' | 'joint';

/**
 * Early fusion's image block weights tried, as multiples of the weight that makes the standardised image block as long
 * as the text's part of the row (earlyBlockWeight). Unweighted, a 1,280-d standardised block is ~36 units long beside a
 * TF-IDF row of L2-normalised parts (word, characters: sqrt(2)), and its columns would take the penalty's whole budget.
 */
export const EARLY_BLOCK_SCALES: readonly number[] = [0.5, 1, 2, 4];

/**
 * The image block weight at which w × its standardised row (length ~sqrt(d)) is `scale` times as long as the text's
 * part: the TF-IDF block's L2-normalised parts (length 1 each) and a standardised dense text block (~sqrt(d)).
 */
export function earlyBlockWeight(scale: number, blocks: { imageDim: number; textDim: number; tfidfParts: number }): number {
  const text = Math.sqrt(blocks.textDim + blocks.tfidfParts);
  return (scale * text) / Math.sqrt(blocks.imageDim);
}

/** Whether a row has a block: text for tfidf, an embedding for text or image. */
function hasBlock(r: Pick<CollectedRow, 'text' | 'vectors'>, k: FeatureKind): boolean {
  return k === 'tfidf' ? r.text !== '' : r.vectors[k] !== undefined;
}

/** Whether a row has every block of `kinds` (the rows early fusion's joint head is fitted on and routed). */
export function rowHasAll(r: Pick<CollectedRow, 'text' | 'vectors'>, kinds: readonly FeatureKind[]): boolean {
  return kinds.every((k) => hasBlock(r, k));
}

/** Whether a row has any of these blocks. */
export function rowHas(r: Pick<CollectedRow, 'text' | 'vectors'>, kinds: readonly FeatureKind[]): boolean {
  return kinds.some((k) => hasBlock(r, k));
}

export interface FittedHead {
  name: string;
  kinds: FeatureKind[];
  /** The regularisation it was fitted with (chosen per head with --C auto). */
  C: number;
  head: TrainedHead;
  weight: number;
  /** The TF-IDF block was solved in row space (rowspace.ts). */
  rowSpace: boolean;
  /** A support head (C is NaN): its epochs, and the held-out log-loss per epoch of each split they were chosen on. */
  support: { epochs: number; heldOut: { rows: number; logLoss: number[] }[] } | null;
  /**
   * Early fusion: 'complete' (the joint head) scores only rows that have every block, 'incomplete' (the per-modality
   * heads) only rows missing one; absent: every row that has the head's modality.
   */
  route?: 'complete' | 'incomplete';
  /** Early fusion's joint head: the weight its image block was given. */
  blockWeight?: number;
}

/** Early fusion as selection saw it: the weight and C chosen, and both kinds' figures on the held-out rows that have both modalities. */
export interface EarlySelection {
  /** Whether it was chosen over late fusion (or asked for with fusion 'early'). */
  chosen: boolean;
  blockWeight: number;
  C: number;
  rows: number;
  early: { macroF1: number; logLoss: number };
  late: { macroF1: number; logLoss: number };
  /** Each (block weight, C) tried with its held-out log-loss. */
  trials: { blockWeight: number; C: number; logLoss: number }[];
  /** Each block weight at its chosen C: held-out log-loss (what chose the weight) and macro-F1, on the same rows. */
  weights: { blockWeight: number; C: number; logLoss: number; macroF1: number }[];
}

export interface FusionSelection {
  /** Rows the weights were chosen on (the held-out rows that have both modalities). */
  rows: number;
  /** Held-out share (when folds is 0). */
  share: number;
  /** k of the k-fold cross-fitting the choice was made on; 0: one held-out share. */
  folds: number;
  seed: number;
  /** Per head, its weight, its C and its own macro-F1 on those rows. */
  heads: { name: string; weight: number; C: number; macroF1: number }[];
  /** The chosen fusion on those rows (null for a single head). */
  fused: { macroF1: number; logLoss: number } | null;
  candidates: WeightCandidate[];
  /** Each C tried per head (--C auto) with its held-out log-loss. */
  cTrials: CTrial[];
  /** Early fusion's candidate (fusion 'early' or 'auto' with text and image), or absent. */
  early?: EarlySelection;
  /** The logit adjustment (selection.ts choosePriorShift): the prior's exponent chosen and each one's held-out figures. */
  prior?: Pick<PriorShift, 'alpha' | 'trials'>;
  /**
   * Fusion 'auto' with text and image: the text head alone against the fusion chosen, or absent (chooseTextAlone).
   * Where it is chosen, the heads' weights are 1 and 0; `heads` keeps late fusion's own choice.
   */
  textAlone?: TextAloneSelection;
}

/**
 * The text head alone (weights 1 and 0: the image head answers only rows without text) against the fusion chosen
 * (late or early), on every held-out row: held-out macro-F1 of their most probable classes, a tie to the text head.
 */
export interface TextAloneSelection {
  chosen: boolean;
  rows: number;
  text: { macroF1: number; logLoss: number };
  fused: { macroF1: number; logLoss: number };
}

export interface TrainedModel {
  classes: string[];
  tfidf: TfidfBlockModel;
  /** The full layout: every block, in bundle order. */
  blocks: FeatureBlock[];
  means: Record<string, Float64Array>;
  heads: FittedHead[];
  /** How the fusion weights were chosen; null for a single head. */
  selection: FusionSelection | null;
  /** The temperature fitted on the selection's held-out predictions, or null when there were none (calibration.ts). */
  calibration: ModelCalibration | null;
}

/** A model's temperature and the held-out predictions it was fitted on. */
export interface ModelCalibration {
  fit: TemperatureFit;
  test: CalibrationTest;
  /** The temperature applied: fit's where test keeps it, else 1. */
  temperature: number;
  before: CalibrationFigures;
  after: CalibrationFigures;
  /**
   * The held-out rows (indices into the rows trained on) and their fused probabilities (rows × classes): raw, after
   * the name match (the raw ones where there is none: what the temperature and the prior shift were fitted on), and
   * calibrated.
   */
  heldOut: { rows: Int32Array; raw: Float64Array; named: Float64Array; probs: Float64Array };
  /** The name-match step as fitted, its test and the classes whose names count (absent: not tried, HeadSettings.nameMatch). */
  nameMatch?: { fitted: number; beta: number; classes: string[]; test: CalibrationTest };
  /** The decision's shift against the class prior, chosen on the named ones (absent: not tried, HeadSettings.priorShift). */
  prior?: PriorShift;
}

/**
 * The fused held-out probabilities at the chosen C values and weights (each row from the heads that predicted it),
 * the name match (classes the rows' texts name), the prior shift and the temperature fitted on them, and the figures
 * before and after. Null when a head has no held-out predictions (a support head, or no selection).
 */
function calibrateHeldOut(
  heldOut: (Map<number, Float64Array> | null)[],
  weights: number[],
  y: Int32Array,
  classes: string[],
  complete: Map<number, Float64Array> | null,
  steps: { shift: { seed: number } | null; texts: readonly string[] | null },
): ModelCalibration | null {
  if (heldOut.length === 0 || heldOut.some((h) => h === null)) return null;
  const rows = heldOutRows(heldOut as Map<number, Float64Array>[]);
  if (rows.length === 0) return null;
  const K = classes.length;
  const raw = new Float64Array(rows.length * K);
  rows.forEach((r, i) => raw.set(fusedHeldOut(heldOut as Map<number, Float64Array>[], weights, classes, complete, r), i * K));
  const yRows = Int32Array.from(rows, (r) => y[r]!);
  const names = steps.texts ? heldOutNameMatch(raw, rows, yRows, y, classes, steps.texts) : null;
  const named = names?.probs ?? raw;
  const prior = steps.shift ? choosePriorShift(named, yRows, K, classPrior(y, K), steps.shift.seed) : null;
  const { probs, ...calibration } = calibrateTemperature(named, yRows, K);
  // Before: the fused probabilities as the heads give them; the name match is a calibration step.
  const before = names ? calibrationFigures(raw, yRows, K) : calibration.before;
  return { ...calibration, before, heldOut: { rows, raw, named, probs }, ...(prior ? { prior } : {}), ...(names ? { nameMatch: names.step } : {}) };
}

/**
 * The name-match step on held-out rows: the classes whose names count (from every training row's text and label),
 * beta fitted on the held-out rows' fused probabilities, and its likelihood-ratio test; `probs` the rows with it
 * applied where the test keeps it.
 */
function heldOutNameMatch(raw: Float64Array, rows: Int32Array, yRows: Int32Array, y: Int32Array, classes: string[], texts: readonly string[]): { step: NonNullable<ModelCalibration['nameMatch']>; probs: Float64Array | null } {
  const K = classes.length;
  const counted = countedNames(classes, texts, y);
  const names = new ClassNames(classes, counted);
  const mentioned = Array.from(rows, (r) => names.mentioned(texts[r]!));
  const fit = fitNameMatch(raw, mentioned, yRows, K);
  const test = likelihoodRatioTest(fit.lossWithout, fit.lossWith, 1);
  const beta = test.kept ? fit.beta : 0;
  let probs: Float64Array | null = null;
  if (beta > 0) {
    probs = new Float64Array(raw.length);
    mentioned.forEach((m, i) => applyNameMatch(raw.subarray(i * K, (i + 1) * K), m, beta, probs!.subarray(i * K, (i + 1) * K)));
  }
  return { step: { fitted: fit.beta, beta, classes: counted, test }, probs };
}

/**
 * Early fusion's candidate: one head over every block, fitted on the rows that have them all, its image block weighted
 * by EARLY_BLOCK_SCALES' weights in ascending order at the text head's C (until they stop as a C path does), the
 * weight with the least held-out log-loss kept and
 * its C then chosen among the grid's values within a factor of 10 of the text head's (held-out log-loss, the same
 * splits as the late heads). It is chosen ('auto') when it predicts those held-out rows better than late fusion does
 * (log-loss, then macro-F1), then refitted on all its rows; with 'early' it always is.
 */
async function selectEarly(
  rows: CollectedRow[],
  y: Int32Array,
  classes: string[],
  tfidf: TfidfBlockModel,
  settings: HeadSettings,
  pool: FitPool,
  splits: Split[],
  grid: number[],
  textC: number,
  lr: FitOptions,
  progress: { procedure: string; report: FitProgress['report'] },
  late: (r: number) => ArrayLike<number>,
): Promise<{ selection: EarlySelection; refit: (() => Promise<FittedHead>) | null; heldOut: Map<number, Float64Array> | null }> {
  const kinds = canonicalKinds(settings.features);
  const idx = Int32Array.from(rows.keys()).filter((i) => rowHasAll(rows[i]!, kinds));
  const base = headDesign(rows, idx, y, classes.length, kinds, settings.dims, tfidf);
  await placeInRowSpace(base, Array.from(idx, (i) => rows[i]!), tfidf, settings, pool);
  checkFitMemory('joint', base, settings);
  const weighted = (w: number): HeadDesign => ({ ...base, denseBlocks: base.denseBlocks.map((b) => (b.kind === 'image' ? { ...b, weight: w } : b)) });
  const shape = { imageDim: settings.dims.image ?? 0, textDim: kinds.includes('text') ? (settings.dims.text ?? 0) : 0, tfidfParts: kinds.includes('tfidf') ? (tfidf.char ? 2 : 1) : 0 };
  // Two stages: every weight at the text head's C (the text carries most of such a head), then the best weight along
  // the grid's other values within a factor of 10 of it. 4 + 2 fits a split instead of 4 × 3.
  const near = grid.filter((C) => C >= textC / 10 - 1e-12 && C <= textC * 10 + 1e-12);
  const others = near.filter((C) => C !== textC);
  const select = (design: HeadDesign, Cs: number[], init: Solution | null) => selectHeadC(pool, { name: 'joint', design, rows: idx }, splits, Cs, lr, y, progress, settings.stopPaths ?? true, init);
  // The weights in ascending order, each fit starting where the one before ended, its image weights divided by the
  // weights' ratio (the same logits): the same optima, reached in fewer iterations than from zeros.
  // The weights stop as a head's path of C values does (PATH_STOP_RISES): after two rises in a row past the least so
  // far, or one beyond noise of it; the weights after it, the slowest fits, could not win on that U-shaped curve.
  // Every split's held-out rows are in each weight's figures, so this holds with k folds too.
  const atTextC: { w: number; design: HeadDesign; chosen: CSelection; logLoss: number }[] = [];
  const weights = EARLY_BLOCK_SCALES.map((c) => earlyBlockWeight(c, shape));
  const stop = (settings.stopPaths ?? true) ? new RiseStop(PATH_STOP_RISES) : null;
  for (const w of weights) {
    if (stop?.done) break;
    const design = weighted(w);
    const before = atTextC[atTextC.length - 1];
    const chosen = await select(design, [textC], before?.chosen.start ? reweighedImage(before.chosen.start, design, before.w / w) : null);
    atTextC.push({ w, design, chosen, logLoss: chosen.trials[0]!.logLoss });
    stop?.add(heldOutRowLosses(chosen.heldOut, y));
  }
  // The least held-out log-loss; on a tie the smaller weight (the list is ascending).
  const bestW = atTextC.reduce((a, b) => (b.logLoss < a.logLoss ? b : a));
  // The other C values start from the chosen weight's fit at the text head's C.
  const along = others.length > 0 ? await select(bestW.design, others, bestW.chosen.start) : null;
  // The text head's C at that weight, or the best of the others: the same rule as a head's C (chooseC).
  const alongWins = along !== null && chooseC([bestW.chosen.heldOut, along.heldOut], y, classes.length).best === 1;
  const best = { w: bestW.w, design: bestW.design, chosen: alongWins ? along : bestW.chosen };
  // The planned fits count every weight × the whole grid: the ones not run are reported skipped, as a stopped path's are.
  const unrun = (EARLY_BLOCK_SCALES.length * grid.length - atTextC.length - others.length) * splits.length;
  const skip = grid.find((C) => !near.includes(C)) ?? textC;
  for (let k = 0; k < unrun; k++) progress.report({ procedure: progress.procedure, head: 'joint', C: skip, final: false, event: { type: 'skipped', C: skip } });
  const held = [...best.chosen.heldOut.keys()].sort((a, b) => a - b);
  const early = heldOutFigures(held, (r) => best.chosen.heldOut.get(r)!, y, classes.length);
  const lateFigures = heldOutFigures(held, late, y, classes.length);
  // Log-loss decides: late fusion's weight was chosen for its macro-F1 on these very rows, which flatters that figure.
  const chosen = settings.fusion === 'early' || early.logLoss < lateFigures.logLoss || (early.logLoss === lateFigures.logLoss && early.macroF1 > lateFigures.macroF1);
  const selection: EarlySelection = {
    chosen,
    blockWeight: best.w,
    C: best.chosen.C,
    rows: held.length,
    early,
    late: lateFigures,
    trials: [
      ...atTextC.map((t) => ({ blockWeight: t.w, C: textC, logLoss: t.logLoss })),
      ...(along?.trials ?? []).map((c) => ({ blockWeight: bestW.w, C: c.C, logLoss: c.logLoss })),
    ],
    weights: atTextC.map((t) => ({ blockWeight: t.w, C: textC, ...heldOutFigures(held, (r) => t.chosen.heldOut.get(r)!, y, classes.length) })),
  };
  if (!chosen) {
    skipJointFit(progress, best.chosen.C);
    return { selection, refit: null, heldOut: null };
  }
  // The refit on every row is left to the caller, which may still choose the text head alone (chooseTextAlone).
  const refit = async (): Promise<FittedHead> => {
    const all = Int32Array.from({ length: best.design.n }, (_, i) => i);
    checkTwoClasses('joint', best.design, all);
    const C = best.chosen.C;
    const res = await pool.path(best.design, { train: all, test: new Int32Array(0), Cs: [C], lr: { ...settings.lr, threads: 1 }, keep: true, init: best.chosen.start ?? undefined }, (event) =>
      progress.report({ procedure: progress.procedure, head: 'joint', C, final: true, event }),
    );
    return {
      name: 'joint',
      kinds,
      C,
      head: trainedHead(res.head!, classes, kinds, settings.dims, tfidf, best.design),
      weight: 1,
      rowSpace: best.design.basis !== null,
      support: null,
      route: 'complete',
      blockWeight: best.w,
    };
  };
  return { selection, refit, heldOut: best.chosen.heldOut };
}

/** Reports early fusion's refit on every row as skipped (its kind not chosen), so the planned fits add up. */
function skipJointFit(progress: { procedure: string; report: FitProgress['report'] }, C: number): void {
  progress.report({ procedure: progress.procedure, head: 'joint', C, final: true, event: { type: 'skipped', C } });
}

/** A solution of a joint design with its image block's weights multiplied by `factor` (the rest as is). */
export function reweighedImage(solution: Solution, design: HeadDesign, factor: number): Solution {
  const width = solverWidth(design);
  let offset = 0;
  for (const b of design.denseBlocks) {
    if (b.kind === 'image') break;
    offset += b.dim;
  }
  const image = design.denseBlocks.find((b) => b.kind === 'image');
  const coef = solution.coef.slice();
  if (image) for (let k = 0; k < solution.classIndex.length; k++) for (let j = 0; j < image.dim; j++) coef[k * width + offset + j] *= factor;
  return { ...solution, coef };
}

/** Every row some head predicted held out, ascending. */
function heldOutRows(heldOut: Map<number, Float64Array>[]): Int32Array {
  return Int32Array.from(new Set(heldOut.flatMap((h) => [...h.keys()]))).sort();
}

/** A held-out row's fused probabilities: early fusion's joint head where it predicted the row, else late fusion. */
function fusedHeldOut(heldOut: Map<number, Float64Array>[], weights: number[], classes: string[], complete: Map<number, Float64Array> | null, r: number): ArrayLike<number> {
  return complete?.get(r) ?? lateFused(heldOut, weights, classes, r);
}

/**
 * Fusion 'auto': the text head alone (weights 1 and 0 over the late heads, text first) against the fusion chosen, on
 * every held-out row, by held-out macro-F1; a tie goes to the text head, the simpler of the two. Fusion chose its kind
 * by log-loss, which the frequent values carry: where the photos tell nothing the title does not (gender, a colour the
 * title names), they can still take a value seen a few times from its right answers, which macro-F1 weighs in full.
 */
export function chooseTextAlone(heldOut: Map<number, Float64Array>[], weights: number[], classes: string[], complete: Map<number, Float64Array> | null, y: ArrayLike<number>): TextAloneSelection {
  const rows = Array.from(heldOutRows(heldOut));
  const textOnly = weights.map((_, k) => (k === 0 ? 1 : 0));
  const text = heldOutFigures(rows, (r) => lateFused(heldOut, textOnly, classes, r), y, classes.length);
  const fused = heldOutFigures(rows, (r) => fusedHeldOut(heldOut, weights, classes, complete, r), y, classes.length);
  return { chosen: text.macroF1 >= fused.macroF1, rows: rows.length, text, fused };
}

/** A held-out row's late-fused probabilities (over the heads that predicted it). */
function lateFused(heldOut: Map<number, Float64Array>[], weights: number[], classes: string[], r: number): Float32Array {
  return fuseHeads(heldOut.map((h, k) => ({ classes, weight: weights[k]!, probs: h.get(r) ?? null })), classes)!;
}

/**
 * Stopping rules of the fits that choose C and the fusion weights: scikit-learn's default tol on max |gradient|
 * and scipy's default relative-decrease test (factr 1e7, which scikit-learn 1.2 leaves in place), whichever
 * kernel computes the objective, so small heads are not solved far past what the choice needs.
 */
const SELECTION_TOL = 1e-4;
const SELECTION_FTOL = SCIPY_DEFAULT_FTOL;

/**
 * What a procedure fits: a head per modality with late fusion of text and image, else one joint head; and the C
 * grid it selects over (none when there is one head and one C).
 */
function procedurePlan(settings: Pick<HeadSettings, 'features' | 'fusion' | 'cGrid' | 'lr'>): { late: boolean; groups: { name: string; kinds: FeatureKind[] }[]; grid: number[] | null } {
  const late = modalityGroups(settings.features).length > 1 && settings.fusion !== 'joint';
  const groups = late ? modalityGroups(settings.features) : [{ name: 'joint', kinds: canonicalKinds(settings.features) }];
  const selecting = late || (settings.cGrid !== null && settings.cGrid.length > 1);
  return { late, groups, grid: selecting ? (settings.cGrid ?? [settings.lr.C ?? 1]) : null };
}

/** Fits a procedure runs: each head's path over the grid on every split, then each head once on all rows. */
export function plannedFits(
  settings: Pick<HeadSettings, 'features' | 'fusion' | 'cGrid' | 'lr' | 'selectionFolds' | 'headKind'>,
  support: boolean[] = procedurePlan(settings).groups.map(() => settings.headKind === 'support'),
): PlannedFit[] {
  const { groups, grid } = procedurePlan(settings);
  const splits = settings.selectionFolds > 1 ? settings.selectionFolds : 1;
  const early = plansEarly(settings, grid, support)
    ? [...EARLY_BLOCK_SCALES.flatMap(() => Array.from({ length: splits }, () => grid!.map((C) => ({ head: 'joint', C, final: false }))).flat()), { head: 'joint', C: null, final: true }]
    : [];
  return [...groups.flatMap(({ name: head }, g) => [
    // A support head runs one fit per split (its epochs, C NaN), even with a fixed C: a held-out share then.
    ...(support[g] ? Array.from({ length: grid ? splits : 1 }, () => ({ head, C: NaN, final: false })) : []),
    ...(grid && !support[g] ? Array.from({ length: splits }, () => grid.map((C) => ({ head, C, final: false }))).flat() : []),
    { head, C: null, final: true },
  ]), ...early];
}

/** Whether a procedure selects an early-fusion head too: text and image, fusion 'early' or 'auto', C selected, no support head. */
function plansEarly(settings: Pick<HeadSettings, 'features' | 'fusion'>, grid: number[] | null, support: boolean[]): boolean {
  return modalityGroups(settings.features).length > 1 && (settings.fusion === 'early' || settings.fusion === 'auto') && grid !== null && !support.some(Boolean);
}

/**
 * Whether a head's TF-IDF block is solved in row space: as asked, or ('auto') where that is cheaper, in the shared
 * basis when one covers its rows (`sharedWidth`: its width), else in a basis of its own.
 */
function useRowSpace(design: HeadDesign, solver: 'auto' | 'rowspace' | 'columns', sharedWidth: number | null = null): boolean {
  if (solver !== 'auto') return solver === 'rowspace';
  const dd = design.denseBlocks.reduce((s, b) => s + b.dim, 0);
  return rowSpaceIsCheaper(design.distinct.length, dd, design.sparse!.dim, design.sparse!.indptr[design.n]!, design.nClasses, sharedWidth);
}

/**
 * Bytes one fit of a design holds at its peak, roughly: L-BFGS keeps about 25 copies of the parameters (x, g, d,
 * trial points, 2 × 10 correction pairs), the loss kernel a few more, in float64.
 */
function fitBytes(design: HeadDesign, width = solverWidth(design)): number {
  return 30 * 8 * design.nClasses * (width + 1);
}

/**
 * Refuses, before any fit, a head whose fits cannot fit in memory (a 5,000-class head over a 700,000-term
 * vocabulary is 3.5 billion weights): a one-line error with what to change, instead of an allocation failure
 * an hour in.
 */
function checkFitMemory(name: string, design: HeadDesign, settings: Pick<HeadSettings, 'memoryBytes' | 'jobs'>): void {
  const budget = settings.memoryBytes;
  if (budget === undefined) return;
  const need = fitBytes(design);
  const jobs = Math.max(1, settings.jobs ?? 1);
  if (need * jobs <= budget) return;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(b < 10 * 2 ** 30 ? 1 : 0)} GB`;
  const weights = design.nClasses * solverWidth(design);
  const what = `the ${name} head would fit ${design.nClasses.toLocaleString('en')} classes × ${solverWidth(design).toLocaleString('en')} columns (${weights.toLocaleString('en')} weights; about ${gb(need)} per fit)`;
  if (need <= budget) throw new UsageError(`${what}: ${jobs} at once need more than the ${gb(budget)} available; use --jobs ${Math.max(1, Math.floor(budget / need))}`, 'head_too_large');
  throw new UsageError(`${what}, more than the ${gb(budget)} available: shrink the TF-IDF vocabulary (--max-features, --min-df, --char-max-features, --char-ngram-range none) or the classes`, 'head_too_large');
}

/**
 * Whether a head is a support head: as asked (--head support: a TF-IDF-only head, one per procedure), or ('auto')
 * a TF-IDF-only head whose full weights would not fit in memory, which a full head would refuse to fit.
 */
function useSupportHead(name: string, design: HeadDesign, settings: Pick<HeadSettings, 'headKind' | 'memoryBytes' | 'jobs' | 'solver'>, late: boolean): boolean {
  const kind = settings.headKind ?? 'auto';
  if (kind === 'full') return false;
  const tfidfOnly = design.sparse !== null && design.denseBlocks.length === 0 && !late;
  if (kind === 'support') {
    if (!tfidfOnly) throw new UsageError(`--head support fits one TF-IDF-only head: use --features tfidf (the ${name} head reads ${late ? 'one of two fused modalities' : design.denseBlocks.map((b) => b.kind).join(' and ') + ' embeddings'})`, 'features');
    return true;
  }
  const budget = settings.memoryBytes;
  if (!tfidfOnly || budget === undefined) return false;
  // The width a full head would be solved in: its distinct rows at most in row space (the basis's rank), else every column.
  const width = useRowSpace(design, settings.solver ?? 'auto') ? Math.min(design.distinct.length, design.sparse!.dim) : design.sparse!.dim;
  return fitBytes(design, width) * Math.max(1, settings.jobs ?? 1) > budget;
}

/**
 * A support head: fitted on each split's training rows until its held-out log-loss stops falling (splits run as
 * parallel pool jobs), then on every row for the mean of their best epoch counts.
 */
async function fitSupport(
  pool: FitPool,
  h: { name: string; design: HeadDesign; rows: Int32Array },
  splits: Split[],
  y: Int32Array,
  seed: number,
  progress: { procedure: string; report: FitProgress['report'] },
): Promise<{ fit: SupportFit; summary: NonNullable<FittedHead['support']> }> {
  const at = positions(h.rows, y.length);
  const report = (final: boolean) => (event: PathEvent) => progress.report({ procedure: progress.procedure, head: h.name, C: NaN, final, event });
  const held = await Promise.all(
    splits.map((split) => {
      const train = designRows(at, split.train);
      checkTwoClasses(h.name, h.design, train);
      return pool.support(h.design, { train, test: designRows(at, split.test), epochs: SUPPORT_MAX_EPOCHS, seed }, report(false));
    }),
  );
  const epochs = chosenEpochs(held);
  const all = Int32Array.from({ length: h.design.n }, (_, i) => i);
  const fit = await pool.support(h.design, { train: all, test: new Int32Array(0), epochs, seed }, report(true));
  return { fit, summary: { epochs, heldOut: held.map((f, s) => ({ rows: splits[s]!.test.length, logLoss: f.curve.map((e) => e.heldOutLoss) })) } };
}

/** A support fit as a TrainedHead over a TF-IDF-only layout (identity scaler, no dense weights). */
function supportTrainedHead(fit: SupportFit, classes: string[], blocks: FeatureBlock[], tfidf: TfidfBlockModel): TrainedHead {
  const width = blocks.reduce((s, b) => s + b.dim, 0);
  const last = fit.curve[fit.curve.length - 1]!;
  return {
    classes,
    blocks,
    layout: { blocks, width, means: new Map() },
    means: {},
    tfidf,
    scaler: { mean: new Float64Array(width), scale: new Float64Array(width).fill(1) },
    model: {
      nClasses: classes.length,
      nFeatures: width,
      coef: new Float64Array(0),
      intercept: fit.intercept,
      converged: true,
      iterations: fit.epochs,
      evaluations: fit.epochs,
      loss: last.trainLoss,
      gradMaxAbs: NaN,
      message: `support head: ${fit.classIndex.length.toLocaleString('en')} term–class weights, ${fit.epochs} epochs`,
    },
    support: fit,
  };
}

/** A head's rows and their raw blocks, in shared memory for the pool's workers. */
function headDesign(rows: CollectedRow[], idx: Int32Array, y: Int32Array, nClasses: number, kinds: FeatureKind[], dims: HeadSettings['dims'], tfidf: TfidfBlockModel): HeadDesign {
  const denseBlocks: DenseBlock[] = kinds.filter((k): k is 'text' | 'image' => k !== 'tfidf').map((kind) => ({ kind, dim: dims[kind]! }));
  const dd = denseBlocks.reduce((s, b) => s + b.dim, 0);
  const n = idx.length;
  let dense: Float32Array | null = null;
  let present: Uint8Array | null = null;
  if (dd > 0) {
    dense = sharedArray(Float32Array, n * dd);
    present = sharedArray(Uint8Array, n * denseBlocks.length);
    idx.forEach((r, i) => {
      let offset = 0;
      denseBlocks.forEach((b, k) => {
        const v = rows[r]!.vectors[b.kind];
        if (v) {
          dense!.set(v, i * dd + offset);
          present![i * denseBlocks.length + k] = 1;
        }
        offset += b.dim;
      });
    });
  }
  const sparse = kinds.includes('tfidf')
    ? tfidfCsr(Array.from(idx, (r) => rows[r]!), tfidf, (len) => sharedArray(Int32Array, len), (len) => sharedArray(Float64Array, len))
    : null;
  const { content, distinct } = distinctContent(n, dd, dense, present, sparse);
  return { n, y: Int32Array.from(idx, (r) => y[r]!), nClasses, denseBlocks, dense, present, sparse, content, distinct, basis: null };
}

/** Ids of equal rows (same embeddings, same TF-IDF row), by a digest of each row's numbers. */
function distinctContent(n: number, dd: number, dense: Float32Array | null, present: Uint8Array | null, sparse: CsrBlock | null): { content: Int32Array; distinct: Int32Array } {
  const nb = present && n > 0 ? present.length / n : 0;
  const ids = new Map<string, number>();
  const content = sharedArray(Int32Array, n);
  const distinct: number[] = [];
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (let i = 0; i < n; i++) {
    const h = crypto.createHash('sha1');
    if (dense) h.update(bytes(dense.subarray(i * dd, (i + 1) * dd))).update(bytes(present!.subarray(i * nb, (i + 1) * nb)));
    if (sparse) {
      h.update(bytes(sparse.indices.subarray(sparse.indptr[i]!, sparse.indptr[i + 1]!)));
      h.update(bytes(sparse.values.subarray(sparse.indptr[i]!, sparse.indptr[i + 1]!)));
    }
    const key = h.digest('base64');
    let id = ids.get(key);
    if (id === undefined) {
      ids.set(key, (id = distinct.length));
      distinct.push(i);
    }
    content[i] = id;
  }
  return { content, distinct: Int32Array.from(distinct) };
}

/** TrainedHead from a pool fit over `kinds` (the layout, means and scaler in the shapes the bundle writes). */
function trainedHead(params: HeadParams, classes: string[], kinds: FeatureKind[], dims: HeadSettings['dims'], tfidf: TfidfBlockModel, design: HeadDesign): TrainedHead {
  const blocks = layoutBlocks(kinds, dims, tfidf);
  const width = blocks.reduce((s, b) => s + b.dim, 0);
  const means: Record<string, Float64Array> = {};
  design.denseBlocks.forEach((b, k) => (means[b.kind] = params.means[k]!));
  const scaler: StandardScalerParams = { mean: new Float64Array(width), scale: new Float64Array(width).fill(1) };
  scaler.mean.set(params.scaler.mean);
  scaler.scale.set(params.scaler.scale);
  const K = params.classIndex.length;
  return {
    classes: Array.from(params.classIndex, (k) => classes[k]!),
    blocks,
    layout: { blocks, width, means: new Map(Object.entries(means).map(([k, v]) => [k as FeatureKind, Float32Array.from(v)])) },
    means,
    tfidf,
    scaler,
    model: {
      nClasses: K,
      nFeatures: width,
      coef: params.coef,
      intercept: params.intercept,
      converged: params.fit.converged,
      iterations: params.fit.iterations,
      evaluations: params.fit.evaluations,
      loss: params.fit.loss,
      gradMaxAbs: NaN,
      message: params.fit.message,
    },
  };
}

/**
 * The whole classifier. One modality (or fusion 'joint'): one head over every block. Text and image with fusion
 * 'late': a head per modality, each fitted on the rows that have it, so a row missing one is predicted from
 * the other as well as that head can. C per head and the fusion weight are chosen on held-out predictions
 * (k folds, or a stratified share), then the heads are refitted on all rows.
 */
export async function trainModel(rows: CollectedRow[], labels: string[], settings: HeadSettings): Promise<TrainedModel> {
  const classes = fitLabelEncoder(labels);
  if (classes.length < 2) throw new UsageError(`training needs at least two classes, found ${classes.length}`, 'one_class');
  const ownPool = settings.pool ? null : new FitPool(0);
  const pool = settings.pool ?? ownPool!;
  const progress = settings.progress ?? silentFitProgress;
  const procedure = settings.procedure ?? 'train';
  // This procedure's fits, reported under its name.
  const report = { procedure, report: (e: Parameters<FitProgress['report']>[0]) => progress.report(e) };
  try {
    const tfidf = settings.tfidfModel ?? fitTfidfBlock(rows, settings);
    const blocks = layoutBlocks(settings.features, settings.dims, tfidf);
    const means = blockMeans(rows, blocks.filter((b) => b.kind !== 'tfidf'));
    const { late, groups, grid } = procedurePlan(settings);
    const y = encodeLabels(classes, labels);
    // Splits are stratified on the labels, or on the strata given (the same splits as another model's).
    const strataCodes = settings.strata ? encodeLabels(fitLabelEncoder(settings.strata), settings.strata) : y;
    // Duplicate listings (the same normalised text) stay on one side of every held-out split.
    const dupes = duplicateGroups(rows.map((r) => r.text));
    // Designs first: whether a head is a support head (and so which fits it runs) depends on its size.
    const designs = groups.map((g) => {
      const idx = Int32Array.from(rows.keys()).filter((i) => g.name === 'joint' || rowHas(rows[i]!, g.kinds));
      const design = headDesign(rows, idx, y, classes.length, g.kinds, settings.dims, tfidf);
      return { idx, design, support: useSupportHead(g.name, design, settings, late) };
    });
    progress.plan(plannedFits(settings, designs.map((d) => d.support)));
    const fixedC = settings.lr.C ?? 1;
    const selectionLr: FitOptions = { ...settings.lr, threads: 1, tol: Math.max(settings.lr.tol ?? 0, SELECTION_TOL), ftol: Math.max(settings.lr.ftol ?? 0, SELECTION_FTOL) };
    const selecting = grid !== null;
    // Held-out predictions for choosing: a stratified share, or (small catalogs) k folds so every row counts once.
    const splits = !selecting ? [] : settings.selectionFolds > 1 ? stratifiedKFold(strataCodes, settings.selectionFolds, settings.seed, dupes) : [stratifiedHoldout(strataCodes, settings.fusionShare, settings.seed, dupes)];
    // Each head goes from its design to its final fit on its own (the fusion weight is only needed at the end), so
    // one head's row-space basis or long path never holds up the other head's fits.
    const heads = await Promise.all(
      groups.map(async (g, gi) => {
        const { idx, design, support } = designs[gi]!;
        if (support) {
          // Epochs are chosen on held-out rows even with a fixed C (which a support head does not use).
          const held = splits.length > 0 ? splits : [stratifiedHoldout(strataCodes, settings.fusionShare, settings.seed, dupes)];
          const fitted = await fitSupport(pool, { name: g.name, design, rows: idx }, held, y, settings.seed, report);
          const blocks = layoutBlocks(g.kinds, settings.dims, tfidf);
          return { g, C: NaN, chosen: null, head: supportTrainedHead(fitted.fit, classes, blocks, tfidf), rowSpace: false, support: fitted.summary };
        }
        await placeInRowSpace(design, Array.from(idx, (i) => rows[i]!), tfidf, settings, pool);
        checkFitMemory(g.name, design, settings);
        const chosen = selecting ? await selectHeadC(pool, { name: g.name, design, rows: idx }, splits, grid!, selectionLr, y, report, settings.stopPaths ?? true) : null;
        const all = Int32Array.from({ length: design.n }, (_, i) => i);
        checkTwoClasses(g.name, design, all);
        const C = chosen?.C ?? fixedC;
        // From the mean of the selection fits at this C, as scikit-learn's refit: the same optimum, fewer iterations.
        const res = await pool.path(design, { train: all, test: new Int32Array(0), Cs: [C], lr: { ...settings.lr, threads: 1 }, keep: true, init: chosen?.start ?? undefined }, (event) =>
          progress.report({ procedure, head: g.name, C, final: true, event }),
        );
        return { g, C, chosen, head: trainedHead(res.head!, classes, g.kinds, settings.dims, tfidf, design), rowSpace: design.basis !== null, support: null };
      }),
    );
    let selection: FusionSelection | null = null;
    let weights = groups.map(() => 1 / groups.length);
    if (selecting) {
      const base = { rows: splits.reduce((s, f) => s + f.test.length, 0), share: settings.fusionShare, folds: splits.length > 1 ? splits.length : 0, seed: settings.seed, cTrials: heads.flatMap((h) => h.chosen?.trials ?? []) };
      const fusion = late ? selectFusionWeight(heads.map((h) => h.chosen!.heldOut), y, classes) : null;
      if (fusion) {
        weights = fusion.weights;
        const alone = (h: number) => fusion.candidates.find((c) => c.w === (h === 0 ? 1 : 0))!.macroF1;
        selection = {
          ...base,
          rows: fusion.rows,
          heads: heads.map((h, k) => ({ name: h.g.name, weight: weights[k]!, C: h.C, macroF1: alone(k) })),
          fused: { macroF1: fusion.best.macroF1, logLoss: fusion.best.logLoss },
          candidates: fusion.candidates,
        };
      }
      selection ??= { ...base, heads: heads.map((h, k) => ({ name: h.g.name, weight: weights[k]!, C: h.C, macroF1: NaN })), fused: null, candidates: [] };
    }
    const fitted = heads.map((h, k): FittedHead => ({ name: h.g.name, kinds: h.g.kinds, C: h.C, head: h.head, weight: late ? weights[k]! : 1, rowSpace: h.rowSpace, support: h.support }));
    let complete: Map<number, Float64Array> | null = null;
    let joint: { refit: () => Promise<FittedHead>; C: number } | null = null;
    if (plansEarly(settings, grid, designs.map((d) => d.support)) && selection) {
      const lateHeldOut = heads.map((h) => h.chosen!.heldOut);
      const textC = heads.find((h) => h.g.name === 'text')!.C;
      const early = await selectEarly(rows, y, classes, tfidf, settings, pool, splits, grid!, textC, selectionLr, report, (r) => lateFused(lateHeldOut, weights, classes, r));
      selection.early = early.selection;
      if (early.refit) {
        joint = { refit: early.refit, C: early.selection.C };
        complete = early.heldOut;
      }
    }
    if (settings.fusion === 'auto' && late && selection && groups[0]!.name === 'text' && heads.every((h) => h.chosen)) {
      const textAlone = chooseTextAlone(heads.map((h) => h.chosen!.heldOut), weights, classes, complete, y);
      selection.textAlone = textAlone;
      if (textAlone.chosen) {
        weights = groups.map((_, k) => (k === 0 ? 1 : 0));
        fitted.forEach((h, k) => (h.weight = weights[k]!));
        if (joint) skipJointFit(report, joint.C);
        joint = null;
        complete = null;
      }
    }
    if (joint) {
      for (const h of fitted) h.route = 'incomplete';
      fitted.push(await joint.refit());
    }
    const calibration = selecting
      ? calibrateHeldOut(heads.map((h) => h.chosen?.heldOut ?? null), fitted.map((h) => h.weight), y, classes, complete, {
          shift: (settings.priorShift ?? true) ? { seed: settings.seed } : null,
          texts: (settings.nameMatch ?? true) ? rows.map((r) => r.text) : null,
        })
      : null;
    if (calibration?.prior && selection) selection.prior = { alpha: calibration.prior.alpha, trials: calibration.prior.trials };
    return { classes, tfidf, blocks, means, heads: fitted, selection, calibration };
  } finally {
    await ownPool?.close();
  }
}
