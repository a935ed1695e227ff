// Fits a head on embedded rows: imputation means, TF-IDF, scaler and logistic regression, for any feature set.
// Used for the final bundle and for each validation / cross-validation split, so all are fitted the same way.
import type { CollectedRow } from '../pipeline/collect.js';
import { blockMeans } from '../pipeline/collect.js';
import { assembleFeatures, type FeatureLayout } from '../pipeline/features.js';
import type { FeatureBlock } from '../models/bundle.js';
import { fitTfidf, transform, type TfidfConfig, type TfidfModel } from './tfidf.js';
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
  lr: AsyncLogisticOptions;
}

export interface TrainedHead {
  /** Classes this head knows (sorted), a subset of the run's classes on a split missing some. */
  classes: string[];
  /** Layout without model references (the caller adds them). */
  blocks: FeatureBlock[];
  layout: FeatureLayout;
  means: Record<string, Float64Array>;
  tfidf: TfidfModel;
  scaler: StandardScalerParams;
  model: LogisticFit;
}

function layoutBlocks(settings: HeadSettings, tfidf: TfidfModel): FeatureBlock[] {
  const blocks: FeatureBlock[] = [];
  let offset = 0;
  for (const kind of (['text', 'image', 'tfidf'] as const).filter((k) => settings.features.includes(k))) {
    const dim = kind === 'tfidf' ? tfidf.terms.length : settings.dims[kind];
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
export function designFor(rows: CollectedRow[], layout: FeatureLayout, tfidf: TfidfModel): DesignMatrix {
  const denseBlocks = layout.blocks.filter((b) => b.kind !== 'tfidf');
  const dd = denseBlocks.reduce((s, b) => s + b.dim, 0);
  const dense = dd > 0 ? new Float32Array(rows.length * dd) : null;
  if (dense) {
    const denseLayout: FeatureLayout = { blocks: denseBlocks, width: dd, means: layout.means };
    rows.forEach((r, i) => dense.set(assembleFeatures(r, denseLayout), i * dd));
  }
  const sparse = layout.blocks.some((b) => b.kind === 'tfidf')
    ? csrFromRows(
        rows.map((r) => (r.text === '' ? { indices: [], values: [] } : transform(tfidf, r.text))),
        tfidf.terms.length,
      )
    : null;
  return makeDesign(rows.length, dense, dd, sparse);
}

/** Standardises the dense block in place with the dense part of `scaler`. */
function standardizeDesign(X: DesignMatrix, scaler: StandardScalerParams): DesignMatrix {
  if (X.dense) standardizeDense(X.dense, X.n, X.dd, { mean: scaler.mean.subarray(0, X.dd), scale: scaler.scale.subarray(0, X.dd) }, X.dense as Float32Array);
  return X;
}

export async function trainHead(rows: CollectedRow[], labels: string[], settings: HeadSettings): Promise<TrainedHead> {
  const classes = fitLabelEncoder(labels);
  if (classes.length < 2) throw new UsageError(`training needs at least two classes, found ${classes.length}`, 'one_class');
  const y = encodeLabels(classes, labels);
  const tfidf = fitTfidf(
    rows.map((r) => r.text),
    settings.tfidf,
  );
  const blocks = layoutBlocks(settings, tfidf);
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
