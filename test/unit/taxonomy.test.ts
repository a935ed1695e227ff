import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Taxonomy, canonicalPath, holdsPaths, parsePath, pathPrefix, withAncestors } from '../../src/head/taxonomy.js';
import { mulberry32 } from '../../src/head/random.js';

test('parsePath: separators, surrounding spaces, doubled and trailing separators, one-level labels', () => {
  assert.deepEqual(parsePath('Clothing > Women > Bras', '>'), ['Clothing', 'Women', 'Bras']);
  assert.deepEqual(parsePath('  Clothing>Women  >Bras ', '>'), ['Clothing', 'Women', 'Bras']);
  assert.deepEqual(parsePath('a/b/c', '/'), ['a', 'b', 'c']);
  assert.deepEqual(parsePath('a >> b >> c', '>>'), ['a', 'b', 'c']);
  assert.deepEqual(parsePath('a | b', '|'), ['a', 'b']);
  // A multi-character separator is one separator, not its characters: ">" inside a level survives ">>".
  assert.deepEqual(parsePath('a>b >> c', '>>'), ['a>b', 'c']);
  assert.deepEqual(parsePath('a > > b >', '>'), ['a', 'b']);
  assert.deepEqual(parsePath('Bags', '>'), ['Bags']);
  assert.deepEqual(parsePath('  ', '>'), []);
  assert.throws(() => parsePath('a', ''), /cannot be empty/);
  assert.equal(canonicalPath(' Home/Kitchen /Cups', '/'), 'Home > Kitchen > Cups');
  assert.equal(holdsPaths(['Bags', 'Shoes'], '>'), false);
  assert.equal(holdsPaths(['Bags', 'Shoes > Boots'], '>'), true);
  assert.equal(pathPrefix('A > B > C', 2), 'A > B');
  assert.equal(pathPrefix('A', 3), 'A');
  assert.deepEqual(withAncestors('A > B > C'), ['A', 'A > B', 'A > B > C']);
});

// Classes with ragged depth and a path that is a prefix of another ("A > B" is a class and an inner node).
const classes = ['A > B', 'A > B > C', 'A > B > D', 'A > E', 'F', 'F > G > H'];
const tax = new Taxonomy(classes);

test('the tree: every prefix is a node, node scores sum the classes at and below', () => {
  assert.equal(tax.size, 8); // A, A>B, A>B>C, A>B>D, A>E, F, F>G, F>G>H
  assert.equal(tax.maxDepth, 3);
  const p = [0.1, 0.2, 0.05, 0.15, 0.3, 0.2];
  const a = tax.answer(p, 0);
  assert.deepEqual(
    a.levels.map((l) => l.node),
    ['A', 'A > B', 'A > B > C'],
  );
  assert.ok(Math.abs(a.levels[0].prob - 0.5) < 1e-12 && Math.abs(a.levels[1].prob - 0.35) < 1e-12);
  assert.equal(a.complete, true);
  assert.deepEqual(a.full, { path: 'F', prob: 0.3 });
});

test('backoff exactly at the threshold: a node whose probability equals min-path-score is answered, just above it is not', () => {
  // A 0.75 = A>B (own 0.25 + C 0.25) 0.5 + A>E 0.25; F 0.25.
  const p = [0.25, 0.25, 0, 0.25, 0.25, 0];
  const at = tax.answer(p, 0.5);
  assert.equal(at.node, 'A > B');
  assert.equal(at.score, 0.5);
  assert.equal(at.depth, 2);
  // Own class 0.25 ties child C 0.25: the own class is the option taken, and it is below 0.5, so not complete.
  assert.equal(at.complete, false);
  const above = tax.answer(p, 0.5000001);
  assert.equal(above.node, 'A');
  assert.equal(above.depth, 1);
  assert.equal(above.complete, false);
  const none = tax.answer(p, 0.76);
  assert.equal(none.node, null);
  assert.equal(none.depth, 0);
  assert.equal(none.score, 0.75);
  assert.deepEqual(none.levels, []);
});

test('an inner node that is a class is a complete answer when its own class is the likeliest sure option', () => {
  const p = [0.6, 0.1, 0.1, 0.1, 0.1, 0];
  const a = tax.answer(p, 0.5);
  assert.equal(a.node, 'A > B');
  assert.equal(a.complete, true);
  assert.equal(a.full.path, 'A > B');
});

test('a rare leaf spread thin still gets its sure parent', () => {
  // No class above 0.3 but A holds 0.9.
  const p = [0.2, 0.25, 0.2, 0.25, 0.05, 0.05];
  const a = tax.answer(p, 0.5);
  assert.equal(a.node, 'A > B');
  assert.ok(Math.abs(a.score - 0.65) < 1e-12);
  assert.equal(a.complete, false);
});

test('scores never rise going down a path, on random probability rows over a random tree', () => {
  const rand = mulberry32(5);
  const paths = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const depth = 1 + Math.floor(rand() * 4);
    paths.add(Array.from({ length: depth }, () => String.fromCharCode(97 + Math.floor(rand() * 4))).join(' > '));
  }
  const cls = [...paths].sort();
  const t = new Taxonomy(cls);
  for (let r = 0; r < 200; r++) {
    const raw = cls.map(() => rand() ** 4);
    const s = raw.reduce((x, y) => x + y, 0);
    const p = raw.map((v) => v / s);
    const minScore = [0, 0.2, 0.5, 0.9][r % 4];
    const a = t.answer(p, minScore);
    for (let d = 1; d < a.levels.length; d++) assert.ok(a.levels[d].prob <= a.levels[d - 1].prob + 1e-12);
    for (const l of a.levels) assert.ok(l.prob >= minScore);
    assert.equal(a.depth, a.levels.length);
    if (minScore === 0) assert.equal(a.complete, true);
    if (a.complete) assert.ok(cls.includes(a.node!));
    // Every level is the prefix of the next.
    for (let d = 1; d < a.levels.length; d++) assert.ok(a.levels[d].node.startsWith(a.levels[d - 1].node + ' > '));
  }
});

test('withTopLevel: the top level follows the top-level head, the classes below keep the flat head\'s ratios', () => {
  // classes: A > B, A > B > C, A > B > D, A > E, F, F > G > H — top levels A and F.
  const p = [0.1, 0.15, 0.1, 0.1, 0.3, 0.25];
  const out = tax.withTopLevel(p, [0.2, 0.8], ['F', 'A']);
  const scores = tax.nodeScores(out);
  assert.ok(Math.abs(out.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(Math.abs(out[0] + out[1] + out[2] + out[3] - 0.8) < 1e-12, 'A gets the top-level head\'s 0.8');
  assert.ok(Math.abs(out[4] + out[5] - 0.2) < 1e-12);
  assert.ok(Math.abs(out[1] / out[0] - 1.5) < 1e-12, 'ratios inside A kept');
  assert.ok(Math.abs(out[4] / out[5] - 1.2) < 1e-12, 'ratios inside F kept');
  assert.equal(tax.answer(out, 0.5).levels[0].node, 'A');
  assert.equal(tax.answer(p, 0.5).levels[0].node, 'F', 'the flat sums alone would have chosen F');
  assert.ok(scores.length === tax.size);
  // A top level the top-level head lacks gets nothing; one whose flat mass underflowed shares its probability equally.
  assert.deepEqual(Array.from(tax.withTopLevel(p, [1], ['A'])).slice(4), [0, 0]);
  const under = tax.withTopLevel([0, 0, 0, 0, 0.5, 0.5], [0.4, 0.6], ['A', 'F']);
  assert.deepEqual(Array.from(under).slice(0, 4), [0.1, 0.1, 0.1, 0.1]);
});
