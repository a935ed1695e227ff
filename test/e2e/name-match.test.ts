// End-to-end: an attribute whose rare values the titles name (name-match.ts), through train (the step fitted on
// held-out rows, kept by its test, stored in the manifest at format 9, said in the log) and run (new rows that name
// a value are surer of it than with --no-name-match).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { runCli, readJsonl } from '../helpers/cli.js';
import { mulberry32 } from '../../src/head/random.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-name-match-'));
const train = path.join(tmp, 'train.csv');
const fresh = path.join(tmp, 'fresh.csv');
const named = path.join(tmp, 'named');
const plain = path.join(tmp, 'plain');

/**
 * Two categories told apart by their words; a colour of twenty rare shades (`perShade` rows each), a title naming
 * its shade with probability `naming`, and a frequent `Plain` no title names.
 */
function catalog(seed: number, perShade: number, naming: number): string {
  const rnd = mulberry32(seed);
  const pick = (w: string[]) => w[Math.floor(rnd() * w.length)]!;
  const shared = ['cotton', 'casual', 'slim', 'printed', 'solid', 'men', 'women'];
  const rows: string[][] = [];
  const add = (colour: string, name: string) => {
    const category = rnd() < 0.5 ? 'Shirts' : 'Shoes';
    const kind = category === 'Shirts' ? pick(['shirt', 'tee', 'polo']) : pick(['sneaker', 'loafer', 'boot']);
    const path = category === 'Shirts' ? `Apparel > ${kind === 'polo' ? 'Polos' : 'Shirts'}` : `Footwear > ${kind === 'boot' ? 'Boots' : 'Shoes'}`;
    rows.push([`p${rows.length}`, `${pick(shared)} ${kind} ${name} ${pick(shared)} ${pick(shared)}`.replace(/ +/g, ' '), '', '', category, path, colour]);
  };
  for (let k = 0; k < 20; k++) for (let j = 0; j < perShade; j++) add(`Shade${k}`, rnd() < naming ? `shade${k}` : '');
  for (let j = 0; j < 10 * perShade; j++) add('Plain', '');
  return stringify([['id', 'title', 'description', 'image', 'category', 'category_path', 'colour'], ...rows]);
}

let trainErr = '';
before(async () => {
  fs.writeFileSync(train, catalog(3, 6, 0.4));
  fs.writeFileSync(fresh, catalog(99, 2, 1));
  const common = ['train', train, '--label-column', 'category', '--attribute', 'colour', '--features', 'tfidf', '--validation', '0'];
  const r = await runCli([...common, '-o', named, '--json-summary', path.join(tmp, 'named.json')]);
  assert.equal(r.code, 0, r.stderr);
  trainErr = r.stderr;
  const p = await runCli([...common, '--no-name-match', '-q', '-o', plain]);
  assert.equal(p.code, 0, p.stderr);
});

const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

test('train: the name match fitted on held-out rows, kept by its test, stored (format 9) and said', () => {
  const m = manifest(named);
  assert.equal(m.formatVersion, 9);
  const c = m.attributes[0].calibration;
  assert.ok(c.nameMatch.beta > 0.5, JSON.stringify(c.nameMatch));
  assert.deepEqual([...c.nameMatch.classes].sort(), Array.from({ length: 20 }, (_, k) => `Shade${k}`).sort());
  assert.ok(c.tests.nameMatch.kept && c.tests.nameMatch.statistic >= c.tests.nameMatch.critical && c.tests.nameMatch.fitted === c.nameMatch.beta);
  assert.match(trainErr, /attribute colour: name match: classes the text names raised by β \d\.\d\d \(χ² [\d.]+ ≥ 3\.84; 20 of 21 classes' names count\)/);
  // The category's class names never appear in its titles: nothing to fit, nothing stored.
  assert.equal(m.calibration.nameMatch, undefined);
  assert.equal(m.calibration.tests.nameMatch.kept, false);
  const s = JSON.parse(fs.readFileSync(path.join(tmp, 'named.json'), 'utf8'));
  assert.deepEqual(s.attributes[0].calibration.nameMatch, c.nameMatch);
  const pm = manifest(plain);
  assert.ok(pm.formatVersion < 9 && pm.attributes[0].calibration.nameMatch === undefined && pm.attributes[0].calibration.tests.nameMatch === undefined);
});

test('run: rows that name their shade are surer of it with the name match than without', async () => {
  const out = (dir: string) => path.join(tmp, `${path.basename(dir)}.jsonl`);
  for (const dir of [named, plain]) {
    const r = await runCli(['run', fresh, '--model', dir, '-o', out(dir), '-q']);
    assert.equal(r.code, 0, r.stderr);
  }
  const truth = new Map(fs.readFileSync(fresh, 'utf8').trim().split('\n').slice(1).map((l) => [l.split(',')[0]!, l.split(',')[6]!]));
  const sure = (dir: string) => {
    const recs = readJsonl(out(dir)) as { id: string; attributes: { colour: { value: string; top: { value: string; prob: number }[] } } }[];
    const rare = recs.filter((r) => truth.get(r.id) !== 'Plain');
    const logp = rare.reduce((s, r) => s + Math.log(r.attributes.colour.top.find((t) => t.value === truth.get(r.id))?.prob ?? 1e-6), 0) / rare.length;
    const right = rare.filter((r) => r.attributes.colour.value === truth.get(r.id)).length / rare.length;
    return { logp, right };
  };
  const a = sure(named);
  const b = sure(plain);
  assert.ok(a.logp > b.logp + 0.1 && a.right >= b.right, `with ${JSON.stringify(a)}, without ${JSON.stringify(b)}`);
});

test('train: a path category with an attribute — the attribute, flat, gets its name match; the paths none', async () => {
  const dir = path.join(tmp, 'paths');
  const r = await runCli(['train', train, '--label-column', 'category_path', '--attribute', 'colour', '--features', 'tfidf', '--validation', '0', '-q', '-o', dir]);
  assert.equal(r.code, 0, r.stderr);
  const m = manifest(dir);
  assert.ok(m.paths, 'a path bundle');
  assert.equal(m.formatVersion, 9);
  assert.ok(m.attributes[0].calibration.nameMatch.beta > 0.5 && m.attributes[0].calibration.tests.nameMatch.kept);
  assert.equal(m.calibration.nameMatch, undefined);
  assert.equal(m.calibration.tests.nameMatch, undefined, 'not tried on paths');
});
