// Fits the classifier head (label encoder, StandardScaler, multinomial logistic regression) and exports it as ONNX.
import { fitLabelEncoder, encodeLabels } from './labels.js';
import { fitStandardScaler, standardize, type StandardScalerParams } from './scaler.js';
import { fitLogisticRegression, type LogisticFit, type LogisticOptions } from './logistic.js';
import { buildClassifierOnnx } from './classifier-onnx.js';
import { UsageError } from '../errors.js';

export interface FittedHead {
  classes: string[];
  scaler: StandardScalerParams;
  model: LogisticFit;
  /** scaler + regression as one ONNX graph: features [N, D] → probabilities [N, C]. */
  classifierOnnx: Uint8Array;
}

/** X is n×d row-major (raw features, before scaling); labels are class names, one per row. */
export function fitHead(X: Float32Array, n: number, d: number, labels: string[], opts: LogisticOptions = {}): FittedHead {
  const classes = fitLabelEncoder(labels);
  if (classes.length < 2) throw new UsageError(`training needs at least two classes, found ${classes.length} (${classes.join(', ')})`, 'one_class');
  const y = encodeLabels(classes, labels);
  const scaler = fitStandardScaler(X, n, d);
  const Xs = standardize(X, n, d, scaler);
  const model = fitLogisticRegression(Xs, y, classes.length, opts);
  const classifierOnnx = buildClassifierOnnx({
    mean: scaler.mean,
    scale: scaler.scale,
    coef: model.coef,
    intercept: model.intercept,
    nClasses: classes.length,
    nFeatures: d,
  });
  return { classes, scaler, model, classifierOnnx };
}
