// End-to-end: `categorize check --label-column category_path` on a path bundle trained through the built binary
// (TF-IDF only), with stored paths changed at the top level and at the leaf, a label filed at an inner node and paths
// the tree lacks: disagreement levels, their order, the per-level limits and exit codes, unknown paths' ancestors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import { syntheticCatalog, syntheticCatalogCsv } from '../../bench/synthetic-catalog.js';
import type { CheckOutcome, CheckPaths } from '../../src/commands/check.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-check-paths-'));
const bundle = path.join(tmp, 'bundle');
const catalog = path.join(tmp, 'catalog.csv');

interface CheckJson {
  passed: boolean;
  failed: string[];
  labelled: number;
  paths?: CheckPaths;
  settings: { thresholds: Record<string, unknown> };
  checks: CheckOutcome[];
}
const check = (j: CheckJson, name: string) => j.checks.find((c) => c.name === name)!;

// The changed rows, by CSV line: what is stored there now and what the model answers.
const topChanged: { line: number; stored: string; answered: string }[] = [];
const leafChanged: { line: number; stored: string; answered: string }[] = [];
let innerLine = 0;
let newLeaf = { line: 0, stored: '', ancestor: '' };
let newTopLine = 0;

before(async () => {
  // 80 classes make two departments (40 would make one, and no top level to change to).
  const rows = syntheticCatalog({ classes: 80, rows: 2000, seed: 2 });
  fs.writeFileSync(catalog, syntheticCatalogCsv(rows));
  // A fixed C and words only: the test is about check, not about choosing a head.
  const train = await runCli(['train', catalog, '--label-column', 'category_path', '--features', 'tfidf', '--C', '10', '--validation', '0', '--char-ngram-range', 'none', '-o', bundle, '-q']);
  assert.equal(train.code, 0, train.stderr);
  const run = await runCli(['run', catalog, '-m', bundle, '-o', path.join(tmp, 'clean.jsonl'), '-q']);
  assert.equal(run.code, 0, run.stderr);
  const preds = readJsonl(path.join(tmp, 'clean.jsonl')) as { category: string | null; score: number | null; path_complete: boolean; path_scores: number[] }[];
  const classes = (JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as { classes: string[] }).classes;
  const top = (p: string) => p.split(' > ')[0];
  const family = (p: string) => p.split(' > ').slice(0, 2).join(' > ');
  assert.equal(new Set(classes.map(top)).size, 2, 'two departments');

  // Only rows the model answers right to the leaf and surely: changing their label makes a finding at a known level.
  const sureRight = (i: number, min: number) => preds[i].path_complete && preds[i].category === rows[i].category_path && preds[i].score! >= min;
  const used = new Set<number>();
  const take = (n: number, ok: (i: number) => boolean) => {
    const picked = rows.map((_, i) => i).filter((i) => !used.has(i) && ok(i)).filter((_, k) => k % 5 === 0).slice(0, n);
    assert.equal(picked.length, n);
    picked.forEach((i) => used.add(i));
    return picked;
  };
  // The synthetic catalog has no line breaks inside fields: row i is on line i + 2.
  for (const i of take(3, (i) => sureRight(i, 0.9))) {
    const answered = rows[i].category_path;
    const stored = classes.find((c) => top(c) !== top(answered))!;
    // Written without spaces around the separator: check splits on the bundle's '>' and trims, as train did.
    rows[i].category_path = stored.split(' > ').join('>');
    topChanged.push({ line: i + 2, stored, answered });
  }
  const hasSibling = (p: string) => classes.some((c) => c !== p && family(c) === family(p));
  for (const i of take(4, (i) => sureRight(i, 0.9) && hasSibling(rows[i].category_path))) {
    const answered = rows[i].category_path;
    const stored = classes.find((c) => c !== answered && family(c) === family(answered))!;
    rows[i].category_path = stored;
    leafChanged.push({ line: i + 2, stored, answered });
  }
  const [inner] = take(1, (i) => sureRight(i, 0.5));
  rows[inner].category_path = family(rows[inner].category_path);
  innerLine = inner + 2;
  const [leaf] = take(1, (i) => sureRight(i, 0.5));
  newLeaf = { line: leaf + 2, stored: `${family(rows[leaf].category_path)} > brand new leaf`, ancestor: family(rows[leaf].category_path) };
  rows[leaf].category_path = newLeaf.stored;
  const [newTop] = take(1, () => true);
  rows[newTop].category_path = 'Nowhere > Else';
  newTopLine = newTop + 2;
  fs.writeFileSync(catalog, syntheticCatalogCsv(rows));
});

test('disagreements are reported at the highest level where the paths differ, worst first; a level limit fails the run', async () => {
  const json = path.join(tmp, 'fail.json');
  const junit = path.join(tmp, 'fail.xml');
  const r = await runCli([
    'check', catalog, '-m', bundle, '--label-column', 'category_path', '--json', json, '--junit', junit,
    // Sibling leaves tolerated, any wrong department fails.
    '--max-disagreement-rate', '1', '--max-disagreement-rate-level', '1:0', '--max-unknown-categories', '2', '--max-low-confidence-rate', '1', '-q',
  ]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  const j = JSON.parse(fs.readFileSync(json, 'utf8')) as CheckJson;
  assert.deepEqual(j.failed, ['disagreement']);
  assert.deepEqual(j.paths, { separator: '>', minPathScore: 0.5, depth: 3 });
  assert.deepEqual(j.settings.thresholds.maxDisagreementRateByLevel, [{ level: 1, share: 0 }]);
  assert.equal(j.labelled, 2000);

  const d = check(j, 'disagreement');
  for (const c of topChanged) {
    const f = d.findings.find((x) => x.line === c.line);
    assert.ok(f, `top-level change on line ${c.line} found`);
    assert.equal(f.level, 1);
    assert.match(f.detail, new RegExp(`^stored '${c.stored}', predicted '${c.answered}' \\(differs at level 1 of 3, (0\\.9\\d|1\\.00) sure\\)$`));
  }
  for (const c of leafChanged) {
    const f = d.findings.find((x) => x.line === c.line);
    assert.ok(f, `leaf change on line ${c.line} found`);
    assert.equal(f.level, 3);
    assert.match(f.detail, new RegExp(`^stored '${c.stored}', predicted '${c.answered}' \\(differs at level 3 of 3, (0\\.9\\d|1\\.00) sure\\)$`));
  }
  assert.equal(d.findings.find((x) => x.line === innerLine), undefined, 'a label at an inner node, answered below it, agrees');
  // Worst first: by level, then by line.
  const order = d.findings.map((f) => [f.level!, f.line]);
  assert.deepEqual(order, [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  assert.deepEqual(d.levels!.map((l) => l.level), [1, 2, 3]);
  for (const l of d.levels!) assert.equal(l.count, d.findings.filter((f) => f.level === l.level).length);
  assert.ok(d.levels![0].count >= 3 && d.levels![2].count >= 4);
  assert.equal(d.levels![0].status, 'fail');
  assert.equal(d.levels![0].max, 0);
  assert.equal(d.levels![2].max, null);
  assert.equal(d.count, d.findings.length);
  assert.match(d.message, /; within --max-disagreement-rate 100\.00%; --max-disagreement-rate-level: level 1 \d+\.\d\d% over 0\.00%$/);

  const u = check(j, 'unknown_category');
  assert.equal(u.status, 'pass');
  assert.deepEqual(
    u.categories!.map((c) => [c.category, c.knownAncestor, c.firstLine]).sort((a, b) => (a[2] as number) - (b[2] as number)),
    [[newLeaf.stored, newLeaf.ancestor, newLeaf.line], ['Nowhere > Else', null, newTopLine]].sort((a, b) => (a[2] as number) - (b[2] as number)),
  );
  const leafRow = u.findings.find((f) => f.line === newLeaf.line)!;
  assert.equal(leafRow.detail, `stored path '${newLeaf.stored}' is not in the model's tree (deepest known ancestor '${newLeaf.ancestor}', level 2 of 3)`);
  assert.equal(u.findings.find((f) => f.line === newTopLine)!.detail, "stored path 'Nowhere > Else' is not in the model's tree (not even its top level is)");
  assert.equal(u.findings.find((f) => f.line === innerLine), undefined, 'an inner node is a known path');

  // The summary and JUnit quote the top-level findings first.
  assert.match(r.stdout, /^ {2}FAIL {2}disagreement {6}\d+ of 2000 labelled rows \(.*\) disagree with a prediction scored ≥ 0\.8 \(--min-confidence\) at the highest level where they differ \(level 1: \d+, level 2: \d+, level 3: \d+\) · max 100\.00% \(--max-disagreement-rate\); level 1 max 0\.00% \(--max-disagreement-rate-level\)$/m);
  const listed = r.stdout.split('\n').filter((l) => /^ {2}line \d+: id /.test(l));
  assert.match(listed[0], /differs at level 1 of 3/);
  const failure = /<failure[^>]*>([\s\S]*?)<\/failure>/.exec(fs.readFileSync(junit, 'utf8'))![1];
  assert.match(failure.split('\n')[1], /differs at level 1 of 3/);
});

test('limits that allow the findings pass (exit 0); the oracle is run\'s own answer', async () => {
  const json = path.join(tmp, 'pass.json');
  const r = await runCli([
    'check', catalog, '-m', bundle, '--label-column', 'category_path', '--json', json,
    '--max-disagreement-rate-level', '1:0.01', '--max-disagreement-rate-level', '3:0.05', '--max-unknown-categories', '2', '--max-low-confidence-rate', '1', '-q',
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const j = JSON.parse(fs.readFileSync(json, 'utf8')) as CheckJson;
  assert.equal(j.passed, true);
  const d = check(j, 'disagreement');
  assert.deepEqual(d.levels!.map((l) => [l.max, l.status]), [[0.01, 'pass'], [null, 'pass'], [0.05, 'pass']]);

  // Every finding matches run's answer on that line: the answered node and its score at the reported level.
  const o = await runCli(['run', catalog, '-m', bundle, '-o', path.join(tmp, 'changed.jsonl'), '-q']);
  assert.equal(o.code, 0, o.stderr);
  const preds = readJsonl(path.join(tmp, 'changed.jsonl')) as { category: string | null; path_scores: number[] }[];
  const stored = (parse(fs.readFileSync(catalog), { columns: true }) as { category_path: string }[]).map((x) => x.category_path.split('>').map((s) => s.trim()).join(' > '));
  for (const f of d.findings) {
    const i = f.line - 2;
    const a = preds[i].category!.split(' > ');
    const s = stored[i].split(' > ');
    assert.deepEqual(a.slice(0, f.level! - 1), s.slice(0, f.level! - 1), `line ${f.line}: same above the reported level`);
    assert.notEqual(a[f.level! - 1], s[f.level! - 1], `line ${f.line}: differs at the reported level`);
    assert.ok(preds[i].path_scores[f.level! - 1] >= 0.8);
  }
  // Raising --min-confidence above every score leaves no finding.
  const none = await runCli(['check', catalog, '-m', bundle, '--label-column', 'category_path', '--json', json, '--min-confidence', '1', '--max-unknown-categories', '2', '--max-low-confidence-rate', '1', '-q']);
  assert.equal(none.code, 0, none.stdout + none.stderr);
  assert.equal(check(JSON.parse(fs.readFileSync(json, 'utf8')) as CheckJson, 'disagreement').count, 0);
});

test('a level limit the bundle cannot have is a usage error (exit 2)', async () => {
  const deep = await runCli(['check', catalog, '-m', bundle, '--label-column', 'category_path', '--max-disagreement-rate-level', '4:0']);
  assert.equal(deep.code, 2);
  assert.match(deep.stderr, /--max-disagreement-rate-level 4:0: the bundle's paths have 3 levels/);
  const badShape = await runCli(['check', catalog, '-m', bundle, '--max-disagreement-rate-level', '1=0']);
  assert.equal(badShape.code, 2);
  assert.match(badShape.stderr, /--max-disagreement-rate-level.*expected level:share pairs/);
  await ensureDemo();
  const flat = await runCli(['check', demo.catalog, '-m', demo.bundle, '--label-column', 'category', '--max-disagreement-rate-level', '1:0']);
  assert.equal(flat.code, 2);
  assert.match(flat.stderr, /--max-disagreement-rate-level needs a path bundle; .* has flat classes/);
});
