// check's confidence cutoffs without a model: an option given wins, else the target precision in effect (run's
// accept/review decision), else the options' defaults; and how the reports say which one each check used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkAnnotations,
  checkJUnit,
  checkJson,
  confidenceCutoffs,
  DEFAULT_THRESHOLDS,
  type CheckOutcome,
  type CheckResult,
  type ConfidenceCutoff,
} from '../../src/commands/check.js';
import { formatCheckSummary } from '../../src/cli/check-cli.js';

const decision = { target: 0.95, threshold: 0.92761 };

test('confidenceCutoffs: no target: the options, or their defaults, exactly as before calibration', () => {
  const c = confidenceCutoffs({}, null, false);
  assert.equal(c.decision, null);
  assert.deepEqual(c.disagreement, { score: 0.8, source: 'default', option: '--min-confidence', target: null, from: '--min-confidence', criterion: 'score ≥ 0.8 (--min-confidence)' });
  assert.deepEqual(c.lowConfidence, { score: 0.5, source: 'default', option: '--low-confidence', target: null, from: '--low-confidence', criterion: 'score < 0.5 (--low-confidence)' });
  const given = confidenceCutoffs({ minConfidence: 0.9, lowConfidence: 0.3 }, null, true);
  assert.deepEqual([given.disagreement.score, given.disagreement.source], [0.9, 'option']);
  assert.deepEqual([given.lowConfidence.score, given.lowConfidence.source], [0.3, 'option']);
});

test('confidenceCutoffs: a target sets both checks unless its option is given; where it came from is said', () => {
  const bundle = confidenceCutoffs({}, decision, false);
  assert.deepEqual(bundle.disagreement, {
    score: 0.92761,
    source: 'target',
    option: '--min-confidence',
    target: { precision: 0.95, from: 'bundle' },
    from: "the bundle's threshold for target precision 0.95",
    criterion: "score ≥ 0.9276 (the bundle's threshold for target precision 0.95)",
  });
  assert.equal(bundle.lowConfidence.criterion, "review: score < 0.9276 (the bundle's threshold for target precision 0.95)");
  assert.equal(bundle.decision, decision);
  // Named by --target-precision.
  const flag = confidenceCutoffs({ targetPrecision: 0.95 }, decision, false);
  assert.deepEqual(flag.disagreement.target, { precision: 0.95, from: '--target-precision' });
  assert.equal(flag.disagreement.from, "the bundle's threshold for --target-precision 0.95");
  // An option overrides the target for its own check only.
  const one = confidenceCutoffs({ minConfidence: 0.8 }, decision, false);
  assert.deepEqual([one.disagreement.source, one.disagreement.score, one.disagreement.criterion], ['option', 0.8, 'score ≥ 0.8 (--min-confidence)']);
  assert.equal(one.lowConfidence.source, 'target');
  const other = confidenceCutoffs({ lowConfidence: 0.4 }, decision, false);
  assert.deepEqual([other.disagreement.source, other.lowConfidence.source], ['target', 'option']);
  // Path bundles decide on the full path.
  const paths = confidenceCutoffs({}, decision, true);
  assert.equal(paths.disagreement.criterion, "accepted: full path score ≥ 0.9276 (the bundle's threshold for target precision 0.95)");
  assert.equal(paths.lowConfidence.criterion, "review: full path not reached or score < 0.9276 (the bundle's threshold for target precision 0.95)");
});

test('confidenceCutoffs: a bundle with a held-out label tail judges disagreement by flag precision, unless --min-confidence is given', () => {
  const tail = { rows: 100, values: [0.01] };
  const c = confidenceCutoffs({}, decision, false, tail);
  assert.deepEqual(c.disagreement, { score: 0, source: 'flag-precision', option: '--min-confidence', target: null, from: 'flag precision 0.9', criterion: '' });
  // The target still decides low confidence.
  assert.equal(c.lowConfidence.source, 'target');
  assert.equal(confidenceCutoffs({ flagPrecision: 0.95 }, null, false, tail).disagreement.from, '--flag-precision 0.95');
  // --min-confidence overrides it; a path bundle compares paths by score; a bundle without a tail keeps the target.
  assert.deepEqual([confidenceCutoffs({ minConfidence: 0.7 }, decision, false, tail).disagreement.source, confidenceCutoffs({}, decision, true, tail).disagreement.source, confidenceCutoffs({}, decision, false, null).disagreement.source], ['option', 'target', 'target']);
});

/** A result as checkCommand makes it: a failing disagreement judged at the target, a passing low_confidence by option. */
function result(): CheckResult {
  const { disagreement, lowConfidence } = confidenceCutoffs({ lowConfidence: 0.5 }, decision, false);
  const outcome = (name: 'disagreement' | 'low_confidence', status: 'pass' | 'fail', cutoff: ConfidenceCutoff, summary: string): CheckOutcome => ({
    name,
    status,
    skipReason: null,
    count: 1,
    rows: 1,
    checked: 10,
    rate: 0.1,
    threshold: { flag: name === 'disagreement' ? '--max-disagreement-rate' : '--max-low-confidence-rate', on: 'rate', max: name === 'disagreement' ? 0.02 : 0.2 },
    summary,
    message: `${summary}; ${status === 'fail' ? 'over' : 'within'} the limit`,
    findings: [{ line: 7, id: 'P7', detail: name === 'disagreement' ? "stored 'A', predicted 'B' (0.97)" : "predicted 'A' with 0.41" }],
    cutoff,
  });
  return {
    input: 'cat.csv',
    inputPath: '/data/cat.csv',
    model: '/models/shop',
    rows: 10,
    labelled: 10,
    usesImages: false,
    paths: null,
    decision: { ...decision, from: 'bundle' },
    checks: [
      outcome('disagreement', 'fail', disagreement, "1 of 10 labelled rows (10.00%) disagrees with a prediction scored ≥ 0.9276 (the bundle's threshold for target precision 0.95)"),
      outcome('low_confidence', 'pass', lowConfidence, '1 of 10 predicted rows (10.00%) scores below 0.5 (--low-confidence)'),
    ],
    failed: ['disagreement'],
    startedAt: '2026-12-03T00:00:00.000Z',
    elapsedSeconds: 1,
  };
}

test('reports: the table, JSON, JUnit and annotations say which cutoff each check used and where it came from', () => {
  const r = result();
  const table = formatCheckSummary(r, { color: false, maxListed: 5 });
  assert.match(table, /^ {2}FAIL {2}disagreement {4}1 of 10 labelled rows \(10\.00%\) disagrees with a prediction scored ≥ 0\.9276 \(the bundle's threshold for target precision 0\.95\) · max 2\.00%/m);
  assert.match(table, /^ {2}PASS {2}low_confidence {2}1 of 10 predicted rows \(10\.00%\) scores below 0\.5 \(--low-confidence\) · max 20\.00%/m);

  const j = checkJson(r, { labelColumn: 'category', thresholds: DEFAULT_THRESHOLDS, onImageError: 'impute', toolVersion: '0.0.0' });
  // The fixed score in force, or null where the target set the check (its cutoff says so).
  assert.equal(j.settings.minConfidence, null);
  assert.equal(j.settings.lowConfidence, 0.5);
  assert.deepEqual(j.settings.targetPrecision, { target: 0.95, threshold: 0.92761, from: 'bundle' });
  assert.equal(j.checks[0].cutoff!.source, 'target');

  const xml = checkJUnit(r, 5);
  assert.match(xml, /<property name="target_precision" value="0\.95"\/>/);
  assert.match(xml, /<property name="decision_threshold" value="0\.92761"\/>/);
  assert.match(xml, /<failure message="1 of 10 labelled rows \(10\.00%\) disagrees with a prediction scored ≥ 0\.9276 \(the bundle's threshold for target precision 0\.95\); over the limit"/);
  assert.match(xml, /<system-out>1 of 10 predicted rows \(10\.00%\) scores below 0\.5 \(--low-confidence\); within the limit<\/system-out>/);

  const ann = checkAnnotations(r, { file: 'cat.csv', maxAnnotations: 10 });
  assert.deepEqual(ann, [
    "::warning file=cat.csv,line=7,title=disagreement%3A score ≥ 0.9276 (the bundle's threshold for target precision 0.95)::id P7: stored 'A', predicted 'B' (0.97)",
    '::warning file=cat.csv,line=7,title=low_confidence%3A score < 0.5 (--low-confidence)::id P7: predicted \'A\' with 0.41',
    "::error title=categorize check::disagreement failed: 1 of 10 labelled rows (10.00%25) disagrees with a prediction scored ≥ 0.9276 (the bundle's threshold for target precision 0.95); over the limit",
  ]);

  // No check judged by the target: the JUnit properties stay as they were.
  const none = result();
  none.checks = none.checks.map((c) => ({ ...c, cutoff: confidenceCutoffs({ minConfidence: 0.8, lowConfidence: 0.5 }, decision, false)[c.name === 'disagreement' ? 'disagreement' : 'lowConfidence'] }));
  assert.doesNotMatch(checkJUnit(none, 5), /target_precision/);
});
