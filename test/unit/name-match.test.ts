// Class names in the text (name-match.ts): which classes a text names, which names count, the fitted weight, and
// the bias run adds before the temperature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyNameMatch, ClassNames, countedNames, fitNameMatch, nameMatchBias, nameTokens, NAME_MATCH_MAX_BETA } from '../../src/head/name-match.js';
import { fuseHeads } from '../../src/head/fusion.js';
import { mulberry32 } from '../../src/head/random.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBundle, type BundleManifest } from '../../src/models/bundle.js';
import { ConfigError } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';
import { trainModel, type HeadSettings } from '../../src/head/target.js';
import { shippedPredictions } from '../../src/head/linear-head.js';
import type { CollectedRow } from '../../src/pipeline/collect.js';

const colours = ['Blue', 'Navy Blue', 'Turquoise Blue', 'Off White', 'White', 'Grey Melange', 'Grey'];

test('nameTokens: NFKC, lower case, apostrophes dropped, split at what is not a letter or digit', () => {
  assert.deepEqual(nameTokens("Palm Tree Girl's  Ｂｌｕｅ T-Shirt, Größe 2"), ['palm', 'tree', 'girls', 'blue', 't', 'shirt', 'größe', '2']);
  assert.deepEqual(nameTokens('  ...  '), []);
});

test('ClassNames: the leftmost-longest name wins, so a longer name does not also name its last word', () => {
  const names = new ClassNames(colours);
  const named = (t: string) => names.mentioned(t).map((k) => colours[k]);
  assert.deepEqual(named('Catwalk Women Casual Turquoise Blue Flats'), ['Turquoise Blue']);
  assert.deepEqual(named('Locomotive Men Printed Navy Blue TShirt'), ['Navy Blue']);
  assert.deepEqual(named('Spykar Men Off White Polo Tshirt with blue stripes'), ['Blue', 'Off White']);
  assert.deepEqual(named('Mark Taylor Men Light Brown & White Striped Shirt'), ['White']);
  assert.deepEqual(named('grey melange hoodie'), ['Grey Melange']);
  // Whole words only: no class inside "Bluetooth" or "Greyhound".
  assert.deepEqual(named('Bluetooth speaker, Greyhound print'), []);
});

test('ClassNames: names run together, split, or in the plural read alike', () => {
  const classes = ['Tshirts', 'Shirts', 'Flip Flops', 'Casual Shoes', 'Glass'];
  const names = new ClassNames(classes);
  const named = (t: string) => names.mentioned(t).map((k) => classes[k]);
  assert.deepEqual(named('Puma Men Black T-Shirt'), ['Tshirts']);
  assert.deepEqual(named('Puma Men Black T Shirts'), ['Tshirts']);
  assert.deepEqual(named('Puma Men Black Tshirt'), ['Tshirts']);
  assert.deepEqual(named('Arrow Men Check Shirt'), ['Shirts']);
  assert.deepEqual(named('Crocs Unisex Flip-Flops'), ['Flip Flops']);
  assert.deepEqual(named('Red Tape casual shoe'), ['Casual Shoes']);
  // A double s is not a plural.
  assert.deepEqual(named('magnifying glass'), ['Glass']);
});

test('ClassNames: only the counted classes are named; bias is beta on them, null when none is named', () => {
  const names = new ClassNames(colours, ['Turquoise Blue', 'White']);
  assert.deepEqual(names.mentioned('Navy Blue and White'), [4]);
  // "Turquoise Blue" is still read as one name, so "Blue" alone is never taken from it.
  assert.deepEqual(names.mentioned('turquoise blue'), [2]);
  assert.equal(names.bias('Navy Blue shirt', 1.5), null);
  assert.deepEqual(Array.from(names.bias('white shirt', 1.5)!), [0, 0, 0, 0, 1.5, 0, 0]);
  assert.equal(names.bias('white shirt', 0), null);
  assert.equal(nameMatchBias(undefined, colours, 'white shirt'), null);
  assert.deepEqual(Array.from(nameMatchBias({ beta: 2, classes: ['White'] }, colours, 'WHITE')!), [0, 0, 0, 0, 2, 0, 0]);
});

test('countedNames: a name counts where at least half the training rows that name it have its class', () => {
  const classes = ['Men', 'Women', 'Boys', 'Girls'];
  const rows: [string, number][] = [
    ['Kids Boys Shirt', 0],
    ['Kids Boys Shorts', 0],
    ['Kids Boys Tshirt', 2],
    ['Kids Girls Dress', 1],
    ['Kids Girls Top', 3],
    ['Men Shirt', 0],
    ['Women Top', 1],
  ];
  // Boys: 1 of 3 rows naming it are Boys; Girls: 1 of 2 (half counts); Men and Women always right.
  assert.deepEqual(countedNames(classes, rows.map((r) => r[0]), rows.map((r) => r[1])), ['Men', 'Women', 'Girls']);
  // A class no row names does not count.
  assert.deepEqual(countedNames(['Men', 'Unisex'], ['Men Shirt'], [0]), ['Men']);
});

/** Summed log-loss of softmax(log p + beta on the named classes). */
function loss(probs: Float64Array, mentioned: number[][], y: number[], K: number, beta: number): number {
  let s = 0;
  const out = new Float64Array(K);
  mentioned.forEach((m, i) => {
    applyNameMatch(probs.subarray(i * K, (i + 1) * K), m, beta, out);
    s -= Math.log(out[y[i]!]!);
  });
  return s;
}

/** Held-out rows where the named class is the label with probability `right`, the model's own probabilities flat-ish. */
function heldOut(n: number, K: number, right: number, seed: number) {
  const rand = mulberry32(seed);
  const probs = new Float64Array(n * K);
  const mentioned: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = Math.floor(rand() * K);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += probs[i * K + k] = 0.2 + rand() + (k === label ? 1 : 0);
    for (let k = 0; k < K; k++) probs[i * K + k] /= sum;
    y.push(label);
    const named = rand() < right ? label : (label + 1) % K;
    mentioned.push(rand() < 0.7 ? [named] : []);
  }
  return { probs, mentioned, y };
}

test('fitNameMatch: the least summed log-loss over beta, as a fine grid finds it', () => {
  const K = 4;
  const { probs, mentioned, y } = heldOut(400, K, 0.8, 7);
  const fit = fitNameMatch(probs, mentioned, y, K);
  let best = 0;
  for (let b = 0; b <= NAME_MATCH_MAX_BETA; b += 0.001) if (loss(probs, mentioned, y, K, b) < loss(probs, mentioned, y, K, best)) best = b;
  assert.ok(fit.beta > 0.5 && fit.beta < NAME_MATCH_MAX_BETA, `beta ${fit.beta}`);
  assert.ok(Math.abs(fit.beta - best) < 2e-3, `fitted ${fit.beta}, grid ${best}`);
  assert.ok(Math.abs(fit.lossWith - loss(probs, mentioned, y, K, fit.beta)) < 1e-9);
  assert.ok(Math.abs(fit.lossWithout - loss(probs, mentioned, y, K, 0)) < 1e-9);
  assert.ok(fit.lossWith < fit.lossWithout);
});

test('fitNameMatch: 0 where names point away from the labels, the bound where they are never wrong', () => {
  const K = 4;
  const wrong = heldOut(300, K, 0.1, 3);
  const none = fitNameMatch(wrong.probs, wrong.mentioned, wrong.y, K);
  assert.equal(none.beta, 0);
  assert.equal(none.lossWith, none.lossWithout);
  const right = heldOut(300, K, 1, 5);
  assert.equal(fitNameMatch(right.probs, right.mentioned, right.y, K).beta, NAME_MATCH_MAX_BETA);
  // No row names a class: nothing to fit.
  const silent = fitNameMatch(right.probs, right.mentioned.map(() => []), right.y, K);
  assert.equal(silent.beta, 0);
});

test('fuseHeads with a bias: softmax((Σ w log p + b) / T), as the step scores held-out rows at T = 1', () => {
  const classes = ['a', 'b', 'c'];
  const p = [0.5, 0.3, 0.2];
  const bias = Float64Array.from([0, 1.2, 0]);
  const T = 0.8;
  const got = fuseHeads([{ classes, weight: 1, probs: p }], classes, T, bias)!;
  const z = p.map((v, k) => (Math.log(v) + bias[k]!) / T);
  const s = z.reduce((a, v) => a + Math.exp(v), 0);
  z.forEach((v, k) => assert.ok(Math.abs(got[k]! - Math.exp(v) / s) < 1e-6));
  const atOne = fuseHeads([{ classes, weight: 1, probs: p }], classes, 1, bias)!;
  const step = applyNameMatch(p, [1], 1.2, new Float64Array(3));
  step.forEach((v, k) => assert.ok(Math.abs(atOne[k]! - v) < 1e-6));
});

/** The demo bundle copied, its manifest edited. */
function demoWith(edit: (m: BundleManifest) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-name-match-'));
  const src = path.join(repoRoot, 'models', 'demo');
  fs.cpSync(src, dir, { recursive: true });
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
  edit(m);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
  return dir;
}

test('loadBundle: a name match loads; a malformed one is a one-line config error', () => {
  const ok = loadBundle(demoWith((m) => ((m.formatVersion = 9), (m.calibration!.nameMatch = { beta: 1.5, classes: [m.classes[0]!] }))));
  assert.deepEqual(ok.manifest.calibration!.nameMatch, { beta: 1.5, classes: [ok.manifest.classes[0]] });
  for (const nameMatch of [{ beta: -1, classes: [] }, { beta: NAME_MATCH_MAX_BETA + 1, classes: [] }, { beta: 1, classes: 'Blue' }, { beta: 1, classes: [3] }]) {
    const dir = demoWith((m) => ((m.formatVersion = 9), (m.calibration!.nameMatch = nameMatch as never)));
    assert.throws(() => loadBundle(dir), (e: unknown) => e instanceof ConfigError && /calibration\.nameMatch must have a beta in \[0, 5\]/.test(e.message) && !e.message.includes('\n'), JSON.stringify(nameMatch));
  }
});

/**
 * Twenty values seen `perValue` times each, a title naming its value (among words all rows share) with probability
 * `named`, and one frequent value no title names.
 */
function namedValues(seed: number, perValue: number, named: number): { rows: CollectedRow[]; labels: string[] } {
  const rnd = mulberry32(seed);
  const rows: CollectedRow[] = [];
  const labels: string[] = [];
  const shared = ['cotton', 'shirt', 'casual', 'slim', 'fit', 'printed', 'solid', 'men', 'women'];
  const words = () => Array.from({ length: 3 }, () => shared[Math.floor(rnd() * shared.length)]).join(' ');
  const add = (label: string, text: string) => {
    const i = rows.length;
    rows.push({ row: { index: i, id: `r${i}`, title: text, description: '', image: '', extra: {}, line: i + 2 }, vectors: {}, ok: true, text, warnings: [], error: null });
    labels.push(label);
  };
  for (let k = 0; k < 20; k++) for (let j = 0; j < perValue; j++) add(`Shade${k}`, rnd() < named ? `${words()} shade${k} ${words()}` : `${words()} ${words()}`);
  for (let j = 0; j < 10 * perValue; j++) add('Plain', `${words()} ${words()}`);
  return { rows, labels };
}

const tfidfSettings = (nameMatch: boolean): HeadSettings => ({
  features: ['tfidf'],
  dims: {},
  tfidf: {},
  charTfidf: null,
  lr: { C: 1, maxIter: 500, tol: 1e-6 },
  fusion: 'late',
  fusionShare: 0.25,
  seed: 1,
  cGrid: [0.1, 1, 10],
  selectionFolds: 0,
  nameMatch,
});

test('trainModel: names the text gives pooled over the values, fitted and kept on held-out rows; shipped predictions use them', async () => {
  const { rows, labels } = namedValues(3, 6, 0.4);
  const model = await trainModel(rows, labels, tfidfSettings(true));
  const names = model.calibration!.nameMatch!;
  assert.ok(names.test.kept && names.beta > 0.5 && names.beta === names.fitted, JSON.stringify(names.test) + ` beta ${names.beta}`);
  assert.deepEqual([...names.classes].sort(), Array.from({ length: 20 }, (_, k) => `Shade${k}`).sort(), 'every named value counts; Plain is never named');
  const without = await trainModel(rows, labels, tfidfSettings(false));
  assert.equal(without.calibration!.nameMatch, undefined);
  // Each value's few training rows name it now and then, so its own word weighs little; new rows that name it are
  // surer of it with the name match, which learned from every value's named rows.
  const fresh = namedValues(99, 2, 1);
  const rare = fresh.labels.flatMap((l, i) => (l === 'Plain' ? [] : [i]));
  const sure = (m: typeof model) => {
    const { fused } = shippedPredictions(m, fresh.rows, m.classes);
    const K = m.classes.length;
    return rare.reduce((s, i) => s + Math.log(fused[i * K + m.classes.indexOf(fresh.labels[i]!)]!), 0) / rare.length;
  };
  assert.ok(sure(model) > sure(without) + 0.1, `mean log-probability of the right value: ${sure(model)} against ${sure(without)}`);
});
