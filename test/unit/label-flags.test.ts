// check's disagreement at a stated precision: the held-out label tail train stores, Wilson's upper bound, and the
// largest cutoff whose flags' precision bound reaches the precision asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { wilsonLower } from '../../src/head/calibration.js';
import { flagCutoff, LABEL_TAIL_MAX, labelTail, wilsonUpper } from '../../src/head/label-flags.js';

const golden = JSON.parse(fs.readFileSync(new URL('../../../test/golden/sklearn-calibration.json', import.meta.url), 'utf8')) as { wilson: { k: number; m: number; conf: number; lower: number }[] };

test('labelTail: the own-label probability of held-out rows answered as another class, up to LABEL_TAIL_MAX, ascending', () => {
  // Row 0 right; row 1 wrong with its label at 0.3; row 2 wrong with its label at 0.001; row 3 wrong but its label
  // at 0.45 still; row 4 answered another class while its label has 0.5 exactly (kept: ≤ LABEL_TAIL_MAX).
  const probs = [0.8, 0.1, 0.1, 0.6, 0.3, 0.1, 0.001, 0.009, 0.99, 0.45, 0.55, 0, 0.5, 0.5, 0];
  const t = labelTail(probs, [0, 1, 0, 0, 1], 3);
  assert.equal(LABEL_TAIL_MAX, 0.5);
  // Row 4: a tie between classes 0 and 1 answers class 0 (the first maximum), so label 1 at 0.5 counts.
  assert.deepEqual(t, { rows: 5, values: [0.001, 0.3, 0.45, 0.5] });
});

test("wilsonUpper is 1 − Wilson's lower bound on the complement, as statsmodels computes it", () => {
  for (const w of golden.wilson.filter((g) => g.conf === 0.95)) {
    const upper = wilsonUpper(w.m - w.k, w.m);
    assert.ok(Math.abs(upper - (1 - w.lower)) < 1e-12, `${w.m - w.k}/${w.m}`);
  }
  assert.equal(wilsonUpper(0, 0), 1);
  assert.ok(wilsonUpper(0, 100) > 0.026 && wilsonUpper(0, 100) < 0.027, 'no right label that improbable in 100 rows still allows 2.6%');
});

test('flagCutoff: the largest cutoff whose 95% precision bound reaches the target (hand-computed case)', () => {
  // 100 held-out rows: two right labels looked improbable, at 0.001 and 0.2. The catalog: 50 labelled rows, ten of
  // them at 1e-5, then 0.0005, 0.005 and 0.3.
  const tail = { rows: 100, values: [0.001, 0.2] };
  const candidates = [0.3, ...Array(10).fill(1e-5), 0.005, 0.0005];
  const f = flagCutoff(tail, candidates, 50, 0.8);
  // At 1e-5: 10 flagged, 0 held-out rows at most that probable: ≥ 1 − 50·u(0/100)/10 = 0.868. At 0.0005: 11 → 0.880.
  // At 0.005: 12 flagged, 1 held-out row → 1 − 50·u(1/100)/12 = 0.818. At 0.3: 13, 2 rows → 0.774 < 0.8.
  assert.equal(f.cutoff, 0.005);
  assert.equal(f.flagged, 12);
  assert.ok(Math.abs(f.lower - 0.8184092769414328) < 1e-9, String(f.lower));
  assert.ok(Math.abs(f.rightBound - 50 * wilsonUpper(1, 100)) < 1e-12);
  assert.equal(f.heldOutRows, 100);
  assert.equal(f.confidence, 0.95);
  // Asking for more keeps fewer: 0.87 is reached at 1e-5 only, 0.9 nowhere.
  assert.equal(flagCutoff(tail, candidates, 50, 0.87).cutoff, 0.0005);
  const none = flagCutoff(tail, candidates, 50, 0.9);
  assert.equal(none.cutoff, null);
  assert.equal(none.flagged, 0);
  assert.match(none.reason!, /^at best 0\.880 of the flags would be mislabelled$/);
});

test('flagCutoff: nothing flagged where the catalog has no more improbable labels than held-out rows had', () => {
  // 1,000 held-out rows, 10 of them right labels below 0.01; a clean catalog of 1,000 rows shows as many.
  const values = Array.from({ length: 10 }, (_, i) => 0.001 * (i + 1));
  const clean = flagCutoff({ rows: 1000, values }, values, 1000, 0.5);
  assert.equal(clean.cutoff, null);
  // The same catalog with 50 labels flipped to classes the model finds at 1e-6: all 50 flagged, and one right label
  // more (at 0.001: 1 − 1000·u(1/1000)/51 = 0.912 still ≥ 0.9; at 0.002 it would be 0.884).
  const flipped = flagCutoff({ rows: 1000, values }, [...values, ...Array(50).fill(1e-6)], 1000, 0.9);
  assert.equal(flipped.cutoff, 0.001);
  assert.equal(flipped.flagged, 51);
  assert.ok(Math.abs(flipped.lower - 0.9123583743260985) < 1e-9);
  assert.equal(flagCutoff({ rows: 1000, values }, [...values, ...Array(50).fill(1e-6)], 1000, 0.93).cutoff, 1e-6);
  assert.match(flagCutoff({ rows: 10, values: [] }, [], 10, 0.9).reason!, /no stored label is improbable/);
  assert.equal(wilsonLower(0, 0), 0);
});
