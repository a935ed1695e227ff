// The intercept scale (intercept-scale.ts) and a fit in scaled intercept coordinates (logistic.ts): the scale is
// sqrt(λ_max(XᵀWX)/Σw), at least 1; the fit reaches scikit-learn's optimum whatever the scale, in original coordinates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { interceptScale } from '../../src/head/intercept-scale.js';
import { fitLogisticRegressionAsync } from '../../src/head/logistic.js';
import { makeDesign } from '../../src/head/design-matrix.js';
import { multinomialLossGrad } from '../../src/head/loss.js';

test('interceptScale: sqrt of the largest eigenvalue of XᵀWX over Σw, at least 1, dense and sparse alike', () => {
  // XᵀX = [[10, 0], [0, 1]] over 4 rows: λ_max = 10.
  const dense = Float64Array.from([1, 0.5, -1, 0.5, 2, -0.5, -2, -0.5]);
  assert.ok(Math.abs(interceptScale(makeDesign(4, dense, 2, null)) - Math.sqrt(10 / 4)) < 1e-9);
  // Weights: rows 0 and 1 counted twice: XᵀWX = [[12, 0], [0, 1.5]], Σw = 6.
  const w = Float64Array.from([2, 2, 1, 1]);
  assert.ok(Math.abs(interceptScale(makeDesign(4, dense, 2, null), w) - Math.sqrt(12 / 6)) < 1e-9);
  // The same rows as CSR after a dense column: one design, both blocks read.
  const sparse = { dim: 1, indptr: Int32Array.from([0, 1, 2, 3, 4]), indices: Int32Array.from([0, 0, 0, 0]), values: Float64Array.from([1, -1, 2, -2]) };
  const mixed = makeDesign(4, Float64Array.from([0.5, 0.5, -0.5, -0.5]), 1, sparse);
  assert.ok(Math.abs(interceptScale(mixed) - Math.sqrt(10 / 4)) < 1e-9);
  // Thousands of rows: every k-th row stands for the rest (here the same four rows, repeated).
  const many = Float64Array.from({ length: 4 * 1500 * 2 }, (_, i) => dense[i % 8]!);
  assert.ok(Math.abs(interceptScale(makeDesign(4 * 1500, many, 2, null)) - Math.sqrt(10 / 4)) < 1e-9);
  // Every direction shorter than the constant feature (λ_max/n = 0.1): scikit-learn's coordinates, 1.
  assert.equal(interceptScale(makeDesign(4, dense.map((v) => v * Math.sqrt(0.1 / 2.5)), 2, null)), 1);
  // Nothing to measure: the unscaled fit's 1.
  assert.equal(interceptScale(makeDesign(0, new Float64Array(0), 2, null)), 1);
  assert.equal(interceptScale(makeDesign(2, new Float64Array(4), 2, null)), 1);
});

interface Golden {
  n: number;
  d: number;
  n_classes: number;
  y: number[];
  cases: { name: string; C: number; class_weight: string | null; sample_weight: number[] | null; optimum: { coef: number[]; intercept: number[]; loss: number } }[];
}

test('a fit with its intercepts scaled reaches the same optimum, reported in original coordinates', async () => {
  const g = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-logistic.json'), 'utf8')) as Golden;
  const X = Float64Array.from((JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-scaler.json'), 'utf8')) as { transformed: number[] }).transformed);
  const y = Int32Array.from(g.y);
  const c = g.cases.find((k) => k.class_weight === null && k.sample_weight === null)!;
  const design = makeDesign(g.n, X, g.d, null);
  const auto = interceptScale(design);
  for (const s of [0.1, auto, 10]) {
    const fit = await fitLogisticRegressionAsync(design, y, g.n_classes, { C: c.C, tol: 1e-10, maxIter: 10000, kernel: 'js', interceptScale: s });
    const dCoef = Math.max(...fit.coef.map((v, i) => Math.abs(v - c.optimum.coef[i]!)));
    const dIntercept = Math.max(...fit.intercept.map((v, i) => Math.abs(v - c.optimum.intercept[i]!)));
    assert.ok(fit.converged, fit.message);
    assert.ok(dCoef <= 1e-5 && dIntercept <= 1e-5, `scale ${s}: |Δcoef| ${dCoef}, |Δintercept| ${dIntercept}`);
    assert.ok(Math.abs(fit.loss - c.optimum.loss) <= 1e-9 * Math.abs(c.optimum.loss));
    // The reported max |g| is the original coordinates' one (the one the gtol test read).
    const params = Float64Array.from([...fit.coef, ...fit.intercept]);
    const grad = new Float64Array(params.length);
    multinomialLossGrad(params, grad, { X, n: g.n, d: g.d, y, nClasses: g.n_classes, weight: new Float64Array(g.n).fill(1), l2: 1 / c.C });
    const own = Math.max(...grad.map(Math.abs));
    assert.ok(Math.abs(fit.gradMaxAbs - own) <= 1e-9 * Math.max(1, own), `scale ${s}: max |g| ${fit.gradMaxAbs} vs ${own}`);
    assert.ok(Math.abs(fit.intercept.reduce((a, v) => a + v, 0)) < 1e-9);
  }
  await assert.rejects(fitLogisticRegressionAsync(design, y, g.n_classes, { kernel: 'js', interceptScale: 0 }), /interceptScale must be a positive number/);
});
