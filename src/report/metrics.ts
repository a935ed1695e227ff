// Evaluation figures for a labelled run, with scikit-learn's semantics (accuracy_score, f1_score,
// precision_recall_fscore_support with zero_division=0, confusion_matrix, top_k_accuracy_score), bit for bit.
import { sortByCodePoint, compareCodePoints } from '../head/labels.js';

export interface MetricsInput {
  /** The true label of each row. Rows with no label at all should be dropped by the caller beforehand. */
  yTrue: readonly string[];
  /** The predicted class of each row, or null where the prediction failed (an error row). */
  yPred: readonly (string | null)[];
  /** Per row, predicted classes most probable first: at least the first 3 when the model has that many. */
  ranked: readonly (readonly string[])[];
  /** The classes the model can predict. */
  modelClasses: readonly string[];
}

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Rows truly labelled `label` among the rows with a prediction. */
  support: number;
}

export interface EvalMetrics {
  /** All rows, failed ones included. */
  n: number;
  /** Rows without a prediction: wrong in accuracy and top-3, absent from everything else. */
  failed: number;
  /** Rows predicted correctly. */
  correct: number;
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  top3Accuracy: number;
  /** The k behind top3Accuracy: 3, or the number of model classes when it has fewer. */
  topK: number;
  /** One entry per label of `confusion.labels`, in that order. */
  perClass: ClassMetrics[];
  /** Rows are true labels, columns predicted labels, both in `labels` order. */
  confusion: { labels: string[]; matrix: number[][] };
  /** True labels that are not model classes, most frequent first; all their rows count as errors. */
  unseenLabels: { label: string; count: number }[];
}

export interface ConfusedPair {
  trueLabel: string;
  predLabel: string;
  count: number;
}

/**
 * numpy's pairwise summation (`np.sum` over a contiguous float64 array): 8 interleaved accumulators for
 * blocks of up to 128, halving above that. sklearn's averages go through it, so a plain left-to-right sum
 * can differ from sklearn in the last bits once there are 8 or more classes.
 */
export function numpySum(a: readonly number[], start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j]!;
    }
    let res = (r[0]! + r[1]! + (r[2]! + r[3]!)) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(a, start, n2) + numpySum(a, start + n2, n - n2);
}

/** zero_division=0: an undefined ratio counts as 0, as sklearn does when asked to. */
function divide(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

/**
 * Computes the evaluation figures. Rows whose prediction failed (`yPred[i] === null`) count in `n` and as
 * wrong in `accuracy` and `top3Accuracy`, but are left out of the label set, the confusion matrix, per-class
 * precision/recall/F1/support and the macro and weighted F1 — those are sklearn's figures over the rows
 * that have a prediction. True labels the model does not know are ordinary labels to sklearn (recall 0),
 * and are listed in `unseenLabels`. An empty string is a label like any other.
 */
export function computeMetrics(input: MetricsInput): EvalMetrics {
  const { yTrue, yPred, ranked, modelClasses } = input;
  const n = yTrue.length;
  if (yPred.length !== n || ranked.length !== n) {
    throw new RangeError(`yTrue, yPred and ranked differ in length: ${n}, ${yPred.length}, ${ranked.length}`);
  }
  const known = new Set(modelClasses);
  const topK = Math.min(3, modelClasses.length);

  let failed = 0;
  let correct = 0;
  let topHits = 0;
  const labelSet = new Set<string>();
  const unseen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (!known.has(t)) unseen.set(t, (unseen.get(t) ?? 0) + 1);
    if (p === null) {
      failed++;
      continue;
    }
    labelSet.add(t);
    labelSet.add(p);
    if (p === t) correct++;
    const r = ranked[i]!;
    for (let j = 0; j < Math.min(topK, r.length); j++) {
      if (r[j] === t) {
        topHits++;
        break;
      }
    }
  }

  const labels = sortByCodePoint([...labelSet]);
  const index = new Map<string, number>();
  labels.forEach((l, i) => index.set(l, i));
  const L = labels.length;
  const matrix = Array.from({ length: L }, () => new Array<number>(L).fill(0));
  for (let i = 0; i < n; i++) {
    const p = yPred[i];
    if (p === null || p === undefined) continue;
    matrix[index.get(yTrue[i]!)!]![index.get(p)!]++;
  }

  const perClass: ClassMetrics[] = [];
  const f1s: number[] = [];
  const weighted: number[] = [];
  let supportSum = 0;
  for (let k = 0; k < L; k++) {
    const tp = matrix[k]![k]!;
    let trueSum = 0;
    let predSum = 0;
    for (let j = 0; j < L; j++) {
      trueSum += matrix[k]![j]!;
      predSum += matrix[j]![k]!;
    }
    const precision = divide(tp, predSum);
    const recall = divide(tp, trueSum);
    // sklearn: (1 + beta²)·P·R / (beta²·P + R), the denominator forced to 1 when it is 0 (then P·R is 0 too).
    const den = precision + recall;
    const f1 = (2 * precision * recall) / (den === 0 ? 1 : den);
    perClass.push({ label: labels[k]!, precision, recall, f1, support: trueSum });
    f1s.push(f1);
    weighted.push(f1 * trueSum);
    supportSum += trueSum;
  }

  return {
    n,
    failed,
    correct,
    accuracy: divide(correct, n),
    macroF1: divide(numpySum(f1s), L),
    // np.average(f, weights=support) = sum(f·w) / sum(w); sklearn returns 0 when every weight is 0.
    weightedF1: divide(numpySum(weighted), supportSum),
    top3Accuracy: divide(topHits, n),
    topK,
    perClass,
    confusion: { labels, matrix },
    unseenLabels: [...unseen]
      .map(([label, count]) => ({ label, count }))
      .sort((a, b) => b.count - a.count || compareCodePoints(a.label, b.label)),
  };
}

/** The k largest off-diagonal confusion counts: most frequent first, ties by true then predicted label. */
export function mostConfusedPairs(metrics: EvalMetrics, k: number): ConfusedPair[] {
  const { labels, matrix } = metrics.confusion;
  const pairs: ConfusedPair[] = [];
  for (let i = 0; i < labels.length; i++) {
    for (let j = 0; j < labels.length; j++) {
      const count = matrix[i]![j]!;
      if (i !== j && count > 0) pairs.push({ trueLabel: labels[i]!, predLabel: labels[j]!, count });
    }
  }
  // labels are already in code-point order, so row-major order settles the ties; a stable sort keeps it.
  pairs.sort((a, b) => b.count - a.count);
  return pairs.slice(0, Math.max(0, k));
}
