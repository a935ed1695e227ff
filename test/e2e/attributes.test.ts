// End-to-end: a bundle with attributes (train --attribute) trained, run, evaluated, checked and served through the
// real CLI binary, on a catalog whose attributes lean on different evidence (audience in the title, tone in the photo).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { bin, demo, ensureDemo, readJsonl, runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { writeAttributeCatalog } from '../helpers/attribute-catalog.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-attributes-'));
const enc = { text: path.join(demo.bundle, 'encoders', 'text'), image: path.join(demo.bundle, 'encoders', 'image') };
const trainCsv = path.join(tmp, 'train.csv');
const catalogCsv = path.join(tmp, 'catalog.csv');
const withAttributes = path.join(tmp, 'with-attributes');
const categoryOnly = path.join(tmp, 'category-only');
const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const summary = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const train = (out: string, ...extra: string[]) =>
  runCli(['train', trainCsv, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', out, '--json-summary', `${out}.json`, '--target-precision', '0.9', '--validation', '0', ...extra]);
let trained: Awaited<ReturnType<typeof runCli>>;

before(async () => {
  await ensureDemo();
  // Every 10th training row has no audience, and one row an audience seen once (left out and reported).
  await writeAttributeCatalog(demo.train, tmp, 'train', { seed: 1, blankAudienceEvery: 10, rareAudience: 'pets' });
  await writeAttributeCatalog(demo.catalog, tmp, 'catalog', { seed: 2, limit: 160 });
  [trained] = await Promise.all([train(withAttributes, '--attribute', 'audience', '--attribute', 'tone'), train(categoryOnly)]);
  assert.equal(trained.code, 0, trained.stderr);
});

test('train --attribute: one embedding pass; each attribute its own heads, fusion and calibration; rare and empty values left out; the category unchanged', () => {
  const m = manifest(withAttributes);
  assert.deepEqual(m.attributes.map((a: { name: string }) => a.name), ['audience', 'tone']);
  const [audience, tone] = m.attributes;
  assert.deepEqual(audience.classes, ['kids', 'men', 'women'], "'pets' (seen once) is left out");
  assert.deepEqual(tone.classes, ['dark', 'light']);
  assert.match(trained.stderr, /attribute audience: 3 values on 431 rows \(48 without a value\); left out, seen fewer than 2 times: "pets" \(1\)/);
  assert.equal(audience.training.withoutValue, 48);
  assert.deepEqual(audience.training.dropped, [{ value: 'pets', count: 1 }]);
  for (const a of m.attributes) {
    assert.ok(a.calibration && a.calibration.temperature > 0, `${a.name} is calibrated`);
    for (const h of a.fusion.heads) assert.ok(fs.existsSync(path.join(withAttributes, h.file)), h.file);
  }
  // The summary names the fusion each attribute ended with: the text head alone, early fusion, or late (no marker).
  for (const a of m.attributes) {
    const line = trained.stderr.split('\n').find((l) => l.startsWith(`  attribute ${a.name}: ${a.classes.length} values`));
    assert.ok(line, `${a.name}'s summary line in ${trained.stderr}`);
    const marker = a.fusion.selection.textAlone?.chosen ? '(text head alone)' : a.fusion.selection.early?.chosen ? '(early fusion)' : null;
    for (const m of ['(text head alone)', '(early fusion)']) assert.equal(line.includes(m), m === marker, `${a.name}: ${line}`);
  }
  // The evidence differs, and so do the learned weights: tone is in the photo, audience in the title.
  const weight = (a: { fusion: { heads: { name: string; weight: number }[] } }, name: string) => a.fusion.heads.find((h) => h.name === name)!.weight;
  assert.ok(weight(tone, 'image') >= 0.9, `tone leans on the image head: ${weight(tone, 'image')}`);
  assert.ok(weight(audience, 'text') > weight(tone, 'text'), `audience leans on text more than tone does: ${weight(audience, 'text')} vs ${weight(tone, 'text')}`);
  // Each head's own held-out figure, which the weights were chosen from: audience's text head is the informative one,
  // tone's image head. (Audience's late weight itself is picked on ~86 held-out rows by macro-F1 among near-equal
  // candidates, so its size moves by a row: 0.45 or 0.25 with the image head's C at 0.01 or 0.1.)
  const headAlone = (a: { fusion: { selection: { heads: { name: string; macroF1: number }[] } } }, name: string) => a.fusion.selection.heads.find((h) => h.name === name)!.macroF1;
  assert.ok(headAlone(audience, 'text') > headAlone(audience, 'image') + 0.4, `audience: text alone ${headAlone(audience, 'text')}, image alone ${headAlone(audience, 'image')}`);
  assert.ok(headAlone(tone, 'image') > headAlone(tone, 'text') + 0.4, `tone: image alone ${headAlone(tone, 'image')}, text alone ${headAlone(tone, 'text')}`);
  // One embedding pass: each row's text and image once, as for the category alone.
  const s = summary(`${withAttributes}.json`);
  const alone = summary(`${categoryOnly}.json`);
  assert.deepEqual(s.embedded, { text: 480, image: 480 });
  assert.deepEqual(s.embedded, alone.embedded);
  // Adding attributes leaves the category's heads, fusion and calibration as they were, byte for byte.
  const c = manifest(categoryOnly);
  assert.deepEqual(m.fusion.heads.map((h: object) => ({ ...h })), c.fusion.heads);
  assert.deepEqual(m.calibration, c.calibration);
  for (const h of c.fusion.heads) assert.ok(fs.readFileSync(path.join(withAttributes, h.file)).equals(fs.readFileSync(path.join(categoryOnly, h.file))), h.file);
  assert.equal(fs.readFileSync(path.join(withAttributes, 'tfidf.json'), 'utf8'), fs.readFileSync(path.join(categoryOnly, 'tfidf.json'), 'utf8'));
  assert.equal(c.attributes, undefined, 'a bundle without attributes has no attributes field');
});

test('train --attribute-fusion: the attributes combine text and image their own way, the category as --fusion says', async () => {
  const out = path.join(tmp, 'attribute-fusion');
  const r = await train(out, '--features', 'image,tfidf', '--fusion', 'early', '--attribute', 'tone', '--attribute-fusion', 'late', '-q');
  assert.equal(r.code, 0, r.stderr);
  const m = manifest(out);
  const heads = (f: { heads: { name: string }[] }) => f.heads.map((h) => h.name).sort();
  assert.deepEqual(heads(m.fusion), ['image', 'joint', 'text'], 'the category: early fusion (a joint head for rows with both)');
  assert.deepEqual(heads(m.attributes[0].fusion), ['image', 'text'], 'tone: late fusion, no joint head');
  const bad = await train(path.join(tmp, 'bad-fusion'), '--attribute', 'tone', '--attribute-fusion', 'sideways', '-q');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--attribute-fusion/);
});

test('train --attribute: bad names are one-line usage errors (exit 2)', async () => {
  const cases: [string[], RegExp][] = [
    [['--attribute', 'no_such_column'], /--attribute no_such_column: the catalog has no such column \(columns found: 'id', /],
    [['--attribute', 'category'], /is the --label-column/],
    [['--attribute', 'tone,tone'], /named twice/],
    [['--attribute', 'score'], /an output field has that name/],
    [['--attribute', 'title'], /--attribute title is a column the model reads/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(['train', trainCsv, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', path.join(tmp, 'bad'), '-q', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // An attribute with one value left after the rare ones: exit 2, saying why.
  const one = path.join(tmp, 'one-value.csv');
  const rows = parse(fs.readFileSync(trainCsv, 'utf8'), { columns: true }) as Record<string, string>[];
  fs.writeFileSync(one, stringify(rows.map((r, i) => ({ ...r, tone: i === 0 ? 'odd' : 'dark' })), { header: true }));
  const r = await runCli(['train', one, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', path.join(tmp, 'bad'), '-q', '--attribute', 'tone', '--image-root', tmp]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--attribute tone: needs at least two values seen 2\+ times, found 1/);
});

test('run: JSONL records carry attributes, CSV <name>/<name>_score/<name>_decision columns; --attributes picks some; no extra embedding', async () => {
  const out = path.join(tmp, 'out.jsonl');
  const r = await runCli(['run', catalogCsv, '-m', withAttributes, '-o', out, '-q', '--json-summary', `${out}.json`]);
  assert.equal(r.code, 0, r.stderr);
  const records = readJsonl(out);
  assert.equal(records.length, 160);
  const truth = new Map((parse(fs.readFileSync(catalogCsv, 'utf8'), { columns: true }) as Record<string, string>[]).map((x) => [x.id, x]));
  let toneRight = 0;
  for (const rec of records) {
    const a = rec.attributes as Record<string, { value: string; score: number; top: { value: string; prob: number }[]; decision: string; target_precision: number }>;
    assert.deepEqual(Object.keys(a), ['audience', 'tone']);
    assert.equal(a.tone.top[0]!.value, a.tone.value);
    assert.equal(a.tone.top[0]!.prob, a.tone.score);
    assert.ok(['accept', 'review'].includes(a.audience.decision) && a.audience.target_precision === 0.9);
    if (a.tone.value === truth.get(rec.id as string)!.tone) toneRight++;
  }
  assert.ok(toneRight >= 150, `tone (in the photo) right on ${toneRight} of 160`);
  // The same embeddings as a category-only run: one text and one image per row.
  const alone = path.join(tmp, 'alone.jsonl');
  assert.equal((await runCli(['run', catalogCsv, '-m', categoryOnly, '-o', alone, '-q', '--json-summary', `${alone}.json`])).code, 0);
  assert.deepEqual(summary(`${out}.json`).embedded, { text: 160, image: 160 });
  assert.deepEqual(summary(`${out}.json`).embedded, summary(`${alone}.json`).embedded);
  assert.equal(readJsonl(alone)[0]!.attributes, undefined, 'no attributes field without attributes');

  const csv = path.join(tmp, 'out.csv');
  const c = await runCli(['run', catalogCsv, '-m', withAttributes, '-o', csv, '-q', '--attributes', 'tone', '--keep-columns', 'tone']);
  assert.equal(c.code, 0, c.stderr);
  const [header, ...rows] = parse(fs.readFileSync(csv, 'utf8')) as string[][];
  assert.deepEqual(header!.slice(-5), ['target_precision', 'tone', 'tone_score', 'tone_decision', 'input_tone']);
  assert.ok(!header!.includes('audience'));
  const first = rows[0]!;
  assert.ok(['dark', 'light'].includes(first[header!.indexOf('tone')]!));
  assert.ok(Number(first[header!.indexOf('tone_score')]) > 0.5);

  const bad = await runCli(['run', catalogCsv, '-m', withAttributes, '-o', path.join(tmp, 'x.jsonl'), '-q', '--attributes', 'colour']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--attributes colour: .* has attributes audience, tone/);
});

test('eval: every attribute judged beside the category (table, JSON, HTML section, --ablation per attribute); gates take attribute:x', async () => {
  const json = path.join(tmp, 'eval.json');
  const html = path.join(tmp, 'eval.html');
  const r = await runCli(['eval', catalogCsv, '-m', withAttributes, '--label-column', 'category', '--ablation', '--json', json, '--report', html, '--min-macro-f1', 'tone:0.9', '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Category and attributes/);
  assert.match(r.stdout, /^ {2}tone {2,}160 /m);
  const e = summary(json);
  assert.deepEqual(e.attributes.map((a: { name: string }) => a.name), ['audience', 'tone']);
  const tone = e.attributes[1];
  assert.ok(tone.metrics.macroF1 >= 0.9, `tone macro-F1 ${tone.metrics.macroF1}`);
  assert.deepEqual(tone.ablation.map((v: { name: string }) => v.name), ['text', 'image', 'fused']);
  const alone = (name: string) => tone.ablation.find((v: { name: string }) => v.name === name).metrics.macroF1;
  assert.ok(alone('image') > alone('text') + 0.3, 'tone: the image head alone beats the text head alone');
  const report = fs.readFileSync(html, 'utf8');
  assert.match(report, /<h2>Attribute: audience<\/h2>/);
  assert.match(report, /<h2>Attribute: tone<\/h2>/);

  const gate = await runCli(['eval', catalogCsv, '-m', withAttributes, '--label-column', 'category', '--min-macro-f1', 'audience:1', '-q']);
  assert.equal(gate.code, 3, gate.stderr);
  assert.match(gate.stderr, /audience macro-F1 0\.\d{4} is below --min-macro-f1 audience:1/);
  const unknown = await runCli(['eval', catalogCsv, '-m', withAttributes, '--label-column', 'category', '--min-macro-f1', 'colour:0.5', '-q']);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /the bundle has no attribute 'colour' \(it has audience, tone\)/);
});

test('check: a flipped attribute value is a disagreement of that attribute, in the summary, JUnit and JSON', async () => {
  const rows = parse(fs.readFileSync(catalogCsv, 'utf8'), { columns: true }) as Record<string, string>[];
  const flipped = rows.map((r, i) => (i % 20 === 0 ? { ...r, tone: r.tone === 'dark' ? 'light' : 'dark' } : r));
  const file = path.join(tmp, 'flipped.csv');
  fs.writeFileSync(file, stringify(flipped, { header: true }));
  const junit = path.join(tmp, 'check.xml');
  const json = path.join(tmp, 'check.json');
  const r = await runCli(['check', file, '-m', withAttributes, '--label-column', 'category', '--max-disagreement-rate', '1,tone:0.01', '--max-low-confidence-rate', '1', '--junit', junit, '--json', json, '--min-confidence', '0.8', '--low-confidence', '0.5', '-q']);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL {2}disagreement:tone/);
  assert.match(r.stdout, /categorize check: FAILED: disagreement:tone \(/);
  const checks = summary(json).checks as { name: string; attribute?: string; findings: { line: number; detail: string }[] }[];
  const tone = checks.find((c) => c.name === 'disagreement' && c.attribute === 'tone')!;
  const expected = flipped.flatMap((_, i) => (i % 20 === 0 ? [i + 2] : []));
  const found = tone.findings.map((f) => f.line);
  const hits = expected.filter((l) => found.includes(l)).length;
  assert.ok(hits >= expected.length - 1 && found.length <= expected.length + 1, `flipped lines ${expected.join(',')}, found ${found.join(',')}`);
  assert.ok(checks.some((c) => c.name === 'low_confidence' && c.attribute === 'audience'));
  assert.match(fs.readFileSync(junit, "utf8"), /<testcase classname="categorize.check" name="disagreement:tone"/);

  // Without --min-confidence each attribute is judged by flag precision, from its own held-out label tail: with 480
  // held-out rows, 8 flips among 160 rows cannot be vouched for at 0.9 (right labels could make 0.9 of them), 16 can.
  const flipped10 = rows.map((r, i) => (i % 10 === 0 ? { ...r, tone: r.tone === 'dark' ? 'light' : 'dark' } : r));
  const file10 = path.join(tmp, 'flipped10.csv');
  fs.writeFileSync(file10, stringify(flipped10, { header: true }));
  const expected10 = flipped10.flatMap((_, i) => (i % 10 === 0 ? [i + 2] : []));
  const json2 = path.join(tmp, 'check-flags.json');
  const f = await runCli(['check', file10, '-m', withAttributes, '--label-column', 'category', '--max-disagreement-rate', '1', '--max-low-confidence-rate', '1', '--json', json2, '-q']);
  assert.equal(f.code, 0, f.stdout + f.stderr);
  const byFlags = (summary(json2).checks as { name: string; attribute?: string; summary: string; findings: { line: number }[]; cutoff: { source: string; flags: { cutoff: number | null; lower: number } } }[]).find((c) => c.name === 'disagreement' && c.attribute === 'tone')!;
  assert.equal(byFlags.cutoff.source, 'flag-precision');
  const flaggedLines = byFlags.findings.map((x) => x.line);
  assert.ok(flaggedLines.every((l) => expected10.includes(l)) && flaggedLines.length >= expected10.length / 2, `flipped lines ${expected10.join(',')}, flagged ${flaggedLines.join(',')}: ${byFlags.summary}`);
  assert.ok(byFlags.cutoff.flags.lower >= 0.9);
});

test('serve: /predict adds attributes (the original fields unchanged); a request target decides them too', async () => {
  const child = spawn(process.execPath, [bin, 'serve', '--model', withAttributes, '--port', '0', '-q'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  try {
    let out = '';
    let url = '';
    for await (const chunk of child.stdout!) {
      out += String(chunk);
      const m = /^listening on (http:\/\/\S+)$/m.exec(out);
      if (m) {
        url = m[1]!;
        break;
      }
    }
    assert.ok(url, out);
    for (let i = 0; (await fetch(`${url}/readyz`)).status !== 200; i++) {
      assert.ok(i < 300, 'not ready after 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const row = (parse(fs.readFileSync(catalogCsv, 'utf8'), { columns: true }) as Record<string, string>[])[0]!;
    const form = new FormData();
    form.set('image', new Blob([fs.readFileSync(path.join(tmp, row.image!))]), 'photo.png');
    form.set('title', row.title!);
    form.set('description', row.description!);
    form.set('target_precision', '0.9');
    const res = await fetch(`${url}/predict`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['category', 'score', 'top_categories', 'tags', 'decision', 'target_precision', 'attributes']);
    const a = body.attributes as Record<string, { value: string; score: number; decision: string; target_precision: number }>;
    assert.equal(a.tone!.value, row.tone);
    assert.equal(a.audience!.target_precision, 0.9);
    assert.ok(['accept', 'review'].includes(a.tone!.decision));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
