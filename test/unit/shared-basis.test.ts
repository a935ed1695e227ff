// One row-space basis shared by every head trained on (most of) the same rows: a head over a subset of the rows
// solved in a superset's basis lands where its own fit over the columns lands; trainModel with a shared basis
// predicts what it predicts with bases of its own, and builds the basis once for all its heads and targets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classedSparseRows } from '../helpers/sparse-rows.js';
import { csrFromDense } from '../../src/head/design-matrix.js';
import { rowSpaceBasis } from '../../src/head/rowspace.js';
import { fitPath, type HeadDesign } from '../../src/head/modality-head.js';
import { fitTfidfBlock, trainModel, type HeadSettings } from '../../src/head/target.js';
import { shippedPredictions } from '../../src/head/linear-head.js';
import { FitPool } from '../../src/head/fit-pool.js';
import { SharedBasis } from '../../src/head/shared-basis.js';
import { twoModalityRows } from '../helpers/two-modality-rows.js';

const range = (from: number, to: number) => Int32Array.from({ length: to - from }, (_, i) => from + i);

test('a head over some rows, in the basis of more rows (pivot rows kept with the basis), lands where its fit over the columns lands', async () => {
  const n = 150;
  const dim = 400;
  const K = 3;
  const { dense, y } = classedSparseRows(n, dim, K, 7);
  const full = csrFromDense(dense, n, dim);
  const master = await rowSpaceBasis(full, range(0, n));
  const pivotRows = csrFromDense(Float64Array.from(Array.from(master.pivots).flatMap((p) => Array.from(dense.subarray(p * dim, (p + 1) * dim)))), master.r, dim);
  // The head's rows: the last 110 (so some of the basis's pivots are rows it does not have), in their own order.
  const m = 110;
  const own = range(n - m, n);
  const S = csrFromDense(dense.subarray((n - m) * dim), m, dim);
  const design: HeadDesign = { n: m, y: y.subarray(n - m), nClasses: K, denseBlocks: [], dense: null, present: null, sparse: S, content: range(0, m), distinct: range(0, m), basis: null };
  assert.ok(Array.from(master.pivots).some((p) => p < n - m), 'a pivot the head does not have');
  const task = { train: range(0, 80), test: range(80, m), Cs: [0.1, 1, 10], lr: { tol: 1e-8, maxIter: 2000, ftol: 0 }, keep: true };
  const columns = await fitPath(design, task);
  const shared = await fitPath({ ...design, basis: { ...master, pivotRows }, basisRows: own }, task);
  columns.fits.forEach((f, c) => assert.ok(Math.abs(f.loss - shared.fits[c]!.loss) <= 1e-7 * f.loss, `C ${f.C}: loss ${f.loss} vs ${shared.fits[c]!.loss}`));
  for (let c = 0; c < 3; c++) for (let t = 0; t < columns.probs[c]!.length; t++) assert.ok(Math.abs(columns.probs[c]![t]! - shared.probs[c]![t]!) < 1e-5);
  const a = columns.head!.coef;
  const b = shared.head!.coef;
  for (let t = 0; t < a.length; t++) assert.ok(Math.abs(a[t]! - b[t]!) < 1e-4, `coef[${t}] ${a[t]} vs ${b[t]}`);
});

const settings = (extra: Partial<HeadSettings> = {}): HeadSettings => ({
  features: ['image', 'tfidf'],
  dims: { image: 8 },
  tfidf: {},
  charTfidf: null,
  lr: { C: 1, maxIter: 1000, tol: 1e-7 },
  fusion: 'early',
  fusionShare: 0.25,
  seed: 1,
  cGrid: [0.1, 10],
  selectionFolds: 0,
  solver: 'rowspace',
  ...extra,
});

test('trainModel with a shared basis: the same predictions as with bases of its own; one basis for the category and an attribute over most of its rows', async () => {
  const { rows, labels } = twoModalityRows(300, 3);
  const test = twoModalityRows(120, 4);
  const tfidf = fitTfidfBlock(rows, settings());
  const pool = new FitPool(0);
  let built = 0;
  const basis = pool.basis.bind(pool);
  pool.basis = (S, r) => (built++, basis(S, r));
  try {
    const own = await trainModel(rows, labels, settings({ tfidfModel: tfidf, pool }));
    const ownBuilt = built;
    built = 0;
    const sharedBasis = new SharedBasis(rows, tfidf, pool);
    const shared = await trainModel(rows, labels, settings({ tfidfModel: tfidf, pool, sharedBasis }));
    // An attribute: the text half of the class, on 90% of the rows.
    const some = rows.flatMap((_, i) => (i % 10 === 9 ? [] : [i]));
    const attribute = await trainModel(some.map((i) => rows[i]!), some.map((i) => (Number(labels[i]!.slice(-1)) < 2 ? 'A' : 'B')), settings({ tfidfModel: tfidf, pool, sharedBasis }));
    assert.ok(ownBuilt >= 2, `own bases: the text head's and early fusion's joint head's (${ownBuilt})`);
    assert.equal(built, 1, 'one shared basis for both heads of both targets');
    assert.ok(own.heads.every((h) => h.name === 'image' || h.rowSpace) && shared.heads.every((h) => h.name === 'image' || h.rowSpace));
    assert.deepEqual(shared.heads.map((h) => [h.name, h.C, h.weight]), own.heads.map((h) => [h.name, h.C, h.weight]));
    const p = shippedPredictions(own, test.rows, own.classes).fused;
    const q = shippedPredictions(shared, test.rows, shared.classes).fused;
    let max = 0;
    for (let t = 0; t < p.length; t++) max = Math.max(max, Math.abs(p[t]! - q[t]!));
    assert.ok(max < 2e-3, `max |Δp| ${max}`);
    const pa = shippedPredictions(attribute, test.rows, attribute.classes).fused;
    const right = test.rows.filter((r, i) => r.text !== '' && (pa[2 * i]! > 0.5 ? 'A' : 'B') === (Number(test.labels[i]!.slice(-1)) < 2 ? 'A' : 'B')).length;
    assert.ok(right >= 0.95 * test.rows.filter((r) => r.text !== '').length, `attribute right on ${right} rows with text`);
  } finally {
    await pool.close();
  }
});
