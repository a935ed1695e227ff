// End-to-end: train writes linear heads (format 3) with their pruning recorded, and run/eval give the same
// predictions as the same model written as format-2 ONNX heads, including rows missing text or image.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import { readLinearHead } from '../../src/head/head-io.js';
import { linearHeadParams } from '../../src/head/linear-head.js';
import { buildClassifierOnnx } from '../../src/head/classifier-onnx.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-linear-'));
const enc = { text: path.join(demo.bundle, 'encoders', 'text'), image: path.join(demo.bundle, 'encoders', 'image') };
const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

before(async () => {
  await ensureDemo();
});

/** The same bundle with every linear head rewritten as the ONNX graph of the model it stands for, as format 2 wrote it. */
function asOnnxBundle(dir: string, out: string): void {
  fs.cpSync(dir, out, { recursive: true });
  const m = manifest(out);
  const entries = m.fusion ? m.fusion.heads : [m.classifier];
  for (const h of entries) {
    const p = linearHeadParams(readLinearHead(path.join(out, h.file)).head);
    const W = p.denseWidth + p.sparseWidth;
    fs.rmSync(path.join(out, h.file));
    h.file = h.file.replace(/\.bin$/, '.onnx');
    fs.writeFileSync(path.join(out, h.file), buildClassifierOnnx({ mean: p.mean, scale: p.scale, coef: p.coef, intercept: p.intercept, nClasses: p.classes.length, nFeatures: W }));
    delete h.type;
    delete h.pruning;
    h.input = 'features';
    h.output = 'probabilities';
  }
  m.formatVersion = 2;
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(m, null, 2));
}

/** The demo catalog with the text blanked on every fifth row and the image gone on every seventh. */
function damagedCatalog(): string {
  const lines = fs.readFileSync(demo.catalog, 'utf8').trimEnd().split('\n');
  const out = [lines[0]];
  lines.slice(1).forEach((line, i) => {
    const [id, title, description, image, category] = line.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    const blank = i % 5 === 0 && image !== '';
    out.push([id, blank ? '' : title, blank ? '' : description, !blank && i % 7 === 0 ? 'images/missing.png' : image, category].join(','));
  });
  const file = path.join(path.dirname(demo.catalog), 'catalog-linear-head.csv');
  fs.writeFileSync(file, out.join('\n') + '\n');
  return file;
}

test('linear heads predict as the ONNX heads of the same model: fused, joint and TF-IDF-only bundles', async () => {
  const catalog = damagedCatalog();
  for (const [name, extra] of [
    ['fused', ['--features', 'text,image,tfidf']],
    ['joint', ['--features', 'text,image,tfidf', '--fusion', 'joint']],
    ['tfidf', ['--features', 'tfidf']],
  ] as const) {
    const dir = path.join(tmp, name);
    // Exact image preprocessing: the ONNX copies below stand for format 2 bundles, which knew no other.
    const t = await runCli(['train', demo.train, '--label-column', 'category', '--text-model', enc.text, '--image-model', enc.image, '-o', dir, '--validation', '0', '--C', '1', '--fusion-folds', '0', '--image-preprocessing', 'exact', '-q', ...extra]);
    assert.equal(t.code, 0, t.stderr);
    const m = manifest(dir);
    // Late fusion chose its weights on held-out rows and calibrated there (format 5); a fixed C with one head and no
    // validation share left no held-out rows to calibrate on (format 3).
    assert.equal(m.formatVersion, name === 'fused' ? 5 : 3);
    assert.equal(m.calibration === undefined, name !== 'fused');
    const entries = m.fusion ? m.fusion.heads : [m.classifier];
    for (const h of entries) {
      assert.equal(h.type, 'linear');
      assert.match(h.file, /\.bin$/);
      if (h.kinds?.includes('tfidf') || (!m.fusion && m.features.some((f: { kind: string }) => f.kind === 'tfidf'))) {
        // The TF-IDF part was pruned and its effect measured on the training rows.
        assert.ok(h.pruning.keptEntries > 0 && h.pruning.keptEntries < h.pruning.totalEntries, JSON.stringify(h.pruning));
        assert.ok(h.pruning.tolerance > 0);
        assert.ok(h.pruning.agreement.rows > 0 && h.pruning.agreement.top1Agreement >= 0.99, JSON.stringify(h.pruning.agreement));
        assert.ok(h.pruning.agreement.maxAbsDiff < 0.01);
      }
    }
    const onnxDir = path.join(tmp, `${name}-onnx`);
    asOnnxBundle(dir, onnxDir);
    const outs: Record<string, unknown>[][] = [];
    for (const bundle of [dir, onnxDir]) {
      const file = path.join(tmp, `${path.basename(bundle)}.jsonl`);
      const r = await runCli(['run', catalog, '-m', bundle, '-o', file, '-q']);
      assert.equal(r.code, 0, r.stderr);
      outs.push(readJsonl(file));
    }
    const [a, b] = outs as [Record<string, unknown>[], Record<string, unknown>[]];
    assert.equal(a.length, 320);
    a.forEach((x, i) => {
      const y = b[i]!;
      assert.deepEqual({ ...x, score: null, top_categories: null }, { ...y, score: null, top_categories: null }, `${name} ${String(x.id)}`);
      const pa = x.top_categories as { category: string; prob: number }[];
      const pb = y.top_categories as { category: string; prob: number }[];
      pa.forEach((t, k) => assert.ok(Math.abs(t.prob - pb[k]!.prob) <= 2e-6, `${name} ${String(x.id)}: ${t.prob} vs ${pb[k]!.prob}`));
    });
    // eval (and its ablation of the fused heads) through both bundles: the same figures.
    const evals = [];
    for (const bundle of [dir, onnxDir]) {
      const json = path.join(tmp, `${path.basename(bundle)}-eval.json`);
      const e = await runCli(['eval', catalog, '--label-column', 'category', '-m', bundle, '-q', '--ablation', '--json', json]);
      assert.equal(e.code, 0, e.stderr);
      const j = JSON.parse(fs.readFileSync(json, 'utf8'));
      evals.push({ metrics: j.metrics, ablation: j.ablation });
    }
    assert.deepEqual(evals[0], evals[1], `${name}: eval figures`);
  }
});

test('a broken head file stops run before any row with exit 2 naming the file', async () => {
  const dir = path.join(tmp, 'broken');
  fs.cpSync(path.join(tmp, 'fused'), dir, { recursive: true });
  const file = path.join(dir, 'head-text.bin');
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
  const out = path.join(tmp, 'broken.jsonl');
  const r = await runCli(['run', demo.catalog, '-m', dir, '-o', out]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /head .*head-text\.bin: .*truncated or corrupt/);
  assert.ok(!fs.existsSync(out) || fs.readFileSync(out, 'utf8') === '', 'no rows written');
});
