// Late fusion of per-modality heads: a weighted sum of their log-probabilities, over the heads a row has.
// Training picks the weights on held-out rows; run, eval and serve combine with this one function.
import { computeMetrics } from '../report/metrics.js';
import { topClasses } from './classifier.js';
import { rowLogLoss } from './scoring.js';

/** Probabilities below this count as this (a class one head never saw must not veto the others outright). */
const FLOOR = 1e-9;

export interface HeadOutput {
  /** The head's classes, in the order of `probs`. */
  classes: readonly string[];
  weight: number;
  /** One row of probabilities, or null when the row lacks this head's modality. */
  probs: ArrayLike<number> | null;
}

const maps = new WeakMap<readonly string[], WeakMap<readonly string[], Int32Array>>();

/** Index in `to` of each of `from` (−1 when absent), memoised per pair of arrays. */
function classMap(from: readonly string[], to: readonly string[]): Int32Array {
  let inner = maps.get(from);
  if (!inner) maps.set(from, (inner = new WeakMap()));
  let m = inner.get(to);
  if (!m) {
    const at = new Map(to.map((c, k) => [c, k]));
    inner.set(to, (m = Int32Array.from(from, (c) => at.get(c) ?? -1)));
  }
  return m;
}

/**
 * softmax((Σ w_h log p_h + b) / T) over the present heads, weights renormalised to sum to 1 (equal when they are all
 * 0), as probabilities over `classes`; T is the bundle's calibration temperature (calibration.ts), 1 for raw scores;
 * b the row's name-match bias over `classes` (name-match.ts), none for raw scores.
 * One present head at T = 1 gives back its own probabilities (classes it never saw: ~0).
 * Returns null when no head is present.
 */
export function fuseHeads(heads: readonly HeadOutput[], classes: readonly string[], temperature = 1, bias: ArrayLike<number> | null = null): Float32Array | null {
  const present = heads.filter((h) => h.probs !== null);
  if (present.length === 0) return null;
  const total = present.reduce((s, h) => s + h.weight, 0);
  const K = classes.length;
  const score = new Float64Array(K);
  for (const h of present) {
    const w = (total > 0 ? h.weight / total : 1 / present.length) / temperature;
    if (w === 0) continue;
    const at = new Float64Array(K).fill(FLOOR);
    const map = classMap(h.classes, classes);
    for (let j = 0; j < map.length; j++) if (map[j]! >= 0) at[map[j]!] = Math.max(h.probs![j]!, FLOOR);
    for (let k = 0; k < K; k++) score[k] += w * Math.log(at[k]!);
  }
  if (bias) for (let k = 0; k < K; k++) score[k] += bias[k]! / temperature;
  let max = -Infinity;
  for (let k = 0; k < K; k++) max = Math.max(max, score[k]!);
  let sum = 0;
  for (let k = 0; k < K; k++) sum += score[k] = Math.exp(score[k]! - max);
  const out = new Float32Array(K);
  for (let k = 0; k < K; k++) out[k] = score[k]! / sum;
  return out;
}

/** A head's input: its blocks' slices of the full feature vector, back to back. */
export function headInput(x: Float32Array, slices: readonly [number, number][], width: number): Float32Array {
  if (slices.length === 1 && slices[0]![0] === 0 && slices[0]![1] === x.length) return x;
  const out = new Float32Array(width);
  let at = 0;
  for (const [offset, dim] of slices) {
    out.set(x.subarray(offset, offset + dim), at);
    at += dim;
  }
  return out;
}

export interface WeightCandidate {
  /** Weight of the first head (the second gets 1 − w). */
  w: number;
  macroF1: number;
  logLoss: number;
}

/**
 * The weight of head A against head B (w and 1 − w) that predicts held-out rows best: highest macro-F1, then
 * lowest log-loss, then the weight nearest 0.5 (ties broken the same way on every run). The grid includes 0
 * and 1, so the choice is never worse on these rows than the better head alone.
 */
export function chooseFusionWeight(
  a: { classes: readonly string[]; probs: Float64Array | Float32Array },
  b: { classes: readonly string[]; probs: Float64Array | Float32Array },
  y: readonly number[],
  classes: readonly string[],
  grid: readonly number[] = Array.from({ length: 21 }, (_, i) => i / 20),
): { best: WeightCandidate; candidates: WeightCandidate[] } {
  const n = y.length;
  const Ka = a.classes.length;
  const Kb = b.classes.length;
  const candidates = grid.map((w) => {
    const yPred: string[] = [];
    const ranked: string[][] = [];
    let logLoss = 0;
    for (let i = 0; i < n; i++) {
      const p = fuseHeads(
        [
          { classes: a.classes, weight: w, probs: a.probs.subarray(i * Ka, (i + 1) * Ka) },
          { classes: b.classes, weight: 1 - w, probs: b.probs.subarray(i * Kb, (i + 1) * Kb) },
        ],
        classes,
      )!;
      const top = topClasses(p, classes as string[], 3).map((t) => t.category);
      yPred.push(top[0]!);
      ranked.push(top);
      logLoss += rowLogLoss(p[y[i]!]!);
    }
    const m = computeMetrics({ yTrue: y.map((k) => classes[k]!), yPred, ranked, modelClasses: classes });
    return { w, macroF1: m.macroF1, logLoss: logLoss / Math.max(n, 1) };
  });
  const best = [...candidates].sort((p, q) => q.macroF1 - p.macroF1 || p.logLoss - q.logLoss || Math.abs(p.w - 0.5) - Math.abs(q.w - 0.5))[0]!;
  return { best, candidates };
}
