// The head-fit ETA: durations learned per (head, C) from the procedure that ran them first, the work left at the
// measured rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FitEta } from '../../src/commands/fit-eta.js';
import type { PlannedFit } from '../../src/head/selection.js';

const grid = [0.1, 10, 1000];
const procedure = (head: string): PlannedFit[] => [...grid.map((C) => ({ head, C, final: false })), { head, C: null, final: true }];

test('before any fit finishes there is no estimate', () => {
  const eta = new FitEta();
  eta.plan(procedure('text'));
  assert.equal(eta.secondsLeft(5), null);
  assert.equal(eta.total, 4);
  assert.equal(eta.done, 0);
});

test('a second procedure is estimated from the first one\'s fits, C by C, not from the mean fit', () => {
  const eta = new FitEta();
  eta.plan(procedure('text')); // validation
  eta.plan(procedure('text')); // final procedure
  // The validation's fits: large C is slow.
  const seconds: Record<number, number> = { 0.1: 1, 10: 4, 1000: 40 };
  for (const C of grid) eta.finished({ head: 'text', C, final: false, seconds: seconds[C]! });
  eta.finished({ head: 'text', C: 10, final: true, seconds: 5 });
  assert.equal(eta.done, 4);
  assert.equal(eta.total, 8);
  // One worker's worth so far (50 fit-seconds in 50 s): the left work is 1 + 4 + 40 + 5 = 50 s.
  assert.equal(eta.secondsLeft(50), 50);
  // Two workers' worth (50 fit-seconds in 25 s): half that.
  assert.equal(eta.secondsLeft(25), 25);
  // The pace-based guess would say 50 × 4/4 = 50 s for the first case too, but after the slow fit is done...
  eta.finished({ head: 'text', C: 0.1, final: false, seconds: 1 });
  eta.finished({ head: 'text', C: 10, final: false, seconds: 4 });
  // ...only the C 1000 fit (40 s) and the final one (5 s) are left: 45 s at 55 fit-seconds per 55 s.
  assert.equal(eta.secondsLeft(55), 45);
});

test('a fit never seen is estimated from its head, then from any fit; the plan drains as fits finish', () => {
  const eta = new FitEta();
  eta.plan([...procedure('text'), ...procedure('image')]);
  eta.finished({ head: 'image', C: 0.1, final: false, seconds: 6 });
  // text fits: no text fit yet, so any non-final fit's mean (6 s) for 3 of them, and any fit's for the final one.
  // image: C 10 and 1000 at the image head's mean (6 s), its final fit from the non-final mean (6 s).
  assert.equal(eta.secondsLeft(6), 7 * 6);
  for (const C of grid) eta.finished({ head: 'text', C, final: false, seconds: 2 });
  eta.finished({ head: 'text', C: 1000, final: true, seconds: 3 });
  eta.finished({ head: 'image', C: 10, final: false, seconds: 6 });
  eta.finished({ head: 'image', C: 1000, final: false, seconds: 6 });
  eta.finished({ head: 'image', C: 0.1, final: true, seconds: 2 });
  assert.equal(eta.done, eta.total);
  assert.equal(eta.secondsLeft(100), 0);
});

test('a support head’s fits (C NaN) drain the plan they were planned in, and their durations are learned', () => {
  const eta = new FitEta();
  eta.plan([{ head: 'joint', C: NaN, final: false }, { head: 'joint', C: null, final: true }]);
  eta.plan([{ head: 'joint', C: NaN, final: false }, { head: 'joint', C: null, final: true }]);
  eta.finished({ head: 'joint', C: NaN, final: false, seconds: 30 });
  assert.equal(eta.total, 4, 'the held-out fit was the planned one, not an extra');
  // Left: one held-out fit (30 s, learned) and two final fits (from the non-final mean: 30 s each).
  assert.equal(eta.secondsLeft(30), 90);
  eta.finished({ head: 'joint', C: NaN, final: false, seconds: 30 });
  eta.finished({ head: 'joint', C: NaN, final: true, seconds: 40 });
  eta.finished({ head: 'joint', C: NaN, final: true, seconds: 40 });
  assert.equal(eta.done, eta.total);
});

test('a planned fit a stopped path skips leaves the plan without counting as done', () => {
  const eta = new FitEta();
  eta.plan(procedure('text'));
  eta.finished({ head: 'text', C: 0.1, final: false, seconds: 2 });
  eta.skipped({ head: 'text', C: 10, final: false });
  eta.skipped({ head: 'text', C: 1000, final: false });
  assert.equal(eta.done, 1);
  assert.equal(eta.total, 2, 'the fit done and the final fit');
  assert.equal(eta.secondsLeft(2), 2);
});
