// `npm run demo`'s orchestration (scripts/demo.ts) at a small size: train, eval with its report, run over the real
// demo catalog through the real binary, and what it prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { repoRoot } from '../helpers/paths.js';
import { runNode } from '../helpers/cli.js';

const script = path.join(repoRoot, 'dist', 'scripts', 'demo.js');
const catalog = path.join(repoRoot, 'fixtures', 'real-demo', 'catalog.csv');

test('the demo at 60 training and 30 held-out rows prints the run summary, predictions and the report path', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-demo-'));
  const report = path.join(out, 'report.html');
  const r = await runNode(script, ['--train-rows', '60', '--eval-rows', '30', '--out', out, '--report', report]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const text = r.stdout;
  assert.match(text, /300 Flipkart products with a photo each, 7 categories/);
  assert.match(text, /split {2}60 rows to train on, 30 held out/);
  assert.match(text, /\$ categorize train .*--preset embedded/);
  assert.match(text, /accuracy \d+\.\d% \(\d+ of 30 right\) · macro-F1 0\.\d{3}/);
  // run's own summary line, over the whole catalog.
  assert.match(text, /Run summary\n {2}categorize: 300 rows · 300 ok · 0 errors/);
  const predictions = text.split('\n').filter((l) => /^ {2}[✓✗] .+ → .+, [01]\.\d{3}/.test(l));
  assert.equal(predictions.length, 5, text);
  assert.ok(text.includes(`Report: ${report}`));
  const page = fs.readFileSync(report, 'utf8');
  assert.match(page, /^<!DOCTYPE html>/);
  assert.match(page, /<h2>Least confident rows<\/h2>/);
  assert.match(page, /<img src="data:image\/jpeg;base64,/);

  // The split is stratified: every category in both parts, no row in both.
  const read = (f: string) => parse(fs.readFileSync(path.join(out, f)), { columns: true }) as Record<string, string>[];
  const train = read('train.csv');
  const held = read('eval.csv');
  assert.equal(train.length, 60);
  assert.equal(held.length, 30);
  assert.equal(new Set([...train, ...held].map((x) => x.id)).size, 90, 'train and eval rows apart');
  assert.equal(new Set(train.map((x) => x.category)).size, 7);
  assert.equal(new Set(held.map((x) => x.category)).size, 7);
  // Image paths were rewritten relative to the split files and still point at the photos.
  assert.ok(fs.existsSync(path.resolve(out, held[0].image)), held[0].image);
  const predictionsFile = fs.readFileSync(path.join(out, 'predictions.jsonl'), 'utf8').trimEnd().split('\n');
  assert.equal(predictionsFile.length, fs.readFileSync(catalog, 'utf8').trimEnd().split('\n').length - 1);
  fs.rmSync(out, { recursive: true, force: true });
});

test('the demo refuses sizes the catalog cannot hold, exit 2', async () => {
  const r = await runNode(script, ['--train-rows', '250', '--eval-rows', '100', '--out', path.join(os.tmpdir(), 'categorize-demo-never')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--train-rows 250 \+ --eval-rows 100 exceed the catalog's 300 rows/);
  const bad = await runNode(script, ['--train-rows', 'many']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--train-rows must be a whole number/);
});
