// check's path logic without a model: where a stored path and an answered node part (the level a disagreement is
// reported at, and the score it is judged by), its wording, and the --max-disagreement-rate-level parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { describePathDisagreement, pathDisagreement } from '../../src/commands/check.js';
import { levelShares } from '../../src/cli/options.js';

const sure = [0.99, 0.95, 0.9];

test('pathDisagreement: agreement, a less specific answer and a more specific one are not disagreements', () => {
  assert.equal(pathDisagreement('A > B > C', 'A > B > C', sure, 0.8), null);
  // The answer stopped above the stored leaf (path_backoff): less specific, not wrong.
  assert.equal(pathDisagreement('A > B > C', 'A > B', [0.99, 0.95], 0.8), null);
  assert.equal(pathDisagreement('A > B > C', 'A', [0.99], 0.8), null);
  // A product filed at an inner node, answered below it.
  assert.equal(pathDisagreement('A > B', 'A > B > C', sure, 0.8), null);
  // Nothing answered (path_unanswered): nothing to disagree with.
  assert.equal(pathDisagreement('A > B > C', null, [], 0.8), null);
});

test('pathDisagreement: the level is the highest one where the paths differ, the score the answer\'s at that level', () => {
  // A sibling leaf: the mildest finding.
  assert.deepEqual(pathDisagreement('A > B > C', 'A > B > D', sure, 0.8), { level: 3, storedDepth: 3, score: 0.9 });
  // A different family in the same department; the answer may stop above the leaf.
  assert.deepEqual(pathDisagreement('A > B > C', 'A > D', [0.97, 0.93], 0.8), { level: 2, storedDepth: 3, score: 0.93 });
  // A wrong department is reported at level 1 even though the levels below differ too.
  assert.deepEqual(pathDisagreement('A > B > C', 'X > B > C', sure, 0.8), { level: 1, storedDepth: 3, score: 0.99 });
  // Shallower stored path, deeper answer: only the shared level is compared.
  assert.deepEqual(pathDisagreement('A', 'X > Y', [0.9, 0.85], 0.8), { level: 1, storedDepth: 1, score: 0.9 });
  assert.deepEqual(pathDisagreement('A > B', 'A > C > D', [0.99, 0.88, 0.5], 0.8), { level: 2, storedDepth: 2, score: 0.88 });
});

test('pathDisagreement: judged by the probability at the differing level, not at the answer\'s leaf', () => {
  // Sure of the wrong department, unsure of the leaf under it: flagged (the leaf's 0.55 would have hidden it).
  assert.deepEqual(pathDisagreement('A > B > C', 'X > Y > Z', [0.93, 0.7, 0.55], 0.8), { level: 1, storedDepth: 3, score: 0.93 });
  // Sure of the department, unsure where below it the paths part: not confident enough to be a finding.
  assert.equal(pathDisagreement('A > B > C', 'A > D > E', [0.99, 0.7, 0.6], 0.8), null);
  // The limit is inclusive, like --min-confidence for flat classes.
  assert.deepEqual(pathDisagreement('A > B > C', 'A > B > D', [0.99, 0.9, 0.8], 0.8), { level: 3, storedDepth: 3, score: 0.8 });
  assert.equal(pathDisagreement('A > B > C', 'A > B > D', [0.99, 0.9, 0.79], 0.8), null);
  // Levels sharing a name under different parents are still compared by position.
  assert.equal(pathDisagreement('A > Misc', 'B > Misc', [0.5, 0.5], 0.8), null);
  assert.deepEqual(pathDisagreement('A > Misc', 'B > Misc', [0.85, 0.85], 0.8), { level: 1, storedDepth: 2, score: 0.85 });
});

test('describePathDisagreement: the level and the score in words', () => {
  const d = pathDisagreement('A > B > C', 'A > D', [0.99, 0.934], 0.8)!;
  assert.equal(describePathDisagreement('A > B > C', 'A > D', d), "stored 'A > B > C', predicted 'A > D' (differs at level 2 of 3, 0.93 sure)");
});

test('levelShares: comma lists and repeats merge, a repeated level keeps its last rate, sorted by level', () => {
  assert.deepEqual(levelShares('1:0,2:0.01'), [{ level: 1, share: 0 }, { level: 2, share: 0.01 }]);
  assert.deepEqual(levelShares(' 3 : 0.05 '), [{ level: 3, share: 0.05 }]);
  const repeated = levelShares('1:0.5', levelShares('3:0.1,1:0'));
  assert.deepEqual(repeated, [{ level: 1, share: 0.5 }, { level: 3, share: 0.1 }]);
  assert.deepEqual(levelShares('2:1'), [{ level: 2, share: 1 }]);
  for (const bad of ['', '1', '1=0', '0:0.1', '-1:0', '1.5:0', '1:1.5', '1:-0.1', '1:x', '1:0,', 'a:0.1', '1:0:2']) {
    assert.throws(() => levelShares(bad), (e: unknown) => e instanceof InvalidArgumentError && /expected level:share pairs such as 1:0\.97,3:0\.05/.test((e as Error).message), bad);
  }
});

test('pathDisagreement with no score limit (the row was accepted at a target): any level where the paths part counts', () => {
  // An accepted row is sure of its full path; the score at the differing level is reported, never judged.
  assert.deepEqual(pathDisagreement('A > B > C', 'A > B > D', [0.99, 0.9, 0.3], null), { level: 3, storedDepth: 3, score: 0.3 });
  assert.deepEqual(pathDisagreement('A > B > C', 'X > Y > Z', [0.6, 0.5, 0.4], null), { level: 1, storedDepth: 3, score: 0.6 });
  // Agreement, a less or more specific answer, and no answer stay no finding.
  assert.equal(pathDisagreement('A > B > C', 'A > B > C', sure, null), null);
  assert.equal(pathDisagreement('A > B', 'A > B > C', sure, null), null);
  assert.equal(pathDisagreement('A > B > C', null, [], null), null);
});
