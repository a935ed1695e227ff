// Flagging stored labels that a model finds improbable, at a stated precision (check's disagreement).
//
// A mislabelled row shows itself by how improbable its stored label is to a model trained on clean rows: flipped to
// another class, the stored label's calibrated probability is usually tiny, while a correctly labelled row gets such
// a probability only where the model is itself wrong and sure. So the rows flagged at a cutoff c are those whose
// stored label is at most c probable (and not the model's answer). Among them, the correctly labelled ones are at
// most judged × e(c), where e(c) is the rate at which right labels score ≤ c: measured by train on its held-out rows
// (their labels are the ones the model was selected on, so they count as right), taken at its upper confidence bound.
// The precision of the flags is then at least 1 − judged·e(c)/flagged, and check keeps the largest cutoff whose bound
// reaches the precision asked for. A catalog with no more improbable labels than the held-out rows had gets none.
import { argmaxRow, CONFIDENCE, wilsonLower } from './calibration.js';

/** Only stored labels at most this probable can be flagged (above it, the label is the likelier of any two). */
export const LABEL_TAIL_MAX = 0.5;

/**
 * The held-out rows' calibrated probabilities of their own labels, where the model's answer is another class: how
 * often, and how improbable, a right label looks to the model. Stored in the bundle's calibration (`labelTail`).
 */
export interface LabelTail {
  /** Held-out rows measured (all of them: the denominator of the rate). */
  rows: number;
  /** Ascending: the label's probability on each row whose answer is another class, those ≤ LABEL_TAIL_MAX. */
  values: number[];
}

/** The label tail of held-out probabilities (rows × K, calibrated) with labels y; the answer is the argmax, or `answers[i]`. */
export function labelTail(probs: ArrayLike<number>, y: ArrayLike<number>, K: number, answers?: ArrayLike<number>): LabelTail {
  const values: number[] = [];
  for (let i = 0; i < y.length; i++) {
    const o = i * K;
    const own = probs[o + y[i]!]!;
    const arg = answers ? answers[i]! : argmaxRow(probs, i, K);
    if (arg !== y[i] && own <= LABEL_TAIL_MAX) values.push(roundProbability(own));
  }
  return { rows: y.length, values: values.sort((a, b) => a - b) };
}

/** Six significant digits: what the manifest keeps (a cutoff is compared with live probabilities, not these). */
function roundProbability(p: number): number {
  return p === 0 ? 0 : Number(p.toPrecision(6));
}

/** Wilson's upper confidence bound (one-sided, at CONFIDENCE) on a proportion of `k` out of `m`. */
export function wilsonUpper(k: number, m: number): number {
  return m <= 0 ? 1 : 1 - wilsonLower(m - k, m);
}

/** The cutoff check flags stored labels at, and what vouches for it. */
export interface FlagCutoff {
  /** The precision asked for: the least share of flagged rows that are mislabelled. */
  precision: number;
  confidence: number;
  /** Stored labels at most this probable are flagged; null when no cutoff's bound reaches the precision. */
  cutoff: number | null;
  /** Rows flagged at the cutoff. */
  flagged: number;
  /** At the cutoff: the upper bound on correctly labelled rows among them, and the precision's lower bound. */
  rightBound: number;
  lower: number;
  /** Held-out rows the bundle measured the tail on. */
  heldOutRows: number;
  /** Why there is no cutoff (null cutoff only). */
  reason?: string;
}

/**
 * The largest cutoff whose flags' precision bound reaches `precision`: `candidates` are the stored labels'
 * probabilities on the rows whose answer is another class (≤ LABEL_TAIL_MAX), `judged` the labelled rows checked.
 */
export function flagCutoff(tail: LabelTail, candidates: readonly number[], judged: number, precision: number): FlagCutoff {
  const sorted = [...candidates].sort((a, b) => a - b);
  const base = { precision, confidence: CONFIDENCE, heldOutRows: tail.rows };
  let best: FlagCutoff | null = null;
  let highest = 0;
  let k = 0;
  for (let j = 0; j < sorted.length; j++) {
    const c = sorted[j]!;
    // One cutoff per distinct value, after its last row (every row at most c probable is flagged).
    if (j + 1 < sorted.length && sorted[j + 1] === c) continue;
    while (k < tail.values.length && tail.values[k]! <= c) k++;
    const flagged = j + 1;
    const rightBound = judged * wilsonUpper(k, tail.rows);
    const lower = Math.max(0, 1 - rightBound / flagged);
    highest = Math.max(highest, lower);
    if (lower >= precision) best = { ...base, cutoff: c, flagged, rightBound, lower };
  }
  if (best) return best;
  const reason = sorted.length === 0 ? 'no stored label is improbable to the model' : `at best ${highest.toFixed(3)} of the flags would be mislabelled`;
  return { ...base, cutoff: null, flagged: 0, rightBound: 0, lower: highest, reason };
}
