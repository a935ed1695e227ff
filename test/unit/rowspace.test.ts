// The row-space form of a sparse block: its Gram and pivoted Cholesky (rank-deficient inputs included), weights
// mapped back giving the same logits, and fits in row space landing where fits over the columns land.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../src/head/random.js';
import { classedSparseRows } from '../helpers/sparse-rows.js';
import { csrFromDense, heldOutCsr, heldOutScaling, toDenseFloat64, type CsrBlock } from '../../src/head/design-matrix.js';
import { pivotedCholesky, rowSpaceBasis, rowSpaceIsCheaper, sparseGram, weightsFromBasis, weightsFromBasisAsync } from '../../src/head/rowspace.js';
import { ortSubstitutionUpdate, ortTrailingUpdate } from '../../src/head/gemm-ort.js';
import { fitPath, type HeadDesign } from '../../src/head/modality-head.js';

const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/** n sparse rows over dim columns, some of them repeated (duplicates make the Gram singular). */
function sparseRows(seed: number, n: number, dim: number, nnz: number, duplicates = 0): { S: CsrBlock; dense: Float64Array } {
  const rand = mulberry32(seed);
  const dense = new Float64Array(n * dim);
  for (let i = 0; i < n - duplicates; i++) {
    for (let t = 0; t < nnz; t++) dense[i * dim + Math.floor(rand() * dim)] = rand();
  }
  for (let i = n - duplicates; i < n; i++) dense.copyWithin(i * dim, (i % 3) * dim, (i % 3 + 1) * dim);
  return { S: csrFromDense(dense, n, dim), dense };
}

test('sparseGram is X·Xᵀ', () => {
  const { S, dense } = sparseRows(1, 9, 30, 5);
  const G = sparseGram(S, all(9));
  for (let i = 0; i < 9; i++) {
    for (let j = 0; j < 9; j++) {
      let s = 0;
      for (let c = 0; c < 30; c++) s += dense[i * 30 + c]! * dense[j * 30 + c]!;
      assert.ok(Math.abs(G[i * 9 + j]! - s) < 1e-12, `G[${i},${j}]`);
    }
  }
});

test('pivoted Cholesky reconstructs the Gram and stops at its rank (duplicate rows), in blocks or not, JS or ONNX Runtime updates', async () => {
  const n = 40;
  const { S } = sparseRows(2, n, 90, 6, 5);
  const gemm = await ortTrailingUpdate();
  try {
    for (const [block, update] of [[96, undefined], [7, undefined], [7, gemm.update], [1, gemm.update]] as const) {
      const G = sparseGram(S, all(n));
      const { C, r, perm } = await pivotedCholesky(G.slice(), n, { block, update });
      assert.equal(r, n - 5, `block ${block}: five rows repeat earlier ones`);
      assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          let s = 0;
          for (let k = 0; k < r; k++) s += C[a * n + k]! * C[b * n + k]!;
          const g = G[perm[a]! * n + perm[b]!]!;
          assert.ok(Math.abs(s - g) < 1e-10, `block ${block} (${a},${b}): ${s} vs ${g}`);
        }
      }
    }
  } finally {
    await gemm.dispose();
  }
});

test('the mapping back with its substitution in blocked GEMMs gives the weights of the JS one, zero weights and a strided offset included', async () => {
  // 300 rows: a basis of 290 (ten repeats) is three blocks of the substitution, the last one short.
  const n = 300;
  const dim = 2000;
  const { S } = sparseRows(5, n, dim, 12, 10);
  const basis = await rowSpaceBasis(S, all(n));
  assert.equal(basis.r, n - 10);
  const K = 7;
  const offset = 3;
  const stride = offset + basis.r + 2;
  const rand = mulberry32(6);
  const V = Float64Array.from({ length: K * stride }, () => rand() - 0.5);
  for (let k = 0; k < K; k += 3) V[k * stride + offset + basis.r - 1 - k] = 0;
  const js = weightsFromBasis(basis, S, V, K, stride, offset);
  const gemm = await ortSubstitutionUpdate();
  try {
    const blocked = await weightsFromBasisAsync(basis, S, V, K, stride, offset, gemm.update);
    assert.equal(blocked.length, K * dim);
    let largest = 0;
    for (let i = 0; i < js.length; i++) {
      largest = Math.max(largest, Math.abs(js[i]!));
      assert.ok(Math.abs(blocked[i]! - js[i]!) <= 1e-9 * Math.max(1, Math.abs(js[i]!)), `weight ${i}: ${blocked[i]} vs ${js[i]}`);
    }
    assert.ok(largest > 0.1, 'the weights are not all (near) zero');
  } finally {
    await gemm.dispose();
  }
});

test('weights over the basis, mapped back, give every row the same logits', async () => {
  const n = 15;
  const dim = 50;
  const { S } = sparseRows(3, n, dim, 8, 3);
  const basis = await rowSpaceBasis(S, all(n));
  const K = 4;
  const rand = mulberry32(4);
  const V = Float64Array.from({ length: K * basis.r }, () => rand() - 0.5);
  const W = weightsFromBasis(basis, S, V, K, basis.r, 0);
  const X = toDenseFloat64({ n, dense: null, dd: 0, sparse: S });
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < K; k++) {
      let viaBasis = 0;
      for (let a = 0; a < basis.r; a++) viaBasis += basis.L[i * basis.r + a]! * V[k * basis.r + a]!;
      let viaColumns = 0;
      for (let c = 0; c < dim; c++) viaColumns += X[i * dim + c]! * W[k * dim + c]!;
      assert.ok(Math.abs(viaBasis - viaColumns) < 1e-5, `row ${i} class ${k}: ${viaBasis} vs ${viaColumns}`);
    }
  }
  // Orthonormal basis: the weights' norm is the same in both forms (so is the L2 penalty).
  let a = 0;
  let b = 0;
  for (const v of V) a += v * v;
  for (const w of W) b += w * w;
  assert.ok(Math.abs(a - b) < 1e-9 * a, `${a} vs ${b}`);
});

test('a C path in row space lands where the path over the columns lands', async () => {
  const n = 120;
  const dim = 400;
  const K = 3;
  const { dense, y } = classedSparseRows(n, dim, K, 5);
  const S = csrFromDense(dense, n, dim);
  const design: HeadDesign = { n, y, nClasses: K, denseBlocks: [], dense: null, present: null, sparse: S, content: all(n), distinct: all(n), basis: null };
  const train = Int32Array.from({ length: 90 }, (_, i) => i);
  const test = Int32Array.from({ length: 30 }, (_, i) => 90 + i);
  const task = { train, test, Cs: [0.1, 1, 10], lr: { tol: 1e-8, maxIter: 2000, ftol: 0 }, keep: true };
  const columns = await fitPath(design, task);
  const rows = await fitPath({ ...design, basis: await rowSpaceBasis(S, all(n)) }, task);
  columns.fits.forEach((f, c) => assert.ok(Math.abs(f.loss - rows.fits[c]!.loss) <= 1e-7 * f.loss, `C ${f.C}: loss ${f.loss} vs ${rows.fits[c]!.loss}`));
  for (let c = 0; c < 3; c++) for (let t = 0; t < columns.probs[c]!.length; t++) assert.ok(Math.abs(columns.probs[c]![t]! - rows.probs[c]![t]!) < 1e-5);
  const a = columns.head!.coef;
  const b = rows.head!.coef;
  for (let t = 0; t < a.length; t++) assert.ok(Math.abs(a[t]! - b[t]!) < 1e-4, `coef[${t}] ${a[t]} vs ${b[t]}`);
});

test('row space is chosen where it is cheaper: few rows over a wide TF-IDF block, not many rows over a narrow one', () => {
  assert.equal(rowSpaceIsCheaper(2118, 0, 53893, 443_079, 53), true, 'amazon-electronics');
  assert.equal(rowSpaceIsCheaper(50_000, 0, 30_000, 2_000_000, 10), false, 'more rows than the Gram fits');
  assert.equal(rowSpaceIsCheaper(5000, 0, 2000, 100_000, 5), false, 'narrow block');
  assert.equal(rowSpaceIsCheaper(100, 1280, 0, 0, 5), false, 'no sparse block');
  // myntra's final early-fusion head (5,531 rows with 1,280 image columns, 24,320 TF-IDF columns): a basis of its own
  // (every row distinct with its photo) costs more than its columns; the shared basis, 3,572 wide and built anyway, not.
  assert.equal(rowSpaceIsCheaper(5531, 1280, 24_320, 600_000, 34), false, 'own basis');
  assert.equal(rowSpaceIsCheaper(5531, 1280, 24_320, 600_000, 34, 3572), true, 'shared basis');
});

test('duplicate rows: fitted once each with their counts as weights, the same fit as every copy (row space too)', async () => {
  const n = 90;
  const dim = 200;
  const K = 3;
  const rand = mulberry32(6);
  const dense = new Float64Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    if (i >= 60) {
      // Rows 60.. repeat rows 0..29, mostly with the same class, sometimes another.
      dense.copyWithin(i * dim, (i - 60) * dim, (i - 59) * dim);
      y[i] = i % 7 === 0 ? (y[i - 60]! + 1) % K : y[i - 60]!;
      continue;
    }
    for (let t = 0; t < 5; t++) dense[i * dim + Math.floor(rand() * dim)] = rand();
    dense[i * dim + y[i]! * 50 + Math.floor(rand() * 50)] = 1;
  }
  const S = csrFromDense(dense, n, dim);
  const content = Int32Array.from({ length: n }, (_, i) => (i >= 60 ? i - 60 : i));
  const copies: HeadDesign = { n, y, nClasses: K, denseBlocks: [], dense: null, present: null, sparse: S, content: all(n), distinct: all(n), basis: null };
  const pairs: HeadDesign = { ...copies, content, distinct: all(60) };
  const train = Int32Array.from({ length: 80 }, (_, i) => (i < 40 ? i : i + 10));
  const test = Int32Array.from({ length: 10 }, (_, i) => 40 + i);
  for (const classWeight of [null, 'balanced'] as const) {
    const task = { train, test, Cs: [1, 10], lr: { tol: 1e-9, maxIter: 3000, ftol: 0, classWeight }, keep: true };
    const a = await fitPath(copies, task);
    const b = await fitPath(pairs, task);
    const c = await fitPath({ ...pairs, basis: await rowSpaceBasis(S, all(60)) }, task);
    for (const other of [b, c]) {
      a.fits.forEach((f, k) => assert.ok(Math.abs(f.loss - other.fits[k]!.loss) <= 1e-8 * f.loss, `${classWeight} C ${f.C}: ${f.loss} vs ${other.fits[k]!.loss}`));
      for (let t = 0; t < a.head!.coef.length; t++) assert.ok(Math.abs(a.head!.coef[t]! - other.head!.coef[t]!) < 1e-5, `coef[${t}]`);
    }
  }
});

test('held-out rows are scored as a new row would be: columns no training row has dropped, each part renormalised', () => {
  // Parts [0, 2) and [2, 4); row 0 trains (columns 0 and 2), rows 1 and 2 are held out.
  const S: CsrBlock = { dim: 4, indptr: Int32Array.of(0, 2, 5, 7), indices: Int32Array.of(0, 2, 0, 1, 2, 1, 3), values: Float64Array.of(1, 1, 0.6, 0.8, 1, 0.6, 0.8), parts: Int32Array.of(0, 2) };
  const held = heldOutCsr(S, Int32Array.of(0), Int32Array.of(1, 2));
  assert.deepEqual([...held.indptr], [0, 2, 2]);
  assert.deepEqual([...held.indices], [0, 2]);
  assert.deepEqual([...held.values], [1, 1]); // 0.6 alone in its part is renormalised to 1; column 1 is unseen
  const { factor } = heldOutScaling(S, Int32Array.of(0), Int32Array.of(1, 2));
  assert.deepEqual([...factor], [1 / 0.6, 1, 0, 0]);
});

test('held-out probabilities: the fitted head on the renormalised rows, the same in row space as over the columns', async () => {
  const n = 120;
  const dim = 400;
  const K = 3;
  const rand = mulberry32(9);
  const dense = new Float64Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let t = 0; t < 6; t++) dense[i * dim + Math.floor(rand() * dim)] = rand();
    for (let t = 0; t < 3; t++) dense[i * dim + y[i]! * 60 + Math.floor(rand() * 60)] = 1 + rand();
    for (let t = 0; t < 4; t++) dense[i * dim + 200 + Math.floor(rand() * 200)] = rand();
    for (const [a, b] of [[0, 200], [200, 400]] as const) {
      let s = 0;
      for (let j = a; j < b; j++) s += dense[i * dim + j]! ** 2;
      for (let j = a; j < b; j++) dense[i * dim + j]! /= Math.sqrt(s);
    }
  }
  const S = { ...csrFromDense(dense, n, dim), parts: Int32Array.of(0, 200) };
  const design: HeadDesign = { n, y, nClasses: K, denseBlocks: [], dense: null, present: null, sparse: S, content: all(n), distinct: all(n), basis: null };
  const train = Int32Array.from({ length: 90 }, (_, i) => i);
  const test = Int32Array.from({ length: 30 }, (_, i) => 90 + i);
  const task = { train, test, Cs: [1, 10], lr: { tol: 1e-8, maxIter: 2000, ftol: 0 }, keep: true };
  const columns = await fitPath(design, task);
  const rows = await fitPath({ ...design, basis: await rowSpaceBasis(S, all(n)) }, task);
  for (let t = 0; t < columns.probs[1]!.length; t++) assert.ok(Math.abs(columns.probs[1]![t]! - rows.probs[1]![t]!) < 1e-5);
  // By hand: drop the held-out rows' unseen columns, renormalise each part, score with the fitted weights.
  const seen = new Uint8Array(dim);
  for (const i of train) for (let j = 0; j < dim; j++) if (dense[i * dim + j]) seen[j] = 1;
  let unseenMass = 0;
  test.forEach((i, a) => {
    const x = new Float64Array(dim);
    for (const [lo, hi] of [[0, 200], [200, 400]] as const) {
      let s = 0;
      for (let j = lo; j < hi; j++) if (seen[j]) s += dense[i * dim + j]! ** 2;
      for (let j = lo; j < hi; j++) if (seen[j] && s > 0) x[j] = dense[i * dim + j]! / Math.sqrt(s);
      unseenMass += 1 - s;
    }
    const { coef, intercept } = columns.head!;
    const z = Array.from({ length: K }, (_, k) => intercept[k]! + x.reduce((acc, v, j) => acc + v * coef[k * dim + j]!, 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((p, q) => p + q, 0);
    for (let k = 0; k < K; k++) assert.ok(Math.abs(e[k]! / sum - columns.probs[1]![a * K + k]!) < 1e-9, `row ${i} class ${k}`);
  });
  assert.ok(unseenMass > 1, 'the held-out rows have columns no training row has');
});
