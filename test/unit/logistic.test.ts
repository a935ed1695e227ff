// Multinomial logistic regression against scikit-learn's LogisticRegression(lbfgs) goldens, the polished
// optimum of the same objective, the loss kernel's gradient, and the label encoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { UsageError } from '../../src/errors.js';
import {
  balancedClassWeights,
  fitLogisticRegression,
  predict,
  predictProba,
  type LogisticFit,
} from '../../src/head/logistic.js';
import { multinomialLossGrad } from '../../src/head/loss.js';
import { compareCodePoints, encodeLabels, fitLabelEncoder } from '../../src/head/labels.js';
import { SCIPY_DEFAULT_FTOL } from '../../src/head/lbfgs.js';

interface Case {
  name: string;
  C: number;
  class_weight: 'balanced' | null;
  sample_weight: number[] | null;
  coef: number[];
  intercept: number[];
  n_iter: number;
  loss: number;
  predict: number[];
  predict_proba: number[];
  optimum: { coef: number[]; intercept: number[]; loss: number; grad_max_abs: number; predict_proba: number[] };
}
interface Golden {
  n: number;
  d: number;
  n_classes: number;
  y: number[];
  cases: Case[];
}

const g = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-logistic.json'), 'utf8')) as Golden;
// The logistic golden's X is the scaler golden's sklearn-standardised matrix.
const Xs = Float64Array.from(
  (JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-scaler.json'), 'utf8')) as { transformed: number[] }).transformed,
);
const y = Int32Array.from(g.y);
const { n, d, n_classes: K } = g;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const fits = new Map<string, LogisticFit>();
function fitCase(c: Case): LogisticFit {
  let f = fits.get(c.name);
  if (!f) {
    f = fitLogisticRegression(Xs, y, K, {
      C: c.C,
      tol: 1e-10,
      maxIter: 10000,
      classWeight: c.class_weight,
      sampleWeight: c.sample_weight ? Float64Array.from(c.sample_weight) : undefined,
    });
    fits.set(c.name, f);
  }
  return f;
}

for (const c of g.cases) {
  test(`matches sklearn LogisticRegression: ${c.name}`, () => {
    const m = fitCase(c);
    assert.ok(m.converged, m.message);
    assert.equal(m.coef.length, K * d);
    assert.equal(m.intercept.length, K);
    const P = predictProba(Xs, n, d, m);
    const pred = predict(Xs, n, d, m);
    let agree = 0;
    for (let i = 0; i < n; i++) if (pred[i] === c.predict[i]) agree++;
    assert.ok(agree / n >= 0.995, `predictions agree on ${agree}/${n}`);
    // sklearn 1.2.1 stops on scipy's ftol=2.2e-9, ~3e-5 away from its own optimum in probability.
    const dP = maxAbsDiff(P, c.predict_proba);
    assert.ok(dP <= 1e-3, `max |Δp| vs sklearn = ${dP}`);
    assert.ok(maxAbsDiff(m.coef, c.coef) <= 1e-3, 'coef vs sklearn');
  });

  test(`reaches the objective's optimum: ${c.name}`, () => {
    const m = fitCase(c);
    const o = c.optimum;
    const P = predictProba(Xs, n, d, m);
    assert.ok(maxAbsDiff(P, o.predict_proba) <= 1e-6, `max |Δp| vs optimum = ${maxAbsDiff(P, o.predict_proba)}`);
    assert.ok(maxAbsDiff(m.coef, o.coef) <= 1e-5, `max |Δcoef| vs optimum = ${maxAbsDiff(m.coef, o.coef)}`);
    assert.ok(maxAbsDiff(m.intercept, o.intercept) <= 1e-5, 'intercept vs optimum');
    assert.ok(Math.abs(m.loss - o.loss) <= 1e-9 * Math.abs(o.loss), `loss ${m.loss} vs ${o.loss}`);
    // Unpenalised intercepts are only defined up to a shared constant; starting from 0 keeps their sum at 0.
    assert.ok(Math.abs(m.intercept.reduce((s, v) => s + v, 0)) < 1e-9);
  });
}

// Same objective, same L-BFGS-B steps: with scipy's ftol the run stops where sklearn's stopped (measured
// |Δcoef| ~1e-15). This pins rounding-level behaviour; a kernel that sums in another order may end one
// iteration apart and need this relaxed, while the optimum tests above must keep passing.
test('with sklearn 1.2.1\'s stopping rule (scipy ftol) the solver retraces sklearn\'s run', () => {
  for (const c of g.cases) {
    const m = fitLogisticRegression(Xs, y, K, {
      C: c.C,
      tol: 1e-10,
      maxIter: 10000,
      classWeight: c.class_weight,
      sampleWeight: c.sample_weight ? Float64Array.from(c.sample_weight) : undefined,
      ftol: SCIPY_DEFAULT_FTOL,
    });
    assert.equal(m.iterations, c.n_iter, `${c.name}: iterations`);
    assert.ok(maxAbsDiff(m.coef, c.coef) <= 1e-9, `${c.name}: coef ${maxAbsDiff(m.coef, c.coef)}`);
    assert.ok(maxAbsDiff(m.intercept, c.intercept) <= 1e-9, `${c.name}: intercept`);
    assert.ok(maxAbsDiff(predictProba(Xs, n, d, m), c.predict_proba) <= 1e-9, `${c.name}: proba`);
  }
});

test('loss kernel: gradient matches central differences, penalty excludes intercepts', () => {
  const nn = 7;
  const dd = 5;
  const KK = 6; // not a multiple of 4, so both the blocked and the remainder loops run
  let s = 3;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296 - 0.5;
  };
  const X = new Float64Array(nn * dd).map(() => rnd() * 4);
  const yy = Int32Array.from({ length: nn }, (_, i) => (i * 5) % KK);
  const weight = new Float64Array(nn).map(() => 0.5 + rnd());
  const problem = { X, n: nn, d: dd, y: yy, nClasses: KK, weight, l2: 0.7 };
  const w = new Float64Array(KK * dd + KK).map(() => rnd());
  const grad = new Float64Array(w.length);
  const f = multinomialLossGrad(w, grad, problem);
  const tmp = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const h = 1e-6;
    const wp = w.slice();
    wp[i] += h;
    const wm = w.slice();
    wm[i] -= h;
    const num = (multinomialLossGrad(wp, tmp, problem) - multinomialLossGrad(wm, tmp, problem)) / (2 * h);
    assert.ok(Math.abs(num - grad[i]!) < 1e-6 * Math.max(1, Math.abs(num)), `grad[${i}] ${grad[i]} vs ${num}`);
  }
  // Brute-force objective.
  let ref = 0;
  for (let i = 0; i < nn; i++) {
    const z: number[] = [];
    for (let k = 0; k < KK; k++) {
      let v = w[KK * dd + k]!;
      for (let j = 0; j < dd; j++) v += w[k * dd + j]! * X[i * dd + j]!;
      z.push(v);
    }
    const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    ref += weight[i]! * (lse - z[yy[i]!]!);
  }
  let sq = 0;
  for (let j = 0; j < KK * dd; j++) sq += w[j]! ** 2;
  ref += 0.35 * sq;
  assert.ok(Math.abs(f - ref) < 1e-10 * Math.abs(ref));
});

test('balanced class weights are n / (K · count)', () => {
  assert.deepEqual(Array.from(balancedClassWeights(Int32Array.of(0, 0, 0, 1, 2, 2), 3)), [6 / 9, 6 / 3, 6 / 6]);
});

test('onIteration reports every iteration with a non-increasing loss; maxIter caps the run', () => {
  const losses: number[] = [];
  const m = fitLogisticRegression(Xs, y, K, { maxIter: 8, tol: 1e-12, onIteration: (it, loss) => losses.push(it, loss) });
  assert.equal(m.iterations, 8);
  assert.equal(m.converged, false);
  assert.equal(losses.length, 16);
  for (let i = 0; i < 8; i++) assert.equal(losses[2 * i], i + 1);
  for (let i = 1; i < 8; i++) assert.ok(losses[2 * i + 1]! <= losses[2 * i - 1]!);
  const P = predictProba(Xs, n, d, m);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += P[i * K + k]!;
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
});

test('predictProba accepts float32 rows and checks shapes', () => {
  const m = fitCase(g.cases[0]!);
  const P64 = predictProba(Xs, n, d, m);
  const P32 = predictProba(Float32Array.from(Xs), n, d, m);
  assert.ok(maxAbsDiff(P64, P32) < 1e-5);
  assert.throws(() => predictProba(Xs, n, d + 1, m), /model expects 20/);
});

test('input errors', () => {
  assert.throws(() => fitLogisticRegression(Xs, y, 1), UsageError);
  assert.throws(() => fitLogisticRegression(new Float64Array(0), new Int32Array(0), 3), /no training rows/);
  assert.throws(() => fitLogisticRegression(Float64Array.of(1, 2, 3), Int32Array.of(0, 1), 2), /not a multiple/);
  assert.throws(() => fitLogisticRegression(Float64Array.of(1, 2), Int32Array.of(0, 2), 2), /outside \[0, 2\)/);
  assert.throws(() => fitLogisticRegression(Float64Array.of(1, 2, 3), Int32Array.of(0, 0, 2), 3), /class index 1 has no training rows/);
  assert.throws(() => fitLogisticRegression(Float64Array.of(1, 2), Int32Array.of(0, 1), 2, { C: 0 }), /C must be/);
  assert.throws(() => fitLogisticRegression(Float64Array.of(1, 2), Int32Array.of(0, 1), 2, { sampleWeight: Float64Array.of(1) }), /sampleWeight has 1/);
});

test('label encoder: sorted unique labels in Python code-point order', () => {
  // 'Z' < 'a' < 'é' < U+FF21 (full-width A) < U+1F600 (emoji); JS's default sort puts the emoji before U+FF21.
  const labels = ['é', 'a', '\u{1F600}', 'Ａ', 'Z', 'a', 'é'];
  const classes = fitLabelEncoder(labels);
  assert.deepEqual(classes, ['Z', 'a', 'é', 'Ａ', '\u{1F600}']);
  assert.deepEqual(Array.from(encodeLabels(classes, labels)), [2, 1, 4, 3, 0, 1, 2]);
  assert.throws(() => encodeLabels(classes, ['a', 'nope']), (e: unknown) => e instanceof UsageError && /"nope" \(row 1\)/.test(e.message));
  assert.ok(compareCodePoints('\uFFFF', '\u{10000}') < 0);
  assert.ok(compareCodePoints('\u{10000}', '\uE000') > 0);
  assert.ok(compareCodePoints('ab', 'abc') < 0);
  assert.equal(compareCodePoints('x\u{1F600}', 'x\u{1F600}'), 0);
  assert.ok(compareCodePoints('\u{1F600}', '\u{1F601}') < 0);
});
