// Calibration and decisions: a temperature fitted on held-out predictions, the figures that say how well scores
// match how often they are right (log-loss, Brier, ECE and its reliability bins), and the precision–coverage curve
// that turns a target precision into a score threshold, chosen by a lower confidence bound, not the point estimate.
// Pure functions over probability rows; train fits, run / eval / check / serve apply and report.
import { UsageError } from '../errors.js';
import type { BundleCalibration } from '../models/bundle.js';

/** Probabilities are clipped here before a log (scikit-learn's log_loss clips at the same value). */
export const LOG_FLOOR = 1e-15;
/** Equal-width confidence bins of the ECE and the reliability diagram (Guo et al. use 15). */
export const ECE_BINS = 15;
/** One-sided confidence of the lower bound a target's threshold must clear, and its normal quantile Φ⁻¹(0.95). */
export const CONFIDENCE = 0.95;
const Z = 1.6448536269514722;
/** Temperatures searched: a held-out set that is all right (or all wrong) pushes the fit to a bound. */
export const TEMPERATURE_RANGE: [number, number] = [0.01, 100];

type Probs = ArrayLike<number> & { length: number };

/** One reliability bin (lower, upper]: its rows, their mean confidence and accuracy (null when empty). */
export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  confidence: number | null;
  accuracy: number | null;
}

/** How well probabilities match outcomes on some rows. */
export interface CalibrationFigures {
  rows: number;
  /** Mean −log p(true class), p clipped at LOG_FLOOR. */
  logLoss: number;
  /** Mean over rows of Σ_k (p_k − [k = true])². */
  brier: number;
  /** Σ_b (n_b / n)·|accuracy_b − confidence_b| over ECE_BINS equal-width bins of the top-1 probability. */
  ece: number;
  bins: ReliabilityBin[];
}

/** Index of the largest entry (the lowest on ties) of row `i` of an n × K matrix. */
export function argmaxRow(p: Probs, i: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (p[i * K + k]! > p[i * K + best]!) best = k;
  return best;
}

/** The bin (lower, upper] of a confidence: edges at b / ECE_BINS. */
export function reliabilityBin(confidence: number): number {
  // Row i is in bin b when b/15 < c <= (b+1)/15; the edges are compared as numbers, as numpy's linspace gives them.
  let b = Math.min(ECE_BINS - 1, Math.max(0, Math.ceil(confidence * ECE_BINS) - 1));
  while (b > 0 && confidence <= binEdge(b)) b--;
  while (b < ECE_BINS - 1 && confidence > binEdge(b + 1)) b++;
  return b;
}

/** numpy's linspace(0, 1, ECE_BINS + 1)[b]: b · (1/15), which can differ from b / 15 in the last bit. */
function binEdge(b: number): number {
  return b === ECE_BINS ? 1 : b * (1 / ECE_BINS);
}

/**
 * Streams rows (a probability vector and the true class, or −1 for a class the model does not know: wrong, and
 * p(true) = 0) into the calibration figures.
 */
export class CalibrationAccumulator {
  private n = 0;
  private logLoss = 0;
  private brier = 0;
  private readonly count = new Float64Array(ECE_BINS);
  private readonly conf = new Float64Array(ECE_BINS);
  private readonly right = new Float64Array(ECE_BINS);

  add(p: Probs, y: number): void {
    const K = p.length;
    const top = argmaxRow(p, 0, K);
    let sq = 0;
    for (let k = 0; k < K; k++) sq += (p[k]! - (k === y ? 1 : 0)) ** 2;
    if (y < 0) sq += 1;
    const py = y >= 0 ? p[y]! : 0;
    this.n++;
    this.logLoss -= Math.log(Math.min(1, Math.max(py, LOG_FLOOR)));
    this.brier += sq;
    const b = reliabilityBin(p[top]!);
    this.count[b]++;
    this.conf[b] += p[top]!;
    if (top === y) this.right[b]++;
  }

  result(): CalibrationFigures {
    const n = this.n;
    let ece = 0;
    const bins: ReliabilityBin[] = [];
    for (let b = 0; b < ECE_BINS; b++) {
      const c = this.count[b]!;
      const confidence = c > 0 ? this.conf[b]! / c : null;
      const accuracy = c > 0 ? this.right[b]! / c : null;
      if (c > 0) ece += (c / n) * Math.abs(accuracy! - confidence!);
      bins.push({ lower: binEdge(b), upper: binEdge(b + 1), count: c, confidence, accuracy });
    }
    return { rows: n, logLoss: n ? this.logLoss / n : NaN, brier: n ? this.brier / n : NaN, ece: n ? ece : NaN, bins };
  }
}

/** The figures of an n × K matrix of probabilities against true classes. */
export function calibrationFigures(probs: Probs, y: ArrayLike<number>, K: number): CalibrationFigures {
  const acc = new CalibrationAccumulator();
  const row = new Float64Array(K);
  for (let i = 0; i < y.length; i++) {
    for (let k = 0; k < K; k++) row[k] = probs[i * K + k]!;
    acc.add(row, y[i]!);
  }
  return acc.result();
}

/** softmax(log(max(p, LOG_FLOOR)) / T) of one probability row, into `out` (float64 inside). */
export function temperatureScale<T extends Float32Array | Float64Array>(p: Probs, temperature: number, out: T): T {
  const K = p.length;
  const beta = 1 / temperature;
  let max = -Infinity;
  const z = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    z[k] = beta * Math.log(Math.max(p[k]!, LOG_FLOOR));
    if (z[k]! > max) max = z[k]!;
  }
  let sum = 0;
  for (let k = 0; k < K; k++) sum += z[k] = Math.exp(z[k]! - max);
  for (let k = 0; k < K; k++) out[k] = z[k]! / sum;
  return out;
}

/** A fitted temperature and how it was found. */
export interface TemperatureFit {
  temperature: number;
  /** Newton / bisection steps. */
  iterations: number;
  /** The temperature sits at an end of TEMPERATURE_RANGE (the held-out rows gave the fit nothing to stop it). */
  atBound: boolean;
}

/**
 * The temperature T minimising the mean NLL of softmax(log(max(p, LOG_FLOOR)) / T) over held-out rows: convex in
 * β = 1/T (its second derivative is the variance of log p under the scaled distribution), solved by Newton steps
 * kept inside a bracket of the derivative's sign change, bisecting when a step would leave it.
 */
export function fitTemperature(probs: Probs, y: ArrayLike<number>, K: number): TemperatureFit {
  const n = y.length;
  if (n === 0) throw new RangeError('fitTemperature: no rows');
  const z = new Float64Array(n * K);
  for (let i = 0; i < n * K; i++) z[i] = Math.log(Math.max(probs[i]!, LOG_FLOOR));
  // dNLL/dβ = mean(E_β[z] − z_y), d²NLL/dβ² = mean(Var_β[z]).
  const derivatives = (beta: number): [number, number] => {
    let d1 = 0;
    let d2 = 0;
    for (let i = 0; i < n; i++) {
      const row = z.subarray(i * K, (i + 1) * K);
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, beta * row[k]!);
      let s = 0;
      let m1 = 0;
      let m2 = 0;
      for (let k = 0; k < K; k++) {
        const e = Math.exp(beta * row[k]! - max);
        s += e;
        m1 += e * row[k]!;
        m2 += e * row[k]! * row[k]!;
      }
      const mean = m1 / s;
      d1 += mean - (y[i]! >= 0 ? row[y[i]!]! : Math.log(LOG_FLOOR));
      d2 += Math.max(0, m2 / s - mean * mean);
    }
    return [d1 / n, d2 / n];
  };
  let lo = 1 / TEMPERATURE_RANGE[1];
  let hi = 1 / TEMPERATURE_RANGE[0];
  if (derivatives(lo)[0] >= 0) return { temperature: TEMPERATURE_RANGE[1], iterations: 1, atBound: true };
  if (derivatives(hi)[0] <= 0) return { temperature: TEMPERATURE_RANGE[0], iterations: 2, atBound: true };
  let beta = 1;
  let iterations = 2;
  for (; iterations < 200; iterations++) {
    const [d1, d2] = derivatives(beta);
    if (d1 > 0) hi = beta;
    else lo = beta;
    if (Math.abs(d1) < 1e-13 || hi - lo <= 1e-14 * hi) break;
    const step = d2 > 0 ? beta - d1 / d2 : NaN;
    beta = step > lo && step < hi ? step : (lo + hi) / 2;
  }
  return { temperature: 1 / beta, iterations, atBound: false };
}

/**
 * Whether a calibration step is kept: the likelihood-ratio statistic 2·(NLL without it − NLL with it), summed over the
 * held-out rows the step was fitted on, against the chi-square quantile of its parameter count at CONFIDENCE. A step
 * whose gain those rows cannot tell from what fitting its parameters to noise gives is left out: the scores stay as
 * they were, so calibration never makes them worse on what the rows can show.
 */
export interface CalibrationTest {
  statistic: number;
  critical: number;
  kept: boolean;
}

/** χ² quantiles at CONFIDENCE (0.95) for 1 and 2 degrees of freedom: a temperature, top-label scaling's a and b. */
const CHI2_95 = { 1: 3.841458820694124, 2: 5.991464547107979 } as const;

/** The test of a step with `parameters` fitted parameters, from the held-out rows' summed NLL without and with it. */
export function likelihoodRatioTest(lossWithout: number, lossWith: number, parameters: 1 | 2): CalibrationTest {
  const statistic = Math.max(0, 2 * (lossWithout - lossWith));
  const critical = CHI2_95[parameters];
  return { statistic, critical, kept: statistic >= critical };
}

/** Held-out rows calibrated by a temperature: the fit, its test, the figures before and after, and the rows as run scores them. */
export interface TemperatureCalibration {
  fit: TemperatureFit;
  test: CalibrationTest;
  /** The temperature run applies: the fitted one where its test keeps it, else 1. */
  temperature: number;
  before: CalibrationFigures;
  after: CalibrationFigures;
  /** The rows' probabilities at that temperature (n × K). */
  probs: Float64Array;
}

/**
 * Fits a temperature on n × K held-out probabilities and true classes, tests it (likelihoodRatioTest, one parameter)
 * and scales the rows with it where it is kept.
 */
export function calibrateTemperature(raw: Float64Array, y: ArrayLike<number>, K: number): TemperatureCalibration {
  const fit = fitTemperature(raw, y, K);
  const scaled = new Float64Array(raw.length);
  for (let i = 0; i < y.length; i++) temperatureScale(raw.subarray(i * K, (i + 1) * K), fit.temperature, scaled.subarray(i * K, (i + 1) * K));
  const before = calibrationFigures(raw, y, K);
  const fitted = calibrationFigures(scaled, y, K);
  const test = likelihoodRatioTest(before.logLoss * y.length, fitted.logLoss * y.length, 1);
  return test.kept
    ? { fit, test, temperature: fit.temperature, before, after: fitted, probs: scaled }
    : { fit, test, temperature: 1, before, after: before, probs: raw.slice() };
}

/** The held-out precision–coverage curve: at each distinct score (descending), rows accepted and right among them. */
export interface PrecisionCurve {
  /** Rows it was measured on. */
  rows: number;
  thresholds: number[];
  accepted: number[];
  correct: number[];
}

/** The curve of rows scored `scores`, right where `correct` is true. */
export function precisionCoverageCurve(scores: ArrayLike<number>, correct: ArrayLike<boolean>): PrecisionCurve {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const curve: PrecisionCurve = { rows: n, thresholds: [], accepted: [], correct: [] };
  let right = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j]!;
    if (correct[i]) right++;
    // A threshold accepts every row scoring at least it: one point per distinct score, after its last row.
    if (j + 1 < n && scores[order[j + 1]!] === scores[i]) continue;
    curve.thresholds.push(scores[i]!);
    curve.accepted.push(j + 1);
    curve.correct.push(right);
  }
  return curve;
}

/** Wilson's lower confidence bound (one-sided, at CONFIDENCE) on a proportion of `k` out of `m`. */
export function wilsonLower(k: number, m: number): number {
  if (m <= 0) return 0;
  const z = Z;
  const p = k / m;
  const z2 = z * z;
  return Math.max(0, (p + z2 / (2 * m) - z * Math.sqrt((p * (1 - p)) / m + z2 / (4 * m * m))) / (1 + z2 / m));
}

/** A target precision's threshold on a held-out curve, or why there is none. */
export type TargetThreshold =
  | { target: number; confidence: number; threshold: number; accepted: number; coverage: number; precision: number; lower: number }
  | { target: number; confidence: number; threshold: null; reason: string };

/**
 * The lowest threshold (the most rows accepted) whose held-out precision's lower confidence bound reaches
 * `target`; none when no threshold's does (too few held-out rows to vouch for it, or precision never that high).
 */
export function thresholdForTarget(curve: PrecisionCurve, target: number): TargetThreshold {
  const confidence = CONFIDENCE;
  let best = -1;
  let bestLower = 0;
  let highest = 0;
  for (let j = 0; j < curve.thresholds.length; j++) {
    const lower = wilsonLower(curve.correct[j]!, curve.accepted[j]!);
    highest = Math.max(highest, lower);
    if (lower >= target) {
      best = j;
      bestLower = lower;
    }
  }
  if (best < 0) {
    const allRight = Math.ceil((Z * Z * target) / (1 - target));
    const reason =
      curve.rows === 0
        ? 'no held-out rows'
        : `the ${curve.rows} held-out rows vouch for precision ${highest.toFixed(3)} at most (the ${Math.round(confidence * 100)}% lower bound at its best threshold); ` +
          `a bound of ${target} needs about ${allRight} accepted rows even when all are right`;
    return { target, confidence, threshold: null, reason };
  }
  const accepted = curve.accepted[best]!;
  return { target, confidence, threshold: curve.thresholds[best]!, accepted, coverage: accepted / curve.rows, precision: curve.correct[best]! / accepted, lower: bestLower };
}

/**
 * Each row's answer's probability of n × K probabilities, and whether its class is `y`. The answer is the top-1
 * class, or `answers[i]` where the decision is not the argmax (a prior shift, selection.ts shiftedArgmax).
 */
export function topOneCurveRows(probs: Probs, y: ArrayLike<number>, K: number, answers?: ArrayLike<number>): { scores: Float64Array; correct: boolean[] } {
  const n = y.length;
  const scores = new Float64Array(n);
  const correct = new Array<boolean>(n);
  for (let i = 0; i < n; i++) {
    const top = answers ? answers[i]! : argmaxRow(probs, i, K);
    scores[i] = probs[i * K + top]!;
    correct[i] = top === y[i];
  }
  return { scores, correct };
}

/** The decision curve of n × K probabilities: each row's answer's probability, right when its class is `y`. */
export function topOneCurve(probs: Probs, y: ArrayLike<number>, K: number, answers?: ArrayLike<number>): PrecisionCurve {
  const { scores, correct } = topOneCurveRows(probs, y, K, answers);
  return precisionCoverageCurve(scores, correct);
}

/** The threshold a run applies: the target it serves and the score a row needs to be accepted. */
export interface Decision {
  target: number;
  threshold: number;
}

/**
 * The decision a run makes: at `requested` (--target-precision; its threshold from the bundle's held-out curve, the
 * stored one when train chose it already), else at the first target train stored a threshold for, else none.
 * A target the bundle cannot serve is a usage error saying why, naming `flag` (what the user typed).
 */
export function resolveDecision(calibration: BundleCalibration | undefined, requested: number | undefined, bundleName: string, flag = `--target-precision ${requested}`): Decision | null {
  if (requested === undefined) {
    const stored = calibration?.targets.find((t) => t.threshold !== null);
    return stored && stored.threshold !== null ? { target: stored.target, threshold: stored.threshold } : null;
  }
  if (!calibration) throw new UsageError(`${flag} needs a calibrated bundle: ${bundleName} has no calibration (train it again with this categorize)`, 'not_calibrated');
  const stored = calibration.targets.find((t) => t.target === requested);
  const t = stored ?? thresholdForTarget(calibration.curve, requested);
  if (t.threshold === null) throw new UsageError(`${flag}: ${bundleName} cannot vouch for it: ${t.reason}`, 'target_unsupported');
  return { target: requested, threshold: t.threshold };
}

/**
 * Top-label scaling (Platt on the top-1 probability): the top class's probability s becomes σ(a·logit(s) + b), the
 * other classes share the rest in their proportions. A temperature moves every row's distribution the same way;
 * held-out rows of noisy catalogs are overconfident at the top and underconfident below (amazon-electronics: rows
 * scored above 0.93 right 93.6% of the time, rows scored 0.1–0.2 right 28%), which one temperature cannot mend.
 */
export interface TopLabelScaling {
  a: number;
  b: number;
}

const logit = (s: number) => {
  const p = Math.min(1 - 1e-12, Math.max(1e-12, s));
  return Math.log(p) - Math.log1p(-p);
};

/**
 * a and b maximising the likelihood of `correct` under σ(a·logit(s) + b) (Newton's method on the 2 × 2 system,
 * halving steps that do not lower the loss). Null when the rows cannot fit it: all right or all wrong.
 */
export function fitTopLabel(scores: ArrayLike<number>, correct: ArrayLike<boolean>): TopLabelScaling | null {
  return fitTopLabelLogits(topLogits(scores), correct);
}

/** The top-1 scores' logits, as top-label scaling reads them. */
function topLogits(scores: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: scores.length }, (_, i) => logit(scores[i]!));
}

/** fitTopLabel over the scores' logits. */
function fitTopLabelLogits(x: Float64Array, correct: ArrayLike<boolean>): TopLabelScaling | null {
  const n = x.length;
  let right = 0;
  for (let i = 0; i < n; i++) if (correct[i]) right++;
  if (right === 0 || right === n) return null;
  const loss = (a: number, b: number) => topLabelLoss(x, correct, a, b) / n;
  let a = 1;
  let b = 0;
  let current = loss(a, b);
  for (let it = 0; it < 100; it++) {
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-(a * x[i]! + b)));
      const r = p - (correct[i] ? 1 : 0);
      const w = p * (1 - p);
      ga += r * x[i]!;
      gb += r;
      haa += w * x[i]! * x[i]!;
      hab += w * x[i]!;
      hbb += w;
    }
    // Converged when the mean gradient is at rounding level.
    if (Math.abs(ga) / n < 1e-14 && Math.abs(gb) / n < 1e-14) break;
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    // Full Newton steps near the optimum; halved while one would raise the loss beyond rounding.
    let step = 1;
    let next = loss(a - da, b - db);
    while (next > current + 1e-15 * Math.abs(current) && step > 1e-6) {
      step /= 2;
      next = loss(a - step * da, b - step * db);
    }
    if (next > current + 1e-15 * Math.abs(current)) break;
    a -= step * da;
    b -= step * db;
    current = next;
  }
  return Number.isFinite(a) && Number.isFinite(b) ? { a, b } : null;
}

/** Σ −log σ(a·x + b) over the right rows and −log σ(−(a·x + b)) over the wrong ones, x the top-1 logits (stable). */
function topLabelLoss(x: Float64Array, correct: ArrayLike<boolean>, a: number, b: number): number {
  let l = 0;
  for (let i = 0; i < x.length; i++) {
    const z = a * x[i]! + b;
    const m = correct[i] ? -z : z;
    l += m > 0 ? m + Math.log1p(Math.exp(-m)) : Math.log1p(Math.exp(m));
  }
  return l;
}

/**
 * The calibration steps a bundle applies, and those its held-out rows could not tell from chance (left out), in words:
 * `applied`, `leftOut` (each with its statistic), and as phrases: `text` the steps applied (or 'none'), `note` those
 * left out (or '').
 */
export function calibrationSteps(c: Pick<BundleCalibration, 'temperature' | 'tests'> & { topTemperature?: number | null; topLabel?: TopLabelScaling | null; nameMatch?: { beta: number } | null }): { applied: string[]; leftOut: string[]; text: string; note: string } {
  const applied: string[] = [];
  const leftOut: string[] = [];
  const step = (test: CalibrationTest | undefined, shown: string, name: string) => {
    if (!test || test.kept) applied.push(shown);
    else leftOut.push(`${name} (χ² ${test.statistic.toFixed(1)} < ${test.critical.toFixed(2)})`);
  };
  if (c.nameMatch || c.tests?.nameMatch) step(c.tests?.nameMatch, `class names in the text (β ${(c.nameMatch?.beta ?? 0).toFixed(2)})`, 'class names in the text');
  step(c.tests?.temperature, `temperature ${c.temperature.toFixed(3)}`, 'a temperature');
  if (typeof c.topTemperature === 'number') step(c.tests?.topTemperature, `top-level temperature ${c.topTemperature.toFixed(3)}`, 'a top-level temperature');
  if (c.topLabel || c.tests?.topLabel) step(c.tests?.topLabel, 'top-label scaling', 'top-label scaling');
  const text = applied.length > 0 ? applied.join(' + ') : 'none';
  const note = leftOut.length > 0 ? `left out, no gain beyond chance: ${leftOut.join(', ')}` : '';
  return { applied, leftOut, text, note };
}

/** Top-label scaling fitted on held-out top-1 scores and tested (likelihoodRatioTest, two parameters, against a = 1, b = 0). */
export interface TopLabelCalibration {
  fitted: TopLabelScaling;
  test: CalibrationTest;
}

/** fitTopLabel and its test; null where it cannot be fitted (every row right, or every row wrong). */
export function calibrateTopLabel(scores: ArrayLike<number>, correct: ArrayLike<boolean>): TopLabelCalibration | null {
  const x = topLogits(scores);
  const fitted = fitTopLabelLogits(x, correct);
  if (!fitted) return null;
  return { fitted, test: likelihoodRatioTest(topLabelLoss(x, correct, 1, 0), topLabelLoss(x, correct, fitted.a, fitted.b), 2) };
}

/** How far above the runner-up the top class is kept when its scaled probability would sink to it or below. */
const TOP_MARGIN = 1e-6;

/**
 * A probability row with its top class's probability scaled (TopLabelScaling), the others sharing the rest in their
 * proportions; never below what keeps the top class on top, so the answer is the same as before. Kept strictly on
 * top (TOP_MARGIN, relative, well above float32 rounding): at a tie, ranking by probability would fall back on the
 * class order and could answer the runner-up.
 */
export function applyTopLabel<T extends Float32Array | Float64Array>(p: ArrayLike<number>, scaling: TopLabelScaling, out: T): T {
  const K = p.length;
  let top = 0;
  for (let k = 1; k < K; k++) if (p[k]! > p[top]!) top = k;
  let second = 0;
  for (let k = 0; k < K; k++) if (k !== top) second = Math.max(second, p[k]!);
  const s = p[top]!;
  const rest = 1 - s;
  let scaled = 1 / (1 + Math.exp(-(scaling.a * logit(s) + scaling.b)));
  // The top class stays on top: s' ≥ p₂·(1 − s')/(1 − s) ⟺ s' ≥ p₂ / (1 − s + p₂), with a margin: at s' = p₂·(1 + ε)
  // / (1 − s + p₂) the runner-up is p₂·(1 − p₂ε/(1 − s)) / (1 − s + p₂), so the top is at least (1 + ε) times it.
  // A top class holding all the mass (float32 rounds 1 − 1e-8 to 1) leaves the rest to share evenly.
  if (rest > 0) scaled = Math.max(scaled, Math.min(s, (second / (rest + second)) * (1 + TOP_MARGIN)));
  else scaled = Math.max(scaled, 1 / K);
  const f = rest > 0 ? (1 - scaled) / rest : 0;
  for (let k = 0; k < K; k++) out[k] = k === top ? scaled : rest > 0 ? p[k]! * f : (1 - scaled) / (K - 1);
  return out;
}
