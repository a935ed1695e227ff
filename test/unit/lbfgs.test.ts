// L-BFGS on problems with known minima: Rosenbrock (2-D and 20-D), an ill-conditioned quadratic, the
// stopping rules (gtol, ftol, maxIter, non-finite start), and the async driver retracing the sync one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { minimize, minimizeAsync } from '../../src/head/lbfgs.js';

function rosenbrock(x: Float64Array, g: Float64Array): number {
  let f = 0;
  g.fill(0);
  for (let i = 0; i + 1 < x.length; i++) {
    const a = x[i + 1]! - x[i]! * x[i]!;
    const b = 1 - x[i]!;
    f += 100 * a * a + b * b;
    g[i] += -400 * x[i]! * a - 2 * b;
    g[i + 1] += 200 * a;
  }
  return f;
}

test('Rosenbrock 2-D from (-1.2, 1) reaches (1, 1)', () => {
  const r = minimize(rosenbrock, Float64Array.of(-1.2, 1), { gtol: 1e-10, ftol: 0, maxIter: 1000 });
  assert.ok(r.converged, r.message);
  assert.ok(r.gradMaxAbs <= 1e-10);
  assert.ok(Math.abs(r.x[0]! - 1) < 1e-8 && Math.abs(r.x[1]! - 1) < 1e-8, `x = ${Array.from(r.x)}`);
  assert.ok(r.f < 1e-16);
  assert.ok(r.iterations > 10 && r.iterations < 100, `iterations ${r.iterations}`);
  assert.ok(r.evaluations >= r.iterations + 1);
});

test('Rosenbrock 20-D', () => {
  const x0 = new Float64Array(20).map((_, i) => (i % 2 === 0 ? -1.2 : 1));
  const r = minimize(rosenbrock, x0, { gtol: 1e-9, ftol: 0, maxIter: 2000 });
  assert.ok(r.converged, r.message);
  for (const v of r.x) assert.ok(Math.abs(v - 1) < 1e-6, `x = ${Array.from(r.x)}`);
});

test('ill-conditioned quadratic: reaches the linear system\'s solution', () => {
  const n = 50;
  const c = 0.4;
  const a = new Float64Array(n).map((_, i) => 10 ** ((2 * i) / (n - 1))); // diagonal 1 .. 100
  const b = new Float64Array(n).map((_, i) => Math.sin(i + 1));
  // f = 1/2 xᵀAx - b·x with A tridiagonal (a on the diagonal, c beside it).
  const fg = (x: Float64Array, g: Float64Array): number => {
    let f = 0;
    for (let i = 0; i < n; i++) {
      f += 0.5 * a[i]! * x[i]! * x[i]! - b[i]! * x[i]!;
      g[i] = a[i]! * x[i]! - b[i]!;
    }
    for (let i = 0; i + 1 < n; i++) {
      f += c * x[i]! * x[i + 1]!;
      g[i] += c * x[i + 1]!;
      g[i + 1] += c * x[i]!;
    }
    return f;
  };
  // Exact solution of A x = b by the Thomas algorithm.
  const cp = new Float64Array(n);
  const dp = new Float64Array(n);
  cp[0] = c / a[0]!;
  dp[0] = b[0]! / a[0]!;
  for (let i = 1; i < n; i++) {
    const m = a[i]! - c * cp[i - 1]!;
    cp[i] = c / m;
    dp[i] = (b[i]! - c * dp[i - 1]!) / m;
  }
  const exact = new Float64Array(n);
  exact[n - 1] = dp[n - 1]!;
  for (let i = n - 2; i >= 0; i--) exact[i] = dp[i]! - cp[i]! * exact[i + 1]!;

  const r = minimize(fg, new Float64Array(n), { gtol: 1e-10, ftol: 0, maxIter: 5000 });
  // f stops decreasing in float64 around |g| ~ 1e-7 here (scipy's L-BFGS-B stops there too, after 111
  // iterations with the "relative reduction" message); that is still the solution to ~1e-7.
  assert.ok(r.converged, r.message);
  assert.ok(r.iterations < 200, `iterations ${r.iterations}`);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(r.x[i]! - exact[i]!) < 1e-6, `x[${i}] = ${r.x[i]} vs ${exact[i]}`);
});

test('maxIter stops early and reports not converged; onIteration sees every step', () => {
  const seen: number[] = [];
  const losses: number[] = [];
  const r = minimize(rosenbrock, Float64Array.of(-1.2, 1), {
    gtol: 1e-12,
    maxIter: 5,
    onIteration: (it, f) => {
      seen.push(it);
      losses.push(f);
    },
  });
  assert.equal(r.converged, false);
  assert.equal(r.iterations, 5);
  assert.match(r.message, /maxIter/);
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  for (let i = 1; i < losses.length; i++) assert.ok(losses[i]! <= losses[i - 1]!, 'monotone decrease');
});

test('ftol stops on a tiny relative decrease and counts as converged', () => {
  const r = minimize(rosenbrock, Float64Array.of(-1.2, 1), { gtol: 0, ftol: 1e-3 });
  assert.ok(r.converged);
  assert.match(r.message, /relative reduction/);
});

test('already optimal start and non-finite objective', () => {
  const r = minimize(rosenbrock, Float64Array.of(1, 1), {});
  assert.ok(r.converged);
  assert.equal(r.iterations, 0);
  const bad = minimize(() => NaN, Float64Array.of(0), {});
  assert.equal(bad.converged, false);
  assert.match(bad.message, /not finite/);
  assert.throws(() => minimize(rosenbrock, Float64Array.of(0, 0), { memory: 0 }), RangeError);
});

test('minimizeAsync takes the same steps as minimize, evaluation for evaluation', async () => {
  const x0 = new Float64Array(20).map((_, i) => (i % 2 === 0 ? -1.2 : 1));
  const seenSync: number[] = [];
  const seenAsync: number[] = [];
  const opts = { gtol: 1e-9, ftol: 0, maxIter: 2000 };
  const s = minimize((x, g) => {
    const f = rosenbrock(x, g);
    seenSync.push(f);
    return f;
  }, x0, opts);
  const a = await minimizeAsync(async (x, g) => {
    await new Promise((r) => setImmediate(r));
    const f = rosenbrock(x, g);
    seenAsync.push(f);
    return f;
  }, x0, opts);
  assert.deepEqual(seenAsync, seenSync);
  assert.deepEqual(Array.from(a.x), Array.from(s.x));
  assert.equal(a.iterations, s.iterations);
  assert.equal(a.evaluations, s.evaluations);
  assert.equal(a.message, s.message);
  assert.deepEqual(Array.from(x0.subarray(0, 2)), [-1.2, 1], 'x0 is not modified');
});

test('minimizeAsync: a failing objective rejects; bad options reject', async () => {
  await assert.rejects(minimizeAsync(() => Promise.reject(new Error('kernel failed')), Float64Array.of(1)), /kernel failed/);
  await assert.rejects(minimizeAsync(async () => 0, Float64Array.of(1), { memory: 0 }), /invalid options/);
});
