// Attributes (train --attribute): name checks, the rows each attribute is fitted on, the attribute:x option syntax,
// the bundle's attributes as loaded and refused, and the CSV / JSONL shapes of records that carry them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { attributeRows, checkAttributeNames } from '../../src/commands/train.js';
import { targetShares } from '../../src/cli/options.js';
import { loadBundle, type BundleManifest } from '../../src/models/bundle.js';
import { selectAttributes } from '../../src/pipeline/bundle-session.js';
import { PredictionWriter, csvHeader, keptFieldNames, type PredictionRecord } from '../../src/io/prediction-writer.js';
import { ConfigError, UsageError } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';

test('checkAttributeNames: other columns than the label, each once, not named like an output field', () => {
  assert.doesNotThrow(() => checkAttributeNames(['gender', 'colour', 'usage', 'season'], 'category'));
  assert.doesNotThrow(() => checkAttributeNames(['colour'], 'category_path'));
  // The flat category beside a path bundle would be written over the answer's own `category` column.
  assert.throws(() => checkAttributeNames(['category'], 'category_path'), /an output field has that name/);
});

test('checkAttributeNames: refusals', () => {
  assert.throws(() => checkAttributeNames(['category'], 'category'), (e: unknown) => e instanceof UsageError && /is the --label-column/.test(e.message));
  assert.throws(() => checkAttributeNames(['colour', 'colour'], 'category'), /named twice/);
  assert.throws(() => checkAttributeNames([''], 'category'), /empty one/);
  const inputs = ['title', 'description', 'image', 'image_path'];
  for (const name of ['title', 'Description', 'image_path']) assert.throws(() => checkAttributeNames([name], 'category', inputs), /is a column the model reads/, name);
  assert.doesNotThrow(() => checkAttributeNames(['brand'], 'category', inputs));
  for (const name of ['score', 'tags', 'decision', 'attributes', 'full_path', 'status']) assert.throws(() => checkAttributeNames([name], 'category'), /an output field has that name/, name);
});

test('attributeRows: empty values and values rarer than the minimum left out, counted and reported', () => {
  const values = ['Men', '', 'Women', 'Men', 'Pink', 'Women', '', 'Teal', 'Men'];
  const a = attributeRows(values, 2);
  assert.deepEqual(a.idx, [0, 2, 3, 5, 8]);
  assert.deepEqual(a.labels, ['Men', 'Women', 'Men', 'Women', 'Men']);
  assert.equal(a.withoutValue, 2);
  assert.deepEqual(a.dropped, [{ value: 'Pink', count: 1 }, { value: 'Teal', count: 1 }]);
  // A minimum of 1 keeps every value seen; 4 drops all but Men (3 < 4 too).
  assert.equal(attributeRows(values, 1).idx.length, 7);
  assert.deepEqual(attributeRows(values, 4).dropped.map((d) => d.value), ['Men', 'Women', 'Pink', 'Teal']);
});

test('targetShares: the category as x, attributes as name:x, comma-separated or repeated, last wins', () => {
  const parse1 = targetShares('a minimum macro-F1');
  let v = parse1('0.9,colour:0.6');
  v = parse1('usage : 0.5', v);
  v = parse1('colour:0.7', v);
  assert.deepEqual(v, { category: 0.9, attributes: [{ attribute: 'usage', share: 0.5 }, { attribute: 'colour', share: 0.7 }] });
  assert.deepEqual(parse1('Base Colour:0.4'), { category: undefined, attributes: [{ attribute: 'Base Colour', share: 0.4 }] });
  assert.throws(() => parse1('colour:1.5'), /expected a minimum macro-F1 from 0 to 1/);
  assert.throws(() => parse1('colour:'), /got 'colour:'/);
  assert.throws(() => parse1('abc'), /got 'abc'/);
});

/** The demo bundle copied, with attributes whose heads are copies of the demo's own. */
function bundleWithAttributes(edit: (m: BundleManifest) => void = () => {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-attr-bundle-'));
  const src = path.join(repoRoot, 'models', 'demo');
  for (const f of fs.readdirSync(src)) if (fs.statSync(path.join(src, f)).isFile()) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
  const heads = m.fusion!.heads;
  m.attributes = ['gender', 'colour'].map((name, i) => ({
    name,
    classes: m.classes,
    fusion: {
      method: 'log-linear' as const,
      heads: heads.map((h) => {
        const file = `attribute-${i}-head-${h.name}.bin`;
        fs.copyFileSync(path.join(dir, h.file), path.join(dir, file));
        return { ...h, file };
      }),
    },
  }));
  edit(m);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
  return dir;
}

test('loadBundle: attributes load with their heads checked against the layout; a bundle without them has none', () => {
  const b = loadBundle(bundleWithAttributes());
  assert.deepEqual(b.attributes.map((a) => a.name), ['gender', 'colour']);
  assert.ok(b.attributes.every((a) => a.heads.length === b.heads.length && a.heads.every((h) => fs.existsSync(h.path) && h.width > 0)));
  assert.equal(b.attributes[0]!.calibration, null);
  assert.deepEqual(loadBundle(path.join(repoRoot, 'models', 'demo')).attributes, []);
  assert.deepEqual(selectAttributes(b, ['colour'], 'b').map((a) => a.name), ['colour']);
  assert.deepEqual(selectAttributes(b, undefined, 'b').map((a) => a.name), ['gender', 'colour']);
  assert.throws(() => selectAttributes(b, ['season'], 'b'), (e: unknown) => e instanceof UsageError && /--attributes season: b has attributes gender, colour/.test(e.message));
});

test('loadBundle: a malformed attribute is a one-line config error', () => {
  const cases: [(m: BundleManifest) => void, RegExp][] = [
    [(m) => (m.attributes![1]!.name = 'gender'), /attribute 'gender' listed twice/],
    [(m) => (m.attributes![0]!.classes = ['one']), /at least two distinct classes/],
    [(m) => (m.attributes![0]!.fusion.heads = []), /log-linear fusion heads/],
    [(m) => (m.attributes![0]!.fusion.heads[0]!.file = 'missing.bin'), /missing missing\.bin/],
    [(m) => (m.attributes![0]!.fusion.heads[0]!.classes = ['Nope']), /classes must be bundle classes/],
    [(m) => (m.attributes![0]!.calibration = { method: 'temperature', temperature: -1 } as never), /calibration must be method temperature/],
  ];
  for (const [edit, message] of cases) {
    assert.throws(() => loadBundle(bundleWithAttributes(edit)), (e: unknown) => e instanceof ConfigError && message.test(e.message) && !e.message.includes('\n'), String(message));
  }
});

const withAttributes: PredictionRecord = {
  id: 'p1',
  category: 'Tshirts',
  score: 0.9,
  top_categories: [{ category: 'Tshirts', prob: 0.9 }],
  tags: [],
  status: 'ok',
  error: null,
  warnings: [],
  kept: { gender: 'Men' },
  attributes: {
    gender: { value: 'Men', score: 0.97654321, top: [{ value: 'Men', prob: 0.97654321 }, { value: 'Women', prob: 0.02 }], decision: { decision: 'accept', target: 0.95 } },
    colour: { value: 'Navy Blue', score: 0.4, top: [{ value: 'Navy Blue', prob: 0.4 }], decision: { decision: 'review', target: 0.95 } },
  },
};
const errorRow: PredictionRecord = { id: 'p2', category: null, score: null, top_categories: [], tags: [], status: 'error', error: 'no_input', warnings: [], kept: { gender: 'Women' } };

async function written(format: 'csv' | 'jsonl', shape: { decision?: boolean; attributes?: string[] }): Promise<string> {
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => (text += d.toString()));
  const w = await PredictionWriter.open('-', { format, keep: ['gender'], shape, stdout });
  await w.writeRecord(withAttributes);
  await w.writeRecord(errorRow);
  await w.close();
  return text;
}

test('CSV: <name>, <name>_score (and <name>_decision with a target) per attribute; a kept column of that name is input_<name>', async () => {
  assert.deepEqual(keptFieldNames(['gender', 'brand'], { attributes: ['gender'] }), ['input_gender', 'brand']);
  const shape = { decision: true, attributes: ['gender', 'colour'] };
  assert.deepEqual(csvHeader(['gender'], shape).slice(8), ['decision', 'target_precision', 'gender', 'gender_score', 'gender_decision', 'colour', 'colour_score', 'colour_decision', 'input_gender']);
  const [header, ok, err] = parse(await written('csv', shape)) as string[][];
  assert.deepEqual(header, csvHeader(['gender'], shape));
  const at = (row: string[], name: string) => row[header!.indexOf(name)];
  assert.equal(at(ok!, 'gender'), 'Men');
  assert.equal(at(ok!, 'gender_score'), '0.976543');
  assert.equal(at(ok!, 'colour_decision'), 'review');
  assert.equal(at(ok!, 'input_gender'), 'Men');
  assert.equal(at(err!, 'gender'), '');
  assert.equal(at(err!, 'gender_score'), '');
  assert.equal(at(err!, 'input_gender'), 'Women');
  // Without a target: two columns per attribute.
  assert.deepEqual(csvHeader([], { attributes: ['gender'] }).slice(8), ['gender', 'gender_score']);
});

test('JSONL: an attributes object after the other fields, every attribute present (nulls on an error row)', async () => {
  const [ok, err] = (await written('jsonl', { attributes: ['gender', 'colour'] })).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(Object.keys(ok!).slice(-2), ['attributes', 'input_gender']);
  assert.deepEqual(ok!.attributes, {
    gender: { value: 'Men', score: 0.976543, top: [{ value: 'Men', prob: 0.976543 }, { value: 'Women', prob: 0.02 }] },
    colour: { value: 'Navy Blue', score: 0.4, top: [{ value: 'Navy Blue', prob: 0.4 }] },
  });
  assert.deepEqual(err!.attributes, { gender: { value: null, score: null, top: [] }, colour: { value: null, score: null, top: [] } });
  const decided = JSON.parse((await written('jsonl', { decision: true, attributes: ['gender'] })).split('\n')[0]!) as { attributes: { gender: Record<string, unknown> } };
  assert.equal(decided.attributes.gender.decision, 'accept');
  assert.equal(decided.attributes.gender.target_precision, 0.95);
  // A bundle without attributes: no attributes field at all.
  assert.equal(JSON.parse((await written('jsonl', {})).split('\n')[0]!).attributes, undefined);
});
