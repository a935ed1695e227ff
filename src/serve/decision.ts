// Accept/review decisions as `serve` makes them: the server's target precision (--target-precision, else the bundle's
// first stored target), a request's own `target_precision` resolved against the bundle's calibration like run's flag,
// and a record's decision made again when a request changes the target or re-answers a path at its min_path_score.
import { attributeDecision, type BundleSession } from '../pipeline/bundle-session.js';
import type { PredictionRecord } from '../io/prediction-writer.js';
import type { BundleAttribute, BundleCalibration } from '../models/bundle.js';
import { resolveDecision, type Decision } from '../head/calibration.js';
import { decide } from '../pipeline/predictor.js';
import { CategorizeError } from '../errors.js';
import { HttpError, parseUnitField, type FieldProblem } from './http-error.js';

/** What the server knows of decisions. */
export interface ServeDecision {
  /** What a request's target_precision is resolved against; undefined: the bundle is not calibrated. */
  calibration: BundleCalibration | undefined;
  /** The decision unless a request names its own target; null: records and answers carry none. */
  decision: Decision | null;
  /** Where the decision came from, for the startup line. */
  source: '--target-precision' | 'bundle';
}

export function serveDecision(session: Pick<BundleSession, 'bundle' | 'decision'>, targetPrecision: number | undefined): ServeDecision {
  return { calibration: session.bundle.manifest.calibration, decision: session.decision, source: targetPrecision === undefined ? 'bundle' : '--target-precision' };
}

/**
 * The decision a request gets: its own `target_precision` when it sends one, else the server's. A target the bundle
 * cannot serve (no calibration, or too few held-out rows to vouch for it) is the client's to change: 400, saying why.
 */
export function requestDecision(served: ServeDecision, requested: number | undefined): Decision | null {
  if (requested === undefined || requested === served.decision?.target) return served.decision;
  try {
    // Named "the bundle", not by its folder: the client has no business knowing where the server keeps it.
    return resolveDecision(served.calibration, requested, 'the bundle', `target_precision ${requested}`);
  } catch (err) {
    if (!(err instanceof CategorizeError)) throw err;
    throw new HttpError(400, err.message, err.code);
  }
}

/** Each attribute's decision per target, resolved once: a batch decides every record at the same target. */
const attributeThresholds = new WeakMap<BundleAttribute, Map<number, Decision | undefined>>();

function attributeThreshold(attribute: BundleAttribute, decision: Decision): Decision | undefined {
  let byTarget = attributeThresholds.get(attribute);
  if (!byTarget) attributeThresholds.set(attribute, (byTarget = new Map()));
  if (!byTarget.has(decision.target)) byTarget.set(decision.target, attributeDecision(attribute, decision));
  return byTarget.get(decision.target);
}

/**
 * `record` decided at `decision` (made again: its answer or the target may differ from what the predictor used); its
 * attributes too, each at its own threshold for that target (none where its calibration cannot vouch for it).
 */
export function withDecision(record: PredictionRecord, decision: Decision | null, attributes: readonly BundleAttribute[] = []): PredictionRecord {
  if (!decision) return record;
  const decided: PredictionRecord = { ...record, decision: decide(record, decision) };
  if (record.attributes) {
    decided.attributes = Object.fromEntries(
      Object.entries(record.attributes).map(([name, a]) => {
        const spec = attributes.find((x) => x.name === name);
        const at = spec ? attributeThreshold(spec, decision) : undefined;
        const { decision: _, ...rest } = a;
        return [name, at && a.score !== null ? { ...rest, decision: { decision: a.score >= at.threshold ? ('accept' as const) : ('review' as const), target: at.target } } : rest];
      }),
    );
  }
  return decided;
}

/**
 * `target_precision` (a form field of /predict, a query parameter of /predict/batch): a number strictly between 0 and
 * 1, or a FastAPI-style field problem, as pydantic words them for a `float = Field(gt=0, lt=1)`. Absent: undefined.
 */
export function parseTargetField(raw: string | undefined, field: string, loc: 'body' | 'query'): number | undefined | FieldProblem {
  return parseUnitField(raw, field, loc, true);
}
