// End-to-end: a category-path bundle through train, run (JSONL, CSV, --resume, shards + merge) and eval, on the
// synthetic taxonomy (department > family > class), with the size and speed claims at a small size.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { parse } from 'csv-parse/sync';
import { runCli, readJsonl } from '../helpers/cli.js';
import { syntheticCatalog } from '../../bench/synthetic-catalog.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-taxonomy-'));
const train = path.join(tmp, 'train.csv');
const held = path.join(tmp, 'held.csv');
const bundle = path.join(tmp, 'bundle');
// 200 classes in 25 families under 3 departments; labels written with '/' and untidy spaces, as catalogs do.
const CLASSES = 200;
const write = (file: string, rows: ReturnType<typeof syntheticCatalog>) =>
  fs.writeFileSync(
    file,
    stringify(
      rows.map((r) => ({ id: r.id, title: r.title, description: r.description, category_path: r.category_path.split(' > ').join(r.id.endsWith('7') ? ' /' : '/ ') })),
      { header: true },
    ),
  );

before(async () => {
  write(train, syntheticCatalog({ classes: CLASSES, rows: 2500, seed: 4 }));
  write(held, syntheticCatalog({ classes: CLASSES, rows: 4000, seed: 4, sample: 1, sampleRows: 1500 }));
  const r = await runCli(['train', train, '--label-column', 'category_path', '--path-separator', '/', '--features', 'tfidf', '--C', '10', '--validation', '0', '-o', bundle, '--json-summary', path.join(tmp, 'train.json')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /200 classes \(category paths split on '\/': \d+ nodes, up to 3 levels\)/);
});

test('train: the bundle records the separator and threshold; classes are stored paths; flat columns stay flat', async () => {
  const m = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
  assert.equal(m.paths.separator, '/');
  assert.equal(m.paths.minPathScore, 0.5);
  // Three departments: a top-level head beside the main one, over the same features.
  assert.equal(m.paths.top.classes.length, 3);
  assert.deepEqual(m.paths.top.heads.map((h: { file: string; classes: string[] }) => [h.file, h.classes.length]), [['top-head-joint.bin', 3]]);
  assert.equal(m.formatVersion, 4, 'a fixed C and no validation share: no held-out rows, no calibration');
  assert.equal(m.classes.length, CLASSES);
  for (const c of m.classes) assert.match(c, /^[a-z]+ > [a-z]+ > [a-z]+ [a-z]+( \d+)?$/);
  const s = JSON.parse(fs.readFileSync(path.join(tmp, 'train.json'), 'utf8'));
  assert.equal(s.paths.separator, '/');
  assert.equal(s.paths.maxDepth, 3);
  assert.equal(s.paths.topLevelHeads.length, 1);
  // The same catalog's flat column: no paths, format as before.
  const flat = await runCli(['train', held, '--label-column', 'category_path', '--path-separator', '|', '--features', 'tfidf', '--C', '1', '--validation', '0', '-q', '-o', path.join(tmp, 'flat')]);
  assert.equal(flat.code, 0, flat.stderr);
  const fm = JSON.parse(fs.readFileSync(path.join(tmp, 'flat', 'manifest.json'), 'utf8'));
  assert.equal(fm.paths, undefined);
  assert.equal(fm.formatVersion, 3);
});

test('run: path fields in JSONL and CSV, scores never rising down a path, backoff with --min-path-score; size and speed', async () => {
  const out = path.join(tmp, 'p.jsonl');
  const r = await runCli(['run', held, '-m', bundle, '-o', out, '--json-summary', path.join(tmp, 'run.json'), '-q']);
  assert.equal(r.code, 0, r.stderr);
  const recs = readJsonl(out) as Record<string, unknown>[];
  assert.equal(recs.length, 1500);
  for (const rec of recs) {
    assert.deepEqual(Object.keys(rec), ['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings', 'path_depth', 'path_complete', 'path_scores', 'full_path', 'full_path_score']);
    const scores = rec.path_scores as number[];
    assert.equal(scores.length, rec.path_depth);
    for (let d = 1; d < scores.length; d++) assert.ok(scores[d] <= scores[d - 1]);
    if ((rec.path_depth as number) > 0) assert.equal(rec.score, scores[scores.length - 1]);
    if (rec.path_complete) assert.equal(rec.category, rec.full_path);
    else assert.ok((rec.warnings as string[]).includes(rec.path_depth ? 'path_backoff' : 'path_unanswered'));
  }
  const sure = path.join(tmp, 'sure.jsonl');
  const s = await runCli(['run', held, '-m', bundle, '-o', sure, '--min-path-score', '0.99', '-q', '--json-summary', path.join(tmp, 'sure.json')]);
  assert.equal(s.code, 0, s.stderr);
  const sureRecs = readJsonl(sure) as { path_depth: number; category: string | null }[];
  const depth = (rs: { path_depth: number }[]) => rs.reduce((a, x) => a + x.path_depth, 0);
  assert.ok(depth(sureRecs) < depth(recs as { path_depth: number }[]), 'a higher threshold answers less deep');
  sureRecs.forEach((x, i) => {
    // A surer answer is an ancestor of (or equal to) the default one.
    const d = recs[i].category as string | null;
    if (x.category !== null && d !== null) assert.ok(d === x.category || d.startsWith(x.category + ' > '), `${x.category} vs ${d}`);
  });
  const sum = JSON.parse(fs.readFileSync(path.join(tmp, 'sure.json'), 'utf8'));
  assert.ok(sum.reasons.path_backoff > 0, JSON.stringify(sum.reasons));

  // CSV: the same fields as columns.
  const csvOut = path.join(tmp, 'p.csv');
  assert.equal((await runCli(['run', held, '-m', bundle, '-o', csvOut, '-q'])).code, 0);
  const rows = parse(fs.readFileSync(csvOut), { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, 1500);
  assert.equal(rows[0].full_path, recs[0].full_path);
  assert.deepEqual(JSON.parse(rows[0].path_scores), recs[0].path_scores);

  // Size and speed at this size: the head stores what its rows need (a few MB), run keeps well above 1,000 rows/s
  // of head work (the whole run, TF-IDF and writing included, on a shared 2-core CI machine: a loose floor).
  const size = fs.readdirSync(bundle).reduce((a, f) => a + fs.statSync(path.join(bundle, f)).size, 0);
  assert.ok(size < 12 * 2 ** 20, `bundle ${size} bytes`);
  const run = JSON.parse(fs.readFileSync(path.join(tmp, 'run.json'), 'utf8'));
  assert.ok(run.rowsPerSecond > 300, `${run.rowsPerSecond} rows/s`);
});

test('run: --resume of a path CSV and shards merged give the one-pass output', async () => {
  const full = path.join(tmp, 'full.csv');
  assert.equal((await runCli(['run', held, '-m', bundle, '-o', full, '-q'])).code, 0);
  const text = fs.readFileSync(full, 'utf8');
  const cut = path.join(tmp, 'cut.csv');
  fs.writeFileSync(cut, text.slice(0, Math.floor(text.length / 2)));
  const resumed = await runCli(['run', held, '-m', bundle, '-o', cut, '--resume', '-q']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(fs.readFileSync(cut, 'utf8'), text);
  const parts = [0, 1].map((i) => path.join(tmp, `shard-${i}.jsonl`));
  for (const [i, p] of parts.entries()) assert.equal((await runCli(['run', held, '-m', bundle, '-o', p, '--shard', `${i}/2`, '-q'])).code, 0);
  const merged = path.join(tmp, 'merged.jsonl');
  const m = await runCli(['merge', ...parts, '-o', merged, '--input', held, '-q']);
  assert.equal(m.code, 0, m.stderr);
  const one = path.join(tmp, 'one.jsonl');
  assert.equal((await runCli(['run', held, '-m', bundle, '-o', one, '-q'])).code, 0);
  assert.equal(fs.readFileSync(merged, 'utf8'), fs.readFileSync(one, 'utf8'));
});

test('eval: level and hierarchical figures in the table, JSON and report; --min-hf and --min-level-accuracy gate', async () => {
  const json = path.join(tmp, 'e.json');
  const html = path.join(tmp, 'e.html');
  const e = await runCli(['eval', held, '--label-column', 'category_path', '-m', bundle, '--json', json, '--report', html, '--min-hf', '0.5', '--min-level-accuracy', '1:0.5,2:0.5']);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /exact path\s+\d+\.\d+%/);
  assert.match(e.stdout, /at --min-path-score 0\.5: hierarchical precision 0\.\d+, recall 0\.\d+, F1 0\.\d+; answered/);
  const j = JSON.parse(fs.readFileSync(json, 'utf8'));
  assert.equal(j.paths.rows, 1500);
  assert.deepEqual(j.paths.levels.map((l: { level: number }) => l.level), [1, 2, 3]);
  assert.ok(j.paths.levels[0].accuracy >= j.paths.levels[2].accuracy);
  assert.equal(j.paths.exactPath, j.metrics.accuracy, 'the flat accuracy is over the most probable full path');
  assert.ok(j.paths.at.precision >= j.paths.curve[0].precision, 'backing off at 0.5 is surer than answering every leaf');
  assert.ok(j.paths.curve.some((c: { minPathScore: number }) => c.minPathScore === 0.5));
  const page = fs.readFileSync(html, 'utf8');
  assert.match(page, /<h2>Category paths<\/h2>/);
  assert.match(page, /<svg class="curve"[^>]*aria-label="hierarchical precision against recall/);
  const gate = await runCli(['eval', held, '--label-column', 'category_path', '-m', bundle, '-q', '--min-hf', '0.999', '--min-level-accuracy', '3:0.999']);
  assert.equal(gate.code, 3);
  assert.match(gate.stderr, /hierarchical F1 0\.\d+ \(--min-path-score 0\.5\) is below --min-hf 0\.999/);
  assert.match(gate.stderr, /level 3 accuracy 0\.\d+ is below --min-level-accuracy 3:0\.999/);
  const bad = await runCli(['eval', held, '--label-column', 'category_path', '-m', bundle, '-q', '--min-level-accuracy', 'top:0.9']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected level:share pairs such as 1:0\.97,3:0\.05/);
});
