// Path figures against scikit-learn's on a seeded ragged tree (scripts/reference/path_metrics_reference.py), and the
// streaming accumulator against the pure functions on the answers it gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { CURVE_THRESHOLDS, PathMetricsAccumulator, hierarchicalScores, levelMetrics } from '../../src/report/path-metrics.js';
import { Taxonomy } from '../../src/head/taxonomy.js';
import { mulberry32 } from '../../src/head/random.js';

interface Golden {
  rows: { true: string; pred: string | null }[];
  hierarchical: { precision: number; recall: number; f1: number };
  levels: { level: number; rows: number; accuracy: number; macroF1: number }[];
}
const golden = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-path-metrics.json'), 'utf8')) as Golden;
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12, `${what}: ${a} vs scikit-learn's ${b}`);

test('hierarchical precision, recall and F1 equal scikit-learn micro-averaged P/R/F over ancestor-augmented label sets', () => {
  const h = hierarchicalScores(
    golden.rows.map((r) => r.true),
    golden.rows.map((r) => r.pred),
  );
  close(h.precision, golden.hierarchical.precision, 'hP');
  close(h.recall, golden.hierarchical.recall, 'hR');
  close(h.f1, golden.hierarchical.f1, 'hF');
});

test('accuracy and macro-F1 per level equal scikit-learn (too-shallow or missing answers wrong, not a label)', () => {
  const levels = levelMetrics(
    golden.rows.map((r) => r.true),
    golden.rows.map((r) => r.pred),
  );
  assert.equal(levels.length, golden.levels.length);
  levels.forEach((l, i) => {
    const g = golden.levels[i];
    assert.equal(l.level, g.level);
    assert.equal(l.rows, g.rows);
    close(l.accuracy, g.accuracy, `level ${l.level} accuracy`);
    close(l.macroF1, g.macroF1, `level ${l.level} macro-F1`);
  });
});

test('the accumulator: its curve is the hierarchical figures of the answers at each threshold, its point is on it', () => {
  const classes = ['A > B', 'A > B > C', 'A > D', 'E', 'E > F > G', 'E > F > H'];
  const tree = new Taxonomy(classes);
  const rand = mulberry32(3);
  const truths: string[] = [];
  const probs: (Float64Array | null)[] = [];
  for (let i = 0; i < 120; i++) {
    truths.push(classes[Math.floor(rand() * classes.length)]);
    if (i % 17 === 0) {
      probs.push(null);
      continue;
    }
    const raw = classes.map(() => rand() ** 3);
    const s = raw.reduce((a, b) => a + b, 0);
    probs.push(Float64Array.from(raw, (v) => v / s));
  }
  const acc = new PathMetricsAccumulator(tree, 0.6);
  truths.forEach((t, i) => acc.add(t, probs[i]));
  const m = acc.result();
  assert.equal(m.rows, 120);
  assert.deepEqual(
    m.curve.map((c) => c.minPathScore),
    [...new Set([...CURVE_THRESHOLDS, 0.6])].sort((a, b) => a - b),
  );
  for (const c of m.curve) {
    const answers = probs.map((p) => (p ? tree.answer(p, c.minPathScore) : null));
    const h = hierarchicalScores(truths, answers.map((a) => a?.node ?? null));
    close(c.precision, h.precision, `hP at ${c.minPathScore}`);
    close(c.recall, h.recall, `hR at ${c.minPathScore}`);
    assert.equal(c.answered, answers.filter((a) => a?.node).length / 120);
    assert.equal(c.complete, answers.filter((a) => a?.complete).length / 120);
  }
  assert.deepEqual(m.at, m.curve.find((c) => c.minPathScore === 0.6));
  const exact = probs.filter((p, i) => p && tree.answer(p, 0).full.path === truths[i]).length;
  assert.equal(m.exactPath, exact / 120);
  // Answers thin out as the threshold rises (the top level's best node is what decides whether a row is answered).
  for (let j = 1; j < m.curve.length; j++) assert.ok(m.curve[j].answered <= m.curve[j - 1].answered);
});
