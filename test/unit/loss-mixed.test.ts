// The mixed-precision kernel (float64 logits from a float64 base and float32 differences) against the float64 JS
// kernel: the objective and gradient at points across refreshes of the base, and what the line search reads —
// the objective's decrease between nearby points — as float64 has it, where plain float32 logits lose it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createJsLossKernel, type LossKernel } from '../../src/head/loss.js';
import { createMixedLossKernel, MIXED_REFRESH_EVALUATIONS, rowStaircase } from '../../src/head/loss-mixed.js';
import { createOrtLossKernel } from '../../src/head/loss-ort.js';
import { fitLogisticRegressionAsync } from '../../src/head/logistic.js';
import { makeDesign, type DesignMatrix } from '../../src/head/design-matrix.js';
import { mulberry32 } from '../../src/head/random.js';

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Long dense rows (as basis coordinates are), class-shifted, with weights. */
function problem(seed: number, n: number, dd: number, K: number): { X: DesignMatrix; y: Int32Array; weight: Float64Array } {
  const r = mulberry32(seed);
  const y = new Int32Array(n).map((_, i) => (i < K ? i : Math.floor(r() * K)));
  const dense = new Float32Array(n * dd);
  for (let i = 0; i < n; i++) for (let j = 0; j < dd; j++) dense[i * dd + j] = (gauss(r) + (j % K === y[i] ? 2 : 0)) / Math.sqrt(dd);
  return { X: makeDesign(n, dense, dd, null), y, weight: new Float64Array(n).map(() => 0.5 + r()) };
}

/** The same with basis coordinates' staircase: row i is zero past a seeded column (a pivot position), some rows full. */
function staircaseProblem(seed: number, n: number, dd: number, K: number): ReturnType<typeof problem> & { ends: Int32Array } {
  const p = problem(seed, n, dd, K);
  const r = mulberry32(seed + 100);
  const ends = new Int32Array(n).map(() => (r() < 0.1 ? dd : 1 + Math.floor(r() * dd)));
  const dense = p.X.dense as Float32Array;
  for (let i = 0; i < n; i++) dense.fill(0, i * dd + ends[i]!, (i + 1) * dd);
  return { ...p, ends };
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

/** The mixed kernel against the float64 JS kernel at points walking away from the first base and back. */
async function agreesWithFloat64(p: ReturnType<typeof problem>, K: number, dd: number, l2: number): Promise<void> {
  const mixed = await createMixedLossKernel(p.X, p.y, K, p.weight, l2);
  const exact = createJsLossKernel(p.X, p.y, K, p.weight, l2);
  try {
    const r = mulberry32(9);
    const x = new Float64Array(K * dd + K).map(() => 3 * gauss(r));
    const gm = new Float64Array(x.length);
    const ge = new Float64Array(x.length);
    // Walk away from the first base and back, past two refreshes.
    for (let step = 0; step < 2 * MIXED_REFRESH_EVALUATIONS + 3; step++) {
      for (let t = 0; t < x.length; t++) x[t] += 0.2 * gauss(r);
      const fm = await mixed.evaluate(x, gm);
      const fe = await exact.evaluate(x, ge);
      // Right after a refresh the logits are float64's; between refreshes, off by float32's share of the
      // difference from the base, which these large steps keep large.
      const fresh = (step + 1) % MIXED_REFRESH_EVALUATIONS === 1;
      assert.ok(relDiff(fm, fe) < (fresh ? 1e-12 : 1e-7), `step ${step}: objective ${fm} vs ${fe}`);
      let gmax = 0;
      let err = 0;
      for (let t = 0; t < x.length; t++) {
        gmax = Math.max(gmax, Math.abs(ge[t]!));
        err = Math.max(err, Math.abs(gm[t]! - ge[t]!));
      }
      assert.ok(err <= 1e-5 * gmax, `step ${step}: gradient off by ${err} (max ${gmax})`);
    }
  } finally {
    await mixed.dispose();
    await exact.dispose();
  }
}

test('mixed kernel: objective and gradient equal float64\'s at points across base refreshes', async () => {
  await agreesWithFloat64(problem(3, 400, 300, 5), 5, 300, 1e-3);
});

test('rowStaircase: rows in order of where their trailing zeros begin, blocks as wide as their widest row', () => {
  const n = 1100, dd = 200;
  const { X, ends } = staircaseProblem(4, n, dd, 3);
  const { order, blocks } = rowStaircase(X.dense as Float32Array, n, dd);
  assert.equal(blocks.length, 4); // 1,100 rows, 256 a block at least
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  let next = 0;
  for (const b of blocks) {
    assert.equal(b.start, next);
    next += b.rows;
    for (let a = b.start; a < b.start + b.rows; a++) {
      assert.ok(ends[order[a]!]! <= b.width, `row ${order[a]} ends at ${ends[order[a]!]} past its block's ${b.width}`);
      if (a > 0) assert.ok(ends[order[a]!]! >= ends[order[a - 1]!]!, 'rows out of order');
    }
  }
  assert.equal(next, n);
  const stored = blocks.reduce((s, b) => s + b.rows * b.width, 0);
  assert.ok(stored < 0.7 * n * dd, `blocks store ${stored} of ${n * dd}`);
  // No trailing zeros to skip (or too few rows for two blocks): one block, the design as it is.
  const full = problem(5, n, dd, 3);
  assert.deepEqual(rowStaircase(full.X.dense as Float32Array, n, dd).blocks, [{ start: 0, rows: n, width: dd }]);
  assert.equal(rowStaircase(X.dense as Float32Array, 300, dd).blocks.length, 1);
});

test('mixed kernel over a staircase design (blocks of rows over their own columns): objective and gradient equal float64\'s', async () => {
  const n = 1100, dd = 200, K = 4;
  const p = staircaseProblem(6, n, dd, K);
  assert.ok(rowStaircase(p.X.dense as Float32Array, n, dd).blocks.length > 1);
  await agreesWithFloat64(p, K, dd, 1e-3);
});

test('mixed kernel: a decrease of 1e-9 of the objective between nearby points is seen as float64 sees it', async () => {
  const n = 600, dd = 400, K = 6, l2 = 1e-4;
  const p = problem(5, n, dd, K);
  const r = mulberry32(13);
  const x = new Float64Array(K * dd + K).map(() => 20 * gauss(r)); // large weights: large logits, as at large C
  const dir = new Float64Array(x.length).map(() => gauss(r));
  const kernels: Record<string, LossKernel> = {
    mixed: await createMixedLossKernel(p.X, p.y, K, p.weight, l2),
    float32: await createOrtLossKernel(p.X, p.y, K, p.weight, l2, { precision: 'float32' }),
    exact: createJsLossKernel(p.X, p.y, K, p.weight, l2),
  };
  try {
    const g = new Float64Array(x.length);
    const f0: Record<string, number> = {};
    for (const [name, k] of Object.entries(kernels)) f0[name] = await k.evaluate(x, g);
    const scale = 1e-9 * Math.abs(f0.exact!);
    let worstMixed = 0;
    let worstFloat32 = 0;
    for (let s = 1; s <= 5; s++) {
      const xs = x.map((v, t) => v + s * 1e-7 * dir[t]!);
      const delta: Record<string, number> = {};
      for (const [name, k] of Object.entries(kernels)) delta[name] = (await k.evaluate(xs, g)) - f0[name]!;
      worstMixed = Math.max(worstMixed, Math.abs(delta.mixed! - delta.exact!));
      worstFloat32 = Math.max(worstFloat32, Math.abs(delta.float32! - delta.exact!));
    }
    assert.ok(worstMixed < 0.01 * scale, `mixed: differences off by ${worstMixed}, against 1e-9 of f = ${scale}`);
    // The reason for the kernel: float32 logits get these differences wrong by more than they are.
    assert.ok(worstFloat32 > scale, `float32 differences off by only ${worstFloat32}: the test no longer shows the problem`);
  } finally {
    for (const k of Object.values(kernels)) await k.dispose();
  }
});

for (const [what, make] of [['a design', problem], ['a staircase design', staircaseProblem]] as const) test(`a fit with the mixed kernel reaches the float64 fit's optimum: ${what}`, async () => {
  const n = 1100, dd = 200, K = 4;
  const p = make(7, n, dd, K);
  const opts = { C: 100, tol: 1e-6, kernel: 'onnxruntime' as const, sampleWeight: p.weight };
  const mixed = await fitLogisticRegressionAsync(p.X, p.y, K, { ...opts, precision: 'mixed' });
  const exact = await fitLogisticRegressionAsync(p.X, p.y, K, { ...opts, precision: 'float64' });
  assert.ok(relDiff(mixed.loss, exact.loss) < 1e-7, `loss ${mixed.loss} vs ${exact.loss}`);
  let err = 0;
  let size = 0;
  for (let t = 0; t < exact.coef.length; t++) {
    err = Math.max(err, Math.abs(mixed.coef[t]! - exact.coef[t]!));
    size = Math.max(size, Math.abs(exact.coef[t]!));
  }
  assert.ok(err < 1e-3 * size, `weights differ by ${err} (largest ${size})`);
});

test('mixed kernel refuses a design with a sparse block', async () => {
  const X = makeDesign(2, new Float32Array(2), 1, { dim: 1, indptr: Int32Array.of(0, 1, 1), indices: Int32Array.of(0), values: Float64Array.of(1) });
  await assert.rejects(createMixedLossKernel(X, Int32Array.of(0, 1), 2, Float64Array.of(1, 1), 1), /dense designs only/);
});
