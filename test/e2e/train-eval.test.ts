// End-to-end: categorize train and eval through the built binary, on the demo catalog and on awkward inputs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import { syntheticCatalog } from '../../bench/synthetic-catalog.js';
import sharp from 'sharp';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-train-'));
const enc = { text: path.join(demo.bundle, 'encoders', 'text'), image: path.join(demo.bundle, 'encoders', 'image') };
const trainArgs = (out: string, ...extra: string[]) => trainArgsFor(demo.train, out, ...extra);
const trainArgsFor = (input: string, out: string, ...extra: string[]) => ['train', input, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', out, ...extra];

before(async () => {
  await ensureDemo();
});

test('train writes a complete bundle that run and eval load; same seed and SOURCE_DATE_EPOCH give identical bytes', async () => {
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  // The whole default procedure but for one held-out split instead of 5 folds for C and the fusion weight (speed).
  const a = await runCli(trainArgs(path.join(tmp, 'a'), '--features', 'text,image,tfidf', '--fusion-folds', '0', '--seed', '3', '--json-summary', path.join(tmp, 'a.json')), { env });
  assert.equal(a.code, 0, a.stderr);
  const b = await runCli(trainArgs(path.join(tmp, 'b'), '--features', 'text,image,tfidf', '--fusion-folds', '0', '--seed', '3', '-q'), { env });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stderr, '');
  for (const f of ['manifest.json', 'head-text.bin', 'head-image.bin', 'tfidf.json', 'imputation.json']) {
    assert.ok(fs.readFileSync(path.join(tmp, 'a', f)).equals(fs.readFileSync(path.join(tmp, 'b', f))), `${f} identical`);
  }
  const m = JSON.parse(fs.readFileSync(path.join(tmp, 'a', 'manifest.json'), 'utf8'));
  assert.equal(m.createdAt, '2023-11-14T22:13:20.000Z');
  assert.deepEqual(m.features.map((f: { kind: string }) => f.kind), ['text', 'image', 'tfidf']);
  assert.equal(m.features[0].model.path, path.relative(path.join(tmp, 'a'), enc.text));
  assert.match(m.features[0].model.sha256, /^[0-9a-f]{64}$/);
  assert.equal(m.training.rows.read, 480);
  assert.ok(m.training.logisticRegression.heads.every((h: { converged: boolean }) => h.converged));
  assert.ok(m.training.validation.accuracy > 0.5);
  const summary = JSON.parse(fs.readFileSync(path.join(tmp, 'a.json'), 'utf8'));
  assert.equal(summary.validation.n, 48);
  assert.match(a.stderr, /validation: accuracy 0\.\d{4} · macro-F1/);

  const run = await runCli(['run', demo.catalog, '-m', path.join(tmp, 'a'), '-o', path.join(tmp, 'a.jsonl'), '-q']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(readJsonl(path.join(tmp, 'a.jsonl')).length, 320);
});

test('any feature set: text only, tfidf only, image + tfidf', async () => {
  for (const features of ['text', 'tfidf', 'image,tfidf']) {
    const out = path.join(tmp, `f-${features}`);
    const r = await runCli(trainArgs(out, '--features', features, '--C', '1', '-q'));
    assert.equal(r.code, 0, r.stderr);
    const kinds = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).features.map((f: { kind: string }) => f.kind);
    assert.deepEqual(kinds, features.split(','));
    const e = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', out, '-q', '--json', path.join(tmp, `f-${features}.json`)]);
    assert.equal(e.code, 0, e.stderr);
    const metrics = JSON.parse(fs.readFileSync(path.join(tmp, `f-${features}.json`), 'utf8')).metrics;
    assert.ok(metrics.accuracy > 0.5, `${features}: ${metrics.accuracy}`);
  }
});

test('--head support: a seeded Zipf catalog trains a support head that eval loads; the same bytes whatever --jobs', async () => {
  const csv = (rows: ReturnType<typeof syntheticCatalog>) => ['id,title,description,category', ...rows.map((r) => [r.id, r.title, r.description, r.category].join(','))].join('\n') + '\n';
  const train = path.join(tmp, 'zipf-train.csv');
  const held = path.join(tmp, 'zipf-held.csv');
  fs.writeFileSync(train, csv(syntheticCatalog({ classes: 40, rows: 1200, seed: 2 })));
  fs.writeFileSync(held, csv(syntheticCatalog({ classes: 40, rows: 1200, seed: 2, sample: 1, sampleRows: 400 })));
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const a = await runCli(['train', train, '--label-column', 'category', '--features', 'tfidf', '--head', 'support', '-o', path.join(tmp, 'zipf-a'), '--json-summary', path.join(tmp, 'zipf-a.json')], { env });
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /joint head: support head \([\d,]+ term–class weights\), \d+ epochs chosen by held-out log-loss per epoch \((?:[\d. ]+ on 240 rows(?:; )?){5}\)/, 'five folds on 1,200 rows');
  assert.match(a.stderr, /fit: support head, \d+ epochs, training log-loss/);
  const summary = JSON.parse(fs.readFileSync(path.join(tmp, 'zipf-a.json'), 'utf8'));
  assert.equal(summary.fit.heads[0].kind, 'support');
  assert.equal(summary.fit.heads[0].C, null, 'a support head has no C');
  const b = await runCli(['train', train, '--label-column', 'category', '--features', 'tfidf', '--head', 'support', '--jobs', '1', '-q', '-o', path.join(tmp, 'zipf-b')], { env });
  assert.equal(b.code, 0, b.stderr);
  for (const f of ['manifest.json', 'classifier.bin']) assert.ok(fs.readFileSync(path.join(tmp, 'zipf-a', f)).equals(fs.readFileSync(path.join(tmp, 'zipf-b', f))), `${f} identical`);
  const e = await runCli(['eval', held, '--label-column', 'category', '-m', path.join(tmp, 'zipf-a'), '-q', '--json', path.join(tmp, 'zipf-eval.json')]);
  assert.equal(e.code, 0, e.stderr);
  const metrics = JSON.parse(fs.readFileSync(path.join(tmp, 'zipf-eval.json'), 'utf8')).metrics;
  assert.ok(metrics.accuracy > 0.8, `held-out accuracy ${metrics.accuracy}`);
  const wrong = await runCli(trainArgs(path.join(tmp, 'x'), '--head', 'support'));
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--head support fits one TF-IDF-only head: use --features tfidf/);
});

test('rows with an empty label or no usable input are skipped and counted; --cv and --no-refit', async () => {
  const lines = fs.readFileSync(demo.train, 'utf8').trimEnd().split('\n');
  const extra = ['X1,Some product,,,', 'X2,,,,Books', 'X3,,,,Toys'];
  const p = path.join(path.dirname(demo.train), 'train-awkward.csv');
  fs.writeFileSync(p, [...lines, ...extra].join('\n') + '\n');
  const r = await runCli(trainArgsFor(p, path.join(tmp, 'awk'), '--cv', '3', '--no-refit', '--json-summary', path.join(tmp, 'awk.json')));
  fs.rmSync(p);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(fs.readFileSync(path.join(tmp, 'awk.json'), 'utf8'));
  assert.equal(s.rows.read, 483);
  assert.equal(s.rows.emptyLabel, 1);
  assert.equal(s.rows.failed, 2);
  assert.deepEqual(s.rows.failedReasons, { no_input: 2 });
  assert.equal(s.cv.folds.length, 3);
  assert.equal(s.rows.used, 480 - 48, 'without refit the bundle is the validation-split fit');
  assert.match(r.stderr, /cv fold 3\/3: accuracy/);
});

test('eval: table on stdout, JSON, HTML report, quality gates, unseen labels', async () => {
  const rows = fs.readFileSync(demo.catalog, 'utf8').trimEnd().split('\n');
  const p = path.join(path.dirname(demo.catalog), 'holdout-unseen.csv');
  fs.writeFileSync(p, [...rows, 'U1,Garden hose 20 m,Flexible,,Garden', 'U2,Lawn mower,Petrol,,Garden', 'U3,A lamp,,,'].join('\n') + '\n');
  const r = await runCli(['eval', p, '--label-column', 'category', '-m', demo.bundle, '--json', path.join(tmp, 'e.json'), '--report', path.join(tmp, 'e.html'), '--min-accuracy', '0.5']);
  fs.rmSync(p);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /accuracy\s+\d+\.\d+%/);
  assert.match(r.stdout, /macro F1/);
  assert.match(r.stderr, /labels the bundle does not know \(counted as errors\): Garden \(2\)/);
  assert.match(r.stderr, /1 rows without a label were skipped/);
  const j = JSON.parse(fs.readFileSync(path.join(tmp, 'e.json'), 'utf8'));
  assert.equal(j.metrics.n, 322);
  assert.deepEqual(j.metrics.unseenLabels, [{ label: 'Garden', count: 2 }]);
  assert.ok(j.metrics.confusion.labels.includes('Garden'));
  const html = fs.readFileSync(path.join(tmp, 'e.html'), 'utf8');
  assert.match(html, /^<!DOCTYPE html>/i);
  assert.ok(!/https?:\/\//.test(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')), 'self-contained');

  const gate = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', demo.bundle, '--min-accuracy', '0.99', '--min-macro-f1', '0.99', '-q']);
  assert.equal(gate.code, 3);
  assert.match(gate.stderr, /accuracy 0\.\d+ is below --min-accuracy 0\.99/);
  assert.match(gate.stderr, /macro-F1 0\.\d+ is below --min-macro-f1 0\.99/);
});

test('eval --report: a thumbnail beside each example row that has a readable photo, none (and no failure) for the others', async () => {
  // Six rows, all labelled with a class the bundle does not know, so each one is an example of a confused pair and,
  // being fewer than the report's ten, all of them are among the least confident rows.
  const [header, ...rows] = fs.readFileSync(demo.catalog, 'utf8').trimEnd().split('\n');
  assert.equal(header, 'id,title,description,image,category');
  const images = rows.map((r) => /,(images\/[^,]+\.(?:png|jpe?g|webp)),/.exec(r)?.[1]).filter((x): x is string => x !== undefined);
  const dir = path.dirname(demo.catalog);
  fs.writeFileSync(path.join(dir, 'not-an-image.jpg'), 'plain text, not a JPEG');
  const csv = [
    header,
    `R1,Acme revised biography 320 pages,A gripping story,${images[0]},Unknown`,
    `R2,"Lego <script>alert('x')</script> ""set""",A customer favourite,${images[1]},Unknown`,
    'R3,Orbit powerful laptop 16 GB RAM,No photo at all,,Unknown',
    'R4,Pico long lasting perfume,Its photo is gone,images/missing.png,Unknown',
    'R5,Acme garden hose,Its photo is not an image,not-an-image.jpg,Unknown',
    'R6,Orbit tablet,Its photo is behind a scheme eval does not read,ftp://example.com/a.jpg,Unknown',
  ].join('\n');
  const input = path.join(dir, 'holdout-thumbs.csv');
  fs.writeFileSync(input, csv + '\n');
  const html = path.join(tmp, 'thumbs.html');
  const r = await runCli(['eval', input, '--label-column', 'category', '-m', demo.bundle, '--report', html, '--json', path.join(tmp, 'thumbs.json'), '-q']);
  fs.rmSync(input);
  fs.rmSync(path.join(dir, 'not-an-image.jpg'));
  assert.equal(r.code, 0, r.stderr);
  const page = fs.readFileSync(html, 'utf8');
  const low = page.slice(page.indexOf('<h2>Least confident rows</h2>'));
  const lowRows = low.match(/<tr><td class="photo">.*?<\/tr>/g) ?? [];
  assert.equal(lowRows.length, 6, 'every row is among the least confident');
  const rowOf = (id: string) => lowRows.find((row) => row.includes(`>${id}</td>`))!;
  for (const id of ['R1', 'R2']) assert.match(rowOf(id), /<img src="data:image\/jpeg;base64,[A-Za-z0-9+/]+={0,2}" width="\d+" height="\d+" alt="">/, id);
  for (const id of ['R3', 'R4', 'R5', 'R6']) assert.match(rowOf(id), /<span class="none">no photo<\/span>/, id);
  // Each thumbnail is a real JPEG of at most 96 px.
  for (const [, b64] of page.matchAll(/src="data:image\/jpeg;base64,([^"]+)"/g)) {
    const meta = await sharp(Buffer.from(b64, 'base64')).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.ok(Math.max(meta.width!, meta.height!) <= 96);
  }
  // The confused pairs' examples carry the same photos.
  const pairs = page.slice(page.indexOf('<h2>Most confused pairs</h2>'), page.indexOf('<h2>Least confident rows</h2>'));
  assert.equal(pairs.match(/<img src="data:image\/jpeg;base64,/g)?.length, 2);
  // User text stays escaped; nothing but the data URIs is loaded.
  assert.doesNotMatch(page, /<script/i);
  assert.ok(page.includes('Lego &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;set&quot;'));
  const rest = page.replace(/ src="data:image\/jpeg;base64,[A-Za-z0-9+/]+={0,2}"/g, '').replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '');
  assert.doesNotMatch(rest, /https?:\/\/|\bsrc=|\bhref=/i);
  // The JSON lists the same least confident rows, without thumbnails.
  const j = JSON.parse(fs.readFileSync(path.join(tmp, 'thumbs.json'), 'utf8'));
  assert.deepEqual(j.lowConfidence.map((x: { id: string }) => x.id).sort(), ['R1', 'R2', 'R3', 'R4', 'R5', 'R6']);
  assert.ok(j.lowConfidence.every((x: { thumbnail?: unknown }) => x.thumbnail === undefined));
});

test('train usage errors exit 2 with a precise message', async () => {
  const noLabel = await runCli(['train', demo.train, '--label-column', 'nope', '--text-model', enc.text, '--image-model', enc.image, '-o', path.join(tmp, 'x')]);
  assert.equal(noLabel.code, 2);
  assert.match(noLabel.stderr, /--label-column nope: the catalog has no such column \(columns found: 'id', 'title', /);
  // The original preset's models are the registry defaults, which an empty cache lacks; train never downloads by itself.
  const noModel = await runCli(['train', demo.train, '--label-column', 'category', '--preset', 'original', '-o', path.join(tmp, 'x')], { env: { CATEGORIZE_CACHE: path.join(tmp, 'empty-cache'), HF_HUB_OFFLINE: '' } });
  assert.equal(noModel.code, 2);
  assert.match(noModel.stderr, /text model text:all-MiniLM-L6-v2 \(fp32\) is not in the model cache .*categorize models pull text:all-MiniLM-L6-v2` first, or pass --allow-download; or train with --preset embedded/);
  assert.equal(fs.existsSync(path.join(tmp, 'empty-cache', 'models')), false, 'nothing was downloaded');
  const badFeature = await runCli(['train', demo.train, '--label-column', 'category', '--features', 'text,audio', '-o', path.join(tmp, 'x')]);
  assert.equal(badFeature.code, 2);
  assert.match(badFeature.stderr, /--features takes text, image and tfidf, got 'audio'/);
  const one = path.join(tmp, 'one.csv');
  fs.writeFileSync(one, 'id,title,category\n1,a red shoe,Shoes\n2,a blue shoe,Shoes\n');
  const oneClass = await runCli(['train', one, '--label-column', 'category', '--features', 'tfidf', '-o', path.join(tmp, 'x')]);
  assert.equal(oneClass.code, 2);
  assert.match(oneClass.stderr, /at least two classes/);
});
