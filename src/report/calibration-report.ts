// Eval's calibration section: each row's probabilities and whether its answer is right, turned into the figures of
// the calibrated and the raw probabilities (ECE, Brier, log-loss, reliability bins), the precision–coverage curve on
// the eval rows, and each target threshold's realized precision and coverage there, accepted by run's own decide().
import type { NameMatch } from '../head/name-match.js';
import {
  CONFIDENCE,
  CalibrationAccumulator,
  precisionCoverageCurve,
  resolveDecision,
  thresholdForTarget,
  wilsonLower,
  type CalibrationFigures,
  type PrecisionCurve,
  type TopLabelScaling,
} from '../head/calibration.js';
import type { BundleCalibration } from '../models/bundle.js';
import type { PredictionRecord } from '../io/prediction-writer.js';
import { decide } from '../pipeline/predictor.js';

/** --min-precision-at target:precision: at `target`'s threshold, the accepted eval rows must be right this often. */
export interface PrecisionGate {
  target: number;
  precision: number;
}

/** The fields of a record decide() reads. */
type DecisionRecord = Parameters<typeof decide>[0];

/** What the held-out rows said about a target's threshold when train (or resolveDecision) chose it. */
export interface HeldOutPrecision {
  accepted: number;
  coverage: number;
  precision: number;
  /** Wilson's lower bound at CONFIDENCE: what the threshold was chosen by. */
  lower: number;
}

/** A threshold's decisions on the eval rows: accepted rows, right ones among them, their share and precision. */
export interface RealizedPrecision {
  accepted: number;
  correct: number;
  /** Accepted rows over all eval rows (error rows included: they are never accepted). */
  coverage: number;
  /** Right among accepted; null when none was accepted. */
  precision: number | null;
  /** Wilson's lower bound at CONFIDENCE on that precision (0 when none was accepted). */
  lower: number;
}

/** A target as planned before the rows run: its threshold (or why none), what the held-out rows said, and its gate. */
export interface TargetPlan {
  target: number;
  /** Train stored this target (train --target-precision); else only --min-precision-at asked for it. */
  stored: boolean;
  /** The decision run makes when given no --target-precision (the first stored target with a threshold). */
  runDefault: boolean;
  threshold: number | null;
  /** Why there is no threshold (too few held-out rows to vouch for the target); null when there is one. */
  reason: string | null;
  heldOut: HeldOutPrecision | null;
  /** --min-precision-at's minimum for this target, or null. */
  minPrecision: number | null;
}

/** One target precision as eval reports it: its plan, what the eval rows made of it, and its gate. */
export interface TargetReport extends Omit<TargetPlan, 'minPrecision'> {
  /** Null without a threshold. */
  eval: RealizedPrecision | null;
  /** --min-precision-at's minimum for this target, and whether the eval rows met it. */
  gate: { minPrecision: number; passed: boolean } | null;
}

/** Eval's calibration figures, curve and targets (the `calibration` object of eval --json). */
export interface CalibrationReport {
  /** The bundle carries a calibration (format 5 and a held-out set at train time). */
  calibrated: boolean;
  /**
   * A path bundle: the decision score is the most probable full path's, and decide() accepts a row only when its
   * answer also reaches full depth at the answer threshold (--min-path-score).
   */
  paths: boolean;
  /** Eval rows, error rows included. */
  rows: number;
  /** Rows with probabilities: the figures are over these. */
  scored: number;
  /** The bundle's calibration as train stored it (held-out figures before and after), or null. */
  bundle: {
    temperature: number;
    topTemperature: number | null;
    topLabel: TopLabelScaling | null;
    /** The name match (BundleCalibration.nameMatch): its beta and the classes whose names count, or null. */
    nameMatch: NameMatch | null;
    /** Each step's test on the held-out rows (absent in older bundles). */
    tests: BundleCalibration['tests'];
    /** The decision's prior shift (BundleCalibration.prior): its exponent, or null when the answer is the top class. */
    priorAlpha: number | null;
    source: BundleCalibration['source'];
    rows: number;
    before: BundleCalibration['before'];
    after: BundleCalibration['after'];
  } | null;
  /** Figures of the probabilities the bundle gives (calibrated when it is). */
  figures: CalibrationFigures;
  /** Figures of the probabilities before calibration; null for an uncalibrated bundle (they are `figures`). */
  raw: CalibrationFigures | null;
  /** The precision–coverage curve of the decision score on the eval rows (coverage over all of them). */
  curve: PrecisionCurve;
  /** Confidence of the lower bounds (held-out and eval). */
  confidence: number;
  /** Stored targets and those --min-precision-at asked for, by target. */
  targets: TargetReport[];
}

/**
 * The targets eval reports: those train stored, and each --min-precision-at target with the threshold
 * resolveDecision gives it (run --target-precision's own). A gate on an uncalibrated bundle, or on a target the
 * bundle cannot vouch for, is a usage error, raised here before any row is read.
 */
export function planTargets(calibration: BundleCalibration | undefined, gates: readonly PrecisionGate[], bundleName: string): TargetPlan[] {
  const gate = (g: PrecisionGate) => `--min-precision-at ${g.target}:${g.precision}`;
  // A gate on an uncalibrated bundle: resolveDecision's usage error.
  if (!calibration) {
    for (const g of gates) resolveDecision(calibration, g.target, bundleName, gate(g));
    return [];
  }
  const runDefault = resolveDecision(calibration, undefined, bundleName);
  const plans = new Map<number, TargetPlan>();
  for (const t of calibration.targets) {
    plans.set(t.target, {
      target: t.target,
      stored: true,
      runDefault: runDefault?.target === t.target,
      threshold: t.threshold,
      reason: t.threshold === null ? t.reason : null,
      heldOut: t.threshold === null ? null : { accepted: t.accepted, coverage: t.coverage, precision: t.precision, lower: t.lower },
      minPrecision: null,
    });
  }
  for (const g of gates) {
    const threshold = resolveDecision(calibration, g.target, bundleName, gate(g))!.threshold;
    const known = plans.get(g.target);
    if (known) {
      known.minPrecision = g.precision;
      continue;
    }
    const t = thresholdForTarget(calibration.curve, g.target);
    plans.set(g.target, {
      target: g.target,
      stored: false,
      runDefault: false,
      threshold,
      reason: null,
      heldOut: t.threshold === null ? null : { accepted: t.accepted, coverage: t.coverage, precision: t.precision, lower: t.lower },
      minPrecision: g.precision,
    });
  }
  return [...plans.values()].sort((a, b) => a.target - b.target);
}

/**
 * Streams eval rows into the calibration report. A row is right when its answer is the label: a flat bundle's top-1
 * class, a path bundle's most probable full path (the label canonicalised as eval reads path labels). A label the
 * model does not know is wrong, with probability 0; an error row has no probabilities, so it is left out of the
 * figures and the curve's scores, but counts in the coverage and is never accepted.
 */
export class CalibrationReportAccumulator {
  private readonly figures = new CalibrationAccumulator();
  private readonly raw: CalibrationAccumulator | null;
  private readonly index: Map<string, number>;
  /** Decision score and correctness of each scored row (the curve). */
  private readonly scores: number[] = [];
  private readonly right: boolean[] = [];
  /** What decide() reads of every row, and whether its answer is right. */
  private readonly records: { record: DecisionRecord; correct: boolean }[] = [];

  constructor(
    classes: readonly string[],
    private readonly paths: boolean,
    private readonly calibrated: boolean,
  ) {
    this.index = new Map(classes.map((c, i) => [c, i]));
    this.raw = calibrated ? new CalibrationAccumulator() : null;
  }

  /** One eval row: its (canonical) label, record, and probabilities (null for an error row). */
  add(label: string, record: DecisionRecord, probs: ArrayLike<number> | null, rawProbs: ArrayLike<number> | null): void {
    const ok = record.status === 'ok' && probs !== null;
    const answer = this.paths ? (record.path?.full_path ?? null) : record.category;
    const correct = ok && answer === label;
    this.records.push({ record: { status: record.status, score: record.score, path: record.path, category: record.category }, correct });
    if (!ok) return;
    const y = this.index.get(label) ?? -1;
    this.figures.add(probs, y);
    if (this.raw && rawProbs) this.raw.add(rawProbs, y);
    // The decision score: the top-1 probability, a path bundle's full path's (train's curve is of the same score).
    const score = this.paths ? record.path?.full_path_score : record.score;
    if (score === null || score === undefined) return;
    this.scores.push(score);
    this.right.push(correct);
  }

  /** The figures, the curve on these rows, and each planned target's decisions on them. */
  result(calibration: BundleCalibration | undefined, plans: readonly TargetPlan[]): CalibrationReport {
    const rows = this.records.length;
    const curve = precisionCoverageCurve(this.scores, this.right);
    curve.rows = rows;
    const targets = plans.map((p): TargetReport => {
      const realized = p.threshold === null ? null : this.realized(p.target, p.threshold);
      const { minPrecision, ...rest } = p;
      return {
        ...rest,
        eval: realized,
        gate: minPrecision === null ? null : { minPrecision, passed: realized !== null && realized.precision !== null && realized.precision >= minPrecision },
      };
    });
    return {
      calibrated: this.calibrated,
      paths: this.paths,
      rows,
      scored: this.scores.length,
      bundle: calibration
        ? {
            temperature: calibration.temperature,
            topTemperature: calibration.topTemperature ?? null,
            topLabel: calibration.topLabel ?? null,
            nameMatch: calibration.nameMatch ?? null,
            tests: calibration.tests,
            priorAlpha: calibration.prior?.alpha ?? null,
            source: calibration.source,
            rows: calibration.rows,
            before: calibration.before,
            after: calibration.after,
          }
        : null,
      figures: this.figures.result(),
      raw: this.raw?.result() ?? null,
      curve,
      confidence: CONFIDENCE,
      targets,
    };
  }

  /** The rows decide() accepts at this threshold, as run would decide them. */
  private realized(target: number, threshold: number): RealizedPrecision {
    let accepted = 0;
    let correct = 0;
    for (const r of this.records) {
      if (decide(r.record, { target, threshold }).decision !== 'accept') continue;
      accepted++;
      if (r.correct) correct++;
    }
    const rows = this.records.length;
    return { accepted, correct, coverage: rows ? accepted / rows : 0, precision: accepted ? correct / accepted : null, lower: wilsonLower(correct, accepted) };
  }
}

/** One line per --min-precision-at target the eval rows failed; empty when all pass. */
export function precisionGateFailures(report: CalibrationReport): string[] {
  const out: string[] = [];
  for (const t of report.targets) {
    if (!t.gate || t.gate.passed || !t.eval) continue;
    const flag = `--min-precision-at ${t.target}:${t.gate.minPrecision}`;
    const at = `target ${t.target} (score ≥ ${t.threshold!.toFixed(4)})`;
    out.push(
      t.eval.precision === null
        ? `no eval row was accepted at ${at}: no precision to hold to ${flag}`
        : `precision ${t.eval.precision.toFixed(4)} of the ${t.eval.accepted} eval rows accepted at ${at} is below ${flag}`,
    );
  }
  return out;
}

/** A point of the precision–coverage curve. */
export interface CurvePoint {
  threshold: number;
  accepted: number;
  coverage: number;
  precision: number;
}

function point(curve: PrecisionCurve, j: number): CurvePoint {
  const accepted = curve.accepted[j]!;
  return { threshold: curve.thresholds[j]!, accepted, coverage: curve.rows ? accepted / curve.rows : 0, precision: curve.correct[j]! / accepted };
}

/**
 * The curve where coverage reaches each of `coverages` (shares of all eval rows): the lowest threshold whose
 * coverage does not pass it. A share no threshold gets under (ties at the top score) is left out, and so is one
 * that would repeat the previous point.
 */
export function curveAtCoverage(curve: PrecisionCurve, coverages: readonly number[]): CurvePoint[] {
  const out: CurvePoint[] = [];
  let j = -1;
  for (const c of coverages) {
    while (j + 1 < curve.accepted.length && curve.accepted[j + 1]! <= c * curve.rows + 1e-9) j++;
    if (j < 0 || out[out.length - 1]?.accepted === curve.accepted[j]) continue;
    out.push(point(curve, j));
  }
  return out;
}

/** At most about `max` points of the curve, evenly spread over coverage, its first and last always among them. */
export function thinCurve(curve: PrecisionCurve, max: number): CurvePoint[] {
  const n = curve.thresholds.length;
  if (n <= max) return Array.from({ length: n }, (_, j) => point(curve, j));
  const out: CurvePoint[] = [point(curve, 0)];
  const step = curve.accepted[n - 1]! / (max - 1);
  let next = curve.accepted[0]! + step;
  for (let j = 1; j < n - 1; j++) {
    if (curve.accepted[j]! < next) continue;
    out.push(point(curve, j));
    next = curve.accepted[j]! + step;
  }
  out.push(point(curve, n - 1));
  return out;
}
