// Fits the classifier on embedded rows: TF-IDF, then one head per modality (scaler + logistic regression) and the
// weights that fuse them, chosen on held-out rows. Used for the final bundle and for each validation /
// cross-validation split, so all are fitted the same way.
import type { CollectedRow } from '../pipeline/collect.js';
import { blockMeans } from '../pipeline/collect.js';
import { assembleFeatures, type FeatureLayout } from '../pipeline/features.js';
import type { FeatureBlock } from '../models/bundle.js';
import { fitTfidf, tfidfBlockDim, tfidfBlockRow, type TfidfBlockModel, type TfidfConfig } from './tfidf.js';
import { chooseFusionWeight, fuseHeads, type WeightCandidate } from './fusion.js';
import { stratifiedHoldout, stratifiedKFold } from './split.js';
import { fitLabelEncoder, encodeLabels } from './labels.js';
import { fitStandardScaler, type StandardScalerParams } from './scaler.js';
import { csrFromRows, makeDesign, standardizeDense, type DesignMatrix } from './design-matrix.js';
import { decisionFunctionDesign, fitLogisticRegressionAsync, softmaxRowsInPlace, type LogisticFit, type AsyncLogisticOptions } from './logistic.js';
import { buildClassifierOnnx } from './classifier-onnx.js';
import { UsageError } from '../errors.js';

export type FeatureKind = FeatureBlock['kind'];

export interface HeadSettings {
  features: FeatureKind[];
  /** Embedding sizes of the encoders in use. */
  dims: { text?: number; image?: number };
  tfidf: Partial<TfidfConfig>;
  /** Character n-gram TF-IDF appended to the tfidf block (e.g. char_wb 2–5), or null for words only. */
  charTfidf: Partial<TfidfConfig> | null;
  lr: AsyncLogisticOptions;
  /**
   * 'late': with text and image features, one head per modality, fused with weights learned on a held-out share
   * of the rows (`fusionShare`, split with `seed`); 'joint': one head over every block.
   */
  fusion: 'late' | 'joint';
  fusionShare: number;
  seed: number;
  /** --C auto: each head's C is chosen from these by log-loss on the held-out share; null: lr.C for all. */
  cGrid: number[] | null;
  /** Choose C and the fusion weights on k-fold held-out predictions (k > 1) instead of one held-out share. */
  selectionFolds: number;
}

export interface TrainedHead {
  /** Classes this head knows (sorted), a subset of the run's classes on a split missing some. */
  classes: string[];
  /** Layout without model references (the caller adds them). */
  blocks: FeatureBlock[];
  layout: FeatureLayout;
  means: Record<string, Float64Array>;
  tfidf: TfidfBlockModel;
  scaler: StandardScalerParams;
  model: LogisticFit;
}

function layoutBlocks(kinds: readonly FeatureKind[], dims: HeadSettings['dims'], tfidf: TfidfBlockModel): FeatureBlock[] {
  const blocks: FeatureBlock[] = [];
  let offset = 0;
  for (const kind of (['text', 'image', 'tfidf'] as const).filter((k) => kinds.includes(k))) {
    const dim = kind === 'tfidf' ? tfidfBlockDim(tfidf) : dims[kind];
    if (!dim) throw new UsageError(`feature '${kind}' has no ${kind} model`, 'features');
    // Model references and preprocessing are filled in by the caller, who knows the models.
    blocks.push({ kind, offset, dim } as FeatureBlock);
    offset += dim;
  }
  return blocks;
}

/**
 * The training matrix for `rows`: encoder blocks dense (missing ones imputed with `means`), then the TF-IDF
 * block as CSR, so a 50k-term vocabulary is never densified. The dense part is returned raw (unscaled).
 */
export function designFor(rows: CollectedRow[], layout: FeatureLayout, tfidf: TfidfBlockModel): DesignMatrix {
  const denseBlocks = layout.blocks.filter((b) => b.kind !== 'tfidf');
  const dd = denseBlocks.reduce((s, b) => s + b.dim, 0);
  const dense = dd > 0 ? new Float32Array(rows.length * dd) : null;
  if (dense) {
    const denseLayout: FeatureLayout = { blocks: denseBlocks, width: dd, means: layout.means };
    rows.forEach((r, i) => dense.set(assembleFeatures(r, denseLayout), i * dd));
  }
  const sparse = layout.blocks.some((b) => b.kind === 'tfidf')
    ? csrFromRows(
        rows.map((r) => (r.text === '' ? { indices: [], values: [] } : tfidfBlockRow(tfidf, r.text))),
        tfidfBlockDim(tfidf),
      )
    : null;
  return makeDesign(rows.length, dense, dd, sparse);
}

/** Standardises the dense block in place with the dense part of `scaler`. */
function standardizeDesign(X: DesignMatrix, scaler: StandardScalerParams): DesignMatrix {
  if (X.dense) standardizeDense(X.dense, X.n, X.dd, { mean: scaler.mean.subarray(0, X.dd), scale: scaler.scale.subarray(0, X.dd) }, X.dense as Float32Array);
  return X;
}

/** Fits the TF-IDF block's vectorizers (word, and character n-grams when asked) on the rows' texts. */
export function fitTfidfBlock(rows: CollectedRow[], settings: Pick<HeadSettings, 'tfidf' | 'charTfidf'>): TfidfBlockModel {
  const texts = rows.map((r) => r.text);
  return { word: fitTfidf(texts, settings.tfidf), char: settings.charTfidf ? fitTfidf(texts, settings.charTfidf) : null };
}

/** One head over `kinds` (a modality's blocks, or all of them). */
export async function trainHead(rows: CollectedRow[], labels: string[], kinds: readonly FeatureKind[], settings: HeadSettings, tfidf: TfidfBlockModel): Promise<TrainedHead> {
  const classes = fitLabelEncoder(labels);
  if (classes.length < 2) throw new UsageError(`training needs at least two classes, found ${classes.length}`, 'one_class');
  const y = encodeLabels(classes, labels);
  const blocks = layoutBlocks(kinds, settings.dims, tfidf);
  const means = blockMeans(rows, blocks.filter((b) => b.kind !== 'tfidf'));
  const width = blocks.reduce((s, b) => s + b.dim, 0);
  const layout: FeatureLayout = {
    blocks,
    width,
    means: new Map(Object.entries(means).map(([k, v]) => [k as FeatureKind, Float32Array.from(v)])),
  };
  const X = designFor(rows, layout, tfidf);
  // TF-IDF rows are already L2-normalised and sparse: left unscaled (mean 0, scale 1), as with_mean=False keeps sparsity.
  const scaler: StandardScalerParams = { mean: new Float64Array(width), scale: new Float64Array(width).fill(1) };
  if (X.dense) {
    const dense = fitStandardScaler(X.dense, X.n, X.dd);
    scaler.mean.set(dense.mean);
    scaler.scale.set(dense.scale);
  }
  const model = await fitLogisticRegressionAsync(standardizeDesign(X, scaler), y, classes.length, settings.lr);
  return { classes, blocks, layout, means, tfidf, scaler, model };
}

/** Probabilities over `allClasses` (zeros for classes the head never saw), n × allClasses.length. */
export function predictRows(head: TrainedHead, rows: CollectedRow[], allClasses: string[]): Float64Array {
  const X = standardizeDesign(designFor(rows, head.layout, head.tfidf), head.scaler);
  const n = X.n;
  const K = head.classes.length;
  const p = softmaxRowsInPlace(decisionFunctionDesign(X, head.model), n, K);
  const map = head.classes.map((c) => allClasses.indexOf(c));
  const out = new Float64Array(n * allClasses.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) out[i * allClasses.length + map[k]] = p[i * K + k];
  return out;
}

export function headOnnx(head: TrainedHead): Uint8Array {
  return buildClassifierOnnx({
    mean: head.scaler.mean,
    scale: head.scaler.scale,
    coef: head.model.coef,
    intercept: head.model.intercept,
    nClasses: head.classes.length,
    nFeatures: head.layout.width,
  });
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

/** Whether a row has any of these blocks: text for text/tfidf, an embedding for image. */
export function rowHas(r: CollectedRow, kinds: readonly FeatureKind[]): boolean {
  return kinds.some((k) => (k === 'tfidf' ? r.text !== '' : r.vectors[k] !== undefined));
}

export interface FittedHead {
  name: string;
  kinds: FeatureKind[];
  /** The regularisation it was fitted with (chosen per head with --C auto). */
  C: number;
  head: TrainedHead;
  weight: number;
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
  cTrials: { head: string; C: number; logLoss: number; rows: number }[];
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
}

/**
 * The whole classifier. One modality (or fusion 'joint'): one head over every block. Text and image with fusion
 * 'late': a head per modality, each fitted on the rows that have it, so a row missing one is predicted from
 * the other as well as that head can; the fusion weight is chosen on a stratified held-out share (heads fitted
 * on the rest), then the heads are refitted on all rows.
 */
export async function trainModel(rows: CollectedRow[], labels: string[], settings: HeadSettings): Promise<TrainedModel> {
  const classes = fitLabelEncoder(labels);
  if (classes.length < 2) throw new UsageError(`training needs at least two classes, found ${classes.length}`, 'one_class');
  const tfidf = fitTfidfBlock(rows, settings);
  const blocks = layoutBlocks(settings.features, settings.dims, tfidf);
  const means = blockMeans(rows, blocks.filter((b) => b.kind !== 'tfidf'));
  const late = modalityGroups(settings.features).length > 1 && settings.fusion === 'late';
  const groups = late ? modalityGroups(settings.features) : [{ name: 'joint', kinds: canonicalKinds(settings.features) }];
  const rowsOf = (idx: number[], g: { name: string; kinds: FeatureKind[] }) => (g.name === 'joint' ? idx : idx.filter((i) => rowHas(rows[i], g.kinds)));
  const fitGroup = async (idx: number[], g: { name: string; kinds: FeatureKind[] }, C: number, from?: TrainedHead, selecting = false): Promise<TrainedHead> => {
    const have = rowsOf(idx, g);
    if (new Set(have.map((i) => labels[i])).size < 2) throw new UsageError(`the ${g.name} head needs rows of at least two classes that have ${g.name}; found ${have.length} rows`, 'one_class');
    const init = from ? { coef: from.model.coef, intercept: from.model.intercept } : undefined;
    // Fits that only choose C and weights stop at scikit-learn's default tolerance and leave the progress bar alone.
    const lr = selecting ? { ...settings.lr, C, init, tol: Math.max(settings.lr.tol ?? 0, SELECTION_TOL), onIteration: undefined } : { ...settings.lr, C, init };
    return trainHead(have.map((i) => rows[i]), have.map((i) => labels[i]), g.kinds, { ...settings, lr }, tfidf);
  };
  const fixedC = settings.lr.C ?? 1;
  const grid = settings.cGrid;
  const needHoldout = late || (grid !== null && grid.length > 1);
  const y = encodeLabels(classes, labels);
  const chosenC = groups.map(() => fixedC);
  let selection: FusionSelection | null = null;
  let weights = groups.map(() => 1 / groups.length);
  if (needHoldout) {
    // Held-out predictions for choosing: a stratified share, or (small catalogs) k folds so every row counts once.
    const folds = settings.selectionFolds > 1 ? stratifiedKFold(y, settings.selectionFolds, settings.seed) : [stratifiedHoldout(y, settings.fusionShare, settings.seed)];
    const heldOutRows = folds.flatMap((f) => f.test);
    const Cs = [...(grid ?? [fixedC])].sort((a, b) => a - b);
    const K = classes.length;
    const cTrials: FusionSelection['cTrials'] = [];
    // Per head and C: probabilities for every held-out row that has the modality (NaN-free rows only).
    const heldOut: { probs: Map<number, Float64Array> }[] = [];
    for (const [h, g] of groups.entries()) {
      const byC = Cs.map(() => new Map<number, Float64Array>());
      for (const split of folds) {
        const test = rowsOf(split.test, g);
        let previous: TrainedHead | undefined;
        // Ascending C, each fit started from the last: the path of solutions, far fewer iterations than from zero.
        for (const [c, C] of Cs.entries()) {
          const head = await fitGroup(split.train, g, C, previous, true);
          previous = head;
          const p = predictRows(head, test.map((i) => rows[i]), classes);
          test.forEach((i, j) => byC[c].set(i, p.subarray(j * K, (j + 1) * K)));
        }
      }
      const losses = Cs.map((C, c) => {
        const idx = [...byC[c].keys()];
        const logLoss = meanLogLoss(idx, (i) => byC[c].get(i)!, y);
        cTrials.push({ head: g.name, C, logLoss, rows: idx.length });
        return logLoss;
      });
      const best = losses.indexOf(Math.min(...losses));
      chosenC[h] = Cs[best];
      heldOut.push({ probs: byC[best] });
    }
    const base = { rows: heldOutRows.length, share: settings.fusionShare, folds: folds.length > 1 ? folds.length : 0, seed: settings.seed, cTrials };
    if (late) {
      // The weight is chosen on the held-out rows that have both modalities.
      const both = heldOutRows.filter((i) => groups.every((g) => rowHas(rows[i], g.kinds))).sort((a, b) => a - b);
      const stack = (h: number) => {
        const out = new Float64Array(both.length * K);
        both.forEach((i, r) => out.set(heldOut[h].probs.get(i)!, r * K));
        return { classes, probs: out };
      };
      if (both.length > 0) {
        const { best, candidates } = chooseFusionWeight(stack(0), stack(1), both.map((i) => y[i]), classes);
        weights = [best.w, Math.round((1 - best.w) * 1e9) / 1e9];
        const alone = (h: number) => candidates.find((c) => c.w === (h === 0 ? 1 : 0))!.macroF1;
        selection = {
          ...base,
          rows: both.length,
          heads: groups.map((g, h) => ({ name: g.name, weight: weights[h], C: chosenC[h], macroF1: alone(h) })),
          fused: { macroF1: best.macroF1, logLoss: best.logLoss },
          candidates,
        };
      }
    }
    selection ??= { ...base, heads: groups.map((g, h) => ({ name: g.name, weight: weights[h], C: chosenC[h], macroF1: NaN })), fused: null, candidates: [] };
  }
  const all = rows.map((_, i) => i);
  const heads: FittedHead[] = [];
  for (const [h, g] of groups.entries()) heads.push({ name: g.name, kinds: g.kinds, C: chosenC[h], head: await fitGroup(all, g, chosenC[h]), weight: late ? weights[h] : 1 });
  return { classes, tfidf, blocks, means, heads, selection };
}

/** Gradient tolerance of the fits that choose C and the fusion weights (scikit-learn's default tol). */
const SELECTION_TOL = 1e-4;

/** Mean negative log-likelihood of the true classes (probabilities clipped at 1e-15, as scikit-learn's log_loss). */
function meanLogLoss(idx: number[], probs: (i: number) => Float64Array, y: ArrayLike<number>): number {
  let s = 0;
  for (const i of idx) s -= Math.log(Math.max(probs(i)[y[i]], 1e-15));
  return idx.length ? s / idx.length : 0;
}

/** Fused probabilities over `allClasses` for `rows` (n × classes), and each head's own (null rows: modality missing). */
export function predictModel(model: TrainedModel, rows: CollectedRow[], allClasses: string[]): { fused: Float64Array; heads: Record<string, (Float64Array | null)[]> } {
  const K = allClasses.length;
  const perHead = model.heads.map((h) => {
    const present = rows.map((r) => h.name === 'joint' || rowHas(r, h.kinds));
    const idx = rows.flatMap((_, i) => (present[i] ? [i] : []));
    const p = idx.length ? predictRows(h.head, idx.map((i) => rows[i]), allClasses) : new Float64Array(0);
    const out: (Float64Array | null)[] = rows.map(() => null);
    idx.forEach((i, j) => (out[i] = p.subarray(j * K, (j + 1) * K)));
    return out;
  });
  const fused = new Float64Array(rows.length * K);
  rows.forEach((_, i) => {
    const p = fuseHeads(model.heads.map((h, k) => ({ classes: allClasses, weight: h.weight, probs: perHead[k][i] })), allClasses);
    if (p) fused.set(p, i * K);
  });
  return { fused, heads: Object.fromEntries(model.heads.map((h, k) => [h.name, perHead[k]])) };
}
