import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { PredictionWriter, formatFor, RECORD_FIELDS, type PredictionRecord } from '../../src/io/prediction-writer.js';

const rec: PredictionRecord = {
  id: 'a,1',
  category: 'Shoes "running"',
  score: 0.81234567,
  top_categories: [
    { category: 'Shoes "running"', prob: 0.81234567 },
    { category: 'Bags', prob: 0.1 },
  ],
  tags: ['red', 'leather'],
  status: 'ok',
  error: null,
  warnings: ['image_missing'],
  kept: { brand: 'Acme\nCo' },
};
const failed: PredictionRecord = { id: '2', category: null, score: null, top_categories: [], tags: [], status: 'error', error: 'no_input: no text and no image', warnings: [] };

test('formatFor: extension, explicit flag, stdout default, unknown extension', () => {
  assert.equal(formatFor('out.jsonl'), 'jsonl');
  assert.equal(formatFor('out.NDJSON'), 'jsonl');
  assert.equal(formatFor('out.csv'), 'csv');
  assert.equal(formatFor('-'), 'jsonl');
  assert.equal(formatFor('-', 'csv'), 'csv');
  assert.throws(() => formatFor('out.txt'), /cannot tell the output format/);
  assert.throws(() => formatFor('out.csv', 'xml'), /--format must be jsonl or csv/);
});

test('JSONL: exactly the record fields in order, kept columns after, probabilities rounded', async () => {
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => (text += d.toString()));
  const w = await PredictionWriter.open('-', { format: 'jsonl', keep: ['brand'], stdout });
  await w.writeRecord(rec);
  await w.writeRecord(failed);
  await w.close();
  const [a, b] = text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(Object.keys(a), [...RECORD_FIELDS, 'brand']);
  assert.equal(a.score, 0.812346);
  assert.equal(a.brand, 'Acme\nCo');
  assert.deepEqual(b, { ...failed, brand: '' });
});

test('CSV: header, quoting, JSON-encoded list cells, empty cells for nulls', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-w-')), 'p.csv');
  const w = await PredictionWriter.open(file, { format: 'csv', keep: ['brand'] });
  await w.writeRecord(rec);
  await w.writeRecord(failed);
  await w.close();
  const rows = parse(fs.readFileSync(file), { columns: true }) as Record<string, string>[];
  assert.deepEqual(Object.keys(rows[0]), [...RECORD_FIELDS, 'brand']);
  assert.equal(rows[0].id, 'a,1');
  assert.equal(rows[0].category, 'Shoes "running"');
  assert.deepEqual(JSON.parse(rows[0].top_categories), [
    { category: 'Shoes "running"', prob: 0.812346 },
    { category: 'Bags', prob: 0.1 },
  ]);
  assert.deepEqual(JSON.parse(rows[0].tags), ['red', 'leather']);
  assert.deepEqual(JSON.parse(rows[0].warnings), ['image_missing']);
  assert.equal(rows[0].brand, 'Acme\nCo');
  assert.equal(rows[1].category, '');
  assert.equal(rows[1].score, '');
  assert.equal(rows[1].error, 'no_input: no text and no image');
});

test('a kept column named like an output field is written as input_<name>, never over the prediction', async () => {
  const labelled: PredictionRecord = { ...rec, kept: { category: 'Bags', decision: 'x', brand: 'Acme' } };
  const shape = { decision: true };
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => (text += d.toString()));
  const w = await PredictionWriter.open('-', { format: 'jsonl', keep: ['category', 'decision', 'brand'], shape, stdout });
  await w.writeRecord(labelled);
  await w.close();
  const a = JSON.parse(text);
  assert.equal(a.category, 'Shoes "running"');
  assert.equal(a.input_category, 'Bags');
  assert.equal(a.decision, null);
  assert.equal(a.input_decision, 'x');
  assert.equal(a.brand, 'Acme');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-w-')), 'p.csv');
  const c = await PredictionWriter.open(file, { format: 'csv', keep: ['category'] });
  await c.writeRecord(labelled);
  await c.close();
  const rows = parse(fs.readFileSync(file), { columns: true }) as Record<string, string>[];
  assert.deepEqual(Object.keys(rows[0]!), [...RECORD_FIELDS, 'input_category']);
  assert.equal(rows[0]!.category, 'Shoes "running"');
  assert.equal(rows[0]!.input_category, 'Bags');
  await assert.rejects(PredictionWriter.open('-', { format: 'jsonl', keep: ['category', 'input_category'], stdout: new PassThrough() }), /both be written as "input_category"/);
});

test('an output folder that does not exist is a usage error', async () => {
  await assert.rejects(PredictionWriter.open('/nonexistent-dir/x.jsonl', { format: 'jsonl', keep: [] }), /output folder does not exist/);
});
