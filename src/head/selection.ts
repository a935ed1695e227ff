// Selection: each head's C from the grid, by log-loss on held-out predictions (k folds, or one held-out share;
// macro-F1 among the values within noise of the least), then the late-fusion weight on the rows both heads
// predicted. Every (head, fold) path of C values is an independent job for the FitPool, so the grid runs on every
// core; the choices do not depend on the order.
import { UsageError } from '../errors.js';
import { computeMetrics } from '../report/metrics.js';
import { chooseFusionWeight, type WeightCandidate } from './fusion.js';
import type { FitPool } from './fit-pool.js';
import { meanSolution, solverWidth, type FitOptions, type HeadDesign, type PathEvent, type Solution } from './modality-head.js';
import { mulberry32 } from './random.js';
import { rowLogLoss, withinNoise } from './scoring.js';
import type { Split } from './split.js';

/** A head being selected: its name and design, and which of the procedure's rows its design rows are. */
export interface HeadCandidate {
  name: string;
  design: HeadDesign;
  /** Procedure row index of each design row (ascending). */
  rows: Int32Array;
}

/** Where a fit stands, for progress displays: a finished fit, or an iteration of one under way. */
export interface FitProgressEvent {
  procedure: string;
  head: string;
  C: number;
  final: boolean;
  event: PathEvent;
}

/** A fit a procedure will run: a head's fit at one C of the grid, or its final fit (C chosen later). */
export interface PlannedFit {
  head: string;
  C: number | null;
  final: boolean;
}

export interface FitProgress {
  /** These fits will run too (announced by each procedure before its first fit). */
  plan(fits: PlannedFit[]): void;
  report(e: FitProgressEvent): void;
}

export const silentFitProgress: FitProgress = { plan() {}, report() {} };

export interface CTrial {
  head: string;
  C: number;
  /** Held-out log-loss; NaN for a C not fitted because it could not win (PATH_STOP_RISES). */
  logLoss: number;
  /** Held-out macro-F1 (argmax); NaN where logLoss is. */
  macroF1: number;
  /** Whether its log-loss is within noise of the least (chooseC): the values macro-F1 chose among. */
  nearBest: boolean;
  rows: number;
}

/**
 * With one held-out share, a head's path stops after its held-out log-loss rose at this many consecutive C values
 * past the least so far, or at the first that rose beyond noise of it (PathTask.stopAfterRises). With k folds no
 * single path sees the mean it is chosen by, so every path runs the whole grid.
 */
export const PATH_STOP_RISES = 2;

/** Solutions kept per path for warm-starting the final fit, at most (numbers over the grid): about 512 MB. */
const MAX_KEPT_SOLUTION_NUMBERS = 2 ** 26;

/** One head's choice of C. */
export interface CSelection {
  C: number;
  /**
   * The mean of the splits' solutions at the chosen C, where the final fit can start (scikit-learn's
   * LogisticRegressionCV refits from the same mean); null when keeping them would cost too much memory.
   */
  start: Solution | null;
  /** Held-out probabilities at the chosen C, by procedure row. */
  heldOut: Map<number, Float64Array>;
  trials: CTrial[];
}

/** Design row of each procedure row (−1 where the head's modality is missing). */
export function positions(rows: Int32Array, n: number): Int32Array {
  const at = new Int32Array(n).fill(-1);
  rows.forEach((r, i) => (at[r] = i));
  return at;
}

/** The design rows among `procRows` (procedure indices). */
export function designRows(at: Int32Array, procRows: readonly number[]): Int32Array {
  return Int32Array.from(procRows.filter((r) => at[r]! >= 0), (r) => at[r]!);
}

/** Throws the usage error a user can act on when a fit would see fewer than two classes. */
export function checkTwoClasses(head: string, design: HeadDesign, train: Int32Array): void {
  const seen = new Set<number>();
  for (const i of train) if (seen.add(design.y[i]!).size >= 2) return;
  throw new UsageError(`the ${head} head needs rows of at least two classes that have ${head}; found ${train.length} rows`, 'one_class');
}

/**
 * A head's C from the grid (chooseC) on the held-out rows of every split (probabilities clipped at 1e-15, as
 * scikit-learn's log_loss). Each split's path over the grid is one pool job; `init`: where each path starts
 * (a neighbouring fit's solution: the same optimum, fewer iterations), else zeros.
 */
export async function selectHeadC(
  pool: FitPool,
  h: HeadCandidate,
  splits: Split[],
  Cs: number[],
  lr: FitOptions,
  y: Int32Array,
  progress: { procedure: string; report: FitProgress['report'] },
  stopPaths = true,
  init: Solution | null = null,
): Promise<CSelection> {
  const grid = [...Cs].sort((a, b) => a - b);
  const at = positions(h.rows, y.length);
  const byC = grid.map(() => new Map<number, Float64Array>());
  const keep = h.design.nClasses * solverWidth(h.design) * grid.length <= MAX_KEPT_SOLUTION_NUMBERS;
  const paths = splits.map((split) => {
    const train = designRows(at, split.train);
    checkTwoClasses(h.name, h.design, train);
    const test = designRows(at, split.test);
    const onEvent = (event: PathEvent) => progress.report({ procedure: progress.procedure, head: h.name, C: event.type === 'fit' ? event.stats.C : event.C, final: false, event });
    const stopAfterRises = stopPaths && splits.length === 1 ? PATH_STOP_RISES : undefined;
    return pool.path(h.design, { train, test, Cs: grid, lr, keep: false, solutions: keep, stopAfterRises, ...(init ? { init } : {}) }, onEvent).then((res) => ({ test, res }));
  });
  // Results are gathered in split order, whatever order the jobs finished in.
  const done = await Promise.all(paths);
  const K = h.design.nClasses;
  for (const { test, res } of done) res.probs.forEach((p, c) => test.forEach((row, j) => byC[c]!.set(h.rows[row]!, p.subarray(j * K, (j + 1) * K))));
  // A C the path stopped before has no held-out predictions: it could not win.
  const fitted = grid.map((_, c) => done.every((d) => d.res.probs.length > c));
  const choice = chooseC(byC.map((m, c) => (fitted[c] ? m : null)), y, K);
  const best = choice.best;
  const trials = grid.map((C, c) => ({ head: h.name, C, ...choice.figures[c]! }));
  const classes = Int32Array.from(new Set(Array.from(h.design.y)).values()).sort();
  const start = keep ? meanSolution(done.map((d) => d.res.solutions![best]!), classes, solverWidth(h.design)) : null;
  return { C: grid[best]!, start, heldOut: byC[best]!, trials };
}

/**
 * The C (an index into `heldOut`, null where not fitted) whose held-out predictions are best: the least mean
 * log-loss, unless other values predict as well as far as these rows can tell. A value whose per-row log-loss
 * exceeds the least one's by less than one standard error of that excess (paired, row by row) is within noise of it;
 * among those, the highest held-out macro-F1 wins (then the lower log-loss). Near its least, log-loss is flat across
 * C while the rare classes are not: a stronger penalty can leave a rare value never answered, which log-loss
 * barely sees and macro-F1 weighs as much as a common class.
 */
export function chooseC(heldOut: (Map<number, Float64Array> | null)[], y: ArrayLike<number>, K: number): { best: number; figures: { logLoss: number; macroF1: number; rows: number; nearBest: boolean }[] } {
  const none = { logLoss: NaN, macroF1: NaN, rows: 0, nearBest: false };
  const rowsOf = (m: Map<number, Float64Array>) => [...m.keys()].sort((a, b) => a - b);
  const losses = heldOut.map((m) => (m ? heldOutRowLosses(m, y) : null));
  const means = losses.map((l) => (l ? l.reduce((s, v) => s + v, 0) / Math.max(1, l.length) : Infinity));
  const least = means.indexOf(Math.min(...means));
  const near = losses.map((l, c) => (!l || c === least ? c === least : withinNoise(l, losses[least]!)));
  const figures = heldOut.map((m, c) => (m ? { ...heldOutFigures(rowsOf(m), (i) => m.get(i)!, y, K), rows: m.size, nearBest: near[c]! } : none));
  let best = least;
  figures.forEach((f, c) => {
    if (near[c] && (f.macroF1 > figures[best]!.macroF1 || (f.macroF1 === figures[best]!.macroF1 && means[c]! < means[best]!))) best = c;
  });
  return { best, figures };
}

/** Each held-out row's log-loss, by ascending row: the order chooseC pairs two values' rows in. */
export function heldOutRowLosses(heldOut: Map<number, ArrayLike<number>>, y: ArrayLike<number>): Float64Array {
  return Float64Array.from([...heldOut.keys()].sort((a, b) => a - b), (i) => rowLogLoss(heldOut.get(i)![y[i]!]!));
}

/** Macro-F1 (argmax; ties to the lower class index) and mean log-loss of held-out probabilities on some rows. */
export function heldOutFigures(rows: readonly number[], probs: (r: number) => ArrayLike<number>, y: ArrayLike<number>, K: number): { macroF1: number; logLoss: number } {
  const answers: number[] = [];
  let logLoss = 0;
  for (const r of rows) {
    const p = probs(r);
    let arg = 0;
    for (let k = 1; k < K; k++) if (p[k]! > p[arg]!) arg = k;
    answers.push(arg);
    logLoss += rowLogLoss(p[y[r]!]!);
  }
  return { macroF1: macroF1Of(answers, rows.map((r) => y[r]!), K), logLoss: logLoss / Math.max(1, rows.length) };
}

/** Macro-F1 of class indices answered against the labels' (metrics.ts over the K classes). */
function macroF1Of(answers: readonly number[], y: readonly number[], K: number): number {
  const names = Array.from({ length: K }, (_, k) => String(k));
  const yPred = answers.map((k) => names[k]!);
  return computeMetrics({ yTrue: y.map((k) => names[k]!), yPred, ranked: yPred.map((c) => [c]), modelClasses: names }).macroF1;
}

/**
 * The weight of the first of two heads on the held-out rows both predicted (the second gets 1 − w), or null
 * when no held-out row has both.
 */
export function selectFusionWeight(
  heldOut: Map<number, Float64Array>[],
  y: Int32Array,
  classes: string[],
): { rows: number; weights: [number, number]; best: WeightCandidate; candidates: WeightCandidate[] } | null {
  const both = [...heldOut[0]!.keys()].filter((i) => heldOut[1]!.has(i)).sort((a, b) => a - b);
  if (both.length === 0) return null;
  const K = classes.length;
  const stack = (h: number) => {
    const out = new Float64Array(both.length * K);
    both.forEach((i, r) => out.set(heldOut[h]!.get(i)!, r * K));
    return { classes, probs: out };
  };
  const { best, candidates } = chooseFusionWeight(stack(0), stack(1), both.map((i) => y[i]!), classes);
  return { rows: both.length, weights: [best.w, Math.round((1 - best.w) * 1e9) / 1e9], best, candidates };
}

/** Exponents of the class prior a model's decision may be divided by (choosePriorShift); 0 leaves it as fitted. */
export const PRIOR_SHIFT_ALPHAS: readonly number[] = [0, 0.25, 0.5, 0.75, 1];

/** How far a model's decision is shifted against the class prior, and the held-out figures that chose it. */
export interface PriorShift {
  /** The exponent chosen: the class answered is the most probable after dividing by prior^alpha. */
  alpha: number;
  /** −alpha · log(prior) per class, centred to mean 0: added to the raw fused log-probabilities to decide (shiftedArgmax). */
  bias: Float64Array;
  /** Each exponent's held-out macro-F1, and the bootstrap standard error of its shortfall from the best one's (0 for the best). */
  trials: { alpha: number; macroF1: number; se: number }[];
}

/** Bootstrap resamples of the held-out rows that judge whether a prior shift's gain is beyond noise. */
export const PRIOR_SHIFT_BOOTSTRAP = 200;

/** Each class's share of the labels (every class occurs). */
export function classPrior(y: ArrayLike<number>, K: number): Float64Array {
  const prior = new Float64Array(K);
  for (let i = 0; i < y.length; i++) prior[y[i]!]! += 1 / y.length;
  return prior;
}

/**
 * Logit adjustment of the decision, chosen on held-out predictions (raw fused probabilities, rows × K, labels `y`
 * row by row). Log-loss fitting answers the frequent classes wherever a row is in doubt; macro-F1 weighs a rare
 * class as much as a common one, and dividing the probabilities by prior^alpha moves the doubtful rows toward the
 * rarer classes. Of PRIOR_SHIFT_ALPHAS, the smallest alpha whose held-out macro-F1 is within one standard error of
 * the best one's (the shortfall paired row by row, its spread over `resamples` seeded bootstrap draws of the rows)
 * wins: a shift is taken only where it gains beyond what these rows can tell, since each step moves answers off
 * the most probable class. Only the class answered moves: the probabilities (and so calibration) stay the model's,
 * a row's score is its answer's own probability, and a precision target's threshold is chosen on those answers.
 */
export function choosePriorShift(
  raw: Float64Array,
  y: ArrayLike<number>,
  K: number,
  prior: Float64Array,
  seed: number,
  alphas: readonly number[] = PRIOR_SHIFT_ALPHAS,
  resamples = PRIOR_SHIFT_BOOTSTRAP,
): PriorShift {
  const logPrior = Array.from(prior, (p) => Math.log(p));
  const mean = logPrior.reduce((s, v) => s + v, 0) / K;
  const labels = Array.from(y);
  const n = labels.length;
  const candidates = alphas.map((alpha) => {
    const bias = Float64Array.from(logPrior, (l) => -alpha * (l - mean));
    const answers = labels.map((_, i) => shiftedArgmax(raw.subarray(i * K, (i + 1) * K), bias));
    return { alpha, bias, answers, macroF1: macroF1Of(answers, labels, K) };
  });
  let best = candidates[0]!;
  for (const c of candidates) if (c.macroF1 > best.macroF1 || (c.macroF1 === best.macroF1 && c.alpha < best.alpha)) best = c;
  // The shortfall of each candidate from the best on the same bootstrap draws of the rows.
  const rand = mulberry32(seed);
  const shortfalls = candidates.map(() => new Float64Array(resamples));
  const counts = new Int32Array(n);
  for (let b = 0; b < resamples; b++) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[Math.floor(rand() * n)]!++;
    const top = drawnMacroF1(best.answers, labels, counts, K);
    candidates.forEach((c, j) => (shortfalls[j]![b] = c === best ? 0 : top - drawnMacroF1(c.answers, labels, counts, K)));
  }
  const trials = candidates.map((c, j) => ({ alpha: c.alpha, macroF1: c.macroF1, se: standardDeviation(shortfalls[j]!) }));
  const chosen = candidates.find((c, j) => best.macroF1 - c.macroF1 <= trials[j]!.se)!;
  return { alpha: chosen.alpha, bias: chosen.bias, trials };
}

/**
 * Macro-F1 of answers on a bootstrap draw, row i counted counts[i] times: computeMetrics' figure (F1 per class present
 * in the labels or answers, 2·tp / (2·tp + fp + fn)) over counts, for the draws' inner loop.
 */
function drawnMacroF1(answers: readonly number[], labels: readonly number[], counts: Int32Array, K: number): number {
  const tp = new Float64Array(K);
  const fp = new Float64Array(K);
  const fn = new Float64Array(K);
  for (let i = 0; i < labels.length; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    if (answers[i] === labels[i]) tp[labels[i]!]! += c;
    else {
      fp[answers[i]!]! += c;
      fn[labels[i]!]! += c;
    }
  }
  let sum = 0;
  let present = 0;
  for (let k = 0; k < K; k++) {
    const d = 2 * tp[k]! + fp[k]! + fn[k]!;
    if (d === 0) continue;
    present++;
    sum += (2 * tp[k]!) / d;
  }
  return present === 0 ? 0 : sum / present;
}

/** The sample standard deviation (n − 1). */
function standardDeviation(xs: ArrayLike<number>): number {
  const n = xs.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += xs[i]!;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i]! - mean) ** 2;
  return Math.sqrt(ss / Math.max(1, n - 1));
}

/**
 * The class a shifted decision answers: argmax over k of log p_k + scale · bias_k (ties to the lower index). `p` are
 * fused probabilities at temperature T when scale is 1 / T (softmax(f / T) ranks as f + T · bias would, up to the
 * factor), the raw ones when it is 1.
 */
export function shiftedArgmax(p: ArrayLike<number>, bias: ArrayLike<number>, scale = 1): number {
  let arg = 0;
  let best = -Infinity;
  for (let k = 0; k < p.length; k++) {
    const v = Math.log(Math.max(p[k]!, 1e-300)) + scale * bias[k]!;
    if (v > best) [best, arg] = [v, k];
  }
  return arg;
}
