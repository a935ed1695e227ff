// Fits a head on embedded rows: imputation means, TF-IDF, scaler and logistic regression, for any feature set.
// Used for the final bundle and for each validation / cross-validation split, so all are fitted the same way.
import type { CollectedRow } from '../pipeline/collect.js';
import { blockMeans } from '../pipeline/collect.js';
import { assembleFeatures, tfidfDense, type FeatureLayout } from '../pipeline/features.js';
import type { FeatureBlock } from '../models/bundle.js';
import { fitTfidf, type TfidfConfig, type TfidfModel } from './tfidf.js';
import { fitLabelEncoder, encodeLabels } from './labels.js';
import { fitStandardScaler, standardize, type StandardScalerParams } from './scaler.js';
import { fitLogisticRegression, predictProba, type LogisticFit, type LogisticOptions } from './logistic.js';
import { buildClassifierOnnx } from './classifier-onnx.js';
import { UsageError } from '../errors.js';

export type FeatureKind = FeatureBlock['kind'];

export interface HeadSettings {
  features: FeatureKind[];
  /** Embedding sizes of the encoders in use. */
  dims: { text?: number; image?: number };
  tfidf: Partial<TfidfConfig>;
  lr: LogisticOptions;
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

/** The classifier input matrix for `rows`, n × width, missing encoder blocks imputed with `means`. */
export function featureMatrix(rows: CollectedRow[], layout: FeatureLayout, tfidf: TfidfModel): Float32Array {
  const X = new Float32Array(rows.length * layout.width);
  const tfidfBlock = layout.blocks.find((b) => b.kind === 'tfidf');
  rows.forEach((r, i) => {
    const withTfidf = tfidfBlock && r.text !== '' && !r.vectors.tfidf ? { ...r, vectors: { ...r.vectors, tfidf: tfidfDense(tfidf, r.text) } } : r;
    X.set(assembleFeatures(withTfidf, layout), i * layout.width);
  });
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
  const X = featureMatrix(rows, layout, tfidf);
  const scaler = fitStandardScaler(X, rows.length, width);
  // TF-IDF rows are already L2-normalised and sparse: left unscaled (mean 0, scale 1), as with_mean=False would keep sparsity.
  const tfidfBlock = blocks.find((b) => b.kind === 'tfidf');
  if (tfidfBlock) {
    scaler.mean.fill(0, tfidfBlock.offset, tfidfBlock.offset + tfidfBlock.dim);
    scaler.scale.fill(1, tfidfBlock.offset, tfidfBlock.offset + tfidfBlock.dim);
  }
  const model = fitLogisticRegression(standardize(X, rows.length, width, scaler), y, classes.length, settings.lr);
  return { classes, blocks, layout, means, tfidf, scaler, model };
}

/** Probabilities over `allClasses` (zeros for classes the head never saw), n × allClasses.length. */
export function predictRows(head: TrainedHead, rows: CollectedRow[], allClasses: string[]): Float64Array {
  const n = rows.length;
  const X = standardize(featureMatrix(rows, head.layout, head.tfidf), n, head.layout.width, head.scaler);
  const p = predictProba(X, n, head.layout.width, head.model);
  const K = head.classes.length;
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
