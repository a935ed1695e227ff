// The linear head's sparse scoring against the dense model it was built from (float64 reference and the ONNX
// graph run has always used), the column shift and pruning, the logit bound, and the agreement measure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildClassifierOnnx } from '../../src/head/classifier-onnx.js';
import {
  buildLinearHead,
  columnShift,
  linearHeadParams,
  linearScorer,
  measureAgreement,
  paramsScorer,
  probabilityAgreement,
  type LinearModelParams,
} from '../../src/head/linear-head.js';
import { headRowFromDense, linearLogits, RiseStop, scoreRow, scoreRows, sparseEntries, withinNoise, type HeadRow } from '../../src/head/scoring.js';
import { denseInput, randomParams, randomRows } from '../helpers/random-heads.js';

const SHAPES = [
  { name: 'dense + sparse', K: 9, dd: 24, dim: 400, parts: [16, 8] },
  { name: 'sparse only', K: 12, dd: 0, dim: 600, parts: [] },
  { name: 'dense only', K: 5, dd: 20, dim: 0, parts: [20] },
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function onnxProbs(params: LinearModelParams, rows: HeadRow[]): Promise<Float32Array> {
  const W = params.denseWidth + params.sparseWidth;
  const full = (v: Float64Array, fill: number) => {
    const out = new Float64Array(W).fill(fill);
    out.set(v.subarray(0, params.denseWidth));
    return out;
  };
  const bytes = buildClassifierOnnx({
    mean: full(params.mean, 0),
    scale: full(params.scale, 1),
    coef: params.coef,
    intercept: params.intercept,
    nClasses: params.classes.length,
    nFeatures: W,
  });
  const session = await ort.InferenceSession.create(bytes);
  try {
    const x = new Float32Array(rows.length * W);
    rows.forEach((r, i) => x.set(denseInput(r, params.denseWidth, params.sparseWidth), i * W));
    const out = await session.run({ features: new ort.Tensor('float32', x, [rows.length, W]) }, ['probabilities']);
    return out.probabilities!.data as Float32Array;
  } finally {
    await session.release();
  }
}

for (const [s, shape] of SHAPES.entries()) {
  test(`${shape.name}: at tolerance 0 the sparse head's probabilities equal the dense model's within 1e-5`, async () => {
    const params = randomParams(100 + s, { ...shape, meanLength: s === 0 ? 'full' : 'dense' });
    const rows = randomRows(200 + s, 300, shape.parts, shape.dim, 40);
    const { head, pruning } = buildLinearHead(params, { tolerance: 0 });
    const got = scoreRows(head, rows);
    const K = params.classes.length;
    const reference = paramsScorer(params);
    const want = new Float64Array(rows.length * K);
    rows.forEach((r, i) => want.set(reference(r), i * K));
    assert.ok(maxAbsDiff(got, want) < 1e-5, `vs float64 reference: ${maxAbsDiff(got, want)}`);
    const onnx = await onnxProbs(params, rows);
    assert.ok(maxAbsDiff(got, onnx) < 1e-5, `vs the ONNX head: ${maxAbsDiff(got, onnx)}`);
    if (shape.dim > 0) {
      // Tolerance 0 drops only entries equal to their column's shift: the all-tied columns, one entry elsewhere at least.
      assert.ok(pruning!.keptEntries < pruning!.totalEntries);
      let exactEqual = 0;
      const W = shape.dd + shape.dim;
      for (let j = 0; j < shape.dim; j++) {
        const col = Float64Array.from({ length: K }, (_, k) => params.coef[k * W + shape.dd + j]!);
        const c = columnShift(Float64Array.from(col).sort(), 0);
        exactEqual += col.filter((w) => w === c).length;
      }
      assert.equal(pruning!.keptEntries, pruning!.totalEntries - exactEqual);
    } else {
      assert.equal(pruning, null);
    }
  });
}

test('scoring the dense layout (what an ONNX head takes) equals scoring the sparse row', () => {
  const shape = SHAPES[0]!;
  const params = randomParams(7, shape);
  const { head } = buildLinearHead(params, { tolerance: 0.01 });
  for (const row of randomRows(8, 50, shape.parts, shape.dim, 30)) {
    const x = denseInput(row, shape.dd, shape.dim);
    assert.ok(maxAbsDiff(scoreRow(head, headRowFromDense(head, x)), scoreRow(head, row)) < 1e-7);
  }
});

test('columnShift centres the densest window of width 2·tolerance', () => {
  const sorted = Float64Array.from([-3, -0.0004, 0, 0.0003, 0.0009, 2, 2.0001]);
  // Four values within 2e-3 of each other: [-0.0004, 0.0009], centre 0.00025.
  assert.ok(Math.abs(columnShift(sorted, 1e-3) - 0.00025) < 1e-12);
  // Tolerance 0: the most repeated exact value.
  assert.equal(columnShift(Float64Array.from([-1, 0.5, 0.5, 0.5, 1, 1]), 0), 0.5);
  assert.equal(columnShift(Float64Array.from([4]), 0), 4);
});

test('pruning: kept entries are exactly those further than the tolerance from the shift, stored minus it', () => {
  // K = 5, no dense part, two columns: one clustered around 0.5 with an outlier, one all equal.
  const K = 5;
  const coef = new Float64Array(K * 2);
  [0.5, 0.5004, 0.4997, 2.0, 0.5].forEach((w, k) => (coef[k * 2] = w));
  for (let k = 0; k < K; k++) coef[k * 2 + 1] = -0.25;
  const params: LinearModelParams = {
    classes: ['a', 'b', 'c', 'd', 'e'],
    denseWidth: 0,
    sparseWidth: 2,
    mean: new Float64Array(0),
    scale: new Float64Array(0),
    coef,
    intercept: new Float64Array(K),
  };
  const { head, pruning } = buildLinearHead(params, { tolerance: 1e-3 });
  assert.deepEqual(pruning, { tolerance: 1e-3, keptEntries: 1, totalEntries: 10, valueBits: 16 });
  assert.deepEqual(Array.from(head.sparse!.colptr), [0, 1, 1]);
  assert.deepEqual(Array.from(head.sparse!.classIndex), [3]);
  assert.ok(head.sparse!.classIndex instanceof Uint16Array);
  // Shift = centre of [0.4997, 0.5004] = 0.50005; class d keeps 2.0 − 0.50005 = 1.49995, rounded to the nearest
  // multiple of 2·tolerance: 1.5 (750 × 0.002), within the tolerance like a pruned entry.
  assert.equal(head.sparse!.values[0], Math.fround(750 * 0.002));
  // At tolerance 0 it stays as it is (float32).
  const unrounded = buildLinearHead(params, { tolerance: 0 }).head.sparse!;
  assert.equal(unrounded.values[Array.from(unrounded.classIndex).indexOf(3)], Math.fround(2 - 0.5));
  assert.equal(sparseEntries(head), 1);
  // Tolerance 0 shifts the first column by 0.5 (its repeated value) and keeps the other three; the tied column
  // goes entirely. Shifting never changes probabilities, so this head matches the model exactly.
  const exact = buildLinearHead(params, { tolerance: 0 });
  assert.equal(exact.pruning!.keptEntries, 3);
  const row: HeadRow = { dense: [], sparse: { indices: [0, 1], values: [0.6, 0.8] } };
  assert.ok(maxAbsDiff(scoreRow(exact.head, row), paramsScorer(params)(row)) < 1e-7);
});

test("a pruned head's logits (kept values rounded to multiples of 2·tolerance) move by at most tolerance × ‖x‖₁ (between classes: twice that)", () => {
  const shape = SHAPES[1]!;
  const params = randomParams(31, shape);
  const tolerance = 0.004;
  const exact = buildLinearHead(params, { tolerance: 0 }).head;
  const pruned = buildLinearHead(params, { tolerance }).head;
  assert.ok(sparseEntries(pruned) < sparseEntries(exact) / 2, `${sparseEntries(pruned)} of ${sparseEntries(exact)} kept`);
  const K = params.classes.length;
  for (const row of randomRows(32, 200, [], shape.dim, 60)) {
    const a = linearLogits(exact, row, new Float64Array(K));
    const b = linearLogits(pruned, row, new Float64Array(K));
    // Both are shifted by the same per-row constant, so compare differences between classes.
    const d = Array.from(a, (v, k) => b[k]! - v);
    const l1 = Array.from(row.sparse!.values).reduce((s, v) => s + Math.abs(v), 0);
    assert.ok(Math.max(...d) - Math.min(...d) <= 2 * tolerance * l1 + 1e-6, `spread ${Math.max(...d) - Math.min(...d)} > ${2 * tolerance * l1}`);
  }
});

test('probabilityAgreement and measureAgreement report top-1 share, max and mean |Δp| as constructed', () => {
  // 4 rows × 3 classes; row 2's top class differs (0 vs 1); the largest difference is 0.3.
  const a = [0.7, 0.2, 0.1, 0.5, 0.3, 0.2, 0.5, 0.4, 0.1, 0.2, 0.2, 0.6];
  const b = [0.7, 0.2, 0.1, 0.5, 0.25, 0.25, 0.2, 0.7, 0.1, 0.2, 0.2, 0.6];
  const got = probabilityAgreement(a, b, 4, 3);
  assert.equal(got.rows, 4);
  assert.equal(got.top1Agreement, 0.75);
  assert.ok(Math.abs(got.maxAbsDiff - 0.3) < 1e-12);
  assert.ok(Math.abs(got.meanAbsDiff - (0.05 + 0.05 + 0.3 + 0.3) / 12) < 1e-12);
  const rows: HeadRow[] = [0, 1, 2, 3].map((i) => ({ dense: [[i]], sparse: null }));
  const viaScorers = measureAgreement(
    (r) => a.slice(Number(r.dense[0]![0]) * 3, Number(r.dense[0]![0]) * 3 + 3),
    (r) => b.slice(Number(r.dense[0]![0]) * 3, Number(r.dense[0]![0]) * 3 + 3),
    rows,
    3,
  );
  assert.deepEqual(viaScorers, got);
  assert.deepEqual(probabilityAgreement([], [], 0, 3), { rows: 0, top1Agreement: 1, maxAbsDiff: 0, meanAbsDiff: 0 });
});

test('a heavily pruned head: measured agreement matches a direct comparison, and drops as the tolerance grows', () => {
  const shape = SHAPES[0]!;
  const params = randomParams(41, shape);
  const rows = randomRows(42, 400, shape.parts, shape.dim, 40);
  const K = params.classes.length;
  const reference = paramsScorer(params);
  let previous = -1;
  for (const tolerance of [0, 0.01, 0.1, 1]) {
    const { head } = buildLinearHead(params, { tolerance });
    const m = measureAgreement(reference, linearScorer(head), rows, K);
    const direct = probabilityAgreement(
      Float64Array.from(rows.flatMap((r) => Array.from(reference(r)))),
      scoreRows(head, rows),
      rows.length,
      K,
    );
    assert.equal(m.top1Agreement, direct.top1Agreement);
    assert.ok(Math.abs(m.maxAbsDiff - direct.maxAbsDiff) < 1e-7);
    assert.ok(m.maxAbsDiff >= previous - 1e-7, `max |Δp| grows with the tolerance: ${m.maxAbsDiff} after ${previous}`);
    previous = m.maxAbsDiff;
    if (tolerance === 0) assert.ok(m.maxAbsDiff < 1e-5 && m.top1Agreement === 1);
  }
  // At tolerance 1 nearly everything is gone: the measure must say so, not assume agreement.
  assert.ok(previous > 0.05, `max |Δp| at tolerance 1 is ${previous}`);
});

test('linearHeadParams gives back the dense model a head stands for', () => {
  const shape = SHAPES[0]!;
  const params = randomParams(51, shape);
  const { head } = buildLinearHead(params, { tolerance: 0 });
  const back = linearHeadParams(head);
  const rows = randomRows(52, 60, shape.parts, shape.dim, 20);
  const a = paramsScorer(params);
  const b = paramsScorer(back);
  for (const r of rows) assert.ok(maxAbsDiff(a(r), b(r)) < 1e-5);
});

test('bad input is a RangeError naming the problem', () => {
  const shape = SHAPES[0]!;
  const params = randomParams(61, shape);
  const { head } = buildLinearHead(params);
  assert.throws(() => scoreRow(head, { dense: [new Float32Array(24)], sparse: { indices: [400], values: [1] } }), /sparse index 400 is outside/);
  assert.throws(() => scoreRow(head, { dense: [new Float32Array(23)], sparse: null }), /dense input has 23 values, the head reads 24/);
  assert.throws(() => buildLinearHead({ ...params, mean: new Float64Array(24 + 400).fill(0.5) }), /TF-IDF block's mean must be 0/);
  assert.throws(() => buildLinearHead({ ...params, coef: params.coef.subarray(1) }), /coef has/);
  assert.throws(() => buildLinearHead(params, { tolerance: -1 }), /tolerance must be/);
});

test('withinNoise and RiseStop: a rise within one paired standard error is noise, one beyond it ends the search', () => {
  const base = Float64Array.from({ length: 40 }, (_, i) => 0.2 + (i % 5) * 0.05);
  // Mean excess 0.0025 with a spread of ~0.05 a row: well within noise. A uniform +0.05: beyond it.
  const near = Float64Array.from(base, (v, i) => v + (i % 2 ? 0.0525 : -0.0475));
  const far = Float64Array.from(base, (v) => v + 0.05);
  assert.equal(withinNoise(near, base), true);
  assert.equal(withinNoise(far, base), false);
  assert.equal(withinNoise(far.subarray(0, 39), base), false, 'rows that do not pair are never within noise');
  const lower = Float64Array.from(base, (v) => v - 0.01);
  const stop = new RiseStop(2);
  stop.add(base);
  stop.add(lower);
  assert.equal(stop.done, false, 'falling');
  stop.add(Float64Array.from(near, (v) => v - 0.01));
  assert.equal(stop.done, false, 'one rise within noise of the least (lower, not base)');
  stop.add(Float64Array.from(near, (v) => v - 0.01));
  assert.equal(stop.done, true, 'two rises in a row');
  const beyond = new RiseStop(2);
  beyond.add(base);
  beyond.add(far);
  assert.equal(beyond.done, true, 'one rise beyond noise');
});
