// Calibration against scipy / scikit-learn golden values (scripts/reference/calibration_reference.py): the fitted
// temperature, log-loss, Brier, ECE and its bins, the precision–coverage curve, Wilson bounds, the thresholds of target
// precisions, and top-label scaling; then the properties a decision relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { topClasses } from '../../src/head/classifier.js';
import {
  applyTopLabel,
  calibrateTemperature,
  calibrateTopLabel,
  calibrationFigures,
  calibrationSteps,
  ECE_BINS,
  fitTemperature,
  fitTopLabel,
  likelihoodRatioTest,
  precisionCoverageCurve,
  resolveDecision,
  temperatureScale,
  thresholdForTarget,
  topOneCurve,
  topOneCurveRows,
  wilsonLower,
  type CalibrationFigures,
} from '../../src/head/calibration.js';
import type { BundleCalibration } from '../../src/models/bundle.js';
import { UsageError } from '../../src/errors.js';
import { mulberry32 } from '../../src/head/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = JSON.parse(fs.readFileSync(path.join(here, '..', '..', '..', 'test', 'golden', 'sklearn-calibration.json'), 'utf8'));

interface GoldenFigures {
  logLoss: number;
  brier: number;
  ece: number;
  bins: { count: number; confidence: number | null; accuracy: number | null }[];
}
interface GoldenCase {
  name: string;
  K: number;
  probs: number[][];
  y: number[];
  temperature: number;
  before: GoldenFigures;
  after: GoldenFigures;
  curve: { thresholds: number[]; accepted: number[]; correct: number[] };
  targets: { target: number; threshold: number | null; accepted?: number; lower?: number }[];
  topLabel: { a: number; b: number } | null;
}

const near = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function sameFigures(got: CalibrationFigures, want: GoldenFigures, what: string): void {
  near(got.logLoss, want.logLoss, 1e-9, `${what} log-loss`);
  near(got.brier, want.brier, 1e-9, `${what} Brier`);
  near(got.ece, want.ece, 1e-9, `${what} ECE`);
  assert.equal(got.bins.length, ECE_BINS);
  got.bins.forEach((b, i) => {
    const w = want.bins[i]!;
    assert.equal(b.count, w.count, `${what} bin ${i} count`);
    if (w.confidence === null) assert.equal(b.confidence, null);
    else {
      near(b.confidence!, w.confidence, 1e-9, `${what} bin ${i} confidence`);
      near(b.accuracy!, w.accuracy!, 1e-12, `${what} bin ${i} accuracy`);
    }
  });
}

const cases = golden.cases as GoldenCase[];

test('golden cases: temperature, figures before and after, curve, targets and top-label scaling as scipy / scikit-learn compute them', () => {
  for (const c of cases) {
    const K = c.K;
    const flat = Float64Array.from(c.probs.flat());
    const fit = fitTemperature(flat, c.y, K);
    near(fit.temperature, c.temperature, 1e-6, `${c.name} temperature`);
    assert.equal(fit.atBound, false);
    sameFigures(calibrationFigures(flat, c.y, K), c.before, `${c.name} before`);
    // After: at the golden temperature, so the comparison is of the figures, not of two optimisers' last digits.
    const cal = new Float64Array(flat.length);
    for (let i = 0; i < c.y.length; i++) temperatureScale(flat.subarray(i * K, (i + 1) * K), c.temperature, cal.subarray(i * K, (i + 1) * K));
    sameFigures(calibrationFigures(cal, c.y, K), c.after, `${c.name} after`);
    const curve = topOneCurve(cal, c.y, K);
    assert.equal(curve.rows, c.y.length);
    assert.deepEqual(curve.accepted, c.curve.accepted, `${c.name} accepted`);
    assert.deepEqual(curve.correct, c.curve.correct, `${c.name} correct`);
    curve.thresholds.forEach((t, j) => near(t, c.curve.thresholds[j]!, 1e-12, `${c.name} threshold ${j}`));
    for (const want of c.targets) {
      const got = thresholdForTarget(curve, want.target);
      if (want.threshold === null) assert.equal(got.threshold, null, `${c.name} target ${want.target}`);
      else {
        assert.ok(got.threshold !== null, `${c.name} target ${want.target}: ${JSON.stringify(got)}`);
        near(got.threshold, want.threshold, 1e-12, `${c.name} target ${want.target}`);
        assert.equal(got.accepted, want.accepted);
        near(got.lower, want.lower!, 1e-12, `${c.name} target ${want.target} lower bound`);
      }
    }
    if (c.topLabel) {
      const { scores, correct } = topOneCurveRows(cal, c.y, K);
      const platt = fitTopLabel(scores, correct)!;
      near(platt.a, c.topLabel.a, 1e-9, `${c.name} top-label a`);
      near(platt.b, c.topLabel.b, 1e-9, `${c.name} top-label b`);
    }
  }
});

test("Wilson's lower bound as statsmodels computes it (one-sided 95%)", () => {
  const spots = (golden.wilson as { k: number; m: number; conf: number; lower: number }[]).filter((w) => w.conf === 0.95);
  assert.ok(spots.length >= 4);
  for (const w of spots) near(wilsonLower(w.k, w.m), w.lower, 1e-12, `${w.k}/${w.m}`);
  assert.equal(wilsonLower(0, 0), 0);
});

test('a threshold is the LOWEST whose lower bound reaches the target, even past thresholds that miss it', () => {
  // 40 right rows at the top, then 10 with 5 wrong, then 200 right: the middle dips below 0.9, the bottom recovers.
  const scores: number[] = [];
  const correct: boolean[] = [];
  for (let i = 0; i < 250; i++) {
    scores.push(1 - i / 1000);
    correct.push(!(i >= 40 && i < 50 && i % 2 === 0));
  }
  const curve = precisionCoverageCurve(scores, correct);
  const t = thresholdForTarget(curve, 0.9);
  assert.ok(t.threshold !== null);
  assert.equal(t.accepted, 250, 'all rows: 245/250 right, lower bound 0.958');
  // Ties share one threshold: accepting a score accepts every row that has it.
  const tied = precisionCoverageCurve([0.9, 0.8, 0.8, 0.8, 0.5], [true, true, false, true, false]);
  assert.deepEqual(tied, { rows: 5, thresholds: [0.9, 0.8, 0.5], accepted: [1, 4, 5], correct: [1, 3, 3] });
});

test('a target the held-out rows cannot vouch for gets no threshold and says why; too few rows, or never reached', () => {
  // 100 rows, all right: the 95% lower bound is 100 / (100 + z²) = 0.974, short of 0.98.
  const few = precisionCoverageCurve(Array.from({ length: 100 }, (_, i) => 1 - i / 200), Array(100).fill(true));
  const t = thresholdForTarget(few, 0.98);
  assert.equal(t.threshold, null);
  assert.match((t as { reason: string }).reason, /100 held-out rows vouch for precision 0\.974 at most .* about 133 accepted rows/);
  assert.ok(thresholdForTarget(few, 0.97).threshold !== null);
  // Never reached: half the rows wrong at every score.
  const poor = precisionCoverageCurve(Array.from({ length: 1000 }, (_, i) => 1 - i / 2000), Array.from({ length: 1000 }, (_, i) => i % 2 === 0));
  assert.equal(thresholdForTarget(poor, 0.9).threshold, null);
});

test('temperature scaling and top-label scaling keep every row a distribution and its top class on top', () => {
  const rows = [
    [0.4, 0.35, 0.25],
    [0.98, 0.015, 0.005],
    [1, 0, 0],
    [0.34, 0.33, 0.33],
  ];
  for (const scaling of [
    { a: 0.65, b: 0.11 },
    { a: 0.2, b: -3 },
    { a: 3, b: 2 },
  ]) {
    for (const r of rows) {
      const out = applyTopLabel(r, scaling, new Float64Array(3));
      near(out.reduce((s, v) => s + v, 0), 1, 1e-12, 'sums to 1');
      assert.ok(out[0]! >= out[1]! && out[0]! >= out[2]!, `${r} → ${Array.from(out)}`);
      assert.ok(out.every((v) => v >= 0));
    }
  }
  // Where the scaling would sink the top class to the runner-up it stays strictly above, in float32 too: a tie would be
  // ranked by class order and answer the runner-up when that comes first (here 'a' before 'c').
  for (const out of [new Float64Array(3), new Float32Array(3)]) {
    applyTopLabel([0.35, 0.05, 0.6], { a: 0.2, b: -3 }, out);
    assert.ok(out[2]! > out[0]!, `${Array.from(out)}`);
    assert.ok(out[2]! / out[0]! < 1 + 1e-5, 'by a margin that moves no probability to speak of');
    assert.deepEqual(topClasses(out, ['a', 'b', 'c'], 1)[0]!.category, 'c');
  }
  // A tie in the row itself stays a tie: the first class, as the argmax before scaling.
  const tied = applyTopLabel([0.45, 0.45, 0.1], { a: 0.2, b: -3 }, new Float64Array(3));
  assert.equal(tied[0], tied[1]);
  const t = temperatureScale([0.7, 0.2, 0.1], 2, new Float64Array(3));
  near(t[0]! / t[1]!, Math.sqrt(0.7 / 0.2), 1e-12, 'T = 2 takes square roots of the ratios');
  // Identity scaling (a 1, b 0) changes nothing.
  const same = applyTopLabel([0.6, 0.3, 0.1], { a: 1, b: 0 }, new Float64Array(3));
  [0.6, 0.3, 0.1].forEach((v, k) => near(same[k]!, v, 1e-12, 'identity'));
  // All right or all wrong: nothing to fit.
  assert.equal(fitTopLabel([0.9, 0.8], [true, true]), null);
});

test('resolveDecision: the bundle first stored target, a requested one (stored or from the curve), or a usage error', () => {
  const curve = precisionCoverageCurve(Array.from({ length: 1000 }, (_, i) => 1 - i / 1000), Array.from({ length: 1000 }, (_, i) => i < 600 || i % 3 === 0));
  const stored = [thresholdForTarget(curve, 0.999), thresholdForTarget(curve, 0.95)];
  const calibration: BundleCalibration = {
    method: 'temperature',
    temperature: 1.2,
    source: 'selection',
    rows: 1000,
    before: { logLoss: 1, brier: 0.5, ece: 0.1 },
    after: { logLoss: 0.9, brier: 0.45, ece: 0.02 },
    curve,
    targets: stored,
  };
  assert.equal(stored[0]!.threshold, null);
  // The first target with a threshold.
  assert.deepEqual(resolveDecision(calibration, undefined, 'b'), { target: 0.95, threshold: stored[1]!.threshold });
  assert.equal(resolveDecision(undefined, undefined, 'b'), null);
  assert.equal(resolveDecision({ ...calibration, targets: [] }, undefined, 'b'), null);
  // Any target from the stored curve, without retraining.
  const t = resolveDecision(calibration, 0.9, 'b')!;
  assert.equal(t.target, 0.9);
  assert.ok(t.threshold < stored[1]!.threshold!);
  assert.throws(() => resolveDecision(calibration, 0.999, 'models/x'), (e: Error) => e instanceof UsageError && /--target-precision 0\.999: models\/x cannot vouch for it: the 1000 held-out rows/.test(e.message));
  assert.throws(() => resolveDecision(undefined, 0.95, 'models/old'), (e: Error) => e instanceof UsageError && /models\/old has no calibration/.test(e.message));
});

/**
 * n rows of K classes whose labels are drawn from `truth` (logits scaled by 1) while the probabilities shown are the
 * same logits × `sharpness`: 1 is calibrated, above 1 overconfident.
 */
function synthetic(n: number, K: number, sharpness: number, seed: number): { probs: Float64Array; y: number[] } {
  const rand = mulberry32(seed);
  const probs = new Float64Array(n * K);
  const y: number[] = [];
  const softmax = (z: number[]) => {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: K }, () => 3 * rand());
    const truth = softmax(z);
    let u = rand();
    let k = 0;
    while (k < K - 1 && (u -= truth[k]!) > 0) k++;
    y.push(k);
    probs.set(softmax(z.map((v) => v * sharpness)), i * K);
  }
  return { probs, y };
}

test('likelihoodRatioTest: 2·(NLL without − NLL with) against the 95% chi-square quantile of the step parameters', () => {
  assert.deepEqual(likelihoodRatioTest(100, 98, 1), { statistic: 4, critical: 3.841458820694124, kept: true });
  assert.deepEqual(likelihoodRatioTest(100, 98.5, 1), { statistic: 3, critical: 3.841458820694124, kept: false });
  assert.equal(likelihoodRatioTest(100, 98, 2).kept, false, 'two parameters need 5.99');
  assert.equal(likelihoodRatioTest(100, 97, 2).kept, true);
  assert.equal(likelihoodRatioTest(100, 100.5, 1).statistic, 0, 'a fit never counts as a loss');
});

test('a temperature is kept only where the held-out rows show its gain beyond chance; else the scores stay as they were', () => {
  // Calibrated rows: the fitted temperature is near 1 and its gain is what fitting one parameter to noise gives.
  let kept = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const { probs, y } = synthetic(1000, 6, 1, seed);
    const c = calibrateTemperature(probs, y, 6);
    if (c.test.kept) {
      kept++;
      assert.equal(c.temperature, c.fit.temperature);
    } else {
      assert.equal(c.temperature, 1);
      assert.deepEqual(c.probs, probs, 'left out: the rows as they were');
      assert.deepEqual(c.after, c.before);
    }
    near(c.test.statistic, 2 * 1000 * (c.before.logLoss - calibrationFigures(temperatureRows(probs, c.fit.temperature, 6), y, 6).logLoss), 1e-6, 'the statistic');
  }
  assert.ok(kept <= 4, `a 5% test keeps a calibrated set's temperature about 1 time in 20, here ${kept}`);
  // Overconfident rows: kept, and it softens them.
  const { probs, y } = synthetic(1000, 6, 2, 99);
  const c = calibrateTemperature(probs, y, 6);
  assert.ok(c.test.kept && c.temperature > 1.5, JSON.stringify(c.test) + ' T ' + c.temperature);
  assert.ok(c.after.logLoss < c.before.logLoss);
});

test('top-label scaling is kept only where the held-out top-1 scores show its gain beyond chance', () => {
  const top = (sharpness: number, seed: number) => {
    const { probs, y } = synthetic(1000, 6, sharpness, seed);
    return topOneCurveRows(probs, y, 6);
  };
  let kept = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const r = top(1, seed);
    const c = calibrateTopLabel(r.scores, r.correct)!;
    assert.deepEqual(c.fitted, fitTopLabel(r.scores, r.correct));
    if (c.test.kept) kept++;
    assert.equal(c.test.critical, 5.991464547107979);
  }
  assert.ok(kept <= 4, `kept ${kept} of 20 calibrated sets`);
  const r = top(2.5, 7);
  assert.equal(calibrateTopLabel(r.scores, r.correct)!.test.kept, true);
  assert.equal(calibrateTopLabel([0.9, 0.8], [true, true]), null, 'nothing to fit');
});

test('calibrationSteps names the steps applied and those left out with their statistics; an older bundle, its temperature', () => {
  const test1 = (kept: boolean, statistic: number, critical: number) => ({ statistic, critical, kept });
  assert.equal(calibrationSteps({ temperature: 0.9 }).text, 'temperature 0.900');
  assert.equal(
    calibrationSteps({ temperature: 0.9, topLabel: { a: 0.7, b: 0.1 }, tests: { temperature: { fitted: 0.9, ...test1(true, 60, 3.84) }, topLabel: { fitted: { a: 0.7, b: 0.1 }, ...test1(true, 50, 5.99) } } }).text,
    'temperature 0.900 + top-label scaling',
  );
  const none = calibrationSteps({ temperature: 1, tests: { temperature: { fitted: 1.02, ...test1(false, 0.12, 3.841458820694124) }, topLabel: { fitted: { a: 0.9, b: 0.1 }, ...test1(false, 1.4, 5.991464547107979) } } });
  assert.deepEqual(none.applied, []);
  assert.equal(none.text, 'none');
  assert.equal(none.note, 'left out, no gain beyond chance: a temperature (χ² 0.1 < 3.84), top-label scaling (χ² 1.4 < 5.99)');
  const one = calibrationSteps({ temperature: 0.8, tests: { temperature: { fitted: 0.8, ...test1(true, 7.6, 3.84) }, topLabel: { fitted: { a: 0.9, b: 0.1 }, ...test1(false, 4.1, 5.99) } } });
  assert.deepEqual([one.text, one.note], ['temperature 0.800', 'left out, no gain beyond chance: top-label scaling (χ² 4.1 < 5.99)']);
});

function temperatureRows(probs: Float64Array, T: number, K: number): Float64Array {
  const out = new Float64Array(probs.length);
  for (let i = 0; i < probs.length / K; i++) temperatureScale(probs.subarray(i * K, (i + 1) * K), T, out.subarray(i * K, (i + 1) * K));
  return out;
}
