// The support head (support-head.ts): which (term, class) pairs get weights, a deterministic fit whose early
// stopping is the same as running the chosen epochs, a bundle head that scores as the fit does, and train's
// choice of it (asked for, or when a full head would not fit in memory) with progress for every planned fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chosenEpochs, fitSupportHead, supportLinearHead, termClassSupport } from '../../src/head/support-head.js';
import { csrFromRows, heldOutCsr, type CsrBlock } from '../../src/head/design-matrix.js';
import { scoreRow } from '../../src/head/scoring.js';
import { fitTfidf, tfidfBlockRow } from '../../src/head/tfidf.js';
import { plannedFits, trainModel, type HeadSettings } from '../../src/head/target.js';
import { linearBundleHead, shippedPredictions } from '../../src/head/linear-head.js';
import { FitPool } from '../../src/head/fit-pool.js';
import type { FitProgressEvent, PlannedFit } from '../../src/head/selection.js';
import type { CollectedRow } from '../../src/pipeline/collect.js';
import { syntheticCatalog } from '../../bench/synthetic-catalog.js';
import { mulberry32 } from '../../src/head/random.js';
import { twoModalityRows } from '../helpers/two-modality-rows.js';

const csr = (rows: number[][], dim: number): CsrBlock => csrFromRows(rows.map((r) => ({ indices: r, values: r.map(() => 1) })), dim);

test('termClassSupport: a term gets a class when it is over-represented in enough of the class’s rows', () => {
  // Terms: t0 only in class 0; t1 in both rows of class 1 but also in class 0 (df 3 of 5: not over-represented
  // enough); t2 once in class 0 and in class 2's only row; t3 in both rows of class 1.
  const X = csr([[0, 1], [0, 2], [1, 3], [1, 3], [2]], 4);
  const y = [0, 0, 1, 1, 2];
  const s = termClassSupport(X, y, 3, Int32Array.from([0, 1, 2, 3, 4]), 2, 2);
  const columns = [0, 1, 2, 3].map((j) => Array.from(s.classIndex.subarray(s.colptr[j]!, s.colptr[j + 1]!)));
  assert.deepEqual(columns, [[0], [], [2], [1]]);
  // Only the rows asked for count: without row 4, class 2 has no rows and t2 appears once in class 0.
  const part = termClassSupport(X, y, 3, Int32Array.from([0, 1, 2, 3]), 2, 2);
  assert.deepEqual([0, 1, 2, 3].map((j) => Array.from(part.classIndex.subarray(part.colptr[j]!, part.colptr[j + 1]!))), [[0], [], [], [1]]);
  // Lift 1 keeps a term as common in the class as overall (t1 in class 1, not in class 0 where it is rarer); classes come out sorted per column.
  const loose = termClassSupport(X, y, 3, Int32Array.from([0, 1, 2, 3, 4]), 1, 1);
  assert.deepEqual([0, 1, 2, 3].map((j) => Array.from(loose.classIndex.subarray(loose.colptr[j]!, loose.colptr[j + 1]!))), [[0], [1], [0, 2], [1]]);
});

/** A small Zipf catalog (the bench's 5,000-class generator at 60 classes) as TF-IDF rows. */
function zipfProblem(sample = 0, rows = 1500) {
  const train = syntheticCatalog({ classes: 60, rows: 1500, seed: 5 });
  const data = sample === 0 ? train : syntheticCatalog({ classes: 60, rows: 1500, seed: 5, sample, sampleRows: rows });
  const texts = (d: typeof train) => d.map((r) => `${r.title} ${r.description}`.trim());
  const classes = [...new Set(train.map((r) => r.category))].sort();
  const word = fitTfidf(texts(train), { ngramRange: [1, 2], sublinearTf: true });
  const char = fitTfidf(texts(train), { analyzer: 'char_wb', ngramRange: [2, 4], sublinearTf: true });
  const X = csrFromRows(texts(data).map((t) => tfidfBlockRow({ word, char }, t)), word.terms.length + char.terms.length);
  const y = Int32Array.from(data, (r) => classes.indexOf(r.category));
  return { X, y, classes, K: classes.length, rows: data, texts: texts(data) };
}

test('fitSupportHead: seeded and deterministic; early stopping keeps the best epoch, the same weights as running that many', () => {
  const { X, y: clean, K } = zipfProblem();
  const n = clean.length;
  // A fifth of the labels replaced at random, so that fitting longer starts to hurt and early stopping has to act.
  const rand = mulberry32(9);
  const y = Int32Array.from(clean, (k) => (rand() < 0.2 ? Math.floor(rand() * K) : k));
  const train = Int32Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 !== 0);
  const test = Int32Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 === 0);
  const early = fitSupportHead(X, y, K, { train, test, epochs: 30, seed: 1 });
  const again = fitSupportHead(X, y, K, { train, test, epochs: 30, seed: 1 });
  assert.deepEqual(Array.from(again.values), Array.from(early.values));
  assert.deepEqual(Array.from(again.intercept), Array.from(early.intercept));
  const losses = early.curve.map((e) => e.heldOutLoss);
  assert.ok(early.curve.length < 30 && early.curve.length > early.epochs, `stopped after the best epoch (${losses.map((l) => l.toFixed(3))})`);
  assert.equal(Math.min(...losses), losses[early.epochs - 1]);
  const fixed = fitSupportHead(X, y, K, { train, test: new Int32Array(0), epochs: early.epochs, seed: 1 });
  assert.deepEqual(Array.from(fixed.values), Array.from(early.values));
  assert.ok(fixed.curve.every((e) => Number.isNaN(e.heldOutLoss)) && fixed.curve.length === early.epochs);
  const other = fitSupportHead(X, y, K, { train, test: new Int32Array(0), epochs: early.epochs, seed: 2 });
  assert.notDeepEqual(Array.from(other.values), Array.from(fixed.values), 'another seed, another order');
  // Its bundle form scores as the fit does: the held-out log-loss from scoreRow, on the held-out rows as new rows
  // (unseen columns dropped, renormalised: heldOutCsr), is the curve's best.
  const head = supportLinearHead(early, Array.from({ length: K }, (_, k) => `c${k}`), 0).head;
  const held = heldOutCsr(X, train, test);
  let loss = 0;
  test.forEach((i, a) => {
    const row = { indices: held.indices.subarray(held.indptr[a]!, held.indptr[a + 1]!), values: held.values.subarray(held.indptr[a]!, held.indptr[a + 1]!) };
    loss -= Math.log(scoreRow(head, { dense: [], sparse: row })[y[i]!]!);
  });
  assert.ok(Math.abs(loss / test.length - losses[early.epochs - 1]!) < 1e-5, `${loss / test.length} vs ${losses[early.epochs - 1]}`);
  assert.equal(chosenEpochs([{ epochs: 3 }, { epochs: 4 }, { epochs: 6 }]), 4);
  assert.throws(() => fitSupportHead(X, y, K, { train, test, epochs: 0, seed: 1 }), /epochs must be a positive integer/);
});

test('supportLinearHead: pruning drops entries within the tolerance of zero and rounds the rest to its grid', () => {
  const fit = { colptr: Uint32Array.from([0, 3, 4]), classIndex: Uint16Array.from([0, 1, 2, 1]), values: Float32Array.from([0.5, -0.0004, 0.00301, -1.2]), intercept: Float64Array.from([0.1, 0.2, 0.3]) };
  const exact = supportLinearHead(fit, ['a', 'b', 'c'], 0);
  assert.equal(exact.keptEntries, 4);
  assert.equal(exact.valueBits, 32);
  const pruned = supportLinearHead(fit, ['a', 'b', 'c'], 1e-3);
  assert.deepEqual(Array.from(pruned.head.sparse!.colptr), [0, 2, 3]);
  assert.deepEqual(Array.from(pruned.head.sparse!.classIndex), [0, 2, 1]);
  pruned.head.sparse!.values.forEach((v, p) => assert.ok(Math.abs(v - [0.5, 0.00301, -1.2][p]!) <= 1e-3 + 1e-9));
  assert.equal(pruned.valueBits, 16);
});

const textRows = (texts: string[]): CollectedRow[] =>
  texts.map((text, i) => ({ row: { index: i, id: `r${i}`, title: text, description: '', image: '', extra: {}, line: i + 2 }, vectors: {}, ok: true, text, warnings: [], error: null }));

const tfidfSettings = (extra: Partial<HeadSettings> = {}): HeadSettings => ({
  features: ['tfidf'],
  dims: {},
  tfidf: { ngramRange: [1, 2], sublinearTf: true },
  charTfidf: { analyzer: 'char_wb', ngramRange: [2, 4], stopWords: null, sublinearTf: true },
  lr: { C: 1, maxIter: 300, tol: 1e-4 },
  fusion: 'late',
  fusionShare: 0.2,
  seed: 3,
  cGrid: [0.1, 1, 10],
  selectionFolds: 0,
  ...extra,
});

test('train: a support head when asked, or when the full head would not fit in memory; it generalises, and its pruning is measured', async () => {
  const { rows: data, texts } = zipfProblem();
  const rows = textRows(texts);
  const labels = data.map((r) => r.category);
  const planned: PlannedFit[] = [];
  const events: FitProgressEvent[] = [];
  const pool = new FitPool(2);
  let model;
  try {
    // 1e7 bytes cannot hold 60 classes × ~30k columns of L-BFGS state: auto turns to the support head.
    model = await trainModel(rows, labels, tfidfSettings({ pool, memoryBytes: 1e7, jobs: 2, progress: { plan: (f) => planned.push(...f), report: (e) => events.push(e) } }));
  } finally {
    await pool.close();
  }
  const h = model.heads[0]!;
  assert.ok(h.support && Number.isNaN(h.C) && h.head.support);
  assert.equal(h.support.heldOut.length, 1);
  assert.ok(h.support.heldOut[0]!.logLoss.length >= h.support.epochs);
  // The plan was made for a support head: one held-out fit and the final fit, and those are the fits reported.
  assert.deepEqual(planned, plannedFits(tfidfSettings(), [true]));
  assert.deepEqual(planned.map((p) => [p.final, p.C === null ? null : Number.isNaN(p.C)]), [[false, true], [true, null]]);
  const fits = events.filter((e) => e.event.type === 'fit');
  assert.deepEqual(fits.map((e) => e.final), [false, true]);
  assert.ok(events.some((e) => e.event.type === 'iteration'), 'epochs are reported');
  // The same choice asked for, inline instead of in workers: the same head, weight for weight.
  const asked = await trainModel(rows, labels, tfidfSettings({ headKind: 'support' }));
  assert.deepEqual(Array.from(asked.heads[0]!.head.support!.values), Array.from(h.head.support!.values));
  assert.equal(asked.heads[0]!.support!.epochs, h.support.epochs);
  // Held-out rows drawn independently from the same classes: the shipped (pruned) head is right on most.
  const held = zipfProblem(1, 600);
  const heldRows = textRows(held.texts);
  const probs = shippedPredictions(model, heldRows, model.classes).fused;
  const K = model.classes.length;
  let right = 0;
  held.rows.forEach((r, i) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (probs[i * K + k]! > probs[i * K + best]!) best = k;
    if (model.classes[best] === r.category) right++;
  });
  assert.ok(right / held.rows.length > 0.8, `held-out accuracy ${right / held.rows.length}`);
  const { pruning } = linearBundleHead(h.head, heldRows);
  assert.ok(pruning?.agreement && pruning.agreement.rows === 600, 'agreement measured on the rows given');
  assert.ok(pruning.agreement.top1Agreement >= 0.99 && pruning.agreement.maxAbsDiff < 0.05, JSON.stringify(pruning.agreement));
  assert.ok(pruning.keptEntries <= pruning.totalEntries && pruning.valueBits === 16);
  // A full head is kept when asked for (no memory check here) or when it fits.
  const roomy = await trainModel(rows.slice(0, 300), labels.slice(0, 300), tfidfSettings({ cGrid: null, memoryBytes: 1e12 }));
  assert.equal(roomy.heads[0]!.support, null);
});

test('--head support is for one TF-IDF-only head', async () => {
  const { rows, labels } = twoModalityRows(80, 3);
  await assert.rejects(
    trainModel(rows, labels, tfidfSettings({ features: ['image', 'tfidf'], dims: { image: 8 }, fusion: 'joint', headKind: 'support' })),
    (err: Error & { code?: string }) => err.code === 'features' && /--head support fits one TF-IDF-only head: use --features tfidf \(the joint head reads image embeddings\)/.test(err.message),
  );
  await assert.rejects(
    trainModel(rows, labels, tfidfSettings({ features: ['image', 'tfidf'], dims: { image: 8 }, headKind: 'support' })),
    (err: Error & { code?: string }) => err.code === 'features' && /the text head reads one of two fused modalities/.test(err.message),
  );
});
