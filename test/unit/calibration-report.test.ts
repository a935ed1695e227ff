// eval's calibration section on hand-made rows: the figures against calibration.ts's own, the curve over the eval
// rows (error rows counted, never accepted), the targets' thresholds and realized precision, the gate, and the
// table, HTML and option parser that show and take them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { calibrationFigures, precisionCoverageCurve, resolveDecision, thresholdForTarget, wilsonLower } from '../../src/head/calibration.js';
import type { BundleCalibration } from '../../src/models/bundle.js';
import type { PredictionRecord } from '../../src/io/prediction-writer.js';
import { CalibrationReportAccumulator, curveAtCoverage, planTargets, precisionGateFailures, thinCurve, type TargetPlan } from '../../src/report/calibration-report.js';
import { formatCalibrationTable } from '../../src/report/table.js';
import { renderEvalReport } from '../../src/report/html-report.js';
import { computeMetrics } from '../../src/report/metrics.js';
import { UsageError } from '../../src/errors.js';
import { targetPrecisionMinimums } from '../../src/cli/options.js';

const CLASSES = ['a', 'b', 'c'];

type Row = { label: string; probs: number[] | null; raw: number[] | null };
/** Six eval rows: right, wrong, right, an unknown label, an error row, right; two scored 0.6 (a tie). */
const ROWS: Row[] = [
  { label: 'a', probs: [0.9, 0.05, 0.05], raw: [0.8, 0.1, 0.1] },
  { label: 'b', probs: [0.7, 0.2, 0.1], raw: [0.5, 0.3, 0.2] },
  { label: 'c', probs: [0.1, 0.1, 0.8], raw: [0.2, 0.2, 0.6] },
  { label: 'zzz', probs: [0.6, 0.3, 0.1], raw: [0.4, 0.35, 0.25] },
  { label: 'a', probs: null, raw: null },
  { label: 'b', probs: [0.2, 0.6, 0.2], raw: [0.3, 0.4, 0.3] },
];

/** A flat record as the predictor writes it: the top-1 class and its (float32) probability, or an error row. */
function flatRecord(probs: number[] | null): PredictionRecord {
  if (!probs) return { id: 'e', category: null, score: null, top_categories: [], tags: [], status: 'error', error: 'image_not_found: x', warnings: [] };
  const top = probs.indexOf(Math.max(...probs));
  return { id: 'r', category: CLASSES[top]!, score: Math.fround(probs[top]!), top_categories: [], tags: [], status: 'ok', error: null, warnings: [] };
}

function flatAccumulator(calibrated = true): CalibrationReportAccumulator {
  const acc = new CalibrationReportAccumulator(CLASSES, false, calibrated);
  for (const r of ROWS) acc.add(r.label, flatRecord(r.probs), r.probs && Float32Array.from(r.probs), calibrated ? r.raw && Float32Array.from(r.raw) : r.probs && Float32Array.from(r.probs));
  return acc;
}

/** A held-out curve of 200 rows (the top 150 right, then every other one) and its stored targets. */
function bundleCalibration(targets: number[]): BundleCalibration {
  const n = 200;
  const scores = Array.from({ length: n }, (_, i) => 1 - i / n);
  const correct = scores.map((_, i) => i < 150 || i % 2 === 0);
  const curve = precisionCoverageCurve(scores, correct);
  return {
    method: 'temperature',
    temperature: 1.25,
    source: 'selection',
    rows: n,
    before: { logLoss: 0.5, brier: 0.2, ece: 0.08 },
    after: { logLoss: 0.4, brier: 0.18, ece: 0.02 },
    curve,
    targets: targets.map((t) => thresholdForTarget(curve, t)),
  };
}

const plan = (target: number, threshold: number, minPrecision: number | null = null): TargetPlan => ({ target, stored: true, runDefault: false, threshold, reason: null, heldOut: null, minPrecision });

test('figures: the calibrated and the raw probabilities of the scored rows, an unknown label wrong with p = 0', () => {
  const r = flatAccumulator().result(bundleCalibration([]), []);
  const scored = ROWS.filter((x) => x.probs);
  const y = scored.map((x) => CLASSES.indexOf(x.label));
  assert.deepEqual(y, [0, 1, 2, -1, 1]);
  assert.equal(r.rows, 6);
  assert.equal(r.scored, 5);
  assert.equal(r.calibrated, true);
  const want = calibrationFigures(Float32Array.from(scored.flatMap((x) => x.probs!)), y, 3);
  const wantRaw = calibrationFigures(Float32Array.from(scored.flatMap((x) => x.raw!)), y, 3);
  assert.deepEqual(r.figures, want);
  assert.deepEqual(r.raw, wantRaw);
  assert.notEqual(r.figures.ece, r.raw!.ece);
  // The unknown label: −log(1e-15) in the log-loss, every class's probability and a missing 1 in the Brier score.
  assert.ok(r.figures.logLoss > Math.log(1e15) / 5);
  assert.equal(r.figures.bins.length, 15);
  assert.equal(r.figures.bins.reduce((s, b) => s + b.count, 0), 5);
  assert.equal(r.bundle!.temperature, 1.25);
  assert.deepEqual(r.bundle!.after, { logLoss: 0.4, brier: 0.18, ece: 0.02 });
});

test('an uncalibrated bundle: figures of its raw scores, none beside them, no targets', () => {
  const r = flatAccumulator(false).result(undefined, planTargets(undefined, [], 'old'));
  assert.equal(r.calibrated, false);
  assert.equal(r.raw, null);
  assert.equal(r.bundle, null);
  assert.deepEqual(r.targets, []);
  assert.equal(r.curve.thresholds.length, 4);
  const table = formatCalibrationTable(r);
  assert.match(table, /this bundle is not calibrated/);
  assert.match(table, new RegExp(`ECE\\s+${r.figures.ece.toFixed(4)}`));
  assert.doesNotMatch(table, /eval calibrated/);
  assert.match(table, /no target precisions: an uncalibrated bundle/);
});

test('the curve: one point per distinct score, ties together; coverage over every eval row, error rows included', () => {
  const r = flatAccumulator().result(undefined, []);
  assert.deepEqual(r.curve, { rows: 6, thresholds: [0.8999999761581421, 0.800000011920929, 0.699999988079071, 0.6000000238418579], accepted: [1, 2, 3, 5], correct: [1, 2, 2, 3] });
  assert.deepEqual(
    curveAtCoverage(r.curve, [0.1, 0.2, 0.5, 0.6, 1]).map((p) => [p.accepted, p.coverage, p.precision]),
    [
      [1, 1 / 6, 1],
      [3, 0.5, 2 / 3],
      [5, 5 / 6, 0.6],
    ],
    'no point under 10%; 20% and 50% give the 1- and 3-row points, 60% none new, 100% the last (5 of 6 rows: one is an error)',
  );
  assert.deepEqual(
    curveAtCoverage(r.curve, [1]).map((p) => p.accepted),
    [5],
  );
});

test('thinCurve keeps the ends and spreads the rest over coverage', () => {
  const n = 10_000;
  const curve = precisionCoverageCurve(
    Array.from({ length: n }, (_, i) => 1 - i / n),
    Array.from({ length: n }, (_, i) => i % 7 !== 0),
  );
  const pts = thinCurve(curve, 100);
  assert.ok(pts.length <= 101 && pts.length >= 95, String(pts.length));
  assert.equal(pts[0]!.accepted, 1);
  assert.equal(pts[pts.length - 1]!.accepted, n);
  for (let i = 1; i < pts.length; i++) assert.ok(pts[i]!.accepted > pts[i - 1]!.accepted);
  assert.equal(thinCurve(precisionCoverageCurve([0.5, 0.4], [true, false]), 100).length, 2);
});

test('targets: realized precision and coverage of the rows decide() accepts; an error row never', () => {
  const r = flatAccumulator().result(bundleCalibration([]), [plan(0.8, 0.75), plan(0.6, 0.65), plan(0.5, 0.6), plan(0.99, 0.95)]);
  const [a, b, c, d] = r.targets;
  assert.deepEqual(a!.eval, { accepted: 2, correct: 2, coverage: 2 / 6, precision: 1, lower: wilsonLower(2, 2) });
  assert.deepEqual(b!.eval, { accepted: 3, correct: 2, coverage: 0.5, precision: 2 / 3, lower: wilsonLower(2, 3) });
  // The scores are float32: the 0.6 rows score 0.6000000238, at or above 0.6.
  assert.deepEqual(c!.eval, { accepted: 5, correct: 3, coverage: 5 / 6, precision: 0.6, lower: wilsonLower(3, 5) });
  assert.deepEqual(d!.eval, { accepted: 0, correct: 0, coverage: 0, precision: null, lower: 0 });
  assert.equal(a!.gate, null);
});

test('the gate: precision of the accepted rows against the minimum; none accepted fails; lines say which and why', () => {
  const r = flatAccumulator().result(bundleCalibration([]), [plan(0.6, 0.65, 0.6), plan(0.7, 0.65, 0.7), plan(0.8, 0.75, 1), plan(0.99, 0.95, 0.5)]);
  assert.deepEqual(
    r.targets.map((t) => t.gate),
    [
      { minPrecision: 0.6, passed: true },
      { minPrecision: 0.7, passed: false },
      { minPrecision: 1, passed: true },
      { minPrecision: 0.5, passed: false },
    ],
  );
  assert.deepEqual(precisionGateFailures(r), [
    'precision 0.6667 of the 3 eval rows accepted at target 0.7 (score ≥ 0.6500) is below --min-precision-at 0.7:0.7',
    'no eval row was accepted at target 0.99 (score ≥ 0.9500): no precision to hold to --min-precision-at 0.99:0.5',
  ]);
  const table = formatCalibrationTable(r);
  assert.match(table, /FAIL \(≥ 0\.7\)/);
  assert.match(table, /pass \(≥ 1\)/);
});

test('planTargets: stored targets in order of target, the run default marked, gates resolved as run --target-precision resolves them', () => {
  const cal = bundleCalibration([0.99, 0.8]);
  assert.equal(cal.targets[0]!.threshold, null, '200 held-out rows cannot vouch for 0.99');
  const stored = planTargets(cal, [], 'm');
  assert.deepEqual(
    stored.map((p) => [p.target, p.stored, p.runDefault, p.threshold === null, p.minPrecision]),
    [
      [0.8, true, true, false, null],
      [0.99, true, false, true, null],
    ],
  );
  assert.match(stored[1]!.reason!, /held-out rows vouch for precision/);
  assert.equal(stored[0]!.threshold, cal.targets[1]!.threshold);
  assert.deepEqual(stored[0]!.heldOut, { accepted: (cal.targets[1] as { accepted: number }).accepted, coverage: (cal.targets[1] as { coverage: number }).coverage, precision: (cal.targets[1] as { precision: number }).precision, lower: (cal.targets[1] as { lower: number }).lower });

  const gated = planTargets(cal, [{ target: 0.8, precision: 0.85 }, { target: 0.9, precision: 0.88 }], 'm');
  assert.deepEqual(
    gated.map((p) => [p.target, p.stored, p.minPrecision]),
    [
      [0.8, true, 0.85],
      [0.9, false, 0.88],
      [0.99, true, null],
    ],
  );
  const computed = thresholdForTarget(cal.curve, 0.9);
  assert.equal(gated[1]!.threshold, resolveDecision(cal, 0.9, 'm')!.threshold);
  assert.equal(gated[1]!.threshold, computed.threshold);
  assert.equal(gated[1]!.heldOut!.precision, (computed as { precision: number }).precision);
});

test('planTargets: a gate on an uncalibrated bundle, or on a target the bundle cannot vouch for, is a usage error', () => {
  assert.throws(
    () => planTargets(undefined, [{ target: 0.9, precision: 0.9 }], 'models/old'),
    (e: unknown) => e instanceof UsageError && e.code === 'not_calibrated' && e.exitCode === 2 && /^--min-precision-at [0-9.:]+ needs a calibrated bundle: models\/old has no calibration/.test(e.message),
  );
  for (const cal of [bundleCalibration([]), bundleCalibration([0.99])]) {
    assert.throws(
      () => planTargets(cal, [{ target: 0.99, precision: 0.9 }], 'models/new'),
      (e: unknown) => e instanceof UsageError && e.code === 'target_unsupported' && /^--min-precision-at 0\.99:0\.9: models\/new cannot vouch for it: the 200 held-out rows vouch for precision/.test(e.message) && !e.message.includes('\n'),
    );
  }
});

test('a path bundle: right when the most probable full path is the label; accepted only with an answer to full depth', () => {
  const classes = ['x > p', 'x > q', 'y > r'];
  const acc = new CalibrationReportAccumulator(classes, true, false);
  const rec = (full: string, score: number, complete: boolean): PredictionRecord => ({
    id: 'r',
    category: complete ? full : full.split(' > ')[0]!,
    score: complete ? score : 0.9,
    top_categories: [],
    tags: [],
    status: 'ok',
    error: null,
    warnings: complete ? [] : ['path_backoff'],
    path: { depth: complete ? 2 : 1, complete, scores: complete ? [0.95, score] : [0.9], full_path: full, full_path_score: score },
  });
  // Right and complete; right but backed off (its category is the top level, not the label); wrong and complete.
  acc.add('x > p', rec('x > p', 0.8, true), [0.8, 0.15, 0.05], null);
  acc.add('x > q', rec('x > q', 0.45, false), [0.3, 0.45, 0.25], null);
  acc.add('y > r', rec('x > p', 0.7, true), [0.7, 0.1, 0.2], null);
  const r = acc.result(undefined, [plan(0.5, 0.4)]);
  assert.equal(r.paths, true);
  assert.deepEqual(r.curve, { rows: 3, thresholds: [0.8, 0.7, 0.45], accepted: [1, 2, 3], correct: [1, 1, 2] });
  assert.deepEqual(r.targets[0]!.eval, { accepted: 2, correct: 1, coverage: 2 / 3, precision: 0.5, lower: wilsonLower(1, 2) });
  assert.match(formatCalibrationTable(r), /reaches full depth/);
});

test('the table and the HTML report show the figures before and after, the reliability bins, the curve and the targets', () => {
  const cal = bundleCalibration([0.8, 0.99]);
  const plans = planTargets(cal, [{ target: 0.6, precision: 0.7 }], 'm');
  // The demo rows' scores sit under these held-out thresholds; the plans' thresholds are placed on them instead.
  const placed = plans.map((p) => (p.threshold === null ? p : { ...p, threshold: p.target === 0.6 ? 0.65 : 0.75 }));
  const r = flatAccumulator().result(cal, placed);
  const table = formatCalibrationTable(r);
  for (const k of ['ece', 'brier', 'logLoss'] as const) {
    assert.ok(table.includes(r.raw![k].toFixed(4)), `raw ${k}`);
    assert.ok(table.includes(r.figures[k].toFixed(4)), `calibrated ${k}`);
    assert.ok(table.includes(cal.before[k].toFixed(4)) && table.includes(cal.after[k].toFixed(4)), `held-out ${k}`);
  }
  assert.match(table, /temperature 1\.250, fitted on 200 held-out rows/);
  assert.match(table, /1 without probabilities left out of the figures/);
  assert.match(table, /\(0\.867, 0\.933\]\s+1\s+0\.9000\s+1\.0000\s+\+0\.1000/);
  assert.match(table, /0\.8 ◀\s+0\.7500/);
  assert.match(table, /0\.6 \*\s+0\.6500 .* 3\/6\s+50\.0%\s+0\.6667 .* FAIL \(≥ 0\.7\)/);
  assert.match(table, /0\.99: no threshold stored \(the 200 held-out rows/);

  const m = computeMetrics({ yTrue: ['a'], yPred: ['a'], ranked: [['a']], modelClasses: CLASSES });
  const html = renderEvalReport({ metrics: m, calibration: r, confusedExamples: [], meta: { model: 'm', input: 'i', createdAt: 't', toolVersion: '0' } });
  assert.match(html, /<h2>Calibration and decisions<\/h2>/);
  assert.equal(html.match(/<svg class="rel"/g)!.length, 2, 'reliability of the raw and the calibrated probabilities');
  assert.equal(html.match(/class="diag"/g)!.length, 2);
  // A bin count above each non-empty bin, in both diagrams.
  const counts = [...html.matchAll(/class="n">(\d+)<\/text>/g)].map((x) => Number(x[1]));
  assert.equal(counts.reduce((s, x) => s + x, 0), 10);
  assert.equal(html.match(/<svg class="pc"/g)!.length, 1);
  for (const t of [0.6, 0.8, 0.99]) assert.ok(html.includes(`>target ${t}</text>`), `target line ${t}`);
  assert.match(html, /<circle [^>]*class="mine"><title>target 0\.8: score ≥ 0\.7500 accepts 2 of 6 rows/);
  assert.match(html, /<circle [^>]*class="fail"><title>target 0\.6: /);
  assert.match(html, /<tr class="fail"><td class="num">0\.6/);
  for (const k of ['ece', 'brier', 'logLoss'] as const) assert.ok(html.includes(`<td class="num">${r.raw![k].toFixed(4)}</td><td class="num">${r.figures[k].toFixed(4)}</td>`));
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/);

  const plain = renderEvalReport({ metrics: m, calibration: flatAccumulator(false).result(undefined, []), confusedExamples: [], meta: { model: 'm', input: 'i', createdAt: 't', toolVersion: '0' } });
  assert.equal(plain.match(/<svg class="rel"/g)!.length, 1);
  assert.match(plain, /This bundle is not calibrated/);
});

test('--min-precision-at takes target:precision pairs, comma-separated or repeated, the last of a target kept', () => {
  assert.deepEqual(targetPrecisionMinimums('0.98:0.975, 0.9 : 0.88'), [
    { target: 0.9, precision: 0.88 },
    { target: 0.98, precision: 0.975 },
  ]);
  assert.deepEqual(targetPrecisionMinimums('0.9:0.8', targetPrecisionMinimums('0.9:0.85,0.95:1')), [
    { target: 0.9, precision: 0.8 },
    { target: 0.95, precision: 1 },
  ]);
  for (const bad of ['0.98', '1:0.9', '0:0.9', '0.9:1.1', '0.9:-0.1', 'x:0.9', '0.9:', '', '0.9:0.8,']) {
    assert.throws(() => targetPrecisionMinimums(bad), InvalidArgumentError, bad);
  }
});
