// End-to-end: every feature subset trains, runs and evaluates; text + image bundles fuse per-modality heads with
// learned weights; rows missing a modality are predicted from the other; eval --ablation; --blank-titles.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-fusion-'));
const enc = { text: path.join(demo.bundle, 'encoders', 'text'), image: path.join(demo.bundle, 'encoders', 'image') };
const train = (out: string, ...extra: string[]) =>
  runCli(['train', demo.train, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', out, '--validation', '0', '-q', ...extra]);
const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

before(async () => {
  await ensureDemo();
});

const catalogRows = () => fs.readFileSync(demo.catalog, 'utf8').trimEnd().split('\n').slice(1).map((l) => l.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/));
const noImageCell = new Set(catalogRows().filter((c) => c[3] === '').map((c) => c[0]));

const SUBSETS = ['text', 'image', 'tfidf', 'text,image', 'text,tfidf', 'image,tfidf', 'text,image,tfidf'];

test('every non-empty feature subset trains and runs every row; text + image fuse two heads', async () => {
  for (const features of SUBSETS) {
    const out = path.join(tmp, `b-${features}`);
    // The default procedure (C chosen per head, late and early fusion) for the richest set, on one held-out share
    // (5-fold selection: the demo bundle and the attribute tests train with every default; unit fusion); a fixed C for the rest, which
    // exercise the same layout code at a fraction of the time.
    const quick = features === 'text,image,tfidf' ? ['--fusion-folds', '0'] : ['--C', '1', '--fusion-folds', '0'];
    // The richest set's summary is read too (below), so it is trained without -q.
    const t = features === 'text,image,tfidf' ? await runCli(['train', demo.train, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', out, '--validation', '0', '--features', features, ...quick]) : await train(out, '--features', features, ...quick);
    assert.equal(t.code, 0, `${features}: ${t.stderr}`);
    const m = manifest(out);
    const kinds = features.split(',');
    assert.deepEqual(m.features.map((f: { kind: string }) => f.kind), ['text', 'image', 'tfidf'].filter((k) => kinds.includes(k)));
    const hasText = kinds.includes('text') || kinds.includes('tfidf');
    if (hasText && kinds.includes('image')) {
      // --fusion auto: late fusion, or early fusion's joint head beside the late ones for rows that have both (7).
      const early = m.fusion.selection.early;
      assert.ok(early && early.rows > 0 && early.trials.length > 0, 'the early candidate was tried');
      // Then the text head alone against the fusion chosen (held-out macro-F1, a tie to the text head).
      const alone = m.fusion.selection.textAlone;
      assert.ok(alone && alone.rows >= early.rows && alone.chosen === alone.text.macroF1 >= alone.fused.macroF1, JSON.stringify(alone));
      if (features === 'text,image,tfidf') assert.match(t.stderr, alone.chosen ? /fusion: the text head alone \(the image head only for rows without text\)/ : /fusion: (early|late) fusion kept over the text head alone/);
      const joint = early.chosen && !alone.chosen;
      assert.equal(m.formatVersion, joint ? 7 : 6, 'calibrated (5), with the default fast image preprocessing (6), routes (7)');
      assert.equal(m.classifier, undefined);
      assert.deepEqual(m.fusion.heads.map((h: { name: string }) => h.name), joint ? ['text', 'image', 'joint'] : ['text', 'image']);
      assert.deepEqual(m.fusion.heads[0].kinds, kinds.filter((k) => k !== 'image'));
      const w = m.fusion.heads.slice(0, 2).map((h: { weight: number }) => h.weight);
      assert.ok(Math.abs(w[0] + w[1] - 1) < 1e-9, `weights ${w}`);
      if (alone.chosen) assert.deepEqual(w, [1, 0]);
      assert.ok(m.fusion.selection.rows > 0 && m.fusion.selection.candidates.length === 21);
      for (const h of m.fusion.heads) assert.ok(fs.existsSync(path.join(out, h.file)), h.file);
    } else {
      assert.equal(m.fusion, undefined);
      assert.equal(m.classifier.file, 'classifier.bin');
      assert.equal(m.classifier.type, 'linear');
    }
    // The image-free bundles never read an image; the text-free ones still read text for tags only if tfidf.
    const r = await runCli(['run', demo.catalog, '-m', out, '-o', path.join(tmp, `p-${features}.jsonl`), '-q']);
    assert.equal(r.code, 0, `${features}: ${r.stderr}`);
    const recs = readJsonl(path.join(tmp, `p-${features}.jsonl`));
    assert.equal(recs.length, 320);
    // Some demo rows have no image: an image-only bundle has nothing to go on there, every other bundle does.
    for (const x of recs) {
      if (features === 'image' && noImageCell.has(x.id as string)) assert.equal(x.error, 'image_missing: no image');
      else assert.equal(x.status, 'ok', `${features} ${x.id}: ${x.error}`);
    }
    const correct = recs.filter((x, i) => x.category === catalogRows()[i][4]).length;
    assert.ok(correct / 320 > 0.5, `${features}: accuracy ${correct / 320}`);
  }
});

/** The demo catalog with the title and description blanked on every third row and the image gone on every seventh. */
function damagedCatalog(): { file: string; noText: Set<string>; noImage: Set<string> } {
  const lines = fs.readFileSync(demo.catalog, 'utf8').trimEnd().split('\n');
  const noText = new Set<string>();
  const noImage = new Set<string>();
  const out = [lines[0]];
  lines.slice(1).forEach((line, i) => {
    const [id, title, description, image, category] = line.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    const blank = i % 3 === 0 && image !== '';
    const lose = !blank && i % 7 === 0 && image !== '';
    if (blank) noText.add(id);
    if (lose) noImage.add(id);
    out.push([id, blank ? '' : title, blank ? '' : description, lose ? 'images/does-not-exist.png' : image, category].join(','));
  });
  const file = path.join(path.dirname(demo.catalog), 'catalog-damaged.csv');
  fs.writeFileSync(file, out.join('\n') + '\n');
  return { file, noText, noImage };
}

test('--fusion early: a joint head routed to rows with text and image, the late heads to the rest; a bad route is refused', async () => {
  const out = path.join(tmp, 'early');
  const t = await runCli(['train', demo.train, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', out, '--validation', '0', '--fusion', 'early', '--features', 'image,tfidf', '--fusion-folds', '0']);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /fusion: early fusion \(--fusion early\) for rows with text and image — on \d+ held-out rows early \(image block weight [\d.]+, C [\d.]+\)/);
  const m = manifest(out);
  assert.equal(m.formatVersion, 7);
  assert.deepEqual(m.fusion.heads.map((h: { name: string; route: string }) => [h.name, h.route]), [['text', 'incomplete'], ['image', 'incomplete'], ['joint', 'complete']]);
  assert.deepEqual(m.fusion.heads[2].kinds, ['image', 'tfidf']);
  assert.ok(m.fusion.heads[2].blockWeight > 0);
  const { file, noText, noImage } = damagedCatalog();
  try {
    const o = path.join(tmp, 'early.jsonl');
    const r = await runCli(['run', file, '-m', out, '-o', o, '-q']);
    assert.equal(r.code, 0, r.stderr);
    const recs = readJsonl(o) as { id: string; status: string; category: string; score: number }[];
    assert.equal(recs.length, 320);
    for (const rec of recs) assert.equal(rec.status, 'ok', rec.id);
    // A row without text is the image head's alone: the same as a late bundle with only that head's weight would say.
    const j = path.join(tmp, 'early-ablation.json');
    const e = await runCli(['eval', file, '--label-column', 'category', '-m', out, '-q', '--json', j, '--ablation']);
    assert.equal(e.code, 0, e.stderr);
    const ev = JSON.parse(fs.readFileSync(j, 'utf8'));
    assert.deepEqual(ev.ablation.map((v: { name: string }) => v.name), ['text', 'image', 'joint', 'fused']);
    assert.deepEqual(ev.fusion.heads.map((h: { route: string }) => h.route), ['incomplete', 'incomplete', 'complete']);
    assert.ok(noText.size > 0 && noImage.size > 0);
  } finally {
    fs.rmSync(file);
  }
  const m2 = manifest(out);
  m2.fusion.heads[2].route = 'sometimes';
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(m2));
  const bad = await runCli(['run', demo.catalog, '-m', out, '-o', path.join(tmp, 'bad.jsonl'), '-q']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /head 'joint' route must be 'complete' or 'incomplete'/);
});

test('missing modality: a row without text or with a broken image is predicted from what it has, with its warning', async () => {
  const out = path.join(tmp, 'late');
  assert.equal((await train(out, '--features', 'text,image,tfidf', '--C', '1', '--fusion', 'late')).code, 0);
  const { file, noText, noImage } = damagedCatalog();
  try {
    const r = await runCli(['run', file, '-m', out, '-o', path.join(tmp, 'damaged.jsonl'), '-q']);
    assert.equal(r.code, 0, r.stderr);
    const recs = readJsonl(path.join(tmp, 'damaged.jsonl')) as { id: string; status: string; warnings: string[]; category: string }[];
    assert.equal(recs.length, 320);
    for (const rec of recs) {
      assert.equal(rec.status, 'ok', rec.id);
      if (noText.has(rec.id)) assert.ok(rec.warnings.some((w) => w.startsWith('text_missing')), `${rec.id} ${rec.warnings}`);
      if (noImage.has(rec.id)) assert.ok(rec.warnings.some((w) => /image/.test(w)), `${rec.id} ${rec.warnings}`);
    }
    // Predicted well: on rows without text the late-fusion bundle (image head trained for it) does at least as
    // well as a joint head fed the training mean in place of the text.
    const joint = path.join(tmp, 'joint');
    assert.equal((await train(joint, '--features', 'text,image,tfidf', '--fusion', 'joint', '--C', '1')).code, 0);
    const score = async (bundle: string) => {
      const j = path.join(tmp, `ab-${path.basename(bundle)}.json`);
      const e = await runCli(['eval', file, '--label-column', 'category', '-m', bundle, '-q', '--json', j, '--ablation']);
      assert.equal(e.code, 0, e.stderr);
      return JSON.parse(fs.readFileSync(j, 'utf8'));
    };
    const lateEval = await score(out);
    const jointEval = await score(joint);
    assert.deepEqual(lateEval.ablation.map((v: { name: string }) => v.name), ['text', 'image', 'fused']);
    assert.deepEqual(jointEval.ablation.map((v: { name: string }) => v.name), ['fused']);
    const fusedAcc = lateEval.metrics.accuracy;
    assert.ok(fusedAcc >= jointEval.metrics.accuracy - 0.02, `late ${fusedAcc} vs joint ${jointEval.metrics.accuracy}`);
    const textOnly = lateEval.ablation[0];
    assert.equal(textOnly.predicted, 320 - noText.size, 'text head: only rows with text');
    assert.equal(lateEval.ablation[1].predicted, 320 - noImage.size - noImageCell.size, 'image head: only rows with an image');
  } finally {
    fs.rmSync(file);
  }
});

test('eval --ablation prints and reports text only, image only and fused; --blank-titles blanks a seeded share', async () => {
  const out = path.join(tmp, 'abl');
  assert.equal((await train(out, '--features', 'image,tfidf', '--fusion-folds', '0', '--fusion', 'late')).code, 0);
  const html = path.join(tmp, 'abl.html');
  const json = path.join(tmp, 'abl.json');
  const e = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', out, '--ablation', '--report', html, '--json', json, '--blank-titles', '0.3', '--seed', '5']);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /Ablation/);
  assert.match(e.stdout, /text only\s+\d+\/320/);
  assert.match(e.stdout, new RegExp(`image only\\s+${320 - noImageCell.size}/320`));
  assert.match(e.stdout, /fused\s+320\/320/);
  const j = JSON.parse(fs.readFileSync(json, 'utf8'));
  assert.ok(j.blankedTitles > 60 && j.blankedTitles < 130, `blanked ${j.blankedTitles}`);
  assert.match(e.stderr, new RegExp(`blanked ${j.blankedTitles} of 320 titles`));
  assert.equal(j.ablation.length, 3);
  assert.deepEqual(j.fusion.heads.map((h: { name: string }) => h.name), ['text', 'image']);
  const page = fs.readFileSync(html, 'utf8');
  assert.match(page, /Ablation: each modality alone and fused/);
  assert.match(page, /F1 text only/);
  assert.match(page, /F1 image only/);
  assert.match(page, /Fusion weights/);
  // The same seed blanks the same rows.
  const again = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', out, '-q', '--json', json, '--blank-titles', '0.3', '--seed', '5']);
  assert.equal(again.code, 0);
  assert.equal(JSON.parse(fs.readFileSync(json, 'utf8')).blankedTitles, j.blankedTitles);
});
